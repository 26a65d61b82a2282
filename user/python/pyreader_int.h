/* pyreader_int: what the parts of the CPython reader share (user/python/py*.c; the public
 * interface is pyreader.h). Owns: the reader's limits, its per-process state (struct
 * py_proc, the code cache entry, the per-read struct walk), the small read helpers every
 * part uses, and the prototypes of the functions one part calls in another. */
#ifndef PYREADER_INT_H
#define PYREADER_INT_H

#include "pyreader.h"
#include "pyrules.h"
#include "pyunicode.h"

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
/* Strings of one struct py_process live in chunks freed together (no malloc per frame). */
struct str_chunk {
	struct str_chunk *next;
	size_t used, cap;
	char data[];
};
/* A set of addresses, for cycle detection over bounded walks. */
struct addr_set {
	uint64_t *v;
	size_t cap; /* power of two */
	size_t n;
};
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


/* Called per live entry; returns true to stop the iteration. hash is 0 when the layout
 * does not store it (3.11+ unicode-keyed tables). */
typedef bool (*dict_cb)(struct walk *w, uint64_t hash, uint64_t key, uint64_t value, void *ctx);
enum sym_id {
	S_RUNTIME, S_PY_VERSION, S_INTERP_HEAD_FN, S_INTERP_HEAD, S_TSTATE_CURRENT,
	S_CODE_TYPE, S_UNICODE_TYPE, S_STRING_TYPE, S_BYTES_TYPE, S_DICT_TYPE, S_TRUE,
	S_INTERPRETER_LOCK, S_UCS4, S_UCS2,
	S_GIL_SWITCH_NUMBER, /* 3.6 static (stackcheck: gil_proof_begin) */
	S_COUNT
};
/* Sections the interpreter is searched in. */
enum sec_id { SEC_PYRUNTIME, SEC_BSS, SEC_DATA, SEC_COUNT };

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
struct active_entry {
	uint64_t ident, thread;
};

struct active_list {
	struct active_entry *v;
	size_t n, cap;
};
enum frame_kind { FRAME_OK, FRAME_SKIP, FRAME_BAD_CODE };
#define MAX_GILS (MAX_INTERPRETERS + 4)

struct gil_info {
	uint64_t ranges[MAX_GILS][2]; /* futex addresses that mean "waiting for the GIL" */
	size_t nranges;
	bool unknown;                 /* where the GIL is is not known (3.6 not located) */
	uint64_t holders[MAX_GILS];   /* tstates holding a GIL now */
	size_t nholders;
};


static inline uint64_t get_u64(const unsigned char *b, uint32_t off)
{
	uint64_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static inline int32_t get_i32(const unsigned char *b, uint32_t off)
{
	int32_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static inline bool plausible_ptr(uint64_t p)
{
	return p >= 0x1000 && p < 0x800000000000ull && (p & 7) == 0;
}
/* Takes one frame step of the read's budget; false when it is used up. */
static inline bool frame_step(struct walk *w)
{
	uint32_t *steps = w->checking ? &w->check_steps : &w->frame_steps;
	if (*steps >= PY_MAX_FRAME_STEPS)
		return false;
	(*steps)++;
	return true;
}

static inline int rd(struct walk *w, uint64_t addr, void *buf, size_t len)
{
	int rc = !w->fresh_objs ? pm_read(&w->p->pm, addr, buf, len) :
		 len <= PM_BLOCK ? sc_read_fresh(w->check, &w->p->pm, addr, buf, len) :
				   pm_read_direct(&w->p->pm, addr, buf, len);
	if (rc == PM_GONE)
		w->gone = 1;
	return rc == PM_OK ? 0 : -1;
}

static inline int rd_u64(struct walk *w, uint64_t addr, uint64_t *v)
{
	return rd(w, addr, v, sizeof(*v));
}

static inline bool type_is(struct walk *w, uint64_t obj, uint64_t type_addr)
{
	uint64_t t;
	if (!type_addr)
		return true; /* type unknown: cannot check, accept */
	return rd_u64(w, obj + w->p->res.layout.ob_type, &t) == 0 && t == type_addr;
}

/* pyarena.c */
char *arena_strdup(struct py_process *out, const char *s);
void arena_free(struct py_process *out);
bool addr_set_add(struct addr_set *s, uint64_t a);
void addr_set_free(struct addr_set *s);

/* pyunicode.c */
unsigned char *read_bytes_obj(struct walk *w, uint64_t addr, size_t cap, uint32_t *len_out);
char *read_str(struct walk *w, uint64_t addr);
bool str_equals(struct walk *w, uint64_t addr, const char *s);

/* pylinetable.c */
int code_line(const struct py_layout *l, struct code_entry *c, uint64_t pos);

/* pycodecache.c */
void code_cache_clear(struct py_proc *p);
int code_read_fields(struct walk *w, uint64_t addr, struct code_entry *f);
struct code_entry *code_lookup(struct walk *w, uint64_t addr);

/* pydict.c */
int dict_each(struct walk *w, uint64_t dict, dict_cb cb, void *ctx);
uint64_t dict_get_str(struct walk *w, uint64_t dict, const char *key);
uint64_t instance_attr(struct walk *w, uint64_t obj, const char *name);

/* pyelffacts.c */
bool version_from_name(const char *path, unsigned *major, unsigned *minor);
bool is_libpython(const char *path);
const struct pm_map *find_python_mapping(pid_t pid, const struct pm_maps *maps);
int file_facts_of(struct sym_cache *c, pid_t pid, const struct pm_map *m,
			 struct file_facts *out, char *err, size_t errlen);
int attach_section(const struct attach *a, enum sec_id id, uint64_t *addr,
			  uint64_t *size);
uint64_t sym_addr(const struct attach *a, enum sym_id id);

/* pyscan.c */
bool interp_valid(struct walk *w, uint64_t interp);
uint64_t scan_for_interp_pointer(struct walk *w, uint64_t start, uint64_t size,
					bool want_head_main_pair);
int find_interp_head(struct walk *w, struct attach *a, char *err, size_t errlen);
uint64_t runtime_by_scan(struct walk *w, uint64_t start, uint64_t size);
int find_runtime(struct walk *w, struct attach *a, char *err, size_t errlen);
uint64_t runtime_candidate(struct attach *a);

/* pyversion.c */
int attach_process(struct walk *w, char *err, size_t errlen);

/* pythreads.c */
bool collect_active(struct walk *w, uint64_t hash, uint64_t key, uint64_t value, void *ctx);
uint64_t find_active_dict(struct walk *w, uint64_t interp);
void read_sys_version(struct walk *w, uint64_t interp);
void map_namespace_tids(struct walk *w, pid_t pid);
pid_t host_tid(const struct walk *w, pid_t tid);
bool task_exists(const struct walk *w, pid_t tid);
pid_t tid_from_pthread(struct walk *w, uint64_t pthread);
void thread_from_threading(struct walk *w, const struct active_list *act,
				  struct py_thread *t);

/* pysyscall.c */
void sysfd_prune(struct py_proc *p, bool everything);
void classify_state(struct walk *w, struct py_thread *t, const uint64_t (*gil)[2],
			   size_t ngil);

/* pyframes.c */
enum frame_kind frame_location(struct walk *w, const unsigned char *buf,
				      struct code_entry **out, int *line);
int rd_frame(struct walk *w, bool fresh, uint64_t addr, void *buf, size_t len);
void walk_frames(struct walk *w, uint64_t frame, struct py_thread *t, bool fresh);
uint64_t first_frame(struct walk *w, const unsigned char *ts, bool fresh);

/* pygil.c */
void gil_proof_begin(struct walk *w);
void stack_read_consistent(struct walk *w, const unsigned char *ts, uint64_t tstate,
				  struct py_thread *t);
void gil_add_struct(struct walk *w, struct gil_info *g, uint64_t gil);
void gil_collect_static(struct walk *w, struct gil_info *g);
bool gil_held_by(const struct gil_info *g, uint64_t tstate);

/* pywalk.c */
uint64_t first_interp(struct walk *w);
uint32_t tstate_read_size(const struct py_layout *l);
int walk_process(struct walk *w, struct py_process *out, char *err, size_t errlen);

/* pyprobe.c */
int probe_process(struct walk *w, char *err, size_t errlen);

#endif
