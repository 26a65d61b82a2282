/* procmem: bounded reads of another process (see procmem.h for what this file owns). */
#include "procmem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bounds.h"
#include "caps.h"
#include "procscan.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same on every architecture (Linux 5.3) */
#endif

#define PM_CACHED_READ_MAX (4u * PM_BLOCK) /* larger reads bypass the cache */

int pm_open(struct procmem *pm, pid_t pid, char *err, size_t errlen)
{
	memset(pm, 0, sizeof(*pm));
	pm->memfd = -1;
	pm->pid = pid;
	pm->cache = &pm->own;
	pm->own.gen = 1;
	/* pidfd, then mem, then the start time: if the pidfd's process is alive at any later
	 * check, the pid was never reused, so mem and the start time are of that process too
	 * (kernels without pidfd_open fall back to reading the start time again) */
	pm->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pm->pidfd < 0 && errno == ESRCH) {
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
		pm_close(pm);
		return -1;
	}
	if (pm_start_time(pid, &pm->start_time) != 0) {
		snprintf(err, errlen, "process %d does not exist", (int)pid);
		pm_close(pm);
		return -1;
	}
	return 0;
}

void pm_open_backend(struct procmem *pm, pid_t pid, pm_backend_fn backend, void *ctx)
{
	memset(pm, 0, sizeof(*pm));
	pm->memfd = -1;
	pm->pidfd = -1;
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
	if (pm->pidfd >= 0)
		close(pm->pidfd);
	pm_cache_free(&pm->own);
	memset(pm, 0, sizeof(*pm));
	pm->memfd = -1;
	pm->pidfd = -1;
}

void pm_cache_free(struct pm_cache *cache)
{
	pm_cache_trim(cache, 0);
	free(cache->blocks);
	free(cache->slots);
	cache->blocks = NULL;
	cache->slots = NULL;
}

void pm_cache_trim(struct pm_cache *cache, uint32_t keep_blocks)
{
	if (cache->nblocks <= keep_blocks)
		return;
	for (uint32_t i = keep_blocks; i < cache->nblocks; i++)
		free(cache->blocks[i]);
	cache->nblocks = keep_blocks;
	cache->used = 0;
	cache->gen++; /* no slot may point at a freed block */
}

void pm_use_cache(struct procmem *pm, struct pm_cache *cache)
{
	pm->last_slot = 0;
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

/* A block of the pool for this snapshot, allocated when the pool is short. NULL: OOM. */
static unsigned char *pool_take(struct pm_cache *c, uint32_t *index)
{
	if (c->pool_gen != c->gen) {
		c->pool_gen = c->gen;
		c->used = 0;
	}
	if (c->used == c->nblocks) {
		if (c->nblocks >= PM_CACHE_SLOTS) /* cannot happen: one block per slot at most */
			return NULL;
		if (!c->blocks)
			c->blocks = calloc(PM_CACHE_SLOTS, sizeof(*c->blocks));
		unsigned char *b = c->blocks ? malloc(PM_BLOCK) : NULL;
		if (!b)
			return NULL;
		c->blocks[c->nblocks++] = b;
	}
	*index = c->used;
	return c->blocks[c->used++];
}

/* The cache is set-associative: a block may sit in any of the PM_WAYS slots of its set.
 * The block number is scrambled (Fibonacci hashing) before it picks a set: blocks at one
 * stride apart (the same offset in each thread's 8 MiB stack, objects of one size in
 * arenas) would otherwise all fall into a few sets. With one slot per block (direct
 * mapping), two blocks sharing a slot evicted each other: a wait-for graph built again
 * from one snapshot of 1,000 threads x 20 held locks (2.7, ~6,200 blocks in use) re-read
 * 1,886 blocks, and 1,870 on its first build; 4 ways: 279 and 1,252; 8 ways: 23 and 855
 * (3.6: 297 and 898 with 4 ways, 31 and 496 with 8), for a probe of one 192-byte set. */
#define PM_WAYS 8u /* PM_CACHE_SLOTS is a multiple (the fuzzers' 64 too) */

/* The slot of page_addr in this generation (*hit), else the one to take for it: a slot
 * of an older generation, else one of the set's in turn (its block is evicted). */
static struct pm_slot *slot_for(struct pm_cache *c, uint64_t page_addr, bool *hit)
{
	uint64_t h = (page_addr / PM_BLOCK) * 0x9E3779B97F4A7C15ull;
	struct pm_slot *set = &c->slots[((h >> 32) % (PM_CACHE_SLOTS / PM_WAYS)) * PM_WAYS];
	struct pm_slot *free_slot = NULL;
	for (unsigned i = 0; i < PM_WAYS; i++) {
		if (set[i].gen != c->gen) {
			if (!free_slot)
				free_slot = &set[i];
		} else if (set[i].addr == page_addr) {
			*hit = true;
			return &set[i];
		}
	}
	*hit = false;
	return free_slot ? free_slot : &set[c->victim++ % PM_WAYS];
}

/* Gives sl (not holding page_addr in this generation) to page_addr, with a block: the one
 * it holds when it is of this generation (that address is evicted), else one of the pool.
 * *data: the block. false: out of memory. Nothing is read. */
static bool slot_claim(struct pm_cache *c, struct pm_slot *sl, uint64_t page_addr, unsigned char **data)
{
	uint32_t index = sl->block;
	unsigned char *block = sl->gen == c->gen ? c->blocks[index] : pool_take(c, &index);
	if (!block)
		return false;
	sl->gen = c->gen;
	sl->addr = page_addr;
	sl->block = index;
	sl->valid = 0;
	*data = block;
	return true;
}

static bool cache_slots(struct pm_cache *c)
{
	if (!c->slots)
		c->slots = calloc(PM_CACHE_SLOTS, sizeof(*c->slots));
	return c->slots != NULL;
}

/* The slot holding the block at page_addr, read now if it is not in this snapshot yet;
 * *data points at its bytes. NULL (status PM_FAULT or PM_GONE) if it could not be had. */
static struct pm_slot *pm_cached_page(struct procmem *pm, uint64_t page_addr,
				      const unsigned char **data, int *status)
{
	struct pm_cache *c = pm->cache;
	if (!cache_slots(c)) {
		*status = PM_FAULT;
		return NULL;
	}
	bool hit;
	struct pm_slot *sl = slot_for(c, page_addr, &hit);
	if (hit) {
		*status = sl->valid ? PM_OK : PM_FAULT;
		*data = c->blocks[sl->block];
		return sl;
	}
	unsigned char *block;
	if (!slot_claim(c, sl, page_addr, &block)) {
		*status = PM_FAULT;
		return NULL;
	}
	int rc = pm_read_direct(pm, page_addr, block, PM_BLOCK);
	if (rc == PM_GONE) {
		sl->gen = 0;
		*status = PM_GONE;
		return NULL;
	}
	sl->valid = rc == PM_OK ? PM_BLOCK : 0;
	*status = rc;
	*data = block;
	return sl;
}

int pm_read(struct procmem *pm, uint64_t addr, void *buf, size_t len)
{
	if (len > PM_CACHED_READ_MAX)
		return pm_read_direct(pm, addr, buf, len);
	if (pm->gone)
		return PM_GONE;
	if (addr == 0 || addr > INT64_MAX || addr + len < addr)
		return PM_FAULT;
	/* the block of the last read again (an object's fields one after the other): no set
	 * lookup; the slot must still hold that block in this generation */
	struct pm_cache *c = pm->cache;
	uint64_t first = addr & ~(uint64_t)(PM_BLOCK - 1);
	if (pm->last_slot && c->slots && (addr - first) + len <= PM_BLOCK) {
		const struct pm_slot *ls = &c->slots[pm->last_slot - 1];
		if (ls->gen == c->gen && ls->addr == first && ls->valid) {
			memcpy(buf, c->blocks[ls->block] + (addr - first), len);
			return PM_OK;
		}
	}
	size_t done = 0;
	while (done < len) { /* at most 5 iterations: len <= 4 blocks */
		uint64_t a = addr + done;
		uint64_t page = a & ~(uint64_t)(PM_BLOCK - 1);
		int st;
		const unsigned char *data = NULL;
		struct pm_slot *sl = pm_cached_page(pm, page, &data, &st);
		if (st == PM_FAULT && sl) {
			/* a page that cannot be read whole (e.g. end of a mapping): read exactly */
			return pm_read_direct(pm, addr, buf, len);
		}
		if (st != PM_OK)
			return st;
		pm->last_slot = (uint32_t)(sl - c->slots) + 1;
		size_t in_page = PM_BLOCK - (size_t)(a - page);
		size_t n = len - done < in_page ? len - done : in_page;
		memcpy((char *)buf + done, data + (a - page), n);
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

/* Reads fd into buf from *len on until end of file or until buf (cap bytes, one kept for a
 * NUL) is full. 0: end of file, 1: full, -1: error. At most max_reads reads (a file that
 * trickles gives what came); a seq_file gives about 4 KiB a read. */
static int read_fd_into(int fd, char *buf, size_t cap, size_t *len, size_t max_reads)
{
	for (size_t tries = 0; tries < max_reads; tries++) {
		if (*len + 1 >= cap)
			return 1;
		ssize_t n = read(fd, buf + *len, cap - 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : 0;
		*len += (size_t)n;
	}
	return 0;
}

ssize_t pm_read_text_file(const char *path, char *buf, size_t cap)
{
	if (cap == 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	int rc = read_fd_into(fd, buf, cap, &len, 1024);
	close(fd);
	if (rc < 0)
		return -1;
	buf[len] = '\0';
	return (ssize_t)len;
}

int pm_start_time(pid_t pid, uint64_t *out)
{
	struct proc_stat st;
	if (proc_stat_read(pid, 0, &st) != 0 || st.nfields < 22)
		return -1;
	*out = st.start_time;
	return 0;
}

/* A pidfd polls readable once its process has exited (a zombie included). */
static bool pidfd_exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int n;
	do
		n = poll(&p, 1, 0);
	while (n < 0 && errno == EINTR);
	return n != 0; /* an error is taken as gone: the caller attaches afresh */
}

bool pm_still_same(struct procmem *pm)
{
	if (pm->gone)
		return false;
	if (pm->pidfd >= 0)
		return !pidfd_exited(pm->pidfd); /* ~0.5 us, a /proc/PID/stat read ~10 */
	uint64_t st;
	return pm_start_time(pm->pid, &st) == 0 && st == pm->start_time;
}

/* Parses a hexadecimal number at *p; advances *p past it. false if there is none. */
static bool parse_hex(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;
	int digits = 0;
	for (; s < end && digits < 17; s++, digits++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else
			break;
		v = v << 4 | d;
	}
	if (digits == 0 || digits > 16)
		return false;
	*p = s;
	*out = v;
	return true;
}

static bool parse_dec(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;
	int digits = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++, digits++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false; /* over 2^64 - 1 (inodes take all 64 bits, e.g. on FUSE) */
		v = v * 10 + d;
	}
	if (digits == 0)
		return false;
	*p = s;
	*out = v;
	return true;
}

static bool expect_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/* One line of /proc/PID/maps, [line, end) without its newline:
 * "START-END PERM OFFSET MAJ:MIN INODE [PATH]" (hex but INODE; the path is padded with
 * spaces, and the kernel escapes a newline in it as \012). Hand-parsed: sscanf was 8% of
 * the tracer's CPU while Python processes started. */
int pm_parse_map_line(const char *line, const char *end, struct pm_map *m)
{
	const char *p = line;
	uint64_t start, stop, off, major, minor, inode;
	memset(m, 0, sizeof(*m));
	if (!parse_hex(&p, end, &start) || !expect_char(&p, end, '-') || !parse_hex(&p, end, &stop) ||
	    !expect_char(&p, end, ' ') || end - p < 5)
		return -1;
	memcpy(m->perms, p, 4);
	p += 4;
	if (!expect_char(&p, end, ' ') || !parse_hex(&p, end, &off) || !expect_char(&p, end, ' ') ||
	    !parse_hex(&p, end, &major) || !expect_char(&p, end, ':') || !parse_hex(&p, end, &minor) ||
	    !expect_char(&p, end, ' ') || !parse_dec(&p, end, &inode))
		return -1;
	m->start = start;
	m->end = stop;
	m->offset = off;
	m->inode = inode;
	m->dev = major <= UINT32_MAX && minor <= UINT32_MAX ?
			 (uint64_t)makedev((unsigned)major, (unsigned)minor) : UINT64_MAX;
	while (p < end && *p == ' ')
		p++;
	if (p < end) {
		m->path = strndup(p, (size_t)(end - p));
		if (!m->path)
			return -1;
	}
	return 0;
}

/* A /proc file whose size stat cannot tell (it says 0), malloc'd and NUL-terminated: the
 * whole of it, or its first bytes if it is longer than max. Length, or -1. */
static ssize_t read_whole_proc_file(const char *path, size_t max, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t cap = 16384, len = 0;
	char *buf = malloc(cap);
	/* the buffer bounds the reads: max bytes at one or more a read */
	int rc = buf ? read_fd_into(fd, buf, cap, &len, SIZE_MAX) : -1;
	while (rc == 1 && cap * 2 <= max + 1) {
		char *nb = realloc(buf, cap * 2);
		if (!nb) {
			rc = -1;
			break;
		}
		buf = nb;
		cap *= 2;
		rc = read_fd_into(fd, buf, cap, &len, SIZE_MAX);
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return -1;
	}
	if (rc == 1) { /* cut at max: keep whole lines only */
		char *nl = memrchr(buf, '\n', len);
		len = nl ? (size_t)(nl - buf) + 1 : 0;
	}
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

#define PM_MAPS_MAX_BYTES (64u << 20) /* ~150 bytes a line: 65536 maps fit */

int pm_read_maps(pid_t pid, struct pm_maps *out)
{
	char path[64], *text;
	out->v = NULL;
	out->n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	ssize_t len = read_whole_proc_file(path, PM_MAPS_MAX_BYTES, &text);
	if (len < 0)
		return -1;
	size_t alloc = 0;
	int rc = 0;
	const char *p = text, *end = text + len;
	while (p < end && out->n < PM_MAX_MAPS) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
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
		if (pm_parse_map_line(p, line_end, &out->v[out->n]) == 0)
			out->n++;
		p = line_end + 1;
	}
	free(text);
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
	while ((e = readdir(d)) != NULL && *n < ph_limits.tasks) { /* issue 12 */
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
