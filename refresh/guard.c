/* guard.c - what a refresh may do to a partner on its own authority, and
 * when the daemon asks DNS again.
 *
 * DNS and list files are other people's data: a broken zone or a
 * truncated list should not quietly drop most of a partner (a federation
 * outage), and a typo should not open a /4.  Such a change waits for a
 * human (--force).
 */
#include "refresh/refresh.h"

#include <stdlib.h>
#include <string.h>

/* Whether p lies inside one of v (sorted, disjoint: merged): the only
 * candidate is the last element of v not after p. */
static bool covered(const struct prefix *p, const struct prefix *v, size_t n)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (prefix_cmp(&v[mid], p) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && prefix_contains(&v[lo - 1], p);
}

/* A sorted copy, merged: the smallest cover, which is also how the
 * generator and the kernel hold a partner's addresses, so that counts
 * mean the same on both sides. */
static struct prefix *norm(const struct prefix *a, size_t n, size_t *nout)
{
	struct prefix *v = xreallocarray(NULL, n ? n : 1, sizeof(*v));

	if (n)
		memcpy(v, a, n * sizeof(*v));
	*nout = prefixes_merge(v, n);
	return v;
}

/* The net shrink: addresses removed beyond those added in their place, so
 * that a host whose A record moves (one out, one in) is no shrink, while
 * a zone that suddenly answers with one address of four is. */
static char *shrink_why(const struct guards *g, const struct prefix *have, size_t nhave,
			const struct prefix *want, size_t nwant,
			const struct prefix *exempt, size_t nexempt)
{
	struct strbuf sb = { 0 };
	size_t gone = 0, counted = 0, added = 0, net;

	for (size_t i = 0; i < nhave; i++) {
		if (covered(&have[i], exempt, nexempt))
			continue;       /* leaves because it went stale */
		counted++;
		gone += !covered(&have[i], want, nwant);
	}
	for (size_t i = 0; i < nwant; i++)
		added += !covered(&want[i], have, nhave);
	net = gone > added ? gone - added : 0;
	if (counted == 0 || net * 100 <= (size_t)g->max_shrink * counted)
		return NULL;
	sb_addf(&sb, "would remove %zu of its %zu prefix%s", gone, counted,
		counted == 1 ? "" : "es");
	if (added)
		sb_addf(&sb, " and add %zu", added);
	sb_addf(&sb, " (%zu%% fewer, more than guards.max_shrink %u%%)",
		net * 100 / counted, g->max_shrink);
	return sb.s;
}

static char *wide_why(const struct guards *g, const struct prefix *have, size_t nhave,
		      const struct prefix *want, size_t nwant)
{
	char buf[PREFIX_STRLEN];
	struct strbuf sb = { 0 };

	for (size_t i = 0; i < nwant; i++) {
		const struct prefix *p = &want[i];
		unsigned min = p->family == 4 ? g->min_prefix_v4 : g->min_prefix_v6;

		if (p->len >= min || covered(p, have, nhave))
			continue;
		sb_addf(&sb, "would add %s, wider than /%u (guards.min_prefix_v%c)",
			prefix_fmt(p, buf, sizeof(buf)), min, p->family == 4 ? '4' : '6');
		return sb.s;
	}
	return NULL;
}

char *guard_check(const struct guards *g, const struct prefix *have, size_t nhave,
		  const struct prefix *want, size_t nwant,
		  const struct prefix *exempt, size_t nexempt)
{
	size_t nh, nw, ne;
	struct prefix *h = norm(have, nhave, &nh);
	struct prefix *w = norm(want, nwant, &nw);
	struct prefix *e = norm(exempt, nexempt, &ne);
	char *why = wide_why(g, h, nh, w, nw);

	if (!why)
		why = shrink_why(g, h, nh, w, nw, e, ne);
	free(h);
	free(w);
	free(e);
	return why;
}

uint64_t sched_delay_ms(uint32_t ttl, const struct resolvecfg *r, double rnd)
{
	uint64_t t = ttl, ms;
	double j;

	if (t < r->ttl_min)
		t = r->ttl_min;
	if (t > r->ttl_max)
		t = r->ttl_max;
	ms = t * 1000;
	if (rnd < 0 || rnd >= 1)
		rnd = 0.5;
	j = (rnd * 2 - 1) * (double)SCHED_JITTER_PCT / 100.0;   /* [-0.1, 0.1) */
	ms = (uint64_t)((double)ms * (1.0 + j));
	return ms < SCHED_FLOOR_MS ? SCHED_FLOOR_MS : ms;
}
