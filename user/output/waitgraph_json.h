/* waitgraph_json: the wait-for graph of a process (tracer/waitgraph.h) as JSON.
 * Owns: each thread's `waiting_for` {kind, object, name, holder {tid, name, since},
 * holder_exited, timeout_s} and `holds` [{kind, object, name, since}], and a deadlock's
 * `diagnosis.cycle`. Field names are the output contract (README, "What a thread waits
 * for, and who holds the lock"). */
#ifndef PH_WAITGRAPH_JSON_H
#define PH_WAITGRAPH_JSON_H
#include "diagnose.h"
#include "json.h"
#include "pyreader.h"
#include "waitgraph.h"

/* `waiting_for` {kind, object, name, holder, timeout_s} of a thread (jw value). */
void waitgraph_write_waiting_for(struct jw *w, const struct wf_info *f);
/* The diagnosis.cycle array (jw value) of a deadlock: culprits in cycle order, each with
 * the lock it holds (where taken) and the lock it waits for (where), from p's threads'
 * wf (attached by waitgraph_build). */
void waitgraph_write_cycle(struct jw *w, const struct py_process *p, const struct diagnosis *d);
/* py_thread_json_hook (pywrite.h) while a graph is attached: a thread's `waiting_for`
 * (when it waits) and `holds` keys. */
void waitgraph_json_hook(struct jw *w, const struct py_thread *t);
#endif
