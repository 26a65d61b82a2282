/* ratelimit: the userspace side of the per-process rate limits of bpf/ratelimit.bpf.h.
 * Owns: loading the limits (struct limits) into the BPF object's read-only settings, the
 * names of the limited kinds of event, and turning PH_EV_SUPPRESSED records into
 * `suppressed` events and counters (summary and metrics). */
#ifndef PH_RATELIMIT_H
#define PH_RATELIMIT_H
#include "pyhang.h"

struct pyhang_bpf;
struct tracer;

/* Before load: write the rate limits into the skeleton's .rodata. */
void ratelimit_configure(struct pyhang_bpf *skel);
/* "sigchld_ignored", "child_status_lost", "reaper_stack", "exec" (JSON and metric labels). */
const char *ratelimit_kind_name(unsigned kind);
/* A PH_EV_SUPPRESSED record. */
void tracer_on_suppressed(struct tracer *t, const struct ph_event *e);
#endif
