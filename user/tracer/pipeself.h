/* pipeself: the `pipe_own_writer` hang: a process reads a pipe whose write end only it
 * holds, and no thread of it can ever write to it or close it.
 * Proof (all of it, at the time the I/O sampler reports the read's long_wait, i.e. the
 * thread has not run for the threshold): the thread is in read()/readv()/pread64()/preadv()
 * and every other thread of the process is stuck (diagnose_proven_stuck: an untimed wait on
 * a process-private futex, open for the threshold, which only a thread of the process could
 * end; none of them is in the read, so none can), or it is the only thread; the Python
 * thread list and /proc/PID/task agree (no thread outside Python); the read is on the read end of
 * an anonymous pipe (fddesc.h); among its relatives only the process itself holds the write
 * end (fdpipe.c), and a complete scan of every process of the host (pipes.c
 * pipe_holders(), nothing cut or unreadable) finds no other holder of it; the pipe is
 * empty (FIONREAD 0). Then nothing inside the process can write or close it (its threads
 * are in the read or stuck), and no other process holds it: the read never returns, unless a signal
 * handler writes or closes it, or something outside takes the fd (/proc/PID/fd/N,
 * pidfd_getfd: root or ptrace rights). The host scan is the cost: 65,536 fd entries at
 * most (more: not complete, not proven), 10 scans in a row and then one per 5 s,
 * tracer-wide (a wait not proven because of them stays a long_wait). */
#ifndef PH_PIPESELF_H
#define PH_PIPESELF_H
#include <stdbool.h>
#include <sys/types.h>

#include "diagnose.h"

/* After its first 10 host scans, the tracer makes one more per this long (ns). */
#define PIPESELF_SCAN_EVERY_NS (5ull * 1000000000ull)
#include "iowait.h"
#include "pyreader.h"

/* Whether thread tid of pid (p: a snapshot just read, io: its I/O wait as described) is in
 * a pipe_own_writer hang: 1 (d filled), 0 not proven, -1 not looked at now (the host scans'
 * rate limit: ask again later). w: the tracer's open long waits of pid (NULL: only a
 * one-thread process can be proven). */
int pipeself_diagnose(pid_t pid, const struct py_process *p, pid_t tid, const struct io_wait *io,
		       const struct diag_waits *w, struct diagnosis *d);
#endif
