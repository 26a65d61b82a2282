/* pydict: dicts and attributes of the target's objects (see pyreader_int.h).
 * Owns: iterating 2.7 dicts and 3.6+ split/combined key tables, looking a str key up, and
 * an instance's attribute (its __dict__ or inline values). */
#include "pyreader_int.h"

static int read_array(struct walk *w, uint64_t addr, size_t count, size_t elem, void **out)
{
	*out = NULL;
	if (count == 0)
		return 0;
	if (count > MAX_DICT_ENTRIES * 2)
		return -1;
	void *buf = malloc(count * elem);
	if (!buf)
		return -1;
	if (rd(w, addr, buf, count * elem) != 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

static int dict27_each(struct walk *w, uint64_t dict, dict_cb cb, void *ctx)
{
	uint64_t mask, table;
	if (rd_u64(w, dict + w->p->res.layout.dict_keys, &mask) != 0 ||
	    rd_u64(w, dict + w->p->res.layout.dict_values, &table) != 0 || mask >= MAX_DICT_ENTRIES)
		return -1;
	uint64_t *e;
	if (read_array(w, table, (size_t)mask + 1, 24, (void **)&e) != 0)
		return -1;
	for (size_t i = 0; i <= mask; i++)
		if (e[3 * i + 1] && e[3 * i + 2] && cb(w, e[3 * i], e[3 * i + 1], e[3 * i + 2], ctx))
			break;
	free(e);
	return 0;
}

/* Walks the entries of a keys object with, for split tables, values[i] at values+header. */
static int keys_each(struct walk *w, uint64_t keys, uint64_t values, dict_cb cb, void *ctx)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char hdr[48];
	uint64_t entries, nentries;
	size_t esize;
	if (rd(w, keys, hdr, sizeof(hdr)) != 0)
		return -1;
	if (l->dicts == PY_DICT_36) {
		uint64_t size = get_u64(hdr, 8);
		nentries = get_u64(hdr, 32);
		if (size == 0 || size > MAX_DICT_ENTRIES * 2 || (size & (size - 1)) || nentries > size)
			return -1;
		unsigned width = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
		entries = keys + 40 + size * width;
		esize = 24;
	} else {
		unsigned log2_size = hdr[8], log2_index = hdr[9], kind = hdr[10];
		nentries = get_u64(hdr, 24);
		if (log2_size > 20 || log2_index > 23 || kind > 2 || nentries > (1ull << log2_size))
			return -1;
		entries = keys + 32 + (1ull << log2_index);
		esize = kind == 0 ? 24 : 16;
	}
	if (nentries > MAX_DICT_ENTRIES)
		return -1;
	uint64_t *e = NULL, *vals = NULL;
	if (read_array(w, entries, (size_t)nentries, esize, (void **)&e) != 0)
		return -1;
	if (values && read_array(w, values + l->values_header, (size_t)nentries, 8,
				 (void **)&vals) != 0) {
		free(e);
		return -1;
	}
	size_t step = esize / 8, koff = esize == 24 ? 1 : 0;
	for (size_t i = 0; i < nentries; i++) {
		uint64_t hash = esize == 24 ? e[i * step] : 0;
		uint64_t key = e[i * step + koff];
		uint64_t val = vals ? vals[i] : e[i * step + koff + 1];
		if (key && val && cb(w, hash, key, val, ctx))
			break;
	}
	free(e);
	free(vals);
	return 0;
}

int dict_each(struct walk *w, uint64_t dict, dict_cb cb, void *ctx)
{
	if (!plausible_ptr(dict) || !type_is(w, dict, w->p->res.t_dict))
		return -1;
	if (w->p->res.layout.dicts == PY_DICT_27)
		return dict27_each(w, dict, cb, ctx);
	uint64_t keys, values;
	if (rd_u64(w, dict + w->p->res.layout.dict_keys, &keys) != 0 ||
	    rd_u64(w, dict + w->p->res.layout.dict_values, &values) != 0 || !plausible_ptr(keys))
		return -1;
	return keys_each(w, keys, values, cb, ctx);
}

struct str_lookup {
	const char *key;
	uint64_t value;
};

static bool match_str_key(struct walk *w, uint64_t hash, uint64_t key, uint64_t value, void *ctx)
{
	(void)hash;
	struct str_lookup *s = ctx;
	if (!str_equals(w, key, s->key))
		return false;
	s->value = value;
	return true;
}

/* dict[key] for an ASCII str key, or 0. */
uint64_t dict_get_str(struct walk *w, uint64_t dict, const char *key)
{
	struct str_lookup s = { key, 0 };
	if (dict_each(w, dict, match_str_key, &s) != 0)
		return 0;
	return s.value;
}

/* An attribute of an instance, read from its __dict__ (or managed dict / inline values). */
uint64_t instance_attr(struct walk *w, uint64_t obj, const char *name)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t type, v = 0, keys;
	if (!plausible_ptr(obj) || rd_u64(w, obj + l->ob_type, &type) != 0 || !plausible_ptr(type))
		return 0;
	if (l->inst_dict == PY_INST_DICTOFFSET) {
		uint64_t off, dict;
		if (rd_u64(w, type + l->tp_dictoffset, &off) != 0)
			return 0;
		/* 2.7 old-style instances (type "instance", tp_dictoffset 0): PyInstanceObject's
		 * in_dict after in_class (Include/classobject.h) */
		char tn[9];
		uint64_t tname;
		if (off == 0 && l->major == 2 && rd_u64(w, type + l->tp_name, &tname) == 0 &&
		    rd(w, tname, tn, sizeof(tn)) == 0 && memcmp(tn, "instance", 9) == 0)
			off = 24;
		if (off < 16 || off > 4096 || rd_u64(w, obj + off, &dict) != 0)
			return 0;
		return dict_get_str(w, dict, name);
	}
	uint64_t word, values = 0;
	if (rd_u64(w, obj - 24, &word) != 0)
		return 0;
	if (l->inst_dict == PY_INST_MANAGED312 && (word & 1)) {
		values = word + 1;
	} else if (word) {
		return dict_get_str(w, word, name);
	} else if (l->inst_dict == PY_INST_MANAGED311) {
		if (rd_u64(w, obj - 32, &values) != 0)
			return 0;
	} else if (l->inst_dict == PY_INST_MANAGED313) {
		uint64_t basic;
		unsigned char hdr[4];
		if (rd_u64(w, type + l->tp_basicsize, &basic) != 0 || basic > 4096 ||
		    rd(w, obj + basic, hdr, sizeof(hdr)) != 0 || !hdr[3] /* valid */)
			return 0;
		values = obj + basic;
	}
	if (!plausible_ptr(values) || rd_u64(w, type + l->ht_cached_keys, &keys) != 0 ||
	    !plausible_ptr(keys))
		return 0;
	struct str_lookup s = { name, 0 };
	if (keys_each(w, keys, values, match_str_key, &s) == 0)
		v = s.value;
	return v;
}
