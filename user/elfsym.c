/* elfsym: bounded ELF64 symbol/section reading and load bias (see elfsym.h). */
#include "elfsym.h"

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

/* Reads [off, off+len) of the file into a new buffer with a NUL appended. */
static void *read_block(const struct elf_file *ef, uint64_t off, uint64_t len)
{
	if (len > ELF_MAX_TABLE || !in_file(ef, off, len))
		return NULL;
	char *p = malloc((size_t)len + 1);
	if (!p)
		return NULL;
	if (read_exact(ef->fd, off, p, (size_t)len) != 0) {
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
		ef->shstr = read_block(ef, s->sh_offset, s->sh_size);
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
	if (read_exact(fd, 0, &eh, sizeof(eh)) != 0) {
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

static void elf_free_symtab(struct elf_symtab *t)
{
	free(t->syms);
	free(t->strs);
	memset(t, 0, sizeof(*t));
}

void elf_close(struct elf_file *ef)
{
	if (ef->fd >= 0)
		close(ef->fd);
	free(ef->ph);
	free(ef->sh);
	free(ef->shstr);
	elf_free_symtab(&ef->dynsym);
	elf_free_symtab(&ef->symtab);
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

static void elf_load_symtab(struct elf_file *ef, uint32_t type, struct elf_symtab *t)
{
	if (t->loaded)
		return;
	t->loaded = true;
	const Elf64_Shdr *s = elf_section_of_type(ef, type);
	if (!s || s->sh_link >= ef->shnum || s->sh_entsize != sizeof(Elf64_Sym))
		return;
	const Elf64_Shdr *str = &ef->sh[s->sh_link];
	t->syms = read_block(ef, s->sh_offset, s->sh_size);
	t->strs = read_block(ef, str->sh_offset, str->sh_size);
	if (!t->syms || !t->strs) {
		elf_free_symtab(t);
		t->loaded = true;
		return;
	}
	t->n = s->sh_size / sizeof(Elf64_Sym);
	t->strs_len = str->sh_size;
}

static void elf_match_table(const struct elf_symtab *t, const char *const *names, size_t n,
			    uint64_t *values, uint64_t *sizes, size_t *found)
{
	for (size_t i = 0; i < t->n && *found < n; i++) {
		const Elf64_Sym *s = &t->syms[i];
		if (s->st_name == 0 || s->st_name >= t->strs_len || s->st_shndx == SHN_UNDEF ||
		    s->st_value == 0)
			continue;
		const char *nm = t->strs + s->st_name; /* NUL-terminated: read_block appends one */
		for (size_t k = 0; k < n; k++) {
			if (values[k] == 0 && nm[0] == names[k][0] && strcmp(nm, names[k]) == 0) {
				values[k] = s->st_value;
				if (sizes)
					sizes[k] = s->st_size;
				(*found)++;
				break;
			}
		}
	}
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
	elf_match_table(&ef->dynsym, names, n, values, sizes, &found);
	if (found < n) {
		elf_load_symtab(ef, SHT_SYMTAB, &ef->symtab);
		elf_match_table(&ef->symtab, names, n, values, sizes, &found);
	}
	return found;
}

int elf_each_symtab_symbol(struct elf_file *ef,
			   int (*fn)(void *ctx, const char *name, const Elf64_Sym *s), void *ctx)
{
	elf_load_symtab(ef, SHT_SYMTAB, &ef->symtab);
	const struct elf_symtab *t = &ef->symtab;
	if (!t->syms)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		const Elf64_Sym *s = &t->syms[i];
		if (s->st_name == 0 || s->st_name >= t->strs_len || s->st_shndx == SHN_UNDEF)
			continue;
		if (fn(ctx, t->strs + s->st_name, s)) /* NUL-terminated: read_block appends one */
			break;
	}
	return 0;
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
