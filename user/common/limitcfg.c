/* limitcfg: values and parsing of the anti-abuse caps (see limitcfg.h). */
#include "limitcfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct limits limits = {
	.rate_per_s = 20,
	.burst = 100,
	.exec_factor = 10,
	.suppressed_interval_s = 10,
	.max_threads = 4096,
	.max_frames = 4096,
	.max_event_bytes = 16u << 20,
	.metrics_per_peer = 2,
	.metrics_header_s = 1,
};

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, bool size)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno)
		return -1;
	if (size && (*end == 'K' || *end == 'k')) {
		v <<= 10;
		end++;
	} else if (size && (*end == 'M' || *end == 'm')) {
		v <<= 20;
		end++;
	}
	if (*end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_secs(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int limits_parse(int opt, const char *arg, char *why, size_t whylen)
{
	uint64_t u;
	double d;
	switch (opt) {
	case LIMIT_OPT_RATE: {
		char rate[64];
		const char *slash = strchr(arg, '/');
		size_t rl = slash ? (size_t)(slash - arg) : strlen(arg);
		if (rl == 0 || rl >= sizeof(rate))
			goto bad_rate;
		memcpy(rate, arg, rl);
		rate[rl] = '\0';
		if (parse_secs(rate, 0, 1e6, &d) < 0)
			goto bad_rate;
		limits.rate_per_s = d;
		if (slash) {
			if (parse_uint(slash + 1, 1, 1000000, &u, false) < 0)
				goto bad_rate;
			limits.burst = (uint32_t)u;
		}
		return 0;
bad_rate:
		snprintf(why, whylen, "expected EVENTS_PER_SECOND[/BURST], e.g. 20/100 (0: no limit)");
		return -1;
	}
	case LIMIT_OPT_SUPPRESSED_INTERVAL:
		if (parse_secs(arg, 0.1, 86400, &d) < 0) {
			snprintf(why, whylen, "expected seconds from 0.1 to 86400");
			return -1;
		}
		limits.suppressed_interval_s = d;
		return 0;
	case LIMIT_OPT_MAX_THREADS:
	case LIMIT_OPT_MAX_FRAMES:
		if (parse_uint(arg, 1, 4096, &u, false) < 0) {
			snprintf(why, whylen, "expected a count from 1 to 4096");
			return -1;
		}
		if (opt == LIMIT_OPT_MAX_THREADS)
			limits.max_threads = (uint32_t)u;
		else
			limits.max_frames = (uint32_t)u;
		return 0;
	case LIMIT_OPT_MAX_EVENT_BYTES:
		if (parse_uint(arg, 64u << 10, 64u << 20, &u, true) < 0) {
			snprintf(why, whylen, "expected a size from 64K to 64M");
			return -1;
		}
		limits.max_event_bytes = (uint32_t)u;
		return 0;
	case LIMIT_OPT_METRICS_PER_PEER:
		if (parse_uint(arg, 1, 64, &u, false) < 0) {
			snprintf(why, whylen, "expected a count from 1 to 64");
			return -1;
		}
		limits.metrics_per_peer = (uint32_t)u;
		return 0;
	case LIMIT_OPT_METRICS_HEADER_TIMEOUT:
		if (parse_secs(arg, 0.05, 60, &d) < 0) {
			snprintf(why, whylen, "expected seconds from 0.05 to 60");
			return -1;
		}
		limits.metrics_header_s = d;
		return 0;
	default:
		snprintf(why, whylen, "unknown limit");
		return -1;
	}
}
