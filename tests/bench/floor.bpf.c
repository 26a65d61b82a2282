// SPDX-License-Identifier: GPL-2.0
/* The benchmark's "floor": empty programs on the futex syscall tracepoints. Whatever a
 * futex tracer built on these tracepoints does, it cannot cost less than this. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp/syscalls/sys_enter_futex")
int floor_enter(void *ctx)
{
	return 0;
}

SEC("tp/syscalls/sys_exit_futex")
int floor_exit(void *ctx)
{
	return 0;
}
