/* annotate: GitHub Actions annotations of findings (see annotate.h).
 *
 * Workflow commands are read by the runner from the step's stdout, one per line, and must
 * start the line. In the data part `%`, CR and LF are written %25, %0D, %0A; in property
 * values also `:` and `,` (%3A, %2C), which the runner turns back. Other control
 * characters are written as `?`, so nothing a traced process names (files, threads) can
 * end the line and start a command of its own.
 *
 * The user's frame of a stack (innermost first): the innermost frame in a file under
 * $GITHUB_WORKSPACE (the checked-out repository), else the innermost outside the
 * standard library and installed packages (site-packages, dist-packages), else the
 * innermost outside the standard library; the file is written relative to
 * $GITHUB_WORKSPACE when under it, which is how annotations land on the diff. */
#include "annotate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diagnose.h"
#include "pyreader.h"
#include "strbuf.h"
#include "tracer.h"

int annotate_parse(const char *s, bool *github)
{
	if (strcmp(s, "github") == 0)
		*github = true;
	else if (strcmp(s, "none") == 0)
		*github = false;
	else
		return -1;
	return 0;
}

bool annotate_auto(void)
{
	const char *v = getenv("GITHUB_ACTIONS");
	return v && strcmp(v, "true") == 0;
}

static void put_escaped(struct strbuf *sb, const char *s, bool property)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '%')
			sb_puts(sb, "%25");
		else if (c == '\r')
			sb_puts(sb, "%0D");
		else if (c == '\n')
			sb_puts(sb, "%0A");
		else if (property && c == ':')
			sb_puts(sb, "%3A");
		else if (property && c == ',')
			sb_puts(sb, "%2C");
		else if (c < 0x20 || c == 0x7f)
			sb_putc(sb, '?');
		else
			sb_putc(sb, (char)c);
	}
}

static bool is_pseudo_file(const char *f)
{
	return !f || !*f || f[0] == '<';
}

static bool is_stdlib(const char *f)
{
	return strstr(f, "/lib/python") != NULL && !strstr(f, "-packages/");
}

static bool is_installed_package(const char *f)
{
	return strstr(f, "/site-packages/") || strstr(f, "/dist-packages/");
}

/* $GITHUB_WORKSPACE with one trailing slash, or NULL. */
static const char *workspace(char *buf, size_t len)
{
	const char *w = getenv("GITHUB_WORKSPACE");
	if (!w || w[0] != '/' || strlen(w) + 2 > len)
		return NULL;
	snprintf(buf, len, "%s%s", w, w[strlen(w) - 1] == '/' ? "" : "/");
	return buf;
}

static const struct py_frame *user_frame(const struct py_thread *t, const char *ws)
{
	if (!t)
		return NULL;
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < t->nframes; i++) {
			const char *f = t->frames[i].file;
			if (is_pseudo_file(f) || t->frames[i].line < 1)
				continue;
			if (pass == 0 && ws && strncmp(f, ws, strlen(ws)) == 0)
				return &t->frames[i];
			if (pass == 1 && !is_stdlib(f) && !is_installed_package(f))
				return &t->frames[i];
			if (pass == 2 && !is_stdlib(f))
				return &t->frames[i];
		}
	return NULL;
}

static const struct py_thread *thread_of(const struct py_process *p, pid_t tid)
{
	for (size_t i = 0; p && i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return &p->threads[i];
	return NULL;
}

/* Writes `::error file=F,line=N,title=TITLE::` + message and a newline to stdout. The
 * first stack with a user frame gives the place; none: an annotation without one. */
static void emit(struct tracer *t, const struct py_thread *const *stacks, size_t nstacks,
		 const char *title, const char *message)
{
	char wsbuf[4096];
	const char *ws = workspace(wsbuf, sizeof(wsbuf));
	const struct py_frame *f = NULL;
	for (size_t i = 0; i < nstacks && !f; i++)
		f = user_frame(stacks[i], ws);
	struct strbuf sb;
	sb_init(&sb);
	sb_puts(&sb, "::error ");
	if (f) {
		const char *file = f->file;
		if (ws && strncmp(file, ws, strlen(ws)) == 0)
			file += strlen(ws);
		sb_puts(&sb, "file=");
		put_escaped(&sb, file, true);
		sb_printf(&sb, ",line=%d,", f->line);
	}
	sb_puts(&sb, "title=");
	put_escaped(&sb, title, true);
	sb_puts(&sb, "::");
	put_escaped(&sb, message, false);
	sb_putc(&sb, '\n');
	(void)t; /* stdout: after the event's own block when that went to stdout too */
	sb_flush_to(&sb, stdout);
	fflush(stdout);
	sb_free(&sb);
}

void annotate_hang(struct tracer *t, const struct rec_hang *r)
{
	if (!t->annotate_github)
		return;
	const struct py_thread *stacks[DIAG_MAX_CULPRITS + 1];
	size_t n = 0;
	for (size_t i = 0; i < r->diag->nculprits; i++) {
		const struct py_thread *th = thread_of(r->py, r->diag->culprits[i]);
		if (th)
			stacks[n++] = th;
	}
	const struct py_thread *w = thread_of(r->py, r->diag->waiter);
	if (w)
		stacks[n++] = w;
	char title[64], msg[1400];
	snprintf(title, sizeof(title), "pyhang-trace found a hang (%s)", diag_code_name(r->diag->code));
	snprintf(msg, sizeof(msg), "%.16s (pid %d): %s", r->p.comm, (int)r->p.pid, r->diag->summary);
	emit(t, stacks, n, title, msg);
}

void annotate_child_lost(struct tracer *t, const struct rec_child_lost *r)
{
	if (!t->annotate_github)
		return;
	/* the cause first (where SIGCHLD became ignored, where the status was taken), then
	 * the wait that lost it */
	const struct py_thread *stacks[] = { r->ignore_stack, r->reaper_stack, r->stack };
	char msg[1400];
	snprintf(msg, sizeof(msg), "%.16s (pid %d): a child's exit status was lost: %s",
		 r->p.comm, (int)r->p.pid, r->summary ? r->summary : rec_lost_cause_name(r->cause));
	emit(t, stacks, 3, "pyhang-trace found a lost child exit status", msg);
}
