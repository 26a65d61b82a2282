/* trace: the tracer command, `pyhang-trace [OPTIONS] [-- COMMAND [ARGS...]]`.
 * Owns: the command line and its errors (one line, exit status 2), the order of start-up
 * (checks, load, attach, register processes, scan what already happened, `start`), the
 * event loop with its timers, running COMMAND, signals, and the `stop` summary. */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "annotate.h"
#include "guard.h"
#include "bounds.h"
#include "limitcfg.h"
#include "metrics.h"
#include "procscan.h"
#include "pyreader.h"
#include "selfguard.h"
#include "tracer.h"
#include "version.h"

#define EXIT_USAGE 2

static volatile sig_atomic_t g_stop_signal;
static volatile sig_atomic_t g_reopen;

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
	"  hang               a long wait with a proven cause: interpreter shutdown waiting\n"
	"                     for non-daemon threads, every thread blocked on a lock, the GIL\n"
	"                     held all along, or the main thread stuck while nothing runs;\n"
	"                     a forked child waiting for a lock fork() copied while held\n"
	"                     (fork_held_lock); a wait for a child that died (worker_died)\n"
	"\n"
	"Options:\n"
	"  -p, --pid PID          trace only this process and its descendants, those running\n"
	"                         now and those it starts later (repeatable). Default: the\n"
	"                         whole host\n"
	"      --no-children      with -p: only the listed processes, not their descendants\n"
	"  -t, --threshold SECS   report waits longer than this (default 5; fractions allowed)\n"
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
	"Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH) and a kernel\n"
	"with BTF.\n"
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
       OPT_LIMIT, OPT_NO_CHILDREN };

static const struct option LONG_OPTS[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "threshold", required_argument, NULL, 't' },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "no-children", no_argument, NULL, OPT_NO_CHILDREN },
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

static void parse_args(int argc, char **argv, struct tracer *t, struct cli *c)
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
			printf(USAGE, def);
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

static void on_stop_signal(int sig)
{
	g_stop_signal = sig;
}

static void on_hup(int sig)
{
	(void)sig;
	g_reopen = 1;
}

static void on_child(int sig)
{
	(void)sig; /* only interrupts poll() so the loop notices the command's end at once */
}

static void install_signal_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Fork COMMAND stopped on a pipe; it execs once the parent has put it under watch. */
static int spawn_command(struct tracer *t, int *go_fd)
{
	int go[2];
	if (pipe2(go, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(go[0]);
		close(go[1]);
		return -1;
	}
	if (pid == 0) {
		char c = 0;
		close(go[1]);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		selfguard_child_restore();
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		if (c != 'g')
			_exit(127);
		execvp(t->command[0], t->command);
		fprintf(stderr, "pyhang-trace: cannot run %s: %s\n", t->command[0], strerror(errno));
		_exit(127);
	}
	close(go[0]);
	t->child = pid;
	*go_fd = go[1];
	return 0;
}

static int release_command(int go_fd)
{
	ssize_t n;
	do
		n = write(go_fd, "g", 1);
	while (n < 0 && errno == EINTR);
	close(go_fd);
	return n == 1 ? 0 : -1;
}

static void reap_command(struct tracer *t, int flags)
{
	if (t->child <= 0 || t->child_done)
		return;
	int st;
	pid_t r = waitpid(t->child, &st, flags);
	if (r == t->child) {
		t->child_done = true;
		t->child_status = st;
	}
}

static int command_exit_code(const struct tracer *t)
{
	if (!t->child_done)
		return 128 + (g_stop_signal ? g_stop_signal : SIGTERM);
	if (WIFEXITED(t->child_status))
		return WEXITSTATUS(t->child_status);
	if (WIFSIGNALED(t->child_status))
		return 128 + WTERMSIG(t->child_status);
	return 1;
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static uint64_t g_forward_deadline;

/* On Ctrl-C/SIGTERM with a COMMAND: pass the signal on and give it 2 s to finish. */
static bool should_stop(struct tracer *t)
{
	if (t->child_done)
		return true;
	if (!g_stop_signal)
		return false;
	if (t->child <= 0)
		return true;
	if (!g_forward_deadline) {
		kill(t->child, (int)g_stop_signal);
		g_forward_deadline = mono_now_ns() + 2000000000ull;
	}
	return mono_now_ns() >= g_forward_deadline;
}

/* With --metrics-addr, one poll() covers the ring buffer's epoll fd and the metrics
 * sockets; the records are then consumed without waiting. */
static int wait_and_consume(struct tracer *t, struct metrics *m, int timeout)
{
	if (!m)
		return loader_poll(t->ld, timeout);
	int rc = metrics_wait(m, loader_epoll_fd(t->ld), timeout);
	if (rc < 0 && rc != -EINTR)
		return rc;
	int consumed = loader_poll(t->ld, 0);
	metrics_service(m); /* after consuming: the counts served are current */
	return consumed < 0 ? consumed : rc;
}

static void event_loop(struct tracer *t, struct metrics *m)
{
	uint64_t deadline = t->duration_s > 0 ? t->started_ns + (uint64_t)(t->duration_s * 1e9) : 0;
	while (!should_stop(t)) {
		int timeout = 200;
		timeout = min_timeout(timeout, loader_scan_due_in_ms(t->ld));
		timeout = min_timeout(timeout, tracer_run_exec_checks(t));
		timeout = min_timeout(timeout, tracer_recheck_waits(t));
		timeout = min_timeout(timeout, guard_due_in_ms(t));
		if (deadline) {
			uint64_t now = mono_now_ns();
			if (now >= deadline)
				break;
			timeout = min_timeout(timeout, (int)((deadline - now) / 1000000ull) + 1);
		}
		/* between bursts of reads, the reader's block cache (up to 32 MiB) is not kept */
		py_reader_release_cache(t->reader);
		int rc = wait_and_consume(t, m, timeout);
		if (rc < 0 && rc != -EINTR) {
			fprintf(stderr, "pyhang-trace: reading events failed: %s\n", strerror(-rc));
			break;
		}
		loader_scan_if_due(t->ld);
		if (g_reopen) {
			g_reopen = 0;
			output_reopen(&t->out);
		}
		reap_command(t, WNOHANG);
		if (guard_poll(t))
			return; /* its report is the last thing printed; the tree is gone */
	}
	/* the command's last events may still be in the ring buffer */
	loader_scan_if_due(t->ld);
	loader_poll(t->ld, 0);
}

static void emit_start(struct tracer *t)
{
	struct rec_start r = {
		.scope = t->command ? "command" : t->npids ? "pids" : "host",
		.pids = t->pids,
		.npids = t->npids,
		.descendants = t->command != NULL || (t->npids > 0 && !t->no_children),
		.command = t->command ? t->command[0] : NULL,
		.all_processes = t->all_processes,
		.threshold_s = (double)t->threshold_ns / 1e9,
		.scanner = loader_scan_mechanism(t->ld),
		.scan_period_s = (double)loader_scan_period_ns(t->ld) / 1e9,
		.ringbuf_bytes = loader_ringbuf_size(t->ld),
	};
	t->out.ops->start(&t->out, &r);
}

static void emit_stop(struct tracer *t)
{
	struct loader_stats s;
	struct rec_stop r = { 0 };
	if (loader_read_stats(t->ld, &s) == 0) {
		r.ringbuf_drops = s.counters[PH_STAT_RINGBUF_DROPS];
		r.waits_map_full = s.counters[PH_STAT_WAITS_FULL];
		r.map_full = s.counters[PH_STAT_MAP_FULL];
	}
	r.exec_checks_dropped = t->dropped_checks;
	r.lost_events = r.ringbuf_drops + r.waits_map_full + r.map_full + r.exec_checks_dropped;
	r.long_waits = t->n_long_waits;
	r.wait_ends = t->n_wait_ends;
	r.sigchld_changes = t->n_sigchld;
	r.child_status_lost = t->n_child_lost;
	r.hangs = t->n_hangs;
	r.suppressed = t->n_suppressed;
	r.hang_ends = t->n_hang_ends;
	r.duration_s = (double)(mono_now_ns() - t->started_ns) / 1e9;
	r.command_exit = t->command ? command_exit_code(t) : -1;
	t->out.ops->stop(&t->out, &r);
}

/* -1 when a pid has exited since the command line was read (set-up takes a while). */
static int warn_non_python_pids(const struct tracer *t)
{
	for (int i = 0; i < t->npids; i++) {
		/* asked after the look at its maps: one that exited meanwhile is not "not Python" */
		bool python = t->all_processes || py_is_python_process(t->pids[i]);
		if (proc_has_exited(t->pids[i])) {
			fprintf(stderr, "pyhang-trace: no such process: pid %d (it has exited)\n",
				(int)t->pids[i]);
			return -1;
		}
		if (!python)
			fprintf(stderr, "pyhang-trace: pid %d does not run CPython; its events are not "
				"reported unless --all is given\n", (int)t->pids[i]);
	}
	return 0;
}

static int setup(struct tracer *t, const struct cli *c, int *go_fd, struct metrics **m)
{
	char err[512];
	if (loader_check_environment(err, sizeof(err)) != 0) {
		fprintf(stderr, "pyhang-trace: %s\n", err);
		return -1;
	}
	if (c->metrics_addr) { /* before anything slow: a port in use fails at once */
		*m = metrics_open(c->metrics_addr, t, err, sizeof(err));
		if (!*m || (c->bpf_stats && metrics_enable_bpf_stats(err, sizeof(err)) != 0)) {
			fprintf(stderr, "pyhang-trace: %s\n", err);
			return -1;
		}
	}
	if (output_open(&t->out, c->output, c->json, err, sizeof(err)) != 0) {
		fprintf(stderr, "pyhang-trace: %s\n", err);
		return -1;
	}
	struct loader_config cfg = {
		.threshold_ns = t->threshold_ns,
		.trace_all_procs = t->all_processes,
		.host_wide = t->host_wide,
		.follow_children = t->command != NULL || (t->npids > 0 && !t->no_children),
		.ringbuf_bytes = c->ringbuf_bytes,
	};
	t->reader = py_reader_new();
	if (!t->reader) {
		fprintf(stderr, "pyhang-trace: out of memory\n");
		return -1;
	}
	t->ld = loader_open(&cfg, err, sizeof(err));
	if (!t->ld) {
		fprintf(stderr, "pyhang-trace: %s\n", err);
		return -1;
	}
	if (loader_setup_ringbuf(t->ld, tracer_handle_event, t) != 0) {
		fprintf(stderr, "pyhang-trace: cannot set up the ring buffer: %s\n", strerror(errno));
		return -1;
	}
	if (warn_non_python_pids(t) != 0)
		return -1;
	if (t->command) {
		if (spawn_command(t, go_fd) != 0) {
			fprintf(stderr, "pyhang-trace: cannot start %s: %s\n", t->command[0], strerror(errno));
			return -1;
		}
		if (loader_watch(t->ld, t->child, PH_W_SCOPE) != 0) {
			fprintf(stderr, "pyhang-trace: cannot watch the command: %s\n", strerror(errno));
			return -1;
		}
	}
	if (tracer_register_processes(t) != 0) {
		fprintf(stderr, "pyhang-trace: cannot register the processes to trace: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int trace_main(int argc, char **argv)
{
	static struct tracer t; /* large (exec check queue): not on the stack */
	struct cli c = { 0 };
	struct metrics *m = NULL;
	int go_fd = -1;

	/* A fixed mmap threshold turns glibc's sliding one off: after the first free of a
	 * reader's 2.7 MiB code cache it would rise above that size, and every later cache (and
	 * the ELF symbol tables read while describing a process) would come from the heap,
	 * which then kept 30+ MiB of freed buffers resident for good. Blocks of 128 KiB and more
	 * are mmapped and go back to the system when freed; untouched pages cost nothing.
	 * mallopt fails under sanitizers (not glibc's malloc): nothing to tune then. */
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 256 * 1024);
	parse_args(argc, argv, &t, &c);
	if (c.hang_timeout_s > 0) {
		t.guard = guard_new(c.hang_timeout_s,
				    c.kill_after_s > 0 ? c.kill_after_s : GUARD_DEFAULT_KILL_AFTER_S);
		if (!t.guard) {
			fprintf(stderr, "pyhang-trace: out of memory\n");
			return EXIT_USAGE;
		}
	}
	selfguard_init();
	install_signal_handlers();
	if (setup(&t, &c, &go_fd, &m) != 0) {
		if (t.child > 0) {
			kill(t.child, SIGKILL);
			reap_command(&t, 0);
		}
		metrics_close(m);
		loader_close(t.ld);
		py_reader_free(t.reader);
		guard_free(t.guard);
		return EXIT_USAGE;
	}
	t.started_ns = mono_now_ns();
	/* --quiet: the text writer's start and stop lines are stderr chatter; JSON's are events */
	bool chatter = !c.quiet || c.json;
	if (chatter)
		emit_start(&t);
	if (m && !c.quiet && !c.json)
		fprintf(stderr, "pyhang-trace: metrics at http://%s/metrics\n", metrics_bound_addr(m));
	/* after `start`: what the scan finds (already ignored SIGCHLD...) are events too */
	tracer_scan_existing(&t);
	py_reader_release_cache(t.reader);
	malloc_trim(0); /* what loading (libbpf: BTF, ELF of the BPF object) and the scan freed */
	if (t.command && release_command(go_fd) != 0)
		fprintf(stderr, "pyhang-trace: cannot start the command: %s\n", strerror(errno));
	event_loop(&t, m);
	if (t.child > 0 && !t.child_done && !c.quiet)
		fprintf(stderr, "pyhang-trace: command (pid %d) is still running; detaching\n", (int)t.child);
	if (chatter)
		emit_stop(&t);
	guard_finish(&t);
	output_close(&t.out);
	metrics_close(m);
	loader_close(t.ld);
	tracer_events_cleanup(&t);
	pending_free(&t.pending);
	py_reader_free(t.reader);
	bool fired = guard_fired(&t);
	guard_free(t.guard);
	if (fired)
		return GUARD_EXIT_STATUS;
	return t.command ? command_exit_code(&t) : 0;
}
