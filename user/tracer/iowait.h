/* iowait: the resource behind a thread's blocking system call, read from /proc when a
 * snapshot is taken (never from a hook on the call itself).
 * Owns: which x86_64 system calls are blocking I/O waits (reads, writes, socket calls,
 * poll/select/epoll, flock and fcntl lock waits), the file descriptor(s) each waits on
 * (described by fddesc.h; poll's and select's from the target's memory, epoll's from
 * /proc/PID/fdinfo), the call's own timeout from its arguments (/proc/PID/task/TID/syscall
 * and the struct timespec/timeval it points to), whether Python set no timeout (a socket
 * call blocked with no poll in front: CPython's socket timeouts poll first, Modules/
 * socketmodule.c sock_call_ex, 2.7 and 3.x), and how long the thread has been in the call
 * (an estimate: since it last ran, from se.exec_start). JSON and a phrase for people.
 * Bounded: IO_MAX_FDS fds described per call, fd sets of at most 1024 fds read. */
#ifndef PH_IOWAIT_H
#define PH_IOWAIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fddesc.h"
#include "json.h"

struct py_reader;
struct py_thread;

#define IO_MAX_FDS 8

enum io_timeout { IO_TIMEOUT_NONE, IO_TIMEOUT_SET, IO_TIMEOUT_UNKNOWN };

struct io_wait {
	long nr;                  /* x86_64 system call number */
	const char *syscall;      /* its name (static), never NULL for an I/O call */
	bool fd_call;             /* a call on one fd: `on` describes it */
	struct fd_desc on;
	bool multi;               /* poll/select/epoll: fds[] */
	int nfds;                 /* described in fds[] */
	int nfds_total;           /* waited on in all (-1 unknown) */
	struct fd_desc fds[IO_MAX_FDS];
	enum io_timeout timeout;
	double timeout_s;         /* with IO_TIMEOUT_SET: the call's own timeout, seconds */
	bool no_timeout_set;      /* a socket call blocked without a poll in front and no
				   * SO_RCVTIMEO/SO_SNDTIMEO: Python set no timeout */
	double in_call_s;         /* how long in the call (estimate, see above), < 0 unknown */
	/* an idle wait, provably a wait for new work (iowait_idle.c): NULL, or "listening"
	 * (accept() on a listening socket; poll/select/epoll on listening sockets only) or
	 * "event_loop" (an asyncio loop idle in its selector, waiting on its self-pipe and
	 * listening sockets only) */
	const char *idle;
};

/* Whether system call nr with these arguments is a blocking I/O wait this file describes
 * (poll with a zero timeout, select without fd sets (a sleep), flock with LOCK_NB and
 * fcntl other than F_SETLKW/F_OFD_SETLKW are not). */
bool io_is_wait_call(long nr, const uint64_t args[6]);

/* How long thread tid of pid has been off the CPU, in ns (se.exec_start against its last
 * CPU's scheduler clock): the time since it last ran, so for a thread blocked in one call
 * the time it has been in it, at most. 0 with *ns, or -1. */
int io_blocked_for_ns(pid_t pid, pid_t tid, uint64_t *ns);

/* Describe the call thread t of pid is blocked in, as /proc/PID/task/TID/syscall shows it
 * now (it must still be t->syscall_nr). c: the process's fd tables (one per snapshot); r:
 * the reader holding pid, for reading poll/select arguments (NULL: not read). 0, or -1 when
 * it is not (any more) an I/O wait. */
int io_describe(struct fd_ctx *c, struct py_reader *r, pid_t pid, const struct py_thread *t,
		struct io_wait *out);

struct aio_view;
/* Mark io (described for thread t) idle when it provably waits for new work only (see
 * iowait_idle.c for the rules); v: the asyncio view of the same process read with the
 * snapshot (NULL: none). Sets io->idle, or leaves it NULL. */
void io_classify_idle(struct io_wait *io, const struct py_thread *t, const struct aio_view *v);

/* The thread's fields (jw keys, in an open object): "blocked_on" {fd, type, local,
 * remote, peer, state, path, lock_holder} for a call on one fd, or "waits_on" [...] for
 * poll/select/epoll (and "waits_on_total"), "syscall_timeout_s" (number, null: none,
 * "unknown"), "no_timeout_set", "in_syscall_s", "in_syscall_estimated" (true), "idle"
 * (bool) and "idle_reason" (io->idle or null). */
void io_write_fields(struct jw *w, const struct io_wait *io);
/* "recvfrom() on TCP 127.0.0.1:50000 -> 127.0.0.1:4431 (ESTABLISHED)" */
void io_phrase(const struct io_wait *io, char *buf, size_t len);
/* " with no timeout set", " with a timeout of 5.0 s", "", then for an idle wait
 * " (idle: waits for new connections)" / " (idle: the event loop waits for work)" */
void io_timeout_phrase(const struct io_wait *io, char *buf, size_t len);
#endif
