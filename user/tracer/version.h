/* version: `pyhang-trace --version`. Owns: the version, the git commit and the libbpf
 * version this binary was built from (build/version.h, written by the Makefile), and the
 * list of BPF features the embedded object uses, read from the object itself. */
#ifndef PH_VERSION_H
#define PH_VERSION_H
#include <stdio.h>

/* Writes the --version text to f; 0, or 1 when the BPF object could not be read. */
int version_print(FILE *f);
#endif
