/* events: turns kernel events (bpf/pyhang.h) into output records, and keeps the set of
 * watched processes current after exec (embedded interpreters). */
#include <string.h>

#include "procscan.h"
#include "tracer.h"

static void fill_proc(struct ev_proc *p, const struct ph_event *e)
{
	memset(p, 0, sizeof(*p));
	p->pid = (pid_t)e->pid;
	p->tid = (pid_t)e->tid;
	p->mono_ns = e->ts_ns;
	memcpy(p->comm, e->comm, sizeof(p->comm));
	p->comm[sizeof(p->comm) - 1] = '\0';
	if (!p->comm[0]) /* the scanner runs outside the thread: ask /proc */
		proc_comm(p->pid, p->tid, p->comm, sizeof(p->comm));
}

static double seconds_between(uint64_t from_ns, uint64_t to_ns)
{
	return to_ns > from_ns ? (double)(to_ns - from_ns) / 1e9 : 0.0;
}

static void on_long_wait(struct tracer *t, const struct ph_event *e)
{
	struct rec_long_wait r = { 0 };
	fill_proc(&r.p, e);
	r.waited_s = seconds_between(e->wait.start_ns, e->ts_ns);
	r.before_start = e->wait.flags & PH_WF_BEFORE_START;
	r.futex_addr = e->wait.uaddr;
	r.futex_op = e->wait.op;
	t->n_long_waits++;
	t->out.ops->long_wait(&t->out, &r);
}

static void on_wait_end(struct tracer *t, const struct ph_event *e)
{
	struct rec_wait_end r = { 0 };
	fill_proc(&r.p, e);
	r.waited_s = seconds_between(e->wait.start_ns, e->ts_ns);
	r.before_start = e->wait.flags & PH_WF_BEFORE_START;
	r.futex_addr = e->wait.uaddr;
	r.ended_by = e->wait.end_reason == PH_END_THREAD_EXIT ? "thread_exit" : "return";
	t->n_wait_ends++;
	t->out.ops->wait_end(&t->out, &r);
}

static const char *sigchld_action_name(unsigned int cls)
{
	switch (cls) {
	case PH_SIGCHLD_IGN:
		return "SIG_IGN";
	case PH_SIGCHLD_NOCLDWAIT:
		return "SA_NOCLDWAIT";
	default:
		return "restored";
	}
}

static void on_sigchld(struct tracer *t, const struct ph_event *e)
{
	struct rec_sigchld r = { 0 };
	fill_proc(&r.p, e);
	r.action = sigchld_action_name(e->sigchld.new_class);
	t->n_sigchld++;
	t->out.ops->sigchld(&t->out, &r);
}

/* Kernel exit_code encoding (wait(2) status): low 7 bits the terminating signal, 0x80 core
 * dumped, bits 8-15 the exit status when the signal bits are 0. */
static void decode_exit_code(int code, struct rec_child_lost *r)
{
	r->exit_status = -1;
	r->signal = -1;
	if ((code & 0x7f) == 0) {
		r->exit_status = (code >> 8) & 0xff;
	} else {
		r->signal = code & 0x7f;
		r->core_dumped = (code & 0x80) != 0;
	}
}

static void on_child_lost(struct tracer *t, const struct ph_event *e)
{
	struct rec_child_lost r = { 0 };
	fill_proc(&r.p, e);
	r.cause = e->lost.cause == PH_LOST_REAPED_ELSEWHERE ? "reaped_elsewhere" : "sigchld_ignored";
	r.syscall = e->lost.syscall ? "waitid" : "wait4";
	r.child_pid = (pid_t)e->lost.child_pid;
	r.wait_pid_arg = e->lost.wait_pid_arg;
	r.child_known = e->lost.child_known;
	r.exit_status = -1;
	r.signal = -1;
	if (r.child_known) {
		memcpy(r.child_comm, e->lost.child_comm, sizeof(r.child_comm));
		r.child_comm[sizeof(r.child_comm) - 1] = '\0';
		decode_exit_code(e->lost.exit_code, &r);
	}
	if (e->lost.cause == PH_LOST_REAPED_ELSEWHERE) {
		r.reaper_tid = (pid_t)e->lost.reaper_tid;
		r.reaped_s_before = seconds_between(e->lost.reap_ns, e->ts_ns);
	}
	t->n_child_lost++;
	t->out.ops->child_lost(&t->out, &r);
}

static void schedule_exec_check(struct tracer *t, pid_t pid, int attempt, uint64_t delay_ns)
{
	if (t->nchecks >= MAX_EXEC_CHECKS) {
		t->dropped_checks++;
		return;
	}
	t->checks[t->nchecks++] = (struct exec_check){ pid, mono_now_ns() + delay_ns, attempt };
}

static void on_exec(struct tracer *t, const struct ph_event *e)
{
	/* The kernel already marked python* binaries. Others may embed libpython: look again
	 * after the dynamic loader had time to map it. Not needed with --all. */
	if (!e->exec.python && !t->all_processes)
		schedule_exec_check(t, (pid_t)e->pid, 0, 100000000ull);
}

int tracer_handle_event(void *arg, const void *data, size_t size)
{
	struct tracer *t = arg;
	const struct ph_event *e = data;
	if (size < sizeof(*e))
		return 0;
	switch (e->type) {
	case PH_EV_LONG_WAIT:
		on_long_wait(t, e);
		break;
	case PH_EV_WAIT_END:
		on_wait_end(t, e);
		break;
	case PH_EV_SIGCHLD:
		on_sigchld(t, e);
		break;
	case PH_EV_CHILD_LOST:
		on_child_lost(t, e);
		break;
	case PH_EV_EXEC:
		on_exec(t, e);
		break;
	default:
		break;
	}
	return 0;
}

int tracer_run_exec_checks(struct tracer *t)
{
	uint64_t now = mono_now_ns(), next = UINT64_MAX;
	int kept = 0;
	for (int i = 0; i < t->nchecks; i++) {
		struct exec_check c = t->checks[i];
		if (c.due_ns > now) {
			t->checks[kept++] = c;
			if (c.due_ns < next)
				next = c.due_ns;
			continue;
		}
		if (proc_runs_python(c.pid)) {
			uint32_t flags = tracer_watch_flags_for(t, c.pid, !t->host_wide);
			if (t->host_wide || t->command)
				loader_watch_add_flags(t->ld, c.pid, flags);
		} else if (c.attempt == 0 && proc_exists(c.pid)) {
			/* one more look a second later, then give up */
			c.attempt = 1;
			c.due_ns = now + 1000000000ull;
			t->checks[kept++] = c;
			if (c.due_ns < next)
				next = c.due_ns;
		}
	}
	t->nchecks = kept;
	if (next == UINT64_MAX)
		return -1;
	return (int)((next - now) / 1000000ull) + 1;
}
