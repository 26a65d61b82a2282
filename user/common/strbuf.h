/* strbuf: a growable byte buffer with a hard size cap.
 * Owns: building output lines in memory so each event is written with one write(2)
 * (lines never interleave or appear half-written), and bounded escaping of untrusted
 * strings (names read from target processes) for JSON and for terminals. */
#ifndef PH_STRBUF_H
#define PH_STRBUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* No single output record may exceed this; beyond it the buffer is marked truncated. A read
 * of a process gives at most PY_MAX_FRAME_STEPS (131,072) frames, ~200 bytes each in JSON. */
#define STRBUF_MAX (64u << 20)

struct strbuf {
	char *data;
	size_t len;
	size_t cap;
	bool oom; /* an allocation failed or the size cap was reached; content is cut */
	size_t limit; /* the size cap: 0 means STRBUF_MAX (sb_set_limit) */
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
/* Cap this buffer at limit bytes (at most STRBUF_MAX; 0: STRBUF_MAX). Kept by reset and free. */
void sb_set_limit(struct strbuf *sb, size_t limit);
void sb_putc(struct strbuf *sb, char c);
void sb_put(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append n bytes of untrusted text for a terminal: valid UTF-8 printable characters pass,
 * control bytes, DEL, C1 controls and invalid UTF-8 become \xNN, U+2028/U+2029 become
 * \u2028/\u2029, and backslash and double quote get a backslash. */
void sb_put_escaped_text(struct strbuf *sb, const char *s, size_t n);
/* Write the whole buffer to f with a single fwrite+fflush; returns 0 or -1. */
int sb_flush_to(struct strbuf *sb, FILE *f);

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if s does not start one. */
size_t utf8_seq_len(const unsigned char *s, size_t avail);
#endif
