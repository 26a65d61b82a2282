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
#define PS_SCAN_EVERY_NS PIPESELF_SCAN_EVERY_NS /* and one more per 5 s */
#define PS_SCAN_FDS 65536                       /* fd entries one scan reads at most */

/* Threads of pid (/proc/PID/task entries), counting up to max. */
static int thread_count(pid_t pid, int max)
{
	char path[48];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < max)
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

/* The threads of p other than tid, when each is proven stuck (diagnose_proven_stuck): its
 * count; -1 when one is not (or the thread list is not whole). */
static int others_stuck(const struct py_process *p, pid_t tid, const struct diag_waits *w)
{
	int others = 0;
	bool reader = false;
	if (p->threads_error || p->os_threads != p->nthreads)
		return -1;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		if (t->tid == tid)
			reader = true;
		else if (diagnose_proven_stuck(t, w))
			others++;
		else
			return -1;
	}
	return reader ? others : -1;
}

int pipeself_diagnose(pid_t pid, const struct py_process *p, pid_t tid, const struct io_wait *io,
		       const struct diag_waits *w, struct diagnosis *d)
{
	static uint64_t last_scan;
	static unsigned tokens;
	const struct fd_desc *b = &io->on;
	if (!io->fd_call || !io->syscall || !is_read_call(io->syscall) || strcmp(b->type, "pipe") ||
	    b->pipe_end != FD_END_READ || !b->peers_searched || b->peers_total != 1 ||
	    b->npeers != 1 || b->peers[0].pid != pid)
		return 0; /* among its relatives, not only itself holds the write end */
	if (!p || proc_dying(pid))
		return 0;
	int others = p->nthreads == 1 && p->threads[0].tid == tid ? 0 : others_stuck(p, tid, w);
	/* and no thread has come since the read (one more: counted up to nthreads + 1) */
	if (others < 0 || thread_count(pid, (int)p->nthreads + 1) != (int)p->nthreads)
		return 0;
	/* A handler of a signal could write to the pipe: a Python handler (os.write to it), or
	 * the C handler's write to signal.set_wakeup_fd()'s fd (the self-pipe trick: a read
	 * that waits for a signal, by design). Proven only when no signal is caught but
	 * SIGINT (CPython's default handler raises KeyboardInterrupt: the sentence says so),
	 * and glibc's own two: SIGCANCEL (32) and SIGSETXID (33), which a threaded process has
	 * (NPTL). Their handlers return at once unless the signal came from the process itself
	 * (si_pid == getpid(), si_code SI_TKILL: sigcancel_handler in nptl/pthread_cancel.c,
	 * __nptl_setxid_sighandler in nptl/nptl_setxid.c since glibc 2.34, both in
	 * nptl/nptl-init.c before), whose threads are
	 * all in the read or stuck; and glibc's sigaction() refuses both to programs (EINVAL). */
	uint64_t caught;
	const uint64_t allowed = (1ull << (SIGINT - 1)) | (1ull << (32 - 1)) | (1ull << (33 - 1));
	if (proc_signal_mask(pid, "SigCgt", &caught) != 0 || (caught & ~allowed))
		return 0;
	uint64_t now = mono_ns();
	if (!last_scan)
		tokens = PS_SCANS;
	else if (now - last_scan >= PS_SCAN_EVERY_NS) {
		uint64_t add = (now - last_scan) / PS_SCAN_EVERY_NS;
		tokens = tokens + add > PS_SCANS ? PS_SCANS : tokens + (unsigned)add;
	}
	if (!tokens)
		return -1; /* not looked at now: the host scans are rate-limited */
	if (!last_scan || now - last_scan >= PS_SCAN_EVERY_NS)
		last_scan = now;
	tokens--;
	struct pipe_facts f;
	size_t budget = PS_SCAN_FDS;
	memset(&f, 0, sizeof(f));
	if (pipe_holders_budget(b->inode, &pid, 1, false, &budget, &f) != 0 || !f.complete ||
	    f.nwriters != 1)
		return 0;
	bool mine = false;
	for (size_t i = 0; i < f.nholders; i++)
		if (f.holders[i].write_end)
			mine = f.holders[i].pid == pid;
	if (!mine || pipe_fill(pid, b->fd, b->inode, &f) != 0 || f.queued != 0)
		return 0;
	const struct py_thread *t = NULL;
	for (size_t i = 0; i < p->nthreads && !t; i++)
		if (p->threads[i].tid == tid)
			t = &p->threads[i];
	if (!t)
		return 0;
	char where[400], who[64] = "the only thread";
	diagnose_blocked_where(t, where, sizeof(where));
	memset(d, 0, sizeof(*d));
	d->code = DIAG_PIPE_OWN_WRITER;
	d->waiter = tid;
	d->culprits[d->nculprits++] = tid;
	for (size_t i = 0; i < p->nthreads && d->nculprits < DIAG_MAX_CULPRITS; i++)
		if (p->threads[i].tid != tid)
			d->culprits[d->nculprits++] = p->threads[i].tid;
	if (others)
		snprintf(who, sizeof(who), "thread '%.40s'", t->name && t->name[0] ? t->name : "?");
	bool mp = false; /* a multiprocessing Queue or Connection reads */
	for (size_t i = 0; i < t->nframes && !mp; i++)
		mp = t->frames[i].file && strstr(t->frames[i].file, "multiprocessing/");
	snprintf(d->summary, sizeof(d->summary),
		 "%s waits in %s() on an empty pipe (fd %d) in %.200s, and the only holder of the "
		 "pipe's write end, by a look at every process of the host, is this process itself%s, "
		 "and it handles no signal but Ctrl-C: nothing can write to it or close it, so the "
		 "read never returns; %s",
		 who, io->syscall, b->fd, where,
		 others ? ", whose other threads all wait, untimed, for locks only its own threads "
			  "could release" : "",
		 mp ? "multiprocessing keeps the write end of a Queue (or Pipe) open in the reading "
		      "process too, so a writer process that died (killed, out of memory) leaves "
		      "the read waiting for good: get(timeout=...) and check the worker's exitcode, "
		      "or use concurrent.futures.ProcessPoolExecutor (it raises BrokenProcessPool)" :
		      "close the write end before reading (after fork(), in the parent or the child "
		      "that does not write)");
	return 1;
}
