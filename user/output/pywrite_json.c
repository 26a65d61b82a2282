/* pywrite_json: Python threads and stacks read by the reader (user/python) as JSON: the
 * `threads` array of `dump --json` and of events, one thread's frames (see pywrite.h). */
#include "pywrite.h"
#include <string.h>

void py_write_stack_json(struct jw *w, const struct py_thread *t)
{
	jw_arr_begin(w);
	for (size_t k = 0; k < t->nframes; k++) {
		const struct py_frame *f = &t->frames[k];
		jw_obj_begin(w);
		jw_kstr(w, "function", f->function);
		jw_kstr(w, "file", f->file);
		jw_key(w, "line");
		if (f->line < 0)
			jw_null(w);
		else
			jw_int(w, f->line);
		jw_kint(w, "first_line", f->first_line);
		if (f->error)
			jw_kstr(w, "error", f->error);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

void (*py_thread_json_hook)(struct jw *w, const struct py_thread *t);
void (*py_process_json_hook)(struct jw *w, const struct py_process *p);

void py_write_threads_json(struct jw *w, const struct py_process *p)
{
	jw_arr_begin(w);
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		jw_obj_begin(w);
		jw_key(w, "tid");
		if (t->tid > 0)
			jw_int(w, t->tid);
		else
			jw_null(w); /* not established: never guessed */
		jw_kstr(w, "name", t->name);
		jw_key(w, "daemon");
		if (t->daemon < 0)
			jw_null(w);
		else
			jw_bool(w, t->daemon == 1);
		jw_kbool(w, "gil", t->gil);
		jw_kstr(w, "state", py_thread_state_str(t->state));
		if (t->syscall_nr >= 0) /* by name (syscall_names.c); null: unknown to this build */
			jw_kstr(w, "syscall", syscall_name(t->syscall_nr));
		if (t->truncated)
			jw_kbool(w, "truncated", true);
		if (t->error)
			jw_kstr(w, "error", t->error);
		jw_key(w, "stack");
		py_write_stack_json(w, t);
		if (py_thread_json_hook && t->wf)
			py_thread_json_hook(w, t);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

void py_write_threads_fields(struct jw *w, const struct py_process *p)
{
	jw_key(w, "threads");
	py_write_threads_json(w, p);
	if (p->threads_error)
		jw_kstr(w, "thread_list_error", p->threads_error);
	if (py_process_json_hook)
		py_process_json_hook(w, p);
}
