/* Unit tests of the line-table decoders (py_line_for_position, py_line_in_copy) against
 * the interpreters themselves: for every interpreter found, tests/unit/gen_linetables.py
 * (run by `make unit`) writes the raw co_lnotab / co_linetable bytes of real code objects
 * and, for every instruction position, the line that interpreter computes (dis.findlinestarts
 * <= 3.9, co_lines() 3.10+). One cmocka test per interpreter file in $UNIT_LINETABLES. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pylayout.h"
#include "pyreader.h"

#define MAX_FILES 64
#define MAX_TABLE (1u << 20)

struct facts {
	char path[512];
};

static int unhex(const char *s, unsigned char *out, uint32_t cap, uint32_t *len)
{
	*len = 0;
	if (strcmp(s, "-") == 0)
		return 0;
	size_t n = strlen(s);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		unsigned v;
		if (sscanf(s + i, "%2x", &v) != 1)
			return -1;
		out[(*len)++] = (unsigned char)v;
	}
	return 0;
}

static void check_file(void **state)
{
	const struct facts *f = *state;
	FILE *in = fopen(f->path, "r");
	assert_non_null(in);
	static char line[2 * MAX_TABLE + 1024];
	static unsigned char table[MAX_TABLE];
	uint32_t len = 0;
	int first = 0;
	unsigned major = 0, minor = 0;
	const struct py_layout *l = NULL;
	char name[256] = "";
	long codes = 0, positions = 0, wrong = 0, cut_wrong = 0;
	while (fgets(line, sizeof(line), in)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == 'V') {
			assert_int_equal(sscanf(line, "V %u %u", &major, &minor), 2);
			l = pylayout_for_version(major, minor);
			assert_non_null(l);
		} else if (line[0] == 'C') {
			static char hex[2 * MAX_TABLE + 1];
			assert_non_null(l);
			assert_int_equal(sscanf(line, "C %d %s %255s", &first, hex, name), 3);
			assert_int_equal(unhex(hex, table, MAX_TABLE, &len), 0);
			codes++;
		} else if (line[0] == 'P') {
			long long pos;
			int want;
			assert_int_equal(sscanf(line, "P %lld %d", &pos, &want), 2);
			positions++;
			int got = py_line_for_position(l, table, len, first, pos);
			if (got != want && wrong++ < 10)
				fprintf(stderr, "%s: %u.%u %s (first line %d, table %u bytes) position %lld: "
					"line %d, the interpreter says %d\n", f->path, major, minor, name,
					first, len, pos, got, want);
			/* a copy of only the first half of the table: the right line, or "cut" */
			int cl = -2;
			enum py_line_status st = py_line_in_copy(l, table, len / 2, len, first, pos, &cl);
			if (st != PY_LINE_CUT && !(st == PY_LINE_OK ? cl == want : want == -1)
			    && cut_wrong++ < 10)
				fprintf(stderr, "%s: %u.%u %s position %lld, half of %u bytes copied: "
					"status %d line %d, the interpreter says %d\n", f->path, major,
					minor, name, pos, len, (int)st, cl, want);
		}
	}
	fclose(in);
	printf("  %s: %ld code objects, %ld positions, %ld wrong, %ld wrong from half a table\n",
	       f->path, codes, positions, wrong, cut_wrong);
	assert_true(codes > 50 && positions > 1000);
	assert_int_equal(wrong, 0);
	assert_int_equal(cut_wrong, 0);
}

int main(void)
{
	const char *dir = getenv("UNIT_LINETABLES");
	if (!dir) {
		fprintf(stderr, "UNIT_LINETABLES: the directory gen_linetables.py wrote (make unit)\n");
		return 2;
	}
	DIR *d = opendir(dir);
	if (!d) {
		perror(dir);
		return 2;
	}
	static struct facts facts[MAX_FILES];
	static struct CMUnitTest tests[MAX_FILES];
	static char names[MAX_FILES][300];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_FILES) {
		size_t k = strlen(e->d_name);
		if (k < 5 || strcmp(e->d_name + k - 4, ".txt") != 0)
			continue;
		snprintf(facts[n].path, sizeof(facts[n].path), "%s/%s", dir, e->d_name);
		snprintf(names[n], sizeof(names[n]), "line table of %s", e->d_name);
		tests[n] = (struct CMUnitTest){ .name = names[n], .test_func = check_file,
						.initial_state = &facts[n] };
		n++;
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "%s: no interpreter's facts (*.txt)\n", dir);
		return 2;
	}
	return _cmocka_run_group_tests("linetable", tests, n, NULL, NULL);
}
