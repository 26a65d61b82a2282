/* metrics_render: the Prometheus exposition (see metrics_render.h), and --bpf-stats. */
#include "metrics_render.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "loader.h"
#include "ratelimit.h"

static int g_bpf_stats_fd = -1;

/* ---------------------------------------------------------------- --bpf-stats */

int metrics_enable_bpf_stats(char *err, size_t errlen)
{
	if (g_bpf_stats_fd >= 0)
		return 0;
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (fd < 0) {
		snprintf(err, errlen, "--bpf-stats: cannot enable BPF run-time statistics: %s%s",
			 strerror(-fd), -fd == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
		return -1;
	}
	int flags = fcntl(fd, F_GETFD);
	if (flags >= 0)
		fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	g_bpf_stats_fd = fd; /* kept open until exit: the kernel turns the stats off then */
	return 0;
}

/* The sysctl file shows only what was written to it, not a BPF_ENABLE_STATS holder. */
static int bpf_stats_enabled(void)
{
	if (g_bpf_stats_fd >= 0)
		return 1;
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "re");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v ? 1 : 0;
}

/* ---------------------------------------------------------------- exposition */

static void put_label_value(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sb_putc(sb, '\\'), sb_putc(sb, *s);
		else if (*s == '\n')
			sb_puts(sb, "\\n");
		else
			sb_putc(sb, *s);
	}
}

static void family(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct prog_ctx {
	struct strbuf *sb;
	bool time; /* run time rather than run count */
};

static void put_prog(void *arg, const char *name, int fd)
{
	struct prog_ctx *pc = arg;
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
		return;
	sb_puts(pc->sb, pc->time ? "pyhang_bpf_program_run_seconds_total{program=\""
				 : "pyhang_bpf_program_runs_total{program=\"");
	put_label_value(pc->sb, name);
	if (pc->time)
		sb_printf(pc->sb, "\"} %.9f\n", (double)info.run_time_ns / 1e9);
	else
		sb_printf(pc->sb, "\"} %llu\n", (unsigned long long)info.run_cnt);
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long long size = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

void metrics_render(const struct metrics_view *v, double start_unix_s, struct strbuf *sb)
{
	const struct metrics_view c = *v;
	sb_reset(sb);

	struct utsname u;
	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	family(sb, "pyhang_build_info", "gauge",
	       "Always 1; labels: libbpf version, kernel release, long-wait scanner.");
	sb_printf(sb, "pyhang_build_info{libbpf=\"%s\",kernel=\"", libbpf_version_string());
	put_label_value(sb, u.release);
	sb_printf(sb, "\",scanner=\"%s\"} 1\n", loader_scan_mechanism(c.ld));

	family(sb, "pyhang_start_time_seconds", "gauge", "When tracing started, Unix time.");
	sb_printf(sb, "pyhang_start_time_seconds %.3f\n", start_unix_s);
	family(sb, "pyhang_threshold_seconds", "gauge", "Futex waits longer than this are reported.");
	sb_printf(sb, "pyhang_threshold_seconds %.9g\n", (double)c.threshold_ns / 1e9);

	family(sb, "pyhang_findings_total", "counter", "Events reported, by kind.");
#define COUNT(field, name)                                                                          \
	sb_printf(sb, "pyhang_findings_total{kind=\"%s\"} %llu\n", name, (unsigned long long)c.counts.field);
	REC_EVENT_COUNTS(COUNT)
#undef COUNT

	family(sb, "pyhang_open_long_waits", "gauge",
	       "Long waits reported and not ended yet (long_wait minus wait_end).");
	sb_printf(sb, "pyhang_open_long_waits %llu\n",
		  (unsigned long long)(c.counts.long_waits > c.counts.wait_ends ? c.counts.long_waits - c.counts.wait_ends : 0));

	family(sb, "pyhang_lost_events_total", "counter",
	       "Events that could not be recorded, by reason (as in the stop event's lost).");
#define LOSS(field, name, text)                                                                     \
	sb_printf(sb, "pyhang_lost_events_total{reason=\"%s\"} %llu\n", name, (unsigned long long)c.counts.field);
	REC_LOSS_REASONS(LOSS)
#undef LOSS

	family(sb, "pyhang_suppressed_events_total", "counter",
	       "Events held back by the per-process rate limits, by kind (reported in suppressed events).");
	for (unsigned k = 0; k < PH_RL_KINDS; k++)
		sb_printf(sb, "pyhang_suppressed_events_total{kind=\"%s\"} %llu\n", ratelimit_kind_name(k),
			  (unsigned long long)c.n_suppressed[k]);

	family(sb, "pyhang_bpf_stats_enabled", "gauge",
	       "1 when kernel.bpf_stats_enabled is on (--bpf-stats); BPF run counters stay 0 otherwise.");
	sb_printf(sb, "pyhang_bpf_stats_enabled %d\n", bpf_stats_enabled());
	struct prog_ctx pc = { .sb = sb, .time = false };
	family(sb, "pyhang_bpf_program_runs_total", "counter",
	       "Times each BPF program ran (kernel run_cnt; needs bpf_stats_enabled).");
	loader_for_each_prog(c.ld, put_prog, &pc);
	pc.time = true;
	family(sb, "pyhang_bpf_program_run_seconds_total", "counter",
	       "Time spent in each BPF program (kernel run_time_ns; needs bpf_stats_enabled).");
	loader_for_each_prog(c.ld, put_prog, &pc);

	struct rusage ru;
	double cpu = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	family(sb, "pyhang_process_cpu_seconds_total", "counter",
	       "User and system CPU time of the tracer itself (not of its BPF programs).");
	sb_printf(sb, "pyhang_process_cpu_seconds_total %.6f\n", cpu);
	family(sb, "pyhang_process_resident_memory_bytes", "gauge", "Resident set size of the tracer.");
	sb_printf(sb, "pyhang_process_resident_memory_bytes %llu\n", (unsigned long long)rss_bytes());
}
