/* pylayout: per-version CPython offsets as data, and layouts built from _Py_DebugOffsets.
 * Every number below is x86_64/glibc, default build, measured with offsetof() against the
 * installed headers of 2.7.18, 3.6.15, 3.7.16, 3.8.18, 3.9.18, 3.10.13, 3.11.7, 3.12.1,
 * 3.13.0 (and Debian 3.11.2) and checked on live processes (tests/test_dump.py compares
 * our stacks with traceback.extract_stack() on each). Other patch releases are assumed to
 * share the layout of their X.Y: CPython keeps struct layouts stable within a minor version. */
#include "pylayout.h"

#include <stdio.h>
#include <string.h>

/* Fields every layout shares. PyTypeObject: tp_name 24, tp_basicsize 32, tp_flags 168,
 * tp_dictoffset 288 (2.7 and 3.x alike). Module md_dict 16. GIL struct 3.7+: last_holder 8,
 * locked 16, 208 bytes (cond 32, mutex 80, switch_cond 120, switch_mutex 168). */
#define COMMON_TYPE .ob_type = 8, .tp_name = 24, .tp_basicsize = 32, .tp_flags = 168, \
	.tp_dictoffset = 288, .md_dict = 16, LOCK_OBJECTS
/* Lock objects and bound methods, 2.7-3.13 alike (Modules/_threadmodule.c lockobject
 * {lock_lock 16}, rlockobject {rlock_lock 16, rlock_owner 24}; PyCFunctionObject {m_ml 16,
 * m_self 24}; PyMethodObject {im_func 16, im_self 24}; PyTupleObject {ob_size 16,
 * ob_item 24}). */
#define LOCK_OBJECTS .lock_futex = 16, .rlock_futex = 16, .rlock_owner = 24, .cfunc_ml = 16, \
	.cfunc_self = 24, .meth_self = 24, .tuple_size = 16, .tuple_items = 24
/* 3.x threading attribute names; ints up to 3.11: ob_size 16, ob_digit 24. */
#define PY3_NAMES .attr_ident = "_ident", .attr_cond_lock = "_lock", .attr_rlock_block = "_block", \
	.attr_rlock_owner = "_owner"
#define INT_OBSIZE .ints = PY_INT_OBSIZE, .int_size = 16, .int_value = 24
#define INT_LVTAG .ints = PY_INT_LVTAG, .int_size = 16, .int_value = 24
#define GIL_FIELDS .gil_last_holder = 8, .gil_locked = 16, .gil_size = 208
#define NO_OWNER .owner_generator = 0xff, .owner_cstack = 0xff
/* PEP 393 str up to 3.11: PyASCIIObject 48 bytes, PyCompactUnicodeObject 72. */
#define STR_PEP393_OLD .strs = PY_STR_PEP393, .str_length = 16, .str_state = 32, \
	.str_ascii_data = 48, .str_compact_data = 72, .bytes_size = 16, .bytes_data = 32
/* 3.12+: the wstr fields are gone: 40 and 56. */
#define STR_PEP393_NEW .strs = PY_STR_PEP393, .str_length = 16, .str_state = 32, \
	.str_ascii_data = 40, .str_compact_data = 56, .bytes_size = 16, .bytes_data = 32
/* 3.6-3.10 PyDictObject: ma_keys 32, ma_values 40 (a plain PyObject *[]). */
#define DICT36 .dicts = PY_DICT_36, .dict_keys = 32, .dict_values = 40, .values_header = 0, \
	.inst_dict = PY_INST_DICTOFFSET, .attr_name = "_name", .attr_daemonic = "_daemonic"
/* 3.6-3.10 PyThreadState: prev 0, next 8, interp 16, frame 24. */
#define TSTATE36 .ts_next = 8, .ts_interp = 16, .frames = PY_FRAMES_OBJECTS, .ts_frame = 24, \
	.f_back = 24, .f_code = 32, .f_owner = 0, NO_OWNER

/* 3.6: Python/ceval_gil.h (3.6 branch) keeps the GIL in static variables: gil_locked
 * (_Py_atomic_int, -1 until create_gil), gil_last_holder, gil_cond, gil_mutex and, with
 * FORCE_SWITCHING (always defined there), switch_cond and switch_mutex; create_gil() in
 * that order calls MUTEX_INIT(gil_mutex), MUTEX_INIT(switch_mutex), COND_INIT(gil_cond),
 * COND_INIT(switch_cond), each failing with Py_FatalError("PyMUTEX_INIT(" #mut ") failed")
 * or "PyCOND_INIT(" #cond ") failed". PyEval_InitThreads (exported) calls create_gil.
 * Checked on pyenv 3.6.15: .symtab objects of 4/8/48/40/48/40 bytes, the four wait objects
 * adjacent in .bss. */
static const struct py_gil_statics gil_statics_36 = {
	.init_fn = "PyEval_InitThreads", .locked = "gil_locked", .last_holder = "gil_last_holder",
	.parts = {
		{ "gil_cond", 48, "PyCOND_INIT(gil_cond) failed" },
		{ "gil_mutex", 40, "PyMUTEX_INIT(gil_mutex) failed" },
		{ "switch_cond", 48, "PyCOND_INIT(switch_cond) failed" },
		{ "switch_mutex", 40, "PyMUTEX_INIT(switch_mutex) failed" },
	},
};

static const struct py_layout layouts[] = {
	{ /* 2.7 */
		.f_valuestack = 64, .f_iblock = 128, .f_blockstack = 132, .f_localsplus = 376, .co_nlocals = 20, .co_stacksize = 24, .co_code = 32,
		.co_names = 48, .co_varnames = 56,
		.major = 2, .minor = 7, .source = "table", .start = PY_START_INTERP_HEAD,
		.gil_kind = PY_GIL_NONE,
		.interp_next = 0, .interp_tstate_head = 8, .interp_modules = 16,
		.ts_next = 0, .ts_interp = 8, .ts_thread_id = 144, .ts_native_thread_id = 0,
		.frames = PY_FRAMES_OBJECTS, .ts_frame = 16,
		.f_back = 24, .f_code = 32, .f_pos = 120, .f_owner = 0, NO_OWNER,
		.co_firstlineno = 96, .co_filename = 80, .co_name = 88, .co_qualname = 0,
		.co_linetable = 104, .lines = PY_LINES_LNOTAB_U8,
		COMMON_TYPE,
		/* PyStringObject: ob_size 16, ob_sval 36; PyUnicodeObject: length 16, str 24 */
		.strs = PY_STR_BYTES27, .bytes_size = 16, .bytes_data = 36,
		.uni27_length = 16, .uni27_str = 24,
		.dicts = PY_DICT_27, .dict_keys = 32 /* ma_mask */, .dict_values = 40 /* ma_table */,
		.inst_dict = PY_INST_DICTOFFSET,
		.attr_name = "_Thread__name", .attr_daemonic = "_Thread__daemonic",
		.attr_ident = "_Thread__ident", .attr_cond_lock = "_Condition__lock",
		.attr_rlock_block = "_RLock__block", .attr_rlock_owner = "_RLock__owner",
		.rlock_python_owner = true,
		.ints = PY_INT_27, .int_value = 16, /* PyIntObject ob_ival */
		.bytecode = PY_BYTECODE_VARLEN27,
	},
	{ /* 3.6 */
		.f_valuestack = 64, .f_iblock = 128, .f_blockstack = 136, .f_localsplus = 376, .co_nlocals = 24, .co_stacksize = 28, .co_code = 40,
		.co_names = 56, .co_varnames = 64,
		.major = 3, .minor = 6, .source = "table", .start = PY_START_INTERP_HEAD,
		.gil_kind = PY_GIL_STATIC, .gil_statics = &gil_statics_36,
		.interp_next = 0, .interp_tstate_head = 8, .interp_modules = 16,
		TSTATE36, .ts_thread_id = 152, .f_pos = 120,
		.co_firstlineno = 36, .co_filename = 96, .co_name = 104, .co_linetable = 112,
		.lines = PY_LINES_LNOTAB_S8,
		COMMON_TYPE, STR_PEP393_OLD, DICT36,
		PY3_NAMES, INT_OBSIZE,
	},
	{ /* 3.7 */
		.f_valuestack = 64, .f_iblock = 112, .f_blockstack = 120, .f_localsplus = 360, .co_nlocals = 24, .co_stacksize = 28, .co_code = 40,
		.co_names = 56, .co_varnames = 64,
		.major = 3, .minor = 7, .source = "table", .start = PY_START_RUNTIME,
		.rt_interp_head = 24, .gil_kind = PY_GIL_IN_RUNTIME, .gil = 1264, GIL_FIELDS,
		.interp_next = 0, .interp_tstate_head = 8, .interp_modules = 40,
		TSTATE36, .ts_thread_id = 176, .f_pos = 104,
		.co_firstlineno = 36, .co_filename = 96, .co_name = 104, .co_linetable = 112,
		.lines = PY_LINES_LNOTAB_S8,
		COMMON_TYPE, STR_PEP393_OLD, DICT36,
		PY3_NAMES, INT_OBSIZE, .runtime_in_data = true,
	},
	{ /* 3.8 */
		.f_valuestack = 64, .f_iblock = 112, .f_blockstack = 120, .f_localsplus = 360, .co_nlocals = 28, .co_stacksize = 32, .co_code = 48,
		.co_names = 64, .co_varnames = 72,
		.major = 3, .minor = 8, .source = "table", .start = PY_START_RUNTIME,
		.rt_interp_head = 32, .gil_kind = PY_GIL_IN_RUNTIME, .gil = 1152, GIL_FIELDS,
		.interp_next = 0, .interp_tstate_head = 8, .interp_modules = 56,
		TSTATE36, .ts_thread_id = 176, .f_pos = 104,
		.co_firstlineno = 40, .co_filename = 104, .co_name = 112, .co_linetable = 120,
		.lines = PY_LINES_LNOTAB_S8,
		COMMON_TYPE, STR_PEP393_OLD, DICT36,
		PY3_NAMES, INT_OBSIZE, .runtime_in_data = true, .attr_native_id = "_native_id",
	},
	{ /* 3.9 */
		.f_valuestack = 64, .f_iblock = 112, .f_blockstack = 120, .f_localsplus = 360, .co_nlocals = 28, .co_stacksize = 32, .co_code = 48,
		.co_names = 64, .co_varnames = 72,
		.major = 3, .minor = 9, .source = "table", .start = PY_START_RUNTIME,
		.rt_interp_head = 32, .gil_kind = PY_GIL_IN_RUNTIME, .gil = 352, GIL_FIELDS,
		.interp_next = 0, .interp_tstate_head = 8, .interp_modules = 856,
		TSTATE36, .ts_thread_id = 176, .f_pos = 104,
		.co_firstlineno = 40, .co_filename = 104, .co_name = 112, .co_linetable = 120,
		.lines = PY_LINES_LNOTAB_S8,
		COMMON_TYPE, STR_PEP393_OLD, DICT36,
		PY3_NAMES, INT_OBSIZE, .runtime_in_data = true, .attr_native_id = "_native_id",
	},
	{ /* 3.10: f_lasti counts code units; co_linetable */
		.f_valuestack = 64, .f_iblock = 104, .f_blockstack = 112, .f_localsplus = 352, .co_nlocals = 28, .co_stacksize = 32, .co_code = 48,
		.co_names = 64, .co_varnames = 72,
		.major = 3, .minor = 10, .source = "table", .start = PY_START_RUNTIME,
		.rt_interp_head = 32, .gil_kind = PY_GIL_IN_RUNTIME, .gil = 352, GIL_FIELDS,
		.interp_next = 0, .interp_tstate_head = 8, .interp_modules = 856,
		TSTATE36, .ts_thread_id = 176, .f_pos = 96,
		.co_firstlineno = 40, .co_filename = 104, .co_name = 112, .co_linetable = 120,
		.lines = PY_LINES_LINETABLE310,
		COMMON_TYPE, STR_PEP393_OLD, DICT36,
		PY3_NAMES, INT_OBSIZE, .attr_native_id = "_native_id", .jumps = PY_JUMP_UNITS,
	},
	{ /* 3.11: _PyInterpreterFrame via cframe; owner 0 thread, 1 generator, 2 frame object */
		.iframe_localsplus = 72, .co_nlocalsplus = 76, .co_exceptiontable = 40, .co_stacksize = 68,
		.co_names = 32, .co_localsplusnames = 96, .ops = &pyopcodes_311,
		.major = 3, .minor = 11, .source = "table", .start = PY_START_RUNTIME,
		.rt_interp_head = 40, .gil_kind = PY_GIL_IN_RUNTIME, .gil = 360, GIL_FIELDS,
		.interp_next = 0, .interp_tstate_head = 16, .interp_modules = 888,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
		.frames = PY_FRAMES_CFRAME, .ts_frame = 56, .cframe_current = 8,
		.f_back = 48, .f_code = 32, .f_pos = 56, .f_owner = 69,
		.owner_generator = 1, .owner_cstack = 0xff,
		.co_firstlineno = 72, .co_filename = 112, .co_name = 120, .co_qualname = 128,
		.co_linetable = 136, .co_code_adaptive = 184, .co_firsttraceable = 168,
		.lines = PY_LINES_LOCATIONS,
		COMMON_TYPE, .ht_cached_keys = 872, STR_PEP393_OLD,
		.dicts = PY_DICT_311, .dict_keys = 32, .dict_values = 40, .values_header = 0,
		.inst_dict = PY_INST_MANAGED311, .attr_name = "_name", .attr_daemonic = "_daemonic",
		PY3_NAMES, INT_OBSIZE, .attr_native_id = "_native_id",
	},
	{ /* 3.12: owner 3 = C stack (shim/trampoline frames) */
		.iframe_localsplus = 72, .co_nlocalsplus = 72, .co_exceptiontable = 40, .co_stacksize = 64,
		.co_names = 32, .co_localsplusnames = 96, .ops = &pyopcodes_312,
		.major = 3, .minor = 12, .source = "table", .start = PY_START_RUNTIME,
		.rt_interp_head = 40, .gil_kind = PY_GIL_IN_INTERP, .gil = 1040, GIL_FIELDS,
		.interp_next = 0, .interp_tstate_head = 72, .interp_modules = 944,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 136, .ts_native_thread_id = 144,
		.frames = PY_FRAMES_CFRAME, .ts_frame = 56, .cframe_current = 0,
		.f_back = 8, .f_code = 0, .f_pos = 56, .f_owner = 70,
		.owner_generator = 1, .owner_cstack = 3,
		.co_firstlineno = 68, .co_filename = 112, .co_name = 120, .co_qualname = 128,
		.co_linetable = 136, .co_code_adaptive = 192, .co_firsttraceable = 176,
		.lines = PY_LINES_LOCATIONS,
		COMMON_TYPE, .ht_cached_keys = 880, STR_PEP393_NEW,
		.dicts = PY_DICT_311, .dict_keys = 32, .dict_values = 40, .values_header = 0,
		.inst_dict = PY_INST_MANAGED312, .attr_name = "_name", .attr_daemonic = "_daemonic",
		PY3_NAMES, INT_LVTAG, .attr_native_id = "_native_id",
	},
	{ /* 3.13: also what _Py_DebugOffsets does not carry (co_firsttraceable, compact str
	   * header, dict keys layout, managed dict, ht_cached_keys, md_dict, owner values) */
		.iframe_localsplus = 72, .co_nlocalsplus = 72, .co_exceptiontable = 40, .co_stacksize = 64,
		.co_names = 32, .co_localsplusnames = 96, .ops = &pyopcodes_313,
		.major = 3, .minor = 13, .source = "table", .start = PY_START_RUNTIME,
		.rt_interp_head = 632, .gil_kind = PY_GIL_IN_INTERP, .gil = 7752, GIL_FIELDS,
		.interp_next = 7264, .interp_tstate_head = 7344, .interp_modules = 7656,
		.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
		.frames = PY_FRAMES_CURRENT, .ts_frame = 72,
		.f_back = 8, .f_code = 0, .f_pos = 56, .f_owner = 70,
		.owner_generator = 1, .owner_cstack = 3,
		.co_firstlineno = 68, .co_filename = 112, .co_name = 120, .co_qualname = 128,
		.co_linetable = 136, .co_code_adaptive = 200, .co_firsttraceable = 184,
		.lines = PY_LINES_LOCATIONS,
		COMMON_TYPE, .ht_cached_keys = 880, STR_PEP393_NEW,
		.dicts = PY_DICT_311, .dict_keys = 32, .dict_values = 40, .values_header = 8,
		.inst_dict = PY_INST_MANAGED313, .attr_name = "_name", .attr_daemonic = "_daemonic",
		PY3_NAMES, INT_LVTAG, .attr_native_id = "_native_id",
	},
};

const char *pylayout_supported_text(void)
{
	static char text[128];
	if (text[0])
		return text;
	size_t n = sizeof(layouts) / sizeof(layouts[0]), o = 0;
	o += (size_t)snprintf(text + o, sizeof(text) - o, "CPython ");
	for (size_t i = 0; i < n && o < sizeof(text); i++) {
		size_t k = i; /* the run of consecutive minors from i */
		while (k + 1 < n && layouts[k + 1].major == layouts[i].major &&
		       layouts[k + 1].minor == layouts[k].minor + 1)
			k++;
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%u.%u", i ? ", " : "",
				      layouts[i].major, layouts[i].minor);
		if (k > i && o < sizeof(text))
			o += (size_t)snprintf(text + o, sizeof(text) - o, "-%u.%u", layouts[k].major,
					      layouts[k].minor);
		i = k;
	}
	return text;
}

size_t pylayout_count(void)
{
	return sizeof(layouts) / sizeof(layouts[0]);
}

const struct py_layout *pylayout_nth(size_t i)
{
	return i < pylayout_count() ? &layouts[i] : NULL;
}

const struct py_layout *pylayout_for_version(unsigned major, unsigned minor)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].major == major && layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

size_t pylayout_gil_statics(const struct py_gil_statics **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		const struct py_gil_statics *g = layouts[i].gil_statics;
		bool seen = false;
		for (size_t k = 0; g && k < n; k++)
			seen |= out[k] == g;
		if (g && !seen && n < max)
			out[n++] = g;
	}
	return n;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

uint32_t pylayout_frame_read_size(const struct py_layout *l)
{
	uint32_t n = max_u32(l->f_back + 8, l->f_code + 8);
	if (l->frames == PY_FRAMES_OBJECTS)
		n = max_u32(n, l->f_pos + 4); /* int f_lasti */
	else
		n = max_u32(n, l->f_pos + 8); /* instruction pointer */
	if (l->f_owner)
		n = max_u32(n, l->f_owner + 1);
	if (l->frames == PY_FRAMES_OBJECTS && l->f_iblock)
		n = max_u32(n, l->f_iblock + 4); /* int f_iblock, for lock ownership */
	return (n + 7) & ~7u;
}

uint32_t pylayout_code_read_size(const struct py_layout *l)
{
	uint32_t n = max_u32(l->co_firstlineno + 4, l->co_filename + 8);
	n = max_u32(n, l->ob_type + 8); /* code_read_fields checks the type too */
	n = max_u32(n, l->co_name + 8);
	n = max_u32(n, l->co_linetable + 8);
	if (l->co_qualname)
		n = max_u32(n, l->co_qualname + 8);
	if (l->co_firsttraceable)
		n = max_u32(n, l->co_firsttraceable + 4);
	return (n + 7) & ~7u;
}

/* ---- _Py_DebugOffsets ---------------------------------------------------------------- */

/* One offset we take from _Py_DebugOffsets: the u64 at `pos` is an offset inside a struct
 * whose size is the u64 at `size_pos`; it is stored (as u32) at `dst` in struct py_layout. */
struct dbg_field {
	uint16_t pos, size_pos;
	uint16_t width;  /* bytes the field occupies in the target struct */
	size_t dst;      /* offsetof(struct py_layout, ...) or SIZE_MAX: checked only */
};

struct dbg_schema {
	unsigned major, minor;
	size_t size;                 /* sizeof(_Py_DebugOffsets) */
	const struct dbg_field *fields;
	size_t nfields;
	uint16_t sizes[16];          /* positions of every sub-struct size (0 ends) */
	uint16_t gil_pos, gil_locked_pos, gil_holder_pos, free_threaded_pos;
};

#define F(p, sp, w, member) { p, sp, w, offsetof(struct py_layout, member) }

/* 3.13 (Include/internal/pycore_runtime.h): cookie 0, version 8, free_threaded 16,
 * runtime_state 24, interpreter_state 48, thread_state 152, interpreter_frame 224,
 * code_object 272, pyobject 352, type_object 368, tuple 400, list 424, dict 448,
 * float 472, long 488, bytes 512, unicode 536, gc 568; 584 bytes in all. */
static const struct dbg_field dbg313_fields[] = {
	F(40, 24, 8, rt_interp_head),
	F(64, 48, 8, interp_next), F(72, 48, 8, interp_tstate_head), F(88, 48, 8, interp_modules),
	F(168, 152, 8, ts_next), F(176, 152, 8, ts_interp), F(184, 152, 8, ts_frame),
	F(192, 152, 8, ts_thread_id), F(200, 152, 8, ts_native_thread_id),
	F(232, 224, 8, f_back), F(240, 224, 8, f_code), F(248, 224, 8, f_pos),
	F(264, 224, 1, f_owner),
	F(280, 272, 8, co_filename), F(288, 272, 8, co_name), F(296, 272, 8, co_qualname),
	F(304, 272, 8, co_linetable), F(312, 272, 4, co_firstlineno),
	F(344, 272, 2, co_code_adaptive),
	F(360, 352, 8, ob_type),
	F(376, 368, 8, tp_name), F(392, 368, 8, tp_flags),
	F(456, 448, 8, dict_keys), F(464, 448, 8, dict_values),
	F(520, 512, 8, bytes_size), F(528, 512, 1, bytes_data),
	F(544, 536, 1, str_state), F(552, 536, 8, str_length), F(560, 536, 1, str_ascii_data),
};

static const struct dbg_schema dbg_schemas[] = {
	{ 3, 13, 584, dbg313_fields, sizeof(dbg313_fields) / sizeof(dbg313_fields[0]),
	  { 24, 48, 152, 224, 272, 352, 368, 400, 424, 448, 472, 488, 512, 536, 568, 0 },
	  120, 136, 144, 16 },
};

static const struct dbg_schema *dbg_schema_for(unsigned major, unsigned minor)
{
	for (size_t i = 0; i < sizeof(dbg_schemas) / sizeof(dbg_schemas[0]); i++)
		if (dbg_schemas[i].major == major && dbg_schemas[i].minor == minor)
			return &dbg_schemas[i];
	return NULL;
}

size_t pylayout_debug_offsets_size(unsigned major, unsigned minor)
{
	const struct dbg_schema *s = dbg_schema_for(major, minor);
	return s ? s->size : 0;
}

static uint64_t raw_u64(const unsigned char *raw, size_t pos)
{
	uint64_t v;
	memcpy(&v, raw + pos, sizeof(v));
	return v;
}

#define DBG_MAX_STRUCT (1u << 24) /* no CPython struct we read is 16 MiB */

static int dbg_check_sizes(const struct dbg_schema *s, const unsigned char *raw, char *err,
			   size_t errlen)
{
	for (size_t i = 0; i < 16 && s->sizes[i]; i++) {
		uint64_t sz = raw_u64(raw, s->sizes[i]);
		if (sz == 0 || sz > DBG_MAX_STRUCT) {
			snprintf(err, errlen, "_Py_DebugOffsets: implausible struct size %llu at %u",
				 (unsigned long long)sz, s->sizes[i]);
			return -1;
		}
	}
	return 0;
}

static int dbg_apply_fields(const struct dbg_schema *s, const unsigned char *raw,
			    struct py_layout *out, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->nfields; i++) {
		const struct dbg_field *f = &s->fields[i];
		uint64_t off = raw_u64(raw, f->pos), size = raw_u64(raw, f->size_pos);
		if (off > size || size - off < f->width) {
			snprintf(err, errlen, "_Py_DebugOffsets: offset %llu at %u outside its struct "
				 "of %llu bytes", (unsigned long long)off, f->pos,
				 (unsigned long long)size);
			return -1;
		}
		uint32_t v = (uint32_t)off;
		memcpy((char *)out + f->dst, &v, sizeof(v));
	}
	return 0;
}

static int dbg_apply_gil(const struct dbg_schema *s, const unsigned char *raw,
			 struct py_layout *out, char *err, size_t errlen)
{
	uint64_t interp_size = raw_u64(raw, 48);
	uint64_t gil = raw_u64(raw, s->gil_pos);
	uint64_t locked = raw_u64(raw, s->gil_locked_pos), holder = raw_u64(raw, s->gil_holder_pos);
	if (gil >= interp_size || locked < gil || holder < gil || locked - gil >= out->gil_size ||
	    holder - gil >= out->gil_size || interp_size - gil < out->gil_size) {
		snprintf(err, errlen, "_Py_DebugOffsets: inconsistent GIL offsets");
		return -1;
	}
	out->gil_kind = PY_GIL_IN_INTERP;
	out->gil = (uint32_t)gil;
	out->gil_locked = (uint32_t)(locked - gil);
	out->gil_last_holder = (uint32_t)(holder - gil);
	return 0;
}

int pylayout_from_debug_offsets(const unsigned char *raw, size_t len, struct py_layout *out,
				uint32_t *version_hex, char *err, size_t errlen)
{
	if (len < 24 || memcmp(raw, "xdebugpy", 8) != 0) {
		snprintf(err, errlen, "_Py_DebugOffsets cookie not found");
		return -1;
	}
	uint64_t version = raw_u64(raw, 8);
	unsigned major = (unsigned)(version >> 24) & 0xff, minor = (unsigned)(version >> 16) & 0xff;
	*version_hex = (uint32_t)version;
	if (version >> 32 || major != 3) {
		snprintf(err, errlen, "_Py_DebugOffsets: implausible version 0x%llx",
			 (unsigned long long)version);
		return -1;
	}
	const struct dbg_schema *s = dbg_schema_for(major, minor);
	const struct py_layout *base = pylayout_for_version(major, minor);
	if (!s || !base) {
		snprintf(err, errlen, "unsupported CPython %u.%u", major, minor);
		return -1;
	}
	if (len < s->size) {
		snprintf(err, errlen, "_Py_DebugOffsets block too short");
		return -1;
	}
	if (raw_u64(raw, s->free_threaded_pos) != 0) {
		snprintf(err, errlen, "unsupported CPython %u.%u (free-threaded build)", major, minor);
		return -1;
	}
	*out = *base;
	out->source = "_Py_DebugOffsets";
	if (dbg_check_sizes(s, raw, err, errlen) != 0 || dbg_apply_fields(s, raw, out, err, errlen) != 0 ||
	    dbg_apply_gil(s, raw, out, err, errlen) != 0)
		return -1;
	if (out->str_ascii_data > out->str_compact_data) {
		snprintf(err, errlen, "_Py_DebugOffsets: str header larger than the table's");
		return -1;
	}
	/* ob_type, length and state precede the ASCII data in every PEP 393 str (3.3+) */
	if (out->ob_type + 8 > out->str_ascii_data || out->str_length + 8 > out->str_ascii_data ||
	    out->str_state >= out->str_ascii_data) {
		snprintf(err, errlen, "_Py_DebugOffsets: str fields outside the str header");
		return -1;
	}
	return 0;
}

/* ---- asyncio ------------------------------------------------------------------------- */
/* Sources: Modules/_asynciomodule.c FutureObj_HEAD(prefix): PyObject_HEAD, then _loop,
 * _callback0, _context0 (3.7+), _callbacks, _exception, (_exception_tb 3.10+), _result,
 * _source_tb, (_cancel_msg 3.9+), (_cancelled_exc 3.11+), then fut_state and the int
 * flags (3.13 makes them bitfields and drops the dict pointer); TaskObj then adds
 * task_fut_waiter, task_coro, task_name (3.8+), task_context. Measured with ctypes on live tasks of
 * pyenv 3.7.16-3.13.0 and Debian 3.11.2 (each pointer equal to id() of t._loop, t._coro,
 * t._fut_waiter, t.get_name(); fut_state 2 on a finished future; fut_callback0 at 24, the
 * `_call_set_state` closure run_coroutine_threadsafe chains to its future). 3.12/3.13 keep the
 * counter N of an unnamed task as an int until get_name() makes "Task-N" of it
 * (task_name_int). Generators: Include/cpython/genobject.h (3.11: gi_code first, frame
 * state at 75, iframe at 80; 3.12: at 67 and 72; 3.13 internal/pycore_genobject.h: the
 * same), frame states from internal/pycore_frame.h (3.11/3.12 FRAME_SUSPENDED -1;
 * 3.13 FRAME_SUSPENDED -2 and FRAME_SUSPENDED_YIELD_FROM -1), the awaited object at
 * localsplus[stacktop - 1] (_PyFrame_StackPeek, as _PyGen_yf reads it), checked live:
 * it is id(coro.cr_await). <= 3.9: f_stacktop (72) is non-NULL only while suspended and
 * f_stacktop[-1] is cr_await; 3.10: f_valuestack[f_stackdepth - 1], f_state -1 suspended.
 * co_localsplusnames at 96 (offsetof, 3.11-3.13). func_code 16 / func_closure 48 (3.7-3.9), 48 / 72 (3.10+),
 * member descriptors' d_member 40 and PyMemberDef.offset 16, tp_base 256, tp_dict 264,
 * set mask 32 / table 40, wr_object 16, ob_fval 16: offsetof against every version's
 * headers; deque fields, slots read through member descriptors and closures: ctypes on
 * live objects of every version. Lib/asyncio/tasks.py: 3.7-3.11
 * `_all_tasks = weakref.WeakSet()`, 3.12/3.13 `_scheduled_tasks = weakref.WeakSet()` and
 * `_eager_tasks = set()`; with the C module they are the very objects _asyncio registers
 * tasks in (`from _asyncio import ... _all_tasks` / `_scheduled_tasks, _eager_tasks`).
 * sock_fd 16: PySocketSockObject {PyObject_HEAD; SOCKET_T sock_fd; ...} in every version
 * (Modules/socketmodule.h 3.7-3.13), checked live by tests/test_idle_io.py against
 * loop._ssock.fileno(). */
#define AIO_COMMON .fut_callback0 = 24, .set_mask = 32, .set_table = 40, .wr_object = 16, .float_val = 16, \
	.tp_base = 256, .tp_dict = 264, .d_member = 40, .memberdef_offset = 16, \
	.tuple_size = 16, .tuple_items = 24, .cell_ref = 16, .deque_size = 16, \
	.deque_leftblock = 24, .deque_leftindex = 40, .block_data = 8, .block_rightlink = 520, \
	.sock_fd = 16
static const struct py_aio_layout aio_layouts[] = {
	{ .major = 3, .minor = 7, .func_code = 16, .func_closure = 48,
	  .tasks_all = "_all_tasks", .fut_loop = 16, .fut_state = 72,
	  .task_fut_waiter = 104, .task_coro = 112, .task_name = 0,
	  .gen = PY_AIO_GEN_FRAMEOBJ_STACKTOP, .gi_frame = 16, .f_stacktop = 72, AIO_COMMON },
	{ .major = 3, .minor = 8, .func_code = 16, .func_closure = 48,
	  .tasks_all = "_all_tasks", .fut_loop = 16, .fut_state = 72,
	  .task_fut_waiter = 104, .task_coro = 112, .task_name = 120,
	  .gen = PY_AIO_GEN_FRAMEOBJ_STACKTOP, .gi_frame = 16, .f_stacktop = 72, AIO_COMMON },
	{ .major = 3, .minor = 9, .func_code = 16, .func_closure = 48,
	  .tasks_all = "_all_tasks", .fut_loop = 16, .fut_state = 80,
	  .task_fut_waiter = 144, .task_coro = 152, .task_name = 160,
	  .gen = PY_AIO_GEN_FRAMEOBJ_STACKTOP, .gi_frame = 16, .f_stacktop = 72, AIO_COMMON },
	{ .major = 3, .minor = 10, .func_code = 48, .func_closure = 72,
	  .tasks_all = "_all_tasks", .fut_loop = 16, .fut_state = 88,
	  .task_fut_waiter = 152, .task_coro = 160, .task_name = 168,
	  .gen = PY_AIO_GEN_FRAMEOBJ_DEPTH, .gi_frame = 16, .f_stackdepth = 80, .f_state = 108,
	  .suspended_a = -1, .suspended_b = -1, AIO_COMMON },
	{ .major = 3, .minor = 11, .func_code = 48, .func_closure = 72,
	  .tasks_all = "_all_tasks", .fut_loop = 16, .fut_state = 88,
	  .task_fut_waiter = 128, .task_coro = 136, .task_name = 144,
	  .gen = PY_AIO_GEN_IFRAME, .gi_iframe = 80, .gi_frame_state = 75, .suspended_a = -1,
	  .suspended_b = -1, .if_stacktop = 64, .co_localsplusnames = 96, AIO_COMMON },
	{ .major = 3, .minor = 12, .func_code = 48, .func_closure = 72,
	  .tasks_all = "_scheduled_tasks", .tasks_eager = "_eager_tasks",
	  .fut_loop = 16, .fut_state = 88, .task_fut_waiter = 128, .task_coro = 136,
	  .task_name = 144, .task_name_int = true,
	  .gen = PY_AIO_GEN_IFRAME, .gi_iframe = 72, .gi_frame_state = 67, .suspended_a = -1,
	  .suspended_b = -1, .if_stacktop = 64, .co_localsplusnames = 96, AIO_COMMON },
	{ .major = 3, .minor = 13, .func_code = 48, .func_closure = 72,
	  .tasks_all = "_scheduled_tasks", .tasks_eager = "_eager_tasks",
	  .fut_loop = 16, .fut_state = 96, .task_fut_waiter = 112, .task_coro = 120,
	  .task_name = 128, .task_name_int = true,
	  .gen = PY_AIO_GEN_IFRAME, .gi_iframe = 72, .gi_frame_state = 67, .suspended_a = -2,
	  .suspended_b = -1, .if_stacktop = 64, .co_localsplusnames = 96, AIO_COMMON },
};

const struct py_aio_layout *pylayout_asyncio_for_version(unsigned major, unsigned minor)
{
	for (size_t i = 0; i < sizeof(aio_layouts) / sizeof(aio_layouts[0]); i++)
		if (aio_layouts[i].major == major && aio_layouts[i].minor == minor)
			return &aio_layouts[i];
	return NULL;
}
