/* caps: see caps.h. */
#include "caps.h"

#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int caps_effective(unsigned long long *eff)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0)
		return -1;
	*eff = (unsigned long long)data[0].effective | (unsigned long long)data[1].effective << 32;
	return 0;
}

static bool has(unsigned long long eff, int cap)
{
	return (eff >> cap) & 1;
}

const char *caps_proc_access_hint(pid_t pid, char *buf, size_t len)
{
	unsigned long long eff;
	buf[0] = '\0';
	if (caps_effective(&eff) != 0)
		return buf;
	/* Opening /proc/PID/mem: first the file mode (0600, owned by the target's user), then
	 * ptrace access, which needs CAP_SYS_PTRACE unless the target is ours (same user, and
	 * its capabilities a subset of ours). */
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	bool other_user = stat(path, &st) == 0 && st.st_uid != geteuid();
	bool need_dac = other_user && !has(eff, PH_CAP_DAC_READ_SEARCH) && !has(eff, PH_CAP_DAC_OVERRIDE);
	bool need_ptrace = !has(eff, PH_CAP_SYS_PTRACE);
	if (need_dac || need_ptrace)
		snprintf(buf, len, " (needs %s%s%s: run as root)", need_dac ? "CAP_DAC_READ_SEARCH" : "",
			 need_dac && need_ptrace ? " and " : "", need_ptrace ? "CAP_SYS_PTRACE" : "");
	return buf;
}
