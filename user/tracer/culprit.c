/* culprit: the place of an action in a captured stack (see culprit.h). */
#include "culprit.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "diagnose.h"

static const char *basename_of(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* The part of a library file's path that names its library: the component after
 * "/site-packages/" or "/dist-packages/", else after "/lib/pythonX.Y/"; NULL when the file
 * is not a library's. "<frozen importlib._bootstrap>" gives "importlib._bootstrap>". */
static const char *library_part(const char *file)
{
	const char *m;
	if (!file)
		return NULL;
	if ((m = strstr(file, "/site-packages/")) != NULL)
		return m + strlen("/site-packages/");
	if ((m = strstr(file, "/dist-packages/")) != NULL)
		return m + strlen("/dist-packages/");
	if (strncmp(file, "<frozen ", 8) == 0)
		return file + 8;
	if ((m = strstr(file, "/lib/python")) != NULL) {
		const char *slash = strchr(m + strlen("/lib/python"), '/');
		return slash ? slash + 1 : NULL;
	}
	return NULL;
}

static bool is_library(const struct py_frame *f)
{
	return library_part(f->file) != NULL;
}

/* "asyncio" of "asyncio/unix_events.py", "subprocess" of "subprocess.py". */
static void library_name(const char *file, char *buf, size_t len)
{
	const char *p = library_part(file);
	size_t n = strcspn(p, "/.>");
	snprintf(buf, len, "%.*s", (int)(n > 60 ? 60 : n), p);
}

static void file_line(const struct py_frame *f, char *buf, size_t len)
{
	if (f->line >= 0)
		snprintf(buf, len, "%.100s:%d", basename_of(f->file ? f->file : "?"), f->line);
	else
		snprintf(buf, len, "%.100s, line unknown", basename_of(f->file ? f->file : "?"));
}

static const char *short_name(const char *function)
{
	const char *d = function ? strrchr(function, '.') : NULL;
	return d ? d + 1 : function ? function : "?";
}

/* An asyncio event loop frame (2.7 has none; 3.4-3.13: BaseEventLoop.run_forever and
 * _run_once in asyncio/base_events.py). */
static bool is_event_loop(const struct py_frame *f)
{
	const char *p = library_part(f->file);
	const char *fn = short_name(f->function);
	return p && strcmp(p, "asyncio/base_events.py") == 0 &&
	       (strcmp(fn, "run_forever") == 0 || strcmp(fn, "_run_once") == 0);
}

/* The program frame i: "app.py:39" for module-level code, else "app.py:39 in main()". */
static void program_frame(const struct py_frame *f, char *buf, size_t len)
{
	char fl[160];
	file_line(f, fl, sizeof(fl));
	if (f->function && strcmp(f->function, "<module>") == 0)
		snprintf(buf, len, "%s", fl);
	else
		snprintf(buf, len, "%s in %.100s()", fl, f->function ? f->function : "?");
}

void culprit_place(const struct py_thread *t, char *buf, size_t len)
{
	if (t->nframes == 0) {
		snprintf(buf, len, "in native code (no Python frames)");
		return;
	}
	const struct py_frame *f0 = &t->frames[0];
	if (!is_library(f0)) {
		char where[256];
		diagnose_program_location(t, where, sizeof(where));
		snprintf(buf, len, "at %s", where);
		return;
	}
	char lib[64], fl[160], user[300];
	library_name(f0->file, lib, sizeof(lib));
	file_line(f0, fl, sizeof(fl));
	bool loop = false;
	size_t i;
	for (i = 1; i < t->nframes && is_library(&t->frames[i]); i++)
		loop = loop || is_event_loop(&t->frames[i]);
	if (i == t->nframes) {
		snprintf(buf, len, "in %s's %.100s (%s), with no frame of the program on the stack", lib,
			 f0->function ? f0->function : "?", fl);
		return;
	}
	program_frame(&t->frames[i], user, sizeof(user));
	snprintf(buf, len, "in %s's %.100s (%s), %s %s", lib, f0->function ? f0->function : "?", fl,
		 loop ? "run by the event loop started at" : "reached from", user);
}
