/* pygil: the GIL (see pyreader_int.h).
 * Owns: where the GIL of each interpreter is and who holds it (3.7+ struct, 3.6 statics,
 * 2.7 interpreter_lock), and the GIL proof that a thread ran no Python code during a
 * snapshot, which makes a stack consistent without a second walk (stack_read_consistent). */
#include "pyreader_int.h"

/* 3.7-3.13 (GIL builds; Python/ceval_gil.h, Include/internal/pycore_gil.h): struct
 * _gil_runtime_state is {unsigned long interval; last_holder; int locked; unsigned long
 * switch_number; ...}: take_gil() sets last_holder and increments switch_number whenever
 * the GIL goes to a thread other than the last holder. Python frames of a thread change
 * only while it holds the GIL. So a thread that was not the last holder when the snapshot
 * began, with last_holder and switch_number unchanged after its walk, did not run Python
 * code during the snapshot: its walk is consistent without a second one. 3.6 keeps the
 * same fields as statics of ceval.c (gil_last_holder, gil_switch_number: used when .symtab
 * has them); 2.7 has no such counter (always walked twice), nor 3.12+ with several
 * interpreters (each may have a GIL of its own). */
#define GIL_SWITCH_NUMBER_AFTER_LOCKED 8u

/* The GIL's last holder and switch count now, read directly. */
static bool gil_read_now(struct walk *w, uint64_t *holder, uint64_t *switches)
{
	struct procmem *pm = &w->p->pm;
	return pm_read_direct(pm, w->gil_holder_addr, holder, 8) == PM_OK &&
	       pm_read_direct(pm, w->gil_switches_addr, switches, 8) == PM_OK;
}

void gil_proof_begin(struct walk *w)
{
	struct py_proc *p = w->p;
	const struct py_layout *l = &p->res.layout;
	uint64_t base = 0, next = 1;
	w->gil_proof = false;
	if (p->pm.backend)
		return;
	if (p->res.gil_last_holder && p->res.gil36_switch_number) {
		/* 3.6: the same fields, as statics of ceval.c (Python/ceval_gil.h) */
		w->gil_holder_addr = p->res.gil_last_holder;
		w->gil_switches_addr = p->res.gil36_switch_number;
	} else {
		uint32_t sw = l->gil_locked + GIL_SWITCH_NUMBER_AFTER_LOCKED;
		if ((l->gil_locked & 7) || sw + 8 > l->gil_size || l->gil_last_holder + 8 > l->gil_size)
			return;
		if (l->gil_kind == PY_GIL_IN_RUNTIME) {
			base = p->res.runtime + l->gil;
		} else if (l->gil_kind == PY_GIL_IN_INTERP) {
			uint64_t interp = 0;
			if (pm_read_direct(&p->pm, p->res.runtime + l->rt_interp_head, &interp, 8) != PM_OK ||
			    !plausible_ptr(interp) ||
			    pm_read_direct(&p->pm, interp + l->interp_next, &next, 8) != PM_OK || next != 0)
				return; /* one interpreter only: its GIL is the one every thread takes */
			base = interp + l->gil;
		} else {
			return;
		}
		if (!plausible_ptr(base))
			return;
		w->gil_holder_addr = base + l->gil_last_holder;
		w->gil_switches_addr = base + sw;
	}
	w->gil_proof = gil_read_now(w, &w->gil0_holder, &w->gil0_switches);
}

/* Whether the thread of tstate provably ran no Python code since the snapshot began (two
 * direct reads of the GIL). */
static bool gil_says_still(struct walk *w, uint64_t tstate)
{
	uint64_t holder, switches;
	return w->gil_proof && w->gil0_holder != tstate && gil_read_now(w, &holder, &switches) &&
	       holder == w->gil0_holder && switches == w->gil0_switches;
}

/* Walks to make of a thread's stack, at most: a thread blocked or waiting for the GIL
 * is confirmed after the first; a thread running Python code nonstop may never agree. */
#define STACK_READ_TRIES 4

/* The stack of the thread whose state is in ts (read at tstate), consistent (see
 * stackcheck.h): the first walk (through the snapshot's cache) stands when the GIL shows
 * that the thread ran no Python code since the snapshot began (gil_says_still); else the
 * stack is walked again from the thread's current frame read anew, reading the process
 * directly, until two walks in a row agree, at most STACK_READ_TRIES walks. A stack still
 * changing after that is kept from the last walk and marked (truncated, error). */
void stack_read_consistent(struct walk *w, const unsigned char *ts, uint64_t tstate,
				  struct py_thread *t)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char tsb[512];
	if (!w->check)
		w->check = sc_new();
	if (!w->check || l->ts_frame + 8 > sizeof(tsb)) {
		walk_frames(w, first_frame(w, ts, false), t, false);
		t->truncated = true;
		t->error = "out of memory (stack not checked)";
		return;
	}
	sc_reset(w->check);
	memcpy(tsb + l->ts_frame, ts + l->ts_frame, 8);
	for (unsigned attempt = 0;; attempt++) {
		bool fresh = attempt > 0;
		sc_begin_walk(w->check, fresh);
		if (fresh) {
			if (rd_frame(w, true, tstate + l->ts_frame, tsb + l->ts_frame, 8) != 0)
				return; /* the thread state is gone: keep what was read, as read */
			free(t->frames);
			t->frames = NULL;
			t->nframes = 0;
			t->truncated = false;
			t->error = NULL;
		}
		w->checking = fresh;
		w->code_changed = false;
		walk_frames(w, first_frame(w, tsb, fresh), t, fresh);
		w->checking = false;
		if (w->gone || (fresh && !w->code_changed && sc_same_as_previous(w->check)) ||
		    (!fresh && gil_says_still(w, tstate)))
			return;
		if (attempt + 1 >= STACK_READ_TRIES) {
			t->truncated = true;
			t->error = "stack changed while being read (the thread runs): it may mix moments";
			return;
		}
	}
}

/* ---- the GIL -------------------------------------------------------------------------- */


void gil_add_struct(struct walk *w, struct gil_info *g, uint64_t gil)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char buf[32];
	if (g->nranges >= MAX_GILS || !plausible_ptr(gil))
		return;
	g->ranges[g->nranges][0] = gil;
	g->ranges[g->nranges][1] = gil + l->gil_size;
	g->nranges++;
	/* 3.13+ offsets come from the target: both fields must lie in the bytes read */
	if (l->gil_locked + 4 > sizeof(buf) || l->gil_last_holder + 8 > sizeof(buf) ||
	    rd(w, gil, buf, sizeof(buf)) != 0)
		return;
	if (get_i32(buf, l->gil_locked) != 0 && g->nholders < MAX_GILS)
		g->holders[g->nholders++] = get_u64(buf, l->gil_last_holder);
}

void gil_collect_static(struct walk *w, struct gil_info *g)
{
	struct py_proc *p = w->p;
	uint64_t holder, lock;
	int32_t locked;
	g->unknown = p->res.layout.gil_kind == PY_GIL_STATIC && !p->res.gil_found_by;
	if (p->res.gil_locked && p->res.gil_last_holder) {
		/* 3.6 located: gil_locked and gil_last_holder, as in the 3.7+ struct */
		if (rd(w, p->res.gil_locked, &locked, sizeof(locked)) == 0 && locked > 0 &&
		    rd_u64(w, p->res.gil_last_holder, &holder) == 0 && holder)
			g->holders[g->nholders++] = holder;
	} else if (p->res.tstate_current && rd_u64(w, p->res.tstate_current, &holder) == 0 && holder) {
		g->holders[g->nholders++] = holder;
	}
	for (int i = 0; i < 4; i++)
		if (p->res.gil_static[i][0] && g->nranges < MAX_GILS) {
			g->ranges[g->nranges][0] = p->res.gil_static[i][0];
			g->ranges[g->nranges][1] = p->res.gil_static[i][1];
			g->nranges++;
		}
	/* 2.7: interpreter_lock points to a sem_t (32 bytes) */
	if (p->res.layout.gil_kind == PY_GIL_NONE && p->res.interpreter_lock &&
	    rd_u64(w, p->res.interpreter_lock, &lock) == 0 && lock) {
		g->ranges[g->nranges][0] = lock;
		g->ranges[g->nranges][1] = lock + 32;
		g->nranges++;
	}
}

bool gil_held_by(const struct gil_info *g, uint64_t tstate)
{
	for (size_t i = 0; i < g->nholders; i++)
		if (g->holders[i] == tstate)
			return true;
	return false;
}
