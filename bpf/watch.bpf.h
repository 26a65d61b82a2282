/* SPDX-License-Identifier: GPL-2.0 */
/* watch.bpf.h: included once by pyhang.bpf.c (see its table of contents).
 *
 * Owns: the watch table: which processes are traced and how (struct ph_watch,
 * kept in the watch_slots array by tgid % PH_WATCH_SLOTS, overflowing into the watched
 * hash; the slot rules are ph_watch_slot_* in pyhang.h, shared with userspace), and
 * whether an exec'd file is a Python interpreter (basename_is_python). */
#ifndef PH_WATCH_BPF_H
#define PH_WATCH_BPF_H

static const struct ph_watch watch_everything = {};

static __always_inline struct ph_watch_slot *watch_slot(u32 tgid)
{
	u32 k = ph_watch_slot_key(tgid);
	return bpf_map_lookup_elem(&watch_slots, &k);
}

/* The watch entry of process tgid, NULL if it has none. */
static __always_inline struct ph_watch *watch_find(u32 tgid)
{
	struct ph_watch_slot *s = watch_slot(tgid);
	if (!s)
		return NULL;
	switch (ph_watch_slot_where(s, tgid)) {
	case PH_SLOT_MINE:
		return &s->w;
	case PH_SLOT_OVERFLOW:
		return bpf_map_lookup_elem(&watched, &tgid);
	default:
		return NULL;
	}
}

/* Stores process tgid's watch entry: in its slot if the slot is its own or free, else in
 * the overflow hash. A slot is claimed by compare-and-swap of its owner; its previous owner
 * left it zeroed, so a reader between the claim and the store sees flags 0 (not watched). */
static __always_inline void watch_put(u32 tgid, const struct ph_watch *v)
{
	struct ph_watch_slot *s = watch_slot(tgid);
	if (!s)
		return;
	if (s->tgid == tgid) {
		s->w = *v;
		return;
	}
	if (s->tgid == 0 && __sync_val_compare_and_swap(&s->tgid, 0, tgid) == 0) {
		s->w = *v;
		if (s->shared)
			bpf_map_delete_elem(&watched, &tgid); /* an older entry of this tgid */
		return;
	}
	s->shared = 1;
	if (bpf_map_update_elem(&watched, &tgid, v, BPF_ANY))
		stat_inc(PH_STAT_MAP_FULL);
}

/* Forgets process tgid; true if it was watched. */
static __always_inline bool watch_del(u32 tgid)
{
	struct ph_watch_slot *s = watch_slot(tgid);
	if (!s)
		return false;
	if (s->tgid == tgid) {
		__builtin_memset(&s->w, 0, sizeof(s->w));
		barrier();
		s->tgid = 0;
		return true;
	}
	return s->shared && bpf_map_delete_elem(&watched, &tgid) == 0;
}

/* The watch entry of process tgid if its events are wanted, else NULL. Host-wide --all needs
 * no lookup (and then knows no GIL ranges). */
static __always_inline const struct ph_watch *watch_of(u32 tgid)
{
	if (tgid == self_tgid)
		return NULL;
	if (trace_all_procs && host_wide)
		return &watch_everything;
	struct ph_watch *w = watch_find(tgid);
	if (!w)
		return NULL;
	if (!trace_all_procs && !(w->flags & PH_W_PYTHON))
		return NULL;
	if (!host_wide && !(w->flags & PH_W_SCOPE))
		return NULL;
	return w;
}

static __always_inline bool is_interesting(u32 tgid)
{
	return watch_of(tgid) != NULL;
}

/* Whether the last path component starts with "python" (python, python3.11, python2.7...).
 * len is the string length including its NUL, as bpf_probe_read_kernel_str returns it.
 * Scans backward from the end so the verifier tracks one loop variable only. */
static __always_inline bool basename_is_python(const char *path, long len)
{
	long base = 0;
	for (int i = 2; i < PH_PATH_LEN; i++) {
		long idx = len - i;
		if (idx < 0)
			break;
		if (path[idx & (PH_PATH_LEN - 1)] == '/') {
			base = idx + 1;
			break;
		}
	}
	if (base > PH_PATH_LEN - 7 || len - base < 7)
		return false;
	const char *b = path + (base & (PH_PATH_LEN - 1));
	if (base + 6 >= PH_PATH_LEN)
		return false;
	return b[0] == 'p' && b[1] == 'y' && b[2] == 't' && b[3] == 'h' && b[4] == 'o' && b[5] == 'n';
}

#endif /* PH_WATCH_BPF_H */
