/* childwait_diag: the hangs a child wait proves (see childwait.h): `pipe_deadlock` (the
 * child, or a descendant, blocked writing to a pipe that only the waiting process reads,
 * none of whose threads reads or polls it, the writer not having run between two looks)
 * and `child_hung` (the child's own proven hang), from the facts childwait.c read. */
#include "childwait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "procscan.h"
#include "pyhang.h"
#include "syscall_names.h"

/* x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl) of the calls that
 * read, or may read, a pipe */
enum {
	NR_READ = 0, NR_POLL = 7, NR_PREAD64 = 17, NR_READV = 19, NR_SELECT = 23,
	NR_EPOLL_WAIT = 232, NR_PSELECT6 = 270, NR_PPOLL = 271, NR_SPLICE = 275,
	NR_EPOLL_PWAIT = 281, NR_PREADV = 295, NR_PREADV2 = 327, NR_IO_URING_ENTER = 426,
	NR_EPOLL_PWAIT2 = 441,
};

static bool is_read_call(long nr)
{
	return nr == NR_READ || nr == NR_READV || nr == NR_PREAD64 || nr == NR_PREADV ||
	       nr == NR_PREADV2 || nr == NR_SPLICE;
}

/* Whether some thread of process pid reads, or may read, pipe ino now: running, unknown,
 * in a read of it, or polling (poll, select with descriptors, epoll, io_uring: whatever
 * they watch is not known). A thread in a futex wait, a sleep, a wait for a child or I/O on
 * another descriptor does not read it. */
struct reader_check {
	pid_t pid;
	uint64_t ino;
	bool may;
	size_t n;
};

static int check_reader(pid_t tid, void *arg)
{
	struct reader_check *c = arg;
	struct blocked_syscall sc;
	c->n++;
	if (proc_task_syscall(c->pid, tid, &sc) != 0 || sc.nr < 0)
		goto may;
	switch (sc.nr) {
	case NR_POLL: case NR_PPOLL: case NR_EPOLL_WAIT: case NR_EPOLL_PWAIT: case NR_EPOLL_PWAIT2:
	case NR_IO_URING_ENTER:
		goto may;
	case NR_SELECT: case NR_PSELECT6:
		if (sc.args[0] != 0) /* select(0, ...) is a sleep (time.sleep <= 3.10) */
			goto may;
		return 0;
	default:
		break;
	}
	if (is_read_call(sc.nr)) {
		uint64_t ino = 0;
		int k = pipe_fd(c->pid, (int)sc.args[0], &ino, NULL, NULL);
		if (k < 0 || (k == 1 && ino == c->ino))
			goto may;
	}
	return 0;
may:
	c->may = true;
	return 1;
}

static bool process_may_read(pid_t pid, uint64_t ino)
{
	char dir[64];
	struct reader_check c = { .pid = pid, .ino = ino };
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	if (proc_for_each_pid(dir, CW_MAX_TASKS + 1, check_reader, &c) < 0 || c.n == 0 ||
	    c.n > CW_MAX_TASKS)
		return true;
	return c.may;
}

/* The writer is still blocked writing to the same pipe (looked at again, after the scan),
 * and has not run since the first look (the same context switch count, at least still_ns
 * earlier: kept in the open wait o). */
static bool writer_still_blocked(const struct cw_child *c, struct cw_open *o, uint64_t still_ns)
{
	struct blocked_syscall sc;
	uint64_t ino = 0, now = mono_now_ns();
	bool wr = false;
	if (!(proc_task_syscall(c->wr_pid, c->wr_tid, &sc) == 0 && sc.nr == c->wr_nr &&
	      (int)sc.args[0] == c->wr_fd && pipe_fd(c->wr_pid, c->wr_fd, &ino, NULL, &wr) == 1 &&
	      wr && ino == c->pipe.ino))
		return false;
	uint64_t sw = proc_task_switches(c->wr_pid, c->wr_tid);
	if (!o || sw == UINT64_MAX || sw != c->wr_switches)
		return false;
	if (o->wr_tid == c->wr_tid && o->wr_ino == ino && o->wr_switches == sw && o->wr_seen_ns &&
	    now - o->wr_seen_ns >= still_ns)
		return true;
	if (!(o->wr_tid == c->wr_tid && o->wr_ino == ino && o->wr_switches == sw)) {
		/* a first look (or the writer ran): the clock starts now; looked at again soon */
		o->wr_tid = c->wr_tid;
		o->wr_ino = ino;
		o->wr_switches = sw;
		o->wr_seen_ns = now;
		if (o->next_ns > now + still_ns && o->next_ns != UINT64_MAX)
			o->next_ns = now + still_ns;
	}
	return false;
}

static struct cw_open *open_wait(struct cw_table *tab, const struct cw_wait *cw)
{
	for (size_t i = 0; tab && i < CW_OPEN_MAX; i++)
		if (tab->open[i].tid == cw->tid && tab->open[i].pid == cw->pid)
			return &tab->open[i];
	return NULL;
}

static bool pipe_deadlocked(const struct cw_wait *cw, const struct cw_child *c, struct cw_open *o,
			    uint64_t still_ns)
{
	if (!c->writer || !c->pipe_read || !c->pipe.complete || c->pipe.nreaders != 1 ||
	    !strcmp(c->state, "zombie") || !strcmp(c->state, "gone"))
		return false;
	const struct pipe_holder *reader = NULL;
	for (size_t i = 0; i < c->pipe.nholders; i++)
		if (c->pipe.holders[i].read_end)
			reader = &c->pipe.holders[i];
	if (!reader || reader->pid != cw->pid)
		return false;
	return !process_may_read(cw->pid, c->pipe.ino) && writer_still_blocked(c, o, still_ns);
}


static void who(const struct py_thread *t, pid_t tid, char *buf, size_t len)
{
	if (t && t->name)
		snprintf(buf, len, "'%.80s'", t->name);
	else
		snprintf(buf, len, "thread %d", (int)tid);
}

/* The summary, cut to its field (a sentence built from other sentences can be longer). */
static void set_summary(struct diagnosis *d, const char *text)
{
	size_t n = strnlen(text, sizeof(d->summary) - 1);
	memcpy(d->summary, text, n);
	d->summary[n] = '\0';
}

bool childwait_diagnose(struct cw_wait *cw, const struct py_process *p, struct cw_table *tab,
			struct diagnosis *d)
{
	struct cw_open *o = open_wait(tab, cw);
	uint64_t still_ns = tab && tab->writer_still_ns > CW_WRITER_STILL_MIN_NS ?
		tab->writer_still_ns : CW_WRITER_STILL_MIN_NS;
	char long_text[2400];
	const struct py_thread *t = cw_thread_of(p, cw->tid);
	char a[128], where[400], cq[32], wq[32];
	who(t, cw->tid, a, sizeof(a));
	if (t)
		diagnose_blocked_where(t, where, sizeof(where));
	else
		snprintf(where, sizeof(where), "native code");
	for (size_t i = 0; i < cw->n; i++) {
		struct cw_child *c = &cw->children[i];
		cw_comm_q(c->comm, cq, sizeof(cq));
		if (c->hung) {
			memset(d, 0, sizeof(*d));
			d->code = DIAG_CHILD_HUNG;
			d->waiter = cw->tid;
			d->culprits[d->nculprits++] = cw->tid;
			d->child = cw;
			d->child_index = i;
			bool dl = c->hang.code == DIAG_DEADLOCK || c->hang.code == DIAG_SELF_DEADLOCK;
			snprintf(long_text, sizeof(long_text), "%s waits in %s for pid %d (%s), which is "
				 "%s%s%s: %.600s", a, where, (int)c->pid, cq, dl ? "deadlocked" : "hung (",
				 dl ? "" : diag_code_name(c->hang.code), dl ? "" : ")", c->hang.summary);
			set_summary(d, long_text);
			return true;
		}
		if (pipe_deadlocked(cw, c, o, still_ns)) {
			char by[200] = "", fill[96] = "";
			cw_comm_q(c->wr_comm, wq, sizeof(wq));
			if (c->wr_pid != c->pid)
				snprintf(by, sizeof(by), ", whose descendant %s (pid %d) is", wq, (int)c->wr_pid);
			else
				snprintf(by, sizeof(by), ", which is");
			if (c->pipe.queued >= 0 && c->pipe.capacity > 0)
				snprintf(fill, sizeof(fill), " (%ld of %ld bytes queued)", c->pipe.queued,
					 c->pipe.capacity);
			else if (c->pipe.queued >= 0)
				snprintf(fill, sizeof(fill), " (%ld bytes queued)", c->pipe.queued);
			memset(d, 0, sizeof(*d));
			d->code = DIAG_PIPE_DEADLOCK;
			d->waiter = cw->tid;
			d->culprits[d->nculprits++] = cw->tid;
			d->child = cw;
			d->child_index = i;
			const char *nm = syscall_name(c->wr_nr);
			snprintf(long_text, sizeof(long_text), "%s waits in %s for child pid %d (%s)%s "
				 "blocked in %s() on a full pipe%s whose only reader is this "
				 "process, and none of its threads reads it: a pipe deadlock; read the pipe "
				 "while waiting (use communicate() instead of wait())", a, where,
				 (int)c->pid, cq, by, nm ? nm : "write", fill);
			set_summary(d, long_text);
			return true;
		}
	}
	return false;
}

bool childwait_is_op(uint32_t op)
{
	return op == PH_OP_CHILD_WAIT4 || op == PH_OP_CHILD_WAITID;
}

struct wf_info *childwait_waiter_info(const struct waitgraph *g, pid_t tid)
{
	for (size_t i = 0; g && g->info && i < g->p->nthreads; i++)
		if (g->p->threads[i].tid == tid)
			return &g->info[i];
	return NULL;
}
