/* asyncio_read: the asyncio event loops and tasks of a live process, read from
 * /proc/PID/mem (through the reader of pyreader.h: pread only, the target never stops).
 * Owns: finding which threads run an event loop (a BaseEventLoop._run_once frame on the
 * thread's stack, its `self` is the loop), the loop's state (in its selector, or running
 * callbacks since the selector returned: `end_time`, the loop's own time.monotonic() taken
 * right after select() in _run_once, Lib/asyncio/base_events.py 3.7-3.13), every task of
 * the process (asyncio.tasks' task sets), each task's name, state, coroutine stack (the
 * await chain, innermost first), what it awaits and which tasks await it (written by
 * user/output/asyncio_write.c). CPython 3.7-3.13 (layouts: pylayout.h
 * struct py_aio_layout); 2.7 and 3.6 are reported as unsupported. Every count, chain and
 * string read from the target is bounded (AIO_MAX_*); cycles end the walk. */
#ifndef PH_ASYNCIO_READ_H
#define PH_ASYNCIO_READ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fddesc.h"
#include "pyreader.h"

#define AIO_MAX_LOOPS 64
#define AIO_MAX_TASKS 4096      /* tasks kept per process; more: tasks_truncated */
#define AIO_MAX_CHAIN 64        /* coroutine frames per task's await chain */
#define AIO_MAX_SET_SLOTS 65536 /* hash table slots of a task set read at most */
#define AIO_MAX_CHILDREN 256    /* tasks of one gather() followed */

#define AIO_MAX_SUBPROCS 32      /* tasks whose subprocess is looked at, per view */

/* The subprocess a task awaits (asyncio_subproc.c): a frame of asyncio/subprocess.py or
 * base_subprocess.py in its await chain (Process.wait(), communicate(), its stream
 * readers, the transport's _wait()). */
struct aio_subproc {
	pid_t pid;               /* Process.pid (the transport's _pid), as the target sees it;
				  * 0 unknown */
	/* "running", "stopped", "zombie" (exited, not reaped yet), "exited" (reaped: asyncio
	 * has its return code), "unknown" (not a child of the process now and no return code) */
	const char *state;
	bool returncode_known;
	int returncode;          /* the transport's _returncode (negative: killed by a signal) */
	size_t npipes;
	struct {
		const char *stream;  /* "stdout", "stderr" */
		int fd;              /* the target's read end (the stream's transport _fileno) */
		struct fd_desc d;    /* the pipe (fddesc.h): peers hold its write end */
	} pipes[2];
};

struct aio_frame {
	char *function, *file;  /* "?" when unreadable */
	int line;               /* -1 unknown */
};

struct aio_task {
	uint64_t addr;
	uint64_t loop;
	char *name;              /* NULL: no names (3.7) or unreadable */
	const char *state;       /* "pending", "cancelled", "finished", "unknown" */
	struct aio_frame *frames; /* await chain, innermost first */
	size_t nframes;
	bool chain_cut;          /* chain longer than AIO_MAX_CHAIN, cyclic or unreadable */
	/* what it awaits: kind is one of "task", "gather", "sleep", "event", "queue",
	 * "lock", "condition", "semaphore", "subprocess", "io", "future", "running"
	 * (it is the task being run now), "nothing" (not suspended), "unknown" */
	const char *awaits;
	const struct aio_frame *awaits_at; /* the innermost coroutine frame (or NULL) */
	uint64_t waiter;         /* task_fut_waiter (0: none) */
	double deadline_in_s;    /* sleep: seconds until it wakes (negative: overdue); NAN none */
	struct aio_subproc *sub; /* the subprocess it awaits, NULL none */
	size_t *awaited;         /* indexes of the tasks it awaits (its waiter, gather's children) */
	size_t nawaited;
	size_t *awaited_by;      /* indexes of the tasks that await it */
	size_t nawaited_by;
};

struct aio_loop {
	uint64_t addr;
	pid_t tid;               /* 0: no thread runs it now */
	char *thread_name;       /* NULL unknown */
	/* "idle" (in its selector), "running" (running callbacks since running_s), "blocked"
	 * (running callbacks for at least the threshold), "not_running" (no thread runs it) */
	const char *state;
	double running_s;        /* seconds since its selector returned; NAN unknown */
	double end_time;         /* _run_once's end_time (the loop's clock), NAN unbound */
	struct aio_frame callback;  /* first frame run by Handle._run (function NULL: unknown) */
	struct aio_frame innermost; /* the thread's innermost frame while running */
	long syscall_nr;         /* the thread's system call now, -1 none or unknown */
	bool lock_wait;          /* the thread is in a futex wait (not the GIL) */
	/* the fd of the loop's self-pipe (BaseSelectorEventLoop._ssock, the read end of the
	 * socketpair that call_soon_threadsafe() and signal handlers write to wake the loop),
	 * -1 unknown or none (not a selector loop) */
	int self_pipe_fd;
	/* the thread waits in concurrent.futures Future.result() for a future (its address)
	 * that a callback scheduled on this very loop, not yet run, holds, or that a pending
	 * task of this loop completes when it ends: only the loop could complete it
	 * (run_coroutine_threadsafe(...).result() on the loop's thread) */
	uint64_t self_wait_future;
	uint64_t self_wait_candidate;  /* the future it waits for, not (yet) proven */
	bool self_wait_by_task;        /* proven by the task (else by the queued callback) */
	struct aio_frame self_wait_at; /* the frame that called result() */
	size_t *tasks;           /* indexes into aio_view.tasks */
	size_t ntasks;
};

struct aio_view {
	pid_t pid;
	uint64_t start_time;
	bool imported;           /* asyncio (2.7: trollius) is in sys.modules */
	const char *unsupported; /* static: why not read (2.7/3.6), NULL when supported */
	const char *error;       /* static: what could not be read (the rest is kept) */
	struct aio_loop loops[AIO_MAX_LOOPS];
	size_t nloops;
	struct aio_task *tasks;
	size_t ntasks;
	bool tasks_truncated;
	uint64_t cost_ns;        /* CPU time of the read */
	size_t json_budget;      /* bytes of JSON for the tasks at most (0: no limit) */
};

/* What the asyncio object of an event may take (events' records must fit in 64 KiB at
 * outcap's last level, README --max-event-bytes): tasks past it are left out and
 * `tasks_truncated` says so. `dump` has no budget. */
#define AIO_EVENT_JSON_BUDGET (24u << 10)

/* Reads the asyncio state of p's process (p: a snapshot just read by py_read_process with
 * r; threads and frames come from it). blocked_after_s: a loop running callbacks that long
 * is "blocked". 0, or -1 when nothing could be read (v->error says why). Free with
 * aio_view_free. Cheap when asyncio is not imported (one sys.modules lookup). */
int aio_read(struct py_reader *r, const struct py_process *p, double blocked_after_s,
	     struct aio_view *v);
void aio_view_free(struct aio_view *v);
/* Whether pid (a Python process) has imported asyncio and is a version whose asyncio is
 * read (3.7-3.13), without reading its stacks: attaches (or reuses what the reader has
 * cached) and looks up sys.modules. 1 yes, 0 no, -1 unknown (not initialized, unreadable). */
int aio_imported(struct py_reader *r, pid_t pid);
#endif
