/* pending: what the event loop remembers between kernel records, all in bounded tables
 * that overwrite their oldest entry. Owns: stacks captured just before the event they
 * belong to (keyed by thread), who reaped which child and from where (keyed by child pid,
 * for a later "reaped elsewhere"), and the command lines of children of watched processes
 * (keyed by child pid; the child is usually gone when it matters). */
#ifndef PH_PENDING_H
#define PH_PENDING_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyhang.h"
#include "pyreader.h"

#define PENDING_STACKS 64
#define PENDING_REAPS 1024
#define PENDING_CMDLINES 1024
#define PENDING_IGNORES 256
#define PENDING_NAMES 1024
#define PENDING_LAYOUTS 1024

/* Every record is of one process: its pid and its start time (proc_start, /proc/PID/stat
 * field 22; see PH_NS_PER_TICK), so a pid reused by a new process never finds the old
 * process's records. proc_start 0: unknown, matches any. */
struct captured_stack {
	bool used;
	pid_t pid, tid;
	uint64_t proc_start;
	unsigned for_type;
	unsigned status; /* enum ph_stack_status */
	uint64_t ts_ns;
	struct py_thread thread; /* decoded frames */
};

struct reap_record {
	bool used;
	pid_t child;
	struct captured_stack stack;
};

struct cmdline_record {
	pid_t pid;
	uint64_t proc_start;
	char text[PH_ARGS_LEN + 1];
};

/* Where and when a process started ignoring SIGCHLD (stack captured in the kernel). */
struct ignore_record {
	pid_t pid;
	uint64_t proc_start;
	struct captured_stack stack; /* stack.used false: not captured (e.g. before start) */
};

/* A Python thread's name, learnt while it was alive. */
struct name_record {
	pid_t pid, tid;
	uint64_t proc_start;
	char name[64];
};

/* The layout a process was described to the BPF walker with (its stacks decode with it). */
struct layout_record {
	pid_t pid;
	uint64_t proc_start;
	struct py_layout layout;
};

struct pending {
	struct layout_record layouts[PENDING_LAYOUTS];
	unsigned next_layout;
	struct name_record names[PENDING_NAMES];
	unsigned next_name;
	struct ignore_record ignores[PENDING_IGNORES];
	unsigned next_ignore;
	struct captured_stack stacks[PENDING_STACKS];
	unsigned next_stack;
	struct reap_record reaps[PENDING_REAPS];
	unsigned next_reap;
	struct cmdline_record cmdlines[PENDING_CMDLINES];
	unsigned next_cmdline;
};

void pending_free(struct pending *p);
/* Store a decoded stack (ownership of its frames passes to the table). */
void pending_put_stack(struct pending *p, const struct captured_stack *s);
/* Take the stack of tid captured for an event of for_type of process (pid, proc_start); the
 * event names it by its ts_ns (stack_ts). False if none (lost, or stack_ts 0). Other
 * captures of that thread and type (their event was lost) are dropped. The caller owns
 * the result (free with pending_release). */
bool pending_take_stack(struct pending *p, pid_t pid, uint64_t proc_start, pid_t tid,
			unsigned for_type, uint64_t stack_ts, struct captured_stack *out);
void pending_put_reap(struct pending *p, pid_t child, const struct captured_stack *s);
const struct reap_record *pending_find_reap(const struct pending *p, pid_t child);
void pending_put_cmdline(struct pending *p, pid_t pid, uint64_t proc_start, const char *args,
			 size_t len);
const char *pending_find_cmdline(const struct pending *p, pid_t pid, uint64_t proc_start);
void pending_release(struct captured_stack *s);
void pending_put_layout(struct pending *p, pid_t pid, uint64_t proc_start, const struct py_layout *l);
const struct py_layout *pending_find_layout(const struct pending *p, pid_t pid, uint64_t proc_start);
void pending_put_name(struct pending *p, pid_t pid, uint64_t proc_start, pid_t tid, const char *name);
const char *pending_find_name(const struct pending *p, pid_t pid, uint64_t proc_start, pid_t tid);
/* Remember (a copy of) where pid started ignoring SIGCHLD; forget it when restored. */
void pending_put_ignore(struct pending *p, pid_t pid, uint64_t proc_start, const struct captured_stack *s);
void pending_forget_ignore(struct pending *p, pid_t pid);
const struct ignore_record *pending_find_ignore(const struct pending *p, pid_t pid, uint64_t proc_start);
#endif
