/* The binary half of tests/programs/hostile_elf.py (issue 12): named python3.11, so the
 * tracer looks for an interpreter in it; its section headers (patched by the test) claim
 * a .symtab and a .strtab of 64 MiB each in a sparse hole at the end of the file. It
 * sleeps PERIOD seconds, then execs PYTHON SCRIPT ARGS... (the script makes the next copy).
 * Usage: python3.11 PERIOD PYTHON SCRIPT [ARGS...] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s PERIOD PYTHON SCRIPT [ARGS...]\n", argv[0]);
		return 2;
	}
	double period = atof(argv[1]);
	struct timespec ts = { (time_t)period, (long)((period - (double)(time_t)period) * 1e9) };
	nanosleep(&ts, NULL);
	execv(argv[2], argv + 2);
	perror("execv");
	return 1;
}
