/* stackcheck: consistent reads of running threads' stacks (see stackcheck.h). */
#include "stackcheck.h"

#include <stdlib.h>
#include <string.h>

struct stack_check *sc_new(void)
{
	return calloc(1, sizeof(struct stack_check));
}

void sc_free(struct stack_check *c)
{
	if (!c)
		return;
	free(c->cur);
	free(c->prev);
	free(c);
}

void sc_reset(struct stack_check *c)
{
	c->ncur = c->nprev = 0;
	c->oom = false;
}

void sc_begin_walk(struct stack_check *c, bool fresh)
{
	struct sc_link *t = c->prev;
	size_t tcap = c->capprev;
	c->prev = c->cur;
	c->capprev = c->capcur;
	c->nprev = c->ncur;
	c->cur = t;
	c->capcur = tcap;
	c->ncur = 0;
	if (fresh)
		memset(c->block_valid, 0, sizeof(c->block_valid));
}

void sc_record(struct stack_check *c, uint64_t frame, uint64_t back, uint64_t code, uint64_t pos)
{
	if (c->ncur == c->capcur) {
		size_t nc = c->capcur ? c->capcur * 2 : 64;
		struct sc_link *nv = realloc(c->cur, nc * sizeof(*nv));
		if (!nv) {
			c->oom = true;
			return;
		}
		c->cur = nv;
		c->capcur = nc;
	}
	c->cur[c->ncur++] = (struct sc_link){ frame, back, code, pos };
}

bool sc_same_as_previous(const struct stack_check *c)
{
	if (c->oom || c->ncur != c->nprev)
		return false;
	for (size_t i = 0; i < c->ncur; i++) {
		const struct sc_link *a = &c->cur[i], *b = &c->prev[i];
		if (a->frame != b->frame || a->back != b->back || a->code != b->code ||
		    (i > 0 && a->pos != b->pos))
			return false;
	}
	return true;
}

int sc_read_fresh(struct stack_check *c, struct procmem *pm, uint64_t addr, void *buf, size_t len)
{
	unsigned char *out = buf;
	if (len > PM_BLOCK || addr + len < addr)
		return PM_FAULT;
	while (len > 0) {
		uint64_t base = addr & ~(uint64_t)(PM_BLOCK - 1);
		size_t k = (size_t)((base / PM_BLOCK) % SC_FRESH_BLOCKS);
		if (!c->block_valid[k] || c->block_addr[k] != base) {
			c->preads++;
			int rc = pm_read_direct(pm, base, c->block[k], PM_BLOCK);
			if (rc != PM_OK) {
				/* the block may end a mapping: read just the bytes asked for */
				c->block_valid[k] = false;
				return rc == PM_GONE ? rc : pm_read_direct(pm, addr, out, len);
			}
			c->block_addr[k] = base;
			c->block_valid[k] = true;
		}
		size_t off = (size_t)(addr - base), n = PM_BLOCK - off < len ? PM_BLOCK - off : len;
		memcpy(out, c->block[k] + off, n);
		out += n;
		addr += n;
		len -= n;
	}
	return PM_OK;
}

