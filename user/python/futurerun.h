/* futurerun: which thread runs the concurrent.futures Future another thread waits for.
 * Owns: the Future object behind a thread blocked in Future.result()/exception() (the
 * `self` of its concurrent/futures/_base.py frame), and the ThreadPoolExecutor worker
 * whose current work item (`self` of its concurrent/futures/thread.py _WorkItem.run frame)
 * has that `future`. Proven from the target's memory, never guessed: unknown is NULL.
 * CPython 3.6-3.13 (concurrent.futures; 2.7 only with the `futures` backport, same files).
 * `self` is the first fast local (f_localsplus[0] <= 3.10, localsplus[0] of the
 * _PyInterpreterFrame 3.11+), as in lockown.c's join frames. */
#ifndef PH_FUTURERUN_H
#define PH_FUTURERUN_H
#include "pyreader.h"

/* The thread of p running the future that t waits for in Future.result(), or NULL. r must
 * hold p (read just before). Reads: a few words per thread, at most 16 frames each. */
const struct py_thread *futurerun_runner(struct py_reader *r, const struct py_process *p,
					 const struct py_thread *t);
#endif
