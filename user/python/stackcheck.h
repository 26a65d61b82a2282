/* stackcheck: telling a consistent read of a running thread's Python stack from a torn one.
 * Owns: the links (frame address, f_back, code, position) a stack walk saw, the comparison
 * of two walks of the same thread, and the "fresh" reads a repeated walk makes: memory read
 * directly from the process (never from the snapshot's block cache, which may hold a block
 * read long before), through a small per-walk block cache so a walk of 40 frames costs a
 * few preads, not 40.
 * Why: a thread that runs while it is read pushes and pops frames under the reader. On
 * CPython <= 3.10 a popped frame object goes to a free list (its f_back becomes the list's
 * link) or is reused for the next call, so a walk that reaches it follows a chain that
 * never existed: outer frames missing, a loop, or someone else's frames. Two walks that
 * saw the same chain (same frames, same links, same code objects, same positions but the
 * innermost frame's, which moves while the thread runs in it) describe a stack the thread
 * had; pyreader walks again (a bounded number of times) until two agree, else marks the
 * stack. Used by pyreader.c (read_thread). */
#ifndef PH_STACKCHECK_H
#define PH_STACKCHECK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "procmem.h"

#define SC_FRESH_BLOCKS 16u /* blocks of one fresh walk (4 KiB each, direct-mapped) */

struct sc_link {
	uint64_t frame, back, code, pos;
};

struct stack_check {
	struct sc_link *cur, *prev; /* this walk's links, the walk before's */
	size_t ncur, nprev, capcur, capprev;
	bool oom;                   /* a link could not be recorded: the walks cannot be compared */
	uint64_t block_addr[SC_FRESH_BLOCKS];
	bool block_valid[SC_FRESH_BLOCKS];
	unsigned char block[SC_FRESH_BLOCKS][PM_BLOCK];
	uint64_t preads;            /* fresh block reads made (for the benchmark) */
};

/* NULL when out of memory. */
struct stack_check *sc_new(void);
void sc_free(struct stack_check *c);
/* Start a walk: the links recorded so far become the previous walk's; fresh=true also voids
 * the fresh blocks (the walk reads the process as it is now). */
void sc_begin_walk(struct stack_check *c, bool fresh);
/* Forget every link (a new thread). */
void sc_reset(struct stack_check *c);
/* One frame step of the current walk. */
void sc_record(struct stack_check *c, uint64_t frame, uint64_t back, uint64_t code, uint64_t pos);
/* Whether the current walk saw exactly what the previous one saw (the innermost frame's
 * position excepted); false when either could not be recorded whole. */
bool sc_same_as_previous(const struct stack_check *c);
/* len bytes at addr read from the process now (blocks read once per walk), as pm_read:
 * PM_OK, PM_FAULT or PM_GONE. len at most PM_BLOCK. */
int sc_read_fresh(struct stack_check *c, struct procmem *pm, uint64_t addr, void *buf, size_t len);
#endif
