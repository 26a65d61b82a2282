/* procmem: access to another process's memory and /proc files, without stopping it.
 * Owns: bounded pread(2) of /proc/PID/mem (one fd kept open per process, a per-snapshot page
 * cache so a stack walk costs few system calls), /proc/PID/maps parsing, opening the target's
 * files through /proc/PID/root (other mount namespaces), the process start time (field 22 of
 * /proc/PID/stat) that keys every cache, and small bounded reads of /proc text files.
 * Kernel facts (Linux >= 3.2): reading /proc/PID/mem needs PTRACE_MODE_ATTACH permission but
 * never attaches or stops the target; after the target exits or execs, reads of an fd opened
 * before return 0 bytes (the old mm is gone), which we report as PM_GONE.
 * Seam (tests only): pm_open_backend() makes a procmem whose memory comes from a caller's
 * function instead of /proc/PID/mem (the fuzzers serve a list of (address, bytes) regions,
 * tests/fuzz/seed records what the reader touches). Only pm_read_direct() consults it (one
 * NULL test per pread, i.e. per cache miss); the block cache and every bound of pm_read
 * above it run unchanged. A procmem from pm_open() never has a backend. */
#ifndef PH_PROCMEM_H
#define PH_PROCMEM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define PM_PAGE 4096u             /* memory page (mapping granularity) */
#ifndef PM_BLOCK
#define PM_BLOCK 4096u            /* cache granule (measured: 1-2 KiB and 8-16 KiB are slower) */
#endif
#ifndef PM_CACHE_SLOTS                /* the fuzzers build with fewer (faster to allocate) */
#define PM_CACHE_SLOTS 8192u      /* blocks cached per snapshot (32 MiB at most) */
#endif
#define PM_MAX_READ (64u << 20)   /* no single read may ask for more */
#define PM_MAX_MAPS 65536u
#define PM_PATH_MAX 4096u

enum pm_status { PM_OK = 0, PM_FAULT = -1, PM_GONE = -2 };

/* A slot of the cache (set-associative by block address, see procmem.c). */
struct pm_slot {
	uint64_t addr;   /* block address */
	uint64_t gen;    /* snapshot generation the content belongs to */
	uint32_t valid;  /* bytes of the block that could be read (0 = unreadable) */
	uint32_t block;  /* its data: blocks[block], meaningful only while gen is current */
};

/* Blocks read in the current snapshot. One cache may serve many processes read one after
 * the other: every snapshot of any of them takes a new generation, which voids the rest.
 * The data blocks are a pool that each snapshot reuses from the start (every slot is void
 * then), so reading a few blocks of a new process allocates and faults in nothing. */
struct pm_cache {
	struct pm_slot *slots;  /* PM_CACHE_SLOTS slots, allocated on first use */
	unsigned char **blocks; /* the pool: nblocks blocks of PM_BLOCK bytes */
	uint32_t nblocks;
	uint32_t used;          /* blocks of the pool given out in generation pool_gen */
	uint64_t pool_gen;
	uint64_t gen;           /* never wraps in practice (64 bits) */
	uint32_t victim;        /* the way a full set gives up next (in turn) */
};

/* Another source of memory (see the seam above): read exactly len bytes at addr into buf and
 * return PM_OK, PM_FAULT or PM_GONE. Called with 0 < len <= PM_MAX_READ only. */
typedef int (*pm_backend_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

struct procmem {
	pid_t pid;
	int memfd;
	int pidfd;             /* the process itself (pidfd_open, Linux 5.3+), -1 if none */
	uint64_t start_time;   /* clock ticks after boot, field 22 of /proc/PID/stat */
	bool gone;             /* a read returned 0: the process exited or exec'd */
	struct pm_cache *cache; /* &own, or one shared by many processes (see pm_use_cache) */
	struct pm_cache own;
	uint64_t reads;        /* pread calls made (for the benchmark) */
	uint32_t last_slot;    /* 1 + the cache slot of the last pm_read, 0: none */
	pm_backend_fn backend; /* NULL: /proc/PID/mem (always, outside tests) */
	void *backend_ctx;
};

struct pm_map {
	uint64_t start, end, offset;
	uint64_t inode;
	uint64_t dev;  /* makedev(MAJ, MIN) of the file's device, as stat(2) would give it */
	char perms[5];
	char *path; /* NULL for anonymous mappings; may be "[heap]" etc. */
};

struct pm_maps {
	struct pm_map *v;
	size_t n;
};

/* Opens the process (a pidfd, then /proc/PID/mem) and reads its start time. 0 or -1 with a
 * message in err. */
int pm_open(struct procmem *pm, pid_t pid, char *err, size_t errlen);
void pm_close(struct procmem *pm);
/* A procmem served by backend(ctx, ...) instead of a process (tests); pid is only a label. */
void pm_open_backend(struct procmem *pm, pid_t pid, pm_backend_fn backend, void *ctx);
/* Forget cached blocks: the next reads see the process as it is now. */
void pm_new_snapshot(struct procmem *pm);
/* The current snapshot generation (keys other per-snapshot state). */
uint64_t pm_gen(const struct procmem *pm);
/* Share a cache owned by the caller (it must outlive pm); NULL goes back to pm's own. */
void pm_use_cache(struct procmem *pm, struct pm_cache *cache);
void pm_cache_free(struct pm_cache *cache);
/* Frees the pool's blocks beyond keep_blocks (and voids what the cache holds): a small pool
 * is kept, as allocating and faulting in fresh memory for every few reads costs more than
 * the reads. */
void pm_cache_trim(struct pm_cache *cache, uint32_t keep_blocks);
/* Reads exactly len bytes at addr (through the page cache when it fits in a few pages).
 * Returns PM_OK, PM_FAULT (unmapped/short) or PM_GONE (process exited or exec'd). */
int pm_read(struct procmem *pm, uint64_t addr, void *buf, size_t len);
/* Reads without the cache (for large blocks read once). */
int pm_read_direct(struct procmem *pm, uint64_t addr, void *buf, size_t len);
int pm_read_u64(struct procmem *pm, uint64_t addr, uint64_t *out);
int pm_read_u32(struct procmem *pm, uint64_t addr, uint32_t *out);

/* Field 22 of /proc/PID/stat (start time in clock ticks after boot; procscan.h
 * proc_stat_read). 0 or -1. */
int pm_start_time(pid_t pid, uint64_t *out);
/* Whether the process still is the one we opened and has not exited (mem still readable;
 * its pidfd not readable, else the same start time). */
bool pm_still_same(struct procmem *pm);

/* The whole of /proc/PID/maps (up to 64 MiB of text and every path): its cost is what the
 * process makes it. Not for watched processes: pm_read_maps_wanted (mapscan.h) is
 * bounded (issue 12). */
int pm_read_maps(pid_t pid, struct pm_maps *out);
void pm_free_maps(struct pm_maps *m);
/* Parses one line [line, end) of /proc/PID/maps (no newline) into m; m->path malloc'd or
 * NULL. 0 or -1. */
int pm_parse_map_line(const char *line, const char *end, struct pm_map *m);
const struct pm_map *pm_find_map(const struct pm_maps *m, uint64_t addr);

/* Opening and stat of paths a target names: safeopen.h. */
/* Reads at most cap-1 bytes of a small file into buf, NUL-terminated. Bytes read or -1. */
ssize_t pm_read_text_file(const char *path, char *buf, size_t cap);
/* Task ids of the process (from /proc/PID/task), sorted; at most ph_limits.tasks (the
 * first met). 0 or -1; *out is malloc'd. */
int pm_list_tasks(pid_t pid, pid_t **out, size_t *n);
#endif
