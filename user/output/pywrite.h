/* pywrite: writers of what the CPython reader returns (struct py_process, struct
 * py_thread of user/python/pyreader.h): JSON (pywrite_json.c) and text shaped like a
 * Python traceback (pywrite_text.c). The reader itself knows nothing of output. */
#ifndef PYWRITE_H
#define PYWRITE_H

#include <stdbool.h>
#include <sys/types.h>

#include "json.h"
#include "pyreader.h"
#include "strbuf.h"
#include "syscall_names.h"

struct wf_info;
/* Extra fields of a thread in py_write_threads_json (NULL: none): waitgraph.c sets it. */
extern void (*py_thread_json_hook)(struct jw *w, const struct py_thread *t);
/* Extra keys of a process after "threads" in py_write_threads_fields (NULL: none):
 * asyncio_read.c sets it (the "asyncio" object). */
extern void (*py_process_json_hook)(struct jw *w, const struct py_process *p);
/* One thread's frames as a JSON array, innermost first: {function, file, line, first_line}. */
void py_write_stack_json(struct jw *w, const struct py_thread *t);
/* The `threads` array of `dump --json`. */
void py_write_threads_json(struct jw *w, const struct py_process *p);
/* The key "threads" with that array, then "thread_list_error" when the list was cut, then
 * py_process_json_hook's keys. */
void py_write_threads_fields(struct jw *w, const struct py_process *p);
/* For people: '==> Thread "name" (tid N' (the arrow when mark; "(no threading name)",
 * "tid unknown" when not known; the name escaped), left open for the caller's details. */
void py_write_thread_label(struct strbuf *sb, const struct py_thread *t, bool mark);
/* Python-traceback-shaped text; the thread whose tid is highlight_tid (if any) is marked. */
void py_write_threads_text(struct strbuf *sb, const struct py_process *p, pid_t highlight_tid);
#endif
