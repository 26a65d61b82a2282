/* ratelimit: settings and reports of the kernel's per-process rate limits (ratelimit.h). */
#include "ratelimit.h"

#include <string.h>

#include "limitcfg.h"
#include "procmem.h"
#include "procscan.h"
#include "pyhang.skel.h"
#include "tracer.h"

static const char *const KIND_NAMES[PH_RL_KINDS] = {
	[PH_RL_SIGCHLD] = "sigchld_ignored",
	[PH_RL_CHILD_LOST] = "child_status_lost",
	[PH_RL_REAP] = "reaper_stack",
	[PH_RL_EXEC] = "exec",
};

const char *ratelimit_kind_name(unsigned kind)
{
	return kind < PH_RL_KINDS ? KIND_NAMES[kind] : "?";
}

void ratelimit_configure(struct pyhang_bpf *skel)
{
	struct pyhang_bpf__rodata *ro = skel->rodata;
	ro->rl_on = limits.rate_per_s > 0;
	ro->rl_report_ns = (unsigned long long)(limits.suppressed_interval_s * 1e9);
	for (unsigned k = 0; k < PH_RL_KINDS; k++) {
		double rate = limits.rate_per_s, burst = limits.burst;
		if (k == PH_RL_EXEC) {
			rate *= limits.exec_factor;
			burst *= limits.exec_factor;
		}
		ro->rl_period_ns[k] = rate > 0 ? (unsigned long long)(1e9 / rate) : 0;
		if (ro->rl_period_ns[k] == 0)
			ro->rl_period_ns[k] = 1;
		ro->rl_burst[k] = burst >= 1 ? (unsigned long long)burst : 1;
	}
}

void tracer_on_suppressed(struct tracer *t, const struct ph_event *e)
{
	struct rec_suppressed r;
	memset(&r, 0, sizeof(r));
	r.p.pid = (pid_t)e->pid;
	r.p.tid = (pid_t)e->pid;
	r.p.mono_ns = e->ts_ns;
	r.p.ns_pid = -1;
	memcpy(r.p.comm, e->comm, sizeof(r.p.comm));
	r.p.comm[sizeof(r.p.comm) - 1] = '\0';
	if (!r.p.comm[0]) { /* reported by the scanner: outside the process */
		uint64_t start = 0;
		proc_comm(r.p.pid, r.p.pid, r.p.comm, sizeof(r.p.comm));
		if (pm_start_time(r.p.pid, &start) != 0 || start != e->proc_start)
			r.p.comm[0] = '\0'; /* gone, or its pid is another process's now */
	}
	r.since_mono_ns = e->suppressed.since_ns;
	for (unsigned k = 0; k < PH_RL_KINDS; k++) {
		r.counts[k] = e->suppressed.counts[k];
		t->n_suppressed[k] += e->suppressed.counts[k];
	}
	r.rate_per_s = limits.rate_per_s;
	r.burst = limits.burst;
	t->n_suppressed_reports++;
	if (t->out.ops->suppressed)
		t->out.ops->suppressed(&t->out, &r);
}
