/* pyreader: Python threads and stacks of a live process (see pyreader.h for what it owns).
 * Version facts used here (all measured, see pylayout.c for offsets):
 *  - 2.7/3.6 start from the static interp_head (.symtab) or from the exported
 *    PyInterpreterState_Head, which is `48 8b 05 <disp32>; c3` (mov rip+disp32, ret).
 *  - 3.7+ start from _PyRuntime (exported; 3.10+ in its own .PyRuntime section; 3.13+ begins
 *    with _Py_DebugOffsets). Without symbols, a validated scan of .PyRuntime/.bss/.data.
 *  - 3.11+ export Py_Version (PY_VERSION_HEX).
 *  - <= 3.10 keep only the pthread_t: glibc 2.36 (x86_64) has the TID at pthread_t+0x2d0 and
 *    the pthread's self pointer at +0x10; both are validated against /proc/PID/task, else the
 *    TID comes from Thread._native_id (3.8+), else it is reported unknown (0).
 *  - GIL: 3.7+ struct _gil_runtime_state (locked, last_holder); 2.7/3.6 the exported
 *    _PyThreadState_Current (NULL when nobody holds it); 3.6 static gil_locked/
 *    gil_last_holder/gil_cond/gil_mutex/switch_cond/switch_mutex located by gilstatic.c
 *    (when they are not, a 3.6 futex wait is "unknown": lock or GIL cannot be told apart),
 *    2.7 static interpreter_lock (a pointer to a sem_t).
 *  - Linux: futex is syscall 202 on x86_64; /proc/PID/task/TID/syscall gives "nr args..."
 *    for a blocked thread and "running" otherwise, without attaching. */
#include "pyreader.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"
#include "gilstatic.h"
#include "procmem.h"
#include "mapscan.h"
#include "bounds.h"
#include "safeopen.h"
#include "stackcheck.h"
#include "syscall_names.h"

#define SYS_FUTEX_X86_64 202
#define GLIBC_PTHREAD_TID 0x2d0   /* glibc 2.36 x86_64: struct pthread.tid */
#define GLIBC_PTHREAD_SELF 0x10   /* tcbhead_t.self */
#ifndef CODE_CACHE_CAP               /* the fuzzers build with fewer slots */
#define CODE_CACHE_CAP 16384u     /* power of two */
#endif
#define MAX_DICT_ENTRIES (1u << 16)
#define MAX_LINETABLE (1u << 20)
#define MAX_INTERPRETERS 64u
#define MAX_SCAN_SECTION (64u << 20)
/* Processes whose state (layout, code cache, open files) the reader keeps between reads,
 * most recently read first. Each costs ~100-200 KiB; a host with hundreds of Python
 * processes would otherwise keep them all until they exit. Evicted ones are attached again
 * when read next (a few ms). */
#define READER_MAX_PROCS 64u
/* The block cache keeps this many blocks (1 MiB) between reads: describing a new process
 * reads ~10-20 blocks, and a fresh 32 MiB cache per description cost an mmap, a munmap and
 * a page fault per block (~15% of the tracer's CPU at 60 Python starts/s). A full stack
 * dump takes more, freed after. */
#define READER_CACHE_KEEP_BLOCKS 256u

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t get_u64(const unsigned char *b, uint32_t off)
{
	uint64_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static int32_t get_i32(const unsigned char *b, uint32_t off)
{
	int32_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static bool plausible_ptr(uint64_t p)
{
	return p >= 0x1000 && p < 0x800000000000ull && (p & 7) == 0;
}

/* Strings of one struct py_process live in chunks freed together (no malloc per frame). */
struct str_chunk {
	struct str_chunk *next;
	size_t used, cap;
	char data[];
};

static char *arena_strdup(struct py_process *out, const char *s)
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

static void arena_free(struct py_process *out)
{
	struct str_chunk *c = out->strings;
	while (c) {
		struct str_chunk *next = c->next;
		free(c);
		c = next;
	}
	out->strings = NULL;
}

/* A set of addresses, for cycle detection over bounded walks. */
struct addr_set {
	uint64_t *v;
	size_t cap; /* power of two */
	size_t n;
};

static bool addr_set_add(struct addr_set *s, uint64_t a) /* false: already present or OOM */
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

static void addr_set_free(struct addr_set *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Appends the UTF-8 encoding of code point cp (surrogates and invalid values become
 * U+FFFD). out must have room for 4 bytes. Returns bytes written. */
static size_t utf8_put(char *out, uint32_t cp)
{
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* ---- per-process state -------------------------------------------------------------- */

struct code_entry {
	uint64_t addr;         /* 0: empty slot */
	uint64_t checked_gen;  /* snapshot in which the fields below were last re-validated */
	/* fields of the code object that identify it (compared on re-validation) */
	uint64_t type, filename, name, qualname, linetable;
	int32_t firstlineno, firsttraceable;
	char *function, *file; /* NULL when unreadable (then `error` says which) */
	unsigned char *table;  /* NULL when unreadable */
	uint32_t table_len;
	const char *error;     /* static: what of this code object could not be read */
	/* copies in the struct py_process of snapshot out_gen (shared by all its frames) */
	uint64_t out_gen;
	char *out_function, *out_file;
	/* last lines computed: positions repeat across reads and recursive frames */
	uint64_t lpos[4];
	int lline[4];
	uint8_t lvalid, lnext;
};

struct py_proc {
	pid_t pid;
	uint64_t start_time;
	struct procmem pm;
	struct py_resolved res;       /* what attach_process resolved (see pyreader.h) */
	uint64_t last_interp;
	int pthread_tid_off;          /* validated offset of the TID in struct pthread, -1 */
	struct code_entry *codes;     /* CODE_CACHE_CAP slots */
	size_t ncodes;
	uint64_t last_preads;
	uint64_t read_gen;            /* cache generation its last read ended in (lockown.c) */
	uint64_t threading_module, threading_md, active_dict; /* validated each read */
	struct sysfd *sysfds;          /* open /proc/PID/task/TID/syscall files */
	size_t nsysfds, syscap, syscursor;
	/* Attached (interpreter file, symbols, layout) but its interpreter not found valid yet
	 * (a process still starting): what the next look needs to try again, or NULL. */
	struct attach *unresolved;
	bool resolved_by_scan;        /* found without symbols: kept once a look shows Python code */
	bool just_attached;           /* attached by the proc_get that returned it (begin_snapshot) */
	struct py_proc *next;
};

struct sym_cache;
struct attach;

struct py_reader {
	struct py_proc *procs;
	struct pm_cache cache; /* one block cache for every process (read one at a time) */
	struct sym_cache *syms; /* symbols of the interpreter files seen last (allocated on use) */
};

struct sysfd {
	pid_t tid;
	int fd;
	uint64_t gen; /* last snapshot that used it */
};

/* Per-read scratch state. */
struct walk {
	struct py_proc *p;
	struct py_process *out;
	int gone;      /* a read found the process gone */
	pid_t *tasks;
	size_t ntasks;
	/* A process in another pid namespace (a container) knows its threads by the ids of
	 * that namespace (gettid(), native_thread_id, glibc's pthread tid): ns_tids holds
	 * (innermost NSpid, host tid) of each task, sorted by the first (a lookup per thread
	 * is a binary search: a linear one was threads x tasks). NULL when the process is in
	 * our namespace. */
	struct ns_tid { pid_t ns, host; } *ns_tids;
	struct sym_cache *syms; /* the reader's, when attaching */
	uint32_t frame_steps;   /* taken so far, all threads (PY_MAX_FRAME_STEPS) */
	/* Steps of the walks that check a running thread's stack (stack_read_consistent): a
	 * budget of their own, as large, so checking does not halve what a read covers. */
	uint32_t check_steps;
	bool checking;
	/* Reads of objects (rd) go to the process now, through w->check's fresh blocks, not to
	 * the snapshot's cache: set by code_lookup during a checking walk (see there). */
	bool fresh_objs;
	/* A checking walk found a code object changed at an address already decoded in this
	 * snapshot: the walk cannot confirm the one before it (stack_read_consistent). */
	bool code_changed;
	struct stack_check *check; /* consistent stacks of running threads (allocated on use) */
	/* The GIL's last holder and switch count read directly before anything else of this
	 * snapshot (gil_proof true), from gil_addr: see gil_says_still. */
	bool gil_proof, snapshot_new; /* snapshot_new: no block of it read yet (read_once) */
	uint64_t gil_holder_addr, gil_switches_addr, gil0_holder, gil0_switches;
};

/* Takes one frame step of the read's budget; false when it is used up. */
static bool frame_step(struct walk *w)
{
	uint32_t *steps = w->checking ? &w->check_steps : &w->frame_steps;
	if (*steps >= PY_MAX_FRAME_STEPS)
		return false;
	(*steps)++;
	return true;
}

static int rd(struct walk *w, uint64_t addr, void *buf, size_t len)
{
	int rc = !w->fresh_objs ? pm_read(&w->p->pm, addr, buf, len) :
		 len <= PM_BLOCK ? sc_read_fresh(w->check, &w->p->pm, addr, buf, len) :
				   pm_read_direct(&w->p->pm, addr, buf, len);
	if (rc == PM_GONE)
		w->gone = 1;
	return rc == PM_OK ? 0 : -1;
}

static int rd_u64(struct walk *w, uint64_t addr, uint64_t *v)
{
	return rd(w, addr, v, sizeof(*v));
}

static bool type_is(struct walk *w, uint64_t obj, uint64_t type_addr)
{
	uint64_t t;
	if (!type_addr)
		return true; /* type unknown: cannot check, accept */
	return rd_u64(w, obj + w->p->res.layout.ob_type, &t) == 0 && t == type_addr;
}

/* ---- strings -------------------------------------------------------------------------- */

/* Lengths read from the target are untrusted. When an object claims more than we keep (a
 * string over PY_MAX_STR characters, a line table over MAX_LINETABLE bytes), its last byte
 * must be readable: a claim that runs past the mapping (a corrupt or fake object, e.g. a
 * str of 2**40 characters) makes the object unreadable instead of silently yielding the
 * bytes that happen to follow it. One extra pread, only for such long objects. */
static bool claim_plausible(struct walk *w, uint64_t data, uint64_t nbytes)
{
	unsigned char last;
	if (nbytes == 0)
		return true;
	if (nbytes > UINT64_MAX - data)
		return false;
	return rd(w, data + nbytes - 1, &last, 1) == 0;
}

static char *decode_units(const unsigned char *data, size_t n, unsigned width)
{
	char *out = malloc(n * 4 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t cp;
		if (width == 1)
			cp = data[i];
		else if (width == 2)
			cp = (uint32_t)data[2 * i] | ((uint32_t)data[2 * i + 1] << 8);
		else
			memcpy(&cp, data + 4 * i, 4);
		o += utf8_put(out + o, cp);
	}
	out[o] = '\0';
	return out;
}

/* bytes (3.x) / str (2.7): raw content, capped at cap bytes. */
static unsigned char *read_bytes_obj(struct walk *w, uint64_t addr, size_t cap, uint32_t *len_out)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t size;
	if (!plausible_ptr(addr) || rd_u64(w, addr + l->bytes_size, &size) != 0 || size > INT64_MAX)
		return NULL;
	size_t n = size < cap ? (size_t)size : cap;
	if (size > cap && !claim_plausible(w, addr + l->bytes_data, size))
		return NULL;
	unsigned char *buf = malloc(n + 1);
	if (!buf)
		return NULL;
	if (rd(w, addr + l->bytes_data, buf, n) != 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len_out = (uint32_t)n;
	return buf;
}

/* Bytes of a PEP 393 header to read so that ob_type, length and state all lie in it, at
 * least `least`. The offsets may come from a target's _Py_DebugOffsets (3.13+), which is
 * validated only against the sizes the target itself declares: never trust them to fit a
 * buffer (a hostile block once made str_equals read past its stack buffer). */
static uint32_t pep393_header_need(const struct py_layout *l, uint32_t least)
{
	uint32_t n = least;
	const uint32_t ends[] = { l->ob_type + 8, l->str_length + 8, l->str_state + 1 };
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if (ends[i] > n)
			n = ends[i];
	return n;
}

static char *read_pep393(struct walk *w, uint64_t addr)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char hdr[128];
	uint32_t need = pep393_header_need(l, l->str_compact_data + 8); /* + data.any (legacy) */
	if (need > sizeof(hdr) || rd(w, addr, hdr, need) != 0)
		return NULL;
	if (w->p->res.t_unicode && get_u64(hdr, l->ob_type) != w->p->res.t_unicode)
		return NULL;
	uint64_t length = get_u64(hdr, l->str_length);
	unsigned state = hdr[l->str_state];
	unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
	if (length > INT64_MAX || (kind != 1 && kind != 2 && kind != 4))
		return NULL;
	size_t n = length < PY_MAX_STR ? (size_t)length : PY_MAX_STR;
	uint64_t data;
	if (compact)
		data = addr + (ascii ? l->str_ascii_data : l->str_compact_data);
	else
		data = get_u64(hdr, l->str_compact_data); /* legacy string: data.any */
	if (length > n && (length > UINT64_MAX / 4 || !claim_plausible(w, data, length * kind)))
		return NULL;
	unsigned char *raw = malloc(n * kind + 1);
	if (!raw)
		return NULL;
	char *s = NULL;
	if (n == 0 || rd(w, data, raw, n * kind) == 0)
		s = decode_units(raw, n, kind);
	free(raw);
	return s;
}

/* 2.7 unicode object: length at 16, Py_UNICODE *str at 24. */
static char *read_unicode27(struct walk *w, uint64_t addr)
{
	uint64_t hdr[4];
	unsigned width = w->p->res.unicode27_width;
	/* decode_units knows 2 and 4 (UCS2/UCS4 builds); anything else would overrun raw */
	if ((width != 2 && width != 4) || rd(w, addr, hdr, sizeof(hdr)) != 0 || hdr[2] > INT64_MAX)
		return NULL;
	size_t n = hdr[2] < PY_MAX_STR ? (size_t)hdr[2] : PY_MAX_STR;
	if (hdr[2] > n && (hdr[2] > UINT64_MAX / 4 || !claim_plausible(w, hdr[3], hdr[2] * width)))
		return NULL;
	unsigned char *raw = malloc(n * width + 1);
	if (!raw)
		return NULL;
	char *s = NULL;
	if (n == 0 || rd(w, hdr[3], raw, n * width) == 0)
		s = decode_units(raw, n, width);
	free(raw);
	return s;
}

/* Any Python string object as UTF-8 (malloc'd), or NULL. */
static char *read_str(struct walk *w, uint64_t addr)
{
	if (!plausible_ptr(addr))
		return NULL;
	if (w->p->res.layout.strs == PY_STR_PEP393)
		return read_pep393(w, addr);
	uint64_t type;
	if (rd_u64(w, addr + w->p->res.layout.ob_type, &type) != 0)
		return NULL;
	if (w->p->res.t_unicode && type == w->p->res.t_unicode)
		return read_unicode27(w, addr);
	if (w->p->res.t_bytes && type != w->p->res.t_bytes)
		return NULL;
	uint32_t len;
	unsigned char *b = read_bytes_obj(w, addr, PY_MAX_STR, &len);
	return (char *)b;
}

/* Whether the string object at addr equals the ASCII string s (cheap length check first). */
static bool str_equals(struct walk *w, uint64_t addr, const char *s)
{
	const struct py_layout *l = &w->p->res.layout;
	size_t want = strlen(s);
	unsigned char hdr[64];
	if (!plausible_ptr(addr) || want > 256)
		return false;
	if (l->strs == PY_STR_PEP393) {
		uint32_t need = pep393_header_need(l, l->str_ascii_data);
		if (need > sizeof(hdr) || rd(w, addr, hdr, need) != 0 ||
		    get_u64(hdr, l->str_length) != want)
			return false;
		if (!((hdr[l->str_state] >> 6) & 1) || !((hdr[l->str_state] >> 5) & 1))
			return false; /* not compact ASCII */
		char buf[257];
		return rd(w, addr + l->str_ascii_data, buf, want) == 0 && memcmp(buf, s, want) == 0;
	}
	if (l->bytes_size + 8 > 24 || rd(w, addr, hdr, 24) != 0 || get_u64(hdr, l->bytes_size) != want)
		return false; /* 2.7 PyStringObject: ob_size at 16 */
	char buf[257];
	return rd(w, addr + l->bytes_data, buf, want) == 0 && memcmp(buf, s, want) == 0;
}

/* ---- line tables ---------------------------------------------------------------------- */

/* Line arithmetic of the decoders below: a hostile table (or co_firstlineno) could push an
 * int past INT_MAX, so lines are summed in 64 bits, saturated far beyond any int (each
 * delta is below 2^32 in magnitude, so the sum never overflows), and a result that does
 * not fit an int is "no line" (-1). */
#define LINE_LIMIT (INT64_C(1) << 40)

static int64_t line_add(int64_t line, int64_t delta)
{
	int64_t v = line + delta;
	return v > LINE_LIMIT ? LINE_LIMIT : v < -LINE_LIMIT ? -LINE_LIMIT : v;
}

static int line_result(int64_t line)
{
	return line >= INT_MIN && line <= INT_MAX ? (int)line : -1;
}

/* The decoders below set *reached (when not NULL) to whether the table itself placed the
 * position (an entry that covers or follows it was read whole), as opposed to running out
 * of bytes: with a copy of only the start of a table, only a reached position is known. */

/* <= 3.9 co_lnotab: (addr delta u8, line delta) pairs; lasti is a byte offset. */
static int line_from_lnotab(const unsigned char *t, uint32_t len, int first, uint64_t lasti,
			    bool signed_delta, bool *reached)
{
	int64_t line = first;
	uint64_t addr = 0;
	bool hit = false;
	for (uint32_t i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > lasti) {
			hit = true;
			break;
		}
		line = line_add(line, signed_delta ? (int8_t)t[i + 1] : t[i + 1]);
	}
	if (reached)
		*reached = hit;
	return line_result(line);
}

/* 3.10 co_linetable: (byte delta u8, line delta i8, -128 = no line) pairs; addr in bytes. */
static int line_from_linetable310(const unsigned char *t, uint32_t len, int first, uint64_t addr,
				  bool *reached)
{
	int64_t line = first, ar_line = -1;
	uint64_t end = 0;
	for (uint32_t i = 0; i + 1 < len; i += 2) {
		if (end > addr)
			break;
		end += t[i];
		int8_t d = (int8_t)t[i + 1];
		if (d == -128) {
			ar_line = -1;
		} else {
			line = line_add(line, d);
			ar_line = line;
		}
	}
	if (reached)
		*reached = end > addr;
	return end > addr ? line_result(ar_line) : -1;
}

static uint32_t read_varint(const unsigned char *t, uint32_t len, uint32_t *i)
{
	uint32_t v = 0, shift = 0;
	while (*i < len && shift < 32) {
		unsigned char b = t[(*i)++];
		v |= (uint32_t)(b & 63) << shift;
		shift += 6;
		if (!(b & 64))
			break;
	}
	return v;
}

static int32_t read_svarint(const unsigned char *t, uint32_t len, uint32_t *i)
{
	uint32_t u = read_varint(t, len, i);
	return (u & 1) ? -(int32_t)(u >> 1) : (int32_t)(u >> 1);
}

/* i + n, at most len (i is 32 bits and may be near its end: no wrap-around). */
static uint32_t skip_bytes(uint32_t i, uint32_t n, uint32_t len)
{
	return len - i < n ? len : i + n;
}

/* 3.11+ location table; target is in code units. */
static int line_from_locations(const unsigned char *t, uint32_t len, int first, uint64_t target,
			       bool *reached)
{
	int64_t line = first;
	uint64_t addr = 0;
	uint32_t i = 0;
	while (i < len) {
		unsigned char b = t[i++];
		unsigned code = (b >> 3) & 15, n = (b & 7) + 1;
		int64_t delta = 0;
		bool no_line = false;
		if (code == 15) {
			no_line = true;
		} else if (code == 14) {
			delta = read_svarint(t, len, &i);
			(void)read_varint(t, len, &i); /* end line delta */
			(void)read_varint(t, len, &i); /* column + 1 */
			(void)read_varint(t, len, &i); /* end column + 1 */
		} else if (code == 13) {
			delta = read_svarint(t, len, &i);
		} else if (code >= 10) {
			delta = (int)code - 10;
			i = skip_bytes(i, 2, len); /* one-line form: start and end column */
		} else {
			i = skip_bytes(i, 1, len); /* short form: column byte */
		}
		line = line_add(line, delta);
		if (target >= addr && target < addr + n) {
			if (reached) /* the entry's varints may run past the end of a copy */
				*reached = i < len;
			return no_line ? -1 : line_result(line);
		}
		addr += n;
	}
	if (reached)
		*reached = false;
	return -1;
}

/* ---- code objects (cached) ------------------------------------------------------------ */

static void code_entry_clear(struct code_entry *c)
{
	free(c->function);
	free(c->file);
	free(c->table);
	memset(c, 0, sizeof(*c));
}

static void code_cache_clear(struct py_proc *p)
{
	if (!p->codes || p->ncodes == 0)
		return;
	for (size_t i = 0; i < CODE_CACHE_CAP; i++)
		if (p->codes[i].addr)
			code_entry_clear(&p->codes[i]);
	p->ncodes = 0;
}

/* The identifying fields of the code object at addr, read now. */
static int code_read_fields(struct walk *w, uint64_t addr, struct code_entry *f)
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

static struct code_entry *code_lookup(struct walk *w, uint64_t addr)
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

static int code_line_uncached(const struct py_layout *l, const struct code_entry *c,
			      uint64_t pos);

/* Line for a position: byte offset (<= 3.9), code units (3.10), byte offset (3.11+). */
static int code_line(const struct py_layout *l, struct code_entry *c, uint64_t pos)
{
	for (unsigned i = 0; i < 4; i++)
		if ((c->lvalid >> i & 1) && c->lpos[i] == pos)
			return c->lline[i];
	int line = code_line_uncached(l, c, pos);
	unsigned k = c->lnext++ & 3;
	c->lpos[k] = pos;
	c->lline[k] = line;
	c->lvalid |= (uint8_t)(1u << k);
	return line;
}

static int table_line(const struct py_layout *l, const unsigned char *table, uint32_t len,
		      int first, uint64_t pos, bool *reached)
{
	switch (l->lines) {
	case PY_LINES_LNOTAB_U8:
		return line_from_lnotab(table, len, first, pos, false, reached);
	case PY_LINES_LNOTAB_S8:
		return line_from_lnotab(table, len, first, pos, true, reached);
	case PY_LINES_LINETABLE310:
		return line_from_linetable310(table, len, first, pos * 2, reached);
	case PY_LINES_LOCATIONS:
		return line_from_locations(table, len, first, pos / 2, reached);
	}
	return -1;
}

static int code_line_uncached(const struct py_layout *l, const struct code_entry *c,
			      uint64_t pos)
{
	if (!c->table)
		return -1;
	return table_line(l, c->table, c->table_len, c->firstlineno, pos, NULL);
}

/* Public: the line of a position captured elsewhere (the BPF stack walker) from a copy of
 * the code object's line table. pos as above: f_lasti (<= 3.10; negative: not started) or
 * the byte offset of the instruction from the code start (3.11+). */
int py_line_for_position(const struct py_layout *l, const unsigned char *table, uint32_t len,
			 int firstlineno, int64_t pos)
{
	if (pos < 0)
		return firstlineno;
	struct code_entry c;
	memset(&c, 0, sizeof(c));
	c.table = (unsigned char *)table;
	c.table_len = len;
	c.firstlineno = firstlineno;
	return code_line(l, &c, (uint64_t)pos);
}

enum py_line_status py_line_in_copy(const struct py_layout *l, const unsigned char *table,
				    uint32_t copied, uint64_t full_len, int firstlineno, int64_t pos,
				    int *line)
{
	bool reached = false;
	*line = -1;
	if (pos < 0) {
		*line = firstlineno;
		return PY_LINE_OK;
	}
	int v = table_line(l, table, copied, firstlineno, (uint64_t)pos, &reached);
	if (!reached && copied < full_len)
		return PY_LINE_CUT;
	*line = v;
	return v >= 0 ? PY_LINE_OK : PY_LINE_NONE;
}

/* ---- dicts ---------------------------------------------------------------------------- */

/* Called per live entry; returns true to stop the iteration. hash is 0 when the layout
 * does not store it (3.11+ unicode-keyed tables). */
typedef bool (*dict_cb)(struct walk *w, uint64_t hash, uint64_t key, uint64_t value, void *ctx);

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

static int dict_each(struct walk *w, uint64_t dict, dict_cb cb, void *ctx)
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
static uint64_t dict_get_str(struct walk *w, uint64_t dict, const char *key)
{
	struct str_lookup s = { key, 0 };
	if (dict_each(w, dict, match_str_key, &s) != 0)
		return 0;
	return s.value;
}

/* An attribute of an instance, read from its __dict__ (or managed dict / inline values). */
static uint64_t instance_attr(struct walk *w, uint64_t obj, const char *name)
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

/* ---- finding the interpreter ---------------------------------------------------------- */

/* "X.Y" from a file name such as libpython3.11.so.1.0, libpython3.6m.so, python3.11. */
static bool version_from_name(const char *path, unsigned *major, unsigned *minor)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *p = strstr(base, "python");
	if (!p)
		return false;
	p += 6;
	char *end;
	unsigned long ma = strtoul(p, &end, 10);
	if (end == p || *end != '.' || ma < 2 || ma > 9)
		return false;
	const char *q = end + 1;
	unsigned long mi = strtoul(q, &end, 10);
	if (end == q || mi > 99)
		return false;
	*major = (unsigned)ma;
	*minor = (unsigned)mi;
	return true;
}

static bool is_libpython(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return strncmp(base, "libpython", 9) == 0 && strstr(base, ".so") != NULL;
}

/* The mapping of the file holding the interpreter: libpython if mapped, else the exe. */
static const struct pm_map *find_python_mapping(pid_t pid, const struct pm_maps *maps)
{
	for (size_t i = 0; i < maps->n; i++)
		if (maps->v[i].path && maps->v[i].offset == 0 && is_libpython(maps->v[i].path))
			return &maps->v[i];
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st) != 0)
		return NULL;
	for (size_t i = 0; i < maps->n; i++)
		if (maps->v[i].path && maps->v[i].path[0] == '/' && maps->v[i].offset == 0 &&
		    maps->v[i].inode == (uint64_t)st.st_ino)
			return &maps->v[i];
	return NULL;
}

/* Opens the mapped file as the target sees it, else through /proc/PID/map_files; only the
 * mapped regular file itself, never outside the target's root (safeopen.h). */
static int open_mapped_file(pid_t pid, const struct pm_map *m)
{
	return so_open_mapping(pid, m);
}

enum sym_id {
	S_RUNTIME, S_PY_VERSION, S_INTERP_HEAD_FN, S_INTERP_HEAD, S_TSTATE_CURRENT,
	S_CODE_TYPE, S_UNICODE_TYPE, S_STRING_TYPE, S_BYTES_TYPE, S_DICT_TYPE, S_TRUE,
	S_INTERPRETER_LOCK, S_UCS4, S_UCS2,
	S_GIL_SWITCH_NUMBER, /* 3.6 static (stackcheck: gil_proof_begin) */
	S_COUNT
};

static const char *const sym_names[S_COUNT] = {
	"_PyRuntime", "Py_Version", "PyInterpreterState_Head", "interp_head",
	"_PyThreadState_Current", "PyCode_Type", "PyUnicode_Type", "PyString_Type",
	"PyBytes_Type", "PyDict_Type", "_Py_TrueStruct", "interpreter_lock",
	"PyUnicodeUCS4_FromString",
	"PyUnicodeUCS2_FromString", "gil_switch_number",
};

/* Sections the interpreter is searched in. */
enum sec_id { SEC_PYRUNTIME, SEC_BSS, SEC_DATA, SEC_COUNT };
static const char *const sec_names[SEC_COUNT] = { ".PyRuntime", ".bss", ".data" };

/* What attaching learns of the interpreter file (the binary or libpython): the same for
 * every process of that file, but for the load bias. */
struct file_facts {
	uint64_t sym[S_COUNT], symsize[S_COUNT];
	uint64_t sec_addr[SEC_COUNT], sec_size[SEC_COUNT]; /* size 0: no such section */
	struct elf_placement place;
	struct gil_static_loc gil_sym, gil_code; /* a static GIL (3.6) by .symtab / by code */
};

struct attach {
	struct file_facts f;
	uint64_t bias;
	bool no_symbols; /* testing: PYHANG_NO_SYMBOLS=1 ignores the interpreter-state symbols */
};

/* The facts of the last few interpreter files attached: every process of the same
 * interpreter needs the same ones; looking the symbols up scans the whole symbol table
 * (milliseconds for libpython's), and with the facts at hand a new process costs a stat
 * of the file instead of opening it and reading its headers. Keyed by the file's identity
 * (device, inode, size, mtime). Files that are not interpreters (not ELF, out of bounds,
 * over the elf-bytes limit, or without any CPython symbol) are remembered too, apart
 * (SYM_FAIL_ENTRIES), so that a look-alike binary costs one look, not one per retry of
 * the description (issue 12), and cannot push the interpreters out. */
#define SYM_CACHE_ENTRIES 8u
#define SYM_FAIL_ENTRIES 64u

struct sym_cache_entry {
	uint64_t dev, inode, size;
	int64_t mtime_ns;
	struct file_facts f;
	bool used;
	bool failed;   /* the look failed: err says why */
	char err[128];
};

struct sym_cache {
	struct sym_cache_entry e[SYM_CACHE_ENTRIES];
	unsigned next;
	struct sym_cache_entry fail[SYM_FAIL_ENTRIES];
	unsigned next_fail;
};

struct file_id {
	uint64_t dev, inode, size;
	int64_t mtime_ns;
};

static struct file_id file_id_of(const struct stat *st)
{
	return (struct file_id){ (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
				 (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec };
}

static const struct sym_cache_entry *facts_cached(const struct sym_cache *c, struct file_id id)
{
	for (unsigned i = 0; c && i < SYM_CACHE_ENTRIES + SYM_FAIL_ENTRIES; i++) {
		const struct sym_cache_entry *e = i < SYM_CACHE_ENTRIES ? &c->e[i]
								      : &c->fail[i - SYM_CACHE_ENTRIES];
		if (e->used && e->dev == id.dev && e->inode == id.inode && e->size == id.size &&
		    e->mtime_ns == id.mtime_ns)
			return e;
	}
	return NULL;
}

/* What a cache entry says: its facts (0) or its failure (-1, err). */
static int facts_answer(const struct sym_cache_entry *e, struct file_facts *out, char *err,
			size_t errlen)
{
	if (e->failed) {
		snprintf(err, errlen, "%s", e->err);
		return -1;
	}
	*out = e->f;
	return 0;
}

static bool facts_have_cpython(const struct file_facts *f)
{
	for (int i = 0; i < S_COUNT; i++)
		if (f->sym[i])
			return true;
	return f->sec_size[SEC_PYRUNTIME] != 0;
}

static int facts_from_elf(struct elf_file *ef, struct file_facts *f)
{
	memset(f, 0, sizeof(*f));
	if (elf_placement_of(ef, &f->place) != 0)
		return -1;
	elf_lookup_symbols(ef, sym_names, S_COUNT, f->sym, f->symsize);
	if (ef->over_budget)
		return -2;
	for (int i = 0; i < SEC_COUNT; i++) {
		if (elf_find_section(ef, sec_names[i], &f->sec_addr[i], &f->sec_size[i]) != 0)
			f->sec_addr[i] = f->sec_size[i] = 0;
		/* a section is no larger than the segment (the mapping) that holds it */
		f->sec_size[i] = elf_clamp_to_load(ef, f->sec_addr[i], f->sec_size[i]);
	}
	/* a file with _PyRuntime keeps its GIL there (3.7+) */
	const struct py_gil_statics *gs[4];
	size_t ngs = f->sym[S_RUNTIME] ? 0 : pylayout_gil_statics(gs, 4);
	for (size_t i = 0; i < ngs && !f->gil_sym.desc; i++)
		(void)gilstatic_from_symtab(ef, gs[i], &f->gil_sym);
	for (size_t i = 0; i < ngs && !f->gil_code.desc; i++)
		(void)gilstatic_from_code(ef, gs[i], &f->gil_code);
	return 0;
}

static void facts_remember(struct sym_cache *c, struct file_id id, const struct file_facts *f,
			   const char *failure)
{
	if (!c)
		return;
	bool useful = !failure && facts_have_cpython(f);
	struct sym_cache_entry *e = useful ? &c->e[c->next++ % SYM_CACHE_ENTRIES]
					   : &c->fail[c->next_fail++ % SYM_FAIL_ENTRIES];
	memset(e, 0, sizeof(*e));
	e->dev = id.dev;
	e->inode = id.inode;
	e->size = id.size;
	e->mtime_ns = id.mtime_ns;
	if (failure) {
		e->failed = true;
		snprintf(e->err, sizeof(e->err), "%s", failure);
	} else {
		e->f = *f;
	}
	e->used = true;
}

/* The facts of the file mapped at m, from the cache when the file the process sees at
 * that path is the mapped one (same inode) and known, or when the file opened is known
 * (by its identity: fstat); else read from the file. 0 or -1. */
static int file_facts_of(struct sym_cache *c, pid_t pid, const struct pm_map *m,
			 struct file_facts *out, char *err, size_t errlen)
{
	struct stat st;
	const struct sym_cache_entry *e;
	if (so_stat_in_root(pid, m->path, &st) == 0 && (uint64_t)st.st_ino == m->inode &&
	    (e = facts_cached(c, file_id_of(&st))) != NULL)
		return facts_answer(e, out, err, errlen);
	int fd = open_mapped_file(pid, m);
	bool known = fd >= 0 && fstat(fd, &st) == 0;
	if (known && (e = facts_cached(c, file_id_of(&st))) != NULL) {
		close(fd);
		return facts_answer(e, out, err, errlen);
	}
	struct elf_file ef;
	if (elf_open_fd(&ef, fd, err, errlen) != 0) {
		if (known)
			facts_remember(c, file_id_of(&st), NULL, err);
		return -1;
	}
	int rc = facts_from_elf(&ef, out);
	if (rc == -2)
		snprintf(err, errlen, "%s needs more than the elf-bytes limit (%" PRIu64 " bytes) "
			 "read to find its symbols", m->path, ph_limits.elf_bytes);
	else if (rc != 0)
		snprintf(err, errlen, "%s has no loadable segment", m->path);
	struct file_id id = { ef.dev, ef.inode, ef.file_size, ef.mtime_ns };
	facts_remember(c, id, out, rc == 0 ? NULL : err);
	elf_close(&ef);
	return rc == 0 ? 0 : -1;
}

/* 0 and section id's link address and size (add a->bias for where it is in the
 * process), or -1 if the file has none. */
static int attach_section(const struct attach *a, enum sec_id id, uint64_t *addr,
			  uint64_t *size)
{
	if (!a->f.sec_size[id])
		return -1;
	*addr = a->f.sec_addr[id];
	*size = a->f.sec_size[id];
	return 0;
}

static uint64_t sym_addr(const struct attach *a, enum sym_id id)
{
	return a->f.sym[id] ? a->f.sym[id] + a->bias : 0;
}

/* Validates an interpreter: its first thread state points back to it. */
static bool interp_valid(struct walk *w, uint64_t interp)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t ts, back;
	if (!plausible_ptr(interp) || rd_u64(w, interp + l->interp_tstate_head, &ts) != 0)
		return false;
	if (ts == 0)
		return true; /* no thread yet (startup/shutdown): nothing to contradict */
	return plausible_ptr(ts) && rd_u64(w, ts + l->ts_interp, &back) == 0 && back == interp;
}

/* Stricter, for scanning: a live first thread that points back, with a thread id, whose
 * successor (if any) belongs to the same interpreter. */
static bool interp_valid_strict(struct walk *w, uint64_t interp)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t ts, back, tid, next;
	if (!plausible_ptr(interp) || rd_u64(w, interp + l->interp_tstate_head, &ts) != 0 ||
	    !plausible_ptr(ts) || rd_u64(w, ts + l->ts_interp, &back) != 0 || back != interp ||
	    rd_u64(w, ts + l->ts_thread_id, &tid) != 0 || tid == 0 ||
	    rd_u64(w, ts + l->ts_next, &next) != 0)
		return false;
	return next == 0 || (plausible_ptr(next) && rd_u64(w, next + l->ts_interp, &back) == 0 &&
			     back == interp);
}

/* Scans a section of the process for a pointer to a valid interpreter; returns its
 * address (the candidate interp_head or &_PyRuntime.interpreters.head) or 0. */
static uint64_t scan_for_interp_pointer(struct walk *w, uint64_t start, uint64_t size,
					bool want_head_main_pair)
{
	if (size > MAX_SCAN_SECTION)
		size = MAX_SCAN_SECTION;
	if (size > ph_limits.scan_bytes) /* issue 12: the file says how large; it may lie */
		size = ph_limits.scan_bytes;
	/* candidates followed, each a few reads: 2.7 and 3.6 without symbols follow ~5,000
	 * before interp_head (measured, sleeping processes); 16,384 at the default */
	uint64_t checks = ph_limits.scan_bytes / 256;
	enum { CHUNK = 65536 };
	uint64_t *buf = malloc(CHUNK);
	if (!buf)
		return 0;
	uint64_t found = 0;
	for (uint64_t off = 0; off + 16 <= size && !found && !w->gone && checks; off += CHUNK - 8) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		n &= ~(size_t)7;
		if (pm_read_direct(&w->p->pm, start + off, buf, n) != PM_OK)
			break;
		for (size_t i = 0; i + 1 < n / 8 && !found; i++) {
			if (!plausible_ptr(buf[i]) || (want_head_main_pair && buf[i + 1] != buf[i]))
				continue;
			if (!checks--)
				break;
			if (interp_valid_strict(w, buf[i]))
				found = start + off + i * 8;
		}
	}
	free(buf);
	return found;
}

/* 2.7/3.6: PyInterpreterState_Head is `mov interp_head(%rip), %rax; ret`. */
static uint64_t interp_head_from_disassembly(struct walk *w, uint64_t fn)
{
	unsigned char code[8];
	if (!fn || rd(w, fn, code, sizeof(code)) != 0)
		return 0;
	if (code[0] != 0x48 || code[1] != 0x8b || code[2] != 0x05 || code[7] != 0xc3)
		return 0;
	int32_t disp;
	memcpy(&disp, code + 3, 4);
	return fn + 7 + (uint64_t)(int64_t)disp;
}

static int find_interp_head(struct walk *w, struct attach *a, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	uint64_t head = a->no_symbols ? 0 : sym_addr(a, S_INTERP_HEAD);
	if (!head && !a->no_symbols)
		head = interp_head_from_disassembly(w, sym_addr(a, S_INTERP_HEAD_FN));
	uint64_t interp = 0;
	if (head && (rd_u64(w, head, &interp) != 0 || !interp_valid(w, interp))) {
		/* The symbol says where the interpreter will be: no scan. Before it is set up a
		 * scan finds look-alikes (2.7: a static pointer to a gc list head, whose empty
		 * list points at itself like an interpreter and its thread). */
		snprintf(err, errlen, "interp_head not set up yet (CPython %u.%u)",
			 p->res.layout.major, p->res.layout.minor);
		return -1;
	}
	uint64_t sa, ss;
	p->resolved_by_scan = !head;
	if (!head && attach_section(a, SEC_BSS, &sa, &ss) == 0)
		head = scan_for_interp_pointer(w, sa + a->bias, ss, false);
	if (!head && attach_section(a, SEC_DATA, &sa, &ss) == 0)
		head = scan_for_interp_pointer(w, sa + a->bias, ss, false);
	if (!head) {
		snprintf(err, errlen, "cannot find interp_head (CPython %u.%u)", p->res.layout.major,
			 p->res.layout.minor);
		return -1;
	}
	p->res.interp_head = head;
	return 0;
}

static bool runtime_valid(struct walk *w, uint64_t rt)
{
	uint64_t interp;
	return rt && rd_u64(w, rt + w->p->res.layout.rt_interp_head, &interp) == 0 &&
	       interp_valid(w, interp);
}

/* 3.7-3.9 without symbols: _PyRuntime holds interpreters.head and, right after it,
 * interpreters.main, equal while there is one interpreter; found in [start, start+size). */
static uint64_t runtime_by_scan(struct walk *w, uint64_t start, uint64_t size)
{
	uint64_t head = scan_for_interp_pointer(w, start, size, true);
	uint64_t rt = head - w->p->res.layout.rt_interp_head;
	return head && runtime_valid(w, rt) ? rt : 0;
}

static int find_runtime(struct walk *w, struct attach *a, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	uint64_t rt = a->no_symbols ? 0 : sym_addr(a, S_RUNTIME);
	uint64_t sa, ss;
	if (!rt && attach_section(a, SEC_PYRUNTIME, &sa, &ss) == 0)
		rt = sa + a->bias; /* 3.10+: _PyRuntime is the section's only object */
	if (rt && !runtime_valid(w, rt)) {
		/* known, not set up yet: no scan (see find_interp_head) */
		snprintf(err, errlen, "_PyRuntime not set up yet (CPython %u.%u)",
			 p->res.layout.major, p->res.layout.minor);
		return -1;
	}
	p->resolved_by_scan = !rt;
	const enum sec_id secs[] = { SEC_BSS, SEC_DATA };
	for (size_t i = 0; i < 2 && !rt && p->res.layout.major == 3 && p->res.layout.minor < 10; i++) {
		if (attach_section(a, secs[i], &sa, &ss) != 0)
			continue;
		rt = runtime_by_scan(w, sa + a->bias, ss);
	}
	if (!rt) {
		snprintf(err, errlen, "cannot find a valid _PyRuntime (CPython %u.%u)",
			 p->res.layout.major, p->res.layout.minor);
		return -1;
	}
	p->res.runtime = rt;
	return 0;
}

/* The _PyRuntime address before a layout is known (3.13+ needs it to read the layout). */
static uint64_t runtime_candidate(struct attach *a)
{
	uint64_t sa, ss;
	if (!a->no_symbols && a->f.sym[S_RUNTIME])
		return sym_addr(a, S_RUNTIME);
	if (attach_section(a, SEC_PYRUNTIME, &sa, &ss) == 0)
		return sa + a->bias;
	return 0;
}

static int layout_from_process(struct walk *w, struct attach *a, unsigned major,
			       unsigned minor, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	size_t need = pylayout_debug_offsets_size(major, minor);
	uint64_t rt = runtime_candidate(a);
	if (!need) {
		snprintf(err, errlen, "unsupported CPython %u.%u", major, minor);
		return -1;
	}
	unsigned char *raw = malloc(need);
	if (!raw)
		return -1;
	int rc = -1;
	uint32_t declared = 0;
	if (!rt || rd(w, rt, raw, need) != 0)
		snprintf(err, errlen, "cannot read _Py_DebugOffsets of CPython %u.%u", major, minor);
	else if (pylayout_from_debug_offsets(raw, need, &p->res.layout, &declared, err, errlen) == 0)
		rc = 0;
	free(raw);
	if (rc == 0 && (((declared >> 24) & 0xff) != major || ((declared >> 16) & 0xff) != minor)) {
		snprintf(err, errlen, "_Py_DebugOffsets declares %u.%u but the process is %u.%u",
			 (declared >> 24) & 0xff, (declared >> 16) & 0xff, major, minor);
		rc = -1;
	}
	return rc;
}

/* Decides the version (Py_Version when exported, else the file name) and the layout. */
static int choose_layout(struct walk *w, struct attach *a, const char *path, char *err,
			 size_t errlen)
{
	struct py_proc *p = w->p;
	unsigned major = 0, minor = 0, fmaj, fmin;
	bool from_name = version_from_name(path, &fmaj, &fmin);
	uint32_t hex = 0;
	if (a->f.sym[S_PY_VERSION] && pm_read_u32(&p->pm, sym_addr(a, S_PY_VERSION), &hex) == PM_OK) {
		major = (hex >> 24) & 0xff;
		minor = (hex >> 16) & 0xff;
		p->res.version_hex = hex;
		if (from_name && (fmaj != major || fmin != minor)) {
			snprintf(err, errlen, "Py_Version says %u.%u but the file is %s", major, minor,
				 path);
			return -1;
		}
	} else if (from_name) {
		major = fmaj;
		minor = fmin;
		p->res.version_hex = (major << 24) | (minor << 16);
	} else {
		snprintf(err, errlen, "cannot tell the CPython version of %s", path);
		return -1;
	}
	snprintf(p->res.version, sizeof(p->res.version), "%u.%u", major, minor);
	if (major == 3 && minor >= 13)
		return layout_from_process(w, a, major, minor, err, errlen);
	const struct py_layout *l = pylayout_for_version(major, minor);
	if (!l) {
		snprintf(err, errlen, "unsupported CPython %u.%u", major, minor);
		return -1;
	}
	p->res.layout = *l;
	return 0;
}

static void set_version_string(struct py_proc *p)
{
	unsigned hex = p->res.version_hex, micro = (hex >> 8) & 0xff, level = (hex >> 4) & 0xf;
	if (!(hex & 0xffff) && p->res.version[0])
		return; /* only X.Y known; the sys.version read may refine it */
	const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";
	if (*lv)
		snprintf(p->res.version, sizeof(p->res.version), "%u.%u.%u%s%u", hex >> 24,
			 (hex >> 16) & 0xff, micro, lv, hex & 0xf);
	else
		snprintf(p->res.version, sizeof(p->res.version), "%u.%u.%u", hex >> 24, (hex >> 16) & 0xff,
			 micro);
}

static void take_symbols(struct py_proc *p, const struct attach *a)
{
	p->res.t_code = sym_addr(a, S_CODE_TYPE);
	p->res.t_unicode = sym_addr(a, S_UNICODE_TYPE);
	p->res.t_bytes = p->res.layout.major == 2 ? sym_addr(a, S_STRING_TYPE) : sym_addr(a, S_BYTES_TYPE);
	p->res.t_dict = sym_addr(a, S_DICT_TYPE);
	p->res.t_true = sym_addr(a, S_TRUE);
	p->res.tstate_current = p->res.layout.gil_kind == PY_GIL_NONE ||
					p->res.layout.gil_kind == PY_GIL_STATIC ? sym_addr(a, S_TSTATE_CURRENT) : 0;
	p->res.interpreter_lock = sym_addr(a, S_INTERPRETER_LOCK);
	p->res.unicode27_width = a->f.sym[S_UCS4] ? 4 : a->f.sym[S_UCS2] ? 2 : 0;
	/* 3.6: gil_switch_number, an 8-byte static of ceval.c (Python/ceval_gil.h), from
	 * .symtab only: with gil_last_holder it proves a thread ran no Python code during a
	 * read (gil_proof_begin) */
	p->res.gil36_switch_number = p->res.layout.gil_kind == PY_GIL_STATIC && !a->no_symbols &&
					     a->f.symsize[S_GIL_SWITCH_NUMBER] == 8 ?
					     sym_addr(a, S_GIL_SWITCH_NUMBER) : 0;
	/* PYHANG_NO_SYMBOLS: as a file without .symtab */
	const struct gil_static_loc *g = a->no_symbols || !a->f.gil_sym.desc ? &a->f.gil_code
									    : &a->f.gil_sym;
	p->res.gil_found_by = NULL;
	if (!g->desc || g->desc != p->res.layout.gil_statics)
		return; /* not located: the GIL is unknown */
	for (int i = 0; i < PY_GIL_STATIC_PARTS && i < 4; i++) {
		p->res.gil_static[i][0] = g->part[i] + a->bias;
		p->res.gil_static[i][1] = g->part[i] + a->bias + g->desc->parts[i].size;
	}
	p->res.gil_locked = g->locked ? g->locked + a->bias : 0;
	p->res.gil_last_holder = g->last_holder ? g->last_holder + a->bias : 0;
	p->res.gil_wait[0] = g->wait_lo + a->bias;
	p->res.gil_wait[1] = g->wait_hi + a->bias;
	p->res.gil_found_by = g->how;
}

/* The process's interpreter file, its symbols and the layout: all that does not change
 * while the process lives. 0 or -1 with err. */
static int attach_static(struct walk *w, struct attach *a, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	struct pm_maps maps;
	/* only the mappings find_python_mapping and the bias may use (issue 12: bounded) */
	char exe[64];
	struct stat est;
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)p->pid);
	struct pm_map_want want = { is_libpython, stat(exe, &est) == 0 ? (uint64_t)est.st_ino : 0, 0 };
	if (pm_read_maps_wanted(p->pid, &want, &maps) != 0) {
		snprintf(err, errlen, "cannot read /proc/%d/maps (process exited?)", (int)p->pid);
		return -1;
	}
	int rc = -1;
	const char *ns = getenv("PYHANG_NO_SYMBOLS");
	a->no_symbols = ns && strcmp(ns, "1") == 0;
	const struct pm_map *m = find_python_mapping(p->pid, &maps);
	if (!m) {
		snprintf(err, errlen, "process %d is not a Python process (no libpython, no "
			 "executable mapping found)", (int)p->pid);
		goto out;
	}
	if (file_facts_of(w->syms, p->pid, m, &a->f, err, errlen) != 0)
		goto out;
	if (elf_bias_in_maps(&a->f.place, &maps, m->path, &a->bias) != 0) {
		snprintf(err, errlen, "cannot compute the load bias of %s", m->path);
		goto out;
	}
	if (!a->f.sym[S_RUNTIME] && !a->f.sym[S_INTERP_HEAD_FN] && !a->f.sym[S_INTERP_HEAD] &&
	    !is_libpython(m->path) && !version_from_name(m->path, &(unsigned){0}, &(unsigned){0})) {
		snprintf(err, errlen, "process %d is not a Python process (%s has no CPython "
			 "symbols)", (int)p->pid, m->path);
		goto out;
	}
	if (choose_layout(w, a, m->path, err, errlen) != 0)
		goto out;
	take_symbols(p, a);
	rc = 0;
out:
	pm_free_maps(&maps);
	return rc;
}

/* Where the interpreter state is found (_PyRuntime, or interp_head before 3.7), validated
 * against the live process: fails until the interpreter is set up. 0 or -1 with err. */
static int attach_resolve(struct walk *w, struct attach *a, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	int rc;
	if (p->res.layout.start == PY_START_INTERP_HEAD)
		rc = find_interp_head(w, a, err, errlen);
	else
		rc = find_runtime(w, a, err, errlen);
	set_version_string(p);
	return rc;
}

/* Whether a failed resolve may succeed later without attaching again: when the file's
 * symbols name where the interpreter will be. Without them the mapping found may be the
 * executable of a process whose libpython is not mapped yet (the dynamic loader still
 * runs), so the next try reads the maps again. */
static bool attach_can_retry(const struct attach *a)
{
	uint64_t sa, ss;
	if (a->no_symbols)
		return false;
	return a->f.sym[S_RUNTIME] || a->f.sym[S_INTERP_HEAD] || a->f.sym[S_INTERP_HEAD_FN] ||
	       attach_section(a, SEC_PYRUNTIME, &sa, &ss) == 0;
}

/* Attaches w->p, or finishes attaching it. 0: done; -1 with err: failed (the process is
 * not Python, or is gone); 1 with err: attached, but its interpreter is not set up yet
 * (p->unresolved is kept for the next try). */
static int attach_process(struct walk *w, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	struct attach *a = p->unresolved;
	int rc = 0;
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rc = attach_static(w, a, err, errlen);
	}
	if (rc == 0 && attach_resolve(w, a, err, errlen) != 0)
		rc = attach_can_retry(a) ? 1 : -1;
	if (w->gone) {
		snprintf(err, errlen, "process %d exited or exec'd while being read", (int)p->pid);
		rc = -1;
	}
	p->unresolved = rc == 1 ? a : NULL;
	if (rc != 1)
		free(a);
	return rc;
}

/* ---- threads -------------------------------------------------------------------------- */

const char *py_thread_state_str(enum py_thread_state s)
{
	switch (s) {
	case PY_STATE_RUNNING: return "running";
	case PY_STATE_LOCK_WAIT: return "lock_wait";
	case PY_STATE_GIL_WAIT: return "gil_wait";
	case PY_STATE_SLEEP: return "sleep";
	case PY_STATE_UNKNOWN: break;
	}
	return "unknown";
}

struct active_entry {
	uint64_t ident, thread;
};

struct active_list {
	struct active_entry *v;
	size_t n, cap;
};

static bool collect_active(struct walk *w, uint64_t hash, uint64_t key, uint64_t value, void *ctx)
{
	(void)w;
	(void)key;
	struct active_list *a = ctx;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		if (nc > PY_MAX_THREADS * 2)
			return true;
		struct active_entry *nv = realloc(a->v, nc * sizeof(*nv));
		if (!nv)
			return true;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n].ident = hash; /* int keys hash to themselves (ident < 2**61 - 1) */
	a->v[a->n].thread = value;
	a->n++;
	return false;
}

/* threading._active (module dict cached and re-validated), or 0 if threading is absent. */
static uint64_t find_active_dict(struct walk *w, uint64_t interp)
{
	struct py_proc *p = w->p;
	const struct py_layout *l = &p->res.layout;
	if (p->active_dict) {
		uint64_t md;
		if (rd_u64(w, p->threading_module + l->md_dict, &md) == 0 && md == p->threading_md &&
		    type_is(w, md, p->res.t_dict) && type_is(w, p->active_dict, p->res.t_dict))
			return p->active_dict;
		p->active_dict = 0;
	}
	uint64_t modules, module, md;
	if (rd_u64(w, interp + l->interp_modules, &modules) != 0)
		return 0;
	module = dict_get_str(w, modules, "threading");
	if (!module || rd_u64(w, module + l->md_dict, &md) != 0)
		return 0;
	uint64_t active = dict_get_str(w, md, "_active");
	if (!active || !type_is(w, active, p->res.t_dict))
		return 0;
	p->threading_module = module;
	p->threading_md = md;
	p->active_dict = active;
	return active;
}

/* sys.version up to the first space, for versions without Py_Version (<= 3.10). */
static void read_sys_version(struct walk *w, uint64_t interp)
{
	struct py_proc *p = w->p;
	if (p->res.version_hex & 0xffff)
		return;
	uint64_t modules, sys_mod, md;
	if (rd_u64(w, interp + p->res.layout.interp_modules, &modules) != 0)
		return;
	sys_mod = dict_get_str(w, modules, "sys");
	if (!sys_mod || rd_u64(w, sys_mod + p->res.layout.md_dict, &md) != 0)
		return;
	char *v = read_str(w, dict_get_str(w, md, "version"));
	if (!v)
		return;
	size_t n = strcspn(v, " ");
	unsigned a, b, c;
	if (n < sizeof(p->res.version) && sscanf(v, "%u.%u.%u", &a, &b, &c) == 3 &&
	    a == p->res.layout.major && b == p->res.layout.minor) {
		memcpy(p->res.version, v, n);
		p->res.version[n] = '\0';
		p->res.version_hex = (a << 24) | (b << 16) | ((c & 0xff) << 8);
	}
	free(v);
}

/* Whether pid lives in another pid namespace than ours (Linux 3.8+ /proc/PID/ns/pid). */
static bool in_other_pidns(pid_t pid)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat(path, &a) == 0 && stat("/proc/self/ns/pid", &b) == 0 &&
	       (a.st_ino != b.st_ino || a.st_dev != b.st_dev);
}

/* Innermost NSpid of a task, or 0. */
static pid_t task_ns_tid(pid_t pid, pid_t tid)
{
	char path[80], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nNSpid:");
	if (!p)
		return 0;
	p += 7;
	long last = 0;
	for (int i = 0; i < 32; i++) { /* at most 32 nested pid namespaces */
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		last = v;
		p = end;
	}
	return last > 0 ? (pid_t)last : 0;
}

static int ns_tid_cmp(const void *a, const void *b)
{
	pid_t x = ((const struct ns_tid *)a)->ns, y = ((const struct ns_tid *)b)->ns;
	return (x > y) - (x < y);
}

static void map_namespace_tids(struct walk *w, pid_t pid)
{
	if (!in_other_pidns(pid))
		return;
	w->ns_tids = calloc(w->ntasks ? w->ntasks : 1, sizeof(*w->ns_tids));
	for (size_t i = 0; w->ns_tids && i < w->ntasks; i++)
		w->ns_tids[i] = (struct ns_tid){ task_ns_tid(pid, w->tasks[i]), w->tasks[i] };
	if (w->ns_tids)
		qsort(w->ns_tids, w->ntasks, sizeof(*w->ns_tids), ns_tid_cmp);
}

/* The host TID of a thread id as the target knows it (its own namespace's), or 0. */
static pid_t host_tid(const struct walk *w, pid_t tid)
{
	if (!w->ns_tids)
		return tid;
	size_t lo = 0, hi = w->ntasks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->ns_tids[mid].ns == tid)
			return tid ? w->ns_tids[mid].host : 0;
		if (w->ns_tids[mid].ns < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static bool task_exists(const struct walk *w, pid_t tid)
{
	size_t lo = 0, hi = w->ntasks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->tasks[mid] == tid)
			return true;
		if (w->tasks[mid] < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* <= 3.10: the TID inside glibc's struct pthread, accepted only when the pthread's self
 * pointer matches and the TID is a live task of the process. */
static pid_t tid_from_pthread(struct walk *w, uint64_t pthread)
{
	unsigned char buf[GLIBC_PTHREAD_TID + 4];
	if (!plausible_ptr(pthread) || rd(w, pthread, buf, sizeof(buf)) != 0)
		return 0;
	int32_t tid = get_i32(buf, GLIBC_PTHREAD_TID);
	if (get_u64(buf, GLIBC_PTHREAD_SELF) != pthread || tid <= 0)
		return 0;
	tid = host_tid(w, tid);
	if (tid <= 0 || !task_exists(w, tid))
		return 0;
	return tid;
}

/* A small int object (Thread._native_id), or -1. */
static long read_small_int(struct walk *w, uint64_t obj)
{
	unsigned char buf[28];
	if (!plausible_ptr(obj) || rd(w, obj, buf, sizeof(buf)) != 0)
		return -1;
	if (w->p->res.layout.major == 2)
		return (long)get_u64(buf, 16); /* PyIntObject ob_ival */
	uint64_t size = get_u64(buf, 16); /* ob_size (<= 3.11) */
	if (size != 1)
		return -1;
	uint32_t digit;
	memcpy(&digit, buf + 24, 4);
	return (long)(digit & 0x3fffffff);
}

static void thread_from_threading(struct walk *w, const struct active_list *act,
				  struct py_thread *t)
{
	const struct py_layout *l = &w->p->res.layout;
	for (size_t i = 0; i < act->n; i++) {
		if (act->v[i].ident != t->thread_id)
			continue;
		uint64_t obj = act->v[i].thread;
		char *name = read_str(w, instance_attr(w, obj, l->attr_name));
		t->name = arena_strdup(w->out, name);
		free(name);
		uint64_t d = instance_attr(w, obj, l->attr_daemonic);
		if (d && w->p->res.t_true)
			t->daemon = d == w->p->res.t_true;
		if (t->tid == 0 && !l->ts_native_thread_id && l->major == 3 && l->minor >= 8) {
			long nid = read_small_int(w, instance_attr(w, obj, "_native_id"));
			pid_t htid = nid > 0 && nid < 0x40000000 ? host_tid(w, (pid_t)nid) : 0;
			if (htid > 0 && task_exists(w, htid))
				t->tid = htid;
		}
		return;
	}
}

/* The /proc/PID/task/TID/syscall files kept open (over every process) are at most a
 * quarter of RLIMIT_NOFILE's soft limit, 64 to 4096 (256 at the usual 1024): a process
 * with thousands of threads must not use up the tracer's file descriptors and so cut every
 * other process's stacks. The threads past it have theirs opened, read and closed on each
 * read (an open and a close more a thread). */
static size_t sysfds_kept;

static size_t sysfd_keep_max(void)
{
	static size_t max;
	struct rlimit rl;
	if (max == 0) {
		rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
		max = soft / 4 < 64 ? 64 : soft / 4 > 4096 ? 4096 : (size_t)(soft / 4);
	}
	return max;
}

/* The open /proc/PID/task/TID/syscall of tid (threads come in the same order on every
 * read, so the search starts after the previous hit), or -1. */
static struct sysfd *sysfd_find(struct py_proc *p, pid_t tid)
{
	for (size_t k = 0; k < p->nsysfds; k++) {
		size_t i = (p->syscursor + k) % p->nsysfds;
		if (p->sysfds[i].tid == tid) {
			p->syscursor = i + 1;
			return &p->sysfds[i];
		}
	}
	return NULL;
}

static struct sysfd *sysfd_open(struct py_proc *p, pid_t tid)
{
	if (p->nsysfds == p->syscap) {
		size_t nc = p->syscap ? p->syscap * 2 : 16;
		struct sysfd *nv = realloc(p->sysfds, nc * sizeof(*nv));
		if (!nv)
			return NULL;
		p->sysfds = nv;
		p->syscap = nc;
	}
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)p->pid, (int)tid);
	int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	sysfds_kept++;
	struct sysfd *s = &p->sysfds[p->nsysfds++];
	s->tid = tid;
	s->fd = fd;
	s->gen = pm_gen(&p->pm);
	return s;
}

/* Closes the files of threads that were not seen in this read (all when everything). */
static void sysfd_prune(struct py_proc *p, bool everything)
{
	size_t keep = 0;
	for (size_t i = 0; i < p->nsysfds; i++) {
		if (!everything && p->sysfds[i].gen == pm_gen(&p->pm))
			p->sysfds[keep++] = p->sysfds[i];
		else {
			close(p->sysfds[i].fd);
			sysfds_kept--;
		}
	}
	p->nsysfds = keep;
	p->syscursor = 0;
}

/* /proc/PID/task/TID/syscall opened, read and closed. Bytes read or -1. */
static ssize_t read_task_syscall_once(pid_t pid, pid_t tid, char *buf, size_t cap)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf, cap - 1, 0);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Reads the file again from offset 0 (seq_file regenerates it); reopens it once when the
 * old one fails (thread gone, TID reused). Bytes read or -1. */
static ssize_t read_task_syscall(struct walk *w, pid_t tid, char *buf, size_t cap)
{
	struct sysfd *s = sysfd_find(w->p, tid);
	if (!s && sysfds_kept >= sysfd_keep_max())
		return read_task_syscall_once(w->p->pid, tid, buf, cap);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!s && !(s = sysfd_open(w->p, tid)))
			return -1;
		ssize_t n = pread(s->fd, buf, cap - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			s->gen = pm_gen(&w->p->pm);
			return n;
		}
		s->tid = -1; /* stale: dropped by the next prune */
		s->gen = 0;
		s = NULL;
	}
	return -1;
}

/* /proc/PID/task/TID/syscall: "running", "-1 sp pc" or "nr arg1 ... arg6 sp pc". */
static void classify_state(struct walk *w, struct py_thread *t, const uint64_t (*gil)[2],
			   size_t ngil)
{
	char buf[256];
	t->syscall_nr = -1;
	t->state = PY_STATE_UNKNOWN;
	if (t->tid <= 0)
		return;
	if (read_task_syscall(w, t->tid, buf, sizeof(buf)) <= 0)
		return;
	if (strncmp(buf, "running", 7) == 0) {
		t->state = PY_STATE_RUNNING;
		return;
	}
	long nr;
	unsigned long long a1 = 0, a2 = 0, a3 = 0, a4 = 0;
	int n = sscanf(buf, "%ld %llx %llx %llx %llx", &nr, &a1, &a2, &a3, &a4);
	if (n < 1)
		return;
	if (nr < 0) {
		t->state = PY_STATE_RUNNING; /* in user mode, not in a system call */
		return;
	}
	t->syscall_nr = nr;
	t->syscall_arg1 = n >= 2 ? a1 : 0;
	if (nr != SYS_FUTEX_X86_64 || n < 3) {
		t->state = PY_STATE_SLEEP;
		return;
	}
	t->futex_addr = a1;
	t->futex_op = (unsigned)a2;
	t->futex_timed = n < 5 || a4 != 0; /* timeout pointer; unknown counts as timed */
	t->futex_timeout = n < 5 ? 0 : a4;
	unsigned op = t->futex_op & 127; /* without FUTEX_PRIVATE_FLAG / CLOCK_REALTIME */
	if (op != 0 && op != 9 && op != 6 && op != 11 && op != 13) { /* WAIT, WAIT_BITSET, LOCK_PI,
									  WAIT_REQUEUE_PI, LOCK_PI2 */
		t->state = PY_STATE_RUNNING;
		return;
	}
	t->state = PY_STATE_LOCK_WAIT;
	for (size_t i = 0; i < ngil; i++)
		if (gil[i][0] && a1 >= gil[i][0] && a1 < gil[i][1])
			t->state = PY_STATE_GIL_WAIT;
}

/* ---- frames --------------------------------------------------------------------------- */

/* One frame; c NULL: a frame whose code object is unreadable (function and file "?"). */
static int push_frame(struct walk *w, struct py_thread *t, size_t *cap, struct code_entry *c,
		      int line)
{
	if (t->nframes == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		struct py_frame *nv = realloc(t->frames, nc * sizeof(*nv));
		if (!nv)
			return -1;
		t->frames = nv;
		*cap = nc;
	}
	struct py_frame *f = &t->frames[t->nframes];
	if (!c) {
		f->function = f->file = arena_strdup(w->out, "?");
		if (!f->function)
			return -1;
		f->line = -1;
		f->first_line = 0;
		f->error = "code object unreadable";
		t->nframes++;
		return 0;
	}
	if (c->out_gen != pm_gen(&w->p->pm)) {
		c->out_function = arena_strdup(w->out, c->function ? c->function : "?");
		c->out_file = arena_strdup(w->out, c->file ? c->file : "?");
		if (!c->out_function || !c->out_file)
			return -1;
		c->out_gen = pm_gen(&w->p->pm);
	}
	f->function = c->out_function;
	f->file = c->out_file;
	f->line = line;
	f->first_line = c->firstlineno;
	f->error = c->error;
	t->nframes++;
	return 0;
}

enum frame_kind { FRAME_OK, FRAME_SKIP, FRAME_BAD_CODE };

/* The code object and line of one frame. FRAME_SKIP: not a Python-visible frame (3.12+
 * C-stack shims, 3.11+ incomplete frames). FRAME_BAD_CODE: the frame's code pointer does
 * not lead to a readable code object (corrupt memory, or a frame changing under us): the
 * frame is reported as unreadable rather than dropped. */
static enum frame_kind frame_location(struct walk *w, const unsigned char *buf,
				      struct code_entry **out, int *line)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t code = get_u64(buf, l->f_code);
	if (l->frames == PY_FRAMES_OBJECTS) {
		struct code_entry *c = code_lookup(w, code);
		if (!c)
			return FRAME_BAD_CODE;
		int32_t lasti = get_i32(buf, l->f_pos);
		*out = c;
		*line = lasti < 0 ? c->firstlineno : code_line(l, c, (uint64_t)lasti);
		return FRAME_OK;
	}
	uint8_t owner = l->f_owner ? buf[l->f_owner] : 0;
	if (owner == l->owner_cstack)
		return FRAME_SKIP;
	/* 3.12/3.13: only C-stack shims (skipped above) have a non-code f_executable */
	struct code_entry *c = code_lookup(w, code);
	if (!c)
		return FRAME_BAD_CODE;
	uint64_t instr = get_u64(buf, l->f_pos), start = code + l->co_code_adaptive;
	if (owner != l->owner_generator && instr < start + 2 * (uint64_t)(uint32_t)c->firsttraceable)
		return FRAME_SKIP; /* incomplete frame: not yet visible to Python */
	*out = c;
	*line = instr >= start ? code_line(l, c, instr - start) : c->firstlineno;
	return FRAME_OK;
}

/* A frame's bytes: from the snapshot's cache, or (a walk repeated to check a running
 * thread's stack, w->check in fresh mode) read from the process now. */
static int rd_frame(struct walk *w, bool fresh, uint64_t addr, void *buf, size_t len)
{
	if (!fresh)
		return rd(w, addr, buf, len);
	int rc = sc_read_fresh(w->check, &w->p->pm, addr, buf, len);
	if (rc == PM_GONE)
		w->gone = 1;
	return rc == PM_OK ? 0 : -1;
}

/* Innermost first, cut at PY_MAX_FRAMES, cycles detected with Brent's algorithm. Every step
 * is recorded in w->check (when there is one) for stack_read_consistent. */
static void walk_frames(struct walk *w, uint64_t frame, struct py_thread *t, bool fresh)
{
	const struct py_layout *l = &w->p->res.layout;
	uint32_t fsize = pylayout_frame_read_size(l);
	unsigned char buf[256];
	size_t cap = 0, power = 1, lam = 0;
	uint64_t tortoise = frame;
	if (fsize > sizeof(buf))
		return;
	for (size_t steps = 0; frame; steps++) {
		if (steps >= 2 * PY_MAX_FRAMES || t->nframes >= PY_MAX_FRAMES) {
			t->truncated = true;
			t->error = "too many frames";
			return;
		}
		if (!frame_step(w)) {
			t->truncated = true;
			t->error = "frame budget of the read used up";
			return;
		}
		if (!plausible_ptr(frame) || rd_frame(w, fresh, frame, buf, fsize) != 0) {
			t->truncated = true;
			t->error = "frame unreadable";
			return;
		}
		if (w->check)
			sc_record(w->check, frame, get_u64(buf, l->f_back), get_u64(buf, l->f_code),
				  l->frames == PY_FRAMES_OBJECTS ? (uint64_t)(uint32_t)get_i32(buf, l->f_pos)
								 : get_u64(buf, l->f_pos));
		/* <= 3.10: a frame object in a thread's chain is referenced (by the thread's
		 * evaluation); a count of 0 is a frame freed under the walk (see stackcheck.h) */
		if (l->frames == PY_FRAMES_OBJECTS && l->ob_type >= 8 && get_u64(buf, l->ob_type - 8) == 0) {
			t->truncated = true;
			t->error = "frame freed while being read";
			return;
		}
		struct code_entry *c = NULL;
		int line = -1;
		enum frame_kind k = frame_location(w, buf, &c, &line);
		if (k != FRAME_SKIP && push_frame(w, t, &cap, k == FRAME_OK ? c : NULL, line) != 0) {
			t->truncated = true;
			t->error = "out of memory";
			return;
		}
		if (k != FRAME_SKIP) { /* for lock ownership (lockown.c) */
			struct py_frame *pf = &t->frames[t->nframes - 1];
			pf->addr = frame;
			pf->code = get_u64(buf, l->f_code);
			pf->pos = l->frames == PY_FRAMES_OBJECTS ? (uint64_t)(int64_t)get_i32(buf, l->f_pos) :
				  get_u64(buf, l->f_pos);
			pf->iblock = l->frames == PY_FRAMES_OBJECTS && l->f_iblock ?
				     get_i32(buf, l->f_iblock) : -1;
		}
		frame = get_u64(buf, l->f_back);
		/* The outermost frame must be the thread's entry: a readable frame, and on 3.12+ the
		 * C-stack shim _PyEval_EvalFrameDefault pushes under the first Python frame of
		 * every entry (Include/internal/pycore_frame.h, FRAME_OWNED_BY_CSTACK). A chain
		 * that ends elsewhere was read while it changed, or is corrupt. */
		if (!frame && (k == FRAME_BAD_CODE ||
			       (l->f_owner && l->owner_cstack != 0xff && buf[l->f_owner] != l->owner_cstack))) {
			t->truncated = true;
			t->error = "chain ends before the thread's entry frame";
			return;
		}
		if (frame && frame == tortoise) {
			t->truncated = true;
			t->error = "frame chain loops";
			return;
		}
		if (++lam == power) {
			tortoise = frame;
			power *= 2;
			lam = 0;
		}
	}
}

static uint64_t first_frame(struct walk *w, const unsigned char *ts, bool fresh)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t f = get_u64(ts, l->ts_frame);
	if (l->frames == PY_FRAMES_CFRAME) {
		uint64_t cframe = f;
		if (!plausible_ptr(cframe) || rd_frame(w, fresh, cframe + l->cframe_current, &f, 8) != 0)
			return 0;
	}
	return f;
}

/* 3.7-3.13 (GIL builds; Python/ceval_gil.h, Include/internal/pycore_gil.h): struct
 * _gil_runtime_state is {unsigned long interval; last_holder; int locked; unsigned long
 * switch_number; ...}: take_gil() sets last_holder and increments switch_number whenever
 * the GIL goes to a thread other than the last holder. Python frames of a thread change
 * only while it holds the GIL. So a thread that was not the last holder when the snapshot
 * began, with last_holder and switch_number unchanged after its walk, did not run Python
 * code during the snapshot: its walk is consistent without a second one. 3.6 keeps the
 * same fields as statics of ceval.c (gil_last_holder, gil_switch_number: used when .symtab
 * has them); 2.7 has no such counter (always walked twice), nor 3.12+ with several
 * interpreters (each may have a GIL of its own). */
#define GIL_SWITCH_NUMBER_AFTER_LOCKED 8u

/* The GIL's last holder and switch count now, read directly. */
static bool gil_read_now(struct walk *w, uint64_t *holder, uint64_t *switches)
{
	struct procmem *pm = &w->p->pm;
	return pm_read_direct(pm, w->gil_holder_addr, holder, 8) == PM_OK &&
	       pm_read_direct(pm, w->gil_switches_addr, switches, 8) == PM_OK;
}

static void gil_proof_begin(struct walk *w)
{
	struct py_proc *p = w->p;
	const struct py_layout *l = &p->res.layout;
	uint64_t base = 0, next = 1;
	w->gil_proof = false;
	if (p->pm.backend)
		return;
	if (p->res.gil_last_holder && p->res.gil36_switch_number) {
		/* 3.6: the same fields, as statics of ceval.c (Python/ceval_gil.h) */
		w->gil_holder_addr = p->res.gil_last_holder;
		w->gil_switches_addr = p->res.gil36_switch_number;
	} else {
		uint32_t sw = l->gil_locked + GIL_SWITCH_NUMBER_AFTER_LOCKED;
		if ((l->gil_locked & 7) || sw + 8 > l->gil_size || l->gil_last_holder + 8 > l->gil_size)
			return;
		if (l->gil_kind == PY_GIL_IN_RUNTIME) {
			base = p->res.runtime + l->gil;
		} else if (l->gil_kind == PY_GIL_IN_INTERP) {
			uint64_t interp = 0;
			if (pm_read_direct(&p->pm, p->res.runtime + l->rt_interp_head, &interp, 8) != PM_OK ||
			    !plausible_ptr(interp) ||
			    pm_read_direct(&p->pm, interp + l->interp_next, &next, 8) != PM_OK || next != 0)
				return; /* one interpreter only: its GIL is the one every thread takes */
			base = interp + l->gil;
		} else {
			return;
		}
		if (!plausible_ptr(base))
			return;
		w->gil_holder_addr = base + l->gil_last_holder;
		w->gil_switches_addr = base + sw;
	}
	w->gil_proof = gil_read_now(w, &w->gil0_holder, &w->gil0_switches);
}

/* Whether the thread of tstate provably ran no Python code since the snapshot began (two
 * direct reads of the GIL). */
static bool gil_says_still(struct walk *w, uint64_t tstate)
{
	uint64_t holder, switches;
	return w->gil_proof && w->gil0_holder != tstate && gil_read_now(w, &holder, &switches) &&
	       holder == w->gil0_holder && switches == w->gil0_switches;
}

/* Walks to make of a thread's stack, at most: a thread blocked or waiting for the GIL
 * is confirmed after the first; a thread running Python code nonstop may never agree. */
#define STACK_READ_TRIES 4

/* The stack of the thread whose state is in ts (read at tstate), consistent (see
 * stackcheck.h): the first walk (through the snapshot's cache) stands when the GIL shows
 * that the thread ran no Python code since the snapshot began (gil_says_still); else the
 * stack is walked again from the thread's current frame read anew, reading the process
 * directly, until two walks in a row agree, at most STACK_READ_TRIES walks. A stack still
 * changing after that is kept from the last walk and marked (truncated, error). */
static void stack_read_consistent(struct walk *w, const unsigned char *ts, uint64_t tstate,
				  struct py_thread *t)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char tsb[512];
	if (!w->check)
		w->check = sc_new();
	if (!w->check || l->ts_frame + 8 > sizeof(tsb)) {
		walk_frames(w, first_frame(w, ts, false), t, false);
		t->truncated = true;
		t->error = "out of memory (stack not checked)";
		return;
	}
	sc_reset(w->check);
	memcpy(tsb + l->ts_frame, ts + l->ts_frame, 8);
	for (unsigned attempt = 0;; attempt++) {
		bool fresh = attempt > 0;
		sc_begin_walk(w->check, fresh);
		if (fresh) {
			if (rd_frame(w, true, tstate + l->ts_frame, tsb + l->ts_frame, 8) != 0)
				return; /* the thread state is gone: keep what was read, as read */
			free(t->frames);
			t->frames = NULL;
			t->nframes = 0;
			t->truncated = false;
			t->error = NULL;
		}
		w->checking = fresh;
		w->code_changed = false;
		walk_frames(w, first_frame(w, tsb, fresh), t, fresh);
		w->checking = false;
		if (w->gone || (fresh && !w->code_changed && sc_same_as_previous(w->check)) ||
		    (!fresh && gil_says_still(w, tstate)))
			return;
		if (attempt + 1 >= STACK_READ_TRIES) {
			t->truncated = true;
			t->error = "stack changed while being read (the thread runs): it may mix moments";
			return;
		}
	}
}

/* ---- the GIL -------------------------------------------------------------------------- */

#define MAX_GILS (MAX_INTERPRETERS + 4)

struct gil_info {
	uint64_t ranges[MAX_GILS][2]; /* futex addresses that mean "waiting for the GIL" */
	size_t nranges;
	bool unknown;                 /* where the GIL is is not known (3.6 not located) */
	uint64_t holders[MAX_GILS];   /* tstates holding a GIL now */
	size_t nholders;
};

static void gil_add_struct(struct walk *w, struct gil_info *g, uint64_t gil)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char buf[32];
	if (g->nranges >= MAX_GILS || !plausible_ptr(gil))
		return;
	g->ranges[g->nranges][0] = gil;
	g->ranges[g->nranges][1] = gil + l->gil_size;
	g->nranges++;
	/* 3.13+ offsets come from the target: both fields must lie in the bytes read */
	if (l->gil_locked + 4 > sizeof(buf) || l->gil_last_holder + 8 > sizeof(buf) ||
	    rd(w, gil, buf, sizeof(buf)) != 0)
		return;
	if (get_i32(buf, l->gil_locked) != 0 && g->nholders < MAX_GILS)
		g->holders[g->nholders++] = get_u64(buf, l->gil_last_holder);
}

static void gil_collect_static(struct walk *w, struct gil_info *g)
{
	struct py_proc *p = w->p;
	uint64_t holder, lock;
	int32_t locked;
	g->unknown = p->res.layout.gil_kind == PY_GIL_STATIC && !p->res.gil_found_by;
	if (p->res.gil_locked && p->res.gil_last_holder) {
		/* 3.6 located: gil_locked and gil_last_holder, as in the 3.7+ struct */
		if (rd(w, p->res.gil_locked, &locked, sizeof(locked)) == 0 && locked > 0 &&
		    rd_u64(w, p->res.gil_last_holder, &holder) == 0 && holder)
			g->holders[g->nholders++] = holder;
	} else if (p->res.tstate_current && rd_u64(w, p->res.tstate_current, &holder) == 0 && holder) {
		g->holders[g->nholders++] = holder;
	}
	for (int i = 0; i < 4; i++)
		if (p->res.gil_static[i][0] && g->nranges < MAX_GILS) {
			g->ranges[g->nranges][0] = p->res.gil_static[i][0];
			g->ranges[g->nranges][1] = p->res.gil_static[i][1];
			g->nranges++;
		}
	/* 2.7: interpreter_lock points to a sem_t (32 bytes) */
	if (p->res.layout.major == 2 && p->res.interpreter_lock &&
	    rd_u64(w, p->res.interpreter_lock, &lock) == 0 && lock) {
		g->ranges[g->nranges][0] = lock;
		g->ranges[g->nranges][1] = lock + 32;
		g->nranges++;
	}
}

static bool gil_held_by(const struct gil_info *g, uint64_t tstate)
{
	for (size_t i = 0; i < g->nholders; i++)
		if (g->holders[i] == tstate)
			return true;
	return false;
}

/* ---- walking interpreters and threads ------------------------------------------------- */

static uint64_t first_interp(struct walk *w)
{
	struct py_proc *p = w->p;
	uint64_t interp = 0;
	if (p->res.layout.start == PY_START_INTERP_HEAD)
		(void)rd_u64(w, p->res.interp_head, &interp);
	else
		(void)rd_u64(w, p->res.runtime + p->res.layout.rt_interp_head, &interp);
	return interp;
}

static int add_thread(struct py_process *out, size_t *cap, struct py_thread **t)
{
	if (out->nthreads == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct py_thread *nv = realloc(out->threads, nc * sizeof(*nv));
		if (!nv)
			return -1;
		out->threads = nv;
		*cap = nc;
	}
	*t = &out->threads[out->nthreads++];
	memset(*t, 0, sizeof(**t));
	(*t)->daemon = -1;
	(*t)->syscall_nr = -1;
	(*t)->state = PY_STATE_UNKNOWN;
	return 0;
}

static uint32_t tstate_read_size(const struct py_layout *l)
{
	uint32_t n = l->ts_next;
	const uint32_t f[] = { l->ts_interp, l->ts_thread_id, l->ts_native_thread_id, l->ts_frame };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i] > n)
			n = f[i];
	return n + 8;
}

static void read_thread(struct walk *w, const unsigned char *ts, uint64_t tstate,
			struct py_thread *t)
{
	const struct py_layout *l = &w->p->res.layout;
	t->tstate_addr = tstate;
	t->thread_id = get_u64(ts, l->ts_thread_id);
	if (l->ts_native_thread_id) {
		int32_t tid = get_i32(ts, l->ts_native_thread_id);
		tid = tid > 0 ? host_tid(w, tid) : 0;
		t->tid = tid > 0 && task_exists(w, tid) ? tid : 0;
	} else {
		t->tid = tid_from_pthread(w, t->thread_id);
	}
	stack_read_consistent(w, ts, tstate, t);
}

static int walk_threads_of(struct walk *w, uint64_t interp, struct py_process *out, size_t *cap)
{
	const struct py_layout *l = &w->p->res.layout;
	uint32_t tsize = tstate_read_size(l);
	unsigned char ts[512];
	struct addr_set seen = { 0 };
	uint64_t tstate;
	if (tsize > sizeof(ts) || rd_u64(w, interp + l->interp_tstate_head, &tstate) != 0)
		return -1;
	int rc = 0;
	while (tstate && out->nthreads < PY_MAX_THREADS && !w->gone) {
		/* a cycle or garbage: stop here, keep the threads read so far, say why */
		if (!plausible_ptr(tstate) || rd(w, tstate, ts, tsize) != 0) {
			out->threads_error = "thread state unreadable";
			break;
		}
		if (get_u64(ts, l->ts_interp) != interp) {
			out->threads_error = "thread state of another interpreter in the list";
			break;
		}
		if (!addr_set_add(&seen, tstate)) {
			out->threads_error = "thread list loops";
			break;
		}
		struct py_thread *t;
		if (add_thread(out, cap, &t) != 0) {
			rc = -1;
			break;
		}
		read_thread(w, ts, tstate, t);
		tstate = get_u64(ts, l->ts_next);
	}
	addr_set_free(&seen);
	return rc;
}

static void annotate_threads(struct walk *w, uint64_t main_interp, struct py_process *out,
			     const struct gil_info *g)
{
	struct active_list act = { 0 };
	uint64_t active = find_active_dict(w, main_interp);
	if (active)
		(void)dict_each(w, active, collect_active, &act);
	for (size_t i = 0; i < out->nthreads; i++) {
		struct py_thread *t = &out->threads[i];
		thread_from_threading(w, &act, t);
		t->gil = gil_held_by(g, t->tstate_addr);
		classify_state(w, t, (const uint64_t(*)[2])g->ranges, g->nranges);
		if (g->unknown && t->state == PY_STATE_LOCK_WAIT)
			t->state = PY_STATE_UNKNOWN; /* a lock or the GIL: cannot tell */
	}
	free(act.v);
}

static void reverse_threads(struct py_process *out)
{
	for (size_t i = 0, j = out->nthreads; i + 1 < j; i++, j--) {
		struct py_thread tmp = out->threads[i];
		out->threads[i] = out->threads[j - 1];
		out->threads[j - 1] = tmp;
	}
}

static int walk_process(struct walk *w, struct py_process *out, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	struct gil_info g;
	struct addr_set seen = { 0 };
	size_t cap = 0;
	memset(&g, 0, sizeof(g));
	if (w->snapshot_new)
		gil_proof_begin(w); /* before any other read of the snapshot */
	uint64_t interp = first_interp(w), main_interp = 0;
	if (!interp_valid(w, interp)) {
		snprintf(err, errlen, "process %d: no valid Python interpreter state (not "
			 "initialized or finalizing?)", (int)p->pid);
		return -1;
	}
	p->last_interp = interp;
	if (p->res.layout.gil_kind == PY_GIL_NONE || p->res.layout.gil_kind == PY_GIL_STATIC)
		gil_collect_static(w, &g);
	else if (p->res.layout.gil_kind == PY_GIL_IN_RUNTIME)
		gil_add_struct(w, &g, p->res.runtime + p->res.layout.gil);
	for (unsigned n = 0; interp && n < MAX_INTERPRETERS && !w->gone; n++) {
		if (!plausible_ptr(interp) || !addr_set_add(&seen, interp)) {
			out->threads_error = "interpreter list loops or is unreadable";
			break;
		}
		main_interp = interp; /* the list ends with the main interpreter */
		if (p->res.layout.gil_kind == PY_GIL_IN_INTERP)
			gil_add_struct(w, &g, interp + p->res.layout.gil);
		if (walk_threads_of(w, interp, out, &cap) != 0)
			break;
		if (rd_u64(w, interp + p->res.layout.interp_next, &interp) != 0)
			break;
	}
	addr_set_free(&seen);
	sc_free(w->check);
	w->check = NULL;
	read_sys_version(w, main_interp);
	annotate_threads(w, main_interp, out, &g);
	reverse_threads(out);
	return 0;
}

/* ---- probing: is the interpreter running Python code yet? ---------------------------- */

/* Whether the frame in buf is one walk_frames would report (frame_location would succeed),
 * decided without the code cache: the tracer probes every new Python process, and most of
 * them are never read in full. */
static bool frame_is_python(struct walk *w, const unsigned char *buf)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t code = get_u64(buf, l->f_code);
	uint8_t owner = 0;
	if (l->frames != PY_FRAMES_OBJECTS) {
		owner = l->f_owner ? buf[l->f_owner] : 0;
		if (owner == l->owner_cstack)
			return false;
	}
	/* a code object (its type checked) is proof enough; its names and line table are not
	 * read here (three more reads of memory for each look at a new process) */
	struct code_entry c;
	if (code_read_fields(w, code, &c) != 0)
		return false;
	if (l->frames != PY_FRAMES_OBJECTS) {
		uint64_t instr = get_u64(buf, l->f_pos), start = code + l->co_code_adaptive;
		if (owner != l->owner_generator && instr < start + 2 * (uint64_t)(uint32_t)c.firsttraceable)
			return false; /* incomplete frame */
	}
	return true;
}

/* Whether the chain from frame holds a frame of Python code (bounded like walk_frames). */
static bool chain_has_python_frame(struct walk *w, uint64_t frame)
{
	const struct py_layout *l = &w->p->res.layout;
	uint32_t fsize = pylayout_frame_read_size(l);
	unsigned char buf[256];
	if (fsize > sizeof(buf))
		return false;
	for (size_t steps = 0; frame && steps < 2 * PY_MAX_FRAMES && !w->gone && frame_step(w);
	     steps++) {
		if (!plausible_ptr(frame) || rd(w, frame, buf, fsize) != 0)
			return false;
		if (frame_is_python(w, buf))
			return true;
		frame = get_u64(buf, l->f_back);
	}
	return false;
}

static bool interp_has_python_frame(struct walk *w, uint64_t interp)
{
	const struct py_layout *l = &w->p->res.layout;
	uint32_t tsize = tstate_read_size(l);
	unsigned char ts[512];
	uint64_t tstate;
	if (tsize > sizeof(ts) || rd_u64(w, interp + l->interp_tstate_head, &tstate) != 0)
		return false;
	/* the thread list is not walked for cycles here: the count bounds it */
	for (unsigned n = 0; tstate && n < PY_MAX_THREADS && !w->gone; n++) {
		if (!plausible_ptr(tstate) || rd(w, tstate, ts, tsize) != 0 ||
		    get_u64(ts, l->ts_interp) != interp)
			return false;
		if (chain_has_python_frame(w, first_frame(w, ts, false)))
			return true;
		tstate = get_u64(ts, l->ts_next);
	}
	return false;
}

/* What walk_process learns about the process (interpreter, version), and whether some
 * thread runs Python code: 1 yes, 0 not yet, -1 no valid interpreter. */
static int probe_process(struct walk *w, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	struct addr_set seen = { 0 };
	uint64_t interp = first_interp(w), main_interp = 0;
	bool found = false;
	if (!interp_valid(w, interp)) {
		snprintf(err, errlen, "process %d: no valid Python interpreter state (not "
			 "initialized or finalizing?)", (int)p->pid);
		return -1;
	}
	p->last_interp = interp;
	for (unsigned n = 0; interp && n < MAX_INTERPRETERS && !w->gone; n++) {
		if (!plausible_ptr(interp) || !addr_set_add(&seen, interp))
			break;
		main_interp = interp; /* the list ends with the main interpreter */
		if (!found)
			found = interp_has_python_frame(w, interp);
		if (rd_u64(w, interp + p->res.layout.interp_next, &interp) != 0)
			break;
	}
	addr_set_free(&seen);
	read_sys_version(w, main_interp);
	return found ? 1 : 0;
}

/* ---- public API ----------------------------------------------------------------------- */

struct py_reader *py_reader_new(void)
{
	return calloc(1, sizeof(struct py_reader));
}

static void proc_free(struct py_proc *p)
{
	free(p->unresolved);
	sysfd_prune(p, true);
	free(p->sysfds);
	code_cache_clear(p);
	free(p->codes);
	pm_close(&p->pm);
	free(p);
}

void py_reader_free(struct py_reader *r)
{
	if (!r)
		return;
	while (r->procs) {
		struct py_proc *p = r->procs;
		r->procs = p->next;
		proc_free(p);
	}
	pm_cache_free(&r->cache);
	free(r->syms);
	free(r);
}

void py_reader_release_cache(struct py_reader *r)
{
	if (r)
		pm_cache_trim(&r->cache, READER_CACHE_KEEP_BLOCKS);
}

void py_forget_process(struct py_reader *r, pid_t pid)
{
	for (struct py_proc **pp = &r->procs; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			struct py_proc *p = *pp;
			*pp = p->next;
			proc_free(p);
			return;
		}
	}
}

static struct py_proc *proc_find(struct py_reader *r, pid_t pid)
{
	for (struct py_proc *p = r->procs; p; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

/* Move p to the front of the list (most recently read). */
static void proc_touch(struct py_reader *r, struct py_proc *p)
{
	for (struct py_proc **pp = &r->procs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			p->next = r->procs;
			r->procs = p;
			return;
		}
	}
}

/* Keep at most READER_MAX_PROCS processes: free the least recently read. */
static void proc_trim(struct py_reader *r)
{
	unsigned n = 0;
	for (struct py_proc **pp = &r->procs; *pp; pp = &(*pp)->next) {
		if (++n > READER_MAX_PROCS) {
			struct py_proc *rest = *pp;
			*pp = NULL;
			while (rest) {
				struct py_proc *next = rest->next;
				proc_free(rest);
				rest = next;
			}
			return;
		}
	}
}

/* Attaches p (in r's list), or finishes attaching it: p, or NULL with err, with
 * *not_ready set (p kept) when its interpreter is not set up yet, else p forgotten. */
static struct py_proc *attach_listed(struct py_reader *r, struct py_proc *p, bool *not_ready,
				     char *err, size_t errlen)
{
	struct walk w = { .p = p, .syms = r->syms };
	pm_new_snapshot(&p->pm);
	int rc = attach_process(&w, err, errlen);
	if (rc == 0) {
		p->just_attached = true;
		return p;
	}
	if (rc == 1) {
		*not_ready = true;
		return NULL;
	}
	py_forget_process(r, p->pid);
	return NULL;
}

/* Starts the snapshot of a read, right after proc_get: a new one, unless proc_get has just
 * attached the process (what attaching read is current: reading the same blocks again
 * cost three reads of memory per look at a new process). */
static void begin_snapshot(struct py_proc *p)
{
	if (!p->just_attached)
		pm_new_snapshot(&p->pm);
	p->just_attached = false;
}

/* The cached state for pid if it is still the same process, else a freshly attached one.
 * NULL with err on failure; *not_ready: the process is attached but its interpreter not
 * set up yet (kept: the next call only looks for the interpreter again). */
static struct py_proc *proc_get(struct py_reader *r, pid_t pid, bool *fresh, bool *not_ready,
				char *err, size_t errlen)
{
	*not_ready = false;
	struct py_proc *p = proc_find(r, pid);
	if (p && pm_still_same(&p->pm)) {
		*fresh = false;
		proc_touch(r, p);
		return p->unresolved ? attach_listed(r, p, not_ready, err, errlen) : p;
	}
	if (p)
		py_forget_process(r, pid);
	*fresh = true;
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->pid = pid;
	p->pthread_tid_off = -1;
	if (pm_open(&p->pm, pid, err, errlen) != 0) {
		free(p);
		return NULL;
	}
	p->start_time = p->pm.start_time;
	pm_use_cache(&p->pm, &r->cache);
	if (!r->syms)
		r->syms = calloc(1, sizeof(*r->syms)); /* without it, symbols are looked up each time */
	p->next = r->procs;
	r->procs = p;
	proc_trim(r);
	return attach_listed(r, p, not_ready, err, errlen);
}

/* One snapshot of an attached process: the walk shared by py_read_process and
 * py_read_resolved (tasks may be empty: thread ids then stay 0). */
static int read_snapshot(struct walk *w, struct py_process *out, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	int rc = walk_process(w, out, err, errlen);
	if (w->gone || rc != 0) {
		py_process_free(out);
		return -1;
	}
	out->pid = p->pid;
	out->start_time = p->start_time;
	out->version_hex = p->res.version_hex;
	snprintf(out->version, sizeof(out->version), "%s", p->res.version);
	return 0;
}

/* The process exited, or exec'd (same pid and start time, new image), while being read:
 * its state goes, and a state that was not fresh earns one more try. -1. */
static int read_was_cut(struct py_reader *r, pid_t pid, bool fresh, bool *retry, char *err,
			size_t errlen)
{
	py_forget_process(r, pid);
	*retry = !fresh;
	snprintf(err, errlen, "process %d exited or exec'd while being read", (int)pid);
	return -1;
}

static int read_once(struct py_reader *r, pid_t pid, struct py_process *out, bool *retry,
		     char *err, size_t errlen)
{
	bool fresh, not_ready;
	*retry = false;
	struct py_proc *p = proc_get(r, pid, &fresh, &not_ready, err, errlen);
	if (!p)
		return -1;
	/* a snapshot of its own (not the attach's), so the GIL is read before any of its blocks */
	if (p->just_attached && (p->res.layout.gil_kind != PY_GIL_NONE || p->res.gil36_switch_number))
		p->just_attached = false;
	begin_snapshot(p);
	uint64_t preads0 = p->pm.reads;
	struct walk w = { .p = p, .out = out, .snapshot_new = true };
	if (pm_list_tasks(pid, &w.tasks, &w.ntasks) != 0 || w.ntasks == 0) {
		free(w.tasks);
		snprintf(err, errlen, "process %d exited", (int)pid);
		py_forget_process(r, pid);
		return -1;
	}
	map_namespace_tids(&w, pid);
	int rc = read_snapshot(&w, out, err, errlen);
	if (rc == 0)
		out->os_threads = w.ntasks;
	free(w.ns_tids);
	free(w.tasks);
	sysfd_prune(p, false);
	if (w.gone)
		return read_was_cut(r, pid, fresh, retry, err, errlen);
	p->last_preads = p->pm.reads - preads0;
	p->read_gen = pm_gen(&p->pm);
	return rc;
}

/* A process state over memory served by backend (py_read_resolved, py_resolve_by_scan). */
static struct py_proc *proc_for_backend(const struct py_resolved *res, pm_backend_fn backend,
					void *ctx)
{
	struct py_proc *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pthread_tid_off = -1;
	p->res = *res;
	pm_open_backend(&p->pm, 0, backend, ctx);
	pm_new_snapshot(&p->pm);
	return p;
}

int py_resolve_by_scan(struct py_resolved *res, pm_backend_fn backend, void *ctx,
		       uint64_t start, uint64_t size)
{
	struct py_proc *p = proc_for_backend(res, backend, ctx);
	if (!p)
		return -1;
	struct walk w = { .p = p };
	if (res->layout.start == PY_START_INTERP_HEAD)
		res->interp_head = scan_for_interp_pointer(&w, start, size, false);
	else
		res->runtime = runtime_by_scan(&w, start, size);
	int found = res->layout.start == PY_START_INTERP_HEAD ? res->interp_head != 0
							       : res->runtime != 0;
	proc_free(p);
	return found ? 0 : -1;
}

int py_read_resolved(const struct py_resolved *res, pm_backend_fn backend, void *ctx,
		     struct py_process *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	struct py_proc *p = proc_for_backend(res, backend, ctx);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct walk w = { .p = p, .out = out };
	int rc = read_snapshot(&w, out, err, errlen);
	if (rc != 0 && w.gone)
		snprintf(err, errlen, "memory gone while being read");
	proc_free(p);
	return rc;
}

int py_read_process(struct py_reader *r, pid_t pid, struct py_process *out, char *err,
		    size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!r || pid <= 0) {
		snprintf(err, errlen, "invalid pid %d", (int)pid);
		return -1;
	}
	bool retry;
	int rc = read_once(r, pid, out, &retry, err, errlen);
	if (rc != 0 && retry)
		rc = read_once(r, pid, out, &retry, err, errlen);
	return rc;
}

static int probe_once(struct py_reader *r, pid_t pid, unsigned *version_hex, bool *retry,
		      char *err, size_t errlen)
{
	bool fresh, not_ready;
	*retry = false;
	struct py_proc *p = proc_get(r, pid, &fresh, &not_ready, err, errlen);
	if (!p)
		return not_ready ? 0 : -1; /* attached, interpreter not set up yet: not yet */
	begin_snapshot(p);
	struct walk w = { .p = p };
	int rc = probe_process(&w, err, errlen);
	if (w.gone)
		return read_was_cut(r, pid, fresh, retry, err, errlen);
	*version_hex = p->res.version_hex;
	if (rc == 0 && p->resolved_by_scan)
		py_forget_process(r, pid); /* a scan's find is kept only once it shows Python code */
	return rc;
}

int py_probe_process(struct py_reader *r, pid_t pid, unsigned *version_hex, char *err,
		     size_t errlen)
{
	if (!r || pid <= 0) {
		snprintf(err, errlen, "invalid pid %d", (int)pid);
		return -1;
	}
	bool retry;
	int rc = probe_once(r, pid, version_hex, &retry, err, errlen);
	if (rc < 0 && retry)
		rc = probe_once(r, pid, version_hex, &retry, err, errlen);
	return rc;
}

void py_process_free(struct py_process *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nthreads; i++)
		free(p->threads[i].frames);
	free(p->threads);
	arena_free(p);
	p->threads = NULL;
	p->nthreads = 0;
}

/* An executable that exports the interpreter (a statically linked python under another
 * name, an embedding program): decided once per binary, by (device, inode). */
static bool exe_exports_python(pid_t pid)
{
	static struct {
		dev_t dev;
		ino_t ino;
		bool python;
	} cache[64];
	static unsigned next;
	char path[64], err[128];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st) != 0)
		return false;
	for (unsigned i = 0; i < sizeof(cache) / sizeof(cache[0]); i++)
		if (cache[i].ino == st.st_ino && cache[i].dev == st.st_dev && st.st_ino)
			return cache[i].python;
	bool python = false;
	int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	struct elf_file ef;
	if (fd >= 0 && elf_open_fd(&ef, fd, err, sizeof(err)) == 0) {
		/* Py_Initialize: every version; _PyRuntime: 3.7+ */
		static const char *const names[] = { "Py_Initialize", "_PyRuntime" };
		uint64_t values[2], sizes[2];
		python = elf_lookup_symbols(&ef, names, 2, values, sizes) > 0;
		elf_close(&ef);
	}
	unsigned slot = next++ % (sizeof(cache) / sizeof(cache[0]));
	cache[slot].dev = st.st_dev;
	cache[slot].ino = st.st_ino;
	cache[slot].python = python;
	return python;
}

bool py_is_python_process(pid_t pid)
{
	struct pm_maps maps;
	bool yes = false;
	struct pm_map_want want = { is_libpython, 0, 1 };
	if (pm_read_maps_wanted(pid, &want, &maps) != 0)
		return false;
	for (size_t i = 0; i < maps.n && !yes; i++)
		if (maps.v[i].path && is_libpython(maps.v[i].path))
			yes = true;
	pm_free_maps(&maps);
	if (yes)
		return true;
	char path[64], target[PM_PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	return strncmp(base, "python", 6) == 0 || exe_exports_python(pid);
}

bool py_reader_still_same(struct py_reader *r, pid_t pid, uint64_t *start_time)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p || !pm_still_same(&p->pm))
		return false;
	/* the pidfd tells an exit, not an exec: a read of the memory tells both (it gives 0
	 * bytes once the mm it was opened on is gone, which is also early in an exit) */
	uint64_t at = p->res.runtime ? p->res.runtime : p->res.interp_head;
	unsigned char byte;
	if (at && pm_read_direct(&p->pm, at, &byte, 1) == PM_GONE)
		return false;
	*start_time = p->start_time;
	return true;
}

const struct py_layout *py_reader_layout(struct py_reader *r, pid_t pid)
{
	struct py_proc *p = proc_find(r, pid);
	return p ? &p->res.layout : NULL;
}

int py_reader_addrs(struct py_reader *r, pid_t pid, struct py_addrs *out)
{
	struct py_proc *p = proc_find(r, pid);
	memset(out, 0, sizeof(*out));
	if (!p)
		return -1;
	out->runtime = p->res.runtime;
	out->interp_head = p->res.interp_head;
	out->interp = p->last_interp;
	if (p->res.layout.gil_kind == PY_GIL_IN_RUNTIME)
		out->gil = p->res.runtime + p->res.layout.gil;
	else if (p->res.layout.gil_kind == PY_GIL_IN_INTERP && p->last_interp)
		out->gil = p->last_interp + p->res.layout.gil;
	if (out->gil && p->res.layout.gil_size) {
		out->gil_wait_lo = out->gil;
		out->gil_wait_hi = out->gil + p->res.layout.gil_size;
	} else if (p->res.layout.gil_kind == PY_GIL_STATIC && p->res.gil_found_by) {
		out->gil_wait_lo = p->res.gil_wait[0];
		out->gil_wait_hi = p->res.gil_wait[1];
	}
	out->code_type = p->res.t_code;
	return 0;
}

int py_reader_resolved(struct py_reader *r, pid_t pid, struct py_resolved *out)
{
	struct py_proc *p = proc_find(r, pid);
	memset(out, 0, sizeof(*out));
	if (!p)
		return -1;
	*out = p->res;
	return 0;
}

/* The code object at code in pid (the process the reader holds, with this start time):
 * its line table (malloc'd copy) and first line. 0, or -1 (gone, another process, not a
 * code object, no table). */
int py_reader_code_table(struct py_reader *r, pid_t pid, uint64_t start_time, uint64_t code,
			 unsigned char **table, uint32_t *len, int *firstlineno)
{
	bool fresh, not_ready;
	char err[128];
	*table = NULL;
	struct py_proc *p = proc_find(r, pid);
	if (!p || p->start_time != start_time || p->unresolved || !pm_still_same(&p->pm))
		return -1; /* (proc_get would attach again) */
	p = proc_get(r, pid, &fresh, &not_ready, err, sizeof(err));
	if (!p || fresh || not_ready || p->start_time != start_time)
		return -1;
	begin_snapshot(p);
	struct py_process scratch = { 0 };
	struct walk w = { .p = p, .out = &scratch };
	struct code_entry *c = code_lookup(&w, code);
	int rc = -1;
	if (c && c->table && !w.gone) {
		*table = malloc(c->table_len ? c->table_len : 1);
		if (*table) {
			memcpy(*table, c->table, c->table_len);
			*len = c->table_len;
			*firstlineno = c->firstlineno;
			rc = 0;
		}
	}
	py_process_free(&scratch);
	return rc;
}

/* ---- reads for lock ownership (user/lockown.c) ------------------------------------------ */

void py_reader_mem_begin(struct py_reader *r, pid_t pid)
{
	struct py_proc *p = proc_find(r, pid);
	/* still the generation of this process's last read (nothing read since, the cache is
	 * shared by all processes): its blocks are this snapshot's, reused */
	if (p && pm_gen(&p->pm) != p->read_gen)
		pm_new_snapshot(&p->pm);
}

int py_reader_mem_read(struct py_reader *r, pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p || addr < 0x1000 || addr >= 0x800000000000ull) /* user space, any alignment */
		return -1;
	struct walk w = { .p = p };
	return rd(&w, addr, buf, len);
}

uint64_t py_reader_mem_attr(struct py_reader *r, pid_t pid, uint64_t obj, const char *name)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p)
		return 0;
	struct walk w = { .p = p };
	return instance_attr(&w, obj, name);
}

int py_reader_code_line(struct py_reader *r, pid_t pid, uint64_t code, uint64_t pos)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p)
		return -1;
	struct walk w = { .p = p };
	struct code_entry *c = code_lookup(&w, code);
	return c ? code_line(&p->res.layout, c, pos) : -1;
}

uint64_t py_reader_last_preads(struct py_reader *r, pid_t pid)
{
	struct py_proc *p = proc_find(r, pid);
	return p ? p->last_preads : 0;
}

/* ---- output --------------------------------------------------------------------------- */

void py_write_stack_json(struct jw *w, const struct py_thread *t)
{
	jw_arr_begin(w);
	for (size_t k = 0; k < t->nframes; k++) {
		const struct py_frame *f = &t->frames[k];
		jw_obj_begin(w);
		jw_kstr(w, "function", f->function);
		jw_kstr(w, "file", f->file);
		jw_key(w, "line");
		if (f->line < 0)
			jw_null(w);
		else
			jw_int(w, f->line);
		jw_kint(w, "first_line", f->first_line);
		if (f->error)
			jw_kstr(w, "error", f->error);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

void (*py_thread_json_hook)(struct jw *w, const struct py_thread *t);

void py_write_threads_json(struct jw *w, const struct py_process *p)
{
	jw_arr_begin(w);
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		jw_obj_begin(w);
		jw_key(w, "tid");
		if (t->tid > 0)
			jw_int(w, t->tid);
		else
			jw_null(w); /* not established: never guessed */
		jw_kstr(w, "name", t->name);
		jw_key(w, "daemon");
		if (t->daemon < 0)
			jw_null(w);
		else
			jw_bool(w, t->daemon == 1);
		jw_kbool(w, "gil", t->gil);
		jw_kstr(w, "state", py_thread_state_str(t->state));
		if (t->syscall_nr >= 0) /* by name (syscall_names.c); null: unknown to this build */
			jw_kstr(w, "syscall", syscall_name(t->syscall_nr));
		if (t->truncated)
			jw_kbool(w, "truncated", true);
		if (t->error)
			jw_kstr(w, "error", t->error);
		jw_key(w, "stack");
		py_write_stack_json(w, t);
		if (py_thread_json_hook && t->wf)
			py_thread_json_hook(w, t);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

void py_write_threads_fields(struct jw *w, const struct py_process *p)
{
	jw_key(w, "threads");
	py_write_threads_json(w, p);
	if (p->threads_error)
		jw_kstr(w, "thread_list_error", p->threads_error);
}

static void put_text(struct strbuf *sb, const char *s)
{
	if (s)
		sb_put_escaped_text(sb, s, strlen(s));
	else
		sb_puts(sb, "?");
}

void py_write_thread_label(struct strbuf *sb, const struct py_thread *t, bool mark)
{
	sb_puts(sb, mark ? "==> Thread " : "Thread ");
	if (t->name) {
		sb_putc(sb, '"');
		put_text(sb, t->name);
		sb_putc(sb, '"');
	} else {
		sb_puts(sb, "(no threading name)");
	}
	if (t->tid > 0)
		sb_printf(sb, " (tid %d", (int)t->tid);
	else
		sb_puts(sb, " (tid unknown");
}

static void write_thread_header(struct strbuf *sb, const struct py_thread *t, bool mark)
{
	py_write_thread_label(sb, t, mark);
	sb_puts(sb, t->daemon == 1 ? ", daemon" : t->daemon == 0 ? ", non-daemon" : "");
	sb_puts(sb, t->gil ? ", holds the GIL" : "");
	sb_printf(sb, ", %s", py_thread_state_str(t->state));
	if (t->syscall_nr == SYS_FUTEX_X86_64)
		sb_puts(sb, t->futex_timed ? " in a futex wait with a timeout" : " in a futex wait");
	else if (t->syscall_nr >= 0 && syscall_name(t->syscall_nr))
		sb_printf(sb, " in %s()", syscall_name(t->syscall_nr));
	else if (t->syscall_nr >= 0)
		sb_puts(sb, " in a system call unknown to this build");
	sb_puts(sb, "):\n");
}

void py_write_threads_text(struct strbuf *sb, const struct py_process *p, pid_t highlight_tid)
{
	if (p->threads_error)
		sb_printf(sb, "(thread list cut: %s; the threads before the cut follow)\n\n",
			  p->threads_error);
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		write_thread_header(sb, t, highlight_tid > 0 && t->tid == highlight_tid);
		sb_puts(sb, "Traceback (most recent call last):\n");
		if (t->truncated)
			sb_printf(sb, "  ... (older frames cut: %s)\n",
				  t->error ? t->error : "too deep, cyclic or unreadable");
		for (size_t k = t->nframes; k-- > 0;) {
			const struct py_frame *f = &t->frames[k];
			sb_puts(sb, "  File \"");
			put_text(sb, f->file);
			if (f->line >= 0)
				sb_printf(sb, "\", line %d, in ", f->line);
			else
				sb_puts(sb, "\", line ?, in ");
			put_text(sb, f->function);
			if (f->error)
				sb_printf(sb, " [%s]", f->error);
			sb_putc(sb, '\n');
		}
		if (t->nframes == 0)
			sb_puts(sb, "  (no Python frames)\n");
		sb_putc(sb, '\n');
	}
}
