/* diagnose: causes of hangs from thread snapshots (see diagnose.h). */
#include "diagnose.h"
#include "waitgraph.h"

#include "culprit.h"

#include <stdio.h>
#include <string.h>

#include "pyhang.h"

const char *diag_code_name(enum diag_code c)
{
#define DIAG_CODE_NAME(e, name) [e] = name,
	static const char *const names[] = { DIAG_CODES(DIAG_CODE_NAME) };
#undef DIAG_CODE_NAME
	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

/* A frame of the standard library: under .../lib/pythonX.Y/ but not in site-packages. */
static bool is_stdlib_file(const char *file)
{
	if (!file)
		return false;
	if (strstr(file, "site-packages") || strstr(file, "dist-packages"))
		return false;
	return strstr(file, "/lib/python") != NULL || strncmp(file, "<frozen ", 8) == 0;
}

static const char *basename_of(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* The last component of a (qualified) function name: "Thread._bootstrap" -> "_bootstrap". */
static const char *short_name(const char *function)
{
	const char *d = strrchr(function, '.');
	return d ? d + 1 : function;
}

static bool frame_is(const struct py_frame *f, const char *function, const char *file_base)
{
	return f->function && f->file && strcmp(short_name(f->function), function) == 0 &&
	       strcmp(basename_of(f->file), file_base) == 0;
}

static const struct py_thread *find_thread(const struct py_process *p, pid_t tid)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return &p->threads[i];
	return NULL;
}

/* The main thread is the one whose TID is the pid (threads of 3.10 and older whose TID the
 * reader could not establish have tid 0 and are never taken for it). */
static const struct py_thread *main_thread(const struct py_process *p)
{
	return find_thread(p, p->pid);
}

/* Interpreter shutdown waiting for threads, in every version's shape:
 *   2.7:      _exitfunc -> join -> wait                    (threading.py)
 *   3.6-3.13: _shutdown (-> join -> _wait_for_tstate_lock on 3.6; a lone _shutdown frame
 *             on 3.7-3.13, blocked in lock.acquire() or _thread._shutdown()). */
static bool is_shutting_down(const struct py_thread *t)
{
	for (size_t i = 0; i < t->nframes; i++) {
		const struct py_frame *f = &t->frames[i];
		if (frame_is(f, "_shutdown", "threading.py") || frame_is(f, "_exitfunc", "threading.py"))
			return true;
	}
	return false;
}

void diagnose_blocked_where(const struct py_thread *t, char *buf, size_t len)
{
	/* innermost frame outside the standard library, and the call it made into it */
	for (size_t i = 0; i < t->nframes; i++) {
		const struct py_frame *f = &t->frames[i];
		if (is_stdlib_file(f->file))
			continue;
		if (i > 0 && t->frames[i - 1].function)
			snprintf(buf, len, "%s() at %s:%d", t->frames[i - 1].function, basename_of(f->file),
				 f->line);
		else
			snprintf(buf, len, "%s() at %s:%d", f->function ? f->function : "?",
				 basename_of(f->file), f->line);
		return;
	}
	if (t->nframes > 0 && t->frames[0].file)
		snprintf(buf, len, "%s() at %s:%d", t->frames[0].function ? t->frames[0].function : "?",
			 basename_of(t->frames[0].file), t->frames[0].line);
	else
		snprintf(buf, len, "native code (no Python frames)");
}

static void append(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
	size_t used = strnlen(buf, len);
	if (used + 1 < len)
		snprintf(buf + used, len - used, fmt, a, b);
}

static void describe_thread(const struct py_thread *t, char *buf, size_t len)
{
	char where[384], wait[512] = "";
	diagnose_blocked_where(t, where, sizeof(where));
	/* the thread's own wait, when the wait-for graph knows the lock or its holder */
	if (t->wf && t->wf->kind && (t->wf->holder || t->wf->lock || t->wf->holder_dead)) {
		char w[400];
		waitgraph_describe_wait(t->wf, w, sizeof(w));
		snprintf(wait, sizeof(wait), ", which waits for %s", w);
	}
	if (t->name)
		snprintf(buf, len, "'%.60s', blocked in %.200s%.200s", t->name, where, wait);
	else
		snprintf(buf, len, "%d, blocked in %.200s%.200s", (int)t->tid, where, wait);
}

#define FUTEX_PRIVATE_FLAG_BIT PH_FUTEX_PRIVATE_FLAG /* pyhang.h */
#define SYS_FUTEX_NR PH_NR_FUTEX                   /* pyhang.h */

bool diagnose_proven_stuck(const struct py_thread *t, const struct diag_waits *w)
{
	return t->tid > 0 && t->state == PY_STATE_LOCK_WAIT && t->syscall_nr == SYS_FUTEX_NR &&
	       !t->futex_timed && (t->futex_op & FUTEX_PRIVATE_FLAG_BIT) && w && w->long_blocked &&
	       w->long_blocked(w->arg, t->tid, t->futex_addr);
}

static bool diagnose_shutdown(const struct py_process *p, const struct diag_waits *w,
			      struct diagnosis *d)
{
	const struct py_thread *mt = main_thread(p);
	if (!mt || !is_shutting_down(mt))
		return false;
	/* Waiting at exit for threads that still work (sleep, poll, I/O, run) is normal: only
	 * threads that are stuck for good make it a hang. */
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *t = &p->threads[i];
		if (t != mt && t->daemon != 1 && !diagnose_proven_stuck(t, w))
			return false;
	}
	d->code = DIAG_SHUTDOWN_JOIN;
	d->waiter = mt->tid;
	for (size_t i = 0; i < p->nthreads && d->nculprits < DIAG_MAX_CULPRITS; i++) {
		const struct py_thread *t = &p->threads[i];
		if (t == mt || t->daemon == 1)
			continue;
		d->culprits[d->nculprits++] = t->tid;
	}
	snprintf(d->summary, sizeof(d->summary), "the interpreter is exiting and waits for %s",
		 d->nculprits == 1 ? "non-daemon thread " : d->nculprits ? "non-daemon threads " :
		 "threads that are not visible any more");
	for (size_t i = 0; i < d->nculprits; i++) {
		char one[512];
		describe_thread(find_thread(p, d->culprits[i]), one, sizeof(one));
		append(d->summary, sizeof(d->summary), "%s%s", i ? "; " : "", one);
	}
	append(d->summary, sizeof(d->summary), "%s%s",
	       ". Make such threads daemons (daemon=True) or stop them (e.g. a sentinel on their "
	       "queue) before the program exits", "");
	return true;
}


bool diagnose_all_threads_blocked(const struct py_process *p, const struct diag_waits *w)
{
	if (p->nthreads < 2 || p->threads_error || p->os_threads != p->nthreads || !w ||
	    !w->long_blocked)
		return false;
	for (size_t i = 0; i < p->nthreads; i++)
		if (!diagnose_proven_stuck(&p->threads[i], w))
			return false;
	return true;
}

static void diagnose_all_blocked(const struct py_process *p, pid_t waiter, struct diagnosis *d)
{
	d->code = DIAG_ALL_THREADS_BLOCKED;
	d->waiter = waiter;
	snprintf(d->summary, sizeof(d->summary), "every thread is blocked on a lock, so nothing can "
		 "make progress (a deadlock, unless a signal handler releases a lock): ");
	for (size_t i = 0; i < p->nthreads && d->nculprits < DIAG_MAX_CULPRITS; i++) {
		char one[512];
		d->culprits[d->nculprits++] = p->threads[i].tid;
		describe_thread(&p->threads[i], one, sizeof(one));
		append(d->summary, sizeof(d->summary), "%s%s", i ? "; " : "", one);
	}
}

/* The thread that holds the GIL, never the waiter itself (the reader's GIL snapshot is not
 * atomic: a thread that just took it may show as both). */
static const struct py_thread *gil_holder(const struct py_process *p, pid_t waiter)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].gil && p->threads[i].tid != waiter)
			return &p->threads[i];
	return NULL;
}

/* The holder of the GIL while w waits for it: a thread other than the waiter that holds
 * the GIL (py_thread.gil, pygil.c: locked and this thread state its last holder, 3.7+ from
 * _gil_runtime_state, 3.6 from ceval_gil.h's statics; 2.7 and a 3.6 without them:
 * _PyThreadState_Current) while the waiter is still waiting for it or between two of its
 * 5 ms timed waits (running). A waiter in another call or on another futex has left its
 * GIL wait; no identifiable holder (the waiter itself just took the GIL, or it is being
 * handed over) proves nothing. Returns the holder or NULL. */
static const struct py_thread *gil_wait_holder(const struct py_process *p,
					       const struct py_thread *w)
{
	if (w->state != PY_STATE_GIL_WAIT && w->state != PY_STATE_RUNNING)
		return NULL;
	return gil_holder(p, w->tid);
}

void diagnose_gil_look(const struct py_process *p, pid_t waiter, struct gil_look *out)
{
	const struct py_thread *w = find_thread(p, waiter);
	const struct py_thread *h = w ? gil_wait_holder(p, w) : NULL;
	memset(out, 0, sizeof(*out));
	out->holder = h ? h->tid : 0;
	out->switches_known = p->gil_switches_known;
	out->switches = p->gil_switches;
	out->at_ns = p->gil_switches_ns;
}

bool diagnose_gil_same(const struct gil_look *a, const struct gil_look *b)
{
	return a->holder && a->holder == b->holder && a->switches_known && b->switches_known &&
	       a->switches == b->switches;
}

/* Off the CPU in a call (stat state S or D): a holder blocked with the GIL held. */
static bool holder_blocked(char state)
{
	return state == 'S' || state == 'D';
}

void diagnose_gil_keep(struct gil_look *kept, struct gil_look *kept_blocked,
		       const struct gil_look *now)
{
	if (diagnose_gil_supersedes(kept, now))
		*kept = *now;
	if (!now->holder || !holder_blocked(now->holder_state))
		memset(kept_blocked, 0, sizeof(*kept_blocked));
	else if (diagnose_gil_supersedes(kept_blocked, now))
		*kept_blocked = *now;
}

bool diagnose_gil_supersedes(const struct gil_look *kept, const struct gil_look *now)
{
	if (!kept->holder || !kept->switches_known)
		return true;
	return (now->holder && now->holder != kept->holder) ||
	       (now->switches_known && now->switches != kept->switches);
}

/* Whether looks b and n, the same GIL, span what w needs. */
static bool gil_span(const struct gil_look *b, const struct gil_look *n, const struct diag_waits *w)
{
	double need = w->gil_need_s > 1.0 ? w->gil_need_s : 1.0;
	return b && diagnose_gil_same(b, n) && n->at_ns > b->at_ns &&
	       (double)(n->at_ns - b->at_ns) / 1e9 >= need;
}

/* Whether waiting for the GIL is proven a hang, with holder h named now:
 *  - 2.7: the GIL is one semaphore (Python/thread_pthread.h, PyThread_acquire_lock) and
 *    its waiter sleeps in one futex wait until a release wakes it; the kernel's record of
 *    that one wait, past the threshold, proves it has not had the GIL since;
 *  - 3.x: a waiter's 5 ms timed waits on the GIL's condition and its waits for the GIL's
 *    mutex make one chain in the kernel (bpf/futex.bpf.h), and the chain goes on after
 *    a wait for the mutex, from which the waiter may go on to take the GIL: the chain
 *    alone proves nothing. Proven with an earlier look in the same chain, at least the
 *    threshold before, that found the same holder and the same switch count: take_gil()
 *    counts every change of holder (3.6-3.11 Python/ceval_gil.h, 3.12-3.13
 *    Python/ceval_gil.c), so no thread, the waiter included, took the GIL between the
 *    looks. And the holder kept it in a long call, not for want of a CPU or because it
 *    was stopped: it ran GIL_HOLDER_RAN_NS or more between the looks (a running holder
 *    drops the GIL within a switch interval once a waiter asks), or it was blocked in a
 *    call at every look since the earlier one (gil_before_blocked). A switch count that
 *    cannot be read proves nothing.
 * *from: the earlier look of the proof (NULL on 2.7). */
static bool gil_wait_proven(const struct py_process *p, const struct py_thread *h,
			    const struct diag_waits *w, const struct gil_look **from)
{
	*from = NULL;
	if (p->version_hex && p->version_hex < 0x03000000)
		return true;
	const struct gil_look *n = w ? w->gil_now : NULL, *b, *bb;
	if (!n || n->holder != h->tid)
		return false;
	b = w->gil_before;
	bb = w->gil_before_blocked;
	if (gil_span(b, n, w) && b->holder_run_known && n->holder_run_known &&
	    n->holder_run_ns >= b->holder_run_ns + GIL_HOLDER_RAN_NS)
		*from = b;
	else if (gil_span(bb, n, w) && holder_blocked(bb->holder_state) &&
		 holder_blocked(n->holder_state))
		*from = bb;
	return *from != NULL;
}

static void diagnose_gil(const struct py_thread *w, const struct py_thread *h, double waited_s,
			 const struct gil_look *from, const struct gil_look *now, struct diagnosis *d)
{
	char one[512], holder[512];
	describe_thread(w, one, sizeof(one));
	d->code = DIAG_GIL_WAIT;
	d->waiter = w->tid;
	char where[384];
	diagnose_blocked_where(h, where, sizeof(where));
	if (h->name)
		snprintf(holder, sizeof(holder), "'%.100s' (tid %d)", h->name, (int)h->tid);
	else
		snprintf(holder, sizeof(holder), "%d", (int)h->tid);
	d->culprits[d->nculprits++] = h->tid;
	if (from && now) /* 3.x: what the looks proved */
		snprintf(d->summary, sizeof(d->summary), "thread %.300s, has waited at least %.1fs "
			 "for the GIL, and in that time no other thread has taken it from thread "
			 "%.150s, which holds it in %.300s: a long call that does not release the GIL "
			 "(C code, a regular expression, a huge computation in one bytecode)", one,
			 (double)(now->at_ns - from->at_ns) / 1e9, holder, where);
	else
		snprintf(d->summary, sizeof(d->summary), "thread %.300s, has waited %.1fs for the "
			 "GIL, which thread %.150s holds in %.300s: a long call that does not release "
			 "the GIL (C code, a regular expression, a huge computation in one bytecode)",
			 one, waited_s, holder, where);
}

bool diagnose_process(const struct py_process *p, pid_t waiter_tid, double waited_s,
		      bool gil_wait, const struct diag_waits *w, struct diagnosis *d)
{
	memset(d, 0, sizeof(*d));
	if (diagnose_shutdown(p, w, d))
		return true;
	if (diagnose_all_threads_blocked(p, w)) {
		diagnose_all_blocked(p, waiter_tid, d);
		return true;
	}
	const struct py_thread *wt = find_thread(p, waiter_tid);
	if (!wt)
		return false;
	if (gil_wait || wt->state == PY_STATE_GIL_WAIT) {
		const struct py_thread *h = gil_wait_holder(p, wt);
		const struct gil_look *from;
		if (!h || !gil_wait_proven(p, h, w, &from))
			return false;
		diagnose_gil(wt, h, waited_s, from, w ? w->gil_now : NULL, d);
		return true;
	}
	/* Anything else is not proven: a thread that waits while others sleep, poll, do I/O
	 * or run may be woken by them at any moment. It stays a long_wait. */
	return false;
}

/* Index of the innermost frame outside the standard library at or after from, or -1. */
static long next_program_frame(const struct py_thread *t, size_t from)
{
	for (size_t i = from; i < t->nframes; i++)
		if (t->frames[i].file && !is_stdlib_file(t->frames[i].file))
			return (long)i;
	return -1;
}

const struct py_frame *diagnose_program_frame(const struct py_thread *t)
{
	long i = next_program_frame(t, 0);
	return i >= 0 ? &t->frames[i] : t->nframes ? &t->frames[0] : NULL;
}

void diagnose_program_location(const struct py_thread *t, char *buf, size_t len)
{
	long i = next_program_frame(t, 0);
	if (i < 0) {
		snprintf(buf, len, "the standard library (no program frame)");
		return;
	}
	const struct py_frame *f = &t->frames[i];
	long outer = next_program_frame(t, (size_t)i + 1);
	if (f->function && strcmp(f->function, "<module>") == 0 && outer >= 0) {
		const struct py_frame *o = &t->frames[outer];
		snprintf(buf, len, "%s:%d (imported at %s:%d)", basename_of(f->file), f->line,
			 basename_of(o->file), o->line);
	} else {
		snprintf(buf, len, "%s:%d in %s()", basename_of(f->file), f->line,
			 f->function ? f->function : "?");
	}
}

/* What the program saw: subprocess turns ECHILD into status 0 (2.7-3.13, _try_wait and
 * _internal_poll); a direct os.waitpid raises ChildProcessError/OSError. */
static bool waited_through_subprocess(const struct py_thread *t)
{
	for (size_t i = 0; t && i < t->nframes; i++)
		if (t->frames[i].file && strcmp(basename_of(t->frames[i].file), "subprocess.py") == 0)
			return true;
	return false;
}

static void child_outcome(const struct child_lost_facts *f, char *buf, size_t len)
{
	char name[64];
	if (f->child_comm)
		snprintf(name, sizeof(name), "'%.40s' (pid %d)", f->child_comm, f->child_pid);
	else
		snprintf(name, sizeof(name), "pid %d", f->child_pid);
	if (f->exit_status >= 0)
		snprintf(buf, len, "the child %s that exited %d", name, f->exit_status);
	else if (f->signal >= 0)
		snprintf(buf, len, "the child %s that was killed by signal %d", name, f->signal);
	else
		snprintf(buf, len, "the child %s", name);
}

void diagnose_child_lost(const struct child_lost_facts *f, char *buf, size_t len)
{
	char cause[640], child[160], where[256] = "";
	const char *seen = waited_through_subprocess(f->waiter_stack) ?
		"was reported as exit status 0 by subprocess" : "could not be collected (ECHILD)";
	if (f->waiter_stack) {
		char w[200];
		diagnose_program_location(f->waiter_stack, w, sizeof(w));
		snprintf(where, sizeof(where), " when waited for at %s", w);
	}
	child_outcome(f, child, sizeof(child));
	if (f->reaped_elsewhere) {
		char r[400] = "at an unknown place";
		if (f->reaper_stack)
			culprit_place(f->reaper_stack, r, sizeof(r));
		char who[96];
		if (f->reaper_name)
			snprintf(who, sizeof(who), "thread '%.60s' (tid %d)", f->reaper_name, f->reaper_tid);
		else
			snprintf(who, sizeof(who), "thread %d", f->reaper_tid);
		snprintf(cause, sizeof(cause), "%s had already reaped it %s", who, r);
		snprintf(buf, len, "%s%s %s, because %s", child, where, seen, cause);
		return;
	}
	if (f->ignore_stack) {
		char ig[256];
		diagnose_program_location(f->ignore_stack, ig, sizeof(ig));
		snprintf(cause, sizeof(cause), "SIGCHLD is ignored since %s", ig);
	} else if (f->ignored_before_start) {
		snprintf(cause, sizeof(cause), "SIGCHLD has been ignored since before tracing started");
	} else if (f->ignored_inherited && f->inherited_from_comm) {
		snprintf(cause, sizeof(cause), "SIGCHLD is ignored since the program started: inherited "
			 "from parent '%.16s' (pid %d) at exec (SIG_IGN survives exec)",
			 f->inherited_from_comm, f->inherited_from_pid);
	} else if (f->ignored_inherited) {
		snprintf(cause, sizeof(cause), "SIGCHLD is ignored since the program started (it was "
			 "ignored before its exec, by it or its parent, and SIG_IGN survives exec)");
	} else if (f->ignored_unwatched) {
		snprintf(cause, sizeof(cause), "SIGCHLD is ignored since before the process was found to "
			 "run Python (its earlier sigaction calls were not watched)");
	} else {
		snprintf(cause, sizeof(cause), "SIGCHLD is ignored (SIG_IGN or SA_NOCLDWAIT)");
	}
	snprintf(buf, len, "%s, so %s%s %s: the kernel discarded its status", cause, child, where, seen);
}
