/* caps: this process's effective capabilities, and which ones a refused access to another
 * process lacked (so that errors can name them). */
#ifndef PYHANG_CAPS_H
#define PYHANG_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Numbers from linux/capability.h; CAP_BPF and CAP_PERFMON are Linux 5.8+. */
enum {
	PH_CAP_DAC_OVERRIDE = 1,
	PH_CAP_DAC_READ_SEARCH = 2,
	PH_CAP_SYS_PTRACE = 19,
	PH_CAP_SYS_ADMIN = 21,
	PH_CAP_PERFMON = 38,
	PH_CAP_BPF = 39,
};

/* 0 and *eff (bit N = capability N) on success; -1 with errno if capget fails. */
int caps_effective(unsigned long long *eff);

/* What reading /proc/PID/mem (or another per-process file) needs and we lack, as
 * " (needs CAP_SYS_PTRACE)", " (needs CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE)", or ""
 * when we have both (then the refusal has another cause). Into buf; returns buf. */
const char *caps_proc_access_hint(pid_t pid, char *buf, size_t len);

#endif
