/* tracer: state of one tracing session, shared by the command line (cli.c, trace.c), the
 * event handlers (events.c, snapshot.c, hanggate.c, execcheck.c) and the start-up scan
 * (startscan.c). */
#ifndef PH_TRACER_H
#define PH_TRACER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loader.h"
#include "output.h"
#include "pending.h"
#include "pyreader.h"
#include "recheck.h"
#include "sigchld_state.h"

#define MAX_PIDS 64
#define MAX_EXEC_CHECKS 1024

/* Work on a process some time after its exec:
 *  CHECK_EMBEDDED: it exec'd something not named python*: look at its maps again, since an
 *    embedding program maps libpython only after the dynamic loader ran;
 *  CHECK_DESCRIBE: it runs Python: read it until the interpreter is initialized, then
 *    describe it to the BPF stack walker. Retried with growing delays. */
enum check_kind { CHECK_EMBEDDED, CHECK_DESCRIBE };
struct exec_check {
	pid_t pid;
	uint64_t proc_start; /* the process meant (pid may be reused); 0: whichever has pid */
	uint64_t due_ns;
	int attempt;
	enum check_kind kind;
	uint32_t uid_plus1; /* the process's user + 1, 0 unknown (fairqueue.c) */
};

struct tracer {
	/* settings */
	uint64_t threshold_ns;
	bool all_processes;
	bool no_children; /* --no-children: -p covers the listed processes only */
	bool report_idle; /* --report-idle: idle I/O waits (iowait_idle.c) get long_waits too */
	bool host_wide;
	pid_t pids[MAX_PIDS];
	int npids;
	char **command; /* NULL-terminated argv, or NULL */
	double duration_s; /* 0: until interrupted */
	struct guard *guard;  /* guard.c: --hang-timeout; NULL when off */
	bool annotate_github; /* annotate.c: GitHub Actions annotations of findings */

	/* runtime */
	struct loader *ld;
	struct output out;
	struct py_reader *reader;
	struct pending pending;
	struct disp_table disp; /* SIGCHLD disposition of each process (sigchld_state.c) */
	/* the last snapshot of every thread of one process, shared by the long waits that the
	 * same scan reports together (a pool of idle threads crossing the threshold at once) */
	struct py_process snap;
	bool snap_valid;
	struct waitgraph *graph;  /* of snap, built for long waits (waitgraph.h), or NULL */
	uint64_t graph_cost_ns;   /* CPU spent building graphs, all of them */
	uint64_t snap_ns;
	pid_t snap_full_tid;      /* the long_wait that wrote every thread of snap (0: none yet) */
	uint64_t started_ns;
	pid_t child;
	int child_status; /* raw waitpid status once the command ended */
	bool child_done;
	pid_t *targets; /* processes found at start-up, scanned once after `start` */
	size_t ntargets, targets_cap;
	struct exec_check checks[MAX_EXEC_CHECKS];
	int nchecks;
	uint64_t dropped_checks;
	uint64_t unread_at_stop; /* records and scans left undone at an overdue stop */
	uint32_t exec_uid_plus1; /* user + 1 of the exec being handled, 0 otherwise */

	/* counts for the summary */
	uint64_t n_long_waits, n_wait_ends, n_sigchld, n_child_lost, n_hangs;
	uint64_t n_suppressed[PH_RL_KINDS], n_suppressed_reports; /* rate limits (ratelimit.c) */
	/* hangs already reported: (pid, code, culprit set) fingerprints, oldest overwritten */
	uint64_t hang_seen[256];
	unsigned hang_seen_next;
	/* open long waits and open hangs, for proofs and hang_end (hangtrack.h); lazily made */
	struct hangtrack *ht;
	struct xproc *xp; /* forks and children's deaths (xproc.h), NULL until the first */
	struct recheck rc; /* long waits to look at again (recheck.h) */
	uint64_t n_hang_ends;
	struct iosample *ios; /* iosample.h: long I/O waits, sampled from /proc; NULL off */
	struct cw_table *cw; /* open waits for children (childwait.h); lazily made */
};

/* trace.c: the counts of REC_LOSS_REASONS and REC_EVENT_COUNTS (output.h) so far, and
 * lost_events, their sum; the kernel's loss counters stay as they are in r (0 from the
 * caller) when they cannot be read. For the stop event and the metrics. */
void tracer_stop_counts(struct tracer *t, struct rec_stop *r);

/* trace.c: true once a stop was asked for (SIGINT/SIGTERM) more than STOP_GRACE_NS ago:
 * from then on the work still queued (ring-buffer records, a batch of long waits, the
 * start-up scan) is left undone and counted (`unread_at_stop`), so the tracer ends within
 * a few seconds whatever the host holds. The grace covers a COMMAND's 2 s to finish. */
#define STOP_GRACE_NS 3000000000ull
bool tracer_stop_overdue(void);

/* events.c */
int tracer_handle_event(void *arg, const void *data, size_t size);
/* Handle the long waits tracer_handle_event holds back (a scan's batch); call after each
 * read of the ring buffer. */
void tracer_flush_events(struct tracer *t);
/* Free what the event handlers keep between events. */
void tracer_events_cleanup(struct tracer *t);
/* childwait.c glue in events.c: open waits for children looked at again (a child that
 * blocks later); ms until the next is due, -1 none. */
int tracer_recheck_child_waits(struct tracer *t);
/* The open waits of child's parent for it (or for any child) evaluated again: the child's
 * hang proven after its parent's long_wait makes that wait a child_hung. */
void tracer_recheck_waiters_of(struct tracer *t, pid_t child);
/* execcheck.c: run due exec re-checks; returns ms until the next one is due, or -1 if none. */
int tracer_run_exec_checks(struct tracer *t);
/* Second looks at long waits that were not a proven hang (recheck.h); milliseconds until
 * the next is due, -1 when none. */
int tracer_recheck_waits(struct tracer *t);

/* startscan.c: register processes of interest in the kernel (before `start`), then report
 * what was already going on in them (after `start`). */
int tracer_register_processes(struct tracer *t);
void tracer_scan_existing(struct tracer *t);
/* Report what is already going on in one process that just became of interest (SIGCHLD
 * ignored, threads already blocked) and describe it to the BPF stack walker. */
void tracer_scan_process(struct tracer *t, pid_t pid);
/* Describe pid to the BPF stack walker now (execcheck.c), if it is still the process whose
 * start time is proc_start (0: whichever); 0 or -1. */
int tracer_describe(struct tracer *t, pid_t pid, uint64_t proc_start);
/* Queue a CHECK_DESCRIBE for pid (execcheck.c). */
void tracer_schedule_describe(struct tracer *t, pid_t pid, uint64_t proc_start);
/* How often the userspace samplers look at a watched process (the I/O waits of
 * iosample.c, the asyncio loops of asyncio_watch.c): half the threshold, at least every
 * 2 s and at most every 0.25 s. Nanoseconds. */
static inline uint64_t tracer_sample_period_ns(const struct tracer *t)
{
	uint64_t p = t->threshold_ns / 2;
	if (p < 250000000ull)
		p = 250000000ull;
	if (p > 2000000000ull)
		p = 2000000000ull;
	return p;
}

#endif
