/* addrs.c - each partner's addresses in a ruleset (the live table),
 * as refresh compares them with what its sources propose. */
#include "engine/engine.h"
#include "refresh/refresh.h"

#include <stdlib.h>
#include <string.h>

static const struct partner *find_partner(const struct policy *p, const char *name)
{
	size_t lo = 0, hi = p->npartners;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, p->partners[mid].name);

		if (c == 0)
			return &p->partners[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int cmp_prefix(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

/* Partner index of each chain (SIZE_MAX: not a partner's). */
static size_t *chain_partners(const struct ir_ruleset *rs, const struct policy *p)
{
	size_t *cp = xcalloc(rs->nchains + 1, sizeof(*cp));

	for (size_t c = 0; c < rs->nchains; c++) {
		const char *name = ir_chain_partner(rs->chains[c].name);
		const struct partner *pt = name ? find_partner(p, name) : NULL;

		cp[c] = pt ? (size_t)(pt - p->partners) : SIZE_MAX;
	}
	return cp;
}

/* Two passes, so that each list is allocated once at its size: this runs
 * over every element of the table on each refresh. */
void engine_partner_addrs(const struct ir_ruleset *rs, const struct policy *p,
			  struct addr_list *out)
{
	size_t *cp = rs ? chain_partners(rs, p) : NULL;

	for (int pass = 0; rs && pass < 2; pass++) {
		for (size_t i = 0; i < rs->nsets; i++) {
			const struct ir_set *set = &rs->sets[i];

			if (!set->is_map || set->key == IR_KEY_PROTO_PORT)
				continue;
			for (size_t k = 0; k < set->nelems; k++) {
				uint32_t c = set->elems[k].chain;
				struct addr_list *l;

				if (c >= rs->nchains || cp[c] == SIZE_MAX)
					continue;
				l = &out[cp[c]];
				if (pass == 0)
					l->cap++;
				else
					l->v[l->n++] = set->elems[k].addr;
			}
		}
		for (size_t i = 0; pass == 0 && i < p->npartners; i++) {
			out[i].v = xcalloc(out[i].cap + 1, sizeof(*out[i].v));
			out[i].locs = xcalloc(out[i].cap + 1, sizeof(*out[i].locs));
		}
	}
	free(cp);
	for (size_t i = 0; i < p->npartners; i++) {
		struct addr_list *l = &out[i];
		size_t k = 0;

		sort_unless_sorted(l->v, l->n, sizeof(*l->v), cmp_prefix);
		for (size_t j = 0; j < l->n; j++)
			if (k == 0 || prefix_cmp(&l->v[k - 1], &l->v[j]))
				l->v[k++] = l->v[j];
		l->n = k;
	}
}

/* The port groups of src (a feed's ports per address) into dst. */
static void ports_copy(struct addr_list *dst, const struct addr_list *src)
{
	dst->pgrp = NULL;
	dst->pgroups = NULL;
	dst->npgroups = 0;
	if (!src->n || !src->pgrp)
		return;
	dst->pgrp = xcalloc(src->n, sizeof(*dst->pgrp));
	memcpy(dst->pgrp, src->pgrp, src->n * sizeof(*dst->pgrp));
	dst->pgroups = xcalloc(src->npgroups + 1, sizeof(*dst->pgroups));
	for (size_t k = 0; k < src->npgroups; k++) {
		const struct portset *g = &src->pgroups[k];

		dst->pgroups[k].v = xcalloc(g->n + 1, sizeof(*g->v));
		if (g->n)
			memcpy(dst->pgroups[k].v, g->v, g->n * sizeof(*g->v));
		dst->pgroups[k].n = g->n;
	}
	dst->npgroups = src->npgroups;
}

void engine_addr_lists_copy(struct addr_list *dst, const struct addr_list *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].cap = src[i].n;
		dst[i].v = xcalloc(src[i].n + 1, sizeof(*dst[i].v));
		dst[i].locs = xcalloc(src[i].n + 1, sizeof(*dst[i].locs));
		dst[i].scope = NULL;
		if (src[i].n) {
			memcpy(dst[i].v, src[i].v, src[i].n * sizeof(*dst[i].v));
			memcpy(dst[i].locs, src[i].locs, src[i].n * sizeof(*dst[i].locs));
		}
		if (src[i].n && src[i].scope) {
			dst[i].scope = xcalloc(src[i].n, sizeof(*dst[i].scope));
			memcpy(dst[i].scope, src[i].scope, src[i].n * sizeof(*dst[i].scope));
		}
		ports_copy(&dst[i], &src[i]);
	}
}

struct gen_addrs engine_gen_addrs(const struct addr_list *l)
{
	return (struct gen_addrs){ l->v, l->n, l->locs, l->scope, l->pgrp, l->pgroups,
				   l->npgroups };
}

/* ---- scopes ------------------------------------------------------------ */

/* An address map of a port class: its direction's partner chain is
 * looked for in it; `ports` the class's atoms (the dispatch map's). */
struct cmap {
	const struct ir_set *set;
	bool out;
	const struct portrange **ports;
	size_t nports;
};
typedef VEC(struct cmap) cmap_vec;

static void class_maps_of(const struct ir_ruleset *rs, bool out, cmap_vec *v)
{
	const struct ir_set *ds = ir_find_set(rs, out ? "out_ports" : "in_ports");

	for (size_t e = 0; ds && e < ds->nelems; e++) {
		const struct ir_elem *el = &ds->elems[e];
		const struct ir_chain *ch = el->chain < rs->nchains ? &rs->chains[el->chain] : NULL;

		for (size_t r = 0; ch && r < ch->nrules; r++) {
			const struct ir_set *s = ch->rules[r].kind == IR_R_VMAP && ch->rules[r].set
						 ? ir_find_set(rs, ch->rules[r].set) : NULL;
			size_t k;

			if (!s)
				continue;
			for (k = 0; k < v->n && v->v[k].set != s; k++)
				;
			if (k == v->n)
				VEC_PUSH(v, ((struct cmap){ .set = s, .out = out }));
			v->v[k].ports = xreallocarray(v->v[k].ports, v->v[k].nports + 1,
						      sizeof(*v->v[k].ports));
			v->v[k].ports[v->v[k].nports++] = &el->port;
		}
	}
}

/* Whether the class meets the ports of pt's services of SRV kinds
 * `kinds` (~0u: all its services). */
static bool cmap_meets(const struct cmap *m, const struct policy *p,
		       const struct partner *pt, unsigned kinds)
{
	for (size_t i = 0; i < pt->nservices; i++) {
		const struct service *sv = &p->services[pt->services[i].idx];

		if (kinds != ~0u && !(service_srv(sv->name) & kinds))
			continue;
		for (size_t j = 0; j < sv->nports; j++)
			for (size_t a = 0; a < m->nports; a++)
				if (sv->ports[j].r.proto == m->ports[a]->proto &&
				    sv->ports[j].r.lo <= m->ports[a]->hi &&
				    m->ports[a]->lo <= sv->ports[j].r.hi)
					return true;
	}
	return false;
}

static bool cmap_holds(const struct cmap *m, const struct prefix *a, uint32_t chain)
{
	size_t lo = 0, hi = m->set->nelems;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = prefix_cmp(&m->set->elems[mid].addr, a);

		if (c == 0)
			return m->set->elems[mid].chain == chain;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Whether class m, whose chain for the partner is ch, is one of the
 * partner's for an address of a's family. */
static bool cmap_applies(const struct cmap *m, uint32_t ch, const struct prefix *a,
			 const struct policy *p, const struct partner *pt)
{
	return ch != UINT32_MAX && (m->set->key == IR_KEY_ADDR6) == (a->family == 6) &&
	       cmap_meets(m, p, pt, ~0u);
}

/* What partner pt's classes in `v` that hold `a` say of it: *all, held
 * by every class of its services; *common, by one that serves none of
 * its scoped kinds (only its addresses for all services are there); the
 * kinds (of `scoped`) of the classes that serve one such kind and hold
 * it (*single), and of those that serve several (*multi: ports two kinds
 * share). */
struct held {
	bool all, common;
	unsigned single, multi;
};

static void held_on(const struct cmap *v, size_t n, const struct policy *p,
		    const struct partner *pt, const uint32_t chain[2], unsigned scoped,
		    const struct prefix *a, struct held *h)
{
	size_t classes = 0, holding = 0;

	*h = (struct held){ 0 };
	for (size_t k = 0; k < n; k++) {
		const struct cmap *m = &v[k];
		uint32_t ch = chain[m->out];
		unsigned kinds = 0;

		if (!cmap_applies(m, ch, a, p, pt))
			continue;
		classes++;
		if (!cmap_holds(m, a, ch))
			continue;
		holding++;
		for (unsigned b = 0; b < SRV_KINDS; b++)
			if (scoped & (1u << b) && cmap_meets(m, p, pt, 1u << b))
				kinds |= 1u << b;
		if (!kinds)
			h->common = true;
		else if (!(kinds & (kinds - 1)))
			h->single |= kinds;
		else
			h->multi |= kinds;
	}
	h->all = classes && holding == classes;
}

static uint32_t chain_at(const struct ir_ruleset *rs, const char *dir, const char *name)
{
	char buf[160];
	const struct ir_chain *c;

	snprintf(buf, sizeof(buf), "%s_%s", dir, name);
	c = ir_find_chain(rs, buf);
	return c ? (uint32_t)(c - rs->chains) : UINT32_MAX;
}

/* An address on all its classes, or on one that serves none of its
 * scoped kinds, is on all its services (0); else on the kinds whose
 * classes hold it (as given, or a piece another partner's more specific
 * prefix left: then not in every class of its kind). */
static void partner_scopes(const struct cmap *v, size_t n, const struct ir_ruleset *rs,
			   const struct policy *p, const struct partner *pt,
			   struct addr_list *l)
{
	unsigned scoped = partner_srv_scoped(p, pt);
	uint32_t chain[2] = { chain_at(rs, "in", pt->name), chain_at(rs, "out", pt->name) };

	for (size_t k = 0; k < l->n; k++) {
		struct held h;
		unsigned scope;

		held_on(v, n, p, pt, chain, scoped, &l->v[k], &h);
		scope = h.all || h.common ? 0 : h.single ? h.single : h.multi;
		if (!scope)
			continue;
		if (!l->scope)
			l->scope = xcalloc(l->cap + 1, sizeof(*l->scope));
		l->scope[k] = (uint8_t)scope;
	}
}

/* ---- ports of a feed's addresses ---------------------------------------- */

typedef VEC(struct portrange) port_vec;

/* The ports (atoms of the classes of pt that hold `a`) into *held; true
 * when every class of its services holds it (then on all its ports). */
static bool held_ports(const struct cmap *v, size_t n, const struct policy *p,
		       const struct partner *pt, const uint32_t chain[2],
		       const struct prefix *a, port_vec *held)
{
	size_t classes = 0, holding = 0;

	held->n = 0;
	for (size_t k = 0; k < n; k++) {
		const struct cmap *m = &v[k];
		uint32_t ch = chain[m->out];

		if (!cmap_applies(m, ch, a, p, pt))
			continue;
		classes++;
		if (!cmap_holds(m, a, ch))
			continue;
		holding++;
		for (size_t j = 0; j < m->nports; j++)
			VEC_PUSH(held, *m->ports[j]);
	}
	return classes && holding == classes;
}

/* A partner with feeds may have addresses on some of its ports only (a
 * feed's ports for them): each address not in every class of its
 * services keeps the ports of the classes that hold it, so that what a
 * refused partner keeps is never admitted on more than it was. */
static void partner_live_ports(const struct cmap *v, size_t n, const struct ir_ruleset *rs,
			       const struct policy *p, const struct partner *pt,
			       struct addr_list *l)
{
	uint32_t chain[2] = { chain_at(rs, "in", pt->name), chain_at(rs, "out", pt->name) };
	port_vec held = { 0 };

	for (size_t k = 0; k < l->n; k++) {
		if (held_ports(v, n, p, pt, chain, &l->v[k], &held))
			continue;
		addr_list_set_ports(l, k, held.v, held.n);
	}
	free(held.v);
}

void engine_partner_scopes(const struct ir_ruleset *rs, const struct policy *p,
			   struct addr_list *out)
{
	cmap_vec v = { 0 };

	if (!rs)
		return;
	class_maps_of(rs, false, &v);
	class_maps_of(rs, true, &v);
	for (size_t i = 0; i < p->npartners; i++)
		if (partner_srv_scoped(p, &p->partners[i]))
			partner_scopes(v.v, v.n, rs, p, &p->partners[i], &out[i]);
	for (size_t i = 0; i < p->npartners; i++)
		if (p->partners[i].nfeeds)
			partner_live_ports(v.v, v.n, rs, p, &p->partners[i], &out[i]);
	for (size_t k = 0; k < v.n; k++)
		free(v.v[k].ports);
	free(v.v);
}
