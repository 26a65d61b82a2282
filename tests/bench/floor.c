/* futex_floor [--raw]: attach the empty floor programs (floor.bpf.c; --raw: the raw
 * tracepoint pair with a syscall-number filter) and hold them until SIGINT/SIGTERM.
 * Prints "attached" on stdout once both are attached.
 * Exit status 0 on a clean detach, 1 on failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"
#include "hold.h"

int main(int argc, char **argv)
{
	struct floor_bpf *skel;

	hold_setup();

	bool raw = argc > 1 && strcmp(argv[1], "--raw") == 0;
	skel = floor_bpf__open();
	if (skel) {
		bpf_program__set_autoload(skel->progs.floor_enter, !raw);
		bpf_program__set_autoload(skel->progs.floor_exit, !raw);
		bpf_program__set_autoload(skel->progs.raw_enter, raw);
		bpf_program__set_autoload(skel->progs.raw_exit, raw);
		if (floor_bpf__load(skel)) {
			floor_bpf__destroy(skel);
			skel = NULL;
		}
	}
	if (!skel) {
		fprintf(stderr, "futex_floor: cannot load BPF programs: %s\n", strerror(errno));
		return 1;
	}
	if (floor_bpf__attach(skel)) {
		fprintf(stderr, "futex_floor: cannot attach: %s "
			"(is tracefs mounted at /sys/kernel/tracing?)\n", strerror(errno));
		floor_bpf__destroy(skel);
		return 1;
	}
	hold_until_signal();
	floor_bpf__destroy(skel);
	return 0;
}
