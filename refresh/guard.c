/* guard.c - what a refresh may do to a partner on its own authority, and
 * when the daemon asks DNS again.
 *
 * DNS and list files are other people's data: a broken zone or a
 * truncated list should not quietly drop most of a partner (a federation
 * outage): such a shrink waits for a human (--force).  A typo must not
 * open a /4 either, and there no human can overrule: a range wider than
 * the guards, or a runaway list, is refused whatever the flags, because
 * the only fix is in the policy or the list.
 */
#include "refresh/refresh.h"

#include <stdlib.h>
#include <string.h>

/* Whether p lies inside one of v (sorted, disjoint: merged): the only
 * candidate is the last element of v not after p. */
static bool covered(const struct prefix *p, const struct prefix *v, size_t n)
{
	size_t k = prefix_upper(v, n, p);

	return k > 0 && prefix_contains(&v[k - 1], p);
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

/* ---- width: what no --force passes ------------------------------------ */

struct ent {
	struct prefix p;
	struct loc loc;
};

static int ent_cmp(const void *x, const void *y)
{
	return prefix_cmp(&((const struct ent *)x)->p, &((const struct ent *)y)->p);
}

/* " (lp.txt:2)", or nothing when the prefix has no known place. */
static void put_member(struct strbuf *sb, const struct ent *e)
{
	char buf[PREFIX_STRLEN];

	sb_addf(sb, "%s", prefix_fmt(&e->p, buf, sizeof(buf)));
	if (e->loc.file && e->loc.line)
		sb_addf(sb, " (%s:%u)", e->loc.file, e->loc.line);
}

/* `pv` is parallel to `e` (its prefixes). */
static void run_why(struct strbuf *sb, const struct guards *g, const struct ent *e,
		    const struct prefix *pv, const struct prefix_run *r)
{
	char range[PREFIX_RUN_STRLEN];
	char fam = r->family == 4 ? '4' : '6';
	size_t idx[3], total = prefix_run_members(pv, r, idx, ARRAY_SIZE(idx)), shown;

	prefix_run_fmt(r, range, sizeof(range));
	if (total == 1) {
		if (e[idx[0]].loc.file && e[idx[0]].loc.line)
			sb_addf(sb, "%s:%u: ", e[idx[0]].loc.file, e[idx[0]].loc.line);
		sb_addf(sb, "%s is ", range);
	} else {
		shown = total > ARRAY_SIZE(idx) ? ARRAY_SIZE(idx) - 1 : total;
		for (size_t k = 0; k < shown; k++) {
			sb_addf(sb, "%s", k == 0 ? "" : k + 1 == shown &&
				total == shown ? " and " : ", ");
			put_member(sb, &e[idx[k]]);
		}
		if (total > shown)
			sb_addf(sb, " and %zu more", total - shown);
		sb_addf(sb, " join into %s, ", range);
	}
	if (prefix_run_whole(r))
		sb_addf(sb, "the whole IPv%c Internet (never admitted)", fam);
	else
		sb_addf(sb, "wider than /%u (guards.min_prefix_v%c)",
			fam == '4' ? g->min_prefix_v4 : g->min_prefix_v6, fam);
}

static char *count_why(const struct guards *g, struct prefix *pv, size_t n)
{
	struct strbuf sb = { 0 };
	size_t m;

	if (!g->max_entries || n <= g->max_entries)
		return NULL;    /* merging only shrinks the count */
	m = prefixes_merge(pv, n);
	if (m <= g->max_entries)
		return NULL;
	sb_addf(&sb, "has %zu entries, more than guards.max_entries %u", m, g->max_entries);
	return sb.s;
}

char *guard_width(const struct guards *g, const struct addr_list *want)
{
	struct ent *e = xreallocarray(NULL, want->n + 1, sizeof(*e));
	struct prefix *pv = xreallocarray(NULL, want->n + 1, sizeof(*pv));
	struct prefix_run r;
	struct strbuf sb = { 0 };
	char *why;

	for (size_t i = 0; i < want->n; i++)
		e[i] = (struct ent){ want->v[i],
				     want->locs ? want->locs[i] : (struct loc){ 0 } };
	qsort(e, want->n, sizeof(*e), ent_cmp);
	for (size_t i = 0; i < want->n; i++)
		pv[i] = e[i].p;
	if (prefixes_wide_run(pv, want->n, g->min_prefix_v4, g->min_prefix_v6, &r)) {
		run_why(&sb, g, e, pv, &r);
		why = sb.s;
	} else {
		why = count_why(g, pv, want->n);
	}
	free(pv);
	free(e);
	return why;
}

/* ---- shrink: what --force overrides -------------------------------------- */

char *guard_max_shrink(const struct guards *g, const struct prefix *have, size_t nhave,
		       const struct prefix *want, size_t nwant,
		       const struct prefix *exempt, size_t nexempt)
{
	size_t nh, nw, ne;
	struct prefix *h = norm(have, nhave, &nh);
	struct prefix *w = norm(want, nwant, &nw);
	struct prefix *e = norm(exempt, nexempt, &ne);
	char *why = shrink_why(g, h, nh, w, nw, e, ne);

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
