/* output: destination handling, clocks and names shared by both writers (see output.h). */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pyhang.h"

uint64_t mono_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t mono_to_real_offset(void)
{
	struct timespec r, m;
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - (int64_t)m.tv_sec) * 1000000000ll + (r.tv_nsec - m.tv_nsec);
}

/* -o FILE, at start and at each SIGHUP. The path may sit in a directory others can write
 * (a log directory, /tmp): it is never followed as a symbolic link (O_NOFOLLOW), never
 * waited on as a FIFO (O_NONBLOCK: a FIFO without a reader fails at once, one with a reader
 * is refused as not regular), never taken as a terminal (O_NOCTTY), and must be a regular
 * file owned by root or by the user running pyhang-trace (appending to another user's file
 * would let that user choose what it says, or have us fill it). Created 0640. */
static FILE *open_append(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
				    O_CLOEXEC, 0640);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open output file %s: %s", path,
			 e == ELOOP ? "it is a symbolic link" :
			 e == ENXIO ? "it is a FIFO or socket, not a regular file" : strerror(e));
		return NULL;
	}
	struct stat st;
	const char *why = NULL;
	char owner[64];
	if (fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != 0 && st.st_uid != getuid()) {
		snprintf(owner, sizeof(owner), "owned by uid %u, not by root or uid %u",
			 (unsigned)st.st_uid, (unsigned)getuid());
		why = owner;
	}
	int fl = why ? 0 : fcntl(fd, F_GETFL);
	FILE *f = NULL;
	if (!why && (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0))
		why = strerror(errno);
	if (!why && !(f = fdopen(fd, "a")))
		why = strerror(errno);
	if (why) {
		snprintf(err, errlen, "refusing output file %s: %s", path, why);
		close(fd);
	}
	return f;
}

int output_open(struct output *o, const char *path, bool json, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	sb_init(&o->sb);
	o->ops = &output_dispatch_ops;
	o->writer = json ? &output_json_ops : &output_text_ops;
	o->mono_to_real_ns = mono_to_real_offset();
	if (path) {
		o->f = open_append(path, err, errlen);
		if (!o->f)
			return -1;
		o->path = strdup(path);
		if (!o->path) {
			fclose(o->f);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	} else {
		o->f = stdout;
	}
	const char *nc = getenv("NO_COLOR");
	o->color = !json && !path && isatty(STDOUT_FILENO) && !(nc && *nc);
	return 0;
}

int output_reopen(struct output *o)
{
	if (!o->path)
		return 0;
	char err[256];
	FILE *f = open_append(o->path, err, sizeof(err));
	if (!f) {
		fprintf(stderr, "pyhang-trace: %s\n", err);
		return -1;
	}
	fclose(o->f);
	o->f = f;
	return 0;
}

void output_close(struct output *o)
{
	if (o->f && o->f != stdout)
		fclose(o->f);
	else if (o->f)
		fflush(o->f);
	free(o->path);
	sb_free(&o->sb);
	o->f = NULL;
	o->path = NULL;
}

bool (*output_stop_overdue)(void);

/* Write all of buf to fd: the bytes written (short on an error, errno set). A pipe or
 * terminal set non-blocking by whoever shares it is waited for, one second at most. Once
 * output_stop_overdue() says so, a reader that does not read is not waited for: a write
 * that cannot go on at once, or is interrupted (the tracer's stop signals and its 1 s
 * alarm after them), gives up with EAGAIN/EINTR. */
static size_t write_all(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		if (output_stop_overdue && output_stop_overdue()) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (poll(&p, 1, 0) <= 0) {
				errno = EAGAIN;
				break;
			}
		}
		ssize_t n = write(fd, buf + off, len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR) {
			if (output_stop_overdue && output_stop_overdue())
				break;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (poll(&p, 1, 1000) > 0)
				continue;
			errno = EAGAIN;
		}
		if (n == 0)
			errno = EIO;
		break;
	}
	return off;
}

void output_emit(struct output *o)
{
	if (o->sb.oom) {
		/* too big for --max-event-bytes: written again with fewer frames (outcap.c) */
		if (outcap_overflowed(o)) {
			sb_reset(&o->sb);
			return;
		}
		o->records_dropped++;
		fprintf(stderr, "pyhang-trace: an event did not fit in memory and was not written\n");
		sb_reset(&o->sb);
		return;
	}
	if (!o->sb.len)
		return;
	/* Whatever stdio holds (nothing, normally) goes first; then one write(2) per record,
	 * so that how much of it reached the file is known: after a short write (ENOSPC,
	 * EFBIG, EIO...) the next record begins with a newline, never glued to the cut one. */
	fflush(o->f);
	int fd = fileno(o->f);
	bool failed = false;
	if (o->line_open) {
		if (write_all(fd, "\n", 1) == 1)
			o->line_open = false;
		else
			failed = true;
	}
	if (!failed) {
		size_t n = write_all(fd, o->sb.data, o->sb.len);
		if (n < o->sb.len) {
			failed = true;
			if (n > 0)
				o->line_open = true;
		}
	}
	int err = errno;
	sb_reset(&o->sb);
	if (failed && !o->write_failed) {
		o->write_failed = true;
		fprintf(stderr, "pyhang-trace: writing output failed: %s\n", strerror(err));
	}
}

void output_format_time(const struct output *o, uint64_t mono_ns, char *buf, size_t len)
{
	int64_t real = (int64_t)mono_ns + o->mono_to_real_ns;
	time_t secs = (time_t)(real / 1000000000ll);
	int ms = (int)((real % 1000000000ll) / 1000000ll);
	struct tm tm;
	if (!gmtime_r(&secs, &tm)) {
		snprintf(buf, len, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

/* Every record through outcap, whichever the writer (outcap.h: OUTCAP_WRITE); record
 * kind K is written by o->writer->K from a struct rec_K. */
#define CAPPED(kind)                                                          \
	static void capped_##kind(struct output *o, const struct rec_##kind *r) \
	{                                                                     \
		OUTCAP_WRITE(o, o->writer->kind, r);                          \
	}
CAPPED(start)
CAPPED(stop)
CAPPED(long_wait)
CAPPED(wait_end)
CAPPED(sigchld)
CAPPED(child_lost)
CAPPED(hang)
CAPPED(suppressed)
CAPPED(hang_end)
#undef CAPPED

const struct output_ops output_dispatch_ops = {
	.start = capped_start,
	.stop = capped_stop,
	.long_wait = capped_long_wait,
	.wait_end = capped_wait_end,
	.sigchld = capped_sigchld,
	.child_lost = capped_child_lost,
	.hang = capped_hang,
	.suppressed = capped_suppressed,
	.hang_end = capped_hang_end,
};

#define REC_NAME(e, name) [e] = name,
static const char *rec_name(const char *const *names, size_t n, unsigned v)
{
	return v < n && names[v] ? names[v] : "unknown";
}

const char *rec_ended_by_name(enum rec_ended_by v)
{
	static const char *const names[] = { REC_ENDED_BY(REC_NAME) };
	return rec_name(names, sizeof(names) / sizeof(names[0]), v);
}

const char *rec_lost_cause_name(enum rec_lost_cause v)
{
	static const char *const names[] = { REC_LOST_CAUSES(REC_NAME) };
	return rec_name(names, sizeof(names) / sizeof(names[0]), v);
}

const char *rec_sigchld_action_name(enum rec_sigchld_action v)
{
	static const char *const names[] = { REC_SIGCHLD_ACTIONS(REC_NAME) };
	return rec_name(names, sizeof(names) / sizeof(names[0]), v);
}

const char *rec_scope_name(enum rec_scope v)
{
	static const char *const names[] = { REC_SCOPES(REC_NAME) };
	return rec_name(names, sizeof(names) / sizeof(names[0]), v);
}

void futex_op_name(uint32_t op, char *buf, size_t len)
{
	static const char *const names[] = {
		[PH_FUTEX_WAIT] = "FUTEX_WAIT", [1] = "FUTEX_WAKE", [2] = "FUTEX_FD",
		[3] = "FUTEX_REQUEUE", [4] = "FUTEX_CMP_REQUEUE", [5] = "FUTEX_WAKE_OP",
		[PH_FUTEX_LOCK_PI] = "FUTEX_LOCK_PI", [7] = "FUTEX_UNLOCK_PI", [8] = "FUTEX_TRYLOCK_PI",
		[PH_FUTEX_WAIT_BITSET] = "FUTEX_WAIT_BITSET", [10] = "FUTEX_WAKE_BITSET",
		[PH_FUTEX_WAIT_REQUEUE_PI] = "FUTEX_WAIT_REQUEUE_PI", [12] = "FUTEX_CMP_REQUEUE_PI",
		[PH_FUTEX_LOCK_PI2] = "FUTEX_LOCK_PI2",
	};
	if (op == PH_OP_FUTEX_WAITV) {
		snprintf(buf, len, "futex_waitv");
		return;
	}
	if (op == PH_OP_FUTEX_WAIT2) {
		snprintf(buf, len, "futex_wait");
		return;
	}
	if (op == PH_OP_CHILD_WAIT4 || op == PH_OP_CHILD_WAITID) {
		snprintf(buf, len, op == PH_OP_CHILD_WAIT4 ? "wait4" : "waitid");
		return;
	}
	uint32_t cmd = op & (uint32_t)PH_FUTEX_CMD_MASK;
	const char *name = cmd < sizeof(names) / sizeof(names[0]) ? names[cmd] : NULL;
	if (!name) {
		snprintf(buf, len, "0x%x", op);
		return;
	}
	snprintf(buf, len, "%s%s%s", name, (op & PH_FUTEX_PRIVATE_FLAG) ? "_PRIVATE" : "",
		 (op & PH_FUTEX_CLOCK_REALTIME) ? "|FUTEX_CLOCK_REALTIME" : "");
}
