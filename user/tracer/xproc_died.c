/* xproc_died: the `worker_died` diagnosis (see xproc.h): a thread of the program's own
 * code waits, untimed, while a child of its process died by a signal or a non-zero exit
 * (the kernel's record, xproc.c's table) during that wait or up to XP_DIED_BEFORE_S
 * before it, and nothing else works for it: no other thread runs, no live child runs. */
#include "xproc.h"
#include "xproc_int.h"

#include "procscan.h"
#include "tracer.h"
#include "waitgraph.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHILDREN_SCANNED 4096

static const char *sig_name(int sig)
{
	const char *n = sigabbrev_np(sig);
	static char buf[16];
	if (!n)
		return "an unknown signal";
	snprintf(buf, sizeof(buf), "SIG%s", n);
	return buf;
}

struct task_scan {
	pid_t pid;
	bool busy;
};

static int check_task(pid_t tid, void *arg)
{
	struct task_scan *s = arg;
	struct proc_stat st;
	if (proc_stat_read(s->pid, tid, &st) == 0 && (st.state == 'R' || st.state == 'D')) {
		s->busy = true;
		return 1;
	}
	return 0;
}

/* Whether every task of process pid sleeps (no R or D state, stat field 3 of
 * /proc/PID/task/TID/stat; at most 4,096 tasks looked at); true when it is gone. */
static bool all_tasks_idle(pid_t pid)
{
	char dir[64];
	struct task_scan s = { .pid = pid };
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	proc_for_each_pid(dir, 4096, check_task, &s);
	return !s.busy;
}

struct child_scan {
	pid_t parent;
	bool busy;
};

static int check_child(pid_t pid, void *arg)
{
	struct child_scan *c = arg;
	if (proc_parent(pid) != c->parent)
		return 0;
	if (!all_tasks_idle(pid)) {
		c->busy = true;
		return 1;
	}
	return 0;
}

/* Whether the program itself waits here: a frame of t outside the standard library (a
 * pool's own helper threads, all in multiprocessing, are not the wait to name). */
static bool program_waits(const struct py_thread *t)
{
	for (size_t i = 0; i < t->nframes; i++) {
		const char *f = t->frames[i].file;
		if (f && ((!strstr(f, "/lib/python") && strncmp(f, "<frozen ", 8) != 0) ||
			  strstr(f, "site-packages") || strstr(f, "dist-packages")))
			return true;
	}
	return false;
}

bool xp_worker_died(struct tracer *t, const struct rec_long_wait *lw, const struct diag_waits *w,
			struct diagnosis *d)
{
	const struct py_process *p = lw->py;
	struct xproc *x = t->xp;
	const struct py_thread *wt = xp_thread_of(p, lw->p.tid);
	if (!wt || wt->state != PY_STATE_LOCK_WAIT || wt->futex_timed || !w || !w->long_blocked ||
	    !w->long_blocked(w->arg, wt->tid, wt->futex_addr) || !program_waits(wt))
		return false;
	uint64_t waited_ns = (uint64_t)(lw->waited_s * 1e9);
	uint64_t since = lw->p.mono_ns > waited_ns ? lw->p.mono_ns - waited_ns : 0;
	uint64_t from = since > (uint64_t)(XP_DIED_BEFORE_S * 1e9) ? since - (uint64_t)(XP_DIED_BEFORE_S * 1e9) : 0;
	const struct xp_death *dd = NULL;
	for (unsigned i = 0; i < XP_MAX_DEATHS; i++) {
		const struct xp_death *c = &x->deaths[i];
		if (c->used && c->parent == p->pid && c->parent_start == p->start_time && c->ns >= from &&
		    c->ns <= lw->p.mono_ns && (!dd || c->ns > dd->ns))
			dd = c;
	}
	if (!dd)
		return false;
	/* it waits for a lock a live thread of its own holds (the wait-for graph proved the
	 * holder): that thread, not the dead worker, releases it */
	if (wt->wf && wt->wf->holder && xp_thread_of(p, wt->wf->holder->tid))
		return false;
	/* nothing else works for it: no other thread runs, no live child runs */
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *o = &p->threads[i];
		if (o != wt && o->state != PY_STATE_LOCK_WAIT && o->state != PY_STATE_SLEEP)
			return false;
	}
	struct child_scan cs = { .parent = p->pid };
	proc_for_each_pid("/proc", MAX_CHILDREN_SCANNED, check_child, &cs);
	if (cs.busy)
		return false;

	struct xp_facts *xf = &x->facts;
	memset(xf, 0, sizeof(*xf));
	xf->death = dd;
	xf->died_s_ago = lw->p.mono_ns > dd->ns ? (double)(lw->p.mono_ns - dd->ns) / 1e9 : 0;
	const char *cl = pending_find_cmdline(&t->pending, dd->child, dd->child_start);
	if (cl)
		snprintf(xf->child_cmdline, sizeof(xf->child_cmdline), "%s", cl);
	diagnose_blocked_where(wt, xf->waiting_call, sizeof(xf->waiting_call));
	d->code = DIAG_WORKER_DIED;
	d->waiter = wt->tid;
	d->xproc = xf;
	char a[160], how[160];
	xp_who(wt, a, sizeof(a));
	if (dd->exit_code & 0x7f)
		snprintf(how, sizeof(how), "killed by %s%s", sig_name(dd->exit_code & 0x7f),
			 dd->oom ? " (out of memory: the kernel's OOM killer chose it)" : "");
	else
		snprintf(how, sizeof(how), "exited with status %d%s", (dd->exit_code >> 8) & 0xff,
			 dd->oom ? " (out of memory: the kernel's OOM killer chose it)" : "");
	bool pool = false;
	for (size_t i = 0; i < wt->nframes; i++)
		pool |= wt->frames[i].file && strstr(wt->frames[i].file, "multiprocessing/pool.py") != NULL;
	char buf[2048];
	snprintf(buf, sizeof(buf),
		 "%s waits in %s and will never get the result of worker pid %d (%.16s), %s %.0f s ago; "
		 "nothing else works for it (no other thread and no live child of this process runs)%s",
		 a, xf->waiting_call, (int)dd->child, dd->comm, how, xf->died_s_ago,
		 pool ? ". multiprocessing.Pool loses the task of a worker that dies: use "
			"concurrent.futures.ProcessPoolExecutor (it raises BrokenProcessPool) or a timeout" :
			": handle the child's death (a timeout, or check its exit status)");
	xp_set_summary(d, buf);
	return true;
}
