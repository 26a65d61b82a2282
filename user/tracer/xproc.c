/* xproc: hangs caused in another process: fork_held_lock, worker_died (see xproc.h). */
#include "xproc.h"

#include "lockown.h"
#include "loader.h"
#include "output.h"
#include "procmem.h"
#include "procscan.h"
#include "pystack.h"
#include "pywrite.h"
#include "textreport.h"
#include "tracer.h"
#include "waitgraph.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUTEX_NR 202            /* x86_64 */
#define FUTEX_PRIVATE 128u      /* include/uapi/linux/futex.h */
#define MAX_CHILDREN_SCANNED 4096

struct xproc *xproc_new(void)
{
	return calloc(1, sizeof(struct xproc));
}

static void fork_clear(struct xp_fork *f)
{
	if (f->used && f->have_stack)
		pending_release(&f->stack);
	memset(f, 0, sizeof(*f));
}

void xproc_free(struct xproc *x)
{
	if (!x)
		return;
	for (unsigned i = 0; i < XP_MAX_FORKS; i++)
		fork_clear(&x->forks[i]);
	free(x);
}

static struct xproc *xp_of(struct tracer *t)
{
	if (!t->xp)
		t->xp = xproc_new();
	return t->xp;
}

void xproc_on_fork(struct tracer *t, const struct ph_event *e)
{
	struct xproc *x = xp_of(t);
	struct captured_stack cs = { 0 };
	bool have = pending_take_stack(&t->pending, (pid_t)e->pid, e->proc_start, (pid_t)e->tid,
				       PH_EV_FORK, e->stack_ts, &cs);
	if (!x) {
		if (have)
			pending_release(&cs);
		return;
	}
	struct xp_fork *f = &x->forks[x->next_fork++ % XP_MAX_FORKS];
	fork_clear(f);
	f->used = true;
	f->child = (pid_t)e->fork.child_pid;
	f->child_start = e->fork.child_start;
	f->parent = (pid_t)e->pid;
	f->parent_start = e->proc_start;
	f->forker_tid = (pid_t)e->tid;
	f->fork_ns = e->ts_ns;
	f->parent_threads = e->fork.parent_threads;
	memcpy(f->parent_comm, e->comm, sizeof(f->parent_comm));
	f->parent_comm[sizeof(f->parent_comm) - 1] = '\0';
	/* fork.bpf.h sends no stack (stack_ts 0) for a parent not described to the kernel yet */
	f->stack_status = have ? pystack_status_str(cs.status) :
			  e->stack_ts == 0 ? "unknown_layout" : "not_captured";
	if (have && cs.status == PH_STACK_OK) {
		f->stack = cs;
		f->have_stack = true;
	} else if (have || cs.used) {
		pending_release(&cs);
	}
}

void xproc_on_child_died(struct tracer *t, const struct ph_event *e)
{
	struct xproc *x = xp_of(t);
	if (!x)
		return;
	struct xp_death *d = &x->deaths[x->next_death++ % XP_MAX_DEATHS];
	memset(d, 0, sizeof(*d));
	d->used = true;
	d->parent = (pid_t)e->pid;
	d->parent_start = e->proc_start;
	d->child = (pid_t)e->died.child_pid;
	d->ns_pid = (pid_t)e->died.child_ns_pid;
	d->child_start = e->died.child_start;
	d->ns = e->ts_ns;
	d->exit_code = e->died.exit_code;
	d->oom = e->died.oom != 0;
	memcpy(d->comm, e->died.child_comm, sizeof(d->comm));
	d->comm[sizeof(d->comm) - 1] = '\0';
}

/* ---- helpers ------------------------------------------------------------------------ */

static const struct py_thread *thread_of(const struct py_process *p, pid_t tid)
{
	for (size_t i = 0; i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return &p->threads[i];
	return NULL;
}

/* Untimed wait on a process-private futex, passed the threshold (cf. diagnose.c). */
static bool stuck(const struct py_thread *t, const struct diag_waits *w)
{
	return t->tid > 0 && t->state == PY_STATE_LOCK_WAIT && t->syscall_nr == FUTEX_NR &&
	       !t->futex_timed && (t->futex_op & FUTEX_PRIVATE) && w && w->long_blocked &&
	       w->long_blocked(w->arg, t->tid, t->futex_addr);
}

static void who(const struct py_thread *t, char *buf, size_t len)
{
	if (t->name)
		snprintf(buf, len, "'%.100s' (tid %d)", t->name, (int)t->tid);
	else
		snprintf(buf, len, "thread %d", (int)t->tid);
}

static const char *base_of(const char *p)
{
	const char *b = p ? strrchr(p, '/') : NULL;
	return b ? b + 1 : p ? p : "?";
}

static const char *sig_name(int sig)
{
	const char *n = sigabbrev_np(sig);
	static char buf[16];
	if (!n)
		return "an unknown signal";
	snprintf(buf, sizeof(buf), "SIG%s", n);
	return buf;
}

/* d->summary from buf, cut to fit (the sentence's start matters most). */
static void set_summary(struct diagnosis *d, const char *buf)
{
	size_t n = strnlen(buf, sizeof(d->summary) - 1);
	memcpy(d->summary, buf, n);
	d->summary[n] = '\0';
}

/* ---- fork_held_lock ----------------------------------------------------------------- */

/* The parent thread that holds the lock at object/futex: an RLock's owner ident copied at
 * the fork (proven at fork time), else a `with` of it in progress in the parent now. */
static void find_parent_holder(struct tracer *t, struct xp_facts *xf, const struct wf_info *wf,
			       uint64_t object, uint64_t futex, uint64_t copied_holder)
{
	const struct xp_fork *f = xf->fork;
	struct py_process pp;
	char err[128];
	xf->parent_threads_now = -1;
	if (py_read_process(t->reader, f->parent, &pp, err, sizeof(err)) != 0)
		return;
	if (pp.start_time != f->parent_start) {
		py_process_free(&pp);
		return;
	}
	xf->parent_threads_now = (int)pp.nthreads;
	const struct py_thread *h = NULL;
	int line = -1, frame = -1;
	for (size_t i = 0; copied_holder && i < pp.nthreads && !h; i++)
		if (pp.threads[i].thread_id == copied_holder) {
			h = &pp.threads[i];
			xf->holder_proof = "with_at_fork";
			if (wf->holder_line >= 0)
				line = wf->holder_line;
		}
	if (!h && wf && wf->lock && wf->lock->reentrant && wf->lock->owner_known && wf->lock->owner) {
		for (size_t i = 0; i < pp.nthreads && !h; i++)
			if (pp.threads[i].thread_id == wf->lock->owner) {
				h = &pp.threads[i];
				xf->holder_proof = "rlock_owner";
			}
	}
	struct lo_thread *lo = calloc(pp.nthreads ? pp.nthreads : 1, sizeof(*lo));
	struct lo_lock *pool = NULL;
	if (lo && lockown_read(t->reader, &pp, lo, &pool) == 0) {
		for (size_t i = 0; i < pp.nthreads; i++)
			for (size_t k = 0; k < lo[i].nheld; k++) {
				const struct lo_lock *l = &lo[i].held[k];
				bool same = (object && l->obj == object) || (futex && l->futex == futex);
				if (!same || (h && h != &pp.threads[i]))
					continue;
				if (!h)
					xf->holder_proof = "with";
				h = &pp.threads[i];
				if (line < 0)
					line = l->line;
				frame = l->frame;
			}
	}
	free(lo);
	free(pool);
	if (h) {
		xf->holder_tid = h->tid;
		snprintf(xf->holder_name, sizeof(xf->holder_name), "%s", h->name ? h->name : "");
		const struct py_frame *fr = frame >= 0 && (size_t)frame < h->nframes ? &h->frames[frame] :
					    h->nframes ? &h->frames[0] : NULL;
		if (fr) {
			snprintf(xf->holder_function, sizeof(xf->holder_function), "%s",
				 fr->function ? fr->function : "?");
			snprintf(xf->holder_file, sizeof(xf->holder_file), "%s", fr->file ? fr->file : "?");
			xf->holder_line = line >= 0 ? line : fr->line;
		}
	}
	py_process_free(&pp);
}

/* The end (top) address of pid's [stack] mapping (/proc/PID/maps), 0 if none. */
static uint64_t stack_mapping(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "r");
	uint64_t start = 0;
	int n = 0;
	while (f && !start && n++ < 65536 && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		char *dash = strchr(line, '-');
		if (dash && len > 8 && strcmp(line + len - 8, "[stack]\n") == 0)
			start = strtoull(dash + 1, NULL, 16); /* the top: the bottom moves as it grows */
	}
	if (f)
		fclose(f);
	return start;
}

static long read_long_file(const char *path, int base)
{
	char buf[64];
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n ? strtol(buf, NULL, base) : -1;
}

/* A fork made before tracing started, which the kernel did not record: child was forked
 * (not exec'd) from its parent when both have their main stack at the same address while
 * addresses are randomized (kernel.randomize_va_space > 0, and the child's personality
 * has no ADDR_NO_RANDOMIZE): an exec places it anew (fs/exec.c, randomize_stack_top), a
 * fork copies it. Fills c (no fork time, no thread count, no stack); false if unproven. */
static bool fork_before_start(pid_t child, struct xp_fork *c)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)child);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	char st;
	int ppid;
	if (!rp || sscanf(rp + 1, " %c %d", &st, &ppid) != 2 || ppid <= 1)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/personality", (int)child);
	if (read_long_file("/proc/sys/kernel/randomize_va_space", 10) < 1 ||
	    read_long_file(path, 16) & 0x0040000 /* ADDR_NO_RANDOMIZE */)
		return false;
	uint64_t a = stack_mapping(child), b = stack_mapping((pid_t)ppid);
	uint64_t pstart;
	if (!a || a != b || pm_start_time((pid_t)ppid, &pstart) != 0)
		return false;
	memset(c, 0, sizeof(*c));
	c->used = true;
	c->child = child;
	c->parent = (pid_t)ppid;
	c->parent_start = pstart;
	c->stack_status = "not_captured";
	proc_comm(c->parent, 0, c->parent_comm, sizeof(c->parent_comm));
	return true;
}

static bool fork_held_lock(struct tracer *t, const struct rec_long_wait *lw, const struct waitgraph *g,
			   const struct diag_waits *w, struct diagnosis *d)
{
	const struct py_process *p = lw->py;
	struct xproc *x = t->xp;
	struct xp_facts *xf = &x->facts;
	struct ph_fork_rec kr;
	/* the kernel's record: a fork of a multi-threaded watched parent, not exec'd since;
	 * or, for a fork before tracing started, the same main stack as its parent's */
	bool recorded = loader_fork_of(t->ld, p->pid, &kr) == 0 && kr.child_start == p->start_time;
	struct xp_fork early;
	if (!recorded && !fork_before_start(p->pid, &early))
		return false;
	/* every thread of its own is stuck; thread states without an OS thread are copies of
	 * the parent's threads (2.7 keeps them in the child's list) */
	size_t real = 0;
	for (size_t i = 0; i < p->nthreads; i++) {
		if (p->threads[i].tid <= 0)
			continue;
		real++;
		if (!stuck(&p->threads[i], w))
			return false;
	}
	if (!real || p->threads_error || p->os_threads != real)
		return false;
	const struct py_thread *wt = thread_of(p, lw->p.tid);
	if (!wt)
		return false;
	const struct wf_info *wf = g && g->info ? &g->info[wt - p->threads] : NULL;
	uint64_t copied_holder = 0; /* thread ident of a parent thread whose copy holds it */
	if (wf && wf->holder && !wf->holder_dead) {
		if (wf->holder->tid > 0)
			return false; /* a thread of its own holds it (a cycle, or its own lock again) */
		copied_holder = wf->holder->thread_id;
	}
	memset(xf, 0, sizeof(*xf));
	for (unsigned i = 0; i < XP_MAX_FORKS; i++) {
		const struct xp_fork *f = &x->forks[i];
		if (f->used && f->child == p->pid && f->child_start == p->start_time)
			xf->fork = f;
	}
	if (!recorded) {
		xf->fork_copy = early;
		xf->fork = &xf->fork_copy;
	} else if (!xf->fork) { /* its record was rate-limited: what the kernel map tells */
		struct xp_fork *c = &xf->fork_copy;
		c->used = true;
		c->child = p->pid;
		c->child_start = kr.child_start;
		c->parent = (pid_t)kr.parent_tgid;
		c->forker_tid = (pid_t)kr.forker_tid;
		c->parent_threads = kr.parent_threads;
		c->fork_ns = kr.fork_ns;
		proc_comm(c->parent, 0, c->parent_comm, sizeof(c->parent_comm));
		c->parent_start = 0; /* not recorded: its threads are not read (a reused pid) */
		c->stack_status = "not_captured";
		xf->fork = c;
	}
	xf->forked_s_ago = !recorded ? -1 : lw->p.mono_ns > xf->fork->fork_ns ?
			   (double)(lw->p.mono_ns - xf->fork->fork_ns) / 1e9 : 0;
	uint64_t object = wf ? wf->object : 0;
	if (xf->fork->parent_start)
		find_parent_holder(t, xf, wf, object, wt->futex_addr, copied_holder);
	else
		xf->parent_threads_now = -1;
	/* before tracing: its thread count at the fork is not known, so only a parent thread
	 * proven to hold that very lock makes it this diagnosis */
	if (!recorded && xf->holder_tid <= 0) {
		memset(xf, 0, sizeof(*xf));
		return false;
	}

	d->code = DIAG_FORK_HELD_LOCK;
	d->waiter = wt->tid;
	for (size_t i = 0; i < p->nthreads && d->nculprits < DIAG_MAX_CULPRITS; i++)
		d->culprits[d->nculprits++] = p->threads[i].tid;
	d->xproc = xf;
	char a[160], where[320], holder[600] = "";
	who(wt, a, sizeof(a));
	diagnose_blocked_where(wt, where, sizeof(where));
	const char *kind = wf && wf->kind ? wf_kind_name(wf->kind) : "lock";
	if (xf->holder_tid > 0)
		snprintf(holder, sizeof(holder), "; in the parent, thread %s%.80s%s(tid %d) holds that %s (%s at %s:%d)",
			 xf->holder_name[0] ? "'" : "", xf->holder_name, xf->holder_name[0] ? "' " : "",
			 (int)xf->holder_tid, kind,
 strcmp(xf->holder_proof, "with") == 0 ? "taken" : "held when the fork copied it, taken",
			 base_of(xf->holder_file), xf->holder_line);
	else
		snprintf(holder, sizeof(holder), "; which parent thread held it is not known any more");
	char buf[2048];
	char when[160];
	if (recorded)
		snprintf(when, sizeof(when), "%.1f s ago by pid %d (%.16s), which had %u threads then",
			 xf->forked_s_ago, (int)xf->fork->parent, xf->fork->parent_comm,
			 xf->fork->parent_threads);
	else
		snprintf(when, sizeof(when), "by pid %d (%.16s) before tracing started",
			 (int)xf->fork->parent, xf->fork->parent_comm);
	snprintf(buf, sizeof(buf),
		 "%s waits in %s for a %s that no thread of this process holds: the process was forked "
		 "(not exec'd) %s; fork() copied the %s in its held state but not the thread holding "
		 "it, so nothing here can release it%s. Use the 'spawn' or 'forkserver' start method, "
		 "or reset the lock with os.register_at_fork(after_in_child=...)",
		 a, where, kind, when, kind, holder);
	set_summary(d, buf);
	return true;
}

/* ---- worker_died -------------------------------------------------------------------- */

/* Whether every task of process pid sleeps (no R or D state): /proc/PID/task/TID/stat. */
static bool all_tasks_idle(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *dir = opendir(path);
	if (!dir)
		return true; /* gone */
	struct dirent *de;
	bool idle = true;
	int n = 0;
	while (idle && (de = readdir(dir)) && n++ < 4096) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char p2[128], buf[512];
		snprintf(p2, sizeof(p2), "/proc/%d/task/%.20s/stat", (int)pid, de->d_name);
		FILE *f = fopen(p2, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		const char *rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'R' || rp[2] == 'D'))
			idle = false;
	}
	closedir(dir);
	return idle;
}

struct child_scan {
	pid_t parent;
	bool busy;
};

static int check_child(pid_t pid, void *arg)
{
	struct child_scan *c = arg;
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	const char *rp = strrchr(buf, ')');
	int ppid = 0;
	char st = 0;
	if (!rp || sscanf(rp + 1, " %c %d", &st, &ppid) != 2 || ppid != c->parent)
		return 0;
	if (!all_tasks_idle(pid)) {
		c->busy = true;
		return 1;
	}
	return 0;
}

/* Whether the program itself waits here: a frame of t outside the standard library (a
 * pool's own helper threads, all in multiprocessing, are not the wait to name). */
static bool program_waits(const struct py_thread *t)
{
	for (size_t i = 0; i < t->nframes; i++) {
		const char *f = t->frames[i].file;
		if (f && ((!strstr(f, "/lib/python") && strncmp(f, "<frozen ", 8) != 0) ||
			  strstr(f, "site-packages") || strstr(f, "dist-packages")))
			return true;
	}
	return false;
}

static bool worker_died(struct tracer *t, const struct rec_long_wait *lw, const struct diag_waits *w,
			struct diagnosis *d)
{
	const struct py_process *p = lw->py;
	struct xproc *x = t->xp;
	const struct py_thread *wt = thread_of(p, lw->p.tid);
	if (!wt || wt->state != PY_STATE_LOCK_WAIT || wt->futex_timed || !w || !w->long_blocked ||
	    !w->long_blocked(w->arg, wt->tid, wt->futex_addr) || !program_waits(wt))
		return false;
	uint64_t waited_ns = (uint64_t)(lw->waited_s * 1e9);
	uint64_t since = lw->p.mono_ns > waited_ns ? lw->p.mono_ns - waited_ns : 0;
	uint64_t from = since > (uint64_t)(XP_DIED_BEFORE_S * 1e9) ? since - (uint64_t)(XP_DIED_BEFORE_S * 1e9) : 0;
	const struct xp_death *dd = NULL;
	for (unsigned i = 0; i < XP_MAX_DEATHS; i++) {
		const struct xp_death *c = &x->deaths[i];
		if (c->used && c->parent == p->pid && c->parent_start == p->start_time && c->ns >= from &&
		    c->ns <= lw->p.mono_ns && (!dd || c->ns > dd->ns))
			dd = c;
	}
	if (!dd)
		return false;
	/* nothing else works for it: no other thread runs, no live child runs */
	for (size_t i = 0; i < p->nthreads; i++) {
		const struct py_thread *o = &p->threads[i];
		if (o != wt && o->state != PY_STATE_LOCK_WAIT && o->state != PY_STATE_SLEEP)
			return false;
	}
	struct child_scan cs = { .parent = p->pid };
	proc_for_each_pid("/proc", MAX_CHILDREN_SCANNED, check_child, &cs);
	if (cs.busy)
		return false;

	struct xp_facts *xf = &x->facts;
	memset(xf, 0, sizeof(*xf));
	xf->death = dd;
	xf->died_s_ago = lw->p.mono_ns > dd->ns ? (double)(lw->p.mono_ns - dd->ns) / 1e9 : 0;
	const char *cl = pending_find_cmdline(&t->pending, dd->child, dd->child_start);
	if (cl)
		snprintf(xf->child_cmdline, sizeof(xf->child_cmdline), "%s", cl);
	diagnose_blocked_where(wt, xf->waiting_call, sizeof(xf->waiting_call));
	d->code = DIAG_WORKER_DIED;
	d->waiter = wt->tid;
	d->xproc = xf;
	char a[160], how[160];
	who(wt, a, sizeof(a));
	if (dd->exit_code & 0x7f)
		snprintf(how, sizeof(how), "killed by %s%s", sig_name(dd->exit_code & 0x7f),
			 dd->oom ? " (out of memory: the kernel's OOM killer chose it)" : "");
	else
		snprintf(how, sizeof(how), "exited with status %d%s", (dd->exit_code >> 8) & 0xff,
			 dd->oom ? " (out of memory: the kernel's OOM killer chose it)" : "");
	bool pool = false;
	for (size_t i = 0; i < wt->nframes; i++)
		pool |= wt->frames[i].file && strstr(wt->frames[i].file, "multiprocessing/pool.py") != NULL;
	char buf[2048];
	snprintf(buf, sizeof(buf),
		 "%s waits in %s and will never get the result of worker pid %d (%.16s), %s %.0f s ago; "
		 "nothing else works for it (no other thread and no live child of this process runs)%s",
		 a, xf->waiting_call, (int)dd->child, dd->comm, how, xf->died_s_ago,
		 pool ? ". multiprocessing.Pool loses the task of a worker that dies: use "
			"concurrent.futures.ProcessPoolExecutor (it raises BrokenProcessPool) or a timeout" :
			": handle the child's death (a timeout, or check its exit status)");
	set_summary(d, buf);
	return true;
}

bool xproc_diagnose(struct tracer *t, const struct rec_long_wait *lw, const struct waitgraph *g,
		    const struct diag_waits *w, struct diagnosis *d)
{
	if (!lw->py || lw->gil || !xp_of(t)) /* a fork before tracing needs no record */
		return false;
	memset(d, 0, sizeof(*d));
	if (fork_held_lock(t, lw, g, w, d))
		return true;
	memset(d, 0, sizeof(*d));
	if (worker_died(t, lw, w, d))
		return true;
	memset(d, 0, sizeof(*d));
	return false;
}

/* ---- output ------------------------------------------------------------------------- */

void xproc_write_json(struct jw *w, const struct diagnosis *d)
{
	const struct xp_facts *xf = d->xproc;
	if (!xf)
		return;
	if (xf->fork) {
		const struct xp_fork *f = xf->fork;
		jw_key(w, "fork");
		jw_obj_begin(w);
		jw_kint(w, "parent_pid", f->parent);
		jw_kstr(w, "parent_comm", f->parent_comm);
		jw_key(w, "parent_threads");
		if (f->parent_threads)
			jw_int(w, f->parent_threads);
		else
			jw_null(w); /* forked before tracing started */
		jw_key(w, "parent_threads_now");
		if (xf->parent_threads_now >= 0)
			jw_int(w, xf->parent_threads_now);
		else
			jw_null(w);
		jw_key(w, "forker_tid");
		if (f->forker_tid)
			jw_int(w, f->forker_tid);
		else
			jw_null(w);
		jw_key(w, "seconds_ago");
		if (xf->forked_s_ago >= 0)
			jw_double(w, xf->forked_s_ago, 3);
		else
			jw_null(w);
		jw_kbool(w, "before_start", f->fork_ns == 0);
		jw_kstr(w, "stack_status", f->stack_status);
		jw_key(w, "stack");
		if (f->have_stack)
			py_write_stack_json(w, &f->stack.thread);
		else
			jw_null(w);
		jw_key(w, "holder");
		if (xf->holder_tid > 0) {
			jw_obj_begin(w);
			jw_kint(w, "pid", f->parent);
			jw_kint(w, "tid", xf->holder_tid);
			jw_kstr(w, "name", xf->holder_name[0] ? xf->holder_name : NULL);
			jw_kstr(w, "proof", xf->holder_proof);
			jw_key(w, "since");
			jw_obj_begin(w);
			jw_kstr(w, "function", xf->holder_function);
			jw_kstr(w, "file", xf->holder_file);
			jw_kint(w, "line", xf->holder_line);
			jw_obj_end(w);
			jw_obj_end(w);
		} else {
			jw_null(w);
		}
		jw_obj_end(w);
	}
	if (xf->death) {
		const struct xp_death *dd = xf->death;
		jw_key(w, "child");
		jw_obj_begin(w);
		jw_kint(w, "pid", dd->child);
		if (dd->ns_pid > 0 && dd->ns_pid != dd->child)
			jw_kint(w, "ns_pid", dd->ns_pid);
		jw_kstr(w, "comm", dd->comm);
		jw_kstr(w, "cmdline", xf->child_cmdline[0] ? xf->child_cmdline : NULL);
		jw_key(w, "signal");
		if (dd->exit_code & 0x7f)
			jw_int(w, dd->exit_code & 0x7f);
		else
			jw_null(w);
		jw_key(w, "exit_status");
		if (dd->exit_code & 0x7f)
			jw_null(w);
		else
			jw_int(w, (dd->exit_code >> 8) & 0xff);
		jw_kbool(w, "oom_killed", dd->oom);
		jw_kdouble(w, "seconds_ago", xf->died_s_ago, 3);
		jw_kstr(w, "waiting_call", xf->waiting_call);
		jw_obj_end(w);
	}
}

void xproc_write_text(struct strbuf *sb, const struct diagnosis *d)
{
	const struct xp_facts *xf = d->xproc;
	if (!xf)
		return;
	if (xf->fork && xf->fork->have_stack) {
		sb_printf(sb, "The fork, by thread %d of pid %d", (int)xf->fork->forker_tid, (int)xf->fork->parent);
		textreport_traceback(sb, xf->fork->parent, &xf->fork->stack.thread);
	}
	if (xf->death && xf->child_cmdline[0]) {
		sb_puts(sb, "The dead child's command: ");
		sb_put_escaped_text(sb, xf->child_cmdline, strlen(xf->child_cmdline));
		sb_putc(sb, '\n');
	}
}
