/* childwait: waits for children across processes (see childwait.h). */
#include "childwait.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hangtrack.h"
#include "procscan.h"
#include "pyhang.h"
#include "pywrite.h"
#include "syscall_names.h"
#include "textreport.h"
#include "waitgraph_json.h"

/* x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl) */
enum {
	NR_READ = 0, NR_WRITE = 1, NR_POLL = 7, NR_PREAD64 = 17, NR_PWRITE64 = 18, NR_READV = 19,
	NR_WRITEV = 20, NR_SELECT = 23, NR_EPOLL_WAIT = 232, NR_PSELECT6 = 270, NR_PPOLL = 271,
	NR_SPLICE = 275, NR_EPOLL_PWAIT = 281, NR_PREADV = 295, NR_PWRITEV = 296,
	NR_PREADV2 = 327, NR_PWRITEV2 = 328, NR_IO_URING_ENTER = 426, NR_EPOLL_PWAIT2 = 441,
};


static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

/* State letter and parent of a task, from the fields after the last ')' of its stat (the
 * comm before it is the process's to choose, proc(5)). 0 or -1. */
static int task_stat(pid_t pid, pid_t tid, char *state, pid_t *ppid)
{
	char path[80], buf[1024];
	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	int pp = 0;
	if (!p || sscanf(p + 1, " %c %d", state, &pp) != 2)
		return -1;
	if (ppid)
		*ppid = pp;
	return 0;
}

static void read_cmdline(pid_t pid, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int n = read_file(path, out, len);
	if (n <= 0) {
		out[0] = '\0';
		return;
	}
	while (n > 0 && out[n - 1] == '\0')
		n--;
	for (int i = 0; i < n; i++)
		if (out[i] == '\0')
			out[i] = ' ';
	out[n] = '\0';
}

struct kids {
	pid_t *pids;
	size_t n, max;
	bool more;
	pid_t parent;
};

/* The children a task forked: /proc/PID/task/TID/children (Linux 3.5+, CONFIG_PROC_CHILDREN). */
static int add_task_children(pid_t tid, void *arg)
{
	struct kids *k = arg;
	char path[80], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)k->parent, (int)tid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	char *s = buf, *end;
	for (;;) {
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		s = end;
		if (v <= 0)
			continue;
		if (k->n == k->max) {
			k->more = true;
			return 1;
		}
		k->pids[k->n++] = (pid_t)v;
	}
	if (strlen(buf) >= sizeof(buf) - 1)
		k->more = true;
	return 0;
}

static size_t children_of(pid_t pid, pid_t *out, size_t max, bool *more)
{
	struct kids k = { .pids = out, .max = max, .parent = pid };
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	proc_for_each_pid(dir, CW_MAX_TASKS, add_task_children, &k);
	if (more)
		*more = k.more;
	return k.n;
}

static bool is_write_call(long nr)
{
	return nr == NR_WRITE || nr == NR_WRITEV || nr == NR_PWRITE64 || nr == NR_PWRITEV ||
	       nr == NR_PWRITEV2;
}

static bool is_read_call(long nr)
{
	return nr == NR_READ || nr == NR_READV || nr == NR_PREAD64 || nr == NR_PREADV ||
	       nr == NR_PREADV2 || nr == NR_SPLICE;
}

/* voluntary + nonvoluntary context switches of a task (/proc/PID/task/TID/status, Linux
 * 2.6.23+): unchanged between two looks means it never ran in between. UINT64_MAX unknown. */
static uint64_t task_switches(pid_t pid, pid_t tid)
{
	char path[80], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return UINT64_MAX;
	const char *v = strstr(buf, "\nvoluntary_ctxt_switches:");
	const char *n = strstr(buf, "\nnonvoluntary_ctxt_switches:");
	if (!v || !n)
		return UINT64_MAX;
	return strtoull(v + 25, NULL, 10) + strtoull(n + 28, NULL, 10);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
	c->wr_switches = task_switches(s->pid, tid);
	proc_comm(s->pid, tid, c->wr_comm, sizeof(c->wr_comm));
	return 1;
}

/* A thread of c's subtree (c first, then its descendants breadth first, CW_MAX_DESC
 * processes) blocked writing to a pipe; then that pipe's holders and fill. */
static void find_pipe_writer(pid_t waiter, struct cw_child *c)
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
			n += children_of(q[i], q + n, CW_MAX_DESC - n, NULL);
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
	pipe_holders(c->pipe.ino, likely, nl, true, &c->pipe);
	bool waiter_reads = false;
	for (size_t i = 0; i < c->pipe.nholders; i++)
		waiter_reads |= c->pipe.holders[i].pid == waiter && c->pipe.holders[i].read_end;
	if (waiter_reads)
		pipe_holders(c->pipe.ino, likely, nl, false, &c->pipe);
	pipe_fill(c->wr_pid, c->wr_fd, c->pipe.ino, &c->pipe);
	c->pipe_read = true;
}

struct ht_arg {
	const struct hangtrack *ht;
	pid_t pid;
};

static bool child_long_blocked(void *arg, pid_t tid, uint64_t uaddr)
{
	const struct ht_arg *a = arg;
	return a->ht && ht_wait_is_open(a->ht, a->pid, tid, uaddr, NULL);
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
	struct ht_arg a = { ht, c->pid };
	struct diag_waits w = { child_long_blocked, &a };
	if (ht && c->have_graph && waitgraph_diagnose(&c->graph, 0, &w, &c->hang))
		c->hung = true;
	for (size_t i = 0; ht && !c->hung && i < c->py.nthreads; i++) {
		const struct py_thread *t = &c->py.threads[i];
		if (t->state == PY_STATE_LOCK_WAIT && child_long_blocked(&a, t->tid, t->futex_addr) &&
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
		       struct cw_child *c)
{
	char st = '?';
	c->pid = pid;
	c->syscall_nr = -1;
	c->py_tid = 0;
	proc_comm(pid, 0, c->comm, sizeof(c->comm));
	read_cmdline(pid, c->cmdline, sizeof(c->cmdline));
	if (task_stat(pid, 0, &st, NULL) != 0) {
		c->state = "gone";
		return;
	}
	switch (st) {
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
	find_pipe_writer(waiter, c);
	read_python_child(r, ht, c);
}

struct cw_wait *childwait_read(struct py_reader *r, const struct hangtrack *ht, pid_t pid,
			       pid_t tid, uint64_t uaddr)
{
	struct cw_wait *cw = calloc(1, sizeof(*cw));
	if (!cw)
		return NULL;
	cw->pid = pid;
	cw->tid = tid;
	cw->pid_arg = uaddr == PH_CHILD_ANY ? -1 : (int)uaddr;
	pid_t kids[CW_MAX_CHILDREN * 4];
	bool more = false;
	size_t nk = children_of(pid, kids, sizeof(kids) / sizeof(kids[0]), &more);
	pid_t pick[CW_MAX_CHILDREN];
	size_t np = 0;
	for (size_t i = 0; i < nk; i++) {
		if (cw->pid_arg > 0 && kids[i] != cw->pid_arg && proc_ns_pid(kids[i]) != cw->pid_arg)
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
		read_child(r, ht, pid, pick[i], &cw->children[cw->n++]);
	return cw;
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

/* ---- diagnoses ---------------------------------------------------------------------- */

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
	uint64_t ino = 0, now = now_ns();
	bool wr = false;
	if (!(proc_task_syscall(c->wr_pid, c->wr_tid, &sc) == 0 && sc.nr == c->wr_nr &&
	      (int)sc.args[0] == c->wr_fd && pipe_fd(c->wr_pid, c->wr_fd, &ino, NULL, &wr) == 1 &&
	      wr && ino == c->pipe.ino))
		return false;
	uint64_t sw = task_switches(c->wr_pid, c->wr_tid);
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

/* ---- open child waits --------------------------------------------------------------- */

void cw_table_open(struct cw_table *t, const struct cw_open *in)
{
	struct cw_open *free_slot = NULL, o = *in;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	o.next_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + CW_RECHECK_FIRST_NS;
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
	char st;
	pid_t ppid = 0;
	size_t n = 0;
	if (task_stat(child, 0, &st, &ppid) != 0 || ppid <= 0)
		return 0;
	pid_t ns = proc_ns_pid(child);
	for (size_t i = 0; i < CW_OPEN_MAX && n < max; i++) {
		const struct cw_open *o = &t->open[i];
		if (!o->tid || o->pid != ppid)
			continue;
		if (o->uaddr == PH_CHILD_ANY || o->uaddr == (uint64_t)child ||
		    (ns > 0 && o->uaddr == (uint64_t)ns))
			out[n++] = *o;
	}
	return n;
}
