/* fuzz_debugoffsets: pylayout_from_debug_offsets (user/pylayout.c), the validation of a
 * _Py_DebugOffsets block read from a 3.13+ process (cookie, version, free-threading flag,
 * every struct size, every offset inside its struct, GIL offsets), and the sizes derived
 * from the layout it builds (frame and code object read sizes must fit the reader's
 * buffers: 256 and 512 bytes in pyreader.c).
 * Input: the raw block (the first bytes of _PyRuntime). Seeds: the real block of the
 * 3.13 interpreter (tests/fuzz/seed). */
#include <stdint.h>
#include <stdlib.h>

#include "pylayout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct py_layout l;
	uint32_t version = 0;
	char err[256];
	if (pylayout_from_debug_offsets(data, size, &l, &version, err, sizeof(err)) != 0)
		return 0;
	(void)pylayout_frame_read_size(&l);
	(void)pylayout_code_read_size(&l);
	return 0;
}
