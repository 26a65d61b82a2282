/* syscall_names: x86_64 system call names (see syscall_names.c). */
#ifndef PH_SYSCALL_NAMES_H
#define PH_SYSCALL_NAMES_H

/* The name of x86_64 system call nr ("wait4" for 61), NULL when it has none. */
const char *syscall_name(long nr);
#endif
