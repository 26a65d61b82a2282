/* textreport: incidents in text (see textreport.h). */
#include "textreport.h"
#include "pywrite.h"
#include "syscall_names.h"
#include "iowait.h"

#include <stdio.h>
#include <string.h>

#include "srcline.h"
#include "waitgraph.h"
#include "diagnose.h"

static const char *base_of(const char *path)
{
	const char *b = path ? strrchr(path, '/') : NULL;
	return b ? b + 1 : path ? path : "?";
}

static void put(struct strbuf *sb, const char *s)
{
	if (s)
		sb_put_escaped_text(sb, s, strlen(s));
	else
		sb_puts(sb, "?");
}

static const struct py_thread *find(const struct py_process *p, pid_t tid)
{
	for (size_t i = 0; tid > 0 && i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return &p->threads[i];
	return NULL;
}

/* What the thread does now: "running", "in clock_nanosleep()", "waiting for Lock ...". */
static void doing(const struct py_thread *t, char *buf, size_t len)
{
	const struct wf_info *f = t->wf;
	if (t->state == PY_STATE_RUNNING) {
		snprintf(buf, len, "running");
		return;
	}
	if (t->state == PY_STATE_SLEEP && f && f->io) {
		char ph[400], to[128];
		io_phrase(f->io, ph, sizeof(ph));
		io_timeout_phrase(f->io, to, sizeof(to));
		if (f->io->in_call_s >= 0)
			snprintf(buf, len, "in %s for %.0f s%s", ph, f->io->in_call_s, to);
		else
			snprintf(buf, len, "in %s%s", ph, to);
		return;
	}
	if (t->state == PY_STATE_SLEEP && t->syscall_nr >= 0) {
		const char *n = syscall_name(t->syscall_nr);
		if (n)
			snprintf(buf, len, "in %s()", n);
		else
			snprintf(buf, len, "in system call %ld", t->syscall_nr);
		return;
	}
	if (f && f->kind) {
		char w[400];
		waitgraph_describe_wait(f, w, sizeof(w));
		snprintf(buf, len, "waiting for %s", w);
		return;
	}
	snprintf(buf, len, "%s", py_thread_state_str(t->state));
}

static void append(char *buf, size_t len, const char *fmt, const char *a, const char *file, int line,
		   const char *tail)
{
	size_t u = strnlen(buf, len);
	if (u + 1 >= len)
		return;
	if (file)
		snprintf(buf + u, len - u, fmt, a, file, line, tail);
	else
		snprintf(buf + u, len - u, fmt, a);
}

/* The chain from a waiter through the holders (a lock's, a joined thread, a future's
 * worker) to the thread at its end, at most DIAG_MAX_CULPRITS hops: "Lock held by 'B'
 * (...), which is waiting for ... at x.py:9, which has been in recvfrom() on TCP ... for
 * 30 s with no timeout set, at x.py:40: pass timeout=". A thread that ends the chain in
 * I/O is named with its resource and, for a socket without a timeout, the fix. */
void textreport_wait(const struct py_process *p, pid_t tid, char *buf, size_t len)
{
	const struct py_thread *t = find(p, tid);
	buf[0] = '\0';
	if (!t || !t->wf || !t->wf->kind)
		return;
	char w[600], d[600];
	waitgraph_describe_wait(t->wf, w, sizeof(w));
	snprintf(buf, len, "%s", w);
	const struct py_thread *seen[DIAG_MAX_CULPRITS + 1] = { t };
	size_t nseen = 1;
	const struct py_thread *h = t->wf->holder;
	if (!h && t->wf->io) {
		const struct py_frame *fr = diagnose_program_frame(t);
		if (fr)
			append(buf, len, "%s, at %s:%d%s", "", base_of(fr->file), fr->line,
			       t->wf->io->no_timeout_set && !t->wf->io->idle ? ": pass timeout=" : "");
		return;
	}
	while (h && nseen <= DIAG_MAX_CULPRITS) {
		bool loop = false;
		for (size_t k = 0; k < nseen; k++)
			loop |= seen[k] == h;
		if (loop)
			break;
		seen[nseen++] = h;
		const struct py_frame *fr = diagnose_program_frame(h);
		doing(h, d, sizeof(d));
		bool io = h->wf && h->wf->io;
		const struct py_thread *next = h->wf && !io ? h->wf->holder : NULL;
		if (io)
			append(buf, len, fr ? ", which has been %s, at %s:%d%s" : ", which has been %s", d,
			       fr ? base_of(fr->file) : NULL, fr ? fr->line : 0,
			       h->wf->io->no_timeout_set && !h->wf->io->idle ? ": pass timeout=" : "");
		else
			append(buf, len, fr ? ", which is %s at %s:%d%s" : ", which is %s", d,
			       fr ? base_of(fr->file) : NULL, fr ? fr->line : 0, "");
		h = next;
	}
}

static void header(struct strbuf *sb, const struct py_thread *t, bool mark)
{
	char d[512];
	py_write_thread_label(sb, t, mark);
	if (t->gil)
		sb_puts(sb, ", holds the GIL");
	doing(t, d, sizeof(d));
	sb_puts(sb, ", ");
	put(sb, d);
	sb_puts(sb, ")");
}

static void traceback(struct strbuf *sb, pid_t pid, const struct py_thread *t)
{
	sb_puts(sb, ":\nTraceback (most recent call last):\n");
	if (t->truncated)
		sb_printf(sb, "  ... (older frames cut: %s)\n", t->error ? t->error : "unreadable");
	for (size_t k = t->nframes; k-- > 0;) {
		const struct py_frame *f = &t->frames[k];
		sb_puts(sb, "  File \"");
		put(sb, f->file);
		if (f->line >= 0)
			sb_printf(sb, "\", line %d, in ", f->line);
		else
			sb_puts(sb, "\", line ?, in ");
		put(sb, f->function);
		if (f->error)
			sb_printf(sb, " [%s]", f->error);
		sb_putc(sb, '\n');
		char src[256];
		if (f->line > 0 && srcline_get(pid, f->file, f->line, src, sizeof(src))) {
			sb_puts(sb, "    ");
			put(sb, src);
			sb_putc(sb, '\n');
		}
	}
	if (t->nframes == 0)
		sb_puts(sb, "  (no Python frames)\n");
	const struct wf_info *f = t->wf;
	for (size_t k = 0; f && k < f->lo.nheld; k++) {
		const struct lo_lock *h = &f->lo.held[k];
		const struct py_frame *fr = h->frame >= 0 && (size_t)h->frame < t->nframes ?
			&t->frames[h->frame] : NULL;
		sb_printf(sb, "  holds: %s", lo_kind_str(h->kind));
		if (fr) {
			sb_puts(sb, " taken at ");
			put(sb, base_of(fr->file));
			sb_printf(sb, ":%d", h->line >= 0 ? h->line : fr->line);
		}
		sb_putc(sb, '\n');
	}
	sb_putc(sb, '\n');
}

void textreport_traceback(struct strbuf *sb, pid_t pid, const struct py_thread *t)
{
	traceback(sb, pid, t);
}

static void one_line(struct strbuf *sb, const struct py_thread *t)
{
	header(sb, t, false);
	const struct py_frame *fr = diagnose_program_frame(t);
	if (fr) {
		sb_puts(sb, " at ");
		put(sb, base_of(fr->file));
		sb_printf(sb, ":%d in ", fr->line);
		put(sb, fr->function);
	}
	sb_putc(sb, '\n');
}

void textreport_threads(struct strbuf *sb, const struct py_process *p, const pid_t *focus,
			size_t nfocus, pid_t mark)
{
	if (p->threads_error && strstr(p->threads_error, " not repeated: "))
		sb_printf(sb, "(%s)\n", p->threads_error); /* outcap_focus: shown above already */
	else if (p->threads_error)
		sb_printf(sb, "(thread list cut: %s; the threads before the cut follow)\n",
			  p->threads_error);
	for (size_t k = 0; k < nfocus; k++) {
		const struct py_thread *t = find(p, focus[k]);
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			dup |= focus[j] == focus[k];
		if (!t || dup)
			continue;
		header(sb, t, t->tid == mark);
		traceback(sb, p->pid, t);
	}
	bool any = false;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		bool in = false;
		for (size_t k = 0; k < nfocus; k++)
			in |= t->tid > 0 && focus[k] == t->tid;
		if (in)
			continue;
		if (!any)
			sb_puts(sb, "Other threads:\n");
		any = true;
		sb_puts(sb, "  ");
		one_line(sb, t);
	}
	if (any)
		sb_putc(sb, '\n');
	srcline_flush();
}
