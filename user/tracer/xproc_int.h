/* xproc_int: what the xproc files share (xproc.c, xproc_fork.c, xproc_died.c); not for
 * the rest of the tracer (xproc.h is). */
#ifndef PH_XPROC_INT_H
#define PH_XPROC_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "diagnose.h"
#include "pyreader.h"

struct tracer;
struct rec_long_wait;
struct waitgraph;
struct xproc;

/* t->xp, made on first use; NULL when out of memory. */
struct xproc *xp_of(struct tracer *t);
/* Thread tid of p, NULL when p has none. */
const struct py_thread *xp_thread_of(const struct py_process *p, pid_t tid);
/* A thread for a sentence: "'name' (tid N)", or "thread N" without a name. */
void xp_who(const struct py_thread *t, char *buf, size_t len);
/* d->summary from buf, cut to fit (the sentence's start matters most). */
void xp_set_summary(struct diagnosis *d, const char *buf);

/* The diagnoses (xproc_diagnose tries them in this order, d zeroed before each): true
 * with d filled and t->xp->facts set for it. */
bool xp_fork_held_lock(struct tracer *t, const struct rec_long_wait *lw, const struct waitgraph *g,
		       const struct diag_waits *w, struct diagnosis *d);
bool xp_worker_died(struct tracer *t, const struct rec_long_wait *lw, const struct diag_waits *w,
		    struct diagnosis *d);
#endif
