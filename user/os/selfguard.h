/* selfguard: what the tracer does to itself at start so that the processes it watches
 * cannot exhaust or steer it.
 * Owns: raising RLIMIT_NOFILE's soft limit to the hard limit (a process with thousands of
 * threads, or thousands of Python processes, must not run the tracer out of descriptors:
 * the default soft limit is 1024), and giving up a controlling terminal when run detached
 * from one (no standard stream is a terminal): a terminal the tracer still holds would let
 * ^C or a hangup on it stop the daemon. A session leader without a terminal (systemd's
 * services) cannot give up being one; there every open of a path a target names uses
 * O_NOCTTY (safeopen.h) and only regular files are opened at all. */
#ifndef PH_SELFGUARD_H
#define PH_SELFGUARD_H

/* Both of the above; never fails (what cannot be done is left as it is). */
void selfguard_init(void);
/* In a child about to exec a COMMAND: RLIMIT_NOFILE as it was before selfguard_init (a high
 * soft limit slows programs that close every possible descriptor, e.g. Python 2's
 * subprocess with close_fds). */
void selfguard_child_restore(void);
#endif
