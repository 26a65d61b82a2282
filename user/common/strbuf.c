/* strbuf: growable, capped output buffer and escaping of untrusted text (see strbuf.h). */
#include "strbuf.h"

#include <stdlib.h>
#include <string.h>

void sb_init(struct strbuf *sb)
{
	memset(sb, 0, sizeof(*sb));
}

void sb_free(struct strbuf *sb)
{
	size_t limit = sb->limit;
	free(sb->data);
	sb_init(sb);
	sb->limit = limit;
}

void sb_set_limit(struct strbuf *sb, size_t limit)
{
	sb->limit = limit < STRBUF_MAX ? limit : STRBUF_MAX;
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	sb->oom = false;
	if (sb->data)
		sb->data[0] = '\0';
}

static bool sb_reserve(struct strbuf *sb, size_t extra)
{
	if (sb->oom)
		return false;
	size_t max = sb->limit ? sb->limit : STRBUF_MAX;
	if (extra > max || sb->len + extra + 1 > max) {
		sb->oom = true;
		return false;
	}
	size_t need = sb->len + extra + 1;
	if (need <= sb->cap)
		return true;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(sb->data, cap);
	if (!p) {
		sb->oom = true;
		return false;
	}
	sb->data = p;
	sb->cap = cap;
	return true;
}

void sb_put(struct strbuf *sb, const char *s, size_t n)
{
	if (!sb_reserve(sb, n))
		return;
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void sb_putc(struct strbuf *sb, char c)
{
	sb_put(sb, &c, 1);
}

void sb_puts(struct strbuf *sb, const char *s)
{
	sb_put(sb, s, strlen(s));
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0 && sb_reserve(sb, (size_t)n)) {
		vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap2);
		sb->len += (size_t)n;
	}
	va_end(ap2);
}

size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	unsigned int min, cp;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		n = 2; cp = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3; cp = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4; cp = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* reject overlong forms, UTF-16 surrogates and code points past U+10FFFF */
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void sb_put_escaped_text(struct strbuf *sb, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t l = utf8_seq_len(s + i, n - i);
		bool c1 = (l == 2 && c == 0xc2 && s[i + 1] < 0xa0); /* U+0080..U+009F */
		/* U+2028/U+2029 (E2 80 A8/A9) end lines in some terminals and viewers */
		bool sep = (l == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9));
		if (l == 0 || c1 || c < 0x20 || c == 0x7f) {
			sb_printf(sb, "\\x%02x", c);
			i++;
		} else if (sep) {
			sb_printf(sb, "\\u%04x", s[i + 2] == 0xa8 ? 0x2028 : 0x2029);
			i += 3;
		} else if (c == '\\' || c == '"') { /* names are printed in quotes: keep them unambiguous */
			sb_putc(sb, '\\');
			sb_putc(sb, (char)c);
			i++;
		} else {
			sb_put(sb, (const char *)s + i, l);
			i += l;
		}
	}
}

int sb_flush_to(struct strbuf *sb, FILE *f)
{
	int rc = 0;
	if (sb->len && fwrite(sb->data, 1, sb->len, f) != sb->len)
		rc = -1;
	if (fflush(f) != 0)
		rc = -1;
	sb_reset(sb);
	return rc;
}
