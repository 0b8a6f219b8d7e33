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

/* A sorted copy, merged: disjoint, as the address counts below need,
 * and the prefixes the kernel holds, as the message counts them. */
static struct prefix *norm(const struct prefix *a, size_t n, size_t *nout)
{
	struct prefix *v = xreallocarray(NULL, n ? n : 1, sizeof(*v));

	if (n)
		memcpy(v, a, n * sizeof(*v));
	*nout = prefixes_merge(v, n);
	return v;
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

/* ---- address counts ------------------------------------------------------ */

/* A count of addresses, exact: a family holds up to 2^128 of them and the
 * guard compares count x percent, so 160 bits (five 32-bit limbs, least
 * significant first, 64-bit intermediates) never overflow. */
#define AC_LIMBS 5

struct acount {
	uint32_t w[AC_LIMBS];
};

static void ac_add_pow2(struct acount *a, unsigned bit)
{
	uint64_t carry = (uint64_t)1 << (bit % 32);

	for (unsigned i = bit / 32; i < AC_LIMBS && carry; i++) {
		carry += a->w[i];
		a->w[i] = (uint32_t)carry;
		carry >>= 32;
	}
}

/* a - b; the callers subtract only what a holds (b <= a). */
static struct acount ac_sub(struct acount a, const struct acount *b)
{
	uint64_t borrow = 0;

	for (unsigned i = 0; i < AC_LIMBS; i++) {
		uint64_t d = (uint64_t)a.w[i] - b->w[i] - borrow;

		a.w[i] = (uint32_t)d;
		borrow = d >> 63;
	}
	return a;
}

static struct acount ac_mul(struct acount a, unsigned k)
{
	uint64_t carry = 0;

	for (unsigned i = 0; i < AC_LIMBS; i++) {
		carry += (uint64_t)a.w[i] * k;
		a.w[i] = (uint32_t)carry;
		carry >>= 32;
	}
	return a;
}

static int ac_cmp(const struct acount *a, const struct acount *b)
{
	for (unsigned i = AC_LIMBS; i-- > 0;)
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	return 0;
}

static bool ac_zero(const struct acount *a)
{
	return ac_cmp(a, &(struct acount){ { 0 } }) == 0;
}

/* In decimal: up to 2^128 is 39 digits. */
static void ac_put(struct strbuf *sb, struct acount a)
{
	char buf[AC_LIMBS * 10 + 1], *p = buf + sizeof(buf) - 1;

	*p = '\0';
	do {
		uint64_t rem = 0;

		for (unsigned i = AC_LIMBS; i-- > 0;) {
			uint64_t cur = rem << 32 | a.w[i];

			a.w[i] = (uint32_t)(cur / 10);
			rem = cur % 10;
		}
		*--p = (char)('0' + rem);
	} while (!ac_zero(&a));
	sb_addf(sb, "%s", p);
}

/* ---- shrink: what --force overrides -------------------------------------- */

/* One family's side of the shrink, in addresses and in merged prefixes. */
struct shrink {
	struct acount counted, gone, added;     /* addresses */
	size_t pgone;                           /* have's prefixes that leave */
};

static unsigned fam_idx(const struct prefix *p)
{
	return p->family == 4 ? 0 : 1;
}

/* Adds each family's addresses of v to sz[0] (IPv4) and sz[1] (IPv6). */
static void sizes(const struct prefix *v, size_t n, struct acount sz[2])
{
	for (size_t i = 0; i < n; i++)
		ac_add_pow2(&sz[fam_idx(&v[i])], prefix_maxlen(&v[i]) - v[i].len);
}

/* The addresses both a and b hold (each merged, so disjoint and in
 * prefix_cmp order), as prefixes: two aligned prefixes meet only where
 * one contains the other, and then the smaller is what they share. */
static struct prefix *inter(const struct prefix *a, size_t na, const struct prefix *b,
			    size_t nb, size_t *nout)
{
	struct prefix *out = xreallocarray(NULL, (na < nb ? nb : na) + 1, sizeof(*out));
	size_t i = 0, j = 0, n = 0;

	while (i < na && j < nb) {
		if (prefix_contains(&a[i], &b[j]))
			out[n++] = b[j++];
		else if (prefix_contains(&b[j], &a[i]))
			out[n++] = a[i++];
		else if (prefix_cmp(&a[i], &b[j]) < 0)
			i++;
		else
			j++;
	}
	*nout = n;
	return out;
}

/* Per family (sh[0] IPv4, sh[1] IPv6), from have, want and exempt merged:
 * the addresses of `have` that count (not exempt: they leave because
 * they went stale), those of them `want` drops, and those `want` adds;
 * and have's prefixes that count and do not stay whole. */
static void shrink_count(const struct prefix *h, size_t nh, const struct prefix *w, size_t nw,
			 const struct prefix *e, size_t ne, struct shrink sh[2])
{
	struct acount hs[2] = { 0 }, he[2] = { 0 }, hw[2] = { 0 }, hwe[2] = { 0 },
		      ws[2] = { 0 };
	size_t n1, n2, n3;
	struct prefix *x1 = inter(h, nh, e, ne, &n1);
	struct prefix *x2 = inter(h, nh, w, nw, &n2);
	struct prefix *x3 = inter(x2, n2, e, ne, &n3);

	sizes(h, nh, hs);
	sizes(x1, n1, he);
	sizes(x2, n2, hw);
	sizes(x3, n3, hwe);
	sizes(w, nw, ws);
	for (unsigned f = 0; f < 2; f++) {
		struct acount kept = ac_sub(hw[f], &hwe[f]);

		sh[f].counted = ac_sub(hs[f], &he[f]);
		sh[f].gone = ac_sub(sh[f].counted, &kept);
		sh[f].added = ac_sub(ws[f], &hw[f]);
		sh[f].pgone = 0;
	}
	for (size_t i = 0; i < nh; i++)
		if (!covered(&h[i], e, ne) && !covered(&h[i], w, nw))
			sh[fam_idx(&h[i])].pgone++;
	free(x1);
	free(x2);
	free(x3);
}

/* The net shrink (addresses removed beyond those added in their place:
 * a host whose A record moves is no shrink, a zone that suddenly answers
 * with one address of four is) as a whole percent of `counted`, rounded
 * down; *over when above max_shrink.  Exact: net x 100 against
 * counted x percent. */
static unsigned shrink_pct(const struct shrink *s, unsigned max, bool *over)
{
	struct acount net = { { 0 } }, net100, c;
	unsigned pct = 100;

	*over = false;
	if (ac_zero(&s->counted))
		return 0;
	if (ac_cmp(&s->gone, &s->added) > 0)
		net = ac_sub(s->gone, &s->added);
	net100 = ac_mul(net, 100);
	c = ac_mul(s->counted, max);
	*over = ac_cmp(&net100, &c) > 0;
	if (!*over)
		return 0;       /* only a refusal tells the percent */
	/* The largest pct with counted x pct <= net x 100. */
	while (pct > 0 && (c = ac_mul(s->counted, pct), ac_cmp(&c, &net100) > 0))
		pct--;
	return pct;
}

/* "would remove 1 prefix, 256 of its 257 IPv4 addresses (99% fewer, more
 * than guards.max_shrink 50%)" */
static void shrink_put(struct strbuf *sb, const struct shrink *s, char fam, unsigned pct,
		       unsigned max)
{
	bool one = ac_cmp(&s->counted, &(struct acount){ { 1 } }) == 0;

	sb_addf(sb, "%swould remove %zu prefix%s, ", sb->len ? "; " : "", s->pgone,
		s->pgone == 1 ? "" : "es");
	ac_put(sb, s->gone);
	sb_addf(sb, " of its ");
	ac_put(sb, s->counted);
	sb_addf(sb, " IPv%c address%s", fam, one ? "" : "es");
	if (!ac_zero(&s->added)) {
		sb_addf(sb, " and add ");
		ac_put(sb, s->added);
	}
	sb_addf(sb, " (%u%% fewer, more than guards.max_shrink %u%%)", pct, max);
}

/* Each family on its own: IPv6 counts dwarf IPv4's, and a partner that
 * loses every IPv4 address is cut off from IPv4 callers whatever its
 * IPv6 ranges hold. */
static char *shrink_why(const struct guards *g, const struct prefix *have, size_t nhave,
			const struct prefix *want, size_t nwant,
			const struct prefix *exempt, size_t nexempt)
{
	struct strbuf sb = { 0 };
	struct shrink sh[2];

	shrink_count(have, nhave, want, nwant, exempt, nexempt, sh);
	for (unsigned f = 0; f < 2; f++) {
		bool over;
		unsigned pct = shrink_pct(&sh[f], g->max_shrink, &over);

		if (over)
			shrink_put(&sb, &sh[f], f ? '6' : '4', pct, g->max_shrink);
	}
	return sb.s;
}

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

/* rnd in [0, 1) moves ms by up to SCHED_JITTER_PCT percent either way. */
static uint64_t jitter(uint64_t ms, double rnd)
{
	double j;

	if (rnd < 0 || rnd >= 1)
		rnd = 0.5;
	j = (rnd * 2 - 1) * (double)SCHED_JITTER_PCT / 100.0;   /* [-0.1, 0.1) */
	ms = (uint64_t)((double)ms * (1.0 + j));
	return ms < SCHED_FLOOR_MS ? SCHED_FLOOR_MS : ms;
}

uint64_t sched_fetch_delay_ms(unsigned interval, bool failed, double rnd)
{
	uint64_t t = interval ? interval : 1;

	if (failed) {
		t /= SCHED_FETCH_RETRY_DIV;
		t = t < SCHED_FETCH_RETRY_MIN ? SCHED_FETCH_RETRY_MIN
		    : t > SCHED_FETCH_RETRY_MAX ? SCHED_FETCH_RETRY_MAX : t;
		if (t > interval)
			t = interval ? interval : 1;
	}
	return jitter(t * 1000, rnd);
}

uint64_t sched_delay_ms(uint32_t ttl, const struct resolvecfg *r, double rnd)
{
	uint64_t t = ttl;

	if (t < r->ttl_min)
		t = r->ttl_min;
	if (t > r->ttl_max)
		t = r->ttl_max;
	return jitter(t * 1000, rnd);
}
