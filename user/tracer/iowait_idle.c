/* iowait_idle: when a blocking I/O call is an idle wait, i.e. provably a wait for new work
 * (declared in iowait.h). An idle server waiting for clients is no problem, so an idle wait
 * gets no long_wait by default (iosample.c; --report-idle brings them back) and is marked
 * in the thread's waiting_for. The rules, each a proof from the call and its descriptors:
 * - "listening": accept()/accept4() on a listening socket; or poll/select/epoll whose every
 *   waited fd (all of them described: at most IO_MAX_FDS) is a listening socket waited for
 *   input only. Only a new client can end such a call (or a signal).
 * - "event_loop": the thread runs an asyncio loop that the asyncio reader of the same
 *   snapshot found idle in its selector (BaseEventLoop._run_once calling selectors'
 *   select(), nothing else on its stack inside them), every pending task of that loop (all
 *   of them read) awaits new work only: a sleep (it returns by itself), I/O (its socket is
 *   among the waited fds, judged below) or Server.serve_forever(); and every waited fd is a
 *   listening socket or the loop's own self-pipe (loop._ssock, a unix socket: written by
 *   call_soon_threadsafe() and signal handlers, never by a peer). A task awaiting an
 *   Event, a Queue, a lock, a future or another task keeps the loop a long_wait: a lost
 *   wake-up looks just the same from outside. The loop's timers do not matter: a loop
 *   waiting on a timer returns by itself.
 * Not idle (a long_wait as before): any connected socket, pipe, file or other fd among the
 * waited ones (an asyncio client awaiting a reply, a server's keep-alive connection), a fd
 * waited for output, more fds than described, fds not readable. A finite timeout alone is
 * no proof (CPython's socket timeouts poll with one). What a task awaits is asyncio
 * reporting's business (the snapshot's `asyncio` section): a task awaiting a socket makes
 * that socket one of the waited fds, so its loop is not idle. */
#include <string.h>

#include "asyncio_read.h"
#include "iowait.h"
#include "pyreader.h"

enum { NR_ACCEPT_ = 43, NR_ACCEPT4_ = 288 };
#define EV_OUT 4u /* POLLOUT, EPOLLOUT; select's write set (iowait.c) */

static bool ends_with(const char *s, const char *tail)
{
	size_t a = s ? strlen(s) : 0, b = strlen(tail);
	return s && a >= b && strcmp(s + a - b, tail) == 0;
}

/* fn is name, or a qualified name ending in ".name" (co_qualname 3.11+) */
static bool fn_is(const char *fn, const char *name)
{
	if (!fn)
		return false;
	size_t a = strlen(fn), b = strlen(name);
	return a >= b && strcmp(fn + a - b, name) == 0 && (a == b || fn[a - b - 1] == '.');
}

/* Every pending task of loop L awaits a sleep, I/O, or Server.serve_forever() (asyncio's
 * base_events.py, 3.7+), and no task was left unread. */
static bool tasks_await_new_work(const struct aio_loop *L, const struct aio_view *v)
{
	if (v->tasks_truncated)
		return false;
	for (size_t k = 0; k < L->ntasks; k++) {
		if (L->tasks[k] >= v->ntasks)
			return false;
		const struct aio_task *tk = &v->tasks[L->tasks[k]];
		if (!tk->state || strcmp(tk->state, "pending") != 0)
			continue;
		if (tk->awaits && (!strcmp(tk->awaits, "sleep") || !strcmp(tk->awaits, "io")))
			continue;
		if (tk->awaits_at && fn_is(tk->awaits_at->function, "serve_forever") &&
		    ends_with(tk->awaits_at->file, "/asyncio/base_events.py"))
			continue;
		return false;
	}
	return true;
}

/* The self-pipe fd of the loop thread t runs, when the view finds that loop idle in its
 * selector and t's stack (this snapshot) shows it there now: selectors' select() innermost,
 * called by asyncio's _run_once. -1 otherwise. */
static int idle_loop_self_pipe(const struct py_thread *t, const struct aio_view *v)
{
	if (!v || v->unsupported || t->nframes < 2 || t->tid <= 0)
		return -1;
	const struct py_frame *in = &t->frames[0], *out = &t->frames[1];
	if (!fn_is(in->function, "select") || !ends_with(in->file, "/selectors.py") ||
	    !fn_is(out->function, "_run_once") || !ends_with(out->file, "/asyncio/base_events.py"))
		return -1;
	for (size_t i = 0; i < v->nloops; i++) {
		const struct aio_loop *L = &v->loops[i];
		if (L->tid == t->tid && L->state && strcmp(L->state, "idle") == 0)
			return tasks_await_new_work(L, v) ? L->self_pipe_fd : -1;
	}
	return -1;
}

void io_classify_idle(struct io_wait *io, const struct py_thread *t, const struct aio_view *v)
{
	io->idle = NULL;
	if (io->fd_call && !io->multi) {
		if ((io->nr == NR_ACCEPT_ || io->nr == NR_ACCEPT4_) && io->on.listening)
			io->idle = "listening";
		return;
	}
	if (!io->multi || io->nfds_total <= 0 || io->nfds != io->nfds_total)
		return;
	int self_fd = -2; /* not looked up yet */
	bool used_self = false;
	for (int i = 0; i < io->nfds; i++) {
		const struct fd_desc *d = &io->fds[i];
		if (d->events & EV_OUT)
			return;
		if (d->listening)
			continue;
		if (self_fd == -2)
			self_fd = idle_loop_self_pipe(t, v);
		if (self_fd < 0 || d->fd != self_fd || strcmp(d->type, "unix") != 0)
			return;
		used_self = true;
	}
	io->idle = used_self ? "event_loop" : "listening";
}
