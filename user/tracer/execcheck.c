/* execcheck: delayed looks at new processes (see execcheck.h). */
#include "execcheck.h"

#include <stdbool.h>

#include "fairqueue.h"
#include "iosample.h"
#include "pending.h"
#include "procscan.h"
#include "pyreader.h"
#include "pystack.h"
#include "snapshot.h"

#define DESCRIBE_ATTEMPTS 40 /* 2 ms doubling to 250 ms: about 8 s in all */

void schedule_check(struct tracer *t, pid_t pid, uint64_t proc_start,
			   enum check_kind kind, int attempt, uint64_t delay_ns)
{
	if (!fairq_admit(t, t->exec_uid_plus1)) { /* full, and this user has its share */
		t->dropped_checks++;
		return;
	}
	t->checks[t->nchecks++] = (struct exec_check){ pid, proc_start, mono_now_ns() + delay_ns,
						       attempt, kind, t->exec_uid_plus1 };
}

int tracer_describe(struct tracer *t, pid_t pid, uint64_t proc_start)
{
	struct py_layout layout;
	char err[256];
	uint64_t start;
	if (pystack_describe(t->ld, t->reader, pid, &layout, err, sizeof(err)) != 0)
		return -1;
	/* The process must still be there, with the same program, now that the kernel has its
	 * description: had it exited or exec'd in between, the kernel's hook has come and gone,
	 * and the entry would describe it to whatever runs under the pid next. */
	if (!py_reader_still_same(t->reader, pid, &start)) {
		loader_forget_pyproc(t->ld, pid);
		py_forget_process(t->reader, pid);
		return -1;
	}
	/* A check for an earlier process of this pid: what was installed describes the live
	 * one correctly (it has a check of its own, which records its layout). */
	if (proc_start && start != proc_start)
		return -1;
	pending_put_layout(&t->pending, pid, start, &layout);
	ios_watch(t->ios, pid, start);
	return 0;
}

void tracer_schedule_describe(struct tracer *t, pid_t pid, uint64_t proc_start)
{
	schedule_check(t, pid, proc_start, CHECK_DESCRIBE, 0, 2000000ull);
}

/* One due check; returns true to keep it (rescheduled in *c). */
static bool run_check(struct tracer *t, struct exec_check *c, uint64_t now)
{
	if (c->kind == CHECK_EMBEDDED) {
		if (!proc_exists(c->pid))
			return false;
		/* in scope: the whole host, or selected (-p, or a descendant of COMMAND) */
		bool in_scope = t->host_wide || (loader_watch_flags(t->ld, c->pid) & PH_W_SCOPE);
		if (in_scope && py_is_python_process(c->pid)) {
			loader_watch_add_flags(t->ld, c->pid, PH_W_PYTHON);
			/* its threads may already be blocked: the kernel saw those waits begin while
			 * the process was not watched yet */
			tracer_scan_process(t, c->pid);
			return false;
		}
		if (!in_scope)
			return false;
		if (c->attempt > 0)
			return false; /* one more look a second later, then give up */
		c->attempt = 1;
		c->due_ns = now + 1000000000ull;
		return true;
	}
	if (tracer_describe(t, c->pid, c->proc_start) == 0)
		return false;
	/* whether it is gone (or its pid another process's) is asked only now: a /proc lookup
	 * of a new pid is not free */
	bool gone = c->proc_start ? !same_process(c->pid, c->proc_start) : !proc_exists(c->pid);
	if (gone || ++c->attempt >= DESCRIBE_ATTEMPTS)
		return false;
	uint64_t delay = 2000000ull << (c->attempt < 7 ? c->attempt : 7);
	c->due_ns = now + (delay < 250000000ull ? delay : 250000000ull);
	return true;
}

int tracer_run_exec_checks(struct tracer *t)
{
	uint64_t now = mono_now_ns(), next = UINT64_MAX;
	uint64_t budget_end = now + FAIRQ_PASS_BUDGET_NS;
	int kept = 0;
	for (int i = 0; i < t->nchecks; i++)
		if (t->checks[i].due_ns <= now) {
			fairq_order(t); /* users with fewer waiting first */
			break;
		}
	for (int i = 0; i < t->nchecks; i++) {
		struct exec_check c = t->checks[i];
		/* the pass's time is up: the rest stays due, for the next pass */
		if (c.due_ns <= now && mono_now_ns() < budget_end && !run_check(t, &c, now))
			continue;
		t->checks[kept++] = c;
		if (c.due_ns < next)
			next = c.due_ns;
	}
	t->nchecks = kept;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)((next - now) / 1000000ull) + 1;
}
