/* pycodecache: the per-process cache of code objects (see pyreader_int.h).
 * Owns: reading a code object's identifying fields, name, file and line table once, and
 * re-validating the cached entry in each snapshot (and against the live process in a
 * checking walk, w->fresh_objs). */
#include "pyreader_int.h"

static void code_entry_clear(struct code_entry *c)
{
	free(c->function);
	free(c->file);
	free(c->table);
	memset(c, 0, sizeof(*c));
}

void code_cache_clear(struct py_proc *p)
{
	if (!p->codes || p->ncodes == 0)
		return;
	for (size_t i = 0; i < CODE_CACHE_CAP; i++)
		if (p->codes[i].addr)
			code_entry_clear(&p->codes[i]);
	p->ncodes = 0;
}

/* The identifying fields of the code object at addr, read now. */
int code_read_fields(struct walk *w, uint64_t addr, struct code_entry *f)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char buf[512];
	uint32_t n = pylayout_code_read_size(l);
	if (n > sizeof(buf) || !plausible_ptr(addr) || rd(w, addr, buf, n) != 0)
		return -1;
	memset(f, 0, sizeof(*f));
	f->addr = addr;
	f->type = get_u64(buf, l->ob_type);
	f->filename = get_u64(buf, l->co_filename);
	f->name = get_u64(buf, l->co_name);
	f->qualname = l->co_qualname ? get_u64(buf, l->co_qualname) : 0;
	f->linetable = get_u64(buf, l->co_linetable);
	f->firstlineno = get_i32(buf, l->co_firstlineno);
	f->firsttraceable = l->co_firsttraceable ? get_i32(buf, l->co_firsttraceable) : 0;
	if (w->p->res.t_code && f->type != w->p->res.t_code)
		return -1; /* not a code object (3.12+ trampolines, or garbage) */
	return 0;
}

static bool code_same(const struct code_entry *a, const struct code_entry *b)
{
	return a->type == b->type && a->filename == b->filename && a->name == b->name &&
	       a->qualname == b->qualname && a->linetable == b->linetable &&
	       a->firstlineno == b->firstlineno && a->firsttraceable == b->firsttraceable;
}

static bool str_still(struct walk *w, uint64_t addr, const char *cached)
{
	char *now = read_str(w, addr);
	bool same = now && cached && strcmp(now, cached) == 0;
	free(now);
	return same;
}

/* The same pointers may belong to new objects when a code object and its strings were
 * freed and others allocated at the same addresses: compare the contents too. */
static bool code_contents_same(struct walk *w, const struct code_entry *c)
{
	uint64_t fn = c->qualname ? c->qualname : c->name;
	if (!str_still(w, fn, c->function) || !str_still(w, c->filename, c->file))
		return false;
	uint32_t len = 0;
	unsigned char *table = read_bytes_obj(w, c->linetable, MAX_LINETABLE, &len);
	bool same = table && c->table && len == c->table_len && memcmp(table, c->table, len) == 0;
	free(table);
	return same;
}

static int code_fill(struct walk *w, struct code_entry *c)
{
	uint64_t fn = c->qualname ? c->qualname : c->name;
	c->function = read_str(w, fn);
	if (!c->function && c->qualname)
		c->function = read_str(w, c->name);
	c->file = read_str(w, c->filename);
	c->table = read_bytes_obj(w, c->linetable, MAX_LINETABLE, &c->table_len);
	/* A readable code object with an unreadable name, file or line table (corrupt, or a
	 * fake object) still gives a frame, marked, so its neighbours keep their places. */
	if (!c->function)
		c->error = "function name unreadable";
	else if (!c->file)
		c->error = "file name unreadable";
	else if (!c->table)
		c->error = "line table unreadable";
	return 0;
}

static struct code_entry *code_slot(struct py_proc *p, uint64_t addr)
{
	size_t h = (size_t)((addr >> 4) * 0x9e3779b97f4a7c15ull) & (CODE_CACHE_CAP - 1);
	for (size_t i = 0; i < CODE_CACHE_CAP; i++, h = (h + 1) & (CODE_CACHE_CAP - 1))
		if (p->codes[h].addr == addr || p->codes[h].addr == 0)
			return &p->codes[h];
	return NULL;
}

/* The decoded code object at addr, re-validated once per snapshot; NULL if unreadable or
 * not a code object. Entries whose identifying fields changed (the address was reused by
 * another code object) are rebuilt.
 * In a walk that checks a running thread's stack (w->checking), the frames are read from
 * the process now, so the code object must be too: the snapshot's cache may hold the block
 * of addr from before the object there was freed and another allocated in its place, and
 * the frame's position would then be read against another code object's name, first line
 * and line table. There the entry is re-validated on every use against the code object's
 * fields and contents read now (w->fresh_objs), and rebuilt from them when they differ. */
static struct code_entry *code_lookup_at(struct walk *w, uint64_t addr);

struct code_entry *code_lookup(struct walk *w, uint64_t addr)
{
	if (!w->checking || !w->check)
		return code_lookup_at(w, addr);
	w->fresh_objs = true;
	struct code_entry *c = code_lookup_at(w, addr);
	w->fresh_objs = false;
	return c;
}

static struct code_entry *code_lookup_at(struct walk *w, uint64_t addr)
{
	struct py_proc *p = w->p;
	if (!p->codes) {
		p->codes = calloc(CODE_CACHE_CAP, sizeof(*p->codes));
		if (!p->codes)
			return NULL;
	}
	if (p->ncodes >= CODE_CACHE_CAP * 3 / 4)
		code_cache_clear(p);
	struct code_entry *slot = code_slot(p, addr);
	if (!slot)
		return NULL;
	if (slot->addr == addr && slot->checked_gen == pm_gen(&p->pm) && !w->fresh_objs)
		return slot;
	struct code_entry now;
	if (code_read_fields(w, addr, &now) != 0)
		return NULL;
	if (slot->addr == addr && code_same(slot, &now) && code_contents_same(w, slot)) {
		slot->checked_gen = pm_gen(&p->pm);
		return slot;
	}
	if (code_fill(w, &now) != 0) {
		code_entry_clear(&now);
		return NULL;
	}
	if (slot->addr == addr && slot->checked_gen == pm_gen(&p->pm))
		w->code_changed = true; /* replaced during this snapshot */
	if (slot->addr == addr)
		code_entry_clear(slot);
	else
		p->ncodes++;
	now.checked_gen = pm_gen(&p->pm);
	*slot = now;
	return slot;
}
