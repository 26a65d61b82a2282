/* gilstatic: locating a GIL kept in static variables (3.6); see gilstatic.h. */
#include "gilstatic.h"

#include <stdbool.h>
#include <string.h>

#define NPARTS PY_GIL_STATIC_PARTS
#define MAX_FN_BYTES 1024u   /* code read of init_fn */
#define MAX_CALLEE_BYTES 512u /* code read of each function it calls */
#define MAX_CALLEES 8u

static bool in_bss(struct elf_file *ef, uint64_t addr, uint64_t size)
{
	uint64_t a, n;
	return elf_find_section(ef, ".bss", &a, &n) == 0 && addr >= a && size <= n &&
	       addr - a <= n - size;
}

/* The parts lie in .bss, 8-aligned, pairwise disjoint. */
static bool parts_valid(struct elf_file *ef, const struct py_gil_statics *d, const uint64_t *part)
{
	for (int i = 0; i < NPARTS; i++) {
		if (!part[i] || (part[i] & 7) || !in_bss(ef, part[i], d->parts[i].size))
			return false;
		for (int k = 0; k < i; k++)
			if (part[i] < part[k] + d->parts[k].size && part[k] < part[i] + d->parts[i].size)
				return false;
	}
	return true;
}

/* ---- .symtab ------------------------------------------------------------------------- */

enum { V_LOCKED = NPARTS, V_HOLDER, V_COUNT };

struct sym_pass {
	const struct py_gil_statics *d;
	const char *names[V_COUNT];
	uint64_t sizes[V_COUNT];
	uint64_t value[V_COUNT], size[V_COUNT];
	unsigned count[V_COUNT];
	bool object[V_COUNT];
	uint64_t lo, hi;   /* second pass: the hull of the parts */
	unsigned foreign;  /* second pass: other symbols inside it */
};

static int sym_collect(void *ctx, const char *name, const Elf64_Sym *s)
{
	struct sym_pass *sp = ctx;
	for (int i = 0; i < V_COUNT; i++) {
		if (strcmp(name, sp->names[i]) != 0)
			continue;
		sp->count[i]++;
		sp->value[i] = s->st_value;
		sp->size[i] = s->st_size;
		sp->object[i] = ELF64_ST_TYPE(s->st_info) == STT_OBJECT;
	}
	return 0;
}

static int sym_foreign(void *ctx, const char *name, const Elf64_Sym *s)
{
	struct sym_pass *sp = ctx;
	unsigned type = ELF64_ST_TYPE(s->st_info);
	if (type == STT_SECTION || type == STT_FILE || s->st_shndx == SHN_ABS)
		return 0;
	for (int i = 0; i < NPARTS; i++)
		if (s->st_value == sp->value[i] && strcmp(name, sp->names[i]) == 0)
			return 0;
	uint64_t end = s->st_value + (s->st_size ? s->st_size : 1);
	if (end > s->st_value && s->st_value < sp->hi && end > sp->lo)
		sp->foreign++;
	return 0;
}

int gilstatic_from_symtab(struct elf_file *ef, const struct py_gil_statics *d,
			  struct gil_static_loc *out)
{
	struct sym_pass sp;
	memset(out, 0, sizeof(*out));
	memset(&sp, 0, sizeof(sp));
	sp.d = d;
	for (int i = 0; i < NPARTS; i++) {
		sp.names[i] = d->parts[i].name;
		sp.sizes[i] = d->parts[i].size;
	}
	sp.names[V_LOCKED] = d->locked;
	sp.sizes[V_LOCKED] = 4;
	sp.names[V_HOLDER] = d->last_holder;
	sp.sizes[V_HOLDER] = 8;
	if (elf_each_symtab_symbol(ef, sym_collect, &sp) != 0)
		return -1;
	uint64_t part[NPARTS];
	for (int i = 0; i < NPARTS; i++) {
		/* defined once (a second local of that name elsewhere: which one is unknown) */
		if (sp.count[i] != 1 || !sp.object[i] || sp.size[i] != sp.sizes[i])
			return -1;
		part[i] = sp.value[i];
	}
	if (!parts_valid(ef, d, part))
		return -1;
	out->desc = d;
	out->how = "symtab";
	memcpy(out->part, part, sizeof(part));
	for (int i = V_LOCKED; i < V_COUNT; i++) {
		uint64_t v = sp.value[i];
		bool ok = sp.count[i] == 1 && sp.object[i] && sp.size[i] == sp.sizes[i] &&
			  !(v & (sp.sizes[i] - 1));
		*(i == V_LOCKED ? &out->locked : &out->last_holder) = ok ? v : 0;
	}
	/* one range for all parts when nothing else is defined between them */
	sp.lo = part[0];
	sp.hi = part[0] + d->parts[0].size;
	for (int i = 1; i < NPARTS; i++) {
		if (part[i] < sp.lo)
			sp.lo = part[i];
		if (part[i] + d->parts[i].size > sp.hi)
			sp.hi = part[i] + d->parts[i].size;
	}
	/* not read whole: what lies between the parts is unknown, so only the first part */
	if (elf_each_symtab_symbol(ef, sym_foreign, &sp) != 0)
		sp.foreign = 1;
	out->wait_lo = sp.foreign ? part[0] : sp.lo;
	out->wait_hi = sp.foreign ? part[0] + d->parts[0].size : sp.hi;
	return 0;
}

/* ---- code ------------------------------------------------------------------------------ */

/* Up to max bytes of code at vaddr, from an executable PT_LOAD, into buf: how many, 0 if none. */
static size_t read_code(struct elf_file *ef, uint64_t vaddr, unsigned char *buf, size_t max)
{
	for (size_t i = 0; i < ef->phnum; i++) {
		const Elf64_Phdr *p = &ef->ph[i];
		if (p->p_type != PT_LOAD || !(p->p_flags & PF_X) || vaddr < p->p_vaddr ||
		    vaddr - p->p_vaddr >= p->p_filesz)
			continue;
		uint64_t left = p->p_filesz - (vaddr - p->p_vaddr);
		size_t n = left < max ? (size_t)left : max;
		return elf_read_vaddr(ef, vaddr, buf, n) == 0 ? n : 0;
	}
	return 0;
}

static int32_t rel32(const unsigned char *b)
{
	int32_t v;
	memcpy(&v, b, 4);
	return v;
}

/* `lea rdi,[rip+disp32]` at b (7 bytes at address at): its target, or 0. */
static uint64_t lea_rdi(const unsigned char *b, uint64_t at)
{
	if (b[0] != 0x48 || b[1] != 0x8d || b[2] != 0x3d)
		return 0;
	return at + 7 + (uint64_t)(int64_t)rel32(b + 3);
}

/* Which part's Py_FatalError message the code at address f loads first: index, or -1. */
static int message_at(struct elf_file *ef, const struct py_gil_statics *d, uint64_t f)
{
	unsigned char ins[7];
	if (read_code(ef, f, ins, sizeof(ins)) != sizeof(ins))
		return -1;
	uint64_t msg = lea_rdi(ins, f);
	if (!msg)
		return -1;
	for (int i = 0; i < NPARTS; i++) {
		char s[128];
		size_t n = strlen(d->parts[i].init_failed) + 1;
		if (n <= sizeof(s) && elf_read_vaddr(ef, msg, s, n) == 0 &&
		    memcmp(s, d->parts[i].init_failed, n) == 0)
			return i;
	}
	return -1;
}

/* Searches code[0, n) (at address base) for `lea rdi,[rip+X]; (up to 8 bytes) call rel32;
 * test eax,eax; jne F` with a part's message at F; records X per part. Returns -1 when one
 * part is named with two different addresses. */
static int scan_inits(struct elf_file *ef, const struct py_gil_statics *d, const unsigned char *code,
		      size_t n, uint64_t base, uint64_t *part)
{
	for (size_t off = 0; off + 7 <= n; off++) {
		uint64_t x = lea_rdi(code + off, base + off);
		if (!x)
			continue;
		for (size_t c = off + 7; c <= off + 15 && c + 9 <= n; c++) {
			if (code[c] != 0xe8 || code[c + 5] != 0x85 || code[c + 6] != 0xc0)
				continue;
			uint64_t f = 0;
			if (code[c + 7] == 0x75)
				f = base + c + 9 + (uint64_t)(int64_t)(int8_t)code[c + 8];
			else if (c + 13 <= n && code[c + 7] == 0x0f && code[c + 8] == 0x85)
				f = base + c + 13 + (uint64_t)(int64_t)rel32(code + c + 9);
			int i = f ? message_at(ef, d, f) : -1;
			if (i < 0)
				continue;
			if (part[i] && part[i] != x)
				return -1;
			part[i] = x;
			break;
		}
	}
	return 0;
}

int gilstatic_from_code(struct elf_file *ef, const struct py_gil_statics *d,
			struct gil_static_loc *out)
{
	const char *names[1] = { d->init_fn };
	uint64_t fn, fn_size;
	unsigned char code[MAX_FN_BYTES], callee[MAX_CALLEE_BYTES];
	uint64_t part[NPARTS] = { 0 }, seen[MAX_CALLEES];
	unsigned nseen = 0;
	memset(out, 0, sizeof(*out));
	if (elf_lookup_symbols(ef, names, 1, &fn, &fn_size) != 1)
		return -1;
	size_t n = read_code(ef, fn, code, fn_size && fn_size < sizeof(code) ? fn_size : sizeof(code));
	if (!n || scan_inits(ef, d, code, n, fn, part) != 0)
		return -1;
	/* create_gil is static: inlined into init_fn, or called from it */
	for (size_t off = 0; off + 5 <= n && nseen < MAX_CALLEES; off++) {
		if (code[off] != 0xe8)
			continue;
		uint64_t t = fn + off + 5 + (uint64_t)(int64_t)rel32(code + off + 1);
		bool dup = false;
		for (unsigned k = 0; k < nseen; k++)
			dup |= seen[k] == t;
		if (dup)
			continue;
		seen[nseen++] = t;
		size_t m = read_code(ef, t, callee, sizeof(callee));
		if (m && scan_inits(ef, d, callee, m, t, part) != 0)
			return -1;
	}
	if (!parts_valid(ef, d, part))
		return -1;
	out->desc = d;
	out->how = "code";
	memcpy(out->part, part, sizeof(part));
	out->wait_lo = part[0];
	out->wait_hi = part[0] + d->parts[0].size;
	return 0;
}
