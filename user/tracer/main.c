/* main: entry point. Owns: choosing the subcommand (`dump` or the tracer). */
#include <string.h>

#include "dump.h"
#include "trace.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "dump") == 0)
		return dump_main(argc - 1, argv + 1);
	return trace_main(argc, argv);
}
