/* pylayout: where CPython keeps what we read, per version, as data.
 * Owns: one struct py_layout of offsets per supported version (2.7, 3.6-3.12 from tables
 * measured with offsetof() against each version's headers and checked on live processes;
 * 3.13 both as a table and as built from the _Py_DebugOffsets that the process carries),
 * the validation of a _Py_DebugOffsets block read from a process, and the refusal of
 * versions we have no facts for ("unsupported CPython X.Y").
 * Versions: x86_64, glibc, default (GIL) builds; free-threaded builds are refused. */
#ifndef PH_PYLAYOUT_H
#define PH_PYLAYOUT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pyopcodes.h"

enum py_start_kind {
	PY_START_INTERP_HEAD, /* 2.7, 3.6: static interp_head (via PyInterpreterState_Head) */
	PY_START_RUNTIME,     /* 3.7+: _PyRuntime.interpreters.head */
};

enum py_frame_kind {
	PY_FRAMES_OBJECTS,    /* <= 3.10: PyFrameObject chain from tstate->frame */
	PY_FRAMES_CFRAME,     /* 3.11, 3.12: tstate->cframe->current_frame */
	PY_FRAMES_CURRENT,    /* 3.13+: tstate->current_frame */
};

enum py_line_kind {
	PY_LINES_LNOTAB_U8,   /* 2.7: co_lnotab, unsigned line deltas, f_lasti in bytes */
	PY_LINES_LNOTAB_S8,   /* 3.6-3.9: co_lnotab, signed line deltas, f_lasti in bytes */
	PY_LINES_LINETABLE310,/* 3.10: co_linetable pairs, f_lasti in code units */
	PY_LINES_LOCATIONS,   /* 3.11+: location table, position from instruction pointer */
};

enum py_str_kind { PY_STR_BYTES27, PY_STR_PEP393 };

enum py_int_kind {
	PY_INT_27,            /* 2.7 PyIntObject: long ob_ival at int_value */
	PY_INT_OBSIZE,        /* 3.x <= 3.11 PyLongObject: ob_size (digit count, sign) at
			       * int_size, 30-bit digits from int_value */
	PY_INT_LVTAG,         /* 3.12+: lv_tag (digit count << 3 | sign bits) at int_size */
};

enum py_bytecode_kind {
	PY_BYTECODE_WORDS,    /* 3.6+: 2-byte instructions (opcode, arg) */
	PY_BYTECODE_VARLEN27, /* 2.7: 1 byte, or 3 with a 2-byte argument (opcodes >= 90) */
};

enum py_jump_unit {
	PY_JUMP_BYTES,        /* 2.7-3.9: jump arguments and block handlers in bytes */
	PY_JUMP_UNITS,        /* 3.10: in code units of 2 bytes */
};

enum py_dict_kind {
	PY_DICT_27,           /* ma_mask/ma_table, entries {hash,key,value} */
	PY_DICT_36,           /* 3.6-3.10 compact dict, dk_size */
	PY_DICT_311,          /* 3.11+ dk_log2_size, dk_kind */
};

enum py_inst_dict_kind {
	PY_INST_DICTOFFSET,   /* <= 3.10: dict pointer at tp_dictoffset */
	PY_INST_MANAGED311,   /* dict at obj-24, else values pointer at obj-32 */
	PY_INST_MANAGED312,   /* tagged word at obj-24: low bit set = values (word+1) */
	PY_INST_MANAGED313,   /* dict at obj-24, else inline values at obj+tp_basicsize */
};

enum py_gil_kind {
	PY_GIL_NONE,          /* 2.7: interpreter_lock, a pointer to a sem_t */
	PY_GIL_STATIC,        /* 3.6: static variables of ceval.c, described by gil_statics */
	PY_GIL_IN_RUNTIME,    /* 3.7-3.11: struct at _PyRuntime + gil */
	PY_GIL_IN_INTERP,     /* 3.12+: struct embedded in the main interpreter at + gil */
};

/* A GIL kept in static variables (3.6: Python/ceval_gil.h, included by ceval.c): the names
 * the variables have in .symtab, the sizes of the wait objects (x86_64 glibc: pthread_cond_t
 * 48, pthread_mutex_t 40 bytes), and the message create_gil() passes to Py_FatalError when
 * initializing each one fails ("PyMUTEX_INIT(gil_mutex) failed": it names the variable,
 * which is how gilstatic.c finds them in the code of a file without .symtab). */
#define PY_GIL_STATIC_PARTS 4
struct py_gil_static_part {
	const char *name;
	uint32_t size;
	const char *init_failed;
};
struct py_gil_statics {
	const char *init_fn;      /* exported function whose code creates the GIL */
	const char *locked;       /* _Py_atomic_int: -1 not created, 0 free, 1 held */
	const char *last_holder;  /* _Py_atomic_address: PyThreadState * */
	/* futex objects; parts[0] is the condition GIL waiters wait on */
	struct py_gil_static_part parts[PY_GIL_STATIC_PARTS];
};

struct py_layout {
	unsigned major, minor;
	const char *source;             /* "table" or "_Py_DebugOffsets" */
	enum py_start_kind start;
	uint32_t rt_interp_head;        /* offset in _PyRuntime of interpreters.head */
	enum py_gil_kind gil_kind;
	uint32_t gil;                   /* offset of struct _gil_runtime_state */
	uint32_t gil_last_holder, gil_locked, gil_size;
	const struct py_gil_statics *gil_statics; /* PY_GIL_STATIC, else NULL */
	/* PyInterpreterState */
	uint32_t interp_next, interp_tstate_head, interp_modules;
	/* PyThreadState */
	uint32_t ts_next, ts_interp, ts_thread_id, ts_native_thread_id; /* 0 = absent */
	enum py_frame_kind frames;
	uint32_t ts_frame;              /* frame, cframe or current_frame */
	uint32_t cframe_current;        /* 3.11/3.12: offset of current_frame in _PyCFrame */
	/* frames */
	uint32_t f_back, f_code, f_pos; /* f_pos: f_lasti (int) or prev_instr/instr_ptr */
	uint32_t f_owner;               /* u8; 0 = no owner field */
	uint8_t owner_generator, owner_cstack; /* 0xff = none */
	/* code objects */
	uint32_t co_firstlineno, co_filename, co_name, co_qualname, co_linetable;
	uint32_t co_code_adaptive, co_firsttraceable; /* 0 = absent */
	enum py_line_kind lines;
	/* objects */
	uint32_t ob_type;
	uint32_t tp_name, tp_basicsize, tp_dictoffset, tp_flags, ht_cached_keys;
	enum py_str_kind strs;
	uint32_t str_length, str_state, str_ascii_data, str_compact_data;
	uint32_t bytes_size, bytes_data;
	uint32_t uni27_length, uni27_str;  /* 2.7 PyUnicodeObject length, str (Py_UNICODE *) */
	enum py_dict_kind dicts;
	uint32_t dict_keys, dict_values;   /* ma_keys/ma_values (3.6+); ma_mask/ma_table (2.7) */
	uint32_t values_header;            /* bytes before values[] in PyDictValues */
	enum py_inst_dict_kind inst_dict;
	uint32_t md_dict;
	const char *attr_name, *attr_daemonic; /* threading.Thread attributes */
	/* threading attributes (2.7 mangles the private names): Thread._ident, Thread._native_id
	 * (3.8+; NULL before), Condition._lock, the Python RLock's _block and _owner */
	const char *attr_ident, *attr_native_id, *attr_cond_lock, *attr_rlock_block,
		   *attr_rlock_owner;
	bool rlock_python_owner;       /* 2.7: threading.RLock is Python code (_RLock) whose
					* owner is an int ident or None */
	enum py_int_kind ints;
	uint32_t int_size, int_value;  /* see enum py_int_kind */
	/* lock objects and bound methods (user/python/lockown*.c): _thread.lock's lock_lock
	 * (the futex), _thread.RLock's rlock_lock and rlock_owner, PyCFunctionObject m_ml and
	 * m_self, PyMethodObject im_self */
	uint32_t lock_futex, rlock_futex, rlock_owner, cfunc_ml, cfunc_self, meth_self;
	uint32_t tuple_size, tuple_items; /* PyTupleObject ob_size, ob_item[] */
	enum py_bytecode_kind bytecode;  /* <= 3.10 bytecode read by lockown_with.c */
	enum py_jump_unit jumps;
	/* 3.7-3.9: _PyRuntime lies in .bss/.data (3.10+: a section of its own): where the
	 * symbol-less search scans for it */
	bool runtime_in_data;
	/* lock ownership (user/python/lockown*.c): value stacks, blocks, code sizes. <= 3.10 frame
	 * objects: f_valuestack, f_iblock (int), f_blockstack (PyTryBlock[20] of 3 ints),
	 * f_localsplus; code: co_nlocals, co_stacksize (int), co_code (bytes). 3.11+: the
	 * value stack follows _PyInterpreterFrame.localsplus after co_nlocalsplus slots, and
	 * co_exceptiontable (bytes) gives its live depth. 0 = absent. */
	uint32_t f_valuestack, f_iblock, f_blockstack, f_localsplus;
	uint32_t co_nlocals, co_stacksize, co_code, co_nlocalsplus, co_exceptiontable;
	uint32_t co_names, co_varnames;    /* tuples of str: source names (co_varnames <= 3.10) */
	uint32_t co_localsplusnames;       /* 3.11+: tuple of str, the names of localsplus */
	uint32_t iframe_localsplus;
	const struct py_opcodes *ops;      /* 3.11+ bytecode (pyopcodes.h); NULL <= 3.10 */
};

/* Bytes to read from a frame / code object to cover every field we use. */
uint32_t pylayout_frame_read_size(const struct py_layout *l);
uint32_t pylayout_code_read_size(const struct py_layout *l);
/* The versions the table supports, for people: "CPython 2.7, 3.6-3.13" (built once from
 * the table; --help and `dump --help` print it). */
const char *pylayout_supported_text(void);
/* The table's entries in version order: how many, and the i-th (NULL past the end). */
size_t pylayout_count(void);
const struct py_layout *pylayout_nth(size_t i);
/* The table entry for X.Y, or NULL. */
const struct py_layout *pylayout_for_version(unsigned major, unsigned minor);
/* The distinct gil_statics of all layouts (at most max, into out): an interpreter file is
 * searched for them before its version is known. Returns how many. */
size_t pylayout_gil_statics(const struct py_gil_statics **out, size_t max);
/* Size of the _Py_DebugOffsets block to read for a given version (0 if not known). */
size_t pylayout_debug_offsets_size(unsigned major, unsigned minor);
/* Validates a _Py_DebugOffsets block (cookie, version, every size and offset) and builds a
 * layout from it plus the facts it does not carry. 0, or -1 with a message such as
 * "unsupported CPython 3.14". *version_hex receives the version it declares. */
int pylayout_from_debug_offsets(const unsigned char *raw, size_t len, struct py_layout *out,
				uint32_t *version_hex, char *err, size_t errlen);

/* asyncio (user/asyncio_read.c), 3.7-3.13 only; 2.7 and 3.6 have none (unsupported).
 * Modules/_asynciomodule.c FutureObj/TaskObj (the C `_asyncio` Task and Future, which
 * asyncio.Task/Future are), coroutine objects (Include/cpython/genobject.h, 3.13:
 * internal/pycore_genobject.h), the suspended frame's value stack (<= 3.10 PyFrameObject,
 * 3.11+ internal/pycore_frame.h), sets (PySetObject), weak references, floats, member
 * descriptors (slots). Offsets in bytes; 0 = absent. */
enum py_aio_gen_kind {
	PY_AIO_GEN_FRAMEOBJ_STACKTOP, /* <= 3.9: gi_frame -> PyFrameObject, f_stacktop (NULL: not suspended) */
	PY_AIO_GEN_FRAMEOBJ_DEPTH,    /* 3.10: gi_frame -> PyFrameObject, f_stackdepth, f_state */
	PY_AIO_GEN_IFRAME,            /* 3.11+: _PyInterpreterFrame embedded at gi_iframe */
};
struct py_aio_layout {
	unsigned major, minor;
	const char *tasks_all;        /* asyncio.tasks WeakSet of tasks: _all_tasks (<= 3.11) or
				       * _scheduled_tasks (3.12+) */
	const char *tasks_eager;      /* 3.12+: asyncio.tasks._eager_tasks (a plain set), else NULL */
	uint32_t fut_loop, fut_state; /* fut_state: int, 0 pending 1 cancelled 2 finished */
	uint32_t fut_callback0;       /* the first done callback (3.7+: not in fut_callbacks) */
	uint32_t task_fut_waiter, task_coro, task_name; /* task_name 0: no names (3.7) */
	bool task_name_int;           /* 3.12+: task_name may be the int N of "Task-N" */
	enum py_aio_gen_kind gen;
	uint32_t gi_frame;            /* <= 3.10: PyFrameObject * */
	uint32_t gi_iframe, gi_frame_state; /* 3.11+: embedded frame, int8 state */
	int8_t suspended_a, suspended_b; /* frame states that mean suspended (3.10+) */
	uint32_t f_stacktop;          /* <= 3.9: PyObject ** past the top of stack */
	uint32_t f_stackdepth, f_state; /* 3.10: int, char */
	uint32_t if_stacktop;         /* 3.11+: int, slots from localsplus */
	uint32_t co_localsplusnames;  /* 3.11+: tuple of every local's name */
	/* shared by 3.7-3.13 (offsetof against each version's headers) */
	uint32_t set_mask, set_table, wr_object, float_val, tp_base, tp_dict, d_member,
		 memberdef_offset, tuple_size, tuple_items;
	uint32_t func_code, func_closure, cell_ref; /* function's code, closure tuple; cell's object */
	/* collections.deque (Modules/_collectionsmodule.c): ob_size, leftblock, leftindex;
	 * blocks of 64 slots after a leftlink word, rightlink after them */
	uint32_t deque_size, deque_leftblock, deque_leftindex, block_data, block_rightlink;
	/* _socket.socket (Modules/socketmodule.h PySocketSockObject): SOCKET_T sock_fd, an int
	 * on Linux, right after PyObject_HEAD; socket.socket subclasses it with __slots__ */
	uint32_t sock_fd;
};
const struct py_aio_layout *pylayout_asyncio_for_version(unsigned major, unsigned minor);
#endif
