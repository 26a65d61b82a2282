/* childwait_write: waits for children (childwait.h) as output. Owns: the JSON of a wait
 * for a child (waiting_for.child, diagnosis.child of pipe_deadlock and child_hung) and
 * the text of those incidents: the child, the thread blocked writing to the pipe, the
 * child's threads as tracebacks. Everything in it came from hostile targets: the JSON
 * writer and the text report escape it. Declared in childwait.h. */
#include <stdio.h>
#include <string.h>

#include "childwait.h"
#include "pywrite.h"
#include "syscall_names.h"
#include "textreport.h"
#include "waitgraph_json.h"

#define CW_STACK_FRAMES 64 /* frames of a child's thread written into a hang's JSON */

/* ---- JSON --------------------------------------------------------------------------- */

/* The members of a child's object (the caller opens and closes it). */
static void write_child_fields(struct jw *w, const struct cw_child *c, bool with_stack)
{
	jw_kint(w, "pid", c->pid);
	jw_key(w, "comm");
	jw_strn(w, c->comm, strnlen(c->comm, sizeof(c->comm)));
	jw_kstr(w, "cmdline", c->cmdline[0] ? c->cmdline : NULL);
	jw_kstr(w, "state", c->state);
	if (c->syscall_nr >= 0)
		jw_kstr(w, "syscall", syscall_name(c->syscall_nr));
	const struct py_thread *pt = c->have_py ? cw_thread_of(&c->py, c->py_tid) : NULL;
	if (c->writer) {
		jw_key(w, "waiting_for");
		jw_obj_begin(w);
		jw_kstr(w, "kind", "I/O");
		jw_kstr(w, "syscall", syscall_name(c->wr_nr));
		jw_kint(w, "pid", c->wr_pid);
		jw_kint(w, "tid", c->wr_tid);
		jw_key(w, "comm");
		jw_strn(w, c->wr_comm, strnlen(c->wr_comm, sizeof(c->wr_comm)));
		jw_kint(w, "fd", c->wr_fd);
		jw_key(w, "pipe");
		pipe_write_json(w, &c->pipe);
		jw_obj_end(w);
	} else if (pt && pt->wf && pt->wf->kind) {
		jw_key(w, "waiting_for");
		waitgraph_write_waiting_for(w, pt->wf);
	}
	if (c->have_py)
		jw_kstr(w, "python", c->py.version);
	if (with_stack && pt) {
		struct py_thread cut = *pt;
		if (cut.nframes > CW_STACK_FRAMES) {
			cut.nframes = CW_STACK_FRAMES;
			cut.truncated = true;
		}
		jw_kint(w, "tid", pt->tid);
		jw_kstr(w, "thread_name", pt->name);
		jw_key(w, "stack");
		py_write_stack_json(w, &cut);
	}
	if (c->hung) {
		jw_key(w, "diagnosis");
		jw_obj_begin(w);
		jw_kstr(w, "code", diag_code_name(c->hang.code));
		jw_kstr(w, "summary", c->hang.summary);
		jw_kint(w, "waiter_tid", c->hang.waiter);
		jw_key(w, "culprit_tids");
		jw_arr_begin(w);
		for (size_t i = 0; i < c->hang.nculprits; i++)
			jw_int(w, c->hang.culprits[i]);
		jw_arr_end(w);
		jw_obj_end(w);
	}
}

static void write_child(struct jw *w, const struct cw_child *c, bool with_stack)
{
	jw_obj_begin(w);
	write_child_fields(w, c, with_stack);
	jw_obj_end(w);
}

void childwait_write_json(struct jw *w, const struct cw_wait *cw)
{
	if (cw->pid_arg > 0 && cw->n && cw->pidfd < 0) {
		write_child(w, &cw->children[0], false);
		return;
	}
	if (cw->pid_arg >= 0) {
		/* one child: named but not found, or named by a pidfd */
		jw_obj_begin(w);
		if (cw->n) {
			write_child_fields(w, &cw->children[0], false);
		} else {
			jw_key(w, "pid");
			if (cw->pid_arg > 0)
				jw_int(w, cw->pid_arg);
			else
				jw_null(w);
			jw_kstr(w, "comm", NULL);
			jw_kstr(w, "cmdline", NULL);
			/* a pidfd's process that is not (or no more) a child: not proven gone */
			jw_kstr(w, "state", cw->pid_arg > 0 && cw->pidfd < 0 ? "gone" : "unknown");
		}
		if (cw->pidfd >= 0)
			jw_kint(w, "pidfd", cw->pidfd);
		jw_obj_end(w);
		return;
	}
	jw_obj_begin(w);
	jw_kint(w, "pid", -1);
	jw_key(w, "children");
	jw_arr_begin(w);
	for (size_t i = 0; i < cw->n; i++)
		write_child(w, &cw->children[i], false);
	jw_arr_end(w);
	if (cw->more)
		jw_kbool(w, "children_cut", true);
	jw_obj_end(w);
}

/* diagnosis.child of a pipe_deadlock or child_hung: the child, with its relevant thread's
 * stack (written by output_json_diagnosis). */
void childwait_write_diagnosis_child(struct jw *w, const struct diagnosis *d)
{
	const struct cw_wait *cw = d->child;
	if (!cw || d->child_index >= cw->n) {
		jw_null(w);
		return;
	}
	write_child(w, &cw->children[d->child_index], true);
}

/* ---- text --------------------------------------------------------------------------- */

static void describe_child(const struct cw_child *c, char *buf, size_t len)
{
	char cq[32], wq[32];
	cw_comm_q(c->comm, cq, sizeof(cq));
	const char *nm = c->syscall_nr >= 0 ? syscall_name(c->syscall_nr) : NULL;
	if (c->hung)
		snprintf(buf, len, "pid %d (%s), which has a %s of its own", (int)c->pid, cq,
			 diag_code_name(c->hang.code));
	else if (c->writer && c->wr_pid == c->pid)
		snprintf(buf, len, "pid %d (%s), which is blocked in %s() on a pipe", (int)c->pid,
			 cq, syscall_name(c->wr_nr) ? syscall_name(c->wr_nr) : "write");
	else if (c->writer) {
		cw_comm_q(c->wr_comm, wq, sizeof(wq));
		snprintf(buf, len, "pid %d (%s), whose descendant %s (pid %d) is blocked writing to a pipe",
			 (int)c->pid, cq, wq, (int)c->wr_pid);
	} else if (nm)
		snprintf(buf, len, "pid %d (%s), which is sleeping in %s()", (int)c->pid, cq, nm);
	else
		snprintf(buf, len, "pid %d (%s), which is %s", (int)c->pid, cq, c->state);
}

void childwait_describe(const struct cw_wait *cw, char *buf, size_t len)
{
	if (cw->pid_arg > 0 && cw->n) {
		char one[400];
		describe_child(&cw->children[0], one, sizeof(one));
		snprintf(buf, len, "child %s%s", one, cw->pidfd >= 0 ? " (through a pidfd)" : "");
	} else if (cw->pid_arg > 0) {
		snprintf(buf, len, "child pid %d (not found)", cw->pid_arg);
	} else if (cw->pidfd >= 0) {
		snprintf(buf, len, "the child of its pidfd %d (which one is unknown)", cw->pidfd);
	} else if (cw->n == 1) {
		char one[400];
		describe_child(&cw->children[0], one, sizeof(one));
		snprintf(buf, len, "any child (one: %s)", one);
	} else {
		snprintf(buf, len, "any child (%zu%s)", cw->n, cw->more ? " or more" : "");
	}
}

void childwait_text(struct strbuf *sb, const struct cw_wait *cw, const struct diagnosis *d)
{
	if (!cw || d->child_index >= cw->n)
		return;
	const struct cw_child *c = &cw->children[d->child_index];
	sb_printf(sb, "Child pid %d '", (int)c->pid);
	sb_put_escaped_text(sb, c->comm, strnlen(c->comm, sizeof(c->comm)));
	sb_puts(sb, "'");
	if (c->cmdline[0]) {
		sb_puts(sb, " (");
		sb_put_escaped_text(sb, c->cmdline, strlen(c->cmdline));
		sb_puts(sb, ")");
	}
	sb_printf(sb, ", %s", c->state);
	if (c->syscall_nr >= 0 && syscall_name(c->syscall_nr))
		sb_printf(sb, " in %s()", syscall_name(c->syscall_nr));
	sb_puts(sb, ":\n");
	if (c->writer) {
		sb_puts(sb, "  ");
		if (c->wr_pid != c->pid) {
			sb_puts(sb, "its descendant '");
			sb_put_escaped_text(sb, c->wr_comm, strnlen(c->wr_comm, sizeof(c->wr_comm)));
			sb_printf(sb, "' (pid %d)", (int)c->wr_pid);
		} else {
			sb_printf(sb, "thread %d", (int)c->wr_tid);
		}
		sb_printf(sb, " is blocked in %s() on fd %d, a pipe", syscall_name(c->wr_nr) ?
			  syscall_name(c->wr_nr) : "write", c->wr_fd);
		if (c->pipe.queued >= 0)
			sb_printf(sb, " holding %ld bytes", c->pipe.queued);
		if (c->pipe.capacity > 0)
			sb_printf(sb, " of %ld", c->pipe.capacity);
		sb_puts(sb, "; read end held by");
		const char *sep = " ";
		for (size_t i = 0; i < c->pipe.nholders; i++) {
			const struct pipe_holder *h = &c->pipe.holders[i];
			if (!h->read_end)
				continue;
			sb_printf(sb, "%s'", sep);
			sb_put_escaped_text(sb, h->comm, strnlen(h->comm, sizeof(h->comm)));
			sb_printf(sb, "' (pid %d, fd %d)", (int)h->pid, h->fd);
			sep = ", ";
		}
		sb_puts(sb, "\n");
	}
	if (c->have_py) {
		pid_t focus[DIAG_MAX_CULPRITS + 1];
		size_t n = 0;
		if (c->hung) {
			for (size_t i = 0; i < c->hang.nculprits && n < DIAG_MAX_CULPRITS; i++)
				focus[n++] = c->hang.culprits[i];
			if (c->hang.waiter > 0)
				focus[n++] = c->hang.waiter;
			sb_puts(sb, "  its own hang: ");
			sb_put_escaped_text(sb, c->hang.summary, strlen(c->hang.summary));
			sb_printf(sb, " [%s]\n", diag_code_name(c->hang.code));
		} else if (c->py_tid) {
			focus[n++] = c->py_tid;
		}
		textreport_threads(sb, &c->py, focus, n, n ? focus[0] : 0);
	} else {
		sb_puts(sb, "  (not a Python process: no Python stack)\n\n");
	}
}

