/* fddesc: what one file descriptor of a watched process is (see fddesc.h): the context
 * of one snapshot, the fd's kind, files and their lock holders, epoll's targets, phrases.
 * Sockets are fdsock.c's, a pipe's other end fdpipe.c's (shared parts: fddesc_int.h).
 * Kernel facts used (Linux 4.x-6.18, x86_64):
 *  - /proc/PID/fd/N is a link whose text is "socket:[INODE]", "pipe:[INODE]",
 *    "anon_inode:[eventfd]" (or "anon_inode:inotify"), or the file's path (fs/proc/fd.c,
 *    d_path of the file; dentry names of sockfs/pipefs/anon_inodefs);
 *  - /proc/PID/fdinfo/EPFD: "tfd: %8d events: %8x data: ..." per watched fd (fs/eventpoll.c);
 *  - /proc/locks: "N: [-> ]FLOCK|POSIX|OFDLCK ADVISORY READ|WRITE PID MAJ:MIN:INO START END"
 *    with "-> " for a blocked waiter, pids in the reader's pid namespace (fs/locks.c). */
#include "fddesc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Up to cap bytes of a /proc file, NUL-terminated (malloc'd; *len bytes), or NULL. A file
 * longer than cap is cut at its last whole line. */
char *fd_read_bounded(const char *path, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t sz = 0, alloc = 16384;
	char *buf = malloc(alloc + 1);
	bool cut = false;
	while (buf) {
		if (sz == alloc) {
			if (alloc >= cap) {
				cut = true;
				break;
			}
			size_t na = alloc * 2 > cap ? cap : alloc * 2;
			char *nb = realloc(buf, na + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			alloc = na;
		}
		ssize_t n = read(fd, buf + sz, alloc - sz);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		sz += (size_t)n;
	}
	close(fd);
	if (!buf)
		return NULL;
	if (cut) {
		while (sz > 0 && buf[sz - 1] != '\n')
			sz--;
	}
	buf[sz] = '\0';
	*len = sz;
	return buf;
}

struct fd_ctx *fd_ctx_new(pid_t pid)
{
	struct fd_ctx *c = calloc(1, sizeof(*c));
	if (c) {
		c->pid = pid;
		c->pidfd = -1;
	}
	return c;
}

void fd_ctx_free(struct fd_ctx *c)
{
	if (!c)
		return;
	if (c->pidfd >= 0)
		close(c->pidfd);
	free(c->inet);
	free(c->unx);
	free(c->unix_text);
	free(c->locks);
	fdpipe_free(c->pipes);
	free(c);
}

/* Skip n whitespace-separated fields. */
const char *fd_skip_fields(const char *s, int n)
{
	for (int i = 0; i < n && *s && *s != '\n'; i++) {
		while (*s == ' ')
			s++;
		while (*s && *s != ' ' && *s != '\n')
			s++;
	}
	while (*s == ' ')
		s++;
	return s;
}

int fd_ensure_pidfd(struct fd_ctx *c)
{
	if (c->pidfd == -1) {
		int fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
		c->pidfd = fd >= 0 ? fd : -2;
	}
	return c->pidfd;
}

void fd_read_comm(pid_t pid, char *buf, size_t len)
{
	char path[48];
	size_t n;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	char *t = fd_read_bounded(path, 64, &n);
	buf[0] = '\0';
	if (!t)
		return;
	if (n && t[n - 1] == '\n')
		t[n - 1] = '\0';
	snprintf(buf, len, "%s", t);
	free(t);
}

static void load_locks(struct fd_ctx *c)
{
	size_t len;
	c->locks_loaded = true;
	c->locks = fd_read_bounded("/proc/locks", FD_LOCKS_BYTES, &len);
}

/* A process holding a lock on the file (dev, ino): the first lock of /proc/locks on it
 * that is not a blocked waiter's. */
static void find_lock_holder(struct fd_ctx *c, unsigned maj, unsigned mnr, uint64_t ino,
			     struct fd_desc *d)
{
	if (!c->locks_loaded)
		load_locks(c);
	for (const char *line = c->locks; line && *line;) {
		const char *nl = strchr(line, '\n');
		const char *s = fd_skip_fields(line, 1); /* "N:" */
		bool blocked = strncmp(s, "->", 2) == 0;
		if (!blocked) {
			s = fd_skip_fields(s, 3); /* FLOCK ADVISORY WRITE */
			char *end;
			long pid = strtol(s, &end, 10);
			unsigned a, b;
			unsigned long long i;
			if (end != s && sscanf(end, " %x:%x:%llu", &a, &b, &i) == 3 && a == maj &&
			    b == mnr && i == ino && pid > 0) {
				d->lock_pid = (pid_t)pid;
				d->lock_is_self = (pid_t)pid == c->pid;
				fd_read_comm(d->lock_pid, d->lock_comm, sizeof(d->lock_comm));
				return;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
}

void fd_describe(struct fd_ctx *c, int fd, bool want_lock, struct fd_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->fd = fd;
	d->self_pid = c->pid;
	d->rcvtimeo_s = d->sndtimeo_s = -1;
	snprintf(d->type, sizeof(d->type), "unknown");
	if (fd < 0)
		return;
	char path[64], link[256];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)c->pid, fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return;
	link[n] = '\0';
	unsigned long long ino;
	char tail;
	if (sscanf(link, "socket:[%llu%c", &ino, &tail) == 2 && tail == ']') {
		d->inode = ino;
		fd_describe_socket(c, fd, d);
		return;
	}
	if (sscanf(link, "pipe:[%llu%c", &ino, &tail) == 2 && tail == ']') {
		d->inode = ino;
		snprintf(d->type, sizeof(d->type), "pipe");
		fd_describe_pipe(c, fd, d);
		return;
	}
	if (strncmp(link, "anon_inode:", 11) == 0) {
		static const char *const kinds[][2] = {
			{ "eventfd", "eventfd" }, { "eventpoll", "epoll" }, { "signalfd", "signalfd" },
			{ "timerfd", "timerfd" }, { "inotify", "inotify" }, { "pidfd", "pidfd" },
		};
		snprintf(d->type, sizeof(d->type), "anon");
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (strstr(link + 11, kinds[k][0]))
				snprintf(d->type, sizeof(d->type), "%s", kinds[k][1]);
		return;
	}
	size_t pl = strnlen(link, sizeof(d->path) - 1); /* a longer path is cut */
	memcpy(d->path, link, pl);
	d->path[pl] = '\0';
	snprintf(d->type, sizeof(d->type), "file");
	/* the file behind the link, from cached attributes only (no FUSE/NFS round trip) */
	struct statx sx;
	if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx) != 0)
		return;
	d->inode = sx.stx_ino;
	switch (sx.stx_mode & S_IFMT) {
	case S_IFIFO:
		snprintf(d->type, sizeof(d->type), "fifo");
		break;
	case S_IFCHR:
		snprintf(d->type, sizeof(d->type), "%s",
			 strncmp(link, "/dev/pts/", 9) == 0 || strncmp(link, "/dev/tty", 8) == 0 ? "tty" : "char");
		break;
	case S_IFBLK:
		snprintf(d->type, sizeof(d->type), "block");
		break;
	case S_IFDIR:
		snprintf(d->type, sizeof(d->type), "dir");
		break;
	default:
		break;
	}
	if (want_lock)
		find_lock_holder(c, sx.stx_dev_major, sx.stx_dev_minor, sx.stx_ino, d);
}

int fd_epoll_targets(struct fd_ctx *c, int epfd, int *fds, unsigned *events, int max)
{
	char path[64];
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)c->pid, epfd);
	char *text = fd_read_bounded(path, 1u << 20, &len);
	if (!text)
		return -1;
	int total = 0;
	for (const char *s = strstr(text, "tfd:"); s; s = strstr(s + 4, "tfd:")) {
		int tfd;
		unsigned ev;
		if (sscanf(s, "tfd: %d events: %x", &tfd, &ev) != 2)
			continue;
		if (total < max) {
			fds[total] = tfd;
			events[total] = ev;
		}
		total++;
	}
	free(text);
	return total;
}

/* "pipe (fd 3), write end held by 'sleep' (pid 12)", "... by itself ('python3' pid 10)",
 * "... by 'a' (pid 12) and 2 more", "... held by no related process found" */
static void pipe_phrase(const struct fd_desc *d, char *buf, size_t len)
{
	const char *other = d->pipe_end == FD_END_READ ? "write" : "read";
	if (!d->peers_searched) {
		snprintf(buf, len, "pipe (fd %d)", d->fd);
	} else if (!d->npeers) {
		snprintf(buf, len, "pipe (fd %d), its %s end held by no related process found%s", d->fd,
			 other, d->peers_cut ? " (search cut)" : "");
	} else {
		const struct fd_peer *p = &d->peers[0];
		char more[32] = "";
		if (d->peers_total > 1)
			snprintf(more, sizeof(more), " and %u more", (unsigned)d->peers_total - 1);
		if (p->pid == d->self_pid)
			snprintf(buf, len, "pipe (fd %d), its %s end held by itself ('%s' pid %d)%s", d->fd,
				 other, p->comm, (int)p->pid, more);
		else
			snprintf(buf, len, "pipe (fd %d), its %s end held by '%s' (pid %d)%s", d->fd, other,
				 p->comm, (int)p->pid, more);
	}
}

void fd_phrase(const struct fd_desc *d, char *buf, size_t len)
{
	const char *t = d->type;
	if (!strcmp(t, "tcp") || !strcmp(t, "tcp6") || !strcmp(t, "udp") || !strcmp(t, "udp6")) {
		char up[8];
		size_t i = 0;
		for (; t[i] && i < sizeof(up) - 1; i++)
			up[i] = (char)(t[i] >= 'a' && t[i] <= 'z' ? t[i] - 32 : t[i]);
		up[i] = '\0';
		if (d->remote[0])
			snprintf(buf, len, "%s %s -> %s%s%s%s", up, d->local, d->remote,
				 d->state[0] ? " (" : "", d->state, d->state[0] ? ")" : "");
		else
			snprintf(buf, len, "%s %s%s%s%s", up, d->local, d->state[0] ? " (" : "", d->state,
				 d->state[0] ? ")" : "");
	} else if (!strcmp(t, "unix")) {
		char peer[64] = "";
		if (d->peer_pid > 0)
			snprintf(peer, sizeof(peer), ", peer '%s' pid %d", d->peer_comm, (int)d->peer_pid);
		snprintf(buf, len, "unix socket%s%s%s%s%s", d->local[0] ? " " : "", d->local,
			 d->remote[0] ? " -> " : "", d->remote, peer);
	} else if (!strcmp(t, "pipe")) {
		pipe_phrase(d, buf, len);
	} else if (d->path[0]) {
		char lk[80] = "";
		if (d->lock_pid > 0)
			snprintf(lk, sizeof(lk), ", locked by %s'%s' (pid %d)",
				 d->lock_is_self ? "itself: " : "", d->lock_comm, (int)d->lock_pid);
		snprintf(buf, len, "%s %s%s", t, d->path, lk);
	} else {
		snprintf(buf, len, "%s (fd %d)", t, d->fd);
	}
}
