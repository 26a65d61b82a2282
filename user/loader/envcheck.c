/* envcheck: what the tracer needs of this host before it loads anything (see envcheck.h). */
#include "envcheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "caps.h"
#include "loader.h"

static const char *const TRACEFS_DIRS[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };

/* Every capability the tracer needs, proved by dropping each (tests/test_trace.py):
 *   CAP_BPF, CAP_PERFMON  load the tracing programs (and the cpu-clock perf event);
 *                         CAP_SYS_ADMIN covers both (and is all that kernels < 5.8 know)
 *   CAP_SYS_PTRACE        open /proc/PID/mem, /proc/PID/task/TID/syscall and follow
 *                         /proc/PID/root and /proc/PID/exe of processes not our own
 *   CAP_DAC_READ_SEARCH   the same files of other users are mode 0400/0600: without it their
 *                         processes would silently go unreported (CAP_DAC_OVERRIDE also does)
 * All missing ones are named in one line. */
static int check_capabilities(char *err, size_t errlen)
{
	unsigned long long eff;
	if (caps_effective(&eff) != 0) {
		snprintf(err, errlen, "cannot read own capabilities: %s", strerror(errno));
		return -1;
	}
#define HAS(c) (((eff >> (c)) & 1) != 0)
	bool admin = HAS(PH_CAP_SYS_ADMIN);
	const char *missing[4];
	int n = 0;
	if (!admin && !HAS(PH_CAP_BPF))
		missing[n++] = "CAP_BPF";
	if (!admin && !HAS(PH_CAP_PERFMON))
		missing[n++] = "CAP_PERFMON";
	if (!HAS(PH_CAP_SYS_PTRACE))
		missing[n++] = "CAP_SYS_PTRACE";
	if (!HAS(PH_CAP_DAC_READ_SEARCH) && !HAS(PH_CAP_DAC_OVERRIDE))
		missing[n++] = "CAP_DAC_READ_SEARCH";
#undef HAS
	if (n == 0)
		return 0;
	char names[128] = "";
	for (int i = 0; i < n; i++) {
		size_t used = strlen(names);
		snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "", missing[i]);
	}
	snprintf(err, errlen, "missing %s %s: run as root (sudo pyhang-trace)",
		 n == 1 ? "capability" : "capabilities", names);
	return -1;
}

static const char *find_tracefs(void)
{
	for (size_t i = 0; i < sizeof(TRACEFS_DIRS) / sizeof(TRACEFS_DIRS[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/events/syscalls", TRACEFS_DIRS[i]);
		if (access(path, F_OK) == 0)
			return TRACEFS_DIRS[i];
	}
	return NULL;
}

static int ensure_tracefs(char *err, size_t errlen)
{
	if (find_tracefs())
		return 0;
	if (mount("tracefs", TRACEFS_DIRS[0], "tracefs", 0, NULL) != 0 && errno != EBUSY) {
		int e = errno;
		snprintf(err, errlen, "tracefs is not mounted and mounting it on %s failed: %s%s "
			 "(mount -t tracefs tracefs %s)", TRACEFS_DIRS[0], strerror(e),
			 e == EPERM ? " (mounting needs CAP_SYS_ADMIN)" : "", TRACEFS_DIRS[0]);
		return -1;
	}
	if (!find_tracefs()) {
		snprintf(err, errlen, "tracefs has no syscall tracepoints (kernel without "
			 "CONFIG_FTRACE_SYSCALLS?)");
		return -1;
	}
	return 0;
}

int loader_check_environment(char *err, size_t errlen)
{
	if (check_capabilities(err, errlen))
		return -1;
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		snprintf(err, errlen, "kernel has no BTF (/sys/kernel/btf/vmlinux missing; needs "
			 "CONFIG_DEBUG_INFO_BTF=y)");
		return -1;
	}
	return ensure_tracefs(err, errlen);
}

bool tracepoint_exists(const char *category, const char *name)
{
	const char *root = find_tracefs();
	char path[256];
	if (!root)
		return false;
	snprintf(path, sizeof(path), "%s/events/%s/%s", root, category, name);
	return access(path, F_OK) == 0;
}
