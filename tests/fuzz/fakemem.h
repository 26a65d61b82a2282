/* fakemem: the memory of a process image as a list of (address, bytes) regions, served to
 * the reader through procmem's backend seam (pm_open_backend, see user/os/procmem.h).
 * Serialized form (what the fuzzers and tests/fuzz/seed write), little endian, repeated to
 * the end of the input:
 *     u64 address, u32 length, length bytes
 * A truncated last record is dropped. Regions are sorted by address; one that overlaps an
 * earlier one is dropped. A read succeeds only when every byte is covered (it may span
 * regions that touch), else it is PM_FAULT, as an unmapped page would be. */
#ifndef PH_FAKEMEM_H
#define PH_FAKEMEM_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FM_MAX_REGIONS 65536u

struct fm_region {
	uint64_t addr;
	uint32_t len;
	const unsigned char *data; /* points into the parsed input (not copied) */
};

struct fakemem {
	struct fm_region *v;
	size_t n;
};

/* Parses data (which must outlive fm). 0, or -1 when out of memory. */
int fm_parse(struct fakemem *fm, const unsigned char *data, size_t len);
void fm_free(struct fakemem *fm);
/* A pm_backend_fn: ctx is a struct fakemem. */
int fm_read(void *ctx, uint64_t addr, void *buf, size_t len);
/* Appends one serialized region to f. 0 or -1. (For writers of corpora.) */
int fm_write_region(FILE *f, uint64_t addr, const void *data, uint32_t len);
#endif
