/* SPDX-License-Identifier: GPL-2.0 */
/* fork.bpf.h: forks and children's deaths, for the cross-process diagnoses
 * `fork_held_lock` and `worker_died` (user/tracer/xproc.c); included by pyhang.bpf.c after
 * children.bpf.h (it uses the stack walker, the rate limits and the pid namespace helpers).
 *
 * Owns, in the kernel:
 *  - forks of a multi-threaded watched process (signal->nr_threads > 1 at the fork: only
 *    then can the child inherit a lock some other thread held): a `forks` entry for the
 *    child (parent, its thread count, the forking thread), deleted when the child execs
 *    (it then runs another program: nothing of the parent's memory is left) or exits,
 *    and one PH_EV_FORK record with the forking thread's Python stack. A fork of a
 *    single-threaded process costs one read of nr_threads here.
 *  - abnormal deaths (killed by a signal, or a non-zero exit status) of the children of
 *    watched processes: one PH_EV_CHILD_DIED record each, with whether the kernel's OOM
 *    killer chose it. Normal exits send nothing.
 *  - OOM victims: tracepoint oom:mark_victim (Linux 4.8+, carries the victim's pid) where
 *    it exists; userspace probes for it and leaves the program unattached elsewhere. The
 *    fallback, on every kernel, is task->signal->oom_mm at the exit: mark_oom_victim()
 *    sets it (mm/oom_kill.c, Linux 4.9+), so a process that exits with it set was chosen
 *    by the OOM killer.
 * Both records count against the parent's exec bucket of the rate limits (PH_RL_EXEC: a
 * fork-and-exec loop is one kind of burst). Facts sources: kernel/fork.c (copy_process:
 * sched_process_fork runs in the parent after the child is set up), kernel/exit.c
 * (do_exit: exit_code set before sched_process_exit), include/linux/sched/signal.h
 * (signal_struct.nr_threads). */
#ifndef PH_FORK_BPF_H
#define PH_FORK_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* child tgid (host) */
	__type(value, struct ph_fork_rec);
} forks SEC(".maps");

/* Victims named by oom:mark_victim (thread id as the tracepoint gives it), until they exit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);   /* tid */
	__type(value, u64); /* ktime ns of the mark */
} oom_victims SEC(".maps");

/* Set once any victim was marked: until then a thread's exit looks nothing up. */
unsigned long long oom_marks = 0;

SEC("tracepoint/oom/mark_victim")
int on_oom_victim(struct trace_event_raw_mark_victim *ctx)
{
	u32 pid = (u32)ctx->pid;
	u64 now = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&oom_victims, &pid, &now, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
	__sync_fetch_and_add(&oom_marks, 1);
	return 0;
}

/* From on_fork, for a new process `child` of a watched `parent` that is itself watched. */
static __always_inline void fork_note(struct task_struct *parent, struct task_struct *child,
				      u32 parent_tgid, u32 child_tgid)
{
	u32 nthreads = BPF_CORE_READ(parent, signal, nr_threads);
	if (nthreads < 2)
		return;
	u64 parent_start = proc_start_of(parent);
	struct ph_fork_rec r = {
		.parent_tgid = parent_tgid,
		.parent_threads = nthreads,
		.forker_tid = (u32)bpf_get_current_pid_tgid(),
		.child_start = proc_start_of(child),
		.fork_ns = bpf_ktime_get_ns(),
	};
	if (bpf_map_update_elem(&forks, &child_tgid, &r, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
	if (!rl_allow(PH_RL_EXEC, parent_tgid, parent_start))
		return;
	u64 stack_ts = bpf_map_lookup_elem(&pyprocs, &parent_tgid) ? emit_pystack(PH_EV_FORK, child_tgid) : 0;
	struct ph_event *e = ev_reserve_ex(PH_EV_FORK, parent_tgid, r.forker_tid, parent_start, true);
	if (!e)
		return;
	e->stack_ts = stack_ts;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->fork.child_pid = child_tgid;
	e->fork.parent_threads = nthreads;
	e->fork.child_start = r.child_start;
	bpf_ringbuf_submit(e, RB_LAZY);
}

/* From on_exec: the child runs another program now. */
static __always_inline void fork_forget(u32 tgid)
{
	bpf_map_delete_elem(&forks, &tgid);
}

/* From on_exit, for every exiting thread: whether the OOM killer marked this thread or
 * its process. The mark (a thread id) moves to the process's pid when that thread is not
 * the last to exit; the last one takes it (last: true). */
static __always_inline bool oom_marked(u32 tid, u32 tgid, bool last)
{
	if (!oom_marks)
		return false;
	bool hit = bpf_map_lookup_elem(&oom_victims, &tid) != NULL;
	if (!last) {
		if (hit && tid != tgid) {
			u64 now = bpf_ktime_get_ns();
			bpf_map_delete_elem(&oom_victims, &tid);
			bpf_map_update_elem(&oom_victims, &tgid, &now, BPF_ANY);
		}
		return hit;
	}
	if (hit)
		bpf_map_delete_elem(&oom_victims, &tid);
	if (tid != tgid && bpf_map_lookup_elem(&oom_victims, &tgid)) {
		hit = true;
		bpf_map_delete_elem(&oom_victims, &tgid);
	}
	return hit;
}

/* From on_exit, for the last thread of process tgid (t). oom_seen: oom:mark_victim named
 * it (oom_marked). */
static __always_inline void child_died_note(struct task_struct *t, u32 tgid, bool oom_seen)
{
	fork_forget(tgid);
	int code = BPF_CORE_READ(t, exit_code);
	if (code == 0)
		return;
	struct task_struct *parent = BPF_CORE_READ(t, real_parent);
	u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	if (!is_interesting(parent_tgid))
		return;
	u64 parent_start = proc_start_of(parent);
	if (!rl_allow(PH_RL_EXEC, parent_tgid, parent_start))
		return;
	struct ph_event *e = ev_reserve_ex(PH_EV_CHILD_DIED, parent_tgid, 0, parent_start, true);
	if (!e)
		return;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), parent->comm);
	e->died.child_pid = tgid;
	e->died.child_ns_pid = tgid_at_level(t, pidns_level(parent));
	e->died.exit_code = code;
	e->died.oom = oom_seen || BPF_CORE_READ(t, signal, oom_mm) != NULL;
	e->died.child_start = proc_start_of(t);
	bpf_probe_read_kernel_str(e->died.child_comm, sizeof(e->died.child_comm), t->comm);
	bpf_ringbuf_submit(e, RB_LAZY);
}

#endif
