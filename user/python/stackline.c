/* stackline: lines of captured frames whose line table copy was cut (see stackline.h). */
#include "stackline.h"

#include <stdlib.h>
#include <string.h>

#include "pystack.h"

const char STACKLINE_GONE[] =
	"line table longer than the 512 bytes copied in the kernel, and its code object is gone";

/* Whether table (len bytes, read now) is the one the kernel copied part of in fr. */
static bool same_table(const struct ph_pyframe *fr, const unsigned char *table, uint32_t len,
		       int firstlineno)
{
	uint32_t copied = fr->linetable_len > PH_LINETABLE_LEN ? PH_LINETABLE_LEN : fr->linetable_len;
	bool len_ok = fr->linetable_full_len_capped == 0xffff ? len >= 0xffff
							     : len == fr->linetable_full_len_capped;
	return len_ok && firstlineno == fr->firstlineno && len >= copied &&
	       memcmp(table, fr->linetable, copied) == 0;
}

void stackline_complete(struct py_reader *r, const struct ph_stack_event *se,
			const struct py_layout *l, struct py_thread *t)
{
	size_t n = se->nframes > PH_MAX_PYFRAMES ? PH_MAX_PYFRAMES : se->nframes;
	for (size_t i = 0; i < t->nframes && i < n; i++) {
		struct py_frame *f = &t->frames[i];
		const struct ph_pyframe *fr = &se->frames[i];
		if (f->error != PYSTACK_LINE_CUT || !l)
			continue;
		unsigned char *table = NULL;
		uint32_t len = 0;
		int first = 0, line = -1;
		f->error = STACKLINE_GONE;
		if (py_reader_code_table(r, (pid_t)se->pid, se->proc_start, fr->code, &table, &len,
					 &first) != 0)
			continue;
		if (same_table(fr, table, len, first)) {
			switch (py_line_in_copy(l, table, len, len, first, (int64_t)fr->pos, &line)) {
			case PY_LINE_OK:
				f->line = line;
				f->error = NULL;
				break;
			case PY_LINE_NONE:
				f->error = "no line for this instruction";
				break;
			case PY_LINE_CUT:
				break;
			}
		}
		free(table);
	}
}
