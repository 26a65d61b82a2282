/* metrics: `--metrics-addr HOST:PORT`, a Prometheus text exposition (format 0.0.4) at
 * GET /metrics, served from the tracer's single-threaded event loop. Owns: parsing and
 * binding the address, a bounded non-blocking HTTP/1.x responder (a few connections at
 * most, bounded request size, one response then close, a deadline per connection), the
 * metric names (README "Fleet mode"), and `--bpf-stats` (BPF run-time statistics enabled
 * for the life of the process). Never blocks the loop on a slow client. What it shows of
 * the tracer comes through struct metrics_view, filled at each scrape; it knows nothing
 * else of the tracer's state. */
#ifndef PH_METRICS_H
#define PH_METRICS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "output.h"
#include "pyhang.h"

struct loader;
struct metrics;

/* What a scrape shows of the tracer, filled by it at each scrape (the counts are the same
 * as the stop event's). */
struct metrics_view {
	struct loader *ld; /* the BPF object: scanner, kernel loss counters, per-program stats */
	uint64_t threshold_ns;
	struct rec_stop counts;             /* REC_EVENT_COUNTS and REC_LOSS_REASONS so far */
	uint64_t n_suppressed[PH_RL_KINDS]; /* by enum ph_rl_kind */
};
typedef void (*metrics_view_fn)(void *ctx, struct metrics_view *out);

/* Check the syntax of HOST:PORT ("127.0.0.1:9464", "[::1]:9464", "localhost:9464",
 * ":9464" for every IPv4 address); 0 or -1. */
int metrics_addr_valid(const char *addr);
/* Bind and listen on addr, serving what view(ctx, ...) fills at each scrape (ctx must
 * outlive the server); on failure writes a one-line reason into err, returns NULL. */
struct metrics *metrics_open(const char *addr, metrics_view_fn view, void *ctx, char *err,
			     size_t errlen);
void metrics_close(struct metrics *m);
/* "127.0.0.1:9464" as bound (the real port when 0 was asked for). */
const char *metrics_bound_addr(const struct metrics *m);

/* Wait up to timeout_ms for the ring buffer's epoll fd (rb_fd) or a metrics socket.
 * Returns >0 when something is ready, 0 on timeout, -errno (-EINTR on a signal). */
int metrics_wait(struct metrics *m, int rb_fd, int timeout_ms);
/* Accept, read, answer and close what metrics_wait found ready; expire slow clients. */
void metrics_service(struct metrics *m);

/* --bpf-stats: turn on kernel.bpf_stats_enabled while this process lives (BPF_ENABLE_STATS:
 * the kernel restores it when the fd closes, kill -9 included). 0 or -1 with err set. */
int metrics_enable_bpf_stats(char *err, size_t errlen);
#endif
