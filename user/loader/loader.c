/* loader: skeleton load/attach, feature fallbacks, map access. */
#include "loader.h"
#include "ratelimit.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "envcheck.h"
#include "pyhang.skel.h"

struct loader {
	struct pyhang_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *scan_link;
	int scan_perf_fd;
	bool scan_in_kernel;
	uint64_t scan_period_ns;
	uint64_t next_scan_ns;
	int ncpus;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- load and attach */

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("PYHANG_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	if (level == LIBBPF_DEBUG && getenv("PYHANG_DEBUG") && strcmp(getenv("PYHANG_DEBUG"), "2") == 0)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

/* Programs on tracepoints that older kernels lack are optional. */
static void disable_missing_optional(struct pyhang_bpf *s)
{
	if (!tracepoint_exists("syscalls", "sys_enter_futex_wait")) {
		bpf_program__set_autoload(s->progs.futex_wait2_enter, false);
		bpf_program__set_autoload(s->progs.futex_wait2_exit, false);
	}
	if (!tracepoint_exists("syscalls", "sys_enter_futex_waitv")) {
		bpf_program__set_autoload(s->progs.futex_waitv_enter, false);
		bpf_program__set_autoload(s->progs.futex_waitv_exit, false);
	}
	/* OOM victims: fork.bpf.h falls back to signal->oom_mm at the exit without it */
	if (!tracepoint_exists("oom", "mark_victim"))
		bpf_program__set_autoload(s->progs.on_oom_victim, false);
	bpf_program__set_autoattach(s->progs.scan_tick, false);
	bpf_program__set_autoattach(s->progs.scan_manual, false);
	bpf_program__set_autoattach(s->progs.clock_sample, false);
}

/* One jiffy in ns: the resolution the kernel reports for CLOCK_MONOTONIC_COARSE is
 * TICK_NSEC (kernel/time/posix-timers.c, all Linux versions with coarse clocks, 2.6.32+). */
static unsigned long long tick_ns(void)
{
	struct timespec res;
	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0 || res.tv_sec != 0 || res.tv_nsec <= 0)
		return 4000000ULL; /* HZ=250, the most common setting */
	return (unsigned long long)res.tv_nsec;
}

/* Scan often enough that a wait is reported within ~10% of the threshold after it passes
 * it, but never more than 20 times a second nor less than 4 times. */
static uint64_t scan_period_for(uint64_t threshold_ns)
{
	uint64_t p = threshold_ns / 10;
	if (p < 50000000ull)
		p = 50000000ull;
	if (p > 250000000ull)
		p = 250000000ull;
	return p;
}

static int first_online_cpu(void)
{
	for (int cpu = 0; cpu < 4096; cpu++) {
		char path[96];
		snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
		FILE *f = fopen(path, "re");
		if (!f) {
			snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d", cpu);
			if (access(path, F_OK) == 0)
				return cpu; /* cpu0 often has no "online" file: it is always online */
			continue;
		}
		int c = fgetc(f);
		fclose(f);
		if (c == '1')
			return cpu;
	}
	return 0;
}

/* Preferred: a cpu-clock perf event on one CPU runs scan_tick in the kernel. */
static int attach_kernel_scanner(struct loader *l)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.sample_period = l->scan_period_ns; /* cpu-clock counts ns */
	int fd = (int)syscall(SYS_perf_event_open, &attr, -1, first_online_cpu(), -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -1;
	struct bpf_link *link = bpf_program__attach_perf_event(l->skel->progs.scan_tick, fd);
	if (!link) {
		close(fd);
		return -1;
	}
	l->scan_perf_fd = fd;
	l->scan_link = link;
	l->scan_in_kernel = true;
	return 0;
}

struct loader *loader_open(const struct loader_config *cfg, char *err, size_t errlen)
{
	libbpf_set_print(libbpf_quiet);
	struct loader *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->scan_perf_fd = -1;
	l->scan_period_ns = scan_period_for(cfg->threshold_ns);

	l->skel = pyhang_bpf__open();
	if (!l->skel) {
		snprintf(err, errlen, "cannot open BPF object: %s", strerror(errno));
		goto fail;
	}
	struct pyhang_bpf__rodata *ro = l->skel->rodata;
	ro->threshold_ns = cfg->threshold_ns;
	ro->trace_all_procs = cfg->trace_all_procs;
	ro->host_wide = cfg->host_wide;
	ro->follow_children = cfg->follow_children;
	ro->self_tgid = (unsigned int)getpid();
	ro->tick_ns = tick_ns();
	ratelimit_configure(l->skel);
	disable_missing_optional(l->skel);
	if (cfg->ringbuf_bytes &&
	    bpf_map__set_max_entries(l->skel->maps.events, cfg->ringbuf_bytes) != 0) {
		snprintf(err, errlen, "cannot set the ring buffer size to %u bytes",
			 (unsigned)cfg->ringbuf_bytes);
		goto fail;
	}
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu > 0 && bpf_map__set_max_entries(l->skel->maps.stack_scratch, (uint32_t)ncpu) != 0) {
		snprintf(err, errlen, "cannot size the stack scratch map");
		goto fail;
	}

	int rc = pyhang_bpf__load(l->skel);
	if (rc) {
		snprintf(err, errlen, "cannot load BPF programs: %s (set PYHANG_DEBUG=1 for the "
			 "verifier log)", strerror(-rc));
		goto fail;
	}
	rc = pyhang_bpf__attach(l->skel);
	if (rc) {
		snprintf(err, errlen, "cannot attach BPF programs: %s", strerror(-rc));
		goto fail;
	}
	if (attach_kernel_scanner(l) != 0)
		l->next_scan_ns = mono_ns() + l->scan_period_ns; /* fallback: scans from userspace */
	l->ncpus = libbpf_num_possible_cpus();
	if (l->ncpus <= 0)
		l->ncpus = 1;
	return l;
fail:
	loader_close(l);
	return NULL;
}

void loader_close(struct loader *l)
{
	if (!l)
		return;
	ring_buffer__free(l->rb);
	bpf_link__destroy(l->scan_link);
	if (l->scan_perf_fd >= 0)
		close(l->scan_perf_fd);
	pyhang_bpf__destroy(l->skel);
	free(l);
}

int loader_parse_ringbuf_size(const char *s, uint32_t *out, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') {
		snprintf(err, errlen, "expected a size in bytes, e.g. 4M");
		return -1;
	}
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno) {
		snprintf(err, errlen, "expected a size in bytes, e.g. 4M");
		return -1;
	}
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (*end) {
		snprintf(err, errlen, "expected a size in bytes with an optional K, M or G suffix, e.g. 4M");
		return -1;
	}
	if (v > (unsigned long long)LOADER_RINGBUF_MAX >> shift) {
		snprintf(err, errlen, "too large: at most %uG", LOADER_RINGBUF_MAX >> 30);
		return -1;
	}
	v <<= shift;
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	if (v == 0 || (v & (v - 1)) != 0) {
		snprintf(err, errlen, "must be a power of two (e.g. 256K, 1M, 4M)");
		return -1;
	}
	if (v % (unsigned long long)page != 0) {
		snprintf(err, errlen, "must be a multiple of the page size (%ld bytes)", page);
		return -1;
	}
	if (v < LOADER_RINGBUF_MIN) {
		snprintf(err, errlen, "too small: at least %uK (a stack record takes about 35K)",
			 LOADER_RINGBUF_MIN >> 10);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

uint32_t loader_default_ringbuf_size(void)
{
	libbpf_set_print(libbpf_quiet);
	struct pyhang_bpf *s = pyhang_bpf__open();
	if (!s)
		return 0;
	uint32_t bytes = bpf_map__max_entries(s->maps.events);
	pyhang_bpf__destroy(s);
	return bytes;
}

int loader_for_each_object_part(loader_part_fn fn, void *arg)
{
	libbpf_set_print(libbpf_quiet);
	struct pyhang_bpf *s = pyhang_bpf__open(); /* parsed only: nothing is loaded */
	if (!s)
		return -1;
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, s->obj)
		fn(arg, false, libbpf_bpf_prog_type_str(bpf_program__type(prog)),
		   bpf_program__name(prog), bpf_program__section_name(prog), 0);
	struct bpf_map *map;
	bpf_object__for_each_map(map, s->obj)
		fn(arg, true, libbpf_bpf_map_type_str(bpf_map__type(map)), bpf_map__name(map), NULL,
		   bpf_map__max_entries(map));
	pyhang_bpf__destroy(s);
	return 0;
}

uint32_t loader_ringbuf_size(const struct loader *l)
{
	return bpf_map__max_entries(l->skel->maps.events);
}

/* ---------------------------------------------------------------- events and scanning */

struct rb_ctx {
	loader_event_fn fn;
	void *arg;
};
static struct rb_ctx g_rb_ctx;

static int on_ringbuf_sample(void *ctx, void *data, size_t size)
{
	struct rb_ctx *c = ctx;
	if (size < sizeof(unsigned int))
		return 0;
	return c->fn(c->arg, data, size);
}

int loader_setup_ringbuf(struct loader *l, loader_event_fn fn, void *arg)
{
	g_rb_ctx.fn = fn;
	g_rb_ctx.arg = arg;
	l->rb = ring_buffer__new(bpf_map__fd(l->skel->maps.events), on_ringbuf_sample, &g_rb_ctx, NULL);
	return l->rb ? 0 : -1;
}

/* Records sent without a wakeup (RB_LAZY in the BPF programs) do not make epoll ready:
 * after every wait, whatever it ended with, the ring is drained too. */
int loader_poll(struct loader *l, int timeout_ms)
{
	int polled = ring_buffer__poll(l->rb, timeout_ms);
	if (polled < 0 && polled != -EINTR)
		return polled;
	int drained = ring_buffer__consume(l->rb);
	if (drained < 0)
		return drained;
	return (polled > 0 ? polled : 0) + drained;
}

int loader_scan_due_in_ms(struct loader *l)
{
	if (l->scan_in_kernel)
		return -1;
	uint64_t now = mono_ns();
	if (now >= l->next_scan_ns)
		return 0;
	return (int)((l->next_scan_ns - now) / 1000000ull) + 1;
}

void loader_scan_if_due(struct loader *l)
{
	if (l->scan_in_kernel || mono_ns() < l->next_scan_ns)
		return;
	uint64_t args[2] = { 0, 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = sizeof(args));
	if (bpf_prog_test_run_opts(bpf_program__fd(l->skel->progs.scan_manual), &opts) != 0)
		fprintf(stderr, "pyhang-trace: scan failed: %s\n", strerror(errno));
	l->next_scan_ns = mono_ns() + l->scan_period_ns;
}

uint64_t loader_scan_period_ns(const struct loader *l)
{
	return l->scan_period_ns;
}

const char *loader_scan_mechanism(const struct loader *l)
{
	return l->scan_in_kernel ? "perf_event" : "userspace";
}

/* ---------------------------------------------------------------- maps */

/* The userspace half of the watch table of bpf/watch.bpf.h (watch_find, watch_put): same
 * slot rules. A slot is rewritten whole here, not compare-and-swapped: a process the kernel
 * starts watching in the same slot at the same instant (a fork or exec of a pid equal to
 * ours modulo PH_WATCH_SLOTS) could be lost; the slot itself never goes wrong. */
static int watch_slot_read(struct loader *l, pid_t tgid, struct ph_watch_slot *s)
{
	uint32_t k = ph_watch_slot_key((uint32_t)tgid);
	memset(s, 0, sizeof(*s));
	return bpf_map__lookup_elem(l->skel->maps.watch_slots, &k, sizeof(k), s, sizeof(*s), 0);
}

static int watch_lookup(struct loader *l, pid_t tgid, struct ph_watch *w)
{
	uint32_t key = (uint32_t)tgid;
	struct ph_watch_slot s;
	memset(w, 0, sizeof(*w));
	if (watch_slot_read(l, tgid, &s) != 0)
		return -1;
	switch (ph_watch_slot_where(&s, key)) {
	case PH_SLOT_MINE:
		*w = s.w;
		return 0;
	case PH_SLOT_ABSENT:
		return -1;
	default:
		break;
	}
	return bpf_map__lookup_elem(l->skel->maps.watched, &key, sizeof(key), w, sizeof(*w), 0);
}

static int watch_store(struct loader *l, pid_t tgid, const struct ph_watch *w)
{
	uint32_t key = (uint32_t)tgid, k = ph_watch_slot_key(key);
	struct ph_watch_slot s;
	if (watch_slot_read(l, tgid, &s) != 0)
		return -1;
	if (s.tgid == key || s.tgid == 0) {
		bool had_overflow = s.tgid == 0 && s.shared;
		s.tgid = key;
		s.w = *w;
		if (bpf_map__update_elem(l->skel->maps.watch_slots, &k, sizeof(k), &s, sizeof(s), BPF_ANY))
			return -1;
		if (had_overflow) /* an older entry of this tgid may be there: the slot wins now */
			(void)bpf_map__delete_elem(l->skel->maps.watched, &key, sizeof(key), 0);
		return 0;
	}
	if (!s.shared) {
		s.shared = 1;
		if (bpf_map__update_elem(l->skel->maps.watch_slots, &k, sizeof(k), &s, sizeof(s), BPF_ANY))
			return -1;
	}
	return bpf_map__update_elem(l->skel->maps.watched, &key, sizeof(key), w, sizeof(*w), BPF_ANY);
}

int loader_watch(struct loader *l, pid_t tgid, uint32_t flags)
{
	struct ph_watch w;
	if (watch_lookup(l, tgid, &w) != 0)
		memset(&w, 0, sizeof(w));
	w.flags = flags;
	return watch_store(l, tgid, &w);
}

int loader_watch_add_flags(struct loader *l, pid_t tgid, uint32_t flags)
{
	struct ph_watch w;
	if (watch_lookup(l, tgid, &w) != 0)
		memset(&w, 0, sizeof(w));
	w.flags |= flags;
	return watch_store(l, tgid, &w);
}

int loader_set_gil_range(struct loader *l, pid_t tgid, uint64_t lo, uint64_t hi)
{
	struct ph_watch w;
	if (watch_lookup(l, tgid, &w) != 0)
		return -1; /* not watched: nothing to refine */
	w.gil_lo = lo;
	w.gil_hi = hi;
	return watch_store(l, tgid, &w);
}

int loader_fork_of(struct loader *l, pid_t child, struct ph_fork_rec *out)
{
	uint32_t key = (uint32_t)child;
	return bpf_map__lookup_elem(l->skel->maps.forks, &key, sizeof(key), out, sizeof(*out), 0);
}

uint32_t loader_watch_flags(struct loader *l, pid_t tgid)
{
	struct ph_watch w;
	return watch_lookup(l, tgid, &w) == 0 ? w.flags : 0;
}

int loader_set_pyproc(struct loader *l, pid_t tgid, const struct ph_pyproc *pp)
{
	uint32_t key = (uint32_t)tgid;
	return bpf_map__update_elem(l->skel->maps.pyprocs, &key, sizeof(key), pp, sizeof(*pp), BPF_ANY);
}

void loader_forget_pyproc(struct loader *l, pid_t tgid)
{
	uint32_t key = (uint32_t)tgid;
	/* ENOENT (never described, or removed at exit) is what we want too */
	(void)bpf_map__delete_elem(l->skel->maps.pyprocs, &key, sizeof(key), 0);
}

/* CLOCK_MONOTONIC ns → jiffies, through a (ktime, jiffies) pair sampled in the kernel. */
static int mono_to_jiffies(struct loader *l, uint64_t mono_ns, uint64_t *out)
{
	uint64_t args[2] = { 0, 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = sizeof(args));
	if (bpf_prog_test_run_opts(bpf_program__fd(l->skel->progs.clock_sample), &opts) != 0)
		return -1;
	uint64_t now_ns = l->skel->bss->clock_sample_ns, now_j = l->skel->bss->clock_sample_jiffies;
	uint64_t tick = l->skel->rodata->tick_ns;
	uint64_t age = now_ns > mono_ns ? (now_ns - mono_ns + tick / 2) / tick : 0;
	*out = now_j > age ? now_j - age : 0;
	return 0;
}

/* Seeds go to the overflow hash (BPF_NOEXIST: a wait the kernel saw begin since attaching
 * is more accurate), never to a slot, which only its owner thread writes. */
int loader_seed_wait(struct loader *l, pid_t tgid, uint64_t proc_start, pid_t tid, uint64_t start_ns,
		     uint64_t uaddr, uint32_t op)
{
	uint32_t key = (uint32_t)tid, slot_key = ph_wait_slot_key(key);
	struct ph_wait w;
	if (bpf_map__lookup_elem(l->skel->maps.wait_slots, &slot_key, sizeof(slot_key), &w, sizeof(w),
				 0) == 0 && w.tid == key)
		return -1; /* the kernel already saw a wait of this thread */
	memset(&w, 0, sizeof(w));
	uint64_t start_j;
	if (mono_to_jiffies(l, start_ns, &start_j) != 0)
		return -1;
	w.start_jiffies = start_j;
	w.uaddr = uaddr;
	w.op = op;
	w.flags = PH_WF_BEFORE_START;
	w.tgid = (uint32_t)tgid;
	w.tid = key;
	w.proc_start = proc_start;
	if (bpf_map__update_elem(l->skel->maps.waits, &key, sizeof(key), &w, sizeof(w), BPF_NOEXIST))
		return -1;
	__atomic_fetch_add(&l->skel->bss->waits_overflow_live, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* A seed whose thread moved on before it was stored. A new wait of the thread would have
 * reused the record and cleared PH_WF_BEFORE_START: then the record is real and stays. */
int loader_unseed_wait(struct loader *l, pid_t tid)
{
	uint32_t key = (uint32_t)tid;
	struct ph_wait w;
	if (bpf_map__lookup_elem(l->skel->maps.waits, &key, sizeof(key), &w, sizeof(w), 0) != 0)
		return 0;
	if (!(w.flags & PH_WF_BEFORE_START))
		return 0;
	if (bpf_map__delete_elem(l->skel->maps.waits, &key, sizeof(key), 0) != 0)
		return 0;
	__atomic_fetch_sub(&l->skel->bss->waits_overflow_live, 1, __ATOMIC_SEQ_CST);
	return 0;
}

int loader_wait_record(struct loader *l, pid_t tid, struct ph_wait *out)
{
	uint32_t key = (uint32_t)tid, slot_key = ph_wait_slot_key(key);
	if (tid <= 0)
		return -1;
	if (bpf_map__lookup_elem(l->skel->maps.wait_slots, &slot_key, sizeof(slot_key), out,
				 sizeof(*out), 0) == 0 && out->tid == key)
		return 0;
	if (bpf_map__lookup_elem(l->skel->maps.waits, &key, sizeof(key), out, sizeof(*out), 0) == 0 &&
	    out->tid == key)
		return 0;
	return -1;
}

int loader_read_stats(struct loader *l, struct loader_stats *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t *vals = calloc((size_t)l->ncpus, sizeof(uint64_t));
	if (!vals)
		return -1;
	for (uint32_t slot = 0; slot < PH_STAT_MAX; slot++) {
		if (bpf_map__lookup_elem(l->skel->maps.stats, &slot, sizeof(slot), vals,
					 sizeof(uint64_t) * (size_t)l->ncpus, 0) != 0)
			continue;
		for (int c = 0; c < l->ncpus; c++)
			out->counters[slot] += vals[c];
	}
	free(vals);
	return 0;
}

int loader_epoll_fd(struct loader *l)
{
	return l->rb ? ring_buffer__epoll_fd(l->rb) : -1;
}

void loader_for_each_prog(struct loader *l, loader_prog_fn fn, void *arg)
{
	struct bpf_program *p;
	bpf_object__for_each_program(p, l->skel->obj) {
		int fd = bpf_program__fd(p);
		if (fd >= 0) /* optional programs left unloaded have none */
			fn(arg, bpf_program__name(p), fd);
	}
}
