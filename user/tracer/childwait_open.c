/* childwait_open: the open child waits (see childwait.h: struct cw_table): waits for a
 * child reported as long_wait and not ended yet, kept so that a child's hang found after
 * its parent's long_wait still yields the parent's `child_hung`, and looked at again on a
 * schedule (after CW_RECHECK_FIRST_NS, then doubling up to CW_RECHECK_MAX_NS) while
 * nothing is proven. */
#include "childwait.h"

#include <string.h>

#include "output.h"
#include "procscan.h"
#include "pyhang.h"

void cw_table_open(struct cw_table *t, const struct cw_open *in)
{
	struct cw_open *free_slot = NULL, o = *in;
	o.next_ns = mono_now_ns() + CW_RECHECK_FIRST_NS;
	o.tries = 0;
	for (size_t i = 0; i < CW_OPEN_MAX; i++) {
		if (t->open[i].tid == o.tid) {
			if (t->open[i].pid == o.pid && t->open[i].start_ns == o.start_ns &&
			    t->open[i].uaddr == o.uaddr)
				return; /* the same wait, looked at again: its schedule stands */
			t->open[i] = o;
			return;
		}
		if (!free_slot && !t->open[i].tid)
			free_slot = &t->open[i];
	}
	if (free_slot)
		*free_slot = o; /* full: not remembered (a later child_hung is missed, never false) */
}

void cw_table_close(struct cw_table *t, pid_t tid)
{
	for (size_t i = 0; i < CW_OPEN_MAX; i++)
		if (t->open[i].tid == tid)
			memset(&t->open[i], 0, sizeof(t->open[i]));
}

const struct cw_open *cw_table_next_due(struct cw_table *t, uint64_t now_ns, int *due_ms)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < CW_OPEN_MAX; i++) {
		struct cw_open *o = &t->open[i];
		if (!o->tid || o->next_ns == UINT64_MAX)
			continue;
		if (o->next_ns <= now_ns) {
			uint64_t gap = CW_RECHECK_FIRST_NS << (o->tries < 5 ? o->tries + 1 : 5);
			o->next_ns = now_ns + (gap < CW_RECHECK_MAX_NS ? gap : CW_RECHECK_MAX_NS);
			o->tries++;
			*due_ms = 0;
			return o;
		}
		if (o->next_ns < next)
			next = o->next_ns;
	}
	*due_ms = next == UINT64_MAX ? -1 : (int)((next - now_ns) / 1000000ull) + 1;
	return NULL;
}

void cw_table_next_due_ms(const struct cw_table *t, uint64_t now_ns, int *due_ms)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < CW_OPEN_MAX; i++)
		if (t->open[i].tid && t->open[i].next_ns < next)
			next = t->open[i].next_ns;
	*due_ms = next == UINT64_MAX ? -1 : next <= now_ns ? 0 :
		  (int)((next - now_ns) / 1000000ull) + 1;
}

void cw_table_settle(struct cw_table *t, pid_t tid)
{
	for (size_t i = 0; i < CW_OPEN_MAX; i++)
		if (t->open[i].tid == tid)
			t->open[i].next_ns = UINT64_MAX;
}

size_t cw_table_waiters_of(const struct cw_table *t, pid_t child, struct cw_open *out, size_t max)
{
	pid_t ppid = proc_parent(child);
	size_t n = 0;
	if (ppid <= 0)
		return 0;
	pid_t ns = proc_ns_pid(child);
	for (size_t i = 0; i < CW_OPEN_MAX && n < max; i++) {
		const struct cw_open *o = &t->open[i];
		if (!o->tid || o->pid != ppid)
			continue;
		if (o->uaddr == PH_CHILD_ANY || o->uaddr == (uint64_t)child ||
		    (ns > 0 && o->uaddr == (uint64_t)ns) ||
		    (PH_CHILD_IS_PIDFD(o->uaddr) && childwait_pidfd_child(o->pid, o->tid, o->uaddr) == child))
			out[n++] = *o;
	}
	return n;
}
