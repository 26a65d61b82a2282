/* guard: the CI hang guard, `--hang-timeout SECS` (see guard.h).
 *
 * A hang (hanggate.c, maybe_report_hang) is timed from the start of the long wait it was
 * diagnosed from. It is resolved when that thread stops waiting (wait_end, also sent when
 * the thread exits). When it is SECS old the process is read again and diagnosed again:
 * only a hang proven still there makes the guard act, else it looks again every second
 * until the wait ends. Acting means: the report on stderr as one framed block (the hang
 * with every thread of its process, then every other Python process of the command's
 * scope), then, with -- COMMAND, SIGTERM to every process of the scope (the command and
 * its descendants, found by the BPF watch set's PH_W_SCOPE flag, which follows forks
 * whatever the process group, session or parent), SIGKILL to those left after
 * --kill-after, and the exit status GUARD_EXIT_STATUS. With -p or host-wide, nothing is
 * sent to any process. Signals go through pidfds opened before the scope flag is checked,
 * so a pid reused by an unrelated process is never signalled. */
#include "guard.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diagnose.h"
#include "hanggate.h"
#include "pipeself.h"
#include "hangtrack.h"
#include "json.h"
#include "outcap.h"
#include "procmem.h"
#include "procscan.h"
#include "pyreader.h"
#include "pywrite.h"
#include "tracer.h"
#include "waitgraph.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same on every architecture (Linux 5.3) */
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424 /* the same on every architecture (Linux 5.1) */
#endif

#define GUARD_MAX_PENDING 64
#define GUARD_RECHECK_NS 1000000000ull /* a timed-out hang not confirmed: look again in 1 s */
#define GUARD_MAX_VICTIMS 4096
#define GUARD_MAX_OTHER_REPORTS 16      /* other Python processes shown in the report */
#define GUARD_POLL_NS 20000000ull       /* while ending the tree: look every 20 ms */
#define GUARD_AFTER_KILL_NS 3000000000ull /* SIGKILL: at most this long to see them gone */

struct guard_hang {
	pid_t pid;
	uint64_t proc_start; /* /proc/PID/stat field 22 of the process the hang is in */
	pid_t waiter;        /* the thread whose long wait the hang was diagnosed from */
	bool gil;
	/* the GIL at the earlier looks that proved a gil_wait (see diag_waits) */
	struct gil_look gil_look, gil_blocked;
	uint64_t wait_start_ns; /* CLOCK_MONOTONIC */
	uint64_t due_ns;        /* wait_start_ns + timeout */
	uint64_t next_check_ns;
};

struct victim {
	pid_t pid;
	int pidfd; /* -1: no pidfd (pidfd_open unsupported): kill(pid); -2: gone */
	int sent;  /* the last signal sent, 0: none */
	char comm[16];
};

struct guard {
	double timeout_s, kill_after_s;
	struct guard_hang pending[GUARD_MAX_PENDING];
	int npending;
	bool fired;
	struct victim *victims;
	size_t nvictims;
};

struct guard *guard_new(double timeout_s, double kill_after_s)
{
	struct guard *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->timeout_s = timeout_s;
	g->kill_after_s = kill_after_s;
	return g;
}

void guard_free(struct guard *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nvictims; i++)
		if (g->victims[i].pidfd >= 0)
			close(g->victims[i].pidfd);
	free(g->victims);
	free(g);
}

bool guard_fired(const struct tracer *t)
{
	return t->guard && t->guard->fired;
}

void guard_note_hang(struct tracer *t, const struct rec_long_wait *lw)
{
	struct guard *g = t->guard;
	if (!g || g->fired || !lw->py)
		return;
	uint64_t waited_ns = (uint64_t)(lw->waited_s * 1e9);
	uint64_t start = lw->p.mono_ns > waited_ns ? lw->p.mono_ns - waited_ns : 0;
	struct guard_hang h = {
		.pid = lw->p.pid,
		.proc_start = lw->py->start_time,
		.waiter = lw->p.tid, /* its wait_end resolves the hang; diagnosed again with it */
		.gil = lw->gil,
		.wait_start_ns = start,
		.due_ns = start + (uint64_t)(g->timeout_s * 1e9),
	};
	h.next_check_ns = h.due_ns;
	if (lw->gil_before) { /* the earlier looks that proved it */
		h.gil_look = *lw->gil_before;
		if (lw->gil_before_blocked)
			h.gil_blocked = *lw->gil_before_blocked;
	} else {
		hang_gil_look(lw->py, lw->p.tid, &h.gil_look);
	}
	int slot = -1;
	for (int i = 0; i < g->npending; i++)
		if (g->pending[i].pid == h.pid && g->pending[i].waiter == h.waiter)
			slot = i; /* the same thread again: a new wait restarts its clock */
	if (slot < 0 && g->npending < GUARD_MAX_PENDING)
		slot = g->npending++;
	if (slot < 0) { /* full: keep the hangs that time out first */
		int latest = 0;
		for (int i = 1; i < g->npending; i++)
			if (g->pending[i].due_ns > g->pending[latest].due_ns)
				latest = i;
		if (g->pending[latest].due_ns <= h.due_ns)
			return;
		slot = latest;
	}
	g->pending[slot] = h;
}

static void drop_pending(struct guard *g, int i)
{
	g->pending[i] = g->pending[--g->npending];
}

void guard_note_wait_end(struct tracer *t, pid_t pid, pid_t tid)
{
	struct guard *g = t->guard;
	if (!g)
		return;
	for (int i = g->npending; i-- > 0;)
		if (g->pending[i].pid == pid && g->pending[i].waiter == tid)
			drop_pending(g, i);
}

int guard_due_in_ms(struct tracer *t)
{
	struct guard *g = t->guard;
	if (!g || g->fired || g->npending == 0)
		return -1;
	uint64_t now = mono_now_ns(), next = UINT64_MAX;
	for (int i = 0; i < g->npending; i++)
		if (g->pending[i].next_check_ns < next)
			next = g->pending[i].next_check_ns;
	return next <= now ? 0 : (int)((next - now + 999999ull) / 1000000ull);
}

/* ------------------------------------------------------------------ the command's scope */

static int pidfd_signal(const struct victim *v, int sig)
{
	if (v->pidfd >= 0)
		return (int)syscall(SYS_pidfd_send_signal, v->pidfd, sig, NULL, 0);
	return kill(v->pid, sig);
}

static bool in_scope(struct tracer *t, pid_t pid)
{
	return pid != getpid() && (loader_watch_flags(t->ld, pid) & PH_W_SCOPE);
}

struct scan_ctx {
	struct tracer *t;
	struct guard *g;
	size_t found; /* processes of the scope alive now */
	int sig;      /* sent to every process of the scope that did not get it yet; 0: none */
};

static struct victim *find_victim(struct guard *g, pid_t pid)
{
	for (size_t i = 0; i < g->nvictims; i++)
		if (g->victims[i].pid == pid && g->victims[i].pidfd != -2)
			return &g->victims[i];
	return NULL;
}

static int scan_one(pid_t pid, void *arg)
{
	struct scan_ctx *c = arg;
	if (!in_scope(c->t, pid))
		return 0;
	struct victim *v = find_victim(c->g, pid);
	if (v) {
		/* the same pid seen again: still the process signalled if its pidfd says alive */
		if (v->pidfd >= 0 && syscall(SYS_pidfd_send_signal, v->pidfd, 0, NULL, 0) != 0) {
			close(v->pidfd);
			v->pidfd = -2; /* gone; pid reused by a new member of the scope */
			v = NULL;
		}
	}
	if (!v) {
		int fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0 && errno != ENOSYS)
			return 0; /* exited meanwhile */
		/* the pidfd came first: if its process is alive when signalled, the flag
		 * checked now was that process's */
		if (!in_scope(c->t, pid)) {
			if (fd >= 0)
				close(fd);
			return 0;
		}
		struct victim *slot = NULL;
		for (size_t i = 0; i < c->g->nvictims && !slot; i++)
			if (c->g->victims[i].pid == pid && c->g->victims[i].pidfd == -2)
				slot = &c->g->victims[i];
		if (!slot && c->g->nvictims < GUARD_MAX_VICTIMS) {
			if (!c->g->victims)
				c->g->victims = calloc(GUARD_MAX_VICTIMS, sizeof(*c->g->victims));
			if (c->g->victims)
				slot = &c->g->victims[c->g->nvictims++];
		}
		if (!slot) {
			if (c->sig)
				kill(pid, c->sig); /* no room to remember it: checked in scope just now */
			if (fd >= 0)
				close(fd);
			c->found++;
			return 0;
		}
		slot->pid = pid;
		slot->pidfd = fd;
		slot->sent = 0;
		proc_comm(pid, 0, slot->comm, sizeof(slot->comm));
		v = slot;
	}
	if (c->sig && v->sent != c->sig && pidfd_signal(v, c->sig) == 0)
		v->sent = c->sig;
	c->found++;
	return 0;
}

/* Every process of the scope alive now; sends sig to those that did not get it yet. */
static size_t scan_scope(struct tracer *t, int sig)
{
	struct scan_ctx c = { .t = t, .g = t->guard, .sig = sig };
	proc_for_each_pid("/proc", 1u << 22, scan_one, &c);
	return c.found;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void reap_child(struct tracer *t)
{
	if (t->child <= 0 || t->child_done)
		return;
	int st;
	if (waitpid(t->child, &st, WNOHANG) == t->child) {
		t->child_done = true;
		t->child_status = st;
	}
}

/* Wait until nothing of the scope is left or deadline; returns how many are left. */
static size_t wait_scope_gone(struct tracer *t, uint64_t deadline)
{
	for (;;) {
		reap_child(t);
		size_t left = scan_scope(t, 0);
		if (left == 0 || mono_now_ns() >= deadline)
			return left;
		sleep_ns(GUARD_POLL_NS);
	}
}

struct ending {
	size_t signalled;     /* processes that got SIGTERM */
	size_t killed;        /* processes left after the grace period (SIGKILL) */
	double ended_after_s; /* from SIGTERM to the last one gone; < 0: some never went */
};

static void end_command_tree(struct tracer *t, struct ending *e)
{
	uint64_t t0 = mono_now_ns();
	e->signalled = scan_scope(t, SIGTERM);
	size_t left = wait_scope_gone(t, t0 + (uint64_t)(t->guard->kill_after_s * 1e9));
	if (left) {
		e->killed = scan_scope(t, SIGKILL);
		left = wait_scope_gone(t, mono_now_ns() + GUARD_AFTER_KILL_NS);
	}
	e->ended_after_s = left ? -1.0 : (double)(mono_now_ns() - t0) / 1e9;
	/* the command itself: reaped for its status (it is gone from the scope once it exited) */
	for (int i = 0; i < 100 && t->child > 0 && !t->child_done; i++) {
		reap_child(t);
		if (!t->child_done)
			sleep_ns(GUARD_POLL_NS);
	}
}

/* ------------------------------------------------------------------------- the report */

static void rule(struct strbuf *sb)
{
	sb_puts(sb, "==============================================================================\n");
}

static void report_other_processes(struct tracer *t, pid_t hang_pid, struct strbuf *sb)
{
	struct guard *g = t->guard;
	size_t shown = 0, skipped = 0;
	bool header = false;
	for (size_t i = 0; i < g->nvictims; i++) {
		const struct victim *v = &g->victims[i];
		if (v->pidfd == -2 || v->pid == hang_pid)
			continue;
		if (!header) {
			sb_puts(sb, "Other processes of the command:\n");
			header = true;
		}
		if (shown >= GUARD_MAX_OTHER_REPORTS) {
			skipped++;
			continue;
		}
		shown++;
		sb_puts(sb, "  ");
		sb_put_escaped_text(sb, v->comm, strnlen(v->comm, sizeof(v->comm)));
		sb_printf(sb, " (pid %d)", (int)v->pid);
		struct py_process p;
		char err[256];
		if (!py_is_python_process(v->pid)) {
			sb_puts(sb, ": not Python\n");
			continue;
		}
		if (py_read_process(t->reader, v->pid, &p, err, sizeof(err)) != 0) {
			sb_puts(sb, ": Python, threads not readable: ");
			sb_put_escaped_text(sb, err, strlen(err));
			sb_putc(sb, '\n');
			continue;
		}
		sb_printf(sb, ", Python %s:\n", p.version);
		py_write_threads_text(sb, &p, 0);
		py_process_free(&p);
	}
	if (skipped)
		sb_printf(sb, "  ... and %zu more processes\n", skipped);
}

/* The hang_timeout record's parts, for one attempt of OUTCAP_WRITE. */
struct timeout_rec {
	const struct tracer *t;
	const struct rec_hang *r;
	double age_s;
	const struct ending *e;
	bool command;
};

static void json_record_once(struct output *o, const struct timeout_rec *x)
{
	const struct tracer *t = x->t;
	const struct rec_hang *r = x->r;
	const struct ending *e = x->e;
	double age_s = x->age_s;
	bool command = x->command;
	struct jw w;
	char ts[40];
	jw_init(&w, &o->sb);
	jw_obj_begin(&w);
	jw_kstr(&w, "event", "hang_timeout");
	output_format_time(o, mono_now_ns(), ts, sizeof(ts));
	jw_kstr(&w, "time", ts);
	jw_kint(&w, "pid", r->p.pid);
	jw_kint(&w, "tid", r->p.tid);
	jw_key(&w, "comm");
	jw_strn(&w, r->p.comm, strnlen(r->p.comm, sizeof(r->p.comm)));
	jw_kdouble(&w, "hang_timeout_s", t->guard->timeout_s, 3);
	jw_kdouble(&w, "hang_age_s", age_s, 3);
	output_json_diagnosis(&w, r->diag, r->py);
	jw_kstr(&w, "python", r->py->version);
	/* capped like every record (--max-threads, --max-frames, --max-event-bytes) */
	py_write_threads_fields(&w, outcap_process(o, r->py));
	jw_kstr(&w, "action", command ? "end_command" : "exit");
	if (command) {
		jw_kint(&w, "sigterm_sent", (long long)e->signalled);
		jw_kint(&w, "sigkill_sent", (long long)e->killed);
		jw_key(&w, "ended_after_s");
		if (e->ended_after_s >= 0)
			jw_double(&w, e->ended_after_s, 3);
		else
			jw_null(&w);
	}
	jw_kint(&w, "exit_status", GUARD_EXIT_STATUS);
	jw_obj_end(&w);
	sb_putc(&o->sb, '\n');
	output_emit(o);
}

static void json_record(struct tracer *t, const struct rec_hang *r, double age_s,
			const struct ending *e, bool command)
{
	struct timeout_rec x = { t, r, age_s, e, command };
	OUTCAP_WRITE(&t->out, json_record_once, &x);
}

static void write_block(struct strbuf *sb)
{
	fflush(stdout);
	sb_flush_to(sb, stderr);
	fflush(stderr);
}

static void fire(struct tracer *t, const struct guard_hang *h, const struct py_process *py,
		 const struct diagnosis *d)
{
	struct guard *g = t->guard;
	uint64_t now = mono_now_ns();
	double age_s = (double)(now - h->wait_start_ns) / 1e9;
	bool command = t->command != NULL;
	g->fired = true;
	fflush(stdout); /* what was printed before comes before the block in a merged log */

	/* the report goes through the text writer, into a buffer of its own */
	struct output eo = { .ops = &output_dispatch_ops, .writer = &output_text_ops, .f = stderr,
			     .mono_to_real_ns = t->out.mono_to_real_ns };
	sb_init(&eo.sb);
	struct rec_hang r = { .diag = d, .py = py };
	r.p.pid = h->pid;
	r.p.tid = d->waiter ? d->waiter : h->waiter;
	r.p.mono_ns = now;
	r.p.ns_pid = proc_ns_pid(h->pid);
	proc_comm(h->pid, 0, r.p.comm, sizeof(r.p.comm));

	struct strbuf *sb = &eo.sb;
	sb_putc(sb, '\n');
	rule(sb);
	sb_printf(sb, "pyhang-trace: HANG TIMEOUT: a hang has lasted %.1fs (--hang-timeout %g)\n",
		  age_s, g->timeout_s);
	rule(sb);
	eo.ops->hang(&eo, &r); /* writes the hang into sb and flushes it to stderr */
	if (command)
		scan_scope(t, 0); /* the processes of the scope, for the report */
	report_other_processes(t, h->pid, sb);
	if (command)
		sb_printf(sb, "pyhang-trace: ending the command and its descendants: SIGTERM now, "
			  "SIGKILL after %gs\n", g->kill_after_s);
	write_block(sb);

	struct ending e = { 0 };
	if (command) {
		end_command_tree(t, &e);
		sb_printf(sb, "pyhang-trace: SIGTERM sent to %zu process%s", e.signalled,
			  e.signalled == 1 ? "" : "es");
		if (e.killed)
			sb_printf(sb, ", SIGKILL to %zu still there after %gs", e.killed, g->kill_after_s);
		if (e.ended_after_s >= 0)
			sb_printf(sb, "; all ended %.2fs after SIGTERM", e.ended_after_s);
		else
			sb_puts(sb, "; some did not end (uninterruptible sleep?)");
		if (t->child_done && WIFSIGNALED(t->child_status))
			sb_printf(sb, "; the command was killed by signal %d (SIG%s)",
				  WTERMSIG(t->child_status), sigabbrev_np(WTERMSIG(t->child_status)) ?: "?");
		else if (t->child_done && WIFEXITED(t->child_status))
			sb_printf(sb, "; the command exited with status %d",
				  WEXITSTATUS(t->child_status));
		sb_puts(sb, ".\n");
	} else {
		sb_printf(sb, "pyhang-trace: process %d was not touched.\n", (int)h->pid);
	}
	write_block(sb);
	sb_free(sb);
	if (t->out.writer == &output_json_ops)
		json_record(t, &r, age_s, &e, command); /* before `stop`, the last record */
	/* the block's last lines come from guard_finish, after the `stop` summary */
}

void guard_finish(struct tracer *t)
{
	if (!guard_fired(t))
		return;
	struct strbuf sb;
	sb_init(&sb);
	sb_printf(&sb, "pyhang-trace: exit status %d (hang timeout)\n", GUARD_EXIT_STATUS);
	rule(&sb);
	write_block(&sb);
	sb_free(&sb);
}

/* Whether the hang h is still there: its process is the same, and a fresh read of it
 * is diagnosed as a hang again (by the rule hanggate.c reports hangs with). Not there, and
 * the read found the GIL moved on from h's look (a GIL hang): h keeps the new look, from
 * which a later confirm can prove the hang again. */
static bool confirm(struct tracer *t, struct guard_hang *h, struct py_process *py,
		    struct diagnosis *d)
{
	uint64_t st;
	char err[256];
	if (pm_start_time(h->pid, &st) != 0 || st != h->proc_start)
		return false;
	if (py_read_process(t->reader, h->pid, py, err, sizeof(err)) != 0)
		return false;
	double waited_s = (double)(mono_now_ns() - h->wait_start_ns) / 1e9;
	if (py->start_time == h->proc_start) {
		struct ht_pid ow = { t->ht, h->pid };
		/* a GIL hang (3.x) stands while no thread took the GIL since the look that
		 * proved it, or since a later one that found it elsewhere */
		struct gil_look now;
		hang_gil_look(py, h->waiter, &now);
		struct diag_waits w = { ht_pid_wait_is_open, &ow,
					h->gil_look.switches_known ? &h->gil_look : NULL, &h->gil_blocked,
					&now, (double)t->threshold_ns / 1e9 };
		struct waitgraph g;
		bool built = waitgraph_build(&g, t->reader, py) == 0;
		bool hang = (built && waitgraph_diagnose(&g, h->waiter, &w, d)) ||
			    diagnose_process(py, h->waiter, waited_s, h->gil, &w, d);
		/* an I/O wait proven a hang by itself (pipeself.h; iosample.c reports it) */
		for (size_t i = 0; built && !hang && i < py->nthreads; i++)
			if (py->threads[i].tid == h->waiter && py->threads[i].wf && py->threads[i].wf->io)
				hang = pipeself_diagnose(h->pid, py, h->waiter, py->threads[i].wf->io, &w, d) == 1;
		if (built)
			waitgraph_free(&g);
		if (hang)
			return true;
		if (h->gil) /* the GIL moved: a proof starts again from here */
			diagnose_gil_keep(&h->gil_look, &h->gil_blocked, &now);
	}
	py_process_free(py);
	return false;
}

bool guard_poll(struct tracer *t)
{
	struct guard *g = t->guard;
	if (!g || g->fired)
		return g && g->fired;
	uint64_t now = mono_now_ns();
	for (int i = g->npending; i-- > 0;) {
		struct guard_hang *h = &g->pending[i];
		if (h->next_check_ns > now)
			continue;
		uint64_t st;
		if (pm_start_time(h->pid, &st) != 0 || st != h->proc_start) {
			drop_pending(g, i); /* the process is gone */
			continue;
		}
		struct py_process py;
		struct diagnosis d = { 0 };
		if (!confirm(t, h, &py, &d)) {
			h->next_check_ns = now + GUARD_RECHECK_NS;
			continue;
		}
		struct guard_hang fired = *h;
		fire(t, &fired, &py, &d);
		py_process_free(&py);
		return true;
	}
	return false;
}
