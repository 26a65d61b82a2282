/* asyncio_diag: event_loop_blocked, event_loop_self_wait and await_cycle (asyncio_diag.h). */
#include "asyncio_diag.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "srcline.h"
#include "syscall_names.h"

static const char *base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	return s ? s + 1 : path ? path : "?";
}

static void thread_label(const struct aio_loop *L, char *buf, size_t len)
{
	if (L->thread_name)
		snprintf(buf, len, "'%.100s' (tid %d)", L->thread_name, (int)L->tid);
	else
		snprintf(buf, len, "tid %d", (int)L->tid);
}

/* "selfwait() at prog.py:125 (`asyncio.run_coroutine_threadsafe(...).result()`)" */
static void where(pid_t pid, const struct aio_frame *f, char *buf, size_t len)
{
	char src[160];
	if (!f->function) {
		snprintf(buf, len, "an unknown place");
		return;
	}
	int n = snprintf(buf, len, "%.100s() at %.100s:%d", f->function, base_name(f->file), f->line);
	if (n > 0 && (size_t)n < len && f->line > 0 && srcline_get(pid, f->file, f->line, src, sizeof(src))) {
		/* the file is the target's: keep printable ASCII only */
		for (char *c = src; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				*c = '?';
		snprintf(buf + n, len - (size_t)n, " (`%s`)", src);
	}
}

static void set_culprit(struct diagnosis *d, pid_t tid)
{
	d->nculprits = 0;
	d->waiter = tid;
	if (tid > 0)
		d->culprits[d->nculprits++] = tid;
}

static bool self_wait(const struct aio_view *v, const struct aio_loop *L, struct diagnosis *d)
{
	if (!L->self_wait_future || !L->lock_wait || !L->tid)
		return false;
	char th[160], at[400];
	thread_label(L, th, sizeof(th));
	where(v->pid, &L->self_wait_at, at, sizeof(at));
	d->code = DIAG_EVENT_LOOP_SELF_WAIT;
	snprintf(d->summary, sizeof(d->summary),
		 "the event loop of thread %.150s blocks itself: %.380s waits in concurrent.futures "
		 "Future.result() for a future that only this loop can complete (the coroutine "
		 "handed to run_coroutine_threadsafe() %s), so it never will; "
		 "await the coroutine instead, or call result() from another thread", th, at,
		 L->self_wait_by_task ? "is a task of this loop" : "waits in the loop's queue");
	set_culprit(d, L->tid);
	return true;
}

bool aio_diagnose_self_wait(const struct aio_view *v, pid_t tid, struct diagnosis *d)
{
	for (size_t i = 0; v && i < v->nloops; i++)
		if (v->loops[i].tid == tid && self_wait(v, &v->loops[i], d))
			return true;
	return false;
}

bool aio_diagnose_blocked(const struct aio_view *v, size_t loop, struct diagnosis *d)
{
	const struct aio_loop *L = &v->loops[loop];
	if (strcmp(L->state, "blocked") != 0 || !L->tid)
		return false;
	if (self_wait(v, L, d))
		return true;
	char th[160], cb[400], in[400], call[96] = "";
	thread_label(L, th, sizeof(th));
	where(v->pid, &L->callback, cb, sizeof(cb));
	where(v->pid, &L->innermost, in, sizeof(in));
	if (L->syscall_nr >= 0)
		snprintf(call, sizeof(call), ", in %s()", syscall_name(L->syscall_nr));
	d->code = DIAG_EVENT_LOOP_BLOCKED;
	char secs[32];
	snprintf(secs, sizeof(secs), "%.1f", L->running_s);
	bool same = L->callback.function && L->innermost.function &&
		    !strcmp(L->callback.function, L->innermost.function) &&
		    !strcmp(L->callback.file, L->innermost.file) && L->callback.line == L->innermost.line;
	if (same)
		snprintf(d->summary, sizeof(d->summary),
			 "the event loop of thread %.100s has been blocked for %.20s s by synchronous code: "
			 "%.300s makes a blocking call%.60s, and no other task or callback of this loop runs "
			 "meanwhile; await an asyncio equivalent or move it to loop.run_in_executor()",
			 th, secs, cb, call);
	else
		snprintf(d->summary, sizeof(d->summary),
			 "the event loop of thread %.100s has been blocked for %.20s s by synchronous code: "
			 "%.250s is stuck in %.250s%.60s, and no other task or callback of this loop runs "
			 "meanwhile; await an asyncio equivalent or move it to loop.run_in_executor()",
			 th, secs, cb, in, call);
	set_culprit(d, L->tid);
	return true;
}

static bool pending_waiting(const struct aio_task *t)
{
	return !strcmp(t->state, "pending") && t->awaits &&
	       (!strcmp(t->awaits, "task") || !strcmp(t->awaits, "gather"));
}

/* Iterative DFS over "awaits" edges of pending tasks; colors: 0 new, 1 on the path, 2 done.
 * On a back edge, the path from that task to the top is the cycle. */
bool aio_diagnose_cycle(const struct aio_view *v, struct diagnosis *d, uint64_t *fingerprint)
{
	size_t n = v->ntasks;
	if (!n)
		return false;
	unsigned char color[AIO_MAX_TASKS];
	size_t stack[AIO_MAX_TASKS], edge[AIO_MAX_TASKS];
	memset(color, 0, n);
	for (size_t s = 0; s < n; s++) {
		if (color[s] || !pending_waiting(&v->tasks[s]))
			continue;
		size_t sp = 0;
		stack[sp] = s;
		edge[sp++] = 0;
		color[s] = 1;
		while (sp) {
			size_t u = stack[sp - 1];
			const struct aio_task *t = &v->tasks[u];
			if (edge[sp - 1] >= t->nawaited || !pending_waiting(t)) {
				color[u] = 2;
				sp--;
				continue;
			}
			size_t w = t->awaited[edge[sp - 1]++];
			if (color[w] == 0 && sp < n) {
				color[w] = 1;
				stack[sp] = w;
				edge[sp++] = 0;
				continue;
			}
			if (color[w] != 1 || !pending_waiting(&v->tasks[w]))
				continue;
			/* cycle: stack from w to u */
			size_t from = 0;
			while (stack[from] != w)
				from++;
			char text[700] = "";
			size_t len = 0;
			uint64_t fp = 0;
			for (size_t k = from; k < sp && len < sizeof(text) - 1; k++) {
				const struct aio_task *x = &v->tasks[stack[k]];
				char lb[256], at[300];
				aio_task_label(x, lb, sizeof(lb));
				if (x->nframes)
					snprintf(at, sizeof(at), " (%s:%d)", base_name(x->frames[0].file),
						 x->frames[0].line);
				else
					at[0] = 0;
				int m = snprintf(text + len, sizeof(text) - len, "%s%s%s", k > from ? " awaits " : "",
						 lb, at);
				if (m > 0)
					len += (size_t)m < sizeof(text) - len ? (size_t)m : sizeof(text) - len - 1;
				fp += x->addr * 0x9e3779b97f4a7c15ull; /* order-free */
			}
			char first[256];
			aio_task_label(&v->tasks[w], first, sizeof(first));
			d->code = DIAG_AWAIT_CYCLE;
			snprintf(d->summary, sizeof(d->summary),
				 "tasks await each other: %.600s awaits %.200s again, so none of them can ever "
				 "finish (unless one is cancelled); break the cycle", text, first);
			d->nculprits = 0;
			d->waiter = 0;
			for (size_t i = 0; i < v->nloops; i++)
				if (v->loops[i].addr == v->tasks[w].loop && v->loops[i].tid) {
					d->waiter = v->loops[i].tid;
					d->culprits[d->nculprits++] = v->loops[i].tid;
				}
			*fingerprint = fp;
			return true;
		}
	}
	return false;
}
