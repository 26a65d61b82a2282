/* Unit tests of the second looks' bookkeeping (recheck.h), for chains of GIL waits above
 * all: the earliest look that later looks do not contradict is kept (the span a gil_wait
 * proof covers grows with it), a look that contradicts it replaces it, a GIL chain is
 * looked at for as long as it lasts at most every_ns apart while other waits stop after
 * RC_LOOKS looks, one read of a process takes all its GIL chains, and GIL chains and the
 * other waits never take each other's share of the table. Times are made-up nanoseconds
 * (the table keeps no clock of its own). */
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

static struct gil_look look(pid_t holder, uint64_t switches, uint64_t at_ns)
{
	return (struct gil_look){ .holder = holder, .switches_known = true, .switches = switches,
				  .at_ns = at_ns };
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
	struct gil_look l = look(PID + 1, 7, 10 * S);
	recheck_add_gil(&R, PID, PID, 1, 0x1000, 0, 55, &l, 2 * S, 10 * S);
	struct rc_entry c = take(11 * S);
	assert_true(c.gil);
	assert_int_equal(c.chain_start_j, 55);
	assert_int_equal(c.look.at_ns, 10 * S);
	/* the same holder and count a second later: the first look stays */
	struct gil_look same = look(PID + 1, 7, 11 * S);
	recheck_gil_looked(&R, PID, PID, &same);
	c = take(13 * S);
	assert_int_equal(c.look.at_ns, 10 * S);
	/* a look that lacks a fact (no holder seen: the GIL being handed over) says nothing
	 * against it: it stays */
	struct gil_look none = { .switches_known = true, .switches = 7, .at_ns = 13 * S };
	recheck_gil_looked(&R, PID, PID, &none);
	c = take(15 * S);
	assert_int_equal(c.look.at_ns, 10 * S);
	/* the GIL changed hands: the new look is the one a proof starts from */
	struct gil_look moved = look(PID + 1, 8, 15 * S);
	recheck_gil_looked(&R, PID, PID, &moved);
	c = take(17 * S);
	assert_int_equal(c.look.at_ns, 15 * S);
	assert_int_equal(c.look.switches, 8);
	struct gil_look other = look(PID + 2, 8, 17 * S);
	recheck_gil_looked(&R, PID, PID, &other);
	c = take(19 * S);
	assert_int_equal(c.look.holder, PID + 2);
	/* a kept look without a holder cannot start a proof: any look replaces it */
	struct gil_look none8 = { .switches_known = true, .switches = 9, .at_ns = 19 * S };
	recheck_gil_looked(&R, PID, PID, &none8); /* another count: it replaces 'other' */
	struct gil_look back = look(PID + 1, 9, 20 * S);
	recheck_gil_looked(&R, PID, PID, &back);
	c = take(21 * S);
	assert_int_equal(c.look.at_ns, 20 * S);
}

/* Besides the earliest look, the earliest since which every look found the holder blocked
 * is kept: a holder that ran at the first look and then blocked holding the GIL. */
static void blocked_look_kept(void **state)
{
	(void)state;
	struct gil_look l = look(PID + 1, 7, 10 * S);
	l.holder_state = 'R';
	recheck_add_gil(&R, PID, PID, 1, 0x1000, 0, 55, &l, 2 * S, 10 * S);
	struct rc_entry c = take(11 * S);
	assert_int_equal(c.blocked.holder, 0);
	struct gil_look s1 = look(PID + 1, 7, 11 * S), s2 = look(PID + 1, 7, 13 * S);
	s1.holder_state = 'S';
	s2.holder_state = 'D';
	recheck_gil_looked(&R, PID, PID, &s1);
	recheck_gil_looked(&R, PID, PID, &s2);
	c = take(13 * S);
	assert_int_equal(c.look.at_ns, 10 * S);
	assert_int_equal(c.blocked.at_ns, 11 * S);
	/* running again: no longer blocked since then */
	struct gil_look r = look(PID + 1, 7, 15 * S);
	r.holder_state = 'R';
	recheck_gil_looked(&R, PID, PID, &r);
	c = take(15 * S);
	assert_int_equal(c.blocked.holder, 0);
	assert_int_equal(c.look.at_ns, 10 * S);
}

/* One read of a process takes all its GIL chains, due or not, once per pass. */
static void one_read_takes_every_chain(void **state)
{
	(void)state;
	struct gil_look l = look(PID + 1, 7, 0);
	recheck_add_gil(&R, PID, PID, 1, 0x1000, 0, 55, &l, 2 * S, 0);
	recheck_add_gil(&R, PID, PID + 2, 1, 0x1000, 0, 56, &l, 2 * S, S / 2);
	recheck_add_gil(&R, PID + 9, PID + 9, 1, 0x1000, 0, 57, &l, 2 * S, 0);
	recheck_add(&R, PID, PID + 3, 1, 0x2000, 0, S / 2);
	struct rc_entry c;
	assert_true(recheck_take_due(&R, S, PID, &c));
	assert_int_equal(c.tid, PID);
	assert_true(recheck_take_due(&R, S, PID, &c));
	assert_int_equal(c.tid, PID + 2); /* due at 1.5 s: taken with the first */
	assert_false(recheck_take_due(&R, S, PID, &c)); /* the other wait is not due; once */
	assert_true(recheck_take_due(&R, S, 0, &c));
	assert_int_equal(c.pid, PID + 9);
	assert_false(recheck_take_due(&R, S, 0, &c));
}

static void gil_chain_looked_while_it_lasts(void **state)
{
	(void)state;
	struct gil_look l = look(PID + 1, 7, 0);
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
	struct gil_look l = look(PID + 1, 7, 0);
	for (pid_t t = 1; t <= RC_MAX; t++)
		recheck_add_gil(&R, PID, PID + t, 1, 0x1000, 0, 55, &l, 2 * S, (uint64_t)t);
	size_t ngil = 0, free_slots = 0;
	for (size_t i = 0; i < RC_MAX; i++) {
		ngil += R.e[i].tid && R.e[i].gil;
		free_slots += !R.e[i].tid;
	}
	assert_int_equal(ngil, RC_GIL_MAX);
	assert_int_equal(free_slots, RC_MAX - RC_GIL_MAX);
	/* the last GIL chain added took the place of the one due last (added last before it) */
	bool newest = false, evicted = false;
	for (size_t i = 0; i < RC_MAX; i++) {
		newest |= R.e[i].tid == PID + RC_MAX;
		evicted |= R.e[i].tid == PID + RC_MAX - 1;
	}
	assert_true(newest && !evicted);
	/* the other waits still find room, and when the table is full they take each other's
	 * places, never a GIL chain's (due last, at a long every_ns) */
	for (pid_t t = 1; t <= RC_MAX; t++)
		recheck_add(&R, PID + 1, PID + 1000 + t, 1, 0x2000, 0, 0);
	size_t other = 0;
	ngil = 0;
	for (size_t i = 0; i < RC_MAX; i++) {
		other += R.e[i].tid && !R.e[i].gil;
		ngil += R.e[i].tid && R.e[i].gil;
	}
	assert_int_equal(other, RC_MAX - RC_GIL_MAX);
	assert_int_equal(ngil, RC_GIL_MAX);
}

/* Without GIL chains the table works as it always did: full, a new wait takes the place
 * of the one due last. */
static void other_waits_evicted_as_before(void **state)
{
	(void)state;
	for (pid_t t = 1; t <= RC_MAX; t++)
		recheck_add(&R, PID, PID + t, 1, 0x2000, 0, (uint64_t)t * S);
	recheck_add(&R, PID, PID + 500, 1, 0x2000, 0, 0);
	bool last = false, added = false;
	for (size_t i = 0; i < RC_MAX; i++) {
		last |= R.e[i].tid == PID + RC_MAX;
		added |= R.e[i].tid == PID + 500;
	}
	assert_true(added && !last);
}

/* A thread's GIL chain replacing its own older entry counts against the GIL share too:
 * a table of other waits whose threads all go on to long GIL chains (a pool woken by work)
 * keeps RC_GIL_MAX chains at most, and room for the other waits. */
static void replaced_entries_keep_the_shares(void **state)
{
	(void)state;
	struct gil_look l = look(PID + 1, 7, 0);
	for (pid_t t = 1; t <= RC_MAX; t++)
		recheck_add(&R, PID, PID + t, 1, 0x2000, 0, (uint64_t)t);
	for (pid_t t = 1; t <= RC_MAX; t++)
		recheck_add_gil(&R, PID, PID + t, 1, 0x1000, 0, 55, &l, 2 * S, 100 + (uint64_t)t);
	size_t ngil = 0, used = 0;
	for (size_t i = 0; i < RC_MAX; i++) {
		ngil += R.e[i].tid && R.e[i].gil;
		used += R.e[i].tid != 0;
	}
	assert_int_equal(ngil, RC_GIL_MAX);
	assert_int_equal(used, RC_GIL_MAX); /* the replaced entries' places are free */
	for (pid_t t = 1; t <= RC_MAX + 1; t++) /* more than fits: each finds a place */
		recheck_add(&R, PID + 2, PID + 5000 + t, 1, 0x2000, 0, 200);
	bool last = false;
	for (size_t i = 0; i < RC_MAX; i++)
		last |= R.e[i].tid == PID + 5000 + RC_MAX + 1;
	assert_true(last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(earliest_look_kept, fresh),
		cmocka_unit_test_setup(blocked_look_kept, fresh),
		cmocka_unit_test_setup(one_read_takes_every_chain, fresh),
		cmocka_unit_test_setup(gil_chain_looked_while_it_lasts, fresh),
		cmocka_unit_test_setup(gil_chains_keep_to_their_share, fresh),
		cmocka_unit_test_setup(other_waits_evicted_as_before, fresh),
		cmocka_unit_test_setup(replaced_entries_keep_the_shares, fresh),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
