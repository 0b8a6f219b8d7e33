/* feed_check.h - what the feed fuzz targets check of an accepted
 * feed_addrs: every address a normalised prefix, sorted and unique, no
 * wider than the guards allow, on FEED_ALL_PORTS or a group of merged,
 * non-empty ports.  Included by one target each. */
#ifndef FEDWALL_FUZZ_FEED_CHECK_H
#define FEDWALL_FUZZ_FEED_CHECK_H

#include "refresh/refresh.h"

#include <stdint.h>
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

#endif
