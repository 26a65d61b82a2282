/* asyncio_int: what the asyncio reader's files share (asyncio_read.c: loops and the public
 * API; asyncio_tasks.c: coroutines and tasks; asyncio_obj.c: reading Python objects of the
 * target within a budget; asyncio_subproc.c: the subprocess a task awaits). Not for use outside them. */
#ifndef PH_ASYNCIO_INT_H
#define PH_ASYNCIO_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "asyncio_read.h"
#include "pylayout.h"

struct aio_ctx {
	struct py_reader *r;
	pid_t pid;
	const struct py_layout *l;
	const struct py_aio_layout *a;
	uint64_t t_future, t_task;  /* _asyncio.Future / _asyncio.Task type objects */
	double now;                 /* the target's time.monotonic() now */
	size_t budget;              /* object reads left (bounds the CPU of one view) */
	size_t nsub;                /* tasks given a subprocess (AIO_MAX_SUBPROCS) */
};

#define AIO_READ_BUDGET 400000u

/* asyncio_obj.c */
bool aio_rd(struct aio_ctx *c, uint64_t addr, void *buf, size_t len);
uint64_t aio_ptr(struct aio_ctx *c, uint64_t addr);
int64_t aio_i64(struct aio_ctx *c, uint64_t addr, bool *ok);
bool aio_plausible(uint64_t p);
void aio_type_name(struct aio_ctx *c, uint64_t obj, char *buf, size_t len);
bool aio_type_named(struct aio_ctx *c, uint64_t obj, const char *name);
bool aio_is_instance(struct aio_ctx *c, uint64_t obj, uint64_t base);
char *aio_str_of(struct aio_ctx *c, uint64_t obj);
bool aio_float_of(struct aio_ctx *c, uint64_t obj, double *out);
uint64_t aio_module_dict(struct aio_ctx *c, uint64_t modules, const char *name);
uint64_t aio_obj_attr(struct aio_ctx *c, uint64_t obj, const char *name);
uint64_t aio_slot_attr(struct aio_ctx *c, uint64_t obj, const char *name);
uint64_t aio_local_by_name(struct aio_ctx *c, uint64_t frame, uint64_t code, const char *name);
uint64_t aio_local0(struct aio_ctx *c, uint64_t frame);
void aio_frame_set(struct aio_frame *f, const char *function, const char *file, int line);
void aio_frame_free(struct aio_frame *f);
const char *aio_base_name(const char *path);
const char *aio_short_fn(const char *fn);
bool aio_file_is(const char *path, const char *dir, const char *file);
bool aio_frame_is(const struct py_frame *f, const char *fn, const char *dir, const char *file);

bool aio_int_of(struct aio_ctx *c, uint64_t obj, int64_t *out);

/* asyncio_subproc.c */
void aio_subproc_read(struct aio_ctx *c, struct aio_task *t, uint64_t self);
void aio_subproc_from_stream(struct aio_ctx *c, struct aio_task *t, uint64_t reader);
void aio_subproc_facts(struct aio_view *v);

/* asyncio_tasks.c */
void aio_collect_set(struct aio_ctx *c, uint64_t set, bool weak, struct aio_view *v);
void aio_task_fill(struct aio_ctx *c, struct aio_task *t);
void aio_link_tasks(struct aio_ctx *c, struct aio_view *v);
#endif
