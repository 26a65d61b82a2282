/* dump: the `pyhang-trace dump PID [--json]` subcommand: every Python thread of a process
 * with its stack, now, without stopping it (reads through pyreader.h).
 * Owns: argument parsing, exit statuses (0 ok, 1 not Python / exited / unreadable, 2 usage),
 * and the output shapes: text like a Python traceback per thread (outermost frame first,
 * "most recent call last") or one JSON object {pid, python, threads} (innermost first).
 * Hidden options: --repeat N (benchmark) reads N times and reports CPU time per read on
 * stderr; --watch N (cache tests) reads N times 10 ms apart with one reader (warm caches)
 * and prints every result as one JSON line. */
#include "dump.h"

#include "asyncio_write.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "childwait.h"
#include "json.h"
#include "pyreader.h"
#include "pywrite.h"
#include "strbuf.h"
#include "waitgraph.h"

struct dump_opts {
	pid_t pid;
	bool json;
	long repeat;
	long watch;
};

static void dump_usage(FILE *f)
{
	fprintf(f, "usage: pyhang-trace dump PID [--json]\n"
		   "  Print every Python thread of process PID with its stack, read from\n"
		   "  /proc/PID/mem without stopping the process (%s).\n"
		   "  --json   one JSON object: {\"pid\", \"python\", \"threads\": [{\"tid\", \"name\",\n"
		   "           \"daemon\", \"gil\", \"state\", \"syscall\", \"stack\": [{\"function\",\n"
		   "           \"file\", \"line\", \"first_line\"}], \"waiting_for\", \"holds\"}]},\n"
		   "           frames innermost first (README, \"dump\"); with asyncio imported,\n"
		   "           \"asyncio\": {\"loops\": [{\"thread\", \"state\", \"tasks\"}]} (3.7-3.13;\n"
		   "           the text shows the tasks as a tree)\n"
		   "  --help   this text\n"
		   "Exit status: 0 success, 1 the process is not Python, exited or cannot be read,\n"
		   "2 usage error.\n", pylayout_supported_text());
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* 0 ok, 1 --help given, -1 usage error (message printed). */
static int parse_args(int argc, char **argv, struct dump_opts *o)
{
	bool have_pid = false;
	memset(o, 0, sizeof(*o));
	o->repeat = 1;
	for (int i = 1; i < argc; i++) {
		long v;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
		if (strcmp(argv[i], "--json") == 0) {
			o->json = true;
		} else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc &&
			   parse_long(argv[i + 1], 1, 1000000, &v)) {
			o->repeat = v;
			i++;
		} else if (strcmp(argv[i], "--watch") == 0 && i + 1 < argc &&
			   parse_long(argv[i + 1], 1, 1000000, &v)) {
			o->watch = v;
			o->json = true;
			i++;
		} else if (!have_pid && parse_long(argv[i], 1, INT_MAX, &v)) {
			o->pid = (pid_t)v;
			have_pid = true;
		} else {
			fprintf(stderr, "pyhang-trace dump: unexpected argument '%s'\n", argv[i]);
			return -1;
		}
	}
	if (!have_pid) {
		fprintf(stderr, "pyhang-trace dump: a PID is required\n");
		return -1;
	}
	return 0;
}

/* The asyncio loops and tasks of p, written by render() (asyncio_read.h): a loop running
 * callbacks for the tracer's default threshold (5 s) is called blocked. */
static void dump_asyncio(struct py_reader *r, const struct py_process *p, long repeat)
{
	struct aio_view v;
	uint64_t first = 0, rest = 0;
	for (long i = 0; i < (repeat > 1 ? repeat : 1); i++) {
		if (i)
			aio_view_free(&v);
		aio_read(r, p, 5.0, &v);
		*(i ? &rest : &first) += v.cost_ns;
	}
	if (repeat > 1 && v.imported) /* --repeat: the asyncio view's cost too */
		fprintf(stderr, "asyncio-bench: loops=%zu tasks=%zu first_cpu_ms=%.4f cpu_ms_per_read=%.4f\n",
			v.nloops, v.ntasks, (double)first / 1e6, (double)rest / 1e6 / (double)(repeat - 1));
	aio_publish(&v, 0);
}

static void render(struct strbuf *sb, const struct py_process *p, bool json)
{
	if (json) {
		struct jw w;
		jw_init(&w, sb);
		jw_obj_begin(&w);
		jw_kint(&w, "pid", p->pid);
		jw_kstr(&w, "python", p->version);
		py_write_threads_fields(&w, p);
		jw_obj_end(&w);
		sb_putc(sb, '\n');
		return;
	}
	sb_printf(sb, "Process %d, Python %s, %zu thread%s\n\n", (int)p->pid, p->version,
		  p->nthreads, p->nthreads == 1 ? "" : "s");
	py_write_threads_text(sb, p, 0);
	aio_write_text(sb, aio_published(p->pid, p->start_time));
}

static double cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Reads the process o->repeat times; the last result stays in *out. */
static int read_repeatedly(struct py_reader *r, const struct dump_opts *o, struct py_process *out,
			   char *err, size_t errlen)
{
	double t0 = cpu_seconds(), t1 = t0;
	for (long i = 0; i < o->repeat; i++) {
		if (i > 0)
			py_process_free(out);
		if (py_read_process(r, o->pid, out, err, errlen) != 0)
			return -1;
		if (i == 0)
			t1 = cpu_seconds();
	}
	if (o->repeat > 1) {
		double t2 = cpu_seconds();
		size_t frames = 0;
		for (size_t i = 0; i < out->nthreads; i++)
			frames += out->threads[i].nframes;
		fprintf(stderr, "dump-bench: threads=%zu frames=%zu first_read_cpu_ms=%.3f "
			"cpu_ms_per_read=%.4f preads_per_read=%llu reads=%ld\n",
			out->nthreads, frames, (t1 - t0) * 1e3, (t2 - t1) * 1e3 / (double)(o->repeat - 1),
			(unsigned long long)py_reader_last_preads(r, o->pid), o->repeat - 1);
	}
	return 0;
}

/* --watch: every read printed as one JSON line; stops at the first failure. */
static int watch(struct py_reader *r, const struct dump_opts *o)
{
	struct strbuf sb;
	char err[512];
	sb_init(&sb);
	for (long i = 0; i < o->watch; i++) {
		struct py_process p;
		if (py_read_process(r, o->pid, &p, err, sizeof(err)) != 0) {
			fprintf(stderr, "pyhang-trace dump: %s\n", err);
			sb_free(&sb);
			return 1;
		}
		dump_asyncio(r, &p, 1); /* first: the graph's idle rule reads the view */
		struct waitgraph g;
		bool have_graph = waitgraph_build(&g, r, &p) == 0;
		if (have_graph)
			childwait_attach_from_proc(&g, r, o->pid);
		render(&sb, &p, true);
		if (have_graph)
			waitgraph_free(&g);
		py_process_free(&p);
		if (sb_flush_to(&sb, stdout) != 0) {
			sb_free(&sb);
			return 1;
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	sb_free(&sb);
	return 0;
}

int dump_main(int argc, char **argv)
{
	struct dump_opts o;
	int pa = parse_args(argc, argv, &o);
	if (pa != 0) {
		dump_usage(pa > 0 ? stdout : stderr);
		return pa > 0 ? 0 : 2;
	}
	struct py_reader *r = py_reader_new();
	if (!r) {
		fprintf(stderr, "pyhang-trace dump: out of memory\n");
		return 1;
	}
	struct py_process p;
	char err[512];
	int status = 0;
	if (o.watch > 0) {
		status = watch(r, &o);
		py_reader_free(r);
		return status;
	}
	if (read_repeatedly(r, &o, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "pyhang-trace dump: %s\n", err);
		status = 1;
	} else {
		struct strbuf sb;
		struct waitgraph g;
		bool have_graph = false;
		uint64_t first_ns = 0, rest_ns = 0, min_ns = UINT64_MAX, first_reads = 0, rest_reads = 0;
		dump_asyncio(r, &p, o.repeat); /* first: the graph's idle rule reads the view */
		for (long i = 0; i < (o.repeat > 1 ? o.repeat : 1); i++) {
			if (have_graph)
				waitgraph_free(&g);
			uint64_t reads0 = py_reader_preads(r, o.pid);
			have_graph = waitgraph_build(&g, r, &p) == 0;
			if (have_graph) {
				*(i ? &rest_ns : &first_ns) += g.cost_ns;
				if (i && g.cost_ns < min_ns)
					min_ns = g.cost_ns;
				*(i ? &rest_reads : &first_reads) += py_reader_preads(r, o.pid) - reads0;
			}
		}
		if (have_graph) /* waits for children: the child, from the blocked call */
			childwait_attach_from_proc(&g, r, o.pid);
		if (have_graph && o.repeat > 1) /* --repeat: the wait-for graph's cost too */
			fprintf(stderr, "waitgraph-bench: threads=%zu first_cpu_ms=%.4f cpu_ms_per_build=%.4f "
				"min_cpu_ms=%.4f first_reads=%llu reads_per_build=%.1f\n",
				p.nthreads, (double)first_ns / 1e6,
				(double)rest_ns / 1e6 / (double)(o.repeat - 1), (double)min_ns / 1e6,
				(unsigned long long)first_reads,
				(double)rest_reads / (double)(o.repeat - 1));
		sb_init(&sb);
		render(&sb, &p, o.json);
		if (sb.oom) {
			fprintf(stderr, "pyhang-trace dump: the output would exceed %u MiB (or memory "
				"ran out)\n", STRBUF_MAX >> 20);
			status = 1;
		} else if (sb_flush_to(&sb, stdout) != 0) {
			fprintf(stderr, "pyhang-trace dump: cannot write the output: %s\n",
				strerror(errno));
			status = 1;
		}
		sb_free(&sb);
		if (have_graph)
			waitgraph_free(&g);
		py_process_free(&p);
	}
	aio_publish_clear();
	py_reader_free(r);
	return status;
}
