/* asyncio_watch: the tracer's periodic look at the asyncio event loops of the processes it
 * watches, for hangs no futex wait shows: a loop blocked by synchronous code (its thread
 * sleeps, computes or does I/O outside the selector) and tasks awaiting each other (the
 * loop sits idle in epoll_wait). From userspace only, no BPF program: every
 * AIO_WATCH_PERIOD (threshold / 2, within 0.25-2 s) each watched Python process with
 * asyncio imported is read (/proc/PID/mem, as `dump` does); processes without asyncio are
 * looked at again every 10 s (one sys.modules lookup, no stack read). /proc is listed for new processes every 10 s host-wide, every
 * second for COMMAND's descendants; host-wide, processes younger than 5 s are left for a
 * later listing. Scope: the -p processes, COMMAND's
 * descendants, or (host-wide) every Python process, at most AIO_WATCH_MAX of them.
 * A finding is reported (`hang`, asyncio_diag.h codes) when two reads in a row show it
 * (the same loop iteration, the same cycle); `hang_end` when a read no longer does. */
#ifndef PH_ASYNCIO_WATCH_H
#define PH_ASYNCIO_WATCH_H
#include "tracer.h"

#define AIO_WATCH_MAX 512

/* Milliseconds until aio_watch_poll is due (-1: never). */
int aio_watch_due_in_ms(struct tracer *t);
/* Look at the watched processes if due. */
void aio_watch_poll(struct tracer *t);
/* Free what the watcher keeps. */
void aio_watch_free(void);
#endif
