/* SPDX-License-Identifier: GPL-2.0 */
/* ratelimit.bpf.h: per-process rate limits in the kernel; included by pyhang.bpf.c after
 * ev_reserve_ex (it needs the ring buffer and the event helpers).
 *
 * Owns: one token bucket per (process, kind of event) for the events a process can make
 * the kernel send at will (enum ph_rl_kind: SIGCHLD changes, lost child statuses, reaper
 * stacks, exec events of its children), the count of what each bucket held back, and the
 * `suppressed` records (PH_EV_SUPPRESSED) that report those counts at most once per
 * rl_report_ns per process. Without it one process flipping SIGCHLD in a loop (about
 * 200,000 changes a second, each a stack record of up to 47 KiB) fills the ring buffer,
 * and every other process's events are lost.
 *
 * The bucket is GCRA (a token bucket kept as one "theoretical arrival time", TAT): an
 * event at time now is allowed when max(TAT, now) - now < burst * period, and then
 * TAT = max(TAT, now) + period. One u64 per bucket, updated by compare-and-swap: tracing
 * programs may not take a bpf_spin_lock (the verifier refuses it for them). Two threads of
 * one process racing for the same last token may both pass: the excess is bounded by the
 * number of CPUs.
 *
 * Reports: the suppressing path reports when rl_report_ns has passed since the process's
 * last report; processes that stopped being suppressed are found by the long-wait scanner
 * (rl_scan, from scan_waits) through the small `rl_pending` set, and whatever is left at a
 * process's exit is reported there (rl_flush, from on_exit). A report that does not fit
 * in the ring buffer is counted in PH_STAT_RINGBUF_DROPS, and its counts are lost with it. */
#ifndef PH_RATELIMIT_BPF_H
#define PH_RATELIMIT_BPF_H

/* Settings fixed at load time by userspace (--rate-limit, --suppressed-interval), per
 * kind. rl_on false: no limit at all (and no cost). */
const volatile bool rl_on = false;
const volatile unsigned long long rl_period_ns[PH_RL_KINDS] = {}; /* 1e9 / events per second */
const volatile unsigned long long rl_burst[PH_RL_KINDS] = {};     /* allowed back to back, >= 1 */
const volatile unsigned long long rl_report_ns = 10000000000ULL;

struct ph_rl {
	u64 proc_start;            /* the process's identity: a reused pid starts afresh */
	u64 tat[PH_RL_KINDS];      /* GCRA theoretical arrival time per kind, ktime ns */
	u32 suppressed[PH_RL_KINDS]; /* held back since the last report */
	u64 reported_ns;           /* last report (or the bucket's creation) */
	u64 since_ns;              /* the first event held back since the last report, 0: none */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tgid */
	__type(value, struct ph_rl);
} rl_state SEC(".maps");

/* Processes with counts not reported yet: the scanner walks only these. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);   /* tgid */
	__type(value, u32); /* unused */
} rl_pending SEC(".maps");

/* Send r's counts as one PH_EV_SUPPRESSED record and start a new period. The counts are
 * taken by exchange, so a concurrent suppression is either in this report or the next. */
static __always_inline void rl_report(struct ph_rl *r, u32 tgid, u64 now)
{
	struct ph_event *e = ev_reserve_ex(PH_EV_SUPPRESSED, tgid, tgid, r->proc_start, true);
	u32 any = 0;

	r->reported_ns = now;
	if (e && tgid == bpf_get_current_pid_tgid() >> 32)
		bpf_get_current_comm(e->comm, sizeof(e->comm)); /* else userspace asks /proc */
	if (e)
		e->suppressed.since_ns = r->since_ns ? r->since_ns : now;
	r->since_ns = 0;
	for (int k = 0; k < PH_RL_KINDS; k++) {
		u32 n = __sync_lock_test_and_set(&r->suppressed[k], 0);
		any |= n;
		if (e)
			e->suppressed.counts[k] = n;
	}
	if (!e)
		return;
	if (any)
		bpf_ringbuf_submit(e, RB_LAZY);
	else
		bpf_ringbuf_discard(e, 0);
}

/* Whether process tgid (identity proc_start) may send one more event of kind now. Costs a
 * hash lookup and a compare-and-swap; nothing at all when rate limits are off. */
static __always_inline bool rl_allow(u32 kind, u32 tgid, u64 proc_start)
{
	if (!rl_on)
		return true;
	u32 k = kind & (PH_RL_KINDS - 1);
	u64 period = rl_period_ns[k], burst = rl_burst[k];
	u64 now = bpf_ktime_get_ns();
	struct ph_rl *r = bpf_map_lookup_elem(&rl_state, &tgid);

	if (!r || r->proc_start != proc_start) {
		/* a first event, or the first of a new process with a reused pid (the old one's
		 * counts were reported at its exit) */
		struct ph_rl fresh = { .proc_start = proc_start, .reported_ns = now };
		fresh.tat[k] = now + period;
		if (bpf_map_update_elem(&rl_state, &tgid, &fresh, BPF_ANY))
			stat_inc(PH_STAT_MAP_FULL);
		return true;
	}
	u64 tat = r->tat[k];
	u64 base = tat > now ? tat : now;
	if (base - now < burst * period) {
		/* a lost race (another thread of the process took a token at the same moment)
		 * lets this one pass too */
		__sync_val_compare_and_swap(&r->tat[k], tat, base + period);
		return true;
	}
	if (__sync_fetch_and_add(&r->suppressed[k], 1) == 0) {
		if (!r->since_ns)
			r->since_ns = now;
		u32 one = 1;
		bpf_map_update_elem(&rl_pending, &tgid, &one, BPF_NOEXIST);
	}
	if (now - r->reported_ns >= rl_report_ns)
		rl_report(r, tgid, now);
	return false;
}

struct rl_scan_ctx {
	u64 now;
};

static long rl_scan_one(struct bpf_map *map, u32 *tgid, u32 *unused, struct rl_scan_ctx *c)
{
	u32 key = *tgid;
	struct ph_rl *r = bpf_map_lookup_elem(&rl_state, &key);

	if (!r) { /* evicted from the LRU: nothing left to report */
		bpf_map_delete_elem(&rl_pending, &key);
		return 0;
	}
	if (c->now - r->reported_ns < rl_report_ns)
		return 0;
	bpf_map_delete_elem(&rl_pending, &key);
	rl_report(r, key, c->now);
	return 0;
}

/* From the long-wait scanner: report the processes whose period is over. */
static __always_inline void rl_scan(void)
{
	struct rl_scan_ctx c = { .now = bpf_ktime_get_ns() };

	if (rl_on)
		bpf_for_each_map_elem(&rl_pending, rl_scan_one, &c, 0);
}

/* Process tgid exits: report what it still had held back, and forget its buckets. */
static __always_inline void rl_flush(u32 tgid)
{
	if (!rl_on)
		return;
	struct ph_rl *r = bpf_map_lookup_elem(&rl_state, &tgid);
	if (!r)
		return;
	if (bpf_map_delete_elem(&rl_pending, &tgid) == 0)
		rl_report(r, tgid, bpf_ktime_get_ns());
	bpf_map_delete_elem(&rl_state, &tgid);
}

#endif
