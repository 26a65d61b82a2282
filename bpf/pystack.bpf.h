/* SPDX-License-Identifier: GPL-2.0 */
/* pystack.bpf.h: included once by pyhang.bpf.c (see its table of contents).
 *
 * Owns: the Python stack walker: reads the current thread's Python frames
 * through the layout userspace described in pyprocs (struct ph_pyproc), and sends them as
 * one stack record (PH_EV_PYSTACK) ahead of the event that needs them (emit_pystack). The
 * frame-visibility and PEP 393 string rules used here have userspace twins (pyrules.h). */
#ifndef PH_PYSTACK_BPF_H
#define PH_PYSTACK_BPF_H

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
		if (!py_str_compact(state)) /* not compact: never the case for code object names */
			return;
		len = user_u64(obj + pp->str_length);
		if (py_str_ascii(state)) { /* ASCII: 1 byte per character after PyASCIIObject */
			data = obj + pp->str_ascii_data;
		} else {
			kind = py_str_kind(state);
			if (!py_str_kind_valid(kind))
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

	if (!code || (pp->f_owner && py_frame_is_cstack_shim(owner, pp->owner_cstack)))
		return 0;
	if (user_u64(code + pp->ob_type) != pp->code_type)
		return 0;
	if (pp->pos_is_ptr) {
		u64 start = code + pp->co_code_adaptive;
		u64 instr = user_u64(f + pp->f_pos);
		/* 3.11+: a frame whose instruction pointer is before _co_firsttraceable is still
		 * being set up ("incomplete") unless a generator owns it: CPython skips it too. */
		if (pp->co_firsttraceable &&
		    py_frame_incomplete(owner, pp->owner_generator, instr, start,
					user_u32(code + pp->co_firsttraceable)))
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

#endif /* PH_PYSTACK_BPF_H */
