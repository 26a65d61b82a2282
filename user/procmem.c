/* procmem: bounded reads of another process (see procmem.h for what this file owns). */
#include "procmem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"

#define PM_CACHED_READ_MAX (4u * PM_BLOCK) /* larger reads bypass the cache */

int pm_open(struct procmem *pm, pid_t pid, char *err, size_t errlen)
{
	memset(pm, 0, sizeof(*pm));
	pm->memfd = -1;
	pm->pid = pid;
	pm->cache = &pm->own;
	pm->own.gen = 1;
	if (pm_start_time(pid, &pm->start_time) != 0) {
		snprintf(err, errlen, "process %d does not exist", (int)pid);
		return -1;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	pm->memfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pm->memfd < 0) {
		int e = errno;
		char hint[96] = "";
		if (e == EACCES || e == EPERM)
			caps_proc_access_hint(pid, hint, sizeof(hint));
		snprintf(err, errlen, "cannot open %s: %s%s", path, strerror(e), hint);
		return -1;
	}
	return 0;
}

void pm_open_backend(struct procmem *pm, pid_t pid, pm_backend_fn backend, void *ctx)
{
	memset(pm, 0, sizeof(*pm));
	pm->memfd = -1;
	pm->pid = pid;
	pm->cache = &pm->own;
	pm->own.gen = 1;
	pm->backend = backend;
	pm->backend_ctx = ctx;
}

void pm_close(struct procmem *pm)
{
	if (pm->memfd >= 0)
		close(pm->memfd);
	pm_cache_free(&pm->own);
	memset(pm, 0, sizeof(*pm));
	pm->memfd = -1;
}

void pm_cache_free(struct pm_cache *cache)
{
	free(cache->pages);
	cache->pages = NULL;
}

void pm_use_cache(struct procmem *pm, struct pm_cache *cache)
{
	pm->cache = cache ? cache : &pm->own;
	if (pm->cache->gen == 0)
		pm->cache->gen = 1;
	pm->cache->gen++;
}

void pm_new_snapshot(struct procmem *pm)
{
	pm->cache->gen++;
}

uint64_t pm_gen(const struct procmem *pm)
{
	return pm->cache->gen;
}

int pm_read_direct(struct procmem *pm, uint64_t addr, void *buf, size_t len)
{
	if (pm->gone)
		return PM_GONE;
	if (len == 0)
		return PM_OK;
	if (len > PM_MAX_READ || addr == 0 || addr > INT64_MAX || addr + len < addr ||
	    addr + len > (uint64_t)INT64_MAX)
		return PM_FAULT;
	if (pm->backend) {
		pm->reads++;
		int rc = pm->backend(pm->backend_ctx, addr, buf, len);
		if (rc == PM_GONE)
			pm->gone = true;
		return rc;
	}
	size_t done = 0;
	for (int tries = 0; done < len && tries < 64; tries++) {
		pm->reads++;
		ssize_t n = pread(pm->memfd, (char *)buf + done, len - done, (off_t)(addr + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ESRCH) {
				pm->gone = true;
				return PM_GONE;
			}
			return PM_FAULT;
		}
		if (n == 0) {
			/* /proc/PID/mem returns 0 once the mm is gone (exit or exec). */
			pm->gone = true;
			return PM_GONE;
		}
		done += (size_t)n;
	}
	return done == len ? PM_OK : PM_FAULT;
}

static struct pm_page *pm_cached_page(struct procmem *pm, uint64_t page_addr, int *status)
{
	struct pm_cache *c = pm->cache;
	if (!c->pages) {
		c->pages = calloc(PM_CACHE_SLOTS, sizeof(*c->pages));
		if (!c->pages) {
			*status = PM_FAULT;
			return NULL;
		}
	}
	struct pm_page *pg = &c->pages[(page_addr / PM_BLOCK) % PM_CACHE_SLOTS];
	if (pg->gen == c->gen && pg->addr == page_addr) {
		*status = pg->valid ? PM_OK : PM_FAULT;
		return pg;
	}
	pg->gen = c->gen;
	pg->addr = page_addr;
	pg->valid = 0;
	int rc = pm_read_direct(pm, page_addr, pg->data, PM_BLOCK);
	if (rc == PM_GONE) {
		pg->gen = 0;
		*status = PM_GONE;
		return NULL;
	}
	pg->valid = rc == PM_OK ? PM_BLOCK : 0;
	*status = rc;
	return pg;
}

int pm_read(struct procmem *pm, uint64_t addr, void *buf, size_t len)
{
	if (len > PM_CACHED_READ_MAX)
		return pm_read_direct(pm, addr, buf, len);
	if (pm->gone)
		return PM_GONE;
	if (addr == 0 || addr > INT64_MAX || addr + len < addr)
		return PM_FAULT;
	size_t done = 0;
	while (done < len) { /* at most 5 iterations: len <= 4 blocks */
		uint64_t a = addr + done;
		uint64_t page = a & ~(uint64_t)(PM_BLOCK - 1);
		int st;
		struct pm_page *pg = pm_cached_page(pm, page, &st);
		if (st == PM_FAULT && pg) {
			/* a page that cannot be read whole (e.g. end of a mapping): read exactly */
			return pm_read_direct(pm, addr, buf, len);
		}
		if (st != PM_OK)
			return st;
		size_t in_page = PM_BLOCK - (size_t)(a - page);
		size_t n = len - done < in_page ? len - done : in_page;
		memcpy((char *)buf + done, pg->data + (a - page), n);
		done += n;
	}
	return PM_OK;
}

int pm_read_u64(struct procmem *pm, uint64_t addr, uint64_t *out)
{
	return pm_read(pm, addr, out, sizeof(*out));
}

int pm_read_u32(struct procmem *pm, uint64_t addr, uint32_t *out)
{
	return pm_read(pm, addr, out, sizeof(*out));
}

ssize_t pm_read_text_file(const char *path, char *buf, size_t cap)
{
	if (cap == 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	for (int tries = 0; len + 1 < cap && tries < 1024; tries++) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0) {
				close(fd);
				return -1;
			}
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return (ssize_t)len;
}

int pm_start_time(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (pm_read_text_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	/* comm (field 2) may contain spaces and parentheses: fields resume after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -1;
	*out = v;
	return 0;
}

bool pm_still_same(struct procmem *pm)
{
	uint64_t st;
	if (pm->gone || pm_start_time(pm->pid, &st) != 0 || st != pm->start_time)
		return false;
	return true;
}

static int pm_parse_map_line(char *line, struct pm_map *m)
{
	unsigned long long start, end, off, inode;
	char perms[8];
	int pathpos = -1;
	if (sscanf(line, "%llx-%llx %7s %llx %*x:%*x %llu %n", &start, &end, perms, &off, &inode,
		   &pathpos) < 5)
		return -1;
	memset(m, 0, sizeof(*m));
	m->start = start;
	m->end = end;
	m->offset = off;
	m->inode = inode;
	snprintf(m->perms, sizeof(m->perms), "%.4s", perms);
	if (pathpos > 0 && line[pathpos] != '\0') {
		m->path = strdup(line + pathpos);
		if (!m->path)
			return -1;
	}
	return 0;
}

int pm_read_maps(pid_t pid, struct pm_maps *out)
{
	char path[64];
	out->v = NULL;
	out->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	int rc = 0;
	while (out->n < PM_MAX_MAPS) {
		ssize_t n = getline(&line, &cap, f);
		if (n <= 0)
			break;
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (out->n == alloc) {
			size_t na = alloc ? alloc * 2 : 128;
			struct pm_map *nv = realloc(out->v, na * sizeof(*nv));
			if (!nv) {
				rc = -1;
				break;
			}
			out->v = nv;
			alloc = na;
		}
		if (pm_parse_map_line(line, &out->v[out->n]) == 0)
			out->n++;
	}
	free(line);
	fclose(f);
	if (rc != 0 || out->n == 0) {
		pm_free_maps(out);
		return -1;
	}
	return 0;
}

void pm_free_maps(struct pm_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

const struct pm_map *pm_find_map(const struct pm_maps *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n; /* maps are sorted by address */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (addr < m->v[mid].start)
			hi = mid;
		else if (addr >= m->v[mid].end)
			lo = mid + 1;
		else
			return &m->v[mid];
	}
	return NULL;
}

int pm_open_in_root(pid_t pid, const char *path)
{
	if (!path || path[0] != '/' || strlen(path) >= PM_PATH_MAX)
		return -1;
	char full[PM_PATH_MAX + 64];
	snprintf(full, sizeof(full), "/proc/%d/root%s", (int)pid, path);
	return open(full, O_RDONLY | O_CLOEXEC);
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

int pm_list_tasks(pid_t pid, pid_t **out, size_t *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	*out = NULL;
	*n = 0;
	DIR *d = opendir(path);
	if (!d)
		return -1;
	size_t alloc = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL && *n < 1000000) {
		char *end;
		long t = strtol(e->d_name, &end, 10);
		if (*end != '\0' || t <= 0)
			continue;
		if (*n == alloc) {
			size_t na = alloc ? alloc * 2 : 64;
			pid_t *nv = realloc(*out, na * sizeof(*nv));
			if (!nv) {
				rc = -1;
				break;
			}
			*out = nv;
			alloc = na;
		}
		(*out)[(*n)++] = (pid_t)t;
	}
	closedir(d);
	if (rc == 0 && *n > 0)
		qsort(*out, *n, sizeof(**out), pid_cmp);
	return rc;
}
