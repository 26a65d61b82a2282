/* limitcfg: the caps that keep one hostile process from blinding, slowing or flooding the
 * tracer, as settings with safe defaults. Owns: their values (one process-wide struct,
 * set once from the command line before tracing starts), their options and help text, and
 * the parsing of those options. Users: the BPF rate limits (ratelimit.c), the output caps
 * (outcap.c) and the metrics server (metrics.c). Every setting is in README.md's Security
 * section. */
#ifndef PH_LIMITS_H
#define PH_LIMITS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyhang.h"

struct limits {
	/* per process, per kind of event (enum ph_rl_kind), in the kernel; rate 0: no limit.
	 * Exec events (counted against the parent) get exec_factor times both. */
	double rate_per_s;
	uint32_t burst;
	uint32_t exec_factor;
	double suppressed_interval_s; /* a `suppressed` report per process at most this often */
	/* one output record: at most this many threads and frames per stack are written, and
	 * it never passes max_event_bytes (frames, then threads, are dropped to fit) */
	uint32_t max_threads;
	uint32_t max_frames;
	uint32_t max_event_bytes;
	/* metrics server */
	uint32_t metrics_per_peer;    /* connections at once from one peer (user, or address) */
	double metrics_header_s;      /* a request's headers must be in within this */
};

extern struct limits limits;

enum {
	LIMIT_OPT_RATE = 0x200,
	LIMIT_OPT_SUPPRESSED_INTERVAL,
	LIMIT_OPT_MAX_THREADS,
	LIMIT_OPT_MAX_FRAMES,
	LIMIT_OPT_MAX_EVENT_BYTES,
	LIMIT_OPT_METRICS_PER_PEER,
	LIMIT_OPT_METRICS_HEADER_TIMEOUT,
	LIMIT_OPT_LAST,
};

/* Entries for getopt_long's option table. */
#define LIMITS_LONG_OPTS \
	{ "rate-limit", required_argument, NULL, LIMIT_OPT_RATE }, \
	{ "suppressed-interval", required_argument, NULL, LIMIT_OPT_SUPPRESSED_INTERVAL }, \
	{ "max-threads", required_argument, NULL, LIMIT_OPT_MAX_THREADS }, \
	{ "max-frames", required_argument, NULL, LIMIT_OPT_MAX_FRAMES }, \
	{ "max-event-bytes", required_argument, NULL, LIMIT_OPT_MAX_EVENT_BYTES }, \
	{ "metrics-per-peer", required_argument, NULL, LIMIT_OPT_METRICS_PER_PEER }, \
	{ "metrics-header-timeout", required_argument, NULL, LIMIT_OPT_METRICS_HEADER_TIMEOUT },

#define LIMITS_USAGE \
	"Limits (what one hostile process can cost; see README, Security):\n" \
	"      --limit NAME=VALUE cap what one watched process may cost (repeatable): maps-bytes,\n" \
	"                         maps-names, elf-bytes, scan-bytes, tasks\n" \
	"      --rate-limit RATE[/BURST]\n" \
	"                         events per second each process may cause, per kind\n" \
	"                         (SIGCHLD changes, lost statuses, reaper stacks; exec\n" \
	"                         events of its children get 10 times both), BURST in a\n" \
	"                         row (default 20/100; 0: no limit). The rest is counted\n" \
	"                         and reported in `suppressed` events\n" \
	"      --suppressed-interval SECS\n" \
	"                         at most one `suppressed` event per process this often\n" \
	"                         (default 10)\n" \
	"      --max-threads N    threads written per event (default 4096)\n" \
	"      --max-frames N     frames written per stack (default 4096)\n" \
	"      --max-event-bytes SIZE\n" \
	"                         the largest output record, K/M suffixes (default 16M):\n" \
	"                         outer frames, then threads, are left out to fit\n" \
	"      --metrics-per-peer N\n" \
	"                         metrics connections at once per local user or remote\n" \
	"                         address (default 2)\n" \
	"      --metrics-header-timeout SECS\n" \
	"                         a metrics request must arrive within this (default 1)\n"

/* Parse the value of option opt (a LIMIT_OPT_*) into `limits`. 0, or -1 with a one-line
 * reason in why. */
int limits_parse(int opt, const char *arg, char *why, size_t whylen);
#endif
