/* pyframes: walking a thread's frames (see pyreader_int.h).
 * Owns: one frame's code object and line (the frame-visibility rule of bpf/pyrules.h),
 * the bounded walk of a frame chain (2.7-3.10 PyFrameObject, 3.11+ _PyInterpreterFrame,
 * 3.11 cframe), and the first frame of a thread state. */
#include "pyreader_int.h"

/* One frame; c NULL: a frame whose code object is unreadable (function and file "?"). */
static int push_frame(struct walk *w, struct py_thread *t, size_t *cap, struct code_entry *c,
		      int line)
{
	if (t->nframes == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		struct py_frame *nv = realloc(t->frames, nc * sizeof(*nv));
		if (!nv)
			return -1;
		t->frames = nv;
		*cap = nc;
	}
	struct py_frame *f = &t->frames[t->nframes];
	if (!c) {
		f->function = f->file = arena_strdup(w->out, "?");
		if (!f->function)
			return -1;
		f->line = -1;
		f->first_line = 0;
		f->error = "code object unreadable";
		t->nframes++;
		return 0;
	}
	if (c->out_gen != pm_gen(&w->p->pm)) {
		c->out_function = arena_strdup(w->out, c->function ? c->function : "?");
		c->out_file = arena_strdup(w->out, c->file ? c->file : "?");
		if (!c->out_function || !c->out_file)
			return -1;
		c->out_gen = pm_gen(&w->p->pm);
	}
	f->function = c->out_function;
	f->file = c->out_file;
	f->line = line;
	f->first_line = c->firstlineno;
	f->error = c->error;
	t->nframes++;
	return 0;
}


/* The code object and line of one frame. FRAME_SKIP: not a Python-visible frame (3.12+
 * C-stack shims, 3.11+ incomplete frames). FRAME_BAD_CODE: the frame's code pointer does
 * not lead to a readable code object (corrupt memory, or a frame changing under us): the
 * frame is reported as unreadable rather than dropped. */
enum frame_kind frame_location(struct walk *w, const unsigned char *buf,
				      struct code_entry **out, int *line)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t code = get_u64(buf, l->f_code);
	if (l->frames == PY_FRAMES_OBJECTS) {
		struct code_entry *c = code_lookup(w, code);
		if (!c)
			return FRAME_BAD_CODE;
		int32_t lasti = get_i32(buf, l->f_pos);
		*out = c;
		*line = lasti < 0 ? c->firstlineno : code_line(l, c, (uint64_t)lasti);
		return FRAME_OK;
	}
	uint8_t owner = l->f_owner ? buf[l->f_owner] : 0;
	if (py_frame_is_cstack_shim(owner, l->owner_cstack))
		return FRAME_SKIP;
	/* 3.12/3.13: only C-stack shims (skipped above) have a non-code f_executable */
	struct code_entry *c = code_lookup(w, code);
	if (!c)
		return FRAME_BAD_CODE;
	uint64_t instr = get_u64(buf, l->f_pos), start = code + l->co_code_adaptive;
	if (py_frame_incomplete(owner, l->owner_generator, instr, start, (uint32_t)c->firsttraceable))
		return FRAME_SKIP; /* incomplete frame: not yet visible to Python */
	*out = c;
	*line = instr >= start ? code_line(l, c, instr - start) : c->firstlineno;
	return FRAME_OK;
}

/* A frame's bytes: from the snapshot's cache, or (a walk repeated to check a running
 * thread's stack, w->check in fresh mode) read from the process now. */
int rd_frame(struct walk *w, bool fresh, uint64_t addr, void *buf, size_t len)
{
	if (!fresh)
		return rd(w, addr, buf, len);
	int rc = sc_read_fresh(w->check, &w->p->pm, addr, buf, len);
	if (rc == PM_GONE)
		w->gone = 1;
	return rc == PM_OK ? 0 : -1;
}

/* Innermost first, cut at PY_MAX_FRAMES, cycles detected with Brent's algorithm. Every step
 * is recorded in w->check (when there is one) for stack_read_consistent. */
void walk_frames(struct walk *w, uint64_t frame, struct py_thread *t, bool fresh)
{
	const struct py_layout *l = &w->p->res.layout;
	uint32_t fsize = pylayout_frame_read_size(l);
	unsigned char buf[256];
	size_t cap = 0, power = 1, lam = 0;
	uint64_t tortoise = frame;
	if (fsize > sizeof(buf))
		return;
	for (size_t steps = 0; frame; steps++) {
		if (steps >= 2 * PY_MAX_FRAMES || t->nframes >= PY_MAX_FRAMES) {
			t->truncated = true;
			t->error = "too many frames";
			return;
		}
		if (!frame_step(w)) {
			t->truncated = true;
			t->error = "frame budget of the read used up";
			return;
		}
		if (!plausible_ptr(frame) || rd_frame(w, fresh, frame, buf, fsize) != 0) {
			t->truncated = true;
			t->error = "frame unreadable";
			return;
		}
		if (w->check)
			sc_record(w->check, frame, get_u64(buf, l->f_back), get_u64(buf, l->f_code),
				  l->frames == PY_FRAMES_OBJECTS ? (uint64_t)(uint32_t)get_i32(buf, l->f_pos)
								 : get_u64(buf, l->f_pos));
		/* <= 3.10: a frame object in a thread's chain is referenced (by the thread's
		 * evaluation); a count of 0 is a frame freed under the walk (see stackcheck.h) */
		if (l->frames == PY_FRAMES_OBJECTS && l->ob_type >= 8 && get_u64(buf, l->ob_type - 8) == 0) {
			t->truncated = true;
			t->error = "frame freed while being read";
			return;
		}
		struct code_entry *c = NULL;
		int line = -1;
		enum frame_kind k = frame_location(w, buf, &c, &line);
		if (k != FRAME_SKIP && push_frame(w, t, &cap, k == FRAME_OK ? c : NULL, line) != 0) {
			t->truncated = true;
			t->error = "out of memory";
			return;
		}
		if (k != FRAME_SKIP) { /* for lock ownership (lockown.c) */
			struct py_frame *pf = &t->frames[t->nframes - 1];
			pf->addr = frame;
			pf->code = get_u64(buf, l->f_code);
			pf->pos = l->frames == PY_FRAMES_OBJECTS ? (uint64_t)(int64_t)get_i32(buf, l->f_pos) :
				  get_u64(buf, l->f_pos);
			pf->iblock = l->frames == PY_FRAMES_OBJECTS && l->f_iblock ?
				     get_i32(buf, l->f_iblock) : -1;
		}
		frame = get_u64(buf, l->f_back);
		/* The outermost frame must be the thread's entry: a readable frame, and on 3.12+ the
		 * C-stack shim _PyEval_EvalFrameDefault pushes under the first Python frame of
		 * every entry (Include/internal/pycore_frame.h, FRAME_OWNED_BY_CSTACK). A chain
		 * that ends elsewhere was read while it changed, or is corrupt. */
		if (!frame && (k == FRAME_BAD_CODE ||
			       (l->f_owner && l->owner_cstack != 0xff && buf[l->f_owner] != l->owner_cstack))) {
			t->truncated = true;
			t->error = "chain ends before the thread's entry frame";
			return;
		}
		if (frame && frame == tortoise) {
			t->truncated = true;
			t->error = "frame chain loops";
			return;
		}
		if (++lam == power) {
			tortoise = frame;
			power *= 2;
			lam = 0;
		}
	}
}

uint64_t first_frame(struct walk *w, const unsigned char *ts, bool fresh)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t f = get_u64(ts, l->ts_frame);
	if (l->frames == PY_FRAMES_CFRAME) {
		uint64_t cframe = f;
		if (!plausible_ptr(cframe) || rd_frame(w, fresh, cframe + l->cframe_current, &f, 8) != 0)
			return 0;
	}
	return f;
}
