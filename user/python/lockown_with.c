/* lockown_with: the line and source name of a `with` (see lockown_int.h).
 * Owns: decoding bytecode (2.7-3.10: co_code, SETUP_WITH; 3.11+: co_code_adaptive, the
 * instructions of BEFORE_WITH through the tables of pyopcodes.h) and the LOAD_* before a
 * `with`, the line of a `with` from its handler, the name a frame enters, and parsing
 * 3.11+ exception tables (Objects/exception_handling_notes.txt). */
#include "lockown_int.h"

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
		if (l->bytecode == PY_BYTECODE_VARLEN27) {
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

/* 3.11+: the instructions of the first n code units of code's co_code_adaptive, as base
 * instructions (a specialized opcode byte through _PyOpcode_Deopt, pyopcodes.h), their
 * inline caches skipped; off in bytes, len in bytes with the caches. Decoding stops at a
 * byte the version does not define or an INSTRUMENTED_* one (whose instruction is kept
 * in co_monitoring): what follows is unknown. The count (0: unreadable). */
static size_t decode_new(struct ctx *c, uint64_t code, uint64_t n)
{
	const struct py_layout *l = c->l;
	const struct py_opcodes *o = l->ops;
	unsigned char buf[4096];
	uint64_t have = n * 2;
	if (have > sizeof(buf))
		have = sizeof(buf);
	/* co_code_adaptive is Py_SIZE(code) code units long: read what is asked, else less */
	while (have >= 2 && !rd(c, code + l->co_code_adaptive, buf, have))
		have = have > 64 ? have / 2 : have - 2;
	size_t k = 0;
	uint64_t ext = 0;
	for (uint64_t u = 0; 2 * u + 1 < have && k < MAX_INSNS;) {
		unsigned byte = buf[2 * u];
		uint8_t op = o->deopt[byte];
		if (byte >= o->min_instrumented || op == 0)
			break;
		uint64_t arg = ext << 8 | buf[2 * u + 1];
		ext = op == o->extended_arg ? arg : 0;
		uint64_t units = 1 + (uint64_t)o->caches[op];
		insns[k++] = (struct insn){ (uint32_t)(2 * u), op, (uint16_t)(2 * units), (uint32_t)arg };
		u += units;
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
		    !rd(c, obj + l->str_state, &state, 1) || !py_str_compact_ascii(state))
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
	if (!tuple || !rd(c, tuple + c->l->tuple_size, &size, sizeof(size)) || i >= size)
		return false;
	return read_ident(c, rd_u64(c, tuple + c->l->tuple_items + 8 * (uint64_t)i), out, cap);
}

static bool load_ident(struct ctx *c, uint64_t code, const struct insn *in, char *out, size_t cap)
{
	const struct py_opcodes *o = c->l->ops;
	if (o) { /* 3.11+ (pyopcodes.h): the base instructions decode_new gives */
		if (in->op == o->load_name)
			return tuple_ident(c, code, c->l->co_names, in->arg, out, cap);
		if (in->op == o->load_global)
			return tuple_ident(c, code, c->l->co_names, in->arg >> 1, out, cap);
		if (in->op == o->load_fast || (o->load_fast_check && in->op == o->load_fast_check))
			return tuple_ident(c, code, c->l->co_localsplusnames, in->arg, out, cap);
		if (o->load_fast_load_fast && in->op == o->load_fast_load_fast) /* pushes the 2nd last */
			return tuple_ident(c, code, c->l->co_localsplusnames, in->arg & 15, out, cap);
		return false;
	}
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
	const struct py_opcodes *o = c->l->ops;
	uint32_t attr = p->arg; /* the co_names index of a LOAD_ATTR / LOAD_METHOD */
	bool is_attr = p->op == OP_LOAD_ATTR;
	if (o) {
		is_attr = p->op == o->load_attr || (o->load_method && p->op == o->load_method);
		if (p->op == o->load_attr && o->attr_shift)
			attr >>= 1;
	}
	if (load_ident(c, code, p, a, sizeof(a))) {
		snprintf(out, cap, "%s", a);
	} else if (is_attr && i >= 2 && load_ident(c, code, &insns[i - 2], a, sizeof(a)) &&
		   tuple_ident(c, code, c->l->co_names, attr, b, sizeof(b))) {
		snprintf(out, cap, "%.30s.%.30s", a, b);
	}
}

static bool is_310(const struct py_layout *l)
{
	return l->jumps == PY_JUMP_UNITS;
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

void with_site(struct ctx *c, uint64_t code, uint64_t handler, int *line, char *name, size_t cap)
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
	copy_name(name, cap, c->lines[slot].name);
}

/* 3.11+: the name a `with` loads, from the BEFORE_WITH that ends at code unit end (where
 * its handler's first exception-table entry starts: Python/compile.c puts SETUP_WITH,
 * which becomes that entry, right after BEFORE_WITH). */
static void before_with_name(struct ctx *c, uint64_t code, uint64_t end, char *name, size_t cap)
{
	size_t n = decode_new(c, code, end);
	for (size_t i = 0; i < n; i++)
		if (insns[i].off + insns[i].len == 2 * end) {
			if (insns[i].op == c->l->ops->before_with)
				name_before(c, code, i, name, cap);
			return;
		}
}

void with_name_new(struct ctx *c, uint64_t code, uint32_t start, char *name, size_t cap)
{
	uint64_t key = (uint64_t)start | 1ull << 40; /* not a <= 3.10 handler (those share the cache) */
	unsigned slot = (unsigned)((code >> 4) ^ key) % LINE_CACHE;
	if (!(c->lines[slot].used && c->lines[slot].code == code && c->lines[slot].handler == key)) {
		c->lines[slot].code = code;
		c->lines[slot].handler = key;
		c->lines[slot].line = -1;
		c->lines[slot].name[0] = '\0';
		c->lines[slot].used = true;
		before_with_name(c, code, start, c->lines[slot].name, sizeof(c->lines[slot].name));
	}
	copy_name(name, cap, c->lines[slot].name);
}

/* The source name of the `with` a frame is entering: <= 3.10 its f_lasti at SETUP_WITH;
 * 3.11+ its instruction pointer at BEFORE_WITH (prev_instr on 3.11/3.12, instr_ptr on
 * 3.13: the instruction that called __enter__). */
void entering_name(struct ctx *c, const struct py_frame *f, char *name, size_t cap)
{
	name[0] = '\0';
	if (c->l->ops) {
		uint64_t start = f->code + c->l->co_code_adaptive;
		if (f->pos < start || f->pos - start > MAX_CODE_BYTES || (f->pos - start) % 2)
			return;
		before_with_name(c, f->code, (f->pos - start) / 2 + 1, name, cap);
		return;
	}
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
size_t parse_xtable(const unsigned char *t, size_t n, struct xentry *e, size_t max)
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
