/* srcline: source lines from the target's root (see srcline.h). */
#include "srcline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
/* include/uapi/linux/openat2.h (Linux 5.6) */
struct ph_open_how {
	uint64_t flags, mode, resolve;
};
#define PH_RESOLVE_NO_MAGICLINKS 0x02
#define PH_RESOLVE_IN_ROOT 0x10

struct src_file {
	pid_t pid;
	char *path;
	char *data;   /* NULL: could not be read */
	size_t len;
};

static struct src_file files[SRC_FILES];
static unsigned next_slot;

void srcline_flush(void)
{
	for (unsigned i = 0; i < SRC_FILES; i++) {
		free(files[i].path);
		free(files[i].data);
		memset(&files[i], 0, sizeof(files[i]));
	}
}

static int open_in_root(pid_t pid, const char *file)
{
	char root[64];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	struct ph_open_how how = { .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
				   .resolve = PH_RESOLVE_IN_ROOT | PH_RESOLVE_NO_MAGICLINKS };
	int fd = (int)syscall(SYS_openat2, dfd, file, &how, sizeof(how));
	close(dfd);
	return fd;
}

static void load(struct src_file *f, pid_t pid, const char *file)
{
	f->pid = pid;
	f->path = strdup(file);
	f->data = NULL;
	f->len = 0;
	int fd = open_in_root(pid, file);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > SRC_MAX_FILE) {
		close(fd);
		return;
	}
	char *d = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (d && got < (size_t)st.st_size) {
		ssize_t n = read(fd, d + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!d)
		return;
	d[got] = '\0';
	f->data = d;
	f->len = got;
}

bool srcline_get(pid_t pid, const char *file, int line, char *buf, size_t len)
{
	if (!file || file[0] != '/' || line <= 0 || len == 0)
		return false;
	struct src_file *f = NULL;
	for (unsigned i = 0; i < SRC_FILES && !f; i++)
		if (files[i].path && files[i].pid == pid && strcmp(files[i].path, file) == 0)
			f = &files[i];
	if (!f) {
		f = &files[next_slot++ % SRC_FILES];
		free(f->path);
		free(f->data);
		load(f, pid, file);
	}
	if (!f->data)
		return false;
	const char *p = f->data, *end = f->data + f->len;
	for (int l = 1; l < line; l++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return false;
		p = nl + 1;
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	const char *e = p;
	while (e < end && *e != '\n' && *e != '\r')
		e++;
	size_t n = (size_t)(e - p) < len - 1 ? (size_t)(e - p) : len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return n > 0;
}
