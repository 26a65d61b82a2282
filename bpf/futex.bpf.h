/* SPDX-License-Identifier: GPL-2.0 */
/* futex.bpf.h: included once by pyhang.bpf.c (see its table of contents).
 *
 * Owns: futex wait records: the wait-type operation set (pyhang.h), a record
 * per waiting thread (wait_slots by tid % PH_WAIT_SLOTS, overflowing into waits), its
 * begin, reuse and end (returned, signal, thread exit), the GIL hand-over chain, and the
 * long-wait scanner (scan_waits) that reports each wait once when it passes the
 * threshold, run by the scan_tick and scan_manual programs. */
#ifndef PH_FUTEX_BPF_H
#define PH_FUTEX_BPF_H

/* ---------------------------------------------------------------- futex waits */

/* CLOCK_MONOTONIC ns of jiffy j, given a (now_ns, now_j) pair taken together: within a
 * tick of the truth, which is all a wait of seconds needs. */
static __always_inline u64 jiffies_to_ns(u64 j, u64 now_ns, u64 now_j)
{
	u64 age = now_j > j ? (now_j - j) * tick_ns : 0;
	return now_ns > age ? now_ns - age : 0;
}

static __always_inline void emit_wait_end_code(struct ph_wait *w, u32 tid, u32 reason, u32 code,
					       u64 end_ns)
{
	/* on_exit runs in the exiting thread, the others in the waiter (or the scanner, for a
	 * GIL chain): w is the current process's record, but its identity is kept in it */
	struct ph_event *e = ev_reserve_ex(PH_EV_WAIT_END, w->tgid, tid, w->proc_start, true);
	if (!e)
		return;
	/* the thread's own name, while it is still there to ask (it may be gone when the
	 * record is read: a killed process) */
	if ((u32)bpf_get_current_pid_tgid() == tid)
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->wait.end_code = code;
	u64 now_j = bpf_jiffies64();
	e->wait.start_ns = jiffies_to_ns(w->start_jiffies, e->ts_ns, now_j);
	if (end_ns)
		e->ts_ns = end_ns;
	e->wait.uaddr = w->uaddr;
	e->wait.op = w->op;
	e->wait.flags = w->flags;
	e->wait.end_reason = reason;
	bpf_ringbuf_submit(e, RB_LAZY);
}

static __always_inline void emit_wait_end(struct ph_wait *w, u32 tid, u32 reason, u64 end_ns)
{
	emit_wait_end_code(w, tid, reason, 0, end_ns);
}

/* Close a finished GIL chain exactly once (the scanner and the thread may race for it). */
static __always_inline void gil_chain_close(struct ph_wait *w, u32 tid)
{
	u32 f = w->flags;
	if (!(f & PH_WF_DONE) || (f & (PH_WF_FINAL | PH_WF_SIGPEND)))
		return; /* SIGPEND: interrupted, closed by sigpend_resolve */
	if (__sync_val_compare_and_swap(&w->flags, f, f | PH_WF_FINAL) != f)
		return;
	if (f & PH_WF_REPORTED)
		emit_wait_end(w, tid, PH_END_RETURNED, w->end_ns);
}

/* A wait interrupted by a signal (PH_WF_SIGPEND) ends for `reason`: its wait_end goes out
 * once (whoever clears SIGPEND first), if its long_wait did. */
static __always_inline void sigpend_resolve(struct ph_wait *w, u32 tid, u32 reason, u32 code)
{
	u32 f = w->flags;
	if (!(f & PH_WF_SIGPEND))
		return;
	if (__sync_val_compare_and_swap(&w->flags, f, (f & ~PH_WF_SIGPEND) | PH_WF_DONE | PH_WF_FINAL) != f)
		return;
	if (f & PH_WF_REPORTED)
		emit_wait_end_code(w, tid, reason, code, w->end_ns);
}

/* include/linux/sched/signal.h (2.6.x to 6.x): a group exit (exit_group(), a fatal signal)
 * is in progress; signal->group_exit_code then holds the process's exit code. */
#define SIGNAL_GROUP_EXIT 0x00000004

/* Run in an exiting thread: whether its whole process is exiting (a group exit, or the last
 * thread going), else only the thread (e.g. another thread's execve kills the others). */
static __always_inline u32 exit_reason(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	if ((BPF_CORE_READ(t, signal, flags) & SIGNAL_GROUP_EXIT) ||
	    BPF_CORE_READ(t, signal, live.counter) == 0)
		return PH_END_PROCESS_EXIT;
	return PH_END_THREAD_EXIT;
}

/* The exiting process's exit code (wait(2) encoding), 0 for a thread exit. */
static __always_inline u32 exit_code_now(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(t, signal, flags) & SIGNAL_GROUP_EXIT)
		return (u32)BPF_CORE_READ(t, signal, group_exit_code);
	if (BPF_CORE_READ(t, signal, live.counter) == 0)
		return (u32)BPF_CORE_READ(t, exit_code);
	return 0;
}

/* A GIL wait right after the previous one of the same chain continues it: returns true when
 * the existing record was resumed (its start time, and a long_wait already sent, stand). */
static __always_inline bool gil_chain_resume(struct ph_wait *w, u64 now_ns)
{
	u32 f = w->flags;
	u32 want = PH_WF_GIL | PH_WF_DONE | PH_WF_RESUMABLE;
	if ((f & (want | PH_WF_FINAL)) != want)
		return false;
	if (now_ns - w->end_ns > PH_GIL_MERGE_NS)
		return false;
	return __sync_val_compare_and_swap(&w->flags, f, f & ~(PH_WF_DONE | PH_WF_RESUMABLE)) == f;
}

static __always_inline struct ph_wait *slot_of(u32 tid)
{
	u32 k = ph_wait_slot_key(tid);
	return bpf_map_lookup_elem(&wait_slots, &k);
}

/* Sets or clears slot k's bit for the scanner. */
static __always_inline void slot_mark(u32 k, bool used)
{
	u32 zero = 0;
	struct ph_slot_bits *b = bpf_map_lookup_elem(&wait_slot_bits, &zero);
	if (!b)
		return;
	k = ph_wait_slot_key(k);
	u64 bit = 1ull << (k & 63);
	if (used)
		__sync_fetch_and_or(&b->bits[k >> 6], bit);
	else
		__sync_fetch_and_and(&b->bits[k >> 6], ~bit);
}

/* A new wait in record w: the fields first, the flags last. Until the flags are stored the
 * scanner still sees the old DONE record and skips it (x86-64 keeps stores in order). */
static __always_inline void wait_fill(struct ph_wait *w, u32 tgid, u64 uaddr, u32 op, u64 now_j,
				      bool gil)
{
	w->start_jiffies = now_j;
	w->uaddr = uaddr;
	w->op = op;
	w->tgid = tgid;
	w->end_ns = 0;
	barrier();
	w->flags = gil ? PH_WF_GIL : 0;
}

/* The thread's next wait, in its own record: a GIL wait may resume the chain; a finished
 * GIL chain gets its wait_end first. A record that was not DONE is stale (its return was
 * never seen, e.g. a restarted syscall) and is replaced like the others. */
static __always_inline void wait_reuse(struct ph_wait *w, u32 tid, u32 tgid, u64 uaddr, u32 op,
				       u64 now_j, bool gil)
{
	u32 f = w->flags;
	if (f & PH_WF_SIGPEND) {
		/* The last call was interrupted and no handler ran: the kernel restarted it (an
		 * ignored or stopping signal, or one another thread took): the same wait goes
		 * on. Any other call: the thread moved on after the signal. */
		if (w->tgid == tgid && w->uaddr == uaddr && w->op == op &&
		    __sync_val_compare_and_swap(&w->flags, f, f & ~(PH_WF_DONE | PH_WF_SIGPEND)) == f)
			return;
		sigpend_resolve(w, tid, PH_END_SIGNAL, 0);
	}
	if (gil && gil_chain_resume(w, bpf_ktime_get_ns()))
		return;
	if (w->flags & PH_WF_GIL)
		gil_chain_close(w, tid);
	if (w->tgid != tgid) /* the thread exec'd into the leader's pid, or its tid was reused */
		w->proc_start = current_proc_start();
	wait_fill(w, tgid, uaddr, op, now_j, gil);
}

/* A first wait of the thread that cannot have a slot: into the overflow hash. */
static __always_inline void wait_overflow(u32 tid, u32 tgid, u64 uaddr, u32 op, u64 now_j, bool gil)
{
	struct ph_wait w = {
		.start_jiffies = now_j,
		.uaddr = uaddr,
		.op = op,
		.tgid = tgid,
		.tid = tid,
		.flags = gil ? PH_WF_GIL : 0,
		.proc_start = current_proc_start(),
	};
	if (bpf_map_update_elem(&waits, &tid, &w, BPF_NOEXIST) == 0)
		__sync_fetch_and_add(&waits_overflow_live, 1);
	else
		stat_inc(PH_STAT_WAITS_FULL);
}

static __always_inline int wait_begin(u64 uaddr, u32 op)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	const struct ph_watch *watch = watch_of(tgid);

	if (!watch)
		return 0;
	u64 now_j = bpf_jiffies64();
	bool gil = uaddr >= watch->gil_lo && uaddr < watch->gil_hi;
	struct ph_wait *w = slot_of(tid);
	if (!w)
		return 0;
	if (w->tid == tid) {
		wait_reuse(w, tid, tgid, uaddr, op, now_j, gil);
		return 0;
	}
	if (waits_overflow_live) {
		struct ph_wait *o = bpf_map_lookup_elem(&waits, &tid);
		if (o) {
			wait_reuse(o, tid, tgid, uaddr, op, now_j, gil);
			return 0;
		}
	}
	/* A free slot is claimed for the thread's life; the bit is set after the owner, and
	 * cleared before it is given up (wait_release), so the scanner never misses a wait. */
	if (w->tid == 0 && __sync_val_compare_and_swap(&w->tid, 0, tid) == 0) {
		slot_mark(tid, true);
		/* the identity holds for the thread's life: exec keeps a process's start time */
		w->proc_start = current_proc_start();
		wait_fill(w, tgid, uaddr, op, now_j, gil);
		return 0;
	}
	wait_overflow(tid, tgid, uaddr, op, now_j, gil);
	return 0;
}

/* The thread exits: its slot and any overflow record go. */
static __always_inline void wait_release(u32 tid, struct ph_wait *slot)
{
	if (slot) {
		slot->flags = PH_WF_DONE | PH_WF_FINAL;
		slot_mark(tid, false);
		barrier();
		slot->tid = 0;
	}
	if (waits_overflow_live && bpf_map_delete_elem(&waits, &tid) == 0)
		__sync_fetch_and_sub(&waits_overflow_live, 1);
}

/* Whether a syscall's return value says a signal interrupted it: -EINTR, or the kernel's
 * internal -ERESTARTSYS/-ERESTARTNOINTR/-ERESTARTNOHAND/-ERESTART_RESTARTBLOCK (512-516,
 * include/linux/errno.h), which the sys_exit tracepoint sees before signal delivery turns
 * them into EINTR or a restart. */
static __always_inline bool interrupted(long ret)
{
	return ret == -4 || (ret <= -512 && ret >= -516);
}

/* The wait of thread tid ended. Marking DONE atomically orders us against the scanner:
 * either it reported first (we emit wait_end) or it sees DONE and stays silent. Records
 * stay, DONE, until the thread exits: the next wait reuses them, and the next GIL wait of a
 * chain resumes it (the scanner closes a chain when none comes). */
static __always_inline int wait_finish(u32 tid, u32 reason, long ret)
{
	struct ph_wait *slot = slot_of(tid);
	struct ph_wait *w = slot;
	if (slot && slot->tid != tid) {
		slot = NULL;
		w = waits_overflow_live ? bpf_map_lookup_elem(&waits, &tid) : NULL;
	}
	if (!w)
		return 0;
	if (reason == PH_END_RETURNED && interrupted(ret)) {
		/* what ended it is decided at signal delivery, thread exit or the next call */
		w->end_ns = bpf_ktime_get_ns();
		__sync_fetch_and_or(&w->flags, PH_WF_DONE | PH_WF_SIGPEND);
		return 0;
	}
	if (reason == PH_END_THREAD_EXIT && (w->flags & PH_WF_SIGPEND)) {
		sigpend_resolve(w, tid, exit_reason(), exit_code_now());
		wait_release(tid, slot);
		return 0;
	}
	if ((w->flags & PH_WF_GIL) && reason == PH_END_RETURNED) {
		/* Still without the GIL after a timed-out condition wait, or after taking the GIL's
		 * mutex (plain FUTEX_WAIT: glibc mutexes; the condition variable uses BITSET). */
		bool again = ret == -PH_ETIMEDOUT || (w->op & PH_FUTEX_CMD_MASK) == PH_FUTEX_WAIT;
		w->end_ns = bpf_ktime_get_ns();
		__sync_fetch_and_or(&w->flags, again ? (PH_WF_DONE | PH_WF_RESUMABLE) : PH_WF_DONE);
		return 0;
	}
	u32 old = __sync_fetch_and_or(&w->flags, PH_WF_DONE);
	if ((old & PH_WF_REPORTED) && !(old & (PH_WF_DONE | PH_WF_FINAL)))
		emit_wait_end_code(w, tid, reason == PH_END_THREAD_EXIT ? exit_reason() : reason,
				   reason == PH_END_THREAD_EXIT ? exit_code_now() : 0, 0);
	else if ((old & PH_WF_GIL) && (old & PH_WF_DONE))
		gil_chain_close(w, tid);
	if (reason == PH_END_THREAD_EXIT)
		wait_release(tid, slot);
	return 0;
}

/* The calling thread's own wait record (its slot, else the overflow hash), NULL if none. */
static __always_inline struct ph_wait *own_wait(u32 tid)
{
	struct ph_wait *w = slot_of(tid);
	if (w && w->tid != tid)
		w = waits_overflow_live ? bpf_map_lookup_elem(&waits, &tid) : NULL;
	return w;
}

/* ---------------------------------------------------------------- long-wait scanner */

struct scan_ctx {
	u64 now_ns, now_j;
};

static __always_inline void scan_record(u32 tid, struct ph_wait *w, struct scan_ctx *c)
{
	u32 f = w->flags;
	if ((f & PH_WF_GIL) && (f & PH_WF_DONE)) {
		if (!(f & PH_WF_FINAL) && c->now_ns > w->end_ns && c->now_ns - w->end_ns > PH_GIL_MERGE_NS)
			gil_chain_close(w, tid);
		return;
	}
	if (f & (PH_WF_REPORTED | PH_WF_DONE))
		return;
	u64 start_j = w->start_jiffies;
	if (c->now_j < start_j || (c->now_j - start_j) * tick_ns < threshold_ns)
		return;
	/* Reserve first: a wait marked REPORTED must have its long_wait on the way, or it
	 * would get a wait_end with no long_wait before it. A full ring: mark the wait DROPPED
	 * (counted once per wait) and let the next scan try again. */
	struct ph_event *e = ev_reserve_ex(PH_EV_LONG_WAIT, w->tgid, tid, w->proc_start, false);
	if (!e) {
		if (!(__sync_fetch_and_or(&w->flags, PH_WF_DROPPED) & PH_WF_DROPPED))
			stat_inc(PH_STAT_RINGBUF_DROPS);
		return;
	}
	/* compare-and-swap: never mark a wait REPORTED after it ended (a GIL chain could
	 * resume with REPORTED set and no long_wait ever sent) */
	if (__sync_val_compare_and_swap(&w->flags, f, f | PH_WF_REPORTED) != f) {
		bpf_ringbuf_discard(e, 0);
		return;
	}
	e->wait.start_ns = jiffies_to_ns(start_j, c->now_ns, c->now_j);
	e->wait.uaddr = w->uaddr;
	e->wait.op = w->op;
	e->wait.flags = f | PH_WF_REPORTED;
	bpf_ringbuf_submit(e, RB_URGENT);
}

static long scan_overflow_one(struct bpf_map *map, u32 *tid, struct ph_wait *w, struct scan_ctx *c)
{
	scan_record(*tid, w, c);
	return 0;
}

static __always_inline void scan_slot(u32 k, struct scan_ctx *c)
{
	struct ph_wait *w = bpf_map_lookup_elem(&wait_slots, &k);
	if (!w)
		return;
	u32 tid = w->tid;
	if (tid)
		scan_record(tid, w, c);
}

/* Index of the lowest set bit of a one-bit word (de Bruijn multiply; BPF has no ctz). */
static const u8 debruijn64[64] = {
	0,  1,  2,  53, 3,  7,  54, 27, 4,  38, 41, 8,  34, 55, 48, 28,
	62, 5,  39, 46, 44, 42, 22, 9,  24, 35, 59, 56, 49, 18, 29, 11,
	63, 52, 6,  26, 37, 40, 33, 47, 61, 45, 43, 21, 23, 58, 17, 10,
	51, 25, 36, 32, 60, 20, 57, 16, 50, 31, 19, 15, 30, 14, 13, 12,
};

/* bpf_loop callback: the owned slots of bitmap word i. */
static long scan_word(u32 i, struct scan_ctx *c)
{
	u32 zero = 0;
	struct ph_slot_bits *b = bpf_map_lookup_elem(&wait_slot_bits, &zero);
	if (!b)
		return 1;
	u64 word = b->bits[i & (PH_WAIT_SLOTS / 64 - 1)];
	for (int n = 0; n < 64 && word; n++) {
		u64 low = word & -word;
		u32 bit = debruijn64[((low * 0x022fdd63cc95386dULL) >> 58) & 63];
		scan_slot((i << 6) + bit, c);
		word &= word - 1;
	}
	return 0;
}

static __always_inline int scan_waits(void)
{
	struct scan_ctx c = { .now_ns = bpf_ktime_get_ns(), .now_j = bpf_jiffies64() };
	stat_inc(PH_STAT_TICKS);
	rl_scan();
	bpf_loop(PH_WAIT_SLOTS / 64, scan_word, &c, 0);
	if (waits_overflow_live)
		bpf_for_each_map_elem(&waits, scan_overflow_one, &c, 0);
	return 0;
}

#endif /* PH_FUTEX_BPF_H */
