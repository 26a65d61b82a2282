/* pipes: pipe facts from /proc (see pipes.h). */
#include "pipes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procscan.h"

#ifndef F_GETPIPE_SZ
#define F_GETPIPE_SZ 1032 /* Linux 2.6.35 */
#endif

/* "pipe:[12345]" -> 12345; 0 for anything else (a named FIFO has a path: not handled). */
static uint64_t pipe_ino_of_link(const char *link)
{
	if (strncmp(link, "pipe:[", 6) != 0)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(link + 6, &end, 10);
	if (errno || end == link + 6 || *end != ']' || end[1] != '\0')
		return 0;
	return v;
}

/* O_ACCMODE of an fd from its fdinfo "flags:\t0100002" (octal). -1 unknown. */
static int fd_accmode(int fdinfo_dir, int fd)
{
	char name[16], buf[512];
	snprintf(name, sizeof(name), "%d", fd);
	int f = openat(fdinfo_dir, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (f < 0)
		return -1;
	ssize_t n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strstr(buf, "flags:");
	if (!p)
		return -1;
	errno = 0;
	unsigned long fl = strtoul(p + 6, NULL, 8);
	return errno ? -1 : (int)(fl & O_ACCMODE);
}

static uint64_t link_ino(int fd_dir, const char *name)
{
	char link[64];
	ssize_t n = readlinkat(fd_dir, name, link, sizeof(link) - 1);
	if (n <= 0)
		return 0;
	link[n] = '\0';
	return pipe_ino_of_link(link);
}

int pipe_fd(pid_t pid, int fd, uint64_t *ino, bool *read_end, bool *write_end)
{
	char path[64], name[16];
	if (fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	snprintf(name, sizeof(name), "%d", fd);
	uint64_t i = link_ino(dir, name);
	close(dir);
	if (!i)
		return 0;
	*ino = i;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	int info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int acc = info >= 0 ? fd_accmode(info, fd) : -1;
	if (info >= 0)
		close(info);
	if (read_end)
		*read_end = acc == O_RDONLY || acc == O_RDWR;
	if (write_end)
		*write_end = acc == O_WRONLY || acc == O_RDWR;
	return 1;
}

/* The device of pipefs (every anonymous pipe's st_dev): from a pipe of our own, once. */
static bool pipefs_dev(dev_t *dev)
{
	static int known = -1;
	static dev_t d;
	if (known < 0) {
		int p[2];
		struct stat st;
		known = 0;
		if (pipe2(p, O_CLOEXEC) == 0) {
			if (fstat(p[0], &st) == 0) {
				d = st.st_dev;
				known = 1;
			}
			close(p[0]);
			close(p[1]);
		}
	}
	*dev = d;
	return known == 1;
}

int pipe_fill(pid_t pid, int fd, uint64_t ino, struct pipe_facts *f)
{
	dev_t pdev;
	char path[64];
	struct stat st;
	f->queued = f->capacity = -1;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	/* O_PATH: the file is not opened (no FIFO open, no device side effect) */
	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	/* an anonymous pipe: pipefs, not a named FIFO elsewhere with the same inode number */
	if (fstat(pfd, &st) != 0 || !S_ISFIFO(st.st_mode) || (uint64_t)st.st_ino != ino ||
	    !pipefs_dev(&pdev) || st.st_dev != pdev) {
		close(pfd); /* the fd now is something else: leave it alone */
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd);
	/* the checked file itself: a FIFO's read side opened O_NONBLOCK returns at once */
	int r = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	close(pfd);
	if (r < 0)
		return -1;
	struct stat st2;
	int n = 0;
	if (fstat(r, &st2) == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev &&
	    ioctl(r, FIONREAD, &n) == 0) {
		f->queued = n;
		long cap = fcntl(r, F_GETPIPE_SZ);
		f->capacity = cap > 0 ? cap : -1;
	}
	close(r);
	return f->queued >= 0 ? 0 : -1;
}

struct holders_scan {
	struct pipe_facts *f;
	const pid_t *skip;
	size_t nskip;
	size_t procs;
	size_t *budget;     /* fd entries left, NULL: no budget */
};

static void note_holder(struct pipe_facts *f, pid_t pid, int fd, bool rd, bool wr)
{
	for (size_t i = 0; i < f->nholders; i++) {
		struct pipe_holder *h = &f->holders[i];
		if (h->pid != pid)
			continue;
		if (rd && !h->read_end)
			f->nreaders++;
		if (wr && !h->write_end)
			f->nwriters++;
		h->read_end |= rd;
		h->write_end |= wr;
		if (fd < h->fd)
			h->fd = fd;
		return;
	}
	f->nreaders += rd;
	f->nwriters += wr;
	if (f->nholders == PIPE_MAX_HOLDERS)
		return; /* counted, not kept */
	struct pipe_holder *h = &f->holders[f->nholders++];
	memset(h, 0, sizeof(*h));
	h->pid = pid;
	h->fd = fd;
	h->read_end = rd;
	h->write_end = wr;
	proc_comm(pid, 0, h->comm, sizeof(h->comm));
}

/* Every fd of pid that is pipe f->ino (each process is looked at once per scan: the
 * likely holders first, then the rest of /proc without them). Holders beyond
 * PIPE_MAX_HOLDERS are counted but not kept. */
static void scan_process_bounded(struct pipe_facts *f, pid_t pid, size_t max_fds, size_t *budget)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno != ENOENT && errno != ESRCH)
			f->complete = false, f->cut = true; /* a process we cannot look into may hold it */
		return;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		f->complete = false;
		f->cut = true;
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	int info = -1;
	size_t seen = 0;
	struct dirent *e;
	bool rd = false, wr = false;
	int first = -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if (++seen > max_fds || (budget && *budget == 0)) {
			f->complete = false;
			f->cut = true;
			break;
		}
		if (budget)
			--*budget;
		if (link_ino(dfd, e->d_name) != f->ino)
			continue;
		int fd = atoi(e->d_name);
		if (info < 0)
			info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int acc = info >= 0 ? fd_accmode(info, fd) : -1;
		if (acc < 0) { /* unknown end: might be a reader */
			f->complete = false;
			f->cut = true;
			continue;
		}
		rd |= acc == O_RDONLY || acc == O_RDWR;
		wr |= acc == O_WRONLY || acc == O_RDWR;
		if (first < 0 || fd < first)
			first = fd;
	}
	if (info >= 0)
		close(info);
	closedir(d);
	if (rd || wr)
		note_holder(f, pid, first, rd, wr);
}

static int scan_one(pid_t pid, void *arg)
{
	struct holders_scan *s = arg;
	for (size_t i = 0; i < s->nskip; i++)
		if (s->skip[i] == pid)
			return 0;
	if (++s->procs > PIPE_MAX_PROCS) {
		s->f->complete = false;
		return 1;
	}
	if (s->budget && *s->budget == 0) {
		s->f->complete = false;
		s->f->cut = true;
		return 1;
	}
	scan_process_bounded(s->f, pid, PIPE_MAX_FDS, s->budget);
	return 0;
}

int pipe_holders(uint64_t ino, const pid_t *pids, size_t n, bool only_these, struct pipe_facts *f)
{
	return pipe_holders_budget(ino, pids, n, only_these, NULL, f);
}

int pipe_holders_budget(uint64_t ino, const pid_t *pids, size_t n, bool only_these, size_t *fd_budget,
			struct pipe_facts *f)
{
	f->ino = ino;
	f->nholders = f->nreaders = f->nwriters = 0;
	f->complete = true;
	f->cut = false;
	for (size_t i = 0; i < n; i++)
		scan_process_bounded(f, pids[i], PIPE_MAX_FDS, fd_budget);
	if (only_these) {
		f->complete = false; /* the rest of the host was not looked at */
		return 0;
	}
	struct holders_scan s = { .f = f, .skip = pids, .nskip = n, .budget = fd_budget };
	if (proc_for_each_pid("/proc", PIPE_MAX_PROCS + 1, scan_one, &s) < 0) {
		f->complete = false;
		return -1;
	}
	return 0;
}

int pipe_holders_among(uint64_t ino, const pid_t *pids, size_t n, size_t max_fds, size_t *fd_budget,
		       struct pipe_facts *f)
{
	f->ino = ino;
	f->nholders = f->nreaders = f->nwriters = 0;
	f->cut = false;
	f->looked = 0;
	for (size_t i = 0; i < n; i++) {
		if (fd_budget && *fd_budget == 0) {
			f->cut = true; /* the rest not looked at */
			break;
		}
		scan_process_bounded(f, pids[i], max_fds, fd_budget);
		f->looked++;
	}
	f->complete = false; /* the rest of the host was not looked at */
	return 0;
}

static void holders_json(struct jw *w, const char *key, const struct pipe_facts *f, bool rd)
{
	jw_key(w, key);
	jw_arr_begin(w);
	for (size_t i = 0; i < f->nholders; i++) {
		const struct pipe_holder *h = &f->holders[i];
		if (rd ? !h->read_end : !h->write_end)
			continue;
		jw_obj_begin(w);
		jw_kint(w, "pid", h->pid);
		jw_key(w, "comm");
		jw_strn(w, h->comm, strnlen(h->comm, sizeof(h->comm)));
		jw_kint(w, "fd", h->fd);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

void pipe_write_json(struct jw *w, const struct pipe_facts *f)
{
	jw_obj_begin(w);
	jw_key(w, "inode");
	jw_uint(w, f->ino);
	jw_key(w, "queued_bytes");
	if (f->queued >= 0)
		jw_int(w, f->queued);
	else
		jw_null(w);
	jw_key(w, "capacity_bytes");
	if (f->capacity >= 0)
		jw_int(w, f->capacity);
	else
		jw_null(w);
	holders_json(w, "readers", f, true);
	holders_json(w, "writers", f, false);
	jw_kbool(w, "holders_complete", f->complete);
	jw_obj_end(w);
}
