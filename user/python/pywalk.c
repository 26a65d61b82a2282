/* pywalk: one read of a whole process (see pyreader_int.h).
 * Owns: walking interpreters and their thread states into a struct py_process (threads,
 * stacks, GIL holders, names), bounded by MAX_INTERPRETERS and the frame-step budget. */
#include "pyreader_int.h"

#include <time.h>

uint64_t first_interp(struct walk *w)
{
	struct py_proc *p = w->p;
	uint64_t interp = 0;
	if (p->res.layout.start == PY_START_INTERP_HEAD)
		(void)rd_u64(w, p->res.interp_head, &interp);
	else
		(void)rd_u64(w, p->res.runtime + p->res.layout.rt_interp_head, &interp);
	return interp;
}

static int add_thread(struct py_process *out, size_t *cap, struct py_thread **t)
{
	if (out->nthreads == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct py_thread *nv = realloc(out->threads, nc * sizeof(*nv));
		if (!nv)
			return -1;
		out->threads = nv;
		*cap = nc;
	}
	*t = &out->threads[out->nthreads++];
	memset(*t, 0, sizeof(**t));
	(*t)->daemon = -1;
	(*t)->syscall_nr = -1;
	(*t)->state = PY_STATE_UNKNOWN;
	return 0;
}

uint32_t tstate_read_size(const struct py_layout *l)
{
	uint32_t n = l->ts_next;
	const uint32_t f[] = { l->ts_interp, l->ts_thread_id, l->ts_native_thread_id, l->ts_frame };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i] > n)
			n = f[i];
	return n + 8;
}

static void read_thread(struct walk *w, const unsigned char *ts, uint64_t tstate,
			struct py_thread *t)
{
	const struct py_layout *l = &w->p->res.layout;
	t->tstate_addr = tstate;
	t->thread_id = get_u64(ts, l->ts_thread_id);
	if (l->ts_native_thread_id) {
		int32_t tid = get_i32(ts, l->ts_native_thread_id);
		tid = tid > 0 ? host_tid(w, tid) : 0;
		t->tid = tid > 0 && task_exists(w, tid) ? tid : 0;
	} else {
		t->tid = tid_from_pthread(w, t->thread_id);
	}
	stack_read_consistent(w, ts, tstate, t);
}

static int walk_threads_of(struct walk *w, uint64_t interp, struct py_process *out, size_t *cap)
{
	const struct py_layout *l = &w->p->res.layout;
	uint32_t tsize = tstate_read_size(l);
	unsigned char ts[512];
	struct addr_set seen = { 0 };
	uint64_t tstate;
	if (tsize > sizeof(ts) || rd_u64(w, interp + l->interp_tstate_head, &tstate) != 0)
		return -1;
	int rc = 0;
	while (tstate && out->nthreads < PY_MAX_THREADS && !w->gone) {
		/* a cycle or garbage: stop here, keep the threads read so far, say why */
		if (!plausible_ptr(tstate) || rd(w, tstate, ts, tsize) != 0) {
			out->threads_error = "thread state unreadable";
			break;
		}
		if (get_u64(ts, l->ts_interp) != interp) {
			out->threads_error = "thread state of another interpreter in the list";
			break;
		}
		if (!addr_set_add(&seen, tstate)) {
			out->threads_error = "thread list loops";
			break;
		}
		struct py_thread *t;
		if (add_thread(out, cap, &t) != 0) {
			rc = -1;
			break;
		}
		read_thread(w, ts, tstate, t);
		tstate = get_u64(ts, l->ts_next);
	}
	addr_set_free(&seen);
	return rc;
}

static void annotate_threads(struct walk *w, uint64_t main_interp, struct py_process *out,
			     const struct gil_info *g)
{
	struct active_list act = { 0 };
	uint64_t active = find_active_dict(w, main_interp);
	if (active)
		(void)dict_each(w, active, collect_active, &act);
	for (size_t i = 0; i < out->nthreads; i++) {
		struct py_thread *t = &out->threads[i];
		thread_from_threading(w, &act, t);
		t->gil = gil_held_by(g, t->tstate_addr);
		classify_state(w, t, (const uint64_t(*)[2])g->ranges, g->nranges);
		if (g->unknown && t->state == PY_STATE_LOCK_WAIT)
			t->state = PY_STATE_UNKNOWN; /* a lock or the GIL: cannot tell */
	}
	free(act.v);
}

static void reverse_threads(struct py_process *out)
{
	for (size_t i = 0, j = out->nthreads; i + 1 < j; i++, j--) {
		struct py_thread tmp = out->threads[i];
		out->threads[i] = out->threads[j - 1];
		out->threads[j - 1] = tmp;
	}
}

int walk_process(struct walk *w, struct py_process *out, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	struct gil_info g;
	struct addr_set seen = { 0 };
	size_t cap = 0;
	memset(&g, 0, sizeof(g));
	if (w->snapshot_new) {
		gil_proof_begin(w); /* before any other read of the snapshot */
		struct timespec ts;
		out->gil_switches_known = w->gil_proof;
		out->gil_switches = w->gil_proof ? w->gil0_switches : 0;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		out->gil_switches_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	uint64_t interp = first_interp(w), main_interp = 0;
	if (!interp_valid(w, interp)) {
		snprintf(err, errlen, "process %d: no valid Python interpreter state (not "
			 "initialized or finalizing?)", (int)p->pid);
		return -1;
	}
	p->last_interp = interp;
	if (p->res.layout.gil_kind == PY_GIL_NONE || p->res.layout.gil_kind == PY_GIL_STATIC)
		gil_collect_static(w, &g);
	else if (p->res.layout.gil_kind == PY_GIL_IN_RUNTIME)
		gil_add_struct(w, &g, p->res.runtime + p->res.layout.gil);
	for (unsigned n = 0; interp && n < MAX_INTERPRETERS && !w->gone; n++) {
		if (!plausible_ptr(interp) || !addr_set_add(&seen, interp)) {
			out->threads_error = "interpreter list loops or is unreadable";
			break;
		}
		main_interp = interp; /* the list ends with the main interpreter */
		if (p->res.layout.gil_kind == PY_GIL_IN_INTERP)
			gil_add_struct(w, &g, interp + p->res.layout.gil);
		if (walk_threads_of(w, interp, out, &cap) != 0)
			break;
		if (rd_u64(w, interp + p->res.layout.interp_next, &interp) != 0)
			break;
	}
	addr_set_free(&seen);
	sc_free(w->check);
	w->check = NULL;
	read_sys_version(w, main_interp);
	annotate_threads(w, main_interp, out, &g);
	reverse_threads(out);
	return 0;
}
