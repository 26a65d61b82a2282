/* Unit tests of the /proc/PID/stat parser (procscan.h: proc_stat_parse, proc_stat_read,
 * proc_parent). Expected values are written out from proc(5)'s field list (3 state,
 * 4 ppid, 22 starttime, 39 processor) and from the lines built here; comm (field 2) is the
 * process's to choose, so lines whose comm holds spaces, ')' and ") (" that look like
 * fields must still give the fields after the last ')'. The last tests read this test's
 * own stat file after renaming itself with prctl(PR_SET_NAME), against getppid(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "procscan.h"

/* A real 6.x line (cat), 52 fields: state R, ppid 24084, starttime 2319828, processor 1. */
#define TAIL_AFTER_COMM                                                                     \
	" R 24084 24084 6573 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 2319828 3133440 360 "  \
	"18446744073709551615 94164448088064 94164448107945 140731260930448 0 0 0 0 0 0 0 " \
	"0 0 17 1 0 0 0 0 0 94164448123952 94164448125568 94165380902912 140731260934783 "  \
	"140731260934803 140731260934803 140731260936171 0\n"

static void plain_line(void **state)
{
	(void)state;
	struct proc_stat st;
	assert_int_equal(proc_stat_parse("24089 (cat)" TAIL_AFTER_COMM, &st), 0);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.ppid, 24084);
	assert_int_equal(st.start_time, 2319828);
	assert_int_equal(st.processor, 1);
	assert_int_equal(st.nfields, 52);
}

static void comm_that_looks_like_fields(void **state)
{
	(void)state;
	struct proc_stat st;
	/* comm "x) (Z 1 (y": a ") (" inside, a fake state and ppid after it */
	assert_int_equal(proc_stat_parse("7 (x) (Z 1 (y)" TAIL_AFTER_COMM, &st), 0);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.ppid, 24084);
	assert_int_equal(st.start_time, 2319828);
	/* comm ending in ')' and holding spaces: "a b) Z 1 )" */
	assert_int_equal(proc_stat_parse("7 (a b) Z 1 ))" TAIL_AFTER_COMM, &st), 0);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.ppid, 24084);
	/* comm "))))" */
	assert_int_equal(proc_stat_parse("7 (()))))" TAIL_AFTER_COMM, &st), 0);
	assert_int_equal(st.ppid, 24084);
	assert_int_equal(st.nfields, 52);
}

static void truncated_lines(void **state)
{
	(void)state;
	struct proc_stat st;
	/* cut inside comm, right after it, or after the state: no ppid */
	assert_int_equal(proc_stat_parse("24089 (ca", &st), -1);
	assert_int_equal(proc_stat_parse("24089 (cat)", &st), -1);
	assert_int_equal(proc_stat_parse("24089 (cat) ", &st), -1);
	assert_int_equal(proc_stat_parse("24089 (cat) R", &st), -1);
	assert_int_equal(proc_stat_parse("24089 (cat) R ", &st), -1);
	/* cut after the ppid: state and ppid, no start time, no processor */
	assert_int_equal(proc_stat_parse("24089 (cat) R 24084", &st), 0);
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.ppid, 24084);
	assert_int_equal(st.nfields, 4);
	assert_int_equal(st.processor, -1);
	/* cut after field 21 (itrealvalue): start time missing */
	assert_int_equal(proc_stat_parse("1 (cat) S 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19", &st), 0);
	assert_int_equal(st.nfields, 21);
	assert_int_equal(st.start_time, 0);
	/* cut after field 22: start time there, processor (39) not */
	assert_int_equal(proc_stat_parse("1 (cat) S 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 "
					 "4242\n", &st), 0);
	assert_int_equal(st.nfields, 22);
	assert_int_equal(st.start_time, 4242);
	assert_int_equal(st.processor, -1);
}

static void not_a_stat_line(void **state)
{
	(void)state;
	struct proc_stat st;
	assert_int_equal(proc_stat_parse("", &st), -1);
	assert_int_equal(proc_stat_parse("no parenthesis at all", &st), -1);
	assert_int_equal(proc_stat_parse("1 (x) R -5 1", &st), -1);    /* ppid not a number */
	assert_int_equal(proc_stat_parse("1 (x) R 99999999999 1", &st), -1); /* past pid_t */
	assert_int_equal(proc_stat_parse("1 (x)  R 1 1", &st), -1);   /* two spaces */
	assert_int_equal(proc_stat_parse("1 (x) RS 1 1", &st), -1);   /* state of two letters */
	assert_int_equal(proc_stat_parse("1 (x)R 1 1", &st), -1);     /* no space after comm */
	/* a start time that is not a number stops at field 21 */
	assert_int_equal(proc_stat_parse("1 (cat) S 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 "
					 "4x2 5", &st), 0);
	assert_int_equal(st.nfields, 21);
	/* processor out of range: unknown */
	assert_int_equal(proc_stat_parse("1 (c) S 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 "
					 "21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 70000 1", &st), 0);
	assert_int_equal(st.nfields, 40);
	assert_int_equal(st.processor, -1);
}

/* This process's own stat, its comm set to one that looks like fields. */
static void own_process(void **state)
{
	(void)state;
	char old[17] = "";
	assert_int_equal(prctl(PR_GET_NAME, old, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_SET_NAME, "a) (Z 1 b) X 9", 0, 0, 0), 0);
	struct proc_stat st;
	assert_int_equal(proc_stat_read(getpid(), 0, &st), 0);
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.nfields >= 52, 1);
	assert_int_equal(proc_parent(getpid()), getppid());
	assert_int_equal(proc_stat_read(getpid(), gettid(), &st), 0);
	assert_int_equal(st.ppid, getppid());
	assert_false(proc_has_exited(getpid()));
	prctl(PR_SET_NAME, old, 0, 0, 0);
}

/* A child: a zombie before it is reaped, gone after. */
static void zombie_then_gone(void **state)
{
	(void)state;
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0)
		_exit(0);
	siginfo_t si;
	assert_int_equal(waitid(P_PID, (id_t)c, &si, WEXITED | WNOWAIT), 0); /* not reaped */
	struct proc_stat st;
	assert_int_equal(proc_stat_read(c, 0, &st), 0);
	assert_int_equal(st.state, 'Z');
	assert_int_equal(st.ppid, getpid());
	assert_true(proc_has_exited(c));
	assert_int_equal(waitpid(c, NULL, 0), c);
	assert_int_equal(proc_stat_read(c, 0, &st), -1);
	assert_int_equal(proc_parent(c), -1);
	assert_true(proc_has_exited(c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(plain_line),
		cmocka_unit_test(comm_that_looks_like_fields),
		cmocka_unit_test(truncated_lines),
		cmocka_unit_test(not_a_stat_line),
		cmocka_unit_test(own_process),
		cmocka_unit_test(zombie_then_gone),
	};
	return cmocka_run_group_tests_name("procstat", tests, NULL, NULL);
}
