/* SPDX-License-Identifier: GPL-2.0 */
/* children.bpf.h: included once by pyhang.bpf.c (see its table of contents).
 *
 * Owns: children and SIGCHLD: the class of a process's SIGCHLD disposition
 * (sigchld_class_of), wait4/waitid calls in progress and their ends (wait_call_begin,
 * wait_call_end, on_echild), reaps (record_reap), lost exit statuses (emit_lost, reported
 * once per child), and children's exits as their parent's pid namespace knows them
 * (pidns_level, tgid_at_level, record_child_exit). */
#ifndef PH_CHILDREN_BPF_H
#define PH_CHILDREN_BPF_H

/* ---------------------------------------------------------------- SIGCHLD disposition */

static __always_inline u32 sigchld_class_of(struct task_struct *t)
{
	struct sighand_struct *sh = BPF_CORE_READ(t, sighand);
	struct k_sigaction ka = {};

	if (!sh || bpf_core_read(&ka, sizeof(ka), &sh->action[PH_SIGCHLD - 1]))
		return PH_SIGCHLD_DEFAULT;
	if ((unsigned long)ka.sa.sa_handler == PH_SIG_IGN)
		return PH_SIGCHLD_IGN;
	if (ka.sa.sa_flags & PH_SA_NOCLDWAIT)
		return PH_SIGCHLD_NOCLDWAIT;
	return PH_SIGCHLD_DEFAULT;
}

/* ---------------------------------------------------------------- wait4 / waitid */
#include "childwait.bpf.h"

/* pid_arg: the awaited pid (> 0), -1 any child, PH_WAIT_PIDFD; child: the wait record's
 * uaddr for it (PH_OP_CHILD_* in pyhang.h). */
static __always_inline int wait_call_begin(s32 pid_arg, u64 child, u32 syscall, u64 infop,
					   u32 options)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;

	if (!is_interesting(id >> 32))
		return 0;
	child_wait_begin(child, syscall, options);
	struct wait_pending p = {
		.pid_arg = pid_arg,
		.syscall = syscall,
		.infop = infop,
		.options = options,
	};
	if (bpf_map_update_elem(&wait_pending, &tid, &p, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
	return 0;
}

static __always_inline void record_reap(u32 child, u32 tgid, u32 tid, bool with_stack)
{
	struct ph_reap r = {
		.reap_ns = bpf_ktime_get_ns(),
		.tgid = tgid,
		.tid = tid,
	};
	if (bpf_map_update_elem(&reaps, &child, &r, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
	/* Who took the status, and from where: needed if another wait later finds it gone.
	 * Only waits for any child and on a pidfd take the stack (~15 us of frame walking per
	 * reap): a wait for one named child (Popen.wait/poll) reaps what its caller started,
	 * and is every subprocess call's own reap; who and when are still recorded for it. A
	 * pidfd wait is the program's own explicit call (subprocess never makes one). */
	if (with_stack && bpf_map_lookup_elem(&pyprocs, &tgid) &&
	    rl_allow(PH_RL_REAP, tgid, current_proc_start()))
		emit_pystack(PH_EV_REAP, child);
}

/* Fill the child part of a child_status_lost event from what sched_process_exit saw. */
static __always_inline void fill_child(struct ph_event *e, u32 child, u32 tgid)
{
	struct ph_child_exit *x = bpf_map_lookup_elem(&child_exits, &child);

	e->lost.child_pid = child;
	if (!x || x->parent_tgid != tgid || !(x->flags & PH_CX_EXIT_KNOWN))
		return;
	e->lost.child_known = 1;
	e->lost.child_host_pid = x->host_pid;
	e->lost.exit_code = x->exit_code;
	e->lost.exit_ns = x->exit_ns;
	e->lost.child_start = x->proc_start;
	__builtin_memcpy(e->lost.child_comm, x->comm, sizeof(x->comm));
}

static __always_inline void emit_lost(u32 cause, u32 child, struct wait_pending *p, struct ph_reap *r)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32;
	if (!rl_allow(PH_RL_CHILD_LOST, tgid, current_proc_start()))
		return;
	u64 stack_ts = emit_pystack(PH_EV_CHILD_LOST, child);
	struct ph_event *e = ev_reserve(PH_EV_CHILD_LOST, tgid, (u32)id);

	if (!e)
		return;
	e->stack_ts = stack_ts;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->lost.cause = cause;
	e->lost.wait_pid_arg = p->pid_arg;
	e->lost.syscall = p->syscall;
	fill_child(e, child, tgid);
	if (r) {
		e->lost.reaper_tid = r->tid;
		e->lost.reap_ns = r->reap_ns;
	}
	bpf_ringbuf_submit(e, RB_URGENT);
}

/* Whether the loss of this child's status was already reported to this process. */
static __always_inline bool loss_reported(u32 child, u32 tgid)
{
	struct ph_child_exit *x = bpf_map_lookup_elem(&child_exits, &child);
	return x && x->parent_tgid == tgid && (x->flags & PH_CX_REPORTED);
}

/* Remember that it was: a later wait for the same child (subprocess polls again from
 * Popen.__del__, for one) finds it gone too, and is not a second finding. */
static __always_inline void mark_loss_reported(u32 child, u32 tgid)
{
	struct ph_child_exit *x = bpf_map_lookup_elem(&child_exits, &child);
	if (x && x->parent_tgid == tgid) {
		x->flags |= PH_CX_REPORTED;
		return;
	}
	struct ph_child_exit marker = { .parent_tgid = tgid, .flags = PH_CX_REPORTED };
	if (bpf_map_update_elem(&child_exits, &child, &marker, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
}

/* ECHILD: decide whether an exit status was lost, and whose. */
static __always_inline int on_echild(struct wait_pending *p)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u32 cls = sigchld_class_of((struct task_struct *)bpf_get_current_task());

	/* A pidfd's child: which one is not known here, so no loss is proven (the child may
	 * also not be ours at all: waitid on another process's pidfd is ECHILD too). */
	if (p->pid_arg == PH_WAIT_PIDFD)
		return 0;
	if (p->pid_arg > 0) {
		u32 child = (u32)p->pid_arg;
		if (loss_reported(child, tgid))
			return 0;
		struct ph_reap *r = bpf_map_lookup_elem(&reaps, &child);
		if (r && r->tgid == tgid) {
			struct ph_reap copy = *r;
			emit_lost(PH_LOST_REAPED_ELSEWHERE, child, p, &copy);
			bpf_map_delete_elem(&reaps, &child);
		} else if (cls != PH_SIGCHLD_DEFAULT) {
			emit_lost(PH_LOST_SIGCHLD_IGNORED, child, p, NULL);
		} else {
			return 0; /* not a child of ours: nothing we know was lost */
		}
		mark_loss_reported(child, tgid);
		return 0;
	}
	/* Any child: only a child the kernel auto-reaped since the last such report counts;
	 * shells and init hit ECHILD on wait(-1) all day and stay silent. */
	if (cls == PH_SIGCHLD_DEFAULT)
		return 0;
	u32 *last = bpf_map_lookup_elem(&last_autoreaped, &tgid);
	if (!last)
		return 0;
	u32 child = *last;
	bpf_map_delete_elem(&last_autoreaped, &tgid);
	if (loss_reported(child, tgid))
		return 0;
	emit_lost(PH_LOST_SIGCHLD_IGNORED, child, p, NULL);
	mark_loss_reported(child, tgid);
	return 0;
}

static __always_inline int wait_call_end(long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	child_wait_end(tid, ret);
	struct wait_pending *pp = bpf_map_lookup_elem(&wait_pending, &tid);

	if (!pp)
		return 0;
	struct wait_pending p = *pp;
	bpf_map_delete_elem(&wait_pending, &tid);

	if (ret == -PH_ECHILD)
		return on_echild(&p);
	if (p.syscall == 0 && ret > 0) {
		record_reap((u32)ret, id >> 32, tid, p.pid_arg < 0);
	} else if (p.syscall == 1 && ret == 0 && p.infop && !(p.options & PH_WNOWAIT)) {
		s32 si_pid = 0; /* siginfo_t: si_pid of the SIGCHLD union at offset 16 */
		if (!bpf_probe_read_user(&si_pid, sizeof(si_pid), (void *)(p.infop + 16)) && si_pid > 0)
			record_reap((u32)si_pid, id >> 32, tid, p.pid_arg < 0);
	}
	return 0;
}

/* Pids as a process's parent knows them: wait4/waitid take and return pids of the
 * caller's pid namespace, which differ from host pids inside containers. */
static __always_inline u32 pidns_level(struct task_struct *t)
{
	return BPF_CORE_READ(t, thread_pid, level);
}

/* The pid of t's process in the pid namespace at `level` (0 = the host's), 0 if none. */
static __always_inline u32 tgid_at_level(struct task_struct *t, u32 level)
{
	struct pid *pid = BPF_CORE_READ(t, group_leader, thread_pid);
	struct upid up = {};

	if (!pid || level > BPF_CORE_READ(pid, level) || level > 31)
		return 0;
	if (bpf_core_read(&up, sizeof(up), &pid->numbers[level & 31]))
		return 0;
	return (u32)up.nr;
}

/* A child's exit, for the waits that will find it gone. */
static __always_inline void record_child_exit(struct task_struct *t, u32 tgid)
{
	struct task_struct *parent = BPF_CORE_READ(t, real_parent);
	u32 parent_tgid = BPF_CORE_READ(parent, tgid);

	if (!is_interesting(parent_tgid))
		return;
	u32 key = tgid_at_level(t, pidns_level(parent));
	if (!key)
		key = tgid;
	struct ph_child_exit x = {
		.exit_ns = bpf_ktime_get_ns(),
		.parent_tgid = parent_tgid,
		.exit_code = BPF_CORE_READ(t, exit_code),
		.flags = PH_CX_EXIT_KNOWN,
		.host_pid = tgid,
		.proc_start = proc_start_of(t),
	};
	bpf_probe_read_kernel_str(x.comm, sizeof(x.comm), t->comm);
	if (bpf_map_update_elem(&child_exits, &key, &x, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
	/* With SIGCHLD ignored or SA_NOCLDWAIT the kernel reaps the child itself right after
	 * this tracepoint (exit_notify): nobody will ever wait for this status. */
	if (sigchld_class_of(parent) != PH_SIGCHLD_DEFAULT &&
	    bpf_map_update_elem(&last_autoreaped, &parent_tgid, &key, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
}

#endif /* PH_CHILDREN_BPF_H */
