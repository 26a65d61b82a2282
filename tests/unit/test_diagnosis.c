/* Unit tests of the diagnosis rules on synthetic snapshots (user diagnose.c and
 * waitgraph.c): what is a proven `hang` (shutdown_join, all_threads_blocked, gil_wait,
 * self_deadlock, deadlock, orphaned_lock) and what must stay a `long_wait` (README, "What a
 * thread waits for" and the `hang` codes): a thread that sleeps, polls, has a timeout, or
 * whose wait has not lasted the threshold never makes a proof. No process, no BPF: the
 * snapshots are built here the way the reader (user/python) fills them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "diagnose.h"
#include "lockown.h"
#include "waitgraph.h"

#define SYS_FUTEX 202                 /* x86_64 */
#define FUTEX_WAIT_PRIVATE (0 | 128)  /* FUTEX_WAIT | FUTEX_PRIVATE_FLAG */
#define FUTEX_WAIT_SHARED 0
#define PID 4000
#define STDLIB "/usr/lib/python3.11/"

struct snap {
	struct py_process p;
	struct py_thread t[8];
	struct py_frame f[8][4];
	bool not_long[8];   /* this thread's wait has NOT lasted the threshold */
};

static struct snap S;

static bool long_blocked(void *arg, pid_t tid, uint64_t uaddr)
{
	struct snap *s = arg;
	(void)uaddr;
	for (size_t i = 0; i < s->p.nthreads; i++)
		if (s->t[i].tid == tid)
			return !s->not_long[i];
	return false;
}

static const struct diag_waits W = { long_blocked, &S };

static void frame(int ti, int fi, const char *function, const char *file, int line)
{
	S.f[ti][fi] = (struct py_frame){ .function = (char *)function, .file = (char *)file,
					 .line = line, .first_line = 1, .iblock = -1 };
	if ((size_t)fi + 1 > S.t[ti].nframes)
		S.t[ti].nframes = (size_t)fi + 1;
}

/* Thread i in an untimed futex wait on a private futex (a lock), frames added after. */
static struct py_thread *thread(int i, pid_t tid, const char *name, int daemon)
{
	struct py_thread *t = &S.t[i];
	*t = (struct py_thread){ .tid = tid, .thread_id = 0x7f0000001000ull + (uint64_t)i,
				 .name = (char *)name, .daemon = daemon, .state = PY_STATE_LOCK_WAIT,
				 .syscall_nr = SYS_FUTEX, .futex_addr = 0x1000 + 0x40 * (uint64_t)i,
				 .futex_op = FUTEX_WAIT_PRIVATE, .frames = S.f[i] };
	if ((size_t)i + 1 > S.p.nthreads)
		S.p.nthreads = S.p.os_threads = (size_t)i + 1;
	return t;
}

static int fresh(void **state)
{
	(void)state;
	memset(&S, 0, sizeof(S));
	S.p.pid = PID;
	S.p.threads = S.t;
	strcpy(S.p.version, "3.11.2");
	return 0;
}

/* 3.7-3.13 shape: MainThread in threading._shutdown; a non-daemon worker stuck in a
 * Queue.get() called from worker.py:12. */
static void shutdown_snapshot(void)
{
	thread(0, PID, "MainThread", 0);
	frame(0, 0, "_shutdown", STDLIB "threading.py", 1590);
	thread(1, PID + 1, "worker", 0);
	frame(1, 0, "Condition.wait", STDLIB "threading.py", 320);
	frame(1, 1, "Queue.get", STDLIB "queue.py", 171);
	frame(1, 2, "run", "/srv/app/worker.py", 12);
}

static void shutdown_join(void **state)
{
	(void)state;
	struct diagnosis d;
	shutdown_snapshot();
	assert_true(diagnose_process(&S.p, PID, 2.0, false, &W, &d));
	assert_string_equal(diag_code_name(d.code), "shutdown_join");
	assert_int_equal(d.waiter, PID);
	assert_int_equal(d.nculprits, 1);
	assert_int_equal(d.culprits[0], PID + 1);
	assert_non_null(strstr(d.summary, "'worker'"));
	assert_non_null(strstr(d.summary, "Queue.get() at worker.py:12"));
	assert_non_null(strstr(d.summary, "daemon=True"));
}

static void shutdown_daemon_ignored(void **state)
{
	(void)state;
	struct diagnosis d;
	shutdown_snapshot();
	struct py_thread *t = thread(2, PID + 2, "ticker", 1);  /* a daemon that sleeps */
	t->state = PY_STATE_SLEEP;
	t->syscall_nr = 230; /* clock_nanosleep */
	assert_true(diagnose_process(&S.p, PID, 2.0, false, &W, &d));
	assert_string_equal(diag_code_name(d.code), "shutdown_join");
	assert_int_equal(d.nculprits, 1);
	assert_int_equal(d.culprits[0], PID + 1);
}

/* Each of these makes the worker able to move: never a hang. */
static void shutdown_not_proven(void **state)
{
	(void)state;
	struct diagnosis d;
	for (int variant = 0; variant < 5; variant++) {
		fresh(NULL);
		shutdown_snapshot();
		struct py_thread *t = &S.t[1];
		switch (variant) {
		case 0: t->state = PY_STATE_SLEEP; t->syscall_nr = 230; break;  /* sleeps */
		case 1: t->futex_timed = true; break;                           /* has a timeout */
		case 2: S.not_long[1] = true; break;                            /* not long yet */
		case 3: t->futex_op = FUTEX_WAIT_SHARED; break;                 /* shared futex */
		case 4: t->daemon = -1; t->state = PY_STATE_RUNNING; t->syscall_nr = -1; break;
		}
		assert_false(diagnose_process(&S.p, PID, 2.0, false, &W, &d));
	}
}

static void all_threads_blocked(void **state)
{
	(void)state;
	struct diagnosis d;
	thread(0, PID, "MainThread", 0);
	frame(0, 0, "main", "/srv/app/abba.py", 30);
	thread(1, PID + 1, "ledger", 0);
	frame(1, 0, "transfer", "/srv/app/abba.py", 16);
	assert_true(diagnose_all_threads_blocked(&S.p, &W));
	assert_true(diagnose_process(&S.p, PID + 1, 1.5, false, &W, &d));
	assert_string_equal(diag_code_name(d.code), "all_threads_blocked");
	assert_int_equal(d.nculprits, 2);
	assert_non_null(strstr(d.summary, "unless a signal handler releases"));
	assert_non_null(strstr(d.summary, "transfer() at abba.py:16"));
}

static void all_threads_blocked_not_proven(void **state)
{
	(void)state;
	struct diagnosis d;
	for (int variant = 0; variant < 6; variant++) {
		fresh(NULL);
		thread(0, PID, "MainThread", 0);
		frame(0, 0, "main", "/srv/app/abba.py", 30);
		struct py_thread *t = thread(1, PID + 1, "ledger", 0);
		frame(1, 0, "transfer", "/srv/app/abba.py", 16);
		switch (variant) {
		case 0: S.p.os_threads = 3; break;              /* a thread the read did not see */
		case 1: S.p.threads_error = "cycle"; break;     /* the thread list was cut */
		case 2: t->tid = 0; break;                      /* tid unknown: never guessed */
		case 3: t->futex_timed = true; break;
		case 4: S.not_long[1] = true; break;
		case 5: t->state = PY_STATE_SLEEP; t->syscall_nr = 7; break; /* poll() */
		}
		assert_false(diagnose_all_threads_blocked(&S.p, &W));
		assert_false(diagnose_process(&S.p, PID + 1, 1.5, false, &W, &d));
	}
	fresh(NULL);                                            /* one thread is not "all" */
	thread(0, PID, "MainThread", 0);
	assert_false(diagnose_all_threads_blocked(&S.p, &W));
}

/* MainThread (PID) waits for the GIL; a second thread (PID + 1, named name) runs
 * scan() at gil.py:21 inside re.sub(), holding the GIL when holds. Returns the second. */
static struct py_thread *gil_pair(const char *name, bool holds, struct py_thread **main_out)
{
	struct py_thread *m = thread(0, PID, "MainThread", 0);
	m->state = PY_STATE_GIL_WAIT;
	frame(0, 0, "main", "/srv/app/gil.py", 9);
	struct py_thread *h = thread(1, PID + 1, name, 0);
	h->state = PY_STATE_RUNNING;
	h->syscall_nr = -1;
	h->gil = holds;
	frame(1, 0, "sub", STDLIB "re/__init__.py", 185);
	frame(1, 1, "scan", "/srv/app/gil.py", 21);
	*main_out = m;
	return h;
}

#define NOW_NS (100ull * 1000000000ull)
static struct gil_look G_BEFORE, G_NOW;

/* W with two looks at the GIL: now, as S.p shows it (diagnose_gil_look), the holder
 * running (stat state R) with 2 s of CPU time; and one ago_s seconds before that found
 * holder and switch count sw, the holder running with 1 s of CPU time. */
static struct diag_waits *gil_looked(pid_t holder, uint64_t sw, double ago_s)
{
	static struct diag_waits w;
	S.p.gil_switches_ns = NOW_NS;
	diagnose_gil_look(&S.p, PID, &G_NOW);
	G_NOW.holder_state = 'R';
	G_NOW.holder_run_known = true;
	G_NOW.holder_run_ns = 2000000000ull;
	G_BEFORE = (struct gil_look){ .holder = holder, .switches_known = true, .switches = sw,
				      .at_ns = NOW_NS - (uint64_t)(ago_s * 1e9), .holder_state = 'R',
				      .holder_run_known = true, .holder_run_ns = 1000000000ull };
	w = W;
	w.gil_before = &G_BEFORE;
	w.gil_now = &G_NOW;
	return &w;
}

static void gil_wait(void **state)
{
	(void)state;
	struct diagnosis d;
	struct py_thread *m;
	gil_pair("reflect-regex", true, &m);
	S.p.gil_switches_known = true;
	S.p.gil_switches = 7;
	assert_true(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 7, 1.5), &d));
	assert_string_equal(diag_code_name(d.code), "gil_wait");
	assert_int_equal(d.waiter, PID);
	assert_int_equal(d.nculprits, 1);
	assert_int_equal(d.culprits[0], PID + 1);
	assert_non_null(strstr(d.summary, "'reflect-regex'"));
	assert_non_null(strstr(d.summary, "sub() at gil.py:21"));
	assert_non_null(strstr(d.summary, "has waited at least 1.5s for the GIL, and in that time no "
				  "other thread has taken it from thread 'reflect-regex'"));
}

/* On 3.x one look proves nothing (a chain of GIL waits goes on through the GIL's mutex,
 * from which the waiter may take the GIL): the hang needs an earlier look, a second or more
 * before, with the same holder and the same switch count. 2.7's one semaphore wait is
 * proof by itself. */
static void gil_wait_needs_two_looks(void **state)
{
	(void)state;
	struct diagnosis d;
	struct py_thread *m;
	gil_pair("reflect-regex", true, &m);
	S.p.gil_switches_known = true;
	S.p.gil_switches = 7;
	S.p.version_hex = 0x030b02f0;
	assert_false(diagnose_process(&S.p, PID, 4.0, true, &W, &d));
	/* the GIL changed hands between the looks (the waiter may have had it) */
	assert_false(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 6, 1.5), &d));
	/* another holder then */
	assert_false(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 2, 7, 1.5), &d));
	/* looks too close together: less than a second, or less than the threshold */
	assert_false(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 7, 0.5), &d));
	struct diag_waits *w3 = gil_looked(PID + 1, 7, 2.5);
	w3->gil_need_s = 3.0;
	assert_false(diagnose_process(&S.p, PID, 4.0, true, w3, &d));
	G_BEFORE.at_ns = NOW_NS - 3000000000ull;
	assert_true(diagnose_process(&S.p, PID, 4.0, true, w3, &d));
	/* the earlier look had no switch count */
	G_BEFORE.switches_known = false;
	assert_false(diagnose_process(&S.p, PID, 4.0, true, w3, &d));
	/* the holder kept the GIL for want of a CPU (runnable, it did not run), or stopped */
	struct diag_waits *w4 = gil_looked(PID + 1, 7, 1.5);
	G_NOW.holder_run_ns = G_BEFORE.holder_run_ns + GIL_HOLDER_RAN_NS - 1;
	assert_false(diagnose_process(&S.p, PID, 4.0, true, w4, &d));
	G_BEFORE.holder_state = G_NOW.holder_state = 'T';
	assert_false(diagnose_process(&S.p, PID, 4.0, true, w4, &d));
	G_NOW.holder_run_known = false;
	assert_false(diagnose_process(&S.p, PID, 4.0, true, w4, &d));
	/* it ran enough to have dropped the GIL had it checked, or it blocks holding it */
	G_NOW.holder_run_known = true;
	G_NOW.holder_run_ns = G_BEFORE.holder_run_ns + GIL_HOLDER_RAN_NS;
	assert_true(diagnose_process(&S.p, PID, 4.0, true, w4, &d));
	G_NOW.holder_run_ns = G_BEFORE.holder_run_ns;
	G_BEFORE.holder_state = G_NOW.holder_state = 'S';
	assert_false(diagnose_process(&S.p, PID, 4.0, true, w4, &d)); /* not kept as blocked */
	w4->gil_before_blocked = &G_BEFORE;
	assert_true(diagnose_process(&S.p, PID, 4.0, true, w4, &d));
	G_BEFORE.holder_state = 'R';
	assert_false(diagnose_process(&S.p, PID, 4.0, true, w4, &d));
	/* the earliest look found the holder running; it blocked, holding the GIL, after less
	 * CPU time than proves a long call (a GIL / C-mutex deadlock): the looks since which
	 * it was blocked prove it once they span the threshold */
	struct gil_look blocked = G_BEFORE;
	blocked.holder_state = 'S';
	blocked.at_ns = NOW_NS - 1000000000ull;
	w4->gil_before_blocked = &blocked;
	G_NOW.holder_run_ns = G_BEFORE.holder_run_ns + GIL_HOLDER_RAN_NS / 2;
	assert_true(diagnose_process(&S.p, PID, 4.0, true, w4, &d));
	assert_non_null(strstr(d.summary, "has waited at least 1.0s"));
	blocked.at_ns = NOW_NS - 900000000ull;
	assert_false(diagnose_process(&S.p, PID, 4.0, true, w4, &d));
	/* no switch count now: nothing proves the GIL stayed */
	S.p.gil_switches_known = false;
	assert_false(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 7, 1.5), &d));
	S.p.gil_switches_known = true;
	assert_true(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 7, 1.5), &d));
	/* 2.7: one look */
	S.p.version_hex = 0x020712f0;
	S.p.gil_switches_known = false;
	assert_true(diagnose_process(&S.p, PID, 4.0, false, &W, &d));
	assert_int_equal(d.culprits[0], PID + 1);
}

/* gil_wait is proven only with a holder other than the waiter, while the waiter still waits
 * for the GIL (or runs between two timed waits): anything else stays a long_wait. */
static void gil_wait_unproven(void **state)
{
	(void)state;
	struct diagnosis d;
	struct py_thread *m;
	struct py_thread *o = gil_pair("worker", false, &m);
	S.p.gil_switches_known = true; /* and unchanged since a look that found 'worker' */
	S.p.version_hex = 0x030b02f0;
	/* nobody shows as the holder (the GIL being handed over) */
	assert_false(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 0, 2.0), &d));
	/* the waiter itself holds it: its wait is over */
	m->gil = true;
	m->state = PY_STATE_RUNNING;
	assert_false(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 0, 2.0), &d));
	/* another thread holds it, but the waiter has moved on to another call */
	m->gil = false;
	o->gil = true;
	m->state = PY_STATE_SLEEP;
	m->syscall_nr = 35; /* nanosleep */
	assert_false(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 0, 2.0), &d));
	/* still waiting for the GIL that 'worker' holds, which no thread took from it since a
	 * look 2 s before: proven */
	m->state = PY_STATE_GIL_WAIT;
	m->syscall_nr = 202;
	assert_true(diagnose_process(&S.p, PID, 4.0, true, gil_looked(PID + 1, 0, 2.0), &d));
	assert_int_equal(d.culprits[0], PID + 1);
}

static void lone_lock_wait_is_no_hang(void **state)
{
	(void)state;
	struct diagnosis d;
	thread(0, PID, "MainThread", 0);
	frame(0, 0, "main", "/srv/app/cache.py", 50);
	struct py_thread *r = thread(1, PID + 1, "refresher", 0);
	r->state = PY_STATE_SLEEP;
	r->syscall_nr = 45; /* recvfrom */
	frame(1, 0, "refresh", "/srv/app/cache.py", 40);
	assert_false(diagnose_process(&S.p, PID, 12.0, false, &W, &d));
	assert_false(diagnose_process(&S.p, PID + 99, 12.0, false, &W, &d)); /* unknown waiter */
}

/* ---- the wait-for graph's proofs ------------------------------------------------------- */

static struct wf_info INFO[8];
static struct lo_lock LOCKS[4];

static struct lo_lock *lock(int i, enum lo_kind kind, const char *name)
{
	LOCKS[i] = (struct lo_lock){ .kind = kind, .obj = 0x7f1000 + 0x100 * (uint64_t)i,
				     .futex = 0x1000 + 0x40 * (uint64_t)i,
				     .reentrant = kind == LO_RLOCK, .frame = 0, .line = 10 + i };
	strncpy(LOCKS[i].name, name, LO_NAME_LEN - 1);
	return &LOCKS[i];
}

/* Thread ti waits for lock l held (by `with`, frame 0) by thread hi. */
static void waits(int ti, struct lo_lock *l, int hi)
{
	enum wf_kind k = l->kind == LO_RLOCK ? WF_RLOCK : l->kind == LO_CONDITION ? WF_CONDITION : WF_LOCK;
	INFO[ti] = (struct wf_info){ .kind = k, .object = l->obj, .lock = l,
				     .holder = hi >= 0 ? &S.t[hi] : NULL, .holder_frame = 0,
				     .holder_line = l->line, .held_by = l, .timeout_s = -1,
				     .self = &S.t[ti] };
}

static bool graph(struct diagnosis *d)
{
	struct waitgraph g = { .p = &S.p, .info = INFO };
	return waitgraph_diagnose(&g, S.t[0].tid, &W, d);
}

static int fresh_graph(void **state)
{
	fresh(state);
	memset(INFO, 0, sizeof(INFO));
	memset(LOCKS, 0, sizeof(LOCKS));
	return 0;
}

static void two_threads(void)
{
	thread(0, PID + 7, "A", 0);
	frame(0, 0, "pay", "/srv/app/abba.py", 16);
	thread(1, PID + 3, "B", 0);
	frame(1, 0, "audit", "/srv/app/abba.py", 24);
}

static void self_deadlock(void **state)
{
	(void)state;
	struct diagnosis d;
	thread(0, PID, "MainThread", 0);
	frame(0, 0, "again", "/srv/app/self.py", 8);
	waits(0, lock(0, LO_LOCK, "state_lock"), 0);
	assert_true(graph(&d));
	assert_string_equal(diag_code_name(d.code), "self_deadlock");
	assert_int_equal(d.nculprits, 1);
	assert_int_equal(d.culprits[0], PID);
	assert_non_null(strstr(d.summary, "already holds"));

	fresh_graph(NULL);                       /* an RLock taken again is fine */
	thread(0, PID, "MainThread", 0);
	frame(0, 0, "again", "/srv/app/self.py", 8);
	waits(0, lock(0, LO_RLOCK, "state_lock"), 0);
	assert_false(graph(&d));
}

static void lock_order_deadlock(void **state)
{
	(void)state;
	struct diagnosis d;
	two_threads();
	waits(0, lock(1, LO_LOCK, "ledger_lock"), 1);  /* A waits for ledger_lock, held by B */
	waits(1, lock(0, LO_LOCK, "audit_lock"), 0);   /* B waits for audit_lock, held by A */
	assert_true(graph(&d));
	assert_string_equal(diag_code_name(d.code), "deadlock");
	assert_int_equal(d.nculprits, 2);
	assert_int_equal(d.culprits[0], PID + 3);      /* from the smallest tid */
	assert_int_equal(d.culprits[1], PID + 7);
	assert_non_null(strstr(d.summary, "ledger_lock"));
	assert_non_null(strstr(d.summary, "audit_lock"));
	assert_non_null(strstr(d.summary, "take the locks in one order"));
}

static void deadlock_not_proven(void **state)
{
	(void)state;
	struct diagnosis d;
	for (int variant = 0; variant < 4; variant++) {
		fresh_graph(NULL);
		two_threads();
		waits(0, lock(1, LO_LOCK, "ledger_lock"), 1);
		waits(1, lock(0, LO_LOCK, "audit_lock"), 0);
		switch (variant) {
		case 0: S.t[1].futex_timed = true; break;   /* B gives up after a timeout */
		case 1: S.not_long[0] = true; break;        /* A has not waited the threshold */
		case 2: INFO[1].holder = NULL; break;       /* audit_lock's holder unknown */
		case 3: S.t[1].state = PY_STATE_SLEEP; break;
		}
		assert_false(graph(&d));
	}
}

static void orphaned_lock(void **state)
{
	(void)state;
	struct diagnosis d;
	thread(0, PID, "MainThread", 0);
	frame(0, 0, "main", "/srv/app/orphan.py", 20);
	waits(0, lock(0, LO_RLOCK, "db_lock"), -1);
	INFO[0].holder_dead = true;
	INFO[0].dead_owner = 0x7f00beef;
	assert_true(graph(&d));
	assert_string_equal(diag_code_name(d.code), "orphaned_lock");
	assert_int_equal(d.waiter, PID);
	S.not_long[0] = true;                            /* not waited the threshold yet */
	assert_false(graph(&d));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(shutdown_join, fresh),
		cmocka_unit_test_setup(shutdown_daemon_ignored, fresh),
		cmocka_unit_test_setup(shutdown_not_proven, fresh),
		cmocka_unit_test_setup(all_threads_blocked, fresh),
		cmocka_unit_test_setup(all_threads_blocked_not_proven, fresh),
		cmocka_unit_test_setup(gil_wait, fresh),
		cmocka_unit_test_setup(gil_wait_unproven, fresh),
		cmocka_unit_test_setup(gil_wait_needs_two_looks, fresh),
		cmocka_unit_test_setup(lone_lock_wait_is_no_hang, fresh),
		cmocka_unit_test_setup(self_deadlock, fresh_graph),
		cmocka_unit_test_setup(lock_order_deadlock, fresh_graph),
		cmocka_unit_test_setup(deadlock_not_proven, fresh_graph),
		cmocka_unit_test_setup(orphaned_lock, fresh_graph),
	};
	return cmocka_run_group_tests_name("diagnosis", tests, NULL, NULL);
}
