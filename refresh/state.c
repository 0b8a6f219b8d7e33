/* state.c - last known good addresses, kept in one checksummed binary
 * file (format 3; formats 2 and 1, text, are still read) that is replaced
 * atomically.  A file we cannot verify is worth nothing:
 * trusting a damaged one could admit addresses nobody vouches for any
 * more, so it is dropped with a warning and the sources start afresh. */
#define _GNU_SOURCE     /* mkostemp */
#include "refresh/state.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUM_PREFIX "# sum "
#define SUM_HEX 16

static const char *const kind_names[] = {
	[STATE_HOST] = "host", [STATE_DOMAIN] = "domain", [STATE_LIST] = "list",
	[STATE_URL] = "url", [STATE_FEED] = "feed",
};
static const char *const from_names[] = {
	[STATE_FROM_DNS] = "dns", [STATE_FROM_DNSSEC] = "dnssec",
	[STATE_FROM_FILE] = "file", [STATE_FROM_HTTPS] = "https",
	[STATE_FROM_HTTP] = "http",
};

const char *state_kind_name(enum state_kind k)
{
	return (unsigned)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

const char *state_from_name(enum state_from f)
{
	return (unsigned)f < ARRAY_SIZE(from_names) ? from_names[f] : "?";
}

static int lookup_word(const char *const *names, size_t n, const char *w)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], w) == 0)
			return (int)i;
	return -1;
}

/* ---- the in-memory table ----------------------------------------------- */

static int entry_cmp(enum state_kind kind, const char *name, unsigned family,
		     const struct state_entry *e)
{
	int c;

	if (kind != e->kind)
		return kind < e->kind ? -1 : 1;
	c = strcmp(name, e->name);
	if (c || family == e->family)
		return c;
	return family < e->family ? -1 : 1;
}

/* Index of (kind, name, family), or where it would go (*found false). */
static size_t find(const struct state *st, enum state_kind kind,
		   const char *name, unsigned family, bool *found)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = entry_cmp(kind, name, family, &st->v[mid]);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

const struct state_entry *state_lookup_family(const struct state *st, enum state_kind kind,
					      const char *name, unsigned family)
{
	bool found;
	size_t i = find(st, kind, name, family, &found);

	return found ? &st->v[i] : NULL;
}

const struct state_entry *state_lookup(const struct state *st,
				       enum state_kind kind, const char *name)
{
	return state_lookup_family(st, kind, name, 0);
}

static void groups_free(struct state_entry *e)
{
	portsets_free(e->groups, e->ngroups);
	free(e->grp);
	free(e->group_ids);
	e->groups = NULL;
	e->grp = NULL;
	e->group_ids = NULL;
	e->ngroups = 0;
}

/* What the last fetch said: gone with the addresses it vouched for. */
static void meta_clear(struct state_entry *e)
{
	free(e->etag);
	free(e->last_modified);
	free(e->version);
	e->etag = e->last_modified = e->version = NULL;
	e->fetched = 0;
	groups_free(e);
}

static void entry_free(struct state_entry *e)
{
	free(e->name);
	free(e->addrs);
	meta_clear(e);
}

void state_free(struct state *st)
{
	for (size_t i = 0; i < st->n; i++)
		entry_free(&st->v[i]);
	free(st->v);
	st->v = NULL;
	st->n = st->cap = 0;
	st->discarded = false;
	st->behind = false;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STATE_NAME_MAX || name[0] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

/* prefix_mask() a byte at a time rather than a bit. */
static void mask(struct prefix *p)
{
	unsigned full = p->len / 8u;

	if (p->len % 8)
		p->a[full++] &= (uint8_t)(0xff << (8 - p->len % 8));
	memset(p->a + full, 0, 16 - full);
}

/* Copies, masks, sorts and deduplicates; NULL if one is not a prefix
 * (of `family`, unless 0). */
static struct prefix *norm_addrs(const struct prefix *in, size_t n, unsigned family,
				 size_t *nout)
{
	struct prefix *v = xreallocarray(NULL, n ? n : 1, sizeof(*v));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if ((in[i].family != 4 && in[i].family != 6) ||
		    (family && in[i].family != family) ||
		    in[i].len > prefix_maxlen(&in[i])) {
			free(v);
			return NULL;
		}
		v[i] = in[i];
		mask(&v[i]);
	}
	prefixes_sort(v, n);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || memcmp(&v[k - 1], &v[i], sizeof(*v)))
			v[k++] = v[i];
	*nout = k;
	return v;
}

/* Host names and SRV domains are kept per family; files, URLs and feeds
 * whole. */
static bool family_ok(enum state_kind kind, unsigned family)
{
	return family == 0 || (kind <= STATE_DOMAIN && (family == 4 || family == 6));
}

int state_update(struct state *st, enum state_kind kind, const char *name,
		 enum state_from from, int64_t when, uint32_t ttl,
		 const struct prefix *addrs, size_t naddrs)
{
	return state_update_family(st, kind, name, 0, from, when, ttl, addrs, naddrs);
}

int state_update_family(struct state *st, enum state_kind kind, const char *name,
			unsigned family, enum state_from from, int64_t when, uint32_t ttl,
			const struct prefix *addrs, size_t naddrs)
{
	struct state_entry *e;
	struct prefix *v;
	size_t n, i;
	bool found;

	if ((unsigned)kind >= ARRAY_SIZE(kind_names) ||
	    (unsigned)from >= ARRAY_SIZE(from_names) || !name_ok(name) ||
	    when < 0 || !family_ok(kind, family))
		return -EINVAL;
	i = find(st, kind, name, family, &found);
	/* What the state has already (a list read again unchanged): its
	 * normalised addresses, bytewise, need no sorting again. */
	if (found && naddrs == st->v[i].naddrs &&
	    (!naddrs || !memcmp(addrs, st->v[i].addrs, naddrs * sizeof(*addrs)))) {
		v = xreallocarray(NULL, naddrs ? naddrs : 1, sizeof(*v));
		if (naddrs)
			memcpy(v, addrs, naddrs * sizeof(*v));
		n = naddrs;
	} else {
		v = norm_addrs(addrs, naddrs, family, &n);
	}
	if (!v)
		return -EINVAL;
	if (!found) {
		if (st->n == st->cap) {
			st->cap = st->cap ? st->cap * 2 : 16;
			st->v = xreallocarray(st->v, st->cap, sizeof(*st->v));
		}
		memmove(&st->v[i + 1], &st->v[i], (st->n - i) * sizeof(*st->v));
		st->n++;
		st->v[i] = (struct state_entry){ .kind = kind, .name = xstrdup(name),
						 .family = (uint8_t)family };
	}
	e = &st->v[i];
	free(e->addrs);
	e->addrs = v;
	e->naddrs = n;
	e->from = from;
	e->confirmed = when;
	e->ttl = ttl;
	e->ident = (struct state_ident){ 0 };
	e->dropped = false;
	e->ndropped = 0;
	meta_clear(e);
	return 0;
}

/* A validator or version as kept: short, printable; else none. */
static char *meta_dup_max(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n > max)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return NULL;
	return xstrdup(s);
}

static char *meta_dup(const char *s)
{
	return meta_dup_max(s, STATE_META_MAX);
}

char *state_group_id(const char *ids, uint32_t grp)
{
	const char *at = ids, *end;

	if (!ids || !grp)
		return NULL;
	while (--grp && at)
		at = (at = strchr(at, ';')) ? at + 1 : NULL;
	if (!at)
		return NULL;
	end = strchr(at, ';');
	return end == at || !*at ? NULL : xstrndup(at, end ? (size_t)(end - at) : strlen(at));
}

bool state_set_fetch(struct state *st, enum state_kind kind, const char *name,
		     const struct state_fetch *f)
{
	bool found;
	size_t i = find(st, kind, name, 0, &found);
	struct state_entry *e = &st->v[i];

	if (!found)
		return false;
	free(e->etag);
	free(e->last_modified);
	free(e->version);
	e->fetched = f->fetched < 0 ? 0 : f->fetched;
	e->etag = meta_dup(f->etag);
	e->last_modified = meta_dup(f->last_modified);
	e->version = meta_dup(f->version);
	return true;
}

static bool ports_ok(const struct portrange *v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if ((v[k].proto != PROTO_TCP && v[k].proto != PROTO_UDP) || !v[k].lo ||
		    v[k].lo > v[k].hi)
			return false;
	return n > 0;
}

bool state_set_groups(struct state *st, enum state_kind kind, const char *name,
		      const struct portset *groups, size_t ngroups, const uint32_t *grp,
		      const char *ids)
{
	bool found;
	size_t i = find(st, kind, name, 0, &found);
	struct state_entry *e = &st->v[i];

	if (!found)
		return false;
	for (size_t k = 0; k < ngroups; k++)
		if (!ports_ok(groups[k].v, groups[k].n))
			return false;
	for (size_t k = 0; ngroups && k < e->naddrs; k++)
		if (grp[k] > ngroups)
			return false;
	groups_free(e);
	if (!ngroups || !e->naddrs)
		return true;
	e->groups = xcalloc(ngroups, sizeof(*e->groups));
	for (size_t k = 0; k < ngroups; k++) {
		struct portrange *v = xreallocarray(NULL, groups[k].n, sizeof(*v));

		memcpy(v, groups[k].v, groups[k].n * sizeof(*v));
		e->groups[k] = (struct portset){ v, portranges_merge(v, groups[k].n) };
	}
	e->ngroups = ngroups;
	e->grp = xreallocarray(NULL, e->naddrs + 1, sizeof(*e->grp));
	if (e->naddrs)
		memcpy(e->grp, grp, e->naddrs * sizeof(*e->grp));
	e->group_ids = meta_dup_max(ids, STATE_IDS_MAX);
	return true;
}

bool state_set_ident(struct state *st, enum state_kind kind, const char *name,
		     const struct state_ident *id)
{
	bool found;
	size_t i = find(st, kind, name, 0, &found);

	if (found)
		st->v[i].ident = *id;
	return found;
}

bool state_ident_same(const struct state_entry *e, const struct state_ident *id)
{
	static const struct state_ident zero;

	return e && memcmp(id, &zero, sizeof(zero)) != 0 &&
	       memcmp(id, &e->ident, sizeof(*id)) == 0;
}

bool state_remove_family(struct state *st, enum state_kind kind, const char *name,
			 unsigned family)
{
	bool found;
	size_t i = find(st, kind, name, family, &found);

	if (!found)
		return false;
	entry_free(&st->v[i]);
	memmove(&st->v[i], &st->v[i + 1], (st->n - i - 1) * sizeof(*st->v));
	st->n--;
	return true;
}

bool state_remove(struct state *st, enum state_kind kind, const char *name)
{
	bool found;
	size_t i = find(st, kind, name, 0, &found), k = i;

	/* Family 0 sorts first: every family of the name follows from i. */
	while (k < st->n && st->v[k].kind == kind && !strcmp(st->v[k].name, name))
		entry_free(&st->v[k++]);
	if (k == i)
		return false;
	memmove(&st->v[i], &st->v[k], (st->n - k) * sizeof(*st->v));
	st->n -= k - i;
	return true;
}

size_t state_expire(struct state *st, int64_t now, unsigned stale_after,
		    struct diag *d)
{
	size_t dropped = 0;

	for (size_t i = 0; i < st->n; i++) {
		struct state_entry *e = &st->v[i];
		int64_t age = now - e->confirmed;

		if (e->dropped || age <= (int64_t)stale_after)
			continue;
		diag_warn(d, NULL, "%s '%s'%s not confirmed for %" PRId64 " s "
			  "(stale_after %u s): dropping its %zu last known "
			  "good address%s", state_kind_name(e->kind), e->name,
			  e->family == 4 ? " (A)" : e->family == 6 ? " (AAAA)" : "",
			  age, stale_after, e->naddrs, e->naddrs == 1 ? "" : "es");
		/* Kept, empty: the time it was last confirmed is what status
		 * and the metrics report until it answers again. */
		e->dropped = true;
		e->ndropped = (uint32_t)e->naddrs;
		e->naddrs = 0;
		groups_free(e);
		/* A 304 must not confirm addresses no longer held. */
		free(e->etag);
		free(e->last_modified);
		free(e->version);
		e->etag = e->last_modified = e->version = NULL;
		dropped++;
	}
	return dropped;
}

/* ---- format 3 (and 2) ---------------------------------------------------- */

#define HDR2 32         /* magic, version, flags, entries, length */
#define ENT2 72         /* an entry's fixed part (formats 2 and 3) */
#define ENT4 96         /* format 4: fetched, three lengths, groups, ports */
#define SUM2 8

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static uint32_t get32(const unsigned char *b)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return le32toh(v);
}

static uint64_t get64(const unsigned char *b)
{
	uint64_t v;

	memcpy(&v, b, 8);
	return le64toh(v);
}

static void put32(unsigned char *b, uint32_t v)
{
	v = htole32(v);
	memcpy(b, &v, 4);
}

static void put64(unsigned char *b, uint64_t v)
{
	v = htole64(v);
	memcpy(b, &v, 8);
}

static uint64_t be64(const unsigned char *b)
{
	uint64_t v;

	memcpy(&v, b, 8);
	return be64toh(v);
}

static bool zeros(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* A cursor over the verified body. */
struct rd {
	const unsigned char *b;
	size_t off, end;
};

/* The next n bytes, zero-padded to 8 (the padding checked), or NULL. */
static const unsigned char *take(struct rd *r, uint64_t n)
{
	const unsigned char *at = r->b + r->off;

	if (n > r->end - r->off || pad8((size_t)n) > r->end - r->off ||
	    !zeros(at + n, pad8((size_t)n) - (size_t)n))
		return NULL;
	r->off += pad8((size_t)n);
	return at;
}

/* IPv4 records: masked, strictly increasing (prefix_cmp order). */
static bool unpack4(const unsigned char *a, size_t n, struct prefix *out)
{
	uint64_t prev = 0;

	for (size_t i = 0; i < n; i++, a += 5) {
		uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
			     (uint32_t)a[2] << 8 | a[3];
		uint64_t key = (uint64_t)v << 8 | a[4];

		if (a[4] > 32 || (a[4] < 32 && (uint32_t)((uint64_t)v << a[4])) ||
		    (i && key <= prev))
			return false;
		prev = key;
		out[i] = (struct prefix){ .family = 4, .len = a[4] };
		memcpy(out[i].a, a, 4);
	}
	return true;
}

static bool unpack6(const unsigned char *a, size_t n, struct prefix *out)
{
	uint64_t phi = 0, plo = 0;
	unsigned plen = 0;

	for (size_t i = 0; i < n; i++, a += 17) {
		uint64_t hi = be64(a), lo = be64(a + 8), mhi, mlo;
		unsigned len = a[16];

		if (len > 128)
			return false;
		mhi = len >= 64 ? 0 : ~0ULL >> len;                     /* host bits */
		mlo = len <= 64 ? ~0ULL : len == 128 ? 0 : ~0ULL >> (len - 64);
		if ((hi & mhi) || (lo & mlo))
			return false;
		if (i && (hi < phi || (hi == phi && (lo < plo || (lo == plo && len <= plen)))))
			return false;
		phi = hi;
		plo = lo;
		plen = len;
		out[i] = (struct prefix){ .family = 6, .len = (uint8_t)len };
		memcpy(out[i].a, a, 16);
	}
	return true;
}

static void push_entry(struct state *st, const struct state_entry *e)
{
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 16;
		st->v = xreallocarray(st->v, st->cap, sizeof(*st->v));
	}
	st->v[st->n++] = *e;
}

/* Format 3's family, flags and ndropped, as state_encode() writes them
 * (format 2 has zeros there). */
static bool entry_fam_ok(const unsigned char *h, uint32_t n4, uint32_t n6)
{
	bool dropped = h[3] == 1;

	return h[0] < ARRAY_SIZE(kind_names) && family_ok(h[0], h[2]) && h[3] <= 1 &&
	       (dropped || !get32(h + 28)) && (!dropped || (!n4 && !n6)) &&
	       !(h[2] == 4 && n6) && !(h[2] == 6 && n4);
}

/* The fixed part of an entry, name and counts checked; false if it is
 * not what state_encode() writes (format `version`). */
static bool entry_head(const unsigned char *h, uint32_t version, struct state_entry *e,
		       uint32_t *nlen, uint32_t *n4, uint32_t *n6)
{
	*nlen = get32(h + 4);
	*n4 = get32(h + 20);
	*n6 = get32(h + 24);
	if (h[0] >= ARRAY_SIZE(kind_names) || h[1] >= ARRAY_SIZE(from_names) ||
	    *nlen == 0 || *nlen > STATE_NAME_MAX || (int64_t)get64(h + 8) < 0)
		return false;
	if (version == STATE_VERSION_OLD ? h[2] || h[3] || get32(h + 28)
					 : !entry_fam_ok(h, *n4, *n6))
		return false;
	if (version != STATE_VERSION && h[0] > STATE_LIST)
		return false;   /* no URL or feed before format 4 */
	*e = (struct state_entry){
		.kind = h[0], .from = h[1], .family = h[2], .dropped = h[3] == 1,
		.ndropped = get32(h + 28), .confirmed = (int64_t)get64(h + 8),
		.ttl = get32(h + 16),
		.ident = { get64(h + 32), get64(h + 40), get64(h + 48),
			   (int64_t)get64(h + 56), (int64_t)get64(h + 64) },
	};
	return true;
}

/* A string of the fetch fields: `len` bytes (0: none), printable, at
 * most `max`. */
static bool take_str(struct rd *r, uint32_t len, uint32_t max, char **out)
{
	const unsigned char *b;

	*out = NULL;
	if (!len)
		return true;
	if (len > max || !(b = take(r, len)))
		return false;
	for (uint32_t i = 0; i < len; i++)
		if (b[i] < 0x20 || b[i] == 0x7f)
			return false;
	*out = xstrndup((const char *)b, len);
	return true;
}

static bool take_meta(struct rd *r, uint32_t len, char **out)
{
	return take_str(r, len, STATE_META_MAX, out);
}

/* Whether a group's ports are as state_set_groups() keeps them: merged
 * and sorted (a second spelling of the same ports is not trusted). */
static bool ports_canonical(const struct portset *sp)
{
	struct portrange *v = xreallocarray(NULL, sp->n, sizeof(*v));
	bool same;

	memcpy(v, sp->v, sp->n * sizeof(*v));
	same = portranges_merge(v, sp->n) == sp->n;
	for (size_t k = 0; same && k < sp->n; k++)
		same = !portrange_cmp(&v[k], &sp->v[k]);
	free(v);
	return same;
}

/* nports records of 8 bytes (u16 group, u8 proto, u8 0, u16 lo, u16 hi),
 * groups 0..ngroups-1 in order, each non-empty, its ports merged. */
static bool take_groups(struct rd *r, struct state_entry *e, uint32_t ngroups,
			uint32_t nports)
{
	const unsigned char *b = take(r, (uint64_t)nports * 8);
	size_t k = 0;

	if (!ngroups)
		return nports == 0;
	if (!b || nports < ngroups || e->kind != STATE_FEED)
		return false;
	e->groups = xcalloc(ngroups, sizeof(*e->groups));
	e->ngroups = ngroups;
	for (uint32_t g = 0; g < ngroups; g++) {
		struct portset *sp = &e->groups[g];

		sp->v = xcalloc(nports, sizeof(*sp->v));
		for (; k < nports && (b[k * 8] | (uint32_t)b[k * 8 + 1] << 8) == g; k++) {
			const unsigned char *q = b + k * 8;

			if (q[3])
				return false;
			sp->v[sp->n++] = (struct portrange){ q[2], (uint16_t)(q[4] | q[5] << 8),
							     (uint16_t)(q[6] | q[7] << 8) };
		}
		if (!ports_ok(sp->v, sp->n) || !ports_canonical(sp))
			return false;
	}
	return k == nports;
}

/* Format 4's fetch fields, after the name. */
static bool parse_meta(struct rd *r, const unsigned char *h, struct state_entry *e)
{
	uint32_t ngroups = h[86] | (uint32_t)h[87] << 8, nids = h[92] | (uint32_t)h[93] << 8;
	const unsigned char *g;

	e->fetched = (int64_t)get64(h + 72);
	if (e->fetched < 0 || h[94] || h[95] || (nids && !ngroups) ||
	    (e->kind < STATE_URL && (e->fetched || get32(h + 80) || get32(h + 84) ||
				     get32(h + 88))) ||
	    (e->kind != STATE_FEED && (h[84] || h[85])) ||
	    !take_meta(r, h[80] | (uint32_t)h[81] << 8, &e->etag) ||
	    !take_meta(r, h[82] | (uint32_t)h[83] << 8, &e->last_modified) ||
	    !take_meta(r, h[84] | (uint32_t)h[85] << 8, &e->version) ||
	    !take_str(r, nids, STATE_IDS_MAX, &e->group_ids) ||
	    !take_groups(r, e, ngroups, get32(h + 88)))
		return false;
	if (!ngroups)
		return true;
	if (!(g = take(r, (uint64_t)e->naddrs * 4)) || !e->naddrs)
		return false;
	e->grp = xreallocarray(NULL, e->naddrs + 1, sizeof(*e->grp));
	for (size_t k = 0; k < e->naddrs; k++)
		if ((e->grp[k] = get32(g + k * 4)) > ngroups)
			return false;
	return true;
}

static bool parse_entry2(struct state *st, struct rd *r, uint32_t version)
{
	const unsigned char *h = take(r, version == STATE_VERSION ? ENT4 : ENT2), *name, *a;
	struct state_entry e;
	uint32_t nlen, n4, n6;

	if (!h || !entry_head(h, version, &e, &nlen, &n4, &n6) || !(name = take(r, nlen)) ||
	    memchr(name, '\0', nlen))
		return false;
	e.name = xstrndup((const char *)name, nlen);
	e.naddrs = (size_t)n4 + n6;
	/* Every length is checked against the bytes there before it is
	 * allocated: a corrupted count costs nothing. */
	if (!name_ok(e.name) || (version == STATE_VERSION && !parse_meta(r, h, &e)) ||
	    !(a = take(r, (uint64_t)n4 * 5 + (uint64_t)n6 * 17)) ||
	    !(e.addrs = xreallocarray(NULL, e.naddrs + 1, sizeof(*e.addrs))) ||
	    (st->n && entry_cmp(e.kind, e.name, e.family, &st->v[st->n - 1]) <= 0) ||
	    !unpack4(a, n4, e.addrs) || !unpack6(a + (size_t)n4 * 5, n6, e.addrs + n4)) {
		entry_free(&e);
		return false;
	}
	push_entry(st, &e);
	return true;
}

/* Parses a format-3 or -2 file (its magic checked); NULL, or why it is
 * not trusted (*at: the byte offset of the entry that gave it away). */
static const char *parse2(struct state *st, const unsigned char *b, size_t len, size_t *at)
{
	struct rd r = { b, HDR2, len - SUM2 };
	uint32_t version;
	uint64_t n;

	*at = 0;
	if (len < HDR2 + SUM2 || len % 8 || get64(b + 24) != len)
		return "is truncated or corrupted (length)";
	if (get64(b + len - SUM2) != sum64(b, len - SUM2))
		return "is truncated or corrupted (checksum)";
	version = get32(b + 8);
	if ((version != STATE_VERSION && version != STATE_VERSION_3 &&
	     version != STATE_VERSION_OLD) || get32(b + 12))
		return "has an unknown format version";
	n = get64(b + 16);
	for (uint64_t i = 0; i < n; i++) {
		*at = r.off;
		if (!parse_entry2(st, &r, version))
			return "is malformed";
	}
	*at = r.off;
	return r.off == r.end ? NULL : "is malformed";
}

static size_t count_v4(const struct state_entry *e)
{
	size_t n4 = 0;

	while (n4 < e->naddrs && e->addrs[n4].family == 4)
		n4++;
	return n4;
}

static size_t meta_len(const char *s)
{
	return s ? strlen(s) : 0;
}

static size_t nports_of(const struct state_entry *e)
{
	size_t n = 0;

	for (size_t g = 0; g < e->ngroups; g++)
		n += e->groups[g].n;
	return n;
}

static uint64_t entry2_size(const struct state_entry *e)
{
	size_t n4 = count_v4(e);

	return ENT4 + pad8(strlen(e->name)) + pad8(meta_len(e->etag)) +
	       pad8(meta_len(e->last_modified)) + pad8(meta_len(e->version)) +
	       pad8(meta_len(e->group_ids)) +
	       nports_of(e) * 8 + (e->ngroups ? pad8(e->naddrs * 4) : 0) +
	       pad8(n4 * 5 + (e->naddrs - n4) * 17);
}

/* Formats 1 and 2 kept one entry per name: its families become two
 * entries, each with its own addresses (possibly none), confirmed when
 * the name was, as a refresh that saw both answer would record them. */
static void split_families(struct state *st)
{
	struct state out = { 0 };

	for (size_t i = 0; i < st->n; i++) {
		struct state_entry a = st->v[i], b = st->v[i];
		size_t n4 = count_v4(&a);

		if (a.kind >= STATE_LIST || a.family) {
			push_entry(&out, &a);
			continue;
		}
		a.family = 4;
		a.naddrs = n4;
		b.family = 6;
		b.name = xstrdup(a.name);
		b.naddrs -= n4;
		b.addrs = xreallocarray(NULL, b.naddrs + 1, sizeof(*b.addrs));
		if (b.naddrs)
			memcpy(b.addrs, a.addrs + n4, b.naddrs * sizeof(*b.addrs));
		push_entry(&out, &a);
		push_entry(&out, &b);
	}
	free(st->v);
	st->v = out.v;
	st->n = out.n;
	st->cap = out.cap;
}

static unsigned char *put_str(unsigned char *at, const char *s)
{
	size_t n = meta_len(s);

	if (n)
		memcpy(at, s, n);
	return at + pad8(n);
}

static void put16(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)v;
	b[1] = (unsigned char)(v >> 8);
}

/* Format 4's fetch fields: in the fixed part at b, then from `at`; the
 * address records' start. */
static unsigned char *put_meta(unsigned char *b, const struct state_entry *e,
			       unsigned char *at)
{
	put64(b + 72, (uint64_t)e->fetched);
	put16(b + 80, (uint32_t)meta_len(e->etag));
	put16(b + 82, (uint32_t)meta_len(e->last_modified));
	put16(b + 84, (uint32_t)meta_len(e->version));
	put16(b + 86, (uint32_t)e->ngroups);
	put32(b + 88, (uint32_t)nports_of(e));
	put16(b + 92, (uint32_t)meta_len(e->group_ids));
	at = put_str(at, e->etag);
	at = put_str(at, e->last_modified);
	at = put_str(at, e->version);
	at = put_str(at, e->group_ids);
	for (size_t g = 0; g < e->ngroups; g++) {
		for (size_t k = 0; k < e->groups[g].n; k++, at += 8) {
			const struct portrange *r = &e->groups[g].v[k];

			put16(at, (uint32_t)g);
			at[2] = r->proto;
			put16(at + 4, r->lo);
			put16(at + 6, r->hi);
		}
	}
	for (size_t k = 0; e->ngroups && k < e->naddrs; k++)
		put32(at + k * 4, e->grp[k]);
	return at + (e->ngroups ? pad8(e->naddrs * 4) : 0);
}

static unsigned char *put_entry2(unsigned char *b, const struct state_entry *e)
{
	size_t n4 = count_v4(e), nlen = strlen(e->name);
	unsigned char *a;

	b[0] = (unsigned char)e->kind;
	b[1] = (unsigned char)e->from;
	b[2] = e->family;
	b[3] = e->dropped ? 1 : 0;
	put32(b + 4, (uint32_t)nlen);
	put64(b + 8, (uint64_t)e->confirmed);
	put32(b + 16, e->ttl);
	put32(b + 20, (uint32_t)n4);
	put32(b + 24, (uint32_t)(e->naddrs - n4));
	put32(b + 28, e->dropped ? e->ndropped : 0);
	put64(b + 32, e->ident.dev);
	put64(b + 40, e->ident.ino);
	put64(b + 48, e->ident.size);
	put64(b + 56, (uint64_t)e->ident.mtime_ns);
	put64(b + 64, (uint64_t)e->ident.ctime_ns);
	memcpy(b + ENT4, e->name, nlen);
	a = put_meta(b, e, b + ENT4 + pad8(nlen));
	for (size_t k = 0; k < e->naddrs; k++) {
		size_t w = e->addrs[k].family == 4 ? 4 : 16;

		memcpy(a, e->addrs[k].a, w);
		a[w] = e->addrs[k].len;
		a += w + 1;
	}
	return b + entry2_size(e);
}

/* The file's bytes (zeroed, so every padding is zero), or NULL when
 * they would exceed STATE_MAX_FILE. */
unsigned char *state_encode(const struct state *st, size_t *len)
{
	uint64_t total = HDR2 + SUM2;
	unsigned char *b, *p;

	for (size_t i = 0; i < st->n; i++)
		total += entry2_size(&st->v[i]);
	if (total > STATE_MAX_FILE)
		return NULL;
	b = xcalloc(1, (size_t)total);
	memcpy(b, STATE2_MAGIC, STATE2_MAGIC_LEN);
	put32(b + 8, STATE_VERSION);
	put64(b + 16, st->n);
	put64(b + 24, total);
	p = b + HDR2;
	for (size_t i = 0; i < st->n; i++)
		p = put_entry2(p, &st->v[i]);
	put64(p, sum64(b, (size_t)total - SUM2));
	*len = (size_t)total;
	return b;
}

/* ---- reading ----------------------------------------------------------- */

/* Reads all of fd, at most STATE_MAX_FILE bytes: -EFBIG beyond. */
static int read_all(int fd, char **out, size_t *len)
{
	struct strbuf sb = { 0 };
	char buf[65536];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = -errno;

			sb_free(&sb);
			return err;
		}
		if (r == 0)
			break;
		if (sb.len + (size_t)r > STATE_MAX_FILE) {
			sb_free(&sb);
			return -EFBIG;
		}
		sb_add(&sb, buf, (size_t)r);
	}
	*out = sb.s;
	*len = sb.len;
	return 0;
}

static uint64_t body_sum(const char *s, size_t n)
{
	return fnv1a64(FNV1A64_INIT, s, n);
}

/* The length of the body if the file ends in a matching sum line, else 0. */
static size_t verify_sum(const char *s, size_t n)
{
	size_t want = strlen(SUM_PREFIX) + SUM_HEX + 1, body;
	char hex[SUM_HEX + 1], *end;
	uint64_t sum;

	if (n < want || s[n - 1] != '\n')
		return 0;
	body = n - want;
	if ((body > 0 && s[body - 1] != '\n') ||
	    memcmp(s + body, SUM_PREFIX, strlen(SUM_PREFIX)) != 0)
		return 0;
	memcpy(hex, s + body + strlen(SUM_PREFIX), SUM_HEX);
	hex[SUM_HEX] = '\0';
	for (size_t i = 0; i < SUM_HEX; i++)
		if (!strchr("0123456789abcdef", hex[i]))
			return 0;
	sum = strtoull(hex, &end, 16);
	return sum == body_sum(s, body) ? body : 0;
}

static bool parse_i64(const char *w, int64_t *out)
{
	char *end;
	long long v;

	if (!*w || *w == '-' || *w == '+')
		return false;
	errno = 0;
	v = strtoll(w, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* `source KIND CONFIRMED TTL FROM NAME`; line is NUL-terminated and
 * modified.  False if malformed or out of order. */
static bool parse_source(struct state *st, char *line)
{
	char *w[5], *save = NULL, *rest, *eol = line + strlen(line);
	int kind, from;
	int64_t when, ttl;

	for (size_t i = 0; i < 5; i++) {
		w[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!w[i])
			return false;
	}
	rest = w[4] + strlen(w[4]);     /* NAME: the rest of the line */
	if (rest >= eol)
		return false;
	rest++;
	kind = lookup_word(kind_names, ARRAY_SIZE(kind_names), w[1]);
	from = lookup_word(from_names, ARRAY_SIZE(from_names), w[4]);
	if (strcmp(w[0], "source") != 0 || kind < 0 || from < 0 ||
	    !parse_i64(w[2], &when) || !parse_i64(w[3], &ttl) ||
	    ttl > UINT32_MAX || !name_ok(rest))
		return false;
	/* Written sorted and unique: anything else is not our file. */
	if (st->n && entry_cmp(kind, rest, 0, &st->v[st->n - 1]) <= 0)
		return false;
	return state_update(st, kind, rest, from, when, (uint32_t)ttl,
			    NULL, 0) == 0;
}

static bool parse_addr(struct state *st, const char *line)
{
	struct state_entry *e;
	struct prefix p;

	if (st->n == 0 || strncmp(line, "addr ", 5) != 0 ||
	    prefix_parse(line + 5, &p) != PREFIX_OK)
		return false;
	e = &st->v[st->n - 1];
	if (e->naddrs && prefix_cmp(&e->addrs[e->naddrs - 1], &p) >= 0)
		return false;
	e->addrs = xreallocarray(e->addrs, e->naddrs + 1, sizeof(*e->addrs));
	e->addrs[e->naddrs++] = p;
	return true;
}

/* Parses the verified body into st; on failure returns the bad line's
 * number (1-based), else 0. */
static unsigned parse_body(struct state *st, char *s, size_t n)
{
	unsigned lineno = 0;
	char *p = s, *end = s + n;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)(nl - p);
		bool ok;

		lineno++;
		if (!nl || len + 1 > STATE_MAX_LINE || memchr(p, '\0', len))
			return lineno;
		*nl = '\0';
		if (lineno == 1)
			ok = strcmp(p, STATE_MAGIC) == 0;
		else if (strncmp(p, "source ", 7) == 0)
			ok = parse_source(st, p);
		else
			ok = parse_addr(st, p);
		if (!ok)
			return lineno;
		p = nl + 1;
	}
	return lineno == 0 ? 1 : 0;
}

static void discard(struct state *st, struct diag *d, const char *path,
		    unsigned line, const char *why)
{
	struct loc l = { .file = path, .line = line, .col = line ? 1 : 0 };

	state_free(st);
	st->discarded = true;
	diag_warn(d, &l, "state file %s; ignoring it: its last known good "
		  "addresses are not trusted", why);
}

static char *behind_path(const char *path)
{
	struct strbuf sb = { 0 };

	sb_addf(&sb, "%s%s", path, STATE_BEHIND_SUFFIX);
	return sb.s;
}

/* Whether PATH-behind is there (whatever it is: it is never opened). */
bool state_behind(const char *path)
{
	char *m = behind_path(path);
	struct stat sb;
	bool there = lstat(m, &sb) == 0;

	free(m);
	return there;
}

int state_mark_behind(const char *path)
{
	char *m = behind_path(path);
	int fd = open(m, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int err = fd < 0 && errno != EEXIST ? -errno : 0;

	if (fd >= 0)
		close(fd);
	free(m);
	return err;
}

void state_clear_behind(const char *path)
{
	char *m = behind_path(path);

	(void)unlink(m);
	free(m);
}

static int load(struct state *st, const char *path, struct diag *d);

static void load2(struct state *st, struct diag *d, const char *path, const char *buf,
		  size_t len)
{
	size_t at;
	const char *why = parse2(st, (const unsigned char *)buf, len, &at);
	char msg[96];

	if (!why)
		return;
	if (at)
		snprintf(msg, sizeof(msg), "%s at byte %zu", why, at);
	discard(st, d, path, 0, at ? msg : why);
}

int state_load(struct state *st, const char *path, struct diag *d)
{
	int err = load(st, path, d);

	st->behind = state_behind(path);
	return err;
}

/* Either format; `buf` (format 1) is cut in place. */
static void parse_any(struct state *st, struct diag *d, const char *name, char *buf,
		      size_t len)
{
	size_t body;
	unsigned bad;

	if (len >= STATE2_MAGIC_LEN && !memcmp(buf, STATE2_MAGIC, STATE2_MAGIC_LEN)) {
		load2(st, d, name, buf, len);
		if (!st->discarded && get32((const unsigned char *)buf + 8) == STATE_VERSION_OLD)
			split_families(st);
		return;
	}
	body = verify_sum(buf, len);
	if (body == 0) {
		discard(st, d, name, 0, "is truncated or corrupted (checksum)");
		return;
	}
	bad = parse_body(st, buf, body);
	if (bad)
		discard(st, d, name, bad, "is malformed");
	else
		split_families(st);
}

bool state_parse(struct state *st, const char *name, const void *buf, size_t len,
		 struct diag *d)
{
	char *copy;

	state_free(st);
	if (len > STATE_MAX_FILE) {
		discard(st, d, name, 0, "is larger than 256 MiB");
		return false;
	}
	copy = xmalloc(len + 1);
	memcpy(copy, buf, len);
	parse_any(st, d, name, copy, len);
	free(copy);
	return !st->discarded;
}

static int load(struct state *st, const char *path, struct diag *d)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	int fd, err;

	state_free(st);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &sb) < 0) {
		err = -errno;
		goto out_close;
	}
	err = 0;
	if (!S_ISREG(sb.st_mode)) {
		discard(st, d, path, 0, "is not a regular file");
		goto out_close;
	}
	/* Others could write into it addresses nobody vouches for. */
	if (file_check_private(path, fd, false, d)) {
		err = -EPERM;
		goto out_close;
	}
	if (sb.st_size > (off_t)STATE_MAX_FILE) {
		discard(st, d, path, 0, "is larger than 256 MiB");
		goto out_close;
	}
	err = read_all(fd, &buf, &len);
	if (err == -EFBIG) {
		err = 0;
		discard(st, d, path, 0, "is larger than 256 MiB");
		goto out_close;
	}
	if (err)
		goto out_close;
	parse_any(st, d, path, buf, len);
	free(buf);
out_close:
	close(fd);
	return err;
}

/* ---- writing ----------------------------------------------------------- */

/* Removes what a fedwall killed while saving left behind: PATH.XXXXXX,
 * file_write_state's temporary files.  The caller holds the state
 * directory's lock, so none of them is being written now. */
static void sweep_temps(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path))
			  : xstrdup(".");
	const char *base = slash ? slash + 1 : path;
	size_t blen = strlen(base);
	DIR *dh = opendir(dir);
	struct dirent *de;

	while (dh && (de = readdir(dh))) {
		if (strlen(de->d_name) == blen + 7 && !strncmp(de->d_name, base, blen) &&
		    de->d_name[blen] == '.' && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN))
			(void)unlinkat(dirfd(dh), de->d_name, 0);
	}
	if (dh)
		closedir(dh);
	free(dir);
}

int state_write(const struct state *st, const char *path, struct diag *d)
{
	size_t len = 0;
	unsigned char *buf;
	int err;

	sweep_temps(path);
	buf = state_encode(st, &len);
	if (!buf) {
		diag_error(d, NULL, "%s: the state would be larger than %u MiB", path,
			   STATE_MAX_FILE >> 20);
		return -EFBIG;
	}
	err = file_write_state(path, buf, len, 0600, true, d);
	free(buf);
	return err;
}

int state_save(const struct state *st, const char *path)
{
	struct diag quiet;

	diag_init(&quiet, NULL);
	return state_write(st, path, &quiet);
}
