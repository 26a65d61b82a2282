/* loader: the BPF side seen from userspace. Owns: environment checks (in envcheck.c:
 * privileges, BTF, tracefs), opening/configuring/loading/attaching the skeleton, feature
 * probes with their fallbacks (optional futex2 tracepoints; perf-event scanner vs. scans run
 * from userspace), and the map operations the tracer needs (watch a process, seed a wait,
 * read counters). */
#ifndef PH_LOADER_H
#define PH_LOADER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyhang.h"

struct loader_config {
	uint64_t threshold_ns;
	bool trace_all_procs;
	bool host_wide;
	bool follow_children;
	uint32_t ringbuf_bytes; /* 0: the size bpf/pyhang.bpf.c declares */
};

/* --ringbuf-size bounds: a stack record is ~35 KiB, so the smallest ring still holds one
 * (the kernel rounds nothing: the size must be a power of two and a page multiple). */
#define LOADER_RINGBUF_MIN (64u << 10)
#define LOADER_RINGBUF_MAX (1u << 30)
/* Parse "SIZE[K|M|G]" (bytes, binary suffixes). 0 with *out set, or -1 with a one-line
 * reason in err (not a number, not a power of two, not a page multiple, out of range). */
int loader_parse_ringbuf_size(const char *s, uint32_t *out, char *err, size_t errlen);
/* The size bpf/pyhang.bpf.c declares (the default), 0 if it cannot be read. */
uint32_t loader_default_ringbuf_size(void);

/* For --version: every program (type as libbpf names it, e.g. "tracepoint", its name and
 * section) and every map (type, name, max_entries) of the embedded BPF object, which is
 * parsed but not loaded (no privileges needed). 0, or -1 when it cannot be parsed. */
typedef void (*loader_part_fn)(void *arg, bool is_map, const char *type, const char *name,
			       const char *section, uint32_t max_entries);
int loader_for_each_object_part(loader_part_fn fn, void *arg);


struct loader;
/* The ring buffer's size in bytes once loaded. */
uint32_t loader_ringbuf_size(const struct loader *l);

/* Environment checks; on failure writes a one-line reason into err and returns -1. */
int loader_check_environment(char *err, size_t errlen);
struct loader *loader_open(const struct loader_config *cfg, char *err, size_t errlen);
void loader_close(struct loader *l);

/* Ring buffer: fn is called for each record (struct ph_event or struct ph_stack_event,
 * told apart by their first field, the type). */
typedef int (*loader_event_fn)(void *arg, const void *data, size_t size);
int loader_setup_ringbuf(struct loader *l, loader_event_fn fn, void *arg);
/* Wait up to timeout_ms for events; returns number consumed or -errno. */
int loader_poll(struct loader *l, int timeout_ms);
/* Milliseconds until the next userspace scan is due (fallback mode), or -1 when the kernel
 * scans by itself. loader_scan_if_due runs it. */
int loader_scan_due_in_ms(struct loader *l);
void loader_scan_if_due(struct loader *l);
/* How long waits are scanned for: the scanner's period in ns, and its mechanism. */
uint64_t loader_scan_period_ns(const struct loader *l);
const char *loader_scan_mechanism(const struct loader *l);

int loader_watch(struct loader *l, pid_t tgid, uint32_t flags);
int loader_watch_add_flags(struct loader *l, pid_t tgid, uint32_t flags);
/* The PH_W_* flags of a watched process, 0 when it is not watched. */
/* The kernel's record of child's fork from a multi-threaded watched parent, while the
 * child has neither exec'd nor exited (bpf/fork.bpf.h). 0, or -1 with errno (ENOENT). */
int loader_fork_of(struct loader *l, pid_t child, struct ph_fork_rec *out);
uint32_t loader_watch_flags(struct loader *l, pid_t tgid);
/* Futex waits in [lo, hi) are GIL waits for this process (merged into one wait). */
int loader_set_gil_range(struct loader *l, pid_t tgid, uint64_t lo, uint64_t hi);
/* Seed a wait that began before tracing started. */
/* Describe a Python process to the BPF stack walker (see struct ph_pyproc). */
int loader_set_pyproc(struct loader *l, pid_t tgid, const struct ph_pyproc *pp);
/* Take that description back (pid now belongs to another process). */
void loader_forget_pyproc(struct loader *l, pid_t tgid);
int loader_seed_wait(struct loader *l, pid_t tgid, uint64_t proc_start, pid_t tid, uint64_t start_ns,
		     uint64_t uaddr, uint32_t op);

/* Remove a seeded wait if it is still the one seeded (the thread did not start another). */
int loader_unseed_wait(struct loader *l, pid_t tid);

/* The kernel's record of thread tid's current or last wait (struct ph_wait: its slot, else
 * the overflow hash): 0 with *out filled, -1 when the kernel holds none for tid. A copy
 * taken while the kernel may change it: each field is as it was at some moment of the copy. */
int loader_wait_record(struct loader *l, pid_t tid, struct ph_wait *out);

struct loader_stats {
	uint64_t counters[PH_STAT_MAX];
};
int loader_read_stats(struct loader *l, struct loader_stats *out);

/* For --metrics-addr: the ring buffer's epoll fd (readable when records are waiting; then
 * loader_poll(l, 0) consumes them), and every loaded BPF program with its name and fd. */
int loader_epoll_fd(struct loader *l);
typedef void (*loader_prog_fn)(void *arg, const char *name, int prog_fd);
void loader_for_each_prog(struct loader *l, loader_prog_fn fn, void *arg);
#endif
