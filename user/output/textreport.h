/* textreport: incidents for people, in text. Owns: one block per incident (the sentence,
 * then the threads that matter as Python tracebacks with the source line under each frame,
 * read from the target's root like Python does (srcline.h), then every other thread on one
 * line: name, tid, what it waits for or does, where), and the one-line form of a long wait
 * already covered by an open incident. No futex addresses; system calls by name. */
#ifndef PH_TEXTREPORT_H
#define PH_TEXTREPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pyreader.h"
#include "strbuf.h"

/* The threads of p: those in focus (tids, in that order) as tracebacks with source lines,
 * the others one line each. mark: the tid to mark with "==>" (0: none). */
void textreport_threads(struct strbuf *sb, const struct py_process *p, const pid_t *focus,
			size_t nfocus, pid_t mark);
/* ":", then t's stack as a traceback with source lines (read through /proc/PID/root). */
void textreport_traceback(struct strbuf *sb, pid_t pid, const struct py_thread *t);
/* What thread tid of p waits for, for people ("Lock held by 'B' (tid 6, taken at x.py:12),
 * which is in clock_nanosleep() at x.py:40"); "" when nothing is known. */
void textreport_wait(const struct py_process *p, pid_t tid, char *buf, size_t len);
#endif
