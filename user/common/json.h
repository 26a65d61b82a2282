/* json: a small streaming JSON writer into a strbuf.
 * Owns: producing always-valid JSON from untrusted strings (invalid UTF-8 becomes U+FFFD,
 * every control character is escaped), and comma/nesting bookkeeping. */
#ifndef PH_JSON_H
#define PH_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define JW_MAX_DEPTH 32

struct jw {
	struct strbuf *sb;
	int depth;
	bool first[JW_MAX_DEPTH]; /* no member written yet at this depth */
	bool after_key;           /* a key was written; the next value follows it directly */
};

void jw_init(struct jw *w, struct strbuf *sb);
void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *key);
void jw_str(struct jw *w, const char *s);       /* NULL writes null */
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, long long v);
void jw_uint(struct jw *w, unsigned long long v);
void jw_double(struct jw *w, double v, int decimals);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
void jw_hex(struct jw *w, uint64_t v);           /* "0x7f..." as a string */
/* Convenience: key + value. */
void jw_kstr(struct jw *w, const char *k, const char *v);
void jw_kint(struct jw *w, const char *k, long long v);
void jw_kbool(struct jw *w, const char *k, bool v);
void jw_kdouble(struct jw *w, const char *k, double v, int decimals);
#endif
