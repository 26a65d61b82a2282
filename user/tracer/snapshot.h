/* snapshot: the one process snapshot the event handlers share. Owns: reading every thread
 * of a process (pyreader.h) at most once per SNAPSHOT_REUSE_NS for all the events about
 * it, re-reading once when the cached read found no frames (a reader cache from before
 * the interpreter was set up), its wait-for graph (built once per snapshot), and telling
 * whether a pid still names the same process (proc_start, see PH_NS_PER_TICK). */
#ifndef PH_SNAPSHOT_H
#define PH_SNAPSHOT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tracer;
struct py_process;
struct waitgraph;

bool same_process(pid_t pid, uint64_t proc_start);

/* Frees the snapshot and its graph, if any. */
void drop_snapshot(struct tracer *t);

/* The wait-for graph of the current snapshot, built once per snapshot (NULL: none). */
struct waitgraph *snapshot_graph(struct tracer *t);

/* Every thread of process (pid, proc_start), read at most once per SNAPSHOT_REUSE_NS. NULL
 * with err on failure, or when pid now belongs to another process (proc_start 0: any). */
const struct py_process *snapshot(struct tracer *t, pid_t pid, uint64_t proc_start,
				  char *err, size_t errlen);

struct rec_long_wait;
/* Writes long_wait r (and counts it). The first long_wait written from a snapshot carries
 * every thread of the process; the next ones from the same snapshot (a pool of 1,000 idle
 * threads passing the threshold in one scan) get r->threads_same_as set to that first
 * waiter, so their records carry only their own chain (output.h): the output of one read
 * grows with the number of waits, not with waits x threads. */
void snapshot_write_long_wait(struct tracer *t, struct rec_long_wait *r);
#endif
