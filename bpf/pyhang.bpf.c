// SPDX-License-Identifier: GPL-2.0
/* pyhang.bpf.c: every BPF program of pyhang-trace, and the table of contents of the parts
 * they use. One object, one skeleton (pyhang.skel.h): the parts are headers included here.
 *
 * What the programs do, in the kernel:
 *  - futex waits: start time per thread on entry of every wait-type futex operation,
 *    cleared on return. Short waits never leave the kernel: a periodic scanner
 *    (perf_event tick, or the same code run by userspace through BPF_PROG_TEST_RUN when
 *    perf events are unavailable) reports each wait once when it passes the threshold,
 *    while it is still in progress; a wait_end follows if it ever ends.
 *  - SIGCHLD disposition: every rt_sigaction(SIGCHLD) that changes whether children are
 *    auto-reaped (SIG_IGN or SA_NOCLDWAIT), read from task->sighand before and after.
 *  - wait4/waitid returning ECHILD where that loses an exit status: the waiter ignores
 *    SIGCHLD (read at that moment), or another wait in the same process took the child.
 *    The child's real status comes from sched_process_exit (task->exit_code).
 *  - the set of watched processes (fork inherits, exec re-evaluates, exit forgets).
 * Only syscall tracepoints, raw tracepoints and perf events are used: no kprobes or
 * fentry (unavailable on some kernels, including ours).
 *
 * Parts, in include order (each says what it owns in its header comment):
 *  pyhang.h            records shared with userspace, and the rules both sides execute
 *  maps.bpf.h          every map but the rate limiter's, stats, ring-buffer reservation
 *  watch.bpf.h         the watch table (which processes are traced) and Python detection
 *  ratelimit.bpf.h     per-process token buckets and `suppressed` reports
 *  pystack.bpf.h       the Python stack walker (stack records in the ring buffer)
 *  futex.bpf.h         futex wait records, their ends, and the long-wait scanner
 *  children.bpf.h      SIGCHLD disposition, wait4/waitid, reaps and child exits
 *   childwait.bpf.h    (included by children.bpf.h) blocking wait4/waitid as wait records
 *  fork.bpf.h          forks of multi-threaded processes, children's abnormal deaths, OOM
 *                      victims (its own maps: forks, oom_victims)
 * The programs below are grouped in the same order. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "pyhang.h"
#include "pyrules.h" /* rules userspace executes too: str state bits, frame visibility */

char LICENSE[] SEC("license") = "GPL";

/* Settings fixed at load time by userspace. */
const volatile unsigned long long threshold_ns = 5000000000ULL;
const volatile bool trace_all_procs = false; /* --all: not only Python processes */
const volatile bool host_wide = true;        /* no -p and no COMMAND */
const volatile bool follow_children = false; /* COMMAND: descendants are in scope */
const volatile unsigned int self_tgid = 0;   /* never trace the tracer itself */
const volatile unsigned long long tick_ns = 4000000ULL; /* one jiffy (TICK_NSEC) */

/* Wait records in the overflow hash `waits`: while 0, the wait paths never look there. */
unsigned long long waits_overflow_live = 0;
/* A (bpf_ktime_get_ns, bpf_jiffies64) pair taken by clock_sample, for userspace seeds. */
unsigned long long clock_sample_ns = 0, clock_sample_jiffies = 0;

#include "maps.bpf.h"
#include "watch.bpf.h"
#include "ratelimit.bpf.h"
#include "pystack.bpf.h"
#include "futex.bpf.h"
#include "children.bpf.h"
#include "fork.bpf.h"

/* ---------------------------------------------------------------- futex waits */

SEC("tracepoint/syscalls/sys_enter_futex")
int futex_enter(struct trace_event_raw_sys_enter *ctx)
{
	u32 op = (u32)ctx->args[1];

	if (!ph_futex_op_waits(op))
		return 0;
	return wait_begin(ctx->args[0], op);
}

SEC("tracepoint/syscalls/sys_exit_futex")
int futex_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_finish((u32)bpf_get_current_pid_tgid(), PH_END_RETURNED, ctx->ret);
}

/* futex_wait(2) (Linux 6.7+): uaddr is the first argument. Optional: absent on older kernels. */
SEC("tracepoint/syscalls/sys_enter_futex_wait")
int futex_wait2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return wait_begin(ctx->args[0], PH_OP_FUTEX_WAIT2);
}

SEC("tracepoint/syscalls/sys_exit_futex_wait")
int futex_wait2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_finish((u32)bpf_get_current_pid_tgid(), PH_END_RETURNED, ctx->ret);
}

/* futex_waitv(2) (Linux 5.16+): report the first waiter's address. */
SEC("tracepoint/syscalls/sys_enter_futex_waitv")
int futex_waitv_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct futex_waitv first = {};
	if (ctx->args[1] == 0)
		return 0;
	if (bpf_probe_read_user(&first, sizeof(first), (void *)ctx->args[0]))
		first.uaddr = 0;
	return wait_begin(first.uaddr, PH_OP_FUTEX_WAITV);
}

SEC("tracepoint/syscalls/sys_exit_futex_waitv")
int futex_waitv_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_finish((u32)bpf_get_current_pid_tgid(), PH_END_RETURNED, ctx->ret);
}

/* raw_tp signal_deliver(sig, info, ka), in the thread that takes the signal, before its
 * action (kernel/signal.c get_signal, 2.6.x to 6.x). A wait it interrupted (SIGPEND) ended
 * by that signal when a handler is about to run: the thread lives on. A fatal default
 * action ends it at the thread's exit (on_exit); an ignored or stopping one restarts the
 * call (wait_reuse). */
SEC("raw_tp/signal_deliver")
int on_signal_deliver(struct bpf_raw_tracepoint_args *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct k_sigaction *ka = (struct k_sigaction *)ctx->args[2];
	struct ph_wait *w = slot_of(tid);
	if (w && w->tid != tid)
		w = waits_overflow_live ? bpf_map_lookup_elem(&waits, &tid) : NULL;
	if (!w || !(w->flags & PH_WF_SIGPEND) || !ka)
		return 0;
	unsigned long handler = (unsigned long)BPF_CORE_READ(ka, sa.sa_handler);
	if (handler == 0 /* SIG_DFL */ || handler == PH_SIG_IGN)
		return 0;
	sigpend_resolve(w, tid, PH_END_SIGNAL, (u32)ctx->args[0]);
	return 0;
}

/* A timed futex wait interrupted by a signal without a handler (a stop and continue, an
 * ignored signal) goes on in restart_syscall (-ERESTART_RESTARTBLOCK, kernel/futex
 * futex_wait_restart; the interrupted call is the thread's last one, so a wait marked
 * SIGPEND is the one restarted): it resumes at the entry, and its return is the wait's
 * real end (own_wait finds the thread's record). */
SEC("tracepoint/syscalls/sys_enter_restart_syscall")
int restart_syscall_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct ph_wait *w = own_wait((u32)bpf_get_current_pid_tgid());
	if (!w)
		return 0;
	u32 f = w->flags;
	if (f & PH_WF_SIGPEND)
		__sync_val_compare_and_swap(&w->flags, f, f & ~(PH_WF_DONE | PH_WF_SIGPEND));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_restart_syscall")
int restart_syscall_exit(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct ph_wait *w = own_wait(tid);
	if (!w || (w->flags & PH_WF_DONE))
		return 0; /* not a futex wait resumed at the entry */
	return wait_finish(tid, PH_END_RETURNED, ctx->ret);
}
/* ---------------------------------------------------------------- long-wait scanner */

/* Primary: a cpu-clock perf event on one CPU runs the scan a few times a second. */
SEC("perf_event")
int scan_tick(void *ctx)
{
	return scan_waits();
}

/* Fallback: userspace runs this through BPF_PROG_TEST_RUN when perf events are denied. */
SEC("raw_tp")
int scan_manual(void *ctx)
{
	return scan_waits();
}

/* Run by userspace (BPF_PROG_TEST_RUN) to convert its CLOCK_MONOTONIC seeds to jiffies. */
SEC("raw_tp")
int clock_sample(void *ctx)
{
	clock_sample_ns = bpf_ktime_get_ns();
	clock_sample_jiffies = bpf_jiffies64();
	return 0;
}

/* ---------------------------------------------------------------- SIGCHLD disposition */

SEC("tracepoint/syscalls/sys_enter_rt_sigaction")
int sigaction_enter(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;

	if (ctx->args[0] != PH_SIGCHLD || ctx->args[1] == 0 || !is_interesting(id >> 32))
		return 0;
	struct sigact_pending *p = sigact_slot(tid);
	if (!p)
		return 0;
	p->old_class = sigchld_class_of((struct task_struct *)bpf_get_current_task());
	barrier();
	p->tid = tid;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_rt_sigaction")
int sigaction_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct sigact_pending *p = sigact_slot(tid);

	if (!p || p->tid != tid)
		return 0;
	u32 old_class = p->old_class;
	p->tid = 0;
	if (ctx->ret != 0)
		return 0;

	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	u32 new_class = sigchld_class_of(t);
	if (new_class == old_class || !rl_allow(PH_RL_SIGCHLD, id >> 32, current_proc_start()))
		return 0;
	u64 stack_ts = emit_pystack(PH_EV_SIGCHLD, 0);
	struct ph_event *e = ev_reserve(PH_EV_SIGCHLD, id >> 32, tid);
	if (!e)
		return 0;
	e->stack_ts = stack_ts;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->sigchld.old_class = old_class;
	e->sigchld.new_class = new_class;
	struct sighand_struct *sh = BPF_CORE_READ(t, sighand);
	if (sh) {
		e->sigchld.handler = (u64)BPF_CORE_READ(sh, action[PH_SIGCHLD - 1].sa.sa_handler);
		e->sigchld.sa_flags = BPF_CORE_READ(sh, action[PH_SIGCHLD - 1].sa.sa_flags);
	}
	bpf_ringbuf_submit(e, RB_URGENT);
	return 0;
}

/* ---------------------------------------------------------------- wait4 / waitid */

SEC("tracepoint/syscalls/sys_enter_wait4")
int wait4_enter(struct trace_event_raw_sys_enter *ctx)
{
	s32 upid = (s32)ctx->args[0];
	/* upid > 0 names one child; -1, 0 and -pgid wait for any of several. */
	s32 pid_arg = upid > 0 ? upid : -1;
	return wait_call_begin(pid_arg, pid_arg > 0 ? (u64)(u32)pid_arg : PH_CHILD_ANY, 0, 0,
			       (u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_waitid")
int waitid_enter(struct trace_event_raw_sys_enter *ctx)
{
	s32 id = (s32)ctx->args[1];
	u32 idtype = (u32)ctx->args[0]; /* an int to the kernel: the upper half is not looked at */
	if (idtype == PH_P_PIDFD)
		return wait_call_begin(PH_WAIT_PIDFD, PH_CHILD_PIDFD | (u32)id, 1, ctx->args[2],
				       (u32)ctx->args[3]);
	s32 pid_arg = (idtype == PH_P_PID && id > 0) ? id : -1;
	return wait_call_begin(pid_arg, pid_arg > 0 ? (u64)(u32)pid_arg : PH_CHILD_ANY, 1,
			       ctx->args[2], (u32)ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_wait4")
int wait4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_call_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_waitid")
int waitid_exit(struct trace_event_raw_sys_exit *ctx)
{
	return wait_call_end(ctx->ret);
}

/* ---------------------------------------------------------------- process lifecycle */

/* raw_tp sched_process_fork(parent, child): a new process inherits its parent's watch. */
SEC("raw_tp/sched_process_fork")
int on_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	u32 child_pid = BPF_CORE_READ(child, pid);
	u32 child_tgid = BPF_CORE_READ(child, tgid);

	if (child_pid != child_tgid)
		return 0; /* a new thread, not a process */
	if (trace_all_procs && host_wide)
		return 0;
	u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	struct ph_watch *w = watch_find(parent_tgid);
	if (!w)
		return 0;
	struct ph_watch v = *w; /* a fork shares the parent's memory layout, GIL included */
	if (!follow_children)
		v.flags &= ~PH_W_SCOPE;
	if (!host_wide && !(v.flags & PH_W_SCOPE))
		return 0;
	if (v.flags) {
		watch_put(child_tgid, &v);
		fork_note(parent, child, parent_tgid, child_tgid);
	}
	return 0;
}

/* raw_tp sched_process_exec(p, old_pid, bprm): re-evaluate whether the process is Python,
 * and keep the command line of children of watched processes (they may be gone, reaped by
 * the kernel, long before anyone asks what they were). bprm->interp is the final binary
 * for scripts (#! lines) and equals filename otherwise. The new mm is installed here, so
 * arg_start..arg_end are the new argv in the current task's memory. */
SEC("raw_tp/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	u32 tgid = BPF_CORE_READ(p, tgid);

	if (tgid == self_tgid)
		return 0;
	u32 parent_tgid = BPF_CORE_READ(p, real_parent, tgid);
	bool parent_watched = is_interesting(parent_tgid);
	struct ph_watch *w = watch_find(tgid);
	bool track = !(trace_all_procs && host_wide) && (host_wide || w);
	if (!track && !parent_watched)
		return 0;

	/* the stack walker's description was of the old image: userspace describes the new
	 * one (a missing entry is harmless, hence no check) */
	bpf_map_delete_elem(&pyprocs, &tgid);
	fork_forget(tgid);
	struct ph_event *e = ev_reserve(PH_EV_EXEC, tgid, BPF_CORE_READ(p, pid));
	if (!e)
		return 0;
	const char *interp = BPF_CORE_READ(bprm, interp);
	long len = bpf_probe_read_kernel_str(e->exec.filename, sizeof(e->exec.filename), interp);
	if (len < 0)
		e->exec.filename[0] = '\0';
	bool python = len > 0 && basename_is_python(e->exec.filename, len);
	e->exec.python = python;
	e->exec.parent_tgid = parent_tgid;
	e->exec.parent_watched = parent_watched;
	/* exec has reset every handler but SIG_IGN to SIG_DFL (and every sa_flags to 0) by now.
	 * Read for every program: userspace follows the disposition across a chain of execs
	 * (a launcher ignores SIGCHLD and execs a shell that execs Python) to name its origin. */
	e->exec.sigchld_ignored = sigchld_class_of(p) == PH_SIGCHLD_IGN;
	struct task_struct *parent = BPF_CORE_READ(p, real_parent);
	if (parent)
		bpf_core_read_str(e->exec.parent_comm, sizeof(e->exec.parent_comm), &parent->comm);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->exec.uid = (u32)bpf_get_current_uid_gid();
	if (parent_watched) {
		u64 start = BPF_CORE_READ(p, mm, arg_start), end = BPF_CORE_READ(p, mm, arg_end);
		u32 n = end > start ? (u32)(end - start) : 0;
		if (n > PH_ARGS_LEN)
			n = PH_ARGS_LEN;
		if (n && bpf_probe_read_user(e->exec.args, n, (void *)start) == 0)
			e->exec.args_len = n;
	}
	if (track) {
		/* a new program: the old GIL address means nothing any more */
		struct ph_watch v = { .flags = w ? w->flags : 0 };
		v.flags = python ? (v.flags | PH_W_PYTHON) : (v.flags & ~PH_W_PYTHON);
		if (v.flags)
			watch_put(tgid, &v);
		else if (w)
			watch_del(tgid);
	}
	/* the watch set is kept above whatever the limit: only the event is held back; a
	 * fork-and-exec loop counts against the parent */
	if (!rl_allow(PH_RL_EXEC, parent_tgid, proc_start_of(BPF_CORE_READ(p, real_parent)))) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	/* a Python program is described at once (its SIGCHLD changes need the stack walker);
	 * other programs only get a delayed check for an embedded interpreter */
	bpf_ringbuf_submit(e, python ? RB_URGENT : RB_LAZY);
	return 0;
}

/* raw_tp sched_process_exit(p, ...): runs in the exiting thread. */
SEC("raw_tp/sched_process_exit")
int on_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *t = (struct task_struct *)ctx->args[0];
	u32 tid = BPF_CORE_READ(t, pid);
	u32 tgid = BPF_CORE_READ(t, tgid);

	/* A thread killed while blocked never returns from futex: end its wait here. */
	wait_finish(tid, PH_END_THREAD_EXIT, 0);
	struct sigact_pending *sp = sigact_slot(tid);
	if (sp && sp->tid == tid)
		sp->tid = 0;
	bpf_map_delete_elem(&wait_pending, &tid);

	/* signal->live was decremented before this tracepoint: 0 means the last thread. */
	bool last = BPF_CORE_READ(t, signal, live.counter) == 0;
	bool oom = oom_marked(tid, tgid, last);
	if (!last)
		return 0;
	record_child_exit(t, tgid);
	child_died_note(t, tgid, oom);
	rl_flush(tgid);
	/* A description left behind would fill the table (16384 exited Python processes) and
	 * walk the next process that gets this pid with another program's addresses. */
	bpf_map_delete_elem(&pyprocs, &tgid);
	if (watch_del(tgid)) {
		struct ph_event *e = ev_reserve(PH_EV_EXIT, tgid, tid);
		if (e) {
			bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), t->comm);
			bpf_ringbuf_submit(e, RB_LAZY);
		}
	}
	return 0;
}
