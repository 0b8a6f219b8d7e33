/* incr.c - the incremental refresh: what a refresh's sources changed,
 * patched onto the live table as element changes, instead of deriving
 * the whole table again (DESIGN.md: a refresh costs what changed).
 *
 * The table a full derivation makes holds, in each port class's address
 * map, each partner's addresses merged (prefixes_merge), carved only
 * where another partner of the class claims part of them
 * (generator/overlap.c).  So where a partner's merged addresses change
 * in prefixes (`regions`) that no other partner's addresses touch, the
 * new table is the old one with those prefixes' elements removed or
 * added in the partner's maps, and nothing else.  Anything else (a
 * region another partner's addresses overlap, an element not where the
 * old derivation put it, a guard that might refuse) is left to the full
 * derivation: this file only ever says "here is the same table, made
 * cheaply" or "derive it".  FEDWALL_INCR=verify checks every patch
 * against the full derivation (engine/refresh.c).
 */
#include "engine/engine.h"
#include "generator/generator.h"
#include "refresh/refresh.h"

#include <stdlib.h>
#include <string.h>

typedef VEC(struct prefix) pvec;
typedef VEC(size_t) idx_vec;

/* One partner's merged addresses before and after, and the difference. */
struct part {
	struct prefix *old, *now;
	size_t nold, nnow;
	bool changed;
	pvec add, del;          /* merged prefixes, prefix_cmp order */
	/* Prefixes as given that came or left, though the merged ones may
	 * not change: a prefix nested in the partner's own counts as more
	 * specific against another partner's (generator/overlap.c). */
	pvec raw;
};

struct incr {
	const struct policy *p;
	const struct ir_ruleset *live;
	struct part *pt;
	size_t n;
	struct engine_incr *out;
	const struct prefix_span *before, *after;
	/* Per partner, the IPv4 address maps of its port classes, both
	 * directions (partner_classes; `known` once found): partners that
	 * share none never meet in a map. */
	idx_vec *cls;
	bool *known;
};

static bool sorted_unique(const struct prefix_span *l)
{
	for (size_t i = 1; i < l->n; i++)
		if (prefix_cmp(&l->v[i - 1], &l->v[i]) >= 0)
			return false;
	return true;
}

static int prefix_qcmp(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

/* l in prefix_cmp order without repeats: l's own array when it is so
 * (*own NULL), else a sorted copy (*own, the caller's to free). */
static const struct prefix *ordered(const struct prefix_span *l, size_t *n,
				    struct prefix **own)
{
	struct prefix *v;
	size_t k = 0;

	*own = NULL;
	*n = l->n;
	if (sorted_unique(l))
		return l->v;
	v = xreallocarray(NULL, l->n, sizeof(*v));
	memcpy(v, l->v, l->n * sizeof(*v));
	qsort(v, l->n, sizeof(*v), prefix_qcmp);
	for (size_t i = 0; i < l->n; i++)
		if (!k || prefix_cmp(&v[k - 1], &v[i]))
			v[k++] = v[i];
	*n = k;
	*own = v;
	return v;
}

/* l merged (prefixes_merge), a new array. */
static struct prefix *merged(const struct prefix_span *l, size_t *n)
{
	struct prefix *own, *v = xreallocarray(NULL, l->n ? l->n : 1, sizeof(*v));
	const struct prefix *o = ordered(l, n, &own);

	*n = prefixes_merge_into(o, *n, v);
	free(own);
	return v;
}

/* Entries of a not in b to only_a, of b not in a to only_b (both sorted,
 * unique): one walk. */
static void diff2(const struct prefix *a, size_t na, const struct prefix *b, size_t nb,
		  pvec *only_a, pvec *only_b)
{
	size_t i = 0, j = 0;

	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : prefix_cmp(&a[i], &b[j]);

		if (c < 0)
			VEC_PUSH(only_a, a[i++]);
		else if (c > 0)
			VEC_PUSH(only_b, b[j++]);
		else
			i++, j++;
	}
}

static bool same_list(const struct prefix_span *a, const struct prefix_span *b)
{
	return a->n == b->n && (!a->n || !memcmp(a->v, b->v, a->n * sizeof(*a->v)));
}

/* Partner i's prefixes as given that came or left, then both sides
 * merged and what came and left of those. */
static void part_changed(struct part *t, const struct prefix_span *before,
			 const struct prefix_span *after)
{
	struct prefix *ob, *oa;
	size_t nb, na;
	const struct prefix *b = ordered(before, &nb, &ob), *a = ordered(after, &na, &oa);

	diff2(b, nb, a, na, &t->raw, &t->raw);
	t->old = xreallocarray(NULL, nb ? nb : 1, sizeof(*t->old));
	t->now = xreallocarray(NULL, na ? na : 1, sizeof(*t->now));
	t->nold = prefixes_merge_into(b, nb, t->old);
	t->nnow = prefixes_merge_into(a, na, t->now);
	free(ob);
	free(oa);
	diff2(t->old, t->nold, t->now, t->nnow, &t->del, &t->add);
	t->changed = t->add.n || t->del.n || t->raw.n;
}

static void parts_build(struct incr *c, const struct prefix_span *before,
			const struct prefix_span *after)
{
	for (size_t i = 0; i < c->n; i++) {
		struct part *t = &c->pt[i];

		if (!same_list(&before[i], &after[i])) {
			part_changed(t, &before[i], &after[i]);
			continue;
		}
		t->now = merged(&after[i], &t->nnow);
		t->old = t->now;
		t->nold = t->nnow;
	}
}

static void parts_free(struct incr *c)
{
	for (size_t i = 0; c->pt && i < c->n; i++) {
		if (c->pt[i].old != c->pt[i].now)
			free(c->pt[i].old);
		free(c->pt[i].now);
		free(c->pt[i].add.v);
		free(c->pt[i].del.v);
		free(c->pt[i].raw.v);
	}
	free(c->pt);
}

/* ---- may the change be patched? --------------------------------------- */


/* Whether r overlaps an entry of v (sorted, disjoint): only the last
 * entry not after r can contain it, only the first after it lie in it. */
static bool overlaps_any(const struct prefix *r, const struct prefix *v, size_t n)
{
	size_t k = prefix_upper(v, n, r);

	return (k > 0 && prefix_overlaps(&v[k - 1], r)) ||
	       (k < n && prefix_overlaps(&v[k], r));
}

static bool covered(const struct prefix *r, const struct prefix *v, size_t n)
{
	size_t k = prefix_upper(v, n, r);

	return k > 0 && prefix_contains(&v[k - 1], r);
}

static bool fail(struct incr *c, const char *fmt, const char *who, const struct prefix *r)
{
	char buf[PREFIX_STRLEN] = "";

	if (r)
		prefix_fmt(r, buf, sizeof(buf));
	snprintf(c->out->why, sizeof(c->out->why), fmt, who, buf);
	return false;
}

static bool share_class(struct incr *c, size_t i, size_t j);

/* No other partner's addresses, before or after, overlap a region of i
 * in a map they share. */
static bool alone(struct incr *c, size_t i, const pvec *regions)
{
	for (size_t k = 0; k < regions->n; k++) {
		const struct prefix *r = &regions->v[k];

		for (size_t j = 0; j < c->n; j++) {
			const struct part *o = &c->pt[j];

			if (j == i || !share_class(c, i, j))
				continue;
			if (overlaps_any(r, o->old, o->nold) || overlaps_any(r, o->now, o->nnow))
				return fail(c, "partner '%s': a changed prefix %s overlaps another"
					    " partner's", c->p->partners[i].name, r);
		}
	}
	return true;
}

/* Whether the last address of a, plus one, is the first of b. */
static bool touching(const struct prefix *a, const struct prefix *b)
{
	uint8_t la[16], fb[16];
	unsigned nb = a->family == 4 ? 4 : 16;
	int k;

	if (a->family != b->family)
		return false;
	prefix_last(a, la);
	prefix_first(b, fb);
	for (k = (int)nb - 1; k >= 0 && la[k] == 0xff; k--)
		la[k] = 0;
	if (k < 0)
		return false;
	la[k]++;
	return !memcmp(la, fb, nb);
}

/* The guards of the full derivation (guard_width, guard_max_shrink),
 * asked only where the change is: a run an added prefix joins, the
 * count, the net shrink.  Any doubt leaves it to the full derivation,
 * which refuses with the whole story. */
static bool width_ok(struct incr *c, size_t i)
{
	const struct guards *g = &c->p->guards;
	const struct part *t = &c->pt[i];
	struct prefix_run run;

	if (g->max_entries && t->nnow > g->max_entries)
		return fail(c, "partner '%s': more entries than guards.max_entries%s", c->p->partners[i].name, NULL);
	for (size_t k = 0; k < t->add.n; k++) {
		size_t at = prefix_upper(t->now, t->nnow, &t->add.v[k]) - 1, lo = at, hi = at + 1;

		while (lo > 0 && touching(&t->now[lo - 1], &t->now[lo]))
			lo--;
		while (hi < t->nnow && touching(&t->now[hi - 1], &t->now[hi]))
			hi++;
		if (prefixes_wide_run(t->now + lo, hi - lo, g->min_prefix_v4, g->min_prefix_v6,
				      &run))
			return fail(c, "partner '%s': %s joins a run the guards may refuse",
				    c->p->partners[i].name, &t->add.v[k]);
	}
	return true;
}

/* Partner i's addresses in the live table, as the full derivation's
 * max_shrink weighs them (engine_partner_addrs); the caller frees. */
static struct addr_list live_addrs(const struct incr *c, size_t i)
{
	struct addr_list *all = xcalloc(c->n + 1, sizeof(*all)), mine;

	engine_partner_addrs(c->live, c->p, all);
	mine = all[i];
	for (size_t k = 0; k < c->n; k++)
		if (k != i)
			addr_list_free(&all[k]);
	free(all);
	return mine;
}

/* The full derivation's own max_shrink (guard_max_shrink: no source is
 * stale here, state_vouches, so nothing is exempt), asked first at 0%
 * whether the partner's addresses shrink at all: no net shrink of its old
 * and new addresses, none in the live table either (it holds the old
 * ones, less what other partners claim: never more), and the live table
 * need not be read.  Old and new are merged, so the prefixes both hold
 * overlap neither `del` nor `add`: old less new counts as del less add,
 * and the question costs the change, not the partner's 100k prefixes. */
static bool shrink_ok(struct incr *c, size_t i)
{
	const struct part *t = &c->pt[i];
	struct guards none = c->p->guards;
	struct addr_list live;
	bool leaves = false;
	char *why;

	for (size_t k = 0; k < t->del.n && !leaves; k++)
		leaves = !covered(&t->del.v[k], t->now, t->nnow);
	none.max_shrink = 0;
	if (!leaves || !(why = guard_max_shrink(&none, t->del.v, t->del.n, t->add.v, t->add.n,
						NULL, 0)))
		return true;
	free(why);
	live = live_addrs(c, i);
	why = guard_max_shrink(&c->p->guards, live.v, live.n, t->now, t->nnow, NULL, 0);
	addr_list_free(&live);
	if (!why)
		return true;
	free(why);
	return fail(c, "partner '%s': a shrink the guards may refuse%s", c->p->partners[i].name,
		    NULL);
}

/* ---- the patch ---------------------------------------------------------- */

/* Changes to one set of the copy, applied in one pass. */
struct setpatch {
	size_t set;
	VEC(struct ir_elem) add, del;
};

typedef VEC(struct setpatch) patch_vec;

static struct setpatch *patch_of(patch_vec *pv, size_t set)
{
	for (size_t i = 0; i < pv->n; i++)
		if (pv->v[i].set == set)
			return &pv->v[i];
	VEC_PUSH(pv, ((struct setpatch){ .set = set }));
	return &pv->v[pv->n - 1];
}

static bool port_hits(const struct policy *p, const struct partner *pt,
		      const struct portrange *atom)
{
	for (size_t i = 0; i < pt->nservices; i++) {
		const struct service *sv = &p->services[pt->services[i].idx];

		for (size_t j = 0; j < sv->nports; j++) {
			const struct portrange *r = &sv->ports[j].r;

			if (r->proto == atom->proto && r->lo <= atom->hi && atom->lo <= r->hi)
				return true;
		}
	}
	return false;
}

static ssize_t set_index(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->nsets; i++)
		if (!strcmp(rs->sets[i].name, name))
			return (ssize_t)i;
	return -1;
}

static ssize_t chain_index(const struct ir_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->nchains; i++)
		if (!strcmp(rs->chains[i].name, name))
			return (ssize_t)i;
	return -1;
}

/* The address maps of family `fam` that partner `pt`'s addresses go to
 * in direction `dir` ("in", "out"): those of every port class whose
 * atoms (the port dispatch map DIR_ports) meet its ports. */
static void class_maps(const struct incr *c, const struct partner *pt, const char *dir,
		       uint8_t fam, idx_vec *out)
{
	char name[16];
	ssize_t ds;

	snprintf(name, sizeof(name), "%s_ports", dir);
	ds = set_index(c->live, name);
	for (size_t e = 0; ds >= 0 && e < c->live->sets[ds].nelems; e++) {
		const struct ir_elem *el = &c->live->sets[ds].elems[e];
		const struct ir_chain *ch;

		if (el->chain >= c->live->nchains || !port_hits(c->p, pt, &el->port))
			continue;
		ch = &c->live->chains[el->chain];
		for (size_t r = 0; r < ch->nrules; r++) {
			const struct ir_rule *ru = &ch->rules[r];
			ssize_t s = ru->kind == IR_R_VMAP && ru->family == fam && ru->set
				    ? set_index(c->live, ru->set) : -1;
			bool seen = false;

			for (size_t k = 0; s >= 0 && k < out->n; k++)
				seen |= out->v[k] == (size_t)s;
			if (s >= 0 && !seen)
				VEC_PUSH(out, (size_t)s);
		}
	}
}

static const idx_vec *partner_classes(struct incr *c, size_t i)
{
	const struct partner *pt = &c->p->partners[i];
	char chain[128];

	if (c->known[i])
		return &c->cls[i];
	c->known[i] = true;
	snprintf(chain, sizeof(chain), "in_%s", pt->name);
	if (chain_index(c->live, chain) >= 0)
		class_maps(c, pt, "in", 4, &c->cls[i]);
	snprintf(chain, sizeof(chain), "out_%s", pt->name);
	if (chain_index(c->live, chain) >= 0)
		class_maps(c, pt, "out", 4, &c->cls[i]);
	return &c->cls[i];
}

/* Whether partners i and j own addresses in one port class's maps: only
 * there does the generator weigh one's addresses against the other's. */
static bool share_class(struct incr *c, size_t i, size_t j)
{
	const idx_vec *a = partner_classes(c, i), *b = partner_classes(c, j);

	for (size_t x = 0; x < a->n; x++)
		for (size_t y = 0; y < b->n; y++)
			if (a->v[x] == b->v[y])
				return true;
	return false;
}

/* The index of the first element of s (ir_elem_cmp order: by prefix, the
 * map's elements disjoint) after p. */
static size_t elem_upper(const struct ir_set *s, const struct prefix *p)
{
	size_t lo = 0, hi = s->nelems;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (prefix_cmp(&s->elems[mid].addr, p) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct ir_elem *find_elem(const struct ir_set *s, const struct prefix *p)
{
	size_t k = elem_upper(s, p);

	return k > 0 && !prefix_cmp(&s->elems[k - 1].addr, p) ? &s->elems[k - 1] : NULL;
}

/* Whether element e is one partner i deletes in this patch (t->del,
 * its own chain `ch`). */
static bool deleted(const struct part *t, const struct ir_elem *e, uint32_t ch)
{
	size_t k = prefix_upper(t->del.v, t->del.n, &e->addr);

	return e->chain == ch && k > 0 && !prefix_cmp(&t->del.v[k - 1], &e->addr);
}

/* Whether p meets an element of s that stays: one the partner does not
 * delete in the same patch (its /32 that an added /31 takes in).  The
 * elements are disjoint: only the last one not after p can contain it,
 * and those after it that p contains follow one another. */
static bool meets_other(const struct ir_set *s, const struct prefix *p, const struct part *t,
			uint32_t ch)
{
	size_t lo = elem_upper(s, p);

	if (lo > 0 && prefix_overlaps(&s->elems[lo - 1].addr, p) &&
	    !deleted(t, &s->elems[lo - 1], ch))
		return true;
	for (size_t k = lo; k < s->nelems && prefix_overlaps(&s->elems[k].addr, p); k++)
		if (!deleted(t, &s->elems[k], ch))
			return true;
	return false;
}

/* "partner 'P': map M: ...", into out->why. */
static bool map_fail(struct incr *c, const char *partner, const struct ir_set *s,
		     const struct prefix *r, const char *what)
{
	char buf[PREFIX_STRLEN];

	snprintf(c->out->why, sizeof(c->out->why), "partner '%s': map %s: %s %s", partner,
		 s->name, prefix_fmt(r, buf, sizeof(buf)), what);
	return false;
}

/* Partner i's changes in family `fam` of map `s` (chain `ch`), into sp. */
static bool patch_map(struct incr *c, size_t i, uint8_t fam, const struct ir_set *s,
		      uint32_t ch, struct setpatch *sp)
{
	const struct part *t = &c->pt[i];
	const char *name = c->p->partners[i].name;

	for (size_t k = 0; k < t->del.n; k++) {
		const struct ir_elem *e;

		if (t->del.v[k].family != fam)
			continue;
		e = find_elem(s, &t->del.v[k]);
		if (!e || e->chain != ch)
			return map_fail(c, name, s, &t->del.v[k], "is not an element of its own");
		VEC_PUSH(&sp->del, *e);
	}
	for (size_t k = 0; k < t->add.n; k++) {
		if (t->add.v[k].family != fam)
			continue;
		if (meets_other(s, &t->add.v[k], t, ch))
			return map_fail(c, name, s, &t->add.v[k], "meets an element there");
		VEC_PUSH(&sp->add, ((struct ir_elem){ .addr = t->add.v[k], .chain = ch }));
	}
	return true;
}

/* Partner i's changes in direction `dir`, into patches of its maps. */
static bool patch_dir(struct incr *c, size_t i, const char *dir, patch_vec *pv)
{
	const struct partner *pt = &c->p->partners[i];
	char chain[128];
	ssize_t ch;
	bool ok = true;

	snprintf(chain, sizeof(chain), "%s_%s", dir, pt->name);
	ch = chain_index(c->live, chain);
	if (ch < 0)
		return true;    /* not that direction */
	for (uint8_t fam = 4; ok && fam <= 6; fam += 2) {
		idx_vec maps = { 0 };

		class_maps(c, pt, dir, fam, &maps);
		for (size_t m = 0; ok && m < maps.n; m++)
			ok = patch_map(c, i, fam, &c->live->sets[maps.v[m]], (uint32_t)ch,
				       patch_of(pv, maps.v[m]));
		free(maps.v);
	}
	return ok;
}

static int elem_qcmp(const void *x, const void *y)
{
	return ir_elem_cmp(x, y);
}

/* s's elements minus sp->del plus sp->add, in ir_elem_cmp order. */
static void apply_patch(struct ir_set *s, struct setpatch *sp)
{
	struct ir_elem *v = xreallocarray(NULL, s->nelems + sp->add.n + 1, sizeof(*v));
	size_t n = 0, a = 0, d = 0;

	if (sp->add.n > 1)
		qsort(sp->add.v, sp->add.n, sizeof(*sp->add.v), elem_qcmp);
	if (sp->del.n > 1)
		qsort(sp->del.v, sp->del.n, sizeof(*sp->del.v), elem_qcmp);
	for (size_t i = 0; i < s->nelems; i++) {
		while (a < sp->add.n && ir_elem_cmp(&sp->add.v[a], &s->elems[i]) < 0)
			v[n++] = sp->add.v[a++];
		while (d < sp->del.n && ir_elem_cmp(&sp->del.v[d], &s->elems[i]) < 0)
			d++;
		if (d < sp->del.n && !ir_elem_cmp(&sp->del.v[d], &s->elems[i]))
			continue;
		v[n++] = s->elems[i];
	}
	while (a < sp->add.n)
		v[n++] = sp->add.v[a++];
	free(s->elems);
	s->elems = v;
	s->nelems = n;
}

/* The patch as ir_diff() would find it from live to rs: added elements
 * point into rs, removed ones into live, each set's in element order
 * (the patches are sorted).  False if one is not where it should be. */
static bool patch_diff(const struct ir_ruleset *live, const struct ir_ruleset *rs,
		       const patch_vec *pv, struct ir_diff *out)
{
	bool ok = true;

	memset(out, 0, sizeof(*out));
	out->sets = xcalloc(pv->n + 1, sizeof(*out->sets));
	for (size_t k = 0; ok && k < pv->n; k++) {
		const struct setpatch *sp = &pv->v[k];
		struct ir_set_delta *sd = &out->sets[out->nsets];

		if (!sp->add.n && !sp->del.n)
			continue;
		out->nsets++;
		sd->set = &rs->sets[sp->set];
		sd->add = xcalloc(sp->add.n + 1, sizeof(*sd->add));
		sd->del = xcalloc(sp->del.n + 1, sizeof(*sd->del));
		for (size_t a = 0; ok && a < sp->add.n; a++)
			ok = (sd->add[sd->nadd++] = find_elem(sd->set, &sp->add.v[a].addr));
		for (size_t d = 0; ok && d < sp->del.n; d++)
			ok = (sd->del[sd->ndel++] = find_elem(&live->sets[sp->set],
							      &sp->del.v[d].addr));
	}
	if (!ok)
		ir_diff_free(out);
	return ok;
}

static struct ir_ruleset *patch(struct incr *c)
{
	patch_vec pv = { 0 };
	struct ir_ruleset *rs = NULL;
	bool ok = true;

	for (size_t i = 0; ok && i < c->n; i++) {
		if (!c->pt[i].changed)
			continue;
		ok = patch_dir(c, i, "in", &pv) && patch_dir(c, i, "out", &pv);
	}
	if (ok) {
		rs = ir_dup(c->live);
		for (size_t k = 0; k < pv.n; k++) {
			c->out->nadd += pv.v[k].add.n;
			c->out->ndel += pv.v[k].del.n;
			apply_patch(&rs->sets[pv.v[k].set], &pv.v[k]);
		}
		if (!patch_diff(c->live, rs, &pv, &c->out->diff)) {
			snprintf(c->out->why, sizeof(c->out->why), "the patch's elements are not"
				 " where it put them");
			ir_free(rs);
			rs = NULL;
		}
	}
	for (size_t k = 0; k < pv.n; k++) {
		free(pv.v[k].add.v);
		free(pv.v[k].del.v);
	}
	free(pv.v);
	return rs;
}

/* ---- the face ------------------------------------------------------------ */

/* Partner i's addresses with their scopes (prefix_span.scope), summed
 * in an order-free hash: equal for equal lists, as given. */
static uint64_t scoped_sum(const struct prefix_span *l)
{
	uint64_t sum = 0;

	for (size_t k = 0; k < l->n; k++) {
		uint8_t sc = l->scope ? l->scope[k] : 0;
		uint64_t h = fnv1a64(FNV1A64_INIT, &l->v[k], sizeof(l->v[k]));

		sum += mix64(fnv1a64(h, &sc, sizeof(sc)));
	}
	return sum;
}

/* A partner whose SRV kinds count on some of its services only
 * (partner_srv_scoped) has its addresses on different port classes, and
 * one may move between services with no prefix changing: a patch, which
 * knows a partner's prefixes and not their services, is never made for
 * such a partner's change. */
static bool scoped_ok(struct incr *c, size_t i)
{
	const struct partner *pt = &c->p->partners[i];

	if (!partner_srv_scoped(c->p, pt))
		return true;
	if (!c->pt[i].changed && scoped_sum(&c->before[i]) == scoped_sum(&c->after[i]))
		return true;
	return fail(c, "partner '%s' has addresses per service (SRV), and they changed%s",
		    pt->name, NULL);
}

/* A partner with a feed that publishes ports (m365) has addresses on
 * ports of their own, which the spans do not carry: a change of those
 * ports alone changes no prefix.  Never patched: derived in full. */
static bool ports_ok(struct incr *c, size_t i)
{
	const struct partner *pt = &c->p->partners[i];

	if (!partner_feed_ports(pt))
		return true;
	return fail(c, "partner '%s' has addresses on the ports a feed gives them%s",
		    pt->name, NULL);
}

static bool checks(struct incr *c, bool force)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct part *t = &c->pt[i];
		pvec regions = { 0 };
		bool ok;

		if (!scoped_ok(c, i) || !ports_ok(c, i))
			return false;
		if (!t->changed)
			continue;
		c->out->npartners++;
		c->out->padd[i] = t->add.n;
		c->out->pdel[i] = t->del.n;
		for (size_t k = 0; k < t->add.n; k++)
			VEC_PUSH(&regions, t->add.v[k]);
		for (size_t k = 0; k < t->del.n; k++)
			VEC_PUSH(&regions, t->del.v[k]);
		for (size_t k = 0; k < t->raw.n; k++)
			VEC_PUSH(&regions, t->raw.v[k]);
		ok = alone(c, i, &regions) && width_ok(c, i) && (force || shrink_ok(c, i));
		free(regions.v);
		if (!ok)
			return false;
	}
	return true;
}

struct ir_ruleset *engine_incr(const struct policy *p, const struct ir_ruleset *live,
			       const struct prefix_span *before, const struct prefix_span *after,
			       bool force, struct engine_incr *out)
{
	struct incr c = { .p = p, .live = live, .n = p->npartners, .out = out,
			  .before = before, .after = after };
	struct ir_ruleset *rs = NULL;

	out->npartners = out->nadd = out->ndel = 0;
	out->why[0] = '\0';
	ir_diff_free(&out->diff);
	memset(out->padd, 0, p->npartners * sizeof(*out->padd));
	memset(out->pdel, 0, p->npartners * sizeof(*out->pdel));
	c.pt = xcalloc(c.n + 1, sizeof(*c.pt));
	c.cls = xcalloc(c.n + 1, sizeof(*c.cls));
	c.known = xcalloc(c.n + 1, sizeof(*c.known));
	parts_build(&c, before, after);
	if (checks(&c, force))
		rs = patch(&c);
	parts_free(&c);
	for (size_t i = 0; i < c.n; i++)
		free(c.cls[i].v);
	free(c.cls);
	free(c.known);
	return rs;
}
