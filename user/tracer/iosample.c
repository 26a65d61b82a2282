/* iosample: long I/O waits found by sampling /proc (see iosample.h).
 * Kernel facts: /proc/PID/task/TID/syscall shows the call a blocked task is in and its six
 * arguments ("running" otherwise; fs/proc/base.c proc_pid_syscall); /proc/PID/task/TID/
 * schedstat is "run_ns wait_ns timeslices" (CONFIG_SCHED_INFO; sum_exec_runtime grows only
 * while the task runs), so an unchanged run time between two samples proves the task did
 * not run in between, i.e. never left the call. */
#include "iosample.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "annotate.h"
#include "guard.h"
#include "hangtrack.h"
#include "iowait.h"
#include "snapshot.h"
#include "pipeself.h"
#include "procmem.h"
#include "procscan.h"
#include "tracer.h"
#include "waitgraph.h"

struct ios_proc {
	pid_t pid;
	uint64_t start;
	pid_t cursor;       /* the last tid sampled: the next pass goes on after it */
};

struct ios_thread {
	pid_t pid, tid;
	long nr;
	uint64_t args[3];
	uint64_t run_ns;
	uint64_t start_ns;  /* CLOCK_MONOTONIC estimate of when the call began */
	uint64_t seen;      /* pass that saw it last */
	bool reported;
	bool hang_reported; /* a pipe_own_writer hang was written for this wait */
	uint64_t hang_ns;   /* when */
	bool confirmed;     /* seen twice without running */
	uint64_t recheck_ns;/* a read of a pipe only its process writes, not proven a hang
			     * yet: looked at again then (0: never) */
	uint64_t recheck_gap_ns; /* the gap before that: 1, 2, 4, 8, 16 s, then no more */
	bool skip;          /* not a Python thread's I/O wait: not read again for this call */
};

struct iosample {
	struct ios_proc procs[IOS_MAX_PROCS];
	size_t nprocs, cursor;
	struct ios_thread th[IOS_MAX_THREADS];
	size_t nth;
	uint64_t next_due, pass;
	uint64_t passes, reads, cpu_ns;
	uint64_t reports, report_ns; /* long_waits written, and their CPU (within cpu_ns) */
	uint64_t idle_skipped;       /* waits past the threshold found idle: not reported */
};

struct iosample *ios_new(void)
{
	const char *off = getenv("PYHANG_NO_IO_SAMPLE");
	if (off && *off && strcmp(off, "0") != 0)
		return NULL;
	return calloc(1, sizeof(struct iosample));
}

void ios_free(struct iosample *s)
{
	free(s);
}

void ios_watch(struct iosample *s, pid_t pid, uint64_t proc_start)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid) {
			if (s->procs[i].start != proc_start) {
				s->procs[i].start = proc_start;
				s->procs[i].cursor = 0;
			}
			return;
		}
	if (s->nprocs < IOS_MAX_PROCS)
		s->procs[s->nprocs++] = (struct ios_proc){ pid, proc_start, 0 };
}

void ios_stats(const struct iosample *s, uint64_t *passes, uint64_t *reads, uint64_t *cpu_ns)
{
	*passes = s ? s->passes : 0;
	*reads = s ? s->reads : 0;
	*cpu_ns = s ? s->cpu_ns : 0;
}

void ios_report_stats(const struct iosample *s)
{
	const char *on = getenv("PYHANG_IO_SAMPLE_STATS");
	if (!s || !on || strcmp(on, "1") != 0)
		return;
	fprintf(stderr, "pyhang-trace: io sampler: passes=%llu reads=%llu cpu_ms=%.3f reports=%llu "
		"report_cpu_ms=%.3f idle=%llu\n", (unsigned long long)s->passes,
		(unsigned long long)s->reads, (double)s->cpu_ns / 1e6, (unsigned long long)s->reports,
		(double)s->report_ns / 1e6, (unsigned long long)s->idle_skipped);
}

static uint64_t cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill_ev_proc(struct ev_proc *p, pid_t pid, pid_t tid, uint64_t now)
{
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->tid = tid;
	p->mono_ns = now;
	proc_comm(pid, tid, p->comm, sizeof(p->comm));
	p->ns_pid = proc_ns_pid(pid);
	proc_cgroup(pid, p->cgroup, sizeof(p->cgroup));
}

static void end_wait(struct tracer *t, struct ios_thread *e, enum rec_ended_by why, uint64_t now)
{
	if (!e->reported)
		return;
	struct rec_wait_end r = { 0 };
	fill_ev_proc(&r.p, e->pid, e->tid, now);
	if (why != REC_END_RETURN)
		r.p.comm[0] = '\0', r.p.ns_pid = -1, r.p.cgroup[0] = '\0';
	r.waited_s = now > e->start_ns ? (double)(now - e->start_ns) / 1e9 : 0;
	r.before_start = e->start_ns < t->started_ns;
	r.io = true;
	r.ended_by = why;
	r.signal = r.exit_signal = r.exit_status = -1;
	t->n_wait_ends++;
	t->out.ops->wait_end(&t->out, &r);
	e->reported = false;
	if (e->hang_reported) {
		struct rec_hang_end h = { .code = diag_code_name(DIAG_PIPE_OWN_WRITER),
					  .ended_by = why == REC_END_RETURN ? REC_END_RETURN : REC_END_PROCESS_EXIT,
					  .duration_s = r.waited_s,
					  .reported_s_ago = now > e->hang_ns ? (double)(now - e->hang_ns) / 1e9 : 0 };
		h.p = r.p;
		t->n_hang_ends++;
		t->out.ops->hang_end(&t->out, &h);
		e->hang_reported = false;
	}
}

static void drop(struct iosample *s, size_t i)
{
	s->th[i] = s->th[--s->nth];
}

void ios_forget(struct tracer *t, pid_t pid, enum rec_ended_by why, uint64_t mono_ns)
{
	struct iosample *s = t->ios;
	if (!s)
		return;
	for (size_t i = 0; i < s->nth;) {
		if (s->th[i].pid == pid) {
			end_wait(t, &s->th[i], why, mono_ns);
			drop(s, i);
		} else {
			i++;
		}
	}
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid) {
			s->procs[i] = s->procs[--s->nprocs];
			if (s->cursor > s->nprocs)
				s->cursor = 0;
			break;
		}
}

static struct ios_thread *find(struct iosample *s, pid_t tid, size_t *idx)
{
	for (size_t i = 0; i < s->nth; i++)
		if (s->th[i].tid == tid) {
			*idx = i;
			return &s->th[i];
		}
	return NULL;
}

/* The thread's I/O wait in snapshot py, if it is (still) in that call. */
static const struct io_wait *io_of(const struct py_process *py, const struct ios_thread *e)
{
	for (size_t i = 0; i < py->nthreads; i++)
		if (py->threads[i].tid == e->tid && py->threads[i].wf && py->threads[i].wf->io &&
		    py->threads[i].wf->io->nr == e->nr)
			return py->threads[i].wf->io;
	return NULL;
}

/* The one I/O wait that is proven a hang by itself (pipeself.h): written when proven (r: the
 * long wait's record, its snapshot read just before). A read of a pipe whose write end,
 * among its relatives, only its own process holds, in a process of several threads, that
 * is not proven now (another thread's wait not yet known to be stuck: the futex events may
 * still be on their way) is looked at again 1, 2, 4, 8 and 16 s later while it lasts; such
 * a read (one thread or more) the host scans' rate limit kept from being looked at, every
 * PIPESELF_SCAN_EVERY_NS until it is. */
static bool pipe_hang(struct tracer *t, struct ios_thread *e, struct rec_long_wait *r,
		      const struct io_wait *io, uint64_t now)
{
	struct diagnosis d;
	struct ht_pid ow = { t->ht, r->p.pid };
	struct diag_waits w = { ht_pid_wait_is_open, &ow };
	int proven = pipeself_diagnose(r->p.pid, r->py, e->tid, io, &w, &d);
	if (proven != 1) {
		const struct fd_desc *b = &io->on;
		bool own = !strcmp(b->type, "pipe") && b->pipe_end == FD_END_READ &&
			   b->peers_total == 1 && b->npeers == 1 && b->peers[0].pid == r->p.pid;
		if (own && proven < 0) /* not looked at (the host scans' rate): soon, same step */
			e->recheck_ns = now + PIPESELF_SCAN_EVERY_NS;
		else if (!own || r->py->nthreads < 2)
			e->recheck_ns = 0;
		else if (!e->recheck_gap_ns)
			e->recheck_gap_ns = 1000000000ull, e->recheck_ns = now + e->recheck_gap_ns;
		else if (e->recheck_gap_ns < 16000000000ull)
			e->recheck_gap_ns *= 2, e->recheck_ns = now + e->recheck_gap_ns;
		else
			e->recheck_ns = 0;
		return false;
	}
	struct rec_hang h = { .diag = &d, .py = r->py };
	h.p = r->p;
	t->n_hangs++;
	t->out.ops->hang(&t->out, &h);
	annotate_hang(t, &h);
	guard_note_hang(t, r);
	e->hang_reported = true;
	e->hang_ns = now;
	e->recheck_ns = 0;
	return true;
}

/* The long wait record of I/O wait e, with a snapshot of its process (r->py NULL, the
 * reason in err: gone, or no Python any more). */
static void read_long_wait(struct tracer *t, const struct ios_proc *pr, const struct ios_thread *e,
			   uint64_t now, struct rec_long_wait *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->tracer = t;
	fill_ev_proc(&r->p, pr->pid, e->tid, now);
	r->waited_s = (double)(now - e->start_ns) / 1e9;
	r->before_start = e->start_ns < t->started_ns;
	r->io = true;
	r->py = snapshot(t, pr->pid, pr->start, err, errlen);
	r->py_error = r->py ? NULL : err;
}

/* A reported read not proven a hang, looked at again (pipe_hang): a fresh snapshot. */
static void recheck_one(struct tracer *t, const struct ios_proc *pr, struct ios_thread *e,
			uint64_t now)
{
	struct rec_long_wait r;
	char err[256] = "";
	e->recheck_ns = 0;
	read_long_wait(t, pr, e, now, &r, err, sizeof(err));
	if (!r.py)
		return;
	snapshot_graph(t);
	const struct io_wait *io = io_of(r.py, e);
	if (io && !proc_dying(pr->pid))
		pipe_hang(t, e, &r, io, now);
}

/* Report a confirmed long I/O wait: read the process, check the thread is (still) in that
 * I/O wait in the snapshot, and write the long_wait. */
static void report_one(struct tracer *t, const struct ios_proc *pr, struct ios_thread *e, uint64_t now)
{
	struct rec_long_wait r;
	char err[256] = "";
	read_long_wait(t, pr, e, now, &r, err, sizeof(err));
	if (!r.py) { /* gone, or no Python (any more): nothing proven about a Python thread */
		e->skip = true;
		return;
	}
	{
		snapshot_graph(t);
		const struct py_thread *th = NULL;
		for (size_t i = 0; i < r.py->nthreads; i++)
			if (r.py->threads[i].tid == e->tid)
				th = &r.py->threads[i];
		/* not a Python thread, or it left the call meanwhile: nothing to say */
		if (!th || !th->wf || !th->wf->io || th->wf->io->nr != e->nr) {
			e->skip = true;
			return;
		}
		/* an idle server or event loop waiting for new work (iowait_idle.c): no problem,
		 * not reported unless --report-idle; looked at again when the thread next runs */
		if (th->wf->io->idle && !t->report_idle) {
			e->skip = true;
			t->ios->idle_skipped++;
			return;
		}
	}
	e->reported = true;
	/* the one I/O wait that is proven a hang by itself (pipeself.h): the hang first, as
	 * for futex waits (hanggate.c), so that the long_wait is one line "part of the hang
	 * reported above" in text, and the CI guard (--hang-timeout) times it */
	const struct io_wait *io = io_of(r.py, e);
	if (io && pipe_hang(t, e, &r, io, now))
		r.covered = true;
	snapshot_write_long_wait(t, &r);
}

static void report(struct tracer *t, const struct ios_proc *pr, struct ios_thread *e, uint64_t now)
{
	uint64_t c0 = cpu_now();
	report_one(t, pr, e, now);
	t->ios->reports++;
	t->ios->report_ns += cpu_now() - c0;
}

struct tid_list {
	pid_t *v;
	size_t n, cap;
};

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return x < y ? -1 : x > y;
}

static int add_tid(pid_t tid, void *arg)
{
	struct tid_list *l = arg;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		pid_t *nv = realloc(l->v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = tid;
	return 0;
}

/* Sample up to budget threads of one process; returns the reads done, or -1 when the
 * process is gone (or its pid is another process's now). */
static int sample_process(struct tracer *t, struct ios_proc *pr, int budget, uint64_t now)
{
	struct iosample *s = t->ios;
	uint64_t st;
	if (pm_start_time(pr->pid, &st) != 0 || st != pr->start)
		return -1;
	char dir[48];
	struct tid_list l = { 0 };
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pr->pid);
	if (proc_for_each_pid(dir, 16384, add_tid, &l) < 0 && !l.n) {
		free(l.v);
		return -1;
	}
	qsort(l.v, l.n, sizeof(*l.v), cmp_tid);
	size_t first = 0;
	while (first < l.n && l.v[first] <= pr->cursor)
		first++;
	bool whole = l.n <= (size_t)budget;
	if (whole)
		first = 0;
	int reads = 0;
	for (size_t k = 0; k < l.n && reads < budget; k++) {
		pid_t tid = l.v[(first + k) % l.n];
		struct blocked_syscall sc;
		reads++;
		pr->cursor = tid;
		size_t idx;
		struct ios_thread *e = find(s, tid, &idx);
		if (proc_task_syscall(pr->pid, tid, &sc) != 0 || !io_is_wait_call(sc.nr, sc.args)) {
			if (e) {
				end_wait(t, e, REC_END_RETURN, now);
				drop(s, idx);
			}
			continue;
		}
		uint64_t run;
		if (proc_run_ns(pr->pid, tid, &run) != 0)
			continue;
		if (e && e->pid == pr->pid && e->nr == sc.nr && !memcmp(e->args, sc.args, sizeof(e->args)) &&
		    e->run_ns == run) {
			e->seen = s->pass;
			e->confirmed = true;
			if (!e->reported && !e->skip && now - e->start_ns >= t->threshold_ns)
				report(t, pr, e, now);
			else if (e->reported && !e->hang_reported && e->recheck_ns && now >= e->recheck_ns)
				recheck_one(t, pr, e, now);
			continue;
		}
		if (e) { /* another call, or it ran: a new wait */
			end_wait(t, e, REC_END_RETURN, now);
			drop(s, idx);
		}
		if (s->nth == IOS_MAX_THREADS)
			continue;
		e = &s->th[s->nth++];
		memset(e, 0, sizeof(*e));
		e->pid = pr->pid;
		e->tid = tid;
		e->nr = sc.nr;
		memcpy(e->args, sc.args, sizeof(e->args));
		e->run_ns = run;
		e->seen = s->pass;
		uint64_t off;
		e->start_ns = io_blocked_for_ns(pr->pid, tid, &off) == 0 && off < now ? now - off : now;
	}
	if (whole) /* every thread looked at: the tracked ones not seen have exited */
		for (size_t i = 0; i < s->nth;) {
			if (s->th[i].pid == pr->pid && s->th[i].seen != s->pass) {
				end_wait(t, &s->th[i], REC_END_THREAD_EXIT, now);
				drop(s, i);
			} else {
				i++;
			}
		}
	if (whole)
		pr->cursor = 0;
	free(l.v);
	return reads;
}

int ios_tick(struct tracer *t)
{
	struct iosample *s = t->ios;
	if (!s)
		return -1;
	uint64_t now = mono_now_ns();
	if (now < s->next_due)
		return (int)((s->next_due - now) / 1000000ull) + 1;
	uint64_t c0 = cpu_now();
	s->pass++;
	int budget = (int)(IOS_READS_PER_S * tracer_sample_period_ns(t) / 1000000000ull);
	if (budget < IOS_MIN_PASS_READS)
		budget = IOS_MIN_PASS_READS;
	int left = budget, per_proc = budget / 4 > 16 ? budget / 4 : 16;
	size_t visited = 0, n = s->nprocs;
	while (visited < n && left > 0 && s->nprocs) {
		if (s->cursor >= s->nprocs)
			s->cursor = 0;
		struct ios_proc *pr = &s->procs[s->cursor];
		int r = sample_process(t, pr, left < per_proc ? left : per_proc, now);
		visited++;
		if (r < 0) {
			ios_forget(t, pr->pid, REC_END_PROCESS_EXIT, now); /* cursor now names the next */
			continue;
		}
		left -= r > 0 ? r : 1;
		s->cursor++;
	}
	s->passes++;
	s->reads += (uint64_t)(budget - (left > 0 ? left : 0));
	s->cpu_ns += cpu_now() - c0;
	s->next_due = now + tracer_sample_period_ns(t);
	return (int)(tracer_sample_period_ns(t) / 1000000ull);
}
