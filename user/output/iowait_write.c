/* iowait_write: an I/O wait (iowait.h) as output. Owns: the JSON fields of waiting_for
 * for a thread blocked in an I/O call (blocked_on, waits_on, the call's timeout, the time
 * in the call), and the phrases text reports and summaries use ("recvfrom() on TCP ...",
 * " with no timeout set"). Everything it writes came from a hostile target: the JSON
 * writer escapes; text callers escape what they print. Declared in iowait.h. */
#include <stdio.h>
#include <string.h>

#include "iowait.h"
#include "syscall_names.h"

static const char *const event_names[] = { "in", "pri", "out" };

static const char *const end_names[] = { "unknown", "read", "write", "both" };

/* A pipe's end and the holders of its other end: "pipe_end", "peers" [{pid, comm, fd,
 * self}], "peers_total", "peers_searched" (processes looked at), "peers_cut" (also when
 * they were not looked for: its end unknown, more pipes than a snapshot answers). */
static void write_pipe_peers(struct jw *w, const struct fd_desc *d)
{
	jw_kstr(w, "pipe_end", end_names[d->pipe_end & 3]);
	jw_key(w, "peers");
	jw_arr_begin(w);
	for (unsigned i = 0; i < d->npeers; i++) {
		jw_obj_begin(w);
		jw_kint(w, "pid", d->peers[i].pid);
		jw_kstr(w, "comm", d->peers[i].comm);
		jw_kint(w, "fd", d->peers[i].fd);
		jw_kbool(w, "self", d->peers[i].pid == d->self_pid);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_kint(w, "peers_total", d->peers_total);
	jw_kint(w, "peers_searched", d->peers_looked);
	jw_kbool(w, "peers_cut", d->peers_cut || !d->peers_searched); /* not looked for: unknown */
}

static void write_fd(struct jw *w, const struct fd_desc *d, bool with_events)
{
	jw_obj_begin(w);
	jw_kint(w, "fd", d->fd);
	jw_kstr(w, "type", d->type);
	jw_kstr(w, "local", d->local[0] ? d->local : NULL);
	jw_kstr(w, "remote", d->remote[0] ? d->remote : NULL);
	jw_key(w, "peer");
	/* unix sockets: SO_PEERCRED; pipes: the first holder of the other end (fdpipe.c) */
	if (d->peer_pid > 0) {
		jw_obj_begin(w);
		jw_kint(w, "pid", d->peer_pid);
		jw_kstr(w, "comm", d->peer_comm);
		jw_obj_end(w);
	} else {
		jw_null(w);
	}
	if (!strcmp(d->type, "pipe"))
		write_pipe_peers(w, d);
	jw_kstr(w, "state", d->state[0] ? d->state : NULL);
	jw_kstr(w, "path", d->path[0] ? d->path : NULL);
	if (d->lock_pid > 0) {
		jw_key(w, "lock_holder");
		jw_obj_begin(w);
		jw_kint(w, "pid", d->lock_pid);
		jw_kstr(w, "comm", d->lock_comm);
		jw_obj_end(w);
	}
	if (with_events) {
		jw_key(w, "events");
		jw_arr_begin(w);
		for (unsigned b = 0; b < 3; b++)
			if (d->events & (1u << b))
				jw_str(w, event_names[b]);
		jw_arr_end(w);
	}
	jw_obj_end(w);
}

void io_write_fields(struct jw *w, const struct io_wait *io)
{
	if (io->fd_call) {
		jw_key(w, "blocked_on");
		write_fd(w, &io->on, false);
	}
	if (io->multi) {
		jw_key(w, "waits_on");
		jw_arr_begin(w);
		for (int i = 0; i < io->nfds; i++)
			write_fd(w, &io->fds[i], true);
		jw_arr_end(w);
		jw_key(w, "waits_on_total");
		if (io->nfds_total >= 0)
			jw_int(w, io->nfds_total);
		else
			jw_null(w);
	}
	jw_key(w, "syscall_timeout_s");
	if (io->timeout == IO_TIMEOUT_SET)
		jw_double(w, io->timeout_s, 3);
	else if (io->timeout == IO_TIMEOUT_UNKNOWN)
		jw_str(w, "unknown");
	else
		jw_null(w);
	jw_kbool(w, "no_timeout_set", io->no_timeout_set);
	jw_key(w, "in_syscall_s");
	if (io->in_call_s >= 0)
		jw_double(w, io->in_call_s, 1);
	else
		jw_null(w);
	jw_kbool(w, "in_syscall_estimated", true);
	jw_kbool(w, "idle", io->idle != NULL);
	jw_kstr(w, "idle_reason", io->idle);
}

void io_phrase(const struct io_wait *io, char *buf, size_t len)
{
	char one[300];
	if (io->multi && !(io->nfds == 0 && io->fd_call)) {
		int total = io->nfds_total >= 0 ? io->nfds_total : io->nfds;
		if (io->nfds == 1 && total == 1) {
			fd_phrase(&io->fds[0], one, sizeof(one));
			snprintf(buf, len, "%s() on %s", io->syscall, one);
			return;
		}
		size_t u = (size_t)snprintf(buf, len, "%s() on %d fds", io->syscall, total);
		for (int i = 0; i < io->nfds && i < 3 && u < len; i++) {
			fd_phrase(&io->fds[i], one, sizeof(one));
			u += (size_t)snprintf(buf + u, len - u, "%s%s", i ? ", " : ": ", one);
		}
		if (io->nfds > 3 && u < len)
			snprintf(buf + u, len - u, ", ...");
		return;
	}
	fd_phrase(&io->on, one, sizeof(one));
	snprintf(buf, len, "%s() on %s", io->syscall, one);
}

void io_timeout_phrase(const struct io_wait *io, char *buf, size_t len)
{
	if (io->no_timeout_set)
		snprintf(buf, len, " with no timeout set");
	else if (io->timeout == IO_TIMEOUT_SET)
		snprintf(buf, len, " with a timeout of %.1f s", io->timeout_s);
	else if (io->timeout == IO_TIMEOUT_NONE)
		snprintf(buf, len, " with no timeout");
	else
		buf[0] = '\0';
	if (io->idle) {
		size_t u = strnlen(buf, len);
		if (u + 1 < len)
			snprintf(buf + u, len - u, " (idle: %s)", strcmp(io->idle, "event_loop") == 0 ?
				 "the event loop waits for work" : "waits for new connections");
	}
}
