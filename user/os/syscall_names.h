/* syscall_names: x86_64 system call names (see syscall_names.c). */
#ifndef PH_SYSCALL_NAMES_H
#define PH_SYSCALL_NAMES_H

/* The name of x86_64 system call nr ("wait4" for 61), NULL when it has none. */
const char *syscall_name(long nr);

/* What a thread blocked in system call nr waits for, by the call alone: a sleep
 * (nanosleep, clock_nanosleep, pause), a child (wait4, waitid), I/O (reads, writes,
 * sockets, poll/select/epoll, flock, io_uring_enter), or something else. A select() with
 * no fd sets (time.sleep() <= 3.10) is told apart by its arguments, not here. */
enum syscall_class { SC_OTHER, SC_SLEEP, SC_CHILD, SC_IO };
enum syscall_class syscall_class(long nr);
#endif
