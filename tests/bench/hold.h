/* hold.h: what the benchmark's BPF attachers (floor.c, variants.c) share: libbpf messages
 * without its debug chatter, and holding attached programs until SIGINT/SIGTERM after
 * saying "attached" on stdout (the drivers wait for that line). */
#ifndef BENCH_HOLD_H
#define BENCH_HOLD_H
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

static volatile sig_atomic_t hold_stop;

static void hold_on_signal(int sig)
{
	(void)sig;
	hold_stop = 1;
}

static int hold_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Call first: quiet libbpf, catch SIGINT/SIGTERM (so that a signal during loading is not
 * missed). */
static void hold_setup(void)
{
	struct sigaction sa;
	libbpf_set_print(hold_libbpf_print);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = hold_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Say "attached", then wait for SIGINT/SIGTERM. */
static void hold_until_signal(void)
{
	printf("attached\n");
	fflush(stdout);
	while (!hold_stop)
		pause();
}
#endif
