/* fuzz_debugoffsets: pylayout_from_debug_offsets (user/python/pylayout.c), the validation of a
 * _Py_DebugOffsets block read from a 3.13+ process (cookie, version, free-threading flag,
 * every struct size, every offset inside its struct, GIL offsets), then the reader's use
 * of whatever layout it accepts: when FUZZ_IMAGE names a pyimage of a real 3.13 process
 * (tests/fuzz/pyimage.h; make sets it to the committed seed), that image is walked with the
 * fuzzed layout, so an accepted offset that the reader would use past one of its buffers
 * is caught here rather than depending on fuzz_pyreader reaching it.
 * Input: the raw block (the first bytes of _PyRuntime). Seeds: the real block of the
 * 3.13 interpreter (tests/fuzz/seed). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fakemem.h"
#include "pyimage.h"
#include "pylayout.h"
#include "pyreader.h"

#define MAX_IMAGE (1u << 22)

static unsigned char *image;   /* the FUZZ_IMAGE file, kept for the whole run */
static size_t image_len;
static struct fakemem image_mem;
static struct py_resolved image_res;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *path = getenv("FUZZ_IMAGE");
	FILE *f = path ? fopen(path, "rb") : NULL;
	if (!f)
		return 0;
	image = malloc(MAX_IMAGE);
	if (image)
		image_len = fread(image, 1, MAX_IMAGE, f);
	fclose(f);
	if (!image || pi_decode_header(image, image_len, &image_res) != 0 ||
	    fm_parse(&image_mem, image + PI_HEADER_SIZE, image_len - PI_HEADER_SIZE) != 0) {
		fprintf(stderr, "fuzz_debugoffsets: %s is not a pyimage\n", path);
		exit(1);
	}
	return 0;
}

static void walk_image(const struct py_layout *l)
{
	struct py_resolved res = image_res;
	struct py_process out;
	char err[256];
	res.layout = *l;
	snprintf(res.version, sizeof(res.version), "%u.%u", l->major, l->minor);
	if (py_read_resolved(&res, fm_read, &image_mem, &out, err, sizeof(err)) == 0)
		py_process_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct py_layout l;
	uint32_t version = 0;
	char err[256];
	if (pylayout_from_debug_offsets(data, size, &l, &version, err, sizeof(err)) != 0)
		return 0;
	(void)pylayout_frame_read_size(&l);
	(void)pylayout_code_read_size(&l);
	if (image_len)
		walk_image(&l);
	return 0;
}
