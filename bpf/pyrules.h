/* pyrules: CPython rules that both the BPF stack walker (bpf/) and the userspace reader
 * (user/python/) execute, written once. Plain C on integers only (no kernel or libc types):
 * this header compiles as BPF C (clang -target bpf) and as userspace C (gcc, clang).
 * Owns: the PEP 393 state bits of a str object, and frame visibility (which frames of a
 * thread Python itself shows in a traceback).
 * Each rule's source: the CPython headers named at it, for the versions it holds for. */
#ifndef PYRULES_H
#define PYRULES_H

#ifndef PH_RULE_INLINE
#define PH_RULE_INLINE static inline __attribute__((always_inline))
#endif

/* ---- PEP 393 str state (3.3-3.13) ----------------------------------------------------------
 * PyASCIIObject.state is a bit field {interned:2, kind:3, compact:1, ascii:1, ...}
 * (Include/cpython/unicodeobject.h; 3.12/3.13 add statically_allocated after ascii). On
 * x86_64 (little-endian, gcc/clang bit-field order), in the byte at str_state: kind is bits
 * 2-4 (1, 2 or 4 bytes per character), compact bit 5, ascii bit 6. A compact ASCII str
 * keeps its characters right after PyASCIIObject (str_ascii_data), any other compact str
 * after PyCompactUnicodeObject (str_compact_data); a legacy (non-compact) one through
 * data.any. */
#define PY_STR_STATE_COMPACT 0x20u
#define PY_STR_STATE_ASCII 0x40u

/* Bytes per character of a str whose state byte is state: 1, 2, 4 (anything else: corrupt). */
PH_RULE_INLINE unsigned py_str_kind(unsigned state)
{
	return (state >> 2) & 7u;
}

/* Whether kind is one CPython uses (PyUnicode_1BYTE_KIND, _2BYTE_, _4BYTE_). */
PH_RULE_INLINE int py_str_kind_valid(unsigned kind)
{
	return kind == 1 || kind == 2 || kind == 4;
}

PH_RULE_INLINE int py_str_compact(unsigned state)
{
	return (state & PY_STR_STATE_COMPACT) != 0;
}

PH_RULE_INLINE int py_str_ascii(unsigned state)
{
	return (state & PY_STR_STATE_ASCII) != 0;
}

/* Compact and ASCII: the characters are 1 byte each at str_ascii_data. */
PH_RULE_INLINE int py_str_compact_ascii(unsigned state)
{
	return (state & (PY_STR_STATE_COMPACT | PY_STR_STATE_ASCII)) ==
	       (PY_STR_STATE_COMPACT | PY_STR_STATE_ASCII);
}

/* ---- frame visibility (3.11-3.13 _PyInterpreterFrame) -------------------------------------
 * (Include/internal/pycore_frame.h: _PyFrame_IsIncomplete, FRAME_OWNED_BY_*; Python's
 * traceback and sys._getframe skip these frames.) 2.7-3.10 frame objects are all visible.
 * 1. A frame owned by the C stack (3.12+ FRAME_OWNED_BY_CSTACK: the shim frames of calls
 *    from C into Python) is not a Python frame.
 * 2. A frame not owned by a generator whose instruction pointer is before the first
 *    traceable instruction (co_code_adaptive + 2 * _co_firsttraceable, code units of 2
 *    bytes) is incomplete: still being set up (RESUME not reached), not yet visible.
 * owner_cstack / owner_generator are the layout's values of FRAME_OWNED_BY_CSTACK and
 * FRAME_OWNED_BY_GENERATOR (pylayout.c); the caller reads the owner byte. */
PH_RULE_INLINE int py_frame_is_cstack_shim(unsigned owner, unsigned owner_cstack)
{
	return owner == owner_cstack;
}

/* instr: the frame's prev_instr/instr_ptr; code_start: the code object's address +
 * co_code_adaptive; firsttraceable: its _co_firsttraceable (code units). */
PH_RULE_INLINE int py_frame_incomplete(unsigned owner, unsigned owner_generator,
				       unsigned long long instr, unsigned long long code_start,
				       unsigned firsttraceable)
{
	return owner != owner_generator && instr < code_start + 2ull * firsttraceable;
}

#endif
