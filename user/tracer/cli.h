/* cli: the tracer's command line. Owns: the options, --help's text, the checks between
 * options, and their errors (one line on stderr, exit status EXIT_USAGE). */
#ifndef PH_CLI_H
#define PH_CLI_H
#include <stdbool.h>
#include <stdint.h>

#define EXIT_USAGE 2

struct tracer;

struct cli {
	bool json;
	bool quiet;
	bool bpf_stats;
	const char *output;
	const char *metrics_addr;
	uint32_t ringbuf_bytes; /* 0: the BPF object's default */
	double hang_timeout_s;  /* 0: no guard */
	double kill_after_s;    /* < 0: not given */
	int annotate;           /* -1: automatic, 0 none, 1 github */
};

/* Parses argv into t (pids, threshold, duration, COMMAND, limits) and c; --help and
 * --version print and exit 0, an error exits EXIT_USAGE (see above). */
void parse_args(int argc, char **argv, struct tracer *t, struct cli *c);
#endif
