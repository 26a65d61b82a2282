/* pipeself: the `pipe_own_writer` hang (see pipeself.h). */
#include "pipeself.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pipes.h"
#include "procscan.h"

#define PS_SCANS 10                             /* host scans in a row at most */
#define PS_SCAN_EVERY_NS (5ull * 1000000000ull) /* and one more per 5 s */
#define PS_SCAN_FDS 65536                       /* fd entries one scan reads at most */

/* Threads of pid (/proc/PID/task entries), counting up to 2. */
static int thread_count(pid_t pid)
{
	char path[48];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 2)
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
			n++;
	closedir(d);
	return n;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool is_read_call(const char *name)
{
	return !strcmp(name, "read") || !strcmp(name, "readv") || !strcmp(name, "pread64") ||
	       !strcmp(name, "preadv");
}

bool pipeself_diagnose(pid_t pid, const struct py_process *p, pid_t tid, const struct io_wait *io,
		       struct diagnosis *d)
{
	static uint64_t last_scan;
	static unsigned tokens;
	const struct fd_desc *b = &io->on;
	if (!io->fd_call || !io->syscall || !is_read_call(io->syscall) || strcmp(b->type, "pipe") ||
	    b->pipe_end != FD_END_READ || !b->peers_searched || b->peers_total != 1 ||
	    b->npeers != 1 || b->peers[0].pid != pid)
		return false; /* among its relatives, not only itself holds the write end */
	if (!p || p->nthreads != 1 || p->threads[0].tid != tid || thread_count(pid) != 1 ||
	    proc_dying(pid))
		return false;
	/* A handler of a signal could write to the pipe: a Python handler (os.write to it), or
	 * the C handler's write to signal.set_wakeup_fd()'s fd (the self-pipe trick: a read
	 * that waits for a signal, by design). Proven only when no signal is caught but
	 * SIGINT (CPython's default handler raises KeyboardInterrupt: the sentence says so). */
	uint64_t caught;
	if (proc_signal_mask(pid, "SigCgt", &caught) != 0 || (caught & ~(1ull << (SIGINT - 1))))
		return false;
	uint64_t now = mono_ns();
	if (!last_scan)
		tokens = PS_SCANS;
	else if (now - last_scan >= PS_SCAN_EVERY_NS) {
		uint64_t add = (now - last_scan) / PS_SCAN_EVERY_NS;
		tokens = tokens + add > PS_SCANS ? PS_SCANS : tokens + (unsigned)add;
	}
	if (!tokens)
		return false; /* not proven now: the host scans are rate-limited */
	if (!last_scan || now - last_scan >= PS_SCAN_EVERY_NS)
		last_scan = now;
	tokens--;
	struct pipe_facts f;
	size_t budget = PS_SCAN_FDS;
	memset(&f, 0, sizeof(f));
	if (pipe_holders_budget(b->inode, &pid, 1, false, &budget, &f) != 0 || !f.complete ||
	    f.nwriters != 1)
		return false;
	bool mine = false;
	for (size_t i = 0; i < f.nholders; i++)
		if (f.holders[i].write_end)
			mine = f.holders[i].pid == pid;
	if (!mine || pipe_fill(pid, b->fd, b->inode, &f) != 0 || f.queued != 0)
		return false;
	const struct py_thread *t = &p->threads[0];
	char where[400];
	diagnose_blocked_where(t, where, sizeof(where));
	memset(d, 0, sizeof(*d));
	d->code = DIAG_PIPE_OWN_WRITER;
	d->waiter = tid;
	d->culprits[d->nculprits++] = tid;
	snprintf(d->summary, sizeof(d->summary),
		 "the only thread waits in %s() on an empty pipe (fd %d) in %.380s, and the only "
		 "holder of the pipe's write end, by a look at every process of the host, is this "
		 "process itself, and it handles no signal but Ctrl-C: nothing can write to it or "
		 "close it, so the read never returns; close the write end before reading (after "
		 "fork(), in the parent or the child that does not write)",
		 io->syscall, b->fd, where);
	return true;
}
