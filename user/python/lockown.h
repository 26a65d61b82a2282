/* lockown: who holds which lock, and which lock a blocked thread waits for, proven from the
 * target's memory (CPython 2.7 and 3.6-3.13; facts measured on each, see lockown.c).
 * Owns: finding the locks a thread holds (a `with` in progress keeps the lock's bound
 * __exit__ in a live slot of its frame's value stack; an RLock names its owner), the lock
 * object behind the futex a thread waits on, and "where taken" (the line of the `with`).
 * A lock taken with a bare acquire() has no provable holder: it is never guessed.
 * Reads go through the reader's cache of the process (pyreader.h, py_reader_mem_*), from
 * the frames of a snapshot just read; bounded per thread (LO_MAX_FRAMES, LO_MAX_SLOTS). */
#ifndef PH_LOCKOWN_H
#define PH_LOCKOWN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyreader.h"

#define LO_MAX_HELD 16     /* locks kept per thread */
#define LO_MAX_FRAMES 256  /* frames of a thread looked at for held locks (innermost first) */
#define LO_MAX_SLOTS 64    /* value-stack / local slots read per frame */
#define LO_NAME_LEN 64

enum lo_kind { LO_NONE, LO_LOCK, LO_RLOCK, LO_CONDITION };
const char *lo_kind_str(enum lo_kind k); /* "Lock", "RLock", "Condition", NULL */

struct lo_lock {
	enum lo_kind kind;
	uint64_t obj;        /* the Python object (the Condition for a Condition) */
	uint64_t futex;      /* the futex a thread waiting for it blocks on (lock_lock) */
	bool reentrant;      /* an RLock (itself or under a Condition) */
	bool owner_known;    /* RLock: owner ident read */
	uint64_t owner;      /* RLock owner's thread ident (tstate thread_id), 0 = free */
	int frame;           /* index of the holding frame in the thread's frames, -1 */
	int line;            /* line of the `with` that took it, -1 unknown */
	char name[LO_NAME_LEN]; /* what the source calls it (`ledger_lock`, `self._lock`): the
				 * name loaded just before the `with` (<= 3.10, 2.7); "" unknown */
};

struct lo_thread {
	struct lo_lock *held; /* nheld locks held by `with` blocks in progress, innermost first
			       * (at most LO_MAX_HELD; in the pool lockown_read gives) */
	size_t nheld;
	bool waits_known;    /* `waits` is the object behind the thread's futex */
	struct lo_lock waits;
};

/* For every thread of p (out[i] for p->threads[i]): the locks it holds by `with`, and, when
 * it is blocked on a futex, the lock object it waits for (when one of its innermost
 * frame's locals or stack slots is a lock whose futex is that one). The held locks of all
 * threads are in *pool (malloc'd, the caller frees it; NULL when none is held), which
 * out[i].held point into. 0, or -1 when the reader does not hold the process. */
int lockown_read(struct py_reader *r, const struct py_process *p, struct lo_thread *out,
		 struct lo_lock **pool);
/* The thread ident (tstate thread_id) of the thread that t, blocked in Thread.join(),
 * waits for: the `self` of its threading.py join (or _wait_for_tstate_lock) frame, its
 * _ident (2.7: _Thread__ident). 0 when unknown. */
uint64_t lockown_join_ident(struct py_reader *r, const struct py_process *p, const struct py_thread *t);
/* The queue.Queue whose `method` ("join", "get") t is blocked in: the `self` of that
 * queue.py (2.7: Queue.py) frame, its unfinished_tasks and the items in its deque
 * (Lib/queue.py: self.queue). false when t is not in it or a value cannot be read. */
bool lockown_queue_state(struct py_reader *r, const struct py_process *p, const struct py_thread *t,
			 const char *method, uint64_t *queue, uint64_t *unfinished, uint64_t *queued);
#endif
