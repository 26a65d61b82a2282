/* execcheck: the delayed looks at new processes (struct exec_check in tracer.h). Owns:
 * queueing a check (fairqueue.h decides who gets a place), describing a Python process to
 * the kernel's stack walker once its interpreter is set up (retried, 2 ms doubling to
 * 250 ms, DESCRIBE_ATTEMPTS times), looking again at a program that may embed Python, and
 * running the due checks within one pass's time budget. */
#ifndef PH_EXECCHECK_H
#define PH_EXECCHECK_H
#include <stdint.h>
#include <sys/types.h>

#include "tracer.h"

/* Queues a check of kind for (pid, proc_start), due in delay_ns; counted in
 * dropped_checks when the queue refuses it. */
void schedule_check(struct tracer *t, pid_t pid, uint64_t proc_start,
		    enum check_kind kind, int attempt, uint64_t delay_ns);
#endif
