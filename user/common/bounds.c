/* bounds: caps on the cost of one watched process (see bounds.h). */
#include "bounds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ph_limits ph_limits = {
	.maps_bytes = 64u << 20,  /* a 65,530-mapping process with 1 KiB names fits */
	.maps_names = 4096,       /* one r-xp mapping per shared object: far above real programs */
	.elf_bytes = 16u << 20,   /* CPython 2.7-3.13 files read 0.1-0.8 MiB here: 20x room */
	.scan_bytes = 4u << 20,   /* CPython's .bss + .data: 100-600 KiB */
	.tasks = 16384,           /* threads listed per read (a status file each in a container) */
};

static const struct {
	const char *name;
	uint64_t *value;
	uint64_t min, max;
} LIMITS[] = {
	{ "maps-bytes", &ph_limits.maps_bytes, 1u << 20, 1ull << 32 },
	{ "maps-names", &ph_limits.maps_names, 16, 1u << 20 },
	{ "elf-bytes", &ph_limits.elf_bytes, 1u << 20, 1ull << 32 },
	{ "scan-bytes", &ph_limits.scan_bytes, 64u << 10, 1ull << 30 },
	{ "tasks", &ph_limits.tasks, 64, 4u << 20 },
};

int limits_set(const char *arg, char *why, size_t whylen)
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		snprintf(why, whylen, "expected NAME=VALUE");
		return -1;
	}
	size_t nl = (size_t)(eq - arg);
	for (size_t i = 0; i < sizeof(LIMITS) / sizeof(LIMITS[0]); i++) {
		if (strlen(LIMITS[i].name) != nl || strncmp(arg, LIMITS[i].name, nl) != 0)
			continue;
		char *end;
		errno = 0;
		unsigned long long v = strtoull(eq + 1, &end, 10);
		unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
		if (shift)
			end++;
		if (errno || end == eq + 1 || *end || eq[1] == '-' || v > (UINT64_MAX >> shift) ||
		    (v << shift) < LIMITS[i].min || (v << shift) > LIMITS[i].max) {
			snprintf(why, whylen, "%s takes a number from %llu to %llu (K/M/G suffixes allowed)",
				 LIMITS[i].name, (unsigned long long)LIMITS[i].min,
				 (unsigned long long)LIMITS[i].max);
			return -1;
		}
		*LIMITS[i].value = v << shift;
		return 0;
	}
	snprintf(why, whylen, "unknown limit (known: maps-bytes, maps-names, elf-bytes, scan-bytes, tasks)");
	return -1;
}

void limits_describe(char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(LIMITS) / sizeof(LIMITS[0]) && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s=%llu", i ? " " : "", LIMITS[i].name,
				 (unsigned long long)*LIMITS[i].value);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}
