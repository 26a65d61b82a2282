/* outcap: output records that fit, whatever the traced process holds. Owns: the caps on
 * what one event may carry (threads, frames per stack, bytes: --max-threads, --max-frames,
 * --max-event-bytes), the capped views of a process's threads and stacks that the writers
 * write instead of the originals (the cut marked where it is: a thread's `truncated` and
 * `error`, the process's `thread_list_error`), and the retry that writes an event again
 * with tighter caps when it did not fit in its byte budget. Bytes are never cut: a record
 * is whole or written again smaller.
 *
 * Levels: level 0 writes at most limits.max_threads threads and limits.max_frames frames
 * per stack; each next level halves the frames (from the deepest stack of the record, so
 * no level is wasted), down to none, then halves the threads,
 * down to none. At the last level an event holds no stack at all, and its other fields
 * are bounded (every string read from a target is at most PY_MAX_STR characters), so it
 * fits in the smallest budget (64 KiB). */
#ifndef PH_OUTCAP_H
#define PH_OUTCAP_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct output;
struct py_process;
struct py_thread;

#define OUTCAP_MAX_BLOCKS 16

/* Views made for the event being written (freed by outcap_end). */
struct outcap {
	unsigned level;
	bool overflow; /* the record passed the budget: write it again at the next level */
	void *blocks[OUTCAP_MAX_BLOCKS];
	unsigned nblocks;
	size_t deepest; /* the most frames of a stack seen in this record (the halving starts there) */
};

/* p as the current level allows: p itself when it fits, else a view (threads and frames
 * cut, and marked). Never NULL for a non-NULL p. */
const struct py_process *outcap_process(struct output *o, const struct py_process *p);
/* The waiter tid, then the chain of holders it waits for (each holder's own holder, from
 * the threads' `wf` of the wait-for graph), at most max tids into out; returns how many. */
#define OUTCAP_FOCUS_MAX 16
size_t outcap_holder_chain(const struct py_process *p, pid_t tid, pid_t *out, size_t max);
/* A long_wait whose process read was already written in full by the long_wait of thread
 * same_as (> 0): a view of p with only tid and its chain of holders, the others counted in
 * `thread_list_error` (so N waits found in one read cost N small records, not N times
 * every thread). same_as <= 0: p itself. Never NULL for a non-NULL p. */
const struct py_process *outcap_focus(struct output *o, const struct py_process *p, pid_t tid,
				      pid_t same_as);
/* One stack, likewise; *cut set when frames were left out (may be NULL). */
const struct py_thread *outcap_thread(struct output *o, const struct py_thread *t, bool *cut);

/* Called by output_emit when the record passed the budget: true when it will be written
 * again at a tighter level (the caller drops it), false at the last level. */
bool outcap_overflowed(struct output *o);
/* Around one record: output.c's dispatch (output_dispatch_ops) calls the writer until it fits. */
void outcap_begin(struct output *o);
bool outcap_again(struct output *o); /* after one attempt: true to write again */
void outcap_end(struct output *o);

/* Write one record through ops member fn, retrying at tighter caps until it fits. */
#define OUTCAP_WRITE(o, fn, r)                   \
	do {                                     \
		outcap_begin(o);                 \
		do                               \
			fn(o, r);                \
		while (outcap_again(o));         \
		outcap_end(o);                   \
	} while (0)
#endif
