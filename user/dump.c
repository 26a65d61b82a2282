/* dump: the `pyhang-trace dump PID` subcommand. Placeholder until the CPython reader lands. */
#include "dump.h"

#include <stdio.h>

int dump_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "pyhang-trace dump: not implemented yet\n");
	return 1;
}
