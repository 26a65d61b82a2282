/* sigchld_state: what each traced process's SIGCHLD disposition is known to be, and where it
 * came from (see sigchld_state.c). */
#ifndef PH_SIGCHLD_STATE_H
#define PH_SIGCHLD_STATE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyhang.h"

/* Where a process's current disposition came from. */
enum disp_origin {
	DISP_NONE = 0,      /* default since its exec (or unknown) */
	DISP_SET,           /* its own rt_sigaction, seen by the hook (stack in pending ignores) */
	DISP_INHERITED,     /* SIG_IGN already in force at its exec: set by an earlier program */
	DISP_BEFORE_START,  /* found ignored in a process that ran before tracing started */
	DISP_UNWATCHED,     /* set while its rt_sigaction calls were not watched (an embedding
			     * program before it loaded libpython, or an exec event was lost) */
};

#define DISP_RECORDS 1024

/* One process (pid, proc_start). */
struct disp_record {
	pid_t pid;
	uint64_t proc_start;
	unsigned cls;              /* enum ph_sigchld_class known now */
	bool reported;             /* a sigchld_ignored event told cls */
	bool told_from_proc;       /* ... after a look at /proc, not from a hook's record */
	bool python_exec;          /* its current program was Python at its exec */
	enum disp_origin origin;
	uint64_t seen_ns;          /* CLOCK_MONOTONIC of the newest fact */
	char exec_comm[PH_COMM_LEN];   /* comm of its current program (exec event), "" unknown */
	char from_comm[PH_COMM_LEN];   /* DISP_INHERITED: the program that ignored SIGCHLD */
	pid_t from_pid;                /* and its pid (0: unknown) */
};

struct disp_table {
	struct disp_record r[DISP_RECORDS];
	unsigned next;
};

struct tracer;
struct ph_event;
struct captured_stack;

/* Lookup; NULL when nothing is known of process (pid, proc_start). */
const struct disp_record *disp_find(const struct tracer *t, pid_t pid, uint64_t proc_start);
/* An exec event (Python or not): records the disposition in force at the exec and, for a
 * Python program that starts with SIGCHLD ignored, reports it once (inherited). */
void disp_on_exec(struct tracer *t, const struct ph_event *e);
/* An rt_sigaction change seen by the kernel hook. Returns false when it tells nothing new
 * (the disposition was already reported as that): no event then. */
bool disp_on_sigaction(struct tracer *t, const struct ph_event *e);
/* A look at /proc for a process found at start-up (at_start) or found to run Python later:
 * reports a disposition no hook has reported, with its true origin. Drains the ring
 * buffer first, so that a hook's record of the same change always wins. */
void disp_scan(struct tracer *t, pid_t pid, uint64_t proc_start, bool at_start);
#endif
