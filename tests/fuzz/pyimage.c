/* pyimage: header of a serialized Python process image (see pyimage.h). */
#include "pyimage.h"

#include <string.h>

/* The u64 fields of the header, in order. */
static void pi_fields(struct py_resolved *r, uint64_t *f[17])
{
	uint64_t *fixed[9] = { &r->runtime, &r->interp_head, &r->tstate_current,
			       &r->interpreter_lock, &r->t_code, &r->t_unicode, &r->t_bytes,
			       &r->t_dict, &r->t_true };
	for (int i = 0; i < 9; i++)
		f[i] = fixed[i];
	for (int i = 0; i < 4; i++) {
		f[9 + 2 * i] = &r->gil_static[i][0];
		f[10 + 2 * i] = &r->gil_static[i][1];
	}
}

int pi_decode_header(const unsigned char *data, size_t len, struct py_resolved *res)
{
	uint64_t *f[17];
	memset(res, 0, sizeof(*res));
	if (len < PI_HEADER_SIZE)
		return -1;
	const struct py_layout *l = pylayout_nth(data[0] % pylayout_count());
	res->layout.major = l->major;
	res->layout.minor = l->minor;
	res->unicode27_width = data[1];
	pi_fields(res, f);
	for (int i = 0; i < 17; i++)
		memcpy(f[i], data + 8 + 8 * i, 8);
	return 0;
}

int pi_write_header(FILE *f, const struct py_resolved *res)
{
	unsigned char hdr[PI_HEADER_SIZE];
	struct py_resolved copy = *res;
	uint64_t *fields[17];
	memset(hdr, 0, sizeof(hdr));
	hdr[0] = 0xff;
	for (size_t v = 0; v < pylayout_count(); v++)
		if (pylayout_nth(v)->major == res->layout.major &&
		    pylayout_nth(v)->minor == res->layout.minor)
			hdr[0] = (unsigned char)v;
	if (hdr[0] == 0xff)
		return -1;
	hdr[1] = (unsigned char)res->unicode27_width;
	pi_fields(&copy, fields);
	for (int i = 0; i < 17; i++)
		memcpy(hdr + 8 + 8 * i, fields[i], 8);
	return fwrite(hdr, sizeof(hdr), 1, f) == 1 ? 0 : -1;
}
