/* pyopcodes: the CPython 3.11+ bytecode facts that lockown_with.c decodes, per version, as
 * data (struct py_layout's `ops`; <= 3.10 keep their few opcodes in lockown_with.c).
 * Owns: the opcode numbers of the instructions a `with` is built from, each opcode byte's
 * base instruction (specialized and super-instructions of the adaptive interpreter, PEP
 * 659, run in co_code_adaptive) and the inline cache entries that follow each base
 * instruction. Source of every number: the headers of each version, Include/opcode.h
 * (3.11, 3.12) or Include/opcode_ids.h (3.13), and Include/internal/pycore_opcode.h
 * (3.11, 3.12: _PyOpcode_Deopt, _PyOpcode_Caches, MIN_INSTRUMENTED_OPCODE) or
 * Include/internal/pycore_opcode_metadata.h (3.13). The opcodes are fixed within a minor
 * version (one bytecode magic number): 3.11.2 (Debian) and 3.11.7 give the same tables.
 * `make check-layouts` compares every number here with the headers of each installed
 * interpreter (tests/layouts/probe.c). */
#ifndef PH_PYOPCODES_H
#define PH_PYOPCODES_H
#include <stdbool.h>
#include <stdint.h>

struct py_opcodes {
	/* opcode numbers; 0 = the version has no such instruction (0 is CACHE in 3.11-3.13) */
	uint8_t extended_arg, load_name, load_global, load_fast, load_fast_check,
		load_fast_load_fast, load_attr, load_method, before_with;
	/* LOAD_GLOBAL's co_names index is oparg >> 1 on 3.11+ (low bit: push NULL); LOAD_ATTR's
	 * is oparg >> 1 on 3.12+ (low bit: method load), oparg on 3.11 (LOAD_METHOD: oparg).
	 * LOAD_FAST's oparg indexes co_localsplusnames; LOAD_FAST_LOAD_FAST (3.13) loads
	 * oparg >> 4, then oparg & 15. */
	bool attr_shift;
	/* opcodes >= this are INSTRUMENTED_* / ENTER_EXECUTOR: their original instruction is
	 * kept elsewhere, so decoding stops there (256: none) */
	uint16_t min_instrumented;
	uint8_t deopt[256];   /* _PyOpcode_Deopt: the base instruction of each byte; 0: none */
	uint8_t caches[256];  /* _PyOpcode_Caches: 2-byte cache entries after a base instruction */
};

extern const struct py_opcodes pyopcodes_311, pyopcodes_312, pyopcodes_313;

#endif
