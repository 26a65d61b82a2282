/* fakemem: regions of a fake process image (see fakemem.h). */
#include "fakemem.h"

#include <stdlib.h>
#include <string.h>

#include "procmem.h"

static int fm_cmp(const void *a, const void *b)
{
	const struct fm_region *x = a, *y = b;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Sorts and drops regions that overlap their predecessor (or wrap around). */
static void fm_normalize(struct fakemem *fm)
{
	if (fm->n == 0)
		return; /* fm->v is NULL */
	qsort(fm->v, fm->n, sizeof(*fm->v), fm_cmp);
	size_t keep = 0;
	for (size_t i = 0; i < fm->n; i++) {
		const struct fm_region *r = &fm->v[i];
		if (r->addr + r->len < r->addr)
			continue;
		if (keep && fm->v[keep - 1].addr + fm->v[keep - 1].len > r->addr)
			continue;
		fm->v[keep++] = *r;
	}
	fm->n = keep;
}

int fm_parse(struct fakemem *fm, const unsigned char *data, size_t len)
{
	size_t pos = 0, cap = 0;
	memset(fm, 0, sizeof(*fm));
	while (len - pos >= 12 && fm->n < FM_MAX_REGIONS) {
		struct fm_region r;
		memcpy(&r.addr, data + pos, 8);
		memcpy(&r.len, data + pos + 8, 4);
		pos += 12;
		if (r.len > len - pos)
			break;
		r.data = data + pos;
		pos += r.len;
		if (r.len == 0)
			continue;
		if (fm->n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct fm_region *nv = realloc(fm->v, nc * sizeof(*nv));
			if (!nv) {
				fm_free(fm);
				return -1;
			}
			fm->v = nv;
			cap = nc;
		}
		fm->v[fm->n++] = r;
	}
	fm_normalize(fm);
	return 0;
}

void fm_free(struct fakemem *fm)
{
	free(fm->v);
	memset(fm, 0, sizeof(*fm));
}

/* Index of the region holding addr, or fm->n. */
static size_t fm_find(const struct fakemem *fm, uint64_t addr)
{
	size_t lo = 0, hi = fm->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct fm_region *r = &fm->v[mid];
		if (addr < r->addr)
			hi = mid;
		else if (addr - r->addr >= r->len)
			lo = mid + 1;
		else
			return mid;
	}
	return fm->n;
}

int fm_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct fakemem *fm = ctx;
	size_t i = fm_find(fm, addr), done = 0;
	/* at most one step per region: each step consumes the rest of a region */
	for (; done < len && i < fm->n; i++) {
		const struct fm_region *r = &fm->v[i];
		uint64_t a = addr + done;
		if (a < r->addr || a - r->addr >= r->len)
			return PM_FAULT; /* a hole */
		size_t off = (size_t)(a - r->addr), n = r->len - off;
		if (n > len - done)
			n = len - done;
		memcpy((char *)buf + done, r->data + off, n);
		done += n;
	}
	return done == len ? PM_OK : PM_FAULT;
}

int fm_write_region(FILE *f, uint64_t addr, const void *data, uint32_t len)
{
	if (fwrite(&addr, 8, 1, f) != 1 || fwrite(&len, 4, 1, f) != 1)
		return -1;
	return len == 0 || fwrite(data, len, 1, f) == 1 ? 0 : -1;
}
