/* pythreads: threads and their names and TIDs (see pyreader_int.h).
 * Owns: threading._active (names, idents), sys.version, pid namespaces (a container's
 * TIDs to the host's), the TID of a pthread_t (glibc), and a thread's state name. */
#include "pyreader_int.h"
#include "procscan.h"

const char *py_thread_state_str(enum py_thread_state s)
{
	switch (s) {
	case PY_STATE_RUNNING: return "running";
	case PY_STATE_LOCK_WAIT: return "lock_wait";
	case PY_STATE_GIL_WAIT: return "gil_wait";
	case PY_STATE_SLEEP: return "sleep";
	case PY_STATE_UNKNOWN: break;
	}
	return "unknown";
}


bool collect_active(struct walk *w, uint64_t hash, uint64_t key, uint64_t value, void *ctx)
{
	(void)w;
	(void)key;
	struct active_list *a = ctx;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		if (nc > PY_MAX_THREADS * 2)
			return true;
		struct active_entry *nv = realloc(a->v, nc * sizeof(*nv));
		if (!nv)
			return true;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n].ident = hash; /* int keys hash to themselves (ident < 2**61 - 1) */
	a->v[a->n].thread = value;
	a->n++;
	return false;
}

/* threading._active (module dict cached and re-validated), or 0 if threading is absent. */
uint64_t find_active_dict(struct walk *w, uint64_t interp)
{
	struct py_proc *p = w->p;
	const struct py_layout *l = &p->res.layout;
	if (p->active_dict) {
		uint64_t md;
		if (rd_u64(w, p->threading_module + l->md_dict, &md) == 0 && md == p->threading_md &&
		    type_is(w, md, p->res.t_dict) && type_is(w, p->active_dict, p->res.t_dict))
			return p->active_dict;
		p->active_dict = 0;
	}
	uint64_t modules, module, md;
	if (rd_u64(w, interp + l->interp_modules, &modules) != 0)
		return 0;
	module = dict_get_str(w, modules, "threading");
	if (!module || rd_u64(w, module + l->md_dict, &md) != 0)
		return 0;
	uint64_t active = dict_get_str(w, md, "_active");
	if (!active || !type_is(w, active, p->res.t_dict))
		return 0;
	p->threading_module = module;
	p->threading_md = md;
	p->active_dict = active;
	return active;
}

/* sys.version up to the first space, for versions without Py_Version (<= 3.10). */
void read_sys_version(struct walk *w, uint64_t interp)
{
	struct py_proc *p = w->p;
	if (p->res.version_hex & 0xffff)
		return;
	uint64_t modules, sys_mod, md;
	if (rd_u64(w, interp + p->res.layout.interp_modules, &modules) != 0)
		return;
	sys_mod = dict_get_str(w, modules, "sys");
	if (!sys_mod || rd_u64(w, sys_mod + p->res.layout.md_dict, &md) != 0)
		return;
	char *v = read_str(w, dict_get_str(w, md, "version"));
	if (!v)
		return;
	size_t n = strcspn(v, " ");
	unsigned a, b, c;
	if (n < sizeof(p->res.version) && sscanf(v, "%u.%u.%u", &a, &b, &c) == 3 &&
	    a == p->res.layout.major && b == p->res.layout.minor) {
		memcpy(p->res.version, v, n);
		p->res.version[n] = '\0';
		p->res.version_hex = (a << 24) | (b << 16) | ((c & 0xff) << 8);
	}
	free(v);
}

/* Whether pid lives in another pid namespace than ours (Linux 3.8+ /proc/PID/ns/pid). */
static bool in_other_pidns(pid_t pid)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat(path, &a) == 0 && stat("/proc/self/ns/pid", &b) == 0 &&
	       (a.st_ino != b.st_ino || a.st_dev != b.st_dev);
}

/* Innermost NSpid of a task (its id in its own pid namespace), or 0. */
static pid_t task_ns_tid(pid_t pid, pid_t tid)
{
	pid_t ids[PROC_MAX_PIDNS_LEVELS];
	int levels = proc_nspid(pid, tid, ids, PROC_MAX_PIDNS_LEVELS);
	return levels > 0 ? ids[levels - 1] : 0;
}

static int ns_tid_cmp(const void *a, const void *b)
{
	pid_t x = ((const struct ns_tid *)a)->ns, y = ((const struct ns_tid *)b)->ns;
	return (x > y) - (x < y);
}

void map_namespace_tids(struct walk *w, pid_t pid)
{
	if (!in_other_pidns(pid))
		return;
	w->ns_tids = calloc(w->ntasks ? w->ntasks : 1, sizeof(*w->ns_tids));
	for (size_t i = 0; w->ns_tids && i < w->ntasks; i++)
		w->ns_tids[i] = (struct ns_tid){ task_ns_tid(pid, w->tasks[i]), w->tasks[i] };
	if (w->ns_tids)
		qsort(w->ns_tids, w->ntasks, sizeof(*w->ns_tids), ns_tid_cmp);
}

/* The host TID of a thread id as the target knows it (its own namespace's), or 0. */
pid_t host_tid(const struct walk *w, pid_t tid)
{
	if (!w->ns_tids)
		return tid;
	size_t lo = 0, hi = w->ntasks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->ns_tids[mid].ns == tid)
			return tid ? w->ns_tids[mid].host : 0;
		if (w->ns_tids[mid].ns < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

bool task_exists(const struct walk *w, pid_t tid)
{
	size_t lo = 0, hi = w->ntasks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->tasks[mid] == tid)
			return true;
		if (w->tasks[mid] < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* <= 3.10: the TID inside glibc's struct pthread, accepted only when the pthread's self
 * pointer matches and the TID is a live task of the process. */
pid_t tid_from_pthread(struct walk *w, uint64_t pthread)
{
	unsigned char buf[GLIBC_PTHREAD_TID + 4];
	if (!plausible_ptr(pthread) || rd(w, pthread, buf, sizeof(buf)) != 0)
		return 0;
	int32_t tid = get_i32(buf, GLIBC_PTHREAD_TID);
	if (get_u64(buf, GLIBC_PTHREAD_SELF) != pthread || tid <= 0)
		return 0;
	tid = host_tid(w, tid);
	if (tid <= 0 || !task_exists(w, tid))
		return 0;
	return tid;
}

/* A small int object (Thread._native_id), or -1. */
static long read_small_int(struct walk *w, uint64_t obj)
{
	unsigned char buf[28];
	if (!plausible_ptr(obj) || rd(w, obj, buf, sizeof(buf)) != 0)
		return -1;
	const struct py_layout *l = &w->p->res.layout;
	if (l->int_size + 8 > sizeof(buf) || l->int_value + 8 > sizeof(buf))
		return -1;
	if (l->ints == PY_INT_27)
		return (long)get_u64(buf, l->int_value); /* PyIntObject ob_ival */
	uint64_t size = get_u64(buf, l->int_size); /* ob_size (<= 3.11) */
	if (size != 1)
		return -1;
	uint32_t digit;
	memcpy(&digit, buf + l->int_value, 4);
	return (long)(digit & 0x3fffffff);
}

void thread_from_threading(struct walk *w, const struct active_list *act,
				  struct py_thread *t)
{
	const struct py_layout *l = &w->p->res.layout;
	for (size_t i = 0; i < act->n; i++) {
		if (act->v[i].ident != t->thread_id)
			continue;
		uint64_t obj = act->v[i].thread;
		char *name = read_str(w, instance_attr(w, obj, l->attr_name));
		t->name = arena_strdup(w->out, name);
		free(name);
		uint64_t d = instance_attr(w, obj, l->attr_daemonic);
		if (d && w->p->res.t_true)
			t->daemon = d == w->p->res.t_true;
		if (t->tid == 0 && !l->ts_native_thread_id && l->attr_native_id) {
			long nid = read_small_int(w, instance_attr(w, obj, l->attr_native_id));
			pid_t htid = nid > 0 && nid < 0x40000000 ? host_tid(w, (pid_t)nid) : 0;
			if (htid > 0 && task_exists(w, htid))
				t->tid = htid;
		}
		return;
	}
}
