/* asyncio_read: event loops and tasks of a live process (see asyncio_read.h).
 * Facts (CPython 3.7-3.13, Lib/asyncio as installed with each version; C layouts in
 * pylayout.c, struct py_aio_layout):
 * - base_events.py BaseEventLoop._run_once(self): `event_list = self._selector.select(timeout)`
 *   then `end_time = self.time() + self._clock_resolution`, then the ready handles run
 *   (`handle._run()`, events.py Handle._run). BaseEventLoop.time() is time.monotonic(). So
 *   while a callback runs, the _run_once frame's local end_time is the loop's monotonic
 *   clock when its selector returned; in the selector, end_time is still unbound (NULL).
 * - Every task is in asyncio.tasks._all_tasks (3.7-3.11, a WeakSet) or in _scheduled_tasks
 *   (WeakSet) / _eager_tasks (set) (3.12, 3.13); the C tasks register themselves there.
 * - A suspended coroutine's awaited object (cr_await) is the top of its frame's value
 *   stack; `await fut` leaves an _asyncio.FutureIter whose first field is the future.
 *   task_fut_waiter is the future (or task) a task's step is blocked on.
 * - run_coroutine_threadsafe(coro, loop) (tasks.py) makes a concurrent.futures.Future and
 *   schedules `callback` (a closure over that future) with loop.call_soon_threadsafe: the
 *   handle sits in loop._ready (a collections.deque) until the loop runs it; then the
 *   coroutine is a task of the loop whose first done callback is futures.py
 *   _chain_future's `_call_set_state`, a closure over the same future. */
#include "asyncio_read.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asyncio_int.h"
#include "pylayout.h"
#include "syscall_names.h"

/* ---- loops ----------------------------------------------------------------------------- */

/* The target's CLOCK_MONOTONIC now: ours plus the difference of the time namespaces'
 * monotonic offsets (/proc/PID/timens_offsets, Linux 5.6+; absent: no offset). */
static double target_now(pid_t pid)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	char path[64];
	double off[2] = { 0, 0 };
	for (int k = 0; k < 2; k++) {
		if (k == 0)
			snprintf(path, sizeof(path), "/proc/%d/timens_offsets", (int)pid);
		else
			snprintf(path, sizeof(path), "/proc/self/timens_offsets");
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		char name[32];
		long long s, ns;
		while (fscanf(f, "%31s %lld %lld", name, &s, &ns) == 3)
			if (strcmp(name, "monotonic") == 0)
				off[k] = (double)s + (double)ns / 1e9;
		fclose(f);
	}
	return now + off[0] - off[1];
}

static void copy_pyframe(struct aio_frame *out, const struct py_frame *f)
{
	aio_frame_set(out, f->function, f->file, f->line);
}

/* Whether func is a Python function named fn (co_name) defined in asyncio/<file> whose
 * closure holds obj. */
static bool closure_holds(struct aio_ctx *c, uint64_t func, const char *fn_name, const char *file_name,
			  uint64_t obj)
{
	const struct py_aio_layout *a = c->a;
	if (!func || !aio_type_named(c, func, "function"))
		return false;
	uint64_t code = aio_ptr(c, func + a->func_code);
	char *fn = NULL, *file = NULL;
	int line;
	bool match = false, ok;
	if (code && py_reader_code_where(c->r, c->pid, code, UINT64_MAX, &fn, &file, &line) == 0)
		match = strcmp(aio_short_fn(fn), fn_name) == 0 && aio_file_is(file, "asyncio", file_name);
	free(fn);
	free(file);
	if (!match)
		return false;
	uint64_t clo = aio_ptr(c, func + a->func_closure);
	int64_t nc = clo ? aio_i64(c, clo + a->tuple_size, &ok) : 0;
	for (int64_t k = 0; clo && ok && k < nc && k < 32; k++)
		if (aio_ptr(c, aio_ptr(c, clo + a->tuple_items + 8 * (uint64_t)k) + a->cell_ref) == obj)
			return true;
	return false;
}

/* Whether `fut` is held by a callback that this loop has been asked to run and has not run
 * yet: a handle in loop._ready whose callback is tasks.py run_coroutine_threadsafe's
 * `callback` closure over fut. */
static bool ready_holds_future(struct aio_ctx *c, uint64_t loop, uint64_t fut)
{
	const struct py_aio_layout *a = c->a;
	uint64_t dq = py_reader_mem_attr(c->r, c->pid, loop, "_ready");
	if (!dq || !aio_type_named(c, dq, "collections.deque"))
		return false;
	bool ok;
	bool ok2;
	int64_t n = aio_i64(c, dq + a->deque_size, &ok);
	uint64_t block = aio_ptr(c, dq + a->deque_leftblock);
	int64_t li = aio_i64(c, dq + a->deque_leftindex, &ok2);
	if (!ok || !ok2 || n <= 0 || !aio_plausible(block) || li < 0 || li >= 64)
		return false;
	if (n > 10000)
		n = 10000;
	uint64_t b = block;
	for (int64_t i = 0, slot = li; i < n && b; i++, slot++) {
		if (slot == 64) { /* the next block */
			b = aio_ptr(c, b + a->block_rightlink);
			slot = 0;
			if (!aio_plausible(b))
				break;
		}
		uint64_t handle = aio_ptr(c, b + a->block_data + 8 * (uint64_t)slot);
		if (closure_holds(c, aio_slot_attr(c, handle, "_callback"), "callback", "tasks.py", fut))
			return true;
	}
	return false;
}

/* Whether `fut` will be completed by a pending task of the loop: the task's first done
 * callback (fut_callback0) is futures.py _chain_future's `_call_set_state` closure over fut
 * (run_coroutine_threadsafe's callback has run: the coroutine is a task of the loop now,
 * and fut is set when that task ends, which only the loop can make happen). */
static bool task_completes_future(struct aio_ctx *c, const struct aio_view *v, uint64_t loop, uint64_t fut)
{
	for (size_t i = 0; i < v->ntasks; i++) {
		const struct aio_task *t = &v->tasks[i];
		if (t->loop != loop || strcmp(t->state, "pending") != 0)
			continue;
		if (closure_holds(c, aio_ptr(c, t->addr + c->a->fut_callback0), "_call_set_state",
				  "futures.py", fut))
			return true;
	}
	return false;
}

/* loop._ssock.fileno(): the instance attribute _ssock (selector_events.py
 * _make_self_pipe, 3.7-3.13) must be a socket.socket; its sock_fd read at the layout's
 * offset. -1 when any of it is missing. */
static int self_pipe_fd(struct aio_ctx *c, uint64_t loop)
{
	uint64_t ss = aio_obj_attr(c, loop, "_ssock");
	int32_t fd;
	if (!aio_plausible(ss) || !aio_type_named(c, ss, "socket") ||
	    !aio_rd(c, ss + c->a->sock_fd, &fd, sizeof(fd)) || fd < 0)
		return -1;
	return fd;
}

static void find_loops(struct aio_ctx *c, const struct py_process *p, double blocked_after_s,
		       struct aio_view *v)
{
	for (size_t i = 0; i < p->nthreads && v->nloops < AIO_MAX_LOOPS; i++) {
		const struct py_thread *th = &p->threads[i];
		size_t k;
		for (k = 0; k < th->nframes; k++)
			if (aio_frame_is(&th->frames[k], "_run_once", "asyncio", "base_events.py"))
				break;
		if (k == th->nframes || !th->frames[k].addr || !th->frames[k].code)
			continue;
		uint64_t loop = aio_local0(c, th->frames[k].addr);
		if (!aio_plausible(loop))
			continue;
		struct aio_loop *L = &v->loops[v->nloops++];
		memset(L, 0, sizeof(*L));
		L->addr = loop;
		L->tid = th->tid;
		L->thread_name = th->name ? strdup(th->name) : NULL;
		L->syscall_nr = th->syscall_nr;
		L->lock_wait = th->state == PY_STATE_LOCK_WAIT;
		L->running_s = NAN;
		L->end_time = NAN;
		L->self_pipe_fd = self_pipe_fd(c, loop);
		double end_time;
		bool bound = aio_float_of(c, aio_local_by_name(c, th->frames[k].addr, th->frames[k].code,
						       "end_time"), &end_time);
		const struct py_frame *in = k > 0 ? &th->frames[k - 1] : NULL;
		if (in && in->function && in->file && strcmp(aio_short_fn(in->function), "select") == 0 &&
		    strcmp(aio_base_name(in->file), "selectors.py") == 0 && !bound) {
			L->state = "idle";
			continue;
		}
		L->state = "running";
		if (bound) {
			L->end_time = end_time;
			L->running_s = c->now - end_time;
			if (L->running_s < 0)
				L->running_s = 0;
			if (L->running_s >= blocked_after_s)
				L->state = "blocked";
		}
		size_t j;
		for (j = 0; j < k; j++)
			if (aio_frame_is(&th->frames[j], "_run", "asyncio", "events.py"))
				break;
		if (j < k && j > 0)
			copy_pyframe(&L->callback, &th->frames[j - 1]);
		if (k > 0)
			copy_pyframe(&L->innermost, &th->frames[0]);
		/* waits in concurrent.futures Future.result() inside a callback of its own loop */
		for (size_t m = 0; L->lock_wait && m < j && m < k; m++) {
			const struct py_frame *f = &th->frames[m];
			if (!aio_frame_is(f, "result", "futures", "_base.py") || !f->addr)
				continue;
			uint64_t fut = aio_local0(c, f->addr);
			if (!aio_plausible(fut))
				break;
			if (ready_holds_future(c, loop, fut))
				L->self_wait_future = fut;
			else
				L->self_wait_candidate = fut; /* tasks are read next */
			if (m + 1 < k)
				copy_pyframe(&L->self_wait_at, &th->frames[m + 1]);
			break;
		}
	}
}

static struct aio_loop *loop_of(struct aio_view *v, uint64_t addr)
{
	for (size_t i = 0; i < v->nloops; i++)
		if (v->loops[i].addr == addr)
			return &v->loops[i];
	if (v->nloops == AIO_MAX_LOOPS)
		return NULL;
	struct aio_loop *L = &v->loops[v->nloops++];
	memset(L, 0, sizeof(*L));
	L->addr = addr;
	L->state = "not_running";
	L->running_s = NAN;
	L->end_time = NAN;
	L->syscall_nr = -1;
	L->self_pipe_fd = -1;
	return L;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int aio_imported(struct py_reader *r, pid_t pid)
{
	unsigned version;
	char err[128];
	if (py_probe_process(r, pid, &version, err, sizeof(err)) != 1)
		return -1;
	const struct py_layout *l = py_reader_layout(r, pid);
	struct py_addrs ad;
	if (!l || py_reader_addrs(r, pid, &ad) != 0 || !ad.interp)
		return -1;
	if (!pylayout_asyncio_for_version(l->major, l->minor))
		return 0; /* 2.7, 3.6: nothing read */
	py_reader_mem_begin(r, pid);
	uint64_t modules = 0;
	if (py_reader_mem_read(r, pid, ad.interp + l->interp_modules, &modules, 8) != 0 || !modules)
		return -1;
	return py_reader_mem_dict_get(r, pid, modules, "asyncio") != 0;
}

int aio_read(struct py_reader *r, const struct py_process *p, double blocked_after_s,
	     struct aio_view *v)
{
	uint64_t t0 = cpu_ns();
	memset(v, 0, sizeof(*v));
	v->pid = p->pid;
	v->start_time = p->start_time;
	const struct py_layout *l = py_reader_layout(r, p->pid);
	struct py_addrs ad;
	if (!l || py_reader_addrs(r, p->pid, &ad) != 0 || !ad.interp) {
		v->error = "the interpreter is unknown";
		return -1;
	}
	struct aio_ctx c = { .r = r, .pid = p->pid, .l = l, .budget = AIO_READ_BUDGET };
	py_reader_mem_begin(r, p->pid);
	uint64_t modules = aio_ptr(&c, ad.interp + l->interp_modules);
	if (!modules)
		return 0;
	v->imported = py_reader_mem_dict_get(r, p->pid, modules, "asyncio") != 0 ||
		      (l->major == 2 && py_reader_mem_dict_get(r, p->pid, modules, "trollius") != 0);
	c.a = pylayout_asyncio_for_version(l->major, l->minor);
	if (!v->imported)
		return 0;
	if (!c.a) {
		v->unsupported = l->major == 2 ? "asyncio is not read on Python 2.7" :
			l->minor == 6 ? "asyncio is not read on Python 3.6 (3.7-3.13 only)" :
			"asyncio is not read on this Python version (3.7-3.13 only)";
		return 0;
	}
	c.now = target_now(p->pid);
	uint64_t amd = aio_module_dict(&c, modules, "_asyncio");
	if (amd) {
		c.t_task = py_reader_mem_dict_get(r, p->pid, amd, "Task");
		c.t_future = py_reader_mem_dict_get(r, p->pid, amd, "Future");
	}
	find_loops(&c, p, blocked_after_s, v);
	uint64_t tmd = aio_module_dict(&c, modules, "asyncio.tasks");
	if (!c.t_task) {
		v->error = "the C _asyncio module is not loaded: tasks are not read";
	} else if (tmd) {
		uint64_t ws = py_reader_mem_dict_get(r, p->pid, tmd, c.a->tasks_all);
		uint64_t data = ws ? py_reader_mem_attr(r, p->pid, ws, "data") : 0;
		if (data && aio_type_named(&c, data, "set"))
			aio_collect_set(&c, data, true, v);
		if (c.a->tasks_eager) {
			uint64_t eager = py_reader_mem_dict_get(r, p->pid, tmd, c.a->tasks_eager);
			if (eager && aio_type_named(&c, eager, "set"))
				aio_collect_set(&c, eager, false, v);
		}
	}
	for (size_t i = 0; i < v->ntasks; i++)
		aio_task_fill(&c, &v->tasks[i]);
	aio_link_tasks(&c, v);
	aio_subproc_facts(v);
	for (size_t i = 0; i < v->nloops; i++) {
		struct aio_loop *L = &v->loops[i];
		if (L->self_wait_candidate &&
		    task_completes_future(&c, v, L->addr, L->self_wait_candidate)) {
			L->self_wait_future = L->self_wait_candidate;
			L->self_wait_by_task = true;
		}
	}
	/* tasks by loop; tasks of a loop no thread runs make a "not_running" loop */
	for (size_t i = 0; i < v->ntasks; i++) {
		struct aio_task *t = &v->tasks[i];
		if (!strcmp(t->state, "finished") || !strcmp(t->state, "cancelled"))
			continue;
		struct aio_loop *L = loop_of(v, t->loop);
		if (!L)
			continue;
		size_t *nt = realloc(L->tasks, (L->ntasks + 1) * sizeof(size_t));
		if (nt) {
			L->tasks = nt;
			L->tasks[L->ntasks++] = i;
		}
	}
	if (!c.budget)
		v->error = "read budget exhausted: the view is cut";
	v->cost_ns = cpu_ns() - t0;
	return 0;
}

void aio_view_free(struct aio_view *v)
{
	for (size_t i = 0; i < v->nloops; i++) {
		struct aio_loop *L = &v->loops[i];
		free(L->thread_name);
		free(L->tasks);
		aio_frame_free(&L->callback);
		aio_frame_free(&L->innermost);
		aio_frame_free(&L->self_wait_at);
	}
	for (size_t i = 0; i < v->ntasks; i++) {
		struct aio_task *t = &v->tasks[i];
		free(t->name);
		for (size_t k = 0; k < t->nframes; k++)
			aio_frame_free(&t->frames[k]);
		free(t->frames);
		free(t->awaited);
		free(t->awaited_by);
		free(t->sub);
	}
	free(v->tasks);
	memset(v, 0, sizeof(*v));
}

bool aio_view_present(const struct aio_view *v)
{
	return v && v->imported;
}
