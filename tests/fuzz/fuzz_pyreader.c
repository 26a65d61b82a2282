/* fuzz_pyreader: the reader's walk of a Python process image (user/python/py*.c, through
 * py_read_resolved): interpreter and thread lists, frame chains of every version (frame
 * objects, _PyCFrame, _PyInterpreterFrame), code objects, line tables, str/bytes objects
 * (2.7 str and unicode, PEP 393 of every width, compact and legacy), dicts of every layout
 * (sys.modules, threading._active, instance dicts, split/managed values), the GIL state;
 * for 3.13 also the _Py_DebugOffsets validation that builds the layout.
 * Input: a pyimage (tests/fuzz/pyimage.h): a header naming the version and the resolved
 * addresses, then memory regions (tests/fuzz/fakemem.h). Seeds are snapshots of live
 * interpreters made by tests/fuzz/seed (every byte the real reader read).
 * Also renders the result as text and JSON, so every decoded string is consumed. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fakemem.h"
#include "json.h"
#include "pyimage.h"
#include "pyreader.h"
#include "pywrite.h"
#include "strbuf.h"

/* 3.13+: the layout comes from _Py_DebugOffsets at the start of _PyRuntime, as in
 * pyreader.c's layout_from_process. */
static int layout_from_image(struct fakemem *fm, struct py_resolved *res)
{
	unsigned char raw[1024];
	char err[256];
	uint32_t declared = 0;
	size_t need = pylayout_debug_offsets_size(res->layout.major, res->layout.minor);
	if (need == 0 || need > sizeof(raw) || fm_read(fm, res->runtime, raw, need) != PM_OK)
		return -1;
	return pylayout_from_debug_offsets(raw, need, &res->layout, &declared, err, sizeof(err));
}

static int resolve(const uint8_t *data, size_t size, struct fakemem *fm, struct py_resolved *res)
{
	if (pi_decode_header(data, size, res) != 0)
		return -1;
	unsigned major = res->layout.major, minor = res->layout.minor;
	if (pylayout_debug_offsets_size(major, minor) != 0) {
		if (layout_from_image(fm, res) != 0)
			return -1;
	} else {
		const struct py_layout *l = pylayout_for_version(major, minor);
		if (!l)
			return -1;
		res->layout = *l;
	}
	snprintf(res->version, sizeof(res->version), "%u.%u", major, minor);
	res->version_hex = (major << 24) | (minor << 16);
	return 0;
}

static void render(const struct py_process *p)
{
	struct strbuf sb;
	sb_init(&sb);
	py_write_threads_text(&sb, p, 0);
	sb_free(&sb);
	struct strbuf js;
	sb_init(&js);
	struct jw w;
	jw_init(&w, &js);
	py_write_threads_json(&w, p);
	sb_free(&js);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fakemem fm;
	struct py_resolved res;
	struct py_process out;
	char err[256];
	if (size < PI_HEADER_SIZE ||
	    fm_parse(&fm, data + PI_HEADER_SIZE, size - PI_HEADER_SIZE) != 0)
		return 0;
	if (resolve(data, size, &fm, &res) == 0 &&
	    py_read_resolved(&res, fm_read, &fm, &out, err, sizeof(err)) == 0) {
		render(&out);
		py_process_free(&out);
	}
	fm_free(&fm);
	return 0;
}
