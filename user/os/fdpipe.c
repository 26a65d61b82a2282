/* fdpipe: a pipe fd of a watched process: which end it is and which processes hold the
 * other end (blocked_on.peer / peers; see fddesc.h).
 * Owns: the candidate processes looked at, chosen without a scan of the host's /proc:
 *  1. the process itself (its threads share its fd table: a reader that holds the write
 *     end itself is found here);
 *  2. its descendants, breadth first, FDP_MAX_DEPTH generations, from
 *     /proc/PID/task/TID/children (Linux 3.5+, CONFIG_PROC_CHILDREN; proc(5));
 *  3. its parent;
 *  4. the children of its ancestors (FDP_MAX_ANCESTORS up) that are in its session
 *     (field 6 of /proc/PID/stat): siblings, and processes orphaned and reparented to a
 *     subreaper or to the pid namespace's init, like a grandchild left holding a pipe
 *     after its parent exited (kernel/exit.c forget_original_parent: orphans go to the
 *     nearest subreaper ancestor, else the namespace's child reaper).
 * Every candidate must be in the target's pid namespace (/proc/PID/ns/pid, the same
 * link text): processes outside it are neither looked at nor named. Bounds, since the
 * target controls its children, threads and fd counts: FDP_MAX_CANDS processes,
 * PROC_CHILDREN_TASKS threads' children lists each and FDP_MAX_STATS stat files per snapshot,
 * FDP_MAX_FDS_EACH fd entries of one process and FDP_FD_BUDGET in all per snapshot (one
 * fd_ctx), and FDP_FD_RATE a second over all snapshots (a token bucket: about 6 us of
 * system time per entry, so at most ~5% of a core whatever targets do); nothing read here can block (/proc text and links only; pipes.c's holder scan
 * reads links and fdinfo). A search cut by a bound says so (peers_cut); an empty result
 * means "none among the candidates", never "nobody". */
#include "fddesc_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pipes.h"
#include "procscan.h"

#define FDP_MAX_CANDS 64        /* processes looked at per snapshot */
#define FDP_MAX_DESC 40         /* of which descendants at most */
#define FDP_MAX_DEPTH 4         /* generations of descendants */
#define FDP_MAX_ANCESTORS 8     /* ancestors whose same-session children are looked at */
#define FDP_MAX_STATS 512       /* stat files read to filter by session, per snapshot */
#define FDP_MAX_FDS_EACH 1024   /* fd entries of one process read */
#define FDP_FD_BUDGET 4096      /* fd entries read per snapshot */
#define FDP_FD_RATE 8192        /* fd entries read per second by all snapshots together */
#define FDP_CACHE 8             /* pipes answered per snapshot from the same scan */

struct fdpipe_state {
	bool built;
	pid_t cands[FDP_MAX_CANDS];
	size_t ncands;
	bool cands_cut;            /* a bound left relatives out */
	size_t budget;             /* fd entries left */
	size_t stats;              /* stat files read */
	char ns[64];               /* the target's /proc/PID/ns/pid link ("" unknown) */
	bool top_level;            /* the target is in our /proc's pid namespace */
	struct {
		uint64_t ino;
		struct pipe_facts f;
	} cache[FDP_CACHE];
	size_t ncache;
};

/* The process-wide bucket of fd entries (refilled at FDP_FD_RATE a second, holding one
 * second's worth); the tracer is single-threaded where snapshots are taken. */
static double bucket = FDP_FD_RATE;
static struct timespec bucket_at;

static size_t bucket_take(size_t want)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (bucket_at.tv_sec || bucket_at.tv_nsec) {
		double dt = (double)(now.tv_sec - bucket_at.tv_sec) + (double)(now.tv_nsec - bucket_at.tv_nsec) / 1e9;
		bucket += dt * FDP_FD_RATE;
		if (bucket > FDP_FD_RATE)
			bucket = FDP_FD_RATE;
	}
	bucket_at = now;
	size_t got = bucket < (double)want ? (size_t)bucket : want;
	bucket -= (double)got;
	return got;
}

static void bucket_return(size_t unused)
{
	bucket += (double)unused;
}

void fdpipe_free(struct fdpipe_state *s)
{
	free(s);
}

static bool ns_of(pid_t pid, char *buf, size_t len)
{
	char path[48];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	ssize_t n = readlink(path, buf, len - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* pid is in the target's pid namespace: the same /proc/PID/ns/pid link, or, when that link
 * is not readable to us (ptrace access to a privileged init), both in our /proc's own
 * namespace (one NSpid level each). */
static bool same_ns(const struct fdpipe_state *s, pid_t pid)
{
	char ns[64];
	if (ns_of(pid, ns, sizeof(ns)))
		return s->ns[0] && strcmp(ns, s->ns) == 0;
	return s->top_level && proc_nspid(pid, 0, NULL, 0) == 1;
}

static bool is_cand(const struct fdpipe_state *s, pid_t pid)
{
	for (size_t i = 0; i < s->ncands; i++)
		if (s->cands[i] == pid)
			return true;
	return false;
}

/* Adds pid (same namespace, not yet there) unless ncands reached limit: false then. */
static bool add_cand(struct fdpipe_state *s, pid_t pid, size_t limit)
{
	if (pid <= 0 || is_cand(s, pid))
		return true;
	if (s->ncands >= limit) {
		s->cands_cut = true;
		return false;
	}
	if (!same_ns(s, pid))
		return true;
	s->cands[s->ncands++] = pid;
	return true;
}

static void build(struct fdpipe_state *s, pid_t self)
{
	pid_t kids[FDP_MAX_CANDS];
	bool more = false;
	s->built = true;
	s->budget = FDP_FD_BUDGET;
	if (!ns_of(self, s->ns, sizeof(s->ns)))
		return; /* gone or unreadable: nothing is looked at */
	s->top_level = proc_nspid(self, 0, NULL, 0) == 1;
	s->cands[s->ncands++] = self;
	/* descendants, one generation at a time */
	size_t lo = 0, hi = 1;
	for (int depth = 1; depth <= FDP_MAX_DEPTH && lo < hi; depth++) {
		for (size_t i = lo; i < hi; i++) {
			if (s->ncands >= FDP_MAX_DESC) { /* full: the rest's children are not read */
				s->cands_cut = true;
				break;
			}
			size_t nk = proc_children(s->cands[i], PROC_CHILDREN_TASKS, kids, FDP_MAX_CANDS, &more);
			for (size_t k = 0; k < nk; k++)
				add_cand(s, kids[k], FDP_MAX_DESC);
		}
		lo = hi;
		hi = s->ncands;
	}
	if (more)
		s->cands_cut = true;
	pid_t ppid = 0, session = 0;
	if (proc_stat_fields(self, NULL, &ppid, &session) != 0 || ppid <= 0)
		return;
	add_cand(s, ppid, FDP_MAX_CANDS);
	/* same-session children of the ancestors: siblings, orphans reparented upwards */
	pid_t a = ppid;
	for (int k = 0; k < FDP_MAX_ANCESTORS && a > 0 && same_ns(s, a); k++) {
		more = false;
		size_t nk = proc_children(a, PROC_CHILDREN_TASKS, kids, FDP_MAX_CANDS, &more);
		if (more)
			s->cands_cut = true;
		for (size_t i = 0; i < nk; i++) {
			pid_t sid;
			if (is_cand(s, kids[i]))
				continue;
			if (s->stats >= FDP_MAX_STATS) {
				s->cands_cut = true;
				break;
			}
			s->stats++;
			if (proc_stat_fields(kids[i], NULL, NULL, &sid) == 0 && sid == session)
				add_cand(s, kids[i], FDP_MAX_CANDS);
		}
		pid_t up = 0;
		if (proc_stat_fields(a, NULL, &up, NULL) != 0)
			break;
		a = up;
	}
}

void fd_describe_pipe(struct fd_ctx *c, int fd, struct fd_desc *d)
{
	uint64_t ino = 0;
	bool rd = false, wr = false;
	if (pipe_fd(c->pid, fd, &ino, &rd, &wr) != 1 || ino != d->inode)
		return; /* replaced meanwhile, or unreadable */
	d->pipe_end = rd && wr ? FD_END_BOTH : rd ? FD_END_READ : wr ? FD_END_WRITE : FD_END_UNKNOWN;
	if (d->pipe_end != FD_END_READ && d->pipe_end != FD_END_WRITE)
		return; /* which other end to look for is not known */
	if (!c->pipes) {
		c->pipes = calloc(1, sizeof(*c->pipes));
		if (!c->pipes)
			return;
	}
	struct fdpipe_state *s = c->pipes;
	if (!s->built)
		build(s, c->pid);
	struct pipe_facts *f = NULL;
	for (size_t i = 0; i < s->ncache; i++)
		if (s->cache[i].ino == ino)
			f = &s->cache[i].f;
	if (!f) {
		if (s->ncache == FDP_CACHE)
			return; /* more pipes than a snapshot answers */
		f = &s->cache[s->ncache].f;
		s->cache[s->ncache++].ino = ino;
		size_t grant = bucket_take(s->budget), left = grant;
		pipe_holders_among(ino, s->cands, s->ncands, FDP_MAX_FDS_EACH, &left, f);
		bucket_return(left);
		s->budget -= grant - left;
	}
	bool want_write = d->pipe_end == FD_END_READ;
	d->peers_searched = true;
	d->peers_looked = (uint16_t)f->looked;
	d->peers_cut = s->cands_cut || f->cut || !s->ncands;
	d->peers_total = (uint16_t)(want_write ? f->nwriters : f->nreaders);
	for (size_t i = 0; i < f->nholders && d->npeers < FD_MAX_PEERS; i++) {
		const struct pipe_holder *h = &f->holders[i];
		if (want_write ? !h->write_end : !h->read_end)
			continue;
		struct fd_peer *p = &d->peers[d->npeers++];
		p->pid = h->pid;
		p->fd = h->fd;
		memcpy(p->comm, h->comm, sizeof(p->comm));
	}
	if (d->npeers) {
		d->peer_pid = d->peers[0].pid;
		memcpy(d->peer_comm, d->peers[0].comm, sizeof(d->peer_comm));
	}
}
