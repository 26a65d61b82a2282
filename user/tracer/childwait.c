/* childwait: what a child wait waits for (see childwait.h): the awaited children read
 * from /proc (state, the system call they sleep in, a thread of their subtree blocked
 * writing to a pipe and that pipe's holders) and from their memory when they run Python
 * (threads, wait-for graph, their own proven hang). The diagnoses over these facts are
 * childwait_diag.c's, the open waits' table childwait_open.c's. */
#include "childwait.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hangtrack.h"
#include "procscan.h"
#include "pyhang.h"

/* x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl) of the writes to a
 * pipe (the reads and polls are childwait_diag.c's) */
enum { NR_WRITE = 1, NR_PWRITE64 = 18, NR_WRITEV = 20, NR_PWRITEV = 296, NR_PWRITEV2 = 328 };

static bool is_write_call(long nr)
{
	return nr == NR_WRITE || nr == NR_WRITEV || nr == NR_PWRITE64 || nr == NR_PWRITEV ||
	       nr == NR_PWRITEV2;
}

struct writer_search {
	pid_t pid;
	struct cw_child *c;
};

static int find_writer_task(pid_t tid, void *arg)
{
	struct writer_search *s = arg;
	struct blocked_syscall sc;
	uint64_t ino;
	bool wr = false;
	if (proc_task_syscall(s->pid, tid, &sc) != 0 || !is_write_call(sc.nr))
		return 0;
	if (pipe_fd(s->pid, (int)sc.args[0], &ino, NULL, &wr) != 1 || !wr)
		return 0;
	struct cw_child *c = s->c;
	c->writer = true;
	c->wr_pid = s->pid;
	c->wr_tid = tid;
	c->wr_fd = (int)sc.args[0];
	c->wr_nr = sc.nr;
	c->pipe.ino = ino;
	c->wr_switches = proc_task_switches(s->pid, tid);
	proc_comm(s->pid, tid, c->wr_comm, sizeof(c->wr_comm));
	return 1;
}

/* A thread of c's subtree (c first, then its descendants breadth first, CW_MAX_DESC
 * processes) blocked writing to a pipe; then that pipe's holders and fill. */
static void find_pipe_writer(pid_t waiter, struct cw_child *c, size_t *fd_budget)
{
	pid_t q[CW_MAX_DESC + 1];
	size_t n = 1;
	q[0] = c->pid;
	for (size_t i = 0; i < n && !c->writer; i++) {
		struct writer_search s = { .pid = q[i], .c = c };
		char dir[64];
		snprintf(dir, sizeof(dir), "/proc/%d/task", (int)q[i]);
		if (proc_for_each_pid(dir, CW_MAX_TASKS, find_writer_task, &s) == 1)
			break;
		if (n < CW_MAX_DESC)
			n += proc_children(q[i], CW_MAX_TASKS, q + n, CW_MAX_DESC - n, NULL);
	}
	if (!c->writer)
		return;
	/* the likely holders first: the waiter and the subtree */
	pid_t likely[CW_MAX_DESC + 2];
	size_t nl = 0;
	likely[nl++] = waiter;
	for (size_t i = 0; i < n && nl < CW_MAX_DESC + 1; i++)
		likely[nl++] = q[i];
	/* the whole host is looked at only when it can prove something: the waiter holds the
	 * read end (else the pipe's facts are those of the likely holders, `complete` false) */
	pipe_holders_budget(c->pipe.ino, likely, nl, true, fd_budget, &c->pipe);
	bool waiter_reads = false;
	for (size_t i = 0; i < c->pipe.nholders; i++)
		waiter_reads |= c->pipe.holders[i].pid == waiter && c->pipe.holders[i].read_end;
	if (waiter_reads)
		pipe_holders_budget(c->pipe.ino, likely, nl, false, fd_budget, &c->pipe);
	pipe_fill(c->wr_pid, c->wr_fd, c->pipe.ino, &c->pipe);
	c->pipe_read = true;
}

/* A Python child: its threads, graph, own proven hang, and the thread to show. */
static void read_python_child(struct py_reader *r, const struct hangtrack *ht, struct cw_child *c)
{
	char err[128];
	if (!py_is_python_process(c->pid) || py_read_process(r, c->pid, &c->py, err, sizeof(err)) != 0)
		return;
	c->have_py = true;
	if (waitgraph_build(&c->graph, r, &c->py) == 0)
		c->have_graph = true;
	struct ht_pid a = { ht, c->pid };
	struct diag_waits w = { ht_pid_wait_is_open, &a };
	if (ht && c->have_graph && waitgraph_diagnose(&c->graph, 0, &w, &c->hang))
		c->hung = true;
	for (size_t i = 0; ht && !c->hung && i < c->py.nthreads; i++) {
		const struct py_thread *t = &c->py.threads[i];
		if (t->state == PY_STATE_LOCK_WAIT && ht_pid_wait_is_open(&a, t->tid, t->futex_addr) &&
		    diagnose_process(&c->py, t->tid, 0, false, &w, &c->hang))
			c->hung = c->hang.code != DIAG_LONG_WAIT;
	}
	if (c->hung)
		c->py_tid = c->hang.waiter;
	for (size_t i = 0; !c->py_tid && i < c->py.nthreads; i++)
		if (c->py.threads[i].tid == c->pid && c->py.threads[i].state != PY_STATE_RUNNING)
			c->py_tid = c->pid;
	for (size_t i = 0; !c->py_tid && i < c->py.nthreads; i++)
		if (c->py.threads[i].state != PY_STATE_RUNNING && c->py.threads[i].tid > 0)
			c->py_tid = c->py.threads[i].tid;
}

static void read_child(struct py_reader *r, const struct hangtrack *ht, pid_t waiter, pid_t pid,
		       struct cw_child *c, size_t *fd_budget)
{
	struct proc_stat ps;
	c->pid = pid;
	c->syscall_nr = -1;
	c->py_tid = 0;
	proc_comm(pid, 0, c->comm, sizeof(c->comm));
	proc_cmdline(pid, c->cmdline, sizeof(c->cmdline));
	if (proc_stat_read(pid, 0, &ps) != 0) {
		c->state = "gone";
		return;
	}
	switch (ps.state) {
	case 'R':
		c->state = "running";
		break;
	case 'T': case 't':
		c->state = "stopped";
		break;
	case 'Z': case 'X':
		c->state = "zombie";
		return;
	default: {
		c->state = "sleeping";
		struct blocked_syscall sc;
		if (proc_task_syscall(pid, pid, &sc) == 0 && sc.nr >= 0)
			c->syscall_nr = sc.nr;
	}
	}
	find_pipe_writer(waiter, c, fd_budget);
	read_python_child(r, ht, c);
}

/* Whether thread tid of pid is in the wait whose record names uaddr now (its blocked call,
 * /proc/PID/task/TID/syscall, gives the same uaddr). */
static bool still_in_wait(pid_t pid, pid_t tid, uint64_t uaddr)
{
	struct blocked_syscall sc;
	uint32_t op;
	uint64_t now;
	return proc_task_syscall(pid, tid, &sc) == 0 && childwait_from_syscall(&sc, &op, &now) &&
	       now == uaddr;
}

pid_t childwait_pidfd_child(pid_t pid, pid_t tid, uint64_t uaddr)
{
	/* The fd's process, read while the wait lasts: fd numbers are reused at once, so the
	 * thread must be in this very wait before and after the look (a blocked
	 * waitid(P_PIDFD) holds the pid it began with, whatever the fd table says later). */
	if (!still_in_wait(pid, tid, uaddr))
		return 0;
	pid_t child = proc_pidfd_pid(pid, tid, (int)(uint32_t)uaddr);
	if (child <= 0 || !still_in_wait(pid, tid, uaddr))
		return 0;
	return child;
}

struct cw_wait *childwait_read(struct py_reader *r, const struct hangtrack *ht, pid_t pid,
			       pid_t tid, uint64_t uaddr)
{
	return childwait_read_budget(r, ht, pid, tid, uaddr, NULL);
}

struct cw_wait *childwait_read_budget(struct py_reader *r, const struct hangtrack *ht, pid_t pid,
				      pid_t tid, uint64_t uaddr, size_t *fd_budget)
{
	struct cw_wait *cw = calloc(1, sizeof(*cw));
	if (!cw)
		return NULL;
	cw->pid = pid;
	cw->tid = tid;
	cw->pidfd = -1;
	if (PH_CHILD_IS_PIDFD(uaddr)) {
		cw->pidfd = (int)(uint32_t)uaddr;
		cw->pid_arg = childwait_pidfd_child(pid, tid, uaddr); /* 0: unknown, never "any" */
	} else {
		cw->pid_arg = uaddr == PH_CHILD_ANY ? -1 : (int)uaddr;
	}
	pid_t kids[CW_MAX_CHILDREN * 4];
	bool more = false;
	size_t nk = 0;
	if (cw->pidfd < 0)
		nk = proc_children(pid, CW_MAX_TASKS, kids, sizeof(kids) / sizeof(kids[0]), &more);
	else if (cw->pid_arg > 0 && proc_parent(cw->pid_arg) == pid)
		kids[nk++] = cw->pid_arg; /* the one child, however many there are: its parent says */
	pid_t pick[CW_MAX_CHILDREN];
	size_t np = 0;
	for (size_t i = 0; i < nk && cw->pid_arg != 0; i++) {
		/* a pidfd's pid is in our namespace, a named pid in the waiter's */
		if (cw->pid_arg > 0 && kids[i] != cw->pid_arg &&
		    (cw->pidfd >= 0 || proc_ns_pid(kids[i]) != cw->pid_arg))
			continue;
		if (np == CW_MAX_CHILDREN) {
			cw->more = true;
			break;
		}
		pick[np++] = kids[i];
	}
	cw->more |= cw->pid_arg < 0 && more;
	cw->children = calloc(np ? np : 1, sizeof(*cw->children));
	if (!cw->children) {
		free(cw);
		return NULL;
	}
	for (size_t i = 0; i < np; i++)
		read_child(r, ht, pid, pick[i], &cw->children[cw->n++], fd_budget);
	childwait_describe(cw, cw->phrase, sizeof(cw->phrase));
	return cw;
}

bool childwait_from_syscall(const struct blocked_syscall *s, uint32_t *op, uint64_t *uaddr)
{
	int32_t pid;
	if (s->nr == PH_NR_WAIT4 && !(s->args[2] & PH_WNOHANG)) {
		*op = PH_OP_CHILD_WAIT4;
		pid = (int32_t)s->args[0];
	} else if (s->nr == PH_NR_WAITID && !(s->args[3] & PH_WNOHANG)) {
		*op = PH_OP_CHILD_WAITID;
		uint32_t idtype = (uint32_t)s->args[0]; /* an int to the kernel */
		if (idtype == PH_P_PIDFD) {
			*uaddr = PH_CHILD_PIDFD | (uint32_t)s->args[1];
			return true;
		}
		pid = idtype == PH_P_PID ? (int32_t)s->args[1] : -1;
	} else {
		return false;
	}
	*uaddr = pid > 0 ? (uint64_t)(uint32_t)pid : PH_CHILD_ANY;
	return true;
}

void childwait_attach_from_proc(struct waitgraph *g, struct py_reader *r, pid_t pid)
{
	const struct py_process *p = g->p;
	size_t read = 0, fd_budget = CW_ATTACH_FDS;
	for (size_t i = 0; i < p->nthreads && read < CW_ATTACH_MAX; i++) {
		struct wf_info *f = &g->info[i];
		struct blocked_syscall sc;
		uint32_t op;
		uint64_t uaddr;
		if (f->kind != WF_CHILD || f->child || p->threads[i].tid <= 0 ||
		    proc_task_syscall(pid, p->threads[i].tid, &sc) != 0 ||
		    !childwait_from_syscall(&sc, &op, &uaddr))
			continue;
		f->child = childwait_read_budget(r, NULL, pid, p->threads[i].tid, uaddr, &fd_budget);
		read++;
	}
}

void childwait_free(struct cw_wait *cw)
{
	if (!cw)
		return;
	for (size_t i = 0; i < cw->n; i++) {
		struct cw_child *c = &cw->children[i];
		if (c->have_graph)
			waitgraph_free(&c->graph);
		if (c->have_py)
			py_process_free(&c->py);
	}
	free(cw->children);
	free(cw);
}
