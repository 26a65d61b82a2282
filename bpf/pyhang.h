/* pyhang.h: definitions shared by the BPF programs (bpf/pyhang.bpf.c) and userspace.
 * Owns: the ring-buffer event layout, the per-thread wait record, the watched-process
 * flags and the statistics slots, and the one copy of every rule both sides execute:
 * which futex operations wait (ph_futex_op_waits), the x86_64 syscall numbers both sides
 * name (PH_NR_*), and the watch- and wait-table slot rules (ph_watch_slot_key,
 * ph_wait_slot_key, ph_watch_slot_where). Fixed-size types only; both sides include it. */
#ifndef PYHANG_H
#define PYHANG_H

/* Functions shared by the BPF programs and userspace: always inlined (no BPF subprogram). */
#define PH_INLINE static inline __attribute__((always_inline))

#define PH_COMM_LEN 16
#define PH_PATH_LEN 256
#define PH_ARGS_LEN 256 /* argv bytes kept for children (power of two) */

/* Linux futex(2) ABI (include/uapi/linux/futex.h, stable since 2.6). */
#define PH_FUTEX_WAIT 0
#define PH_FUTEX_LOCK_PI 6
#define PH_FUTEX_WAIT_BITSET 9
#define PH_FUTEX_WAIT_REQUEUE_PI 11
#define PH_FUTEX_LOCK_PI2 13
#define PH_FUTEX_PRIVATE_FLAG 128
#define PH_FUTEX_CLOCK_REALTIME 256
#define PH_FUTEX_CMD_MASK (~(PH_FUTEX_PRIVATE_FLAG | PH_FUTEX_CLOCK_REALTIME))
/* futex(2) commands that block: WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2. */
#define PH_FUTEX_WAIT_CMDS                                                                          \
	((1u << PH_FUTEX_WAIT) | (1u << PH_FUTEX_LOCK_PI) | (1u << PH_FUTEX_WAIT_BITSET) |           \
	 (1u << PH_FUTEX_WAIT_REQUEUE_PI) | (1u << PH_FUTEX_LOCK_PI2))

/* Whether futex(2) operation op (the second argument, flags included) is a wait: the set the
 * kernel records (futex_enter) and the start-up scan seeds (startscan.c). */
PH_INLINE int ph_futex_op_waits(unsigned int op)
{
	unsigned int cmd = op & PH_FUTEX_CMD_MASK;
	return cmd < 32 && ((1u << cmd) & PH_FUTEX_WAIT_CMDS);
}
/* Pseudo "ops" for the futex2 syscalls (Linux 5.16 futex_waitv, 6.7 futex_wait). */
#define PH_OP_FUTEX_WAITV 0x10000
#define PH_OP_FUTEX_WAIT2 0x10001
/* Pseudo "ops" of a wait for a child (bpf/childwait.bpf.h): uaddr is the awaited pid,
 * PH_CHILD_ANY for any child (wait(-1), a process group), or PH_CHILD_PIDFD | fd for
 * waitid(P_PIDFD, fd): the child the waiter's pidfd fd names (userspace reads which from
 * /proc/PID/fdinfo/FD while the wait lasts; the kernel hook cannot). */
#define PH_OP_CHILD_WAIT4 0x10002
#define PH_OP_CHILD_WAITID 0x10003
#define PH_CHILD_ANY 0xffffffffull
#define PH_CHILD_PIDFD (1ull << 32)
#define PH_CHILD_IS_PIDFD(uaddr) (((uaddr) >> 32) == 1)
/* wait_pending.pid_arg of waitid(P_PIDFD): one child, whose pid the hook does not know */
#define PH_WAIT_PIDFD (-2)

/* x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl; futex_waitv since
 * Linux 5.16, futex_wait since 6.7), as /proc/PID/task/TID/syscall shows them. */
#define PH_NR_SELECT 23
#define PH_NR_WAIT4 61
#define PH_NR_FUTEX 202
#define PH_NR_WAITID 247
#define PH_NR_PSELECT6 270
#define PH_NR_FUTEX_WAITV 449
#define PH_NR_FUTEX_WAIT 455

/* Signals ABI (x86_64 and generic). */
#define PH_SIGCHLD 17
#define PH_SIG_IGN 1
#define PH_SA_NOCLDWAIT 0x00000002
#define PH_ECHILD 10
#define PH_WNOWAIT 0x01000000
#define PH_WNOHANG 0x1 /* include/uapi/linux/wait.h: a wait that never blocks */
#define PH_P_ALL 0
#define PH_P_PID 1
#define PH_P_PIDFD 3 /* waitid on a pidfd (include/uapi/linux/wait.h, Linux 5.4+) */

/* watched map value bits (key: tgid). */
#define PH_W_PYTHON 0x1 /* runs a CPython interpreter */
#define PH_W_SCOPE 0x2  /* selected by -p or a descendant of -- COMMAND */

/* watched map value (key: tgid). gil_lo..gil_hi: the interpreter's GIL state (condition
 * variables and mutexes), set once userspace has read the process; 0 when unknown. */
struct ph_watch {
	unsigned int flags; /* PH_W_* */
	unsigned int pad;
	unsigned long long gil_lo, gil_hi;
};

/* The watch set is a direct-mapped table too (slot tgid % PH_WATCH_SLOTS), so that the
 * filter every futex call of the host goes through is an array lookup. A process whose
 * slot is held by another (pid_max > PH_WATCH_SLOTS) goes to the overflow hash `watched`,
 * and the slot is marked `shared` so that lookups then look there. */
#define PH_WATCH_SLOTS 65536u /* power of two */

struct ph_watch_slot {
	unsigned int tgid;   /* 0: free */
	unsigned int shared; /* some process of this slot lives in the overflow hash */
	struct ph_watch w;
};

/* The slot rules of the watch table, for both halves (bpf watch.bpf.h, user loader.c):
 * process tgid's slot key, and where its entry is given what its slot holds. A process is
 * stored in its slot when the slot is its own or free, else in the overflow hash, and the
 * slot is then marked shared. */
PH_INLINE unsigned int ph_watch_slot_key(unsigned int tgid)
{
	return tgid & (PH_WATCH_SLOTS - 1);
}

enum ph_slot_where {
	PH_SLOT_MINE = 0,     /* the slot holds it */
	PH_SLOT_OVERFLOW = 1, /* the slot is another's and shared: look in the overflow hash */
	PH_SLOT_ABSENT = 2,   /* not watched */
};

PH_INLINE enum ph_slot_where ph_watch_slot_where(const struct ph_watch_slot *s, unsigned int tgid)
{
	if (s->tgid == tgid)
		return PH_SLOT_MINE;
	return s->shared ? PH_SLOT_OVERFLOW : PH_SLOT_ABSENT;
}

/* wait record flags */
#define PH_WF_BEFORE_START 0x1 /* inserted by userspace for a wait found at start-up */
#define PH_WF_REPORTED 0x2     /* long_wait was emitted */
#define PH_WF_DONE 0x4         /* the wait ended (syscall returned or thread exited) */
#define PH_WF_GIL 0x8          /* a wait for the GIL: consecutive ones are merged */
#define PH_WF_FINAL 0x10       /* a GIL wait chain that is over (wait_end sent if reported) */
#define PH_WF_RESUMABLE 0x20   /* the last GIL wait ended without the GIL: timed out, or the
				* GIL's mutex (taken again right away) */
#define PH_WF_DROPPED 0x40     /* its long_wait did not fit in the ring buffer (counted once in
				* PH_STAT_RINGBUF_DROPS); the scanner tries again next time */
#define PH_WF_SIGPEND 0x80     /* the call returned interrupted by a signal (-EINTR/-ERESTART*):
				* what ended the wait is decided next (waits.bpf: a handler runs,
				* the thread or its process exits, or the call is restarted) */

/* A process's identity besides its pid: its start time in clock ticks after boot, as
 * field 22 of /proc/PID/stat shows it (task->start_boottime / (1e9 / USER_HZ), USER_HZ
 * being 100 on every architecture Linux supports). A pid reused by a new process has a
 * different one; exec keeps it. 0: unknown. */
#define PH_NS_PER_TICK 10000000ull

/* A thread that did not get the GIL re-waits within microseconds (its condition wait timed
 * out after the 5 ms switch interval, or it only got the GIL's mutex). One that got the GIL
 * runs before it waits again: a gap of more than this ends the chain. */
#define PH_GIL_MERGE_NS 1000000ull
#define PH_ETIMEDOUT 110

/* Wait records live in a direct-mapped table: slot tid % PH_WAIT_SLOTS (an array lookup
 * costs a few ns, a hash lookup tens). A slot belongs to one thread from its first wait to
 * its exit; a thread whose slot is taken (only possible when pid_max > PH_WAIT_SLOTS) and
 * the waits userspace seeds at start-up go to the overflow hash `waits` instead. */
#define PH_WAIT_SLOTS 65536u /* power of two */

/* Thread tid's slot key in the wait table (wait_slots, wait_slot_bits, sigact_pending). */
PH_INLINE unsigned int ph_wait_slot_key(unsigned int tid)
{
	return tid & (PH_WAIT_SLOTS - 1);
}

/* One futex wait in progress, or the last one ended, of thread `tid`. Times are in jiffies
 * (bpf_jiffies64: reading the clocksource costs ~75 ns per call in our VMs, jiffies ~1 ns),
 * converted to CLOCK_MONOTONIC ns when an event is sent; GIL waits, whose 1 ms merge rule
 * needs better than a tick, also take end_ns from bpf_ktime_get_ns. */
struct ph_wait {
	unsigned long long start_jiffies;
	unsigned long long uaddr;
	unsigned int op;
	unsigned int flags;
	unsigned int tgid;
	unsigned int tid;            /* the owner: 0 for a free slot */
	unsigned long long end_ns;   /* GIL chains: when the last wait of the chain returned */
	unsigned long long proc_start; /* the process's start time (see PH_PROC_START) */
};

/* Bitmap of the slots that have an owner: the scanner visits only those. */
struct ph_slot_bits {
	unsigned long long bits[PH_WAIT_SLOTS / 64];
};

enum ph_event_type {
	PH_EV_LONG_WAIT = 1,
	PH_EV_WAIT_END = 2,
	PH_EV_SIGCHLD = 3,
	PH_EV_CHILD_LOST = 4,
	PH_EV_EXEC = 5,
	PH_EV_EXIT = 6,
	PH_EV_STACK = 7, /* struct ph_stack_event */
	PH_EV_REAP = 8,  /* a wait took a child's status: reaper info for later reports */
	PH_EV_SUPPRESSED = 9, /* events of one process held back by its rate limits (ratelimit.bpf.h) */
	PH_EV_FORK = 10,       /* a multi-threaded process forked (fork.bpf.h) */
	PH_EV_CHILD_DIED = 11, /* a child of a watched process died abnormally (fork.bpf.h) */
};

/* Per-process rate limits (bpf/ratelimit.bpf.h): the kinds of event one process can make
 * the kernel send at will, each with its own token bucket. */
enum ph_rl_kind {
	PH_RL_SIGCHLD = 0,    /* sigchld_ignored (rt_sigaction changes), with their stacks */
	PH_RL_CHILD_LOST = 1, /* child_status_lost, with their stacks */
	PH_RL_REAP = 2,       /* the reaper stacks of waits for any child */
	PH_RL_EXEC = 3,       /* exec events of the children of one process (key: the parent) */
	PH_RL_KINDS = 4,      /* power of two: used as an index mask */
};

/* SIGCHLD disposition classes, in the order userspace prints them. */
enum ph_sigchld_class {
	PH_SIGCHLD_DEFAULT = 0, /* handled or default: children become zombies */
	PH_SIGCHLD_IGN = 1,     /* sa_handler == SIG_IGN: children are auto-reaped */
	PH_SIGCHLD_NOCLDWAIT = 2, /* SA_NOCLDWAIT with a handler: children are auto-reaped */
};

enum ph_lost_cause {
	PH_LOST_SIGCHLD_IGNORED = 1,
	PH_LOST_REAPED_ELSEWHERE = 2,
};

/* Why a wait ended. */
enum ph_end_reason {
	PH_END_RETURNED = 0,
	PH_END_THREAD_EXIT = 1,   /* end_code: 0 (the thread exited, its process lives on) */
	PH_END_SIGNAL = 2,        /* interrupted by a signal whose handler ran; end_code: signo,
				   * 0 when not known */
	PH_END_PROCESS_EXIT = 3,  /* its process exited while it was blocked; end_code: the
				   * process's exit code, kernel encoding (see ph_child_exit) */
};

/* A child's exit, recorded at sched_process_exit when its parent is watched; also a marker
 * for a child whose loss was reported (so later waits for it stay silent). */
#define PH_CX_EXIT_KNOWN 0x1
#define PH_CX_REPORTED 0x2
struct ph_child_exit {
	unsigned long long exit_ns;
	unsigned int parent_tgid;
	int exit_code; /* kernel encoding: (status << 8) | termsig | 0x80 core */
	char comm[PH_COMM_LEN];
	unsigned int flags; /* PH_CX_* */
	unsigned int host_pid; /* the child's pid in the host namespace (the key is the pid its
				* parent knows it by: they differ inside containers) */
	unsigned int pad;
	unsigned long long proc_start; /* the child's identity (see PH_NS_PER_TICK) */
};

/* A fork of a multi-threaded watched process not followed by an exec (yet): map `forks`,
 * key the child's host pid (bpf/fork.bpf.h). */
struct ph_fork_rec {
	unsigned int parent_tgid;
	unsigned int parent_threads; /* signal->nr_threads of the parent at the fork */
	unsigned int forker_tid;
	unsigned int pad;
	unsigned long long child_start; /* the child's identity (see PH_NS_PER_TICK) */
	unsigned long long fork_ns;     /* CLOCK_MONOTONIC */
};

/* A successful wait that took a child's status (key: child pid). */
struct ph_reap {
	unsigned long long reap_ns;
	unsigned int tgid;
	unsigned int tid;
	int status;
	unsigned int pad;
};

struct ph_event {
	unsigned int type;
	unsigned int pid; /* tgid */
	unsigned int tid;
	unsigned int pad;
	unsigned long long ts_ns; /* CLOCK_MONOTONIC */
	unsigned long long proc_start; /* identity of process pid (see PH_NS_PER_TICK) */
	unsigned long long stack_ts;   /* ts_ns of the ph_stack_event sent for this event (0:
					* none): pairs them exactly, whichever of the two was lost */
	char comm[PH_COMM_LEN];
	union {
		struct {
			unsigned long long start_ns;
			unsigned long long uaddr;
			unsigned int op;
			unsigned int flags;
			unsigned int end_reason; /* enum ph_end_reason */
			unsigned int end_code;   /* see enum ph_end_reason */
		} wait;
		struct {
			unsigned int old_class;
			unsigned int new_class;
			unsigned long long handler;
			unsigned long long sa_flags;
		} sigchld;
		struct {
			unsigned int cause;
			unsigned int child_pid;
			int child_known; /* 1 if exit info below is valid */
			int exit_code;
			unsigned long long exit_ns;
			char child_comm[PH_COMM_LEN];
			unsigned int reaper_tid;
			unsigned int pad;
			unsigned long long reap_ns;
			int wait_pid_arg; /* pid argument of the failing wait (-1: any child) */
			unsigned int syscall; /* 0 wait4, 1 waitid */
			unsigned int child_host_pid; /* 0: unknown (child_pid is the waiter's view) */
			unsigned int pad2;
			unsigned long long child_start; /* the child's identity, 0 if not known */
		} lost;
		struct {
			unsigned int python; /* interpreter basename looks like python* */
			unsigned int parent_tgid;
			unsigned int args_len; /* bytes of args copied (NUL-separated argv) */
			unsigned int parent_watched; /* the parent is a watched process */
			unsigned int sigchld_ignored; /* SIGCHLD is SIG_IGN after the exec (inherited);
						       * read for every exec, Python or not */
			unsigned int uid; /* real uid of the process after the exec */
			char filename[PH_PATH_LEN];
			char args[PH_ARGS_LEN];
			char parent_comm[PH_COMM_LEN]; /* the parent's comm at the exec */
		} exec;
		struct { /* PH_EV_FORK: pid/tid/comm are the parent's forking thread */
			unsigned int child_pid;      /* host pid of the new process */
			unsigned int parent_threads; /* the parent's threads at the fork */
			unsigned long long child_start; /* the child's identity */
		} fork;
		struct { /* PH_EV_CHILD_DIED: pid/comm are the parent's, tid 0 */
			unsigned int child_pid;    /* host pid */
			unsigned int child_ns_pid; /* as the parent knows it (0: unknown) */
			int exit_code;             /* kernel encoding (see ph_child_exit) */
			unsigned int oom;          /* 1: the kernel's OOM killer chose it */
			unsigned long long child_start;
			char child_comm[PH_COMM_LEN];
		} died;
		struct {
			unsigned int counts[PH_RL_KINDS]; /* events held back, by enum ph_rl_kind */
			unsigned long long since_ns; /* the first of them (CLOCK_MONOTONIC) */
		} suppressed;
	};
};


/* ------------------------------------------------------------------ Python stacks in BPF
 * For instantaneous events (rt_sigaction, a wait that got ECHILD, a wait that reaped a
 * child) the Python stack must be taken at that moment: the thread runs on at once and a
 * module's top-level code object is freed right after its import. Userspace describes each
 * Python process (layout offsets and addresses, from user/python/pylayout.c) in the `pyprocs` map;
 * the BPF side finds the current thread's PyThreadState, walks its frames and copies what
 * names them: code address, position, first line, and copies of the name, file name and
 * line table. Userspace turns that into function/file/line with the same decoders it uses
 * for live reads. */
#define PH_MAX_PYFRAMES 64 /* power of two: used as an index mask */
#define PH_MAX_PYTHREADS 256 /* thread list walk bound */
#define PH_NAME_LEN 64
#define PH_FILE_LEN 128
#define PH_LINETABLE_LEN 512

enum ph_frame_kind { PH_FRAMES_OBJECTS = 0, PH_FRAMES_CFRAME = 1, PH_FRAMES_CURRENT = 2 };
enum ph_str_kind { PH_STR_BYTES = 0, PH_STR_PEP393 = 1 };

struct ph_pyproc {
	unsigned long long interp;    /* main PyInterpreterState */
	unsigned long long code_type; /* &PyCode_Type */
	unsigned int version_hex;
	unsigned short ts_head, ts_next, ts_thread_id, ts_native_tid; /* native 0: absent */
	unsigned short ts_frame, cframe_current;
	unsigned short f_back, f_code, f_pos, f_owner; /* f_owner 0: absent */
	unsigned short co_filename, co_name, co_qualname, co_firstlineno, co_linetable;
	unsigned short co_code_adaptive, co_firsttraceable;
	unsigned short ob_type;
	unsigned short str_length, str_state, str_ascii_data, str_compact_data;
	unsigned short bytes_size, bytes_data;
	unsigned char frame_kind;   /* enum ph_frame_kind */
	unsigned char pos_is_ptr;   /* f_pos is an instruction pointer (3.11+), else int f_lasti */
	unsigned char owner_generator, owner_cstack; /* 0xff: none */
	unsigned char str_kind;     /* enum ph_str_kind */
	unsigned char pad[3];
};

/* A copied string: raw bytes of the object's data; kind 0 = ASCII/bytes, 1/2/4 = PEP 393
 * character width (latin-1, UCS-2, UCS-4). len = bytes copied (capped). */
struct ph_pystr_hdr {
	unsigned short len;
	unsigned char kind;
	unsigned char truncated;
};

struct ph_pyframe {
	unsigned long long code;
	unsigned long long pos;  /* f_lasti (<= 3.10) or byte offset from the code start (3.11+) */
	int firstlineno;
	unsigned short linetable_len; /* bytes copied */
	unsigned short linetable_full_len_capped; /* real size, capped at 65535 */
	struct ph_pystr_hdr name_hdr, file_hdr;
	char name[PH_NAME_LEN];
	char file[PH_FILE_LEN];
	unsigned char linetable[PH_LINETABLE_LEN];
};

enum ph_stack_status {
	PH_STACK_OK = 0,
	PH_STACK_NOT_PYTHON = 1,   /* no pyprocs entry: layout unknown yet */
	PH_STACK_NO_THREAD = 2,    /* current thread not found in the interpreter's list */
	PH_STACK_READ_ERROR = 3,
};

/* Ring-buffer record sent just before the event it belongs to (same thread). */
struct ph_stack_event {
	unsigned int type; /* PH_EV_STACK */
	unsigned int pid;
	unsigned int tid;
	unsigned int for_type;  /* the ph_event_type this stack belongs to */
	unsigned int status;    /* enum ph_stack_status */
	unsigned int nframes;
	unsigned int truncated; /* more frames than PH_MAX_PYFRAMES */
	unsigned int child_pid; /* for reaps: the child that was taken */
	unsigned long long tstate;
	unsigned long long ts_ns;
	unsigned long long proc_start; /* identity of process pid (see PH_NS_PER_TICK) */
	struct ph_pyframe frames[PH_MAX_PYFRAMES];
};

/* Counters in a per-CPU array; userspace sums them. */
enum ph_stat {
	PH_STAT_RINGBUF_DROPS = 0, /* events lost: ring buffer full */
	PH_STAT_WAITS_FULL,        /* futex waits not tracked: map full */
	PH_STAT_MAP_FULL,          /* other map insert failures */
	PH_STAT_TICKS,             /* scanner runs */
	PH_STAT_MAX,
};

#endif
