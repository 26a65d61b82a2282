/* snapshot: the process snapshot shared by the event handlers (see snapshot.h). */
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>

#include "asyncio_write.h"
#include "procmem.h"
#include "pyreader.h"
#include "tracer.h"
#include "waitgraph.h"

/* Whether pid is (still) the process whose identity is proc_start (see PH_NS_PER_TICK):
 * not exited, and its pid not taken by a new process. proc_start 0: not known, assumed. */
bool same_process(pid_t pid, uint64_t proc_start)
{
	uint64_t now;
	return !proc_start || (pm_start_time(pid, &now) == 0 && now == proc_start);
}

#define SNAPSHOT_REUSE_NS 500000000ull

void drop_snapshot(struct tracer *t)
{
	if (t->graph) {
		waitgraph_free(t->graph);
		free(t->graph);
		t->graph = NULL;
	}
	if (t->snap_valid)
		py_process_free(&t->snap);
	t->snap_valid = false;
	t->snap_full_tid = 0;
}

void snapshot_write_long_wait(struct tracer *t, struct rec_long_wait *r)
{
	bool shared = r->py && t->snap_valid && r->py == &t->snap;
	if (shared && t->snap_full_tid > 0 && t->snap_full_tid != r->p.tid)
		r->threads_same_as = t->snap_full_tid;
	t->n_long_waits++;
	t->out.ops->long_wait(&t->out, r);
	if (shared && !t->snap_full_tid)
		t->snap_full_tid = r->p.tid;
}

/* The wait-for graph of the current snapshot, built once per snapshot (NULL: none). */
struct waitgraph *snapshot_graph(struct tracer *t)
{
	if (!t->snap_valid)
		return NULL;
	if (!t->graph) {
		t->graph = calloc(1, sizeof(*t->graph));
		if (t->graph && waitgraph_build(t->graph, t->reader, &t->snap) != 0) {
			free(t->graph);
			t->graph = NULL;
		}
		if (t->graph)
			t->graph_cost_ns += t->graph->cost_ns;
	}
	return t->graph;
}

static bool any_frames(const struct py_process *p)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].nframes > 0)
			return true;
	return false;
}

/* Every thread of process (pid, proc_start), read at most once per SNAPSHOT_REUSE_NS. NULL
 * with err on failure, or when pid now belongs to another process (proc_start 0: any). */
const struct py_process *snapshot(struct tracer *t, pid_t pid, uint64_t proc_start,
					 char *err, size_t errlen)
{
	uint64_t now = mono_now_ns();
	if (t->snap_valid && t->snap.pid == pid && now - t->snap_ns < SNAPSHOT_REUSE_NS &&
	    (!proc_start || t->snap.start_time == proc_start))
		return &t->snap;
	drop_snapshot(t);
	if (!same_process(pid, proc_start)) {
		snprintf(err, errlen, "process %d exited", (int)pid);
		return NULL;
	}
	if (py_read_process(t->reader, pid, &t->snap, err, errlen) != 0)
		return NULL;
	if (proc_start && t->snap.start_time != proc_start && same_process(pid, proc_start)) {
		/* the reader's entry for this pid was an earlier process's (pids wrap fast under
		 * fork churn): read it afresh */
		py_process_free(&t->snap);
		py_forget_process(t->reader, pid);
		if (py_read_process(t->reader, pid, &t->snap, err, errlen) != 0)
			return NULL;
	}
	if (proc_start && t->snap.start_time != proc_start) {
		/* it exited and its pid was reused between the look above and the read */
		py_process_free(&t->snap);
		snprintf(err, errlen, "process %d exited", (int)pid);
		return NULL;
	}
	if (!any_frames(&t->snap)) {
		/* what the reader cached may come from before the interpreter was set up */
		py_process_free(&t->snap);
		py_forget_process(t->reader, pid);
		if (py_read_process(t->reader, pid, &t->snap, err, errlen) != 0)
			return NULL;
	}
	t->snap_valid = true;
	t->snap_ns = now;
	struct aio_view av; /* its asyncio loops and tasks, written with the snapshot */
	aio_read(t->reader, &t->snap, (double)t->threshold_ns / 1e9, &av);
	aio_publish(&av, AIO_EVENT_JSON_BUDGET);
	return &t->snap;
}
