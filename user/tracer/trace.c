/* trace: the tracer command, `pyhang-trace [OPTIONS] [-- COMMAND [ARGS...]]`.
 * Owns: the order of start-up (checks, load, attach, register processes, scan what already
 * happened, `start`), the event loop with its timers, running COMMAND, signals, and the
 * `stop` summary. The command line is cli.c's. */
#include "trace.h"

#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asyncio_watch.h"
#include "cli.h"
#include "guard.h"
#include "metrics.h"
#include "procscan.h"
#include "pyreader.h"
#include "selfguard.h"
#include "tracer.h"
#include "iosample.h"


static volatile sig_atomic_t g_stop_signal;
static volatile sig_atomic_t g_reopen;
static volatile uint64_t g_stop_at_ns; /* CLOCK_MONOTONIC of the first stop signal */


static void on_stop_signal(int sig)
{
	if (!g_stop_signal) {
		struct timespec ts; /* clock_gettime is async-signal-safe (POSIX.1-2008) */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		g_stop_at_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		alarm(1); /* from now on a blocked write (a reader that stopped reading) is
			   * interrupted every second, so that it gives up once the stop is
			   * overdue (output.c write_all) */
	}
	g_stop_signal = sig;
}

static void on_alarm(int sig)
{
	(void)sig;
	if (g_stop_signal)
		alarm(1);
}

bool tracer_stop_overdue(void)
{
	return g_stop_signal && g_stop_at_ns && mono_now_ns() >= g_stop_at_ns + STOP_GRACE_NS;
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
	sa.sa_handler = on_alarm; /* no SA_RESTART: a blocked write returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	output_stop_overdue = tracer_stop_overdue;
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
	if (!m) {
		int n = loader_poll(t->ld, timeout);
		tracer_flush_events(t);
		return n;
	}
	int rc = metrics_wait(m, loader_epoll_fd(t->ld), timeout);
	if (rc < 0 && rc != -EINTR)
		return rc;
	int consumed = loader_poll(t->ld, 0);
	tracer_flush_events(t);
	metrics_service(m); /* after consuming: the counts served are current */
	return consumed < 0 ? consumed : rc;
}

static void event_loop(struct tracer *t, struct metrics *m)
{
	uint64_t deadline = t->duration_s > 0 ? t->started_ns + (uint64_t)(t->duration_s * 1e9) : 0;
	int child_waits_due = -1;
	while (!should_stop(t)) {
		int timeout = 200;
		timeout = min_timeout(timeout, loader_scan_due_in_ms(t->ld));
		timeout = min_timeout(timeout, tracer_run_exec_checks(t));
		timeout = min_timeout(timeout, ios_tick(t));
		timeout = min_timeout(timeout, tracer_recheck_waits(t));
		timeout = min_timeout(timeout, guard_due_in_ms(t));
		timeout = min_timeout(timeout, aio_watch_due_in_ms(t));
		timeout = min_timeout(timeout, child_waits_due);
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
		aio_watch_poll(t);
		/* after the events: a look at a child wait reads whole processes */
		child_waits_due = tracer_recheck_child_waits(t);
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
	tracer_flush_events(t);
}

static void emit_start(struct tracer *t)
{
	struct rec_start r = {
		.scope = t->command ? REC_SCOPE_COMMAND : t->npids ? REC_SCOPE_PIDS : REC_SCOPE_HOST,
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

void tracer_stop_counts(struct tracer *t, struct rec_stop *r)
{
	struct loader_stats s;
	if (loader_read_stats(t->ld, &s) == 0) {
		r->ringbuf_drops = s.counters[PH_STAT_RINGBUF_DROPS];
		r->waits_map_full = s.counters[PH_STAT_WAITS_FULL];
		r->map_full = s.counters[PH_STAT_MAP_FULL];
	}
	r->exec_checks_dropped = t->dropped_checks;
	r->unread_at_stop = t->unread_at_stop;
	r->lost_events = 0;
#define LOSS(field, name, text) r->lost_events += r->field;
	REC_LOSS_REASONS(LOSS)
#undef LOSS
	r->long_waits = t->n_long_waits;
	r->wait_ends = t->n_wait_ends;
	r->sigchld_changes = t->n_sigchld;
	r->child_status_lost = t->n_child_lost;
	r->hangs = t->n_hangs;
	r->hang_ends = t->n_hang_ends;
}

static void emit_stop(struct tracer *t)
{
	struct rec_stop r = { 0 };
	tracer_stop_counts(t, &r);
	r.suppressed = t->n_suppressed;
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

/* metrics_view_fn: what a scrape of --metrics-addr shows of this session. */
static void metrics_view_of(void *ctx, struct metrics_view *v)
{
	const struct tracer *t = ctx;
	v->ld = t->ld;
	v->threshold_ns = t->threshold_ns;
	v->counts = (struct rec_stop){ 0 };
	tracer_stop_counts((struct tracer *)t, &v->counts);
	memcpy(v->n_suppressed, t->n_suppressed, sizeof(v->n_suppressed));
}

static int setup(struct tracer *t, const struct cli *c, int *go_fd, struct metrics **m)
{
	char err[512];
	if (loader_check_environment(err, sizeof(err)) != 0) {
		fprintf(stderr, "pyhang-trace: %s\n", err);
		return -1;
	}
	if (c->metrics_addr) { /* before anything slow: a port in use fails at once */
		*m = metrics_open(c->metrics_addr, metrics_view_of, t, err, sizeof(err));
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
	t.ios = ios_new(); /* before the scan: it names the Python processes to sample */
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
	aio_watch_free();
	ios_report_stats(t.ios);
	ios_free(t.ios);
	pending_free(&t.pending);
	py_reader_free(t.reader);
	bool fired = guard_fired(&t);
	guard_free(t.guard);
	if (fired)
		return GUARD_EXIT_STATUS;
	return t.command ? command_exit_code(&t) : 0;
}
