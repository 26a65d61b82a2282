/* lockown: locks held and waited for, from the target's memory (see lockown.h).
 *
 * Facts (x86_64, default builds; offsets in pylayout.c; each checked on live processes of
 * 2.7.18, 3.6.15-3.13.0 and Debian 3.11.2 with a thread blocked on a known lock):
 *  - _thread.lock (2.7: thread.lock): {ob_refcnt, ob_type, lock_lock at 16}; lock_lock is
 *    the sem_t* whose address is the futex a thread blocked in acquire() waits on
 *    (/proc/PID/task/TID/syscall shows `202 <lock_lock> ...`).
 *  - _thread.RLock (3.x, C): rlock_lock 16 (the futex), rlock_owner 24 (the owner's thread
 *    ident = tstate->thread_id; 0 when free), rlock_count 32. 2.7's RLock is Python code:
 *    class _RLock with _RLock__block (a thread.lock) and _RLock__owner (an int ident).
 *  - PyCFunctionObject (a bound builtin method such as lock.__exit__): m_ml 16 (PyMethodDef,
 *    ml_name at 0), m_self 24. PyMethodObject (a bound Python method, 2.7 instancemethod):
 *    im_func 16, im_self 24. threading.Condition (2.7: _Condition) keeps its lock in _lock
 *    (2.7: _Condition__lock); its __exit__ is a Python method.
 *  - A `with X:` in progress keeps X's bound __exit__ on the frame's value stack:
 *    <= 3.10 (and 2.7), SETUP_WITH pushes __exit__, calls __enter__, then sets up a block
 *    whose b_level counts that slot: __exit__ is f_valuestack[b_level - 1] of the block
 *    (f_blockstack[0..f_iblock), PyTryBlock {b_type, b_handler, b_level} ints). 3.11+:
 *    the value stack begins at localsplus + co_nlocalsplus slots; the exception-table
 *    entry covering the current instruction gives the live depth (entries: varints start,
 *    size, target (code units), depth<<1|lasti; Objects/exception_handling_notes.txt).
 *  - The line of the `with`: 3.10+, the line of the with's exception handler (the
 *    compiler attributes the cleanup to the with statement); <= 3.9 and 2.7, the line of
 *    the SETUP_WITH (opcode 143 on 2.7-3.10) whose jump target is the block's handler.
 *  - The source name: the LOAD_NAME/LOAD_GLOBAL/LOAD_FAST (+ LOAD_ATTR) just before the
 *    SETUP_WITH (<= 3.10) or BEFORE_WITH (3.11+: decoded from co_code_adaptive through the
 *    version's tables in pyopcodes.c; LOAD_GLOBAL names co_names[oparg >> 1], LOAD_ATTR
 *    co_names[oparg >> 1] on 3.12+, LOAD_FAST co_localsplusnames[oparg]). For a held lock,
 *    the BEFORE_WITH ends where the with's first exception-table entry starts; for a waited
 *    one, the program's frame is at it. */
#include "lockown_int.h"

#include <stdio.h>
#include <string.h>

const char *lo_kind_str(enum lo_kind k)
{
	switch (k) {
	case LO_LOCK: return "Lock";
	case LO_RLOCK: return "RLock";
	case LO_CONDITION: return "Condition";
	default: return NULL;
	}
}

static void find_waited(struct ctx *c, const struct py_thread *th, struct lo_thread *t)
{
	const struct py_layout *l = c->l;
	if (th->nframes == 0 || !th->frames[0].addr || !th->frames[0].code || !th->futex_addr)
		return;
	const struct py_frame *f = &th->frames[0];
	uint64_t slots[LO_MAX_SLOTS];
	size_t n = 0;
	bool ok1, ok2;
	if (l->frames == PY_FRAMES_OBJECTS) {
		int32_t nlocals = rd_i32(c, f->code + l->co_nlocals, &ok1);
		int32_t stack = rd_i32(c, f->code + l->co_stacksize, &ok2);
		if (!ok1 || !ok2 || nlocals < 0 || stack < 0)
			return;
		size_t a = (size_t)nlocals < LO_MAX_SLOTS / 2 ? (size_t)nlocals : LO_MAX_SLOTS / 2;
		size_t b = (size_t)stack < LO_MAX_SLOTS / 2 ? (size_t)stack : LO_MAX_SLOTS / 2;
		uint64_t vs = rd_u64(c, f->addr + l->f_valuestack);
		if (a && rd(c, f->addr + l->f_localsplus, slots, a * 8))
			n = a;
		if (b && vs && rd(c, vs, slots + n, b * 8))
			n += b;
	} else {
		int32_t nlp = rd_i32(c, f->code + l->co_nlocalsplus, &ok1);
		int32_t stack = rd_i32(c, f->code + l->co_stacksize, &ok2);
		if (!ok1 || !ok2 || nlp < 0 || stack < 0)
			return;
		size_t want = (size_t)nlp + (size_t)stack;
		if (want > LO_MAX_SLOTS)
			want = LO_MAX_SLOTS;
		if (want && rd(c, f->addr + l->iframe_localsplus, slots, want * 8))
			n = want;
	}
	for (size_t i = 0; i < n; i++) {
		struct lo_lock k = { .frame = 0, .line = -1 };
		if (!slots[i] || !resolve(c, slots[i], true, false, &k) || k.futex != th->futex_addr)
			continue;
		/* a Condition found through its lock beats the bare lock; else the first */
		if (!t->waits_known || (k.kind == LO_CONDITION && t->waits.kind != LO_CONDITION)) {
			t->waits = k;
			t->waits_known = true;
		}
	}
}

int lockown_read(struct py_reader *r, const struct py_process *p, struct lo_thread *out,
		 struct lo_lock **pool)
{
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	*pool = NULL;
	c.r = r;
	c.pid = p->pid;
	c.l = py_reader_layout(r, p->pid);
	c.pm = py_reader_procmem(r, p->pid);
	memset(out, 0, p->nthreads * sizeof(*out));
	if (!c.l)
		return -1;
	py_reader_mem_begin(r, p->pid);
	xcache_used = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *th = &p->threads[i];
		c.first = c.npool;
		size_t nf = th->nframes < LO_MAX_FRAMES ? th->nframes : LO_MAX_FRAMES;
		for (size_t k = 0; k < nf; k++) {
			const struct py_frame *f = &th->frames[k];
			if (!f->addr || !f->code)
				continue;
			if (c.l->frames == PY_FRAMES_OBJECTS)
				held_old(&c, f, (int)k, &out[i]);
			else
				held_new(&c, f, (int)k, &out[i]);
		}
		if (th->state == PY_STATE_LOCK_WAIT)
			find_waited(&c, th, &out[i]);
		if (out[i].waits_known) {
			/* the program's frame that is entering the `with` (not threading.py's) */
			for (size_t k = 0; k < nf; k++) {
				const struct py_frame *f = &th->frames[k];
				if (f->file && strstr(f->file, "/lib/python"))
					continue;
				if (f->addr && f->code)
					entering_name(&c, f, out[i].waits.name, sizeof(out[i].waits.name));
				break;
			}
		}
	}
	size_t at = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		out[i].held = out[i].nheld ? c.pool + at : NULL;
		at += out[i].nheld;
	}
	*pool = c.pool;
	return 0;
}

/* ---- Thread.join -------------------------------------------------------------------- */

/* A small non-negative int object's value (2.7 int: ob_ival at 16; 3.x int: 30-bit digits
 * at 24 after ob_size (<= 3.11) or lv_tag (3.12+: digit count << 3 | sign)). */
static bool read_int(struct ctx *c, uint64_t obj, uint64_t *out)
{
	if (type_kind(c, obj) != TK_INT)
		return false;
	if (c->l->ints == PY_INT_27)
		return rd(c, obj + c->l->int_value, out, sizeof(*out));
	int64_t size;
	if (!rd(c, obj + c->l->int_size, &size, sizeof(size)))
		return false;
	uint64_t ndigits;
	if (c->l->ints == PY_INT_LVTAG) {
		if ((size & 3) == 2)
			return false; /* negative */
		ndigits = (uint64_t)size >> 3;
	} else {
		if (size < 0)
			return false;
		ndigits = (uint64_t)size;
	}
	if (ndigits > 3)
		return false;
	uint32_t d[3] = { 0, 0, 0 };
	if (ndigits && !rd(c, obj + c->l->int_value, d, ndigits * 4))
		return false;
	*out = 0;
	for (uint64_t i = ndigits; i-- > 0;)
		*out = (*out << 30) | (d[i] & 0x3fffffffu);
	return true;
}

uint64_t lockown_join_ident(struct py_reader *r, const struct py_process *p, const struct py_thread *t)
{
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.pid = p->pid;
	c.l = py_reader_layout(r, p->pid);
	c.pm = py_reader_procmem(r, p->pid);
	if (!c.l)
		return 0;
	for (size_t k = 0; k < t->nframes && k < 8; k++) {
		const struct py_frame *f = &t->frames[k];
		const char *fn = f->function ? strrchr(f->function, '.') : NULL;
		fn = fn ? fn + 1 : f->function;
		if (!fn || !f->addr || !f->file || !strstr(f->file, "threading.py") ||
		    (strcmp(fn, "join") != 0 && strcmp(fn, "_wait_for_tstate_lock") != 0))
			continue;
		uint64_t self = rd_u64(&c, f->addr + (c.l->frames == PY_FRAMES_OBJECTS ?
							c.l->f_localsplus : c.l->iframe_localsplus));
		uint64_t id = py_reader_mem_attr(r, p->pid, self, c.l->attr_ident);
		uint64_t v;
		if (id && read_int(&c, id, &v))
			return v;
	}
	return 0;
}
/* ---- queue.Queue -------------------------------------------------------------------- */

/* Items in a collections.deque: Py_SIZE on 3.5+ (Modules/_collectionsmodule.c, a
 * PyVarObject), `len` after the two block pointers and two indexes on 2.7 (offset 48). */
static bool deque_len(struct ctx *c, uint64_t obj, uint64_t *out)
{
	char name[32];
	uint64_t type = obj && !(obj & 7) ? rd_u64(c, obj + c->l->ob_type) : 0;
	if (!type || !rd_cstr(c, rd_u64(c, type + c->l->tp_name), name, sizeof(name)) ||
	    strcmp(name, "collections.deque") != 0)
		return false;
	int64_t n;
	if (!rd(c, obj + (c->l->major == 2 ? 48 : 16), &n, sizeof(n)) || n < 0)
		return false;
	*out = (uint64_t)n;
	return true;
}

bool lockown_queue_state(struct py_reader *r, const struct py_process *p, const struct py_thread *t,
			 const char *method, uint64_t *queue, uint64_t *unfinished, uint64_t *queued)
{
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.pid = p->pid;
	c.l = py_reader_layout(r, p->pid);
	c.pm = py_reader_procmem(r, p->pid);
	if (!c.l)
		return false;
	for (size_t k = 0; k < t->nframes && k < 8; k++) {
		const struct py_frame *f = &t->frames[k];
		const char *fn = f->function ? strrchr(f->function, '.') : NULL;
		fn = fn ? fn + 1 : f->function;
		const char *base = f->file ? strrchr(f->file, '/') : NULL;
		base = base ? base + 1 : f->file;
		if (!fn || !f->addr || !base || strcmp(fn, method) != 0 ||
		    (strcmp(base, "queue.py") != 0 && strcmp(base, "Queue.py") != 0))
			continue;
		uint64_t self = rd_u64(&c, f->addr + (c.l->frames == PY_FRAMES_OBJECTS ?
							c.l->f_localsplus : c.l->iframe_localsplus));
		if (!self)
			return false;
		*queue = self;
		uint64_t u = py_reader_mem_attr(r, p->pid, self, "unfinished_tasks");
		uint64_t d = py_reader_mem_attr(r, p->pid, self, "queue");
		return u && d && read_int(&c, u, unfinished) && deque_len(&c, d, queued);
	}
	return false;
}
