/* xproc: hangs caused in another process (see xproc.h). This file: the tables of forks
 * and deaths the kernel recorded, the helpers the diagnoses share (xproc_int.h), and the
 * order they are tried in. The diagnoses: xproc_fork.c (fork_held_lock), xproc_died.c
 * (worker_died); their JSON and text: user/output/xproc_write.c. */
#include "xproc.h"
#include "xproc_int.h"

#include "pystack.h"
#include "tracer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xproc *xproc_new(void)
{
	return calloc(1, sizeof(struct xproc));
}

static void fork_clear(struct xp_fork *f)
{
	if (f->used && f->have_stack)
		pending_release(&f->stack);
	memset(f, 0, sizeof(*f));
}

void xproc_free(struct xproc *x)
{
	if (!x)
		return;
	for (unsigned i = 0; i < XP_MAX_FORKS; i++)
		fork_clear(&x->forks[i]);
	free(x);
}

struct xproc *xp_of(struct tracer *t)
{
	if (!t->xp)
		t->xp = xproc_new();
	return t->xp;
}

void xproc_on_fork(struct tracer *t, const struct ph_event *e)
{
	struct xproc *x = xp_of(t);
	struct captured_stack cs = { 0 };
	bool have = pending_take_stack(&t->pending, (pid_t)e->pid, e->proc_start, (pid_t)e->tid,
				       PH_EV_FORK, e->stack_ts, &cs);
	if (!x) {
		if (have)
			pending_release(&cs);
		return;
	}
	struct xp_fork *f = &x->forks[x->next_fork++ % XP_MAX_FORKS];
	fork_clear(f);
	f->used = true;
	f->child = (pid_t)e->fork.child_pid;
	f->child_start = e->fork.child_start;
	f->parent = (pid_t)e->pid;
	f->parent_start = e->proc_start;
	f->forker_tid = (pid_t)e->tid;
	f->fork_ns = e->ts_ns;
	f->parent_threads = e->fork.parent_threads;
	memcpy(f->parent_comm, e->comm, sizeof(f->parent_comm));
	f->parent_comm[sizeof(f->parent_comm) - 1] = '\0';
	/* fork.bpf.h sends no stack (stack_ts 0) for a parent not described to the kernel yet */
	f->stack_status = have ? pystack_status_str(cs.status) :
			  e->stack_ts == 0 ? "unknown_layout" : "not_captured";
	if (have && cs.status == PH_STACK_OK) {
		f->stack = cs;
		f->have_stack = true;
	} else if (have || cs.used) {
		pending_release(&cs);
	}
}

void xproc_on_child_died(struct tracer *t, const struct ph_event *e)
{
	struct xproc *x = xp_of(t);
	if (!x)
		return;
	struct xp_death *d = &x->deaths[x->next_death++ % XP_MAX_DEATHS];
	memset(d, 0, sizeof(*d));
	d->used = true;
	d->parent = (pid_t)e->pid;
	d->parent_start = e->proc_start;
	d->child = (pid_t)e->died.child_pid;
	d->ns_pid = (pid_t)e->died.child_ns_pid;
	d->child_start = e->died.child_start;
	d->ns = e->ts_ns;
	d->exit_code = e->died.exit_code;
	d->oom = e->died.oom != 0;
	memcpy(d->comm, e->died.child_comm, sizeof(d->comm));
	d->comm[sizeof(d->comm) - 1] = '\0';
}

/* ---- helpers (xproc_int.h) ---------------------------------------------------------- */

const struct py_thread *xp_thread_of(const struct py_process *p, pid_t tid)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return &p->threads[i];
	return NULL;
}

void xp_who(const struct py_thread *t, char *buf, size_t len)
{
	if (t->name)
		snprintf(buf, len, "'%.100s' (tid %d)", t->name, (int)t->tid);
	else
		snprintf(buf, len, "thread %d", (int)t->tid);
}

void xp_set_summary(struct diagnosis *d, const char *buf)
{
	size_t n = strnlen(buf, sizeof(d->summary) - 1);
	memcpy(d->summary, buf, n);
	d->summary[n] = '\0';
}

bool xproc_diagnose(struct tracer *t, const struct rec_long_wait *lw, const struct waitgraph *g,
		    const struct diag_waits *w, struct diagnosis *d)
{
	if (!lw->py || lw->gil || !xp_of(t)) /* a fork before tracing needs no record */
		return false;
	memset(d, 0, sizeof(*d));
	if (xp_fork_held_lock(t, lw, g, w, d))
		return true;
	memset(d, 0, sizeof(*d));
	if (xp_worker_died(t, lw, w, d))
		return true;
	memset(d, 0, sizeof(*d));
	return false;
}
