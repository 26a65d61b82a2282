/* childwait: what a thread that waits for a child (wait4/waitid) waits for, across
 * processes, and the hangs that proves. Owns:
 *  - the `child` of a child wait's `waiting_for`: the awaited child (or every child, for a
 *    wait for any child): pid, comm, cmdline, state from /proc/C/stat (running, sleeping
 *    with the system call it sleeps in, stopped, zombie) and the child's own wait (a Python
 *    child: its blocked thread's `waiting_for` from its own wait-for graph; any child, or a
 *    descendant of it: a thread blocked writing to a pipe, with the pipe's facts from
 *    pipes.h);
 *  - the diagnoses `pipe_deadlock` (the child, or a descendant holding the same pipe, is
 *    blocked writing to a pipe whose only reader is the waiting process, none of whose
 *    threads reads or polls) and `child_hung` (the child has a proven hang of its own:
 *    deadlock, self_deadlock, orphaned_lock, all_threads_blocked);
 *  - the open child waits (long_wait reported, no wait_end yet), so that a child's hang
 *    found after its parent's long_wait still yields the parent's `child_hung`.
 * Everything from /proc and the child's memory is the child's to choose: counts are
 * bounded (CW_MAX_CHILDREN, CW_MAX_DESC processes, CW_MAX_TASKS threads each) and a fact
 * that cannot be read is unknown, never assumed. Syscall numbers: x86_64. */
#ifndef PH_CHILDWAIT_H
#define PH_CHILDWAIT_H
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "diagnose.h"
#include "json.h"
#include "pipes.h"
#include "pyreader.h"
#include "strbuf.h"
#include "waitgraph.h"

#define CW_MAX_CHILDREN 16 /* children described for a wait for any child */
#define CW_MAX_DESC 32     /* processes of a child's subtree searched for a pipe writer */
#define CW_MAX_TASKS 256   /* threads of one process looked at */
#define CW_ATTACH_MAX 32   /* child waits of one process described from /proc (dump) */
#define CW_ATTACH_FDS 65536 /* fd entries those read in all, to find pipe holders (dump) */
#define CW_OPEN_MAX 256    /* open child waits remembered */

struct hangtrack;

/* One child (or, for `writer`, the descendant that writes). */
struct cw_child {
	pid_t pid;
	char comm[16];
	char cmdline[256];        /* argv joined by spaces, "" unknown */
	const char *state;        /* "running", "sleeping", "stopped", "zombie", "gone" */
	long syscall_nr;          /* sleeping: the main thread's system call, -1 none/unknown */
	/* a thread of the child's subtree blocked writing to a pipe */
	bool writer;
	pid_t wr_pid, wr_tid;
	char wr_comm[16];
	int wr_fd;
	long wr_nr;
	uint64_t wr_switches;     /* its context switches (voluntary + not), UINT64_MAX unknown */
	struct pipe_facts pipe;
	bool pipe_read;           /* the holders and fill were read */
	/* a Python child: its threads and graph, and the thread whose wait is the child's */
	bool have_py;
	struct py_process py;
	struct waitgraph graph;
	bool have_graph;
	pid_t py_tid;             /* 0: none blocked */
	/* its own proven hang */
	bool hung;
	struct diagnosis hang;
};

struct cw_wait {
	pid_t pid, tid;           /* the waiting thread */
	int pid_arg;              /* the awaited pid as the waiter names it, -1 any child; for
				   * a pidfd the pid it names in our namespace, 0 unknown */
	int pidfd;                /* waitid(P_PIDFD): the waiter's pidfd; -1 otherwise */
	struct cw_child *children;
	size_t n;
	bool more;                /* more children than CW_MAX_CHILDREN */
	char phrase[640];         /* childwait_describe() of it, made once read (for writers
				   * that do not link the describer: pywrite_text.c) */
};

/* Facts of the child wait of thread tid of process pid, whose kernel record names uaddr
 * (a pid, PH_CHILD_ANY, or PH_CHILD_PIDFD | fd). ht: the tracer's open waits, to prove a
 * Python child's own hang (NULL: not proven). NULL when out of memory. Free with
 * childwait_free. */
struct cw_wait *childwait_read(struct py_reader *r, const struct hangtrack *ht, pid_t pid,
			       pid_t tid, uint64_t uaddr);
/* The same, the pipe holders' scans reading at most *fd_budget fd entries in all
 * (decremented; a scan it cuts is not complete; NULL: the scans' own bounds only). */
struct cw_wait *childwait_read_budget(struct py_reader *r, const struct hangtrack *ht, pid_t pid,
				      pid_t tid, uint64_t uaddr, size_t *fd_budget);
/* The child a thread's pidfd wait (uaddr PH_CHILD_PIDFD | fd) is on: the fd's process
 * (procscan.h proc_pidfd_pid), read only while the thread is in that very wait (its blocked
 * call checked before and after: fd numbers are reused at once). > 0 its pid in our
 * namespace; 0 unknown (the thread left the wait, the fd changed, unreadable). */
pid_t childwait_pidfd_child(pid_t pid, pid_t tid, uint64_t uaddr);
void childwait_free(struct cw_wait *cw);
struct cw_table;
/* pipe_deadlock or child_hung for the waiting thread (in p, its process's snapshot): d
 * filled (d->child set) and true when proven. A pipe deadlock takes two looks at least
 * tab->writer_still_ns apart (tab: the open waits, where the first look is kept; NULL:
 * never proven): the writer must not have run in between. */
bool childwait_diagnose(struct cw_wait *cw, const struct py_process *p, struct cw_table *tab,
			struct diagnosis *d);
/* The `child` value of `waiting_for`: {pid, comm, cmdline, state, syscall, waiting_for}
 * (with `pidfd` for a pidfd wait; {pid: null, state: "unknown", pidfd} when its child is
 * not known), or for a wait for any child {pid: -1, children: [...]}. */
void childwait_write_json(struct jw *w, const struct cw_wait *cw);
/* diagnosis.child of a pipe_deadlock or child_hung (a jw value): the child as in
 * childwait_write_json, with `tid`, `thread_name` and `stack` of its relevant thread and,
 * for child_hung, its own `diagnosis` {code, summary, waiter_tid, culprit_tids}. */
void childwait_write_diagnosis_child(struct jw *w, const struct diagnosis *d);
/* The child part of a hang's text block: the child, and its threads as tracebacks. */
void childwait_text(struct strbuf *sb, const struct cw_wait *cw, const struct diagnosis *d);
/* One line for people: "child pid 42 ('head'), which is blocked in write() to a full pipe". */
void childwait_describe(const struct cw_wait *cw, char *buf, size_t len);

struct blocked_syscall;
/* Whether the call a thread is blocked in (/proc/PID/task/TID/syscall, procscan.h) is a
 * blocking wait for a child (wait4/waitid without WNOHANG): then *op and *uaddr as the
 * kernel's record of it would hold them (PH_OP_CHILD_*: the awaited pid, PH_CHILD_ANY, or
 * PH_CHILD_PIDFD | fd; bpf/childwait.bpf.h). Argument order: wait4(pid, status, options,
 * rusage), waitid(idtype, id, infop, options, rusage) (x86_64, kernel/exit.c). */
bool childwait_from_syscall(const struct blocked_syscall *s, uint32_t *op, uint64_t *uaddr);
/* For a graph built without the kernel's records (dump): the child facts of the threads
 * of g that wait for a child (kind "child"), from their blocked calls, the first
 * CW_ATTACH_MAX of them (each costs a look at the children and their pipes); pid: g's
 * process. */
void childwait_attach_from_proc(struct waitgraph *g, struct py_reader *r, pid_t pid);
/* Whether a wait record's op is a wait for a child (PH_OP_CHILD_WAIT4/WAITID). */
bool childwait_is_op(uint32_t op);
/* Thread tid's wait-for facts in graph g (NULL: none, or g NULL). */
struct wf_info *childwait_waiter_info(const struct waitgraph *g, pid_t tid);

/* Open child waits. */
struct cw_open {
	pid_t pid, tid;
	uint64_t proc_start, uaddr, start_ns;
	uint32_t op;
	/* looked at again while nothing is proven (a child still running at the long_wait may
	 * block later): after 1 s, then doubling up to CW_RECHECK_MAX_NS */
	uint64_t next_ns;     /* CLOCK_MONOTONIC; UINT64_MAX: no more */
	uint32_t tries;
	/* the pipe writer seen at the last look: a writer that has not run since (the same
	 * context switch count) was blocked on the full pipe throughout, and nobody read it */
	pid_t wr_tid;
	uint64_t wr_ino, wr_switches, wr_seen_ns;
};
#define CW_WRITER_STILL_MIN_NS 1000000000ull /* a writer stays blocked at least this long */
#define CW_RECHECK_FIRST_NS 1000000000ull
#define CW_RECHECK_MAX_NS 30000000000ull
struct cw_table {
	struct cw_open open[CW_OPEN_MAX];
	/* how long a pipe writer must not have run (the tracer's threshold, at least
	 * CW_WRITER_STILL_MIN_NS; 0: that minimum) */
	uint64_t writer_still_ns;
};
void cw_table_open(struct cw_table *t, const struct cw_open *o);
void cw_table_close(struct cw_table *t, pid_t tid);
/* The next open wait due for a new look at now_ns (its schedule advanced), or NULL; *due_ms:
 * milliseconds until the next one (-1: none). */
const struct cw_open *cw_table_next_due(struct cw_table *t, uint64_t now_ns, int *due_ms);
/* Milliseconds until the next open wait is due (0: now; -1: none), in *due_ms. */
void cw_table_next_due_ms(const struct cw_table *t, uint64_t now_ns, int *due_ms);
/* No new look at tid's wait (it is part of a reported hang). */
void cw_table_settle(struct cw_table *t, pid_t tid);
/* The open waits that child (a host pid) may end: its parent's waits for it, for any
 * child, or on a pidfd naming it. Copied to out (at most max); their number. */
size_t cw_table_waiters_of(const struct cw_table *t, pid_t child, struct cw_open *out, size_t max);
/* Shared by the diagnoses (childwait_diag.c) and the writers (childwait_write.c): thread
 * tid of p (NULL: not in it), and a comm quoted for a sentence ('name', at most 15 bytes). */
static inline const struct py_thread *cw_thread_of(const struct py_process *p, pid_t tid)
{
	for (size_t i = 0; p && tid > 0 && i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return &p->threads[i];
	return NULL;
}

static inline void cw_comm_q(const char *comm, char *buf, size_t len)
{
	snprintf(buf, len, "'%.15s'", comm);
}
#endif
