/* futex_bench: ns per call of tight syscall loops, to measure what a tracer adds.
 *
 *   futex_bench [-n ITERS] [-r REPEATS] [-g] [OP...]
 *
 * OP is one of
 *   wake     FUTEX_WAKE on a private word nobody waits on (returns 0 at once)
 *   wait     FUTEX_WAIT with a value mismatch (returns EAGAIN at once; a wait-type op
 *            that a futex tracer records on entry and forgets on exit)
 *   getppid  an unrelated syscall (pays only the syscall-tracing slow path)
 *   sigchld  rt_sigaction(SIGCHLD) alternating SIG_IGN and SIG_DFL: every call changes
 *            whether children are auto-reaped (an event for a SIGCHLD tracer, and its
 *            per-process rate limit once past the burst)
 *   sigusr1  rt_sigaction(SIGUSR1, SIG_DFL): a sigaction a SIGCHLD tracer filters out
 * (default: all three).  Each OP is timed REPEATS times over ITERS calls and the
 * best (minimum) ns/call is printed, one line per OP:  "<op> <ns_per_call>".
 *
 * -g  "gate": print "pid <PID>" on stdout, then block until a line (or EOF) arrives on
 *     stdin before measuring, so a driver can attach a tracer to this very pid first.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint32_t word;

static inline long futex(uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int op_wake(void) { return futex(&word, FUTEX_WAKE_PRIVATE, 1) < 0; }
static int op_wait(void)
{
	/* word is 0, we ask to sleep while it is 1: EAGAIN immediately */
	return !(futex(&word, FUTEX_WAIT_PRIVATE, 1) < 0 && errno == EAGAIN);
}
static int op_getppid(void) { return syscall(SYS_getppid) <= 0; }
static int op_sigchld(void)
{
	static int ign;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = (ign ^= 1) ? SIG_IGN : SIG_DFL;
	return sigaction(SIGCHLD, &sa, NULL) != 0;
}
static int op_sigusr1(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	return sigaction(SIGUSR1, &sa, NULL) != 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} ops[] = {
	{"wake", op_wake},
	{"wait", op_wait},
	{"getppid", op_getppid},
	{"sigchld", op_sigchld},
	{"sigusr1", op_sigusr1},
};

static double measure(int (*fn)(void), long iters)
{
	double t0 = now_ns();
	for (long i = 0; i < iters; i++) {
		if (fn()) {
			fprintf(stderr, "futex_bench: unexpected syscall result: %s\n", strerror(errno));
			exit(1);
		}
	}
	return (now_ns() - t0) / iters;
}

int main(int argc, char **argv)
{
	long iters = 1000000;
	int repeats = 3, gate = 0, opt;

	while ((opt = getopt(argc, argv, "n:r:gh")) != -1) {
		switch (opt) {
		case 'n': iters = atol(optarg); break;
		case 'r': repeats = atoi(optarg); break;
		case 'g': gate = 1; break;
		default:
			fprintf(stderr, "usage: %s [-n ITERS] [-r REPEATS] [-g] [wake|wait|getppid]...\n", argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (iters <= 0 || repeats <= 0) {
		fprintf(stderr, "futex_bench: -n and -r must be positive\n");
		return 2;
	}
	if (gate) {
		char line[64];
		printf("pid %d\n", (int)getpid());
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin) && ferror(stdin))
			return 1;
	}
	int nops = argc - optind;
	char **names = argv + optind;
	static char *all[] = {"wake", "wait", "getppid"};
	if (nops == 0) {
		nops = 3;
		names = all;
	}
	for (int k = 0; k < nops; k++) {
		size_t j;
		for (j = 0; j < sizeof(ops) / sizeof(ops[0]); j++)
			if (strcmp(ops[j].name, names[k]) == 0)
				break;
		if (j == sizeof(ops) / sizeof(ops[0])) {
			fprintf(stderr, "futex_bench: unknown op %s\n", names[k]);
			return 2;
		}
		measure(ops[j].fn, iters / 10 + 1); /* warm-up */
		double best = 1e30;
		for (int r = 0; r < repeats; r++) {
			double v = measure(ops[j].fn, iters);
			if (v < best)
				best = v;
		}
		printf("%s %.1f\n", ops[j].name, best);
		fflush(stdout);
	}
	return 0;
}
