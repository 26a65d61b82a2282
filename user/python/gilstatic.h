/* gilstatic: where an interpreter file keeps a GIL made of static variables (CPython 3.6,
 * see struct py_gil_statics in pylayout.h for the facts and their source).
 * Owns: locating those variables in an ELF file, two ways, each validated:
 *  - .symtab: each name defined once, an object of the expected size in .bss, the wait
 *    objects disjoint; when no other symbol lies between them they form one range;
 *  - code (no .symtab needed): the exported init_fn (PyEval_InitThreads) and the functions it
 *    calls are searched for `lea rdi,[rip+X]; call; test eax,eax; jne F` where F starts with
 *    `lea rdi,[rip+M]` and M is a part's Py_FatalError message: the message names X. Every
 *    part must be found, in .bss, disjoint. Without .symtab nothing proves what lies between
 *    them, so the one range is the waiters' condition (parts[0]) alone.
 * Neither found: the GIL is unknown (desc NULL), never guessed.
 * Addresses are link-time (add the load bias). x86_64 encodings (gcc/clang -O2 shape). */
#ifndef PH_GILSTATIC_H
#define PH_GILSTATIC_H
#include <stdint.h>

#include "elfsym.h"
#include "pylayout.h"

struct gil_static_loc {
	const struct py_gil_statics *desc;  /* NULL: not located, the GIL is unknown */
	const char *how;                    /* "symtab" or "code" (static string) */
	uint64_t part[PY_GIL_STATIC_PARTS]; /* address of desc->parts[i] (its size: parts[i].size) */
	uint64_t locked, last_holder;       /* addresses; 0 when not located */
	/* [wait_lo, wait_hi): one range that holds wait objects of this GIL and nothing else
	 * (for the kernel side, which takes a single range per process) */
	uint64_t wait_lo, wait_hi;
};

/* 0 with *out filled, or -1 (out->desc NULL) when the file's .symtab does not locate d. */
int gilstatic_from_symtab(struct elf_file *ef, const struct py_gil_statics *d,
			  struct gil_static_loc *out);
/* 0 with *out filled, or -1 (out->desc NULL) when the code does not locate d. */
int gilstatic_from_code(struct elf_file *ef, const struct py_gil_statics *d,
			struct gil_static_loc *out);
#endif
