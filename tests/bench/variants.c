/* design_variant NAME PID: attach the NAME_enter/NAME_exit pair of variants.bpf.c with PID
 * as the one watched process, print "attached", hold until SIGINT/SIGTERM. Exit 0, or 1
 * with a message. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "hold.h"
#include "variants.skel.h"

/* Whether program p is NAME_enter or NAME_exit. */
static bool in_pair(const struct bpf_program *p, const char *name)
{
	const char *pn = bpf_program__name(p);
	size_t n = strlen(name);
	return strncmp(pn, name, n) == 0 && (strcmp(pn + n, "_enter") == 0 || strcmp(pn + n, "_exit") == 0);
}

static int watch(struct variants_bpf *s, unsigned int pid)
{
	struct { unsigned int tgid, flags; unsigned long long lo, hi; } w = { pid, 1, 0, 0 };
	unsigned int slot = pid & 65535u;
	if (bpf_map__update_elem(s->maps.watch_hash, &pid, sizeof(pid), &w, sizeof(w), BPF_ANY))
		return -1;
	return bpf_map__update_elem(s->maps.watch_array, &slot, sizeof(slot), &w, sizeof(w), BPF_ANY);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: design_variant NAME PID\n");
		return 2;
	}
	hold_setup();
	struct variants_bpf *s = variants_bpf__open();
	if (!s) {
		fprintf(stderr, "design_variant: cannot open: %s\n", strerror(errno));
		return 1;
	}
	struct bpf_program *p;
	int n = 0;
	bpf_object__for_each_program(p, s->obj) {
		bool on = in_pair(p, argv[1]);
		n += on;
		bpf_program__set_autoload(p, on);
	}
	if (n != 2 || variants_bpf__load(s) || watch(s, (unsigned int)strtoul(argv[2], NULL, 10)) ||
	    variants_bpf__attach(s)) {
		fprintf(stderr, "design_variant: cannot load/attach variant %s (%d programs): %s\n",
			argv[1], n, strerror(errno));
		variants_bpf__destroy(s);
		return 1;
	}
	hold_until_signal();
	variants_bpf__destroy(s);
	return 0;
}
