/* fddesc_int: what the files of the fd describer share (fddesc.c: the context, files,
 * locks, epoll and phrases; fdsock.c: sockets; fdpipe.c: a pipe's other end). Not for use
 * outside them. */
#ifndef PH_FDDESC_INT_H
#define PH_FDDESC_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fddesc.h"

enum { T_TCP, T_TCP6, T_UDP, T_UDP6, T_NTABLES };

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

struct fdpipe_state; /* fdpipe.c: the candidates and results of one snapshot */

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
	struct fdpipe_state *pipes; /* NULL until a pipe is described */
};

/* fddesc.c */
/* Up to cap bytes of a /proc file, NUL-terminated (malloc'd; *len bytes), or NULL; a longer
 * file is cut at its last whole line. */
char *fd_read_bounded(const char *path, size_t cap, size_t *len);
/* Skip n whitespace-separated fields of a table line. */
const char *fd_skip_fields(const char *s, int n);
/* /proc/PID/comm into buf ("" when unreadable). */
void fd_read_comm(pid_t pid, char *buf, size_t len);
/* A pidfd of the ctx's process (opened once), or < 0. */
int fd_ensure_pidfd(struct fd_ctx *c);

/* fdsock.c: fills type, addresses, state, peer, timeouts of socket fd (d->inode set). */
void fd_describe_socket(struct fd_ctx *c, int fd, struct fd_desc *d);

/* fdpipe.c: the pipe's end and the processes holding its other end (d->inode set). */
void fd_describe_pipe(struct fd_ctx *c, int fd, struct fd_desc *d);
void fdpipe_free(struct fdpipe_state *s);
#endif
