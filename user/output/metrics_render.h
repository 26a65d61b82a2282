/* metrics_render: what GET /metrics answers (metrics.c serves it). Owns: the metric names,
 * types, help texts and labels (README "Fleet mode", Metrics: the names are a contract),
 * rendered from a struct metrics_view and this process's own CPU, RSS and BPF program
 * statistics; and the --bpf-stats switch (metrics_enable_bpf_stats, metrics.h). */
#ifndef PH_METRICS_RENDER_H
#define PH_METRICS_RENDER_H
#include "metrics.h"
#include "strbuf.h"

/* The whole exposition (text format 0.0.4) of v into sb (reset first); start_unix_s: when
 * tracing started, Unix time. */
void metrics_render(const struct metrics_view *v, double start_unix_s, struct strbuf *sb);
#endif
