/* pyscan: finding the interpreter state (see pyreader_int.h).
 * Owns: validating an interpreter/runtime candidate, the 2.7/3.6 interp_head (symbol or
 * disassembly of PyInterpreterState_Head), 3.7+ _PyRuntime, and the symbol-less scans of
 * .PyRuntime/.bss/.data for them. */
#include "pyreader_int.h"

bool interp_valid(struct walk *w, uint64_t interp)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t ts, back;
	if (!plausible_ptr(interp) || rd_u64(w, interp + l->interp_tstate_head, &ts) != 0)
		return false;
	if (ts == 0)
		return true; /* no thread yet (startup/shutdown): nothing to contradict */
	return plausible_ptr(ts) && rd_u64(w, ts + l->ts_interp, &back) == 0 && back == interp;
}

/* Stricter, for scanning: a live first thread that points back, with a thread id, whose
 * successor (if any) belongs to the same interpreter. */
static bool interp_valid_strict(struct walk *w, uint64_t interp)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t ts, back, tid, next;
	if (!plausible_ptr(interp) || rd_u64(w, interp + l->interp_tstate_head, &ts) != 0 ||
	    !plausible_ptr(ts) || rd_u64(w, ts + l->ts_interp, &back) != 0 || back != interp ||
	    rd_u64(w, ts + l->ts_thread_id, &tid) != 0 || tid == 0 ||
	    rd_u64(w, ts + l->ts_next, &next) != 0)
		return false;
	return next == 0 || (plausible_ptr(next) && rd_u64(w, next + l->ts_interp, &back) == 0 &&
			     back == interp);
}

/* Scans a section of the process for a pointer to a valid interpreter; returns its
 * address (the candidate interp_head or &_PyRuntime.interpreters.head) or 0. */
uint64_t scan_for_interp_pointer(struct walk *w, uint64_t start, uint64_t size,
					bool want_head_main_pair)
{
	if (size > MAX_SCAN_SECTION)
		size = MAX_SCAN_SECTION;
	if (size > ph_limits.scan_bytes) /* issue 12: the file says how large; it may lie */
		size = ph_limits.scan_bytes;
	/* candidates followed, each a few reads: 2.7 and 3.6 without symbols follow ~5,000
	 * before interp_head (measured, sleeping processes); 16,384 at the default */
	uint64_t checks = ph_limits.scan_bytes / 256;
	enum { CHUNK = 65536 };
	uint64_t *buf = malloc(CHUNK);
	if (!buf)
		return 0;
	uint64_t found = 0;
	for (uint64_t off = 0; off + 16 <= size && !found && !w->gone && checks; off += CHUNK - 8) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		n &= ~(size_t)7;
		if (pm_read_direct(&w->p->pm, start + off, buf, n) != PM_OK)
			break;
		for (size_t i = 0; i + 1 < n / 8 && !found; i++) {
			if (!plausible_ptr(buf[i]) || (want_head_main_pair && buf[i + 1] != buf[i]))
				continue;
			if (!checks--)
				break;
			if (interp_valid_strict(w, buf[i]))
				found = start + off + i * 8;
		}
	}
	free(buf);
	return found;
}

/* 2.7/3.6: PyInterpreterState_Head is `mov interp_head(%rip), %rax; ret`. */
static uint64_t interp_head_from_disassembly(struct walk *w, uint64_t fn)
{
	unsigned char code[8];
	if (!fn || rd(w, fn, code, sizeof(code)) != 0)
		return 0;
	if (code[0] != 0x48 || code[1] != 0x8b || code[2] != 0x05 || code[7] != 0xc3)
		return 0;
	int32_t disp;
	memcpy(&disp, code + 3, 4);
	return fn + 7 + (uint64_t)(int64_t)disp;
}

int find_interp_head(struct walk *w, struct attach *a, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	uint64_t head = a->no_symbols ? 0 : sym_addr(a, S_INTERP_HEAD);
	if (!head && !a->no_symbols)
		head = interp_head_from_disassembly(w, sym_addr(a, S_INTERP_HEAD_FN));
	uint64_t interp = 0;
	if (head && (rd_u64(w, head, &interp) != 0 || !interp_valid(w, interp))) {
		/* The symbol says where the interpreter will be: no scan. Before it is set up a
		 * scan finds look-alikes (2.7: a static pointer to a gc list head, whose empty
		 * list points at itself like an interpreter and its thread). */
		snprintf(err, errlen, "interp_head not set up yet (CPython %u.%u)",
			 p->res.layout.major, p->res.layout.minor);
		return -1;
	}
	uint64_t sa, ss;
	p->resolved_by_scan = !head;
	if (!head && attach_section(a, SEC_BSS, &sa, &ss) == 0)
		head = scan_for_interp_pointer(w, sa + a->bias, ss, false);
	if (!head && attach_section(a, SEC_DATA, &sa, &ss) == 0)
		head = scan_for_interp_pointer(w, sa + a->bias, ss, false);
	if (!head) {
		snprintf(err, errlen, "cannot find interp_head (CPython %u.%u)", p->res.layout.major,
			 p->res.layout.minor);
		return -1;
	}
	p->res.interp_head = head;
	return 0;
}

static bool runtime_valid(struct walk *w, uint64_t rt)
{
	uint64_t interp;
	return rt && rd_u64(w, rt + w->p->res.layout.rt_interp_head, &interp) == 0 &&
	       interp_valid(w, interp);
}

/* 3.7-3.9 without symbols: _PyRuntime holds interpreters.head and, right after it,
 * interpreters.main, equal while there is one interpreter; found in [start, start+size). */
uint64_t runtime_by_scan(struct walk *w, uint64_t start, uint64_t size)
{
	uint64_t head = scan_for_interp_pointer(w, start, size, true);
	uint64_t rt = head - w->p->res.layout.rt_interp_head;
	return head && runtime_valid(w, rt) ? rt : 0;
}

int find_runtime(struct walk *w, struct attach *a, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	uint64_t rt = a->no_symbols ? 0 : sym_addr(a, S_RUNTIME);
	uint64_t sa, ss;
	if (!rt && attach_section(a, SEC_PYRUNTIME, &sa, &ss) == 0)
		rt = sa + a->bias; /* 3.10+: _PyRuntime is the section's only object */
	if (rt && !runtime_valid(w, rt)) {
		/* known, not set up yet: no scan (see find_interp_head) */
		snprintf(err, errlen, "_PyRuntime not set up yet (CPython %u.%u)",
			 p->res.layout.major, p->res.layout.minor);
		return -1;
	}
	p->resolved_by_scan = !rt;
	const enum sec_id secs[] = { SEC_BSS, SEC_DATA };
	for (size_t i = 0; i < 2 && !rt && p->res.layout.runtime_in_data; i++) {
		if (attach_section(a, secs[i], &sa, &ss) != 0)
			continue;
		rt = runtime_by_scan(w, sa + a->bias, ss);
	}
	if (!rt) {
		snprintf(err, errlen, "cannot find a valid _PyRuntime (CPython %u.%u)",
			 p->res.layout.major, p->res.layout.minor);
		return -1;
	}
	p->res.runtime = rt;
	return 0;
}

/* The _PyRuntime address before a layout is known (3.13+ needs it to read the layout). */
uint64_t runtime_candidate(struct attach *a)
{
	uint64_t sa, ss;
	if (!a->no_symbols && a->f.sym[S_RUNTIME])
		return sym_addr(a, S_RUNTIME);
	if (attach_section(a, SEC_PYRUNTIME, &sa, &ss) == 0)
		return sa + a->bias;
	return 0;
}
