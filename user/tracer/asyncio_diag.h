/* asyncio_diag: proven asyncio hangs, from an asyncio view (asyncio_read.h).
 * Owns the codes and sentences of:
 *  - event_loop_blocked: a loop's thread has been running one callback (outside its
 *    selector) for at least the threshold, by the loop's own clock (end_time of
 *    _run_once), with the same iteration seen by two reads: no other task or callback of
 *    that loop runs meanwhile. Names the coroutine (or callback) and the blocking call.
 *  - event_loop_self_wait: the loop's thread waits in concurrent.futures Future.result()
 *    for a future that a callback scheduled on this very loop, not yet run, will complete
 *    (run_coroutine_threadsafe(c, loop).result() called on the loop's thread).
 *  - await_cycle: tasks awaiting each other (task_fut_waiter edges, gather children), all
 *    pending: none can ever finish unless something cancels one of them. */
#ifndef PH_ASYNCIO_DIAG_H
#define PH_ASYNCIO_DIAG_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "asyncio_write.h"
#include "diagnose.h"

/* The loop run by thread tid waits for its own future (event_loop_self_wait). */
bool aio_diagnose_self_wait(const struct aio_view *v, pid_t tid, struct diagnosis *d);
/* Loop i is blocked (state "blocked"): event_loop_blocked, or event_loop_self_wait when
 * that is the reason. */
bool aio_diagnose_blocked(const struct aio_view *v, size_t loop, struct diagnosis *d);
/* A cycle of tasks awaiting each other: await_cycle. *fingerprint identifies the set of
 * tasks (order-free), for telling the same cycle in the next read. */
bool aio_diagnose_cycle(const struct aio_view *v, struct diagnosis *d, uint64_t *fingerprint);
#endif
