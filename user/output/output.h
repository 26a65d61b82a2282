/* output: the tracer's output contract. Owns: the records the event loop hands over
 * (one struct per event kind), opening the destination (stdout or -o FILE, reopened on
 * SIGHUP), clock conversion to RFC 3339, and dispatch to the JSON Lines writer
 * (output_json.c) or the text writer for people (output_text.c), every record through the
 * output cap (outcap.h) on the way. Field names of the JSON
 * side are documented in README.md and are stable. */
#ifndef PH_OUTPUT_H
#define PH_OUTPUT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "pyhang.h"
#include "outcap.h"
#include "strbuf.h"

struct py_process; /* from pyreader.h: Python threads and stacks, when known */
struct cw_wait;    /* from childwait.h */
struct py_thread;

struct ev_proc {
	pid_t pid;
	pid_t tid;
	char comm[16];
	uint64_t mono_ns; /* when it happened, CLOCK_MONOTONIC */
	pid_t ns_pid;     /* pid inside its own pid namespace, -1 when in ours or unknown */
	char cgroup[256]; /* cgroup path, "" when unknown */
};

/* What the tracer watches (start): "scope". */
#define REC_SCOPES(X)                                                                               \
	X(REC_SCOPE_HOST, "host")                                                                   \
	X(REC_SCOPE_PIDS, "pids")                                                                   \
	X(REC_SCOPE_COMMAND, "command")
#define REC_SCOPE_CONSTANT(e, name) e,
enum rec_scope { REC_SCOPES(REC_SCOPE_CONSTANT) }; /* name table: rec_scope_name (output.c) */

struct rec_start {
	enum rec_scope scope;   /* the whole host, -p PIDS or -- COMMAND */
	const pid_t *pids;
	int npids;
	bool descendants;       /* their descendants are traced too (COMMAND; -p unless
				 * --no-children) */
	const char *command;    /* argv[0] of COMMAND or NULL */
	bool all_processes;
	double threshold_s;
	const char *scanner;    /* "perf_event" or "userspace" */
	double scan_period_s;
	uint32_t ringbuf_bytes; /* the kernel-to-userspace ring buffer's size */
};

/* The one list of what the tracer counts: it drives struct rec_stop, the stop event of both
 * writers (JSON "lost" and "counts", the text summary's LOST list) and the metrics
 * (pyhang_lost_events_total, pyhang_findings_total). Filled by tracer_stop_counts (trace.c).
 *
 * Events that could not be recorded, by reason: X(field, name in JSON and metrics, text). */
#define REC_LOSS_REASONS(X)                                                                         \
	X(ringbuf_drops, "ringbuf_full", "ring buffer full")            /* PH_STAT_RINGBUF_DROPS */ \
	X(waits_map_full, "waits_map_full", "wait table full")          /* PH_STAT_WAITS_FULL */    \
	X(map_full, "map_full", "other tables full")                    /* PH_STAT_MAP_FULL */      \
	X(exec_checks_dropped, "exec_check_queue_full", "exec check queue full") /* userspace */ \
	X(unread_at_stop, "unread_at_stop", "left unread at an overdue stop") /* userspace */
/* Events reported, by kind: X(field, name in JSON "counts" and the metrics' kind label). */
#define REC_EVENT_COUNTS(X)                                                                         \
	X(long_waits, "long_wait")                                                                  \
	X(wait_ends, "wait_end")                                                                    \
	X(sigchld_changes, "sigchld_ignored")                                                       \
	X(child_status_lost, "child_status_lost")                                                   \
	X(hangs, "hang")                                                                            \
	X(hang_ends, "hang_end")
#define REC_COUNT_FIELD(field, ...) uint64_t field;

/* Kinds passed from the event handlers to the writers, as enums with one name table each
 * (output.c): X(enum constant, the value JSON writes). */
/* How a wait ended (wait_end), and so the hang it belonged to (hang_end): "ended_by". */
#define REC_ENDED_BY(X)                                                                             \
	X(REC_END_RETURN, "return")                                                                 \
	X(REC_END_SIGNAL, "signal")                                                                 \
	X(REC_END_THREAD_EXIT, "thread_exit")                                                       \
	X(REC_END_PROCESS_EXIT, "process_exit")
/* Why a child's exit status was lost (child_status_lost): "cause". */
#define REC_LOST_CAUSES(X)                                                                          \
	X(REC_LOST_SIGCHLD_IGNORED, "sigchld_ignored")                                              \
	X(REC_LOST_REAPED_ELSEWHERE, "reaped_elsewhere")
/* What a SIGCHLD change did (sigchld_ignored): "action". */
#define REC_SIGCHLD_ACTIONS(X)                                                                      \
	X(REC_SIGCHLD_IGN, "SIG_IGN")                                                               \
	X(REC_SIGCHLD_NOCLDWAIT, "SA_NOCLDWAIT")                                                    \
	X(REC_SIGCHLD_RESTORED, "restored")
#define REC_ENUM_CONSTANT(e, name) e,
enum rec_ended_by { REC_ENDED_BY(REC_ENUM_CONSTANT) };
enum rec_lost_cause { REC_LOST_CAUSES(REC_ENUM_CONSTANT) };
enum rec_sigchld_action { REC_SIGCHLD_ACTIONS(REC_ENUM_CONSTANT) };
/* Their JSON values; "unknown" for a value out of range. */
const char *rec_ended_by_name(enum rec_ended_by v);
const char *rec_lost_cause_name(enum rec_lost_cause v);
const char *rec_sigchld_action_name(enum rec_sigchld_action v);
const char *rec_scope_name(enum rec_scope v);

struct rec_stop {
	uint64_t lost_events; /* the sum of the REC_LOSS_REASONS */
	REC_LOSS_REASONS(REC_COUNT_FIELD)
	REC_EVENT_COUNTS(REC_COUNT_FIELD)
	const uint64_t *suppressed; /* [PH_RL_KINDS]: held back by the rate limits */
	double duration_s;
	int command_exit; /* -1: no command */
};

struct rec_long_wait {
	struct ev_proc p;
	double waited_s;
	bool before_start;
	uint64_t futex_addr;
	uint32_t futex_op;
	bool gil;                    /* a (merged) chain of waits for the GIL */
	/* a chain of GIL waits looked at again: the GIL at earlier looks in the same chain
	 * and at this one (diag_waits.gil_before, gil_before_blocked, gil_now), or NULL */
	const struct gil_look *gil_before, *gil_before_blocked, *gil_now;
	const struct py_process *py; /* every thread of the process, or NULL */
	const char *py_error;        /* why py is NULL */
	void *tracer;                /* the tracer (for the event handlers' own use) */
	bool covered;                /* the thread is part of a hang reported and not over */
	bool io;                     /* an I/O wait found by sampling (iosample.h): no futex */
	/* a wait for a child whose thread was not found waiting in py (the process exited, or
	 * the wait ended, before it was read): the child's facts from the kernel's record and
	 * /proc, for the top-level waiting_for; NULL otherwise */
	const struct cw_wait *child_wait;
	/* > 0: the long_wait of this thread, written just before from the same read of the
	 * process (py), carried every thread: this one carries only its waiter and the chain
	 * of holders (outcap_focus) and says where the rest is (`threads_same_as_tid`) */
	pid_t threads_same_as;
};

struct rec_wait_end {
	struct ev_proc p;
	double waited_s;
	bool before_start;
	uint64_t futex_addr;  /* a wait for a child (futex_op PH_OP_CHILD_*): the awaited pid */
	uint32_t futex_op;
	enum rec_ended_by ended_by;
	int signal;           /* REC_END_SIGNAL: the signal whose handler ran; -1 unknown */
	int exit_signal;      /* REC_END_PROCESS_EXIT: the signal that killed the process, else -1 */
	int exit_status;      /* REC_END_PROCESS_EXIT: its exit status when it exited, else -1 */
	bool io;              /* the end of an I/O wait (iosample.h): no futex */
};

struct rec_sigchld {
	struct ev_proc p;
	enum rec_sigchld_action action;
	bool before_start;
	bool inherited;     /* ignored since its exec: the parent ignored SIGCHLD */
	const char *inherited_from_comm; /* inherited: the program that ignored it, or NULL */
	pid_t inherited_from_pid;        /* and its pid (0: unknown) */
	const struct py_thread *stack; /* taken in the kernel at the rt_sigaction, or NULL */
	const char *stack_status;      /* "ok", "unknown_layout", ... NULL when not applicable */
};

struct rec_child_lost {
	struct ev_proc p;
	enum rec_lost_cause cause;
	pid_t child_pid;    /* host pid when known, else the pid the waiter used */
	pid_t child_ns_pid; /* the pid the waiter knows it by, when that differs; else -1 */
	char child_comm[16];
	bool child_known;
	int exit_status; /* -1: unknown or killed by a signal */
	int signal;      /* -1: none */
	bool core_dumped;
	pid_t reaper_tid;
	double reaped_s_before; /* how long before the failing wait the child was taken */
	const char *syscall; /* "wait4" or "waitid" */
	const char *child_cmdline;      /* argv joined by spaces, or NULL */
	const struct py_thread *stack;  /* the failing wait's Python stack, or NULL */
	const char *stack_status;
	const struct py_thread *reaper_stack; /* where the status was taken, or NULL */
	const char *reaper_name;        /* Python thread name of the reaper, or NULL */
	const char *summary;            /* the cause in one sentence */
	const struct py_thread *ignore_stack; /* where SIGCHLD became ignored, or NULL */
	uint64_t ignore_mono_ns;        /* when (0: unknown) */
};

/* A process's events held back by its rate limits since its last such report. */
struct rec_suppressed {
	struct ev_proc p;
	uint64_t since_mono_ns; /* the first one held back */
	uint64_t counts[PH_RL_KINDS]; /* by enum ph_rl_kind (ratelimit_kind_name) */
	double rate_per_s;
	uint32_t burst;
};

struct diagnosis;

struct rec_hang {
	struct ev_proc p;                 /* tid: the thread that waits */
	const struct diagnosis *diag;
	const struct py_process *py;      /* every thread */
};

/* A reported hang is over: one of its threads moved again, or its process ended. */
struct rec_hang_end {
	struct ev_proc p;                 /* tid: the thread that moved (0: the process ended) */
	const char *code;                 /* the hang's diagnosis.code */
	enum rec_ended_by ended_by;       /* never REC_END_SIGNAL */
	double duration_s;                /* from the earliest wait of the hang until now */
	double reported_s_ago;            /* since the hang event */
};

struct output;

struct output_ops {
	void (*start)(struct output *o, const struct rec_start *r);
	void (*stop)(struct output *o, const struct rec_stop *r);
	void (*long_wait)(struct output *o, const struct rec_long_wait *r);
	void (*wait_end)(struct output *o, const struct rec_wait_end *r);
	void (*sigchld)(struct output *o, const struct rec_sigchld *r);
	void (*child_lost)(struct output *o, const struct rec_child_lost *r);
	void (*hang)(struct output *o, const struct rec_hang *r);
	void (*suppressed)(struct output *o, const struct rec_suppressed *r);
	void (*hang_end)(struct output *o, const struct rec_hang_end *r);
};

struct output {
	/* What the tracer calls: output_dispatch_ops, which writes each record through
	 * `writer` within the output cap (OUTCAP_WRITE: again at tighter caps until it fits). */
	const struct output_ops *ops;
	const struct output_ops *writer; /* the format: output_json_ops or output_text_ops */
	FILE *f;
	char *path; /* NULL: stdout */
	bool color;
	int64_t mono_to_real_ns; /* add to CLOCK_MONOTONIC to get CLOCK_REALTIME */
	struct strbuf sb;
	bool write_failed;
	bool line_open;   /* a write stopped mid-record: the next record starts a new line */
	uint64_t records_dropped; /* did not fit even without stacks (out of memory) */
	struct outcap cap; /* the record being written (outcap.c) */
};

/* The one table callers use (o->ops): each record through o->writer, capped. */
extern const struct output_ops output_dispatch_ops;
/* The writers (o->writer): one record each, as the current cap level allows. */
extern const struct output_ops output_json_ops;
struct jw;
/* Writes key "diagnosis" and its object {code, summary, waiter_tid, culprit_tids, and for a
 * deadlock with py given: cycle}, as the `hang` event has it (README: Output contract); also the
 * guard's `hang_timeout` record. */
void output_json_diagnosis(struct jw *w, const struct diagnosis *d, const struct py_process *py);
extern const struct output_ops output_text_ops;

int output_open(struct output *o, const char *path, bool json, char *err, size_t errlen);
/* Reopen -o FILE (log rotation); a no-op for stdout. */
int output_reopen(struct output *o);
void output_close(struct output *o);
/* Write o->sb out as one record. */
void output_emit(struct output *o);

/* "2026-11-22T06:40:00.123Z" for a CLOCK_MONOTONIC time; buf needs 32 bytes. */
void output_format_time(const struct output *o, uint64_t mono_ns, char *buf, size_t len);
/* "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME", "futex_waitv", ... */
void futex_op_name(uint32_t op, char *buf, size_t len);
uint64_t mono_now_ns(void);
/* Set by the tracer (tracer_stop_overdue): when it returns true, writes to a reader that
 * does not read give up rather than block the stop (output.c write_all). NULL: never. */
extern bool (*output_stop_overdue)(void);
#endif
