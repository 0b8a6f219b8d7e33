/* snapshot.c - the IR as bytes and back (the live table's cache), and
 * the IR an element-only commit leaves in the kernel.
 *
 * Image: the loc file names first (a table the locs index, 0 = none),
 * then the table (name, comment, flags), its chains with their rules, its sets with their
 * elements, its counters.  Integers are LEB128, signed ones zigzagged;
 * a string is its length + 1 (0: NULL) and its bytes; an element's
 * family, prefix length, byte count and protocol are single bytes, its
 * address only the bytes up to the last non-zero one, its ports two
 * bytes each (big-endian).  The decoder trusts
 * nothing: every count is checked against the bytes left before
 * anything is allocated, and what nft/ and cli/ index by (enums, chain
 * numbers, names) is checked before the ruleset is handed out.
 */
#include "generator/snapshot.h"

#include <stdlib.h>
#include <string.h>

/* ---- writing ------------------------------------------------------------ */

static size_t leb(uint8_t *b, uint64_t v)
{
	size_t n = 0;

	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static void put_u(struct strbuf *sb, uint64_t v)
{
	uint8_t b[10];

	sb_add(sb, (const char *)b, leb(b, v));
}

static void put_i(struct strbuf *sb, int64_t v)
{
	put_u(sb, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_str(struct strbuf *sb, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	put_u(sb, s ? n + 1 : 0);
	if (s)
		sb_add(sb, s, n);
}

/* The loc file names, each once, in first-seen order. */
typedef VEC(const char *) name_vec;

static uint64_t file_index(name_vec *files, const char *f, bool add)
{
	if (!f)
		return 0;
	for (size_t i = 0; i < files->n; i++)
		if (files->v[i] == f || !strcmp(files->v[i], f))
			return i + 1;
	if (!add)
		return 0;
	VEC_PUSH(files, f);
	return files->n;
}

static void collect_files(const struct ir_ruleset *rs, name_vec *files)
{
	for (size_t i = 0; i < rs->nchains; i++)
		file_index(files, rs->chains[i].loc.file, true);
	for (size_t i = 0; i < rs->ncounters; i++)
		file_index(files, rs->counters[i].loc.file, true);
}

static void put_loc(struct strbuf *sb, name_vec *files, const struct loc *l)
{
	put_u(sb, file_index(files, l->file, false));
	put_u(sb, l->line);
	put_u(sb, l->col);
}

static void put_rule(struct strbuf *sb, const struct ir_rule *r)
{
	put_u(sb, r->kind);
	put_u(sb, r->verdict);
	put_u(sb, r->family);
	put_u(sb, r->field);
	put_u(sb, r->ifdir);
	put_str(sb, r->ifname);
	put_str(sb, r->set);
	put_str(sb, r->target);
	put_u(sb, r->icmp_type);
	put_u(sb, r->l4proto);
	put_u(sb, r->dport);
	put_u(sb, r->rate);
	put_u(sb, r->unit);
	put_str(sb, r->log_prefix);
	put_str(sb, r->comment);
	put_u(sb, r->handle);
}

static void put_chain(struct strbuf *sb, name_vec *files, const struct ir_chain *c)
{
	put_str(sb, c->name);
	put_str(sb, c->comment);
	put_loc(sb, files, &c->loc);
	put_u(sb, c->hook);
	put_i(sb, c->priority);
	put_u(sb, c->policy);
	put_u(sb, c->nrules);
	for (size_t i = 0; i < c->nrules; i++)
		put_rule(sb, &c->rules[i]);
}

/* One sb_add per element: sets hold hundreds of thousands. */
static void put_elem(struct strbuf *sb, const struct ir_elem *e)
{
	uint8_t b[64];
	size_t n = 0, nb = sizeof(e->addr.a);

	while (nb && !e->addr.a[nb - 1])
		nb--;
	b[n++] = e->addr.family;
	b[n++] = e->addr.len;
	b[n++] = (uint8_t)nb;
	memcpy(b + n, e->addr.a, nb);
	n += nb;
	b[n++] = e->port.proto;
	b[n++] = (uint8_t)(e->port.lo >> 8);
	b[n++] = (uint8_t)e->port.lo;
	b[n++] = (uint8_t)(e->port.hi >> 8);
	b[n++] = (uint8_t)e->port.hi;
	n += leb(b + n, e->chain);
	sb_add(sb, (const char *)b, n);
}

static void put_set(struct strbuf *sb, const struct ir_set *s)
{
	put_str(sb, s->name);
	put_str(sb, s->comment);
	put_u(sb, s->key);
	put_u(sb, s->is_map);
	put_u(sb, s->revoke);
	put_u(sb, s->revoke_field);
	put_u(sb, s->nelems);
	for (size_t i = 0; i < s->nelems; i++)
		put_elem(sb, &s->elems[i]);
}

static void put_counter(struct strbuf *sb, name_vec *files, const struct ir_counter *c)
{
	put_str(sb, c->name);
	put_str(sb, c->comment);
	put_loc(sb, files, &c->loc);
	put_u(sb, c->packets);
	put_u(sb, c->bytes);
}

void ir_encode(const struct ir_ruleset *rs, struct strbuf *out)
{
	name_vec files = { 0 };

	collect_files(rs, &files);
	put_u(out, files.n);
	for (size_t i = 0; i < files.n; i++)
		put_str(out, files.v[i]);
	put_str(out, rs->table);
	put_str(out, rs->comment);
	put_u(out, rs->flags);
	put_u(out, rs->nchains);
	for (size_t i = 0; i < rs->nchains; i++)
		put_chain(out, &files, &rs->chains[i]);
	put_u(out, rs->nsets);
	for (size_t i = 0; i < rs->nsets; i++)
		put_set(out, &rs->sets[i]);
	put_u(out, rs->ncounters);
	for (size_t i = 0; i < rs->ncounters; i++)
		put_counter(out, &files, &rs->counters[i]);
	free(files.v);
}

/* ---- reading ------------------------------------------------------------ */

struct rd {
	const uint8_t *p, *end;
	const char *why;        /* the first problem; NULL while all is well */
	const char **files;     /* the loc file names, in the ruleset's block */
	size_t nfiles;
};

/* Records the first problem and stops reading: every later read sees
 * no bytes and yields zero, so loops over counts end at once. */
static void bad(struct rd *r, const char *why)
{
	if (!r->why)
		r->why = why;
	r->p = r->end;
}

static size_t left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

static uint64_t get_u(struct rd *r)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (r->p == r->end) {
			bad(r, "truncated");
			return 0;
		}
		b = *r->p++;
		if (shift == 63 && b > 1)
			break;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	bad(r, "an integer out of range");
	return 0;
}

static uint64_t get_max(struct rd *r, uint64_t max)
{
	uint64_t v = get_u(r);

	if (v <= max)
		return v;
	bad(r, "a value out of range");
	return 0;
}

static uint8_t get_byte(struct rd *r)
{
	if (r->p == r->end) {
		bad(r, "truncated");
		return 0;
	}
	return *r->p++;
}

/* A count of items of at least `min` bytes each, no more than fit in
 * what is left: a hostile count never reaches the allocator. */
static size_t get_count(struct rd *r, size_t min)
{
	uint64_t n = get_u(r);

	if (n <= left(r) / min)
		return (size_t)n;
	bad(r, "a count beyond the data");
	return 0;
}

static int64_t get_i(struct rd *r, int64_t lo, int64_t hi)
{
	uint64_t z = get_u(r);
	int64_t v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);

	if (v >= lo && v <= hi)
		return v;
	bad(r, "a value out of range");
	return 0;
}

/* A string (NULL is fine unless `required`), copied. */
static char *get_str(struct rd *r, bool required)
{
	uint64_t n = get_u(r);
	char *s;

	if (n == 0) {
		if (required)
			bad(r, "a name missing");
		return NULL;
	}
	if (n - 1 > left(r)) {
		bad(r, "truncated");
		return NULL;
	}
	if (memchr(r->p, '\0', (size_t)(n - 1))) {
		bad(r, "a string with a NUL byte");
		return NULL;
	}
	s = xstrndup((const char *)r->p, (size_t)(n - 1));
	r->p += n - 1;
	return s;
}

static void get_loc(struct rd *r, struct loc *l)
{
	uint64_t f = get_max(r, r->nfiles);

	l->file = f ? r->files[f - 1] : NULL;
	l->line = (unsigned)get_max(r, UINT32_MAX);
	l->col = (unsigned)get_max(r, UINT32_MAX);
}

/* The enums are range-checked against their last enumerator: nft/
 * indexes tables by them.  A new last enumerator must be named here. */
static void get_rule(struct rd *r, struct ir_rule *x)
{
	x->kind = (enum ir_rule_kind)get_max(r, IR_R_PROTO);
	x->verdict = (enum ir_verdict)get_max(r, IR_JUMP);
	x->family = (uint8_t)get_max(r, UINT8_MAX);
	x->field = (enum ir_field)get_max(r, IR_DADDR);
	x->ifdir = (enum ir_ifdir)get_max(r, IR_OIF);
	x->ifname = get_str(r, false);
	x->set = get_str(r, false);
	x->target = get_str(r, false);
	x->icmp_type = (uint8_t)get_max(r, UINT8_MAX);
	x->l4proto = (uint8_t)get_max(r, UINT8_MAX);
	x->dport = (uint16_t)get_max(r, UINT16_MAX);
	x->rate = (unsigned)get_max(r, UINT32_MAX);
	x->unit = (enum log_unit)get_max(r, LOG_DAY);
	x->log_prefix = get_str(r, false);
	x->comment = get_str(r, false);
	x->handle = get_u(r);
}

static void get_chain(struct rd *r, struct ir_chain *c)
{
	c->name = get_str(r, true);
	c->comment = get_str(r, false);
	get_loc(r, &c->loc);
	c->hook = (enum ir_hook)get_max(r, IR_HOOK_OUTPUT);
	c->priority = (int)get_i(r, INT32_MIN, INT32_MAX);
	c->policy = (enum ir_verdict)get_max(r, IR_JUMP);
	c->nrules = get_count(r, 16);          /* a rule is 16 bytes at least */
	c->rules = xcalloc(c->nrules + 1, sizeof(*c->rules));
	for (size_t i = 0; i < c->nrules; i++)
		get_rule(r, &c->rules[i]);
}

static void get_prefix(struct rd *r, struct prefix *p)
{
	static const uint8_t maxlen[7] = { [4] = 32, [6] = 128 };
	uint8_t nb;

	p->family = get_byte(r);
	p->len = get_byte(r);
	nb = get_byte(r);
	if ((p->family != 0 && p->family != 4 && p->family != 6) ||
	    p->len > maxlen[p->family % 7] || nb > maxlen[p->family % 7] / 8) {
		bad(r, "a prefix out of range");
		return;
	}
	if (nb > left(r)) {
		bad(r, "truncated");
		return;
	}
	memcpy(p->a, r->p, nb);
	r->p += nb;
}

static void get_elem(struct rd *r, struct ir_elem *e)
{
	get_prefix(r, &e->addr);
	e->port.proto = get_byte(r);
	e->port.lo = (uint16_t)(get_byte(r) << 8);
	e->port.lo |= get_byte(r);
	e->port.hi = (uint16_t)(get_byte(r) << 8);
	e->port.hi |= get_byte(r);
	e->chain = (uint32_t)get_max(r, UINT32_MAX);
}

static void get_set(struct rd *r, struct ir_set *s)
{
	s->name = get_str(r, true);
	s->comment = get_str(r, false);
	s->key = (enum ir_keytype)get_max(r, IR_KEY_PROTO_PORT);
	s->is_map = get_max(r, 1);
	s->revoke = get_max(r, 1);
	s->revoke_field = (enum ir_field)get_max(r, IR_DADDR);
	s->nelems = get_count(r, 9);            /* an element is 9 bytes at least */
	s->elems = xcalloc(s->nelems + 1, sizeof(*s->elems));
	for (size_t i = 0; i < s->nelems; i++)
		get_elem(r, &s->elems[i]);
}

static void get_counter(struct rd *r, struct ir_counter *c)
{
	c->name = get_str(r, true);
	c->comment = get_str(r, false);
	get_loc(r, &c->loc);
	c->packets = get_u(r);
	c->bytes = get_u(r);
}

/* The file name table, copied behind the ruleset in one allocation. */
static struct ir_ruleset *get_files(struct rd *r)
{
	const uint8_t *start;
	size_t n = get_count(r, 1), bytes = 0;
	struct ir_ruleset *rs;
	char *dst;

	start = r->p;
	for (size_t i = 0; i < n; i++)
		free(get_str(r, true));
	if (r->why)
		return NULL;
	bytes = (size_t)(r->p - start);
	rs = xcalloc(1, sizeof(*rs) + bytes);
	dst = (char *)(rs + 1);
	r->files = xcalloc(n + 1, sizeof(*r->files));
	r->nfiles = n;
	r->p = start;
	for (size_t i = 0; i < n; i++) {
		size_t len = (size_t)get_u(r) - 1;

		memcpy(dst, r->p, len);
		dst[len] = '\0';
		r->files[i] = dst;
		dst += len + 1;
		r->p += len;
	}
	return rs;
}

/* ---- what the rest of fedwall relies on -------------------------------- */

static bool has_counter(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->ncounters; i++)
		if (!strcmp(rs->counters[i].name, name))
			return true;
	return false;
}

static const char *check_rules(const struct ir_ruleset *rs)
{
	for (size_t i = 0; i < rs->nchains; i++)
		for (size_t j = 0; j < rs->chains[i].nrules; j++) {
			const struct ir_rule *x = &rs->chains[i].rules[j];

			if (x->set && !ir_find_set(rs, x->set))
				return "a rule looks up a set that is not there";
			if (x->target && x->kind == IR_R_JUMP && !ir_find_chain(rs, x->target))
				return "a rule jumps to a chain that is not there";
			if (x->target && x->kind == IR_R_COUNTER && !has_counter(rs, x->target))
				return "a rule names a counter that is not there";
		}
	return NULL;
}

static const char *check_elems(const struct ir_ruleset *rs)
{
	for (size_t i = 0; i < rs->nsets; i++) {
		const struct ir_set *s = &rs->sets[i];

		for (size_t k = 0; k < s->nelems; k++) {
			if (s->is_map && s->elems[k].chain >= rs->nchains)
				return "a map element jumps to a chain that is not there";
			if (k && ir_elem_cmp(&s->elems[k - 1], &s->elems[k]) > 0)
				return "elements out of order";
		}
	}
	return NULL;
}

struct ir_ruleset *ir_decode(const void *buf, size_t len, const char **why)
{
	struct rd r = { .p = buf, .end = (const uint8_t *)buf + len };
	struct ir_ruleset *rs = get_files(&r);

	if (!rs)
		goto out_why;
	rs->table = get_str(&r, true);
	rs->comment = get_str(&r, false);
	rs->flags = (uint32_t)get_max(&r, UINT32_MAX);
	rs->nchains = get_count(&r, 9);         /* a chain is 9 bytes at least */
	rs->chains = xcalloc(rs->nchains + 1, sizeof(*rs->chains));
	for (size_t i = 0; i < rs->nchains; i++)
		get_chain(&r, &rs->chains[i]);
	rs->nsets = get_count(&r, 7);
	rs->sets = xcalloc(rs->nsets + 1, sizeof(*rs->sets));
	for (size_t i = 0; i < rs->nsets; i++)
		get_set(&r, &rs->sets[i]);
	rs->ncounters = get_count(&r, 7);
	rs->counters = xcalloc(rs->ncounters + 1, sizeof(*rs->counters));
	for (size_t i = 0; i < rs->ncounters; i++)
		get_counter(&r, &rs->counters[i]);
	if (!r.why && r.p != r.end)
		r.why = "trailing bytes";
	if (!r.why && !(r.why = check_rules(rs)))
		r.why = check_elems(rs);
out_why:
	free(r.files);
	*why = r.why;
	if (!r.why)
		return rs;
	ir_free(rs);
	return NULL;
}

/* ---- after an element-only commit ------------------------------------- */

/* Copies want's elements of one set into live's set `ls`; map jumps go
 * through `to_live` (want chain index -> live chain index). */
static void take_set(struct ir_set *ls, const struct ir_set *ws, const uint32_t *to_live,
		     size_t nwant_chains)
{
	struct ir_elem *v = xcalloc(ws->nelems + 1, sizeof(*v));

	for (size_t i = 0; i < ws->nelems; i++) {
		v[i] = ws->elems[i];
		/* the read-back leaves a set's (not a map's) chain at 0 */
		v[i].chain = !ls->is_map ? 0 : ws->elems[i].chain < nwant_chains
			     ? to_live[ws->elems[i].chain] : UINT32_MAX;
	}
	free(ls->elems);
	ls->elems = v;
	ls->nelems = ws->nelems;
}

static bool maps_ok(const struct ir_set *s, size_t nchains)
{
	for (size_t i = 0; s->is_map && i < s->nelems; i++)
		if (s->elems[i].chain >= nchains)
			return false;
	return true;
}

bool ir_take_elems(struct ir_ruleset *live, const struct ir_ruleset *want,
		   const struct ir_diff *diff)
{
	uint32_t *to_live = xcalloc(want->nchains + 1, sizeof(*to_live));
	bool ok = true;

	for (size_t i = 0; i < want->nchains; i++) {
		const struct ir_chain *c = ir_find_chain(live, want->chains[i].name);

		to_live[i] = c ? (uint32_t)(c - live->chains) : UINT32_MAX;
	}
	for (size_t i = 0; ok && i < diff->nsets; i++) {
		const struct ir_set *ws = diff->sets[i].set;
		struct ir_set *ls = (struct ir_set *)ir_find_set(live, ws->name);

		ok = ls && ls->is_map == ws->is_map;
		if (ok) {
			take_set(ls, ws, to_live, want->nchains);
			ok = maps_ok(ls, live->nchains);
		}
	}
	free(to_live);
	return ok;
}
