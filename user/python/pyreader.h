/* pyreader: every Python thread of a live process with its stack, read from /proc/PID/mem
 * (pread only: never ptrace, never SIGSTOP, the target never pauses).
 * Owns: finding the interpreter (libpython or the executable, PIE or not, in any mount
 * namespace), walking interpreters/threads/frames with the layouts of pylayout.h, decoding
 * line tables of every version, reading str/bytes (capped), thread names and daemon flags
 * from threading._active, the GIL holder, and what each thread is doing now according to
 * /proc/PID/task/TID/syscall. Caches are keyed by (pid, start time, address) and validated
 * before use; the process-level cache is dropped when the pid's start time changes or the
 * process execs (its old /proc/PID/mem then reads 0 bytes). Supports CPython 2.7 and
 * 3.6-3.13 (3.13+ through a validated _Py_DebugOffsets).
 * Seam for tests: py_read_resolved and py_resolve_by_scan run the same walk and scans over
 * a procmem memory backend (procmem.h) from a struct py_resolved, without a process
 * (tests/fuzz); py_reader_resolved exports what attaching resolved for a live one. */
#ifndef PH_PYREADER_H
#define PH_PYREADER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procmem.h"
#include "pyhang.h" /* PH_NR_FUTEX, ph_futex_op_waits: the rules the kernel side shares */
#include "pylayout.h"

#define PY_MAX_FRAMES 4096u   /* deeper stacks are cut (truncated = true) */
#define PY_MAX_THREADS 4096u
/* Frame steps one read of a process may take over all its threads: without it a hostile
 * process (4,096 threads, each a chain of 8,192 frame steps) holds a read for seconds.
 * 2,000 threads of 65 frames fit; the threads past the budget are cut. */
#define PY_MAX_FRAME_STEPS 131072u
#define PY_MAX_STR 4096u      /* characters kept of any string read from the target */

struct py_frame {
	char *function;  /* co_qualname on 3.11+, co_name before */
	char *file;
	int line;        /* -1 when the line table gives none */
	int first_line;  /* co_firstlineno */
	/* Why part of this frame could not be read (a static string, NULL when all was read):
	 * the code object (then function and file are "?"), its name, file or line table.
	 * The frame is kept, so the frames around it stay in place. */
	const char *error;
	/* Where the frame lives, for lock ownership (user/python/lockown*.c): the frame (PyFrameObject
	 * <= 3.10, _PyInterpreterFrame 3.11+), its code object and its position (f_lasti <= 3.10,
	 * instruction pointer 3.11+). 0 when unknown (stacks captured in the kernel). */
	uint64_t addr, code, pos;
	int32_t iblock;  /* <= 3.10: f_iblock (blocks in progress: 0 = no `with`), -1 unknown */
};

enum py_thread_state {
	PY_STATE_RUNNING,
	PY_STATE_LOCK_WAIT,   /* futex wait that is not the GIL */
	PY_STATE_GIL_WAIT,    /* futex wait on the GIL's mutex/condition (or 2.7 lock) */
	PY_STATE_SLEEP,       /* blocked in another system call */
	PY_STATE_UNKNOWN,
};
const char *py_thread_state_str(enum py_thread_state s);

struct py_thread {
	pid_t tid;            /* 0 when it could not be established (never guessed) */
	uint64_t thread_id;   /* tstate->thread_id (pthread_t) */
	char *name;           /* from threading._active, NULL when unknown */
	int daemon;           /* 1, 0, or -1 unknown */
	bool gil;             /* holds the GIL now */
	enum py_thread_state state;
	long syscall_nr;      /* -1 when not in a system call or unknown */
	uint64_t futex_addr;  /* uaddr when syscall_nr is futex */
	uint64_t syscall_arg1; /* the first argument of any other system call (0: unknown) */
	unsigned futex_op;
	bool futex_timed;     /* the futex wait has a timeout (its 4th argument is not NULL) */
	uint64_t futex_timeout; /* that argument: the struct timespec's address, 0: none */
	/* What it waits for and what it holds (user/waitgraph.c), set by whoever built it for
	 * a snapshot and written by py_write_threads_json through py_thread_json_hook. */
	const struct wf_info *wf;
	struct py_frame *frames; /* innermost first */
	size_t nframes;
	bool truncated;       /* chain cut: too deep, cycle or unreadable */
	const char *error;    /* why it was cut (static string), NULL when not truncated */
	uint64_t tstate_addr;
};

struct py_process {
	pid_t pid;
	uint64_t start_time; /* the process's identity besides its pid: /proc/PID/stat field 22 */
	char version[32];
	unsigned version_hex;
	struct py_thread *threads;
	size_t nthreads;
	/* Why the list of threads (or of interpreters) was cut before its end: it loops, or a
	 * thread state is unreadable (static string, NULL when read to its end). The threads
	 * read before the cut are kept. */
	const char *threads_error;
	size_t os_threads;   /* threads of the process in /proc/PID/task at the read (0: unknown) */
	/* The GIL's switch count (_gil_runtime_state.switch_number, 3.7-3.13; 3.6's static
	 * gil_switch_number when .symtab names it), read directly as the read began: it grows
	 * each time the GIL goes to a thread other than its last holder (take_gil(): 3.6-3.11
	 * Python/ceval_gil.h, 3.12-3.13 Python/ceval_gil.c).
	 * gil_switches_known false: not readable (2.7 has none, a stripped 3.6, several
	 * interpreters on 3.12+, or no direct access to the process's memory). */
	bool gil_switches_known;
	uint64_t gil_switches;
	uint64_t gil_switches_ns; /* CLOCK_MONOTONIC when gil_switches was read */
	void *strings; /* private: storage of every string above (freed by py_process_free) */
};

/* Every string in a struct py_process (names, functions, files) belongs to it and is
 * freed by py_process_free: copy what must outlive it. One py_reader keeps one block cache
 * (8 MiB at most) for all processes plus, per process, an open /proc/PID/mem, the code
 * object cache and open /proc/PID/task/TID/syscall files (closed by py_forget_process). */
struct py_reader;

struct py_reader *py_reader_new(void);
void py_reader_free(struct py_reader *r);
/* 0 with *out filled (free with py_process_free), or -1 with a message in err. */
int py_read_process(struct py_reader *r, pid_t pid, struct py_process *out, char *err,
		    size_t errlen);
void py_process_free(struct py_process *p);
/* Attach to pid (or reuse what is cached) and look whether some thread runs Python code,
 * without reading any stack in full: 1 yes, 0 not yet (interpreter not set up), -1 error.
 * *version_hex as py_read_process would give it. */
int py_probe_process(struct py_reader *r, pid_t pid, unsigned *version_hex, char *err,
		     size_t errlen);
/* Cheap test: the maps contain libpython or the executable is named python*. */
bool py_is_python_process(pid_t pid);
/* Free the block cache shared by all processes if it holds more than a few blocks (it is
 * only valid within one read, and allocated again by the next): a long-running caller keeps
 * at most 1 MiB of it resident. */
void py_reader_release_cache(struct py_reader *r);
/* Drop everything cached for pid (call on exit or exec). */
void py_forget_process(struct py_reader *r, pid_t pid);

/* What the reader resolved for pid (NULL / -1 if the pid was never read successfully):
 * the layout in use, and the addresses it starts from (for passing to BPF). */
struct py_addrs {
	uint64_t runtime;      /* &_PyRuntime, 0 for 2.7/3.6 */
	uint64_t interp_head;  /* &interp_head (2.7/3.6), else 0 */
	uint64_t interp;       /* main interpreter at the last read */
	uint64_t gil;          /* struct _gil_runtime_state, 0 if none */
	/* [lo, hi): futex addresses that are waits for the GIL (the struct, or 3.6's located
	 * static wait objects); 0, 0 when unknown */
	uint64_t gil_wait_lo, gil_wait_hi;
	uint64_t code_type;    /* &PyCode_Type */
};
const struct py_layout *py_reader_layout(struct py_reader *r, pid_t pid);
/* Whether the process the reader holds for pid is still there, running the program it was
 * attached in (not exited, not exec'd: a pidfd poll and a one-byte read of its memory); its
 * start time in *start_time. */
bool py_reader_still_same(struct py_reader *r, pid_t pid, uint64_t *start_time);

/* What attaching to a process resolves from its files and maps before any walk: the layout
 * and the addresses a walk starts from. py_read_process keeps one per process. */
struct py_resolved {
	struct py_layout layout;
	char version[32];
	unsigned version_hex;
	uint64_t runtime;          /* &_PyRuntime (3.7+), else 0 */
	uint64_t interp_head;      /* &interp_head (2.7, 3.6), else 0 */
	uint64_t tstate_current;   /* &_PyThreadState_Current (2.7, 3.6), 0 if unknown */
	uint64_t interpreter_lock; /* &interpreter_lock (2.7), 0 if unknown */
	uint64_t gil_static[4][2]; /* 3.6 gil_cond, gil_mutex, switch_cond, switch_mutex [addr, end) */
	uint64_t gil_locked, gil_last_holder; /* 3.6 &gil_locked, &gil_last_holder; 0 unknown */
	uint64_t gil_wait[2];      /* 3.6: one range of GIL wait objects only (gilstatic.h) */
	const char *gil_found_by;  /* 3.6: "symtab" or "code", NULL when the GIL is unknown */
	uint64_t gil36_switch_number; /* 3.6 &gil_switch_number (.symtab), 0 if unknown */
	uint64_t t_code, t_unicode, t_bytes, t_dict, t_true; /* type objects; 0 = not checked */
	unsigned unicode27_width;  /* 2.7 Py_UNICODE size: 2 or 4, 0 unknown */
};
/* A copy of what was resolved for pid. 0, or -1 if pid was never read successfully. */
int py_reader_resolved(struct py_reader *r, pid_t pid, struct py_resolved *out);
/* The walk of py_read_process (interpreters, threads, frames, code objects, line tables,
 * strings, threading._active, the GIL) over memory served by backend(ctx, ...) instead of a
 * live process, from a layout and addresses resolved beforehand; no /proc file is read and
 * thread ids stay 0. For the fuzzers and the seeding tool (tests/fuzz). 0 with *out filled
 * (free with py_process_free), or -1 with a message. */
int py_read_resolved(const struct py_resolved *res, pm_backend_fn backend, void *ctx,
		     struct py_process *out, char *err, size_t errlen);
/* The section scans that find, without symbols, &interp_head (2.7, 3.6: res->interp_head)
 * or &_PyRuntime (3.7-3.9: res->runtime) in [start, start+size) of memory served by
 * backend, as py_read_process does over .bss and .data. For the fuzzers. 0 when found. */
int py_resolve_by_scan(struct py_resolved *res, pm_backend_fn backend, void *ctx,
		       uint64_t start, uint64_t size);
int py_reader_addrs(struct py_reader *r, pid_t pid, struct py_addrs *out);
/* Reads of pid's memory for lock ownership (user/python/lockown*.c), through the reader's cache of
 * that process (pid must have been read by py_read_process). mem_begin: right after a read
 * of pid (nothing else read since), its cached blocks are used (the same moment as that
 * snapshot); else a new cache generation starts (everything is read again). mem_read: 0 or -1. mem_attr: an instance
 * attribute's object address (read from its __dict__ / managed dict), 0 if none or
 * unreadable. code_line: the line of position pos (f_lasti <= 3.10, byte offset from the
 * code start 3.11+) in code object code, -1 if unknown. */
void py_reader_mem_begin(struct py_reader *r, pid_t pid);
int py_reader_mem_read(struct py_reader *r, pid_t pid, uint64_t addr, void *buf, size_t len);
uint64_t py_reader_mem_attr(struct py_reader *r, pid_t pid, uint64_t obj, const char *name);
/* The memory of pid as this reader reads it (its cache), for readers of many small
 * fields (lockown*.c): pm_read on it is py_reader_mem_read. NULL if pid is not held. Valid
 * until the next py_read_process or py_forget_process. */
struct procmem *py_reader_procmem(struct py_reader *r, pid_t pid);
int py_reader_code_line(struct py_reader *r, pid_t pid, uint64_t code, uint64_t pos);
/* For asyncio (user/asyncio_read.c): dict[key] for an ASCII str key (0: absent or
 * unreadable); a str object as UTF-8 (malloc'd, capped at PY_MAX_STR, NULL unreadable);
 * a code object's function (co_qualname 3.11+) and file (malloc'd) with the line of pos
 * (pos as py_reader_code_line; UINT64_MAX gives co_firstlineno): 0, or -1. */
uint64_t py_reader_mem_dict_get(struct py_reader *r, pid_t pid, uint64_t dict, const char *key);
char *py_reader_mem_str(struct py_reader *r, pid_t pid, uint64_t addr);
int py_reader_code_where(struct py_reader *r, pid_t pid, uint64_t code, uint64_t pos,
			 char **function, char **file, int *line);
/* Statistics of the last read (for the benchmark). */
uint64_t py_reader_last_preads(struct py_reader *r, pid_t pid);
/* All reads of pid's memory by this reader so far (pread calls; for the benchmark). */
uint64_t py_reader_preads(struct py_reader *r, pid_t pid);

/* Line of a captured position (f_lasti <= 3.10, byte offset from the code start 3.11+) in
 * a copied line table; -1 when the table gives none. */
int py_line_for_position(const struct py_layout *l, const unsigned char *table, uint32_t len,
			 int firstlineno, int64_t pos);

/* The line of a captured position in a copy of a line table of which only the first
 * `copied` of its full_len bytes may have been copied (the BPF stack walker copies 512):
 * PY_LINE_OK with *line; PY_LINE_NONE, the table gives no line for it (*line -1: an
 * instruction without a line, or a position past the table); PY_LINE_CUT, the copy ends
 * before the position (*line -1: the full table is needed). pos as py_line_for_position. */
enum py_line_status { PY_LINE_OK, PY_LINE_NONE, PY_LINE_CUT };
enum py_line_status py_line_in_copy(const struct py_layout *l, const unsigned char *table,
				    uint32_t copied, uint64_t full_len, int firstlineno, int64_t pos,
				    int *line);
/* The line table (malloc'd, *len bytes) and co_firstlineno of the code object at address
 * code in process pid, read now through the reader's state for pid, which must be attached
 * already with this start time (the tracer's described processes): 0, or -1 when the
 * process or the code object is gone or not one (nothing is attached for this). */
int py_reader_code_table(struct py_reader *r, pid_t pid, uint64_t start_time, uint64_t code,
			 unsigned char **table, uint32_t *len, int *firstlineno);

#endif
