/* fddesc: what one file descriptor of a watched process is, for people and JSON.
 * Owns: its kind (from the /proc/PID/fd/N link: socket, pipe, anon_inode, a path); for a
 * socket, asked of the socket itself through a duplicate taken with pidfd_getfd(2) (5.6+):
 * family and protocol, both addresses (getsockname/getpeername, whatever the namespace),
 * the TCP state (TCP_INFO), a unix socket's peer process (SO_PEERCRED), the kernel
 * receive/send timeouts (SO_RCVTIMEO/SO_SNDTIMEO), whether it listens (SO_ACCEPTCONN); without a duplicate, addresses and
 * state from the TARGET's network namespace tables /proc/PID/net/{tcp,tcp6,udp,udp6,unix}
 * (which cost a walk of the whole established hash); a file's path, identity (statx with
 * AT_STATX_DONT_SYNC: never a round trip to a FUSE or network server) and the process
 * holding a lock on it (/proc/locks); for a pipe, which end the fd is and the processes
 * holding the other end, looked for among the process's relatives only (fdpipe.c).
 * Everything here is read from the target's /proc entries, which it controls: every read
 * is bounded (FD_TABLE_BYTES per socket table, FD_LOCKS_BYTES of /proc/locks), nothing is
 * opened but /proc files and a socket duplicate, names are kept as bytes (escaped by the
 * writers) and cut to the buffers below. Tables are read once per fd_ctx (one snapshot). */
#ifndef PH_FDDESC_H
#define PH_FDDESC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FD_TABLE_BYTES (4u << 20)  /* bytes read of each /proc/PID/net table */
#define FD_LOCKS_BYTES (1u << 20)  /* bytes read of /proc/locks */
#define FD_MAX_PEERS 8             /* pipe: holders of the other end kept (counted beyond) */

/* A process holding the other end of a pipe (pid in the tracer's pid namespace, which
 * fdpipe.c checks is the target's). */
struct fd_peer {
	pid_t pid;
	int fd;            /* its lowest fd of the pipe */
	char comm[16];
};

enum fd_pipe_end { FD_END_UNKNOWN, FD_END_READ, FD_END_WRITE, FD_END_BOTH };

struct fd_desc {
	int fd;
	pid_t self_pid;    /* the process the fd belongs to */
	/* tcp, tcp6, udp, udp6, unix, socket (another family), pipe, fifo, file, dir, tty,
	 * char, block, eventfd, epoll, signalfd, timerfd, inotify, pidfd, anon (another
	 * anon_inode), unknown (the fd is gone or unreadable) */
	char type[12];
	char local[64];    /* "127.0.0.1:4431", "[::1]:80", a unix path; "" when none/unknown */
	char remote[64];   /* the peer's address:port; "" */
	char state[16];    /* TCP state (ESTABLISHED, SYN_SENT, LISTEN, ...); "" */
	char path[160];    /* file, fifo, tty: the path as the link shows it; "" */
	uint64_t inode;    /* socket or pipe inode, else the file's; 0 unknown */
	pid_t peer_pid;    /* unix socket: the peer's process (SO_PEERCRED); pipe: the first
			    * holder of its other end found (peers[0]); 0 unknown/none found */
	char peer_comm[16];
	pid_t lock_pid;    /* file: a process holding a lock on it (/proc/locks), 0 none known */
	char lock_comm[16];
	bool lock_is_self; /* that holder is the process itself (another open file of it) */
	double rcvtimeo_s, sndtimeo_s; /* socket: SO_RCVTIMEO/SO_SNDTIMEO, 0 none, <0 unknown */
	bool listening;    /* socket: a listening socket (SO_ACCEPTCONN; without a duplicate:
			    * TCP state LISTEN, or __SO_ACCEPTCON in /proc/PID/net/unix's Flags) */
	unsigned events;   /* poll/select/epoll: the events waited for (POLLIN 1, POLLOUT 4) */
	/* pipe only (type "pipe"): */
	enum fd_pipe_end pipe_end; /* the end this fd is (its open mode, /proc/PID/fdinfo) */
	bool peers_searched;       /* the other end's holders were looked for */
	struct fd_peer peers[FD_MAX_PEERS]; /* found holders of the other end, scan order:
					     * the process itself first when it holds it */
	uint8_t npeers;            /* kept in peers[] */
	uint16_t peers_total;      /* found in all (kept or not) */
	uint16_t peers_looked;     /* processes whose fds were looked at */
	bool peers_cut;            /* a bound cut the search (candidates, fds, budget) or an fd
				    * table was unreadable: holders may be missing */
};

struct fd_ctx; /* the tables of one process, read lazily, freed by fd_ctx_free */

struct fd_ctx *fd_ctx_new(pid_t pid);
void fd_ctx_free(struct fd_ctx *c);
/* Describe fd of the ctx's process into *out (always filled; type "unknown" when the fd
 * cannot be read). want_lock: look up /proc/locks for a holder (flock/fcntl waits). */
void fd_describe(struct fd_ctx *c, int fd, bool want_lock, struct fd_desc *out);
/* The fds an epoll instance epfd watches (the "tfd:" lines of /proc/PID/fdinfo/EPFD), at
 * most max in fds[] with their events; returns how many it watches in all (-1: unreadable). */
int fd_epoll_targets(struct fd_ctx *c, int epfd, int *fds, unsigned *events, int max);
/* One phrase for people: "TCP 127.0.0.1:50000 -> 127.0.0.1:4431 (ESTABLISHED)", "pipe
 * (inode 1234)", "file /tmp/x.lock (locked by 'python3' pid 12)"; bytes from the target
 * are left as they are (the caller escapes). */
void fd_phrase(const struct fd_desc *d, char *buf, size_t len);
#endif
