/* Unit tests of option parsing for the anti-abuse limits (limits_parse, limitcfg.h): the
 * syntax and ranges README's options table and --help promise, and that a refused value
 * gives a one-line reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "limitcfg.h"

static char why[256];

static int parse(int opt, const char *arg)
{
	why[0] = 0;
	return limits_parse(opt, arg, why, sizeof(why));
}

static void refused(int opt, const char *arg)
{
	struct limits before = limits;
	assert_int_equal(parse(opt, arg), -1);
	assert_true(why[0] != 0 && strchr(why, '\n') == NULL);
	/* a refused value ends the program (usage error, exit 2); all but --rate-limit also
	 * leave the setting as it was (--rate-limit 5/0 sets the rate before it reads BURST) */
	if (opt != LIMIT_OPT_RATE)
		assert_memory_equal(&before, &limits, sizeof(before));
}

static int reset(void **state)
{
	(void)state;
	limits.rate_per_s = 20;
	limits.burst = 100;
	return 0;
}

static void defaults(void **state)
{
	(void)state; /* README: 20/100, suppressed 10 s, 4096 threads and frames, 16M, 2, 1 s */
	assert_true(limits.rate_per_s == 20 && limits.burst == 100);
	assert_true(limits.suppressed_interval_s == 10);
	assert_int_equal(limits.max_threads, 4096);
	assert_int_equal(limits.max_frames, 4096);
	assert_int_equal(limits.max_event_bytes, 16u << 20);
	assert_int_equal(limits.metrics_per_peer, 2);
	assert_true(limits.metrics_header_s == 1);
}

static void rate_limit(void **state)
{
	(void)state;
	assert_int_equal(parse(LIMIT_OPT_RATE, "5/7"), 0);
	assert_true(limits.rate_per_s == 5 && limits.burst == 7);
	assert_int_equal(parse(LIMIT_OPT_RATE, "2.5"), 0);   /* RATE alone keeps BURST */
	assert_true(limits.rate_per_s == 2.5 && limits.burst == 7);
	assert_int_equal(parse(LIMIT_OPT_RATE, "0"), 0);     /* 0: no limit */
	assert_true(limits.rate_per_s == 0);
	const char *bad[] = { "", "/5", "x", "5/", "5/0", "5/x", "-1", "5/7/9", "nan", "inf", "1e7" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(LIMIT_OPT_RATE, bad[i]);
}

static void counts_and_sizes(void **state)
{
	(void)state;
	assert_int_equal(parse(LIMIT_OPT_MAX_THREADS, "1"), 0);
	assert_int_equal(limits.max_threads, 1);
	assert_int_equal(parse(LIMIT_OPT_MAX_FRAMES, "4096"), 0);
	assert_int_equal(limits.max_frames, 4096);
	refused(LIMIT_OPT_MAX_THREADS, "0");
	refused(LIMIT_OPT_MAX_THREADS, "4097");
	refused(LIMIT_OPT_MAX_FRAMES, "-1");
	refused(LIMIT_OPT_MAX_FRAMES, "12abc");
	refused(LIMIT_OPT_MAX_FRAMES, " 12");
	assert_int_equal(parse(LIMIT_OPT_MAX_EVENT_BYTES, "256K"), 0);
	assert_int_equal(limits.max_event_bytes, 256u << 10);
	assert_int_equal(parse(LIMIT_OPT_MAX_EVENT_BYTES, "64m"), 0);
	assert_int_equal(limits.max_event_bytes, 64u << 20);
	assert_int_equal(parse(LIMIT_OPT_MAX_EVENT_BYTES, "65536"), 0);
	assert_int_equal(limits.max_event_bytes, 64u << 10);
	refused(LIMIT_OPT_MAX_EVENT_BYTES, "63K");
	refused(LIMIT_OPT_MAX_EVENT_BYTES, "65M");
	refused(LIMIT_OPT_MAX_EVENT_BYTES, "1G");
	refused(LIMIT_OPT_MAX_EVENT_BYTES, "99999999999999999999999");
	assert_int_equal(parse(LIMIT_OPT_METRICS_PER_PEER, "64"), 0);
	refused(LIMIT_OPT_METRICS_PER_PEER, "65");
	refused(LIMIT_OPT_METRICS_PER_PEER, "0");
}

static void seconds(void **state)
{
	(void)state;
	assert_int_equal(parse(LIMIT_OPT_SUPPRESSED_INTERVAL, "0.1"), 0);
	assert_true(limits.suppressed_interval_s == 0.1);
	refused(LIMIT_OPT_SUPPRESSED_INTERVAL, "0.05");
	refused(LIMIT_OPT_SUPPRESSED_INTERVAL, "86401");
	refused(LIMIT_OPT_SUPPRESSED_INTERVAL, "1s");
	assert_int_equal(parse(LIMIT_OPT_METRICS_HEADER_TIMEOUT, "0.05"), 0);
	refused(LIMIT_OPT_METRICS_HEADER_TIMEOUT, "61");
	refused(LIMIT_OPT_METRICS_HEADER_TIMEOUT, "nan");
	refused(LIMIT_OPT_LAST, "1");                   /* not a limit */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test_setup(rate_limit, reset),
		cmocka_unit_test(counts_and_sizes),
		cmocka_unit_test(seconds),
	};
	return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
