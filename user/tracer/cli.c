/* cli: the tracer's command line (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annotate.h"
#include "bounds.h"
#include "limitcfg.h"
#include "metrics.h"
#include "procscan.h"
#include "pylayout.h"
#include "tracer.h"
#include "version.h"

static const char USAGE[] =
	"Usage: pyhang-trace [OPTIONS] [-- COMMAND [ARGS...]]\n"
	"       pyhang-trace dump PID [--json]\n"
	"\n"
	"Explains why Python processes hang or lose a child's exit status, live, without\n"
	"stopping them. BPF programs watch futex waits, SIGCHLD dispositions and wait()\n"
	"calls that fail with ECHILD; events are printed as they happen.\n"
	"\n"
	"What it reports:\n"
	"  long_wait          a thread has been blocked on a lock longer than the threshold\n"
	"                     (reported while it is still blocked; threads already blocked\n"
	"                     when tracing starts are found too, marked before_start)\n"
	"  wait_end           such a wait finally ended\n"
	"  sigchld_ignored    a process started (or stopped) ignoring SIGCHLD, which makes the\n"
	"                     kernel discard its children's exit statuses\n"
	"  child_status_lost  a wait for a child failed with ECHILD and the child's real exit\n"
	"                     status was lost (SIGCHLD ignored, or another thread reaped it)\n"
	"  hang               a wait with a proven cause, named by its code: deadlock (a\n"
	"                     lock-order cycle), self_deadlock (a lock it holds itself),\n"
	"                     all_threads_blocked, orphaned_lock (its holder exited),\n"
	"                     gil_wait (the GIL held too long), shutdown_join (exit waits\n"
	"                     for non-daemon threads stuck for good); across processes:\n"
	"                     pipe_deadlock, child_hung (a child that cannot finish),\n"
	"                     fork_held_lock, worker_died, pipe_own_writer (a pipe whose\n"
	"                     write end only its reader's process holds); asyncio\n"
	"                     (3.7-3.13): event_loop_blocked, event_loop_self_wait,\n"
	"                     await_cycle\n"
	"  hang_end           a reported hang is over: one of its threads moved again, or\n"
	"                     its process ended\n"
	"\n"
	"Options:\n"
	"  -p, --pid PID          trace only this process and its descendants, those running\n"
	"                         now and those it starts later (repeatable). Default: the\n"
	"                         whole host\n"
	"      --no-children      with -p: only the listed processes, not their descendants\n"
	"  -t, --threshold SECS   report waits longer than this (default 5; fractions allowed)\n"
	"      --report-idle      also report idle I/O waits as long_wait: a thread in accept()\n"
	"                         on a listening socket, a selector waiting only on listening\n"
	"                         sockets, an idle asyncio event loop (by default they are\n"
	"                         only marked \"idle\" in snapshots: a server waiting for\n"
	"                         clients is no problem)\n"
	"      --duration SECS    stop after this long (default: until Ctrl-C or SIGTERM)\n"
	"      --all              report every process, not only those running CPython\n"
	"      --json             JSON Lines on stdout (one object per event; see README)\n"
	"  -o, --output FILE      write events to FILE (appending; reopened on SIGHUP)\n"
	"  -q, --quiet            no start-up/shutdown messages on stderr (for daemons)\n"
	"      --metrics-addr HOST:PORT\n"
	"                         serve Prometheus metrics at http://HOST:PORT/metrics\n"
	"      --bpf-stats        turn on kernel.bpf_stats_enabled while running (BPF\n"
	"                         program run counts and times in the metrics)\n"
	"      --ringbuf-size SIZE\n"
	"                         kernel-to-userspace ring buffer size in bytes, K/M/G\n"
	"                         suffixes allowed; a power of two from 64K to 1G\n"
	"                         (default %s). Events that do not fit are counted as lost\n"
	"      --hang-timeout SECS\n"
	"                         CI guard (default: off): when a hang of COMMAND or a\n"
	"                         descendant has lasted SECS, print the incident report as a\n"
	"                         final block on stderr, end the command and all its\n"
	"                         descendants (SIGTERM, then SIGKILL after --kill-after) and\n"
	"                         exit with status 124. With -p (or host-wide): exit 124 once\n"
	"                         such a hang is found, leaving the processes alone\n"
	"      --kill-after SECS  with --hang-timeout: from SIGTERM to SIGKILL (default 5)\n"
	"      --annotate github|none\n"
	"                         GitHub Actions annotations on stdout, one\n"
	"                         ::error file=F,line=N::summary line per finding at the\n"
	"                         user's frame (default: github when GITHUB_ACTIONS=true and\n"
	"                         stdout does not carry --json)\n"
	"  -V, --version          version, git commit, libbpf version, BPF features in use\n"
	"  -h, --help             show this help\n"
	"\n"
	LIMITS_USAGE
	"\n"
	"With -- COMMAND, the command is started under tracing (it and all its descendants,\n"
	"from their first instruction), and pyhang-trace exits with its exit status.\n"
	"\n"
	"Examples:\n"
	"  sudo pyhang-trace                       watch every Python process on this host\n"
	"  sudo pyhang-trace -p 4242 -t 1          one process, report waits over 1 second\n"
	"  sudo pyhang-trace --json -o trace.jsonl -- pytest -x\n"
	"                                          run a test suite under tracing\n"
	"  sudo pyhang-trace dump 4242             print every Python thread's stack now\n"
	"  sudo pyhang-trace --hang-timeout 300 -- pytest   end a hanging CI test run\n"
	"\n"
	"Supports %s (default builds) on x86_64, Linux 5.17 or later with BTF.\n"
	"Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH).\n"
	"Exit status: 0 after a normal stop, 2 on a usage or set-up error, the command's\n"
	"status with -- COMMAND, 124 when --hang-timeout acted.\n";

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "pyhang-trace: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see pyhang-trace --help)\n");
	exit(EXIT_USAGE);
}

static double parse_seconds(const char *s, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v <= 0 || v > 1e7) {
		if (strcmp(what, "threshold") == 0)
			die_usage("invalid threshold '%s': expected a number of seconds > 0, e.g. 5 or 0.5", s);
		if (strcmp(what, "hang-timeout") == 0)
			die_usage("invalid --hang-timeout '%s': expected a number of seconds > 0", s);
		if (strcmp(what, "kill-after") == 0)
			die_usage("invalid --kill-after '%s': expected a number of seconds > 0", s);
		die_usage("invalid duration '%s': expected a number of seconds > 0", s);
	}
	return v;
}

/* 4194304 -> "4M", 65536 -> "64K" (sizes here are powers of two). */
static void format_size(uint32_t bytes, char *out, size_t len)
{
	if (bytes >= (1u << 20) && bytes % (1u << 20) == 0)
		snprintf(out, len, "%uM", (unsigned)(bytes >> 20));
	else if (bytes >= (1u << 10) && bytes % (1u << 10) == 0)
		snprintf(out, len, "%uK", (unsigned)(bytes >> 10));
	else
		snprintf(out, len, "%u", (unsigned)bytes);
}

static pid_t parse_pid_arg(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v <= 0 || v > 0x3fffffff)
		die_usage("invalid pid '%s': expected a positive process id", s);
	return (pid_t)v;
}

enum { OPT_DURATION = 0x100, OPT_ALL, OPT_JSON, OPT_METRICS_ADDR, OPT_BPF_STATS, OPT_RINGBUF_SIZE,
       OPT_HANG_TIMEOUT, OPT_KILL_AFTER, OPT_ANNOTATE,
       OPT_LIMIT, OPT_NO_CHILDREN, OPT_REPORT_IDLE };

static const struct option LONG_OPTS[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "threshold", required_argument, NULL, 't' },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "no-children", no_argument, NULL, OPT_NO_CHILDREN },
	{ "report-idle", no_argument, NULL, OPT_REPORT_IDLE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "output", required_argument, NULL, 'o' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "metrics-addr", required_argument, NULL, OPT_METRICS_ADDR },
	{ "bpf-stats", no_argument, NULL, OPT_BPF_STATS },
	{ "ringbuf-size", required_argument, NULL, OPT_RINGBUF_SIZE },
	{ "hang-timeout", required_argument, NULL, OPT_HANG_TIMEOUT },
	{ "kill-after", required_argument, NULL, OPT_KILL_AFTER },
	{ "annotate", required_argument, NULL, OPT_ANNOTATE },
	{ "version", no_argument, NULL, 'V' },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "help", no_argument, NULL, 'h' },
	LIMITS_LONG_OPTS
	{ NULL, 0, NULL, 0 },
};


void parse_args(int argc, char **argv, struct tracer *t, struct cli *c)
{
	double threshold = 5.0;
	c->kill_after_s = -1;
	c->annotate = -1;
	opterr = 0;
	int opt;
	/* '+': stop at the first non-option, so COMMAND's own options are left alone;
	 * ':': a missing value returns ':' rather than '?'. */
	while ((opt = getopt_long(argc, argv, "+:p:t:o:qhV", LONG_OPTS, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (t->npids >= MAX_PIDS)
				die_usage("too many -p options (at most %s)", "64");
			t->pids[t->npids++] = parse_pid_arg(optarg);
			break;
		case 't':
			threshold = parse_seconds(optarg, "threshold");
			break;
		case OPT_DURATION:
			t->duration_s = parse_seconds(optarg, "duration");
			break;
		case OPT_ALL:
			t->all_processes = true;
			break;
		case OPT_NO_CHILDREN:
			t->no_children = true;
			break;
		case OPT_REPORT_IDLE:
			t->report_idle = true;
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case 'o':
			c->output = optarg;
			break;
		case 'q':
			c->quiet = true;
			break;
		case OPT_METRICS_ADDR:
			if (metrics_addr_valid(optarg) != 0)
				die_usage("invalid --metrics-addr '%s': expected HOST:PORT, e.g. 127.0.0.1:9464", optarg);
			c->metrics_addr = optarg;
			break;
		case OPT_BPF_STATS:
			c->bpf_stats = true;
			break;
		case OPT_RINGBUF_SIZE: {
			char why[128];
			if (loader_parse_ringbuf_size(optarg, &c->ringbuf_bytes, why, sizeof(why)) != 0) {
				fprintf(stderr, "pyhang-trace: invalid --ringbuf-size '%s': %s "
					"(see pyhang-trace --help)\n", optarg, why);
				exit(EXIT_USAGE);
			}
			break;
		}
		case OPT_HANG_TIMEOUT:
			c->hang_timeout_s = parse_seconds(optarg, "hang-timeout");
			break;
		case OPT_KILL_AFTER:
			c->kill_after_s = parse_seconds(optarg, "kill-after");
			break;
		case OPT_ANNOTATE: {
			bool gh;
			if (annotate_parse(optarg, &gh) != 0)
				die_usage("invalid --annotate '%s': expected github or none", optarg);
			c->annotate = gh;
			break;
		}
		case 'V':
			exit(version_print(stdout));
		case OPT_LIMIT: {
			char why[160];
			if (limits_set(optarg, why, sizeof(why)) != 0) {
				fprintf(stderr, "pyhang-trace: invalid --limit '%s': %s\n", optarg, why);
				exit(EXIT_USAGE);
			}
			break;
		}
		case 'h': {
			char def[32] = "built in";
			uint32_t bytes = loader_default_ringbuf_size();
			if (bytes)
				format_size(bytes, def, sizeof(def));
			printf(USAGE, def, pylayout_supported_text());
			exit(0);
		}
		case ':':
			die_usage("option '%s' needs a value", argv[optind - 1]);
			break;
		case LIMIT_OPT_RATE ... LIMIT_OPT_LAST - 1: {
			char why[128];
			if (limits_parse(opt, optarg, why, sizeof(why)) != 0) {
				const char *name = "";
				for (const struct option *o = LONG_OPTS; o->name; o++)
					if (o->val == opt)
						name = o->name;
				fprintf(stderr, "pyhang-trace: invalid --%s '%s': %s (see pyhang-trace --help)\n",
					name, optarg, why);
				exit(EXIT_USAGE);
			}
			break;
		}
		default:
			if (optopt && optopt < 0x100) {
				char o[3] = { '-', (char)optopt, 0 };
				die_usage("unknown option '%s'", o);
			}
			die_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	t->threshold_ns = (uint64_t)(threshold * 1e9);
	/* A COMMAND comes after "--": anything else left over is a mistake (a pid without -p). */
	bool dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
	if (optind < argc && !dashdash)
		die_usage("unexpected argument '%s' (a pid goes with -p; a command goes after --)",
			  argv[optind]);
	if (dashdash && optind == argc)
		die_usage("%s", "-- must be followed by a COMMAND to run");
	if (optind < argc)
		t->command = argv + optind;
	if (t->command && t->npids)
		die_usage("%s", "use either -p PID or -- COMMAND, not both");
	if (c->bpf_stats && !c->metrics_addr)
		die_usage("%s", "--bpf-stats only matters with --metrics-addr HOST:PORT");
	if (c->kill_after_s >= 0 && (!c->hang_timeout_s || !t->command))
		die_usage("%s", "--kill-after only matters with --hang-timeout SECS -- COMMAND");
	/* annotations are lines of stdout: not where --json writes its objects */
	if (c->annotate == 1 && c->json && !c->output)
		die_usage("%s", "--annotate github writes to stdout, where --json writes too: add -o FILE");
	t->annotate_github = c->annotate == 1 ||
			     (c->annotate < 0 && annotate_auto() && !(c->json && !c->output));
	for (int i = 0; i < t->npids; i++) {
		pid_t tgid = proc_exists(t->pids[i]) ? proc_tgid(t->pids[i]) : -1;
		if (tgid <= 0 || proc_has_exited(tgid)) { /* a zombie has exited too */
			fprintf(stderr, "pyhang-trace: no such process: pid %d\n", (int)t->pids[i]);
			exit(EXIT_USAGE);
		}
		if (tgid != t->pids[i]) { /* /proc/TID exists for threads too */
			if (!c->quiet)
				fprintf(stderr, "pyhang-trace: %d is a thread of process %d: tracing the process\n",
					(int)t->pids[i], (int)tgid);
			t->pids[i] = tgid;
		}
	}
	t->host_wide = !t->command && t->npids == 0;
}
