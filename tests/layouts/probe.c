/* probe: compiled once per installed interpreter against that interpreter's own headers
 * (internal ones with Py_BUILD_CORE), prints "field value" for every field of the layout
 * table (user/pylayout.c) that the headers declare for this version: offsetof() of the
 * CPython member the table stands for, sizeof() where the table holds a size, or the value
 * of an enum constant (frame owners). check_layouts.py compares them with the table; a
 * field the table has and this file does not print is reported as unchecked.
 * The CPython member behind each table field is named here, per version (2.7, 3.6-3.13). */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <frameobject.h>
#include <stddef.h>
#include <stdio.h>
#if PY_MAJOR_VERSION == 2
#include <code.h>
#endif

#define V(maj, min) (PY_MAJOR_VERSION > (maj) || (PY_MAJOR_VERSION == (maj) && PY_MINOR_VERSION >= (min)))

#if V(3, 7) && !V(3, 8)
#include <internal/pystate.h> /* _PyRuntimeState, struct _gil_runtime_state */
#elif V(3, 8) && !V(3, 9)
#include <internal/pycore_pystate.h> /* struct _is, _PyRuntimeState */
#elif V(3, 9)
#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>
#endif
#if V(3, 11)
#include <internal/pycore_frame.h> /* _PyInterpreterFrame */
#include <internal/pycore_dict.h>  /* PyDictValues */
#endif
#if V(3, 12)
#include <internal/pycore_gil.h>
#endif
#if V(3, 10)
#include <internal/pycore_moduleobject.h> /* PyModuleObject */
#endif

#define P(field, value) printf("%s %lu\n", #field, (unsigned long)(value))

int main(void)
{
	P(ob_type, offsetof(PyObject, ob_type));
	P(tp_name, offsetof(PyTypeObject, tp_name));
	P(tp_basicsize, offsetof(PyTypeObject, tp_basicsize));
	P(tp_flags, offsetof(PyTypeObject, tp_flags));
	P(tp_dictoffset, offsetof(PyTypeObject, tp_dictoffset));
#if V(3, 10)
	P(md_dict, offsetof(PyModuleObject, md_dict));
#endif

	/* interpreters and threads */
#if V(3, 7)
	P(rt_interp_head, offsetof(_PyRuntimeState, interpreters.head));
#endif
	P(interp_next, offsetof(PyInterpreterState, next));
#if V(3, 11)
	P(interp_tstate_head, offsetof(PyInterpreterState, threads.head));
#else
	P(interp_tstate_head, offsetof(PyInterpreterState, tstate_head));
#endif
#if V(3, 12)
	P(interp_modules, offsetof(PyInterpreterState, imports.modules));
#else
	P(interp_modules, offsetof(PyInterpreterState, modules));
#endif
	P(ts_next, offsetof(PyThreadState, next));
	P(ts_interp, offsetof(PyThreadState, interp));
	P(ts_thread_id, offsetof(PyThreadState, thread_id));
#if V(3, 11)
	P(ts_native_thread_id, offsetof(PyThreadState, native_thread_id));
#endif

	/* the GIL (3.6 keeps it in static variables of ceval.c: not in any header) */
#if V(3, 12)
	P(gil, offsetof(PyInterpreterState, _gil));
#elif V(3, 7)
	P(gil, offsetof(_PyRuntimeState, ceval.gil));
#endif
#if V(3, 7)
	P(gil_last_holder, offsetof(struct _gil_runtime_state, last_holder));
	P(gil_locked, offsetof(struct _gil_runtime_state, locked));
	P(gil_size, sizeof(struct _gil_runtime_state));
#endif

	/* frames */
#if V(3, 11)
#if V(3, 13)
	P(ts_frame, offsetof(PyThreadState, current_frame));
	P(f_code, offsetof(_PyInterpreterFrame, f_executable));
	P(f_pos, offsetof(_PyInterpreterFrame, instr_ptr));
#else
	P(ts_frame, offsetof(PyThreadState, cframe));
	P(cframe_current, offsetof(_PyCFrame, current_frame));
	P(f_code, offsetof(_PyInterpreterFrame, f_code));
	P(f_pos, offsetof(_PyInterpreterFrame, prev_instr));
#endif
	P(f_back, offsetof(_PyInterpreterFrame, previous));
	P(f_owner, offsetof(_PyInterpreterFrame, owner));
	P(owner_generator, FRAME_OWNED_BY_GENERATOR);
#if V(3, 12)
	P(owner_cstack, FRAME_OWNED_BY_CSTACK);
#endif
	P(iframe_localsplus, offsetof(_PyInterpreterFrame, localsplus));
#else
	P(ts_frame, offsetof(PyThreadState, frame));
	P(f_back, offsetof(PyFrameObject, f_back));
	P(f_code, offsetof(PyFrameObject, f_code));
	P(f_pos, offsetof(PyFrameObject, f_lasti));
	P(f_valuestack, offsetof(PyFrameObject, f_valuestack));
	P(f_iblock, offsetof(PyFrameObject, f_iblock));
	P(f_blockstack, offsetof(PyFrameObject, f_blockstack));
	P(f_localsplus, offsetof(PyFrameObject, f_localsplus));
#endif

	/* code objects */
	P(co_firstlineno, offsetof(PyCodeObject, co_firstlineno));
	P(co_filename, offsetof(PyCodeObject, co_filename));
	P(co_name, offsetof(PyCodeObject, co_name));
	P(co_stacksize, offsetof(PyCodeObject, co_stacksize));
#if V(3, 10)
	P(co_linetable, offsetof(PyCodeObject, co_linetable));
#else
	P(co_linetable, offsetof(PyCodeObject, co_lnotab));
#endif
#if V(3, 11)
	P(co_qualname, offsetof(PyCodeObject, co_qualname));
	P(co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
	P(co_firsttraceable, offsetof(PyCodeObject, _co_firsttraceable));
	P(co_nlocalsplus, offsetof(PyCodeObject, co_nlocalsplus));
	P(co_exceptiontable, offsetof(PyCodeObject, co_exceptiontable));
	P(ht_cached_keys, offsetof(PyHeapTypeObject, ht_cached_keys));
	P(values_header, offsetof(PyDictValues, values));
#else
	P(co_nlocals, offsetof(PyCodeObject, co_nlocals));
	P(co_code, offsetof(PyCodeObject, co_code));
	P(co_names, offsetof(PyCodeObject, co_names));
	P(co_varnames, offsetof(PyCodeObject, co_varnames));
#endif

	/* strings and dicts */
#if PY_MAJOR_VERSION == 2
	P(bytes_size, offsetof(PyStringObject, ob_size));
	P(bytes_data, offsetof(PyStringObject, ob_sval));
	P(dict_keys, offsetof(PyDictObject, ma_mask));
	P(dict_values, offsetof(PyDictObject, ma_table));
#else
	P(bytes_size, offsetof(PyBytesObject, ob_base.ob_size));
	P(bytes_data, offsetof(PyBytesObject, ob_sval));
	P(str_length, offsetof(PyASCIIObject, length));
	P(str_state, offsetof(PyASCIIObject, state));
	P(str_ascii_data, sizeof(PyASCIIObject));
	P(str_compact_data, sizeof(PyCompactUnicodeObject));
	P(dict_keys, offsetof(PyDictObject, ma_keys));
	P(dict_values, offsetof(PyDictObject, ma_values));
#endif
	return 0;
}
