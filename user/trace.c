/* trace: placeholder. */
#include "trace.h"
#include <stdio.h>
int trace_main(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "not yet\n");
	return 2;
}
