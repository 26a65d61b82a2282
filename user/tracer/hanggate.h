/* hanggate: when a diagnosis becomes a reported hang, and when a hang is over. Owns: the
 * gate between the rules (diagnose.c, waitgraph.c: what is proven) and the output: a hang
 * is reported only when proven, once per fingerprint (pid, code, threads: the same hang
 * seen from each of its threads, or coming back, is one finding), handed to the CI guard
 * and the annotations, and remembered (hangtrack.h) until one of its threads stops
 * waiting or its process exits, which yields one hang_end. */
#ifndef PH_HANGGATE_H
#define PH_HANGGATE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diagnose.h" /* struct gil_look */
#include "output.h"   /* enum rec_ended_by */

struct tracer;
struct rec_long_wait;
struct ev_proc;
struct py_process;

/* Seconds from from_ns to to_ns (monotonic ns); 0 when to_ns is not later. */
static inline double seconds_between(uint64_t from_ns, uint64_t to_ns)
{
	return to_ns > from_ns ? (double)(to_ns - from_ns) / 1e9 : 0.0;
}

/* After a long_wait with a snapshot (lw->py): diagnose it (causes in other processes
 * (xproc.h), the wait-for graph's proofs, then diagnose_process) and report a hang if one
 * is proven and new. true when one is proven (new or reported before). */
bool maybe_report_hang(struct tracer *t, const struct rec_long_wait *lw);

/* The GIL in p as thread waiter sees it (diagnose_gil_look), with its holder's state and
 * CPU time read from /proc now (unknown when the thread is gone). */
void hang_gil_look(const struct py_process *p, pid_t waiter, struct gil_look *out);

/* Thread tid of pid (0: the whole process) stopped waiting at now_ns, for reason why
 * (REC_END_RETURN, _SIGNAL, _THREAD_EXIT, _PROCESS_EXIT): one hang_end per open hang it was
 * part of, with p as the event's process. */
void end_hang(struct tracer *t, pid_t pid, pid_t tid, uint64_t now_ns, enum rec_ended_by why,
	      const struct ev_proc *p);
#endif
