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

bool pending_take_stack(struct pending *p, pid_t tid, unsigned for_type, struct captured_stack *out)
{
	/* newest first: a thread's latest capture belongs to its next event */
	for (unsigned k = 1; k <= PENDING_STACKS; k++) {
		struct captured_stack *s = &p->stacks[(p->next_stack - k) % PENDING_STACKS];
		if (s->used && s->tid == tid && s->for_type == for_type) {
			*out = *s;
			memset(s, 0, sizeof(*s));
			return true;
		}
	}
	memset(out, 0, sizeof(*out)); /* callers release *out either way */
	return false;
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

void pending_put_cmdline(struct pending *p, pid_t pid, const char *args, size_t len)
{
	struct cmdline_record *c = &p->cmdlines[p->next_cmdline++ % PENDING_CMDLINES];
	if (len > PH_ARGS_LEN)
		len = PH_ARGS_LEN;
	while (len > 0 && args[len - 1] == '\0')
		len--;
	c->pid = pid;
	for (size_t i = 0; i < len; i++)
		c->text[i] = args[i] ? args[i] : ' ';
	c->text[len] = '\0';
}

const char *pending_find_cmdline(const struct pending *p, pid_t pid)
{
	for (unsigned k = 1; k <= PENDING_CMDLINES; k++) {
		const struct cmdline_record *c = &p->cmdlines[(p->next_cmdline - k) % PENDING_CMDLINES];
		if (c->pid == pid && c->text[0])
			return c->text;
	}
	return NULL;
}

void pending_put_ignore(struct pending *p, pid_t pid, const struct captured_stack *s)
{
	pending_forget_ignore(p, pid);
	struct ignore_record *r = &p->ignores[p->next_ignore++ % PENDING_IGNORES];
	pending_release(&r->stack);
	r->pid = pid;
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

const struct ignore_record *pending_find_ignore(const struct pending *p, pid_t pid)
{
	for (unsigned i = 0; i < PENDING_IGNORES; i++)
		if (p->ignores[i].pid == pid)
			return &p->ignores[i];
	return NULL;
}

void pending_put_name(struct pending *p, pid_t pid, pid_t tid, const char *name)
{
	for (unsigned i = 0; i < PENDING_NAMES; i++)
		if (p->names[i].pid == pid && p->names[i].tid == tid) {
			snprintf(p->names[i].name, sizeof(p->names[i].name), "%s", name);
			return;
		}
	struct name_record *r = &p->names[p->next_name++ % PENDING_NAMES];
	r->pid = pid;
	r->tid = tid;
	snprintf(r->name, sizeof(r->name), "%s", name);
}

const char *pending_find_name(const struct pending *p, pid_t pid, pid_t tid)
{
	for (unsigned i = 0; i < PENDING_NAMES; i++)
		if (p->names[i].pid == pid && p->names[i].tid == tid)
			return p->names[i].name;
	return NULL;
}

void pending_put_layout(struct pending *p, pid_t pid, const struct py_layout *l)
{
	for (unsigned i = 0; i < PENDING_LAYOUTS; i++)
		if (p->layouts[i].pid == pid) {
			p->layouts[i].layout = *l;
			return;
		}
	struct layout_record *r = &p->layouts[p->next_layout++ % PENDING_LAYOUTS];
	r->pid = pid;
	r->layout = *l;
}

const struct py_layout *pending_find_layout(const struct pending *p, pid_t pid)
{
	for (unsigned i = 0; i < PENDING_LAYOUTS; i++)
		if (p->layouts[i].pid == pid)
			return &p->layouts[i].layout;
	return NULL;
}
