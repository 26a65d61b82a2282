/* culprit: where in a captured stack an action (a reap, a change of SIGCHLD's disposition)
 * was performed, for the one-sentence summaries. Owns: telling the program's frames from
 * library frames (the standard library, site-packages/dist-packages), naming a library
 * ("asyncio", "subprocess", the package under site-packages), and the phrase that names
 * the innermost frame (the call site of the action, wherever it is) and then the
 * program's frame that led there. */
#ifndef PH_CULPRIT_H
#define PH_CULPRIT_H
#include <stddef.h>

#include "pyreader.h"

/* The place of the action whose stack is t (innermost first), as a phrase that follows
 * "reaped it " or "ignored since ":
 *   the innermost frame is the program's: "at app.py:12 in reap()"
 *     (module-level code run by an import: "at helper.py:3 (imported at app.py:40)");
 *   else the library frame that did it, then the program frame that led there:
 *     "in asyncio's FastChildWatcher._do_waitpid_all (unix_events.py:1182), run by the
 *     event loop started at app.py:39" (an asyncio event loop between them), or
 *     "in minifw's Supervisor._on_sigchld (__init__.py:12), reached from app.py:30 in
 *     main()", or with no program frame at all "..., with no frame of the program on the
 *     stack". A line that is unknown reads "unix_events.py, line unknown". */
void culprit_place(const struct py_thread *t, char *buf, size_t len);
#endif
