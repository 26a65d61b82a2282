/* pystack: descriptions for the BPF stack walker and decoding of captured stacks. */
#include "pystack.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyrules.h"
#include "pyunicode.h"
#include "strbuf.h"

static bool fits_u16(uint32_t v)
{
	return v <= 0xffff;
}

int pystack_fill_pyproc(const struct py_layout *l, const struct py_addrs *a, unsigned version_hex,
			struct ph_pyproc *out)
{
	memset(out, 0, sizeof(*out));
	const uint32_t offs[] = {
		l->interp_tstate_head, l->ts_next, l->ts_thread_id, l->ts_native_thread_id, l->ts_frame,
		l->cframe_current, l->f_back, l->f_code, l->f_pos, l->f_owner, l->co_filename,
		l->co_name, l->co_qualname, l->co_firstlineno, l->co_linetable, l->co_code_adaptive,
		l->co_firsttraceable, l->ob_type, l->str_length, l->str_state, l->str_ascii_data,
		l->str_compact_data, l->bytes_size, l->bytes_data,
	};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		if (!fits_u16(offs[i]))
			return -1;
	if (!a->interp || !a->code_type)
		return -1;
	out->interp = a->interp;
	out->code_type = a->code_type;
	out->version_hex = version_hex;
	out->ts_head = (uint16_t)l->interp_tstate_head;
	out->ts_next = (uint16_t)l->ts_next;
	out->ts_thread_id = (uint16_t)l->ts_thread_id;
	out->ts_native_tid = (uint16_t)l->ts_native_thread_id;
	out->ts_frame = (uint16_t)l->ts_frame;
	out->cframe_current = (uint16_t)l->cframe_current;
	out->f_back = (uint16_t)l->f_back;
	out->f_code = (uint16_t)l->f_code;
	out->f_pos = (uint16_t)l->f_pos;
	out->f_owner = (uint16_t)l->f_owner;
	out->co_filename = (uint16_t)l->co_filename;
	out->co_name = (uint16_t)l->co_name;
	out->co_qualname = (uint16_t)l->co_qualname;
	out->co_firstlineno = (uint16_t)l->co_firstlineno;
	out->co_linetable = (uint16_t)l->co_linetable;
	out->co_code_adaptive = (uint16_t)l->co_code_adaptive;
	out->co_firsttraceable = (uint16_t)l->co_firsttraceable;
	out->ob_type = (uint16_t)l->ob_type;
	out->str_length = (uint16_t)l->str_length;
	out->str_state = (uint16_t)l->str_state;
	out->str_ascii_data = (uint16_t)l->str_ascii_data;
	out->str_compact_data = (uint16_t)l->str_compact_data;
	out->bytes_size = (uint16_t)l->bytes_size;
	out->bytes_data = (uint16_t)l->bytes_data;
	switch (l->frames) {
	case PY_FRAMES_OBJECTS:
		out->frame_kind = PH_FRAMES_OBJECTS;
		break;
	case PY_FRAMES_CFRAME:
		out->frame_kind = PH_FRAMES_CFRAME;
		break;
	case PY_FRAMES_CURRENT:
		out->frame_kind = PH_FRAMES_CURRENT;
		break;
	}
	out->pos_is_ptr = l->frames != PY_FRAMES_OBJECTS; /* 3.11+: instruction pointers */
	out->owner_generator = l->owner_generator;
	out->owner_cstack = l->owner_cstack;
	out->str_kind = l->strs == PY_STR_PEP393 ? PH_STR_PEP393 : PH_STR_BYTES;
	return 0;
}

int pystack_describe(struct loader *ld, struct py_reader *r, pid_t pid, struct py_layout *layout_out,
		     char *err, size_t errlen)
{
	/* Right after exec the interpreter may not be set up yet: only a look that found a
	 * thread running Python code is trusted. A look that found no valid interpreter keeps
	 * nothing; one that found a valid interpreter with no Python code running yet keeps
	 * what it attached (maps, ELF symbols, layout) for the next look, which then costs a few
	 * reads of memory. Only the layout is needed here, so no stack is read in full (the
	 * probe stops at the first frame of Python code). */
	unsigned version_hex = 0;
	int probed = py_probe_process(r, pid, &version_hex, err, errlen);
	if (probed < 0) {
		py_forget_process(r, pid);
		return -1;
	}
	if (probed == 0) {
		snprintf(err, errlen, "pid %d: interpreter not running Python code yet", (int)pid);
		return -1;
	}
	const struct py_layout *l = py_reader_layout(r, pid);
	struct py_addrs a;
	struct ph_pyproc pp;
	if (!l || py_reader_addrs(r, pid, &a) != 0 || pystack_fill_pyproc(l, &a, version_hex, &pp) != 0) {
		snprintf(err, errlen, "no usable layout for pid %d", (int)pid);
		return -1;
	}
	if (loader_set_pyproc(ld, pid, &pp) != 0) {
		snprintf(err, errlen, "cannot install the layout for pid %d", (int)pid);
		return -1;
	}
	/* The GIL's condition variables and mutexes: one struct on 3.7+, static variables
	 * located on 3.6 (2.7 waits on one semaphore: its GIL waits need no merging). */
	if (a.gil_wait_lo && a.gil_wait_hi > a.gil_wait_lo)
		loader_set_gil_range(ld, pid, a.gil_wait_lo, a.gil_wait_hi);
	*layout_out = *l;
	return 0;
}

/* A copied string as a malloc'd UTF-8 C string ("..." appended when it was cut). The
 * kind is the BPF walker's (bpf/pyrules.h: the str's PEP 393 kind; 0: ASCII or 2.7 bytes,
 * passed through, the writers escape what is invalid). */
static char *decode_pystr(const struct ph_pystr_hdr *h, const char *data, size_t cap)
{
	struct strbuf sb;
	sb_init(&sb);
	size_t len = h->len > cap ? cap : h->len;
	bool nul = false;
	if (py_str_kind_valid(h->kind)) {
		char *u = decode_units((const unsigned char *)data, len / h->kind, h->kind);
		if (!u) {
			sb_free(&sb);
			return strdup("?");
		}
		sb_puts(&sb, u);
		free(u);
		/* a U+0000 ends the C string: nothing after it shows, "..." included */
		for (size_t i = 0; i + h->kind <= len && !nul; i += h->kind) {
			uint32_t cp = 0;
			memcpy(&cp, data + i, h->kind);
			nul = cp == 0;
		}
		if (nul)
			sb_put(&sb, "", 1);
	} else {
		sb_put(&sb, data, len);
	}
	if (h->truncated && !nul)
		sb_puts(&sb, "...");
	if (!sb.data || sb.oom) {
		sb_free(&sb);
		return strdup("?");
	}
	return sb.data; /* ownership passes to the caller */
}

const char PYSTACK_LINE_CUT[] = "line table longer than the 512 bytes copied in the kernel";

int pystack_decode(const struct ph_stack_event *se, const struct py_layout *layout,
		   struct py_thread *out)
{
	memset(out, 0, sizeof(*out));
	out->tid = (pid_t)se->tid;
	out->daemon = -1;
	out->state = PY_STATE_RUNNING;
	out->syscall_nr = -1;
	out->tstate_addr = se->tstate;
	out->truncated = se->truncated != 0;
	size_t n = se->nframes > PH_MAX_PYFRAMES ? PH_MAX_PYFRAMES : se->nframes;
	if (n == 0)
		return 0;
	out->frames = calloc(n, sizeof(*out->frames));
	if (!out->frames)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct ph_pyframe *fr = &se->frames[i];
		struct py_frame *f = &out->frames[i];
		f->function = decode_pystr(&fr->name_hdr, fr->name, sizeof(fr->name));
		f->file = decode_pystr(&fr->file_hdr, fr->file, sizeof(fr->file));
		f->first_line = fr->firstlineno;
		uint32_t tlen = fr->linetable_len > PH_LINETABLE_LEN ? PH_LINETABLE_LEN : fr->linetable_len;
		f->line = -1;
		if (!layout) {
			f->error = "layout unknown";
		} else if (fr->linetable_len == 0) {
			f->error = "line table unreadable";
		} else {
			/* linetable_full_len_capped: the table's real length, 65535 when longer */
			switch (py_line_in_copy(layout, fr->linetable, tlen, fr->linetable_full_len_capped,
						fr->firstlineno, (int64_t)fr->pos, &f->line)) {
			case PY_LINE_OK:
				break;
			case PY_LINE_NONE:
				f->error = "no line for this instruction";
				break;
			case PY_LINE_CUT:
				f->error = PYSTACK_LINE_CUT; /* stackline_complete may find it */
				break;
			}
		}
		out->nframes++;
	}
	return 0;
}

void pystack_thread_free(struct py_thread *t)
{
	for (size_t i = 0; i < t->nframes; i++) {
		free(t->frames[i].function);
		free(t->frames[i].file);
	}
	free(t->frames);
	free(t->name);
	memset(t, 0, sizeof(*t));
}

const char *pystack_status_str(unsigned status)
{
	switch (status) {
	case PH_STACK_OK:
		return "ok";
	case PH_STACK_NOT_PYTHON:
		return "unknown_layout";
	case PH_STACK_NO_THREAD:
		return "thread_not_found";
	default:
		return "read_error";
	}
}
