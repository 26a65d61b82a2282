// SPDX-License-Identifier: GPL-2.0
/* Design options for the futex wait path, measured against each other by
 * run_design_options.sh. Each variant is an enter/exit pair on the futex syscall
 * tracepoints doing what pyhang-trace must do for a recorded wait: find whether the process
 * is watched, take a timestamp, store the start in a per-thread record; on exit, find the
 * record and mark it done atomically. Only the storage and the clock differ:
 *   empty        nothing (the floor)
 *   hash_ktime   hash maps for the watch set and the records, bpf_ktime_get_ns
 *                (pyhang-trace before session 2)
 *   task_ktime   hash watch set, task local storage records, bpf_ktime_get_ns
 *   array_ktime  direct-mapped arrays (slot = id % 65536, owner checked), bpf_ktime_get_ns
 *   hash_jiffies hash maps, bpf_jiffies64
 *   array_jiffies arrays and bpf_jiffies64 (pyhang-trace now)
 * `watch_pid` is the only watched process (the benchmark); its waits are recorded. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define SLOTS 65536u
#define WAIT_OPS(op) (((op) & 127) == 0 || ((op) & 127) == 9) /* FUTEX_WAIT, WAIT_BITSET */

struct rec {
	u64 start, uaddr;
	u32 op, flags, tgid, owner;
	u64 end;
};
struct watch {
	u32 tgid, flags;
	u64 gil_lo, gil_hi;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLOTS);
	__type(key, u32);
	__type(value, struct watch);
} watch_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, u32);
	__type(value, struct watch);
} watch_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLOTS);
	__type(key, u32);
	__type(value, struct rec);
} rec_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, u32);
	__type(value, struct rec);
} rec_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct rec);
} rec_task SEC(".maps");

static __always_inline bool watched_hash(u32 tgid)
{
	return bpf_map_lookup_elem(&watch_hash, &tgid) != NULL;
}

static __always_inline bool watched_array(u32 tgid)
{
	u32 k = tgid & (SLOTS - 1);
	struct watch *w = bpf_map_lookup_elem(&watch_array, &k);
	return w && w->tgid == tgid;
}

static __always_inline void fill(struct rec *r, u64 now, u64 uaddr, u32 op, u32 tgid, u32 tid)
{
	r->start = now;
	r->uaddr = uaddr;
	r->op = op;
	r->tgid = tgid;
	r->owner = tid;
	r->end = 0;
	r->flags = 0;
}

static __always_inline int hash_enter(struct trace_event_raw_sys_enter *ctx, bool jiffies)
{
	u32 op = (u32)ctx->args[1];
	if (!WAIT_OPS(op))
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	if (!watched_hash(tgid))
		return 0;
	u64 now = jiffies ? bpf_jiffies64() : bpf_ktime_get_ns();
	struct rec *r = bpf_map_lookup_elem(&rec_hash, &tid);
	if (r) {
		fill(r, now, ctx->args[0], op, tgid, tid);
		return 0;
	}
	struct rec n = {};
	fill(&n, now, ctx->args[0], op, tgid, tid);
	bpf_map_update_elem(&rec_hash, &tid, &n, BPF_ANY);
	return 0;
}

static __always_inline int hash_exit(void)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct rec *r = bpf_map_lookup_elem(&rec_hash, &tid);
	if (r)
		__sync_fetch_and_or(&r->flags, 4);
	return 0;
}

static __always_inline int array_enter(struct trace_event_raw_sys_enter *ctx, bool jiffies)
{
	u32 op = (u32)ctx->args[1];
	if (!WAIT_OPS(op))
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	if (!watched_array(tgid))
		return 0;
	u64 now = jiffies ? bpf_jiffies64() : bpf_ktime_get_ns();
	u32 k = tid & (SLOTS - 1);
	struct rec *r = bpf_map_lookup_elem(&rec_array, &k);
	if (r && (r->owner == tid || r->owner == 0))
		fill(r, now, ctx->args[0], op, tgid, tid);
	return 0;
}

static __always_inline int array_exit(void)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u32 k = tid & (SLOTS - 1);
	struct rec *r = bpf_map_lookup_elem(&rec_array, &k);
	if (r && r->owner == tid)
		__sync_fetch_and_or(&r->flags, 4);
	return 0;
}

SEC("tp/syscalls/sys_enter_futex")
int empty_enter(struct trace_event_raw_sys_enter *ctx) { return 0; }
SEC("tp/syscalls/sys_exit_futex")
int empty_exit(struct trace_event_raw_sys_exit *ctx) { return 0; }

SEC("tp/syscalls/sys_enter_futex")
int hash_ktime_enter(struct trace_event_raw_sys_enter *ctx) { return hash_enter(ctx, false); }
SEC("tp/syscalls/sys_exit_futex")
int hash_ktime_exit(struct trace_event_raw_sys_exit *ctx) { return hash_exit(); }

SEC("tp/syscalls/sys_enter_futex")
int hash_jiffies_enter(struct trace_event_raw_sys_enter *ctx) { return hash_enter(ctx, true); }
SEC("tp/syscalls/sys_exit_futex")
int hash_jiffies_exit(struct trace_event_raw_sys_exit *ctx) { return hash_exit(); }

SEC("tp/syscalls/sys_enter_futex")
int array_ktime_enter(struct trace_event_raw_sys_enter *ctx) { return array_enter(ctx, false); }
SEC("tp/syscalls/sys_exit_futex")
int array_ktime_exit(struct trace_event_raw_sys_exit *ctx) { return array_exit(); }

SEC("tp/syscalls/sys_enter_futex")
int array_jiffies_enter(struct trace_event_raw_sys_enter *ctx) { return array_enter(ctx, true); }
SEC("tp/syscalls/sys_exit_futex")
int array_jiffies_exit(struct trace_event_raw_sys_exit *ctx) { return array_exit(); }

/* Task local storage in tracepoint programs: allowed since Linux 5.11 (tracing programs). */
SEC("tp/syscalls/sys_enter_futex")
int task_ktime_enter(struct trace_event_raw_sys_enter *ctx)
{
	u32 op = (u32)ctx->args[1];
	if (!WAIT_OPS(op))
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	if (!watched_hash(tgid))
		return 0;
	u64 now = bpf_ktime_get_ns();
	struct rec *r = bpf_task_storage_get(&rec_task, bpf_get_current_task_btf(), 0,
					     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (r)
		fill(r, now, ctx->args[0], op, tgid, tid);
	return 0;
}

SEC("tp/syscalls/sys_exit_futex")
int task_ktime_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct rec *r = bpf_task_storage_get(&rec_task, bpf_get_current_task_btf(), 0, 0);
	if (r)
		__sync_fetch_and_or(&r->flags, 4);
	return 0;
}
