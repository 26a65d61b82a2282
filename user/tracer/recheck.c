/* recheck: second looks at long waits not proven a hang at first (see recheck.h). */
#include "recheck.h"

#include <string.h>

#define RC_FIRST_NS 1000000000ull

/* The victim of a full table, or of GIL chains at their share: the entry due last (the
 * most looked at) among those of one kind (gil), or of any kind (any). */
static struct rc_entry *victim(struct recheck *r, bool any, bool gil)
{
	struct rc_entry *slot = NULL;
	for (size_t i = 0; i < RC_MAX; i++)
		if (r->e[i].tid && (any || r->e[i].gil == gil) && (!slot || r->e[i].due_ns > slot->due_ns))
			slot = &r->e[i];
	return slot;
}

static struct rc_entry *add(struct recheck *r, pid_t pid, pid_t tid, uint64_t proc_start,
			    uint64_t uaddr, uint64_t start_ns, bool gil, uint64_t now)
{
	struct rc_entry *slot = NULL;
	size_t ngil = 0;
	for (size_t i = 0; i < RC_MAX; i++)
		ngil += r->e[i].tid && r->e[i].gil;
	for (size_t i = 0; i < RC_MAX; i++) {
		struct rc_entry *e = &r->e[i];
		if (e->tid == tid && e->pid == pid) {
			/* a new wait of the same thread replaces its old one: its place is free,
			 * and the shares are counted without it */
			ngil -= e->gil;
			memset(e, 0, sizeof(*e));
		}
	}
	for (size_t i = 0; i < RC_MAX && !slot; i++)
		if (!r->e[i].tid)
			slot = &r->e[i];
	if (slot && gil && ngil >= RC_GIL_MAX)
		slot = victim(r, false, true); /* GIL chains at their share: one of them goes */
	else if (!slot) /* full: a GIL chain takes any entry while under its share, the others
			 * only each other's (at most RC_GIL_MAX chains: there are some) */
		slot = victim(r, gil && ngil < RC_GIL_MAX, gil);
	if (!slot) /* never with the shares kept; any entry rather than none */
		slot = victim(r, true, gil);
	*slot = (struct rc_entry){ .pid = pid, .tid = tid, .proc_start = proc_start, .uaddr = uaddr,
				   .start_ns = start_ns, .due_ns = now + RC_FIRST_NS, .looks = 0 };
	return slot;
}

void recheck_add(struct recheck *r, pid_t pid, pid_t tid, uint64_t proc_start, uint64_t uaddr,
		 uint64_t start_ns, uint64_t now)
{
	add(r, pid, tid, proc_start, uaddr, start_ns, false, now);
}

void recheck_add_gil(struct recheck *r, pid_t pid, pid_t tid, uint64_t proc_start, uint64_t uaddr,
		     uint64_t start_ns, uint64_t chain_start_j, const struct gil_look *look,
		     uint64_t every_ns, uint64_t now)
{
	struct rc_entry *e = add(r, pid, tid, proc_start, uaddr, start_ns, true, now);
	e->gil = true;
	e->chain_start_j = chain_start_j;
	e->look = *look;
	diagnose_gil_keep(&e->look, &e->blocked, look);
	e->every_ns = every_ns > RC_FIRST_NS ? every_ns : RC_FIRST_NS;
}

void recheck_gil_looked(struct recheck *r, pid_t pid, pid_t tid, const struct gil_look *look)
{
	for (size_t i = 0; i < RC_MAX; i++)
		if (r->e[i].tid == tid && r->e[i].pid == pid && r->e[i].gil)
			diagnose_gil_keep(&r->e[i].look, &r->e[i].blocked, look);
}

void recheck_forget(struct recheck *r, pid_t pid, pid_t tid)
{
	for (size_t i = 0; i < RC_MAX; i++)
		if (r->e[i].tid && r->e[i].pid == pid && (!tid || r->e[i].tid == tid))
			memset(&r->e[i], 0, sizeof(r->e[i]));
}

bool recheck_take_due(struct recheck *r, uint64_t now, pid_t pid, struct rc_entry *out)
{
	for (size_t i = 0; i < RC_MAX; i++) {
		struct rc_entry *e = &r->e[i];
		if (!e->tid || (pid && e->pid != pid) || e->taken_ns == now ||
		    (e->due_ns > now && !(pid && e->gil)))
			continue;
		e->taken_ns = now; /* once per pass */
		*out = *e;
		if (e->gil) { /* while the chain lasts (events.c drops it when it ended) */
			if (e->looks < RC_LOOKS)
				e->looks++;
			uint64_t next = RC_FIRST_NS << e->looks;
			e->due_ns = now + (next < e->every_ns ? next : e->every_ns);
		} else if (++e->looks >= RC_LOOKS) {
			memset(e, 0, sizeof(*e));
		} else {
			e->due_ns = now + (RC_FIRST_NS << e->looks);
		}
		return true;
	}
	return false;
}

int recheck_due_in_ms(const struct recheck *r, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < RC_MAX; i++)
		if (r->e[i].tid && r->e[i].due_ns < next)
			next = r->e[i].due_ns;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)((next - now) / 1000000ull) + 1;
}
