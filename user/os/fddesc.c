/* fddesc: what one file descriptor of a watched process is (see fddesc.h).
 * Kernel facts used (Linux 4.x-6.18, x86_64):
 *  - /proc/PID/fd/N is a link whose text is "socket:[INODE]", "pipe:[INODE]",
 *    "anon_inode:[eventfd]" (or "anon_inode:inotify"), or the file's path (fs/proc/fd.c,
 *    d_path of the file; dentry names of sockfs/pipefs/anon_inodefs);
 *  - /proc/PID/net/{tcp,udp}: "sl local rem st tx:rx tr:when retr uid timeout inode ...",
 *    addresses as %08X of the __be32 read as a host u32, ports %04X in host order (tcp6/udp6:
 *    four such u32s); st is enum tcp_state (net/ipv4/tcp_ipv4.c get_tcp4_sock); the tables
 *    are those of the task's network namespace;
 *  - /proc/PID/net/unix: "Num RefCount Protocol Flags Type St Inode Path" (net/unix/af_unix.c);
 *  - /proc/PID/fdinfo/EPFD: "tfd: %8d events: %8x data: ..." per watched fd (fs/eventpoll.c);
 *  - /proc/locks: "N: [-> ]FLOCK|POSIX|OFDLCK ADVISORY READ|WRITE PID MAJ:MIN:INO START END"
 *    with "-> " for a blocked waiter, pids in the reader's pid namespace (fs/locks.c);
 *  - pidfd_getfd(2) (5.6+) duplicates a target's fd (PTRACE_MODE_ATTACH_REALCREDS:
 *    CAP_SYS_PTRACE), SO_PEERCRED gives a unix socket's peer pid at connect/socketpair time
 *    in the caller's pid namespace. */
#include "fddesc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

enum { T_TCP, T_TCP6, T_UDP, T_UDP6, T_NTABLES };
static const char *const table_file[T_NTABLES] = { "tcp", "tcp6", "udp", "udp6" };
static const char *const table_type[T_NTABLES] = { "tcp", "tcp6", "udp", "udp6" };

struct inet_ent {
	uint64_t inode;
	uint8_t table, state, v6;
	uint8_t laddr[16], raddr[16];
	uint16_t lport, rport;
};

struct unix_ent {
	uint64_t inode;
	uint32_t path_off, path_len; /* in unix_text; len 0: no path */
	bool listening;              /* Flags has __SO_ACCEPTCON (0x10000, af_unix.c) */
};

struct fd_ctx {
	pid_t pid;
	int pidfd;             /* -1 unopened, -2 failed */
	bool inet_loaded, unix_loaded, locks_loaded;
	struct inet_ent *inet;
	size_t ninet;
	struct unix_ent *unx;
	size_t nunix;
	char *unix_text;
	char *locks;           /* /proc/locks, NUL-terminated, or NULL */
};

/* Up to cap bytes of a /proc file, NUL-terminated (malloc'd; *len bytes), or NULL. A file
 * longer than cap is cut at its last whole line. */
static char *read_bounded(const char *path, size_t cap, size_t *len)
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
	free(c);
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* "0100007F:115C" (v4) or 32 hex digits ":" port (v6) at *p; advances *p. */
static bool parse_addr(const char **p, bool v6, uint8_t *addr, uint16_t *port)
{
	const char *s = *p;
	while (*s == ' ')
		s++;
	int words = v6 ? 4 : 1;
	memset(addr, 0, 16);
	for (int w = 0; w < words; w++) {
		uint32_t v = 0;
		for (int k = 0; k < 8; k++) {
			int h = hexval((unsigned char)*s++);
			if (h < 0)
				return false;
			v = v << 4 | (uint32_t)h;
		}
		/* the __be32 was printed as a host (little-endian) u32 */
		addr[w * 4 + 0] = (uint8_t)v;
		addr[w * 4 + 1] = (uint8_t)(v >> 8);
		addr[w * 4 + 2] = (uint8_t)(v >> 16);
		addr[w * 4 + 3] = (uint8_t)(v >> 24);
	}
	if (*s++ != ':')
		return false;
	uint32_t pv = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval((unsigned char)*s++);
		if (h < 0)
			return false;
		pv = pv << 4 | (uint32_t)h;
	}
	*port = (uint16_t)pv;
	*p = s;
	return true;
}

/* Skip n whitespace-separated fields. */
static const char *skip_fields(const char *s, int n)
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

static int cmp_inet(const void *a, const void *b)
{
	const struct inet_ent *x = a, *y = b;
	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

static void load_inet(struct fd_ctx *c)
{
	c->inet_loaded = true;
	size_t cap = 0;
	for (int t = 0; t < T_NTABLES; t++) {
		char path[64];
		size_t len;
		snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)c->pid, table_file[t]);
		char *text = read_bounded(path, FD_TABLE_BYTES, &len);
		if (!text)
			continue;
		bool v6 = t == T_TCP6 || t == T_UDP6;
		const char *line = strchr(text, '\n'); /* the header */
		while (line && *++line) {
			const char *s = skip_fields(line, 1); /* "sl:" */
			struct inet_ent e = { .table = (uint8_t)t, .v6 = v6 };
			if (parse_addr(&s, v6, e.laddr, &e.lport) && parse_addr(&s, v6, e.raddr, &e.rport)) {
				char *end;
				e.state = (uint8_t)strtoul(s, &end, 16);
				s = skip_fields(end, 5); /* tx:rx tr:when retrnsmt uid timeout */
				e.inode = strtoull(s, &end, 10);
				if (end != s && e.inode) {
					if (c->ninet == cap) {
						size_t nc = cap ? cap * 2 : 256;
						struct inet_ent *n = realloc(c->inet, nc * sizeof(*n));
						if (!n)
							break;
						c->inet = n;
						cap = nc;
					}
					c->inet[c->ninet++] = e;
				}
			}
			line = strchr(line, '\n');
		}
		free(text);
	}
	if (c->ninet)
		qsort(c->inet, c->ninet, sizeof(*c->inet), cmp_inet);
}

static int cmp_unix(const void *a, const void *b)
{
	const struct unix_ent *x = a, *y = b;
	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

static void load_unix(struct fd_ctx *c)
{
	c->unix_loaded = true;
	char path[64];
	size_t len, cap = 0;
	snprintf(path, sizeof(path), "/proc/%d/net/unix", (int)c->pid);
	c->unix_text = read_bounded(path, FD_TABLE_BYTES, &len);
	if (!c->unix_text)
		return;
	char *line = strchr(c->unix_text, '\n');
	while (line && *++line) {
		/* Num: RefCount Protocol Flags Type St Inode [Path] */
		const char *s = skip_fields(line, 6);
		char *end;
		struct unix_ent e = { 0 };
		e.listening = (strtoul(skip_fields(line, 3), NULL, 16) & 0x10000) != 0;
		e.inode = strtoull(s, &end, 10);
		char *nl = strchr(end, '\n');
		if (end != s && e.inode) {
			const char *pth = end;
			while (*pth == ' ')
				pth++;
			const char *pend = nl ? nl : pth + strlen(pth);
			e.path_off = (uint32_t)(pth - c->unix_text);
			e.path_len = (uint32_t)(pend - pth);
			if (c->nunix == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct unix_ent *n = realloc(c->unx, nc * sizeof(*n));
				if (!n)
					break;
				c->unx = n;
				cap = nc;
			}
			c->unx[c->nunix++] = e;
		}
		line = nl;
	}
	if (c->nunix)
		qsort(c->unx, c->nunix, sizeof(*c->unx), cmp_unix);
}

static const char *tcp_state(unsigned st)
{
	static const char *const names[] = { "", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
					     "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
					     "LISTEN", "CLOSING", "NEW_SYN_RECV" };
	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "";
}

static void fmt_addr(const uint8_t *a, bool v6, uint16_t port, char *out, size_t len)
{
	char s[INET6_ADDRSTRLEN] = "?";
	inet_ntop(v6 ? AF_INET6 : AF_INET, a, s, sizeof(s));
	if (v6)
		snprintf(out, len, "[%s]:%u", s, port);
	else
		snprintf(out, len, "%s:%u", s, port);
}

static bool zero16(const uint8_t *a)
{
	for (int i = 0; i < 16; i++)
		if (a[i])
			return false;
	return true;
}

static int ensure_pidfd(struct fd_ctx *c)
{
	if (c->pidfd == -1) {
		int fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
		c->pidfd = fd >= 0 ? fd : -2;
	}
	return c->pidfd;
}

static void read_comm(pid_t pid, char *buf, size_t len)
{
	char path[48];
	size_t n;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	char *t = read_bounded(path, 64, &n);
	buf[0] = '\0';
	if (!t)
		return;
	if (n && t[n - 1] == '\n')
		t[n - 1] = '\0';
	snprintf(buf, len, "%s", t);
	free(t);
}

static void fmt_sockaddr(const struct sockaddr_storage *ss, socklen_t l, char *out, size_t len)
{
	out[0] = '\0';
	if (ss->ss_family == AF_INET && l >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const void *)ss;
		fmt_addr((const uint8_t *)&a->sin_addr, false, ntohs(a->sin_port), out, len);
	} else if (ss->ss_family == AF_INET6 && l >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const void *)ss;
		fmt_addr((const uint8_t *)&a->sin6_addr, true, ntohs(a->sin6_port), out, len);
	} else if (ss->ss_family == AF_UNIX && l > offsetof(struct sockaddr_un, sun_path)) {
		const struct sockaddr_un *a = (const void *)ss;
		size_t n = l - offsetof(struct sockaddr_un, sun_path);
		if (n > sizeof(a->sun_path))
			n = sizeof(a->sun_path);
		const char *p = a->sun_path;
		char tmp[sizeof(a->sun_path) + 2];
		size_t k = 0;
		if (n && p[0] == '\0') { /* abstract: shown as @name, as /proc/net/unix does */
			tmp[k++] = '@';
			p++;
			n--;
		}
		for (size_t i = 0; i < n && p[i] && k < sizeof(tmp) - 1; i++)
			tmp[k++] = p[i];
		tmp[k] = '\0';
		snprintf(out, len, "%s", tmp);
	}
}

/* A duplicate of the target's socket fd (pidfd_getfd), checked to be the socket with that
 * inode (the target may have replaced the fd meanwhile): its family and protocol, both
 * addresses, the TCP state, a unix socket's peer process, the kernel timeouts. Asking the
 * socket itself costs a few system calls; /proc/PID/net/tcp walks the whole established
 * hash (milliseconds on a big host), so the tables are only the fallback. true when it
 * answered. */
static bool socket_options(struct fd_ctx *c, int fd, struct fd_desc *d)
{
	int pfd = ensure_pidfd(c);
	if (pfd < 0)
		return false;
	int s = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	if (s < 0)
		return false;
	struct stat st;
	bool ok = fstat(s, &st) == 0 && S_ISSOCK(st.st_mode) && (uint64_t)st.st_ino == d->inode;
	if (ok) {
		int dom = 0, proto = 0, type = 0;
		socklen_t l = sizeof(dom);
		getsockopt(s, SOL_SOCKET, SO_DOMAIN, &dom, &l);
		l = sizeof(proto);
		getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &l);
		l = sizeof(type);
		getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &l);
		bool inet = dom == AF_INET || dom == AF_INET6;
		if (inet && proto == IPPROTO_TCP)
			snprintf(d->type, sizeof(d->type), "%s", dom == AF_INET ? "tcp" : "tcp6");
		else if (inet && proto == IPPROTO_UDP)
			snprintf(d->type, sizeof(d->type), "%s", dom == AF_INET ? "udp" : "udp6");
		else if (dom == AF_UNIX)
			snprintf(d->type, sizeof(d->type), "unix");
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		l = sizeof(ss);
		if (getsockname(s, (struct sockaddr *)&ss, &l) == 0)
			fmt_sockaddr(&ss, l, d->local, sizeof(d->local));
		memset(&ss, 0, sizeof(ss));
		l = sizeof(ss);
		if (getpeername(s, (struct sockaddr *)&ss, &l) == 0)
			fmt_sockaddr(&ss, l, d->remote, sizeof(d->remote));
		if (inet && proto == IPPROTO_TCP) {
			struct tcp_info ti;
			l = sizeof(ti);
			if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0)
				snprintf(d->state, sizeof(d->state), "%s", tcp_state(ti.tcpi_state));
		}
		struct timeval tv;
		l = sizeof(tv);
		if (getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l) == 0)
			d->rcvtimeo_s = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
		l = sizeof(tv);
		if (getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &l) == 0)
			d->sndtimeo_s = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
		int acc = 0;
		l = sizeof(acc);
		d->listening = getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0 && acc;
		struct ucred cr;
		l = sizeof(cr);
		/* a listening socket has no peer: SO_PEERCRED names the process that listened */
		if (dom == AF_UNIX && !d->listening &&
		    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &l) == 0 && cr.pid > 0) {
			d->peer_pid = cr.pid;
			read_comm(cr.pid, d->peer_comm, sizeof(d->peer_comm));
		}
		ok = dom != 0;
	}
	close(s);
	return ok;
}

static void describe_socket(struct fd_ctx *c, int fd, struct fd_desc *d)
{
	snprintf(d->type, sizeof(d->type), "socket");
	if (socket_options(c, fd, d))
		return;
	/* no duplicate (no pidfd_getfd before 5.6, or not allowed): the target's tables */
	if (!c->inet_loaded)
		load_inet(c);
	size_t lo = 0, hi = c->ninet;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->inet[mid].inode < d->inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->ninet && c->inet[lo].inode == d->inode) {
		const struct inet_ent *e = &c->inet[lo];
		bool tcp = e->table == T_TCP || e->table == T_TCP6;
		snprintf(d->type, sizeof(d->type), "%s", table_type[e->table]);
		fmt_addr(e->laddr, e->v6, e->lport, d->local, sizeof(d->local));
		if (e->rport || !zero16(e->raddr))
			fmt_addr(e->raddr, e->v6, e->rport, d->remote, sizeof(d->remote));
		if (tcp)
			snprintf(d->state, sizeof(d->state), "%s", tcp_state(e->state));
		d->listening = tcp && e->state == 10; /* TCP_LISTEN */
		return;
	}
	if (!c->unix_loaded)
		load_unix(c);
	lo = 0;
	hi = c->nunix;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->unx[mid].inode < d->inode)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->nunix && c->unx[lo].inode == d->inode) {
		const struct unix_ent *e = &c->unx[lo];
		snprintf(d->type, sizeof(d->type), "unix");
		d->listening = e->listening;
		if (e->path_len) {
			size_t n = e->path_len < sizeof(d->local) - 1 ? e->path_len : sizeof(d->local) - 1;
			memcpy(d->local, c->unix_text + e->path_off, n);
			d->local[n] = '\0';
		}
		return;
	}
}

static void load_locks(struct fd_ctx *c)
{
	size_t len;
	c->locks_loaded = true;
	c->locks = read_bounded("/proc/locks", FD_LOCKS_BYTES, &len);
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
		const char *s = skip_fields(line, 1); /* "N:" */
		bool blocked = strncmp(s, "->", 2) == 0;
		if (!blocked) {
			s = skip_fields(s, 3); /* FLOCK ADVISORY WRITE */
			char *end;
			long pid = strtol(s, &end, 10);
			unsigned a, b;
			unsigned long long i;
			if (end != s && sscanf(end, " %x:%x:%llu", &a, &b, &i) == 3 && a == maj &&
			    b == mnr && i == ino && pid > 0) {
				d->lock_pid = (pid_t)pid;
				d->lock_is_self = (pid_t)pid == c->pid;
				read_comm(d->lock_pid, d->lock_comm, sizeof(d->lock_comm));
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
		describe_socket(c, fd, d);
		return;
	}
	if (sscanf(link, "pipe:[%llu%c", &ino, &tail) == 2 && tail == ']') {
		d->inode = ino;
		snprintf(d->type, sizeof(d->type), "pipe");
		/* peer_pid/peer_comm of a pipe (the process holding its other end) are left 0
		 * here: the lead wires F1's pipe-holders function (issue 15) in at this point */
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
	char *text = read_bounded(path, 1u << 20, &len);
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
		snprintf(buf, len, "pipe (fd %d)", d->fd);
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
