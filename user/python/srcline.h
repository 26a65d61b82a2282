/* srcline: the source line under a frame, read the way Python's traceback does (linecache),
 * but from the target's own file system: /proc/PID/root/<file>, resolved inside that root
 * (openat2 RESOLVE_IN_ROOT: a symlink cannot lead outside it), never blocking (O_NONBLOCK,
 * regular files only) and bounded (SRC_MAX_FILE bytes of a file, SRC_FILES files cached
 * until srcline_flush). The file is untrusted: the caller escapes what it prints. */
#ifndef PH_SRCLINE_H
#define PH_SRCLINE_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SRC_MAX_FILE (2u << 20)
#define SRC_FILES 8

/* Line `line` (1-based) of `file` as process pid sees it, without its indentation and line
 * end, into buf (cut at len-1 bytes). false when unknown (no such file, not regular, too
 * big, no such line). */
bool srcline_get(pid_t pid, const char *file, int line, char *buf, size_t len);
/* Forget the cached files. */
void srcline_flush(void);
#endif
