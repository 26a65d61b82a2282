/* pylinetable: lines from CPython line tables (see pyreader_int.h).
 * Owns: the decoders of every line table format (2.7-3.9 co_lnotab, 3.10 co_linetable,
 * 3.11+ co_linetable locations), the per-code-object cache of last lines, and the public
 * py_line_for_position / py_line_in_copy (copies taken by the BPF stack walker). */
#include "pyreader_int.h"

/* Line arithmetic of the decoders below: a hostile table (or co_firstlineno) could push an
 * int past INT_MAX, so lines are summed in 64 bits, saturated far beyond any int (each
 * delta is below 2^32 in magnitude, so the sum never overflows), and a result that does
 * not fit an int is "no line" (-1). */
#define LINE_LIMIT (INT64_C(1) << 40)

static int64_t line_add(int64_t line, int64_t delta)
{
	int64_t v = line + delta;
	return v > LINE_LIMIT ? LINE_LIMIT : v < -LINE_LIMIT ? -LINE_LIMIT : v;
}

static int line_result(int64_t line)
{
	return line >= INT_MIN && line <= INT_MAX ? (int)line : -1;
}

/* The decoders below set *reached (when not NULL) to whether the table itself placed the
 * position (an entry that covers or follows it was read whole), as opposed to running out
 * of bytes: with a copy of only the start of a table, only a reached position is known. */

/* <= 3.9 co_lnotab: (addr delta u8, line delta) pairs; lasti is a byte offset. */
static int line_from_lnotab(const unsigned char *t, uint32_t len, int first, uint64_t lasti,
			    bool signed_delta, bool *reached)
{
	int64_t line = first;
	uint64_t addr = 0;
	bool hit = false;
	for (uint32_t i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > lasti) {
			hit = true;
			break;
		}
		line = line_add(line, signed_delta ? (int8_t)t[i + 1] : t[i + 1]);
	}
	if (reached)
		*reached = hit;
	return line_result(line);
}

/* 3.10 co_linetable: (byte delta u8, line delta i8, -128 = no line) pairs; addr in bytes. */
static int line_from_linetable310(const unsigned char *t, uint32_t len, int first, uint64_t addr,
				  bool *reached)
{
	int64_t line = first, ar_line = -1;
	uint64_t end = 0;
	for (uint32_t i = 0; i + 1 < len; i += 2) {
		if (end > addr)
			break;
		end += t[i];
		int8_t d = (int8_t)t[i + 1];
		if (d == -128) {
			ar_line = -1;
		} else {
			line = line_add(line, d);
			ar_line = line;
		}
	}
	if (reached)
		*reached = end > addr;
	return end > addr ? line_result(ar_line) : -1;
}

static uint32_t read_varint(const unsigned char *t, uint32_t len, uint32_t *i)
{
	uint32_t v = 0, shift = 0;
	while (*i < len && shift < 32) {
		unsigned char b = t[(*i)++];
		v |= (uint32_t)(b & 63) << shift;
		shift += 6;
		if (!(b & 64))
			break;
	}
	return v;
}

static int32_t read_svarint(const unsigned char *t, uint32_t len, uint32_t *i)
{
	uint32_t u = read_varint(t, len, i);
	return (u & 1) ? -(int32_t)(u >> 1) : (int32_t)(u >> 1);
}

/* i + n, at most len (i is 32 bits and may be near its end: no wrap-around). */
static uint32_t skip_bytes(uint32_t i, uint32_t n, uint32_t len)
{
	return len - i < n ? len : i + n;
}

/* 3.11+ location table; target is in code units. */
static int line_from_locations(const unsigned char *t, uint32_t len, int first, uint64_t target,
			       bool *reached)
{
	int64_t line = first;
	uint64_t addr = 0;
	uint32_t i = 0;
	while (i < len) {
		unsigned char b = t[i++];
		unsigned code = (b >> 3) & 15, n = (b & 7) + 1;
		int64_t delta = 0;
		bool no_line = false;
		if (code == 15) {
			no_line = true;
		} else if (code == 14) {
			delta = read_svarint(t, len, &i);
			(void)read_varint(t, len, &i); /* end line delta */
			(void)read_varint(t, len, &i); /* column + 1 */
			(void)read_varint(t, len, &i); /* end column + 1 */
		} else if (code == 13) {
			delta = read_svarint(t, len, &i);
		} else if (code >= 10) {
			delta = (int)code - 10;
			i = skip_bytes(i, 2, len); /* one-line form: start and end column */
		} else {
			i = skip_bytes(i, 1, len); /* short form: column byte */
		}
		line = line_add(line, delta);
		if (target >= addr && target < addr + n) {
			if (reached) /* the entry's varints may run past the end of a copy */
				*reached = i < len;
			return no_line ? -1 : line_result(line);
		}
		addr += n;
	}
	if (reached)
		*reached = false;
	return -1;
}


static int code_line_uncached(const struct py_layout *l, const struct code_entry *c,
			      uint64_t pos);

/* Line for a position: byte offset (<= 3.9), code units (3.10), byte offset (3.11+). */
int code_line(const struct py_layout *l, struct code_entry *c, uint64_t pos)
{
	for (unsigned i = 0; i < 4; i++)
		if ((c->lvalid >> i & 1) && c->lpos[i] == pos)
			return c->lline[i];
	int line = code_line_uncached(l, c, pos);
	unsigned k = c->lnext++ & 3;
	c->lpos[k] = pos;
	c->lline[k] = line;
	c->lvalid |= (uint8_t)(1u << k);
	return line;
}

static int table_line(const struct py_layout *l, const unsigned char *table, uint32_t len,
		      int first, uint64_t pos, bool *reached)
{
	switch (l->lines) {
	case PY_LINES_LNOTAB_U8:
		return line_from_lnotab(table, len, first, pos, false, reached);
	case PY_LINES_LNOTAB_S8:
		return line_from_lnotab(table, len, first, pos, true, reached);
	case PY_LINES_LINETABLE310:
		return line_from_linetable310(table, len, first, pos * 2, reached);
	case PY_LINES_LOCATIONS:
		return line_from_locations(table, len, first, pos / 2, reached);
	}
	return -1;
}

static int code_line_uncached(const struct py_layout *l, const struct code_entry *c,
			      uint64_t pos)
{
	if (!c->table)
		return -1;
	return table_line(l, c->table, c->table_len, c->firstlineno, pos, NULL);
}

/* Public: the line of a position captured elsewhere (the BPF stack walker) from a copy of
 * the code object's line table. pos as above: f_lasti (<= 3.10; negative: not started) or
 * the byte offset of the instruction from the code start (3.11+). */
int py_line_for_position(const struct py_layout *l, const unsigned char *table, uint32_t len,
			 int firstlineno, int64_t pos)
{
	if (pos < 0)
		return firstlineno;
	struct code_entry c;
	memset(&c, 0, sizeof(c));
	c.table = (unsigned char *)table;
	c.table_len = len;
	c.firstlineno = firstlineno;
	return code_line(l, &c, (uint64_t)pos);
}

enum py_line_status py_line_in_copy(const struct py_layout *l, const unsigned char *table,
				    uint32_t copied, uint64_t full_len, int firstlineno, int64_t pos,
				    int *line)
{
	bool reached = false;
	*line = -1;
	if (pos < 0) {
		*line = firstlineno;
		return PY_LINE_OK;
	}
	int v = table_line(l, table, copied, firstlineno, (uint64_t)pos, &reached);
	if (!reached && copied < full_len)
		return PY_LINE_CUT;
	*line = v;
	return v >= 0 ? PY_LINE_OK : PY_LINE_NONE;
}
