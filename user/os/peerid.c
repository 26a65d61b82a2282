/* peerid: identity of a TCP peer for per-peer limits (see peerid.h).
 *
 * Source of the kernel facts: include/uapi/linux/inet_diag.h and sock_diag(7). A
 * SOCK_DIAG_BY_FAMILY request without NLM_F_DUMP, naming a socket by its 4-tuple and
 * INET_DIAG_NOCOOKIE, gets back that one socket's inet_diag_msg (idiag_uid: its owner's
 * uid as the socket was created) or an error (ENOENT) when no socket in this network
 * namespace has that tuple: the peer is then on another host or namespace. Linux 3.3+. */
#include "peerid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The owner's uid of the socket (src -> dst) in this namespace: 0 with *uid set, or -1. */
static int diag_uid(const struct sockaddr_storage *src, const struct sockaddr_storage *dst, unsigned *uid)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.r.sdiag_family = (unsigned char)src->ss_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (src->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
		req.r.id.idiag_sport = s->sin_port;
		req.r.id.idiag_dport = d->sin_port;
		memcpy(req.r.id.idiag_src, &s->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &d->sin_addr, 4);
	} else if (src->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
		req.r.id.idiag_sport = s->sin6_port;
		req.r.id.idiag_dport = d->sin6_port;
		memcpy(req.r.id.idiag_src, &s->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &d->sin6_addr, 16);
	} else {
		return -1;
	}
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	int rc = -1;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)sizeof(req))
		goto out;
	/* the kernel answers within the sendto; poll only guards against the unexpected */
	struct pollfd p = { .fd = nl, .events = POLLIN };
	if (poll(&p, 1, 100) <= 0)
		goto out;
	long buf[1024];
	ssize_t n = recv(nl, buf, sizeof(buf), 0);
	if (n < (ssize_t)sizeof(struct nlmsghdr))
		goto out;
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		goto out; /* NLMSG_ERROR: no such socket here */
	const struct inet_diag_msg *msg = NLMSG_DATA(h);
	*uid = msg->idiag_uid;
	rc = 0;
out:
	close(nl);
	return rc;
}

void peer_identity(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage peer, self;
	socklen_t pl = sizeof(peer), sl = sizeof(self);
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
	    getsockname(fd, (struct sockaddr *)&self, &sl) != 0) {
		snprintf(out, outlen, "unknown");
		return;
	}
	unsigned uid;
	if (diag_uid(&peer, &self, &uid) == 0) {
		snprintf(out, outlen, "uid:%u", uid);
		return;
	}
	char ip[INET6_ADDRSTRLEN] = "?";
	if (peer.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, ip, sizeof(ip));
	else if (peer.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, ip, sizeof(ip));
	snprintf(out, outlen, "addr:%s", ip);
}
