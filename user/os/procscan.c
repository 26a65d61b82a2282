/* procscan: /proc facts about processes and threads (see procscan.h). */
#include "procscan.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read at most len-1 bytes of a small /proc file into buf (NUL-terminated). */
static ssize_t read_small_file(const char *path, char *buf, size_t len)
{
	if (len == 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < len - 1) {
		ssize_t n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

static bool parse_pid(const char *s, pid_t *out)
{
	if (!*s)
		return false;
	long v = 0;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p) || v > 0x3fffffff)
			return false;
		v = v * 10 + (*p - '0');
	}
	*out = (pid_t)v;
	return v > 0;
}

int proc_for_each_pid(const char *dir, size_t max_entries, int (*fn)(pid_t, void *), void *arg)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int rc = 0;
	size_t seen = 0;
	struct dirent *de;
	while (rc == 0 && seen < max_entries && (de = readdir(d)) != NULL) {
		pid_t pid;
		if (!parse_pid(de->d_name, &pid))
			continue;
		seen++;
		rc = fn(pid, arg);
	}
	closedir(d);
	return rc;
}

bool proc_exists(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return access(path, F_OK) == 0;
}

/* The digits of s[0..len) as a number of at most max; false when not all digits or more. */
static bool parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int proc_stat_parse(const char *text, struct proc_stat *out)
{
	memset(out, 0, sizeof(*out));
	out->processor = -1;
	/* comm (field 2) may hold spaces, '(' and ')': the fields resume after the last ')' */
	const char *p = strrchr(text, ')');
	if (!p)
		return -1;
	p++;
	/* each field after one space, up to the next space or the line's end */
	for (int field = 3; *p == ' ' && p[1] && p[1] != ' ' && p[1] != '\n'; field++) {
		const char *f = p + 1;
		size_t len = strcspn(f, " \n");
		uint64_t v;
		if (field == 3) {
			if (len != 1)
				break;
			out->state = *f;
		} else if (field == 4) {
			if (!parse_uint(f, len, 0x7fffffff, &v))
				break;
			out->ppid = (pid_t)v;
		} else if (field == 6) {
			if (!parse_uint(f, len, 0x7fffffff, &v))
				break;
			out->session = (pid_t)v;
		} else if (field == 22) {
			if (!parse_uint(f, len, UINT64_MAX, &v))
				break;
			out->start_time = v;
		} else if (field == 39) {
			if (!parse_uint(f, len, UINT64_MAX, &v))
				break;
			out->processor = v <= 65535 ? (int)v : -1;
		}
		out->nfields = field;
		p = f + len;
	}
	return out->nfields >= 4 ? 0 : -1;
}

int proc_stat_read(pid_t pid, pid_t tid, struct proc_stat *out)
{
	char path[80], buf[1024];
	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0) {
		memset(out, 0, sizeof(*out));
		out->processor = -1;
		return -1;
	}
	return proc_stat_parse(buf, out) == 0 ? 0 : -2;
}

int proc_run_ns(pid_t pid, pid_t tid, uint64_t *out)
{
	char path[80], buf[128];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *end;
	*out = strtoull(buf, &end, 10);
	return end == buf ? -1 : 0;
}

pid_t proc_parent(pid_t pid)
{
	struct proc_stat st;
	return proc_stat_read(pid, 0, &st) == 0 ? st.ppid : -1;
}

bool proc_has_exited(pid_t pid)
{
	struct proc_stat st;
	int rc = proc_stat_read(pid, 0, &st);
	if (rc == -1)
		return true; /* gone */
	return rc == 0 && (st.state == 'Z' || st.state == 'X');
}

bool proc_dying(pid_t pid)
{
	uint64_t pnd;
	const uint64_t kill_bit = 1ull << (SIGKILL - 1);
	if (proc_has_exited(pid))
		return true;
	return (proc_signal_mask(pid, "SigPnd", &pnd) == 0 && (pnd & kill_bit)) ||
	       (proc_signal_mask(pid, "ShdPnd", &pnd) == 0 && (pnd & kill_bit));
}

pid_t proc_tgid(pid_t id)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)id);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, "\nTgid:");
	if (!p)
		return -1;
	long v = strtol(p + 6, NULL, 10);
	return v > 0 ? (pid_t)v : -1;
}

int proc_nspid(pid_t pid, pid_t tid, pid_t *ids, int max)
{
	char path[80], buf[4096];
	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	const char *p = strstr(buf, "\nNSpid:");
	if (!p)
		return 0;
	p += 7;
	int levels = 0;
	while (levels < PROC_MAX_PIDNS_LEVELS) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p || v <= 0 || v > 0x3fffffff)
			break;
		if (levels < max)
			ids[levels] = (pid_t)v;
		levels++;
		p = end;
	}
	return levels;
}

pid_t proc_ns_pid(pid_t pid)
{
	pid_t ids[PROC_MAX_PIDNS_LEVELS];
	int levels = proc_nspid(pid, 0, ids, PROC_MAX_PIDNS_LEVELS);
	return levels > 1 ? ids[levels - 1] : -1;
}

void proc_cmdline(pid_t pid, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	ssize_t n = read_small_file(path, out, len);
	if (n <= 0) {
		if (len)
			out[0] = '\0';
		return;
	}
	while (n > 0 && out[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == '\0')
			out[i] = ' ';
	out[n] = '\0';
}

pid_t proc_pidfd_pid(pid_t pid, pid_t tid, int fd)
{
	char path[96], buf[1024];
	if (fd < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/fdinfo/%d", (int)pid, (int)tid, fd);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, "\nPid:\t");
	if (!p)
		return -1;
	char *end;
	long v = strtol(p + 6, &end, 10);
	if (end == p + 6 || (*end != '\n' && *end != '\0') || v > 0x3fffffff)
		return -1;
	return v > 0 ? (pid_t)v : 0;
}

void proc_cgroup(pid_t pid, char *buf, size_t len)
{
	char path[64], data[4096];
	if (len)
		buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (read_small_file(path, data, sizeof(data)) <= 0)
		return;
	const char *line = strstr(data, "0::");
	if (line && (line == data || line[-1] == '\n'))
		line += 3;
	else if ((line = strchr(data, ':')) != NULL && (line = strchr(line + 1, ':')) != NULL)
		line += 1; /* cgroup v1: "N:controllers:/path" */
	else
		return;
	size_t n = strcspn(line, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(buf, line, n);
	buf[n] = '\0';
}

void proc_comm(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[64];
	if (tid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	ssize_t n = read_small_file(path, buf, len);
	if (n <= 0) {
		if (len)
			buf[0] = '\0';
		return;
	}
	if (buf[n - 1] == '\n')
		buf[n - 1] = '\0';
}

int proc_signal_mask(pid_t pid, const char *field, uint64_t *mask)
{
	char path[64], buf[4096], key[16];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	snprintf(key, sizeof(key), "\n%s:", field);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, key);
	if (!p)
		return -1;
	char *end;
	unsigned long long v = strtoull(p + strlen(key), &end, 16);
	if (end == p + strlen(key))
		return -1;
	*mask = v;
	return 0;
}

int proc_sigchld_ignored(pid_t pid)
{
	uint64_t mask;
	if (proc_signal_mask(pid, "SigIgn", &mask) != 0)
		return -1;
	return (int)((mask >> (17 - 1)) & 1); /* bit (signo - 1); SIGCHLD is 17 on x86_64 */
}

int proc_task_syscall(pid_t pid, pid_t tid, struct blocked_syscall *out)
{
	char path[80], buf[512];
	memset(out, 0, sizeof(*out));
	out->nr = -2;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	if (strncmp(buf, "running", 7) == 0) {
		out->nr = -1;
		return 0;
	}
	char *p = buf, *end;
	errno = 0;
	long nr = strtol(p, &end, 10);
	if (end == p || errno)
		return -1;
	out->nr = nr;
	p = end;
	for (int i = 0; i < 6; i++) {
		unsigned long long v = strtoull(p, &end, 16);
		if (end == p)
			break;
		out->args[i] = v;
		p = end;
	}
	return 0;
}

int proc_task_exec_start_ns(pid_t pid, pid_t tid, uint64_t *out)
{
	char path[80], buf[8192];
	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/thread-self/sched");
	else
		snprintf(path, sizeof(path), "/proc/%d/task/%d/sched", (int)pid, (int)tid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, "se.exec_start");
	if (!p)
		return -1;
	p = strchr(p, ':');
	if (!p)
		return -1;
	/* "ms.ns" with 6 decimals: parse as two integers to keep ns precision. */
	char *end;
	unsigned long long ms = strtoull(p + 1, &end, 10);
	unsigned long long frac = 0;
	int digits = 0;
	if (*end == '.') {
		for (const char *q = end + 1; isdigit((unsigned char)*q) && digits < 6; q++, digits++)
			frac = frac * 10 + (unsigned long long)(*q - '0');
	}
	while (digits++ < 6)
		frac *= 10;
	*out = ms * 1000000ull + frac;
	return 0;
}

int proc_task_last_cpu(pid_t pid, pid_t tid)
{
	struct proc_stat st;
	if (proc_stat_read(pid, tid, &st) != 0)
		return -1;
	return st.processor;
}

uint64_t proc_task_switches(pid_t pid, pid_t tid)
{
	char path[80], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return UINT64_MAX;
	const char *v = strstr(buf, "\nvoluntary_ctxt_switches:");
	const char *n = strstr(buf, "\nnonvoluntary_ctxt_switches:");
	if (!v || !n)
		return UINT64_MAX;
	return strtoull(v + 25, NULL, 10) + strtoull(n + 28, NULL, 10);
}

struct children_walk {
	pid_t pid;
	pid_t *out;
	size_t n, max, tasks, max_tasks;
	bool more;
};

/* One task's /proc/PID/task/TID/children: space-separated pids, its first 4 KiB. */
static int add_task_children(pid_t tid, void *arg)
{
	struct children_walk *w = arg;
	char path[80], buf[4096];
	if (++w->tasks > w->max_tasks) {
		w->more = true;
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)w->pid, (int)tid);
	ssize_t r = read_small_file(path, buf, sizeof(buf));
	if (r <= 0)
		return 0;
	if ((size_t)r == sizeof(buf) - 1) {
		w->more = true; /* a longer list: its last number may be cut, drop it */
		char *sp = strrchr(buf, ' ');
		if (sp)
			*sp = '\0';
	}
	char *s = buf, *end;
	for (;;) {
		long v = strtol(s, &end, 10);
		if (end == s)
			return 0;
		s = end;
		if (v <= 0)
			continue;
		if (w->n == w->max) {
			w->more = true;
			return 1;
		}
		w->out[w->n++] = (pid_t)v;
	}
}

size_t proc_children(pid_t pid, size_t max_tasks, pid_t *out, size_t max, bool *more)
{
	struct children_walk w = { .pid = pid, .out = out, .max = max, .max_tasks = max_tasks };
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	proc_for_each_pid(dir, max_tasks + 1, add_task_children, &w);
	if (more && w.more)
		*more = true;
	return w.n;
}

int proc_stat_fields(pid_t pid, char *state, pid_t *ppid, pid_t *session)
{
	struct proc_stat st;
	if (proc_stat_read(pid, 0, &st) != 0 || st.nfields < 6)
		return -1;
	if (state)
		*state = st.state;
	if (ppid)
		*ppid = st.ppid;
	if (session)
		*session = st.session;
	return 0;
}
