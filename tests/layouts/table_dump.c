/* table_dump: prints the layout table of pylayout.c (linked with it) as "X.Y field value"
 * lines, one per numeric field of struct py_layout, for every version the table holds.
 * Read by check_layouts.py, which compares them with offsetof() in each interpreter's own
 * headers (probe.c). Part of `make check-layouts`. */
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
	X(co_nlocalsplus) X(co_exceptiontable) X(co_names) X(co_varnames) X(iframe_localsplus)

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
		}
	return 0;
}
