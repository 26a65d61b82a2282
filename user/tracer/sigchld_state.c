/* sigchld_state: the SIGCHLD disposition each traced process is known to have, and where it
 * came from. Owns: one sigchld_ignored event per change of a process's disposition,
 * whichever path sees it first (the exec hook, the rt_sigaction hook, the start-up scan of
 * /proc, the late look at a process found to embed Python), and the origin that the loss
 * summaries name: set at file:line (rt_sigaction, stack kept in pending ignores), inherited
 * at exec from the program that ignored it, or already ignored before tracing started.
 *
 * Why paths race: the hooks' records reach us through the ring buffer, later than /proc
 * shows their effect. A look at /proc therefore drains the ring buffer after reading
 * SigIgn and only then consults this table: a hook that saw the change has recorded it
 * by then, and its record (with the true origin) wins over the /proc finding.
 *
 * Kernel facts (Linux 2.6+, kernel/signal.c flush_signal_handlers, fs/exec.c): exec resets
 * every handled signal to SIG_DFL and clears sa_flags, but keeps SIG_IGN; fork copies the
 * dispositions. So an ignored SIGCHLD at exec was ignored by the program that ran in the
 * process just before (or, for its first exec, by the parent it was forked from). */
#include "sigchld_state.h"

#include <string.h>

#include "procmem.h"
#include "procscan.h"
#include "tracer.h"

static bool same_start(uint64_t a, uint64_t b)
{
	return !a || !b || a == b;
}

static struct disp_record *find(struct disp_table *d, pid_t pid, uint64_t proc_start)
{
	for (unsigned i = 0; i < DISP_RECORDS; i++)
		if (d->r[i].pid == pid && same_start(d->r[i].proc_start, proc_start))
			return &d->r[i];
	return NULL;
}

const struct disp_record *disp_find(const struct tracer *t, pid_t pid, uint64_t proc_start)
{
	return find((struct disp_table *)&t->disp, pid, proc_start);
}

/* The record of process (pid, proc_start), new (all facts cleared) if there is none; an
 * older process of the same pid is replaced. */
static struct disp_record *get(struct disp_table *d, pid_t pid, uint64_t proc_start)
{
	struct disp_record *r = find(d, pid, proc_start);
	if (r && r->proc_start == proc_start)
		return r;
	if (!r)
		for (unsigned i = 0; i < DISP_RECORDS && !r; i++)
			if (d->r[i].pid == pid)
				r = &d->r[i]; /* another process that had this pid */
	/* a new slot: the oldest that holds nothing reported (the host's every exec comes
	 * here in host-wide mode; a reported ignore is what loss summaries need later) */
	for (unsigned k = 0; k < DISP_RECORDS && !r; k++) {
		struct disp_record *c = &d->r[d->next++ % DISP_RECORDS];
		if (!c->pid || !c->reported || c->cls == PH_SIGCHLD_DEFAULT)
			r = c;
	}
	if (!r)
		r = &d->r[d->next++ % DISP_RECORDS];
	memset(r, 0, sizeof(*r));
	r->pid = pid;
	r->proc_start = proc_start;
	return r;
}

static void copy_comm(char *dst, const char *src)
{
	memcpy(dst, src, PH_COMM_LEN);
	dst[PH_COMM_LEN - 1] = '\0';
}

/* Emits the (first) SIG_IGN event of r's process, without a stack. */
static void report_ignored(struct tracer *t, struct disp_record *r, const char *comm, uint64_t mono_ns,
			   bool from_proc)
{
	struct rec_sigchld ev = { 0 };
	ev.p.pid = r->pid;
	ev.p.tid = r->pid;
	ev.p.mono_ns = mono_ns;
	if (comm)
		copy_comm(ev.p.comm, comm);
	else
		proc_comm(r->pid, 0, ev.p.comm, sizeof(ev.p.comm));
	ev.p.ns_pid = proc_ns_pid(r->pid);
	proc_cgroup(r->pid, ev.p.cgroup, sizeof(ev.p.cgroup));
	ev.action = REC_SIGCHLD_IGN;
	ev.before_start = r->origin == DISP_BEFORE_START;
	ev.inherited = r->origin == DISP_INHERITED;
	if (ev.inherited && r->from_comm[0]) {
		ev.inherited_from_comm = r->from_comm;
		ev.inherited_from_pid = r->from_pid;
	}
	r->cls = PH_SIGCHLD_IGN;
	r->reported = true;
	r->told_from_proc = from_proc;
	/* where the loss summaries look for a stack: none here ("not Python"), ts 0 for
	 * "before tracing started" as before */
	struct captured_stack none = {
		.status = PH_STACK_NOT_PYTHON,
		.ts_ns = r->origin == DISP_BEFORE_START ? 0 : mono_ns,
	};
	pending_put_ignore(&t->pending, r->pid, r->proc_start, &none);
	t->n_sigchld++;
	t->out.ops->sigchld(&t->out, &ev);
}

void disp_on_exec(struct tracer *t, const struct ph_event *e)
{
	struct disp_record *prev = find(&t->disp, (pid_t)e->pid, e->proc_start);
	char from_comm[PH_COMM_LEN] = "";
	pid_t from_pid = 0;
	if (e->exec.sigchld_ignored) {
		if (prev && prev->python_exec && prev->origin == DISP_INHERITED && prev->cls == PH_SIGCHLD_IGN) {
			/* a Python program's rt_sigaction calls are all seen: it kept what it got */
			copy_comm(from_comm, prev->from_comm);
			from_pid = prev->from_pid;
		} else if (prev && prev->exec_comm[0]) {
			copy_comm(from_comm, prev->exec_comm); /* the program this process ran before */
			from_pid = (pid_t)e->pid;
		} else {
			/* its first exec since it was forked: the parent's disposition, copied at fork */
			copy_comm(from_comm, e->exec.parent_comm);
			from_pid = (pid_t)e->exec.parent_tgid;
		}
	}
	struct disp_record *r = get(&t->disp, (pid_t)e->pid, e->proc_start);
	memset(r->from_comm, 0, sizeof(r->from_comm));
	r->cls = e->exec.sigchld_ignored ? PH_SIGCHLD_IGN : PH_SIGCHLD_DEFAULT;
	r->origin = e->exec.sigchld_ignored ? DISP_INHERITED : DISP_NONE;
	r->reported = false;
	r->python_exec = e->exec.python;
	r->seen_ns = e->ts_ns;
	copy_comm(r->exec_comm, e->comm);
	copy_comm(r->from_comm, from_comm);
	r->from_pid = from_pid;
	/* A Python program starting with SIGCHLD ignored: a finding from its first line. */
	if (e->exec.python && e->exec.sigchld_ignored)
		report_ignored(t, r, e->comm, e->ts_ns, false);
}

bool disp_on_sigaction(struct tracer *t, const struct ph_event *e)
{
	struct disp_record *r = get(&t->disp, (pid_t)e->pid, e->proc_start);
	unsigned cls = e->sigchld.new_class;
	/* The hook sends real changes only (old class != new). One that leads to what a look
	 * at /proc told is that same change: /proc shows it a moment before the hook's record
	 * is out. After a hook's own report it is news (an event between them was lost). */
	if (r->reported && r->told_from_proc && r->cls == cls)
		return false;
	r->told_from_proc = false;
	if (!r->exec_comm[0])
		copy_comm(r->exec_comm, e->comm);
	r->cls = cls;
	r->origin = cls == PH_SIGCHLD_DEFAULT ? DISP_NONE : DISP_SET;
	r->reported = true;
	r->seen_ns = e->ts_ns;
	return true;
}

void disp_scan(struct tracer *t, pid_t pid, uint64_t proc_start, bool at_start)
{
	uint64_t read_ns = mono_now_ns();
	int ignored = proc_sigchld_ignored(pid);
	/* what the hooks saw up to now comes first: see the header comment */
	loader_poll(t->ld, 0);
	struct disp_record *r = find(&t->disp, pid, proc_start);
	if (r && r->proc_start && proc_start && r->proc_start != proc_start)
		r = NULL;
	if (r && r->reported)
		return; /* a hook told its disposition; later changes come from the hook too */
	if (r && r->seen_ns >= read_ns) {
		/* an exec newer than our read: it is the truth (Python execs report themselves) */
		if (r->cls == PH_SIGCHLD_IGN && !r->python_exec && ignored == 1)
			report_ignored(t, r, NULL, mono_now_ns(), true);
		return;
	}
	if (ignored != 1) {
		if (r && ignored == 0) {
			r->cls = PH_SIGCHLD_DEFAULT;
			r->origin = DISP_NONE;
			r->seen_ns = read_ns;
		}
		return;
	}
	if (!r)
		r = get(&t->disp, pid, proc_start);
	if (r->cls == PH_SIGCHLD_IGN && r->origin == DISP_INHERITED) {
		/* ignored at its exec and now: kept (its unwatched calls could only have set it
		 * again, which the report below would not tell apart) */
	} else if (at_start && !r->seen_ns) {
		r->origin = DISP_BEFORE_START;
	} else {
		r->origin = DISP_UNWATCHED;
	}
	r->seen_ns = read_ns;
	report_ignored(t, r, NULL, read_ns, true);
}
