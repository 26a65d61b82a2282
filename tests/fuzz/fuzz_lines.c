/* fuzz_lines: py_line_for_position (user/python/pylinetable.c), the decoders of every CPython line
 * table: 2.7 co_lnotab (unsigned deltas), 3.6-3.9 co_lnotab (signed line deltas), 3.10
 * co_linetable, 3.11+ location tables (varints, signed varints, short/one-line/no-line forms).
 * Input, little endian: u8 version index (modulo pylayout_count(): 2.7, 3.6 ... 3.13),
 * i32 co_firstlineno, i64 position (f_lasti up to 3.10, byte offset 3.11+), then the table.
 * Seeds: real tables and positions of code objects of each interpreter (tests/fuzz/seed.py).
 * Also py_line_in_copy over every cut of the table (the kernel copies only a table's start):
 * a line it gives from a copy must be the line of the whole table (abort otherwise). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pylayout.h"
#include "pyreader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int32_t first;
	int64_t pos;
	if (size < 13)
		return 0;
	/* 3.13's table entry has the same line-table kind as its _Py_DebugOffsets layout */
	const struct py_layout *l = pylayout_nth(data[0] % pylayout_count()); /* every version */
	if (!l)
		return 0;
	memcpy(&first, data + 1, 4);
	memcpy(&pos, data + 5, 8);
	size_t len = size - 13;
	if (len > UINT32_MAX)
		return 0;
	(void)py_line_for_position(l, data + 13, (uint32_t)len, first, pos);
	int whole = -1, part = -1;
	enum py_line_status ws = py_line_in_copy(l, data + 13, (uint32_t)len, len, first, pos, &whole);
	if (ws == PY_LINE_CUT)
		abort(); /* a whole table is never cut */
	for (size_t cut = 0; cut < len; cut += 1 + cut / 8) {
		enum py_line_status ps = py_line_in_copy(l, data + 13, (uint32_t)cut, len, first, pos, &part);
		if (ps != PY_LINE_CUT && (ps != ws || part != whole))
			abort(); /* a copy claimed a line (or none) the whole table does not give */
	}
	return 0;
}
