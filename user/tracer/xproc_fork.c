/* xproc_fork: the `fork_held_lock` diagnosis (see xproc.h): a child forked, not exec'd,
 * from a multi-threaded parent, whose every thread waits untimed on a process-private lock
 * that none of them holds; the fork is the kernel's record (bpf/fork.bpf.h, xproc.c's
 * table) or, for a fork before tracing started, proven by the main stack at the parent's
 * address; the parent thread holding the same lock is named when proven. */
#include "xproc.h"
#include "xproc_int.h"

#include "loader.h"
#include "lockown.h"
#include "procmem.h"
#include "procscan.h"
#include "tracer.h"
#include "waitgraph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUTEX_NR 202            /* x86_64 */
#define FUTEX_PRIVATE 128u      /* include/uapi/linux/futex.h */

/* Untimed wait on a process-private futex, passed the threshold (cf. diagnose.c). */
static bool stuck(const struct py_thread *t, const struct diag_waits *w)
{
	return t->tid > 0 && t->state == PY_STATE_LOCK_WAIT && t->syscall_nr == FUTEX_NR &&
	       !t->futex_timed && (t->futex_op & FUTEX_PRIVATE) && w && w->long_blocked &&
	       w->long_blocked(w->arg, t->tid, t->futex_addr);
}

static const char *base_of(const char *p)
{
	const char *b = p ? strrchr(p, '/') : NULL;
	return b ? b + 1 : p ? p : "?";
}

/* The parent thread that holds the lock at object/futex: an RLock's owner ident copied at
 * the fork (proven at fork time), else a `with` of it in progress in the parent now. */
static void find_parent_holder(struct tracer *t, struct xp_facts *xf, const struct wf_info *wf,
			       uint64_t object, uint64_t futex, uint64_t copied_holder)
{
	const struct xp_fork *f = xf->fork;
	struct py_process pp;
	char err[128];
	xf->parent_threads_now = -1;
	if (py_read_process(t->reader, f->parent, &pp, err, sizeof(err)) != 0)
		return;
	if (pp.start_time != f->parent_start) {
		py_process_free(&pp);
		return;
	}
	xf->parent_threads_now = (int)pp.nthreads;
	const struct py_thread *h = NULL;
	int line = -1, frame = -1;
	for (size_t i = 0; copied_holder && i < pp.nthreads && !h; i++)
		if (pp.threads[i].thread_id == copied_holder) {
			h = &pp.threads[i];
			xf->holder_proof = "with_at_fork";
			if (wf->holder_line >= 0)
				line = wf->holder_line;
		}
	if (!h && wf && wf->lock && wf->lock->reentrant && wf->lock->owner_known && wf->lock->owner) {
		for (size_t i = 0; i < pp.nthreads && !h; i++)
			if (pp.threads[i].thread_id == wf->lock->owner) {
				h = &pp.threads[i];
				xf->holder_proof = "rlock_owner";
			}
	}
	struct lo_thread *lo = calloc(pp.nthreads ? pp.nthreads : 1, sizeof(*lo));
	struct lo_lock *pool = NULL;
	if (lo && lockown_read(t->reader, &pp, lo, &pool) == 0) {
		for (size_t i = 0; i < pp.nthreads; i++)
			for (size_t k = 0; k < lo[i].nheld; k++) {
				const struct lo_lock *l = &lo[i].held[k];
				bool same = (object && l->obj == object) || (futex && l->futex == futex);
				if (!same || (h && h != &pp.threads[i]))
					continue;
				if (!h)
					xf->holder_proof = "with";
				h = &pp.threads[i];
				if (line < 0)
					line = l->line;
				frame = l->frame;
			}
	}
	free(lo);
	free(pool);
	if (h) {
		xf->holder_tid = h->tid;
		snprintf(xf->holder_name, sizeof(xf->holder_name), "%s", h->name ? h->name : "");
		const struct py_frame *fr = frame >= 0 && (size_t)frame < h->nframes ? &h->frames[frame] :
					    h->nframes ? &h->frames[0] : NULL;
		if (fr) {
			snprintf(xf->holder_function, sizeof(xf->holder_function), "%s",
				 fr->function ? fr->function : "?");
			snprintf(xf->holder_file, sizeof(xf->holder_file), "%s", fr->file ? fr->file : "?");
			xf->holder_line = line >= 0 ? line : fr->line;
		}
	}
	py_process_free(&pp);
}

/* The end (top) address of pid's [stack] mapping (/proc/PID/maps), 0 if none. */
static uint64_t stack_mapping(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "r");
	uint64_t start = 0;
	int n = 0;
	while (f && !start && n++ < 65536 && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *dash = strchr(line, '-');
		if (dash && len > 8 && strcmp(line + len - 8, "[stack]\n") == 0)
			start = strtoull(dash + 1, NULL, 16); /* the top: the bottom moves as it grows */
	}
	if (f)
		fclose(f);
	return start;
}

static long read_long_file(const char *path, int base)
{
	char buf[64];
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n ? strtol(buf, NULL, base) : -1;
}

/* A fork made before tracing started, which the kernel did not record: child was forked
 * (not exec'd) from its parent when both have their main stack at the same address while
 * addresses are randomized (kernel.randomize_va_space > 0, and the child's personality
 * has no ADDR_NO_RANDOMIZE): an exec places it anew (fs/exec.c, randomize_stack_top), a
 * fork copies it. Fills c (no fork time, no thread count, no stack); false if unproven. */
static bool fork_before_start(pid_t child, struct xp_fork *c)
{
	char path[64];
	pid_t ppid = proc_parent(child);
	if (ppid <= 1)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/personality", (int)child);
	if (read_long_file("/proc/sys/kernel/randomize_va_space", 10) < 1 ||
	    read_long_file(path, 16) & 0x0040000 /* ADDR_NO_RANDOMIZE */)
		return false;
	uint64_t a = stack_mapping(child), b = stack_mapping((pid_t)ppid);
	uint64_t pstart;
	if (!a || a != b || pm_start_time((pid_t)ppid, &pstart) != 0)
		return false;
	memset(c, 0, sizeof(*c));
	c->used = true;
	c->child = child;
	c->parent = (pid_t)ppid;
	c->parent_start = pstart;
	c->stack_status = "not_captured";
	proc_comm(c->parent, 0, c->parent_comm, sizeof(c->parent_comm));
	return true;
}

bool xp_fork_held_lock(struct tracer *t, const struct rec_long_wait *lw, const struct waitgraph *g,
			   const struct diag_waits *w, struct diagnosis *d)
{
	const struct py_process *p = lw->py;
	struct xproc *x = t->xp;
	struct xp_facts *xf = &x->facts;
	struct ph_fork_rec kr;
	/* the kernel's record: a fork of a multi-threaded watched parent, not exec'd since;
	 * or, for a fork before tracing started, the same main stack as its parent's */
	bool recorded = loader_fork_of(t->ld, p->pid, &kr) == 0 && kr.child_start == p->start_time;
	struct xp_fork early;
	if (!recorded && !fork_before_start(p->pid, &early))
		return false;
	/* every thread of its own is stuck; thread states without an OS thread are copies of
	 * the parent's threads (2.7 keeps them in the child's list) */
	size_t real = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		if (p->threads[i].tid <= 0)
			continue;
		real++;
		if (!stuck(&p->threads[i], w))
			return false;
	}
	if (!real || p->threads_error || p->os_threads != real)
		return false;
	const struct py_thread *wt = xp_thread_of(p, lw->p.tid);
	if (!wt)
		return false;
	const struct wf_info *wf = g && g->info ? &g->info[wt - p->threads] : NULL;
	uint64_t copied_holder = 0; /* thread ident of a parent thread whose copy holds it */
	if (wf && wf->holder && !wf->holder_dead) {
		if (wf->holder->tid > 0)
			return false; /* a thread of its own holds it (a cycle, or its own lock again) */
		copied_holder = wf->holder->thread_id;
	}
	memset(xf, 0, sizeof(*xf));
	for (unsigned i = 0; i < XP_MAX_FORKS; i++) {
		const struct xp_fork *f = &x->forks[i];
		if (f->used && f->child == p->pid && f->child_start == p->start_time)
			xf->fork = f;
	}
	if (!recorded) {
		xf->fork_copy = early;
		xf->fork = &xf->fork_copy;
	} else if (!xf->fork) { /* its record was rate-limited: what the kernel map tells */
		struct xp_fork *c = &xf->fork_copy;
		c->used = true;
		c->child = p->pid;
		c->child_start = kr.child_start;
		c->parent = (pid_t)kr.parent_tgid;
		c->forker_tid = (pid_t)kr.forker_tid;
		c->parent_threads = kr.parent_threads;
		c->fork_ns = kr.fork_ns;
		proc_comm(c->parent, 0, c->parent_comm, sizeof(c->parent_comm));
		c->parent_start = 0; /* not recorded: its threads are not read (a reused pid) */
		c->stack_status = "not_captured";
		xf->fork = c;
	}
	xf->forked_s_ago = !recorded ? -1 : lw->p.mono_ns > xf->fork->fork_ns ?
			   (double)(lw->p.mono_ns - xf->fork->fork_ns) / 1e9 : 0;
	uint64_t object = wf ? wf->object : 0;
	if (xf->fork->parent_start)
		find_parent_holder(t, xf, wf, object, wt->futex_addr, copied_holder);
	else
		xf->parent_threads_now = -1;
	/* before tracing: its thread count at the fork is not known, so only a parent thread
	 * proven to hold that very lock makes it this diagnosis */
	if (!recorded && xf->holder_tid <= 0) {
		memset(xf, 0, sizeof(*xf));
		return false;
	}

	d->code = DIAG_FORK_HELD_LOCK;
	d->waiter = wt->tid;
	for (size_t i = 0; i < p->nthreads && d->nculprits < DIAG_MAX_CULPRITS; i++)
		d->culprits[d->nculprits++] = p->threads[i].tid;
	d->xproc = xf;
	char a[160], where[320], holder[600] = "";
	xp_who(wt, a, sizeof(a));
	diagnose_blocked_where(wt, where, sizeof(where));
	const char *kind = wf && wf->kind ? wf_kind_name(wf->kind) : "lock";
	if (xf->holder_tid > 0)
		snprintf(holder, sizeof(holder), "; in the parent, thread %s%.80s%s(tid %d) holds that %s (%s at %s:%d)",
			 xf->holder_name[0] ? "'" : "", xf->holder_name, xf->holder_name[0] ? "' " : "",
			 (int)xf->holder_tid, kind,
 strcmp(xf->holder_proof, "with") == 0 ? "taken" : "held when the fork copied it, taken",
			 base_of(xf->holder_file), xf->holder_line);
	else
		snprintf(holder, sizeof(holder), "; which parent thread held it is not known any more");
	char buf[2048];
	char when[160];
	if (recorded)
		snprintf(when, sizeof(when), "%.1f s ago by pid %d (%.16s), which had %u threads then",
			 xf->forked_s_ago, (int)xf->fork->parent, xf->fork->parent_comm,
			 xf->fork->parent_threads);
	else
		snprintf(when, sizeof(when), "by pid %d (%.16s) before tracing started",
			 (int)xf->fork->parent, xf->fork->parent_comm);
	snprintf(buf, sizeof(buf),
		 "%s waits in %s for a %s that no thread of this process holds: the process was forked "
		 "(not exec'd) %s; fork() copied the %s in its held state but not the thread holding "
		 "it, so nothing here can release it%s. Use the 'spawn' or 'forkserver' start method, "
		 "or reset the lock with os.register_at_fork(after_in_child=...)",
		 a, where, kind, when, kind, holder);
	xp_set_summary(d, buf);
	return true;
}
