/* guard.c - the final guard: the last look at a ruleset before it is
 * committed (see engine.h for the contract).
 *
 * The guards upstream (policy validation, the list reader, the refresh's
 * per-partner guard) each see one path; this one sees what every path
 * produced, so a bug or a flag in any of them cannot open the edge.  It
 * runs on every commit of a possibly million-element table, so it is
 * linear: a set's elements come in address order (ir_elem_cmp), and a
 * counting sort by owner keeps that order within each owner. */
#include "engine/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Said per set; past that, one line with how many more: a million
 * adjacent hosts under a /32 guard should not be a million lines. */
#define REPORTS_PER_SET 10

struct gctx {
	const struct ir_ruleset *rs;
	const struct ir_set *set;
	unsigned min4, min6;
	struct diag *d;
	unsigned bad;           /* violations in all */
	unsigned bad_set;       /* ... in this set */
};

static int cmp_prefix(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

static bool addr_key(enum ir_keytype k)
{
	return k != IR_KEY_PROTO_PORT;
}

/* Owner of element k: its jump target in a map, else 0 (the set). */
static size_t owner_of(const struct gctx *c, size_t k)
{
	uint32_t ch = c->set->elems[k].chain;

	if (!c->set->is_map)
		return 0;
	return ch < c->rs->nchains ? ch : c->rs->nchains;
}

/* "partner 'msn' (chain in_msn)", "chain X" or "" (a set's own). */
static const struct loc *owner_name(const struct gctx *c, size_t owner, struct strbuf *sb)
{
	const struct ir_chain *ch;
	const char *pt;

	if (!c->set->is_map)
		return NULL;
	if (owner >= c->rs->nchains) {
		sb_addf(sb, " (a jump to no chain)");
		return NULL;
	}
	ch = &c->rs->chains[owner];
	pt = ir_chain_partner(ch->name);
	if (pt)
		sb_addf(sb, " partner '%s' (chain %s)", pt, ch->name);
	else
		sb_addf(sb, " chain %s", ch->name);
	return ch->loc.file ? &ch->loc : NULL;
}

/* The prefixes of the run that no earlier one of it contains, three at
 * most, then how many more; how many in all. */
static size_t put_members(struct strbuf *sb, const struct prefix *v,
			  const struct prefix_run *r)
{
	char buf[PREFIX_STRLEN];
	size_t idx[3], total = prefix_run_members(v, r, idx, ARRAY_SIZE(idx));

	for (size_t k = 0; k < total && k < ARRAY_SIZE(idx); k++)
		sb_addf(sb, "%s%s", k ? ", " : "", prefix_fmt(&v[idx[k]], buf, sizeof(buf)));
	if (total > ARRAY_SIZE(idx))
		sb_addf(sb, " and %zu more", total - ARRAY_SIZE(idx));
	return total;
}

static void report(struct gctx *c, const struct prefix *v, const struct prefix_run *r,
		   size_t owner, bool together)
{
	char range[PREFIX_RUN_STRLEN];
	unsigned min = r->family == 4 ? c->min4 : c->min6;
	struct strbuf sb = { 0 };
	const struct loc *at = NULL;

	c->bad++;
	if (++c->bad_set > REPORTS_PER_SET)
		return;
	sb_addf(&sb, "%s %s:", c->set->is_map ? "map" : "set", c->set->name);
	if (together)
		sb_addf(&sb, " its elements together");
	else
		at = owner_name(c, owner, &sb);
	if (c->set->is_map)
		sb_addf(&sb, ":");
	sb_addf(&sb, " ");
	if (put_members(&sb, v, r) > 1)
		sb_addf(&sb, " join into %s,", prefix_run_fmt(r, range, sizeof(range)));
	else
		sb_addf(&sb, " is");
	if (prefix_run_whole(r))
		sb_addf(&sb, " the whole IPv%c Internet", r->family == 4 ? '4' : '6');
	else
		sb_addf(&sb, " wider than /%u (guards.min_prefix_v%c)", min,
			r->family == 4 ? '4' : '6');
	diag_error(c->d, at, "refusing to commit: %s", sb_str(&sb));
	sb_free(&sb);
}

/* Runs of v[0..n) (one owner's, address order); whether one covered the
 * whole family. */
static bool owner_runs(struct gctx *c, const struct prefix *v, size_t n, size_t owner)
{
	struct prefix_run r;
	size_t pos = 0;
	bool whole = false;

	while (prefix_run_next(v, n, &pos, &r)) {
		if (!prefix_run_wider(&r, r.family == 4 ? c->min4 : c->min6))
			continue;
		whole |= prefix_run_whole(&r);
		report(c, v, &r, owner, false);
	}
	return whole;
}

/* Counting sort of the set's addresses by owner into v: stable, so each
 * owner's slice keeps the set's order.  start[o]..start[o + 1] is o's. */
static void by_owner(const struct gctx *c, struct prefix *v, size_t *start, size_t nown)
{
	const struct ir_set *s = c->set;
	size_t *at = xcalloc(nown + 1, sizeof(*at));

	memset(start, 0, (nown + 1) * sizeof(*start));
	for (size_t k = 0; k < s->nelems; k++)
		start[owner_of(c, k) + 1]++;
	for (size_t o = 0; o < nown; o++)
		start[o + 1] += start[o];
	memcpy(at, start, nown * sizeof(*at));
	for (size_t k = 0; k < s->nelems; k++)
		v[at[owner_of(c, k)]++] = s->elems[k].addr;
	free(at);
}

static bool all_bytes(const uint8_t *a, unsigned n, uint8_t b)
{
	for (unsigned i = 0; i < n; i++)
		if (a[i] != b)
			return false;
	return true;
}

/* Whether some element starts at the family's first address and some
 * ends at its last: without both, no run is the whole family, and the
 * copy and walk below are spared (they cost a pass over a big map). */
static bool may_be_whole(const struct ir_set *s)
{
	bool lo = false, hi = false;

	for (size_t k = 0; k < s->nelems && !(lo && hi); k++) {
		const struct prefix *p = &s->elems[k].addr;
		unsigned nb = prefix_maxlen(p) / 8;
		uint8_t last[16];

		lo |= all_bytes(p->a, nb, 0);
		prefix_last(p, last);
		hi |= all_bytes(last, nb, 0xff);
	}
	return lo && hi;
}

/* The whole map: partners that each keep to their guard may still add
 * up to everybody.  `v` has room for every element. */
static void map_runs(struct gctx *c, struct prefix *v)
{
	const struct ir_set *s = c->set;
	struct prefix_run r;
	size_t pos = 0;

	if (!may_be_whole(s))
		return;
	for (size_t k = 0; k < s->nelems; k++)
		v[k] = s->elems[k].addr;
	sort_unless_sorted(v, s->nelems, sizeof(*v), cmp_prefix);
	while (prefix_run_next(v, s->nelems, &pos, &r))
		if (prefix_run_whole(&r))
			report(c, v, &r, 0, true);
}

static void check_set(struct gctx *c)
{
	const struct ir_set *s = c->set;
	size_t nown = s->is_map ? c->rs->nchains + 1 : 1;
	struct prefix *v = xreallocarray(NULL, s->nelems + 1, sizeof(*v));
	size_t *start = xcalloc(nown + 1, sizeof(*start));
	bool whole = false;

	c->bad_set = 0;
	by_owner(c, v, start, nown);
	for (size_t o = 0; o < nown; o++) {
		size_t n = start[o + 1] - start[o];

		sort_unless_sorted(v + start[o], n, sizeof(*v), cmp_prefix);
		whole |= owner_runs(c, v + start[o], n, o);
	}
	if (s->is_map && !whole)        /* not said twice when one owner did it */
		map_runs(c, v);
	if (c->bad_set > REPORTS_PER_SET)
		diag_error(c->d, NULL, "refusing to commit: %s %s: %u more ranges too wide",
			   s->is_map ? "map" : "set", s->name, c->bad_set - REPORTS_PER_SET);
	free(start);
	free(v);
}

int engine_guard(const struct policy *p, const struct ir_ruleset *want, struct diag *d)
{
	struct gctx c = { .rs = want, .d = d,
			  .min4 = p ? p->guards.min_prefix_v4 : ENGINE_DEFAULT_MIN4,
			  .min6 = p ? p->guards.min_prefix_v6 : ENGINE_DEFAULT_MIN6 };

	for (size_t i = 0; want && i < want->nsets; i++) {
		c.set = &want->sets[i];
		if (addr_key(c.set->key) && c.set->nelems)
			check_set(&c);
	}
	return c.bad ? -EPERM : 0;
}
