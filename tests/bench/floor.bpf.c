// SPDX-License-Identifier: GPL-2.0
/* The benchmark's "floor": empty programs on the futex syscall tracepoints. Whatever a
 * futex tracer built on these tracepoints does, it cannot cost less than this.
 * The raw_* pair is the other design's floor (futex_floor --raw): raw tracepoints on every
 * system call's entry and exit that keep only futex(2) by its number. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define NR_FUTEX 202 /* x86_64 */

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

/* raw_tp sys_enter(regs, id): the syscall number is an argument. */
SEC("raw_tp/sys_enter")
int raw_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != NR_FUTEX)
		return 0;
	return 1;
}

/* raw_tp sys_exit(regs, ret): the number must be read from regs->orig_ax. */
SEC("raw_tp/sys_exit")
int raw_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	if (BPF_CORE_READ(regs, orig_ax) != NR_FUTEX)
		return 0;
	return 1;
}
