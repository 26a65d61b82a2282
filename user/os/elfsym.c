/* elfsym: bounded ELF64 symbol/section reading and load bias (see elfsym.h). */
#include "elfsym.h"

#include "bounds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_exact(int fd, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;
	for (int tries = 0; done < len && tries < 1024; tries++) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return done == len ? 0 : -1;
}

static bool in_file(const struct elf_file *ef, uint64_t off, uint64_t len)
{
	return off <= ef->file_size && len <= ef->file_size - off;
}

/* read_exact within the file's budget of bytes (see elf_file.budget). */
static int elf_pread(struct elf_file *ef, uint64_t off, void *buf, size_t len)
{
	if (len > ef->budget) {
		ef->over_budget = true;
		return -1;
	}
	ef->budget -= len;
	return read_exact(ef->fd, off, buf, len);
}

/* Reads [off, off+len) of the file into a new buffer with a NUL appended (headers only:
 * len is at most ELF_MAX_SECTIONS section headers). */
static void *read_block(struct elf_file *ef, uint64_t off, uint64_t len)
{
	if (len > ELF_MAX_TABLE || !in_file(ef, off, len))
		return NULL;
	char *p = malloc((size_t)len + 1);
	if (!p)
		return NULL;
	if (elf_pread(ef, off, p, (size_t)len) != 0) {
		free(p);
		return NULL;
	}
	p[len] = '\0';
	return p;
}

static int elf_check_header(const Elf64_Ehdr *eh, char *err, size_t errlen)
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
		snprintf(err, errlen, "not an ELF file");
		return -1;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64) {
		snprintf(err, errlen, "not an x86_64 ELF64 file");
		return -1;
	}
	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN) {
		snprintf(err, errlen, "ELF file is neither an executable nor a shared object");
		return -1;
	}
	if ((eh->e_shnum && eh->e_shentsize != sizeof(Elf64_Shdr)) ||
	    (eh->e_phnum && eh->e_phentsize != sizeof(Elf64_Phdr))) {
		snprintf(err, errlen, "ELF file has unexpected header entry sizes");
		return -1;
	}
	return 0;
}

static int elf_load_headers(struct elf_file *ef, const Elf64_Ehdr *eh)
{
	ef->phnum = eh->e_phnum;
	ef->shnum = eh->e_shnum;
	if (ef->phnum > ELF_MAX_PHDRS || ef->shnum > ELF_MAX_SECTIONS)
		return -1;
	ef->ph = read_block(ef, eh->e_phoff, ef->phnum * sizeof(Elf64_Phdr));
	if (!ef->ph)
		return -1;
	if (ef->shnum == 0)
		return 0;
	ef->sh = read_block(ef, eh->e_shoff, ef->shnum * sizeof(Elf64_Shdr));
	if (!ef->sh)
		return -1;
	if (eh->e_shstrndx < ef->shnum) {
		const Elf64_Shdr *s = &ef->sh[eh->e_shstrndx];
		ef->shstr = s->sh_size <= ELF_MAX_SHSTR ? read_block(ef, s->sh_offset, s->sh_size) : NULL;
		ef->shstr_len = ef->shstr ? s->sh_size : 0;
	}
	return 0;
}

int elf_open_fd(struct elf_file *ef, int fd, char *err, size_t errlen)
{
	memset(ef, 0, sizeof(*ef));
	ef->fd = fd;
	struct stat st;
	Elf64_Ehdr eh;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot open ELF file");
		elf_close(ef);
		return -1;
	}
	ef->file_size = (uint64_t)st.st_size;
	ef->inode = (uint64_t)st.st_ino;
	ef->dev = (uint64_t)st.st_dev;
	ef->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	ef->budget = ph_limits.elf_bytes;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		elf_close(ef);
		return -1;
	}
	if (elf_pread(ef, 0, &eh, sizeof(eh)) != 0) {
		snprintf(err, errlen, "ELF file too short");
		elf_close(ef);
		return -1;
	}
	if (elf_check_header(&eh, err, errlen) != 0) {
		elf_close(ef);
		return -1;
	}
	ef->type = eh.e_type;
	if (elf_load_headers(ef, &eh) != 0) {
		snprintf(err, errlen, "ELF headers out of bounds");
		elf_close(ef);
		return -1;
	}
	return 0;
}

void elf_close(struct elf_file *ef)
{
	if (ef->fd >= 0)
		close(ef->fd);
	free(ef->ph);
	free(ef->sh);
	free(ef->shstr);
	memset(ef, 0, sizeof(*ef));
	ef->fd = -1;
}

static const Elf64_Shdr *elf_section_of_type(const struct elf_file *ef, uint32_t type)
{
	for (size_t i = 0; i < ef->shnum; i++)
		if (ef->sh[i].sh_type == type)
			return &ef->sh[i];
	return NULL;
}

bool elf_has_symtab(const struct elf_file *ef)
{
	return elf_section_of_type(ef, SHT_SYMTAB) != NULL;
}

/* Whether [off, off+len) of the file is within one PT_LOAD's file range. */
static bool in_load(const struct elf_file *ef, uint64_t off, uint64_t len)
{
	for (size_t i = 0; i < ef->phnum; i++) {
		const Elf64_Phdr *p = &ef->ph[i];
		if (p->p_type == PT_LOAD && off >= p->p_offset && off - p->p_offset <= p->p_filesz &&
		    len <= p->p_filesz - (off - p->p_offset))
			return true;
	}
	return false;
}

/* Locates the table of that type and its strings; t->n stays 0 if they are absent or out
 * of bounds (outside the file, a .dynsym outside its segment, larger than the budget). */
static void elf_load_symtab(struct elf_file *ef, uint32_t type, struct elf_symtab *t)
{
	if (t->loaded)
		return;
	t->loaded = true;
	const Elf64_Shdr *s = elf_section_of_type(ef, type);
	if (!s || s->sh_link >= ef->shnum || s->sh_entsize != sizeof(Elf64_Sym))
		return;
	const Elf64_Shdr *str = &ef->sh[s->sh_link];
	if (!in_file(ef, s->sh_offset, s->sh_size) || !in_file(ef, str->sh_offset, str->sh_size) ||
	    s->sh_size > ph_limits.elf_bytes || str->sh_size > ph_limits.elf_bytes)
		return;
	if (type == SHT_DYNSYM &&
	    (!in_load(ef, s->sh_offset, s->sh_size) || !in_load(ef, str->sh_offset, str->sh_size)))
		return;
	t->sym_off = s->sh_offset;
	t->n = s->sh_size / sizeof(Elf64_Sym);
	t->str_off = str->sh_offset;
	t->str_len = str->sh_size;
}

/* Names are read through STR_SLOTS blocks of STR_BLOCK bytes of the string table, direct
 * mapped by block number: the linkers write names in about the order of the symbols, so
 * a search reads each block about once (measured: libpython3.12's lookup reads 0.96 MB of
 * the file, its tables being 0.81 MiB, in 155 preads). */
#define STR_BLOCK 4096u
#define STR_SLOTS 64u
#define SYM_CHUNK 1024u /* symbols read at once (24 KiB) */
#define NAME_MAX_WANTED 64u

struct str_cache {
	unsigned char *data;  /* STR_SLOTS * STR_BLOCK */
	uint64_t block[STR_SLOTS]; /* block number + 1 held by each slot; 0: empty */
};

/* Copies len bytes at off (< t->str_len, off + len <= t->str_len) of the string table to
 * out. 0 or -1 (read error or over the budget). */
static int str_bytes(struct elf_file *ef, const struct elf_symtab *t, struct str_cache *c,
		     uint64_t off, unsigned char *out, size_t len)
{
	while (len) {
		uint64_t b = off / STR_BLOCK;
		unsigned slot = (unsigned)(b % STR_SLOTS);
		unsigned char *blk = c->data + (size_t)slot * STR_BLOCK;
		if (c->block[slot] != b + 1) {
			uint64_t boff = b * STR_BLOCK;
			size_t n = t->str_len - boff < STR_BLOCK ? (size_t)(t->str_len - boff) : STR_BLOCK;
			c->block[slot] = 0;
			if (elf_pread(ef, t->str_off + boff, blk, n) != 0)
				return -1;
			c->block[slot] = b + 1;
		}
		size_t in = (size_t)(off - b * STR_BLOCK);
		size_t n = STR_BLOCK - in < len ? STR_BLOCK - in : len;
		memcpy(out, blk + in, n);
		out += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void elf_match_table(struct elf_file *ef, const struct elf_symtab *t,
			    const char *const *names, size_t n, uint64_t *values, uint64_t *sizes,
			    size_t *found)
{
	size_t want = 0; /* bytes of a name to compare: the longest wanted name and its NUL */
	for (size_t k = 0; k < n; k++)
		if (strlen(names[k]) + 1 > want)
			want = strlen(names[k]) + 1;
	if (!t->n || want > NAME_MAX_WANTED)
		return;
	struct str_cache c = { 0 };
	Elf64_Sym *chunk = malloc(SYM_CHUNK * sizeof(*chunk));
	c.data = malloc((size_t)STR_SLOTS * STR_BLOCK);
	for (uint64_t i = 0; chunk && c.data && i < t->n && *found < n;) {
		size_t k = t->n - i < SYM_CHUNK ? (size_t)(t->n - i) : SYM_CHUNK;
		if (elf_pread(ef, t->sym_off + i * sizeof(*chunk), chunk, k * sizeof(*chunk)) != 0)
			break;
		i += k;
		bool stop = false;
		for (size_t j = 0; j < k && *found < n && !stop; j++) {
			const Elf64_Sym *s = &chunk[j];
			if (s->st_name == 0 || s->st_name >= t->str_len || s->st_shndx == SHN_UNDEF ||
			    s->st_value == 0)
				continue;
			char nm[NAME_MAX_WANTED + 1] = { 0 }; /* NUL-terminated: a name cut by the
								 table's end ends there */
			size_t len = t->str_len - s->st_name < want ? (size_t)(t->str_len - s->st_name) : want;
			if (str_bytes(ef, t, &c, s->st_name, (unsigned char *)nm, len) != 0) {
				stop = true;
				break;
			}
			for (size_t w = 0; w < n; w++) {
				if (values[w] == 0 && nm[0] == names[w][0] && strcmp(nm, names[w]) == 0) {
					values[w] = s->st_value;
					if (sizes)
						sizes[w] = s->st_size;
					(*found)++;
					break;
				}
			}
		}
		if (stop)
			break;
	}
	free(chunk);
	free(c.data);
}

size_t elf_lookup_symbols(struct elf_file *ef, const char *const *names, size_t n,
			  uint64_t *values, uint64_t *sizes)
{
	size_t found = 0;
	for (size_t k = 0; k < n; k++) {
		values[k] = 0;
		if (sizes)
			sizes[k] = 0;
	}
	elf_load_symtab(ef, SHT_DYNSYM, &ef->dynsym);
	elf_match_table(ef, &ef->dynsym, names, n, values, sizes, &found);
	if (found < n && !ef->over_budget) {
		elf_load_symtab(ef, SHT_SYMTAB, &ef->symtab);
		elf_match_table(ef, &ef->symtab, names, n, values, sizes, &found);
	}
	return found;
}

int elf_each_symtab_symbol(struct elf_file *ef,
			   int (*fn)(void *ctx, const char *name, const Elf64_Sym *s), void *ctx)
{
	elf_load_symtab(ef, SHT_SYMTAB, &ef->symtab);
	const struct elf_symtab *t = &ef->symtab;
	if (!t->n)
		return -1;
	/* streamed like elf_match_table: fixed memory, reads counted against ef->budget;
	 * names are passed cut to EACH_NAME_MAX bytes */
	enum { EACH_NAME_MAX = 255 };
	struct str_cache c = { 0 };
	Elf64_Sym *chunk = malloc(SYM_CHUNK * sizeof(*chunk));
	c.data = malloc((size_t)STR_SLOTS * STR_BLOCK);
	int rc = chunk && c.data ? 0 : -1;
	bool stop = false;
	for (uint64_t i = 0; rc == 0 && !stop && i < t->n;) {
		size_t k = t->n - i < SYM_CHUNK ? (size_t)(t->n - i) : SYM_CHUNK;
		/* a read that fails (error, or over the budget) leaves the walk incomplete: -1,
		 * so that no caller takes "not met" for "not there" */
		if (elf_pread(ef, t->sym_off + i * sizeof(*chunk), chunk, k * sizeof(*chunk)) != 0) {
			rc = -1;
			break;
		}
		i += k;
		for (size_t j = 0; j < k && !stop; j++) {
			const Elf64_Sym *sy = &chunk[j];
			if (sy->st_name == 0 || sy->st_name >= t->str_len || sy->st_shndx == SHN_UNDEF)
				continue;
			char nm[EACH_NAME_MAX + 1] = { 0 };
			size_t len = t->str_len - sy->st_name < EACH_NAME_MAX ?
					     (size_t)(t->str_len - sy->st_name) : EACH_NAME_MAX;
			if (str_bytes(ef, t, &c, sy->st_name, (unsigned char *)nm, len) != 0) {
				rc = -1;
				break;
			}
			if (fn(ctx, nm, sy))
				stop = true;
		}
	}
	free(chunk);
	free(c.data);
	return rc;
}

int elf_find_section(const struct elf_file *ef, const char *name, uint64_t *addr,
		     uint64_t *size)
{
	if (!ef->shstr)
		return -1;
	for (size_t i = 0; i < ef->shnum; i++) {
		uint32_t off = ef->sh[i].sh_name;
		if (off >= ef->shstr_len || strcmp(ef->shstr + off, name) != 0)
			continue;
		*addr = ef->sh[i].sh_addr;
		*size = ef->sh[i].sh_size;
		return 0;
	}
	return -1;
}

uint64_t elf_clamp_to_load(const struct elf_file *ef, uint64_t addr, uint64_t size)
{
	for (size_t i = 0; i < ef->phnum; i++) {
		const Elf64_Phdr *p = &ef->ph[i];
		if (p->p_type != PT_LOAD || addr < p->p_vaddr || addr - p->p_vaddr >= p->p_memsz)
			continue;
		uint64_t room = p->p_memsz - (addr - p->p_vaddr);
		return size < room ? size : room;
	}
	return 0;
}

int elf_read_vaddr(const struct elf_file *ef, uint64_t vaddr, void *buf, size_t len)
{
	for (size_t i = 0; i < ef->phnum; i++) {
		const Elf64_Phdr *p = &ef->ph[i];
		if (p->p_type != PT_LOAD || vaddr < p->p_vaddr || vaddr - p->p_vaddr > p->p_filesz ||
		    len > p->p_filesz - (vaddr - p->p_vaddr))
			continue;
		uint64_t off = p->p_offset + (vaddr - p->p_vaddr);
		if (!in_file(ef, off, len))
			return -1;
		return read_exact(ef->fd, off, buf, len);
	}
	return -1;
}

static const Elf64_Phdr *elf_first_load(const struct elf_file *ef)
{
	const Elf64_Phdr *best = NULL;
	for (size_t i = 0; i < ef->phnum; i++)
		if (ef->ph[i].p_type == PT_LOAD && (!best || ef->ph[i].p_vaddr < best->p_vaddr))
			best = &ef->ph[i];
	return best;
}

int elf_placement_of(const struct elf_file *ef, struct elf_placement *out)
{
	memset(out, 0, sizeof(*out));
	out->inode = ef->inode;
	if (ef->type == ET_EXEC) {
		out->fixed = true;
		return 0;
	}
	const Elf64_Phdr *load = elf_first_load(ef);
	if (!load)
		return -1;
	out->page_offset = load->p_offset & ~(uint64_t)(PM_PAGE - 1);
	out->page_vaddr = load->p_vaddr & ~(uint64_t)(PM_PAGE - 1);
	return 0;
}

int elf_load_bias(const struct elf_file *ef, const struct pm_maps *maps, const char *path,
		  uint64_t *bias)
{
	struct elf_placement pl;
	return elf_placement_of(ef, &pl) == 0 ? elf_bias_in_maps(&pl, maps, path, bias) : -1;
}

int elf_bias_in_maps(const struct elf_placement *pl, const struct pm_maps *maps, const char *path,
		     uint64_t *bias)
{
	if (pl->fixed) {
		*bias = 0;
		return 0;
	}
	uint64_t page_off = pl->page_offset, page_vaddr = pl->page_vaddr;
	for (size_t i = 0; i < maps->n; i++) {
		const struct pm_map *m = &maps->v[i];
		if (!m->path || strcmp(m->path, path) != 0 || m->offset != page_off)
			continue;
		if (pl->inode && m->inode && m->inode != pl->inode)
			continue;
		if (m->start < page_vaddr)
			continue;
		*bias = m->start - page_vaddr;
		return 0;
	}
	return -1;
}
