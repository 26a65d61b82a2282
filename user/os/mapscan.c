/* mapscan: the wanted mappings of a process at a bounded cost (see mapscan.h). */
#include "mapscan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bounds.h"

/* include/uapi/linux/fs.h (Linux 6.11+); defined here for older headers. */
struct ph_procmap_query {
	uint64_t size;
	uint64_t query_flags;
	uint64_t query_addr;
	uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
	uint32_t dev_major, dev_minor;
	uint32_t vma_name_size, build_id_size;
	uint64_t vma_name_addr, build_id_addr;
};
#define PH_PROCMAP_QUERY _IOWR('f', 17, struct ph_procmap_query)
#define PH_Q_READABLE 0x01
#define PH_Q_WRITABLE 0x02
#define PH_Q_EXECUTABLE 0x04
#define PH_Q_SHARED 0x08
#define PH_Q_COVERING_OR_NEXT 0x10
#define PH_Q_FILE_BACKED 0x20

#define MS_DEFAULT_MAX 64u
#define MS_CHUNK (64u << 10)

static bool g_query_used;

bool pm_maps_query_used(void)
{
	return g_query_used;
}

struct kept {
	struct pm_maps *out;
	size_t alloc, max;
};

/* Appends a copy of m with a copy of path. 0 or -1 (OOM). */
static int keep(struct kept *k, const struct pm_map *m, const char *path)
{
	for (size_t i = 0; i < k->out->n; i++)
		if (k->out->v[i].start == m->start)
			return 0; /* asked twice (two executable mappings of one file) */
	if (k->out->n == k->alloc) {
		size_t na = k->alloc ? k->alloc * 2 : 8;
		struct pm_map *nv = realloc(k->out->v, na * sizeof(*nv));
		if (!nv)
			return -1;
		k->out->v = nv;
		k->alloc = na;
	}
	struct pm_map *d = &k->out->v[k->out->n];
	*d = *m;
	d->path = strdup(path);
	if (!d->path)
		return -1;
	k->out->n++;
	return 0;
}

static int by_start(const void *a, const void *b)
{
	const struct pm_map *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static void map_of_query(const struct ph_procmap_query *q, struct pm_map *m)
{
	memset(m, 0, sizeof(*m));
	m->start = q->vma_start;
	m->end = q->vma_end;
	m->offset = q->vma_offset;
	m->inode = q->inode;
	m->dev = makedev(q->dev_major, q->dev_minor); /* what safeopen matches the file with */
	m->perms[0] = q->vma_flags & PH_Q_READABLE ? 'r' : '-';
	m->perms[1] = q->vma_flags & PH_Q_WRITABLE ? 'w' : '-';
	m->perms[2] = q->vma_flags & PH_Q_EXECUTABLE ? 'x' : '-';
	m->perms[3] = q->vma_flags & PH_Q_SHARED ? 's' : 'p';
}

static int query(int fd, struct ph_procmap_query *q, uint64_t flags, uint64_t addr, char *name,
		 size_t name_cap)
{
	memset(q, 0, sizeof(*q));
	q->size = sizeof(*q);
	q->query_flags = flags;
	q->query_addr = addr;
	if (name) {
		/* zeroed: the kernel writes the NUL-terminated name, but tools that do not model
		 * this ioctl (valgrind) would take what it wrote as uninitialised */
		memset(name, 0, name_cap);
		q->vma_name_size = (uint32_t)name_cap;
		q->vma_name_addr = (uint64_t)(uintptr_t)name;
	}
	int rc;
	do
		rc = ioctl(fd, PH_PROCMAP_QUERY, q);
	while (rc < 0 && errno == EINTR);
	return rc;
}

/* One file met among the executable mappings: whether it is wanted, and its path if so. */
struct seen {
	uint64_t dev, inode;
	char *path; /* wanted: its name; NULL: not wanted (or not asked: over the limit) */
	bool used;
};

/* Slot of (dev, inode) in an open-addressed table of cap (a power of two) slots. */
static struct seen *seen_slot(struct seen *t, size_t cap, uint64_t dev, uint64_t inode)
{
	size_t h = (size_t)((inode * 0x9e3779b97f4a7c15ull) ^ dev) & (cap - 1);
	while (t[h].used && (t[h].dev != dev || t[h].inode != inode))
		h = (h + 1) & (cap - 1);
	return &t[h];
}

/* Doubles the table (kept at most half full). 0 or -1 (OOM). */
static int seen_grow(struct seen **t, size_t *cap)
{
	size_t nc = *cap * 2;
	struct seen *n = calloc(nc, sizeof(*n));
	if (!n)
		return -1;
	for (size_t i = 0; i < *cap; i++)
		if ((*t)[i].used)
			*seen_slot(n, nc, (*t)[i].dev, (*t)[i].inode) = (*t)[i];
	free(*t);
	*t = n;
	*cap = nc;
	return 0;
}

/* 0, -1 (error: the process is gone), or 1 (no PROCMAP_QUERY here: use the text). */
static int wanted_by_query(int fd, const struct pm_map_want *want, struct kept *k)
{
	size_t names_max = (size_t)ph_limits.maps_names, cap = 256; /* grows to 2 x names */
	struct seen *seen = calloc(cap, sizeof(*seen));
	char *name = malloc(PM_PATH_MAX);
	if (!seen || !name) {
		free(seen);
		free(name);
		return -1;
	}
	size_t names = 0;
	int rc = 0;
	uint64_t addr = 0;
	struct ph_procmap_query q, q0;
	for (bool first = true; k->out->n < k->max; first = false) {
		if (query(fd, &q, PH_Q_COVERING_OR_NEXT | PH_Q_FILE_BACKED | PH_Q_EXECUTABLE, addr,
			  NULL, 0) != 0) {
			if (errno == ENOENT)
				break; /* no more */
			rc = first && (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP) ? 1 : -1;
			break;
		}
		if (q.vma_end <= addr)
			break; /* cannot happen: the next mapping ends above addr */
		addr = q.vma_end;
		uint64_t dev = makedev(q.dev_major, q.dev_minor);
		if (names * 2 >= cap && seen_grow(&seen, &cap) != 0) {
			rc = -1;
			break;
		}
		struct seen *s = seen_slot(seen, cap, dev, q.inode);
		if (!s->used) {
			if (names >= names_max)
				continue; /* over the limit: files not met yet are not looked at */
			names++;
			s->used = true;
			s->dev = dev;
			s->inode = q.inode;
			struct ph_procmap_query qn;
			/* the name of the mapping just found: covering its start, not the next */
			if (query(fd, &qn, PH_Q_FILE_BACKED, q.vma_start, name, PM_PATH_MAX) != 0 ||
			    qn.vma_start != q.vma_start || qn.inode != q.inode || qn.vma_name_size == 0)
				continue; /* ENAMETOOLONG (a path over PM_PATH_MAX), or changed */
			name[PM_PATH_MAX - 1] = '\0';
			bool wanted = (want->inode && q.inode == want->inode && name[0] == '/') ||
				      (want->path_ok && want->path_ok(name));
			if (wanted && !(s->path = strdup(name))) {
				rc = -1;
				break;
			}
		}
		if (!s->path)
			continue;
		struct pm_map m;
		map_of_query(&q, &m);
		/* the file's offset-0 mapping (ELF header: the first PT_LOAD), just below */
		if (q.vma_offset != 0 && q.vma_offset <= q.vma_start &&
		    query(fd, &q0, PH_Q_FILE_BACKED, q.vma_start - q.vma_offset, NULL, 0) == 0 &&
		    q0.inode == q.inode && makedev(q0.dev_major, q0.dev_minor) == dev &&
		    q0.vma_offset == 0) {
			struct pm_map m0;
			map_of_query(&q0, &m0);
			if (keep(k, &m0, s->path) != 0) {
				rc = -1;
				break;
			}
		}
		if (keep(k, &m, s->path) != 0) {
			rc = -1;
			break;
		}
	}
	for (size_t i = 0; i < cap; i++)
		free(seen[i].path);
	free(seen);
	free(name);
	return rc;
}

/* One line [p, end) of the text: kept if wanted. 0 or -1 (OOM). */
static int text_line(const char *p, const char *end, const struct pm_map_want *want,
		     struct kept *k)
{
	struct pm_map m;
	if (pm_parse_map_line(p, end, &m) != 0)
		return 0;
	bool wanted = m.path && m.path[0] == '/' &&
		      ((want->inode && m.inode == want->inode) ||
		       (want->path_ok && want->path_ok(m.path)));
	int rc = wanted ? keep(k, &m, m.path) : 0;
	free(m.path);
	return rc;
}

static int wanted_by_text(int fd, const struct pm_map_want *want, struct kept *k)
{
	char *buf = malloc(MS_CHUNK);
	if (!buf)
		return -1;
	size_t len = 0;
	uint64_t total = 0;
	bool skipping = false, eof = false;
	int rc = 0;
	while (!eof && rc == 0 && k->out->n < k->max) {
		ssize_t n = read(fd, buf + len, MS_CHUNK - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = total ? 0 : -1;
			break;
		}
		total += (uint64_t)n;
		eof = n == 0 || total >= ph_limits.maps_bytes;
		len += (size_t)n;
		char *p = buf, *end = buf + len, *nl;
		while (rc == 0 && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			if (!skipping)
				rc = text_line(p, nl, want, k);
			skipping = false;
			p = nl + 1;
		}
		if (n == 0 && p < end && !skipping && rc == 0) /* a last line without newline */
			rc = text_line(p, end, want, k);
		len = (size_t)(end - p);
		if (len == MS_CHUNK) { /* a line longer than the buffer: skip to its end */
			skipping = true;
			len = 0;
		} else if (len) {
			memmove(buf, p, len);
		}
	}
	free(buf);
	return rc;
}

int pm_read_maps_wanted(pid_t pid, const struct pm_map_want *want, struct pm_maps *out)
{
	char path[64];
	out->v = NULL;
	out->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct kept k = { out, 0, want->max ? want->max : MS_DEFAULT_MAX };
	/* testing: PYHANG_NO_PROCMAP_QUERY=1 takes the path of kernels before 6.11 */
	const char *nq = getenv("PYHANG_NO_PROCMAP_QUERY");
	int rc = nq && strcmp(nq, "1") == 0 ? 1 : wanted_by_query(fd, want, &k);
	g_query_used = rc != 1;
	if (rc == 1) {
		pm_free_maps(out);
		rc = wanted_by_text(fd, want, &k);
	}
	close(fd);
	if (rc != 0) {
		pm_free_maps(out);
		return -1;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), by_start);
	return 0;
}
