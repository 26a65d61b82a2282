/* pyimage: the serialized form of a Python process image for fuzz_pyreader and the seeding
 * tool: a header carrying what attaching resolved (struct py_resolved, minus the layout,
 * which is named by version), then the memory as fakemem regions (fakemem.h).
 * Header, little endian, PI_HEADER_SIZE bytes:
 *     u8  version index into the layout table (pylayout_nth: 0 = 2.7, 1 = 3.6, ...;
 *         taken modulo pylayout_count())
 *     u8  unicode27_width (2.7 Py_UNICODE size)
 *     u8  reserved[6]
 *     u64 runtime, interp_head, tstate_current, interpreter_lock,
 *         t_code, t_unicode, t_bytes, t_dict, t_true, gil_static[4][2]
 * 3.13+ layouts are not in the header: like the production reader, the fuzzer builds them
 * from the _Py_DebugOffsets found in the image at `runtime`. */
#ifndef PH_PYIMAGE_H
#define PH_PYIMAGE_H
#include <stddef.h>
#include <stdio.h>

#include "pyreader.h"

#define PI_HEADER_SIZE (8u + 17u * 8u)

/* Fills res from the header (layout left zeroed; major/minor set). 0, or -1 if too short. */
int pi_decode_header(const unsigned char *data, size_t len, struct py_resolved *res);
/* Writes the header of res. 0, or -1 (unknown version, I/O error). */
int pi_write_header(FILE *f, const struct py_resolved *res);
#endif
