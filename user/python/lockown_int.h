/* lockown_int: what the parts of lockown (lockown.c, lockown_objects.c, lockown_with.c,
 * lockown_held.c) share: the per-read context (reads through the reader, caches of type
 * kinds and `with` lines), the reads, and the cross-file prototypes. */
#ifndef LOCKOWN_INT_H
#define LOCKOWN_INT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockown.h"
#include "pyrules.h"

enum tk { TK_UNREAD, TK_OTHER, TK_LOCK, TK_RLOCK, TK_BUILTIN, TK_METHOD, TK_COND, TK_PYRLOCK, TK_INT };

#define TYPE_CACHE 32

#define LINE_CACHE 64

struct ctx {
	struct py_reader *r;
	pid_t pid;
	struct procmem *pm;       /* the reader's memory of pid (py_reader_procmem), or NULL */
	const struct py_layout *l;
	struct { uint64_t type; enum tk kind; } types[TYPE_CACHE];
	unsigned ntypes;
	uint64_t exit_ml[4];      /* PyMethodDefs known to be named __exit__ */
	unsigned nexit_ml;
	struct { uint64_t code, handler; int line; bool used; char name[LO_NAME_LEN]; } lines[LINE_CACHE];
	struct lo_lock *pool;     /* the held locks of the threads read so far, thread after thread */
	size_t npool, cap;
	size_t first;             /* where the current thread's begin in pool */
};

/* out = src, at most cap - 1 bytes and a NUL (names of LO_NAME_LEN: no snprintf per lock) */
static inline void copy_name(char *out, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(out, src, n);
	out[n] = '\0';
}

/* py_reader_mem_read without looking the process up again at every read (the same
 * bounds: user space, any alignment; the same cache) */
static inline bool rd(struct ctx *c, uint64_t addr, void *buf, size_t len)
{
	return c->pm && addr >= 0x1000 && addr < 0x800000000000ull && pm_read(c->pm, addr, buf, len) == PM_OK;
}

static inline uint64_t rd_u64(struct ctx *c, uint64_t addr)
{
	uint64_t v = 0;
	return rd(c, addr, &v, sizeof(v)) ? v : 0;
}

static inline int32_t rd_i32(struct ctx *c, uint64_t addr, bool *ok)
{
	int32_t v = 0;
	*ok = rd(c, addr, &v, sizeof(v));
	return v;
}

/* A NUL-terminated C string of at most cap-1 bytes (tp_name, ml_name). */
static inline bool rd_cstr(struct ctx *c, uint64_t addr, char *buf, size_t cap)
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

struct xentry {
	uint32_t start, end, target, depth;
	bool lasti;
};

enum tk type_kind(struct ctx *c, uint64_t obj);
bool resolve(struct ctx *c, uint64_t obj, bool via_method, bool exit_only, struct lo_lock *out);
void with_site(struct ctx *c, uint64_t code, uint64_t handler, int *line, char *name, size_t cap);
void with_name_new(struct ctx *c, uint64_t code, uint32_t start, char *name, size_t cap);
void entering_name(struct ctx *c, const struct py_frame *f, char *name, size_t cap);
size_t parse_xtable(const unsigned char *t, size_t n, struct xentry *e, size_t max);
void add_held(struct ctx *c, struct lo_thread *t, const struct lo_lock *k);
void held_old(struct ctx *c, const struct py_frame *f, int fi, struct lo_thread *t);
void held_new(struct ctx *c, const struct py_frame *f, int fi, struct lo_thread *t);


/* lockown_held.c: exception tables parsed in this lockown_read (reset there) */
extern unsigned xcache_used;

#endif
