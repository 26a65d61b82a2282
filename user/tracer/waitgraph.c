/* waitgraph: wait kinds, holders and proven diagnoses (see waitgraph.h). */
#include "waitgraph.h"
#include "childwait.h"
#include "pywrite.h"
#include "waitgraph_json.h"
#include "asyncio_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "futurerun.h"
#include "pyhang.h"
#include "syscall_names.h"

static const char *const KIND_NAMES[] = {
	[WF_NONE] = NULL, [WF_LOCK] = "Lock", [WF_RLOCK] = "RLock", [WF_CONDITION] = "Condition",
	[WF_SEMAPHORE] = "Semaphore", [WF_EVENT] = "Event", [WF_QUEUE_GET] = "queue.get",
	[WF_QUEUE_PUT] = "queue.put", [WF_QUEUE_JOIN] = "queue.join",
	[WF_FUTURE_RESULT] = "Future.result", [WF_THREAD_JOIN] = "Thread.join", [WF_GIL] = "GIL",
	[WF_SLEEP] = "sleep", [WF_IO] = "I/O", [WF_CHILD] = "child", [WF_OTHER] = "other",
};

const char *wf_kind_name(enum wf_kind k)
{
	return (unsigned)k < sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0]) ? KIND_NAMES[k] : NULL;
}

/* A lock's kind as a wait kind. */
static enum wf_kind lock_kind(enum lo_kind k)
{
	switch (k) {
	case LO_LOCK: return WF_LOCK;
	case LO_RLOCK: return WF_RLOCK;
	case LO_CONDITION: return WF_CONDITION;
	default: return WF_NONE;
	}
}

/* The kind of the lock found behind the futex, else dflt. */
static enum wf_kind found_or(const struct lo_thread *lo, enum wf_kind dflt)
{
	return lo->waits_known ? lock_kind(lo->waits.kind) : dflt;
}

static enum wf_kind syscall_kind(long nr)
{
	switch (syscall_class(nr)) {
	case SC_SLEEP: return WF_SLEEP;
	case SC_CHILD: return WF_CHILD;
	case SC_IO: return WF_IO;
	default: return WF_OTHER;
	}
}

static const char *base_of(const char *path)
{
	const char *b = path ? strrchr(path, '/') : NULL;
	return b ? b + 1 : path ? path : "?";
}

/* "Event.wait" (3.11+ co_qualname) or "wait": the last component. */
static const char *last_part(const char *fn)
{
	const char *d = fn ? strrchr(fn, '.') : NULL;
	return d ? d + 1 : fn ? fn : "";
}

static bool in_file(const struct py_frame *f, const char *tail)
{
	if (!f->file)
		return false;
	size_t n = strlen(f->file), k = strlen(tail);
	return n >= k && strcmp(f->file + n - k, tail) == 0 && (n == k || f->file[n - k - 1] == '/');
}

static bool stdlib_sync_frame(const struct py_frame *f)
{
	return in_file(f, "threading.py") || in_file(f, "queue.py") || in_file(f, "Queue.py") ||
	       in_file(f, "concurrent/futures/_base.py") || in_file(f, "concurrent/futures/thread.py");
}

/* What a thread in a futex wait waits for, from the standard library frames it is in (the
 * outermost of the innermost run: the API the program called), and the lock found. */
static enum wf_kind futex_kind(const struct py_thread *t, const struct lo_thread *lo)
{
	size_t n = 0;
	while (n < t->nframes && stdlib_sync_frame(&t->frames[n]))
		n++;
	if (n > 0) {
		const struct py_frame *api = &t->frames[n - 1];
		const char *fn = last_part(api->function), *q = api->function ? api->function : "";
		if (in_file(api, "queue.py") || in_file(api, "Queue.py")) {
			if (!strcmp(fn, "get"))
				return WF_QUEUE_GET;
			if (!strcmp(fn, "put"))
				return WF_QUEUE_PUT;
			if (!strcmp(fn, "join"))
				return WF_QUEUE_JOIN;
			return WF_OTHER;
		}
		if (in_file(api, "concurrent/futures/_base.py"))
			return !strcmp(fn, "result") || !strcmp(fn, "exception") ? WF_FUTURE_RESULT : WF_OTHER;
		if (in_file(api, "concurrent/futures/thread.py"))
			return WF_OTHER;
		/* threading.py */
		if (!strcmp(fn, "join") || !strcmp(fn, "_wait_for_tstate_lock") ||
		    !strcmp(fn, "_shutdown") || !strcmp(fn, "_exitfunc"))
			return WF_THREAD_JOIN;
		if (!strcmp(q, "Event.wait") || !strcmp(q, "_Event.wait"))
			return WF_EVENT;
		if (strstr(q, "Semaphore."))
			return WF_SEMAPHORE;
		if (strstr(q, "Condition."))
			return WF_CONDITION;
		if (!strcmp(fn, "wait")) /* <= 3.10: Event.wait calls Condition.wait */
			return n >= 2 && !strcmp(last_part(t->frames[n - 2].function), "wait") ?
				WF_EVENT : WF_CONDITION;
		if (!strcmp(fn, "wait_for") || !strcmp(fn, "__enter__") || !strcmp(fn, "notify"))
			return found_or(lo, WF_CONDITION);
		if (!strcmp(fn, "acquire") || !strcmp(fn, "__enter__"))
			return found_or(lo, WF_SEMAPHORE);
		return found_or(lo, WF_OTHER);
	}
	return found_or(lo, WF_OTHER);
}

static const struct py_thread *thread_by_ident(const struct py_process *p, uint64_t ident)
{
	for (size_t i = 0; ident && i < p->nthreads; i++)
		if (p->threads[i].thread_id == ident)
			return &p->threads[i];
	return NULL;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The timeout left of a futex wait, from its struct timespec (FUTEX_WAIT: relative;
 * FUTEX_WAIT_BITSET: absolute on CLOCK_MONOTONIC, or CLOCK_REALTIME with that flag). */
static double timeout_left(struct py_reader *r, pid_t pid, const struct py_thread *t)
{
	int64_t ts[2];
	if (!t->futex_timeout || py_reader_mem_read(r, pid, t->futex_timeout, ts, sizeof(ts)) != 0 ||
	    ts[0] < 0 || ts[1] < 0 || ts[1] >= 1000000000)
		return -1;
	double v = (double)ts[0] + (double)ts[1] / 1e9;
	if ((t->futex_op & 127) != 9)
		return v;
	struct timespec now;
	clock_gettime(t->futex_op & 256 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &now);
	double left = v - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
	return left > 0 ? left : 0;
}

static const struct py_thread *gil_holder(const struct py_process *p, const struct py_thread *not)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].gil && &p->threads[i] != not)
			return &p->threads[i];
	return NULL;
}

/* The resource behind each thread blocked in an I/O call (iowait.h), for the first
 * WG_MAX_IO of them; the fd tables of the process are read once for all. */
static void describe_io(struct waitgraph *g, struct py_reader *r, const struct py_process *p)
{
	struct fd_ctx *c = NULL;
	size_t n = 0;
	for (size_t i = 0; i < p->nthreads && n < WG_MAX_IO; i++) {
		const struct py_thread *t = &p->threads[i];
		struct wf_info *f = &g->info[i];
		if (t->state != PY_STATE_SLEEP || (f->kind != WF_IO && f->kind != WF_OTHER))
			continue;
		if (!g->io && !(g->io = calloc(WG_MAX_IO, sizeof(*g->io))))
			break;
		if (!c && !(c = fd_ctx_new(p->pid)))
			break;
		struct io_wait *io = &g->io[n];
		if (io_describe(c, r, p->pid, t, io) != 0)
			continue;
		n++;
		/* the asyncio view published with this snapshot (snapshot.c, dump.c) */
		io_classify_idle(io, t, aio_published(p->pid, p->start_time));
		f->io = io;
		f->kind = WF_IO;
		f->timed = io->timeout != IO_TIMEOUT_NONE;
		f->timeout_s = io->timeout == IO_TIMEOUT_SET ? io->timeout_s : -1;
	}
	fd_ctx_free(c);
}

struct held_ref {
	uint64_t futex;
	uint32_t thread, k;
};

static int cmp_held(const void *a, const void *b)
{
	const struct held_ref *x = a, *y = b;
	if (x->futex != y->futex)
		return x->futex < y->futex ? -1 : 1;
	if (x->thread != y->thread)
		return x->thread < y->thread ? -1 : 1;
	return (x->k > y->k) - (x->k < y->k);
}

/* Open-addressed set of the futexes some thread waits on through a lock found (at most
 * one per thread): a held lock matters to the graph only when its futex is in it. */
struct futex_set {
	uint64_t *v; /* 0: empty */
	size_t mask;
};

static size_t futex_slot(const struct futex_set *s, uint64_t f)
{
	size_t i = (size_t)((f >> 3) * 0x9E3779B97F4A7C15ull >> 20) & s->mask;
	while (s->v[i] && s->v[i] != f)
		i = (i + 1) & s->mask;
	return i;
}

int waitgraph_build(struct waitgraph *g, struct py_reader *r, struct py_process *p)
{
	uint64_t t0 = cpu_ns();
	memset(g, 0, sizeof(*g));
	g->p = p;
	g->info = calloc(p->nthreads ? p->nthreads : 1, sizeof(*g->info));
	struct lo_thread *lo = calloc(p->nthreads ? p->nthreads : 1, sizeof(*lo));
	if (!g->info || !lo) {
		free(g->info);
		free(lo);
		g->info = NULL;
		return -1;
	}
	lockown_read(r, p, lo, &g->held);
	struct futex_set fs = { NULL, 0 };
	size_t nwait = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		struct py_thread *t = &p->threads[i];
		struct wf_info *f = &g->info[i];
		f->self = t;
		f->lo = lo[i];
		f->holder_frame = f->holder_line = -1;
		f->timeout_s = -1;
		switch (t->state) {
		case PY_STATE_GIL_WAIT:
			f->kind = WF_GIL;
			f->holder = gil_holder(p, t);
			break;
		case PY_STATE_SLEEP:
			f->kind = syscall_kind(t->syscall_nr);
			/* time.sleep() <= 3.10 is select(0, NULL, NULL, NULL, &timeout) */
			if ((t->syscall_nr == PH_NR_SELECT || t->syscall_nr == PH_NR_PSELECT6) &&
			    t->syscall_arg1 == 0)
				f->kind = WF_SLEEP;
			break;
		case PY_STATE_LOCK_WAIT:
			f->kind = futex_kind(t, &f->lo);
			f->timed = t->futex_timed;
			if (f->timed)
				f->timeout_s = timeout_left(r, p->pid, t);
			break;
		default:
			break;
		}
		if (t->state == PY_STATE_LOCK_WAIT && f->kind == WF_FUTURE_RESULT) {
			/* thread -> the worker running the future it waits for */
			f->holder = futurerun_runner(r, p, t);
			f->runs_future = f->holder != NULL;
			if (f->runs_future)
				continue;
		}
		if (t->state == PY_STATE_LOCK_WAIT && f->kind == WF_THREAD_JOIN) {
			/* thread -> the thread it joins (it "holds" its own end) */
			const struct py_thread *j = thread_by_ident(p, lockown_join_ident(r, p, t));
			if (j && j != t)
				f->holder = j;
			continue;
		}
		if (t->state != PY_STATE_LOCK_WAIT || !f->lo.waits_known)
			continue;
		const struct lo_lock *k = &f->lo.waits;
		f->lock = k;
		f->object = k->obj;
		nwait++;
		if (k->reentrant && k->owner_known) {
			if (!k->owner)
				continue; /* free: being handed over */
			f->holder = thread_by_ident(p, k->owner);
			if (!f->holder && !p->threads_error) {
				f->holder_dead = true;
				f->dead_owner = k->owner;
			}
		}
	}
	/* holders by `with`: a thread whose held locks include the futex waited on. Only the
	 * held locks whose futex some thread waits on matter: the futexes waited on go in a set
	 * (a power of two at least twice their count), each held lock is looked up in it once,
	 * and the few that match are sorted (by futex, then thread order) for one binary
	 * search per waiter (sorting all 20,000 held locks of the benchmark's worst case took
	 * ~1 ms) */
	size_t cap = 16;
	while (cap < 2 * nwait)
		cap *= 2;
	fs.v = nwait ? calloc(cap, sizeof(*fs.v)) : NULL;
	fs.mask = cap - 1;
	size_t nh = 0, hcap = 0;
	struct held_ref *hs = NULL;
	if (fs.v) {
		for (size_t i = 0; i < p->nthreads; i++)
			if (g->info[i].lock && g->info[i].lock->futex)
				fs.v[futex_slot(&fs, g->info[i].lock->futex)] = g->info[i].lock->futex;
		for (size_t j = 0; j < p->nthreads; j++)
			for (size_t k = 0; k < g->info[j].lo.nheld; k++) {
				uint64_t fx = g->info[j].lo.held[k].futex;
				if (!fx || !fs.v[futex_slot(&fs, fx)])
					continue;
				if (nh == hcap) {
					size_t nc = hcap ? 2 * hcap : 64;
					struct held_ref *n2 = realloc(hs, nc * sizeof(*n2));
					if (!n2)
						break;
					hs = n2;
					hcap = nc;
				}
				hs[nh++] = (struct held_ref){ fx, (uint32_t)j, (uint32_t)k };
			}
		free(fs.v);
	}
	if (hs) {
		qsort(hs, nh, sizeof(*hs), cmp_held);
		for (size_t i = 0; i < p->nthreads; i++) {
			struct wf_info *f = &g->info[i];
			if (!f->lock)
				continue;
			size_t lo_i = 0, hi = nh;
			while (lo_i < hi) {
				size_t mid = lo_i + (hi - lo_i) / 2;
				if (hs[mid].futex < f->lock->futex)
					lo_i = mid + 1;
				else
					hi = mid;
			}
			for (size_t m = lo_i; m < nh && hs[m].futex == f->lock->futex; m++) {
				const struct py_thread *h = &p->threads[hs[m].thread];
				const struct lo_lock *hl = &g->info[hs[m].thread].lo.held[hs[m].k];
				if (!f->holder || f->holder == h) {
					f->holder = h;
					f->holder_frame = hl->frame;
					f->holder_line = hl->line;
					f->held_by = hl;
					break;
				}
			}
		}
		free(hs);
	}
	free(lo);
	describe_io(g, r, p);
	for (size_t i = 0; i < p->nthreads; i++)
		p->threads[i].wf = &g->info[i];
	py_thread_json_hook = waitgraph_json_hook;
	g->cost_ns = cpu_ns() - t0;
	return 0;
}

void waitgraph_free(struct waitgraph *g)
{
	if (g->p && g->info)
		for (size_t i = 0; i < g->p->nthreads; i++) {
			((struct py_thread *)&g->p->threads[i])->wf = NULL;
			childwait_free(g->info[i].child);
		}
	free(g->io);
	g->io = NULL;
	free(g->info);
	g->info = NULL;
	free(g->held);
	g->held = NULL;
}

/* ---- text --------------------------------------------------------------------------- */

static void who(const struct py_thread *t, char *buf, size_t len)
{
	if (t->name)
		snprintf(buf, len, "'%.80s'", t->name);
	else
		snprintf(buf, len, "thread %d", (int)t->tid);
}

static void where_held(const struct wf_info *f, char *buf, size_t len)
{
	const struct py_frame *fr = waitgraph_holder_frame(f);
	if (fr)
		snprintf(buf, len, "%s:%d", base_of(fr->file), f->holder_line >= 0 ? f->holder_line : fr->line);
	else
		snprintf(buf, len, "a bare acquire()");
}

static void where_waits(const struct py_thread *t, char *buf, size_t len)
{
	const struct py_frame *fr = diagnose_program_frame(t);
	if (fr)
		snprintf(buf, len, "%s:%d", base_of(fr->file), fr->line);
	else
		snprintf(buf, len, "native code");
}

const char *waitgraph_lock_name(const struct wf_info *f)
{
	if (f->lock && f->lock->name[0])
		return f->lock->name;
	if (f->held_by && f->held_by->name[0])
		return f->held_by->name;
	return NULL;
}

const char *waitgraph_held_name(const struct wf_info *f)
{
	if (f->held_by && f->held_by->name[0])
		return f->held_by->name;
	return waitgraph_lock_name(f);
}

const struct py_frame *waitgraph_holder_frame(const struct wf_info *f)
{
	const struct py_thread *h = f->holder;
	return h && f->holder_frame >= 0 && (size_t)f->holder_frame < h->nframes ?
		&h->frames[f->holder_frame] : NULL;
}

void waitgraph_describe_wait(const struct wf_info *f, char *buf, size_t len)
{
	char h[128] = "", at[160] = "";
	if (!f || !f->kind) {
		snprintf(buf, len, "nothing known");
		return;
	}
	const char *kn = wf_kind_name(f->kind);
	if (f->io) {
		char ph[400], to[128];
		io_phrase(f->io, ph, sizeof(ph));
		io_timeout_phrase(f->io, to, sizeof(to));
		snprintf(buf, len, "%s%s", ph, to);
		return;
	}
	if (f->holder && f->runs_future) {
		who(f->holder, h, sizeof(h));
		snprintf(buf, len, "a future run by %s (tid %d)", h, (int)f->holder->tid);
		return;
	}
	if (f->holder) {
		who(f->holder, h, sizeof(h));
		if (f->kind != WF_GIL) {
			where_held(f, at, sizeof(at));
			const char *nm = waitgraph_lock_name(f);
			if (nm)
				snprintf(buf, len, "%s %.60s held by %s (tid %d, taken at %s)", kn, nm, h,
					 (int)f->holder->tid, at);
			else
				snprintf(buf, len, "%s held by %s (tid %d, taken at %s)", kn, h,
					 (int)f->holder->tid, at);
		} else {
			snprintf(buf, len, "the GIL held by %s (tid %d)", h, (int)f->holder->tid);
		}
	} else if (f->holder_dead) {
		snprintf(buf, len, "%s whose owner thread has exited", kn);
	} else if (f->child) {
		childwait_describe(f->child, buf, len);
	} else if (f->lock) {
		snprintf(buf, len, "%s (holder unknown: taken with a bare acquire(), or free)", kn);
	} else {
		snprintf(buf, len, "%s", kn);
	}
}

/* ---- diagnoses ---------------------------------------------------------------------- */

static bool proven_blocked(const struct py_thread *t, const struct diag_waits *w)
{
	return t->tid > 0 && t->state == PY_STATE_LOCK_WAIT && !t->futex_timed && w && w->long_blocked &&
	       w->long_blocked(w->arg, t->tid, t->futex_addr);
}

static size_t index_of(const struct py_process *p, const struct py_thread *t)
{
	return (size_t)(t - p->threads);
}

static void append(char *buf, size_t len, const char *s)
{
	size_t u = strnlen(buf, len);
	if (u + 1 < len)
		snprintf(buf + u, len - u, "%s", s);
}

static bool find_cycle(const struct waitgraph *g, const struct diag_waits *w, size_t start,
		       size_t *cyc, size_t *ncyc)
{
	const struct py_process *p = g->p;
	size_t cur = start, n = 0;
	while (n < DIAG_MAX_CULPRITS) {
		const struct wf_info *f = &g->info[cur];
		if (!proven_blocked(&p->threads[cur], w) || !f->holder ||
		    (!f->lock && f->kind != WF_THREAD_JOIN))
			return false;
		cyc[n++] = cur;
		cur = index_of(p, f->holder);
		if (cur == start)
			break;
		for (size_t k = 0; k < n; k++)
			if (cyc[k] == cur)
				return false; /* a cycle that start only leads into */
	}
	if (cur != start || n < 2)
		return false;
	*ncyc = n;
	return true;
}

bool waitgraph_diagnose(const struct waitgraph *g, pid_t waiter, const struct diag_waits *w,
			struct diagnosis *d)
{
	const struct py_process *p = g->p;
	(void)waiter;
	if (!g->info)
		return false;
	memset(d, 0, sizeof(*d));
	char a[160], b[160], c[160];
	/* self_deadlock */
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct wf_info *f = &g->info[i];
		const struct py_thread *t = &p->threads[i];
		if (f->holder != t || !f->lock || f->lock->reentrant || !proven_blocked(t, w))
			continue;
		d->code = DIAG_SELF_DEADLOCK;
		d->waiter = t->tid;
		d->culprits[d->nculprits++] = t->tid;
		who(t, a, sizeof(a));
		where_waits(t, b, sizeof(b));
		where_held(f, c, sizeof(c));
		snprintf(d->summary, sizeof(d->summary), "%s waits at %s for the %s it already holds "
			 "(taken at %s): a %s is not reentrant; do not take it again (or use an RLock)",
			 a, b, wf_kind_name(f->kind), c, wf_kind_name(f->kind));
		return true;
	}
	/* deadlock: a cycle; reported from its thread with the smallest tid first */
	for (size_t i = 0; i < p->nthreads; i++) {
		size_t cyc[DIAG_MAX_CULPRITS], n = 0;
		if (!find_cycle(g, w, i, cyc, &n))
			continue;
		size_t first = 0;
		for (size_t k = 1; k < n; k++)
			if (p->threads[cyc[k]].tid < p->threads[cyc[first]].tid)
				first = k;
		d->code = DIAG_DEADLOCK;
		d->waiter = p->threads[cyc[first]].tid;
		for (size_t k = 0; k < n; k++) {
			size_t me = cyc[(first + k) % n], prev = cyc[(first + k + n - 1) % n];
			const struct py_thread *t = &p->threads[me];
			d->culprits[d->nculprits++] = t->tid;
			who(t, a, sizeof(a));
			where_held(&g->info[prev], b, sizeof(b));
			where_waits(t, c, sizeof(c));
			char one[1000];
			const char *hn = waitgraph_held_name(&g->info[prev]), *wn = waitgraph_lock_name(&g->info[me]);
			char held[300], waits[400];
			if (!g->info[prev].lock) /* prev joins me: what I hold is my own end */
				snprintf(held, sizeof(held), "%s", "");
			else
				snprintf(held, sizeof(held), " holds %.60s (%s) and", hn ? hn : wf_kind_name(g->info[prev].kind), b);
			if (!g->info[me].lock) {
				char jn[160];
				who(g->info[me].holder, jn, sizeof(jn));
				snprintf(waits, sizeof(waits), "waits for %s to finish (join at %s)", jn, c);
			} else {
				snprintf(waits, sizeof(waits), "waits for %.60s (%s)", wn ? wn : wf_kind_name(g->info[me].kind), c);
			}
			snprintf(one, sizeof(one), "%s%s%s %s", k ? "; " : "", a, held, waits);
			append(d->summary, sizeof(d->summary), one);
		}
		bool via_join = false;
		for (size_t k = 0; k < n; k++)
			via_join |= !g->info[cyc[k]].lock;
		append(d->summary, sizeof(d->summary), via_join ?
		       ": a deadlock; do not join a thread while holding a lock it needs" :
		       ": a lock-order deadlock; take the locks in one order");
		return true;
	}
	/* orphaned_lock */
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct wf_info *f = &g->info[i];
		const struct py_thread *t = &p->threads[i];
		if (!f->holder_dead || !proven_blocked(t, w))
			continue;
		d->code = DIAG_ORPHANED_LOCK;
		d->waiter = t->tid;
		who(t, a, sizeof(a));
		where_waits(t, b, sizeof(b));
		snprintf(d->summary, sizeof(d->summary), "%s waits at %s for an %s whose owner thread "
			 "has exited without releasing it: release it in a finally: block, or use with",
			 a, b, wf_kind_name(f->kind));
		return true;
	}
	return false;
}
