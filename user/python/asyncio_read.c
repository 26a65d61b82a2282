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

#include "pylayout.h"
#include "syscall_names.h"

struct ctx {
	struct py_reader *r;
	pid_t pid;
	const struct py_layout *l;
	const struct py_aio_layout *a;
	uint64_t t_future, t_task;  /* _asyncio.Future / _asyncio.Task type objects */
	double now;                 /* the target's time.monotonic() now */
	size_t budget;              /* object reads left (bounds the CPU of one view) */
};

#define AIO_READ_BUDGET 400000u

static bool rd(struct ctx *c, uint64_t addr, void *buf, size_t len)
{
	if (!c->budget)
		return false;
	c->budget--;
	return py_reader_mem_read(c->r, c->pid, addr, buf, len) == 0;
}

static uint64_t ptr(struct ctx *c, uint64_t addr)
{
	uint64_t v = 0;
	if (!addr || !rd(c, addr, &v, sizeof(v)))
		return 0;
	return v;
}

static int64_t i64(struct ctx *c, uint64_t addr, bool *ok)
{
	int64_t v = 0;
	*ok = addr && rd(c, addr, &v, sizeof(v));
	return v;
}

static bool plausible(uint64_t p)
{
	return p >= 0x1000 && p < 0x800000000000ull && !(p & 7);
}

static uint64_t type_of(struct ctx *c, uint64_t obj)
{
	return plausible(obj) ? ptr(c, obj + c->l->ob_type) : 0;
}

/* tp_name of obj's type (a C string), "" when unreadable. */
static void type_name(struct ctx *c, uint64_t obj, char *buf, size_t len)
{
	buf[0] = 0;
	uint64_t t = type_of(c, obj), np = t ? ptr(c, t + c->l->tp_name) : 0;
	if (!np || len < 2)
		return;
	size_t n = len - 1 < 63 ? len - 1 : 63;
	while (n > 0 && !rd(c, np, buf, n))
		n /= 2;
	buf[n] = 0;
}

static bool type_named(struct ctx *c, uint64_t obj, const char *name)
{
	char b[64];
	type_name(c, obj, b, sizeof(b));
	return strcmp(b, name) == 0;
}

static bool is_instance(struct ctx *c, uint64_t obj, uint64_t base)
{
	uint64_t t = type_of(c, obj);
	for (int i = 0; i < 32 && plausible(t) && base; i++) {
		if (t == base)
			return true;
		t = ptr(c, t + c->a->tp_base);
	}
	return false;
}

static char *str_of(struct ctx *c, uint64_t obj)
{
	if (!plausible(obj) || !c->budget)
		return NULL;
	c->budget--;
	return py_reader_mem_str(c->r, c->pid, obj);
}

static bool float_of(struct ctx *c, uint64_t obj, double *out)
{
	if (!type_named(c, obj, "float") || !rd(c, obj + c->a->float_val, out, sizeof(*out)))
		return false;
	return isfinite(*out);
}

/* sys.modules[name].__dict__, 0 if absent. */
static uint64_t module_dict(struct ctx *c, uint64_t modules, const char *name)
{
	uint64_t m = py_reader_mem_dict_get(c->r, c->pid, modules, name);
	return m ? ptr(c, m + c->l->md_dict) : 0;
}

/* An attribute from the instance's __dict__: at tp_dictoffset when the type has one (C
 * types such as _asyncio.Future and their Python subclasses keep it there in every
 * version), else as the reader finds it (managed dicts, 3.11+). */
static uint64_t obj_attr(struct ctx *c, uint64_t obj, const char *name)
{
	bool ok;
	uint64_t t = type_of(c, obj);
	int64_t off = t ? i64(c, t + c->l->tp_dictoffset, &ok) : 0;
	if (t && ok && off > 0 && off < 4096 && !(off & 7)) {
		uint64_t d = ptr(c, obj + (uint64_t)off);
		return d ? py_reader_mem_dict_get(c->r, c->pid, d, name) : 0;
	}
	return py_reader_mem_attr(c->r, c->pid, obj, name);
}

/* A __slots__ attribute: the member descriptor in the type's (or a base's) dict gives the
 * offset of the slot. 0 when absent or unreadable. */
static uint64_t slot_attr(struct ctx *c, uint64_t obj, const char *name)
{
	uint64_t t = type_of(c, obj);
	for (int i = 0; i < 8 && plausible(t); i++, t = ptr(c, t + c->a->tp_base)) {
		uint64_t d = ptr(c, t + c->a->tp_dict);
		uint64_t desc = d ? py_reader_mem_dict_get(c->r, c->pid, d, name) : 0;
		if (!desc)
			continue;
		if (!type_named(c, desc, "member_descriptor"))
			return 0;
		bool ok;
		uint64_t md = ptr(c, desc + c->a->d_member);
		int64_t off = md ? i64(c, md + c->a->memberdef_offset, &ok) : 0;
		if (!md || !ok || off < 16 || off > 4096 || (off & 7))
			return 0;
		return ptr(c, obj + (uint64_t)off);
	}
	return 0;
}

static bool new_style_frames(const struct py_layout *l)
{
	return l->frames != PY_FRAMES_OBJECTS;
}

/* The local variable `name` of a frame (PyFrameObject <= 3.10, _PyInterpreterFrame 3.11+)
 * running code object code; 0 when unbound or unknown. */
static uint64_t local_by_name(struct ctx *c, uint64_t frame, uint64_t code, const char *name)
{
	const struct py_layout *l = c->l;
	uint64_t names = ptr(c, code + (new_style_frames(l) ? c->a->co_localsplusnames : l->co_varnames));
	bool ok;
	int64_t n = names ? i64(c, names + c->a->tuple_size, &ok) : 0;
	if (!names || !ok || n <= 0 || n > 512)
		return 0;
	uint64_t base = frame + (new_style_frames(l) ? l->iframe_localsplus : l->f_localsplus);
	for (int64_t i = 0; i < n; i++) {
		char *s = str_of(c, ptr(c, names + c->a->tuple_items + 8 * (uint64_t)i));
		bool hit = s && strcmp(s, name) == 0;
		free(s);
		if (hit)
			return ptr(c, base + 8 * (uint64_t)i);
	}
	return 0;
}

static uint64_t local0(struct ctx *c, uint64_t frame)
{
	return ptr(c, frame + (new_style_frames(c->l) ? c->l->iframe_localsplus : c->l->f_localsplus));
}

static void frame_set(struct aio_frame *f, const char *function, const char *file, int line)
{
	f->function = strdup(function ? function : "?");
	f->file = strdup(file ? file : "?");
	f->line = line;
}

static void frame_free(struct aio_frame *f)
{
	free(f->function);
	free(f->file);
	f->function = f->file = NULL;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static const char *short_fn(const char *fn)
{
	const char *s = strrchr(fn, '.');
	return s ? s + 1 : fn;
}

/* path ends with "/asyncio/<file>" (or is "<dir>/<file>" for dir given). */
static bool file_is(const char *path, const char *dir, const char *file)
{
	size_t lp = strlen(path), ld = strlen(dir), lf = strlen(file);
	if (lp < ld + lf + 2)
		return false;
	const char *p = path + lp - lf;
	return strcmp(p, file) == 0 && p[-1] == '/' && strncmp(p - 1 - ld, dir, ld) == 0 &&
	       (p - 1 - ld == path || p[-2 - (long)ld] == '/');
}

static bool frame_is(const struct py_frame *f, const char *fn, const char *dir, const char *file)
{
	return f->function && f->file && strcmp(short_fn(f->function), fn) == 0 &&
	       file_is(f->file, dir, file);
}

/* ---- coroutines ------------------------------------------------------------------------ */

/* One coroutine/generator object: its frame's location into *out and the object it awaits
 * (0: not suspended in an await, or unknown). false: not readable as one. */
static bool coro_step(struct ctx *c, uint64_t gen, struct aio_frame *out, uint64_t *awaited,
		      bool *running)
{
	const struct py_layout *l = c->l;
	const struct py_aio_layout *a = c->a;
	uint64_t frame, code, pos = UINT64_MAX;
	bool suspended = false;
	*awaited = 0;
	*running = false;
	if (a->gen == PY_AIO_GEN_IFRAME) {
		int8_t st;
		frame = gen + a->gi_iframe;
		if (!rd(c, gen + a->gi_frame_state, &st, 1))
			return false;
		if (st >= 1) /* completed or cleared: the frame is gone */
			return false;
		*running = st == 0;
		suspended = st == a->suspended_a || st == a->suspended_b;
		code = ptr(c, frame + l->f_code);
		uint64_t instr = ptr(c, frame + l->f_pos), start = code + l->co_code_adaptive;
		if (code && instr >= start && instr - start < (1u << 24))
			pos = instr - start;
	} else {
		frame = ptr(c, gen + a->gi_frame);
		if (!plausible(frame))
			return false;
		code = ptr(c, frame + l->f_code);
		int32_t lasti = 0;
		if (rd(c, frame + l->f_pos, &lasti, 4) && lasti >= 0)
			pos = (uint64_t)lasti;
	}
	char *fn = NULL, *file = NULL;
	int line = -1;
	if (!plausible(code) || py_reader_code_where(c->r, c->pid, code, pos, &fn, &file, &line) != 0)
		return false;
	frame_set(out, fn, file, line);
	free(fn);
	free(file);
	uint64_t top = 0;
	if (a->gen == PY_AIO_GEN_IFRAME) {
		int32_t depth;
		if (suspended && rd(c, frame + a->if_stacktop, &depth, 4) && depth > 0 && depth < 65536)
			top = ptr(c, frame + l->iframe_localsplus + 8 * ((uint64_t)depth - 1));
	} else if (a->gen == PY_AIO_GEN_FRAMEOBJ_STACKTOP) {
		uint64_t st = ptr(c, frame + a->f_stacktop);
		*running = !st;
		if (st)
			top = ptr(c, st - 8);
	} else {
		int8_t fs;
		int32_t depth;
		if (rd(c, frame + a->f_state, &fs, 1)) {
			*running = fs == 0;
			if (fs == a->suspended_a && rd(c, frame + a->f_stackdepth, &depth, 4) &&
			    depth > 0 && depth < 65536)
				top = ptr(c, ptr(c, frame + l->f_valuestack) + 8 * ((uint64_t)depth - 1));
		}
	}
	*awaited = plausible(top) ? top : 0;
	return true;
}

static bool is_gen(struct ctx *c, uint64_t obj)
{
	char b[64];
	type_name(c, obj, b, sizeof(b));
	return strcmp(b, "coroutine") == 0 || strcmp(b, "generator") == 0;
}

/* Kind of wait from the innermost coroutine frame of the chain (the asyncio function it is
 * suspended in) and the type of that function's `self`. */
static const char *classify(struct ctx *c, const struct aio_frame *f, uint64_t self_obj)
{
	if (!f || !f->file)
		return "future";
	const char *fn = short_fn(f->function);
	char tn[64] = "";
	if (self_obj)
		type_name(c, self_obj, tn, sizeof(tn));
	if (file_is(f->file, "asyncio", "tasks.py")) {
		if (strcmp(fn, "sleep") == 0 || strcmp(fn, "__sleep0") == 0)
			return "sleep";
		if (strcmp(fn, "wait") == 0 || strcmp(fn, "_wait") == 0 || strcmp(fn, "wait_for") == 0)
			return "wait";
	}
	if (file_is(f->file, "asyncio", "locks.py")) {
		if (strstr(tn, "Event"))
			return "event";
		if (strstr(tn, "Condition"))
			return "condition";
		if (strstr(tn, "Semaphore"))
			return "semaphore";
		if (strstr(tn, "Barrier"))
			return "barrier";
		return "lock";
	}
	if (file_is(f->file, "asyncio", "queues.py"))
		return "queue";
	if (file_is(f->file, "asyncio", "subprocess.py") ||
	    file_is(f->file, "asyncio", "base_subprocess.py"))
		return "subprocess";
	if (file_is(f->file, "asyncio", "streams.py") ||
	    file_is(f->file, "asyncio", "selector_events.py") ||
	    (file_is(f->file, "asyncio", "base_events.py") && strncmp(fn, "sock_", 5) == 0))
		return "io";
	return "future";
}

struct task_tmp {
	uint64_t coro_self; /* `self` of the innermost coroutine frame (for classify) */
	uint64_t sleep_h;   /* sleep's TimerHandle */
};

static void read_chain(struct ctx *c, struct aio_task *t, uint64_t coro, struct task_tmp *tmp)
{
	uint64_t seen[AIO_MAX_CHAIN];
	size_t nseen = 0;
	uint64_t obj = coro;
	bool running_any = false;
	t->frames = calloc(AIO_MAX_CHAIN, sizeof(*t->frames));
	if (!t->frames)
		return;
	/* outermost (the task's coroutine) first; reversed at the end */
	while (obj && is_gen(c, obj)) {
		for (size_t i = 0; i < nseen; i++)
			if (seen[i] == obj) {
				t->chain_cut = true;
				goto done;
			}
		if (nseen == AIO_MAX_CHAIN) {
			t->chain_cut = true;
			break;
		}
		seen[nseen++] = obj;
		uint64_t next;
		bool running;
		struct aio_frame f = { 0 };
		if (!coro_step(c, obj, &f, &next, &running)) {
			if (t->nframes == 0)
				t->awaits = "nothing";
			break;
		}
		running_any |= running;
		t->frames[t->nframes++] = f;
		/* the innermost frame's locals, for classify() and sleep deadlines */
		uint64_t frame = c->a->gen == PY_AIO_GEN_IFRAME ? obj + c->a->gi_iframe : ptr(c, obj + c->a->gi_frame);
		uint64_t code = ptr(c, frame + c->l->f_code);
		tmp->coro_self = 0;
		tmp->sleep_h = 0;
		if (frame && code && next && !is_gen(c, next)) {
			tmp->coro_self = local0(c, frame);
			if (strcmp(short_fn(f.function), "sleep") == 0 && file_is(f.file, "asyncio", "tasks.py"))
				tmp->sleep_h = local_by_name(c, frame, code, "h");
		}
		obj = next;
	}
done:
	/* innermost first */
	for (size_t i = 0; i < t->nframes / 2; i++) {
		struct aio_frame x = t->frames[i];
		t->frames[i] = t->frames[t->nframes - 1 - i];
		t->frames[t->nframes - 1 - i] = x;
	}
	if (running_any)
		t->awaits = "running";
}

/* ---- tasks ----------------------------------------------------------------------------- */

static struct aio_task *add_task(struct aio_view *v, uint64_t addr)
{
	for (size_t i = 0; i < v->ntasks; i++)
		if (v->tasks[i].addr == addr)
			return NULL;
	if (v->ntasks >= AIO_MAX_TASKS) {
		v->tasks_truncated = true;
		return NULL;
	}
	if (!v->tasks) {
		v->tasks = calloc(AIO_MAX_TASKS, sizeof(*v->tasks));
		if (!v->tasks)
			return NULL;
	}
	struct aio_task *t = &v->tasks[v->ntasks++];
	memset(t, 0, sizeof(*t));
	t->addr = addr;
	t->deadline_in_s = NAN;
	return t;
}

/* Every key of a set object (weak: the referents of weakref keys), into v->tasks when a
 * task. */
static void collect_set(struct ctx *c, uint64_t set, bool weak, struct aio_view *v)
{
	bool ok;
	int64_t mask = i64(c, set + c->a->set_mask, &ok);
	uint64_t table = ptr(c, set + c->a->set_table);
	if (!ok || mask < 0 || !plausible(table))
		return;
	if (mask + 1 > AIO_MAX_SET_SLOTS) {
		v->tasks_truncated = true;
		mask = AIO_MAX_SET_SLOTS - 1;
	}
	size_t n = (size_t)mask + 1;
	uint64_t *ent = malloc(n * 16);
	if (!ent)
		return;
	if (!rd(c, table, ent, n * 16)) {
		free(ent);
		v->error = "a task set is unreadable";
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t key = ent[2 * i];
		if (!plausible(key))
			continue;
		uint64_t obj = weak ? ptr(c, key + c->a->wr_object) : key;
		if (weak && !type_named(c, key, "weakref") && !type_named(c, key, "weakref.ReferenceType"))
			continue;
		if (!plausible(obj) || !is_instance(c, obj, c->t_task))
			continue;
		add_task(v, obj);
		if (v->tasks_truncated)
			break;
	}
	free(ent);
}

static void task_fill(struct ctx *c, struct aio_task *t)
{
	const struct py_aio_layout *a = c->a;
	int32_t st = -1;
	t->loop = ptr(c, t->addr + a->fut_loop);
	rd(c, t->addr + a->fut_state, &st, 4);
	t->state = st == 0 ? "pending" : st == 1 ? "cancelled" : st == 2 ? "finished" : "unknown";
	if (a->task_name) {
		uint64_t nm = ptr(c, t->addr + a->task_name);
		char tn[64];
		type_name(c, nm, tn, sizeof(tn));
		if (strcmp(tn, "str") == 0) {
			t->name = str_of(c, nm);
		} else if (a->task_name_int && strcmp(tn, "int") == 0) {
			/* 3.12+: lv_tag (digits << 3 | sign) at 16, 30-bit digits at 24 */
			uint64_t tag = ptr(c, nm + 16);
			uint32_t d[2] = { 0, 0 };
			if ((tag >> 3) <= 2 && (tag & 3) == 0 && rd(c, nm + 24, d, 8)) {
				unsigned long long val = d[0] & 0x3fffffffu;
				if ((tag >> 3) == 2)
					val |= (unsigned long long)(d[1] & 0x3fffffffu) << 30;
				char b[40];
				snprintf(b, sizeof(b), "Task-%llu", val);
				t->name = strdup(b);
			}
		}
	}
	t->waiter = ptr(c, t->addr + a->task_fut_waiter);
	if (!plausible(t->waiter))
		t->waiter = 0;
	t->awaits = NULL;
	struct task_tmp tmp = { 0 };
	if (strcmp(t->state, "pending") == 0)
		read_chain(c, t, ptr(c, t->addr + a->task_coro), &tmp);
	if (t->awaits && strcmp(t->awaits, "running") == 0)
		return;
	if (strcmp(t->state, "pending") != 0) {
		t->awaits = "nothing";
		return;
	}
	const struct aio_frame *inner = t->nframes ? &t->frames[0] : NULL;
	t->awaits_at = inner;
	if (t->waiter && is_instance(c, t->waiter, c->t_task))
		t->awaits = "task";
	else if (t->waiter && type_named(c, t->waiter, "_GatheringFuture"))
		t->awaits = "gather";
	else if (t->waiter || inner)
		t->awaits = classify(c, inner, tmp.coro_self);
	else
		t->awaits = "unknown";
	if (tmp.sleep_h) {
		double when;
		if (float_of(c, slot_attr(c, tmp.sleep_h, "_when"), &when))
			t->deadline_in_s = when - c->now;
	}
}

static void link(struct aio_view *v, size_t from, size_t to)
{
	struct aio_task *a = &v->tasks[from], *b = &v->tasks[to];
	size_t *na = realloc(a->awaited, (a->nawaited + 1) * sizeof(size_t));
	if (na) {
		a->awaited = na;
		a->awaited[a->nawaited++] = to;
	}
	size_t *nb = realloc(b->awaited_by, (b->nawaited_by + 1) * sizeof(size_t));
	if (nb) {
		b->awaited_by = nb;
		b->awaited_by[b->nawaited_by++] = from;
	}
}

static long task_index(const struct aio_view *v, uint64_t addr)
{
	for (size_t i = 0; i < v->ntasks; i++)
		if (v->tasks[i].addr == addr)
			return (long)i;
	return -1;
}

static void link_tasks(struct ctx *c, struct aio_view *v)
{
	for (size_t i = 0; i < v->ntasks; i++) {
		struct aio_task *t = &v->tasks[i];
		if (!t->awaits || !t->waiter)
			continue;
		if (strcmp(t->awaits, "task") == 0) {
			long k = task_index(v, t->waiter);
			if (k >= 0)
				link(v, i, (size_t)k);
		} else if (strcmp(t->awaits, "gather") == 0) {
			uint64_t list = obj_attr(c, t->waiter, "_children");
			bool ok;
			int64_t n = list && type_named(c, list, "list") ? i64(c, list + 16, &ok) : 0;
			uint64_t items = n > 0 ? ptr(c, list + 24) : 0;
			if (n > AIO_MAX_CHILDREN)
				n = AIO_MAX_CHILDREN;
			for (int64_t k = 0; items && k < n; k++) {
				long j = task_index(v, ptr(c, items + 8 * (uint64_t)k));
				if (j >= 0)
					link(v, i, (size_t)j);
			}
		}
	}
}

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
	frame_set(out, f->function, f->file, f->line);
}

/* Whether func is a Python function named fn (co_name) defined in asyncio/<file> whose
 * closure holds obj. */
static bool closure_holds(struct ctx *c, uint64_t func, const char *fn_name, const char *file_name,
			  uint64_t obj)
{
	const struct py_aio_layout *a = c->a;
	if (!func || !type_named(c, func, "function"))
		return false;
	uint64_t code = ptr(c, func + a->func_code);
	char *fn = NULL, *file = NULL;
	int line;
	bool match = false, ok;
	if (code && py_reader_code_where(c->r, c->pid, code, UINT64_MAX, &fn, &file, &line) == 0)
		match = strcmp(short_fn(fn), fn_name) == 0 && file_is(file, "asyncio", file_name);
	free(fn);
	free(file);
	if (!match)
		return false;
	uint64_t clo = ptr(c, func + a->func_closure);
	int64_t nc = clo ? i64(c, clo + a->tuple_size, &ok) : 0;
	for (int64_t k = 0; clo && ok && k < nc && k < 32; k++)
		if (ptr(c, ptr(c, clo + a->tuple_items + 8 * (uint64_t)k) + a->cell_ref) == obj)
			return true;
	return false;
}

/* Whether `fut` is held by a callback that this loop has been asked to run and has not run
 * yet: a handle in loop._ready whose callback is tasks.py run_coroutine_threadsafe's
 * `callback` closure over fut. */
static bool ready_holds_future(struct ctx *c, uint64_t loop, uint64_t fut)
{
	const struct py_aio_layout *a = c->a;
	uint64_t dq = py_reader_mem_attr(c->r, c->pid, loop, "_ready");
	if (!dq || !type_named(c, dq, "collections.deque"))
		return false;
	bool ok;
	bool ok2;
	int64_t n = i64(c, dq + a->deque_size, &ok);
	uint64_t block = ptr(c, dq + a->deque_leftblock);
	int64_t li = i64(c, dq + a->deque_leftindex, &ok2);
	if (!ok || !ok2 || n <= 0 || !plausible(block) || li < 0 || li >= 64)
		return false;
	if (n > 10000)
		n = 10000;
	uint64_t b = block;
	for (int64_t i = 0, slot = li; i < n && b; i++, slot++) {
		if (slot == 64) { /* the next block */
			b = ptr(c, b + a->block_rightlink);
			slot = 0;
			if (!plausible(b))
				break;
		}
		uint64_t handle = ptr(c, b + a->block_data + 8 * (uint64_t)slot);
		if (closure_holds(c, slot_attr(c, handle, "_callback"), "callback", "tasks.py", fut))
			return true;
	}
	return false;
}

/* Whether `fut` will be completed by a pending task of the loop: the task's first done
 * callback (fut_callback0) is futures.py _chain_future's `_call_set_state` closure over fut
 * (run_coroutine_threadsafe's callback has run: the coroutine is a task of the loop now,
 * and fut is set when that task ends, which only the loop can make happen). */
static bool task_completes_future(struct ctx *c, const struct aio_view *v, uint64_t loop, uint64_t fut)
{
	for (size_t i = 0; i < v->ntasks; i++) {
		const struct aio_task *t = &v->tasks[i];
		if (t->loop != loop || strcmp(t->state, "pending") != 0)
			continue;
		if (closure_holds(c, ptr(c, t->addr + c->a->fut_callback0), "_call_set_state",
				  "futures.py", fut))
			return true;
	}
	return false;
}

static void find_loops(struct ctx *c, const struct py_process *p, double blocked_after_s,
		       struct aio_view *v)
{
	for (size_t i = 0; i < p->nthreads && v->nloops < AIO_MAX_LOOPS; i++) {
		const struct py_thread *th = &p->threads[i];
		size_t k;
		for (k = 0; k < th->nframes; k++)
			if (frame_is(&th->frames[k], "_run_once", "asyncio", "base_events.py"))
				break;
		if (k == th->nframes || !th->frames[k].addr || !th->frames[k].code)
			continue;
		uint64_t loop = local0(c, th->frames[k].addr);
		if (!plausible(loop))
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
		double end_time;
		bool bound = float_of(c, local_by_name(c, th->frames[k].addr, th->frames[k].code,
						       "end_time"), &end_time);
		const struct py_frame *in = k > 0 ? &th->frames[k - 1] : NULL;
		if (in && in->function && in->file && strcmp(short_fn(in->function), "select") == 0 &&
		    strcmp(base_name(in->file), "selectors.py") == 0 && !bound) {
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
			if (frame_is(&th->frames[j], "_run", "asyncio", "events.py"))
				break;
		if (j < k && j > 0)
			copy_pyframe(&L->callback, &th->frames[j - 1]);
		if (k > 0)
			copy_pyframe(&L->innermost, &th->frames[0]);
		/* waits in concurrent.futures Future.result() inside a callback of its own loop */
		for (size_t m = 0; L->lock_wait && m < j && m < k; m++) {
			const struct py_frame *f = &th->frames[m];
			if (!frame_is(f, "result", "futures", "_base.py") || !f->addr)
				continue;
			uint64_t fut = local0(c, f->addr);
			if (!plausible(fut))
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
	struct ctx c = { .r = r, .pid = p->pid, .l = l, .budget = AIO_READ_BUDGET };
	py_reader_mem_begin(r, p->pid);
	uint64_t modules = ptr(&c, ad.interp + l->interp_modules);
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
	uint64_t amd = module_dict(&c, modules, "_asyncio");
	if (amd) {
		c.t_task = py_reader_mem_dict_get(r, p->pid, amd, "Task");
		c.t_future = py_reader_mem_dict_get(r, p->pid, amd, "Future");
	}
	find_loops(&c, p, blocked_after_s, v);
	uint64_t tmd = module_dict(&c, modules, "asyncio.tasks");
	if (!c.t_task) {
		v->error = "the C _asyncio module is not loaded: tasks are not read";
	} else if (tmd) {
		uint64_t ws = py_reader_mem_dict_get(r, p->pid, tmd, c.a->tasks_all);
		uint64_t data = ws ? py_reader_mem_attr(r, p->pid, ws, "data") : 0;
		if (data && type_named(&c, data, "set"))
			collect_set(&c, data, true, v);
		if (c.a->tasks_eager) {
			uint64_t eager = py_reader_mem_dict_get(r, p->pid, tmd, c.a->tasks_eager);
			if (eager && type_named(&c, eager, "set"))
				collect_set(&c, eager, false, v);
		}
	}
	for (size_t i = 0; i < v->ntasks; i++)
		task_fill(&c, &v->tasks[i]);
	link_tasks(&c, v);
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
		frame_free(&L->callback);
		frame_free(&L->innermost);
		frame_free(&L->self_wait_at);
	}
	for (size_t i = 0; i < v->ntasks; i++) {
		struct aio_task *t = &v->tasks[i];
		free(t->name);
		for (size_t k = 0; k < t->nframes; k++)
			frame_free(&t->frames[k]);
		free(t->frames);
		free(t->awaited);
		free(t->awaited_by);
	}
	free(v->tasks);
	memset(v, 0, sizeof(*v));
}

bool aio_view_present(const struct aio_view *v)
{
	return v && v->imported;
}
