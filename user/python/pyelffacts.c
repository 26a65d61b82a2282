/* pyelffacts: the interpreter file and what its ELF says (see pyreader_int.h).
 * Owns: finding the mapping of the interpreter (python binary or libpython), its version
 * from the file name, and the cache of per-file facts (symbols, sections, placement, the
 * static GIL of 3.6) keyed by the file's identity, failures included. */
#include "pyreader_int.h"

/* "X.Y" from a file name such as libpython3.11.so.1.0, libpython3.6m.so, python3.11. */
bool version_from_name(const char *path, unsigned *major, unsigned *minor)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *p = strstr(base, "python");
	if (!p)
		return false;
	p += 6;
	char *end;
	unsigned long ma = strtoul(p, &end, 10);
	if (end == p || *end != '.' || ma < 2 || ma > 9)
		return false;
	const char *q = end + 1;
	unsigned long mi = strtoul(q, &end, 10);
	if (end == q || mi > 99)
		return false;
	*major = (unsigned)ma;
	*minor = (unsigned)mi;
	return true;
}

bool is_libpython(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return strncmp(base, "libpython", 9) == 0 && strstr(base, ".so") != NULL;
}

/* The mapping of the file holding the interpreter: libpython if mapped, else the exe. */
const struct pm_map *find_python_mapping(pid_t pid, const struct pm_maps *maps)
{
	for (size_t i = 0; i < maps->n; i++)
		if (maps->v[i].path && maps->v[i].offset == 0 && is_libpython(maps->v[i].path))
			return &maps->v[i];
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st) != 0)
		return NULL;
	for (size_t i = 0; i < maps->n; i++)
		if (maps->v[i].path && maps->v[i].path[0] == '/' && maps->v[i].offset == 0 &&
		    maps->v[i].inode == (uint64_t)st.st_ino)
			return &maps->v[i];
	return NULL;
}

/* Opens the mapped file as the target sees it, else through /proc/PID/map_files; only the
 * mapped regular file itself, never outside the target's root (safeopen.h). */
static int open_mapped_file(pid_t pid, const struct pm_map *m)
{
	return so_open_mapping(pid, m);
}


static const char *const sym_names[S_COUNT] = {
	"_PyRuntime", "Py_Version", "PyInterpreterState_Head", "interp_head",
	"_PyThreadState_Current", "PyCode_Type", "PyUnicode_Type", "PyString_Type",
	"PyBytes_Type", "PyDict_Type", "_Py_TrueStruct", "interpreter_lock",
	"PyUnicodeUCS4_FromString",
	"PyUnicodeUCS2_FromString", "gil_switch_number",
};

static const char *const sec_names[SEC_COUNT] = { ".PyRuntime", ".bss", ".data" };

static struct file_id file_id_of(const struct stat *st)
{
	return (struct file_id){ (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
				 (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec };
}

static const struct sym_cache_entry *facts_cached(const struct sym_cache *c, struct file_id id)
{
	for (unsigned i = 0; c && i < SYM_CACHE_ENTRIES + SYM_FAIL_ENTRIES; i++) {
		const struct sym_cache_entry *e = i < SYM_CACHE_ENTRIES ? &c->e[i]
								      : &c->fail[i - SYM_CACHE_ENTRIES];
		if (e->used && e->dev == id.dev && e->inode == id.inode && e->size == id.size &&
		    e->mtime_ns == id.mtime_ns)
			return e;
	}
	return NULL;
}

/* What a cache entry says: its facts (0) or its failure (-1, err). */
static int facts_answer(const struct sym_cache_entry *e, struct file_facts *out, char *err,
			size_t errlen)
{
	if (e->failed) {
		snprintf(err, errlen, "%s", e->err);
		return -1;
	}
	*out = e->f;
	return 0;
}

static bool facts_have_cpython(const struct file_facts *f)
{
	for (int i = 0; i < S_COUNT; i++)
		if (f->sym[i])
			return true;
	return f->sec_size[SEC_PYRUNTIME] != 0;
}

static int facts_from_elf(struct elf_file *ef, struct file_facts *f)
{
	memset(f, 0, sizeof(*f));
	if (elf_placement_of(ef, &f->place) != 0)
		return -1;
	elf_lookup_symbols(ef, sym_names, S_COUNT, f->sym, f->symsize);
	if (ef->over_budget)
		return -2;
	for (int i = 0; i < SEC_COUNT; i++) {
		if (elf_find_section(ef, sec_names[i], &f->sec_addr[i], &f->sec_size[i]) != 0)
			f->sec_addr[i] = f->sec_size[i] = 0;
		/* a section is no larger than the segment (the mapping) that holds it */
		f->sec_size[i] = elf_clamp_to_load(ef, f->sec_addr[i], f->sec_size[i]);
	}
	/* a file with _PyRuntime keeps its GIL there (3.7+) */
	const struct py_gil_statics *gs[4];
	size_t ngs = f->sym[S_RUNTIME] ? 0 : pylayout_gil_statics(gs, 4);
	for (size_t i = 0; i < ngs && !f->gil_sym.desc; i++)
		(void)gilstatic_from_symtab(ef, gs[i], &f->gil_sym);
	for (size_t i = 0; i < ngs && !f->gil_code.desc; i++)
		(void)gilstatic_from_code(ef, gs[i], &f->gil_code);
	return 0;
}

static void facts_remember(struct sym_cache *c, struct file_id id, const struct file_facts *f,
			   const char *failure)
{
	if (!c)
		return;
	bool useful = !failure && facts_have_cpython(f);
	struct sym_cache_entry *e = useful ? &c->e[c->next++ % SYM_CACHE_ENTRIES]
					   : &c->fail[c->next_fail++ % SYM_FAIL_ENTRIES];
	memset(e, 0, sizeof(*e));
	e->dev = id.dev;
	e->inode = id.inode;
	e->size = id.size;
	e->mtime_ns = id.mtime_ns;
	if (failure) {
		e->failed = true;
		snprintf(e->err, sizeof(e->err), "%s", failure);
	} else {
		e->f = *f;
	}
	e->used = true;
}

/* The facts of the file mapped at m, from the cache when the file the process sees at
 * that path is the mapped one (same inode) and known, or when the file opened is known
 * (by its identity: fstat); else read from the file. 0 or -1. */
int file_facts_of(struct sym_cache *c, pid_t pid, const struct pm_map *m,
			 struct file_facts *out, char *err, size_t errlen)
{
	struct stat st;
	const struct sym_cache_entry *e;
	if (so_stat_in_root(pid, m->path, &st) == 0 && (uint64_t)st.st_ino == m->inode &&
	    (e = facts_cached(c, file_id_of(&st))) != NULL)
		return facts_answer(e, out, err, errlen);
	int fd = open_mapped_file(pid, m);
	bool known = fd >= 0 && fstat(fd, &st) == 0;
	if (known && (e = facts_cached(c, file_id_of(&st))) != NULL) {
		close(fd);
		return facts_answer(e, out, err, errlen);
	}
	struct elf_file ef;
	if (elf_open_fd(&ef, fd, err, errlen) != 0) {
		if (known)
			facts_remember(c, file_id_of(&st), NULL, err);
		return -1;
	}
	int rc = facts_from_elf(&ef, out);
	if (rc == -2)
		snprintf(err, errlen, "%s needs more than the elf-bytes limit (%" PRIu64 " bytes) "
			 "read to find its symbols", m->path, ph_limits.elf_bytes);
	else if (rc != 0)
		snprintf(err, errlen, "%s has no loadable segment", m->path);
	struct file_id id = { ef.dev, ef.inode, ef.file_size, ef.mtime_ns };
	facts_remember(c, id, out, rc == 0 ? NULL : err);
	elf_close(&ef);
	return rc == 0 ? 0 : -1;
}

/* 0 and section id's link address and size (add a->bias for where it is in the
 * process), or -1 if the file has none. */
int attach_section(const struct attach *a, enum sec_id id, uint64_t *addr,
			  uint64_t *size)
{
	if (!a->f.sec_size[id])
		return -1;
	*addr = a->f.sec_addr[id];
	*size = a->f.sec_size[id];
	return 0;
}

uint64_t sym_addr(const struct attach *a, enum sym_id id)
{
	return a->f.sym[id] ? a->f.sym[id] + a->bias : 0;
}

/* Validates an interpreter: its first thread state points back to it. */
