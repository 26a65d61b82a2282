/* waitgraph_json: the wait-for graph as JSON (see waitgraph_json.h). */
#include "waitgraph_json.h"

#include <string.h>

#include "childwait.h"
#include "diagnose.h"

static void write_where(struct jw *w, const char *key, const struct py_frame *fr, int line)
{
	jw_key(w, key);
	if (!fr) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	jw_kstr(w, "function", fr->function);
	jw_kstr(w, "file", fr->file);
	jw_kint(w, "line", line >= 0 ? line : fr->line);
	jw_obj_end(w);
}

static void write_lock_obj(struct jw *w, const char *kind, uint64_t obj, const char *name)
{
	jw_kstr(w, "kind", kind);
	jw_key(w, "object");
	if (obj)
		jw_hex(w, obj);
	else
		jw_null(w);
	jw_kstr(w, "name", name && name[0] ? name : NULL);
}

void waitgraph_write_waiting_for(struct jw *w, const struct wf_info *f)
{
	if (!f || !f->kind) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	write_lock_obj(w, wf_kind_name(f->kind), f->object, waitgraph_lock_name(f));
	jw_key(w, "holder");
	if (f->holder) {
		jw_obj_begin(w);
		jw_kint(w, "tid", f->holder->tid);
		jw_kstr(w, "name", f->holder->name);
		if (f->kind != WF_GIL && !f->runs_future)
			write_where(w, "since", waitgraph_holder_frame(f), f->holder_line);
		jw_obj_end(w);
	} else {
		jw_null(w);
	}
	if (f->holder_dead)
		jw_kbool(w, "holder_exited", true);
	if (f->runs_future)
		jw_kbool(w, "holder_runs_future", true);
	if (f->child) {
		jw_key(w, "child");
		childwait_write_json(w, f->child);
	}
	if (f->io) {
		jw_kstr(w, "syscall", f->io->syscall);
		io_write_fields(w, f->io);
	}
	jw_key(w, "timeout_s");
	if (f->timed && f->timeout_s >= 0)
		jw_double(w, f->timeout_s, 3);
	else if (f->timed)
		jw_str(w, "unknown");
	else
		jw_null(w);
	jw_obj_end(w);
}

static void write_holds(struct jw *w, const struct py_thread *t, const struct wf_info *f)
{
	jw_arr_begin(w);
	for (size_t k = 0; k < f->lo.nheld; k++) {
		const struct lo_lock *h = &f->lo.held[k];
		jw_obj_begin(w);
		write_lock_obj(w, lo_kind_str(h->kind), h->obj, h->name);
		write_where(w, "since", h->frame >= 0 && (size_t)h->frame < t->nframes ?
			    &t->frames[h->frame] : NULL, h->line);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

void waitgraph_json_hook(struct jw *w, const struct py_thread *t)
{
	const struct wf_info *f = t->wf;
	if (f->kind) {
		jw_key(w, "waiting_for");
		waitgraph_write_waiting_for(w, f);
	}
	jw_key(w, "holds");
	write_holds(w, t, f);
}

void waitgraph_write_cycle(struct jw *w, const struct py_process *p, const struct diagnosis *d)
{
	jw_arr_begin(w);
	for (size_t k = 0; k < d->nculprits; k++) {
		const struct py_thread *t = NULL, *prev = NULL;
		pid_t ptid = d->culprits[(k + d->nculprits - 1) % d->nculprits];
		for (size_t i = 0; i < p->nthreads; i++) {
			if (p->threads[i].tid == d->culprits[k])
				t = &p->threads[i];
			if (p->threads[i].tid == ptid)
				prev = &p->threads[i];
		}
		if (!t || !t->wf || !prev || !prev->wf)
			continue;
		jw_obj_begin(w);
		jw_kint(w, "tid", t->tid);
		jw_kstr(w, "name", t->name);
		jw_key(w, "holds");
		jw_obj_begin(w);
		write_lock_obj(w, wf_kind_name(prev->wf->kind), prev->wf->object, waitgraph_held_name(prev->wf));
		write_where(w, "since", waitgraph_holder_frame(prev->wf), prev->wf->holder_line);
		jw_obj_end(w);
		jw_key(w, "waits_for");
		jw_obj_begin(w);
		write_lock_obj(w, wf_kind_name(t->wf->kind), t->wf->object, waitgraph_lock_name(t->wf));
		write_where(w, "where", diagnose_program_frame(t), -1);
		jw_obj_end(w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}
