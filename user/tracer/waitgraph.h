/* waitgraph: the wait-for graph of one process, and the diagnoses it proves.
 * Owns: what each thread waits for (kind from its stack and system call: Lock, RLock,
 * Condition, Semaphore, Event, queue get/put/join, Future.result, Thread.join, GIL, sleep,
 * I/O, child, other; the lock object and its holder from lockown.h; the timeout left), the
 * edges thread -> lock -> holder thread and thread -> GIL -> holder, and the proven
 * diagnoses `deadlock` (a cycle among any subset of threads), `self_deadlock` (a thread
 * waits for a non-reentrant lock it holds) and `orphaned_lock` (an RLock whose owner no
 * longer exists). A thread counts in a proof only when it is in an untimed futex wait that
 * has lasted the threshold (diag_waits); nothing is guessed: an unknown holder is unknown.
 * Also the `waiting_for` / `holds` JSON of each thread. Built only when a wait passes the
 * threshold, from the snapshot already read. */
#ifndef PH_WAITGRAPH_H
#define PH_WAITGRAPH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diagnose.h"
#include "iowait.h"
#include "json.h"
#include "lockown.h"
#include "pyreader.h"

struct wf_info {
	const char *kind;          /* see above; NULL: not waiting (running, unknown) */
	uint64_t object;           /* the Python object waited for, 0: unknown */
	const struct lo_lock *lock;/* the lock waited for (proven), or NULL */
	const struct py_thread *holder; /* proven holder, or NULL */
	int holder_frame;          /* holder's frame that took it, -1 */
	int holder_line;           /* line of the `with` that took it, -1 */
	const struct lo_lock *held_by; /* the holder's record of it (its `with`), or NULL */
	bool holder_dead;          /* an RLock whose owner thread no longer exists */
	uint64_t dead_owner;       /* its ident */
	bool timed;
	double timeout_s;          /* left, when timed and readable; < 0 unknown */
	struct lo_thread lo;       /* what it holds */
	const struct py_thread *self;
	const struct io_wait *io;  /* kind I/O: the resource and the call's timeout (iowait.h) */
	bool runs_future;          /* Future.result: holder is the thread running the future */
};

#define WG_MAX_IO 256 /* threads in I/O whose resource is described per snapshot */

struct waitgraph {
	const struct py_process *p;
	struct wf_info *info;      /* one per thread of p */
	struct io_wait *io;        /* the I/O waits described (at most WG_MAX_IO) */
	uint64_t cost_ns;          /* CPU time the build took (CLOCK_THREAD_CPUTIME_ID) */
};

/* Build the graph of p (read by r just before) and attach it to p's threads (t->wf).
 * 0, or -1 (out of memory; then nothing is attached). */
int waitgraph_build(struct waitgraph *g, struct py_reader *r, struct py_process *p);
/* Detach from p's threads and free. */
void waitgraph_free(struct waitgraph *g);
/* A proven deadlock, self_deadlock or orphaned_lock in the process: d filled (code,
 * summary, culprits, cycle). false when none is proven. */
bool waitgraph_diagnose(const struct waitgraph *g, pid_t waiter, const struct diag_waits *w,
			struct diagnosis *d);
/* `waiting_for` {kind, object, name, holder, timeout_s} of a thread (jw value). */
void waitgraph_write_waiting_for(struct jw *w, const struct wf_info *f);
/* The diagnosis.cycle array (jw value) of a deadlock: culprits in cycle order, each with
 * the lock it holds (where taken) and the lock it waits for (where), from p's threads'
 * wf (attached by waitgraph_build). */
void waitgraph_write_cycle(struct jw *w, const struct py_process *p, const struct diagnosis *d);
/* One line for people: "Lock taken at x.py:8 held by 'B' (tid 12)". */
void waitgraph_describe_wait(const struct wf_info *f, char *buf, size_t len);
#endif
