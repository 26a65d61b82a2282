/* taskdone: queue.join() waiting for tasks nobody will finish (see taskdone.h). */
#include "taskdone.h"

#include "lockown.h"

#include <stdio.h>
#include <string.h>

static void who(const struct py_thread *t, char *buf, size_t len)
{
	if (t->name)
		snprintf(buf, len, "'%.100s' (tid %d)", t->name, (int)t->tid);
	else
		snprintf(buf, len, "thread %d", (int)t->tid);
}

bool taskdone_explain(struct py_reader *r, const struct py_process *p, struct diagnosis *d)
{
	const struct py_thread *joiner = NULL;
	uint64_t q = 0, unfinished = 0, queued = 0;
	for (size_t i = 0; i < p->nthreads && !joiner; i++)
		if (lockown_queue_state(r, p, &p->threads[i], "join", &q, &unfinished, &queued))
			joiner = &p->threads[i];
	if (!joiner || unfinished == 0 || queued != 0)
		return false;
	char getters[400] = "";
	size_t ngetters = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		uint64_t q2, u2, n2;
		if (t == joiner)
			continue;
		if (!lockown_queue_state(r, p, t, "get", &q2, &u2, &n2) || q2 != q)
			return false; /* blocked elsewhere: not this story */
		if (ngetters++ < 4) {
			char one[160];
			who(t, one, sizeof(one));
			size_t u = strlen(getters);
			snprintf(getters + u, sizeof(getters) - u, "%s%s", u ? ", " : "", one);
		}
	}
	char a[160], where[320];
	who(joiner, a, sizeof(a));
	diagnose_blocked_where(joiner, where, sizeof(where));
	char buf[2048];
	snprintf(buf, sizeof(buf),
		 "%s waits in %.200s for %llu unfinished task%s of a queue that holds no item%s%.300s%s: a task "
		 "was taken with get() and task_done() was never called for it (its worker thread "
		 "died, e.g. of an exception that `except Exception` does not catch, or a path skipped "
		 "task_done()); call task_done() in a finally: block. Every thread is blocked, so nothing "
		 "here can make progress (unless a signal handler does)",
		 a, where, (unsigned long long)unfinished, unfinished == 1 ? "" : "s",
		 ngetters ? ", while " : "", getters,
		 ngetters ? (ngetters == 1 ? " waits in get() for more" : " wait in get() for more") : "");
	/* cut to fit: the new sentence comes first */
	size_t n = strnlen(buf, sizeof(d->summary) - 1);
	memcpy(d->summary, buf, n);
	d->summary[n] = '\0';
	return true;
}
