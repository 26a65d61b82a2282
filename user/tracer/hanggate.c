/* hanggate: from proven diagnoses to hang and hang_end records (see hanggate.h). */
#include "hanggate.h"

#include <stdio.h>
#include <string.h>

#include "annotate.h"
#include "asyncio_diag.h"
#include "asyncio_write.h"
#include "childwait.h"
#include "diagnose.h"
#include "guard.h"
#include "hangtrack.h"
#include "taskdone.h"
#include "procscan.h"
#include "tracer.h"
#include "waitgraph.h"
#include "xproc.h"

/* FNV-1a over what identifies a hang, so the same one is reported once. */
static uint64_t hang_fingerprint(pid_t pid, const struct diagnosis *d)
{
	uint64_t h = 1469598103934665603ull;
	const uint64_t prime = 1099511628211ull;
	h = (h ^ (uint64_t)pid) * prime;
	for (const char *c = diag_code_name(d->code); *c; c++)
		h = (h ^ (unsigned char)*c) * prime;
	/* the same cycle or shutdown is seen from each of its blocked threads: one finding */
	if (d->code == DIAG_GIL_WAIT || d->code == DIAG_LONG_WAIT)
		h = (h ^ (uint64_t)d->waiter) * prime;
	for (size_t i = 0; i < d->nculprits; i++)
		h = (h ^ (uint64_t)d->culprits[i]) * prime;
	return h;
}

static bool hang_seen_before(struct tracer *t, uint64_t fp)
{
	for (unsigned i = 0; i < sizeof(t->hang_seen) / sizeof(t->hang_seen[0]); i++)
		if (t->hang_seen[i] == fp)
			return true;
	t->hang_seen[t->hang_seen_next++ % (sizeof(t->hang_seen) / sizeof(t->hang_seen[0]))] = fp;
	return false;
}

/* Remember a reported hang, for its hang_end. */
static void track_hang(struct tracer *t, const struct rec_long_wait *lw, const struct diagnosis *d,
		       uint64_t fp)
{
	struct ht_hang g = { .pid = lw->p.pid, .reported_ns = lw->p.mono_ns, .fingerprint = fp };
	g.code = d->code;
	g.since_ns = lw->p.mono_ns;
	if (d->waiter > 0)
		g.tids[g.ntids++] = d->waiter;
	for (size_t i = 0; i < d->nculprits && g.ntids < HT_MAX_HANG_TIDS; i++)
		if (d->culprits[i] != d->waiter)
			g.tids[g.ntids++] = d->culprits[i];
	for (size_t i = 0; i < g.ntids; i++) {
		const struct py_thread *th = NULL;
		for (size_t k = 0; k < lw->py->nthreads; k++)
			if (lw->py->threads[k].tid == g.tids[i])
				th = &lw->py->threads[k];
		uint64_t start;
		if (th && ht_wait_is_open(t->ht, g.pid, th->tid, th->futex_addr, &start) &&
		    start < g.since_ns)
			g.since_ns = start;
	}
	ht_hang_add(t->ht, &g);
}

void hang_gil_look(const struct py_process *p, pid_t waiter, struct gil_look *out)
{
	struct proc_stat st;
	diagnose_gil_look(p, waiter, out);
	if (!out->holder)
		return;
	if (proc_stat_read(p->pid, out->holder, &st) == 0)
		out->holder_state = st.state;
	out->holder_run_known = proc_run_ns(p->pid, out->holder, &out->holder_run_ns) == 0;
}

/* A finding, only when proven: shutdown waiting for threads, every thread blocked for
 * good, a GIL held too long. Anything else stays a long_wait. */
bool maybe_report_hang(struct tracer *t, const struct rec_long_wait *lw)
{
	struct diagnosis d = { 0 }; /* a rule sets only what it proves (child: NULL) */
	struct ht_pid open_waits = { t->ht, lw->p.pid };
	struct diag_waits w = { ht_pid_wait_is_open, &open_waits, lw->gil_before,
				lw->gil_before_blocked, lw->gil_now, (double)t->threshold_ns / 1e9 };
	const struct waitgraph *g = t->graph && t->graph->p == lw->py ? t->graph : NULL;
	/* causes in another process first: a wait for a child, what the child does
	 * (childwait.h); a forked child, a dead worker (xproc.h): they would look like this
	 * one's own */
	struct wf_info *cf = childwait_is_op(lw->futex_op) ? childwait_waiter_info(g, lw->p.tid) : NULL;
	if (!(cf && cf->child && childwait_diagnose(cf->child, lw->py, t->cw, &d)) &&
	    !xproc_diagnose(t, lw, g, &w, &d) &&
	    !aio_diagnose_self_wait(aio_published(lw->py->pid, lw->py->start_time), lw->p.tid, &d) &&
	    !(g && waitgraph_diagnose(g, lw->p.tid, &w, &d)) &&
	    !diagnose_process(lw->py, lw->p.tid, lw->waited_s, lw->gil, &w, &d))
		return false;
	/* a process being torn down (killed: its waits end with it) is not hung */
	if (proc_dying(lw->p.pid))
		return false;
	if (d.code == DIAG_ALL_THREADS_BLOCKED)
		taskdone_explain(t->reader, lw->py, &d);
	guard_note_hang(t, lw); /* before the de-duplication: a new wait restarts its clock */
	uint64_t fp = hang_fingerprint(lw->p.pid, &d);
	if (hang_seen_before(t, fp))
		return true;
	struct rec_hang r = { .p = lw->p, .diag = &d, .py = lw->py };
	t->n_hangs++;
	t->out.ops->hang(&t->out, &r);
	annotate_hang(t, &r);
	track_hang(t, lw, &d, fp);
	/* a parent already waiting for this process now waits for a hung child */
	if (!d.child)
		tracer_recheck_waiters_of(t, lw->p.pid);
	return true;
}

/* The hang that thread tid (0: the whole process) belonged to is over: say so once. The
 * same hang (pid, code, threads) coming back is not reported again (no flapping alerts). */
void end_hang(struct tracer *t, pid_t pid, pid_t tid, uint64_t now_ns, enum rec_ended_by why,
		     const struct ev_proc *p)
{
	struct ht_hang g;
	while (ht_hang_take(t->ht, pid, tid, &g)) {
		struct rec_hang_end r = { .p = *p, .code = diag_code_name(g.code), .ended_by = why,
					  .duration_s = seconds_between(g.since_ns, now_ns),
					  .reported_s_ago = seconds_between(g.reported_ns, now_ns) };
		r.p.tid = tid ? tid : pid;
		t->n_hang_ends++;
		t->out.ops->hang_end(&t->out, &r);
	}
}
