/* pysyscall: what a thread does now, from /proc (see pyreader_int.h).
 * Owns: the /proc/PID/task/TID/syscall files kept open (bounded by RLIMIT_NOFILE), reading
 * them without attaching, and classifying a thread (running, lock wait, GIL wait, sleep). */
#include "pyreader_int.h"

/* The /proc/PID/task/TID/syscall files kept open (over every process) are at most a
 * quarter of RLIMIT_NOFILE's soft limit, 64 to 4096 (256 at the usual 1024): a process
 * with thousands of threads must not use up the tracer's file descriptors and so cut every
 * other process's stacks. The threads past it have theirs opened, read and closed on each
 * read (an open and a close more a thread). */
static size_t sysfds_kept;

static size_t sysfd_keep_max(void)
{
	static size_t max;
	struct rlimit rl;
	if (max == 0) {
		rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
		max = soft / 4 < 64 ? 64 : soft / 4 > 4096 ? 4096 : (size_t)(soft / 4);
	}
	return max;
}

/* The open /proc/PID/task/TID/syscall of tid (threads come in the same order on every
 * read, so the search starts after the previous hit), or -1. */
static struct sysfd *sysfd_find(struct py_proc *p, pid_t tid)
{
	for (size_t k = 0; k < p->nsysfds; k++) {
		size_t i = (p->syscursor + k) % p->nsysfds;
		if (p->sysfds[i].tid == tid) {
			p->syscursor = i + 1;
			return &p->sysfds[i];
		}
	}
	return NULL;
}

static struct sysfd *sysfd_open(struct py_proc *p, pid_t tid)
{
	if (p->nsysfds == p->syscap) {
		size_t nc = p->syscap ? p->syscap * 2 : 16;
		struct sysfd *nv = realloc(p->sysfds, nc * sizeof(*nv));
		if (!nv)
			return NULL;
		p->sysfds = nv;
		p->syscap = nc;
	}
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)p->pid, (int)tid);
	int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	sysfds_kept++;
	struct sysfd *s = &p->sysfds[p->nsysfds++];
	s->tid = tid;
	s->fd = fd;
	s->gen = pm_gen(&p->pm);
	return s;
}

/* Closes the files of threads that were not seen in this read (all when everything). */
void sysfd_prune(struct py_proc *p, bool everything)
{
	size_t keep = 0;
	for (size_t i = 0; i < p->nsysfds; i++) {
		if (!everything && p->sysfds[i].gen == pm_gen(&p->pm))
			p->sysfds[keep++] = p->sysfds[i];
		else {
			close(p->sysfds[i].fd);
			sysfds_kept--;
		}
	}
	p->nsysfds = keep;
	p->syscursor = 0;
}

/* /proc/PID/task/TID/syscall opened, read and closed. Bytes read or -1. */
static ssize_t read_task_syscall_once(pid_t pid, pid_t tid, char *buf, size_t cap)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf, cap - 1, 0);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* Reads the file again from offset 0 (seq_file regenerates it); reopens it once when the
 * old one fails (thread gone, TID reused). Bytes read or -1. */
static ssize_t read_task_syscall(struct walk *w, pid_t tid, char *buf, size_t cap)
{
	struct sysfd *s = sysfd_find(w->p, tid);
	if (!s && sysfds_kept >= sysfd_keep_max())
		return read_task_syscall_once(w->p->pid, tid, buf, cap);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!s && !(s = sysfd_open(w->p, tid)))
			return -1;
		ssize_t n = pread(s->fd, buf, cap - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			s->gen = pm_gen(&w->p->pm);
			return n;
		}
		s->tid = -1; /* stale: dropped by the next prune */
		s->gen = 0;
		s = NULL;
	}
	return -1;
}

/* /proc/PID/task/TID/syscall: "running", "-1 sp pc" or "nr arg1 ... arg6 sp pc". */
void classify_state(struct walk *w, struct py_thread *t, const uint64_t (*gil)[2],
			   size_t ngil)
{
	char buf[256];
	t->syscall_nr = -1;
	t->state = PY_STATE_UNKNOWN;
	if (t->tid <= 0)
		return;
	if (read_task_syscall(w, t->tid, buf, sizeof(buf)) <= 0)
		return;
	if (strncmp(buf, "running", 7) == 0) {
		t->state = PY_STATE_RUNNING;
		return;
	}
	long nr;
	unsigned long long a1 = 0, a2 = 0, a3 = 0, a4 = 0;
	int n = sscanf(buf, "%ld %llx %llx %llx %llx", &nr, &a1, &a2, &a3, &a4);
	if (n < 1)
		return;
	if (nr < 0) {
		t->state = PY_STATE_RUNNING; /* in user mode, not in a system call */
		return;
	}
	t->syscall_nr = nr;
	t->syscall_arg1 = n >= 2 ? a1 : 0;
	if (nr != SYS_FUTEX_X86_64 || n < 3) {
		t->state = PY_STATE_SLEEP;
		return;
	}
	t->futex_addr = a1;
	t->futex_op = (unsigned)a2;
	t->futex_timed = n < 5 || a4 != 0; /* timeout pointer; unknown counts as timed */
	t->futex_timeout = n < 5 ? 0 : a4;
	unsigned op = t->futex_op & 127; /* without FUTEX_PRIVATE_FLAG / CLOCK_REALTIME */
	if (op != 0 && op != 9 && op != 6 && op != 11 && op != 13) { /* WAIT, WAIT_BITSET, LOCK_PI,
									  WAIT_REQUEUE_PI, LOCK_PI2 */
		t->state = PY_STATE_RUNNING;
		return;
	}
	t->state = PY_STATE_LOCK_WAIT;
	for (size_t i = 0; i < ngil; i++)
		if (gil[i][0] && a1 >= gil[i][0] && a1 < gil[i][1])
			t->state = PY_STATE_GIL_WAIT;
}
