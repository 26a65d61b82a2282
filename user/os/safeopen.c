/* safeopen: opening the files a watched process names (see safeopen.h for the rules). */
#include "safeopen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437 /* the same on every architecture (Linux 5.6) */
#endif
#define SO_OVERLAYFS_MAGIC 0x794c7630 /* linux/magic.h */
#define SO_BTRFS_MAGIC 0x9123683e

static int openat2_fd(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = flags;
	how.resolve = resolve;
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

bool so_have_openat2(void)
{
	static int have = -1;
	if (have < 0 && getenv("PYHANG_NO_OPENAT2")) /* testing: the fallback of old kernels */
		have = 0;
	if (have < 0) {
		/* ENOSYS: before 5.6; EPERM: a seccomp filter that does not know it; EINVAL or
		 * E2BIG: a resolve flag this kernel lacks */
		int fd = openat2_fd(AT_FDCWD, "/", O_PATH | O_CLOEXEC,
				    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		have = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	return have == 1;
}

/* An O_PATH fd of path as pid sees it; *confined says whether openat2 kept the lookup
 * inside the process's root (else only the last component was kept from being a link). */
static int path_fd_in_root(pid_t pid, const char *path, bool *confined)
{
	*confined = false;
	if (!path || path[0] != '/' || strnlen(path, PM_PATH_MAX) >= PM_PATH_MAX) {
		errno = ENOENT;
		return -1;
	}
	char root[64];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	if (so_have_openat2()) {
		int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			return -1;
		/* "/x" is taken as rootfd's "x": RESOLVE_IN_ROOT also makes every absolute link
		 * and ".." stop at rootfd */
		int fd = openat2_fd(rootfd, path + 1, O_PATH | O_CLOEXEC,
				    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
		int e = errno;
		close(rootfd);
		errno = e;
		*confined = fd >= 0;
		return fd;
	}
	char full[PM_PATH_MAX + 64];
	snprintf(full, sizeof(full), "%s%s", root, path);
	return open(full, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

/* A regular file of the same identity as fd (an O_PATH fd), open for reading; closes
 * pathfd. -1 on failure. */
static int reopen_for_reading(int pathfd, const struct stat *want)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pathfd);
	int fd = open(self, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	int e = errno;
	close(pathfd);
	struct stat st;
	if (fd < 0) {
		errno = e;
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != want->st_dev ||
	    st.st_ino != want->st_ino) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

/* Whether the file behind fd is the one mapped at m (see the rules in safeopen.h). */
static bool is_mapped_file(int fd, const struct stat *st, const struct pm_map *m, bool confined)
{
	if (!S_ISREG(st->st_mode) || (uint64_t)st->st_ino != m->inode)
		return false;
	if ((uint64_t)st->st_dev == m->dev)
		return true;
	struct statfs sf;
	return confined && fstatfs(fd, &sf) == 0 &&
	       ((uint64_t)sf.f_type == SO_OVERLAYFS_MAGIC || (uint64_t)sf.f_type == SO_BTRFS_MAGIC);
}

int so_open_mapping(pid_t pid, const struct pm_map *m)
{
	struct stat st;
	bool confined;
	int fd = path_fd_in_root(pid, m->path, &confined);
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && is_mapped_file(fd, &st, m, confined))
			return reopen_for_reading(fd, &st);
		close(fd);
	}
	/* the mapped file itself: a magic link, no lookup of any name */
	char path[128];
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start,
		 m->end);
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != m->inode) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return reopen_for_reading(fd, &st);
}

int so_stat_in_root(pid_t pid, const char *path, struct stat *st)
{
	bool confined;
	int fd = path_fd_in_root(pid, path, &confined);
	if (fd < 0)
		return -1;
	int rc = fstat(fd, st);
	close(fd);
	return rc;
}
