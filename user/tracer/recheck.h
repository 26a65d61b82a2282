/* recheck: a second look at long waits that were not a proven hang when they passed the
 * threshold. A proof can need facts the first look did not have: a thread still exiting
 * (printing its traceback) when its last peer's wait passed the threshold, a pool still
 * replacing a dead worker. Owns: a bounded list (RC_MAX waits, the oldest dropped) of such
 * waits, each looked at again 1, 2, 4, 8 and 16 s after the first look while it lasts
 * (then it stays a long_wait); dropped when the wait ends, its process exits, or a hang
 * covers it. A chain of GIL waits is proven only by two looks that span the threshold
 * (diagnose.c, gil_wait_proven): it is looked at again 1, 2, 4 ... s later, at most every
 * max(half threshold, 1 s), for as long as the chain lasts, each look against the earliest
 * one it does not contradict; at most RC_GIL_MAX such chains, so they never crowd out the
 * rest, nor the rest them.
 * The look itself is the tracer's (events.c: a snapshot and the diagnoses):
 * one process per pass of the event loop, all its due waits on one read of it, so a
 * process of thousands of blocked threads costs one read per look, not one per thread. */
#ifndef PH_RECHECK_H
#define PH_RECHECK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "diagnose.h"

#define RC_MAX 64
#define RC_LOOKS 5
#define RC_GIL_MAX 32

struct rc_entry {
	pid_t pid, tid;        /* tid 0: free */
	uint64_t proc_start;
	uint64_t uaddr;
	uint64_t start_ns;     /* the wait's start, CLOCK_MONOTONIC */
	uint64_t due_ns;
	int looks;             /* done so far */
	uint64_t taken_ns;     /* the now of the pass that last took it */
	/* a chain of waits for the GIL (3.x): the chain's start in the kernel (struct ph_wait
	 * start_jiffies: a new chain has another), the GIL at the earliest look that the later
	 * ones did not contradict and at the earliest since which each found the holder
	 * blocked (diagnose_gil_keep), the longest time between looks (every_ns) */
	bool gil;
	uint64_t chain_start_j;
	struct gil_look look, blocked;
	uint64_t every_ns;
};

struct recheck {
	struct rc_entry e[RC_MAX];
};

/* Look again at tid's wait on uaddr (started start_ns) later; now: the first look. */
void recheck_add(struct recheck *r, pid_t pid, pid_t tid, uint64_t proc_start, uint64_t uaddr,
		 uint64_t start_ns, uint64_t now);
/* The same for a chain of GIL waits: chain_start_j its start in the kernel, look the GIL at
 * this first look (now), every_ns the longest time between two looks (at least 1 s). */
void recheck_add_gil(struct recheck *r, pid_t pid, pid_t tid, uint64_t proc_start, uint64_t uaddr,
		     uint64_t start_ns, uint64_t chain_start_j, const struct gil_look *look,
		     uint64_t every_ns, uint64_t now);
/* tid's GIL chain was looked at again and not proven, finding look: the looks kept for the
 * next ones follow diagnose_gil_keep (a kept look goes on covering a longer span until a
 * look contradicts it). No-op when the entry is gone. */
void recheck_gil_looked(struct recheck *r, pid_t pid, pid_t tid, const struct gil_look *look);
/* tid's wait ended (tid 0: every wait of pid; the process exited). */
void recheck_forget(struct recheck *r, pid_t pid, pid_t tid);
/* One entry due at now (of process pid; 0: any): copied to *out and rescheduled (or
 * dropped after RC_LOOKS). With a pid, the GIL chains of that process are taken even
 * before they are due: one read of a process serves them all, and puts them on one
 * schedule. */
bool recheck_take_due(struct recheck *r, uint64_t now, pid_t pid, struct rc_entry *out);
/* Milliseconds until the next entry is due (0: now), -1 when none. */
int recheck_due_in_ms(const struct recheck *r, uint64_t now);
#endif
