/* feed_check.h - the feed fuzz targets' one run (fuzz_feed) and what
 * they check of an accepted feed_addrs: every address a normalised
 * prefix, sorted and unique, no wider than the guards allow, on
 * FEED_ALL_PORTS or a group of merged, non-empty ports.  Included by one
 * target each. */
#ifndef FEDWALL_FUZZ_FEED_CHECK_H
#define FEDWALL_FUZZ_FEED_CHECK_H

#include "refresh/refresh.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void check_addrs(const struct feed_addrs *a, const struct guards *g)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct prefix *p = &a->v[i];

		if ((p->family != 4 && p->family != 6) || p->len > (p->family == 4 ? 32 : 128))
			abort();
		if (g && p->len < (p->family == 4 ? g->min_prefix_v4 : g->min_prefix_v6))
			abort();
		if (i && prefix_cmp(&a->v[i - 1], p) >= 0)
			abort();
		if (a->grp[i] != FEED_ALL_PORTS && a->grp[i] >= a->ngrps)
			abort();
	}
	for (size_t k = 0; k < a->ngrps; k++) {
		if (!a->grps[k].nports || !a->grps[k].id)
			abort();
		for (size_t r = 0; r < a->grps[k].nports; r++) {
			const struct portrange *x = &a->grps[k].ports[r];

			if (!x->lo || x->lo > x->hi || (r && portrange_cmp(x - 1, x) >= 0))
				abort();
		}
	}
}

/* The input's first byte (0 for an empty input), taken off it: what
 * the targets pick their filters, guards and format by. */
static uint8_t fuzz_take_sel(const uint8_t **data, size_t *size)
{
	uint8_t sel = 0;

	if (*size > 0) {
		sel = (*data)[0];
		(*data)++;
		(*size)--;
	}
	return sel;
}

/* A feed's filters as the fuzz input's first byte picks them: bit k
 * (k < 3) sets filter key[k] to val[k]. */
struct fuzz_filters {
	enum feed_key key[3];
	const char *val[3];
};

/* feed_parse() of f (format and filters from `sel` and `ff`; bit 3 of
 * sel: the default guards, else none) over data: accepted as
 * check_addrs() asks, or refused with an error and nothing kept; else
 * abort().  Returns whether it was accepted. */
static bool fuzz_feed(struct feed *f, const struct fuzz_filters *ff, uint8_t sel,
		      const uint8_t *data, size_t size, struct feed_addrs *a)
{
	static const struct guards defaults = {
		.max_shrink = 50, .min_prefix_v4 = 8, .min_prefix_v6 = 32,
		.stale_after = 86400, .max_entries = 1000,
	};
	static FILE *sink;
	static struct strval vals[3];
	const struct guards *g = sel & 8 ? &defaults : NULL;
	struct diag d;
	bool ok;

	if (!sink)
		sink = fopen("/dev/null", "w");
	diag_init(&d, sink);
	for (int k = 0; k < 3; k++) {
		if (!(sel & (1u << k)))
			continue;
		vals[k].s = (char *)ff->val[k];
		f->filter[ff->key[k]].v = &vals[k];
		f->filter[ff->key[k]].n = 1;
	}
	ok = feed_parse(f, "fuzz", (const char *)data, size, g, a, &d);
	if (ok != (d.errors == 0))
		abort();
	if (!ok && (a->n || a->v || a->ngrps))
		abort();
	check_addrs(a, g);
	return ok;
}

#endif
