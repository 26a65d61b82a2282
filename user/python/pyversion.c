/* pyversion: choosing the layout and attaching (see pyreader_int.h).
 * Owns: the version choice (Py_Version, _Py_DebugOffsets, file name; layout table of
 * pylayout.c), taking a file's symbols for a process, and attaching a process (static
 * binary or libpython), with what a retry of a still-starting process needs. */
#include "pyreader_int.h"

static int layout_from_process(struct walk *w, struct attach *a, unsigned major,
			       unsigned minor, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	size_t need = pylayout_debug_offsets_size(major, minor);
	uint64_t rt = runtime_candidate(a);
	if (!need) {
		snprintf(err, errlen, "unsupported CPython %u.%u", major, minor);
		return -1;
	}
	unsigned char *raw = malloc(need);
	if (!raw)
		return -1;
	int rc = -1;
	uint32_t declared = 0;
	if (!rt || rd(w, rt, raw, need) != 0)
		snprintf(err, errlen, "cannot read _Py_DebugOffsets of CPython %u.%u", major, minor);
	else if (pylayout_from_debug_offsets(raw, need, &p->res.layout, &declared, err, errlen) == 0)
		rc = 0;
	free(raw);
	if (rc == 0 && (((declared >> 24) & 0xff) != major || ((declared >> 16) & 0xff) != minor)) {
		snprintf(err, errlen, "_Py_DebugOffsets declares %u.%u but the process is %u.%u",
			 (declared >> 24) & 0xff, (declared >> 16) & 0xff, major, minor);
		rc = -1;
	}
	return rc;
}

/* Decides the version (Py_Version when exported, else the file name) and the layout. */
static int choose_layout(struct walk *w, struct attach *a, const char *path, char *err,
			 size_t errlen)
{
	struct py_proc *p = w->p;
	unsigned major = 0, minor = 0, fmaj, fmin;
	bool from_name = version_from_name(path, &fmaj, &fmin);
	uint32_t hex = 0;
	if (a->f.sym[S_PY_VERSION] && pm_read_u32(&p->pm, sym_addr(a, S_PY_VERSION), &hex) == PM_OK) {
		major = (hex >> 24) & 0xff;
		minor = (hex >> 16) & 0xff;
		p->res.version_hex = hex;
		if (from_name && (fmaj != major || fmin != minor)) {
			snprintf(err, errlen, "Py_Version says %u.%u but the file is %s", major, minor,
				 path);
			return -1;
		}
	} else if (from_name) {
		major = fmaj;
		minor = fmin;
		p->res.version_hex = (major << 24) | (minor << 16);
	} else {
		snprintf(err, errlen, "cannot tell the CPython version of %s", path);
		return -1;
	}
	snprintf(p->res.version, sizeof(p->res.version), "%u.%u", major, minor);
	/* versions whose facts the process carries (3.13+ _Py_DebugOffsets) */
	if (pylayout_debug_offsets_size(major, minor) != 0)
		return layout_from_process(w, a, major, minor, err, errlen);
	const struct py_layout *l = pylayout_for_version(major, minor);
	if (!l) {
		snprintf(err, errlen, "unsupported CPython %u.%u", major, minor);
		return -1;
	}
	p->res.layout = *l;
	return 0;
}

static void set_version_string(struct py_proc *p)
{
	unsigned hex = p->res.version_hex, micro = (hex >> 8) & 0xff, level = (hex >> 4) & 0xf;
	if (!(hex & 0xffff) && p->res.version[0])
		return; /* only X.Y known; the sys.version read may refine it */
	const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";
	if (*lv)
		snprintf(p->res.version, sizeof(p->res.version), "%u.%u.%u%s%u", hex >> 24,
			 (hex >> 16) & 0xff, micro, lv, hex & 0xf);
	else
		snprintf(p->res.version, sizeof(p->res.version), "%u.%u.%u", hex >> 24, (hex >> 16) & 0xff,
			 micro);
}

static void take_symbols(struct py_proc *p, const struct attach *a)
{
	p->res.t_code = sym_addr(a, S_CODE_TYPE);
	p->res.t_unicode = sym_addr(a, S_UNICODE_TYPE);
	p->res.t_bytes = p->res.layout.strs == PY_STR_BYTES27 ? sym_addr(a, S_STRING_TYPE) : sym_addr(a, S_BYTES_TYPE);
	p->res.t_dict = sym_addr(a, S_DICT_TYPE);
	p->res.t_true = sym_addr(a, S_TRUE);
	p->res.tstate_current = p->res.layout.gil_kind == PY_GIL_NONE ||
					p->res.layout.gil_kind == PY_GIL_STATIC ? sym_addr(a, S_TSTATE_CURRENT) : 0;
	p->res.interpreter_lock = sym_addr(a, S_INTERPRETER_LOCK);
	p->res.unicode27_width = a->f.sym[S_UCS4] ? 4 : a->f.sym[S_UCS2] ? 2 : 0;
	/* 3.6: gil_switch_number, an 8-byte static of ceval.c (Python/ceval_gil.h), from
	 * .symtab only: with gil_last_holder it proves a thread ran no Python code during a
	 * read (gil_proof_begin) */
	p->res.gil36_switch_number = p->res.layout.gil_kind == PY_GIL_STATIC && !a->no_symbols &&
					     a->f.symsize[S_GIL_SWITCH_NUMBER] == 8 ?
					     sym_addr(a, S_GIL_SWITCH_NUMBER) : 0;
	/* PYHANG_NO_SYMBOLS: as a file without .symtab */
	const struct gil_static_loc *g = a->no_symbols || !a->f.gil_sym.desc ? &a->f.gil_code
									    : &a->f.gil_sym;
	p->res.gil_found_by = NULL;
	if (!g->desc || g->desc != p->res.layout.gil_statics)
		return; /* not located: the GIL is unknown */
	for (int i = 0; i < PY_GIL_STATIC_PARTS && i < 4; i++) {
		p->res.gil_static[i][0] = g->part[i] + a->bias;
		p->res.gil_static[i][1] = g->part[i] + a->bias + g->desc->parts[i].size;
	}
	p->res.gil_locked = g->locked ? g->locked + a->bias : 0;
	p->res.gil_last_holder = g->last_holder ? g->last_holder + a->bias : 0;
	p->res.gil_wait[0] = g->wait_lo + a->bias;
	p->res.gil_wait[1] = g->wait_hi + a->bias;
	p->res.gil_found_by = g->how;
}

/* The process's interpreter file, its symbols and the layout: all that does not change
 * while the process lives. 0 or -1 with err. */
static int attach_static(struct walk *w, struct attach *a, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	struct pm_maps maps;
	/* only the mappings find_python_mapping and the bias may use (issue 12: bounded) */
	char exe[64];
	struct stat est;
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)p->pid);
	struct pm_map_want want = { is_libpython, stat(exe, &est) == 0 ? (uint64_t)est.st_ino : 0, 0 };
	if (pm_read_maps_wanted(p->pid, &want, &maps) != 0) {
		snprintf(err, errlen, "cannot read /proc/%d/maps (process exited?)", (int)p->pid);
		return -1;
	}
	int rc = -1;
	const char *ns = getenv("PYHANG_NO_SYMBOLS");
	a->no_symbols = ns && strcmp(ns, "1") == 0;
	const struct pm_map *m = find_python_mapping(p->pid, &maps);
	if (!m) {
		snprintf(err, errlen, "process %d is not a Python process (no libpython, no "
			 "executable mapping found)", (int)p->pid);
		goto out;
	}
	if (file_facts_of(w->syms, p->pid, m, &a->f, err, errlen) != 0)
		goto out;
	if (elf_bias_in_maps(&a->f.place, &maps, m->path, &a->bias) != 0) {
		snprintf(err, errlen, "cannot compute the load bias of %s", m->path);
		goto out;
	}
	if (!a->f.sym[S_RUNTIME] && !a->f.sym[S_INTERP_HEAD_FN] && !a->f.sym[S_INTERP_HEAD] &&
	    !is_libpython(m->path) && !version_from_name(m->path, &(unsigned){0}, &(unsigned){0})) {
		snprintf(err, errlen, "process %d is not a Python process (%s has no CPython "
			 "symbols)", (int)p->pid, m->path);
		goto out;
	}
	if (choose_layout(w, a, m->path, err, errlen) != 0)
		goto out;
	take_symbols(p, a);
	rc = 0;
out:
	pm_free_maps(&maps);
	return rc;
}

/* Where the interpreter state is found (_PyRuntime, or interp_head before 3.7), validated
 * against the live process: fails until the interpreter is set up. 0 or -1 with err. */
static int attach_resolve(struct walk *w, struct attach *a, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	int rc;
	if (p->res.layout.start == PY_START_INTERP_HEAD)
		rc = find_interp_head(w, a, err, errlen);
	else
		rc = find_runtime(w, a, err, errlen);
	set_version_string(p);
	return rc;
}

/* Whether a failed resolve may succeed later without attaching again: when the file's
 * symbols name where the interpreter will be. Without them the mapping found may be the
 * executable of a process whose libpython is not mapped yet (the dynamic loader still
 * runs), so the next try reads the maps again. */
static bool attach_can_retry(const struct attach *a)
{
	uint64_t sa, ss;
	if (a->no_symbols)
		return false;
	return a->f.sym[S_RUNTIME] || a->f.sym[S_INTERP_HEAD] || a->f.sym[S_INTERP_HEAD_FN] ||
	       attach_section(a, SEC_PYRUNTIME, &sa, &ss) == 0;
}

/* Attaches w->p, or finishes attaching it. 0: done; -1 with err: failed (the process is
 * not Python, or is gone); 1 with err: attached, but its interpreter is not set up yet
 * (p->unresolved is kept for the next try). */
int attach_process(struct walk *w, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	struct attach *a = p->unresolved;
	int rc = 0;
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rc = attach_static(w, a, err, errlen);
	}
	if (rc == 0 && attach_resolve(w, a, err, errlen) != 0)
		rc = attach_can_retry(a) ? 1 : -1;
	if (w->gone) {
		snprintf(err, errlen, "process %d exited or exec'd while being read", (int)p->pid);
		rc = -1;
	}
	p->unresolved = rc == 1 ? a : NULL;
	if (rc != 1)
		free(a);
	return rc;
}
