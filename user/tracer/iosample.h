/* iosample: finds threads of watched Python processes stuck in one blocking I/O call
 * (recv, read, poll, connect, accept, flock, ... : iowait.h io_is_wait_call) longer than
 * the threshold, and reports each as a `long_wait` (waiting_for.kind "I/O", with the
 * resource) and, when it ends, a `wait_end`. Never a `hang` by itself.
 * How, within the cost budget: no BPF program on the hot I/O system calls; userspace
 * samples /proc/PID/task/TID/syscall of the Python processes the tracer has described,
 * every threshold/2 (250 ms to 2 s). A thread is in the SAME call when two samples show
 * the same call and arguments and its run time (/proc/PID/task/TID/schedstat, first field)
 * has not grown in between: it has not run at all. Its start is estimated from the
 * scheduler (iowait.h io_blocked_for_ns). Bounded: IOS_READS_PER_S task reads a second
 * (per pass: that times the period, at least IOS_MIN_PASS_READS) over all processes, a
 * quarter of a pass per process, round robin over processes and over
 * each process's threads (fair: a process with 10,000 threads delays nobody else's
 * sampling); IOS_MAX_THREADS threads tracked. PYHANG_NO_IO_SAMPLE=1 in the environment
 * turns it off (for the benchmark). */
#ifndef PH_IOSAMPLE_H
#define PH_IOSAMPLE_H
#include <stdint.h>
#include <sys/types.h>

#include "output.h"

#define IOS_READS_PER_S 200   /* about 40 us each: under 1% of a core, whatever -t is */
#define IOS_MIN_PASS_READS 64
#define IOS_MAX_PROCS 4096
#define IOS_MAX_THREADS 4096

struct tracer;
struct iosample;

/* NULL when turned off (PYHANG_NO_IO_SAMPLE) or out of memory. */
struct iosample *ios_new(void);
void ios_free(struct iosample *s);
/* A described Python process (pid with its start time) to sample. */
void ios_watch(struct iosample *s, pid_t pid, uint64_t proc_start);
/* The process exited (why REC_END_PROCESS_EXIT) or exec'd (REC_END_THREAD_EXIT: its threads are gone
 * but the process lives on): end its reported waits with a wait_end and forget it (an exec
 * of Python is watched again once described). */
void ios_forget(struct tracer *t, pid_t pid, enum rec_ended_by why, uint64_t mono_ns);
/* Run a pass when due; ms until the next one (-1: off). */
int ios_tick(struct tracer *t);
/* Totals for the benchmark: passes, task reads, CPU ns spent in passes. */
void ios_stats(const struct iosample *s, uint64_t *passes, uint64_t *reads, uint64_t *cpu_ns);
/* With PYHANG_IO_SAMPLE_STATS=1 in the environment: those totals as one line on stderr
 * ("pyhang-trace: io sampler: passes=N reads=N cpu_ms=X reports=N report_cpu_ms=X": the
 * CPU of writing the long_waits is part of cpu_ms), for tests/bench. */
void ios_report_stats(const struct iosample *s);
#endif
