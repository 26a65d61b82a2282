/* guard: the CI hang guard, `--hang-timeout SECS` (off by default).
 * Owns: the hangs found so far and when each one times out, the proof at that moment that
 * it is still there, the final incident report (a framed text block on stderr, and a
 * `hang_timeout` record in JSON output), ending the command tree (SIGTERM to every
 * process of the command's scope, SIGKILL after --kill-after) and the exit status
 * GUARD_EXIT_STATUS. Without a COMMAND the traced processes are never touched. */
#ifndef PH_GUARD_H
#define PH_GUARD_H
#include <stdbool.h>
#include <sys/types.h>

/* The tracer's exit status when the guard fired: the one GNU timeout(1) uses for "timed
 * out", so CI scripts already treat it as such; distinct from 0 and 2 (the tracer's own)
 * and from the 128+N a killed command gets. */
#define GUARD_EXIT_STATUS 124
#define GUARD_DEFAULT_KILL_AFTER_S 5.0

struct tracer;
struct rec_long_wait;
struct diagnosis;
struct guard;

/* A guard that acts when a hang is timeout_s old (counted from the start of the wait it was
 * found in); kill_after_s: SIGTERM to SIGKILL. NULL when out of memory. */
struct guard *guard_new(double timeout_s, double kill_after_s);
void guard_free(struct guard *g);

/* hanggate.c: a hang was diagnosed (reported now or earlier) from lw, a long wait still in
 * progress; the guard times it from lw's start. */
void guard_note_hang(struct tracer *t, const struct rec_long_wait *lw);
/* events.c: thread tid of pid stopped waiting (or exited): its hangs are resolved. */
void guard_note_wait_end(struct tracer *t, pid_t pid, pid_t tid);

/* trace.c: milliseconds until the guard needs guard_poll (for poll()'s timeout), -1 if
 * never. guard_poll checks the hangs that timed out: true when one was proven still there
 * and the guard acted (report printed, command tree ended); the loop must stop then and
 * the tracer exit with GUARD_EXIT_STATUS. Both accept t->guard == NULL (guard off). */
int guard_due_in_ms(struct tracer *t);
bool guard_poll(struct tracer *t);
bool guard_fired(const struct tracer *t);
/* trace.c, after the `stop` summary: the report block's closing lines (the exit status),
 * so that they are the last lines of the log. Nothing when the guard did not act. */
void guard_finish(struct tracer *t);
#endif
