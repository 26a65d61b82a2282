/* iowait: the resource behind a blocking system call (see iowait.h).
 * x86_64 system call numbers and argument orders: arch/x86/entry/syscalls/syscall_64.tbl
 * and the man pages (poll(fds, nfds, timeout_ms), ppoll(fds, nfds, tsp, ...),
 * select(nfds, r, w, e, timeval*), pselect6(nfds, r, w, e, timespec*, ...),
 * epoll_wait/epoll_pwait(epfd, events, max, timeout_ms, ...), epoll_pwait2(epfd, events,
 * max, timespec*, ...), flock(fd, op), fcntl(fd, cmd, ...)); struct pollfd is {int fd;
 * short events, revents} (8 bytes). Linux keeps the caller's timeout struct unchanged until
 * the call returns (fs/select.c poll_select_finish), so what is read is the timeout given. */
#include "iowait.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "procscan.h"
#include "pyreader.h"
#include "syscall_names.h"

/* startscan.c */
uint64_t sched_now_on_cpu(int cpu);

enum {
	NR_READ = 0, NR_WRITE = 1, NR_POLL = 7, NR_PREAD = 17, NR_PWRITE = 18, NR_READV = 19,
	NR_WRITEV = 20, NR_SELECT = 23, NR_CONNECT = 42, NR_ACCEPT = 43, NR_SENDTO = 44,
	NR_RECVFROM = 45, NR_SENDMSG = 46, NR_RECVMSG = 47, NR_FCNTL = 72, NR_FLOCK = 73,
	NR_EPOLL_WAIT = 232, NR_PSELECT6 = 270, NR_PPOLL = 271, NR_EPOLL_PWAIT = 281,
	NR_ACCEPT4 = 288, NR_PREADV = 295, NR_PWRITEV = 296, NR_RECVMMSG = 299, NR_SENDMMSG = 307,
	NR_EPOLL_PWAIT2 = 441,
};
#define LOCK_NB_ 4
#define F_SETLKW_ 7
#define F_OFD_SETLKW_ 38

enum call_class { C_NONE, C_READ, C_WRITE, C_CONNECT, C_ACCEPT, C_LOCK, C_POLL, C_SELECT, C_EPOLL };

static enum call_class classify(long nr, const uint64_t a[6])
{
	switch (nr) {
	case NR_READ: case NR_PREAD: case NR_READV: case NR_RECVFROM: case NR_RECVMSG:
	case NR_PREADV: case NR_RECVMMSG:
		return C_READ;
	case NR_WRITE: case NR_PWRITE: case NR_WRITEV: case NR_SENDTO: case NR_SENDMSG:
	case NR_PWRITEV: case NR_SENDMMSG:
		return C_WRITE;
	case NR_CONNECT:
		return C_CONNECT;
	case NR_ACCEPT: case NR_ACCEPT4:
		return C_ACCEPT;
	case NR_FLOCK:
		return a[1] & LOCK_NB_ ? C_NONE : C_LOCK;
	case NR_FCNTL:
		return a[1] == F_SETLKW_ || a[1] == F_OFD_SETLKW_ ? C_LOCK : C_NONE;
	case NR_POLL:
		return (int)a[2] == 0 ? C_NONE : C_POLL;
	case NR_PPOLL:
		return C_POLL;
	case NR_SELECT: case NR_PSELECT6:
		/* no fd sets: time.sleep() <= 3.10 */
		return a[1] || a[2] || a[3] ? C_SELECT : C_NONE;
	case NR_EPOLL_WAIT: case NR_EPOLL_PWAIT: case NR_EPOLL_PWAIT2:
		return (nr != NR_EPOLL_PWAIT2 && (int)a[3] == 0) ? C_NONE : C_EPOLL;
	default:
		return C_NONE;
	}
}

bool io_is_wait_call(long nr, const uint64_t args[6])
{
	return classify(nr, args) != C_NONE;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int io_blocked_for_ns(pid_t pid, pid_t tid, uint64_t *ns)
{
	/* one CPU's scheduler clock, read at most every 100 ms per CPU (reading it moves this
	 * thread there), then advanced by the monotonic clock */
	static uint64_t at_sched[256], at_mono[256];
	int cpu = proc_task_last_cpu(pid, tid);
	uint64_t exec_start;
	if (cpu < 0 || cpu >= 256 || proc_task_exec_start_ns(pid, tid, &exec_start) != 0)
		return -1;
	uint64_t now = mono_ns();
	if (!at_sched[cpu] || now - at_mono[cpu] > 100000000ull) {
		uint64_t s = sched_now_on_cpu(cpu);
		if (!s)
			return -1;
		at_sched[cpu] = s;
		at_mono[cpu] = mono_ns();
		now = at_mono[cpu];
	}
	uint64_t sched_now = at_sched[cpu] + (now - at_mono[cpu]);
	*ns = sched_now > exec_start ? sched_now - exec_start : 0;
	return 0;
}

static bool is_socket(const struct fd_desc *d)
{
	static const char *const s[] = { "tcp", "tcp6", "udp", "udp6", "unix", "socket" };
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (!strcmp(d->type, s[i]))
			return true;
	return false;
}

static bool read_ts(struct py_reader *r, pid_t pid, uint64_t addr, bool timeval, double *out)
{
	int64_t v[2];
	if (!r || !addr || py_reader_mem_read(r, pid, addr, v, sizeof(v)) != 0 || v[0] < 0 || v[1] < 0 ||
	    v[1] >= (timeval ? 1000000 : 1000000000))
		return false;
	*out = (double)v[0] + (double)v[1] / (timeval ? 1e6 : 1e9);
	return true;
}

static void set_timeout_ptr(struct io_wait *o, struct py_reader *r, pid_t pid, uint64_t addr,
			    bool timeval)
{
	if (!addr) {
		o->timeout = IO_TIMEOUT_NONE;
		return;
	}
	o->timeout = read_ts(r, pid, addr, timeval, &o->timeout_s) ? IO_TIMEOUT_SET : IO_TIMEOUT_UNKNOWN;
}

static void set_timeout_ms(struct io_wait *o, int ms)
{
	if (ms < 0) {
		o->timeout = IO_TIMEOUT_NONE;
	} else {
		o->timeout = IO_TIMEOUT_SET;
		o->timeout_s = ms / 1000.0;
	}
}

static void add_fd(struct io_wait *o, struct fd_ctx *c, int fd, unsigned events)
{
	if (o->nfds < IO_MAX_FDS) {
		fd_describe(c, fd, false, &o->fds[o->nfds]);
		o->fds[o->nfds].events = events;
		o->nfds++;
	}
}

static void poll_fds(struct io_wait *o, struct fd_ctx *c, struct py_reader *r, pid_t pid,
		     uint64_t addr, uint64_t n)
{
	o->nfds_total = n > 0x7fffffff ? -1 : (int)n;
	/* negative fds are skipped: at most 1024 entries are looked at */
	for (uint64_t i = 0; r && addr && i < n && i < 1024 && o->nfds < IO_MAX_FDS; i++) {
		struct { int32_t fd; int16_t events, revents; } pf;
		if (py_reader_mem_read(r, pid, addr + i * 8, &pf, sizeof(pf)) != 0)
			break;
		if (pf.fd >= 0)
			add_fd(o, c, pf.fd, (uint16_t)pf.events);
	}
}

static void select_fds(struct io_wait *o, struct fd_ctx *c, struct py_reader *r, pid_t pid,
		       const uint64_t a[6])
{
	uint64_t n = a[0] > 1024 ? 1024 : a[0];
	unsigned char sets[2][128];
	bool have[2] = { false, false };
	for (int k = 0; k < 2; k++)
		have[k] = r && a[1 + k] && py_reader_mem_read(r, pid, a[1 + k], sets[k], (n + 7) / 8) == 0;
	o->nfds_total = 0;
	for (uint64_t fd = 0; fd < n; fd++) {
		unsigned ev = 0;
		if (have[0] && sets[0][fd / 8] & (1u << (fd % 8)))
			ev |= 1; /* POLLIN */
		if (have[1] && sets[1][fd / 8] & (1u << (fd % 8)))
			ev |= 4; /* POLLOUT */
		if (!ev)
			continue;
		o->nfds_total++;
		add_fd(o, c, (int)fd, ev);
	}
	if (!have[0] && !have[1])
		o->nfds_total = -1;
}

int io_describe(struct fd_ctx *c, struct py_reader *r, pid_t pid, const struct py_thread *t,
		struct io_wait *o)
{
	struct blocked_syscall s;
	memset(o, 0, sizeof(*o));
	o->in_call_s = -1;
	o->nfds_total = -1;
	if (t->tid <= 0 || proc_task_syscall(pid, t->tid, &s) != 0 || s.nr < 0 || s.nr != t->syscall_nr)
		return -1;
	enum call_class k = classify(s.nr, s.args);
	if (k == C_NONE)
		return -1;
	o->nr = s.nr;
	o->syscall = syscall_name(s.nr);
	if (!o->syscall)
		o->syscall = "?";
	int fd = s.args[0] > 0x7fffffff ? -1 : (int)s.args[0];
	switch (k) {
	case C_POLL:
		o->multi = true;
		poll_fds(o, c, r, pid, s.args[0], s.args[1]);
		if (s.nr == NR_POLL)
			set_timeout_ms(o, (int)s.args[2]);
		else
			set_timeout_ptr(o, r, pid, s.args[2], false);
		break;
	case C_SELECT:
		o->multi = true;
		select_fds(o, c, r, pid, s.args);
		set_timeout_ptr(o, r, pid, s.args[4], s.nr == NR_SELECT);
		break;
	case C_EPOLL: {
		int fds[IO_MAX_FDS];
		unsigned ev[IO_MAX_FDS];
		o->multi = true;
		o->fd_call = true; /* the epoll instance itself */
		fd_describe(c, fd, false, &o->on);
		int n = fd_epoll_targets(c, fd, fds, ev, IO_MAX_FDS);
		o->nfds_total = n;
		for (int i = 0; i < n && i < IO_MAX_FDS; i++)
			add_fd(o, c, fds[i], ev[i]);
		if (s.nr == NR_EPOLL_PWAIT2)
			set_timeout_ptr(o, r, pid, s.args[3], false);
		else
			set_timeout_ms(o, (int)s.args[3]);
		break;
	}
	default:
		o->fd_call = true;
		fd_describe(c, fd, k == C_LOCK, &o->on);
		o->timeout = IO_TIMEOUT_NONE;
		if (is_socket(&o->on)) {
			/* a kernel timeout set on the socket (setsockopt), else none: CPython polls
			 * before the call when the socket has a timeout, so blocking in the call
			 * itself means the Python timeout is None */
			double kt = k == C_READ || k == C_ACCEPT ? o->on.rcvtimeo_s : o->on.sndtimeo_s;
			if (kt > 0) {
				o->timeout = IO_TIMEOUT_SET;
				o->timeout_s = kt;
			} else {
				o->no_timeout_set = true;
			}
		}
		break;
	}
	uint64_t ns;
	if (io_blocked_for_ns(pid, t->tid, &ns) == 0)
		o->in_call_s = (double)ns / 1e9;
	return 0;
}
