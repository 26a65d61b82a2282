/* hangtrack: what the tracer remembers between events to prove a hang and to withdraw it.
 * Owns: the open long waits of every thread (a long_wait reported and no wait_end yet: the
 * thread has been in ONE futex wait, on one address, for at least the threshold), and the
 * hangs reported and not over yet, so that a wait_end of one of their threads (or the
 * process's exit) yields one `hang_end`. Bounded: a fixed table of open waits (a thread
 * whose slot another thread took is simply not known to be blocked: a missed hang, never a
 * false one) and HT_MAX_HANGS open hangs (the oldest is dropped without hang_end). */
#ifndef PH_HANGTRACK_H
#define PH_HANGTRACK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HT_WAIT_SLOTS 16384u  /* power of two */
#define HT_MAX_HANGS 64
#define HT_MAX_HANG_TIDS 32

struct ht_wait {
	pid_t pid, tid;      /* tid 0: free */
	uint64_t uaddr;
	uint64_t start_ns;   /* CLOCK_MONOTONIC */
};

struct ht_hang {
	pid_t pid;           /* 0: free */
	int code;            /* enum diag_code (diagnose.h) */
	pid_t tids[HT_MAX_HANG_TIDS]; /* the threads whose waits make up the hang */
	size_t ntids;
	uint64_t since_ns;   /* the earliest of their waits' starts (CLOCK_MONOTONIC) */
	uint64_t reported_ns;
	uint64_t fingerprint;
};

struct hangtrack {
	struct ht_wait waits[HT_WAIT_SLOTS];
	struct ht_hang hangs[HT_MAX_HANGS];
	unsigned next_hang;
};

/* Allocated zeroed; NULL when out of memory. */
struct hangtrack *ht_new(void);
void ht_free(struct hangtrack *h);
/* A long wait of tid on uaddr that began at start_ns is in progress. */
void ht_wait_open(struct hangtrack *h, pid_t pid, pid_t tid, uint64_t uaddr, uint64_t start_ns);
/* tid's wait ended (or tid exited). */
void ht_wait_close(struct hangtrack *h, pid_t tid);
/* The open long waits of one process, as the diagnosis rules ask for them (diagnose.h
 * struct diag_waits: { ht_pid_wait_is_open, &(struct ht_pid){ ht, pid } }). */
struct ht_pid {
	const struct hangtrack *ht; /* may be NULL: then no wait is open */
	pid_t pid;
};
/* ht_wait_is_open(a->ht, a->pid, tid, uaddr, NULL); arg: a struct ht_pid. */
bool ht_pid_wait_is_open(void *arg, pid_t tid, uint64_t uaddr);
/* Whether tid of pid is in a long wait on uaddr; its start in *start_ns (may be NULL). */
bool ht_wait_is_open(const struct hangtrack *h, pid_t pid, pid_t tid, uint64_t uaddr,
		     uint64_t *start_ns);
/* Remember a reported hang. */
void ht_hang_add(struct hangtrack *h, const struct ht_hang *hang);
/* The open hang of pid that thread tid (0: any, the process ended) belongs to: copied to
 * *out and forgotten. true when there was one. */
bool ht_hang_take(struct hangtrack *h, pid_t pid, pid_t tid, struct ht_hang *out);
/* Whether thread tid of pid belongs to an open hang (without taking it). */
bool ht_hang_covers(const struct hangtrack *h, pid_t pid, pid_t tid);
/* Forget every open wait of pid (it exited or exec'd). */
void ht_forget_process(struct hangtrack *h, pid_t pid);
#endif
