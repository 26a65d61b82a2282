/* pyunicode: the one UTF-8 encoder and the one decoder of CPython string units (PEP 393
 * kinds 1/2/4, 2.7 UCS2/UCS4 unicode), shared by the reader (pyunicode.c, which owns them)
 * and the decoder of stacks captured in BPF (pystack.c). Which kind a str has: the PEP 393
 * state rules of bpf/pyrules.h. */
#ifndef PYUNICODE_H
#define PYUNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Writes the UTF-8 encoding of code point cp to out (room for 4 bytes; surrogates and
 * values over U+10FFFF become U+FFFD). Returns the bytes written, 1-4. */
size_t utf8_put(char *out, uint32_t cp);

/* n units of width bytes each (1: latin-1, 2: UCS-2, 4: UCS-4; little-endian, x86_64) at
 * data as a malloc'd NUL-terminated UTF-8 string (at most 4 * n + 1 bytes), NULL on OOM. */
char *decode_units(const unsigned char *data, size_t n, unsigned width);

#endif
