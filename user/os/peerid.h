/* peerid: who is at the other end of an accepted TCP connection, for per-peer limits of
 * the metrics server. Owns: telling a connection from this host (the peer socket is in our
 * network namespace: its owner's uid, from the kernel's sock_diag, is the identity, since
 * every local user shares 127.0.0.1) from a remote one (the identity is its address). */
#ifndef PH_PEERID_H
#define PH_PEERID_H
#include <stddef.h>

/* A short string naming fd's peer: "uid:1000" for a local socket whose owner the kernel
 * names, else "addr:ADDRESS"; "unknown" if even the address is unknown. */
void peer_identity(int fd, char *out, size_t outlen);
#endif
