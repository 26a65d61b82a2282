/* hangtrack: open long waits and open hangs (see hangtrack.h). */
#include "hangtrack.h"

#include <stdlib.h>
#include <string.h>

struct hangtrack *ht_new(void)
{
	return calloc(1, sizeof(struct hangtrack));
}

void ht_free(struct hangtrack *h)
{
	free(h);
}

static struct ht_wait *slot_of(const struct hangtrack *h, pid_t tid)
{
	return (struct ht_wait *)&h->waits[(uint32_t)tid & (HT_WAIT_SLOTS - 1)];
}

void ht_wait_open(struct hangtrack *h, pid_t pid, pid_t tid, uint64_t uaddr, uint64_t start_ns)
{
	if (!h || tid <= 0)
		return;
	*slot_of(h, tid) = (struct ht_wait){ pid, tid, uaddr, start_ns };
}

void ht_wait_close(struct hangtrack *h, pid_t tid)
{
	if (!h || tid <= 0)
		return;
	struct ht_wait *w = slot_of(h, tid);
	if (w->tid == tid)
		memset(w, 0, sizeof(*w));
}

bool ht_pid_wait_is_open(void *arg, pid_t tid, uint64_t uaddr)
{
	const struct ht_pid *a = arg;
	return ht_wait_is_open(a->ht, a->pid, tid, uaddr, NULL);
}

bool ht_wait_is_open(const struct hangtrack *h, pid_t pid, pid_t tid, uint64_t uaddr,
		     uint64_t *start_ns)
{
	if (!h || tid <= 0)
		return false;
	const struct ht_wait *w = slot_of(h, tid);
	if (w->tid != tid || w->pid != pid || w->uaddr != uaddr)
		return false;
	if (start_ns)
		*start_ns = w->start_ns;
	return true;
}

void ht_hang_add(struct hangtrack *h, const struct ht_hang *hang)
{
	if (!h)
		return;
	for (unsigned i = 0; i < HT_MAX_HANGS; i++)
		if (!h->hangs[i].pid) {
			h->hangs[i] = *hang;
			return;
		}
	h->hangs[h->next_hang++ % HT_MAX_HANGS] = *hang; /* full: the oldest slot goes */
}

bool ht_hang_take(struct hangtrack *h, pid_t pid, pid_t tid, struct ht_hang *out)
{
	if (!h)
		return false;
	for (unsigned i = 0; i < HT_MAX_HANGS; i++) {
		struct ht_hang *g = &h->hangs[i];
		if (!g->pid || g->pid != pid)
			continue;
		bool member = tid == 0;
		for (size_t k = 0; !member && k < g->ntids; k++)
			member = g->tids[k] == tid;
		if (!member)
			continue;
		*out = *g;
		memset(g, 0, sizeof(*g));
		return true;
	}
	return false;
}

bool ht_hang_covers(const struct hangtrack *h, pid_t pid, pid_t tid)
{
	for (unsigned i = 0; h && i < HT_MAX_HANGS; i++)
		for (size_t k = 0; h->hangs[i].pid == pid && pid && k < h->hangs[i].ntids; k++)
			if (h->hangs[i].tids[k] == tid)
				return true;
	return false;
}

void ht_forget_process(struct hangtrack *h, pid_t pid)
{
	if (!h)
		return;
	for (unsigned i = 0; i < HT_WAIT_SLOTS; i++)
		if (h->waits[i].tid && h->waits[i].pid == pid)
			memset(&h->waits[i], 0, sizeof(h->waits[i]));
}
