/* stackline: the lines of kernel-captured frames whose line table the kernel copied only in
 * part. Owns: reading, for such a frame, the code object's whole line table from the live
 * process (through the reader's state for it) right when the stack arrives, proving it is
 * the same table (same code address, co_firstlineno, length, and the copied bytes as its
 * start), and decoding the line from it; or saying why not.
 * Why: the BPF walker copies the first PH_LINETABLE_LEN (512) bytes of each table. 3.11+
 * location tables take ~5 bytes per instruction, so a long function (asyncio's
 * BaseEventLoop._run_once: 775 bytes on 3.11, 664 on 3.12, 659 on 3.13) had "line": null
 * and no error; 2.7-3.9 lnotab decoding of a cut copy gave the last line copied instead.
 * Functions' code objects live as long as their function: the table is nearly always
 * still there; a module's top-level code is freed after its import (then the frame keeps
 * its error, which says the code object is gone). */
#ifndef PH_STACKLINE_H
#define PH_STACKLINE_H
#include "pyhang.h"
#include "pylayout.h"
#include "pyreader.h"

/* For every frame of t (decoded from se by pystack_decode with layout l) whose error is
 * PYSTACK_LINE_CUT: the line from the live process's table, or the error
 * STACKLINE_GONE. Never attaches to a process the reader does not hold already. */
void stackline_complete(struct py_reader *r, const struct ph_stack_event *se,
			const struct py_layout *l, struct py_thread *t);
extern const char STACKLINE_GONE[];
#endif
