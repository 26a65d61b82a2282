// SPDX-License-Identifier: GPL-2.0
/* pyhang.bpf.c: every BPF program of pyhang-trace.
 *
 * Owns, in the kernel:
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
 * fentry (unavailable on some kernels, including ours). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "pyhang.h"

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
	u32 k = tid & (PH_WAIT_SLOTS - 1);
	return bpf_map_lookup_elem(&sigact_pending, &k);
}

struct wait_pending {
	s32 pid_arg; /* wait4 upid, or waitid id for P_PID; -1 means any child */
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

static const struct ph_watch watch_everything = {};

/* Ring-buffer wakeups. Waking the reader costs an interrupt (a self-IPI for irq_work, a VM
 * exit in a VM: ~10 us measured per exec event here), so events that can wait for the
 * reader's next pass (it polls at least every 200 ms) are sent without one; urgent ones
 * force one, since a lazy record ahead of them stops the kernel's own check (which wakes
 * the reader only when it has caught up). */
#define RB_LAZY BPF_RB_NO_WAKEUP
#define RB_URGENT BPF_RB_FORCE_WAKEUP

#define barrier() asm volatile("" ::: "memory")

static __always_inline struct ph_watch_slot *watch_slot(u32 tgid)
{
	u32 k = tgid & (PH_WATCH_SLOTS - 1);
	return bpf_map_lookup_elem(&watch_slots, &k);
}

/* The watch entry of process tgid, NULL if it has none. */
static __always_inline struct ph_watch *watch_find(u32 tgid)
{
	struct ph_watch_slot *s = watch_slot(tgid);
	if (!s)
		return NULL;
	if (s->tgid == tgid)
		return &s->w;
	if (!s->shared)
		return NULL;
	return bpf_map_lookup_elem(&watched, &tgid);
}

/* Stores process tgid's watch entry: in its slot if the slot is its own or free, else in
 * the overflow hash. A slot is claimed by compare-and-swap of its owner; its previous owner
 * left it zeroed, so a reader between the claim and the store sees flags 0 (not watched). */
static __always_inline void watch_put(u32 tgid, const struct ph_watch *v)
{
	struct ph_watch_slot *s = watch_slot(tgid);
	if (!s)
		return;
	if (s->tgid == tgid) {
		s->w = *v;
		return;
	}
	if (s->tgid == 0 && __sync_val_compare_and_swap(&s->tgid, 0, tgid) == 0) {
		s->w = *v;
		if (s->shared)
			bpf_map_delete_elem(&watched, &tgid); /* an older entry of this tgid */
		return;
	}
	s->shared = 1;
	if (bpf_map_update_elem(&watched, &tgid, v, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
}

/* Forgets process tgid; true if it was watched. */
static __always_inline bool watch_del(u32 tgid)
{
	struct ph_watch_slot *s = watch_slot(tgid);
	if (!s)
		return false;
	if (s->tgid == tgid) {
		__builtin_memset(&s->w, 0, sizeof(s->w));
		barrier();
		s->tgid = 0;
		return true;
	}
	return s->shared && bpf_map_delete_elem(&watched, &tgid) == 0;
}

/* The watch entry of process tgid if its events are wanted, else NULL. Host-wide --all needs
 * no lookup (and then knows no GIL ranges). */
static __always_inline const struct ph_watch *watch_of(u32 tgid)
{
	if (tgid == self_tgid)
		return NULL;
	if (trace_all_procs && host_wide)
		return &watch_everything;
	struct ph_watch *w = watch_find(tgid);
	if (!w)
		return NULL;
	if (!trace_all_procs && !(w->flags & PH_W_PYTHON))
		return NULL;
	if (!host_wide && !(w->flags & PH_W_SCOPE))
		return NULL;
	return w;
}

static __always_inline bool is_interesting(u32 tgid)
{
	return watch_of(tgid) != NULL;
}

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

#include "ratelimit.bpf.h"


/* ---------------------------------------------------------------- Python stacks */

static __always_inline u64 user_u64(u64 addr)
{
	u64 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

static __always_inline u32 user_u32(u64 addr)
{
	u32 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

static __always_inline u8 user_u8(u64 addr)
{
	u8 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* The PyThreadState of the calling thread: 3.11+ keep the TID (native_thread_id); older
 * versions keep pthread_self(), which on x86_64 glibc is the thread's fs base. Works with
 * or without the GIL held (os.waitpid releases it, signal.signal keeps it). */
struct find_ctx {
	u64 ts;
	u64 fsbase;
	u32 tid;
	u16 native_off, thread_id_off, next_off;
	u64 found;
};

static long find_one(u32 i, struct find_ctx *c)
{
	if (!c->ts)
		return 1;
	if (c->native_off) {
		if (user_u32(c->ts + c->native_off) == c->tid) {
			c->found = c->ts;
			return 1;
		}
	} else if (user_u64(c->ts + c->thread_id_off) == c->fsbase) {
		c->found = c->ts;
		return 1;
	}
	c->ts = user_u64(c->ts + c->next_off);
	return 0;
}

static __always_inline u64 find_current_tstate(const struct ph_pyproc *pp, u32 tid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct find_ctx c = {
		.ts = user_u64(pp->interp + pp->ts_head),
		.fsbase = BPF_CORE_READ(task, thread.fsbase),
		.tid = tid,
		.native_off = pp->ts_native_tid,
		.thread_id_off = pp->ts_thread_id,
		.next_off = pp->ts_next,
	};
	bpf_loop(PH_MAX_PYTHREADS, find_one, &c, 0);
	return c.found;
}

static __always_inline u64 current_frame(const struct ph_pyproc *pp, u64 ts)
{
	u64 f = user_u64(ts + pp->ts_frame);
	if (pp->frame_kind == PH_FRAMES_CFRAME && f)
		f = user_u64(f + pp->cframe_current);
	return f;
}

/* Copy a str (PEP 393 compact) or bytes/2.7 str object's data, capped at cap bytes. */
static __always_inline void copy_pystr(const struct ph_pyproc *pp, u64 obj, struct ph_pystr_hdr *h,
				       char *dst, u32 cap)
{
	u64 len, data;
	u32 kind = 0;

	h->len = 0;
	h->kind = 0;
	h->truncated = 0;
	if (!obj)
		return;
	if (pp->str_kind == PH_STR_BYTES) {
		len = user_u64(obj + pp->bytes_size);
		data = obj + pp->bytes_data;
	} else {
		u8 state = user_u8(obj + pp->str_state);
		if (!(state & 0x20)) /* not compact: never the case for code object names */
			return;
		len = user_u64(obj + pp->str_length);
		if (state & 0x40) { /* ASCII: 1 byte per character after PyASCIIObject */
			data = obj + pp->str_ascii_data;
		} else {
			kind = (state >> 2) & 7;
			if (kind != 1 && kind != 2 && kind != 4)
				return;
			len *= kind;
			data = obj + pp->str_compact_data;
		}
	}
	u32 n = len > cap ? cap : (u32)len;
	if (n > cap)
		n = cap;
	if (bpf_probe_read_user(dst, n, (void *)data) == 0) {
		h->len = n;
		h->kind = kind;
		h->truncated = len > cap;
	}
}

static __always_inline void copy_linetable(const struct ph_pyproc *pp, u64 code, struct ph_pyframe *fr)
{
	u64 table = user_u64(code + pp->co_linetable);

	fr->linetable_len = 0;
	fr->linetable_full_len_capped = 0;
	if (!table)
		return;
	u64 len = user_u64(table + pp->bytes_size);
	u32 n = len > PH_LINETABLE_LEN ? PH_LINETABLE_LEN : (u32)len;
	if (n > PH_LINETABLE_LEN)
		n = PH_LINETABLE_LEN;
	fr->linetable_full_len_capped = len > 0xffff ? 0xffff : (u16)len;
	if (bpf_probe_read_user(fr->linetable, n, (void *)(table + pp->bytes_data)) == 0)
		fr->linetable_len = n;
}

/* One frame: returns 1 if it was recorded in fr, 0 if skipped (C-stack shim, incomplete,
 * not a code object). */
static __always_inline int read_frame(const struct ph_pyproc *pp, u64 f, struct ph_pyframe *fr)
{
	u64 code = user_u64(f + pp->f_code);
	u8 owner = pp->f_owner ? user_u8(f + pp->f_owner) : 0xff;

	if (!code || (pp->f_owner && owner == pp->owner_cstack))
		return 0;
	if (user_u64(code + pp->ob_type) != pp->code_type)
		return 0;
	if (pp->pos_is_ptr) {
		u64 start = code + pp->co_code_adaptive;
		u64 instr = user_u64(f + pp->f_pos);
		/* 3.11+: a frame whose instruction pointer is before _co_firsttraceable is still
		 * being set up ("incomplete") unless a generator owns it: CPython skips it too. */
		if (pp->co_firsttraceable && owner != pp->owner_generator &&
		    instr < start + 2 * (u64)user_u32(code + pp->co_firsttraceable))
			return 0;
		fr->pos = instr >= start ? instr - start : 0;
	} else {
		fr->pos = (u64)(s64)(int)user_u32(f + pp->f_pos);
	}
	fr->code = code;
	fr->firstlineno = (int)user_u32(code + pp->co_firstlineno);
	u64 name = pp->co_qualname ? user_u64(code + pp->co_qualname) : user_u64(code + pp->co_name);
	copy_pystr(pp, name, &fr->name_hdr, fr->name, PH_NAME_LEN);
	copy_pystr(pp, user_u64(code + pp->co_filename), &fr->file_hdr, fr->file, PH_FILE_LEN);
	copy_linetable(pp, code, fr);
	return 1;
}

/* Stack records are too large for the BPF stack: build them in a per-CPU slot of this
 * array (max_entries set to the number of CPUs at load time), then copy to the ring. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ph_stack_event);
} stack_scratch SEC(".maps");

struct walk_ctx {
	struct ph_pyproc pp;
	u64 f;
	u32 n;
	u32 slot;
	u32 truncated;
};

static long walk_one(u32 i, struct walk_ctx *c)
{
	if (!c->f)
		return 1;
	if (c->n >= PH_MAX_PYFRAMES) {
		c->truncated = 1;
		return 1;
	}
	struct ph_stack_event *se = bpf_map_lookup_elem(&stack_scratch, &c->slot);
	if (!se)
		return 1;
	struct ph_pyframe *fr = &se->frames[c->n & (PH_MAX_PYFRAMES - 1)];
	c->n += read_frame(&c->pp, c->f, fr);
	c->f = user_u64(c->f + c->pp.f_back);
	return 0;
}

/* Send the calling thread's Python stack, to be attached to the event of type for_type
 * that follows it. Processes userspace has not described yet get a record that says so.
 * Returns the record's ts_ns, which the event carries as stack_ts (0: none sent). */
static __always_inline u64 emit_pystack(u32 for_type, u32 child_pid)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	struct walk_ctx c = { .slot = bpf_get_smp_processor_id() };
	struct ph_stack_event *se = bpf_map_lookup_elem(&stack_scratch, &c.slot);
	struct ph_pyproc *pp = bpf_map_lookup_elem(&pyprocs, &tgid);

	if (!se)
		return 0;
	se->type = PH_EV_STACK;
	se->pid = tgid;
	se->tid = tid;
	se->for_type = for_type;
	se->child_pid = child_pid;
	se->ts_ns = bpf_ktime_get_ns();
	se->proc_start = current_proc_start();
	se->nframes = 0;
	se->truncated = 0;
	se->tstate = 0;
	se->status = PH_STACK_NOT_PYTHON;
	if (pp) {
		c.pp = *pp;
		se->tstate = find_current_tstate(&c.pp, tid);
		se->status = se->tstate ? PH_STACK_OK : PH_STACK_NO_THREAD;
	}
	if (se->status == PH_STACK_OK) {
		c.f = current_frame(&c.pp, se->tstate);
		/* shim frames do not count towards the cap; the walk itself is bounded too */
		bpf_loop(2 * PH_MAX_PYFRAMES, walk_one, &c, 0);
		se->nframes = c.n;
		se->truncated = c.truncated;
	}
	/* only the frames filled: a reap 6 frames deep sends ~5 KiB, not the whole 47 KiB */
	u32 n = se->nframes <= PH_MAX_PYFRAMES ? se->nframes : PH_MAX_PYFRAMES;
	u64 size = offsetof(struct ph_stack_event, frames) + (u64)n * sizeof(struct ph_pyframe);
	if (size > sizeof(*se))
		size = sizeof(*se);
	/* A reap's stack (any-child waits only) by a thread other than the main one wakes the
	 * reader: it learns the reaper thread's name when it reads the stack, and such a thread
	 * may not live long. A main thread lives as long as its process: no hurry (a loop
	 * reaping 200 children a second would wake the reader 200 times). The other stacks
	 * precede an urgent event. */
	u64 wake = for_type != PH_EV_REAP ? 0 : tid != tgid ? RB_URGENT : RB_LAZY;
	if (bpf_ringbuf_output(&events, se, size, wake))
		stat_inc(PH_STAT_RINGBUF_DROPS);
	return se->ts_ns;
}

/* ---------------------------------------------------------------- futex waits */

/* futex(2) commands that block: WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2. */
#define WAIT_CMDS ((1u << PH_FUTEX_WAIT) | (1u << PH_FUTEX_LOCK_PI) | (1u << PH_FUTEX_WAIT_BITSET) | \
		   (1u << PH_FUTEX_WAIT_REQUEUE_PI) | (1u << PH_FUTEX_LOCK_PI2))

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
	u32 k = tid & (PH_WAIT_SLOTS - 1);
	return bpf_map_lookup_elem(&wait_slots, &k);
}

/* Sets or clears slot k's bit for the scanner. */
static __always_inline void slot_mark(u32 k, bool used)
{
	u32 zero = 0;
	struct ph_slot_bits *b = bpf_map_lookup_elem(&wait_slot_bits, &zero);
	if (!b)
		return;
	k &= PH_WAIT_SLOTS - 1;
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

SEC("tracepoint/syscalls/sys_enter_futex")
int futex_enter(struct trace_event_raw_sys_enter *ctx)
{
	u32 op = (u32)ctx->args[1];
	u32 cmd = op & PH_FUTEX_CMD_MASK;

	if (cmd >= 32 || !((1u << cmd) & WAIT_CMDS))
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
 * real end. */
static __always_inline struct ph_wait *own_wait(u32 tid)
{
	struct ph_wait *w = slot_of(tid);
	if (w && w->tid != tid)
		w = waits_overflow_live ? bpf_map_lookup_elem(&waits, &tid) : NULL;
	return w;
}

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

static __always_inline int wait_call_begin(s32 pid_arg, u32 syscall, u64 infop, u32 options)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;

	if (!is_interesting(id >> 32))
		return 0;
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

SEC("tracepoint/syscalls/sys_enter_wait4")
int wait4_enter(struct trace_event_raw_sys_enter *ctx)
{
	s32 upid = (s32)ctx->args[0];
	/* upid > 0 names one child; -1, 0 and -pgid wait for any of several. */
	return wait_call_begin(upid > 0 ? upid : -1, 0, 0, (u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_waitid")
int waitid_enter(struct trace_event_raw_sys_enter *ctx)
{
	s32 id = (s32)ctx->args[1];
	s32 pid_arg = (ctx->args[0] == PH_P_PID && id > 0) ? id : -1;
	return wait_call_begin(pid_arg, 1, ctx->args[2], (u32)ctx->args[3]);
}

static __always_inline void record_reap(u32 child, u32 tgid, u32 tid, bool any_child)
{
	struct ph_reap r = {
		.reap_ns = bpf_ktime_get_ns(),
		.tgid = tgid,
		.tid = tid,
	};
	if (bpf_map_update_elem(&reaps, &child, &r, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
	/* Who took the status, and from where: needed if another wait later finds it gone.
	 * Only waits for any child take the stack (~15 us of frame walking per reap): a wait
	 * for one named child (Popen.wait/poll) reaps what its caller started, and is every
	 * subprocess call's own reap; who and when are still recorded for it. */
	if (any_child && bpf_map_lookup_elem(&pyprocs, &tgid) &&
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

#include "fork.bpf.h"

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

/* Whether the last path component starts with "python" (python, python3.11, python2.7...).
 * len is the string length including its NUL, as bpf_probe_read_kernel_str returns it.
 * Scans backward from the end so the verifier tracks one loop variable only. */
static __always_inline bool basename_is_python(const char *path, long len)
{
	long base = 0;
	for (int i = 2; i < PH_PATH_LEN; i++) {
		long idx = len - i;
		if (idx < 0)
			break;
		if (path[idx & (PH_PATH_LEN - 1)] == '/') {
			base = idx + 1;
			break;
		}
	}
	if (base > PH_PATH_LEN - 7 || len - base < 7)
		return false;
	const char *b = path + (base & (PH_PATH_LEN - 1));
	if (base + 6 >= PH_PATH_LEN)
		return false;
	return b[0] == 'p' && b[1] == 'y' && b[2] == 't' && b[3] == 'h' && b[4] == 'o' && b[5] == 'n';
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
