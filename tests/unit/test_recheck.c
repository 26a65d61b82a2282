/* Unit tests of the second looks' bookkeeping (recheck.h), for chains of GIL waits above
 * all: the earliest look that later looks do not contradict is kept (the span a gil_wait
 * proof covers grows with it), a look that differs replaces it, a GIL chain is looked at
 * for as long as it lasts at most every_ns apart while other waits stop after RC_LOOKS
 * looks, and GIL chains never take more than RC_GIL_MAX entries. Times are made up
 * nanoseconds (the table keeps no clock of its own). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "recheck.h"

#define S 1000000000ull
#define PID 4000

static struct recheck R;

static int fresh(void **state)
{
	(void)state;
	memset(&R, 0, sizeof(R));
	return 0;
}

static struct gil_look look(pid_t holder, uint64_t switches)
{
	return (struct gil_look){ .holder = holder, .switches_known = true, .switches = switches };
}

/* The one entry due at now (any process), which must exist. */
static struct rc_entry take(uint64_t now)
{
	struct rc_entry c;
	assert_true(recheck_take_due(&R, now, 0, &c));
	return c;
}

static void earliest_look_kept(void **state)
{
	(void)state;
	struct gil_look l = look(PID + 1, 7);
	recheck_add_gil(&R, PID, PID, 1, 0x1000, 0, 55, &l, 2 * S, 10 * S);
	struct rc_entry c = take(11 * S);
	assert_true(c.gil);
	assert_int_equal(c.chain_start_j, 55);
	assert_int_equal(c.look_ns, 10 * S);
	/* the same holder and count a second later: the first look stays */
	recheck_gil_looked(&R, PID, PID, &l, 11 * S);
	c = take(13 * S);
	assert_int_equal(c.look_ns, 10 * S);
	/* the GIL changed hands: the new look is the one a proof starts from */
	struct gil_look moved = look(PID + 1, 8);
	recheck_gil_looked(&R, PID, PID, &moved, 13 * S);
	c = take(15 * S);
	assert_int_equal(c.look_ns, 13 * S);
	assert_int_equal(c.look.switches, 8);
	/* a look without a holder or a count says nothing the same as any other */
	struct gil_look none = { 0 };
	recheck_gil_looked(&R, PID, PID, &none, 15 * S);
	c = take(17 * S);
	assert_int_equal(c.look_ns, 15 * S);
	recheck_gil_looked(&R, PID, PID, &none, 17 * S);
	c = take(19 * S);
	assert_int_equal(c.look_ns, 17 * S);
}

static void gil_chain_looked_while_it_lasts(void **state)
{
	(void)state;
	struct gil_look l = look(PID + 1, 7);
	recheck_add(&R, PID, PID + 5, 1, 0x2000, 0, 0);
	recheck_add_gil(&R, PID, PID, 1, 0x1000, 0, 55, &l, 3 * S, 0);
	uint64_t now = 0, last = 0;
	int gil_looks = 0, other_looks = 0;
	for (int i = 0; i < 40; i++) {
		int due = recheck_due_in_ms(&R, now);
		assert_true(due >= 0); /* the GIL chain never leaves by itself */
		now += (uint64_t)due * 1000000ull;
		struct rc_entry c;
		while (recheck_take_due(&R, now, 0, &c)) {
			if (c.gil) {
				/* 1, 2 s, then at most every_ns */
				assert_true(now - last <= 3 * S + 1000000ull);
				last = now;
				gil_looks++;
			} else {
				other_looks++;
			}
		}
	}
	assert_int_equal(other_looks, RC_LOOKS);
	assert_true(gil_looks >= 30);
	recheck_forget(&R, PID, PID);
	assert_int_equal(recheck_due_in_ms(&R, now), -1);
}

static void gil_chains_keep_to_their_share(void **state)
{
	(void)state;
	struct gil_look l = look(PID + 1, 7);
	for (pid_t t = 1; t <= RC_MAX; t++)
		recheck_add_gil(&R, PID, PID + t, 1, 0x1000, 0, 55, &l, 2 * S, (uint64_t)t);
	size_t ngil = 0, free_slots = 0;
	for (size_t i = 0; i < RC_MAX; i++) {
		ngil += R.e[i].tid && R.e[i].gil;
		free_slots += !R.e[i].tid;
	}
	assert_int_equal(ngil, RC_GIL_MAX);
	assert_int_equal(free_slots, RC_MAX - RC_GIL_MAX);
	/* the other waits still find room */
	for (pid_t t = 1; t <= RC_MAX - RC_GIL_MAX; t++)
		recheck_add(&R, PID + 1, PID + 1000 + t, 1, 0x2000, 0, 0);
	size_t other = 0;
	for (size_t i = 0; i < RC_MAX; i++)
		other += R.e[i].tid && !R.e[i].gil;
	assert_int_equal(other, RC_MAX - RC_GIL_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(earliest_look_kept, fresh),
		cmocka_unit_test_setup(gil_chain_looked_while_it_lasts, fresh),
		cmocka_unit_test_setup(gil_chains_keep_to_their_share, fresh),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
