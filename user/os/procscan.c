/* procscan: /proc facts about processes and threads (see procscan.h). */
#include "procscan.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read at most len-1 bytes of a small /proc file into buf (NUL-terminated). */
static ssize_t read_small_file(const char *path, char *buf, size_t len)
{
	if (len == 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
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

bool proc_has_exited(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = read_small_file(path, buf, sizeof(buf));
	if (n <= 0)
		return true;
	const char *paren = strrchr(buf, ')'); /* comm may hold ')' and spaces */
	if (!paren || paren[1] != ' ')
		return false;
	return paren[2] == 'Z' || paren[2] == 'X';
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

pid_t proc_ns_pid(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, "\nNSpid:");
	if (!p)
		return -1;
	p += 7;
	long last = -1;
	int fields = 0;
	for (int i = 0; i < 32; i++) { /* one field per nested pid namespace (at most 32) */
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		last = v;
		fields++;
		p = end;
	}
	return fields > 1 && last > 0 ? (pid_t)last : -1;
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

int proc_sigchld_ignored(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, "\nSigIgn:");
	if (!p)
		return -1;
	unsigned long long mask = strtoull(p + 8, NULL, 16);
	return (mask >> (17 - 1)) & 1; /* bit (signo - 1); SIGCHLD is 17 on x86_64 */
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
	char path[80], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	/* comm (field 2) may contain spaces and ')': fields resume after the last ')' */
	const char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (int field = 3; field < 39; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	char *end;
	long cpu = strtol(p + 1, &end, 10);
	return (end == p + 1 || cpu < 0 || cpu > 65535) ? -1 : (int)cpu;
}

/* The children of pid (of each of its threads, at most PROC_CHILDREN_TASKS), at most max in out.
 * *more when some were left out. */
size_t proc_children(pid_t pid, pid_t *out, size_t max, bool *more)
{
	char path[64], buf[4096];
	size_t n = 0, tasks = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		if (++tasks > PROC_CHILDREN_TASKS) {
			*more = true;
			break;
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", (int)pid, e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		if ((size_t)r == sizeof(buf) - 1) {
			*more = true; /* a longer list: its last number may be cut, drop it */
			char *sp = strrchr(buf, ' ');
			if (sp)
				*sp = '\0';
		}
		char *s = buf, *end;
		for (;;) {
			long v = strtol(s, &end, 10);
			if (end == s)
				break;
			s = end;
			if (v <= 0)
				continue;
			if (n == max) {
				*more = true;
				goto out;
			}
			out[n++] = (pid_t)v;
		}
	}
out:
	closedir(d);
	return n;
}

int proc_stat_fields(pid_t pid, char *state, pid_t *ppid, pid_t *session)
{
	char path[48], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *rp = strrchr(buf, ')'); /* the comm before it is the process's own choice */
	char st;
	int pp, pg, sid;
	if (!rp || sscanf(rp + 1, " %c %d %d %d", &st, &pp, &pg, &sid) != 4)
		return -1;
	if (state)
		*state = st;
	if (ppid)
		*ppid = pp;
	if (session)
		*session = sid;
	return 0;
}
