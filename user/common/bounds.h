/* bounds: the caps that bound what one watched process can cost the tracer (issue 12),
 * settable with --limit NAME=VALUE. Owns their values, defaults, names and parsing; the
 * code each one bounds reads them from `ph_limits`. Every cap is also a loss: what lies
 * beyond it is not read (the README's Security section says what each costs). */
#ifndef PH_BOUNDS_H
#define PH_BOUNDS_H
#include <stddef.h>
#include <stdint.h>

struct ph_limits {
	/* /proc/PID/maps, kernels without PROCMAP_QUERY (< 6.11): bytes read at most */
	uint64_t maps_bytes;
	/* file names asked of the kernel for one process's executable mappings (PROCMAP_QUERY,
	 * one per distinct file); beyond it the rest are not looked at */
	uint64_t maps_names;
	/* bytes read from one ELF file (headers, symbol and string tables) while looking for
	 * the interpreter's symbols; a file that needs more is treated as having none */
	uint64_t elf_bytes;
	/* bytes of a process's .bss/.data scanned for the interpreter state when the file
	 * has no symbols (also bounded by the size of the segment that holds them), and
	 * scan_bytes / 256 candidate pointers followed */
	uint64_t scan_bytes;
	/* threads of one process listed from /proc/PID/task */
	uint64_t tasks;
};

extern struct ph_limits ph_limits;

/* Parses "NAME=VALUE" (VALUE with an optional K/M/G suffix) into ph_limits. 0, or -1 with
 * a reason in why. */
int limits_set(const char *arg, char *why, size_t whylen);
/* "name=value name=value ..." of every limit, for --help. */
void limits_describe(char *buf, size_t len);
#endif
