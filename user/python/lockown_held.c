/* lockown_held: the locks a thread holds (see lockown_int.h).
 * Owns: the `with` blocks in progress of a frame (<= 3.10 f_blockstack, 3.11+ the live
 * value stack depth from the exception table, cached per read) and the lock behind the
 * __exit__ each keeps on the value stack. */
#include "lockown_int.h"

/* Appends k to the current thread's held locks in c's pool (t->held is set once all
 * threads are read: the pool may move while it grows). */
void add_held(struct ctx *c, struct lo_thread *t, const struct lo_lock *k)
{
	for (size_t i = 0; i < t->nheld; i++)
		if (c->pool[c->first + i].futex == k->futex)
			return; /* the same lock taken twice (an RLock, or Condition and its lock) */
	if (t->nheld >= LO_MAX_HELD)
		return;
	if (c->npool == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		struct lo_lock *np = realloc(c->pool, cap * sizeof(*np));
		if (!np)
			return; /* out of memory: the lock is not listed (its holder stays unknown) */
		c->pool = np;
		c->cap = cap;
	}
	c->pool[c->npool++] = *k;
	t->nheld++;
}

#define MAX_BLOCKS 20 /* CO_MAXBLOCKS */

void held_old(struct ctx *c, const struct py_frame *f, int fi, struct lo_thread *t)
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
		add_held(c, t, &k);
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
unsigned xcache_used;

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

void held_new(struct ctx *c, const struct py_frame *f, int fi, struct lo_thread *t)
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
		if (best) {
			lk.line = py_reader_code_line(c->r, c->pid, f->code, (uint64_t)best->target * 2);
			/* the with's first entry (a body can be split in several) starts after
			 * its BEFORE_WITH */
			uint32_t first = best->start;
			for (size_t i = 0; i < n; i++)
				if (e[i].target == best->target && e[i].start < first)
					first = e[i].start;
			with_name_new(c, f->code, first, lk.name, sizeof(lk.name));
		}
		add_held(c, t, &lk);
	}
}
