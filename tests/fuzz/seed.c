/* seed: snapshots a live Python process into fuzzer seeds, through the real reader.
 * Usage: seed PID OUTDIR NAME
 *        seed --version-index X.Y   (prints X.Y's index in the layout table, the version
 *                                    byte of the seeds; exit status 1 if it has none)
 * Reads PID with py_read_process (which resolves layout and addresses from its files and
 * maps), then walks it again with py_read_resolved over a recording backend that serves
 * /proc/PID/mem and keeps every byte range read. Writes
 *   OUTDIR/pyreader/NAME      the pyimage (tests/fuzz/pyimage.h) of those ranges
 *   OUTDIR/debugoffsets/NAME  3.13+: the _Py_DebugOffsets block at the start of _PyRuntime
 *   OUTDIR/scan/NAME          2.7-3.9: the symbol-less scan (py_resolve_by_scan) of a window
 *                             of .bss around the real pointer, then the walk from its result
 * The recording backend refuses whole-block reads (aligned PM_BLOCK bytes), so the block
 * cache falls back to exact reads and only the bytes the decoders use are kept. The target
 * should be stopped (SIGSTOP) so both walks see the same memory. The written image is then
 * read back and walked over fakemem, as fuzz_pyreader does: exit status 0 only when that
 * replay finds the same threads and frames as the recording walk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakemem.h"
#include "pyimage.h"
#include "pyreader.h"

#define MAX_RANGES 200000u

struct range {
	uint64_t addr;
	uint32_t len;
	unsigned char *data;
};

struct recorder {
	int fd;
	struct range *v;
	size_t n, cap;
};

static int rec_add(struct recorder *r, uint64_t addr, const void *data, size_t len)
{
	if (r->n >= MAX_RANGES || len > UINT32_MAX)
		return -1;
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 1024;
		struct range *nv = realloc(r->v, nc * sizeof(*nv));
		if (!nv)
			return -1;
		r->v = nv;
		r->cap = nc;
	}
	unsigned char *copy = malloc(len);
	if (!copy)
		return -1;
	memcpy(copy, data, len);
	r->v[r->n++] = (struct range){ addr, (uint32_t)len, copy };
	return 0;
}

/* pm_backend_fn over /proc/PID/mem that records what it serves. */
static int rec_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct recorder *r = ctx;
	if (len == PM_BLOCK && addr % PM_BLOCK == 0)
		return PM_FAULT; /* make the cache read exactly what is asked */
	ssize_t n = pread(r->fd, buf, len, (off_t)addr);
	if (n != (ssize_t)len)
		return PM_FAULT;
	return rec_add(r, addr, buf, len) == 0 ? PM_OK : PM_FAULT;
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Writes the recorded ranges as non-overlapping regions (overlaps and neighbours merged). */
static int write_regions(FILE *f, struct recorder *r)
{
	qsort(r->v, r->n, sizeof(*r->v), range_cmp);
	size_t i = 0;
	while (i < r->n) {
		uint64_t start = r->v[i].addr, end = start + r->v[i].len;
		size_t j = i + 1;
		for (; j < r->n && r->v[j].addr <= end; j++)
			if (r->v[j].addr + r->v[j].len > end)
				end = r->v[j].addr + r->v[j].len;
		if (end - start > UINT32_MAX)
			return -1;
		unsigned char *buf = malloc(end - start);
		if (!buf)
			return -1;
		for (size_t k = i; k < j; k++)
			memcpy(buf + (r->v[k].addr - start), r->v[k].data, r->v[k].len);
		int rc = fm_write_region(f, start, buf, (uint32_t)(end - start));
		free(buf);
		if (rc != 0)
			return -1;
		i = j;
	}
	return 0;
}

static int write_file(const char *dir, const char *sub, const char *name,
		      const struct py_resolved *res, struct recorder *rec, const void *raw,
		      size_t rawlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "seed: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int rc = res ? (pi_write_header(f, res) == 0 && write_regions(f, rec) == 0 ? 0 : -1)
		     : (fwrite(raw, rawlen, 1, f) == 1 ? 0 : -1);
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* 3.13+: the _Py_DebugOffsets block, recorded too (the fuzzer builds the layout from it). */
static int debug_offsets(struct recorder *rec, const struct py_resolved *res, const char *dir,
			 const char *name)
{
	size_t need = pylayout_debug_offsets_size(res->layout.major, res->layout.minor);
	unsigned char raw[4096];
	if (need == 0)
		return 0;
	if (need > sizeof(raw) || pread(rec->fd, raw, need, (off_t)res->runtime) != (ssize_t)need ||
	    rec_add(rec, res->runtime, raw, need) != 0)
		return -1;
	return write_file(dir, "debugoffsets", name, NULL, NULL, raw, need);
}

/* Walks the image at path as fuzz_pyreader does (3.13+ layouts: the table's, which the
 * seeds' _Py_DebugOffsets reproduce). Frames found, or -1. */
static long replay(const char *path, const struct py_layout *layout, size_t *threads)
{
	static unsigned char buf[1u << 24];
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	struct py_resolved res;
	struct fakemem fm;
	struct py_process p;
	char err[256];
	long frames = -1;
	if (pi_decode_header(buf, len, &res) != 0 ||
	    fm_parse(&fm, buf + PI_HEADER_SIZE, len - PI_HEADER_SIZE) != 0)
		return -1;
	res.layout = *layout;
	if (py_read_resolved(&res, fm_read, &fm, &p, err, sizeof(err)) == 0) {
		frames = 0;
		for (size_t i = 0; i < p.nthreads; i++)
			frames += (long)p.threads[i].nframes;
		*threads = p.nthreads;
		py_process_free(&p);
	}
	fm_free(&fm);
	return frames;
}

static void rec_free(struct recorder *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].data);
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

/* fuzz_scan's seed (versions that scan without symbols: 2.7-3.9). */
static int scan_seed(int fd, const struct py_resolved *res, const char *dir, const char *name)
{
	const struct py_layout *l = &res->layout;
	uint64_t ptr = l->start == PY_START_INTERP_HEAD ? res->interp_head
							: res->runtime + l->rt_interp_head;
	if (l->start != PY_START_INTERP_HEAD && !l->runtime_in_data)
		return 0; /* 3.10+: _PyRuntime has a section of its own, nothing to scan */
	struct recorder rec = { .fd = fd };
	struct py_resolved found = *res;
	struct py_process p;
	char err[256], path[4096];
	uint64_t range[2] = { (ptr & ~(uint64_t)7) - 2048, 6144 };
	found.runtime = found.interp_head = 0;
	int rc = -1;
	if (py_resolve_by_scan(&found, rec_read, &rec, range[0], range[1]) != 0 ||
	    py_read_resolved(&found, rec_read, &rec, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "seed: %s: the scan did not find the interpreter\n", name);
		goto out;
	}
	py_process_free(&p);
	snprintf(path, sizeof(path), "%s/scan/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		goto out;
	rc = pi_write_header(f, &found) == 0 && fwrite(range, sizeof(range), 1, f) == 1 &&
	     write_regions(f, &rec) == 0 ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
out:
	rec_free(&rec);
	return rc;
}

static size_t count_frames(const struct py_process *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nthreads; i++)
		n += p->threads[i].nframes;
	return n;
}

static int snapshot(pid_t pid, const char *dir, const char *name)
{
	char err[512] = "", path[64];
	struct py_process p;
	struct py_resolved res;
	struct recorder rec = { .fd = -1 };
	struct py_reader *r = py_reader_new();
	int rc = -1;
	if (!r || py_read_process(r, pid, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "seed: pid %d: %s\n", (int)pid, r ? err : "out of memory");
		goto out;
	}
	py_process_free(&p);
	if (py_reader_resolved(r, pid, &res) != 0)
		goto out;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	rec.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (rec.fd < 0)
		snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
	if (rec.fd < 0 || py_read_resolved(&res, rec_read, &rec, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "seed: pid %d: walk failed: %s\n", (int)pid, err);
		goto out;
	}
	size_t frames = count_frames(&p);
	size_t named = 0;
	for (size_t i = 0; i < p.nthreads; i++)
		named += p.threads[i].name != NULL;
	fprintf(stderr, "seed: %s: %zu threads (%zu named), %zu frames, %zu ranges\n", name,
		p.nthreads, named, frames, rec.n);
	size_t threads = p.nthreads, rthreads = 0;
	py_process_free(&p);
	if (frames > 0 && debug_offsets(&rec, &res, dir, name) == 0 &&
	    write_file(dir, "pyreader", name, &res, &rec, NULL, 0) == 0) {
		char file[4096];
		snprintf(file, sizeof(file), "%s/pyreader/%s", dir, name);
		long again = replay(file, &res.layout, &rthreads);
		rc = again == (long)frames && rthreads == threads ? 0 : -1;
		if (rc == 0)
			rc = scan_seed(rec.fd, &res, dir, name);
		if (rc != 0)
			fprintf(stderr, "seed: %s: replay found %zu threads, %ld frames\n", name,
				rthreads, again);
	}
out:
	rec_free(&rec);
	if (rec.fd >= 0)
		close(rec.fd);
	py_reader_free(r);
	return rc;
}

/* X.Y's index in the layout table (pylayout_nth), or -1. */
static long version_index(const char *version)
{
	unsigned major, minor;
	char end;
	if (sscanf(version, "%u.%u%c", &major, &minor, &end) != 2)
		return -1;
	for (size_t i = 0; i < pylayout_count(); i++)
		if (pylayout_nth(i)->major == major && pylayout_nth(i)->minor == minor)
			return (long)i;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--version-index") == 0) {
		long i = version_index(argv[2]);
		if (i < 0) {
			fprintf(stderr, "seed: CPython %s is not in the layout table\n", argv[2]);
			return 1;
		}
		printf("%ld\n", i);
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: seed PID OUTDIR NAME | seed --version-index X.Y\n");
		return 2;
	}
	return snapshot((pid_t)atoi(argv[1]), argv[2], argv[3]) == 0 ? 0 : 1;
}
