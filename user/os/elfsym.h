/* elfsym: symbols and sections of an ELF64 file, read with bounded pread(2) (the file may be
 * hostile or truncated), and the load bias of that file in a process, computed from its maps.
 * Owns: .dynsym and .symtab lookup, section lookup by name (.PyRuntime, .bss, .data),
 * reading file bytes at a virtual address, and load-bias computation.
 * Facts (x86_64 ELF64, any glibc): a non-PIE ET_EXEC needs no bias; for ET_DYN the bias is
 * the start of the mapping of the first PT_LOAD segment minus its page-aligned p_vaddr. */
#ifndef PH_ELFSYM_H
#define PH_ELFSYM_H
#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "procmem.h"

#define ELF_MAX_TABLE (64u << 20) /* symbol or string table size cap */
#define ELF_MAX_SECTIONS 4096u
#define ELF_MAX_PHDRS 512u
#define ELF_MAX_SHSTR (64u << 10) /* section names (CPython's: ~300 bytes) */

/* A symbol table and its string table, located in the file, never held whole: a search
 * reads the symbols in chunks and the names through a small block cache (issue 12). */
struct elf_symtab {
	uint64_t sym_off, n;     /* n entries of Elf64_Sym at sym_off */
	uint64_t str_off, str_len;
	bool loaded;             /* located (n = 0: none, or out of bounds) */
};

struct elf_file {
	int fd;
	uint64_t file_size;
	uint64_t inode;
	uint64_t dev;      /* with inode, size and mtime: which file this is (caches) */
	int64_t mtime_ns;
	uint16_t type; /* ET_EXEC or ET_DYN */
	Elf64_Phdr *ph;
	size_t phnum;
	Elf64_Shdr *sh;
	size_t shnum;
	char *shstr;
	size_t shstr_len;
	struct elf_symtab dynsym, symtab;
	/* Bytes this file may still make us read (ph_limits.elf_bytes at open): headers,
	 * symbols and names all count; over_budget once a read was refused for it. */
	uint64_t budget;
	bool over_budget;
};

/* Takes ownership of fd (closed by elf_close, also on failure). 0 or -1 with message. */
int elf_open_fd(struct elf_file *ef, int fd, char *err, size_t errlen);
void elf_close(struct elf_file *ef);
bool elf_has_symtab(const struct elf_file *ef);
/* Looks each names[i] up (.dynsym first, then .symtab); values[i] = st_value or 0 when
 * absent. Returns how many were found. Memory used: fixed (~300 KiB), whatever the tables'
 * sizes; bytes read: at most ef->budget (ef->over_budget tells if that cut the search).
 * The .dynsym and its strings must lie in a PT_LOAD segment's file range (they are
 * loaded: the mapping holds them), .symtab in the file. */
size_t elf_lookup_symbols(struct elf_file *ef, const char *const *names, size_t n,
			  uint64_t *values, uint64_t *sizes);
/* Calls fn(ctx, name, sym) for each defined, named symbol of .symtab until fn returns
 * nonzero. Streamed (fixed memory; reads count against ef->budget); names are cut to 255
 * bytes. 0 (every symbol was passed, or fn stopped the walk), or -1 when the file has no
 * readable .symtab or a read failed part-way (an error, or ef->budget used up): then some
 * symbols were never passed. */
int elf_each_symtab_symbol(struct elf_file *ef,
			   int (*fn)(void *ctx, const char *name, const Elf64_Sym *s), void *ctx);
/* 0 and the section's virtual address/size, or -1. */
int elf_find_section(const struct elf_file *ef, const char *name, uint64_t *addr,
		     uint64_t *size);
/* size, cut to what the PT_LOAD segment holding [addr, addr + size) spans in memory
 * (p_memsz): a section cannot be larger than its mapping. 0 if no segment holds addr. */
uint64_t elf_clamp_to_load(const struct elf_file *ef, uint64_t addr, uint64_t size);
/* Reads len bytes of file content that is mapped at virtual address vaddr (unbiased). */
int elf_read_vaddr(const struct elf_file *ef, uint64_t vaddr, void *buf, size_t len);
/* Load bias of this file in a process whose maps are given; the mapping is identified by
 * path (as the process sees it) and, when known, inode. 0 or -1. */
int elf_load_bias(const struct elf_file *ef, const struct pm_maps *maps, const char *path,
		  uint64_t *bias);

/* Where a file goes in memory: all elf_load_bias needs of it, kept so that the bias in
 * another process can be found without the file. */
struct elf_placement {
	bool fixed;                        /* ET_EXEC: loaded at its link addresses */
	uint64_t page_offset, page_vaddr;  /* of the first PT_LOAD, page-aligned */
	uint64_t inode;
};
int elf_placement_of(const struct elf_file *ef, struct elf_placement *out);
/* elf_load_bias from a placement. 0 or -1. */
int elf_bias_in_maps(const struct elf_placement *pl, const struct pm_maps *maps, const char *path,
		     uint64_t *bias);
#endif
