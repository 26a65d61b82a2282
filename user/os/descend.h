/* descend: the descendants of processes, from /proc (for -p, which covers them).
 * Owns: finding every live descendant of a set of processes by their parent pids (field 4
 * of /proc/PID/stat, proc(5)), repeated until a pass finds nothing new, so that children
 * forked by a descendant while it was being found are found too. New ones after the call
 * are the kernel's: the watch of a process passes to its children at fork (bpf on_fork). */
#ifndef PH_DESCEND_H
#define PH_DESCEND_H
#include <stddef.h>
#include <sys/types.h>

/* Calls fn(pid, arg) once for each live descendant of roots (not the roots themselves),
 * visiting at most max_procs /proc entries per pass and 8 passes. Returns the number
 * found, or -1 when /proc cannot be read or fn fails (non-zero). */
int descend_for_each(const pid_t *roots, size_t nroots, size_t max_procs, int (*fn)(pid_t, void *),
		     void *arg);
#endif
