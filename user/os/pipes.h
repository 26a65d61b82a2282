/* pipes: facts about the pipes of watched processes, from /proc only (no ptrace, no read
 * of their memory). Public: F1's pipe deadlock (user/childwait.c) and the I/O resources'
 * `blocked_on.peer` use it.
 * Owns: telling whether a process's fd is a pipe (/proc/PID/fd/N reads "pipe:[INODE]") and
 * which end (O_ACCMODE of the "flags:" line of /proc/PID/fdinfo/N), how many bytes are
 * queued in it and its capacity, and which processes hold its read and write ends.
 * Hostile targets: fd numbers and link texts come from the target; nothing is followed
 * outside /proc, and the pipe itself is opened only to ask FIONREAD and F_GETPIPE_SZ: first
 * O_PATH (no open of the file, no FIFO wait), checked to be a FIFO on pipefs with the inode
 * the link named, then reopened through /proc/self/fd with O_RDONLY|O_NONBLOCK|O_NOCTTY (opening a
 * FIFO's read side with O_NONBLOCK never blocks, pipe(7)). Every scan is bounded
 * (PIPE_MAX_PROCS processes, PIPE_MAX_FDS fds each, PIPE_MAX_HOLDERS kept); a scan cut by
 * a bound or an unreadable fd table says so (`complete` false), and then nothing can be
 * proven from "nobody else holds it". Kernel facts: fs/pipe.c and fs/proc/fd.c, stable
 * since 2.6.22 (fdinfo) / 2.6.35 (F_GETPIPE_SZ). */
#ifndef PH_PIPES_H
#define PH_PIPES_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"

#define PIPE_MAX_PROCS 32768  /* processes looked at by one holders scan */
#define PIPE_MAX_FDS 4096     /* fds of one process looked at */
#define PIPE_MAX_HOLDERS 16   /* holders kept (counted beyond) */

/* One process's hold on a pipe (its first fd of it; both flags when it holds both ends). */
struct pipe_holder {
	pid_t pid;
	int fd;             /* the lowest fd of it seen */
	bool read_end, write_end;
	char comm[16];
};

struct pipe_facts {
	uint64_t ino;       /* pipefs inode number, 0: unknown */
	long queued;        /* bytes in the pipe (FIONREAD), -1 unknown */
	long capacity;      /* its size (F_GETPIPE_SZ), -1 unknown */
	struct pipe_holder holders[PIPE_MAX_HOLDERS];
	size_t nholders;    /* kept */
	size_t nreaders, nwriters; /* processes holding each end (all of them, kept or not) */
	bool complete;      /* every process of the host looked at, nothing cut or unreadable */
	bool cut;           /* a bound or an unreadable fd table cut the look at some process */
	size_t looked;      /* pipe_holders_among: processes whose fd tables were read */
};

/* Whether fd of process pid is a pipe: 1 (its inode in *ino; *read_end / *write_end from
 * its open mode, either may be NULL), 0 not a pipe, -1 unreadable (gone, no access). */
int pipe_fd(pid_t pid, int fd, uint64_t *ino, bool *read_end, bool *write_end);
/* Bytes queued and capacity of the pipe that fd of pid is, checked to be inode ino. 0, or
 * -1 (f->queued / f->capacity stay -1) when it cannot be had without risk. */
int pipe_fill(pid_t pid, int fd, uint64_t ino, struct pipe_facts *f);
/* Every process of the host holding pipe ino (a /proc scan, bounded): f->holders, counts
 * and complete; f->ino set. pids (n of them) are looked at first (the likely holders),
 * then the rest of /proc unless only_these. 0, or -1 (out of /proc). */
int pipe_holders(uint64_t ino, const pid_t *pids, size_t n, bool only_these, struct pipe_facts *f);
/* The same with at most *fd_budget fd entries read in all (decremented; NULL: none): a scan
 * cut by it is not complete. */
int pipe_holders_budget(uint64_t ino, const pid_t *pids, size_t n, bool only_these, size_t *fd_budget,
			struct pipe_facts *f);
/* Holders of pipe ino among pids only (n of them), each process's fd table read up to
 * max_fds entries, and at most *fd_budget entries in all (decremented; NULL: no budget).
 * f->complete is false (only these were looked at); f->cut says whether a bound or an
 * unreadable table cut the look at them. 0. */
int pipe_holders_among(uint64_t ino, const pid_t *pids, size_t n, size_t max_fds, size_t *fd_budget,
		       struct pipe_facts *f);
/* The JSON object {inode, queued_bytes, capacity_bytes, readers: [{pid, comm, fd}],
 * writers: [...], holders_complete} (a jw value). */
void pipe_write_json(struct jw *w, const struct pipe_facts *f);
#endif
