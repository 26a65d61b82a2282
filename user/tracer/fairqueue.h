/* fairqueue: fairness of the queue of new processes to look at (struct exec_check in
 * tracer.h: Python processes to describe to the kernel's stack walker, programs to look at
 * for an embedded interpreter). Owns: who gets a place when the queue (MAX_EXEC_CHECKS
 * entries) is full (max-min fairness between users: a newcomer whose user holds fewer
 * entries than the user holding the most takes the oldest entry of that user, else it is
 * refused, and counted in exec_check_queue_full), the order in which due entries are run
 * (users with fewer entries first), and the time one pass of the event loop may spend on
 * them. So a flood of fake `python3` execs by one user only ever displaces that user's own
 * entries, and never delays the description of another user's processes; while the queue
 * has room, every user is served as before. */
#ifndef PH_FAIRQUEUE_H
#define PH_FAIRQUEUE_H
#include <stdbool.h>
#include <stdint.h>

struct tracer;

/* Time one pass may spend running checks; the rest waits for the next pass (at once). */
#define FAIRQ_PASS_BUDGET_NS 20000000ull

/* Make room for a check of user uid_plus1 - 1 (uid_plus1 0: user unknown, e.g. processes
 * found at start-up; counted as one more user): true when there is a free entry now (an
 * entry of the user holding the most may have been dropped, and counted), false to refuse. */
bool fairq_admit(struct tracer *t, uint32_t uid_plus1);
/* Order the queue: entries of users with fewer entries first, the queue's order kept
 * within a user. */
void fairq_order(struct tracer *t);
#endif
