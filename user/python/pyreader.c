/* pyreader: Python threads and stacks of a live process (see pyreader.h for what it owns).
 * This file: the public API of pyreader.h, the per-process cache (attach on first use,
 * most recently read first, READER_MAX_PROCS), one read's retry and the reads lockown
 * makes. The parts, one concern each, share pyreader_int.h: pyarena (arena, address
 * sets), pyunicode (strings), pylinetable (line tables), pycodecache (code objects),
 * pydict (dicts, attributes), pyelffacts (the interpreter file, ELF facts cache),
 * pyscan (interpreter state, symbol-less scans), pyversion (layout choice, attaching),
 * pythreads (threading names, TIDs), pysyscall (/proc syscall state), pyframes (frame
 * walk), pygil (the GIL, consistent stacks), pywalk (a whole read), pyprobe (the probe).
 * Writers of what it returns: user/output/pywrite_*.c.
 * Version facts used by the parts (all measured, see pylayout.c for offsets):
 *  - 2.7/3.6 start from the static interp_head (.symtab) or from the exported
 *    PyInterpreterState_Head, which is `48 8b 05 <disp32>; c3` (mov rip+disp32, ret).
 *  - 3.7+ start from _PyRuntime (exported; 3.10+ in its own .PyRuntime section; 3.13+ begins
 *    with _Py_DebugOffsets). Without symbols, a validated scan of .PyRuntime/.bss/.data.
 *  - 3.11+ export Py_Version (PY_VERSION_HEX).
 *  - <= 3.10 keep only the pthread_t: glibc 2.36 (x86_64) has the TID at pthread_t+0x2d0 and
 *    the pthread's self pointer at +0x10; both are validated against /proc/PID/task, else the
 *    TID comes from Thread._native_id (3.8+), else it is reported unknown (0).
 *  - GIL: 3.7+ struct _gil_runtime_state (locked, last_holder); 2.7/3.6 the exported
 *    _PyThreadState_Current (NULL when nobody holds it); 3.6 static gil_locked/
 *    gil_last_holder/gil_cond/gil_mutex/switch_cond/switch_mutex located by gilstatic.c
 *    (when they are not, a 3.6 futex wait is "unknown": lock or GIL cannot be told apart),
 *    2.7 static interpreter_lock (a pointer to a sem_t).
 *  - Linux: futex is syscall 202 on x86_64; /proc/PID/task/TID/syscall gives "nr args..."
 *    for a blocked thread and "running" otherwise, without attaching. */
#include "pyreader_int.h"

struct py_reader *py_reader_new(void)
{
	return calloc(1, sizeof(struct py_reader));
}

static void proc_free(struct py_proc *p)
{
	free(p->unresolved);
	sysfd_prune(p, true);
	free(p->sysfds);
	code_cache_clear(p);
	free(p->codes);
	pm_close(&p->pm);
	free(p);
}

void py_reader_free(struct py_reader *r)
{
	if (!r)
		return;
	while (r->procs) {
		struct py_proc *p = r->procs;
		r->procs = p->next;
		proc_free(p);
	}
	pm_cache_free(&r->cache);
	free(r->syms);
	free(r);
}

void py_reader_release_cache(struct py_reader *r)
{
	if (r)
		pm_cache_trim(&r->cache, READER_CACHE_KEEP_BLOCKS);
}

void py_forget_process(struct py_reader *r, pid_t pid)
{
	for (struct py_proc **pp = &r->procs; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			struct py_proc *p = *pp;
			*pp = p->next;
			proc_free(p);
			return;
		}
	}
}

static struct py_proc *proc_find(struct py_reader *r, pid_t pid)
{
	for (struct py_proc *p = r->procs; p; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

/* Move p to the front of the list (most recently read). */
static void proc_touch(struct py_reader *r, struct py_proc *p)
{
	for (struct py_proc **pp = &r->procs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			p->next = r->procs;
			r->procs = p;
			return;
		}
	}
}

/* Keep at most READER_MAX_PROCS processes: free the least recently read. */
static void proc_trim(struct py_reader *r)
{
	unsigned n = 0;
	for (struct py_proc **pp = &r->procs; *pp; pp = &(*pp)->next) {
		if (++n > READER_MAX_PROCS) {
			struct py_proc *rest = *pp;
			*pp = NULL;
			while (rest) {
				struct py_proc *next = rest->next;
				proc_free(rest);
				rest = next;
			}
			return;
		}
	}
}

/* Attaches p (in r's list), or finishes attaching it: p, or NULL with err, with
 * *not_ready set (p kept) when its interpreter is not set up yet, else p forgotten. */
static struct py_proc *attach_listed(struct py_reader *r, struct py_proc *p, bool *not_ready,
				     char *err, size_t errlen)
{
	struct walk w = { .p = p, .syms = r->syms };
	pm_new_snapshot(&p->pm);
	int rc = attach_process(&w, err, errlen);
	if (rc == 0) {
		p->just_attached = true;
		return p;
	}
	if (rc == 1) {
		*not_ready = true;
		return NULL;
	}
	py_forget_process(r, p->pid);
	return NULL;
}

/* Starts the snapshot of a read, right after proc_get: a new one, unless proc_get has just
 * attached the process (what attaching read is current: reading the same blocks again
 * cost three reads of memory per look at a new process). */
static void begin_snapshot(struct py_proc *p)
{
	if (!p->just_attached)
		pm_new_snapshot(&p->pm);
	p->just_attached = false;
}

/* The cached state for pid if it is still the same process, else a freshly attached one.
 * NULL with err on failure; *not_ready: the process is attached but its interpreter not
 * set up yet (kept: the next call only looks for the interpreter again). */
static struct py_proc *proc_get(struct py_reader *r, pid_t pid, bool *fresh, bool *not_ready,
				char *err, size_t errlen)
{
	*not_ready = false;
	struct py_proc *p = proc_find(r, pid);
	if (p && pm_still_same(&p->pm)) {
		*fresh = false;
		proc_touch(r, p);
		return p->unresolved ? attach_listed(r, p, not_ready, err, errlen) : p;
	}
	if (p)
		py_forget_process(r, pid);
	*fresh = true;
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->pid = pid;
	p->pthread_tid_off = -1;
	if (pm_open(&p->pm, pid, err, errlen) != 0) {
		free(p);
		return NULL;
	}
	p->start_time = p->pm.start_time;
	pm_use_cache(&p->pm, &r->cache);
	if (!r->syms)
		r->syms = calloc(1, sizeof(*r->syms)); /* without it, symbols are looked up each time */
	p->next = r->procs;
	r->procs = p;
	proc_trim(r);
	return attach_listed(r, p, not_ready, err, errlen);
}

/* One snapshot of an attached process: the walk shared by py_read_process and
 * py_read_resolved (tasks may be empty: thread ids then stay 0). */
static int read_snapshot(struct walk *w, struct py_process *out, char *err, size_t errlen)
{
	struct py_proc *p = w->p;
	int rc = walk_process(w, out, err, errlen);
	if (w->gone || rc != 0) {
		py_process_free(out);
		return -1;
	}
	out->pid = p->pid;
	out->start_time = p->start_time;
	out->version_hex = p->res.version_hex;
	snprintf(out->version, sizeof(out->version), "%s", p->res.version);
	return 0;
}

/* The process exited, or exec'd (same pid and start time, new image), while being read:
 * its state goes, and a state that was not fresh earns one more try. -1. */
static int read_was_cut(struct py_reader *r, pid_t pid, bool fresh, bool *retry, char *err,
			size_t errlen)
{
	py_forget_process(r, pid);
	*retry = !fresh;
	snprintf(err, errlen, "process %d exited or exec'd while being read", (int)pid);
	return -1;
}

static int read_once(struct py_reader *r, pid_t pid, struct py_process *out, bool *retry,
		     char *err, size_t errlen)
{
	bool fresh, not_ready;
	*retry = false;
	struct py_proc *p = proc_get(r, pid, &fresh, &not_ready, err, errlen);
	if (!p)
		return -1;
	/* a snapshot of its own (not the attach's), so the GIL is read before any of its blocks */
	if (p->just_attached && (p->res.layout.gil_kind != PY_GIL_NONE || p->res.gil36_switch_number))
		p->just_attached = false;
	begin_snapshot(p);
	uint64_t preads0 = p->pm.reads;
	struct walk w = { .p = p, .out = out, .snapshot_new = true };
	if (pm_list_tasks(pid, &w.tasks, &w.ntasks) != 0 || w.ntasks == 0) {
		free(w.tasks);
		snprintf(err, errlen, "process %d exited", (int)pid);
		py_forget_process(r, pid);
		return -1;
	}
	map_namespace_tids(&w, pid);
	int rc = read_snapshot(&w, out, err, errlen);
	if (rc == 0)
		out->os_threads = w.ntasks;
	free(w.ns_tids);
	free(w.tasks);
	sysfd_prune(p, false);
	if (w.gone)
		return read_was_cut(r, pid, fresh, retry, err, errlen);
	p->last_preads = p->pm.reads - preads0;
	p->read_gen = pm_gen(&p->pm);
	return rc;
}

/* A process state over memory served by backend (py_read_resolved, py_resolve_by_scan). */
static struct py_proc *proc_for_backend(const struct py_resolved *res, pm_backend_fn backend,
					void *ctx)
{
	struct py_proc *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pthread_tid_off = -1;
	p->res = *res;
	pm_open_backend(&p->pm, 0, backend, ctx);
	pm_new_snapshot(&p->pm);
	return p;
}

int py_resolve_by_scan(struct py_resolved *res, pm_backend_fn backend, void *ctx,
		       uint64_t start, uint64_t size)
{
	struct py_proc *p = proc_for_backend(res, backend, ctx);
	if (!p)
		return -1;
	struct walk w = { .p = p };
	if (res->layout.start == PY_START_INTERP_HEAD)
		res->interp_head = scan_for_interp_pointer(&w, start, size, false);
	else
		res->runtime = runtime_by_scan(&w, start, size);
	int found = res->layout.start == PY_START_INTERP_HEAD ? res->interp_head != 0
							       : res->runtime != 0;
	proc_free(p);
	return found ? 0 : -1;
}

int py_read_resolved(const struct py_resolved *res, pm_backend_fn backend, void *ctx,
		     struct py_process *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	struct py_proc *p = proc_for_backend(res, backend, ctx);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct walk w = { .p = p, .out = out };
	int rc = read_snapshot(&w, out, err, errlen);
	if (rc != 0 && w.gone)
		snprintf(err, errlen, "memory gone while being read");
	proc_free(p);
	return rc;
}

int py_read_process(struct py_reader *r, pid_t pid, struct py_process *out, char *err,
		    size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!r || pid <= 0) {
		snprintf(err, errlen, "invalid pid %d", (int)pid);
		return -1;
	}
	bool retry;
	int rc = read_once(r, pid, out, &retry, err, errlen);
	if (rc != 0 && retry)
		rc = read_once(r, pid, out, &retry, err, errlen);
	return rc;
}

static int probe_once(struct py_reader *r, pid_t pid, unsigned *version_hex, bool *retry,
		      char *err, size_t errlen)
{
	bool fresh, not_ready;
	*retry = false;
	struct py_proc *p = proc_get(r, pid, &fresh, &not_ready, err, errlen);
	if (!p)
		return not_ready ? 0 : -1; /* attached, interpreter not set up yet: not yet */
	begin_snapshot(p);
	struct walk w = { .p = p };
	int rc = probe_process(&w, err, errlen);
	if (w.gone)
		return read_was_cut(r, pid, fresh, retry, err, errlen);
	*version_hex = p->res.version_hex;
	if (rc == 0 && p->resolved_by_scan)
		py_forget_process(r, pid); /* a scan's find is kept only once it shows Python code */
	return rc;
}

int py_probe_process(struct py_reader *r, pid_t pid, unsigned *version_hex, char *err,
		     size_t errlen)
{
	if (!r || pid <= 0) {
		snprintf(err, errlen, "invalid pid %d", (int)pid);
		return -1;
	}
	bool retry;
	int rc = probe_once(r, pid, version_hex, &retry, err, errlen);
	if (rc < 0 && retry)
		rc = probe_once(r, pid, version_hex, &retry, err, errlen);
	return rc;
}

void py_process_free(struct py_process *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nthreads; i++)
		free(p->threads[i].frames);
	free(p->threads);
	arena_free(p);
	p->threads = NULL;
	p->nthreads = 0;
}

/* An executable that exports the interpreter (a statically linked python under another
 * name, an embedding program): decided once per binary, by (device, inode). */
static bool exe_exports_python(pid_t pid)
{
	static struct {
		dev_t dev;
		ino_t ino;
		bool python;
	} cache[64];
	static unsigned next;
	char path[64], err[128];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	if (stat(path, &st) != 0)
		return false;
	for (unsigned i = 0; i < sizeof(cache) / sizeof(cache[0]); i++)
		if (cache[i].ino == st.st_ino && cache[i].dev == st.st_dev && st.st_ino)
			return cache[i].python;
	bool python = false;
	int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	struct elf_file ef;
	if (fd >= 0 && elf_open_fd(&ef, fd, err, sizeof(err)) == 0) {
		/* Py_Initialize: every version; _PyRuntime: 3.7+ */
		static const char *const names[] = { "Py_Initialize", "_PyRuntime" };
		uint64_t values[2], sizes[2];
		python = elf_lookup_symbols(&ef, names, 2, values, sizes) > 0;
		elf_close(&ef);
	}
	unsigned slot = next++ % (sizeof(cache) / sizeof(cache[0]));
	cache[slot].dev = st.st_dev;
	cache[slot].ino = st.st_ino;
	cache[slot].python = python;
	return python;
}

bool py_is_python_process(pid_t pid)
{
	struct pm_maps maps;
	bool yes = false;
	struct pm_map_want want = { is_libpython, 0, 1 };
	if (pm_read_maps_wanted(pid, &want, &maps) != 0)
		return false;
	for (size_t i = 0; i < maps.n && !yes; i++)
		if (maps.v[i].path && is_libpython(maps.v[i].path))
			yes = true;
	pm_free_maps(&maps);
	if (yes)
		return true;
	char path[64], target[PM_PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	return strncmp(base, "python", 6) == 0 || exe_exports_python(pid);
}

bool py_reader_still_same(struct py_reader *r, pid_t pid, uint64_t *start_time)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p || !pm_still_same(&p->pm))
		return false;
	/* the pidfd tells an exit, not an exec: a read of the memory tells both (it gives 0
	 * bytes once the mm it was opened on is gone, which is also early in an exit) */
	uint64_t at = p->res.runtime ? p->res.runtime : p->res.interp_head;
	unsigned char byte;
	if (at && pm_read_direct(&p->pm, at, &byte, 1) == PM_GONE)
		return false;
	*start_time = p->start_time;
	return true;
}

const struct py_layout *py_reader_layout(struct py_reader *r, pid_t pid)
{
	struct py_proc *p = proc_find(r, pid);
	return p ? &p->res.layout : NULL;
}

int py_reader_addrs(struct py_reader *r, pid_t pid, struct py_addrs *out)
{
	struct py_proc *p = proc_find(r, pid);
	memset(out, 0, sizeof(*out));
	if (!p)
		return -1;
	out->runtime = p->res.runtime;
	out->interp_head = p->res.interp_head;
	out->interp = p->last_interp;
	if (p->res.layout.gil_kind == PY_GIL_IN_RUNTIME)
		out->gil = p->res.runtime + p->res.layout.gil;
	else if (p->res.layout.gil_kind == PY_GIL_IN_INTERP && p->last_interp)
		out->gil = p->last_interp + p->res.layout.gil;
	if (out->gil && p->res.layout.gil_size) {
		out->gil_wait_lo = out->gil;
		out->gil_wait_hi = out->gil + p->res.layout.gil_size;
	} else if (p->res.layout.gil_kind == PY_GIL_STATIC && p->res.gil_found_by) {
		out->gil_wait_lo = p->res.gil_wait[0];
		out->gil_wait_hi = p->res.gil_wait[1];
	}
	out->code_type = p->res.t_code;
	return 0;
}

int py_reader_resolved(struct py_reader *r, pid_t pid, struct py_resolved *out)
{
	struct py_proc *p = proc_find(r, pid);
	memset(out, 0, sizeof(*out));
	if (!p)
		return -1;
	*out = p->res;
	return 0;
}

/* The code object at code in pid (the process the reader holds, with this start time):
 * its line table (malloc'd copy) and first line. 0, or -1 (gone, another process, not a
 * code object, no table). */
int py_reader_code_table(struct py_reader *r, pid_t pid, uint64_t start_time, uint64_t code,
			 unsigned char **table, uint32_t *len, int *firstlineno)
{
	bool fresh, not_ready;
	char err[128];
	*table = NULL;
	struct py_proc *p = proc_find(r, pid);
	if (!p || p->start_time != start_time || p->unresolved || !pm_still_same(&p->pm))
		return -1; /* (proc_get would attach again) */
	p = proc_get(r, pid, &fresh, &not_ready, err, sizeof(err));
	if (!p || fresh || not_ready || p->start_time != start_time)
		return -1;
	begin_snapshot(p);
	struct py_process scratch = { 0 };
	struct walk w = { .p = p, .out = &scratch };
	struct code_entry *c = code_lookup(&w, code);
	int rc = -1;
	if (c && c->table && !w.gone) {
		*table = malloc(c->table_len ? c->table_len : 1);
		if (*table) {
			memcpy(*table, c->table, c->table_len);
			*len = c->table_len;
			*firstlineno = c->firstlineno;
			rc = 0;
		}
	}
	py_process_free(&scratch);
	return rc;
}

/* ---- reads for lock ownership (user/python/lockown*.c) --------------------------------- */

void py_reader_mem_begin(struct py_reader *r, pid_t pid)
{
	struct py_proc *p = proc_find(r, pid);
	/* still the generation of this process's last read (nothing read since, the cache is
	 * shared by all processes): its blocks are this snapshot's, reused */
	if (p && pm_gen(&p->pm) != p->read_gen)
		pm_new_snapshot(&p->pm);
}

int py_reader_mem_read(struct py_reader *r, pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p || addr < 0x1000 || addr >= 0x800000000000ull) /* user space, any alignment */
		return -1;
	struct walk w = { .p = p };
	return rd(&w, addr, buf, len);
}

struct procmem *py_reader_procmem(struct py_reader *r, pid_t pid)
{
	struct py_proc *p = proc_find(r, pid);
	return p ? &p->pm : NULL;
}

uint64_t py_reader_mem_attr(struct py_reader *r, pid_t pid, uint64_t obj, const char *name)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p)
		return 0;
	struct walk w = { .p = p };
	return instance_attr(&w, obj, name);
}

uint64_t py_reader_mem_dict_get(struct py_reader *r, pid_t pid, uint64_t dict, const char *key)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p || !plausible_ptr(dict))
		return 0;
	struct walk w = { .p = p };
	return dict_get_str(&w, dict, key);
}

char *py_reader_mem_str(struct py_reader *r, pid_t pid, uint64_t addr)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p)
		return NULL;
	struct walk w = { .p = p };
	return read_str(&w, addr);
}

int py_reader_code_where(struct py_reader *r, pid_t pid, uint64_t code, uint64_t pos,
			 char **function, char **file, int *line)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p)
		return -1;
	struct walk w = { .p = p };
	struct code_entry *c = code_lookup(&w, code);
	if (!c || !c->function || !c->file)
		return -1;
	*function = strdup(c->function);
	*file = strdup(c->file);
	if (!*function || !*file) {
		free(*function);
		free(*file);
		return -1;
	}
	*line = pos == UINT64_MAX ? c->firstlineno : code_line(&p->res.layout, c, pos);
	return 0;
}

int py_reader_code_line(struct py_reader *r, pid_t pid, uint64_t code, uint64_t pos)
{
	struct py_proc *p = proc_find(r, pid);
	if (!p)
		return -1;
	struct walk w = { .p = p };
	struct code_entry *c = code_lookup(&w, code);
	return c ? code_line(&p->res.layout, c, pos) : -1;
}

uint64_t py_reader_last_preads(struct py_reader *r, pid_t pid)
{
	struct py_proc *p = proc_find(r, pid);
	return p ? p->last_preads : 0;
}

uint64_t py_reader_preads(struct py_reader *r, pid_t pid)
{
	struct py_proc *p = proc_find(r, pid);
	return p ? p->pm.reads : 0;
}
