/* outcap: caps on what one output record carries (see outcap.h). */
#include "outcap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limitcfg.h"
#include "output.h"
#include "pyreader.h"
#include "waitgraph.h"

/* Frames and threads allowed at the current level. */
static void level_caps(const struct output *o, size_t *threads, size_t *frames)
{
	size_t f = limits.max_frames, t = limits.max_threads;
	if (o->cap.deepest < f)
		f = o->cap.deepest;
	unsigned lv = o->cap.level;
	while (lv && f) {
		f /= 2;
		lv--;
	}
	while (lv && t) {
		t /= 2;
		lv--;
	}
	*threads = t;
	*frames = f;
}

static void *block(struct output *o, size_t size)
{
	if (o->cap.nblocks >= OUTCAP_MAX_BLOCKS)
		return NULL;
	void *p = calloc(1, size ? size : 1);
	if (p)
		o->cap.blocks[o->cap.nblocks++] = p;
	return p;
}

/* t with its frames past `frames` left out, said in its error (kept in err[200]). */
static void cut_thread(struct py_thread *out, char *err, const struct py_thread *t, size_t frames)
{
	*out = *t;
	out->nframes = frames;
	out->truncated = true;
	snprintf(err, 200, "%s%s%zu outer frames of %zu not written (--max-frames, --max-event-bytes)",
		 t->error ? t->error : "", t->error ? "; " : "", t->nframes - frames, t->nframes);
	out->error = err;
}

struct cut_thread {
	struct py_thread t;
	char error[200];
};

const struct py_thread *outcap_thread(struct output *o, const struct py_thread *t, bool *cut)
{
	size_t threads, frames;
	if (cut)
		*cut = false;
	if (!t)
		return NULL;
	if (o->cap.level == 0 && t->nframes > o->cap.deepest)
		o->cap.deepest = t->nframes;
	level_caps(o, &threads, &frames);
	if (t->nframes <= frames)
		return t;
	struct cut_thread *c = block(o, sizeof(*c));
	if (!c) { /* cannot even say where: write no frame rather than too many */
		static const struct py_thread none = { .truncated = true,
						       .error = "frames not written (out of memory)" };
		if (cut)
			*cut = true;
		return &none;
	}
	cut_thread(&c->t, c->error, t, frames);
	if (cut)
		*cut = true;
	return &c->t;
}

struct cut_process {
	struct py_process p;
	char error[200];
};

/* A first look at p's size, before writing it: when its frames' strings alone pass the
 * budget, start at the level whose frame cap makes them fit on average, rather than write
 * (and walk) hundreds of megabytes once per level. Only an estimate (escaping may make the
 * text longer): the retry still guards the budget. */
static void skip_levels(struct output *o, const struct py_process *p)
{
	uint64_t bytes = 0, frames = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		size_t n = t->nframes < limits.max_frames ? t->nframes : limits.max_frames;
		for (size_t k = 0; k < n; k++) {
			const struct py_frame *f = &t->frames[k];
			bytes += (f->function ? strlen(f->function) : 1) + (f->file ? strlen(f->file) : 1) + 60;
		}
		frames += n;
	}
	uint64_t budget = limits.max_event_bytes;
	if (bytes <= budget || !frames)
		return;
	/* frames that fit: budget / bytes-per-frame; halvings of the deepest stack to get there */
	uint64_t fit = (uint64_t)((double)budget * 0.9 / ((double)bytes / (double)frames));
	size_t f = o->cap.deepest < limits.max_frames ? o->cap.deepest : limits.max_frames;
	uint64_t per_thread = p->nthreads ? fit / p->nthreads : fit;
	unsigned lv = 0;
	while (f > per_thread && f) {
		f /= 2;
		lv++;
	}
	o->cap.level = lv;
}

const struct py_process *outcap_process(struct output *o, const struct py_process *p)
{
	size_t threads, frames;
	if (!p)
		return NULL;
	for (size_t i = 0; o->cap.level == 0 && i < p->nthreads; i++)
		if (p->threads[i].nframes > o->cap.deepest)
			o->cap.deepest = p->threads[i].nframes;
	if (o->cap.level == 0)
		skip_levels(o, p);
	level_caps(o, &threads, &frames);
	bool fits = p->nthreads <= threads;
	for (size_t i = 0; fits && i < p->nthreads; i++)
		fits = p->threads[i].nframes <= frames;
	if (fits)
		return p;
	size_t n = p->nthreads < threads ? p->nthreads : threads;
	struct cut_process *c = block(o, sizeof(*c));
	struct py_thread *arr = block(o, n * sizeof(*arr));
	char (*errs)[200] = block(o, n * sizeof(*errs));
	static const struct py_process none = { .threads_error = "threads not written (out of memory)" };
	if (!c || !arr || !errs)
		return &none;
	c->p = *p;
	for (size_t i = 0; i < n; i++) {
		if (p->threads[i].nframes > frames)
			cut_thread(&arr[i], errs[i], &p->threads[i], frames);
		else
			arr[i] = p->threads[i];
	}
	c->p.threads = arr;
	c->p.nthreads = n;
	if (n < p->nthreads) {
		snprintf(c->error, sizeof(c->error), "%s%s%zu threads of %zu not written (--max-threads, "
			 "--max-event-bytes)", p->threads_error ? p->threads_error : "",
			 p->threads_error ? "; " : "", p->nthreads - n, p->nthreads);
		c->p.threads_error = c->error;
	}
	return &c->p;
}

size_t outcap_holder_chain(const struct py_process *p, pid_t tid, pid_t *out, size_t max)
{
	size_t n = 0;
	while (tid > 0 && n < max) {
		const struct py_thread *t = NULL;
		for (size_t i = 0; i < p->nthreads; i++)
			if (p->threads[i].tid == tid)
				t = &p->threads[i];
		for (size_t k = 0; k < n; k++)
			if (out[k] == tid)
				return n;
		out[n++] = tid;
		tid = t && t->wf && t->wf->holder ? t->wf->holder->tid : 0;
	}
	return n;
}

const struct py_process *outcap_focus(struct output *o, const struct py_process *p, pid_t tid,
				      pid_t same_as)
{
	pid_t focus[OUTCAP_FOCUS_MAX];
	if (!p || same_as <= 0)
		return p;
	size_t nf = outcap_holder_chain(p, tid, focus, OUTCAP_FOCUS_MAX);
	struct cut_process *c = block(o, sizeof(*c));
	struct py_thread *arr = block(o, nf * sizeof(*arr) + 1);
	static const struct py_process none = { .threads_error = "threads not written (out of memory)" };
	if (!c || !arr)
		return &none;
	c->p = *p;
	size_t n = 0;
	for (size_t i = 0; i < p->nthreads && n < nf; i++)
		for (size_t k = 0; k < nf; k++)
			if (p->threads[i].tid > 0 && p->threads[i].tid == focus[k]) {
				arr[n++] = p->threads[i];
				break;
			}
	c->p.threads = arr;
	c->p.nthreads = n;
	snprintf(c->error, sizeof(c->error), "%s%s%zu threads of %zu not repeated: the same read of "
		 "the process is in the long_wait of thread %d", p->threads_error ? p->threads_error : "",
		 p->threads_error ? "; " : "", p->nthreads - n, p->nthreads, (int)same_as);
	c->p.threads_error = c->error;
	return &c->p;
}

static bool last_level(const struct output *o)
{
	size_t threads, frames;
	level_caps(o, &threads, &frames);
	return threads == 0 && frames == 0;
}

bool outcap_overflowed(struct output *o)
{
	if (last_level(o))
		return false;
	o->cap.overflow = true;
	return true;
}

static void release(struct output *o)
{
	for (unsigned i = 0; i < o->cap.nblocks; i++)
		free(o->cap.blocks[i]);
	o->cap.nblocks = 0;
}

void outcap_begin(struct output *o)
{
	release(o);
	o->cap.level = 0;
	o->cap.overflow = false;
	o->cap.deepest = 0;
	sb_set_limit(&o->sb, limits.max_event_bytes);
}

bool outcap_again(struct output *o)
{
	if (!o->cap.overflow)
		return false;
	release(o);
	o->cap.overflow = false;
	o->cap.level++;
	sb_reset(&o->sb);
	return true;
}

void outcap_end(struct output *o)
{
	release(o);
	o->cap.level = 0;
	/* one big record must not keep its buffer for good */
	if (o->sb.cap > (256u << 10))
		sb_free(&o->sb);
}
