/* xproc_write: the hangs caused in another process (xproc.h) as output. Owns: the JSON
 * of `diagnosis.fork` (fork_held_lock: the parent, its threads then and now, the fork
 * site's stack, the parent thread holding the lock) and `diagnosis.child` (worker_died:
 * the dead child, its signal or status, whether the OOM killer chose it), and their text
 * (the fork site as a traceback, the dead child's command). What came from targets is
 * escaped by the JSON writer and the text report. Declared in xproc.h. */
#include <string.h>

#include "pywrite.h"
#include "textreport.h"
#include "xproc.h"

void xproc_write_json(struct jw *w, const struct diagnosis *d)
{
	const struct xp_facts *xf = d->xproc;
	if (!xf)
		return;
	if (xf->fork) {
		const struct xp_fork *f = xf->fork;
		jw_key(w, "fork");
		jw_obj_begin(w);
		jw_kint(w, "parent_pid", f->parent);
		jw_kstr(w, "parent_comm", f->parent_comm);
		jw_key(w, "parent_threads");
		if (f->parent_threads)
			jw_int(w, f->parent_threads);
		else
			jw_null(w); /* forked before tracing started */
		jw_key(w, "parent_threads_now");
		if (xf->parent_threads_now >= 0)
			jw_int(w, xf->parent_threads_now);
		else
			jw_null(w);
		jw_key(w, "forker_tid");
		if (f->forker_tid)
			jw_int(w, f->forker_tid);
		else
			jw_null(w);
		jw_key(w, "seconds_ago");
		if (xf->forked_s_ago >= 0)
			jw_double(w, xf->forked_s_ago, 3);
		else
			jw_null(w);
		jw_kbool(w, "before_start", f->fork_ns == 0);
		jw_kstr(w, "stack_status", f->stack_status);
		jw_key(w, "stack");
		if (f->have_stack)
			py_write_stack_json(w, &f->stack.thread);
		else
			jw_null(w);
		jw_key(w, "holder");
		if (xf->holder_tid > 0) {
			jw_obj_begin(w);
			jw_kint(w, "pid", f->parent);
			jw_kint(w, "tid", xf->holder_tid);
			jw_kstr(w, "name", xf->holder_name[0] ? xf->holder_name : NULL);
			jw_kstr(w, "proof", xf->holder_proof);
			jw_key(w, "since");
			jw_obj_begin(w);
			jw_kstr(w, "function", xf->holder_function);
			jw_kstr(w, "file", xf->holder_file);
			jw_kint(w, "line", xf->holder_line);
			jw_obj_end(w);
			jw_obj_end(w);
		} else {
			jw_null(w);
		}
		jw_obj_end(w);
	}
	if (xf->death) {
		const struct xp_death *dd = xf->death;
		jw_key(w, "child");
		jw_obj_begin(w);
		jw_kint(w, "pid", dd->child);
		if (dd->ns_pid > 0 && dd->ns_pid != dd->child)
			jw_kint(w, "ns_pid", dd->ns_pid);
		jw_kstr(w, "comm", dd->comm);
		jw_kstr(w, "cmdline", xf->child_cmdline[0] ? xf->child_cmdline : NULL);
		jw_key(w, "signal");
		if (dd->exit_code & 0x7f)
			jw_int(w, dd->exit_code & 0x7f);
		else
			jw_null(w);
		jw_key(w, "exit_status");
		if (dd->exit_code & 0x7f)
			jw_null(w);
		else
			jw_int(w, (dd->exit_code >> 8) & 0xff);
		jw_kbool(w, "oom_killed", dd->oom);
		jw_kdouble(w, "seconds_ago", xf->died_s_ago, 3);
		jw_kstr(w, "waiting_call", xf->waiting_call);
		jw_obj_end(w);
	}
}

/* Why a fork recorded in the kernel has no stack, for people (its stack_status). */
static const char *fork_stack_why(const char *status)
{
	if (!status)
		return "not recorded";
	if (!strcmp(status, "unknown_layout"))
		return "the parent forked before the tracer had read its interpreter, e.g. within "
		       "milliseconds of its exec";
	if (!strcmp(status, "not_captured"))
		return "the kernel's record of it was rate limited or lost";
	if (!strcmp(status, "thread_not_found"))
		return "the forking thread was not in the interpreter's thread list";
	return "its frames could not be read";
}

void xproc_write_text(struct strbuf *sb, const struct diagnosis *d)
{
	const struct xp_facts *xf = d->xproc;
	if (!xf)
		return;
	if (xf->fork && xf->fork->have_stack) {
		sb_printf(sb, "The fork, by thread %d of pid %d", (int)xf->fork->forker_tid, (int)xf->fork->parent);
		textreport_traceback(sb, xf->fork->parent, &xf->fork->stack.thread);
	} else if (xf->fork && xf->fork->forker_tid > 0) {
		/* a fork the kernel recorded without its stack says why (fork_site unknown) */
		sb_printf(sb, "The fork, by thread %d of pid %d: where in Python is unknown (%s)\n",
			  (int)xf->fork->forker_tid, (int)xf->fork->parent,
			  fork_stack_why(xf->fork->stack_status));
	}
	if (xf->death && xf->child_cmdline[0]) {
		sb_puts(sb, "The dead child's command: ");
		sb_put_escaped_text(sb, xf->child_cmdline, strlen(xf->child_cmdline));
		sb_putc(sb, '\n');
	}
}
