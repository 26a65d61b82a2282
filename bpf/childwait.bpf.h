/* childwait.bpf.h: waits for children (wait4/waitid) as waits, included by children.bpf.h
 * (after futex.bpf.h, whose wait records it uses).
 * Owns, in the kernel: recording a blocking wait4/waitid of a watched thread in the same
 * per-thread wait record as a futex wait (op PH_OP_CHILD_WAIT4 / PH_OP_CHILD_WAITID, uaddr
 * the awaited pid, PH_CHILD_ANY for any child, PH_CHILD_PIDFD | fd for a pidfd), so the
 * scanner reports it once when it passes the threshold (long_wait) and its return, a
 * signal or the thread's exit end it (wait_end), exactly as for futex waits. A wait with
 * WNOHANG (Popen.poll) never blocks and is not recorded. Waits already in progress at
 * start-up are seeded by userspace (user/tracer/startscan.c, childwait_from_syscall) with
 * the same op and uaddr; their return ends them here too, though no wait_pending entry was
 * ever made for them. Cost: one more wait-record update per
 * blocking wait call (the futex path's, ~+50 ns), nothing on other syscalls. */
#ifndef PH_CHILDWAIT_BPF_H
#define PH_CHILDWAIT_BPF_H

static __always_inline bool is_child_wait_op(u32 op)
{
	return op == PH_OP_CHILD_WAIT4 || op == PH_OP_CHILD_WAITID;
}

/* At the entry of wait4/waitid of a watched thread: child is the record's uaddr (the
 * awaited pid, PH_CHILD_ANY, or PH_CHILD_PIDFD | fd). */
static __always_inline void child_wait_begin(u64 child, u32 syscall, u32 options)
{
	if (options & PH_WNOHANG)
		return;
	wait_begin(child, syscall ? PH_OP_CHILD_WAITID : PH_OP_CHILD_WAIT4);
}

/* At the exit of wait4/waitid: ends the thread's child wait, if one is in progress (also
 * one seeded at start-up). */
static __always_inline void child_wait_end(u32 tid, long ret)
{
	struct ph_wait *w = own_wait(tid);
	if (!w || !is_child_wait_op(w->op) || (w->flags & PH_WF_DONE))
		return;
	wait_finish(tid, PH_END_RETURNED, ret);
}
#endif
