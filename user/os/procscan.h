/* procscan: what the tracer learns about processes and threads from /proc, without
 * touching their memory. Owns: listing processes and threads and their children, comm,
 * argv, the pid namespace ids (NSpid), the fields of /proc/PID/stat (state, parent, start
 * time, last CPU: the one parser of that file), the syscall a thread is blocked in, its
 * context switch count, SigIgn at start-up, and how long a thread has been blocked
 * (se.exec_start on its CPU's scheduler clock). Whether a process runs CPython is the
 * reader's call (py_is_python_process). */
#ifndef PH_PROCSCAN_H
#define PH_PROCSCAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Call fn for each numeric entry of dir (/proc or /proc/PID/task); stops early when fn
 * returns non-zero and returns that value. At most max_entries entries are visited. */
int proc_for_each_pid(const char *dir, size_t max_entries, int (*fn)(pid_t, void *), void *arg);

bool proc_exists(pid_t pid);

/* The fields of /proc/PID/stat the tracer uses (proc(5); fs/proc/array.c do_task_stat,
 * the same order since Linux 2.6; field numbers 1-based as in proc(5)). */
struct proc_stat {
	char state;          /* field 3: R running, S sleeping, D disk sleep, Z zombie, T/t
			      * stopped/traced, X dead, I idle (kernel threads), ... */
	pid_t ppid;          /* field 4: the parent's pid (0: none, init and kernel threads) */
	pid_t session;       /* field 6: the session id; valid when nfields >= 6 */
	uint64_t start_time; /* field 22: clock ticks after boot when it started (the process's
			      * identity with its pid); valid when nfields >= 22 */
	int processor;       /* field 39: the CPU it last ran on, 0-65535; -1 unknown */
	int nfields;         /* the last field number the text held (52 on Linux 5.x/6.x; fewer
			      * when the text was cut) */
};
/* Parse the text of a stat file (NUL-terminated). Field 2, comm, is the process's to choose (prctl PR_SET_NAME, the name of the
 * executable): up to 64 bytes with spaces, '(' and ')' ("a) (b" included), so the fields
 * are read after the LAST ')' of the text. 0 when state and ppid are there (later fields
 * as far as the text goes: nfields says how far); -1 when the text is not a stat line. */
int proc_stat_parse(const char *text, struct proc_stat *out);
/* /proc/PID/stat (tid <= 0) or /proc/PID/task/TID/stat, its first 1,023 bytes (a stat line
 * is at most ~700 bytes: 52 numbers and a 64-byte comm), parsed (proc_stat_parse). 0; -1 when it cannot be read (the process or thread is gone; errno from open/read);
 * -2 when its text does not parse. */
int proc_stat_read(pid_t pid, pid_t tid, struct proc_stat *out);
/* The CPU time thread tid of pid has run, in ns: the first field of
 * /proc/PID/task/TID/schedstat ("run_ns wait_ns timeslices", CONFIG_SCHED_INFO; it grows
 * only while the thread is on a CPU). 0; -1 when it cannot be read. */
int proc_run_ns(pid_t pid, pid_t tid, uint64_t *out);
/* The parent pid of process pid (stat field 4), -1 when unknown (gone, unreadable). */
pid_t proc_parent(pid_t pid);

#define PROC_CHILDREN_TASKS 64 /* threads of one process whose children lists are read */
/* The children of pid: the /proc/PID/task/TID/children lists (Linux 3.5+,
 * CONFIG_PROC_CHILDREN; the first 4 KiB of each) of its first max_tasks threads, at most max
 * pids in out. *more (may be NULL) is set when some were left out (never cleared): more
 * threads, a longer list, or more than max. Pids in our namespace; 0 when pid is gone. */
size_t proc_children(pid_t pid, size_t max_tasks, pid_t *out, size_t max, bool *more);
/* Whether process pid has exited: gone, or a zombie waiting for its parent (state Z or X,
 * stat field 3, proc(5)). */
bool proc_has_exited(pid_t pid);
/* State letter, parent pid and session id of pid: fields 3, 4 and 6 of /proc/PID/stat,
 * read after the last ')' (proc(5)); any pointer may be NULL. 0, or -1 (gone, unreadable). */
int proc_stat_fields(pid_t pid, char *state, pid_t *ppid, pid_t *session);
/* The thread group (process) a task id belongs to (Tgid in /proc/ID/status), or -1. */
pid_t proc_tgid(pid_t id);
#define PROC_MAX_PIDNS_LEVELS 33 /* our level and 32 nested pid namespaces
				  * (MAX_PID_NS_LEVEL, include/linux/pid_namespace.h) */
/* The NSpid line of /proc/PID/status (tid <= 0) or /proc/PID/task/TID/status (Linux 4.1+;
 * readable without ptrace access): the task's id in each pid namespace it is in, from our
 * /proc's namespace to its innermost one, the first max in ids. Returns the number of levels
 * (1: only ours), 0 when unknown (gone, unreadable, an older kernel). */
int proc_nspid(pid_t pid, pid_t tid, pid_t *ids, int max);
/* The pid of a process inside its own pid namespace (last NSpid field), or -1 when it is
 * in ours (Linux 4.1+). */
pid_t proc_ns_pid(pid_t pid);
/* The cgroup v2 path ("0::/..." line of /proc/PID/cgroup; for v1 the first line's path),
 * "" when unknown. */
void proc_cgroup(pid_t pid, char *buf, size_t len);
/* Thread comm (/proc/PID/task/TID/comm), or process comm when tid <= 0. "" on failure. */
void proc_comm(pid_t pid, pid_t tid, char *buf, size_t len);
/* argv of process pid joined by spaces (/proc/PID/cmdline, its first len-1 bytes: the
 * process's own to choose and rewrite), "" when unreadable or empty (kernel threads,
 * zombies). The kernel reads it from the process's memory, as /proc/PID/mem: a page backed
 * by a stalled FUSE server could block it (see safeopen.h for why that is accepted). */
void proc_cmdline(pid_t pid, char *out, size_t len);
/* The process that pidfd fd of thread tid of process pid names: the "Pid:" line of
 * /proc/PID/task/TID/fdinfo/FD (the thread's own fd table: it may have unshared it;
 * pidfd_show_fdinfo, kernel/fork.c, fs/pidfs.c since 6.9; Linux 5.2+), in the pid namespace
 * of our /proc. > 0 that pid; 0 when it is not in our namespace or, on kernels that check,
 * has been reaped (the line says -1; older kernels print the stale number); -1 unknown (no
 * such fd, not a pidfd, unreadable). */
pid_t proc_pidfd_pid(pid_t pid, pid_t tid, int fd);
/* A signal mask line of /proc/PID/status (field "SigIgn", "SigCgt", "SigBlk", ...: 64 bits,
 * bit signo-1; proc(5), fs/proc/array.c render_sigset_t) into *mask. 0; -1 when unreadable. */
int proc_signal_mask(pid_t pid, const char *field, uint64_t *mask);
/* Whether process pid is gone, a zombie, or being killed: SIGKILL pending (SigPnd or
 * ShdPnd of /proc/PID/status). A fatal signal (SIGKILL, or one whose default action ends
 * the process and that has no handler) makes the kernel start a group exit and add SIGKILL
 * to every thread's pending set (kernel/signal.c complete_signal, Linux 2.6+), so a process
 * that a kill group or a test's cleanup is tearing down reads as dying until it is gone. */
bool proc_dying(pid_t pid);
/* SigIgn bit for SIGCHLD from /proc/PID/status. -1 when unreadable. */
int proc_sigchld_ignored(pid_t pid);

struct blocked_syscall {
	long nr;          /* syscall number, -1 when running, -2 unknown */
	uint64_t args[6];
};
/* Parse /proc/PID/task/TID/syscall (Linux 2.6.27+, needs ptrace-read access, which root has). */
int proc_task_syscall(pid_t pid, pid_t tid, struct blocked_syscall *out);
/* CPU the task last ran on (field 39 of /proc/PID/task/TID/stat), or -1. */
int proc_task_last_cpu(pid_t pid, pid_t tid);
/* voluntary + nonvoluntary context switches of a task (/proc/PID/task/TID/status, Linux
 * 2.6.23+): unchanged between two looks means it never ran in between. UINT64_MAX unknown. */
uint64_t proc_task_switches(pid_t pid, pid_t tid);
/* se.exec_start of a task in ns of the scheduler clock (CONFIG_SCHED_DEBUG /proc/.../sched).
 * Pass pid 0 for the calling thread. Returns 0 or -1. */
int proc_task_exec_start_ns(pid_t pid, pid_t tid, uint64_t *out);
#endif
