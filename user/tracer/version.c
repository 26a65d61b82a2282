/* version: `pyhang-trace --version` (see version.h). */
#include "version.h"

#include <bpf/libbpf.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "loader.h"
#include "ph_build_info.h" /* PH_VERSION, PH_GIT_COMMIT, PH_LIBBPF_VERSION: build/, by make */

#define MAX_PARTS 256

struct part {
	bool is_map;
	char type[32];
	char label[96];
};

struct parts {
	struct part p[MAX_PARTS];
	int n;
};

static void size_label(uint32_t v, char *buf, size_t len)
{
	if (v >= (1u << 20) && v % (1u << 20) == 0)
		snprintf(buf, len, "%uM", v >> 20);
	else if (v >= (1u << 10) && v % (1u << 10) == 0)
		snprintf(buf, len, "%uK", v >> 10);
	else
		snprintf(buf, len, "%u", v);
}

static void collect(void *arg, bool is_map, const char *type, const char *name,
		    const char *section, uint32_t max_entries)
{
	struct parts *ps = arg;
	if (ps->n >= MAX_PARTS || (is_map && strchr(name, '.')))
		return; /* .rodata, .bss: the object's own globals, not a feature */
	struct part *p = &ps->p[ps->n++];
	p->is_map = is_map;
	snprintf(p->type, sizeof(p->type), "%s", type ? type : "unknown");
	if (is_map) {
		char sz[32];
		size_label(max_entries, sz, sizeof(sz));
		if (strcmp(p->type, "ringbuf") == 0)
			snprintf(p->label, sizeof(p->label), "%s (%s bytes)", name, sz);
		else
			snprintf(p->label, sizeof(p->label), "%s", name);
		return;
	}
	/* "tracepoint/syscalls/sys_enter_futex" -> "syscalls/sys_enter_futex"; a section
	 * without an attach point ("perf_event", "syscall") -> the program's name */
	const char *slash = section ? strchr(section, '/') : NULL;
	snprintf(p->label, sizeof(p->label), "%s", slash ? slash + 1 : name);
}

static void print_group(FILE *f, const struct parts *ps, bool maps)
{
	bool done[MAX_PARTS] = { false };
	for (int i = 0; i < ps->n; i++) {
		if (done[i] || ps->p[i].is_map != maps)
			continue;
		int count = 0;
		for (int k = i; k < ps->n; k++)
			if (ps->p[k].is_map == maps && strcmp(ps->p[k].type, ps->p[i].type) == 0)
				count++;
		fprintf(f, "  %s %s (%d):", maps ? "map" : "program", ps->p[i].type, count);
		const char *sep = " ";
		for (int k = i; k < ps->n; k++) {
			if (ps->p[k].is_map != maps || strcmp(ps->p[k].type, ps->p[i].type) != 0)
				continue;
			done[k] = true;
			fprintf(f, "%s%s", sep, ps->p[k].label);
			sep = ", ";
		}
		fputc('\n', f);
	}
}

int version_print(FILE *f)
{
	static struct parts ps;
	fprintf(f, "pyhang-trace %s\n", PH_VERSION);
	fprintf(f, "git commit: %s\n", PH_GIT_COMMIT);
	fprintf(f, "libbpf: %s (linked statically; API %s)\n", PH_LIBBPF_VERSION,
		libbpf_version_string());
	ps.n = 0;
	if (loader_for_each_object_part(collect, &ps) != 0) {
		fprintf(f, "BPF features: unknown (the embedded BPF object cannot be parsed)\n");
		return 1;
	}
	fprintf(f, "BPF features in use (from the embedded object; CO-RE, relocated against the "
		   "running kernel's BTF at start-up):\n");
	print_group(f, &ps, false);
	print_group(f, &ps, true);
	return 0;
}
