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

void engine_addr_lists_copy(struct addr_list *dst, const struct addr_list *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].cap = src[i].n;
		dst[i].v = xcalloc(src[i].n + 1, sizeof(*dst[i].v));
		dst[i].locs = xcalloc(src[i].n + 1, sizeof(*dst[i].locs));
		if (src[i].n) {
			memcpy(dst[i].v, src[i].v, src[i].n * sizeof(*dst[i].v));
			memcpy(dst[i].locs, src[i].locs, src[i].n * sizeof(*dst[i].locs));
		}
	}
}
