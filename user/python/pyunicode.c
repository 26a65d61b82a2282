/* pyunicode: strings of the target as UTF-8 (see pyreader_int.h).
 * Owns: THE UTF-8 encoder (utf8_put) and THE PEP 393 decoder of the reader (3.3+ compact
 * str of 1, 2 or 4 byte units), 2.7 unicode (UCS2/UCS4 builds) and bytes objects, the
 * plausibility of lengths read from the target, and comparing a str with a C string. */
#include "pyreader_int.h"

/* Appends the UTF-8 encoding of code point cp (surrogates and invalid values become
 * U+FFFD). out must have room for 4 bytes. Returns bytes written. */
size_t utf8_put(char *out, uint32_t cp)
{
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}


/* Lengths read from the target are untrusted. When an object claims more than we keep (a
 * string over PY_MAX_STR characters, a line table over MAX_LINETABLE bytes), its last byte
 * must be readable: a claim that runs past the mapping (a corrupt or fake object, e.g. a
 * str of 2**40 characters) makes the object unreadable instead of silently yielding the
 * bytes that happen to follow it. One extra pread, only for such long objects. */
static bool claim_plausible(struct walk *w, uint64_t data, uint64_t nbytes)
{
	unsigned char last;
	if (nbytes == 0)
		return true;
	if (nbytes > UINT64_MAX - data)
		return false;
	return rd(w, data + nbytes - 1, &last, 1) == 0;
}

char *decode_units(const unsigned char *data, size_t n, unsigned width)
{
	char *out = malloc(n * 4 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t cp;
		if (width == 1)
			cp = data[i];
		else if (width == 2)
			cp = (uint32_t)data[2 * i] | ((uint32_t)data[2 * i + 1] << 8);
		else
			memcpy(&cp, data + 4 * i, 4);
		o += utf8_put(out + o, cp);
	}
	out[o] = '\0';
	return out;
}

/* bytes (3.x) / str (2.7): raw content, capped at cap bytes. */
unsigned char *read_bytes_obj(struct walk *w, uint64_t addr, size_t cap, uint32_t *len_out)
{
	const struct py_layout *l = &w->p->res.layout;
	uint64_t size;
	if (!plausible_ptr(addr) || rd_u64(w, addr + l->bytes_size, &size) != 0 || size > INT64_MAX)
		return NULL;
	size_t n = size < cap ? (size_t)size : cap;
	if (size > cap && !claim_plausible(w, addr + l->bytes_data, size))
		return NULL;
	unsigned char *buf = malloc(n + 1);
	if (!buf)
		return NULL;
	if (rd(w, addr + l->bytes_data, buf, n) != 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len_out = (uint32_t)n;
	return buf;
}

/* Bytes of a PEP 393 header to read so that ob_type, length and state all lie in it, at
 * least `least`. The offsets may come from a target's _Py_DebugOffsets (3.13+), which is
 * validated only against the sizes the target itself declares: never trust them to fit a
 * buffer (a hostile block once made str_equals read past its stack buffer). */
static uint32_t pep393_header_need(const struct py_layout *l, uint32_t least)
{
	uint32_t n = least;
	const uint32_t ends[] = { l->ob_type + 8, l->str_length + 8, l->str_state + 1 };
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if (ends[i] > n)
			n = ends[i];
	return n;
}

static char *read_pep393(struct walk *w, uint64_t addr)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char hdr[128];
	uint32_t need = pep393_header_need(l, l->str_compact_data + 8); /* + data.any (legacy) */
	if (need > sizeof(hdr) || rd(w, addr, hdr, need) != 0)
		return NULL;
	if (w->p->res.t_unicode && get_u64(hdr, l->ob_type) != w->p->res.t_unicode)
		return NULL;
	uint64_t length = get_u64(hdr, l->str_length);
	unsigned state = hdr[l->str_state];
	unsigned kind = py_str_kind(state);
	int compact = py_str_compact(state), ascii = py_str_ascii(state);
	if (length > INT64_MAX || !py_str_kind_valid(kind))
		return NULL;
	size_t n = length < PY_MAX_STR ? (size_t)length : PY_MAX_STR;
	uint64_t data;
	if (compact)
		data = addr + (ascii ? l->str_ascii_data : l->str_compact_data);
	else
		data = get_u64(hdr, l->str_compact_data); /* legacy string: data.any */
	if (length > n && (length > UINT64_MAX / 4 || !claim_plausible(w, data, length * kind)))
		return NULL;
	unsigned char *raw = malloc(n * kind + 1);
	if (!raw)
		return NULL;
	char *s = NULL;
	if (n == 0 || rd(w, data, raw, n * kind) == 0)
		s = decode_units(raw, n, kind);
	free(raw);
	return s;
}

/* 2.7 unicode object: length and Py_UNICODE *str (layout uni27_length, uni27_str). */
static char *read_unicode27(struct walk *w, uint64_t addr)
{
	const struct py_layout *l = &w->p->res.layout;
	unsigned char hdr[32];
	unsigned width = w->p->res.unicode27_width;
	/* decode_units knows 2 and 4 (UCS2/UCS4 builds); anything else would overrun raw */
	if ((width != 2 && width != 4) || l->uni27_length + 8 > sizeof(hdr) ||
	    l->uni27_str + 8 > sizeof(hdr) || rd(w, addr, hdr, sizeof(hdr)) != 0)
		return NULL;
	uint64_t length = get_u64(hdr, l->uni27_length), str = get_u64(hdr, l->uni27_str);
	if (length > INT64_MAX)
		return NULL;
	size_t n = length < PY_MAX_STR ? (size_t)length : PY_MAX_STR;
	if (length > n && (length > UINT64_MAX / 4 || !claim_plausible(w, str, length * width)))
		return NULL;
	unsigned char *raw = malloc(n * width + 1);
	if (!raw)
		return NULL;
	char *s = NULL;
	if (n == 0 || rd(w, str, raw, n * width) == 0)
		s = decode_units(raw, n, width);
	free(raw);
	return s;
}

/* Any Python string object as UTF-8 (malloc'd), or NULL. */
char *read_str(struct walk *w, uint64_t addr)
{
	if (!plausible_ptr(addr))
		return NULL;
	if (w->p->res.layout.strs == PY_STR_PEP393)
		return read_pep393(w, addr);
	uint64_t type;
	if (rd_u64(w, addr + w->p->res.layout.ob_type, &type) != 0)
		return NULL;
	if (w->p->res.t_unicode && type == w->p->res.t_unicode)
		return read_unicode27(w, addr);
	if (w->p->res.t_bytes && type != w->p->res.t_bytes)
		return NULL;
	uint32_t len;
	unsigned char *b = read_bytes_obj(w, addr, PY_MAX_STR, &len);
	return (char *)b;
}

/* Whether the string object at addr equals the ASCII string s (cheap length check first). */
bool str_equals(struct walk *w, uint64_t addr, const char *s)
{
	const struct py_layout *l = &w->p->res.layout;
	size_t want = strlen(s);
	unsigned char hdr[64];
	if (!plausible_ptr(addr) || want > 256)
		return false;
	if (l->strs == PY_STR_PEP393) {
		uint32_t need = pep393_header_need(l, l->str_ascii_data);
		if (need > sizeof(hdr) || rd(w, addr, hdr, need) != 0 ||
		    get_u64(hdr, l->str_length) != want)
			return false;
		if (!py_str_compact_ascii(hdr[l->str_state]))
			return false; /* not compact ASCII */
		char buf[257];
		return rd(w, addr + l->str_ascii_data, buf, want) == 0 && memcmp(buf, s, want) == 0;
	}
	if (l->bytes_size + 8 > 24 || rd(w, addr, hdr, 24) != 0 || get_u64(hdr, l->bytes_size) != want)
		return false; /* 2.7 PyStringObject: ob_size at 16 */
	char buf[257];
	return rd(w, addr + l->bytes_data, buf, want) == 0 && memcmp(buf, s, want) == 0;
}
