/* waitgraph: the wait-for graph of one process, and the diagnoses it proves.
 * Owns: what each thread waits for (kind from its stack and system call: Lock, RLock,
 * Condition, Semaphore, Event, queue get/put/join, Future.result, Thread.join, GIL, sleep,
 * I/O, child, other; the lock object and its holder from lockown.h; the timeout left), the
 * edges thread -> lock -> holder thread and thread -> GIL -> holder, and the proven
 * diagnoses `deadlock` (a cycle among any subset of threads), `self_deadlock` (a thread
 * waits for a non-reentrant lock it holds) and `orphaned_lock` (an RLock whose owner no
 * longer exists). A thread counts in a proof only when it is in an untimed futex wait that
 * has lasted the threshold (diag_waits); nothing is guessed: an unknown holder is unknown.
 * Built only when a wait passes the threshold, from the snapshot already read; its JSON is
 * written by output/waitgraph_json.c. */
#ifndef PH_WAITGRAPH_H
#define PH_WAITGRAPH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diagnose.h"
#include "iowait.h"
#include "lockown.h"
#include "pyreader.h"

struct cw_wait;

/* What a thread waits for; WF_NONE (0): not waiting (running, unknown). */
enum wf_kind {
	WF_NONE, WF_LOCK, WF_RLOCK, WF_CONDITION, WF_SEMAPHORE, WF_EVENT, WF_QUEUE_GET,
	WF_QUEUE_PUT, WF_QUEUE_JOIN, WF_FUTURE_RESULT, WF_THREAD_JOIN, WF_GIL, WF_SLEEP, WF_IO,
	WF_CHILD, WF_OTHER,
};
/* Its name in text and JSON (`waiting_for.kind`): "Lock", "RLock", "Condition",
 * "Semaphore", "Event", "queue.get", "queue.put", "queue.join", "Future.result",
 * "Thread.join", "GIL", "sleep", "I/O", "child", "other"; NULL for WF_NONE. */
const char *wf_kind_name(enum wf_kind k);

struct wf_info {
	enum wf_kind kind;         /* see above */
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
	struct cw_wait *child;     /* kind "child": the child's facts (childwait.h), or NULL;
				    * freed with the graph */
};

#define WG_MAX_IO 256 /* threads in I/O whose resource is described per snapshot */

struct waitgraph {
	const struct py_process *p;
	struct wf_info *info;      /* one per thread of p */
	struct lo_lock *held;      /* the locks held by all threads (info[i].lo.held point in) */
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
/* What the source calls the lock a thread waits for: where it waits (the waiter's name),
 * else where its holder took it; NULL when neither is known. */
const char *waitgraph_lock_name(const struct wf_info *f);
/* The same lock as its holder's `with` calls it. */
const char *waitgraph_held_name(const struct wf_info *f);
/* The holder's frame that took the lock waited for (its `with`), or NULL. */
const struct py_frame *waitgraph_holder_frame(const struct wf_info *f);
/* One line for people: "Lock taken at x.py:8 held by 'B' (tid 12)". */
void waitgraph_describe_wait(const struct wf_info *f, char *buf, size_t len);
#endif
