/* diagnose: names the cause of a hang from a snapshot of every Python thread.
 * Owns: recognizing interpreter shutdown waiting for non-daemon threads (every version's
 * shape), all threads blocked on locks, and a single long lock wait; the one-sentence
 * summary that names the culprit thread, where it is blocked and how to fix it. Never
 * claims a deadlock without proven lock ownership. */
#ifndef PH_DIAGNOSE_H
#define PH_DIAGNOSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyreader.h"

#define DIAG_MAX_CULPRITS 16

struct cw_wait;
struct xp_facts;

/* What a hang is, X(enum constant, the code JSON and text print): diagnose.c and
 * waitgraph.c produce them (the last three: asyncio_diag.c); diag_code_name is their one
 * name table. */
#define DIAG_CODES(X)                                                                               \
	X(DIAG_SHUTDOWN_JOIN, "shutdown_join")                                                      \
	X(DIAG_ALL_THREADS_BLOCKED, "all_threads_blocked")                                          \
	X(DIAG_GIL_WAIT, "gil_wait")                                                                \
	X(DIAG_LONG_WAIT, "long_wait")                                                              \
	X(DIAG_SELF_DEADLOCK, "self_deadlock")                                                      \
	X(DIAG_DEADLOCK, "deadlock")                                                                \
	X(DIAG_ORPHANED_LOCK, "orphaned_lock")                                                      \
	X(DIAG_EVENT_LOOP_BLOCKED, "event_loop_blocked")                                            \
	X(DIAG_EVENT_LOOP_SELF_WAIT, "event_loop_self_wait")                                        \
	X(DIAG_AWAIT_CYCLE, "await_cycle")                                                          \
	X(DIAG_PIPE_DEADLOCK, "pipe_deadlock")                                                      \
	X(DIAG_CHILD_HUNG, "child_hung")                                                            \
	X(DIAG_FORK_HELD_LOCK, "fork_held_lock")                                                    \
	X(DIAG_WORKER_DIED, "worker_died")                                                          \
	X(DIAG_PIPE_OWN_WRITER, "pipe_own_writer")
#define DIAG_CODE_CONSTANT(e, name) e,
enum diag_code { DIAG_CODES(DIAG_CODE_CONSTANT) };
/* "deadlock", ...; "unknown" for a value out of range. */
const char *diag_code_name(enum diag_code c);

struct diagnosis {
	enum diag_code code;
	char summary[1024];  /* one sentence (or two: cause, then fix) */
	pid_t culprits[DIAG_MAX_CULPRITS]; /* threads that block progress, most relevant first */
	size_t nculprits;
	pid_t waiter;        /* the thread that waits for them */
	/* pipe_deadlock, child_hung (childwait.h): the child wait, and which of its children */
	const struct cw_wait *child;
	size_t child_index;
	const struct xp_facts *xproc; /* fork_held_lock, worker_died: facts of other processes
				       * (xproc.h), NULL otherwise */
};

/* The GIL as one read of a process saw it, for one waiter: the thread other than the
 * waiter that held it (0: none identified), the GIL's switch count and when it was read
 * (py_process), and, read from /proc by the tracer (hang_gil_look), the holder's state
 * (/proc/PID/task/TID/stat field 3; 0 unknown) and CPU time (schedstat). */
struct gil_look {
	pid_t holder;
	bool switches_known;
	uint64_t switches;
	uint64_t at_ns; /* CLOCK_MONOTONIC */
	char holder_state;
	bool holder_run_known;
	uint64_t holder_run_ns;
};

/* CPU time a holder must have had between two looks, while it kept the GIL, to prove a
 * long call: 20 times CPython's default switch interval (5 ms, sys.getswitchinterval(),
 * 3.2-3.13), after which a running holder drops the GIL when a waiter asks for it. */
#define GIL_HOLDER_RAN_NS 100000000ull

/* What the snapshot does not tell: whether thread tid has been in one futex wait on uaddr
 * for at least the threshold (a long_wait reported, no wait_end since). */
struct diag_waits {
	bool (*long_blocked)(void *arg, pid_t tid, uint64_t uaddr);
	void *arg;
	/* A wait for the GIL on 3.x: gil_now, the GIL at this read; gil_before, the earliest
	 * earlier look that later ones did not contradict (diagnose_gil_supersedes), while the
	 * waiter's chain of GIL waits (the same one, by its start in the kernel) went on;
	 * gil_before_blocked, the earliest such look since which every look found the holder
	 * blocked (diagnose_gil_keep); NULL: none. gil_need_s: the span the two looks must
	 * cover (the threshold; 1 s at least). */
	const struct gil_look *gil_before, *gil_before_blocked, *gil_now;
	double gil_need_s;
};

/* Whether two looks at the GIL say the same: holder, and switch count (known in both). */
bool diagnose_gil_same(const struct gil_look *a, const struct gil_look *b);
/* Whether a new look replaces the kept one as the start of a proof: the kept one cannot
 * start one (no holder, no switch count), or the new one contradicts it (another holder,
 * another count). A look that only lacks a fact leaves the kept one. */
bool diagnose_gil_supersedes(const struct gil_look *kept, const struct gil_look *now);
/* The looks to keep after look now (not a proof): *kept as diagnose_gil_supersedes says;
 * *kept_blocked the earliest uncontradicted look since which the holder was blocked at
 * every look (zeroed when now finds it not blocked). */
void diagnose_gil_keep(struct gil_look *kept, struct gil_look *kept_blocked,
		       const struct gil_look *now);

/* The GIL in p as waiter sees it: holder, switch count and its time (the /proc facts are
 * left unknown: hang_gil_look adds them). */
void diagnose_gil_look(const struct py_process *p, pid_t waiter, struct gil_look *out);

/* Whether thread t cannot move by itself: an untimed wait on a process-private futex (the
 * FUTEX_PRIVATE_FLAG of its op: only a thread of the same process can wake it, futex(2))
 * that w says has lasted the threshold and is still open. */
bool diagnose_proven_stuck(const struct py_thread *t, const struct diag_waits *w);
/* Whether every thread of the process is, provably, in an untimed wait on a
 * process-private futex that has lasted at least the threshold: the whole thread list was
 * read and matches /proc/PID/task, every thread's tid is known, none waits for the GIL, sleeps,
 * polls, does I/O, waits for a child or has a timeout. Nothing inside the process can then
 * wake any of them (a signal handler aside). */
bool diagnose_all_threads_blocked(const struct py_process *p, const struct diag_waits *w);

/* Diagnose the process: waiter_tid is the thread whose long wait triggered this.
 * Returns true when a hang is proven (shutdown_join, all_threads_blocked, gil_wait: see
 * gil_wait_proven in diagnose.c); a wait that is not proven to be a hang gives false (it
 * stays a long_wait event). */
bool diagnose_process(const struct py_process *p, pid_t waiter_tid, double waited_s,
		      bool gil_wait, const struct diag_waits *w, struct diagnosis *out);
/* Where a thread is blocked, for people: "Queue.get() at horse_whisperer.py:61". */
void diagnose_blocked_where(const struct py_thread *t, char *buf, size_t len);
/* Where in the program a captured stack is: "deploy_helper.py:12 (imported at jobs.py:40)"
 * for module-level code run by an import, else "jobs.py:40 in run_jobs()". */
void diagnose_program_location(const struct py_thread *t, char *buf, size_t len);
/* The innermost frame outside the standard library (where the program waits; site-packages
 * count as the program), or the innermost frame; NULL for a thread without frames. */
const struct py_frame *diagnose_program_frame(const struct py_thread *t);

struct child_lost_facts {
	bool reaped_elsewhere;
	const char *child_comm;     /* NULL: unknown */
	int child_pid;
	int exit_status, signal;    /* -1: none/unknown */
	const struct py_thread *waiter_stack;   /* the wait that got ECHILD, or NULL */
	const struct py_thread *ignore_stack;   /* where SIGCHLD became ignored, or NULL */
	bool ignored_before_start;
	bool ignored_inherited;
	bool ignored_unwatched;            /* set while its sigaction calls were not watched */
	const char *inherited_from_comm;   /* ignored_inherited: the program that ignored it */
	int inherited_from_pid;
	const struct py_thread *reaper_stack;   /* reaped_elsewhere: where it was taken */
	const char *reaper_name;
	int reaper_tid;
};
/* One sentence naming why a child's exit status was lost, and what the program saw. */
void diagnose_child_lost(const struct child_lost_facts *f, char *buf, size_t len);
#endif
