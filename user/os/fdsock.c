/* fdsock: what a socket fd of a watched process is (see fddesc.h for the contract and
 * fddesc_int.h for what the describer's files share). Owns: asking the socket itself
 * through a pidfd_getfd(2) duplicate (family, protocol, addresses, TCP state, a unix
 * socket's SO_PEERCRED peer, SO_RCVTIMEO/SO_SNDTIMEO), and, without a duplicate, the
 * target's /proc/PID/net/{tcp,tcp6,udp,udp6,unix} tables (read once per fd_ctx, bounded by
 * FD_TABLE_BYTES).
 * Kernel facts used (Linux 4.x-6.18, x86_64):
 *  - /proc/PID/net/{tcp,udp}: "sl local rem st tx:rx tr:when retr uid timeout inode ...",
 *    addresses as %08X of the __be32 read as a host u32, ports %04X in host order (tcp6/udp6:
 *    four such u32s); st is enum tcp_state (net/ipv4/tcp_ipv4.c get_tcp4_sock); the tables
 *    are those of the task's network namespace;
 *  - /proc/PID/net/unix: "Num RefCount Protocol Flags Type St Inode Path" (net/unix/af_unix.c);
 *  - pidfd_getfd(2) (5.6+) duplicates a target's fd (PTRACE_MODE_ATTACH_REALCREDS:
 *    CAP_SYS_PTRACE), SO_PEERCRED gives a unix socket's peer pid at connect/socketpair time
 *    in the caller's pid namespace. */
#include "fddesc_int.h"

#include <arpa/inet.h>
#include <stddef.h>
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

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

static const char *const table_file[T_NTABLES] = { "tcp", "tcp6", "udp", "udp6" };
static const char *const table_type[T_NTABLES] = { "tcp", "tcp6", "udp", "udp6" };

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
		char *text = fd_read_bounded(path, FD_TABLE_BYTES, &len);
		if (!text)
			continue;
		bool v6 = t == T_TCP6 || t == T_UDP6;
		const char *line = strchr(text, '\n'); /* the header */
		while (line && *++line) {
			const char *s = fd_skip_fields(line, 1); /* "sl:" */
			struct inet_ent e = { .table = (uint8_t)t, .v6 = v6 };
			if (parse_addr(&s, v6, e.laddr, &e.lport) && parse_addr(&s, v6, e.raddr, &e.rport)) {
				char *end;
				e.state = (uint8_t)strtoul(s, &end, 16);
				s = fd_skip_fields(end, 5); /* tx:rx tr:when retrnsmt uid timeout */
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
	c->unix_text = fd_read_bounded(path, FD_TABLE_BYTES, &len);
	if (!c->unix_text)
		return;
	char *line = strchr(c->unix_text, '\n');
	while (line && *++line) {
		/* Num: RefCount Protocol Flags Type St Inode [Path] */
		const char *s = fd_skip_fields(line, 6);
		char *end;
		struct unix_ent e = { 0 };
		e.listening = (strtoul(fd_skip_fields(line, 3), NULL, 16) & 0x10000) != 0;
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
	int pfd = fd_ensure_pidfd(c);
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
			fd_read_comm(cr.pid, d->peer_comm, sizeof(d->peer_comm));
		}
		ok = dom != 0;
	}
	close(s);
	return ok;
}

void fd_describe_socket(struct fd_ctx *c, int fd, struct fd_desc *d)
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

