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
 *    the SETUP_WITH (opcode 143 on 2.7-3.10) whose jump target is the block's handler. */
#include "lockown.h"

#include <stdio.h>
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

enum tk { TK_UNREAD, TK_OTHER, TK_LOCK, TK_RLOCK, TK_BUILTIN, TK_METHOD, TK_COND, TK_PYRLOCK, TK_INT };

#define TYPE_CACHE 32

#define LINE_CACHE 64

struct ctx {
	struct py_reader *r;
	pid_t pid;
	const struct py_layout *l;
	struct { uint64_t type; enum tk kind; } types[TYPE_CACHE];
	unsigned ntypes;
	uint64_t exit_ml[4];      /* PyMethodDefs known to be named __exit__ */
	unsigned nexit_ml;
	struct { uint64_t code, handler; int line; bool used; char name[LO_NAME_LEN]; } lines[LINE_CACHE];
};

static bool rd(struct ctx *c, uint64_t addr, void *buf, size_t len)
{
	return py_reader_mem_read(c->r, c->pid, addr, buf, len) == 0;
}

static uint64_t rd_u64(struct ctx *c, uint64_t addr)
{
	uint64_t v = 0;
	return rd(c, addr, &v, sizeof(v)) ? v : 0;
}

static int32_t rd_i32(struct ctx *c, uint64_t addr, bool *ok)
{
	int32_t v = 0;
	*ok = rd(c, addr, &v, sizeof(v));
	return v;
}

/* A NUL-terminated C string of at most cap-1 bytes (tp_name, ml_name). */
static bool rd_cstr(struct ctx *c, uint64_t addr, char *buf, size_t cap)
{
	if (!addr || !rd(c, addr, buf, cap - 1)) {
		/* near the end of a mapping: try shorter */
		size_t n = 0;
		for (; n + 1 < cap && addr && rd(c, addr + n, buf + n, 1); n++)
			if (!buf[n])
				return true;
		return false;
	}
	buf[cap - 1] = '\0';
	return true;
}

static enum tk kind_of_name(const char *n)
{
	if (!strcmp(n, "_thread.lock") || !strcmp(n, "thread.lock"))
		return TK_LOCK;
	if (!strcmp(n, "_thread.RLock"))
		return TK_RLOCK;
	if (!strcmp(n, "builtin_function_or_method"))
		return TK_BUILTIN;
	if (!strcmp(n, "method") || !strcmp(n, "instancemethod"))
		return TK_METHOD;
	if (!strcmp(n, "Condition") || !strcmp(n, "_Condition"))
		return TK_COND;
	if (!strcmp(n, "_RLock"))
		return TK_PYRLOCK;
	if (!strcmp(n, "int"))
		return TK_INT;
	return TK_OTHER;
}

static enum tk type_kind(struct ctx *c, uint64_t obj)
{
	if (!obj || (obj & 7))
		return TK_OTHER;
	uint64_t type = rd_u64(c, obj + c->l->ob_type);
	if (!type)
		return TK_OTHER;
	for (unsigned i = 0; i < c->ntypes; i++)
		if (c->types[i].type == type)
			return c->types[i].kind;
	char name[32];
	enum tk k = rd_cstr(c, rd_u64(c, type + c->l->tp_name), name, sizeof(name)) ?
		kind_of_name(name) : TK_OTHER;
	unsigned slot = c->ntypes < TYPE_CACHE ? c->ntypes++ : (type >> 4) % TYPE_CACHE;
	c->types[slot].type = type;
	c->types[slot].kind = k;
	return k;
}

/* The lock behind obj: a lock, an RLock, a Condition (its lock), 2.7's Python RLock, or,
 * when via_method, a bound method whose self is one (lock.__exit__, cond.__exit__).
 * exit_only: a builtin bound method must be named __exit__. */
static bool resolve(struct ctx *c, uint64_t obj, bool via_method, bool exit_only, struct lo_lock *out)
{
	bool py2 = c->l->major == 2;
	switch (type_kind(c, obj)) {
	case TK_LOCK:
		out->kind = LO_LOCK;
		out->obj = obj;
		out->futex = rd_u64(c, obj + 16);
		return out->futex != 0;
	case TK_RLOCK:
		out->kind = LO_RLOCK;
		out->obj = obj;
		out->futex = rd_u64(c, obj + 16);
		out->reentrant = true;
		out->owner_known = rd(c, obj + 24, &out->owner, sizeof(out->owner));
		return out->futex != 0;
	case TK_BUILTIN: {
		if (!via_method)
			return false;
		if (exit_only) {
			char name[16];
			uint64_t ml = rd_u64(c, obj + 16);
			bool known = false;
			for (unsigned i = 0; ml && i < c->nexit_ml; i++)
				known |= c->exit_ml[i] == ml;
			if (!known) {
				if (!ml || !rd_cstr(c, rd_u64(c, ml), name, sizeof(name)) ||
				    strcmp(name, "__exit__"))
					return false;
				c->exit_ml[c->nexit_ml++ % 4] = ml;
				if (c->nexit_ml > 4)
					c->nexit_ml = 4;
			}
		}
		uint64_t self = rd_u64(c, obj + 24);
		enum tk k = type_kind(c, self);
		return (k == TK_LOCK || k == TK_RLOCK) && resolve(c, self, false, false, out);
	}
	case TK_METHOD: {
		if (!via_method)
			return false;
		uint64_t self = rd_u64(c, obj + 24);
		enum tk k = type_kind(c, self);
		return (k == TK_COND || k == TK_PYRLOCK) && resolve(c, self, false, false, out);
	}
	case TK_COND: {
		uint64_t inner = py_reader_mem_attr(c->r, c->pid, obj, py2 ? "_Condition__lock" : "_lock");
		enum tk k = type_kind(c, inner);
		if ((k != TK_LOCK && k != TK_RLOCK && k != TK_PYRLOCK) || !resolve(c, inner, false, false, out))
			return false;
		out->kind = LO_CONDITION;
		out->obj = obj;
		return true;
	}
	case TK_PYRLOCK: {
		uint64_t block = py_reader_mem_attr(c->r, c->pid, obj, py2 ? "_RLock__block" : "_block");
		if (type_kind(c, block) != TK_LOCK || !resolve(c, block, false, false, out))
			return false;
		out->kind = LO_RLOCK;
		out->obj = obj;
		out->reentrant = true;
		out->owner_known = false;
		uint64_t owner = py_reader_mem_attr(c->r, c->pid, obj, py2 ? "_RLock__owner" : "_owner");
		if (py2 && owner && type_kind(c, owner) == TK_INT) {
			out->owner = rd_u64(c, owner + 16); /* PyIntObject.ob_ival */
			out->owner_known = true;
		} else if (py2 && owner && type_kind(c, owner) == TK_OTHER) {
			out->owner = 0; /* None: free */
			out->owner_known = true;
		}
		return true;
	}
	default:
		return false;
	}
}

/* ---- the line and the source name of a `with` (<= 3.10, 2.7) ---------------------------- */

#define MAX_CODE_BYTES 65536u
#define MAX_INSNS 2048

/* CPython 2.7-3.10 opcodes (Lib/opcode.py of each): SETUP_WITH 143, EXTENDED_ARG 145 (2.7)
 * / 144 (3.x), LOAD_NAME 101, LOAD_ATTR 106, LOAD_GLOBAL 116, LOAD_FAST 124; 2.7: opcodes
 * >= 90 take a 2-byte argument. 3.6+: 2-byte instructions. Jumps relative to the next
 * instruction, in bytes (<= 3.9) or instructions (3.10). */
enum { OP_SETUP_WITH = 143, OP_LOAD_NAME = 101, OP_LOAD_ATTR = 106, OP_LOAD_GLOBAL = 116,
       OP_LOAD_FAST = 124 };

struct insn {
	uint32_t off;   /* bytes */
	uint16_t op, len;
	uint32_t arg;
};

static struct insn insns[MAX_INSNS];

/* The instructions of the first n bytes of code's bytecode; their count (0: unreadable). */
static size_t decode(struct ctx *c, uint64_t code, uint64_t n)
{
	const struct py_layout *l = c->l;
	uint64_t bytes = rd_u64(c, code + l->co_code), size = 0;
	unsigned char buf[4096];
	if (!bytes || !rd(c, bytes + l->bytes_size, &size, sizeof(size)) || size == 0 ||
	    size > MAX_CODE_BYTES)
		return 0;
	if (n > size)
		n = size;
	if (n > sizeof(buf))
		n = sizeof(buf);
	if (!rd(c, bytes + l->bytes_data, buf, n))
		return 0;
	size_t k = 0;
	uint64_t ext = 0;
	for (uint64_t o = 0; o < n && k < MAX_INSNS;) {
		unsigned op = buf[o];
		uint64_t arg = 0, len = 1;
		if (l->major == 2) {
			if (op >= 90) {
				if (o + 2 >= n)
					break;
				arg = ext << 16 | buf[o + 1] | (uint64_t)buf[o + 2] << 8;
				len = 3;
			}
			ext = op == 145 ? arg : 0;
		} else {
			if (o + 1 >= n)
				break;
			arg = ext << 8 | buf[o + 1];
			len = 2;
			ext = op == 144 ? arg : 0;
		}
		insns[k++] = (struct insn){ (uint32_t)o, (uint16_t)op, (uint16_t)len, (uint32_t)arg };
		o += len;
	}
	return k;
}

/* An identifier-like ASCII str (2.7: a plain str) at obj, into out; false otherwise. */
static bool read_ident(struct ctx *c, uint64_t obj, char *out, size_t cap)
{
	const struct py_layout *l = c->l;
	uint64_t n = 0, data;
	if (!obj)
		return false;
	if (l->strs == PY_STR_PEP393) {
		unsigned char state = 0;
		if (!rd(c, obj + l->str_length, &n, sizeof(n)) ||
		    !rd(c, obj + l->str_state, &state, 1) || (state & 0x60) != 0x60) /* compact ascii */
			return false;
		data = obj + l->str_ascii_data;
	} else {
		if (!rd(c, obj + l->bytes_size, &n, sizeof(n)))
			return false;
		data = obj + l->bytes_data;
	}
	if (n == 0 || n >= cap || !rd(c, data, out, n))
		return false;
	out[n] = '\0';
	for (uint64_t i = 0; i < n; i++)
		if (!(out[i] == '_' || (out[i] >= 'a' && out[i] <= 'z') || (out[i] >= 'A' && out[i] <= 'Z') ||
		      (i > 0 && out[i] >= '0' && out[i] <= '9')))
			return false;
	return true;
}

/* Item i of the tuple at code + field, as an identifier. */
static bool tuple_ident(struct ctx *c, uint64_t code, uint32_t field, uint32_t i, char *out, size_t cap)
{
	uint64_t tuple = rd_u64(c, code + field), size = 0;
	if (!tuple || !rd(c, tuple + 16, &size, sizeof(size)) || i >= size)
		return false;
	return read_ident(c, rd_u64(c, tuple + 24 + 8 * (uint64_t)i), out, cap);
}

static bool load_ident(struct ctx *c, uint64_t code, const struct insn *in, char *out, size_t cap)
{
	switch (in->op) {
	case OP_LOAD_NAME:
	case OP_LOAD_GLOBAL:
		return tuple_ident(c, code, c->l->co_names, in->arg, out, cap);
	case OP_LOAD_FAST:
		return tuple_ident(c, code, c->l->co_varnames, in->arg, out, cap);
	default:
		return false;
	}
}

/* The source name of what instruction i's predecessors load: `x`, or `x.attr`. */
static void name_before(struct ctx *c, uint64_t code, size_t i, char *out, size_t cap)
{
	char a[48], b[48];
	out[0] = '\0';
	if (i == 0)
		return;
	const struct insn *p = &insns[i - 1];
	if (load_ident(c, code, p, a, sizeof(a))) {
		snprintf(out, cap, "%s", a);
	} else if (p->op == OP_LOAD_ATTR && i >= 2 && load_ident(c, code, &insns[i - 2], a, sizeof(a)) &&
		   tuple_ident(c, code, c->l->co_names, p->arg, b, sizeof(b))) {
		snprintf(out, cap, "%.30s.%.30s", a, b);
	}
}

static bool is_310(const struct py_layout *l)
{
	return l->major == 3 && l->minor == 10;
}

/* The SETUP_WITH whose block's handler is `handler` (f_blockstack's b_handler: bytes, or
 * instructions on 3.10): its line into *line and its source name into name. */
static void with_site_uncached(struct ctx *c, uint64_t code, uint64_t handler, int *line,
			       char *name, size_t cap)
{
	uint64_t limit = is_310(c->l) ? handler * 2 : handler;
	size_t n = decode(c, code, limit);
	for (size_t i = 0; i < n; i++) {
		const struct insn *in = &insns[i];
		uint64_t target = is_310(c->l) ? in->off / 2 + 1 + in->arg : in->off + in->len + in->arg;
		if (in->op != OP_SETUP_WITH || target != handler)
			continue;
		*line = py_reader_code_line(c->r, c->pid, code, is_310(c->l) ? in->off / 2 : in->off);
		name_before(c, code, i, name, cap);
		return;
	}
}

static void with_site(struct ctx *c, uint64_t code, uint64_t handler, int *line, char *name, size_t cap)
{
	unsigned slot = (unsigned)((code >> 4) ^ handler) % LINE_CACHE;
	if (!(c->lines[slot].used && c->lines[slot].code == code && c->lines[slot].handler == handler)) {
		c->lines[slot].code = code;
		c->lines[slot].handler = handler;
		c->lines[slot].line = -1;
		c->lines[slot].name[0] = '\0';
		c->lines[slot].used = true;
		with_site_uncached(c, code, handler, &c->lines[slot].line, c->lines[slot].name,
				   sizeof(c->lines[slot].name));
	}
	*line = c->lines[slot].line;
	snprintf(name, cap, "%s", c->lines[slot].name);
}

/* <= 3.10: the source name of the `with` a frame is entering (its f_lasti at SETUP_WITH). */
static void entering_name(struct ctx *c, const struct py_frame *f, char *name, size_t cap)
{
	name[0] = '\0';
	if ((int64_t)f->pos < 0)
		return;
	uint64_t at = is_310(c->l) ? f->pos * 2 : f->pos;
	size_t n = decode(c, f->code, at + 3);
	for (size_t i = 0; i < n; i++)
		if (insns[i].off == at) {
			if (insns[i].op == OP_SETUP_WITH)
				name_before(c, f->code, i, name, cap);
			return;
		}
}

/* ---- 3.11+ exception table -------------------------------------------------------------- */

struct xentry {
	uint32_t start, end, target, depth;
	bool lasti;
};

static bool varint(const unsigned char *t, size_t n, size_t *i, uint32_t *out)
{
	if (*i >= n)
		return false;
	unsigned b = t[(*i)++];
	uint32_t v = b & 63;
	while (b & 64) {
		if (*i >= n || v > (1u << 24))
			return false;
		b = t[(*i)++];
		v = v << 6 | (b & 63);
	}
	*out = v;
	return true;
}

/* Entries of an exception table, at most max; the count. */
static size_t parse_xtable(const unsigned char *t, size_t n, struct xentry *e, size_t max)
{
	size_t i = 0, k = 0;
	while (k < max) {
		uint32_t start, size, target, dl;
		if (!varint(t, n, &i, &start) || !varint(t, n, &i, &size) || !varint(t, n, &i, &target) ||
		    !varint(t, n, &i, &dl))
			break;
		e[k++] = (struct xentry){ start, start + size, target, dl >> 1, dl & 1 };
	}
	return k;
}

/* ---- held locks ------------------------------------------------------------------------ */

static void add_held(struct lo_thread *t, const struct lo_lock *k)
{
	for (size_t i = 0; i < t->nheld; i++)
		if (t->held[i].futex == k->futex)
			return; /* the same lock taken twice (an RLock, or Condition and its lock) */
	if (t->nheld < LO_MAX_HELD)
		t->held[t->nheld++] = *k;
}

#define MAX_BLOCKS 20 /* CO_MAXBLOCKS */

static void held_old(struct ctx *c, const struct py_frame *f, int fi, struct lo_thread *t)
{
	const struct py_layout *l = c->l;
	bool ok = true;
	/* f_iblock as the snapshot's walk read it (the frame is not read again), else now */
	int32_t iblock = f->iblock >= 0 ? f->iblock : rd_i32(c, f->addr + l->f_iblock, &ok);
	if (!ok || iblock <= 0 || iblock > MAX_BLOCKS)
		return;
	int32_t blocks[MAX_BLOCKS * 3];
	uint64_t vs = rd_u64(c, f->addr + l->f_valuestack);
	if (!vs || !rd(c, f->addr + l->f_blockstack, blocks, (size_t)iblock * 12))
		return;
	for (int b = iblock - 1; b >= 0; b--) {
		int32_t handler = blocks[b * 3 + 1], level = blocks[b * 3 + 2];
		if (level < 1 || level > 4096)
			continue;
		uint64_t slot = rd_u64(c, vs + 8 * (uint64_t)(level - 1));
		struct lo_lock k = { .frame = fi, .line = -1 };
		if (!resolve(c, slot, true, true, &k))
			continue;
		if (handler >= 0)
			with_site(c, f->code, (uint64_t)handler, &k.line, k.name, sizeof(k.name));
		add_held(t, &k);
	}
}

#define MAX_XTABLE 2048u
#define MAX_XENTRIES 256

/* 3.11+: the exception table of code, parsed; the number of entries. */
static size_t read_xtable(struct ctx *c, uint64_t code, struct xentry *e)
{
	const struct py_layout *l = c->l;
	uint64_t bytes = rd_u64(c, code + l->co_exceptiontable), size = 0;
	unsigned char t[MAX_XTABLE];
	if (!bytes || !rd(c, bytes + l->bytes_size, &size, sizeof(size)) || size == 0)
		return 0;
	if (size > sizeof(t))
		size = sizeof(t); /* the entries read whole before the cut are right */
	if (!rd(c, bytes + l->bytes_data, t, size))
		return 0;
	return parse_xtable(t, size, e, MAX_XENTRIES);
}

/* Parsed exception tables of the code objects met in one lockown_read (a process's threads
 * mostly run the same few functions). */
#define XCACHE 16
struct xcache {
	uint64_t code;
	int32_t nlocalsplus;
	size_t n;
	struct xentry e[MAX_XENTRIES];
};
static struct xcache xcache[XCACHE];
static unsigned xcache_used;

static struct xcache *xtable_of(struct ctx *c, uint64_t code)
{
	for (unsigned i = 0; i < xcache_used; i++)
		if (xcache[i].code == code)
			return &xcache[i];
	unsigned slot = xcache_used < XCACHE ? xcache_used++ : (unsigned)(code >> 4) % XCACHE;
	struct xcache *x = &xcache[slot];
	bool ok;
	x->code = 0;
	x->nlocalsplus = rd_i32(c, code + c->l->co_nlocalsplus, &ok);
	if (!ok || x->nlocalsplus < 0 || x->nlocalsplus > 65536)
		return NULL;
	x->n = read_xtable(c, code, x->e);
	x->code = code;
	return x;
}

static void held_new(struct ctx *c, const struct py_frame *f, int fi, struct lo_thread *t)
{
	const struct py_layout *l = c->l;
	if (f->pos < f->code + l->co_code_adaptive)
		return;
	struct xcache *x = xtable_of(c, f->code);
	if (!x)
		return;
	int32_t nlocalsplus = x->nlocalsplus;
	uint32_t off = (uint32_t)((f->pos - (f->code + l->co_code_adaptive)) / 2);
	const struct xentry *e = x->e;
	size_t n = x->n;
	uint32_t depth = 0;
	for (size_t i = 0; i < n; i++)
		if (e[i].start <= off && off < e[i].end) {
			depth = e[i].depth;
			break;
		}
	if (depth == 0)
		return;
	if (depth > LO_MAX_SLOTS)
		depth = LO_MAX_SLOTS;
	uint64_t slots[LO_MAX_SLOTS];
	uint64_t base = f->addr + l->iframe_localsplus + 8 * (uint64_t)nlocalsplus;
	if (!rd(c, base, slots, depth * 8))
		return;
	for (uint32_t k = depth; k-- > 0;) {
		struct lo_lock lk = { .frame = fi, .line = -1 };
		if (!resolve(c, slots[k], true, true, &lk))
			continue;
		/* its with's handler: the entry of depth k+1 (lasti) nearest before off */
		const struct xentry *best = NULL;
		for (size_t i = 0; i < n; i++)
			if (e[i].depth == k + 1 && e[i].lasti && e[i].start <= off &&
			    (!best || e[i].start > best->start))
				best = &e[i];
		if (best)
			lk.line = py_reader_code_line(c->r, c->pid, f->code, (uint64_t)best->target * 2);
		add_held(t, &lk);
	}
}

/* ---- the waited-for lock ------------------------------------------------------------- */

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

int lockown_read(struct py_reader *r, const struct py_process *p, struct lo_thread *out)
{
	static struct ctx c;
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.pid = p->pid;
	c.l = py_reader_layout(r, p->pid);
	memset(out, 0, p->nthreads * sizeof(*out));
	if (!c.l)
		return -1;
	py_reader_mem_begin(r, p->pid);
	xcache_used = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *th = &p->threads[i];
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
		if (out[i].waits_known && c.l->frames == PY_FRAMES_OBJECTS) {
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
	return 0;
}

/* ---- Thread.join -------------------------------------------------------------------- */

/* A small non-negative int object's value (2.7 int: ob_ival at 16; 3.x int: 30-bit digits
 * at 24 after ob_size (<= 3.11) or lv_tag (3.12+: digit count << 3 | sign)). */
static bool read_int(struct ctx *c, uint64_t obj, uint64_t *out)
{
	if (type_kind(c, obj) != TK_INT)
		return false;
	if (c->l->major == 2)
		return rd(c, obj + 16, out, sizeof(*out));
	int64_t size;
	if (!rd(c, obj + 16, &size, sizeof(size)))
		return false;
	uint64_t ndigits;
	if (c->l->minor >= 12) {
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
	if (ndigits && !rd(c, obj + 24, d, ndigits * 4))
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
		uint64_t id = py_reader_mem_attr(r, p->pid, self, c.l->major == 2 ? "_Thread__ident" : "_ident");
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
