/* lockown_objects: what a lock object is (see lockown_int.h).
 * Owns: the kind of an object from its type's tp_name (cached per read), and resolving an
 * object (a lock, an RLock, a Condition, or the bound __exit__ of one: a builtin or a
 * Python method) to the lock and futex it stands for (facts: lockown.c). */
#include "lockown_int.h"

static enum tk kind_of_name(const char *n)
{
	if (!strcmp(n, "_thread.lock") || !strcmp(n, "thread.lock"))
		return TK_LOCK;
	if (!strcmp(n, "_thread.RLock"))
		return TK_RLOCK;
	if (!strcmp(n, "builtin_function_or_method"))
		return TK_BUILTIN;
	if (!strcmp(n, "method") || !strcmp(n, "instancemethod"))
		return TK_METHOD;
	if (!strcmp(n, "Condition") || !strcmp(n, "_Condition"))
		return TK_COND;
	if (!strcmp(n, "_RLock"))
		return TK_PYRLOCK;
	if (!strcmp(n, "int"))
		return TK_INT;
	return TK_OTHER;
}

enum tk type_kind(struct ctx *c, uint64_t obj)
{
	if (!obj || (obj & 7))
		return TK_OTHER;
	uint64_t type = rd_u64(c, obj + c->l->ob_type);
	if (!type)
		return TK_OTHER;
	for (unsigned i = 0; i < c->ntypes; i++)
		if (c->types[i].type == type)
			return c->types[i].kind;
	char name[32];
	enum tk k = rd_cstr(c, rd_u64(c, type + c->l->tp_name), name, sizeof(name)) ?
		kind_of_name(name) : TK_OTHER;
	unsigned slot = c->ntypes < TYPE_CACHE ? c->ntypes++ : (type >> 4) % TYPE_CACHE;
	c->types[slot].type = type;
	c->types[slot].kind = k;
	return k;
}

/* The lock behind obj: a lock, an RLock, a Condition (its lock), 2.7's Python RLock, or,
 * when via_method, a bound method whose self is one (lock.__exit__, cond.__exit__).
 * exit_only: a builtin bound method must be named __exit__. */
bool resolve(struct ctx *c, uint64_t obj, bool via_method, bool exit_only, struct lo_lock *out)
{
	const struct py_layout *l = c->l;
	switch (type_kind(c, obj)) {
	case TK_LOCK:
		out->kind = LO_LOCK;
		out->obj = obj;
		out->futex = rd_u64(c, obj + l->lock_futex);
		return out->futex != 0;
	case TK_RLOCK:
		out->kind = LO_RLOCK;
		out->obj = obj;
		out->futex = rd_u64(c, obj + l->rlock_futex);
		out->reentrant = true;
		out->owner_known = rd(c, obj + l->rlock_owner, &out->owner, sizeof(out->owner));
		return out->futex != 0;
	case TK_BUILTIN: {
		if (!via_method)
			return false;
		if (exit_only) {
			char name[16];
			uint64_t ml = rd_u64(c, obj + l->cfunc_ml);
			bool known = false;
			for (unsigned i = 0; ml && i < c->nexit_ml; i++)
				known |= c->exit_ml[i] == ml;
			if (!known) {
				if (!ml || !rd_cstr(c, rd_u64(c, ml), name, sizeof(name)) ||
				    strcmp(name, "__exit__"))
					return false;
				c->exit_ml[c->nexit_ml++ % 4] = ml;
				if (c->nexit_ml > 4)
					c->nexit_ml = 4;
			}
		}
		uint64_t self = rd_u64(c, obj + l->cfunc_self);
		enum tk k = type_kind(c, self);
		return (k == TK_LOCK || k == TK_RLOCK) && resolve(c, self, false, false, out);
	}
	case TK_METHOD: {
		if (!via_method)
			return false;
		uint64_t self = rd_u64(c, obj + l->meth_self);
		enum tk k = type_kind(c, self);
		return (k == TK_COND || k == TK_PYRLOCK) && resolve(c, self, false, false, out);
	}
	case TK_COND: {
		uint64_t inner = py_reader_mem_attr(c->r, c->pid, obj, l->attr_cond_lock);
		enum tk k = type_kind(c, inner);
		if ((k != TK_LOCK && k != TK_RLOCK && k != TK_PYRLOCK) || !resolve(c, inner, false, false, out))
			return false;
		out->kind = LO_CONDITION;
		out->obj = obj;
		return true;
	}
	case TK_PYRLOCK: {
		uint64_t block = py_reader_mem_attr(c->r, c->pid, obj, l->attr_rlock_block);
		if (type_kind(c, block) != TK_LOCK || !resolve(c, block, false, false, out))
			return false;
		out->kind = LO_RLOCK;
		out->obj = obj;
		out->reentrant = true;
		out->owner_known = false;
		uint64_t owner = py_reader_mem_attr(c->r, c->pid, obj, l->attr_rlock_owner);
		if (l->rlock_python_owner && owner && type_kind(c, owner) == TK_INT) {
			out->owner = rd_u64(c, owner + l->int_value); /* PyIntObject.ob_ival */
			out->owner_known = true;
		} else if (l->rlock_python_owner && owner && type_kind(c, owner) == TK_OTHER) {
			out->owner = 0; /* None: free */
			out->owner_known = true;
		}
		return true;
	}
	default:
		return false;
	}
}
