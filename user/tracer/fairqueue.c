/* fairqueue: per-user shares and order of the exec check queue (see fairqueue.h). */
#include "fairqueue.h"

#include <stdlib.h>
#include <string.h>

#include "tracer.h"

static unsigned queued_of(const struct tracer *t, uint32_t uid_plus1)
{
	unsigned n = 0;
	for (int i = 0; i < t->nchecks; i++)
		n += t->checks[i].uid_plus1 == uid_plus1;
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

bool fairq_admit(struct tracer *t, uint32_t uid_plus1)
{
	if (t->nchecks < MAX_EXEC_CHECKS)
		return true;
	/* full: the user holding the most (one sort of the users: 1024 entries at most) */
	static uint32_t uids[MAX_EXEC_CHECKS];
	for (int i = 0; i < t->nchecks; i++)
		uids[i] = t->checks[i].uid_plus1;
	qsort(uids, (size_t)t->nchecks, sizeof(uids[0]), cmp_u32);
	unsigned mine = queued_of(t, uid_plus1), most = 0;
	uint32_t big = 0;
	for (int i = 0, run = 1; i < t->nchecks; i++, run++) {
		if (i + 1 < t->nchecks && uids[i + 1] == uids[i])
			continue;
		if ((unsigned)run > most) {
			most = (unsigned)run;
			big = uids[i];
		}
		run = 0;
	}
	if (most <= mine + 1)
		return false;
	for (int i = 0; i < t->nchecks; i++)
		if (t->checks[i].uid_plus1 == big) {
			memmove(&t->checks[i], &t->checks[i + 1],
				(size_t)(t->nchecks - i - 1) * sizeof(t->checks[0]));
			t->nchecks--;
			t->dropped_checks++;
			return true;
		}
	return false;
}

/* Sort keys: how many entries the entry's user has, then its place in the queue. */
struct key {
	unsigned share;
	int index;
};

static int cmp_key(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	if (x->share != y->share)
		return x->share < y->share ? -1 : 1;
	return x->index - y->index;
}

void fairq_order(struct tracer *t)
{
	static struct key keys[MAX_EXEC_CHECKS];
	static struct exec_check sorted[MAX_EXEC_CHECKS];
	int n = t->nchecks;
	if (n < 2)
		return;
	/* shares: counted once per distinct user (the queue is small: 1024 at most) */
	for (int i = 0; i < n; i++) {
		keys[i].index = i;
		keys[i].share = 0;
		for (int j = 0; j < i; j++)
			if (t->checks[j].uid_plus1 == t->checks[i].uid_plus1) {
				keys[i].share = keys[j].share;
				break;
			}
		if (!keys[i].share)
			keys[i].share = t->checks[i].uid_plus1 ? queued_of(t, t->checks[i].uid_plus1) : 1;
	}
	qsort(keys, (size_t)n, sizeof(keys[0]), cmp_key);
	for (int i = 0; i < n; i++)
		sorted[i] = t->checks[keys[i].index];
	memcpy(t->checks, sorted, (size_t)n * sizeof(sorted[0]));
}
