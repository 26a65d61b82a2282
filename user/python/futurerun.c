/* futurerun: the thread running a waited-for Future (see futurerun.h). */
#include "futurerun.h"

#include <string.h>

#define FR_MAX_FRAMES 16

static bool in_file(const struct py_frame *f, const char *tail)
{
	if (!f->file)
		return false;
	size_t n = strlen(f->file), k = strlen(tail);
	return n >= k && strcmp(f->file + n - k, tail) == 0 && (n == k || f->file[n - k - 1] == '/');
}

static const char *last_part(const char *fn)
{
	const char *d = fn ? strrchr(fn, '.') : NULL;
	return d ? d + 1 : fn ? fn : "";
}

/* The first fast local (`self`) of frame f, 0 when unreadable. */
static uint64_t self_of(struct py_reader *r, pid_t pid, const struct py_layout *l,
			const struct py_frame *f)
{
	uint64_t v = 0;
	if (!f->addr)
		return 0;
	uint64_t off = l->frames == PY_FRAMES_OBJECTS ? l->f_localsplus : l->iframe_localsplus;
	if (py_reader_mem_read(r, pid, f->addr + off, &v, sizeof(v)) != 0)
		return 0;
	return v;
}

/* The innermost frame of t in tail file whose function ends in one of names. */
static const struct py_frame *frame_in(const struct py_thread *t, const char *tail,
				       const char *n1, const char *n2)
{
	for (size_t k = 0; k < t->nframes && k < FR_MAX_FRAMES; k++) {
		const struct py_frame *f = &t->frames[k];
		const char *fn = last_part(f->function);
		if (in_file(f, tail) && (!strcmp(fn, n1) || (n2 && !strcmp(fn, n2))))
			return f;
	}
	return NULL;
}

const struct py_thread *futurerun_runner(struct py_reader *r, const struct py_process *p,
					 const struct py_thread *t)
{
	const struct py_layout *l = py_reader_layout(r, p->pid);
	if (!l)
		return NULL;
	const struct py_frame *wf = frame_in(t, "concurrent/futures/_base.py", "result", "exception");
	uint64_t fut = wf ? self_of(r, p->pid, l, wf) : 0;
	if (!fut)
		return NULL;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *w = &p->threads[i];
		if (w == t)
			continue;
		const struct py_frame *rf = frame_in(w, "concurrent/futures/thread.py", "run", NULL);
		uint64_t item = rf ? self_of(r, p->pid, l, rf) : 0;
		if (item && py_reader_mem_attr(r, p->pid, item, "future") == fut)
			return w;
	}
	return NULL;
}
