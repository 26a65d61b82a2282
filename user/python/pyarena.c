/* pyarena: memory of one read (see pyreader_int.h).
 * Owns: the string arena of a struct py_process (chunks freed together: no malloc per
 * frame) and the address sets that detect cycles in bounded walks. */
#include "pyreader_int.h"

char *arena_strdup(struct py_process *out, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	struct str_chunk *c = out->strings;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		struct str_chunk *nc = malloc(sizeof(*nc) + cap);
		if (!nc)
			return NULL;
		nc->next = c;
		nc->used = 0;
		nc->cap = cap;
		out->strings = c = nc;
	}
	char *d = c->data + c->used;
	memcpy(d, s, n);
	c->used += n;
	return d;
}

void arena_free(struct py_process *out)
{
	struct str_chunk *c = out->strings;
	while (c) {
		struct str_chunk *next = c->next;
		free(c);
		c = next;
	}
	out->strings = NULL;
}


bool addr_set_add(struct addr_set *s, uint64_t a) /* false: already present or OOM */
{
	if (s->n * 2 >= s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uint64_t *nv = calloc(ncap, sizeof(*nv));
		if (!nv)
			return false;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->v[i])
				continue;
			size_t h = (size_t)((s->v[i] >> 3) * 0x9e3779b97f4a7c15ull) & (ncap - 1);
			while (nv[h])
				h = (h + 1) & (ncap - 1);
			nv[h] = s->v[i];
		}
		free(s->v);
		s->v = nv;
		s->cap = ncap;
	}
	size_t h = (size_t)((a >> 3) * 0x9e3779b97f4a7c15ull) & (s->cap - 1);
	for (size_t i = 0; i < s->cap; i++, h = (h + 1) & (s->cap - 1)) {
		if (s->v[h] == a)
			return false;
		if (!s->v[h]) {
			s->v[h] = a;
			s->n++;
			return true;
		}
	}
	return false;
}

void addr_set_free(struct addr_set *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
