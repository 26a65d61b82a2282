/* asyncio_tasks: the tasks of a view and their coroutine chains: each task's name,
 * state, await chain and what it awaits, and which task awaits which (see asyncio_int.h;
 * the facts per version are in asyncio_read.c's header and pylayout.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asyncio_int.h"
#include "syscall_names.h"
/* ---- coroutines ------------------------------------------------------------------------ */

/* One coroutine/generator object: its frame's location into *out and the object it awaits
 * (0: not suspended in an await, or unknown). false: not readable as one. */
static bool aio_coro_step(struct aio_ctx *c, uint64_t gen, struct aio_frame *out, uint64_t *awaited,
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
		if (!aio_rd(c, gen + a->gi_frame_state, &st, 1))
			return false;
		if (st >= 1) /* completed or cleared: the frame is gone */
			return false;
		*running = st == 0;
		suspended = st == a->suspended_a || st == a->suspended_b;
		code = aio_ptr(c, frame + l->f_code);
		uint64_t instr = aio_ptr(c, frame + l->f_pos), start = code + l->co_code_adaptive;
		if (code && instr >= start && instr - start < (1u << 24))
			pos = instr - start;
	} else {
		frame = aio_ptr(c, gen + a->gi_frame);
		if (!aio_plausible(frame))
			return false;
		code = aio_ptr(c, frame + l->f_code);
		int32_t lasti = 0;
		if (aio_rd(c, frame + l->f_pos, &lasti, 4) && lasti >= 0)
			pos = (uint64_t)lasti;
	}
	char *fn = NULL, *file = NULL;
	int line = -1;
	if (!aio_plausible(code) || py_reader_code_where(c->r, c->pid, code, pos, &fn, &file, &line) != 0)
		return false;
	aio_frame_set(out, fn, file, line);
	free(fn);
	free(file);
	uint64_t top = 0;
	if (a->gen == PY_AIO_GEN_IFRAME) {
		int32_t depth;
		if (suspended && aio_rd(c, frame + a->if_stacktop, &depth, 4) && depth > 0 && depth < 65536)
			top = aio_ptr(c, frame + l->iframe_localsplus + 8 * ((uint64_t)depth - 1));
	} else if (a->gen == PY_AIO_GEN_FRAMEOBJ_STACKTOP) {
		uint64_t st = aio_ptr(c, frame + a->f_stacktop);
		*running = !st;
		if (st)
			top = aio_ptr(c, st - 8);
	} else {
		int8_t fs;
		int32_t depth;
		if (aio_rd(c, frame + a->f_state, &fs, 1)) {
			*running = fs == 0;
			if (fs == a->suspended_a && aio_rd(c, frame + a->f_stackdepth, &depth, 4) &&
			    depth > 0 && depth < 65536)
				top = aio_ptr(c, aio_ptr(c, frame + l->f_valuestack) + 8 * ((uint64_t)depth - 1));
		}
	}
	*awaited = aio_plausible(top) ? top : 0;
	return true;
}

static bool aio_is_gen(struct aio_ctx *c, uint64_t obj)
{
	char b[64];
	aio_type_name(c, obj, b, sizeof(b));
	return strcmp(b, "coroutine") == 0 || strcmp(b, "generator") == 0;
}

/* Kind of wait from the innermost coroutine frame of the chain (the asyncio function it is
 * suspended in) and the type of that function's `self`. */
static const char *aio_classify(struct aio_ctx *c, const struct aio_frame *f, uint64_t self_obj)
{
	if (!f || !f->file)
		return "future";
	const char *fn = aio_short_fn(f->function);
	char tn[64] = "";
	if (self_obj)
		aio_type_name(c, self_obj, tn, sizeof(tn));
	if (aio_file_is(f->file, "asyncio", "tasks.py")) {
		if (strcmp(fn, "sleep") == 0 || strcmp(fn, "__sleep0") == 0)
			return "sleep";
		if (strcmp(fn, "wait") == 0 || strcmp(fn, "_wait") == 0 || strcmp(fn, "wait_for") == 0)
			return "wait";
	}
	if (aio_file_is(f->file, "asyncio", "locks.py")) {
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
	if (aio_file_is(f->file, "asyncio", "queues.py"))
		return "queue";
	if (aio_file_is(f->file, "asyncio", "subprocess.py") ||
	    aio_file_is(f->file, "asyncio", "base_subprocess.py"))
		return "subprocess";
	if (aio_file_is(f->file, "asyncio", "streams.py") ||
	    aio_file_is(f->file, "asyncio", "selector_events.py") ||
	    (aio_file_is(f->file, "asyncio", "base_events.py") && strncmp(fn, "sock_", 5) == 0))
		return "io";
	return "future";
}

struct task_tmp {
	uint64_t coro_self; /* `self` of the innermost coroutine frame (for classify) */
	uint64_t sleep_h;   /* sleep's TimerHandle */
	uint64_t sub_self;  /* `self` of the outermost asyncio subprocess frame */
	uint64_t stream_self; /* `self` of the outermost asyncio streams frame */
};

static void aio_read_chain(struct aio_ctx *c, struct aio_task *t, uint64_t coro, struct task_tmp *tmp)
{
	uint64_t seen[AIO_MAX_CHAIN];
	size_t nseen = 0;
	uint64_t obj = coro;
	bool running_any = false;
	t->frames = calloc(AIO_MAX_CHAIN, sizeof(*t->frames));
	if (!t->frames)
		return;
	/* outermost (the task's coroutine) first; reversed at the end */
	while (obj && aio_is_gen(c, obj)) {
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
		if (!aio_coro_step(c, obj, &f, &next, &running)) {
			if (t->nframes == 0)
				t->awaits = "nothing";
			break;
		}
		running_any |= running;
		t->frames[t->nframes++] = f;
		/* the innermost frame's locals, for aio_classify() and sleep deadlines */
		uint64_t frame = c->a->gen == PY_AIO_GEN_IFRAME ? obj + c->a->gi_iframe : aio_ptr(c, obj + c->a->gi_frame);
		uint64_t code = aio_ptr(c, frame + c->l->f_code);
		tmp->coro_self = 0;
		tmp->sleep_h = 0;
		if (frame && !tmp->sub_self && (aio_file_is(f.file, "asyncio", "subprocess.py") ||
						aio_file_is(f.file, "asyncio", "base_subprocess.py")))
			tmp->sub_self = aio_local0(c, frame);
		if (frame && !tmp->stream_self && aio_file_is(f.file, "asyncio", "streams.py"))
			tmp->stream_self = aio_local0(c, frame);
		if (frame && code && next && !aio_is_gen(c, next)) {
			tmp->coro_self = aio_local0(c, frame);
			if (strcmp(aio_short_fn(f.function), "sleep") == 0 && aio_file_is(f.file, "asyncio", "tasks.py"))
				tmp->sleep_h = aio_local_by_name(c, frame, code, "h");
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

static struct aio_task *aio_add_task(struct aio_view *v, uint64_t addr)
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
void aio_collect_set(struct aio_ctx *c, uint64_t set, bool weak, struct aio_view *v)
{
	bool ok;
	int64_t mask = aio_i64(c, set + c->a->set_mask, &ok);
	uint64_t table = aio_ptr(c, set + c->a->set_table);
	if (!ok || mask < 0 || !aio_plausible(table))
		return;
	if (mask + 1 > AIO_MAX_SET_SLOTS) {
		v->tasks_truncated = true;
		mask = AIO_MAX_SET_SLOTS - 1;
	}
	size_t n = (size_t)mask + 1;
	uint64_t *ent = malloc(n * 16);
	if (!ent)
		return;
	if (!aio_rd(c, table, ent, n * 16)) {
		free(ent);
		v->error = "a task set is unreadable";
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t key = ent[2 * i];
		if (!aio_plausible(key))
			continue;
		uint64_t obj = weak ? aio_ptr(c, key + c->a->wr_object) : key;
		if (weak && !aio_type_named(c, key, "weakref") && !aio_type_named(c, key, "weakref.ReferenceType"))
			continue;
		if (!aio_plausible(obj) || !aio_is_instance(c, obj, c->t_task))
			continue;
		aio_add_task(v, obj);
		if (v->tasks_truncated)
			break;
	}
	free(ent);
}

void aio_task_fill(struct aio_ctx *c, struct aio_task *t)
{
	const struct py_aio_layout *a = c->a;
	int32_t st = -1;
	t->loop = aio_ptr(c, t->addr + a->fut_loop);
	aio_rd(c, t->addr + a->fut_state, &st, 4);
	t->state = st == 0 ? "pending" : st == 1 ? "cancelled" : st == 2 ? "finished" : "unknown";
	if (a->task_name) {
		uint64_t nm = aio_ptr(c, t->addr + a->task_name);
		char tn[64];
		aio_type_name(c, nm, tn, sizeof(tn));
		if (strcmp(tn, "str") == 0) {
			t->name = aio_str_of(c, nm);
		} else if (a->task_name_int && strcmp(tn, "int") == 0) {
			/* 3.12+: lv_tag (digits << 3 | sign) at 16, 30-bit digits at 24 */
			uint64_t tag = aio_ptr(c, nm + 16);
			uint32_t d[2] = { 0, 0 };
			if ((tag >> 3) <= 2 && (tag & 3) == 0 && aio_rd(c, nm + 24, d, 8)) {
				unsigned long long val = d[0] & 0x3fffffffu;
				if ((tag >> 3) == 2)
					val |= (unsigned long long)(d[1] & 0x3fffffffu) << 30;
				char b[40];
				snprintf(b, sizeof(b), "Task-%llu", val);
				t->name = strdup(b);
			}
		}
	}
	t->waiter = aio_ptr(c, t->addr + a->task_fut_waiter);
	if (!aio_plausible(t->waiter))
		t->waiter = 0;
	t->awaits = NULL;
	struct task_tmp tmp = { 0 };
	if (strcmp(t->state, "pending") == 0)
		aio_read_chain(c, t, aio_ptr(c, t->addr + a->task_coro), &tmp);
	if (t->awaits && strcmp(t->awaits, "running") == 0)
		return;
	if (strcmp(t->state, "pending") != 0) {
		t->awaits = "nothing";
		return;
	}
	const struct aio_frame *inner = t->nframes ? &t->frames[0] : NULL;
	t->awaits_at = inner;
	if (t->waiter && aio_is_instance(c, t->waiter, c->t_task))
		t->awaits = "task";
	else if (t->waiter && aio_type_named(c, t->waiter, "_GatheringFuture"))
		t->awaits = "gather";
	else if (t->waiter || inner)
		t->awaits = aio_classify(c, inner, tmp.coro_self);
	else
		t->awaits = "unknown";
	if (tmp.sub_self)
		aio_subproc_read(c, t, tmp.sub_self);
	else if (tmp.stream_self)
		aio_subproc_from_stream(c, t, tmp.stream_self);
	if (tmp.sleep_h) {
		double when;
		if (aio_float_of(c, aio_slot_attr(c, tmp.sleep_h, "_when"), &when))
			t->deadline_in_s = when - c->now;
	}
}

static void aio_link(struct aio_view *v, size_t from, size_t to)
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

static long aio_task_index(const struct aio_view *v, uint64_t addr)
{
	for (size_t i = 0; i < v->ntasks; i++)
		if (v->tasks[i].addr == addr)
			return (long)i;
	return -1;
}

void aio_link_tasks(struct aio_ctx *c, struct aio_view *v)
{
	for (size_t i = 0; i < v->ntasks; i++) {
		struct aio_task *t = &v->tasks[i];
		if (!t->awaits || !t->waiter)
			continue;
		if (strcmp(t->awaits, "task") == 0) {
			long k = aio_task_index(v, t->waiter);
			if (k >= 0)
				aio_link(v, i, (size_t)k);
		} else if (strcmp(t->awaits, "gather") == 0) {
			uint64_t list = aio_obj_attr(c, t->waiter, "_children");
			bool ok;
			int64_t n = list && aio_type_named(c, list, "list") ? aio_i64(c, list + 16, &ok) : 0;
			uint64_t items = n > 0 ? aio_ptr(c, list + 24) : 0;
			if (n > AIO_MAX_CHILDREN)
				n = AIO_MAX_CHILDREN;
			for (int64_t k = 0; items && k < n; k++) {
				long j = aio_task_index(v, aio_ptr(c, items + 8 * (uint64_t)k));
				if (j >= 0)
					aio_link(v, i, (size_t)j);
			}
		}
	}
}
