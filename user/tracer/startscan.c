/* startscan: what was already going on when tracing started. Registers the processes of
 * interest in the kernel's watch table (before `start`, so nothing they do after it is
 * missed), then (after `start`) reports SIGCHLD already ignored (SigIgn in
 * /proc/PID/status; SA_NOCLDWAIT is not visible there), and seeds the kernel's wait table
 * with threads already blocked in a futex wait or a wait for a child (wait4/waitid), so
 * the scanner reports them like any other long wait (marked before_start) and a wait_end
 * follows when they return. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "childwait.h"
#include "descend.h"
#include "procmem.h"
#include "procscan.h"
#include "pyreader.h"
#include "tracer.h"

/* x86_64 syscall numbers: pyhang.h. */
#define NR_FUTEX PH_NR_FUTEX
#define NR_FUTEX_WAITV PH_NR_FUTEX_WAITV
#define NR_FUTEX_WAIT PH_NR_FUTEX_WAIT

#define MAX_PROCS_SCANNED 1000000
#define MAX_TASKS_SCANNED 100000

struct scan_state {
	struct tracer *t;
	pid_t pid;
	uint64_t proc_start; /* its identity (/proc/PID/stat start time), 0 if unknown */
};

static bool is_futex_wait(const struct blocked_syscall *s, uint32_t *op)
{
	if (s->nr == NR_FUTEX) {
		*op = (uint32_t)s->args[1];
		return ph_futex_op_waits(*op);
	}
	if (s->nr == NR_FUTEX_WAIT) {
		*op = PH_OP_FUTEX_WAIT2;
		return true;
	}
	if (s->nr == NR_FUTEX_WAITV) {
		*op = PH_OP_FUTEX_WAITV;
		return true;
	}
	return false;
}

/* A wait the kernel records: a futex wait or a wait for a child; its record's uaddr. */
static bool is_recorded_wait(const struct blocked_syscall *s, uint32_t *op, uint64_t *addr)
{
	if (childwait_from_syscall(s, op, addr))
		return true;
	*addr = s->nr == NR_FUTEX_WAITV ? 0 : s->args[0];
	return is_futex_wait(s, op);
}

/* "Now" on one CPU's scheduler clock (rq clock_task, which leaves out steal and IRQ time,
 * so CPUs drift apart, by half a second in our VMs): run on that CPU for a moment and read
 * our own se.exec_start there. 0 when it cannot be had. Also used by iowait.c. */
uint64_t sched_now_on_cpu(int cpu);
uint64_t sched_now_on_cpu(int cpu)
{
	cpu_set_t old, one;
	uint64_t now = 0;
	if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(old), &old) != 0)
		return 0;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) == 0) {
		sched_yield(); /* be scheduled on it: exec_start is stamped when we start running */
		if (proc_task_exec_start_ns(0, 0, &now) != 0)
			now = 0;
	}
	if (sched_setaffinity(0, sizeof(old), &old) != 0)
		now = 0;
	return now;
}

/* When a blocked thread started waiting. update_curr() stamps se.exec_start when a task is
 * dequeued, so for a sleeping thread it is the moment it blocked, on the clock of the CPU it
 * last ran on (Linux 2.6.23+ CFS; /proc/.../sched needs CONFIG_SCHED_DEBUG). */
static uint64_t estimate_wait_start(const struct scan_state *st, pid_t tid)
{
	uint64_t mono_now = mono_now_ns(), exec_start;
	uint64_t cpu_now = sched_now_on_cpu(proc_task_last_cpu(st->pid, tid));
	if (!cpu_now || proc_task_exec_start_ns(st->pid, tid, &exec_start) != 0 || exec_start > cpu_now)
		return mono_now;
	uint64_t blocked_for = cpu_now - exec_start;
	return blocked_for < mono_now ? mono_now - blocked_for : 0;
}

/* Whether the thread is (still) in a futex wait on addr. */
static bool still_waiting(pid_t pid, pid_t tid, uint64_t addr)
{
	struct blocked_syscall s;
	uint32_t op;
	uint64_t a;
	return proc_task_syscall(pid, tid, &s) == 0 && is_recorded_wait(&s, &op, &a) && a == addr;
}

static int scan_task(pid_t tid, void *arg)
{
	struct scan_state *st = arg;
	struct blocked_syscall s;
	uint32_t op;
	uint64_t addr;
	if (proc_task_syscall(st->pid, tid, &s) != 0 || !is_recorded_wait(&s, &op, &addr))
		return 0;
	uint64_t start = estimate_wait_start(st, tid);
	if (loader_seed_wait(st->t->ld, st->pid, st->proc_start, tid, start, addr, op) != 0)
		return 0; /* the kernel already tracks a wait of this thread */
	/* The wait may have ended between the look at /proc and the seed, and then nothing
	 * would ever remove the seed: look again, and take it back if the thread moved on. */
	if (!still_waiting(st->pid, tid, addr))
		loader_unseed_wait(st->t->ld, tid);
	return 0;
}

/* Look at one process of interest: its SIGCHLD disposition (reported once, whatever path
 * saw it first: sigchld_state.c) and its blocked threads. at_start: it was found when
 * tracing started. */
static void scan_process(struct tracer *t, pid_t pid, bool at_start)
{
	struct scan_state st = { .t = t, .pid = pid };
	char dir[64];
	if (pm_start_time(pid, &st.proc_start) != 0)
		return; /* gone already */
	if (py_is_python_process(pid) && tracer_describe(t, pid, st.proc_start) != 0)
		tracer_schedule_describe(t, pid, st.proc_start); /* not initialized yet: try again soon */
	/* after the description: the stack walker knows the process when its report is out */
	disp_scan(t, pid, st.proc_start, at_start);
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	proc_for_each_pid(dir, MAX_TASKS_SCANNED, scan_task, &st);
}

void tracer_scan_process(struct tracer *t, pid_t pid)
{
	scan_process(t, pid, false);
}

static int add_target(struct tracer *t, pid_t pid)
{
	if (t->ntargets == t->targets_cap) {
		size_t cap = t->targets_cap ? t->targets_cap * 2 : 64;
		pid_t *p = realloc(t->targets, cap * sizeof(*p));
		if (!p)
			return -1;
		t->targets = p;
		t->targets_cap = cap;
	}
	t->targets[t->ntargets++] = pid;
	return 0;
}

static int register_host_process(pid_t pid, void *arg)
{
	struct tracer *t = arg;
	if (pid == getpid())
		return 0;
	if (!t->all_processes) {
		if (!py_is_python_process(pid) || loader_watch(t->ld, pid, PH_W_PYTHON) != 0)
			return 0;
	}
	return add_target(t, pid) == 0 ? 0 : -1;
}

static int register_selected(pid_t pid, void *arg)
{
	struct tracer *t = arg;
	if (pid == getpid())
		return 0;
	bool python = py_is_python_process(pid);
	if (loader_watch(t->ld, pid, PH_W_SCOPE | (python ? PH_W_PYTHON : 0)) != 0)
		return -1;
	if ((t->all_processes || python) && add_target(t, pid) != 0)
		return -1;
	/* described before the start event: what it does from then on (a fork, a SIGCHLD
	 * change) gets its stack in the kernel (the start-up scan describes it again) */
	uint64_t start;
	if (python && pm_start_time(pid, &start) == 0)
		(void)tracer_describe(t, pid, start);
	return 0;
}

int tracer_register_processes(struct tracer *t)
{
	if (t->host_wide)
		return proc_for_each_pid("/proc", MAX_PROCS_SCANNED, register_host_process, t) < 0 ? -1 : 0;
	for (int i = 0; i < t->npids; i++)
		if (register_selected(t->pids[i], t) != 0)
			return -1;
	/* -p covers the descendants: those forked from now on inherit the watch in the kernel
	 * (the listed ones are watched already), the ones alive now are found here */
	if (!t->command && !t->no_children &&
	    descend_for_each(t->pids, (size_t)t->npids, MAX_PROCS_SCANNED, register_selected, t) < 0)
		return -1;
	return 0;
}

void tracer_scan_existing(struct tracer *t)
{
	for (size_t i = 0; i < t->ntargets; i++) {
		if (tracer_stop_overdue()) {
			t->unread_at_stop += t->ntargets - i;
			break;
		}
		scan_process(t, t->targets[i], true);
	}
	free(t->targets);
	t->targets = NULL;
	t->ntargets = t->targets_cap = 0;
}
