/* descend: every live descendant of a set of processes (see descend.h). */
#include "descend.h"

#include "procscan.h"

#include <stdlib.h>
#include <string.h>

#define DESCEND_PASSES 8
#define DESCEND_MAX 65536

struct pass {
	pid_t *known;      /* roots, then descendants found */
	size_t nknown, cap;
	size_t nroots;
	int (*fn)(pid_t, void *);
	void *arg;
	int err;
	size_t found;
};

static bool is_known(const struct pass *p, pid_t pid)
{
	for (size_t i = 0; i < p->nknown; i++)
		if (p->known[i] == pid)
			return true;
	return false;
}

static int visit(pid_t pid, void *arg)
{
	struct pass *p = arg;
	pid_t ppid = proc_parent(pid);
	if (ppid <= 0 || !is_known(p, ppid) || is_known(p, pid))
		return 0;
	if (p->nknown == p->cap) {
		if (p->cap >= DESCEND_MAX)
			return 0;
		size_t cap = p->cap * 2;
		pid_t *k = realloc(p->known, cap * sizeof(*k));
		if (!k)
			return 0;
		p->known = k;
		p->cap = cap;
	}
	p->known[p->nknown++] = pid;
	p->found++;
	if (p->fn(pid, p->arg) != 0) {
		p->err = 1;
		return 1;
	}
	return 0;
}

int descend_for_each(const pid_t *roots, size_t nroots, size_t max_procs, int (*fn)(pid_t, void *),
		     void *arg)
{
	struct pass p = { .cap = nroots + 64, .nroots = nroots, .fn = fn, .arg = arg };
	p.known = malloc(p.cap * sizeof(*p.known));
	if (!p.known)
		return -1;
	memcpy(p.known, roots, nroots * sizeof(*roots));
	p.nknown = nroots;
	int total = 0;
	for (int i = 0; i < DESCEND_PASSES; i++) {
		p.found = 0;
		/* a child's pid may be lower than its parent's (pids wrap): another pass finds it */
		if (proc_for_each_pid("/proc", max_procs, visit, &p) < 0 || p.err) {
			free(p.known);
			return -1;
		}
		total += (int)p.found;
		if (!p.found)
			break;
	}
	free(p.known);
	return total;
}
