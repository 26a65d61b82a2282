/* taskdone: a queue.Queue.join() that waits for tasks nobody will finish.
 * Owns: recognizing, in a process whose threads are all blocked (all_threads_blocked),
 * a thread in Queue.join() on a queue that holds no item but has unfinished_tasks > 0
 * while every other thread in Queue.get() waits on that same queue: a task was taken
 * with get() and task_done() was never called for it (its worker thread died, or a path
 * skipped task_done()), and saying so in the diagnosis' summary (its code stays
 * all_threads_blocked). Facts: Lib/queue.py (2.7: Queue.py) join() waits while
 * unfinished_tasks > 0; get() waits while the deque self.queue is empty. */
#ifndef PH_TASKDONE_H
#define PH_TASKDONE_H
#include <stdbool.h>

#include "diagnose.h"
#include "pyreader.h"

/* Prepends the explanation to d->summary when it applies; true if it did. */
bool taskdone_explain(struct py_reader *r, const struct py_process *p, struct diagnosis *d);
#endif
