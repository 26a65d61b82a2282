/* pyprobe: is the interpreter running Python code yet? (see pyreader_int.h).
 * Owns: the cheap probe of a new process (any thread with a visible Python frame), without
 * the code cache. */
#include "pyreader_int.h"

/* Whether the frame in buf is one walk_frames would report (frame_location would succeed),
 * decided without the code cache: the tracer probes every new Python process, and most of
 * them are never read in full. */
static bool frame_is_python(struct walk *w, const unsigned char *buf)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t code = get_u64(buf, l->f_code);
	uint8_t owner = 0;
	if (l->frames != PY_FRAMES_OBJECTS) {
		owner = l->f_owner ? buf[l->f_owner] : 0;
		if (py_frame_is_cstack_shim(owner, l->owner_cstack))
			return false;
	}
	/* a code object (its type checked) is proof enough; its names and line table are not
	 * read here (three more reads of memory for each look at a new process) */
	struct code_entry c;
	if (code_read_fields(w, code, &c) != 0)
		return false;
	if (l->frames != PY_FRAMES_OBJECTS) {
		uint64_t instr = get_u64(buf, l->f_pos), start = code + l->co_code_adaptive;
		if (py_frame_incomplete(owner, l->owner_generator, instr, start,
					(uint32_t)c.firsttraceable))
			return false; /* incomplete frame */
	}
	return true;
}

/* Whether the chain from frame holds a frame of Python code (bounded like walk_frames). */
static bool chain_has_python_frame(struct walk *w, uint64_t frame)
{
	const struct py_layout *l = &w->p->res.layout;
	uint32_t fsize = pylayout_frame_read_size(l);
	unsigned char buf[256];
	if (fsize > sizeof(buf))
		return false;
	for (size_t steps = 0; frame && steps < 2 * PY_MAX_FRAMES && !w->gone && frame_step(w);
	     steps++) {
		if (!plausible_ptr(frame) || rd(w, frame, buf, fsize) != 0)
			return false;
		if (frame_is_python(w, buf))
			return true;
		frame = get_u64(buf, l->f_back);
	}
	return false;
}

static bool interp_has_python_frame(struct walk *w, uint64_t interp)
{
	const struct py_layout *l = &w->p->res.layout;
	uint32_t tsize = tstate_read_size(l);
	unsigned char ts[512];
	uint64_t tstate;
	if (tsize > sizeof(ts) || rd_u64(w, interp + l->interp_tstate_head, &tstate) != 0)
		return false;
	/* the thread list is not walked for cycles here: the count bounds it */
	for (unsigned n = 0; tstate && n < PY_MAX_THREADS && !w->gone; n++) {
		if (!plausible_ptr(tstate) || rd(w, tstate, ts, tsize) != 0 ||
		    get_u64(ts, l->ts_interp) != interp)
			return false;
		if (chain_has_python_frame(w, first_frame(w, ts, false)))
			return true;
		tstate = get_u64(ts, l->ts_next);
	}
	return false;
}

/* What walk_process learns about the process (interpreter, version), and whether some
 * thread runs Python code: 1 yes, 0 not yet, -1 no valid interpreter. */
int probe_process(struct walk *w, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	struct addr_set seen = { 0 };
	uint64_t interp = first_interp(w), main_interp = 0;
	bool found = false;
	if (!interp_valid(w, interp)) {
		snprintf(err, errlen, "process %d: no valid Python interpreter state (not "
			 "initialized or finalizing?)", (int)p->pid);
		return -1;
	}
	p->last_interp = interp;
	for (unsigned n = 0; interp && n < MAX_INTERPRETERS && !w->gone; n++) {
		if (!plausible_ptr(interp) || !addr_set_add(&seen, interp))
			break;
		main_interp = interp; /* the list ends with the main interpreter */
		if (!found)
			found = interp_has_python_frame(w, interp);
		if (rd_u64(w, interp + p->res.layout.interp_next, &interp) != 0)
			break;
	}
	addr_set_free(&seen);
	read_sys_version(w, main_interp);
	return found ? 1 : 0;
}
