/* A C program that runs CPython by loading libpython at run time (as plugins, uWSGI-like
 * servers and editors do), for tests/test_trace_*.py: a process running a CPython interpreter
 * whose executable is not `python` and that does not even link libpython.
 *   trace_embed LIBPYTHON.so CODE      (set PYTHONHOME to that interpreter's prefix)
 * Exits 0 when CODE ran without an exception, 1 when it raised, 2 on a set-up error. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s LIBPYTHON CODE\n", argv[0]);
		return 2;
	}
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		fprintf(stderr, "trace_embed: %s\n", dlerror());
		return 2;
	}
	void (*init)(void) = (void (*)(void))dlsym(h, "Py_Initialize");
	int (*run)(const char *, void *) = (int (*)(const char *, void *))dlsym(h, "PyRun_SimpleStringFlags");
	void (*fini)(void) = (void (*)(void))dlsym(h, "Py_Finalize");
	if (!init || !run || !fini) {
		fprintf(stderr, "trace_embed: %s lacks the embedding API\n", argv[1]);
		return 2;
	}
	init();
	int rc = run(argv[2], NULL);
	fini();
	return rc == 0 ? 0 : 1;
}
