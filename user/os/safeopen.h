/* safeopen: opening the files a watched process names. Those names (a mapping's path in
 * /proc/PID/maps, and what lies under it in the process's root or mount namespace) are the
 * process's to choose: a symbolic link at the name may point at a FIFO (a plain open()
 * blocks until a writer comes), at the attacker's pty (a session leader without a
 * controlling terminal that opens it without O_NOCTTY gets it as one), at a device, or at a
 * host file outside the process's root.
 * Owns: every open and stat of a path a target names. The rules, for all of them:
 *   - the path is resolved inside the process's root only (openat2(2) RESOLVE_IN_ROOT |
 *     RESOLVE_NO_MAGICLINKS relative to an O_PATH fd of /proc/PID/root, Linux >= 5.6; probed
 *     once; without it, /proc/PID/root/PATH with O_NOFOLLOW and the identity check below
 *     made strict);
 *   - it is first opened O_PATH (no open of the file itself: no FIFO wait, no tty, no
 *     device side effect), and only a regular file is then opened for reading, through
 *     /proc/self/fd/N, with O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
 *   - a mapping's file must be the mapped one: same inode, and same device unless the file
 *     system is one whose stat(2) device differs from the one /proc/PID/maps shows
 *     (overlayfs, btrfs subvolumes; accepted only with openat2's confinement); else the
 *     file is taken from /proc/PID/map_files/START-END (the mapped file itself, no lookup;
 *     needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, so not under the systemd unit).
 * Not covered: a path through a FUSE mount whose server stalls can still block the lookup
 * (unprivileged FUSE needs /dev/fuse access, root-only by default on Debian). */
#ifndef PH_SAFEOPEN_H
#define PH_SAFEOPEN_H
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "procmem.h"

/* The file mapped at m in process pid, open read-only (O_NOCTTY|O_NONBLOCK|O_CLOEXEC), or
 * -1 with errno (ESTALE: what was found is not the mapped regular file; else the kernel's
 * word). Never blocks on a FIFO and never opens anything but a regular file. */
int so_open_mapping(pid_t pid, const struct pm_map *m);

/* stat(2) of an absolute path as pid sees it, resolved inside its root, never following a
 * magic link, the last component included if it is a symlink inside the root. 0 or -1. */
int so_stat_in_root(pid_t pid, const char *path, struct stat *st);

/* Whether the kernel has openat2(2) (probed once). Testing: PYHANG_NO_OPENAT2=1 in the
 * environment says no, to exercise the fallback of kernels before 5.6. */
bool so_have_openat2(void);
#endif
