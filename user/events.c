/* events: turns kernel records (bpf/pyhang.h) into output records. Owns: attaching Python
 * stacks to events (captured in the kernel for instantaneous events, read from userspace
 * for long waits, whose frames are stable while the thread is blocked), remembering reaps
 * and children's command lines for later reports, and keeping the watch set and the BPF
 * stack walker's process descriptions current after exec. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "annotate.h"
#include "diagnose.h"
#include "guard.h"
#include "fairqueue.h"
#include "hangtrack.h"
#include "procmem.h"
#include "procscan.h"
#include "recheck.h"
#include "pyreader.h"
#include "stackline.h"
#include "pystack.h"
#include "ratelimit.h"
#include "taskdone.h"
#include "tracer.h"
#include "waitgraph.h"
#include "xproc.h"

#define DESCRIBE_ATTEMPTS 40 /* 2 ms doubling to 250 ms: about 8 s in all */

/* Whether pid is (still) the process whose identity is proc_start (see PH_NS_PER_TICK):
 * not exited, and its pid not taken by a new process. proc_start 0: not known, assumed. */
static bool same_process(pid_t pid, uint64_t proc_start)
{
	uint64_t now;
	return !proc_start || (pm_start_time(pid, &now) == 0 && now == proc_start);
}

/* Fills p from the event and from /proc. What /proc says is kept only if pid is still the
 * event's process after reading it (a pid cannot come back to an old process, so it was
 * that process throughout); else the fields /proc gave are cleared, never another
 * process's. Returns whether the process is still there. */
static bool fill_proc(struct ev_proc *p, const struct ph_event *e)
{
	memset(p, 0, sizeof(*p));
	p->pid = (pid_t)e->pid;
	p->tid = (pid_t)e->tid;
	p->mono_ns = e->ts_ns;
	memcpy(p->comm, e->comm, sizeof(p->comm));
	p->comm[sizeof(p->comm) - 1] = '\0';
	bool comm_from_proc = !p->comm[0];
	if (comm_from_proc) /* the scanner runs outside the thread: ask /proc */
		proc_comm(p->pid, p->tid, p->comm, sizeof(p->comm));
	p->ns_pid = proc_ns_pid(p->pid); /* containers: the pid they know it by */
	proc_cgroup(p->pid, p->cgroup, sizeof(p->cgroup));
	if (same_process(p->pid, e->proc_start))
		return true;
	if (comm_from_proc)
		p->comm[0] = '\0';
	p->ns_pid = -1;
	p->cgroup[0] = '\0';
	return false;
}

static double seconds_between(uint64_t from_ns, uint64_t to_ns)
{
	return to_ns > from_ns ? (double)(to_ns - from_ns) / 1e9 : 0.0;
}

/* FNV-1a over what identifies a hang, so the same one is reported once. */
static uint64_t hang_fingerprint(pid_t pid, const struct diagnosis *d)
{
	uint64_t h = 1469598103934665603ull;
	const uint64_t prime = 1099511628211ull;
	h = (h ^ (uint64_t)pid) * prime;
	for (const char *c = d->code; *c; c++)
		h = (h ^ (unsigned char)*c) * prime;
	/* the same cycle or shutdown is seen from each of its blocked threads: one finding */
	if (strcmp(d->code, "gil_wait") == 0 || strcmp(d->code, "long_wait") == 0)
		h = (h ^ (uint64_t)d->waiter) * prime;
	for (size_t i = 0; i < d->nculprits; i++)
		h = (h ^ (uint64_t)d->culprits[i]) * prime;
	return h;
}

static bool hang_seen_before(struct tracer *t, uint64_t fp)
{
	for (unsigned i = 0; i < sizeof(t->hang_seen) / sizeof(t->hang_seen[0]); i++)
		if (t->hang_seen[i] == fp)
			return true;
	t->hang_seen[t->hang_seen_next++ % (sizeof(t->hang_seen) / sizeof(t->hang_seen[0]))] = fp;
	return false;
}

static bool long_blocked(void *arg, pid_t tid, uint64_t uaddr)
{
	const struct rec_long_wait *lw = arg;
	struct tracer *t = (struct tracer *)lw->tracer;
	return ht_wait_is_open(t->ht, lw->p.pid, tid, uaddr, NULL);
}

/* Remember a reported hang, for its hang_end. */
static void track_hang(struct tracer *t, const struct rec_long_wait *lw, const struct diagnosis *d,
		       uint64_t fp)
{
	struct ht_hang g = { .pid = lw->p.pid, .reported_ns = lw->p.mono_ns, .fingerprint = fp };
	snprintf(g.code, sizeof(g.code), "%s", d->code);
	g.since_ns = lw->p.mono_ns;
	if (d->waiter > 0)
		g.tids[g.ntids++] = d->waiter;
	for (size_t i = 0; i < d->nculprits && g.ntids < HT_MAX_HANG_TIDS; i++)
		if (d->culprits[i] != d->waiter)
			g.tids[g.ntids++] = d->culprits[i];
	for (size_t i = 0; i < g.ntids; i++) {
		const struct py_thread *th = NULL;
		for (size_t k = 0; k < lw->py->nthreads; k++)
			if (lw->py->threads[k].tid == g.tids[i])
				th = &lw->py->threads[k];
		uint64_t start;
		if (th && ht_wait_is_open(t->ht, g.pid, th->tid, th->futex_addr, &start) &&
		    start < g.since_ns)
			g.since_ns = start;
	}
	ht_hang_add(t->ht, &g);
}

/* A finding, only when proven: shutdown waiting for threads, every thread blocked for
 * good, a GIL held too long. Anything else stays a long_wait. */
static bool maybe_report_hang(struct tracer *t, const struct rec_long_wait *lw)
{
	struct diagnosis d;
	struct diag_waits w = { long_blocked, (void *)lw };
	const struct waitgraph *g = t->graph && t->graph->p == lw->py ? t->graph : NULL;
	if (!xproc_diagnose(t, lw, g, &w, &d) && !(g && waitgraph_diagnose(g, lw->p.tid, &w, &d)) &&
	    !diagnose_process(lw->py, lw->p.tid, lw->waited_s, lw->gil, &w, &d))
		return false;
	if (strcmp(d.code, "all_threads_blocked") == 0)
		taskdone_explain(t->reader, lw->py, &d);
	guard_note_hang(t, lw); /* before the de-duplication: a new wait restarts its clock */
	uint64_t fp = hang_fingerprint(lw->p.pid, &d);
	if (hang_seen_before(t, fp))
		return true;
	struct rec_hang r = { .p = lw->p, .diag = &d, .py = lw->py };
	t->n_hangs++;
	t->out.ops->hang(&t->out, &r);
	annotate_hang(t, &r);
	track_hang(t, lw, &d, fp);
	return true;
}

/* The hang that thread tid (0: the whole process) belonged to is over: say so once. The
 * same hang (pid, code, threads) coming back is not reported again (no flapping alerts). */
static void end_hang(struct tracer *t, pid_t pid, pid_t tid, uint64_t now_ns, const char *why,
		     const struct ev_proc *p)
{
	struct ht_hang g;
	while (ht_hang_take(t->ht, pid, tid, &g)) {
		struct rec_hang_end r = { .p = *p, .code = g.code, .ended_by = why,
					  .duration_s = seconds_between(g.since_ns, now_ns),
					  .reported_s_ago = seconds_between(g.reported_ns, now_ns) };
		r.p.tid = tid ? tid : pid;
		t->n_hang_ends++;
		t->out.ops->hang_end(&t->out, &r);
	}
}

#define SNAPSHOT_REUSE_NS 500000000ull

static void drop_snapshot(struct tracer *t)
{
	if (t->graph) {
		waitgraph_free(t->graph);
		free(t->graph);
		t->graph = NULL;
	}
	if (t->snap_valid)
		py_process_free(&t->snap);
	t->snap_valid = false;
}

/* The wait-for graph of the current snapshot, built once per snapshot (NULL: none). */
static struct waitgraph *snapshot_graph(struct tracer *t)
{
	if (!t->snap_valid)
		return NULL;
	if (!t->graph) {
		t->graph = calloc(1, sizeof(*t->graph));
		if (t->graph && waitgraph_build(t->graph, t->reader, &t->snap) != 0) {
			free(t->graph);
			t->graph = NULL;
		}
		if (t->graph)
			t->graph_cost_ns += t->graph->cost_ns;
	}
	return t->graph;
}

static bool any_frames(const struct py_process *p)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].nframes > 0)
			return true;
	return false;
}

/* Every thread of process (pid, proc_start), read at most once per SNAPSHOT_REUSE_NS. NULL
 * with err on failure, or when pid now belongs to another process (proc_start 0: any). */
static const struct py_process *snapshot(struct tracer *t, pid_t pid, uint64_t proc_start,
					 char *err, size_t errlen)
{
	uint64_t now = mono_now_ns();
	if (t->snap_valid && t->snap.pid == pid && now - t->snap_ns < SNAPSHOT_REUSE_NS &&
	    (!proc_start || t->snap.start_time == proc_start))
		return &t->snap;
	drop_snapshot(t);
	if (!same_process(pid, proc_start)) {
		snprintf(err, errlen, "process %d exited", (int)pid);
		return NULL;
	}
	if (py_read_process(t->reader, pid, &t->snap, err, errlen) != 0)
		return NULL;
	if (proc_start && t->snap.start_time != proc_start) {
		/* it exited and its pid was reused between the look above and the read */
		py_process_free(&t->snap);
		snprintf(err, errlen, "process %d exited", (int)pid);
		return NULL;
	}
	if (!any_frames(&t->snap)) {
		/* what the reader cached may come from before the interpreter was set up */
		py_process_free(&t->snap);
		py_forget_process(t->reader, pid);
		if (py_read_process(t->reader, pid, &t->snap, err, errlen) != 0)
			return NULL;
	}
	t->snap_valid = true;
	t->snap_ns = now;
	return &t->snap;
}

void tracer_events_cleanup(struct tracer *t)
{
	drop_snapshot(t);
	ht_free(t->ht);
	t->ht = NULL;
	xproc_free(t->xp);
	t->xp = NULL;
}

static void on_long_wait(struct tracer *t, const struct ph_event *e)
{
	struct rec_long_wait r = { 0 };
	char err[256] = "";
	if (!t->ht)
		t->ht = ht_new();
	r.tracer = t;
	fill_proc(&r.p, e);
	if (!(e->wait.flags & PH_WF_GIL))
		ht_wait_open(t->ht, r.p.pid, r.p.tid, e->wait.uaddr, e->wait.start_ns);
	r.waited_s = seconds_between(e->wait.start_ns, e->ts_ns);
	r.before_start = e->wait.flags & PH_WF_BEFORE_START;
	r.futex_addr = e->wait.uaddr;
	r.futex_op = e->wait.op;
	r.gil = e->wait.flags & PH_WF_GIL;
	/* The waiter is blocked, so its frames hold still: a read from userspace is exact. */
	r.py = snapshot(t, r.p.pid, e->proc_start, err, sizeof(err));
	r.py_error = r.py ? NULL : err;
	if (r.py)
		snapshot_graph(t);
	r.covered = ht_hang_covers(t->ht, r.p.pid, r.p.tid);
	t->n_long_waits++;
	t->out.ops->long_wait(&t->out, &r);
	/* not proven now: looked at again a few times while it lasts (recheck.h) */
	if (r.py && !maybe_report_hang(t, &r) && !r.gil && !r.covered)
		recheck_add(&t->rc, r.p.pid, r.p.tid, e->proc_start, e->wait.uaddr, e->wait.start_ns,
			    mono_now_ns());
}

/* The second looks of recheck.h: a fresh snapshot of the process, and the diagnoses again
 * (no new long_wait event). Milliseconds until the next is due, -1 when none. */
int tracer_recheck_waits(struct tracer *t)
{
	struct rc_entry c;
	uint64_t now = mono_now_ns();
	int done = 0;
	while (t->ht && done++ < 8 && recheck_take_due(&t->rc, now, &c)) {
		if (!ht_wait_is_open(t->ht, c.pid, c.tid, c.uaddr, NULL) || ht_hang_covers(t->ht, c.pid, c.tid)) {
			recheck_forget(&t->rc, c.pid, c.tid);
			continue;
		}
		struct ph_event e = { .type = PH_EV_LONG_WAIT, .pid = (unsigned)c.pid, .tid = (unsigned)c.tid,
				      .ts_ns = now, .proc_start = c.proc_start };
		struct rec_long_wait r = { 0 };
		char err[256] = "";
		r.tracer = t;
		if (!fill_proc(&r.p, &e)) {
			recheck_forget(&t->rc, c.pid, 0);
			continue;
		}
		r.waited_s = seconds_between(c.start_ns, now);
		r.futex_addr = c.uaddr;
		drop_snapshot(t); /* the facts may have changed since the last look */
		r.py = snapshot(t, c.pid, c.proc_start, err, sizeof(err));
		if (!r.py)
			continue;
		snapshot_graph(t);
		if (maybe_report_hang(t, &r))
			recheck_forget(&t->rc, c.pid, c.tid);
	}
	return recheck_due_in_ms(&t->rc, mono_now_ns());
}

static void on_wait_end(struct tracer *t, const struct ph_event *e)
{
	struct rec_wait_end r = { 0 };
	fill_proc(&r.p, e);
	r.waited_s = seconds_between(e->wait.start_ns, e->ts_ns);
	r.before_start = e->wait.flags & PH_WF_BEFORE_START;
	r.futex_addr = e->wait.uaddr;
	r.signal = r.exit_signal = r.exit_status = -1;
	switch (e->wait.end_reason) {
	case PH_END_THREAD_EXIT:
		r.ended_by = "thread_exit";
		break;
	case PH_END_SIGNAL:
		r.ended_by = "signal";
		r.signal = e->wait.end_code ? (int)e->wait.end_code : -1;
		break;
	case PH_END_PROCESS_EXIT:
		/* kernel exit code: low 7 bits the killing signal, else status in bits 8-15 */
		r.ended_by = "process_exit";
		if (e->wait.end_code & 0x7f)
			r.exit_signal = (int)(e->wait.end_code & 0x7f);
		else
			r.exit_status = (int)((e->wait.end_code >> 8) & 0xff);
		break;
	default:
		r.ended_by = "return";
	}
	t->n_wait_ends++;
	t->out.ops->wait_end(&t->out, &r);
	guard_note_wait_end(t, r.p.pid, r.p.tid);
	recheck_forget(&t->rc, r.p.pid, r.p.tid);
	ht_wait_close(t->ht, r.p.tid);
	end_hang(t, r.p.pid, r.p.tid, e->ts_ns, r.ended_by, &r.p);
}

static const char *sigchld_action_name(unsigned int cls)
{
	switch (cls) {
	case PH_SIGCHLD_IGN:
		return "SIG_IGN";
	case PH_SIGCHLD_NOCLDWAIT:
		return "SA_NOCLDWAIT";
	default:
		return "restored";
	}
}

/* The stack the kernel captured for this event; *status tells why there is none. */
static bool take_stack(struct tracer *t, const struct ph_event *e, struct captured_stack *cs,
		       const char **status)
{
	if (!pending_take_stack(&t->pending, (pid_t)e->pid, e->proc_start, (pid_t)e->tid, e->type,
				e->stack_ts, cs)) {
		*status = "not_captured";
		return false;
	}
	*status = pystack_status_str(cs->status);
	return cs->status == PH_STACK_OK;
}

static void on_sigchld(struct tracer *t, const struct ph_event *e)
{
	struct rec_sigchld r = { 0 };
	struct captured_stack cs = { 0 };
	bool news = disp_on_sigaction(t, e);
	bool have = take_stack(t, e, &cs, &r.stack_status);
	if (!news) { /* one event per change: this one was told already */
		if (have || cs.used)
			pending_release(&cs);
		return;
	}
	fill_proc(&r.p, e);
	r.action = sigchld_action_name(e->sigchld.new_class);
	r.stack = have ? &cs.thread : NULL;
	t->n_sigchld++;
	t->out.ops->sigchld(&t->out, &r);
	if (e->sigchld.new_class == PH_SIGCHLD_DEFAULT) {
		pending_forget_ignore(&t->pending, r.p.pid);
		if (have || cs.used)
			pending_release(&cs);
	} else {
		if (!have) {
			pending_release(&cs);
			cs.ts_ns = e->ts_ns;
			cs.status = PH_STACK_READ_ERROR; /* no stack, but known to be after start */
		}
		pending_put_ignore(&t->pending, r.p.pid, e->proc_start, &cs); /* keeps the frames */
	}
}

/* Kernel exit_code encoding (wait(2) status): low 7 bits the terminating signal, 0x80 core
 * dumped, bits 8-15 the exit status when the signal bits are 0. */
static void decode_exit_code(int code, struct rec_child_lost *r)
{
	r->exit_status = -1;
	r->signal = -1;
	if ((code & 0x7f) == 0) {
		r->exit_status = (code >> 8) & 0xff;
	} else {
		r->signal = code & 0x7f;
		r->core_dumped = (code & 0x80) != 0;
	}
}

/* Whether the snapshot has thread tid with its Python name. */
static bool snapshot_names_thread(const struct py_process *py, pid_t tid)
{
	for (size_t i = 0; py && i < py->nthreads; i++)
		if (py->threads[i].tid == tid)
			return py->threads[i].name != NULL;
	return false;
}

/* Remember the names of pid's threads; tid must be among them, named, so a shared snapshot
 * taken before that thread started, or before it entered threading._active (a new thread
 * runs for a moment before Thread._bootstrap_inner registers it), is replaced by a fresh
 * read. */
static void learn_thread_names(struct tracer *t, pid_t pid, uint64_t proc_start, pid_t tid)
{
	char err[128];
	const struct py_process *py = snapshot(t, pid, proc_start, err, sizeof(err));
	if (py && !snapshot_names_thread(py, tid)) {
		drop_snapshot(t);
		py = snapshot(t, pid, proc_start, err, sizeof(err));
	}
	for (size_t i = 0; py && i < py->nthreads; i++)
		if (py->threads[i].tid > 0 && py->threads[i].name)
			pending_put_name(&t->pending, pid, py->start_time, py->threads[i].tid,
					 py->threads[i].name);
	/* Looked, and no name (a program that never imported threading, or the thread is
	 * gone): remembered as "" so that its next reaps do not read the process again (a
	 * subprocess loop reaping with waitpid(-1) would cost a whole read per child). */
	if (!pending_find_name(&t->pending, pid, proc_start, tid))
		pending_put_name(&t->pending, pid, proc_start, tid, "");
}

/* The Python name of a thread: learnt when it reaped a child (it may be gone by now). */
static const char *thread_name(struct tracer *t, pid_t pid, uint64_t proc_start, pid_t tid)
{
	const char *name = pending_find_name(&t->pending, pid, proc_start, tid);
	if (!name || !name[0]) { /* a lost status is rare: worth one more look */
		learn_thread_names(t, pid, proc_start, tid);
		name = pending_find_name(&t->pending, pid, proc_start, tid);
	}
	return name && name[0] ? name : NULL; /* "": looked for, unnamed */
}

static void on_child_lost(struct tracer *t, const struct ph_event *e)
{
	struct rec_child_lost r = { 0 };
	struct captured_stack cs = { 0 };
	fill_proc(&r.p, e);
	r.cause = e->lost.cause == PH_LOST_REAPED_ELSEWHERE ? "reaped_elsewhere" : "sigchld_ignored";
	r.syscall = e->lost.syscall ? "waitid" : "wait4";
	r.child_pid = (pid_t)e->lost.child_pid;
	r.child_ns_pid = -1;
	if (e->lost.child_host_pid && e->lost.child_host_pid != e->lost.child_pid) {
		r.child_ns_pid = r.child_pid; /* inside a container: report the host pid */
		r.child_pid = (pid_t)e->lost.child_host_pid;
	}
	r.child_known = e->lost.child_known;
	r.exit_status = -1;
	r.signal = -1;
	if (r.child_known) {
		memcpy(r.child_comm, e->lost.child_comm, sizeof(r.child_comm));
		r.child_comm[sizeof(r.child_comm) - 1] = '\0';
		decode_exit_code(e->lost.exit_code, &r);
	}
	r.child_cmdline = pending_find_cmdline(&t->pending, r.child_pid,
					       r.child_known ? e->lost.child_start : 0);
	bool have = take_stack(t, e, &cs, &r.stack_status);
	r.stack = have ? &cs.thread : NULL;
	if (e->lost.cause == PH_LOST_REAPED_ELSEWHERE) {
		r.reaper_tid = (pid_t)e->lost.reaper_tid;
		r.reaped_s_before = seconds_between(e->lost.reap_ns, e->ts_ns);
		const struct reap_record *rr = pending_find_reap(&t->pending, r.child_pid);
		if (rr && rr->stack.tid == r.reaper_tid && rr->stack.status == PH_STACK_OK)
			r.reaper_stack = &rr->stack.thread;
		r.reaper_name = thread_name(t, r.p.pid, e->proc_start, r.reaper_tid);
	}
	const struct ignore_record *ig = pending_find_ignore(&t->pending, r.p.pid, e->proc_start);
	if (ig && ig->stack.status == PH_STACK_OK && ig->stack.used) {
		r.ignore_stack = &ig->stack.thread;
		r.ignore_mono_ns = ig->stack.ts_ns;
	}
	/* the origin of an ignore without a stack: one table knows it (sigchld_state.c) */
	const struct disp_record *dr = r.ignore_stack ? NULL : disp_find(t, r.p.pid, e->proc_start);
	struct child_lost_facts facts = {
		.reaped_elsewhere = e->lost.cause == PH_LOST_REAPED_ELSEWHERE,
		.child_comm = r.child_known ? r.child_comm : NULL,
		.child_pid = r.child_pid,
		.exit_status = r.exit_status,
		.signal = r.signal,
		.waiter_stack = r.stack,
		.ignore_stack = r.ignore_stack,
		.ignored_before_start = dr && dr->origin == DISP_BEFORE_START,
		.ignored_inherited = dr && dr->origin == DISP_INHERITED,
		.ignored_unwatched = dr && dr->origin == DISP_UNWATCHED,
		.inherited_from_comm = dr && dr->origin == DISP_INHERITED && dr->from_comm[0] ? dr->from_comm : NULL,
		.inherited_from_pid = dr ? dr->from_pid : 0,
		.reaper_stack = r.reaper_stack,
		.reaper_name = r.reaper_name,
		.reaper_tid = r.reaper_tid,
	};
	char summary[1024];
	diagnose_child_lost(&facts, summary, sizeof(summary));
	r.summary = summary;
	t->n_child_lost++;
	t->out.ops->child_lost(&t->out, &r);
	annotate_child_lost(t, &r);
	if (have || cs.used)
		pending_release(&cs);
}

static void on_stack(struct tracer *t, const struct ph_stack_event *se)
{
	struct captured_stack cs = { 0 };
	cs.pid = (pid_t)se->pid;
	cs.tid = (pid_t)se->tid;
	cs.for_type = se->for_type;
	cs.status = se->status;
	cs.ts_ns = se->ts_ns;
	cs.proc_start = se->proc_start;
	const struct py_layout *layout = pending_find_layout(&t->pending, cs.pid, cs.proc_start);
	if (se->status == PH_STACK_OK && pystack_decode(se, layout, &cs.thread) != 0)
		cs.status = PH_STACK_READ_ERROR;
	else if (se->status == PH_STACK_OK)
		stackline_complete(t->reader, se, layout, &cs.thread);
	cs.used = true;
	if (se->for_type == PH_EV_REAP) {
		/* The reaper may be gone when a later wait finds the child missing: learn its
		 * name now, once per thread. */
		if (!pending_find_name(&t->pending, cs.pid, cs.proc_start, cs.tid))
			learn_thread_names(t, cs.pid, cs.proc_start, cs.tid);
		pending_put_reap(&t->pending, (pid_t)se->child_pid, &cs);
	} else {
		pending_put_stack(&t->pending, &cs);
	}
}

static void schedule_check(struct tracer *t, pid_t pid, uint64_t proc_start,
			   enum check_kind kind, int attempt, uint64_t delay_ns)
{
	if (!fairq_admit(t, t->exec_uid_plus1)) { /* full, and this user has its share */
		t->dropped_checks++;
		return;
	}
	t->checks[t->nchecks++] = (struct exec_check){ pid, proc_start, mono_now_ns() + delay_ns,
						       attempt, kind, t->exec_uid_plus1 };
}

int tracer_describe(struct tracer *t, pid_t pid, uint64_t proc_start)
{
	struct py_layout layout;
	char err[256];
	uint64_t start;
	if (pystack_describe(t->ld, t->reader, pid, &layout, err, sizeof(err)) != 0)
		return -1;
	/* The process must still be there, with the same program, now that the kernel has its
	 * description: had it exited or exec'd in between, the kernel's hook has come and gone,
	 * and the entry would describe it to whatever runs under the pid next. */
	if (!py_reader_still_same(t->reader, pid, &start)) {
		loader_forget_pyproc(t->ld, pid);
		py_forget_process(t->reader, pid);
		return -1;
	}
	/* A check for an earlier process of this pid: what was installed describes the live
	 * one correctly (it has a check of its own, which records its layout). */
	if (proc_start && start != proc_start)
		return -1;
	pending_put_layout(&t->pending, pid, start, &layout);
	return 0;
}

void tracer_schedule_describe(struct tracer *t, pid_t pid, uint64_t proc_start)
{
	schedule_check(t, pid, proc_start, CHECK_DESCRIBE, 0, 2000000ull);
}

static void on_exec(struct tracer *t, const struct ph_event *e)
{
	pid_t pid = (pid_t)e->pid;
	if (t->snap_valid && t->snap.pid == pid)
		drop_snapshot(t);
	py_forget_process(t->reader, pid);
	t->exec_uid_plus1 = e->exec.uid + 1; /* its checks count against its user's share */
	if (e->exec.parent_watched && e->exec.args_len)
		pending_put_cmdline(&t->pending, pid, e->proc_start, e->exec.args, e->exec.args_len);
	/* SIG_IGN for SIGCHLD survives execve: a Python started by a program that ignores
	 * SIGCHLD loses its children's statuses from its first line (sigchld_state.c) */
	disp_on_exec(t, e);
	if (e->exec.python)
		tracer_schedule_describe(t, pid, e->proc_start);
	else if (!t->all_processes)
		schedule_check(t, pid, e->proc_start, CHECK_EMBEDDED, 0, 100000000ull);
	t->exec_uid_plus1 = 0;
}

int tracer_handle_event(void *arg, const void *data, size_t size)
{
	struct tracer *t = arg;
	const struct ph_event *e = data;
	if (e->type == PH_EV_STACK) {
		/* only the frames filled are sent */
		const struct ph_stack_event *se = data;
		size_t head = offsetof(struct ph_stack_event, frames);
		if (size >= head && se->nframes <= PH_MAX_PYFRAMES &&
		    size >= head + (size_t)se->nframes * sizeof(struct ph_pyframe))
			on_stack(t, se);
		return 0;
	}
	if (size < sizeof(*e))
		return 0;
	switch (e->type) {
	case PH_EV_LONG_WAIT:
		on_long_wait(t, e);
		break;
	case PH_EV_WAIT_END:
		on_wait_end(t, e);
		break;
	case PH_EV_SIGCHLD:
		on_sigchld(t, e);
		break;
	case PH_EV_CHILD_LOST:
		on_child_lost(t, e);
		break;
	case PH_EV_EXEC:
		on_exec(t, e);
		break;
	case PH_EV_SUPPRESSED:
		tracer_on_suppressed(t, e);
		break;
	case PH_EV_FORK:
		xproc_on_fork(t, e);
		break;
	case PH_EV_CHILD_DIED:
		xproc_on_child_died(t, e);
		break;
	case PH_EV_EXIT:
		if (t->ht) {
			struct ev_proc p = { .pid = (pid_t)e->pid, .mono_ns = e->ts_ns };
			memcpy(p.comm, e->comm, sizeof(p.comm));
			p.comm[sizeof(p.comm) - 1] = '\0';
			p.ns_pid = -1;
			end_hang(t, p.pid, 0, e->ts_ns, "process_exit", &p);
			ht_forget_process(t->ht, p.pid);
			recheck_forget(&t->rc, p.pid, 0);
		}
		if (t->snap_valid && t->snap.pid == (pid_t)e->pid)
			drop_snapshot(t);
		py_forget_process(t->reader, (pid_t)e->pid);
		break;
	default:
		break;
	}
	return 0;
}

/* One due check; returns true to keep it (rescheduled in *c). */
static bool run_check(struct tracer *t, struct exec_check *c, uint64_t now)
{
	if (c->kind == CHECK_EMBEDDED) {
		if (!proc_exists(c->pid))
			return false;
		/* in scope: the whole host, or selected (-p, or a descendant of COMMAND) */
		bool in_scope = t->host_wide || (loader_watch_flags(t->ld, c->pid) & PH_W_SCOPE);
		if (in_scope && py_is_python_process(c->pid)) {
			loader_watch_add_flags(t->ld, c->pid, PH_W_PYTHON);
			/* its threads may already be blocked: the kernel saw those waits begin while
			 * the process was not watched yet */
			tracer_scan_process(t, c->pid);
			return false;
		}
		if (!in_scope)
			return false;
		if (c->attempt > 0)
			return false; /* one more look a second later, then give up */
		c->attempt = 1;
		c->due_ns = now + 1000000000ull;
		return true;
	}
	if (tracer_describe(t, c->pid, c->proc_start) == 0)
		return false;
	/* whether it is gone (or its pid another process's) is asked only now: a /proc lookup
	 * of a new pid is not free */
	bool gone = c->proc_start ? !same_process(c->pid, c->proc_start) : !proc_exists(c->pid);
	if (gone || ++c->attempt >= DESCRIBE_ATTEMPTS)
		return false;
	uint64_t delay = 2000000ull << (c->attempt < 7 ? c->attempt : 7);
	c->due_ns = now + (delay < 250000000ull ? delay : 250000000ull);
	return true;
}

int tracer_run_exec_checks(struct tracer *t)
{
	uint64_t now = mono_now_ns(), next = UINT64_MAX;
	uint64_t budget_end = now + FAIRQ_PASS_BUDGET_NS;
	int kept = 0;
	for (int i = 0; i < t->nchecks; i++)
		if (t->checks[i].due_ns <= now) {
			fairq_order(t); /* users with fewer waiting first */
			break;
		}
	for (int i = 0; i < t->nchecks; i++) {
		struct exec_check c = t->checks[i];
		/* the pass's time is up: the rest stays due, for the next pass */
		if (c.due_ns <= now && mono_now_ns() < budget_end && !run_check(t, &c, now))
			continue;
		t->checks[kept++] = c;
		if (c.due_ns < next)
			next = c.due_ns;
	}
	t->nchecks = kept;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)((next - now) / 1000000ull) + 1;
}
