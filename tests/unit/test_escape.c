/* Unit tests of output escaping: the JSON writer (user json.c: always-valid JSON from
 * untrusted bytes, RFC 8259 escapes, invalid UTF-8 as U+FFFD, U+2028/9 escaped) and the
 * terminal text escaper (sb_put_escaped_text, strbuf.h). Expected strings are written out
 * from those contracts (the headers' comments and README), byte by byte. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"
#include "strbuf.h"

static char out[4096];

static const char *json_of(const char *s, size_t n)
{
	struct strbuf sb;
	struct jw w;
	sb_init(&sb);
	jw_init(&w, &sb);
	jw_strn(&w, s, n);
	assert_false(sb.oom);
	assert_true(sb.len < sizeof(out));
	memcpy(out, sb.data, sb.len);
	out[sb.len] = 0;
	sb_free(&sb);
	return out;
}

static const char *text_of(const char *s, size_t n)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_put_escaped_text(&sb, s, n);
	assert_true(sb.len < sizeof(out));
	memcpy(out, sb.data, sb.len);
	out[sb.len] = 0;
	sb_free(&sb);
	return out;
}

#define J(lit, want) assert_string_equal(json_of(lit, sizeof(lit) - 1), want)
#define T(lit, want) assert_string_equal(text_of(lit, sizeof(lit) - 1), want)

static void json_plain_and_quotes(void **state)
{
	(void)state;
	J("", "\"\"");
	J("worker-1", "\"worker-1\"");
	J("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
}

static void json_controls(void **state)
{
	(void)state;
	J("\n\t\r", "\"\\u000a\\u0009\\u000d\"");
	J("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	J("a\0b", "\"a\\u0000b\"");             /* an embedded NUL does not end the string */
	J("\xc2\x85\xc2\x9f", "\"\\u0085\\u009f\"");  /* C1 controls */
	J("\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\"");
}

static void json_valid_utf8_passes(void **state)
{
	(void)state;
	J("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0\"");
}

static void json_invalid_utf8(void **state)
{
	(void)state;
	J("\xff", "\"\\ufffd\"");
	J("\xc0\xaf", "\"\\ufffd\\ufffd\"");                 /* overlong '/' */
	J("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");      /* UTF-16 surrogate */
	J("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* past U+10FFFF */
	J("ok\xe2\x82", "\"ok\\ufffd\\ufffd\"");             /* cut at the end */
	J("\x80x", "\"\\ufffdx\"");                          /* a lone continuation byte */
}

static void json_structure(void **state)
{
	(void)state;
	struct strbuf sb;
	struct jw w;
	sb_init(&sb);
	jw_init(&w, &sb);
	jw_obj_begin(&w);
	jw_kint(&w, "a", -5);
	jw_key(&w, "b");
	jw_arr_begin(&w);
	jw_bool(&w, true);
	jw_null(&w);
	jw_str(&w, NULL);
	jw_uint(&w, 18446744073709551615ull);
	jw_arr_end(&w);
	jw_key(&w, "c");
	jw_obj_begin(&w);
	jw_kdouble(&w, "d", 1.5, 3);
	jw_kdouble(&w, "nan", NAN, 3);
	jw_kdouble(&w, "inf", INFINITY, 1);
	jw_obj_end(&w);
	jw_key(&w, "h");
	jw_hex(&w, 0x7f00deadbeefull);
	jw_kstr(&w, "k\"ey", "v");
	jw_kbool(&w, "f", false);
	jw_obj_end(&w);
	sb_putc(&sb, 0);
	assert_string_equal(sb.data, "{\"a\":-5,\"b\":[true,null,null,18446744073709551615],"
			    "\"c\":{\"d\":1.500,\"nan\":null,\"inf\":null},\"h\":\"0x7f00deadbeef\","
			    "\"k\\\"ey\":\"v\",\"f\":false}");
	sb_free(&sb);
}

static void text_escapes(void **state)
{
	(void)state;
	T("MainThread", "MainThread");
	T("caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80");
	T("a\nb\x1b[31m", "a\\x0ab\\x1b[31m");          /* no terminal escape gets through */
	T("\x7f\xff", "\\x7f\\xff");
	T("\xc2\x85", "\\xc2\\x85");                   /* C1 control */
	T("\xe2\x80\xa8", "\\u2028");
	T("q\"b\\", "q\\\"b\\\\");
	T("\xed\xa0\x80", "\\xed\\xa0\\x80");          /* surrogate: invalid UTF-8 */
}

static void strbuf_cap(void **state)
{
	(void)state;
	struct strbuf sb;
	sb_init(&sb);
	sb_set_limit(&sb, 16);
	sb_puts(&sb, "0123456789");
	assert_false(sb.oom);
	sb_puts(&sb, "0123456789");
	assert_true(sb.oom);                            /* cut, and says so */
	assert_true(sb.len <= 16);
	sb_free(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_plain_and_quotes),
		cmocka_unit_test(json_controls),
		cmocka_unit_test(json_valid_utf8_passes),
		cmocka_unit_test(json_invalid_utf8),
		cmocka_unit_test(json_structure),
		cmocka_unit_test(text_escapes),
		cmocka_unit_test(strbuf_cap),
	};
	return cmocka_run_group_tests_name("escape", tests, NULL, NULL);
}
