/* xproc: hangs whose cause is in another process, from the kernel's records of forks and
 * of children's deaths (bpf/fork.bpf.h).
 * Owns: the tables of recent forks of multi-threaded processes (with the forking thread's
 * Python stack, captured in the kernel at the fork) and of children's abnormal deaths
 * (signal or non-zero status, whether the OOM killer chose them); the `hang` diagnoses
 *  - `fork_held_lock`: a process forked (not exec'd) from a multi-threaded parent has
 *    every thread in an untimed wait on a process-private lock, and no thread of its own
 *    is the proven holder of the one the waiter wants: a lock copied in its held state;
 *    the parent thread that holds the same lock (same address: fork copies the address
 *    space) is named when proven (RLock owner ident at fork, or a `with` in progress now);
 *  - `worker_died`: a thread waits, untimed, while a child of its process died by a signal
 *    or a non-zero exit during that wait (or up to XP_DIED_BEFORE_S before it), and nothing
 *    else works for it: no other thread of the process runs, and no live child runs;
 * and their `diagnosis.fork` / `diagnosis.child` JSON and text blocks. */
#ifndef PH_XPROC_H
#define PH_XPROC_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "diagnose.h"
#include "json.h"
#include "pending.h"
#include "pyhang.h"
#include "strbuf.h"

#define XP_MAX_FORKS 64
#define XP_MAX_DEATHS 128
#define XP_DIED_BEFORE_S 2.0 /* a death this long before the wait began still counts */

struct xp_fork {
	bool used;
	pid_t child, parent, forker_tid;
	uint64_t child_start, parent_start, fork_ns;
	unsigned parent_threads;
	char parent_comm[16];
	struct captured_stack stack; /* the forking thread's, when captured */
	bool have_stack;
	const char *stack_status;    /* why not: "unknown_layout", "not_captured"... */
};

struct xp_death {
	bool used;
	pid_t parent, child, ns_pid;
	uint64_t parent_start, child_start, ns;
	int exit_code; /* kernel encoding */
	bool oom;
	char comm[16];
};

/* What a fork_held_lock / worker_died hang names, for its JSON and text. */
struct xp_facts {
	const struct xp_fork *fork;   /* fork_held_lock */
	struct xp_fork fork_copy;     /* when only the kernel map knew it (no stack) */
	double forked_s_ago;
	pid_t holder_tid;             /* the parent thread that holds that lock, 0: unknown */
	char holder_name[64];
	char holder_function[128], holder_file[256];
	int holder_line;
	const char *holder_proof;     /* "rlock_owner" or "with" */
	int parent_threads_now;       /* Python threads of the parent when looked at, -1 */
	const struct xp_death *death; /* worker_died */
	double died_s_ago;
	char waiting_call[300];
	char child_cmdline[256];
};

struct xproc {
	struct xp_fork forks[XP_MAX_FORKS];
	unsigned next_fork;
	struct xp_death deaths[XP_MAX_DEATHS];
	unsigned next_death;
	struct xp_facts facts; /* of the diagnosis being reported */
};

struct tracer;
struct rec_long_wait;
struct waitgraph;

struct xproc *xproc_new(void);
void xproc_free(struct xproc *x);
/* PH_EV_FORK / PH_EV_CHILD_DIED records (the fork's stack is taken from t->pending). */
void xproc_on_fork(struct tracer *t, const struct ph_event *e);
void xproc_on_child_died(struct tracer *t, const struct ph_event *e);
/* fork_held_lock or worker_died for the long wait lw (its snapshot lw->py, graph g or
 * NULL): true with d filled (d->xproc points into t's table until the next call). */
bool xproc_diagnose(struct tracer *t, const struct rec_long_wait *lw, const struct waitgraph *g,
		    const struct diag_waits *w, struct diagnosis *d);
/* diagnosis.fork or diagnosis.child (keys inside the diagnosis object); user/output/xproc_write.c. */
void xproc_write_json(struct jw *w, const struct diagnosis *d);
/* The fork site as a traceback, or the dead child, for the text block. */
void xproc_write_text(struct strbuf *sb, const struct diagnosis *d);
#endif
