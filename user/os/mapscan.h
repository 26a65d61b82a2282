/* mapscan: the few mappings of a process that name its interpreter, found at a cost that
 * does not grow with what the process makes /proc/PID/maps hold (issue 12: a process with
 * 2,000 mappings of a file 32 KiB deep has a 68 MB maps file, 0.8 s of kernel time to
 * generate, and the tracer kept all of it in memory).
 * Owns: choosing the mappings wanted (files whose path a predicate accepts, or of one
 * inode), via the PROCMAP_QUERY ioctl of /proc/PID/maps (Linux 6.11+) where the kernel has
 * it, else a streaming read of the text with a byte cap.
 * With PROCMAP_QUERY: only executable file mappings are enumerated (the kernel skips the
 * rest), a file's name is asked once per distinct (device, inode), into a PM_PATH_MAX
 * buffer (a longer name fails with ENAMETOOLONG: such a file is never wanted), at most
 * ph_limits.maps_names names per call; for each
 * wanted executable mapping the mapping at its file offset 0 (the ELF header's, where
 * ld.so and the kernel put it: start - offset) is asked for directly. Kernel facts:
 * include/uapi/linux/fs.h, fs/proc/task_mmu.c (do_procmap_query), Linux 6.11-6.18.
 * Without it: the text is read in 64 KiB pieces, lines parsed one at a time and only the
 * wanted ones kept; lines longer than the piece (paths over PM_PATH_MAX) are skipped;
 * at most ph_limits.maps_bytes bytes are read (the kernel still formats every line read:
 * ~12 ns a byte for deep paths). PYHANG_NO_PROCMAP_QUERY=1 forces this path (tests). */
#ifndef PH_MAPSCAN_H
#define PH_MAPSCAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procmem.h"

struct pm_map_want {
	bool (*path_ok)(const char *path); /* wanted files by path (NULL: none) */
	uint64_t inode;                    /* and the file of this inode (0: none) */
	size_t max;                        /* stop after this many kept (0: 64) */
};

/* The wanted mappings of pid, sorted by address, in out (free with pm_free_maps); each has
 * its path. 0 (out->n may be 0: none wanted) or -1 (maps unreadable: the process is gone
 * or not ours to read). */
int pm_read_maps_wanted(pid_t pid, const struct pm_map_want *want, struct pm_maps *out);
/* Whether the last call could use PROCMAP_QUERY (for tests and the README's claims). */
bool pm_maps_query_used(void);
#endif
