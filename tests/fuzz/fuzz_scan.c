/* fuzz_scan: the symbol-less search for the interpreter (user/python/py*.c through
 * py_resolve_by_scan): the chunked scan of a section for a pointer to a valid interpreter
 * (2.7/3.6: &interp_head; 3.7-3.9: the interpreters.head/.main pair of _PyRuntime), the
 * strict interpreter validation of every candidate, then the walk from what was found.
 * Input: a pyimage header (tests/fuzz/pyimage.h; its runtime and interp_head are ignored,
 * 3.13+ is skipped: its layout needs _PyRuntime), u64 scan start, u64 scan size, then
 * memory regions (tests/fuzz/fakemem.h). Seeds: live 2.7-3.9 processes, scanned around the
 * real pointer by tests/fuzz/seed. */
#include <stdint.h>
#include <string.h>

#include "fakemem.h"
#include "pyimage.h"
#include "pyreader.h"

#define SCAN_HEADER (PI_HEADER_SIZE + 16u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fakemem fm;
	struct py_resolved res;
	struct py_process out;
	uint64_t start, len;
	char err[256];
	if (size < SCAN_HEADER || pi_decode_header(data, size, &res) != 0)
		return 0;
	const struct py_layout *l = pylayout_for_version(res.layout.major, res.layout.minor);
	if (!l || pylayout_debug_offsets_size(l->major, l->minor) != 0) /* 3.13+: no scan */
		return 0;
	res.layout = *l;
	res.runtime = res.interp_head = 0;
	memcpy(&start, data + PI_HEADER_SIZE, 8);
	memcpy(&len, data + PI_HEADER_SIZE + 8, 8);
	if (fm_parse(&fm, data + SCAN_HEADER, size - SCAN_HEADER) != 0)
		return 0;
	if (py_resolve_by_scan(&res, fm_read, &fm, start, len) == 0 &&
	    py_read_resolved(&res, fm_read, &fm, &out, err, sizeof(err)) == 0)
		py_process_free(&out);
	fm_free(&fm);
	return 0;
}
