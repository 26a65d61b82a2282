/* pystack: Python stacks taken by the BPF programs at the instant of an event.
 * Owns: describing a Python process to the BPF walker (struct ph_pyproc, built from the
 * reader's layout and addresses), and turning a captured struct ph_stack_event into the
 * reader's struct py_thread (strings of every PEP 393 width to UTF-8, lines from the copied
 * line table with the reader's decoders). */
#ifndef PH_PYSTACK_H
#define PH_PYSTACK_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "loader.h"
#include "pyhang.h"
#include "pylayout.h"
#include "pyreader.h"

/* Read pid once with the reader and install its description for the BPF walker; a copy
 * of the layout used goes to *layout_out (captured stacks are decoded with it later, even
 * when the reader has forgotten the process). 0, or -1 with a message. */
int pystack_describe(struct loader *ld, struct py_reader *r, pid_t pid, struct py_layout *layout_out,
		     char *err, size_t errlen);
/* Build ph_pyproc from a layout and addresses (exposed for tests and tools). */
int pystack_fill_pyproc(const struct py_layout *l, const struct py_addrs *a, unsigned version_hex,
			struct ph_pyproc *out);
/* Decode a captured stack into a single-thread py_thread (frames innermost first).
 * layout may be NULL (then lines are -1). A frame without a line says why (`error`):
 * "layout unknown", "line table unreadable", "no line for this instruction", or
 * PYSTACK_LINE_CUT (the position lies past the copied part of its line table: see
 * stackline.h). Free with pystack_thread_free. */
extern const char PYSTACK_LINE_CUT[];
int pystack_decode(const struct ph_stack_event *se, const struct py_layout *layout,
		   struct py_thread *out);
void pystack_thread_free(struct py_thread *t);
/* "ok", "unknown_layout", "thread_not_found", "read_error" */
const char *pystack_status_str(unsigned status);
#endif
