/* json: streaming JSON writer (see json.h). */
#include "json.h"

#include <math.h>
#include <string.h>

void jw_init(struct jw *w, struct strbuf *sb)
{
	memset(w, 0, sizeof(*w));
	w->sb = sb;
	w->first[0] = true;
}

/* Separator before a value or key at the current depth. */
static void jw_sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		sb_putc(w->sb, ',');
	w->first[w->depth] = false;
}

static void jw_open(struct jw *w, char c)
{
	jw_sep(w);
	sb_putc(w->sb, c);
	if (w->depth + 1 < JW_MAX_DEPTH)
		w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
	sb_putc(w->sb, c);
	if (w->depth > 0)
		w->depth--;
}

void jw_obj_begin(struct jw *w) { jw_open(w, '{'); }
void jw_obj_end(struct jw *w) { jw_close(w, '}'); }
void jw_arr_begin(struct jw *w) { jw_open(w, '['); }
void jw_arr_end(struct jw *w) { jw_close(w, ']'); }

static void jw_put_string(struct strbuf *sb, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	sb_putc(sb, '"');
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t l = utf8_seq_len(s + i, n - i);
		if (l == 0) {
			sb_puts(sb, "\\ufffd"); /* invalid UTF-8 byte */
			i++;
			continue;
		}
		if (c == '"' || c == '\\') {
			sb_putc(sb, '\\');
			sb_putc(sb, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(sb, "\\u%04x", c);
		} else if (l == 2 && c == 0xc2 && s[i + 1] <= 0x9f) {
			sb_printf(sb, "\\u%04x", s[i + 1]); /* C1 controls U+0080..U+009F */
		} else {
			/* U+2028/U+2029 are valid JSON but break JavaScript consumers: escape them. */
			if (l == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9))
				sb_printf(sb, "\\u%04x", s[i + 2] == 0xa8 ? 0x2028 : 0x2029);
			else
				sb_put(sb, (const char *)s + i, l);
		}
		i += l;
	}
	sb_putc(sb, '"');
}

void jw_key(struct jw *w, const char *key)
{
	jw_sep(w);
	jw_put_string(w->sb, key, strlen(key));
	sb_putc(w->sb, ':');
	w->after_key = true;
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
	jw_sep(w);
	jw_put_string(w->sb, s, n);
}

void jw_str(struct jw *w, const char *s)
{
	if (!s) {
		jw_null(w);
		return;
	}
	jw_strn(w, s, strlen(s));
}

void jw_int(struct jw *w, long long v)
{
	jw_sep(w);
	sb_printf(w->sb, "%lld", v);
}

void jw_uint(struct jw *w, unsigned long long v)
{
	jw_sep(w);
	sb_printf(w->sb, "%llu", v);
}

void jw_double(struct jw *w, double v, int decimals)
{
	jw_sep(w);
	if (!isfinite(v))
		sb_puts(w->sb, "null");
	else
		sb_printf(w->sb, "%.*f", decimals, v);
}

void jw_bool(struct jw *w, bool v)
{
	jw_sep(w);
	sb_puts(w->sb, v ? "true" : "false");
}

void jw_null(struct jw *w)
{
	jw_sep(w);
	sb_puts(w->sb, "null");
}

void jw_hex(struct jw *w, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "0x%llx", (unsigned long long)v);
	jw_strn(w, tmp, (size_t)n);
}

void jw_kstr(struct jw *w, const char *k, const char *v) { jw_key(w, k); jw_str(w, v); }
void jw_kint(struct jw *w, const char *k, long long v) { jw_key(w, k); jw_int(w, v); }
void jw_kbool(struct jw *w, const char *k, bool v) { jw_key(w, k); jw_bool(w, v); }
void jw_kdouble(struct jw *w, const char *k, double v, int decimals)
{
	jw_key(w, k);
	jw_double(w, v, decimals);
}
