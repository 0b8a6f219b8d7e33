/* sources.c - a partner's dynamic sources (host names, SRV domains, list
 * files) with their last known good addresses.
 *
 * The state is the memory: a source that answers is confirmed now; one
 * that fails, or is not due yet, stands on what the state recorded, until
 * guards.stale_after has passed since it was last confirmed.  Then its
 * addresses go, loudly: a partner whose DNS has been dead for a day should
 * not stay admitted on a guess, and fedwall never fails open.
 */
#include "refresh/refresh.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* ---- SRV service choice ------------------------------------------------ */

/* The labels of the SRV kinds (policy.h: SRV_SIP, SRV_XMPP, SRV_MATRIX),
 * in bit order. */
static const char *const srv_order[SRV_MAX_SERVICES] = {
	DNS_SRV_SIP, DNS_SRV_XMPP, DNS_SRV_MATRIX,
};

size_t srv_services(const struct policy *p, const struct partner *pt,
		    const char *out[SRV_MAX_SERVICES])
{
	unsigned want = 0;
	size_t n = 0;

	for (size_t i = 0; i < pt->nservices; i++)
		want |= service_srv(p->services[pt->services[i].idx].name);
	for (size_t o = 0; o < SRV_MAX_SERVICES; o++)
		if (want & (1u << o))
			out[n++] = srv_order[o];
	if (n == 0)
		out[n++] = DNS_SRV_SIP;
	return n;
}

unsigned srv_kind(const char *label)
{
	for (size_t o = 0; label && o < SRV_MAX_SERVICES; o++)
		if (!strcmp(label, srv_order[o]))
			return 1u << o;
	return 0;
}

char *srv_labels(unsigned kinds, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t o = 0; o < SRV_MAX_SERVICES && len < size; o++) {
		int w;

		if (!(kinds & (1u << o)))
			continue;
		w = snprintf(out + len, size - len, "%s%s", len ? ", " : "", srv_order[o]);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return out;
}

/* ---- the set of sources ------------------------------------------------ */

struct srcvec {
	struct src *v;
	size_t n, cap;
};

static struct src *src_add(struct srcvec *v, enum state_kind kind, size_t partner,
			   const struct strval *sv, char *key)
{
	struct src s = { .kind = kind, .key = key, .name = sv->s,
			 .partner = partner, .loc = sv->loc };

	VEC_PUSH(v, s);
	return &v->v[v->n - 1];
}

/* A name's two sources: its A records, then its AAAA records (each
 * owning its copy of `key`). */
static void src_add_name(struct srcvec *v, enum state_kind kind, size_t partner,
			 const struct strval *sv, char *key, const char *service,
			 unsigned scope)
{
	struct src *x = src_add(v, kind, partner, sv, xstrdup(key));

	x->family = 4;
	x->service = service;
	x->scope = (uint8_t)scope;
	x = src_add(v, kind, partner, sv, key);
	x->family = 6;
	x->service = service;
	x->scope = (uint8_t)scope;
}

bool src_is_dns(const struct src *x)
{
	return x->kind == STATE_HOST || x->kind == STATE_DOMAIN;
}

/* A list file, or a list URL with its fetch schedule. */
static void src_add_list(struct srcvec *v, const struct policy *p, size_t partner,
			 size_t k)
{
	const struct partner *pt = &p->partners[partner];
	const struct list_opt *o = pt->list_opts ? &pt->list_opts[k] : NULL;
	struct src *x = src_add(v, o && o->url ? STATE_URL : STATE_LIST, partner,
				&pt->lists[k], xstrdup(pt->lists[k].s));

	if (x->kind != STATE_URL)
		return;
	x->insecure_http = o->insecure_http;
	x->interval = o->interval ? o->interval : p->fetch.interval;
}

/* A feed's state name: its URL, the partner, and a digest of what it
 * keeps (format, filters): other filters are another source, never
 * confirmed by the version or validators of the old one's. */
static char *feed_key(const struct partner *pt, const struct feed *f)
{
	uint64_t h = fnv1a64(FNV1A64_INIT, feed_format_name(f->format),
			     strlen(feed_format_name(f->format)) + 1);
	struct strbuf key = { 0 };
	int room = STATE_NAME_MAX - POLICY_NAME_MAX - 24;

	h = fnv1a64(h, f->url.s, strlen(f->url.s) + 1);
	for (size_t k = 0; k < FEED_KEYS; k++) {
		h = fnv1a64(h, &k, sizeof(k));
		for (size_t j = 0; j < f->filter[k].n; j++)
			h = fnv1a64(h, f->filter[k].v[j].s, strlen(f->filter[k].v[j].s) + 1);
	}
	/* A state name has at most STATE_NAME_MAX bytes: a very long URL is
	 * cut there, the digest (of all of it) keeps the name its own. */
	sb_addf(&key, "%.*s#%s-%016" PRIx64, room, f->url.s, pt->name, h);
	return key.s;
}

static void src_add_feed(struct srcvec *v, const struct policy *p, size_t partner,
			 const struct feed *f)
{
	const struct partner *pt = &p->partners[partner];
	struct src *x;

	if (!f->url.s)
		return;         /* a partial policy's (check) refused entry */
	x = src_add(v, STATE_FEED, partner, &f->url, feed_key(pt, f));

	x->feed = f;
	x->insecure_http = f->insecure_http;
	x->interval = f->interval ? f->interval : p->fetch.interval;
}

void srcset_build(const struct policy *p, struct srcset *s)
{
	struct srcvec v = { 0 };

	for (size_t i = 0; i < p->npartners; i++) {
		const struct partner *pt = &p->partners[i];
		const char *svc[SRV_MAX_SERVICES];
		size_t nsvc = srv_services(p, pt, svc);
		unsigned scoped = partner_srv_scoped(p, pt);

		for (size_t k = 0; k < pt->nhosts; k++)
			src_add_name(&v, STATE_HOST, i, &pt->hosts[k], xstrdup(pt->hosts[k].s),
				     NULL, 0);
		for (size_t k = 0; k < pt->ndomains; k++) {
			for (size_t j = 0; j < nsvc; j++) {
				struct strbuf key = { 0 };

				sb_addf(&key, "%s.%s", svc[j], pt->domains[k].s);
				src_add_name(&v, STATE_DOMAIN, i, &pt->domains[k], key.s, svc[j],
					     srv_kind(svc[j]) & scoped);
			}
		}
		for (size_t k = 0; k < pt->nlists; k++)
			src_add_list(&v, p, i, k);
		for (size_t k = 0; k < pt->nfeeds; k++)
			src_add_feed(&v, p, i, &pt->feeds[k]);
	}
	for (size_t k = 0; k < v.n; k++)
		v.v[k].dnssec = src_is_dns(&v.v[k]) &&
				p->partners[v.v[k].partner].dnssec_require;
	s->v = v.v;
	s->n = v.n;
}

static void groups_clear(struct src *x)
{
	portsets_free(x->groups, x->ngroups);
	free(x->grp);
	free(x->group_ids);
	x->groups = NULL;
	x->grp = NULL;
	x->group_ids = NULL;
	x->ngroups = 0;
}

/* The addresses, and the feed ports that go with them. */
static void src_clear(struct src *x)
{
	free(x->addrs);
	free(x->locs);
	x->addrs = NULL;
	x->locs = NULL;
	x->naddrs = 0;
	groups_clear(x);
}

/* Copies of n port groups, the naddrs group numbers of an address array
 * (x->addrs already set) and the groups' ids. */
static void groups_set(struct src *x, const struct portset *g, size_t n, const uint32_t *grp,
		       const char *ids)
{
	groups_clear(x);
	if (!n || !grp || !x->naddrs)
		return;
	x->groups = xcalloc(n, sizeof(*x->groups));
	for (size_t k = 0; k < n; k++) {
		x->groups[k].v = xreallocarray(NULL, g[k].n + 1, sizeof(*g[k].v));
		memcpy(x->groups[k].v, g[k].v, g[k].n * sizeof(*g[k].v));
		x->groups[k].n = g[k].n;
	}
	x->ngroups = n;
	x->grp = xreallocarray(NULL, x->naddrs, sizeof(*x->grp));
	memcpy(x->grp, grp, x->naddrs * sizeof(*x->grp));
	x->group_ids = ids ? xstrdup(ids) : NULL;
}

/* A URL's validators and failure, of the last fill. */
static void src_meta_clear(struct src *x)
{
	free(x->etag);
	free(x->last_modified);
	free(x->fetch_why);
	free(x->version);
	x->etag = x->last_modified = x->fetch_why = x->version = NULL;
	x->fetched = 0;
	x->not_modified = false;
}

void srcset_free(struct srcset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		src_clear(&s->v[i]);
		src_meta_clear(&s->v[i]);
		free(s->v[i].key);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* ---- results ----------------------------------------------------------- */

static void src_set(struct src *x, const struct prefix *a, size_t n)
{
	src_clear(x);
	x->addrs = xreallocarray(NULL, n ? n : 1, sizeof(*a));
	if (n)
		memcpy(x->addrs, a, n * sizeof(*a));
	x->naddrs = n;
}

/* prefix_cmp() compares every byte of a struct prefix (it has no
 * padding): equal prefixes are equal bytes, and memcmp() is one call. */
static bool same_addrs(const struct prefix *a, size_t na, const struct prefix *b, size_t nb)
{
	return na == nb && (!na || !memcmp(a, b, na * sizeof(*a)));
}

/* Confirmed now with these addresses (sorted and deduplicated here, as the
 * state keeps them, so that `changed` compares like with like). */
static void src_fresh(struct src *x, const struct state_entry *e, const struct prefix *a,
		      size_t n, enum state_from from, uint32_t ttl, int64_t now)
{
	size_t k = 0;

	src_set(x, a, n);
	prefixes_sort(x->addrs, n);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || memcmp(&x->addrs[k - 1], &x->addrs[i], sizeof(*x->addrs)))
			x->addrs[k++] = x->addrs[i];
	x->naddrs = k;
	x->status = SRC_FRESH;
	x->from = from;
	x->ttl = ttl;
	x->confirmed = now;
	/* A first answer without addresses (a name's empty family) moves
	 * nothing. */
	x->changed = e ? !same_addrs(e->addrs, e->naddrs, x->addrs, x->naddrs) : x->naddrs > 0;
}

static const char *kind_word(enum state_kind k)
{
	return k == STATE_HOST ? "host" : k == STATE_DOMAIN ? "domain"
	       : k == STATE_FEED ? "feed" : "list";
}

/* What messages call the source: its state name, but a feed's URL
 * alone (its name adds the partner and a digest of its filters). */
static const char *src_label(const struct src *x)
{
	return x->kind == STATE_FEED ? x->name : x->key;
}

const char *src_rr(const struct src *x)
{
	return x->family == 4 ? "A" : x->family == 6 ? "AAAA" : NULL;
}

const char *src_family_name(const struct src *x)
{
	return x->family == 4 ? "ipv4" : x->family == 6 ? "ipv6" : NULL;
}

/* " (A)", " (AAAA)", or "" for a list: after the source's name. */
static const char *rr_tag(const struct src *x)
{
	return x->family == 4 ? " (A)" : x->family == 6 ? " (AAAA)" : "";
}

static const struct state_entry *src_entry(const struct state *st, const struct src *x)
{
	const struct state_entry *e = state_lookup_family(st, x->kind, x->key, x->family);

	return e && x->dnssec && e->from != STATE_FROM_DNSSEC ? NULL : e;
}

/* The validators the state keeps for a URL: what status and the next
 * fetch use. */
static void src_meta_from(struct src *x, const struct state_entry *e)
{
	if (x->kind != STATE_URL && x->kind != STATE_FEED)
		return;
	free(x->etag);
	free(x->last_modified);
	free(x->version);
	x->etag = e->etag ? xstrdup(e->etag) : NULL;
	x->last_modified = e->last_modified ? xstrdup(e->last_modified) : NULL;
	x->version = e->version ? xstrdup(e->version) : NULL;
	x->fetched = e->fetched;
	if (x->naddrs == e->naddrs)
		groups_set(x, e->groups, e->ngroups, e->grp, e->group_ids);
}

/* An earlier run dropped its addresses (the state's mark): it stays
 * reported stale, in every failing run's messages too, until it answers. */
static void src_dropped(const struct policy *p, struct src *x, const struct state_entry *e,
			const char *why, int64_t now, struct diag *d)
{
	src_clear(x);
	x->status = SRC_DROPPED;
	x->fetched = e->fetched;
	x->from = e->from;
	x->ttl = e->ttl;
	x->confirmed = e->confirmed;
	if (why)
		diag_warn(d, &x->loc, "partner '%s': %s '%s'%s: %s; still stale: last"
			  " confirmed %" PRId64 " s ago, more than stale_after (%u s), its %u"
			  " last known good address%s dropped", p->partners[x->partner].name,
			  kind_word(x->kind), src_label(x), rr_tag(x), why,
			  now - e->confirmed, p->guards.stale_after, e->ndropped,
			  e->ndropped == 1 ? "" : "es");
}

/* Not answered now: what the state knows, if not too old.  `why` (NULL
 * when the source simply was not due) says what failed. */
static void src_fallback(const struct policy *p, struct src *x, const struct state *st,
			 const char *why, int64_t now, struct diag *d)
{
	const struct state_entry *e = src_entry(st, x);
	const char *pn = p->partners[x->partner].name;
	unsigned stale = p->guards.stale_after;
	int64_t age;

	x->failed = why != NULL;
	x->why = why;
	x->changed = false;
	if (e && e->dropped) {
		src_dropped(p, x, e, why, now, d);
		return;
	}
	if (!e) {
		x->status = SRC_UNKNOWN;
		src_clear(x);
		if (why)
			diag_warn(d, &x->loc, "partner '%s': %s '%s': %s; no last known"
				  " good addresses", pn, kind_word(x->kind), src_label(x), why);
		return;
	}
	age = now - e->confirmed;
	src_set(x, e->addrs, e->naddrs);
	src_meta_from(x, e);
	x->from = e->from;
	x->ttl = e->ttl;
	x->confirmed = e->confirmed;
	if (age > (int64_t)stale) {
		x->status = SRC_STALE;
		diag_warn(d, &x->loc, "partner '%s': %s '%s'%s%s%s%s: last confirmed %" PRId64
			  " s ago, more than stale_after (%u s): dropping its %zu last known"
			  " good address%s", pn, kind_word(x->kind), src_label(x), rr_tag(x),
			  why ? " (" : "", why ? why : "", why ? ")" : "", age, stale, e->naddrs,
			  e->naddrs == 1 ? "" : "es");
		return;
	}
	x->status = SRC_KEPT;
	if (why)
		diag_warn(d, &x->loc, "partner '%s': %s '%s': %s; keeping its %zu last"
			  " known good address%s (confirmed %" PRId64 " s ago)", pn,
			  kind_word(x->kind), src_label(x), why, e->naddrs,
			  e->naddrs == 1 ? "" : "es", age);
}

/* ---- DNS --------------------------------------------------------------- */

/* The other family's source of the same name (srcset_build puts a
 * name's A source right before its AAAA source), or NULL. */
static struct src *src_sibling(struct srcset *s, size_t i)
{
	struct src *x = &s->v[i], *y;
	size_t j = x->family == 4 ? i + 1 : i - 1;

	if (x->family == 0 || (x->family == 6 && i == 0) || j >= s->n)
		return NULL;
	y = &s->v[j];
	return y->family + x->family == 10 && y->kind == x->kind &&
	       y->partner == x->partner && !strcmp(y->key, x->key) ? y : NULL;
}

/* A due source's family of the answer: "no service" is the one
 * definitive empty answer of a name, and a family's empty answer beside
 * the other family's addresses or failure is one too (dns.h: the
 * family's status is then DNS_OK). */
static void dns_take(const struct policy *p, struct src *x, const struct dns_query *q,
		     const struct state *st, const struct src_opts *o, struct diag *d)
{
	const struct dns_fam *r = &q->fam[x->family == 6];

	if (!x->due)
		return;         /* srcset_fill gave it the state's */
	if (r->status == DNS_OK || r->status == DNS_NOSERVICE)
		src_fresh(x, src_entry(st, x), r->addrs, r->status == DNS_OK ? r->naddrs : 0,
			  r->secure ? STATE_FROM_DNSSEC : STATE_FROM_DNS, r->ttl, o->now);
	else
		src_fallback(p, x, st, r->msg, o->now, d);
}

/* One query per name asks both its families (an empty family is told
 * from an empty name by the other's answer); the answer goes to the
 * sources that are due. */
static void fill_dns(const struct policy *p, struct srcset *s, const struct state *st,
		     const struct src_opts *o, struct diag *d)
{
	struct dns_query *q = xcalloc(s->n + 1, sizeof(*q));
	size_t *idx = xcalloc(s->n + 1, sizeof(*idx)), n = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct src *x = &s->v[i], *y = src_sibling(s, i);

		if (!src_is_dns(x) || (x->family == 6 && y) ||
		    !(x->due || (y && y->due)))
			continue;
		/* Every SRV service alike: targets in the partner's domain
		 * or its srv_targets. */
		q[n] = (struct dns_query){
			.kind = x->kind == STATE_HOST ? DNS_HOST : DNS_DOMAIN,
			.name = x->name, .service = x->service, .loc = x->loc,
			.srv_in_domain = true,
			.srv_targets = p->partners[x->partner].srv_targets,
			.nsrv_targets = p->partners[x->partner].nsrv_targets,
			/* Refused unvalidated: a failed source (dns_take). */
			.dnssec_require = p->partners[x->partner].dnssec_require,
			.trust_anchor = p->resolve.trust_anchor.s,
		};
		idx[n++] = i;
	}
	if (n)
		dns_resolve(o->dns, q, n, d);
	for (size_t k = 0; k < n; k++) {
		struct src *y = src_sibling(s, idx[k]);

		dns_take(p, &s->v[idx[k]], &q[k], st, o, d);
		if (y)
			dns_take(p, y, &q[k], st, o, d);
		dns_query_clear(&q[k]);
	}
	free(idx);
	free(q);
}

/* ---- lists ------------------------------------------------------------- */

/* Sorted and deduplicated with its locs, the way src_fresh() keeps the
 * addresses, so that the locs stay parallel to them. */
static void list_sort(struct addr_list *l)
{
	size_t *perm = xreallocarray(NULL, l->n + 1, sizeof(*perm)), k = 0;
	struct prefix *v = l->v;
	struct loc *locs = l->locs;

	if (prefixes_order(l->v, l->n, perm)) {
		v = xreallocarray(NULL, l->n + 1, sizeof(*v));
		locs = xreallocarray(NULL, l->n + 1, sizeof(*locs));
		for (size_t i = 0; i < l->n; i++) {
			v[i] = l->v[perm[i]];
			locs[i] = l->locs[perm[i]];
		}
	}
	for (size_t i = 0; i < l->n; i++) {
		if (k && !memcmp(&v[k - 1], &v[i], sizeof(*v)))     /* see same_addrs */
			continue;
		l->v[k] = v[i];
		l->locs[k++] = locs[i];
	}
	l->n = k;
	if (v != l->v) {
		free(v);
		free(locs);
	}
	free(perm);
}

/* Confirmed now with the list's addresses, as src_fresh() keeps them:
 * list_sort() leaves them so, and the source takes the arrays over (a
 * 100k list is not copied, sorted and compared twice). */
static void fresh_list(struct src *x, const struct state *st, struct addr_list *l,
		       int64_t now)
{
	const struct state_entry *e = state_lookup(st, x->kind, x->key);

	list_sort(l);
	src_clear(x);
	x->addrs = l->v;
	x->locs = l->locs;
	x->naddrs = l->n;
	*l = (struct addr_list){ 0 };
	x->status = SRC_FRESH;
	x->from = STATE_FROM_FILE;
	x->ttl = 0;
	x->confirmed = now;
	x->changed = e ? !same_addrs(e->addrs, e->naddrs, x->addrs, x->naddrs) : x->naddrs > 0;
}

/* Whether the state's addresses of a list pass the guards its reading
 * would apply now (the policy may have changed since it was read). */
static bool state_passes(const struct state_entry *e, const struct guards *g)
{
	if (g->max_entries && e->naddrs > g->max_entries)
		return false;
	for (size_t i = 0; i < e->naddrs; i++)
		if (e->addrs[i].len < (e->addrs[i].family == 4 ? g->min_prefix_v4
							       : g->min_prefix_v6))
			return false;
	return true;
}

/* The list is the file the state read its addresses from (same identity,
 * list_read_id): confirmed now without opening it.  No locs: they stand
 * at the policy's `lists:` entry. */
static void src_unchanged(struct src *x, const struct state_entry *e, int64_t now)
{
	src_set(x, e->addrs, e->naddrs);
	x->status = SRC_FRESH;
	x->changed = false;
	x->from = STATE_FROM_FILE;
	x->ttl = 0;
	x->confirmed = now;
	x->ident = e->ident;
}

/* Reads one list; false (after reporting through d) on failure.  Its
 * locs name the policy's string (x->name), which outlives the srcset.
 * Offline (strict_lists) it is always read: check and plan name the
 * FILE:LINE of what a guard refuses, which the state does not know. */
static bool fill_list(const struct policy *p, struct src *x, const struct state *st,
		      const struct src_opts *o, struct diag *d)
{
	const struct state_entry *e = state_lookup(st, x->kind, x->key);
	struct state_ident now_id = { 0 };
	struct guards g = p->guards;
	struct addr_list l = { 0 };
	struct stat sb;
	bool ok;

	x->mtime = 0;
	x->failed = false;
	if (stat(x->key, &sb) == 0) {
		x->mtime = (int64_t)sb.st_mtime;
		list_ident(&sb, &now_id);
	}
	/* Refresh reads without the prefix guards: a wide prefix refuses the
	 * partner (guard_width, whatever the flags), not the list, which
	 * would keep its last known good addresses.  The entry cap holds
	 * everywhere: past it the list is not even kept in memory. */
	if (!o->strict_lists)
		g.min_prefix_v4 = g.min_prefix_v6 = 0;
	if (!o->strict_lists && e && e->naddrs && state_ident_same(e, &now_id) &&
	    state_passes(e, &g)) {
		src_unchanged(x, e, o->now);
		return true;
	}
	ok = list_read_id(x->name, &g, &l, &x->ident, d);
	if (ok && l.n == 0 && !o->strict_lists) {
		src_fallback(p, x, st, "the list is empty", o->now, d);
	} else if (ok) {
		fresh_list(x, st, &l, o->now);
	} else if (o->strict_lists) {
		diag_note(d, &x->loc, "list of partner '%s', refused as a whole",
			  p->partners[x->partner].name);
		x->status = SRC_UNKNOWN;
	} else {
		src_fallback(p, x, st, "cannot be read or has bad lines", o->now, d);
	}
	addr_list_free(&l);
	return ok || !o->strict_lists;
}

/* ---- list URLs --------------------------------------------------------- */

/* A 304: the state's addresses are confirmed now, nothing parsed. */
static void url_unchanged(struct src *x, const struct state_entry *e, int64_t now)
{
	src_set(x, e->addrs, e->naddrs);
	src_meta_from(x, e);
	x->status = SRC_FRESH;
	x->changed = false;
	x->not_modified = true;
	x->from = e->from;
	x->ttl = 0;
	x->confirmed = now;
}

/* The fetched body, parsed as a list file is (errors name URL:LINE:COL);
 * false after reporting what is wrong with it. */
static bool url_parse(const struct policy *p, struct src *x, const struct state *st,
		      struct fetch_reply *r, const struct src_opts *o, struct diag *d)
{
	struct guards g = p->guards;
	struct addr_list l = { 0 };
	bool ok;

	if (!o->strict_lists)
		g.min_prefix_v4 = g.min_prefix_v6 = 0;  /* as fill_list */
	ok = list_parse(x->name, r->body, r->len, &g, &l, d);
	if (ok && l.n == 0) {
		src_fallback(p, x, st, "the list it gave is empty", o->now, d);
	} else if (ok) {
		fresh_list(x, st, &l, o->now);
		x->from = x->insecure_http && !strncasecmp(x->key, "http:", 5)
			  ? STATE_FROM_HTTP : STATE_FROM_HTTPS;
		x->fetched = o->now;
		x->etag = r->v.etag;
		x->last_modified = r->v.last_modified;
		r->v = (struct fetch_validator){ 0 };
	} else {
		src_fallback(p, x, st, "its body has bad lines (above)", o->now, d);
	}
	addr_list_free(&l);
	return ok;
}

/* Fetches a due list URL, conditionally when the state holds what its
 * validators vouch for; a failure keeps the last known good. */
static void fill_url(const struct policy *p, struct src *x, const struct state *st,
		     const struct src_opts *o, struct diag *d)
{
	const struct state_entry *e = state_lookup(st, STATE_URL, x->key);
	struct fetch_cfg cfg = { .ca_file = p->fetch.ca_file.s, .timeout = p->fetch.timeout,
				 .max_size = p->fetch.max_size,
				 .allow_http = x->insecure_http };
	struct fetch_validator have = { 0 };
	struct fetch_reply r;
	bool cond = e && !e->dropped && e->naddrs && (e->etag || e->last_modified);

	src_meta_clear(x);
	x->failed = false;
	if (cond)
		have = (struct fetch_validator){ e->etag, e->last_modified };
	switch (fetch_url(x->key, &cfg, cond ? &have : NULL, &r)) {
	case FETCH_NOT_MODIFIED:
		url_unchanged(x, e, o->now);
		break;
	case FETCH_OK:
		url_parse(p, x, st, &r, o, d);
		break;
	case FETCH_FAILED:
		x->fetch_why = xstrdup(r.why);
		src_fallback(p, x, st, x->fetch_why, o->now, d);
		if (e)
			src_meta_from(x, e);
		break;
	}
	fetch_reply_free(&r);
}

/* ---- provider feeds ---------------------------------------------------- */

static struct fetch_cfg fetch_cfg_of(const struct policy *p, const struct src *x)
{
	return (struct fetch_cfg){ .ca_file = p->fetch.ca_file.s, .timeout = p->fetch.timeout,
				   .max_size = p->fetch.max_size,
				   .allow_http = x->insecure_http };
}

/* The feed's version now (m365: `latest` at its version URL); false, with
 * x->fetch_why set, when it cannot be had. */
static bool feed_latest(const struct policy *p, struct src *x, char **latest,
			struct diag *d)
{
	struct fetch_cfg cfg = fetch_cfg_of(p, x);
	const char *url = x->feed->version_url.s;
	struct fetch_reply r;
	struct strbuf why = { 0 };
	bool ok = false;

	if (fetch_url(url, &cfg, NULL, &r) != FETCH_OK)
		sb_addf(&why, "its version '%s': %s", url, r.why);
	else if (!(ok = feed_version_parse(url, r.body, r.len, latest, d)))
		sb_addf(&why, "its version '%s' is not a version answer (above)", url);
	fetch_reply_free(&r);
	x->fetch_why = why.s;
	return ok;
}

static bool same_groups(const struct src *x, const struct state_entry *e)
{
	if (x->ngroups != e->ngroups ||
	    (x->ngroups && memcmp(x->grp, e->grp, x->naddrs * sizeof(*x->grp))))
		return false;
	for (size_t k = 0; k < x->ngroups; k++)
		if (x->groups[k].n != e->groups[k].n ||
		    memcmp(x->groups[k].v, e->groups[k].v, x->groups[k].n * sizeof(*x->groups[k].v)))
			return false;
	return true;
}

/* Confirmed now with what the feed gave: its addresses (sorted, unique),
 * each with its ports (none: all the partner's). */
static void feed_fresh(struct src *x, const struct state *st, const struct feed_addrs *a,
		       int64_t now)
{
	const struct state_entry *e = state_lookup(st, x->kind, x->key);
	struct portset *g = xcalloc(a->ngrps + 1, sizeof(*g));
	uint32_t *grp = xcalloc(a->n + 1, sizeof(*grp));
	struct strbuf ids = { 0 };

	for (size_t k = 0; k < a->ngrps; k++) {
		g[k] = (struct portset){ a->grps[k].ports, a->grps[k].nports };
		sb_addf(&ids, "%s%s", k ? ";" : "", a->grps[k].id ? a->grps[k].id : "");
	}
	for (size_t i = 0; i < a->n; i++)
		grp[i] = a->grp[i] == FEED_ALL_PORTS ? 0 : a->grp[i] + 1;
	src_set(x, a->v, a->n);
	groups_set(x, g, a->ngrps, grp, ids.s);
	free(g);
	free(grp);
	sb_free(&ids);
	x->status = SRC_FRESH;
	x->from = x->insecure_http && !strncasecmp(x->key, "http:", 5) ? STATE_FROM_HTTP
									 : STATE_FROM_HTTPS;
	x->ttl = 0;
	x->confirmed = now;
	x->fetched = now;
	x->changed = e ? !same_addrs(e->addrs, e->naddrs, x->addrs, x->naddrs) ||
			 !same_groups(x, e) : x->naddrs > 0;
}

/* The fetched body through the feed's parser (errors name the URL and
 * the entry); false after reporting what is wrong with it. */
static void feed_body(const struct policy *p, struct src *x, const struct state *st,
		      struct fetch_reply *r, const struct src_opts *o, struct diag *d)
{
	struct guards g = p->guards;
	struct feed_addrs a = { 0 };

	g.min_prefix_v4 = g.min_prefix_v6 = 0;  /* guard_width judges the partner */
	if (!feed_parse(x->feed, x->name, r->body, r->len, &g, &a, d)) {
		src_fallback(p, x, st, "its body is not what its format says (above)", o->now, d);
	} else if (a.n == 0) {
		src_fallback(p, x, st, "no address in it passes its filters", o->now, d);
	} else {
		feed_fresh(x, st, &a, o->now);
		x->etag = r->v.etag;
		x->last_modified = r->v.last_modified;
		r->v = (struct fetch_validator){ 0 };
	}
	feed_addrs_free(&a);
}

/* A due feed: for m365 its version first (the endpoints are fetched only
 * when it changed), then the body, conditionally on the validators the
 * state keeps; a failure keeps the last known good. */
static void fill_feed(const struct policy *p, struct src *x, const struct state *st,
		      const struct src_opts *o, struct diag *d)
{
	const struct state_entry *e = state_lookup(st, STATE_FEED, x->key);
	struct fetch_cfg cfg = fetch_cfg_of(p, x);
	bool have = e && !e->dropped && e->naddrs;
	struct fetch_validator v = { 0 };
	struct fetch_reply r = { 0 };
	char *latest = NULL;

	src_meta_clear(x);
	x->failed = false;
	if (x->feed->version_url.s && !feed_latest(p, x, &latest, d)) {
		src_fallback(p, x, st, x->fetch_why, o->now, d);
		return;
	}
	if (have && latest && e->version && !strcmp(latest, e->version)) {
		url_unchanged(x, e, o->now);
		goto out_version;
	}
	if (have)
		v = (struct fetch_validator){ e->etag, e->last_modified };
	switch (fetch_url(x->name, &cfg,
			  have && (v.etag || v.last_modified) ? &v : NULL, &r)) {
	case FETCH_NOT_MODIFIED:
		url_unchanged(x, e, o->now);
		break;
	case FETCH_OK:
		feed_body(p, x, st, &r, o, d);
		break;
	case FETCH_FAILED:
		x->fetch_why = xstrdup(r.why);
		src_fallback(p, x, st, x->fetch_why, o->now, d);
		break;
	}
	fetch_reply_free(&r);
out_version:
	if (latest && x->status == SRC_FRESH) {
		free(x->version);
		x->version = latest;
		latest = NULL;
	}
	free(latest);
}

/* An earlier list source of this run that read the same file (or
 * fetched the same URL), or NULL. */
static const struct src *list_twin(const struct srcset *s, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (s->v[k].kind == s->v[i].kind && s->v[k].due &&
		    s->v[k].insecure_http == s->v[i].insecure_http &&
		    !strcmp(s->v[k].key, s->v[i].key))
			return &s->v[k];
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* A URL's fetch, as its twin made it. */
static void take_meta(struct src *x, const struct src *t)
{
	src_meta_clear(x);
	x->etag = dup_or_null(t->etag);
	x->last_modified = dup_or_null(t->last_modified);
	x->fetch_why = dup_or_null(t->fetch_why);
	x->fetched = t->fetched;
	x->not_modified = t->not_modified;
}

/* A file two partners name is read, and its bad lines reported, once:
 * the second takes the first's result, and a failure is noted for its
 * partner alone. */
static bool list_take(const struct policy *p, struct src *x, const struct src *t,
		      const struct state *st, const struct src_opts *o, struct diag *d)
{
	x->mtime = t->mtime;
	x->failed = false;
	take_meta(x, t);
	if (t->status == SRC_FRESH) {
		src_set(x, t->addrs, t->naddrs);
		if (t->locs) {
			x->locs = xreallocarray(NULL, t->naddrs + 1, sizeof(*x->locs));
			memcpy(x->locs, t->locs, t->naddrs * sizeof(*x->locs));
		}
		x->status = SRC_FRESH;
		x->changed = t->changed;
		x->from = t->from;
		x->ttl = t->ttl;
		x->confirmed = t->confirmed;
		x->ident = t->ident;
		return true;
	}
	if (!o->strict_lists) {
		src_fallback(p, x, st, x->fetch_why ? x->fetch_why : t->why, o->now, d);
		return true;
	}
	diag_note(d, &x->loc, "list of partner '%s', refused as a whole",
		  p->partners[x->partner].name);
	x->status = SRC_UNKNOWN;
	return false;
}

bool srcset_fill(const struct policy *p, struct srcset *s, const struct state *st,
		 const struct src_opts *o, struct diag *d)
{
	bool ok = true;

	for (size_t i = 0; i < s->n; i++) {
		struct src *x = &s->v[i];
		bool list = x->kind == STATE_LIST || (x->kind == STATE_URL && o->fetch);
		const struct src *twin = list && x->due ? list_twin(s, i) : NULL;

		if (twin)
			ok &= list_take(p, x, twin, st, o, d);
		else if (x->kind == STATE_LIST && x->due)
			ok &= fill_list(p, x, st, o, d);
		else if (x->kind == STATE_URL && x->due && o->fetch)
			fill_url(p, x, st, o, d);
		else if (x->kind == STATE_FEED && x->due && o->fetch)
			fill_feed(p, x, st, o, d);
		else if (!x->due || !o->dns || !src_is_dns(x))
			src_fallback(p, x, st, NULL, o->now, d);
	}
	if (o->dns)
		fill_dns(p, s, st, o, d);
	return ok;
}

/* ---- per partner ------------------------------------------------------- */

static void push_all(struct addr_list *out, const struct prefix *a, size_t n,
		     const struct loc *at)
{
	addr_list_reserve(out, n);
	for (size_t i = 0; i < n; i++)
		addr_list_push(out, &a[i], at);
}

static void push_src(struct addr_list *out, const struct src *x)
{
	addr_list_reserve(out, x->naddrs);
	for (size_t i = 0; i < x->naddrs; i++) {
		const struct loc *at = x->locs ? &x->locs[i] : &x->loc;
		const struct portset *g = x->grp && x->grp[i] ? &x->groups[x->grp[i] - 1] : NULL;

		if (g)
			addr_list_push_ports(out, &x->addrs[i], at, g->v, g->n);
		else
			addr_list_push_scoped(out, &x->addrs[i], at, x->scope);
	}
}

bool src_contributes(const struct src *x)
{
	return x->status == SRC_FRESH || x->status == SRC_KEPT;
}

void srcset_partner_addrs(const struct srcset *s, size_t partner, struct addr_list *out)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct src *x = &s->v[i];

		if (x->partner == partner && src_contributes(x))
			push_src(out, x);
	}
}

void srcset_stale_addrs(const struct srcset *s, size_t partner, struct addr_list *out)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].partner == partner && s->v[i].status == SRC_STALE)
			push_all(out, s->v[i].addrs, s->v[i].naddrs, &s->v[i].loc);
}

const struct state_entry *srcset_state_of(const struct srcset *s, const struct policy *p,
					  size_t k, const struct state *st, int64_t now)
{
	const struct state_entry *e = src_entry(st, &s->v[k]);

	return e && !e->dropped && now - e->confirmed <= (int64_t)p->guards.stale_after
	       ? e : NULL;
}

void srcset_state_addrs(const struct srcset *s, const struct policy *p, size_t partner,
			const struct state *st, int64_t now, struct addr_list *out)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct state_entry *e = s->v[i].partner == partner
					      ? srcset_state_of(s, p, i, st, now) : NULL;

		if (e)
			push_all(out, e->addrs, e->naddrs, &s->v[i].loc);
	}
}

void srcset_seen(const struct srcset *s, const struct policy *p, size_t k,
		 const struct state *st, int64_t now, struct src_seen *out)
{
	const struct state_entry *e = src_entry(st, &s->v[k]);

	*out = (struct src_seen){ 0 };
	if (!e)
		return;
	out->confirmed = e->confirmed;
	/* Dropped is stale until it answers, whatever stale_after says now. */
	out->stale = e->dropped || now - e->confirmed > (int64_t)p->guards.stale_after;
	out->dropped = e->dropped;
	out->naddrs = e->naddrs;
	out->ndropped = e->ndropped;
	out->dnssec = e->from == STATE_FROM_DNSSEC;
	out->fetched = e->fetched;
	out->etag = e->etag;
	out->last_modified = e->last_modified;
	out->version = e->version;
}

static bool named(const struct srcset *s, const struct state_entry *e)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == e->kind && s->v[i].family == e->family &&
		    !strcmp(s->v[i].key, e->name))
			return true;
	return false;
}

/* A feed's ports per address, when the state kept its addresses as the
 * source holds them (sorted, unique: it always does). */
static void record_groups(struct state *st, const struct src *x)
{
	const struct state_entry *e = state_lookup(st, x->kind, x->key);

	if (e && e->naddrs == x->naddrs)
		state_set_groups(st, x->kind, x->key, x->groups, x->ngroups, x->grp,
				 x->group_ids);
}

void srcset_record_fresh(const struct srcset *s, const bool *skip, struct state *st)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct src *x = &s->v[i];

		if (x->status != SRC_FRESH || (skip && skip[x->partner]))
			continue;
		/* Only invalid names fail, and the policy validated those. */
		(void)state_update_family(st, x->kind, x->key, x->family, x->from,
					  x->confirmed, x->ttl, x->addrs, x->naddrs);
		if (x->kind == STATE_LIST)
			state_set_ident(st, x->kind, x->key, &x->ident);
		if (x->kind == STATE_URL || x->kind == STATE_FEED)
			state_set_fetch(st, x->kind, x->key, &(struct state_fetch){
				x->fetched, x->etag, x->last_modified, x->version });
		if (x->kind == STATE_FEED)
			record_groups(st, x);
	}
}

void srcset_forget_unnamed(const struct srcset *s, struct state *st)
{
	for (size_t i = 0; i < st->n;) {
		if (named(s, &st->v[i]))
			i++;
		else
			state_remove_family(st, st->v[i].kind, st->v[i].name,
					    st->v[i].family);
	}
}

void srcset_record(const struct srcset *s, const struct policy *p, const bool *skip,
		   struct state *st, int64_t now)
{
	struct diag quiet;

	srcset_record_fresh(s, skip, st);
	srcset_forget_unnamed(s, st);
	/* Already warned about, per partner, by srcset_fill. */
	diag_init(&quiet, NULL);
	state_expire(st, now, p->guards.stale_after, &quiet);
}

/* ---- offline ----------------------------------------------------------- */

/* Host names and SRV domains no state knows: silent unless the partner
 * would be left without any address. */
static void unknown_note(const struct partner *pt, const struct srcset *s, size_t i,
			 size_t have, struct diag *d)
{
	bool any = false, url = false, bad_list = false;

	for (size_t k = 0; k < s->n; k++) {
		if (s->v[k].partner != i || s->v[k].status != SRC_UNKNOWN)
			continue;
		any |= src_is_dns(&s->v[k]);
		url |= s->v[k].kind >= STATE_URL;
		bad_list |= s->v[k].kind == STATE_LIST;
	}
	if ((!any && !url) || bad_list)
		return;
	if (pt->naddresses + have) {
		diag_note(d, &pt->loc, "partner '%s': %s (run fedwall refresh); using its"
			  " other addresses", pt->name,
			  !url ? "host names and domains are not resolved yet"
			  : !any ? "its URLs are not fetched yet"
			  : "host names and domains are not resolved, URLs not fetched yet");
		return;
	}
	for (size_t k = 0; k < s->n; k++) {
		const struct src *x = &s->v[k];

		if (x->partner != i || x->kind == STATE_LIST || x->status != SRC_UNKNOWN)
			continue;
		/* A domain with several SRV services: say it once. */
		if (k && s->v[k - 1].partner == i && s->v[k - 1].name == x->name)
			continue;
		diag_warn(d, &x->loc, "no addresses known yet for %s '%s'"
			  " (run fedwall refresh)", kind_word(x->kind), x->name);
	}
}

/* What refresh refuses (guard_width), the offline commands refuse too:
 * the partner's inline addresses with all its sources', joined.  So the
 * kernel never holds what check and plan would reject. */
static bool partner_width(const struct partner *pt, const struct addr_list *extra,
			  const struct guards *g, struct diag *d)
{
	struct addr_list all = { 0 };
	char *why;
	bool ok;

	if (!extra->n)
		return true;    /* inline ones alone: the policy checked them */
	for (size_t k = 0; k < pt->naddresses; k++)
		addr_list_push(&all, &pt->addresses[k].p, &pt->addresses[k].loc);
	for (size_t k = 0; k < extra->n; k++)
		addr_list_push(&all, &extra->v[k], &extra->locs[k]);
	why = guard_width(g, &all);
	ok = !why;
	if (why)
		diag_error(d, &pt->loc, "partner '%s': %s", pt->name, why);
	free(why);
	addr_list_free(&all);
	return ok;
}

static void load_state(const char *state_dir, struct state *st, struct diag *d)
{
	struct strbuf path = { 0 };
	int err;

	if (!state_dir)
		return;
	sb_addf(&path, "%s/%s", state_dir, STATE_FILE_NAME);
	err = state_load(st, path.s, d);
	if (err) {
		struct loc l = { path.s, 0, 0 };

		diag_warn(d, &l, "cannot read the state: %s; host names and domains"
			  " have no last known good addresses", strerror(-err));
	}
	sb_free(&path);
}

/* sources_get's record: `s` into the state, as it is on disk now under
 * the lock (a refresh may have saved since it was loaded). */
static void record(const struct srcset *s, const char *state_dir, struct diag *d)
{
	struct strbuf path = { 0 };
	struct state st = { 0 };
	struct diag quiet;
	int lock, err;

	if (!state_dir)
		return;
	diag_init(&quiet, NULL);
	lock = state_lock(state_dir, LOCK_WAIT_MS, &quiet);
	if (lock < 0) {
		diag_note(d, NULL, "the lists read are not recorded in the state '%s' (%s):"
			  " the next refresh reads them again", state_dir, strerror(-lock));
		return;
	}
	sb_addf(&path, "%s/%s", state_dir, STATE_FILE_NAME);
	err = state_load(&st, path.s, d);
	/* What was read, and what no source of this policy names goes (the
	 * state stays the size of its policy); entries gone stale stay, for
	 * refresh to weigh and report. */
	if (!err && !st.behind) {
		srcset_record_fresh(s, NULL, &st);
		srcset_forget_unnamed(s, &st);
		state_write(&st, path.s, d);
	}
	state_free(&st);
	sb_free(&path);
	state_unlock(lock);
}
static bool sources_get(const struct policy *p, const char *state_dir,
			struct dns_ctx *dns, struct sources *out, struct diag *d)
{
	struct src_opts o = { .dns = dns, .fetch = dns != NULL, .strict_lists = true,
			      .now = (int64_t)time(NULL) };
	struct state st = { 0 };
	struct srcset s = { 0 };
	bool ok;

	load_state(state_dir, &st, d);
	srcset_build(p, &s);
	for (size_t i = 0; i < s.n; i++)
		s.v[i].due = s.v[i].kind == STATE_LIST || dns;
	ok = srcset_fill(p, &s, &st, &o, d);
	out->n = p->npartners;
	out->partners = xcalloc(p->npartners + 1, sizeof(*out->partners));
	for (size_t i = 0; i < p->npartners; i++) {
		srcset_partner_addrs(&s, i, &out->partners[i]);
		unknown_note(&p->partners[i], &s, i, out->partners[i].n, d);
		ok &= partner_width(&p->partners[i], &out->partners[i], &p->guards, d);
	}
	if (ok && out->record)
		record(&s, state_dir, d);
	srcset_free(&s);
	state_free(&st);
	return ok;
}

bool sources_offline(const struct policy *p, const char *state_dir,
		     struct sources *out, struct diag *d)
{
	return sources_get(p, state_dir, NULL, out, d);
}

bool sources_online(const struct policy *p, const char *state_dir,
		    struct dns_ctx *dns, struct sources *out, struct diag *d)
{
	return sources_get(p, state_dir, dns, out, d);
}

void sources_free(struct sources *s)
{
	for (size_t i = 0; s->partners && i < s->n; i++)
		addr_list_free(&s->partners[i]);
	free(s->partners);
	memset(s, 0, sizeof(*s));
}

