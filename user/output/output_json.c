/* output_json: the JSON Lines writer. One object per line; every object has "event" and
 * "time"; events about a process have "pid", "tid" and "comm". Names are stable (README). */
#include <string.h>

#include "diagnose.h"
#include "json.h"
#include "output.h"
#include "pyreader.h"
#include "pywrite.h"
#include "ratelimit.h"
#include "waitgraph_json.h"
#include "childwait.h"
#include "xproc.h"

static void begin_event(struct output *o, struct jw *w, const char *event, uint64_t mono_ns)
{
	char ts[40];
	jw_init(w, &o->sb);
	jw_obj_begin(w);
	jw_kstr(w, "event", event);
	output_format_time(o, mono_ns, ts, sizeof(ts));
	jw_kstr(w, "time", ts);
}

static void proc_fields(struct jw *w, const struct ev_proc *p)
{
	jw_kint(w, "pid", p->pid);
	jw_kint(w, "tid", p->tid);
	jw_key(w, "comm");
	jw_strn(w, p->comm, strnlen(p->comm, sizeof(p->comm)));
	if (p->ns_pid > 0)
		jw_kint(w, "ns_pid", p->ns_pid);
	if (p->cgroup[0]) {
		jw_key(w, "cgroup");
		jw_strn(w, p->cgroup, strnlen(p->cgroup, sizeof(p->cgroup)));
	}
}

static void end_event(struct output *o, struct jw *w)
{
	jw_obj_end(w);
	sb_putc(&o->sb, '\n');
	output_emit(o);
}

/* A stack as the contract has it: frames innermost first, {function, file, line, ...}. */
static void json_stack(struct output *o, struct jw *w, const char *key, const struct py_thread *t)
{
	bool cut;
	t = outcap_thread(o, t, &cut);
	jw_key(w, key);
	py_write_stack_json(w, t);
	if (cut) /* outer frames left out to fit (outcap.c) */
		jw_kstr(w, "stack_truncated", t->error);
}

static void json_stack_fields(struct output *o, struct jw *w, const struct py_thread *stack,
			      const char *status)
{
	if (status)
		jw_kstr(w, "stack_status", status);
	if (stack)
		json_stack(o, w, "stack", stack);
}

static void json_start(struct output *o, const struct rec_start *r)
{
	struct jw w;
	begin_event(o, &w, "start", mono_now_ns());
	jw_kstr(&w, "scope", rec_scope_name(r->scope));
	jw_kbool(&w, "descendants", r->descendants);
	if (r->npids) {
		jw_key(&w, "pids");
		jw_arr_begin(&w);
		for (int i = 0; i < r->npids; i++)
			jw_int(&w, r->pids[i]);
		jw_arr_end(&w);
	}
	if (r->command)
		jw_kstr(&w, "command", r->command);
	jw_kbool(&w, "all_processes", r->all_processes);
	jw_kdouble(&w, "threshold_s", r->threshold_s, 3);
	jw_kstr(&w, "scanner", r->scanner);
	jw_kdouble(&w, "scan_period_s", r->scan_period_s, 3);
	jw_kint(&w, "ringbuf_bytes", (long long)r->ringbuf_bytes);
	end_event(o, &w);
}

static void json_stop(struct output *o, const struct rec_stop *r)
{
	struct jw w;
	begin_event(o, &w, "stop", mono_now_ns());
	jw_kint(&w, "lost_events", (long long)r->lost_events);
	jw_key(&w, "lost");
	jw_obj_begin(&w);
#define LOSS(field, name, text) jw_kint(&w, name, (long long)r->field);
	REC_LOSS_REASONS(LOSS)
#undef LOSS
	jw_obj_end(&w);
	jw_key(&w, "counts");
	jw_obj_begin(&w);
#define COUNT(field, name) jw_kint(&w, name, (long long)r->field);
	REC_EVENT_COUNTS(COUNT)
#undef COUNT
	jw_obj_end(&w);
	if (r->suppressed) {
		jw_key(&w, "suppressed");
		jw_obj_begin(&w);
		for (unsigned k = 0; k < PH_RL_KINDS; k++)
			jw_kint(&w, ratelimit_kind_name(k), (long long)r->suppressed[k]);
		jw_obj_end(&w);
	}
	jw_kdouble(&w, "duration_s", r->duration_s, 3);
	if (r->command_exit >= 0)
		jw_kint(&w, "command_exit_status", r->command_exit);
	end_event(o, &w);
}

static void futex_object(struct jw *w, uint64_t addr, uint32_t op)
{
	char name[64];
	jw_key(w, "futex");
	jw_obj_begin(w);
	jw_key(w, "addr");
	jw_hex(w, addr);
	futex_op_name(op, name, sizeof(name));
	jw_kstr(w, "op", name);
	jw_obj_end(w);
}

static void json_long_wait(struct output *o, const struct rec_long_wait *r)
{
	struct jw w;
	begin_event(o, &w, "long_wait", r->p.mono_ns);
	proc_fields(&w, &r->p);
	jw_kdouble(&w, "waited_s", r->waited_s, 3);
	jw_kbool(&w, "before_start", r->before_start);
	jw_kbool(&w, "gil", r->gil);
	if (r->futex_op == PH_OP_CHILD_WAIT4 || r->futex_op == PH_OP_CHILD_WAITID) {
		/* a wait for a child: no futex; the call, and the child in waiting_for */
		char name[16];
		futex_op_name(r->futex_op, name, sizeof(name));
		jw_key(&w, "futex");
		jw_null(&w);
		jw_kstr(&w, "syscall", name);
	} else if (r->io) {
		jw_key(&w, "futex"), jw_null(&w); /* an I/O wait: see waiting_for */
	} else {
		futex_object(&w, r->futex_addr, r->futex_op);
	}
	if (r->child_wait) {
		jw_key(&w, "waiting_for");
		jw_obj_begin(&w);
		jw_kstr(&w, "kind", "child");
		jw_kstr(&w, "object", NULL);
		jw_kstr(&w, "name", NULL);
		jw_kstr(&w, "holder", NULL);
		jw_key(&w, "child");
		childwait_write_json(&w, r->child_wait);
		jw_kstr(&w, "timeout_s", NULL);
		jw_obj_end(&w);
	}
	if (r->py) {
		for (size_t i = 0; i < r->py->nthreads && !r->child_wait; i++)
			if (r->py->threads[i].tid == r->p.tid && r->py->threads[i].wf &&
			    r->py->threads[i].wf->kind) {
				jw_key(&w, "waiting_for");
				waitgraph_write_waiting_for(&w, r->py->threads[i].wf);
			}
		jw_kstr(&w, "python", r->py->version);
		if (r->threads_same_as > 0)
			jw_kint(&w, "threads_same_as_tid", r->threads_same_as);
		py_write_threads_fields(&w, outcap_process(o, outcap_focus(o, r->py, r->p.tid,
									   r->threads_same_as)));
	} else if (r->py_error) {
		jw_kstr(&w, "threads_error", r->py_error);
	}
	end_event(o, &w);
}

static void json_wait_end(struct output *o, const struct rec_wait_end *r)
{
	struct jw w;
	begin_event(o, &w, "wait_end", r->p.mono_ns);
	proc_fields(&w, &r->p);
	jw_kdouble(&w, "waited_s", r->waited_s, 3);
	jw_kbool(&w, "before_start", r->before_start);
	jw_kstr(&w, "ended_by", rec_ended_by_name(r->ended_by));
	if (r->signal > 0)
		jw_kint(&w, "signal", r->signal);
	if (r->exit_signal > 0)
		jw_kint(&w, "exit_signal", r->exit_signal);
	if (r->exit_status >= 0)
		jw_kint(&w, "exit_status", r->exit_status);
	end_event(o, &w);
}

static void json_sigchld(struct output *o, const struct rec_sigchld *r)
{
	struct jw w;
	begin_event(o, &w, "sigchld_ignored", r->p.mono_ns);
	proc_fields(&w, &r->p);
	jw_kstr(&w, "action", rec_sigchld_action_name(r->action));
	jw_kbool(&w, "before_start", r->before_start);
	if (r->inherited)
		jw_kbool(&w, "inherited", true);
	if (r->inherited_from_comm) {
		jw_key(&w, "inherited_from");
		jw_obj_begin(&w);
		jw_kstr(&w, "comm", r->inherited_from_comm);
		if (r->inherited_from_pid > 0)
			jw_kint(&w, "pid", r->inherited_from_pid);
		jw_obj_end(&w);
	}
	json_stack_fields(o, &w, r->stack, r->stack_status);
	end_event(o, &w);
}

static void int_or_null(struct jw *w, const char *key, int v)
{
	jw_key(w, key);
	if (v < 0)
		jw_null(w);
	else
		jw_int(w, v);
}

static void json_child_lost(struct output *o, const struct rec_child_lost *r)
{
	struct jw w;
	begin_event(o, &w, "child_status_lost", r->p.mono_ns);
	proc_fields(&w, &r->p);
	jw_kstr(&w, "cause", rec_lost_cause_name(r->cause));
	if (r->summary)
		jw_kstr(&w, "summary", r->summary);
	jw_kstr(&w, "syscall", r->syscall);
	jw_key(&w, "child");
	jw_obj_begin(&w);
	jw_kint(&w, "pid", r->child_pid);
	if (r->child_ns_pid > 0)
		jw_kint(&w, "ns_pid", r->child_ns_pid);
	jw_key(&w, "comm");
	if (r->child_known)
		jw_strn(&w, r->child_comm, strnlen(r->child_comm, sizeof(r->child_comm)));
	else
		jw_null(&w);
	jw_kstr(&w, "cmdline", r->child_cmdline);
	int_or_null(&w, "exit_status", r->exit_status);
	int_or_null(&w, "signal", r->signal);
	if (r->signal >= 0)
		jw_kbool(&w, "core_dumped", r->core_dumped);
	jw_obj_end(&w);
	if (r->reaper_tid > 0) {
		jw_key(&w, "reaper");
		jw_obj_begin(&w);
		jw_kint(&w, "tid", r->reaper_tid);
		jw_kstr(&w, "name", r->reaper_name);
		jw_kdouble(&w, "seconds_before", r->reaped_s_before, 3);
		if (r->reaper_stack)
			json_stack(o, &w, "stack", r->reaper_stack);
		jw_obj_end(&w);
	}
	json_stack_fields(o, &w, r->stack, r->stack_status);
	if (r->ignore_stack) {
		char ts[40];
		output_format_time(o, r->ignore_mono_ns, ts, sizeof(ts));
		jw_key(&w, "ignored_since");
		jw_obj_begin(&w);
		jw_kstr(&w, "time", ts);
		json_stack(o, &w, "stack", r->ignore_stack);
		jw_obj_end(&w);
	}
	end_event(o, &w);
}

void output_json_diagnosis(struct jw *w, const struct diagnosis *d, const struct py_process *py)
{
	jw_key(w, "diagnosis");
	jw_obj_begin(w);
	jw_kstr(w, "code", diag_code_name(d->code));
	jw_kstr(w, "summary", d->summary);
	jw_kint(w, "waiter_tid", d->waiter);
	jw_key(w, "culprit_tids");
	jw_arr_begin(w);
	for (size_t i = 0; i < d->nculprits; i++)
		jw_int(w, d->culprits[i]);
	jw_arr_end(w);
	if (py && d->code == DIAG_DEADLOCK) {
		jw_key(w, "cycle");
		waitgraph_write_cycle(w, py, d);
	}
	if (d->child) {
		jw_key(w, "child");
		childwait_write_diagnosis_child(w, d);
	}
	xproc_write_json(w, d);
	jw_obj_end(w);
}

static void json_hang(struct output *o, const struct rec_hang *r)
{
	struct jw w;
	begin_event(o, &w, "hang", r->p.mono_ns);
	proc_fields(&w, &r->p);
	output_json_diagnosis(&w, r->diag, r->py);
	jw_kstr(&w, "python", r->py->version);
	py_write_threads_fields(&w, outcap_process(o, r->py));
	end_event(o, &w);
}

static void json_suppressed(struct output *o, const struct rec_suppressed *r)
{
	struct jw w;
	char ts[40];
	begin_event(o, &w, "suppressed", r->p.mono_ns);
	proc_fields(&w, &r->p);
	output_format_time(o, r->since_mono_ns, ts, sizeof(ts));
	jw_kstr(&w, "since", ts);
	jw_key(&w, "counts");
	jw_obj_begin(&w);
	for (unsigned k = 0; k < PH_RL_KINDS; k++)
		jw_kint(&w, ratelimit_kind_name(k), (long long)r->counts[k]);
	jw_obj_end(&w);
	jw_key(&w, "rate_limit");
	jw_obj_begin(&w);
	jw_kdouble(&w, "per_second", r->rate_per_s, 3);
	jw_kint(&w, "burst", r->burst);
	jw_obj_end(&w);
	end_event(o, &w);
}

static void json_hang_end(struct output *o, const struct rec_hang_end *r)
{
	struct jw w;
	begin_event(o, &w, "hang_end", r->p.mono_ns);
	proc_fields(&w, &r->p);
	jw_kstr(&w, "code", r->code);
	jw_kstr(&w, "ended_by", rec_ended_by_name(r->ended_by));
	jw_kdouble(&w, "duration_s", r->duration_s, 3);
	jw_kdouble(&w, "reported_s_ago", r->reported_s_ago, 3);
	end_event(o, &w);
}

/* Written through output_dispatch_ops (output.c), which applies the cap. */
const struct output_ops output_json_ops = {
	.suppressed = json_suppressed,
	.hang = json_hang,
	.hang_end = json_hang_end,
	.start = json_start,
	.stop = json_stop,
	.long_wait = json_long_wait,
	.wait_end = json_wait_end,
	.sigchld = json_sigchld,
	.child_lost = json_child_lost,
};
