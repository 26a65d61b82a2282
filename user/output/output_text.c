/* output_text: the report for people. Events go to the output (stdout or -o FILE), one
 * block each; start-up and shutdown messages go to stderr. Every byte that comes from a
 * traced process (comm, names) is escaped, never printed raw. */
#include <string.h>

#include <stdlib.h>

#include "diagnose.h"
#include "output.h"
#include "pyreader.h"
#include "textreport.h"
#include "waitgraph.h"
#include "childwait.h"
#include "xproc.h"

#define C_BOLD "\033[1m"
#define C_RED "\033[31m"
#define C_YEL "\033[33m"
#define C_OFF "\033[0m"

static void put_clock(struct output *o, uint64_t mono_ns)
{
	char ts[40];
	output_format_time(o, mono_ns, ts, sizeof(ts));
	/* HH:MM:SS.mmm of the RFC 3339 string is enough on a terminal */
	sb_put(&o->sb, ts + 11, 12);
	sb_putc(&o->sb, ' ');
}

static void put_tag(struct output *o, const char *color, const char *tag)
{
	if (o->color)
		sb_printf(&o->sb, "%s%s%-11s%s", C_BOLD, color, tag, C_OFF);
	else
		sb_printf(&o->sb, "%-11s", tag);
}

static void put_proc(struct output *o, const struct ev_proc *p)
{
	sb_putc(&o->sb, ' ');
	sb_put_escaped_text(&o->sb, p->comm, strnlen(p->comm, sizeof(p->comm)));
	sb_printf(&o->sb, " (pid %d", (int)p->pid);
	if (p->ns_pid > 0)
		sb_printf(&o->sb, ", pid %d in its namespace", (int)p->ns_pid);
	if (p->tid != p->pid)
		sb_printf(&o->sb, ", thread %d", (int)p->tid);
	sb_puts(&o->sb, ")");
}

/* A stack the way Python prints a traceback: outermost call first. */
static void text_stack(struct output *o, const char *indent, const struct py_thread *t)
{
	t = outcap_thread(o, t, NULL); /* outer frames left out to fit (outcap.c) */
	sb_printf(&o->sb, "%sTraceback (most recent call last):\n", indent);
	for (size_t i = t->nframes; i-- > 0;) {
		const struct py_frame *f = &t->frames[i];
		sb_printf(&o->sb, "%s  File \"", indent);
		sb_put_escaped_text(&o->sb, f->file, strlen(f->file));
		if (f->line >= 0)
			sb_printf(&o->sb, "\", line %d, in ", f->line);
		else
			sb_puts(&o->sb, "\", in ");
		sb_put_escaped_text(&o->sb, f->function, strlen(f->function));
		sb_putc(&o->sb, '\n');
	}
	if (t->truncated)
		sb_printf(&o->sb, "%s  ... (outer frames cut%s%s)\n", indent, t->error ? ": " : "",
			  t->error ? t->error : "");
}

static void text_stack_or_why(struct output *o, const char *indent, const struct py_thread *t,
			      const char *status)
{
	if (t)
		text_stack(o, indent, t);
	else if (status)
		sb_printf(&o->sb, "%s(no Python stack: %s)\n", indent, status);
}

static void text_start(struct output *o, const struct rec_start *r)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_puts(&sb, "pyhang-trace: tracing ");
	if (r->scope == REC_SCOPE_PIDS) {
		sb_puts(&sb, r->npids > 1 ? "pids" : "pid");
		for (int i = 0; i < r->npids; i++)
			sb_printf(&sb, "%s%d", i ? ", " : " ", (int)r->pids[i]);
		if (r->descendants)
			sb_puts(&sb, r->npids > 1 ? " and their descendants" : " and its descendants");
	} else if (r->scope == REC_SCOPE_COMMAND) {
		sb_puts(&sb, "the command ");
		sb_put_escaped_text(&sb, r->command, strlen(r->command));
		sb_puts(&sb, " and its descendants");
	} else {
		sb_puts(&sb, r->all_processes ? "every process" : "every Python process");
	}
	sb_printf(&sb, "; waits longer than %.3gs are reported. Ctrl-C to stop.\n", r->threshold_s);
	if (sb_flush_to(&sb, stderr) != 0)
		o->write_failed = true;
	sb_free(&sb);
}

static void text_stop(struct output *o, const struct rec_stop *r)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_printf(&sb, "pyhang-trace: detached after %.1fs: %llu hangs, %llu long waits, %llu SIGCHLD "
		  "changes, %llu lost child statuses", r->duration_s, (unsigned long long)r->hangs,
		  (unsigned long long)r->long_waits, (unsigned long long)r->sigchld_changes,
		  (unsigned long long)r->child_status_lost);
	if (r->lost_events) {
		const char *sep = " (";
		sb_printf(&sb, "; %llu events LOST", (unsigned long long)r->lost_events);
#define LOSS(field, name, text)                                                                     \
	sb_printf(&sb, "%s" text " %llu", sep, (unsigned long long)r->field);                        \
	sep = ", ";
		REC_LOSS_REASONS(LOSS)
#undef LOSS
		sb_puts(&sb, ")");
	} else
		sb_puts(&sb, "; no events lost");
	uint64_t held = 0;
	for (unsigned k = 0; r->suppressed && k < PH_RL_KINDS; k++)
		held += r->suppressed[k];
	if (held) /* see the SUPPRESSED lines */
		sb_printf(&sb, "; %llu events held back by the per-process rate limits",
			  (unsigned long long)held);
	sb_puts(&sb, ".\n");
	if (sb_flush_to(&sb, stderr) != 0)
		o->write_failed = true;
	sb_free(&sb);
}

static void text_long_wait(struct output *o, const struct rec_long_wait *r)
{
	char op[64], what[1024] = "";
	futex_op_name(r->futex_op, op, sizeof(op));
	put_clock(o, r->p.mono_ns);
	put_tag(o, C_RED, "LONG WAIT");
	put_proc(o, &r->p);
	if (r->py)
		textreport_wait(outcap_process(o, r->py), r->p.tid, what, sizeof(what));
	if (!what[0] && r->child_wait)
		childwait_describe(r->child_wait, what, sizeof(what));
	if (what[0]) {
		sb_printf(&o->sb, " has waited %.1fs for ", r->waited_s);
		sb_put_escaped_text(&o->sb, what, strlen(what));
	} else {
		if (r->io)
			sb_printf(&o->sb, " has been blocked in an I/O call for %.1fs", r->waited_s);
		else
			sb_printf(&o->sb, " has been %s (%s) for %.1fs", r->gil ? "waiting for the GIL" :
				  r->futex_op >= PH_OP_CHILD_WAIT4 ? "waiting for a child" :
				  "blocked in a futex wait", op, r->waited_s);
	}
	sb_printf(&o->sb, "%s%s\n", r->before_start ? ", since before tracing started (estimate)" : "",
		  r->covered ? " (part of the hang reported above)" : "");
	if (r->py && !r->covered) {
		pid_t focus[OUTCAP_FOCUS_MAX];
		size_t n = outcap_holder_chain(r->py, r->p.tid, focus, OUTCAP_FOCUS_MAX);
		textreport_threads(&o->sb, outcap_process(o, outcap_focus(o, r->py, r->p.tid,
									  r->threads_same_as)),
				   focus, n, r->p.tid);
	} else if (!r->py && r->py_error) {
		sb_printf(&o->sb, "  (no Python stacks: %s)\n", r->py_error);
	}
	output_emit(o);
}

/* "SIGTERM" for 15 (glibc 2.32+ sigabbrev_np); "unknown signal" when it has no name. */
static const char *signal_name(int sig)
{
	static char buf[16];
	const char *abbrev = sigabbrev_np(sig);
	if (!abbrev)
		return "unknown signal";
	snprintf(buf, sizeof(buf), "SIG%s", abbrev);
	return buf;
}

static void text_wait_end(struct output *o, const struct rec_wait_end *r)
{
	put_clock(o, r->p.mono_ns);
	put_tag(o, "", "WAIT END");
	put_proc(o, &r->p);
	if (r->io && r->ended_by == REC_END_RETURN)
		sb_printf(&o->sb, " left its I/O wait after %.1fs (estimate)\n", r->waited_s);
	else if (r->io && r->ended_by == REC_END_PROCESS_EXIT)
		sb_printf(&o->sb, " was still in its I/O wait when its process ended, after %.1fs\n",
			  r->waited_s);
	else if (r->ended_by == REC_END_THREAD_EXIT)
		sb_printf(&o->sb, " exited while still blocked, after %.1fs\n", r->waited_s);
	else if (r->ended_by == REC_END_PROCESS_EXIT && r->exit_signal > 0)
		sb_printf(&o->sb, " was still blocked when its process was killed by signal %d (%s), "
			  "after %.1fs\n", r->exit_signal, signal_name(r->exit_signal), r->waited_s);
	else if (r->ended_by == REC_END_PROCESS_EXIT)
		sb_printf(&o->sb, " was still blocked when its process exited (status %d), after %.1fs\n",
			  r->exit_status, r->waited_s);
	else if (r->futex_op == PH_OP_CHILD_WAIT4 || r->futex_op == PH_OP_CHILD_WAITID) {
		if (r->futex_addr == PH_CHILD_ANY)
			sb_printf(&o->sb, " stopped waiting for any child after %.1fs", r->waited_s);
		else if (PH_CHILD_IS_PIDFD(r->futex_addr))
			sb_printf(&o->sb, " stopped waiting for the child of its pidfd %d after %.1fs",
				  (int)(uint32_t)r->futex_addr, r->waited_s);
		else
			sb_printf(&o->sb, " stopped waiting for child pid %d after %.1fs",
				  (int)r->futex_addr, r->waited_s);
		if (r->ended_by == REC_END_SIGNAL)
			sb_puts(&o->sb, ": interrupted by a signal");
		sb_putc(&o->sb, '\n');
	} else if (r->ended_by == REC_END_SIGNAL && r->signal > 0)
		sb_printf(&o->sb, " stopped waiting on futex 0x%llx after %.1fs: interrupted by signal %d "
			  "(%s), whose handler ran\n", (unsigned long long)r->futex_addr, r->waited_s,
			  r->signal, signal_name(r->signal));
	else if (r->ended_by == REC_END_SIGNAL)
		sb_printf(&o->sb, " stopped waiting on futex 0x%llx after %.1fs: interrupted by a signal\n",
			  (unsigned long long)r->futex_addr, r->waited_s);
	else
		sb_printf(&o->sb, " stopped waiting on futex 0x%llx after %.1fs\n",
			  (unsigned long long)r->futex_addr, r->waited_s);
	output_emit(o);
}

static void text_sigchld(struct output *o, const struct rec_sigchld *r)
{
	put_clock(o, r->p.mono_ns);
	put_tag(o, C_YEL, "SIGCHLD");
	put_proc(o, &r->p);
	if (r->action == REC_SIGCHLD_RESTORED)
		sb_puts(&o->sb, " no longer ignores SIGCHLD: exit statuses of its children are kept "
				"again\n");
	else
		sb_printf(&o->sb, " %s SIGCHLD (%s): the kernel discards its children's exit statuses, "
			  "and subprocess reports every child as exit status 0\n",
			  r->before_start ? "was already ignoring" :
			  r->inherited ? "ignores from its start (ignored before its exec)" : "now ignores",
			  rec_sigchld_action_name(r->action));
	text_stack_or_why(o, "  ", r->stack, r->stack_status);
	output_emit(o);
}

static void text_child_lost(struct output *o, const struct rec_child_lost *r)
{
	put_clock(o, r->p.mono_ns);
	put_tag(o, C_RED, "CHILD LOST");
	put_proc(o, &r->p);
	sb_printf(&o->sb, " %s() for child %d", r->syscall, (int)r->child_pid);
	if (r->child_known) {
		sb_puts(&o->sb, " (");
		sb_put_escaped_text(&o->sb, r->child_comm, strnlen(r->child_comm, sizeof(r->child_comm)));
		sb_puts(&o->sb, ")");
	}
	sb_puts(&o->sb, " failed with ECHILD, ");
	if (r->cause == REC_LOST_REAPED_ELSEWHERE)
		sb_printf(&o->sb, "because thread %d had already reaped it %.3fs earlier", (int)r->reaper_tid,
			  r->reaped_s_before);
	else
		sb_puts(&o->sb, "because the process ignores SIGCHLD");
	if (r->exit_status >= 0)
		sb_printf(&o->sb, "; the child really exited with status %d", r->exit_status);
	else if (r->signal >= 0)
		sb_printf(&o->sb, "; the child really was killed by signal %d%s", r->signal,
			  r->core_dumped ? " (core dumped)" : "");
	else
		sb_puts(&o->sb, "; its real exit status is unknown (it exited before tracing started)");
	sb_putc(&o->sb, '\n');
	if (r->summary) {
		sb_puts(&o->sb, "  ");
		sb_put_escaped_text(&o->sb, r->summary, strlen(r->summary));
		sb_puts(&o->sb, ".\n");
	}
	if (r->child_cmdline) {
		sb_puts(&o->sb, "  child command: ");
		sb_put_escaped_text(&o->sb, r->child_cmdline, strlen(r->child_cmdline));
		sb_putc(&o->sb, '\n');
	}
	sb_puts(&o->sb, "  The wait that got ECHILD:\n");
	text_stack_or_why(o, "  ", r->stack, r->stack_status);
	if (r->reaper_stack) {
		sb_printf(&o->sb, "  Thread %d", (int)r->reaper_tid);
		if (r->reaper_name) {
			sb_puts(&o->sb, " \"");
			sb_put_escaped_text(&o->sb, r->reaper_name, strlen(r->reaper_name));
			sb_puts(&o->sb, "\"");
		}
		sb_puts(&o->sb, " took the child's status here:\n");
		text_stack(o, "  ", r->reaper_stack);
	}
	if (r->ignore_stack) {
		char ts[40];
		output_format_time(o, r->ignore_mono_ns, ts, sizeof(ts));
		sb_printf(&o->sb, "  SIGCHLD became ignored at %s here:\n", ts + 11);
		text_stack(o, "  ", r->ignore_stack);
	}
	output_emit(o);
}

static void text_hang(struct output *o, const struct rec_hang *r)
{
	put_clock(o, r->p.mono_ns);
	put_tag(o, C_RED, "HANG");
	put_proc(o, &r->p);
	sb_puts(&o->sb, ": ");
	sb_put_escaped_text(&o->sb, r->diag->summary, strlen(r->diag->summary));
	sb_printf(&o->sb, " [%s]\n", diag_code_name(r->diag->code));
	xproc_write_text(&o->sb, r->diag);
	pid_t focus[DIAG_MAX_CULPRITS + 1];
	size_t n = 0;
	for (size_t i = 0; i < r->diag->nculprits && n < DIAG_MAX_CULPRITS; i++)
		focus[n++] = r->diag->culprits[i];
	if (r->diag->waiter > 0)
		focus[n++] = r->diag->waiter;
	textreport_threads(&o->sb, outcap_process(o, r->py), focus, n, n ? focus[0] : 0);
	if (r->diag->child)
		childwait_text(&o->sb, r->diag->child, r->diag);
	output_emit(o);
}

static void text_hang_end(struct output *o, const struct rec_hang_end *r)
{
	put_clock(o, r->p.mono_ns);
	put_tag(o, "", "HANG END");
	put_proc(o, &r->p);
	if (r->ended_by == REC_END_PROCESS_EXIT)
		sb_printf(&o->sb, ": the process ended; its %s lasted %.1fs\n", r->code, r->duration_s);
	else
		sb_printf(&o->sb, " %s: the %s reported %.1fs ago is over after %.1fs\n",
			  r->ended_by == REC_END_THREAD_EXIT ? "exited" : "moved again",
			  r->code, r->reported_s_ago, r->duration_s);
	output_emit(o);
}

/* "SUPPRESSED  python3 (pid 42): 51234 SIGCHLD changes, 3 reaper stacks held back in the
 * last 10.0s (rate limit: 20/s per process, bursts of 100)" */
static void text_suppressed(struct output *o, const struct rec_suppressed *r)
{
	static const char *const what[PH_RL_KINDS] = {
		[PH_RL_SIGCHLD] = "SIGCHLD changes", [PH_RL_CHILD_LOST] = "lost child statuses",
		[PH_RL_REAP] = "reaper stacks", [PH_RL_EXEC] = "children's execs",
	};
	put_clock(o, r->p.mono_ns);
	put_tag(o, C_YEL, "SUPPRESSED");
	put_proc(o, &r->p);
	sb_puts(&o->sb, ":");
	const char *sep = " ";
	for (unsigned k = 0; k < PH_RL_KINDS; k++) {
		if (!r->counts[k])
			continue;
		sb_printf(&o->sb, "%s%llu %s", sep, (unsigned long long)r->counts[k], what[k]);
		sep = ", ";
	}
	double secs = r->p.mono_ns > r->since_mono_ns ? (double)(r->p.mono_ns - r->since_mono_ns) / 1e9 : 0;
	sb_printf(&o->sb, " not reported in the last %.1fs (rate limit: %g/s per process, bursts of %u)\n",
		  secs, r->rate_per_s, (unsigned)r->burst);
	output_emit(o);
}

/* Written through output_dispatch_ops (output.c), which applies the cap. */
const struct output_ops output_text_ops = {
	.suppressed = text_suppressed,
	.hang = text_hang,
	.hang_end = text_hang_end,
	.start = text_start,
	.stop = text_stop,
	.long_wait = text_long_wait,
	.wait_end = text_wait_end,
	.sigchld = text_sigchld,
	.child_lost = text_child_lost,
};
