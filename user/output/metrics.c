/* metrics: Prometheus exposition over a tiny non-blocking HTTP responder (see metrics.h). */
#include "metrics.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "limitcfg.h"
#include "loader.h"
#include "output.h" /* mono_now_ns */
#include "peerid.h"
#include "ratelimit.h"
#include "strbuf.h"

/* Slots are shared fairly: at most limits.metrics_per_peer at once per peer (a local user,
 * told apart by the owner of its socket, or a remote address: peerid.c), the headers must
 * arrive within limits.metrics_header_s, and a newcomer whose peer holds fewer slots takes
 * the slot of the oldest unfinished request of the peer that holds the most. So slow
 * clients of one user (or a few) never keep a scrape from another out. */
#define MAX_CLIENTS 16
#define MAX_REQUEST 4096               /* request line + headers; larger: 431 and close */
#define CLIENT_DEADLINE_NS 5000000000ull /* a whole exchange, read to last byte written */

enum client_state { C_FREE, C_READING, C_WRITING };

struct client {
	int fd;
	enum client_state state;
	uint64_t deadline_ns;
	uint64_t accepted_ns;
	char peer[64]; /* peer_identity() */
	char req[MAX_REQUEST];
	size_t req_len;
	struct strbuf out;
	size_t out_off;
	short revents;
};

struct metrics {
	int listen_fd;
	short listen_revents;
	char bound[80];
	metrics_view_fn view;
	void *view_ctx;
	struct client clients[MAX_CLIENTS];
	struct strbuf body;
	double start_unix_s;
};

static int g_bpf_stats_fd = -1;

/* ---------------------------------------------------------------- address */

/* Split HOST:PORT; host may be empty or [IPv6]. 0 or -1. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	size_t hl;
	const char *h = addr;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':')
			return -1;
		h = addr + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - addr);
		if (memchr(addr, ':', hl))
			return -1; /* a bare IPv6 address needs brackets */
	}
	const char *p = colon + 1;
	size_t pl = strlen(p);
	if (hl >= hostlen || pl == 0 || pl >= portlen || pl > 5)
		return -1;
	for (size_t i = 0; i < pl; i++)
		if (p[i] < '0' || p[i] > '9')
			return -1;
	if (atoi(p) > 65535)
		return -1;
	for (size_t i = 0; i < hl; i++)
		if (h[i] == ' ' || h[i] == '/' || h[i] == '[' || h[i] == ']')
			return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memcpy(port, p, pl + 1);
	return 0;
}

int metrics_addr_valid(const char *addr)
{
	char host[256], port[8];
	return split_addr(addr, host, sizeof(host), port, sizeof(port));
}

static void format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%d", ip, port);
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%d", ip, port);
	}
}

struct metrics *metrics_open(const char *addr, metrics_view_fn view, void *ctx, char *err,
			     size_t errlen)
{
	char host[256], port[8];
	if (split_addr(addr, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(err, errlen, "invalid --metrics-addr '%s': expected HOST:PORT, e.g. 127.0.0.1:9464", addr);
		return NULL;
	}
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_ADDRCONFIG;
	int gai = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "cannot listen on %s for metrics: %s", addr, gai_strerror(gai));
		return NULL;
	}
	int fd = -1, saved = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on %s for metrics: %s", addr, strerror(saved));
		return NULL;
	}
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->listen_fd = fd;
	m->view = view;
	m->view_ctx = ctx;
	for (int i = 0; i < MAX_CLIENTS; i++)
		m->clients[i].fd = -1;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		format_sockaddr((struct sockaddr *)&ss, m->bound, sizeof(m->bound));
	else
		snprintf(m->bound, sizeof(m->bound), "%s", addr);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	m->start_unix_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	return m;
}

const char *metrics_bound_addr(const struct metrics *m)
{
	return m->bound;
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_FREE;
	c->req_len = 0;
	c->out_off = 0;
	sb_free(&c->out);
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		client_close(&m->clients[i]);
	close(m->listen_fd);
	sb_free(&m->body);
	free(m);
}

/* ---------------------------------------------------------------- --bpf-stats */

int metrics_enable_bpf_stats(char *err, size_t errlen)
{
	if (g_bpf_stats_fd >= 0)
		return 0;
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (fd < 0) {
		snprintf(err, errlen, "--bpf-stats: cannot enable BPF run-time statistics: %s%s",
			 strerror(-fd), -fd == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
		return -1;
	}
	int flags = fcntl(fd, F_GETFD);
	if (flags >= 0)
		fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	g_bpf_stats_fd = fd; /* kept open until exit: the kernel turns the stats off then */
	return 0;
}

/* The sysctl file shows only what was written to it, not a BPF_ENABLE_STATS holder. */
static int bpf_stats_enabled(void)
{
	if (g_bpf_stats_fd >= 0)
		return 1;
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "re");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v ? 1 : 0;
}

/* ---------------------------------------------------------------- exposition */

static void put_label_value(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sb_putc(sb, '\\'), sb_putc(sb, *s);
		else if (*s == '\n')
			sb_puts(sb, "\\n");
		else
			sb_putc(sb, *s);
	}
}

static void family(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct prog_ctx {
	struct strbuf *sb;
	bool time; /* run time rather than run count */
};

static void put_prog(void *arg, const char *name, int fd)
{
	struct prog_ctx *pc = arg;
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
		return;
	sb_puts(pc->sb, pc->time ? "pyhang_bpf_program_run_seconds_total{program=\""
				 : "pyhang_bpf_program_runs_total{program=\"");
	put_label_value(pc->sb, name);
	if (pc->time)
		sb_printf(pc->sb, "\"} %.9f\n", (double)info.run_time_ns / 1e9);
	else
		sb_printf(pc->sb, "\"} %llu\n", (unsigned long long)info.run_cnt);
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long long size = 0, rss = 0;
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void render(struct metrics *m, struct strbuf *sb)
{
	struct metrics_view c;
	memset(&c, 0, sizeof(c));
	m->view(m->view_ctx, &c);
	sb_reset(sb);

	struct utsname u;
	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	family(sb, "pyhang_build_info", "gauge",
	       "Always 1; labels: libbpf version, kernel release, long-wait scanner.");
	sb_printf(sb, "pyhang_build_info{libbpf=\"%s\",kernel=\"", libbpf_version_string());
	put_label_value(sb, u.release);
	sb_printf(sb, "\",scanner=\"%s\"} 1\n", loader_scan_mechanism(c.ld));

	family(sb, "pyhang_start_time_seconds", "gauge", "When tracing started, Unix time.");
	sb_printf(sb, "pyhang_start_time_seconds %.3f\n", m->start_unix_s);
	family(sb, "pyhang_threshold_seconds", "gauge", "Futex waits longer than this are reported.");
	sb_printf(sb, "pyhang_threshold_seconds %.9g\n", (double)c.threshold_ns / 1e9);

	family(sb, "pyhang_findings_total", "counter", "Events reported, by kind.");
#define COUNT(field, name)                                                                          \
	sb_printf(sb, "pyhang_findings_total{kind=\"%s\"} %llu\n", name, (unsigned long long)c.counts.field);
	REC_EVENT_COUNTS(COUNT)
#undef COUNT

	family(sb, "pyhang_open_long_waits", "gauge",
	       "Long waits reported and not ended yet (long_wait minus wait_end).");
	sb_printf(sb, "pyhang_open_long_waits %llu\n",
		  (unsigned long long)(c.counts.long_waits > c.counts.wait_ends ? c.counts.long_waits - c.counts.wait_ends : 0));

	family(sb, "pyhang_lost_events_total", "counter",
	       "Events that could not be recorded, by reason (as in the stop event's lost).");
#define LOSS(field, name, text)                                                                     \
	sb_printf(sb, "pyhang_lost_events_total{reason=\"%s\"} %llu\n", name, (unsigned long long)c.counts.field);
	REC_LOSS_REASONS(LOSS)
#undef LOSS

	family(sb, "pyhang_suppressed_events_total", "counter",
	       "Events held back by the per-process rate limits, by kind (reported in suppressed events).");
	for (unsigned k = 0; k < PH_RL_KINDS; k++)
		sb_printf(sb, "pyhang_suppressed_events_total{kind=\"%s\"} %llu\n", ratelimit_kind_name(k),
			  (unsigned long long)c.n_suppressed[k]);

	family(sb, "pyhang_bpf_stats_enabled", "gauge",
	       "1 when kernel.bpf_stats_enabled is on (--bpf-stats); BPF run counters stay 0 otherwise.");
	sb_printf(sb, "pyhang_bpf_stats_enabled %d\n", bpf_stats_enabled());
	struct prog_ctx pc = { .sb = sb, .time = false };
	family(sb, "pyhang_bpf_program_runs_total", "counter",
	       "Times each BPF program ran (kernel run_cnt; needs bpf_stats_enabled).");
	loader_for_each_prog(c.ld, put_prog, &pc);
	pc.time = true;
	family(sb, "pyhang_bpf_program_run_seconds_total", "counter",
	       "Time spent in each BPF program (kernel run_time_ns; needs bpf_stats_enabled).");
	loader_for_each_prog(c.ld, put_prog, &pc);

	struct rusage ru;
	double cpu = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	family(sb, "pyhang_process_cpu_seconds_total", "counter",
	       "User and system CPU time of the tracer itself (not of its BPF programs).");
	sb_printf(sb, "pyhang_process_cpu_seconds_total %.6f\n", cpu);
	family(sb, "pyhang_process_resident_memory_bytes", "gauge", "Resident set size of the tracer.");
	sb_printf(sb, "pyhang_process_resident_memory_bytes %llu\n", (unsigned long long)rss_bytes());
}

/* ---------------------------------------------------------------- HTTP */

static void respond(struct metrics *m, struct client *c)
{
	const char *status = "200 OK", *ctype = "text/plain; version=0.0.4; charset=utf-8";
	const char *body = NULL;
	size_t body_len = 0;
	bool head = false;

	char *eol = memchr(c->req, '\n', c->req_len);
	char line[256] = "";
	size_t ll = eol ? (size_t)(eol - c->req) : 0;
	if (ll >= sizeof(line))
		ll = sizeof(line) - 1;
	memcpy(line, c->req, ll);
	line[ll] = '\0';
	char method[16] = "", target[200] = "", version[16] = "";
	if (sscanf(line, "%15s %199s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		status = "400 Bad Request";
		ctype = "text/plain; charset=utf-8";
		body = "bad request\n";
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		status = "405 Method Not Allowed";
		ctype = "text/plain; charset=utf-8";
		body = "only GET and HEAD\n";
	} else {
		head = strcmp(method, "HEAD") == 0;
		char *q = strchr(target, '?');
		if (q)
			*q = '\0';
		if (strcmp(target, "/metrics") == 0) {
			render(m, &m->body);
			body = m->body.data ? m->body.data : "";
			body_len = m->body.len;
		} else if (strcmp(target, "/") == 0) {
			ctype = "text/plain; charset=utf-8";
			body = "pyhang-trace: metrics at /metrics\n";
		} else {
			status = "404 Not Found";
			ctype = "text/plain; charset=utf-8";
			body = "not found: try /metrics\n";
		}
	}
	if (body && !body_len)
		body_len = strlen(body);
	sb_reset(&c->out);
	sb_printf(&c->out, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		  "Connection: close\r\n\r\n", status, ctype, body_len);
	if (!head)
		sb_put(&c->out, body, body_len);
	c->state = C_WRITING;
	c->out_off = 0;
}

static void client_write(struct client *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				client_close(c);
			return; /* EAGAIN: wait for POLLOUT */
		}
		c->out_off += (size_t)n;
	}
	shutdown(c->fd, SHUT_WR);
	client_close(c);
}

static void client_read(struct metrics *m, struct client *c)
{
	for (;;) {
		if (c->req_len >= MAX_REQUEST) {
			static const char too_big[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
				"Content-Length: 0\r\nConnection: close\r\n\r\n";
			sb_reset(&c->out);
			sb_put(&c->out, too_big, sizeof(too_big) - 1);
			c->state = C_WRITING;
			client_write(c);
			return;
		}
		ssize_t n = recv(c->fd, c->req + c->req_len, MAX_REQUEST - c->req_len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				client_close(c);
			return;
		}
		if (n == 0) { /* peer closed before a full request */
			client_close(c);
			return;
		}
		size_t old = c->req_len;
		c->req_len += (size_t)n;
		/* the end of the headers: an empty line (CRLF CRLF, or bare LF LF) */
		size_t from = old > 3 ? old - 3 : 0;
		for (size_t i = from; i < c->req_len; i++) {
			if (c->req[i] != '\n')
				continue;
			bool crlf = i >= 3 && memcmp(c->req + i - 3, "\r\n\r\n", 4) == 0;
			bool lf = i >= 1 && c->req[i - 1] == '\n';
			if (crlf || lf) {
				/* the headers are in: the rest of the exchange may take up to the
				 * whole deadline (a big response to a slow reader) */
				c->deadline_ns = c->accepted_ns + CLIENT_DEADLINE_NS;
				respond(m, c);
				client_write(c);
				return;
			}
		}
	}
}

static uint64_t header_deadline_ns(void)
{
	uint64_t ns = (uint64_t)(limits.metrics_header_s * 1e9);
	return ns < CLIENT_DEADLINE_NS ? ns : CLIENT_DEADLINE_NS;
}

static unsigned peer_slots(const struct metrics *m, const char *peer)
{
	unsigned n = 0;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (m->clients[i].state != C_FREE && strcmp(m->clients[i].peer, peer) == 0)
			n++;
	return n;
}

/* A slot for a new connection of peer, or NULL to refuse it (see MAX_CLIENTS). */
static struct client *take_slot(struct metrics *m, const char *peer)
{
	unsigned mine = peer_slots(m, peer);
	if (mine >= limits.metrics_per_peer)
		return NULL;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (m->clients[i].state == C_FREE)
			return &m->clients[i];
	/* full: the oldest request still being read, of the peer with the most slots, if that
	 * is more than the newcomer's peer holds */
	struct client *victim = NULL;
	unsigned most = 0;
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &m->clients[i];
		if (c->state != C_READING)
			continue;
		unsigned n = peer_slots(m, c->peer);
		if (n > most || (n == most && c->accepted_ns < victim->accepted_ns)) {
			most = n;
			victim = c;
		}
	}
	if (!victim || most <= mine)
		return NULL;
	client_close(victim);
	return victim;
}

static void accept_clients(struct metrics *m)
{
	for (;;) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a transient error: try again on the next readiness */
		char peer[64];
		peer_identity(fd, peer, sizeof(peer));
		struct client *c = take_slot(m, peer);
		if (!c) { /* busy: refuse rather than queue without bound */
			close(fd);
			continue;
		}
		uint64_t now = mono_now_ns();
		c->fd = fd;
		c->state = C_READING;
		c->req_len = 0;
		c->accepted_ns = now;
		memcpy(c->peer, peer, sizeof(peer));
		c->deadline_ns = now + header_deadline_ns();
		sb_init(&c->out);
		client_read(m, c); /* the request is often there already */
	}
}

int metrics_wait(struct metrics *m, int rb_fd, int timeout_ms)
{
	struct pollfd pfd[2 + MAX_CLIENTS];
	struct client *who[2 + MAX_CLIENTS];
	int n = 0;
	pfd[n++] = (struct pollfd){ .fd = rb_fd, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = m->listen_fd, .events = POLLIN };
	uint64_t now = mono_now_ns();
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &m->clients[i];
		c->revents = 0;
		if (c->state == C_FREE)
			continue;
		int left = c->deadline_ns > now ? (int)((c->deadline_ns - now) / 1000000ull) + 1 : 0;
		if (timeout_ms < 0 || left < timeout_ms)
			timeout_ms = left;
		who[n] = c;
		pfd[n++] = (struct pollfd){ .fd = c->fd, .events = c->state == C_READING ? POLLIN : POLLOUT };
	}
	m->listen_revents = 0;
	int rc = poll(pfd, (nfds_t)n, timeout_ms);
	if (rc < 0)
		return -errno;
	m->listen_revents = pfd[1].revents;
	for (int i = 2; i < n; i++)
		who[i]->revents = pfd[i].revents;
	return rc;
}

void metrics_service(struct metrics *m)
{
	uint64_t now = mono_now_ns();
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &m->clients[i];
		if (c->state == C_FREE)
			continue;
		if (c->revents & (POLLERR | POLLNVAL))
			client_close(c);
		else if (c->state == C_READING && (c->revents & (POLLIN | POLLHUP)))
			client_read(m, c);
		else if (c->state == C_WRITING && (c->revents & (POLLOUT | POLLHUP)))
			client_write(c);
		c->revents = 0;
		if (c->state != C_FREE && now >= c->deadline_ns)
			client_close(c); /* too slow: the loop never waits on one client */
	}
	if (m->listen_revents & POLLIN)
		accept_clients(m);
	m->listen_revents = 0;
}
