/* pending: bounded tables of stacks, reaps and command lines (see pending.h). */
#include "pending.h"

#include <stdio.h>
#include <string.h>

#include "pystack.h"

void pending_release(struct captured_stack *s)
{
	if (s->used)
		pystack_thread_free(&s->thread);
	memset(s, 0, sizeof(*s));
}

void pending_free(struct pending *p)
{
	for (unsigned i = 0; i < PENDING_IGNORES; i++)
		pending_release(&p->ignores[i].stack);
	for (unsigned i = 0; i < PENDING_STACKS; i++)
		pending_release(&p->stacks[i]);
	for (unsigned i = 0; i < PENDING_REAPS; i++)
		pending_release(&p->reaps[i].stack);
	memset(p, 0, sizeof(*p));
}

void pending_put_stack(struct pending *p, const struct captured_stack *s)
{
	struct captured_stack *slot = &p->stacks[p->next_stack++ % PENDING_STACKS];
	pending_release(slot);
	*slot = *s;
	slot->used = true;
}

static bool same_start(uint64_t a, uint64_t b)
{
	return !a || !b || a == b;
}

bool pending_take_stack(struct pending *p, pid_t pid, uint64_t proc_start, pid_t tid,
			unsigned for_type, uint64_t stack_ts, struct captured_stack *out)
{
	bool found = false;
	memset(out, 0, sizeof(*out));
	/* newest first: a thread's latest capture belongs to its next event; any other capture
	 * of this thread and type is older and lost its event (or is of a process that had
	 * this tid before): it is released, so it can never be attached to a later event */
	for (unsigned k = 1; k <= PENDING_STACKS; k++) {
		struct captured_stack *s = &p->stacks[(p->next_stack - k) % PENDING_STACKS];
		if (!s->used || s->tid != tid || s->for_type != for_type)
			continue;
		if (!found && stack_ts && s->ts_ns == stack_ts && s->pid == pid &&
		    same_start(s->proc_start, proc_start)) {
			*out = *s;
			memset(s, 0, sizeof(*s));
			found = true;
		} else {
			pending_release(s);
		}
	}
	return found;
}

void pending_put_reap(struct pending *p, pid_t child, const struct captured_stack *s)
{
	struct reap_record *r = &p->reaps[p->next_reap++ % PENDING_REAPS];
	pending_release(&r->stack);
	r->used = true;
	r->child = child;
	r->stack = *s;
	r->stack.used = true;
}

const struct reap_record *pending_find_reap(const struct pending *p, pid_t child)
{
	for (unsigned k = 1; k <= PENDING_REAPS; k++) {
		const struct reap_record *r = &p->reaps[(p->next_reap - k) % PENDING_REAPS];
		if (r->used && r->child == child)
			return r;
	}
	return NULL;
}

void pending_put_cmdline(struct pending *p, pid_t pid, uint64_t proc_start, const char *args,
			 size_t len)
{
	struct cmdline_record *c = &p->cmdlines[p->next_cmdline++ % PENDING_CMDLINES];
	if (len > PH_ARGS_LEN)
		len = PH_ARGS_LEN;
	while (len > 0 && args[len - 1] == '\0')
		len--;
	c->pid = pid;
	c->proc_start = proc_start;
	for (size_t i = 0; i < len; i++)
		c->text[i] = args[i] ? args[i] : ' ';
	c->text[len] = '\0';
}

const char *pending_find_cmdline(const struct pending *p, pid_t pid, uint64_t proc_start)
{
	for (unsigned k = 1; k <= PENDING_CMDLINES; k++) {
		const struct cmdline_record *c = &p->cmdlines[(p->next_cmdline - k) % PENDING_CMDLINES];
		if (c->pid == pid && same_start(c->proc_start, proc_start) && c->text[0])
			return c->text;
	}
	return NULL;
}

void pending_put_ignore(struct pending *p, pid_t pid, uint64_t proc_start, const struct captured_stack *s)
{
	pending_forget_ignore(p, pid);
	struct ignore_record *r = &p->ignores[p->next_ignore++ % PENDING_IGNORES];
	pending_release(&r->stack);
	r->pid = pid;
	r->proc_start = proc_start;
	r->stack = *s; /* takes ownership of the frames */
}

void pending_forget_ignore(struct pending *p, pid_t pid)
{
	for (unsigned i = 0; i < PENDING_IGNORES; i++)
		if (p->ignores[i].pid == pid) {
			pending_release(&p->ignores[i].stack);
			p->ignores[i].pid = 0;
		}
}

const struct ignore_record *pending_find_ignore(const struct pending *p, pid_t pid, uint64_t proc_start)
{
	for (unsigned i = 0; i < PENDING_IGNORES; i++)
		if (p->ignores[i].pid == pid && same_start(p->ignores[i].proc_start, proc_start))
			return &p->ignores[i];
	return NULL;
}

void pending_put_name(struct pending *p, pid_t pid, uint64_t proc_start, pid_t tid, const char *name)
{
	for (unsigned i = 0; i < PENDING_NAMES; i++)
		if (p->names[i].pid == pid && p->names[i].tid == tid) {
			p->names[i].proc_start = proc_start; /* a new process's thread replaces it */
			snprintf(p->names[i].name, sizeof(p->names[i].name), "%s", name);
			return;
		}
	struct name_record *r = &p->names[p->next_name++ % PENDING_NAMES];
	r->pid = pid;
	r->tid = tid;
	r->proc_start = proc_start;
	snprintf(r->name, sizeof(r->name), "%s", name);
}

const char *pending_find_name(const struct pending *p, pid_t pid, uint64_t proc_start, pid_t tid)
{
	for (unsigned i = 0; i < PENDING_NAMES; i++)
		if (p->names[i].pid == pid && p->names[i].tid == tid &&
		    same_start(p->names[i].proc_start, proc_start))
			return p->names[i].name;
	return NULL;
}

void pending_put_layout(struct pending *p, pid_t pid, uint64_t proc_start, const struct py_layout *l)
{
	for (unsigned i = 0; i < PENDING_LAYOUTS; i++)
		if (p->layouts[i].pid == pid) {
			p->layouts[i].proc_start = proc_start;
			p->layouts[i].layout = *l;
			return;
		}
	struct layout_record *r = &p->layouts[p->next_layout++ % PENDING_LAYOUTS];
	r->pid = pid;
	r->proc_start = proc_start;
	r->layout = *l;
}

const struct py_layout *pending_find_layout(const struct pending *p, pid_t pid, uint64_t proc_start)
{
	for (unsigned i = 0; i < PENDING_LAYOUTS; i++)
		if (p->layouts[i].pid == pid && same_start(p->layouts[i].proc_start, proc_start))
			return &p->layouts[i].layout;
	return NULL;
}
