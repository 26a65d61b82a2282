/* asyncio_obj: reading the target's Python objects for the asyncio reader, every read
 * counted against the view's budget (see asyncio_int.h, asyncio_read.c for the facts). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asyncio_int.h"
#include "syscall_names.h"

bool aio_rd(struct aio_ctx *c, uint64_t addr, void *buf, size_t len)
{
	if (!c->budget)
		return false;
	c->budget--;
	return py_reader_mem_read(c->r, c->pid, addr, buf, len) == 0;
}

uint64_t aio_ptr(struct aio_ctx *c, uint64_t addr)
{
	uint64_t v = 0;
	if (!addr || !aio_rd(c, addr, &v, sizeof(v)))
		return 0;
	return v;
}

int64_t aio_i64(struct aio_ctx *c, uint64_t addr, bool *ok)
{
	int64_t v = 0;
	*ok = addr && aio_rd(c, addr, &v, sizeof(v));
	return v;
}

bool aio_plausible(uint64_t p)
{
	return p >= 0x1000 && p < 0x800000000000ull && !(p & 7);
}

static uint64_t aio_type_of(struct aio_ctx *c, uint64_t obj)
{
	return aio_plausible(obj) ? aio_ptr(c, obj + c->l->ob_type) : 0;
}

/* tp_name of obj's type (a C string), "" when unreadable. */
void aio_type_name(struct aio_ctx *c, uint64_t obj, char *buf, size_t len)
{
	buf[0] = 0;
	uint64_t t = aio_type_of(c, obj), np = t ? aio_ptr(c, t + c->l->tp_name) : 0;
	if (!np || len < 2)
		return;
	size_t n = len - 1 < 63 ? len - 1 : 63;
	while (n > 0 && !aio_rd(c, np, buf, n))
		n /= 2;
	buf[n] = 0;
}

bool aio_type_named(struct aio_ctx *c, uint64_t obj, const char *name)
{
	char b[64];
	aio_type_name(c, obj, b, sizeof(b));
	return strcmp(b, name) == 0;
}

bool aio_is_instance(struct aio_ctx *c, uint64_t obj, uint64_t base)
{
	uint64_t t = aio_type_of(c, obj);
	for (int i = 0; i < 32 && aio_plausible(t) && base; i++) {
		if (t == base)
			return true;
		t = aio_ptr(c, t + c->a->tp_base);
	}
	return false;
}

char *aio_str_of(struct aio_ctx *c, uint64_t obj)
{
	if (!aio_plausible(obj) || !c->budget)
		return NULL;
	c->budget--;
	return py_reader_mem_str(c->r, c->pid, obj);
}

bool aio_float_of(struct aio_ctx *c, uint64_t obj, double *out)
{
	if (!aio_type_named(c, obj, "float") || !aio_rd(c, obj + c->a->float_val, out, sizeof(*out)))
		return false;
	return isfinite(*out);
}

/* sys.modules[name].__dict__, 0 if absent. */
uint64_t aio_module_dict(struct aio_ctx *c, uint64_t modules, const char *name)
{
	uint64_t m = py_reader_mem_dict_get(c->r, c->pid, modules, name);
	return m ? aio_ptr(c, m + c->l->md_dict) : 0;
}

/* An attribute from the instance's __dict__: at tp_dictoffset when the type has one (C
 * types such as _asyncio.Future and their Python subclasses keep it there in every
 * version), else as the reader finds it (managed dicts, 3.11+). */
uint64_t aio_obj_attr(struct aio_ctx *c, uint64_t obj, const char *name)
{
	bool ok;
	uint64_t t = aio_type_of(c, obj);
	int64_t off = t ? aio_i64(c, t + c->l->tp_dictoffset, &ok) : 0;
	if (t && ok && off > 0 && off < 4096 && !(off & 7)) {
		uint64_t d = aio_ptr(c, obj + (uint64_t)off);
		return d ? py_reader_mem_dict_get(c->r, c->pid, d, name) : 0;
	}
	return py_reader_mem_attr(c->r, c->pid, obj, name);
}

/* A small int object's value (|value| < 2^60): 3.x <= 3.11 ob_size (digit count, negative
 * for negative values) at int_size, 3.12+ lv_tag (digit count << 3 | sign: 0 positive, 1
 * zero, 2 negative) at int_size, 30-bit digits at int_value (Include/cpython/longintrepr.h
 * of each version). false: not an int, or larger. */
bool aio_int_of(struct aio_ctx *c, uint64_t obj, int64_t *out)
{
	if (!aio_plausible(obj) || !aio_type_named(c, obj, "int") || c->l->ints == PY_INT_27)
		return false;
	bool ok, neg;
	int64_t size = aio_i64(c, obj + c->l->int_size, &ok);
	uint64_t nd;
	if (!ok)
		return false;
	if (c->l->ints == PY_INT_LVTAG) {
		neg = (size & 3) == 2;
		nd = (uint64_t)size >> 3;
	} else {
		neg = size < 0;
		nd = (uint64_t)(neg ? -size : size);
	}
	uint32_t d[2] = { 0, 0 };
	if (nd > 2 || (nd && !aio_rd(c, obj + c->l->int_value, d, nd * 4)))
		return false;
	int64_t v = 0;
	for (uint64_t i = nd; i-- > 0;)
		v = (v << 30) | (d[i] & 0x3fffffffu);
	*out = neg ? -v : v;
	return true;
}

/* A __slots__ attribute: the member descriptor in the type's (or a base's) dict gives the
 * offset of the slot. 0 when absent or unreadable. */
uint64_t aio_slot_attr(struct aio_ctx *c, uint64_t obj, const char *name)
{
	uint64_t t = aio_type_of(c, obj);
	for (int i = 0; i < 8 && aio_plausible(t); i++, t = aio_ptr(c, t + c->a->tp_base)) {
		uint64_t d = aio_ptr(c, t + c->a->tp_dict);
		uint64_t desc = d ? py_reader_mem_dict_get(c->r, c->pid, d, name) : 0;
		if (!desc)
			continue;
		if (!aio_type_named(c, desc, "member_descriptor"))
			return 0;
		bool ok;
		uint64_t md = aio_ptr(c, desc + c->a->d_member);
		int64_t off = md ? aio_i64(c, md + c->a->memberdef_offset, &ok) : 0;
		if (!md || !ok || off < 16 || off > 4096 || (off & 7))
			return 0;
		return aio_ptr(c, obj + (uint64_t)off);
	}
	return 0;
}

static bool aio_new_style_frames(const struct py_layout *l)
{
	return l->frames != PY_FRAMES_OBJECTS;
}

/* The local variable `name` of a frame (PyFrameObject <= 3.10, _PyInterpreterFrame 3.11+)
 * running code object code; 0 when unbound or unknown. */
uint64_t aio_local_by_name(struct aio_ctx *c, uint64_t frame, uint64_t code, const char *name)
{
	const struct py_layout *l = c->l;
	uint64_t names = aio_ptr(c, code + (aio_new_style_frames(l) ? c->a->co_localsplusnames : l->co_varnames));
	bool ok;
	int64_t n = names ? aio_i64(c, names + c->a->tuple_size, &ok) : 0;
	if (!names || !ok || n <= 0 || n > 512)
		return 0;
	uint64_t base = frame + (aio_new_style_frames(l) ? l->iframe_localsplus : l->f_localsplus);
	for (int64_t i = 0; i < n; i++) {
		char *s = aio_str_of(c, aio_ptr(c, names + c->a->tuple_items + 8 * (uint64_t)i));
		bool hit = s && strcmp(s, name) == 0;
		free(s);
		if (hit)
			return aio_ptr(c, base + 8 * (uint64_t)i);
	}
	return 0;
}

uint64_t aio_local0(struct aio_ctx *c, uint64_t frame)
{
	return aio_ptr(c, frame + (aio_new_style_frames(c->l) ? c->l->iframe_localsplus : c->l->f_localsplus));
}

void aio_frame_set(struct aio_frame *f, const char *function, const char *file, int line)
{
	f->function = strdup(function ? function : "?");
	f->file = strdup(file ? file : "?");
	f->line = line;
}

void aio_frame_free(struct aio_frame *f)
{
	free(f->function);
	free(f->file);
	f->function = f->file = NULL;
}

const char *aio_base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

const char *aio_short_fn(const char *fn)
{
	const char *s = strrchr(fn, '.');
	return s ? s + 1 : fn;
}

/* path ends with "/asyncio/<file>" (or is "<dir>/<file>" for dir given). */
bool aio_file_is(const char *path, const char *dir, const char *file)
{
	size_t lp = strlen(path), ld = strlen(dir), lf = strlen(file);
	if (lp < ld + lf + 2)
		return false;
	const char *p = path + lp - lf;
	return strcmp(p, file) == 0 && p[-1] == '/' && strncmp(p - 1 - ld, dir, ld) == 0 &&
	       (p - 1 - ld == path || p[-2 - (long)ld] == '/');
}

bool aio_frame_is(const struct py_frame *f, const char *fn, const char *dir, const char *file)
{
	return f->function && f->file && strcmp(aio_short_fn(f->function), fn) == 0 &&
	       aio_file_is(f->file, dir, file);
}
