/* A non-Python process blocked on a futex, for tests/test_trace_*.py.
 * Prints "ready <pid> <tid> <futex address in hex>" and then waits on that word forever
 * (FUTEX_WAIT, private, no timeout).  `trace_futex_block N` sets alarm(N) first: the
 * process then dies of SIGALRM after N seconds. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint32_t word;

int main(int argc, char **argv)
{
	if (argc > 1)
		alarm(atoi(argv[1]));
	printf("ready %d %ld %#lx\n", (int)getpid(), (long)syscall(SYS_gettid), (unsigned long)&word);
	fflush(stdout);
	for (;;)
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}
