/* table_dump: prints the layout table of pylayout.c (linked with it) as "X.Y field value"
 * lines, one per numeric field of struct py_layout, for every version the table holds.
 * Read by check_layouts.py, which compares them with offsetof() in each interpreter's own
 * headers (probe.c); and for 3.11+ the bytecode tables of pyopcodes.c as op_* lines. Part of
 * `make check-layouts`. */
#include <stdio.h>

#include "pylayout.h"

/* Every numeric field of struct py_layout (pylayout.h). */
#define LAYOUT_FIELDS(X)                                                                            \
	X(rt_interp_head) X(gil) X(gil_last_holder) X(gil_locked) X(gil_size)                       \
	X(interp_next) X(interp_tstate_head) X(interp_modules)                                      \
	X(ts_next) X(ts_interp) X(ts_thread_id) X(ts_native_thread_id) X(ts_frame)                  \
	X(cframe_current) X(f_back) X(f_code) X(f_pos) X(f_owner) X(owner_generator)                \
	X(owner_cstack) X(co_firstlineno) X(co_filename) X(co_name) X(co_qualname)                  \
	X(co_linetable) X(co_code_adaptive) X(co_firsttraceable) X(ob_type) X(tp_name)              \
	X(tp_basicsize) X(tp_dictoffset) X(tp_flags) X(ht_cached_keys) X(str_length)                \
	X(str_state) X(str_ascii_data) X(str_compact_data) X(bytes_size) X(bytes_data)              \
	X(dict_keys) X(dict_values) X(values_header) X(md_dict) X(f_valuestack) X(f_iblock)         \
	X(f_blockstack) X(f_localsplus) X(co_nlocals) X(co_stacksize) X(co_code)                    \
	X(co_nlocalsplus) X(co_exceptiontable) X(co_names) X(co_varnames) X(iframe_localsplus)     \
	X(co_localsplusnames)

/* The opcode numbers of struct py_opcodes (pyopcodes.h) */
#define OPCODE_FIELDS(X)                                                                            \
	X(extended_arg) X(load_name) X(load_global) X(load_fast) X(load_fast_check)                 \
	X(load_fast_load_fast) X(load_attr) X(load_method) X(before_with) X(attr_shift)             \
	X(min_instrumented)

int main(void)
{
	for (unsigned major = 2; major <= 3; major++)
		for (unsigned minor = 0; minor < 100; minor++) {
			const struct py_layout *l = pylayout_for_version(major, minor);
			if (!l)
				continue;
#define PRINT(f) printf("%u.%u %s %lu\n", major, minor, #f, (unsigned long)l->f);
			LAYOUT_FIELDS(PRINT)
#undef PRINT
			const struct py_opcodes *o = l->ops;
			if (!o)
				continue;
#define OP(f) printf("%u.%u op_%s %u\n", major, minor, #f, (unsigned)o->f);
			OPCODE_FIELDS(OP)
#undef OP
			for (unsigned i = 0; i < 256; i++)
				printf("%u.%u op_deopt_%u %u\n%u.%u op_caches_%u %u\n", major, minor, i,
				       o->deopt[i], major, minor, i, o->caches[i]);
		}
	return 0;
}
