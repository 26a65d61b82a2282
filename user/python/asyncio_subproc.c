/* asyncio_subproc: the subprocess an asyncio task awaits (struct aio_subproc, asyncio_read.h).
 * Owns: reading, from the target's memory, the asyncio.subprocess.Process object that is
 * `self` of the outermost frame of asyncio/subprocess.py in the task's await chain (or the
 * subprocess transport, `self` of base_subprocess.py's frames), and from /proc what became
 * of that child and who holds its pipes.
 * CPython facts (Lib/asyncio/subprocess.py and base_subprocess.py, the same in 3.7-3.13,
 * checked against each version's sources): Process.__init__ sets the instance attributes
 * `_transport`, `stdout`/`stderr` (a StreamReader, or None when not a PIPE) and
 * `pid = transport.get_pid()`; BaseSubprocessTransport keeps `_pid` and `_returncode`
 * (None until asyncio reaped the child and called _process_exited); the StreamReader of a
 * pipe keeps its read transport in `_transport`, a unix_events._UnixReadPipeTransport whose
 * `_fileno` is the fd of the pipe's read end in the target, and whose `_protocol` is a
 * base_subprocess.ReadSubprocessPipeProto with `proc` (the subprocess transport) and `fd`
 * (1 stdout, 2 stderr): a task that reads `proc.stdout` itself (no subprocess.py frame,
 * only streams.py's, `self` a StreamReader) is followed that way. All are plain instance
 * attributes (__dict__, or the managed dict of 3.11+: aio_obj_attr).
 * Everything read from the target is only a hint: the pid is looked for among the
 * target's own children (/proc/PID/task/TID/children, whose pid inside the target's pid
 * namespace must match), so a forged pid names nothing outside them; the fd is checked to
 * be a pipe by fddesc.c, which also finds the holders of its write end among the
 * target's relatives (fdpipe.c). Bounds: AIO_MAX_SUBPROCS tasks per view, 2 pipes each,
 * one fd_ctx (and so one candidate set and fd budget) for the whole view. */
#include <stdlib.h>
#include <string.h>

#include "asyncio_int.h"
#include "fddesc.h"
#include "procscan.h"

#define SUB_MAX_CHILDREN 256 /* children of the target looked at for the pid */

static bool small_pid(int64_t v)
{
	return v > 0 && v < (1 << 22); /* PID_MAX_LIMIT on 64-bit (include/linux/threads.h) */
}

/* pid and return code from a subprocess transport (BaseSubprocessTransport: _pid,
 * _returncode). */
static void from_transport(struct aio_ctx *c, struct aio_subproc *s, uint64_t tr)
{
	int64_t v;
	if (!aio_plausible(tr))
		return;
	if (!s->pid && aio_int_of(c, aio_obj_attr(c, tr, "_pid"), &v) && small_pid(v))
		s->pid = (pid_t)v;
	if (aio_int_of(c, aio_obj_attr(c, tr, "_returncode"), &v) && v > -256 && v < 256) {
		s->returncode_known = true;
		s->returncode = (int)v;
	}
}

/* The pipe a StreamReader reads: its transport's _fileno. */
static void add_pipe(struct aio_ctx *c, struct aio_subproc *s, uint64_t reader, const char *stream)
{
	int64_t v;
	if (s->npipes == 2 || !aio_plausible(reader) || !aio_type_named(c, reader, "StreamReader"))
		return;
	uint64_t ptr = aio_obj_attr(c, reader, "_transport");
	if (!aio_plausible(ptr) || !aio_int_of(c, aio_obj_attr(c, ptr, "_fileno"), &v) || v < 0 ||
	    v > 0x7fffffff)
		return;
	s->pipes[s->npipes].stream = stream;
	s->pipes[s->npipes].fd = (int)v;
	s->npipes++;
}

static struct aio_subproc *new_sub(struct aio_ctx *c, struct aio_task *t)
{
	if (c->nsub >= AIO_MAX_SUBPROCS || t->sub)
		return NULL;
	struct aio_subproc *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	c->nsub++;
	s->state = "unknown";
	t->sub = s;
	return s;
}

void aio_subproc_read(struct aio_ctx *c, struct aio_task *t, uint64_t self)
{
	struct aio_subproc *s = new_sub(c, t);
	if (!s)
		return;
	uint64_t proc = 0, tr = self;
	if (aio_type_named(c, self, "Process")) {
		proc = self;
		tr = aio_obj_attr(c, proc, "_transport");
	}
	int64_t v;
	if (proc && aio_int_of(c, aio_obj_attr(c, proc, "pid"), &v) && small_pid(v))
		s->pid = (pid_t)v;
	from_transport(c, s, tr);
	if (proc) {
		add_pipe(c, s, aio_obj_attr(c, proc, "stdout"), "stdout");
		add_pipe(c, s, aio_obj_attr(c, proc, "stderr"), "stderr");
	}
}

void aio_subproc_from_stream(struct aio_ctx *c, struct aio_task *t, uint64_t reader)
{
	uint64_t ptr = aio_plausible(reader) ? aio_obj_attr(c, reader, "_transport") : 0;
	uint64_t proto = aio_plausible(ptr) ? aio_obj_attr(c, ptr, "_protocol") : 0;
	if (!aio_plausible(proto) || !aio_type_named(c, proto, "ReadSubprocessPipeProto"))
		return; /* a stream of something else: a socket, a plain pipe */
	struct aio_subproc *s = new_sub(c, t);
	if (!s)
		return;
	int64_t fd = 0;
	aio_int_of(c, aio_obj_attr(c, proto, "fd"), &fd);
	from_transport(c, s, aio_obj_attr(c, proto, "proc"));
	add_pipe(c, s, reader, fd == 2 ? "stderr" : "stdout");
}

void aio_subproc_facts(struct aio_view *v)
{
	pid_t kids[SUB_MAX_CHILDREN], kids_ns[SUB_MAX_CHILDREN]; /* pid here, pid in its namespace */
	size_t nk = 0;
	bool kids_read = false, more = false;
	struct fd_ctx *fc = NULL;
	for (size_t i = 0; i < v->ntasks; i++) {
		struct aio_subproc *s = v->tasks[i].sub;
		if (!s)
			continue;
		if (s->pid > 0) {
			if (!kids_read) {
				nk = proc_children(v->pid, PROC_CHILDREN_TASKS, kids, SUB_MAX_CHILDREN, &more);
				kids_read = true;
				for (size_t k = 0; k < nk; k++) { /* once per child, not per task */
					pid_t in_ns = proc_ns_pid(kids[k]);
					kids_ns[k] = in_ns > 0 ? in_ns : kids[k];
				}
			}
			for (size_t k = 0; k < nk; k++) {
				if (kids_ns[k] != s->pid)
					continue;
				char st = 0;
				proc_stat_fields(kids[k], &st, NULL, NULL);
				s->state = st == 'Z' || st == 'X' ? "zombie" : st == 'T' || st == 't' ? "stopped" :
					   st ? "running" : "unknown";
				break;
			}
		}
		if (!strcmp(s->state, "unknown") && s->returncode_known)
			s->state = "exited";
		for (size_t k = 0; k < s->npipes; k++) {
			if (!fc && !(fc = fd_ctx_new(v->pid)))
				break;
			fd_describe(fc, s->pipes[k].fd, false, &s->pipes[k].d);
		}
	}
	fd_ctx_free(fc);
}
