/* pywrite_text: Python threads and stacks read by the reader (user/python) for people,
 * shaped like a Python traceback (see pywrite.h). */
#include "pywrite.h"
#include <string.h>

#include "childwait.h"
#include "waitgraph.h" /* t->wf: the resource of an I/O wait (iowait.h), when built */

static void put_text(struct strbuf *sb, const char *s)
{
	if (s)
		sb_put_escaped_text(sb, s, strlen(s));
	else
		sb_puts(sb, "?");
}

void py_write_thread_label(struct strbuf *sb, const struct py_thread *t, bool mark)
{
	sb_puts(sb, mark ? "==> Thread " : "Thread ");
	if (t->name) {
		sb_putc(sb, '"');
		put_text(sb, t->name);
		sb_putc(sb, '"');
	} else {
		sb_puts(sb, "(no threading name)");
	}
	if (t->tid > 0)
		sb_printf(sb, " (tid %d", (int)t->tid);
	else
		sb_puts(sb, " (tid unknown");
}

static void write_thread_header(struct strbuf *sb, const struct py_thread *t, bool mark)
{
	py_write_thread_label(sb, t, mark);
	sb_puts(sb, t->daemon == 1 ? ", daemon" : t->daemon == 0 ? ", non-daemon" : "");
	sb_puts(sb, t->gil ? ", holds the GIL" : "");
	sb_printf(sb, ", %s", py_thread_state_str(t->state));
	if (t->syscall_nr == PH_NR_FUTEX)
		sb_puts(sb, t->futex_timed ? " in a futex wait with a timeout" : " in a futex wait");
	else if (t->wf && t->wf->io) {
		char ph[400], to[128];
		io_phrase(t->wf->io, ph, sizeof(ph));
		io_timeout_phrase(t->wf->io, to, sizeof(to));
		sb_puts(sb, " in ");
		put_text(sb, ph); /* paths and names come from the target: escaped */
		put_text(sb, to);
	} else if (t->wf && t->wf->child && t->wf->child->phrase[0] && t->syscall_nr >= 0 &&
		   syscall_name(t->syscall_nr)) {
		sb_printf(sb, " in %s() for ", syscall_name(t->syscall_nr));
		put_text(sb, t->wf->child->phrase); /* names, command lines: the target's, escaped */
	} else if (t->syscall_nr >= 0 && syscall_name(t->syscall_nr))
		sb_printf(sb, " in %s()", syscall_name(t->syscall_nr));
	else if (t->syscall_nr >= 0)
		sb_puts(sb, " in a system call unknown to this build");
	sb_puts(sb, "):\n");
}

void py_write_threads_text(struct strbuf *sb, const struct py_process *p, pid_t highlight_tid)
{
	if (p->threads_error)
		sb_printf(sb, "(thread list cut: %s; the threads before the cut follow)\n\n",
			  p->threads_error);
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		write_thread_header(sb, t, highlight_tid > 0 && t->tid == highlight_tid);
		sb_puts(sb, "Traceback (most recent call last):\n");
		if (t->truncated)
			sb_printf(sb, "  ... (older frames cut: %s)\n",
				  t->error ? t->error : "too deep, cyclic or unreadable");
		for (size_t k = t->nframes; k-- > 0;) {
			const struct py_frame *f = &t->frames[k];
			sb_puts(sb, "  File \"");
			put_text(sb, f->file);
			if (f->line >= 0)
				sb_printf(sb, "\", line %d, in ", f->line);
			else
				sb_puts(sb, "\", line ?, in ");
			put_text(sb, f->function);
			if (f->error)
				sb_printf(sb, " [%s]", f->error);
			sb_putc(sb, '\n');
		}
		if (t->nframes == 0)
			sb_puts(sb, "  (no Python frames)\n");
		sb_putc(sb, '\n');
	}
}
