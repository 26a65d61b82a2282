/* asyncio_write: JSON and text of an asyncio view, and the views written with a
 * snapshot's threads (see asyncio_write.c). */
#ifndef PH_ASYNCIO_WRITE_H
#define PH_ASYNCIO_WRITE_H
#include <stdbool.h>
#include <stddef.h>

#include "asyncio_read.h"
#include "json.h"
#include "strbuf.h"

/* Whether a view has anything to show: asyncio (2.7: trollius) is imported; on 2.7 and
 * 3.6 the view then only says that it is not read (unsupported). */
bool aio_view_present(const struct aio_view *v);
/* The value of key "asyncio": {supported, reason?, loops: [{thread, state, running_s,
 * callback, tasks: [...]}], tasks_truncated?}; tasks within v->json_budget. */
void aio_write_json(struct jw *w, const struct aio_view *v);
/* The `dump` text: one block per loop, its tasks as a tree (a task, under it the tasks
 * it awaits). */
void aio_write_text(struct strbuf *sb, const struct aio_view *v);
/* A task's label for people: 'Task "name"' or 'Task at 0x...' (3.7). */
void aio_task_label(const struct aio_task *t, char *buf, size_t len);

/* The last view read for a process, written by py_write_threads_fields (dump --json and
 * events' snapshots) through py_process_json_hook. aio_publish takes ownership of v's
 * contents (v is left empty); the last 4 processes' views are kept, one per process.
 * json_budget: as
 * struct aio_view (AIO_EVENT_JSON_BUDGET for events, 0 for dump). */
void aio_publish(struct aio_view *v, size_t json_budget);
const struct aio_view *aio_published(pid_t pid, uint64_t start_time);
void aio_publish_clear(void);
#endif
