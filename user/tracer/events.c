/* events: turns kernel records (bpf/pyhang.h) into output records. Owns: attaching Python
 * stacks to events (captured in the kernel for instantaneous events, read from userspace
 * for long waits, whose frames are stable while the thread is blocked), remembering reaps
 * and children's command lines for later reports, and keeping the watch set and the BPF
 * stack walker's process descriptions current after exec (the delayed checks are
 * execcheck.c's). The shared process snapshot is snapshot.c's; when a long wait becomes
 * a hang, and when a hang ends, is hanggate.c's. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "annotate.h"
#include "childwait.h"
#include "diagnose.h"
#include "execcheck.h"
#include "guard.h"
#include "hanggate.h"
#include "fairqueue.h"
#include "hangtrack.h"
#include "procmem.h"
#include "procscan.h"
#include "pyreader.h"
#include "stackline.h"
#include "pystack.h"
#include "ratelimit.h"
#include "recheck.h"
#include "snapshot.h"
#include "iosample.h"
#include "tracer.h"
#include "waitgraph.h"
#include "xproc.h"

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

void tracer_events_cleanup(struct tracer *t)
{
	drop_snapshot(t);
	ht_free(t->ht);
	t->ht = NULL;
	free(t->cw);
	t->cw = NULL;
	xproc_free(t->xp);
	t->xp = NULL;
}

/* A wait for a child: the child's facts on the waiting thread's waiting_for (once per
 * graph, when the thread is still in that wait), and the wait remembered while it lasts
 * (a child's later hang, a child that blocks later: childwait.h). */
static void attach_child(struct tracer *t, const struct rec_long_wait *r, const struct ph_event *e)
{
	struct wf_info *f = childwait_waiter_info(t->graph && t->graph->p == r->py ? t->graph : NULL,
						  r->p.tid);
	if (f && !f->child && f->kind == WF_CHILD)
		f->child = childwait_read(t->reader, t->ht, r->p.pid, r->p.tid, e->wait.uaddr);
	if (!t->cw && (t->cw = calloc(1, sizeof(*t->cw))) != NULL)
		t->cw->writer_still_ns = t->threshold_ns;
	if (t->cw) {
		struct cw_open o = { .pid = r->p.pid, .tid = r->p.tid, .proc_start = e->proc_start,
				     .uaddr = e->wait.uaddr, .start_ns = e->wait.start_ns,
				     .op = e->wait.op };
		cw_table_open(t->cw, &o);
	}
}

static void evaluate_long_wait(struct tracer *t, const struct ph_event *e, bool emit);

static void on_long_wait(struct tracer *t, const struct ph_event *e)
{
	evaluate_long_wait(t, e, true);
}

/* An open child wait as the kernel's long_wait reported it. */
static void open_wait_event(const struct cw_open *o, struct ph_event *e)
{
	memset(e, 0, sizeof(*e));
	e->type = PH_EV_LONG_WAIT;
	e->pid = (unsigned)o->pid;
	e->tid = (unsigned)o->tid;
	e->ts_ns = mono_now_ns();
	e->proc_start = o->proc_start;
	e->wait.start_ns = o->start_ns;
	e->wait.uaddr = o->uaddr;
	e->wait.op = o->op;
	e->wait.flags = PH_WF_REPORTED;
}

void tracer_recheck_waiters_of(struct tracer *t, pid_t child)
{
	struct cw_open o[8];
	size_t n = t->cw ? cw_table_waiters_of(t->cw, child, o, 8) : 0;
	for (size_t i = 0; i < n; i++) {
		struct ph_event e;
		open_wait_event(&o[i], &e);
		drop_snapshot(t); /* the parent is read anew, with its child as it is now */
		evaluate_long_wait(t, &e, false);
	}
}

int tracer_recheck_child_waits(struct tracer *t)
{
	int due = -1;
	const struct cw_open *o = NULL;
	/* one per pass, between reads of the ring buffer: each reads the parent, its children
	 * and maybe the pipes' holders */
	if (t->cw && (o = cw_table_next_due(t->cw, mono_now_ns(), &due)) != NULL) {
		struct ph_event e;
		open_wait_event(o, &e);
		if (ht_hang_covers(t->ht, o->pid, o->tid)) {
			cw_table_settle(t->cw, o->tid);
		} else {
			drop_snapshot(t);
			evaluate_long_wait(t, &e, false);
		}
		cw_table_next_due_ms(t->cw, mono_now_ns(), &due);
	}
	return due;
}

/* The kernel's record of tid's chain of GIL waits while it goes on (not over: a chain
 * that ended is FINAL, a new one has another start; the one of a long_wait is REPORTED). */
static bool gil_chain_now(struct tracer *t, pid_t tid, struct ph_wait *kw)
{
	return t->ld && loader_wait_record(t->ld, tid, kw) == 0 &&
	       (kw->flags & (PH_WF_GIL | PH_WF_REPORTED | PH_WF_FINAL)) == (PH_WF_GIL | PH_WF_REPORTED);
}

/* A long wait: its event (emit), then the hang it proves, if any. */
static void evaluate_long_wait(struct tracer *t, const struct ph_event *e, bool emit)
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
	/* a hang this wait proves is reported first: the wait is then part of it (one line
	 * in text, not the hang's stacks once more) */
	if (r.py)
		snapshot_graph(t);
	struct cw_wait *orphan = NULL;
	if (childwait_is_op(e->wait.op)) {
		if (r.py)
			attach_child(t, &r, e);
		const struct wf_info *f = r.py ? childwait_waiter_info(t->graph && t->graph->p == r.py ?
								       t->graph : NULL, r.p.tid) : NULL;
		if (emit && (!f || !f->child)) /* not waiting any more when read: the kernel's word */
			r.child_wait = orphan = childwait_read(t->reader, t->ht, r.p.pid, r.p.tid,
							       e->wait.uaddr);
	}
	bool proven = r.py && maybe_report_hang(t, &r);
	r.covered = ht_hang_covers(t->ht, r.p.pid, r.p.tid);
	if (emit) {
		snapshot_write_long_wait(t, &r);
	}
	childwait_free(orphan);
	/* not proven now: looked at again a few times while it lasts (recheck.h; a wait for
	 * a child has its own second looks, childwait.h) */
	if (!emit || !r.py || proven || r.covered || childwait_is_op(e->wait.op))
		return;
	struct ph_wait kw;
	if (!r.gil) {
		recheck_add(&t->rc, r.p.pid, r.p.tid, e->proc_start, e->wait.uaddr, e->wait.start_ns,
			    mono_now_ns());
	} else if (r.py->gil_switches_known && gil_chain_now(t, r.p.tid, &kw)) {
		/* a GIL chain is proven by later looks against this one (diagnose.c), at most
		 * max(threshold / 2, 1 s) apart; without a switch count it never can be */
		struct gil_look look;
		hang_gil_look(r.py, r.p.tid, &look);
		recheck_add_gil(&t->rc, r.p.pid, r.p.tid, e->proc_start, e->wait.uaddr,
				e->wait.start_ns, kw.start_jiffies, &look, t->threshold_ns / 2,
				mono_now_ns());
	}
}

/* The long waits of one scan arrive one after another (the threads of a deadlock pass the
 * threshold together): they are held until another kind of event or the end of the
 * ring-buffer read, then all their waits are opened before the first is diagnosed, so
 * a hang among them is proven at its first wait and reported before them all. One tracer
 * per process: the batch is static. */
#define LW_BATCH 64
static struct ph_event lw_batch[LW_BATCH];
static unsigned lw_n;

void tracer_flush_events(struct tracer *t)
{
	static struct ph_event work[LW_BATCH]; /* lw_batch may fill again meanwhile */
	static bool flushing;
	unsigned n = lw_n;
	if (!n || flushing)
		return;
	memcpy(work, lw_batch, n * sizeof(work[0]));
	lw_n = 0;
	flushing = true;
	if (!t->ht)
		t->ht = ht_new();
	for (unsigned i = 0; i < n; i++)
		if (!(work[i].wait.flags & PH_WF_GIL))
			ht_wait_open(t->ht, (pid_t)work[i].pid, (pid_t)work[i].tid, work[i].wait.uaddr,
				     work[i].wait.start_ns);
	for (unsigned i = 0; i < n; i++) {
		if (tracer_stop_overdue()) {
			t->unread_at_stop += n - i;
			break;
		}
		on_long_wait(t, &work[i]);
	}
	flushing = false;
}

/* The second looks of recheck.h: a fresh snapshot of the process, and the diagnoses again
 * (no new long_wait event). Milliseconds until the next is due, -1 when none. */
int tracer_recheck_waits(struct tracer *t)
{
	struct rc_entry c;
	uint64_t now = mono_now_ns();
	pid_t pid = 0; /* one process per pass: the first due one's, on one read of it */
	bool read = false;
	while (t->ht && recheck_take_due(&t->rc, now, pid, &c)) {
		pid = c.pid;
		struct ph_wait kw;
		bool open = c.gil ? gil_chain_now(t, c.tid, &kw) && kw.start_jiffies == c.chain_start_j
				  : ht_wait_is_open(t->ht, c.pid, c.tid, c.uaddr, NULL);
		if (!open || ht_hang_covers(t->ht, c.pid, c.tid)) {
			recheck_forget(&t->rc, c.pid, c.tid);
			continue;
		}
		/* a waiter whose wait a signal interrupted (a stop: SIGSTOP, ^Z, a debugger)
		 * proves nothing now; its chain goes on if the wait does */
		if (c.gil && (kw.flags & PH_WF_SIGPEND))
			continue;
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
		r.gil = c.gil;
		if (!read) /* the facts may have changed since the last look */
			drop_snapshot(t);
		read = true;
		r.py = snapshot(t, c.pid, c.proc_start, err, sizeof(err));
		if (!r.py)
			continue;
		snapshot_graph(t);
		struct gil_look look;
		if (c.gil) {
			hang_gil_look(r.py, c.tid, &look);
			r.gil_before = &c.look;
			r.gil_before_blocked = &c.blocked;
			r.gil_now = &look;
		}
		if (maybe_report_hang(t, &r))
			recheck_forget(&t->rc, c.pid, c.tid);
		else if (c.gil)
			recheck_gil_looked(&t->rc, c.pid, c.tid, &look);
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
	r.futex_op = e->wait.op;
	r.signal = r.exit_signal = r.exit_status = -1;
	switch (e->wait.end_reason) {
	case PH_END_THREAD_EXIT:
		r.ended_by = REC_END_THREAD_EXIT;
		break;
	case PH_END_SIGNAL:
		r.ended_by = REC_END_SIGNAL;
		r.signal = e->wait.end_code ? (int)e->wait.end_code : -1;
		break;
	case PH_END_PROCESS_EXIT:
		/* kernel exit code: low 7 bits the killing signal, else status in bits 8-15 */
		r.ended_by = REC_END_PROCESS_EXIT;
		if (e->wait.end_code & 0x7f)
			r.exit_signal = (int)(e->wait.end_code & 0x7f);
		else
			r.exit_status = (int)((e->wait.end_code >> 8) & 0xff);
		break;
	default:
		r.ended_by = REC_END_RETURN;
	}
	t->n_wait_ends++;
	t->out.ops->wait_end(&t->out, &r);
	guard_note_wait_end(t, r.p.pid, r.p.tid);
	recheck_forget(&t->rc, r.p.pid, r.p.tid);
	ht_wait_close(t->ht, r.p.tid);
	if (t->cw)
		cw_table_close(t->cw, r.p.tid);
	end_hang(t, r.p.pid, r.p.tid, e->ts_ns, r.ended_by, &r.p);
}

static enum rec_sigchld_action sigchld_action_of(unsigned int cls)
{
	switch (cls) {
	case PH_SIGCHLD_IGN:
		return REC_SIGCHLD_IGN;
	case PH_SIGCHLD_NOCLDWAIT:
		return REC_SIGCHLD_NOCLDWAIT;
	default:
		return REC_SIGCHLD_RESTORED;
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
	r.action = sigchld_action_of(e->sigchld.new_class);
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
	r.cause = e->lost.cause == PH_LOST_REAPED_ELSEWHERE ? REC_LOST_REAPED_ELSEWHERE : REC_LOST_SIGCHLD_IGNORED;
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

static void on_exec(struct tracer *t, const struct ph_event *e)
{
	pid_t pid = (pid_t)e->pid;
	if (t->snap_valid && t->snap.pid == pid)
		drop_snapshot(t);
	py_forget_process(t->reader, pid);
	ios_forget(t, pid, REC_END_THREAD_EXIT, e->ts_ns);
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
	if (tracer_stop_overdue()) { /* this record and the rest of the ring: not read */
		t->unread_at_stop++;
		return -EINTR;
	}
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
	if (e->type == PH_EV_LONG_WAIT) {
		if (lw_n == LW_BATCH)
			tracer_flush_events(t);
		if (lw_n < LW_BATCH) {
			lw_batch[lw_n++] = *e;
			return 0;
		}
		on_long_wait(t, e); /* a full batch while one is handled: at once */
		return 0;
	}
	tracer_flush_events(t); /* the waits before it, in order */
	switch (e->type) {
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
		ios_forget(t, (pid_t)e->pid, REC_END_PROCESS_EXIT, e->ts_ns);
		if (t->ht) {
			struct ev_proc p = { .pid = (pid_t)e->pid, .mono_ns = e->ts_ns };
			memcpy(p.comm, e->comm, sizeof(p.comm));
			p.comm[sizeof(p.comm) - 1] = '\0';
			p.ns_pid = -1;
			end_hang(t, p.pid, 0, e->ts_ns, REC_END_PROCESS_EXIT, &p);
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

