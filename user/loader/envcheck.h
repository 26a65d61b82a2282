/* envcheck: what the tracer needs of this host, checked before anything is loaded, each
 * missing piece named in one line: the capabilities (all missing ones at once), BTF, and
 * tracefs with syscall tracepoints (mounted when it is not); and whether an optional
 * tracepoint exists (the feature probes of loader.c). loader_check_environment is declared
 * in loader.h. */
#ifndef PH_ENVCHECK_H
#define PH_ENVCHECK_H
#include <stdbool.h>

/* Whether tracefs (found as loader_check_environment left it) has events/CATEGORY/NAME. */
bool tracepoint_exists(const char *category, const char *name);
#endif
