/* asyncio_write: the asyncio view of a process (user/python/asyncio_read.h) for people
 * and programs: the JSON `asyncio` object (README: "asyncio event loops and tasks"), the
 * text tree of `dump` (each awaited task under the task that awaits it), task labels,
 * and the last views read, written with a snapshot's threads through
 * py_process_json_hook (pywrite.h). Every count and depth is bounded (2,000 tree lines,
 * 32 levels; events' JSON within AIO_EVENT_JSON_BUDGET). */
#include "asyncio_write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pywrite.h"
#include "syscall_names.h"

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* ---- output ---------------------------------------------------------------------------- */

void aio_task_label(const struct aio_task *t, char *buf, size_t len)
{
	if (t->name)
		snprintf(buf, len, "Task '%.200s'", t->name);
	else if (t->nframes)
		snprintf(buf, len, "Task running %.200s()", t->frames[t->nframes - 1].function);
	else
		snprintf(buf, len, "Task at 0x%llx", (unsigned long long)t->addr);
}

static void json_frame(struct jw *w, const struct aio_frame *f)
{
	jw_obj_begin(w);
	jw_kstr(w, "function", f->function);
	jw_kstr(w, "file", f->file);
	jw_key(w, "line");
	if (f->line >= 0)
		jw_int(w, f->line);
	else
		jw_null(w);
	jw_obj_end(w);
}

static bool sub_pipe_ok(const struct aio_subproc *s, size_t k)
{
	return !strcmp(s->pipes[k].d.type, "pipe") && s->pipes[k].d.pipe_end == FD_END_READ &&
	       s->pipes[k].d.peers_searched;
}

/* "subprocess": {pid, state, returncode, pipes: [{stream, fd}], pipe_holders: [{pid, comm,
 * stream, fd, self}], pipe_holders_total, pipe_holders_cut} (README: asyncio) */
static void json_subproc(struct jw *w, const struct aio_view *v, const struct aio_subproc *s)
{
	jw_key(w, "subprocess");
	jw_obj_begin(w);
	jw_key(w, "pid");
	if (s->pid > 0)
		jw_int(w, s->pid);
	else
		jw_null(w);
	jw_kstr(w, "state", s->state);
	jw_key(w, "returncode");
	if (s->returncode_known)
		jw_int(w, s->returncode);
	else
		jw_null(w);
	jw_key(w, "pipes");
	jw_arr_begin(w);
	for (size_t k = 0; k < s->npipes; k++) {
		if (!sub_pipe_ok(s, k))
			continue;
		jw_obj_begin(w);
		jw_kstr(w, "stream", s->pipes[k].stream);
		jw_kint(w, "fd", s->pipes[k].fd);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	unsigned total = 0;
	bool cut = false;
	jw_key(w, "pipe_holders");
	jw_arr_begin(w);
	for (size_t k = 0; k < s->npipes; k++) {
		const struct fd_desc *d = &s->pipes[k].d;
		if (!sub_pipe_ok(s, k))
			continue;
		total += d->peers_total;
		cut |= d->peers_cut;
		for (unsigned i = 0; i < d->npeers; i++) {
			jw_obj_begin(w);
			jw_kint(w, "pid", d->peers[i].pid);
			jw_kstr(w, "comm", d->peers[i].comm);
			jw_kstr(w, "stream", s->pipes[k].stream);
			jw_kint(w, "fd", d->peers[i].fd);
			jw_kbool(w, "self", d->peers[i].pid == v->pid);
			jw_obj_end(w);
		}
	}
	jw_arr_end(w);
	jw_kint(w, "pipe_holders_total", total);
	jw_kbool(w, "pipe_holders_cut", cut);
	jw_obj_end(w);
}

static void json_task(struct jw *w, const struct aio_view *v, const struct aio_task *t)
{
	jw_obj_begin(w);
	jw_key(w, "id");
	jw_hex(w, t->addr);
	jw_kstr(w, "name", t->name);
	jw_kstr(w, "state", t->state);
	jw_key(w, "coroutine_stack");
	jw_arr_begin(w);
	for (size_t k = 0; k < t->nframes; k++)
		json_frame(w, &t->frames[k]);
	jw_arr_end(w);
	if (t->chain_cut)
		jw_kbool(w, "coroutine_stack_truncated", true);
	jw_key(w, "awaits");
	jw_obj_begin(w);
	jw_kstr(w, "kind", t->awaits ? t->awaits : "unknown");
	if (t->awaits_at && t->awaits_at->function) {
		jw_key(w, "where");
		json_frame(w, t->awaits_at);
	}
	if (!isnan(t->deadline_in_s))
		jw_kdouble(w, "deadline_in_s", t->deadline_in_s, 3);
	if (t->sub)
		json_subproc(w, v, t->sub);
	if (t->waiter) {
		jw_key(w, "future");
		jw_hex(w, t->waiter);
	}
	if (t->nawaited) {
		jw_key(w, "tasks");
		jw_arr_begin(w);
		for (size_t k = 0; k < t->nawaited; k++)
			jw_hex(w, v->tasks[t->awaited[k]].addr);
		jw_arr_end(w);
	}
	jw_obj_end(w);
	jw_key(w, "awaited_by");
	jw_arr_begin(w);
	for (size_t k = 0; k < t->nawaited_by; k++)
		jw_hex(w, v->tasks[t->awaited_by[k]].addr);
	jw_arr_end(w);
	jw_obj_end(w);
}

/* Writes task t unless that takes the JSON past start + budget (0: no budget): then it is
 * taken back (the buffer and the writer as before) and false returned. */
static bool json_task_within(struct jw *w, const struct aio_view *v, const struct aio_task *t,
			     size_t start, size_t budget)
{
	struct jw saved = *w;
	size_t len = w->sb->len;
	bool oom = w->sb->oom;
	json_task(w, v, t);
	if (!budget || (w->sb->len - start <= budget && !(w->sb->oom && !oom)))
		return true;
	*w = saved;
	w->sb->len = len;
	w->sb->oom = oom;
	if (w->sb->data)
		w->sb->data[len] = 0;
	return false;
}

void aio_write_json(struct jw *w, const struct aio_view *v)
{
	size_t start = w->sb->len;
	bool cut = false;
	jw_obj_begin(w);
	jw_kbool(w, "supported", !v->unsupported);
	if (v->unsupported) {
		jw_kstr(w, "reason", v->unsupported);
		jw_obj_end(w);
		return;
	}
	if (v->error)
		jw_kstr(w, "error", v->error);
	jw_key(w, "loops");
	jw_arr_begin(w);
	for (size_t i = 0; i < v->nloops; i++) {
		const struct aio_loop *L = &v->loops[i];
		jw_obj_begin(w);
		jw_key(w, "id");
		jw_hex(w, L->addr);
		jw_key(w, "thread");
		if (L->tid || L->thread_name) {
			jw_obj_begin(w);
			jw_kint(w, "tid", L->tid);
			jw_kstr(w, "name", L->thread_name);
			jw_obj_end(w);
		} else {
			jw_null(w);
		}
		jw_kstr(w, "state", L->state);
		jw_key(w, "running_s");
		if (isnan(L->running_s))
			jw_null(w);
		else
			jw_double(w, L->running_s, 3);
		if (L->callback.function) {
			jw_key(w, "callback");
			json_frame(w, &L->callback);
		}
		if (L->innermost.function && strcmp(L->state, "idle") != 0) {
			jw_key(w, "innermost");
			json_frame(w, &L->innermost);
			if (L->syscall_nr >= 0)
				jw_kstr(w, "syscall", syscall_name(L->syscall_nr));
		}
		jw_key(w, "self_pipe_fd");
		if (L->self_pipe_fd >= 0)
			jw_int(w, L->self_pipe_fd);
		else
			jw_null(w);
		if (L->self_wait_future) {
			jw_key(w, "self_wait_future");
			jw_hex(w, L->self_wait_future);
		}
		jw_key(w, "tasks");
		jw_arr_begin(w);
		for (size_t k = 0; k < L->ntasks && !cut; k++)
			cut = !json_task_within(w, v, &v->tasks[L->tasks[k]], start, v->json_budget);
		jw_arr_end(w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	if (v->tasks_truncated || cut)
		jw_kbool(w, "tasks_truncated", true);
	jw_obj_end(w);
}

/* Strings read from the target (task, function, file and thread names) are escaped. */
static void put_untrusted(struct strbuf *sb, const char *s)
{
	sb_put_escaped_text(sb, s ? s : "?", strlen(s ? s : "?"));
}

static void put_label(struct strbuf *sb, const struct aio_task *t)
{
	char lb[300];
	aio_task_label(t, lb, sizeof(lb));
	put_untrusted(sb, lb);
}

static void text_frame(struct strbuf *sb, const struct aio_frame *f)
{
	put_untrusted(sb, f->function);
	sb_puts(sb, "() at ");
	put_untrusted(sb, base_name(f->file ? f->file : "?"));
	sb_printf(sb, ":%d", f->line);
}

/* "subprocess 4242 (exited, return code 0), whose stdout pipe is still held open by 'sleep'
 * (pid 4250)"; "... whose stdout pipe no related process holds open (checked N)" */
static void text_subproc(struct strbuf *sb, const struct aio_view *v, const struct aio_subproc *s)
{
	if (s->pid > 0)
		sb_printf(sb, "subprocess %d (%s", (int)s->pid, s->state);
	else
		sb_printf(sb, "a subprocess (%s", s->state);
	if (s->returncode_known)
		sb_printf(sb, ", return code %d", s->returncode);
	sb_putc(sb, ')');
	for (size_t k = 0; k < s->npipes; k++) {
		const struct fd_desc *d = &s->pipes[k].d;
		if (!sub_pipe_ok(s, k))
			continue;
		sb_printf(sb, ", whose %s pipe ", s->pipes[k].stream);
		if (!d->npeers) {
			sb_printf(sb, "no related process holds open (%u looked at%s)", (unsigned)d->peers_looked,
				  d->peers_cut ? ", search cut" : "");
			continue;
		}
		sb_puts(sb, "is still held open by ");
		for (unsigned i = 0; i < d->npeers && i < 3; i++) {
			const struct fd_peer *p = &d->peers[i];
			if (i)
				sb_puts(sb, i + 1 == d->npeers ? " and " : ", ");
			if (p->pid == v->pid)
				sb_puts(sb, "this process itself (");
			else if (p->pid == s->pid)
				sb_puts(sb, "the subprocess itself (");
			sb_putc(sb, '\'');
			put_untrusted(sb, p->comm);
			sb_printf(sb, "' (pid %d)", (int)p->pid);
			if (p->pid == v->pid || p->pid == s->pid)
				sb_putc(sb, ')');
		}
		if (d->peers_total > 3)
			sb_printf(sb, " and %u more", (unsigned)d->peers_total - 3);
	}
}

static void text_awaits(struct strbuf *sb, const struct aio_view *v, const struct aio_task *t)
{
	const char *k = t->awaits ? t->awaits : "unknown";
	if (!strcmp(k, "running") || !strcmp(k, "nothing") || !strcmp(k, "unknown")) {
		sb_printf(sb, "%s", !strcmp(k, "running") ? "running now" : k);
		return;
	}
	if (!strcmp(k, "task") || !strcmp(k, "gather")) {
		sb_printf(sb, "awaits %s", !strcmp(k, "gather") ? "gather() of" : "");
		for (size_t i = 0; i < t->nawaited; i++) {
			sb_puts(sb, i ? ", " : (!strcmp(k, "gather") ? " " : ""));
			put_label(sb, &v->tasks[t->awaited[i]]);
		}
		if (!t->nawaited)
			sb_printf(sb, " a task");
		if (t->sub) {
			sb_puts(sb, ", for ");
			text_subproc(sb, v, t->sub);
		}
		return;
	}
	if (!strcmp(k, "subprocess") && t->sub) {
		sb_puts(sb, "awaits ");
		text_subproc(sb, v, t->sub);
		return;
	}
	sb_printf(sb, "awaits %s", !strcmp(k, "sleep") ? "sleep" : !strcmp(k, "io") ? "I/O" : k);
	if (!isnan(t->deadline_in_s))
		sb_printf(sb, " (wakes in %.1f s)", t->deadline_in_s);
	if (t->sub) {
		sb_puts(sb, ", for ");
		text_subproc(sb, v, t->sub);
	}
}

static void text_task(struct strbuf *sb, const struct aio_view *v, size_t idx, int depth,
		      size_t *path, size_t *lines)
{
	const struct aio_task *t = &v->tasks[idx];
	if (++*lines > 2000)
		return;
	for (int i = 0; i < depth; i++)
		sb_puts(sb, "    ");
	sb_puts(sb, "└── ");
	put_label(sb, t);
	sb_printf(sb, " (%s) ", t->state);
	text_awaits(sb, v, t);
	sb_putc(sb, '\n');
	for (size_t k = 0; k < t->nframes; k++) {
		for (int i = 0; i <= depth; i++)
			sb_puts(sb, "    ");
		sb_puts(sb, k ? "  " : "at ");
		text_frame(sb, &t->frames[k]);
		sb_putc(sb, '\n');
	}
	path[depth] = idx;
	for (size_t k = 0; k < t->nawaited; k++) {
		size_t c = t->awaited[k];
		bool cycle = false;
		for (int i = 0; i <= depth; i++)
			cycle |= path[i] == c;
		if (cycle || depth + 1 >= 32) {
			for (int i = 0; i <= depth; i++)
				sb_puts(sb, "    ");
			sb_puts(sb, "└── ");
			put_label(sb, &v->tasks[c]);
			sb_printf(sb, " (%s)\n", cycle ? "await cycle: shown above" : "deeper: cut");
			continue;
		}
		text_task(sb, v, c, depth + 1, path, lines);
	}
}

void aio_write_text(struct strbuf *sb, const struct aio_view *v)
{
	if (!v || !v->imported)
		return;
	if (v->unsupported) {
		sb_printf(sb, "asyncio: unsupported (%s)\n\n", v->unsupported);
		return;
	}
	for (size_t i = 0; i < v->nloops; i++) {
		const struct aio_loop *L = &v->loops[i];
		if (L->tid) {
			sb_puts(sb, "asyncio event loop on thread \"");
			put_untrusted(sb, L->thread_name);
			sb_printf(sb, "\" (tid %d): ", (int)L->tid);
		} else {
			sb_printf(sb, "asyncio event loop (no thread runs it now): ");
		}
		if (!strcmp(L->state, "idle"))
			sb_puts(sb, "idle in its selector");
		else if (!strcmp(L->state, "not_running"))
			sb_puts(sb, "not running");
		else {
			sb_printf(sb, "%s", !strcmp(L->state, "blocked") ? "BLOCKED, running a callback" :
				  "running a callback");
			if (!isnan(L->running_s))
				sb_printf(sb, " for %.1f s", L->running_s);
			if (L->callback.function) {
				sb_puts(sb, ": ");
				text_frame(sb, &L->callback);
			}
			if (L->innermost.function) {
				sb_puts(sb, ", now in ");
				text_frame(sb, &L->innermost);
				if (L->syscall_nr >= 0)
					sb_printf(sb, " (%s)", syscall_name(L->syscall_nr));
			}
		}
		sb_printf(sb, "; %zu task%s\n", L->ntasks, L->ntasks == 1 ? "" : "s");
		size_t path[32], lines = 0;
		for (size_t k = 0; k < L->ntasks; k++) {
			const struct aio_task *t = &v->tasks[L->tasks[k]];
			bool root = t->nawaited_by == 0;
			if (!root) { /* in a cycle nobody outside awaits: start at its lowest index */
				bool outside = false;
				size_t cur = L->tasks[k], steps = 0;
				while (steps++ < v->ntasks) {
					const struct aio_task *x = &v->tasks[cur];
					if (x->nawaited_by != 1) {
						outside = true;
						break;
					}
					cur = x->awaited_by[0];
					if (cur == L->tasks[k])
						break;
				}
				if (!outside) {
					size_t lowest = L->tasks[k];
					cur = v->tasks[L->tasks[k]].awaited_by[0];
					for (size_t s = 0; s < v->ntasks && cur != L->tasks[k]; s++) {
						if (cur < lowest)
							lowest = cur;
						cur = v->tasks[cur].awaited_by[0];
					}
					root = lowest == L->tasks[k];
				}
			}
			if (root)
				text_task(sb, v, L->tasks[k], 0, path, &lines);
		}
		if (lines > 2000)
			sb_puts(sb, "    ... (more tasks cut)\n");
		sb_putc(sb, '\n');
	}
	if (v->tasks_truncated)
		sb_printf(sb, "asyncio: only the first %u tasks were read\n\n", AIO_MAX_TASKS);
	if (v->error)
		sb_printf(sb, "asyncio: %s\n\n", v->error);
}

/* ---- the view written with a snapshot's threads --------------------------------------- */

/* The last views read, one per process (a long wait may reuse a snapshot read a moment
 * ago, while the watcher read other processes since). */
#define AIO_PUBLISHED 4
static struct aio_view published[AIO_PUBLISHED];
static bool published_valid[AIO_PUBLISHED];
static unsigned published_next;

const struct aio_view *aio_published(pid_t pid, uint64_t start_time);

static void json_hook(struct jw *w, const struct py_process *p)
{
	const struct aio_view *v = aio_published(p->pid, p->start_time);
	if (!aio_view_present(v))
		return;
	jw_key(w, "asyncio");
	aio_write_json(w, v);
}

void aio_publish(struct aio_view *v, size_t json_budget)
{
	unsigned slot = published_next;
	for (unsigned i = 0; i < AIO_PUBLISHED; i++)
		if (published_valid[i] && published[i].pid == v->pid) {
			slot = i;
			break;
		}
	if (slot == published_next)
		published_next = (published_next + 1) % AIO_PUBLISHED;
	if (published_valid[slot])
		aio_view_free(&published[slot]);
	v->json_budget = json_budget;
	published[slot] = *v;
	published_valid[slot] = true;
	py_process_json_hook = json_hook;
	memset(v, 0, sizeof(*v));
}

const struct aio_view *aio_published(pid_t pid, uint64_t start_time)
{
	for (unsigned i = 0; i < AIO_PUBLISHED; i++) {
		const struct aio_view *v = &published[i];
		if (published_valid[i] && v->pid == pid &&
		    !(start_time && v->start_time && v->start_time != start_time))
			return v;
	}
	return NULL;
}

void aio_publish_clear(void)
{
	for (unsigned i = 0; i < AIO_PUBLISHED; i++) {
		if (published_valid[i])
			aio_view_free(&published[i]);
		published_valid[i] = false;
	}
}
