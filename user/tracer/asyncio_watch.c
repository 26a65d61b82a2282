/* asyncio_watch: periodic reads of asyncio loops in the tracer (asyncio_watch.h). */
#include "asyncio_watch.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annotate.h"
#include "asyncio_diag.h"
#include "asyncio_write.h"
#include "procmem.h"
#include "procscan.h"

#define MAX_FINDINGS 8
#define RECHECK_NS 10000000000ull /* a process without asyncio is looked at again after 10 s */

struct finding {
	bool used;
	enum diag_code code;
	uint64_t key;
	uint64_t first_ns, reported_ns;
	uint64_t since_ns;  /* when it began (a blocked loop: by its own clock), else first_ns */
	bool reported, seen;
	pid_t tid;
};

struct watched {
	pid_t pid;
	uint64_t start;
	int8_t python;      /* -1 unknown, 0 no, 1 yes */
	bool asyncio;
	bool seen;          /* still there at the last scan */
	uint64_t next_ns;
	struct finding f[MAX_FINDINGS];
};

static struct watched *procs;
static size_t nprocs;
static uint64_t next_poll_ns, next_scan_ns;

/* How often /proc is listed for new processes: host-wide every 10 s, COMMAND's descendants
 * every second (the -p processes are looked up directly, every period). */
#define SCAN_HOST_NS 10000000000ull
#define SCAN_COMMAND_NS 1000000000ull
#define HOST_MIN_AGE_S 5.0

int aio_watch_due_in_ms(struct tracer *t)
{
	(void)t;
	uint64_t now = mono_now_ns();
	if (!next_poll_ns || now >= next_poll_ns)
		return 0;
	return (int)((next_poll_ns - now) / 1000000ull) + 1;
}

void aio_watch_free(void)
{
	aio_publish_clear();
	free(procs);
	procs = NULL;
	nprocs = 0;
}

static bool in_scope(const struct tracer *t, pid_t pid)
{
	if (t->npids) {
		for (int i = 0; i < t->npids; i++)
			if (t->pids[i] == pid)
				return true;
		return false;
	}
	if (t->command) {
		if (t->child <= 0)
			return false;
		pid_t p = pid;
		for (int i = 0; i < 64 && p > 1; i++) {
			if (p == t->child)
				return true;
			p = proc_parent(p);
		}
		return false;
	}
	return true;
}

static struct watched *watched_get(pid_t pid, uint64_t start)
{
	for (size_t i = 0; i < nprocs; i++)
		if (procs[i].pid == pid) {
			if (procs[i].start != start) {
				memset(&procs[i], 0, sizeof(procs[i]));
				procs[i].pid = pid;
				procs[i].start = start;
				procs[i].python = -1;
			}
			return &procs[i];
		}
	if (nprocs == AIO_WATCH_MAX)
		return NULL;
	if (!procs) {
		procs = calloc(AIO_WATCH_MAX, sizeof(*procs));
		if (!procs)
			return NULL;
	}
	struct watched *w = &procs[nprocs++];
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->start = start;
	w->python = -1;
	return w;
}

static void fill_ev(struct ev_proc *p, pid_t pid, pid_t tid)
{
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->tid = tid > 0 ? tid : pid;
	p->mono_ns = mono_now_ns();
	p->ns_pid = -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (fgets(p->comm, sizeof(p->comm), f))
			p->comm[strcspn(p->comm, "\n")] = 0;
		fclose(f);
	}
}

static struct finding *finding_get(struct watched *w, enum diag_code code, uint64_t key, uint64_t now)
{
	struct finding *free_slot = NULL;
	for (int i = 0; i < MAX_FINDINGS; i++) {
		struct finding *f = &w->f[i];
		if (f->used && f->code == code && f->key == key)
			return f;
		if (!f->used && !free_slot)
			free_slot = f;
	}
	if (!free_slot)
		return NULL;
	free_slot->used = true;
	free_slot->code = code;
	free_slot->key = key;
	free_slot->first_ns = free_slot->since_ns = now;
	free_slot->reported = false;
	return free_slot;
}

static void report(struct tracer *t, struct watched *w, struct finding *f, const struct diagnosis *d,
		   const struct py_process *p)
{
	struct rec_hang r = { .diag = d, .py = p };
	if (proc_dying(w->pid)) /* being torn down: not hung (procscan.h) */
		return;
	fill_ev(&r.p, w->pid, d->waiter);
	t->n_hangs++;
	t->out.ops->hang(&t->out, &r);
	annotate_hang(t, &r);
	f->reported = true;
	f->reported_ns = r.p.mono_ns;
	f->tid = r.p.tid;
}

static void consider(struct tracer *t, struct watched *w, const struct diagnosis *d, uint64_t key,
		     uint64_t now, const struct py_process *p)
{
	struct finding *f = finding_get(w, d->code, key, now);
	if (!f)
		return;
	f->seen = true;
	/* a finding not seen by a read is dropped (end_unseen): one made before this read
	 * was seen by every read since */
	if (!f->reported && f->first_ns < now)
		report(t, w, f, d, p);
}

static void end_unseen(struct tracer *t, struct watched *w, bool gone)
{
	uint64_t now = mono_now_ns();
	for (int i = 0; i < MAX_FINDINGS; i++) {
		struct finding *f = &w->f[i];
		if (!f->used || f->seen)
			continue;
		if (f->reported) {
			struct rec_hang_end r = { .code = diag_code_name(f->code),
						  .ended_by = gone ? REC_END_PROCESS_EXIT : REC_END_RETURN,
						  .duration_s = (double)(now - f->since_ns) / 1e9,
						  .reported_s_ago = (double)(now - f->reported_ns) / 1e9 };
			fill_ev(&r.p, w->pid, gone ? 0 : f->tid);
			if (gone)
				r.p.tid = w->pid;
			t->n_hang_ends++;
			t->out.ops->hang_end(&t->out, &r);
		}
		memset(f, 0, sizeof(*f));
	}
}

static void look(struct tracer *t, struct watched *w, uint64_t now)
{
	struct py_process p;
	char err[256];
	uint64_t st;
	for (int i = 0; i < MAX_FINDINGS; i++)
		w->f[i].seen = false;
	if (pm_start_time(w->pid, &st) != 0 || st != w->start) { /* gone, or its pid reused */
		end_unseen(t, w, true);
		w->python = 0;
		w->next_ns = UINT64_MAX;
		return;
	}
	/* a process without asyncio (so far) costs one sys.modules lookup, not a stack read */
	if (!w->asyncio && aio_imported(t->reader, w->pid) != 1) {
		w->next_ns = now + RECHECK_NS;
		return;
	}
	if (py_read_process(t->reader, w->pid, &p, err, sizeof(err)) != 0) {
		w->next_ns = now + RECHECK_NS;
		end_unseen(t, w, false);
		return;
	}
	if (p.start_time != w->start) { /* reused between the look and the read */
		py_process_free(&p);
		end_unseen(t, w, true);
		w->python = 0;
		w->next_ns = UINT64_MAX;
		return;
	}
	struct aio_view v;
	aio_read(t->reader, &p, (double)t->threshold_ns / 1e9, &v);
	w->asyncio = v.imported && !v.unsupported;
	if (!w->asyncio)
		w->next_ns = now + RECHECK_NS;
	struct diagnosis d[AIO_MAX_LOOPS + 1];
	uint64_t keys[AIO_MAX_LOOPS + 1];
	double running_s[AIO_MAX_LOOPS + 1];
	size_t nd = 0;
	for (size_t i = 0; w->asyncio && i < v.nloops; i++) {
		const struct aio_loop *L = &v.loops[i];
		memset(&d[nd], 0, sizeof(d[nd]));
		if (!aio_diagnose_blocked(&v, i, &d[nd]))
			continue;
		/* a loop thread in a futex wait on its own future: the long_wait of that wait
		 * reports it (events.c), with the same code */
		if (d[nd].code == DIAG_EVENT_LOOP_SELF_WAIT)
			continue;
		uint64_t bits;
		memcpy(&bits, &L->end_time, sizeof(bits));
		running_s[nd] = isnan(L->running_s) ? 0 : L->running_s;
		keys[nd++] = L->addr ^ (bits * 0x9e3779b97f4a7c15ull);
	}
	size_t nloop_findings = nd;
	memset(&d[nd], 0, sizeof(d[nd]));
	if (w->asyncio && aio_diagnose_cycle(&v, &d[nd], &keys[nd]))
		nd++;
	if (nd)
		aio_publish(&v, AIO_EVENT_JSON_BUDGET); /* the hang's snapshot carries it (py_write_threads_fields) */
	for (size_t i = 0; i < nd; i++) {
		/* a cycle must have lasted the threshold; a blocked loop has by its own clock */
		struct finding *f = finding_get(w, d[i].code, keys[i], now);
		if (f && !f->reported && f->first_ns == now && i < nloop_findings &&
		    running_s[i] * 1e9 < (double)now)
			f->since_ns = now - (uint64_t)(running_s[i] * 1e9);
		if (f && d[i].code == DIAG_AWAIT_CYCLE && now - f->first_ns < t->threshold_ns) {
			f->seen = true;
			continue;
		}
		consider(t, w, &d[i], keys[i], now, &p);
	}
	end_unseen(t, w, false);
	aio_view_free(&v);
	py_process_free(&p);
}

static void scan_candidates(struct tracer *t, uint64_t now)
{
	for (size_t i = 0; i < nprocs; i++)
		procs[i].seen = false;
	if (t->npids) {
		for (int i = 0; i < t->npids; i++) {
			uint64_t st;
			if (pm_start_time(t->pids[i], &st) != 0)
				continue;
			struct watched *w = watched_get(t->pids[i], st);
			if (w)
				w->seen = true;
		}
	} else {
		/* host-wide: a process younger than HOST_MIN_AGE is left for a later listing (the
		 * many short-lived Python processes of a busy host are never attached) */
		double uptime = 0;
		FILE *up = t->command ? NULL : fopen("/proc/uptime", "re");
		if (up) {
			if (fscanf(up, "%lf", &uptime) != 1)
				uptime = 0;
			fclose(up);
		}
		long hz = sysconf(_SC_CLK_TCK);
		DIR *d = opendir("/proc");
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL) {
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			pid_t pid = (pid_t)atoi(de->d_name);
			uint64_t st;
			if (pid <= 1 || pm_start_time(pid, &st) != 0)
				continue;
			struct watched *known = NULL;
			for (size_t i = 0; i < nprocs && !known; i++)
				if (procs[i].pid == pid && procs[i].start == st)
					known = &procs[i];
			if (known) {
				known->seen = true;
				continue;
			}
			if (uptime > 0 && hz > 0 && uptime - (double)st / (double)hz < HOST_MIN_AGE_S)
				continue;
			if (!in_scope(t, pid))
				continue;
			struct watched *w = watched_get(pid, st);
			if (w)
				w->seen = true;
		}
		if (d)
			closedir(d);
	}
	/* processes gone: their open findings end */
	for (size_t i = 0; i < nprocs;) {
		if (procs[i].seen) {
			i++;
			continue;
		}
		for (int k = 0; k < MAX_FINDINGS; k++)
			procs[i].f[k].seen = false;
		end_unseen(t, &procs[i], true);
		procs[i] = procs[--nprocs];
	}
	(void)now;
}

void aio_watch_poll(struct tracer *t)
{
	uint64_t now = mono_now_ns();
	if (next_poll_ns && now < next_poll_ns)
		return;
	next_poll_ns = now + tracer_sample_period_ns(t);
	if (t->npids || !next_scan_ns || now >= next_scan_ns) {
		scan_candidates(t, now);
		next_scan_ns = now + (t->command ? SCAN_COMMAND_NS : SCAN_HOST_NS);
	}
	for (size_t i = 0; i < nprocs; i++) {
		struct watched *w = &procs[i];
		if (w->python < 0)
			w->python = py_is_python_process(w->pid) ? 1 : 0;
		if (w->python != 1 || (w->next_ns && now < w->next_ns && !w->asyncio))
			continue; /* not Python, or no asyncio at the last look: again after 10 s */
		look(t, w, now);
	}
}
