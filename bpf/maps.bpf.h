/* SPDX-License-Identifier: GPL-2.0 */
/* maps.bpf.h: included once by pyhang.bpf.c (see its table of contents).
 *
 * Owns: every map of the BPF object except the rate limiter's (ratelimit.bpf.h)
 * and the walker's scratch (pystack.bpf.h): the watch table (watch_slots, watched), the
 * futex wait records (wait_slots, wait_slot_bits, waits), the calls in progress
 * (sigact_pending, wait_pending), the children's facts (child_exits, last_autoreaped,
 * reaps), the Python processes described to the walker (pyprocs), the ring buffer
 * (events) and the loss counters (stats, stat_inc); the ring-buffer wakeup policy
 * (RB_LAZY, RB_URGENT) and the reservation of an event record (ev_reserve_ex, ev_reserve)
 * with its process identity (proc_start_of). Map names are pinned by
 * tests/test_leftovers.py: never rename one. */
#ifndef PH_MAPS_BPF_H
#define PH_MAPS_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PH_WATCH_SLOTS);
	__type(key, u32); /* tgid % PH_WATCH_SLOTS */
	__type(value, struct ph_watch_slot);
} watch_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tgid */
	__type(value, struct ph_watch);
} watched SEC(".maps"); /* overflow of watch_slots */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PH_WAIT_SLOTS);
	__type(key, u32); /* tid % PH_WAIT_SLOTS */
	__type(value, struct ph_wait);
} wait_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ph_slot_bits);
} wait_slot_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tid */
	__type(value, struct ph_wait);
} waits SEC(".maps"); /* overflow: start-up seeds, threads whose slot is taken */

/* An rt_sigaction(SIGCHLD) in progress: the disposition's class before the call. Every
 * rt_sigaction of a watched process reaches the exit program (a child resets ~64 handlers
 * after fork), so its lookup is an array slot (tid % PH_WAIT_SLOTS), not a hash. Two
 * threads of one slot (pid_max > 65536) changing SIGCHLD in the same microseconds would
 * lose one change; nothing else can collide. */
struct sigact_pending {
	u32 tid; /* 0: none */
	u32 old_class;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PH_WAIT_SLOTS);
	__type(key, u32); /* tid % PH_WAIT_SLOTS */
	__type(value, struct sigact_pending);
} sigact_pending SEC(".maps");

static __always_inline struct sigact_pending *sigact_slot(u32 tid)
{
	u32 k = ph_wait_slot_key(tid);
	return bpf_map_lookup_elem(&sigact_pending, &k);
}

struct wait_pending {
	s32 pid_arg; /* wait4 upid, or waitid id for P_PID; -1 means any child,
		      * PH_WAIT_PIDFD one child named by a pidfd */
	u32 syscall; /* 0 wait4, 1 waitid */
	u64 infop;   /* waitid siginfo pointer */
	u32 options;
	u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32); /* tid */
	__type(value, struct wait_pending);
} wait_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* child pid */
	__type(value, struct ph_child_exit);
} child_exits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);   /* parent tgid */
	__type(value, u32); /* most recent auto-reaped child pid */
} last_autoreaped SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* child pid */
	__type(value, struct ph_reap);
} reaps SEC(".maps");


struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tgid */
	__type(value, struct ph_pyproc);
} pyprocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* a stack record: ~0.7 KiB per frame, 47 KiB at most */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PH_STAT_MAX);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

static __always_inline void stat_inc(u32 slot)
{
	u64 *v = bpf_map_lookup_elem(&stats, &slot);
	if (v)
		*v += 1;
}

/* Ring-buffer wakeups. Waking the reader costs an interrupt (a self-IPI for irq_work, a VM
 * exit in a VM: ~10 us measured per exec event here), so events that can wait for the
 * reader's next pass (it polls at least every 200 ms) are sent without one; urgent ones
 * force one, since a lazy record ahead of them stops the kernel's own check (which wakes
 * the reader only when it has caught up). */
#define RB_LAZY BPF_RB_NO_WAKEUP
#define RB_URGENT BPF_RB_FORCE_WAKEUP

#define barrier() asm volatile("" ::: "memory")

/* The identity of t's process besides its pid (see PH_NS_PER_TICK in pyhang.h). */
static __always_inline u64 proc_start_of(struct task_struct *t)
{
	return BPF_CORE_READ(t, group_leader, start_boottime) / PH_NS_PER_TICK;
}

static __always_inline u64 current_proc_start(void)
{
	return proc_start_of((struct task_struct *)bpf_get_current_task());
}

/* A record for process tgid (identity proc_start), or NULL (counted) if the ring is full.
 * count_drop false: the caller counts the failure itself. */
static __always_inline struct ph_event *ev_reserve_ex(u32 type, u32 tgid, u32 tid, u64 proc_start,
						      bool count_drop)
{
	struct ph_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		if (count_drop)
			stat_inc(PH_STAT_RINGBUF_DROPS);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = type;
	e->pid = tgid;
	e->tid = tid;
	e->ts_ns = bpf_ktime_get_ns();
	e->proc_start = proc_start;
	return e;
}

/* For events about the current process (in its own context). */
static __always_inline struct ph_event *ev_reserve(u32 type, u32 tgid, u32 tid)
{
	return ev_reserve_ex(type, tgid, tid, current_proc_start(), true);
}

#endif /* PH_MAPS_BPF_H */
