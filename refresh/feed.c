/* feed.c - provider feeds: a fetched body -> addresses and the ports each
 * is published for (refresh/feed.h).  The only file that includes
 * <jansson.h>.  Pure: no I/O, no clock.
 *
 * Every format parses into entries (prefix, publisher's entry) first,
 * then one pass sorts them and gives each prefix the union of its
 * entries' ports: what comes back is all of a good body or nothing. */
#include "refresh/refresh.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define NO_SET UINT32_MAX       /* an entry on all the partner's ports */

typedef VEC(struct portrange) port_vec;

/* A publisher's entry that names ports (an m365 endpoint set). */
struct fset {
	uint32_t id;
	struct portrange *ports;        /* merged */
	size_t nports;
};

struct fent {
	struct prefix p;
	uint32_t set;           /* index into sets, or NO_SET */
};

struct fctx {
	const struct feed *f;
	const char *name;
	const struct guards *g;
	struct diag *d;
	struct loc at;          /* the feed, for messages */
	VEC(struct fent) ents;
	VEC(struct fset) sets;
};

#define FERR(c, ...) diag_error((c)->d, &(c)->at, __VA_ARGS__)

/* ---- filters and values -------------------------------------------- */

/* Whether value `s` passes filter k of the feed (no filter: any does). */
static bool passes(const struct fctx *c, enum feed_key k, const char *s)
{
	const struct feed_filter *ff = &c->f->filter[k];

	for (size_t i = 0; i < ff->n; i++)
		if (!strcmp(ff->v[i].s, s))
			return true;
	return ff->n == 0;
}

/* The string member `key` of `o`; NULL after reporting it missing or of
 * another type (`where` names the entry: "prefixes[3]"). */
static const char *member_str(struct fctx *c, json_t *o, const char *key,
			      const char *where)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		FERR(c, "%s: no '%s'", where, key);
	else if (!json_is_string(v))
		FERR(c, "%s: '%s' must be a string", where, key);
	else
		return json_string_value(v);
	return NULL;
}

/* Member `key` of `o` as an array; NULL after reporting otherwise. */
static json_t *member_array(struct fctx *c, json_t *o, const char *key, const char *where)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		FERR(c, "%s: no '%s'", where, key);
	else if (!json_is_array(v))
		FERR(c, "%s: '%s' must be an array", where, key);
	else
		return v;
	return NULL;
}

/* A prefix of family `family` (0: either), obeying the guards; pushed
 * with `set`.  False after reporting it (`where`: "set 11 ips[2]"). */
static bool add_prefix(struct fctx *c, const char *s, int family, uint32_t set,
		       const char *where)
{
	char buf[PREFIX_STRLEN];
	struct prefix p;
	enum prefix_err e = prefix_parse(s, &p);
	unsigned min = 0;

	if (e == PREFIX_HOST_BITS) {
		FERR(c, "%s '%s': %s (did you mean '%s'?)", where, s, prefix_strerror(e),
		     prefix_fmt(&p, buf, sizeof(buf)));
		return false;
	}
	if (e != PREFIX_OK || (family && p.family != family)) {
		FERR(c, "%s '%s': %s", where, s,
		     e != PREFIX_OK ? prefix_strerror(e)
				    : family == 4 ? "not an IPv4 prefix" : "not an IPv6 prefix");
		return false;
	}
	if (c->g)
		min = p.family == 4 ? c->g->min_prefix_v4 : c->g->min_prefix_v6;
	if (p.len < min || p.len == 0) {
		FERR(c, "%s '%s': prefix wider than /%u (guards.min_prefix_v%c)", where, s,
		     min ? min : 1, p.family == 4 ? '4' : '6');
		return false;
	}
	VEC_PUSH(&c->ents, ((struct fent){ p, set }));
	return true;
}

/* ---- m365: Microsoft 365 endpoints web service ---------------------- */

/* "80,443" or "3478-3481" for protocol `proto` into `out`.  False after
 * reporting a bad token. */
static bool m365_ports(struct fctx *c, const char *s, const char *proto, uint32_t id,
		       const char *key, port_vec *out)
{
	char *work = xstrdup(s), *save = NULL, *tok;
	bool ok = true;

	for (tok = strtok_r(work, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
		char buf[64];
		struct portrange r;
		enum port_err e;

		tok += strspn(tok, " ");
		snprintf(buf, sizeof(buf), "%s/%s", proto, tok);
		e = strlen(tok) > 16 ? PORT_BAD_NUMBER : portrange_parse(buf, &r);
		if (e != PORT_OK) {
			FERR(c, "endpoint set %u: %s '%s': bad port '%s': %s", id, key, s, tok,
			     port_strerror(e));
			ok = false;
			break;
		}
		VEC_PUSH(out, r);
	}
	free(work);
	return ok;
}

/* The set's tcpPorts and udpPorts (each optional, a string). */
static bool m365_set_ports(struct fctx *c, json_t *set, uint32_t id, struct fset *out)
{
	static const struct { const char *key, *proto; } keys[] = {
		{ "tcpPorts", "tcp" }, { "udpPorts", "udp" },
	};
	port_vec v = { 0 };

	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		json_t *x = json_object_get(set, keys[k].key);

		if (!x)
			continue;
		if (!json_is_string(x)) {
			FERR(c, "endpoint set %u: '%s' must be a string", id, keys[k].key);
			goto out_free;
		}
		if (!m365_ports(c, json_string_value(x), keys[k].proto, id, keys[k].key, &v))
			goto out_free;
	}
	out->id = id;
	out->nports = portranges_merge(v.v, v.n);
	out->ports = v.v;
	return true;
out_free:
	free(v.v);
	return false;
}

/* The id, serviceArea, category and required of a set, checked, and
 * whether the feed's filters pass it. */
static bool m365_head(struct fctx *c, json_t *set, size_t i, uint32_t *id, bool *pass)
{
	json_t *jid = json_object_get(set, "id"), *req = json_object_get(set, "required");
	const char *area, *cat;
	char where[48], num[24];

	snprintf(where, sizeof(where), "[%zu]", i);
	if (!jid || !json_is_integer(jid) || json_integer_value(jid) < 1 ||
	    json_integer_value(jid) > INT32_MAX) {
		FERR(c, "%s: 'id' must be a positive integer", where);
		return false;
	}
	*id = (uint32_t)json_integer_value(jid);
	snprintf(where, sizeof(where), "endpoint set %u", *id);
	if (!(area = member_str(c, set, "serviceArea", where)) ||
	    !(cat = member_str(c, set, "category", where)))
		return false;
	if (!req || !json_is_boolean(req)) {
		FERR(c, "%s: 'required' must be true or false", where);
		return false;
	}
	snprintf(num, sizeof(num), "%u", *id);
	*pass = passes(c, FK_SERVICE_AREA, area) && passes(c, FK_CATEGORY, cat) &&
		passes(c, FK_REQUIRED, json_is_true(req) ? "true" : "false") &&
		passes(c, FK_IDS, num);
	return true;
}

/* A set's ips, on its own ports; nothing when it has none. */
static bool m365_ips(struct fctx *c, json_t *set, uint32_t id)
{
	json_t *ips = json_object_get(set, "ips"), *x;
	struct fset s;
	char where[48];
	size_t k;

	if (!ips)
		return true;
	if (!json_is_array(ips)) {
		FERR(c, "endpoint set %u: 'ips' must be an array", id);
		return false;
	}
	if (!m365_set_ports(c, set, id, &s))
		return false;
	VEC_PUSH(&c->sets, s);
	json_array_foreach(ips, k, x) {
		snprintf(where, sizeof(where), "endpoint set %u: ips[%zu]", id, k);
		if (!json_is_string(x)) {
			FERR(c, "%s must be a string", where);
			return false;
		}
		if (!add_prefix(c, json_string_value(x), 0, (uint32_t)(c->sets.n - 1), where))
			return false;
		/* a set without ports is checked, and opens nothing */
		c->ents.n -= !s.nports;
	}
	return true;
}

static bool parse_m365(struct fctx *c, json_t *root)
{
	json_t *set;
	size_t i;

	if (!json_is_array(root)) {
		FERR(c, "expected an array of endpoint sets");
		return false;
	}
	json_array_foreach(root, i, set) {
		uint32_t id;
		bool pass;

		if (!json_is_object(set)) {
			FERR(c, "[%zu]: an endpoint set must be an object", i);
			return false;
		}
		if (!m365_head(c, set, i, &id, &pass))
			return false;
		if (pass && !m365_ips(c, set, id))
			return false;
	}
	return true;
}

/* ---- aws: ip-ranges.json -------------------------------------------- */

/* prefixes[] (key ip_prefix, IPv4) or ipv6_prefixes[] (ipv6_prefix). */
static bool aws_array(struct fctx *c, json_t *root, const char *arr, const char *key,
		      int family)
{
	json_t *a = member_array(c, root, arr, "the body"), *e;
	char where[64];
	size_t i;

	if (!a)
		return false;
	json_array_foreach(a, i, e) {
		const char *pfx, *svc, *reg, *nbg;

		snprintf(where, sizeof(where), "%s[%zu]", arr, i);
		if (!json_is_object(e)) {
			FERR(c, "%s must be an object", where);
			return false;
		}
		if (!(pfx = member_str(c, e, key, where)) ||
		    !(svc = member_str(c, e, "service", where)) ||
		    !(reg = member_str(c, e, "region", where)) ||
		    !(nbg = member_str(c, e, "network_border_group", where)))
			return false;
		if (!passes(c, FK_SERVICE, svc) || !passes(c, FK_REGION, reg) ||
		    !passes(c, FK_NBG, nbg))
			continue;
		snprintf(where, sizeof(where), "%s[%zu].%s", arr, i, key);
		if (!add_prefix(c, pfx, family, NO_SET, where))
			return false;
	}
	return true;
}

static bool parse_aws(struct fctx *c, json_t *root)
{
	if (!json_is_object(root)) {
		FERR(c, "expected an object with 'prefixes' and 'ipv6_prefixes'");
		return false;
	}
	return aws_array(c, root, "prefixes", "ip_prefix", 4) &&
	       aws_array(c, root, "ipv6_prefixes", "ipv6_prefix", 6);
}

/* ---- the formats ----------------------------------------------------- */

static const struct {
	bool (*parse)(struct fctx *c, json_t *root);    /* NULL: not JSON */
} formats[FEED_FORMATS] = {
	[FEED_PLAIN] = { NULL },
	[FEED_M365] = { parse_m365 },
	[FEED_AWS] = { parse_aws },
};

/* The deepest nesting of arrays and objects in `body`, strings skipped;
 * stops counting past `cap`.  jansson's own limit (2048) is a build
 * constant; a feed is 3 deep, so anything deeper is refused early. */
static unsigned json_depth(const char *body, size_t len, unsigned cap)
{
	unsigned depth = 0, max = 0;
	bool str = false;

	for (size_t i = 0; i < len && max <= cap; i++) {
		char ch = body[i];

		if (str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				str = false;
		} else if (ch == '"') {
			str = true;
		} else if (ch == '[' || ch == '{') {
			max = ++depth > max ? depth : max;
		} else if ((ch == ']' || ch == '}') && depth) {
			depth--;
		}
	}
	return max;
}

static json_t *load(struct fctx *c, const char *body, size_t len)
{
	json_error_t err;
	json_t *root;

	if (json_depth(body, len, FEED_MAX_DEPTH) > FEED_MAX_DEPTH) {
		FERR(c, "JSON nested deeper than %u levels", FEED_MAX_DEPTH);
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		FERR(c, "bad JSON at line %d, column %d: %s", err.line, err.column, err.text);
	return root;
}

/* ---- entries -> addresses ------------------------------------------- */

static int fent_cmp(const void *x, const void *y)
{
	const struct fent *a = x, *b = y;
	int r = prefix_cmp(&a->p, &b->p);

	return r ? r : a->set < b->set ? -1 : a->set > b->set;
}

/* The group with ports v (merged), new if none is equal; the sets' ids
 * go to its id. */
static uint32_t group_of(struct feed_addrs *out, struct portrange *v, size_t n)
{
	for (size_t k = 0; k < out->ngrps; k++) {
		const struct feed_group *g = &out->grps[k];

		if (g->nports == n && !memcmp(g->ports, v, n * sizeof(*v))) {
			free(v);
			return (uint32_t)k;
		}
	}
	out->grps = xreallocarray(out->grps, out->ngrps + 1, sizeof(*out->grps));
	out->grps[out->ngrps] = (struct feed_group){ v, n, NULL };
	return (uint32_t)out->ngrps++;
}

/* Appends id to the group's id list ("11,12") unless there already. */
static void group_id(struct feed_group *g, uint32_t id)
{
	char num[16], *s;
	struct strbuf sb = { 0 };

	snprintf(num, sizeof(num), "%u", id);
	for (s = g->id; s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL)
		if (!strncmp(s, num, strlen(num)) && (s[strlen(num)] == ',' || !s[strlen(num)]))
			return;
	sb_addf(&sb, "%s%s%s", g->id ? g->id : "", g->id ? "," : "", num);
	free(g->id);
	g->id = sb.s;
}

/* Entries [i, j) share a prefix: one address on the union of their sets'
 * ports (FEED_ALL_PORTS if any entry is on all). */
static void emit(struct fctx *c, size_t i, size_t j, struct feed_addrs *out)
{
	port_vec v = { 0 };
	uint32_t grp = FEED_ALL_PORTS;

	if (c->ents.v[j - 1].set != NO_SET) {       /* NO_SET sorts last */
		for (size_t k = i; k < j; k++) {
			const struct fset *s = &c->sets.v[c->ents.v[k].set];

			for (size_t r = 0; r < s->nports; r++)
				VEC_PUSH(&v, s->ports[r]);
		}
		grp = group_of(out, v.v ? v.v : xcalloc(1, sizeof(*v.v)),
			       portranges_merge(v.v, v.n));
		for (size_t k = i; k < j; k++)
			group_id(&out->grps[grp], c->sets.v[c->ents.v[k].set].id);
	}
	out->v[out->n] = c->ents.v[i].p;
	out->grp[out->n++] = grp;
}

static bool finish(struct fctx *c, struct feed_addrs *out)
{
	size_t n = 0;

	if (c->ents.n)
		qsort(c->ents.v, c->ents.n, sizeof(*c->ents.v), fent_cmp);
	for (size_t i = 0; i < c->ents.n; i++)
		n += !i || prefix_cmp(&c->ents.v[i - 1].p, &c->ents.v[i].p);
	if (c->g && c->g->max_entries && n > c->g->max_entries) {
		FERR(c, "has %zu prefixes, more than guards.max_entries %u", n,
		     c->g->max_entries);
		return false;
	}
	out->v = xcalloc(n + 1, sizeof(*out->v));
	out->grp = xcalloc(n + 1, sizeof(*out->grp));
	for (size_t i = 0, j; i < c->ents.n; i = j) {
		for (j = i + 1; j < c->ents.n && !prefix_cmp(&c->ents.v[i].p, &c->ents.v[j].p); j++)
			;
		emit(c, i, j, out);
	}
	return true;
}

/* plain: list_parse(), every address on all the partner's ports. */
static bool parse_plain(struct fctx *c, const char *body, size_t len)
{
	struct addr_list l = { 0 };
	bool ok = list_parse(c->name, body, len, c->g, &l, c->d);

	for (size_t i = 0; ok && i < l.n; i++)
		VEC_PUSH(&c->ents, ((struct fent){ l.v[i], NO_SET }));
	addr_list_free(&l);     /* a refusal may leave room reserved */
	return ok;
}

bool feed_parse(const struct feed *f, const char *name, const char *body, size_t len,
		const struct guards *g, struct feed_addrs *out, struct diag *d)
{
	struct fctx c = { f, name, g, d, { name, 0, 0 }, { 0 }, { 0 } };
	json_t *root = NULL;
	bool ok = false;

	*out = (struct feed_addrs){ 0 };
	if (len > FEED_MAX_BODY) {
		FERR(&c, "feed larger than %u MiB", FEED_MAX_BODY >> 20);
		return false;
	}
	if ((unsigned)f->format >= FEED_FORMATS) {
		FERR(&c, "unknown feed format %d", (int)f->format);
		return false;
	}
	if (!formats[f->format].parse)
		ok = parse_plain(&c, body, len);
	else if ((root = load(&c, body, len)))
		ok = formats[f->format].parse(&c, root);
	ok = ok && finish(&c, out);
	json_decref(root);
	for (size_t i = 0; i < c.sets.n; i++)
		free(c.sets.v[i].ports);
	free(c.sets.v);
	free(c.ents.v);
	if (!ok)
		feed_addrs_free(out);
	return ok;
}

/* ---- the m365 version check ----------------------------------------- */

static bool version_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || strchr("._-", *s)))
			return false;
	return true;
}

bool feed_version_parse(const char *name, const char *body, size_t len, char **latest,
			struct diag *d)
{
	struct fctx c = { .name = name, .d = d, .at = { name, 0, 0 } };
	json_t *root, *v;
	bool ok = false;

	*latest = NULL;
	if (len > FEED_MAX_BODY) {
		FERR(&c, "version answer larger than %u MiB", FEED_MAX_BODY >> 20);
		return false;
	}
	if (!(root = load(&c, body, len)))
		return false;
	if (!json_is_object(root))
		FERR(&c, "expected an object with 'latest'");
	else if (!(v = json_object_get(root, "latest")) || !json_is_string(v))
		FERR(&c, "'latest' must be a string");
	else if (!version_ok(json_string_value(v)))
		FERR(&c, "bad 'latest' '%.64s': expected 1 to 64 letters, digits, '.', '_'"
		     " or '-'", json_string_value(v));
	else
		ok = (*latest = xstrdup(json_string_value(v))) != NULL;
	json_decref(root);
	return ok;
}

void feed_addrs_free(struct feed_addrs *a)
{
	for (size_t k = 0; k < a->ngrps; k++) {
		free(a->grps[k].ports);
		free(a->grps[k].id);
	}
	free(a->grps);
	free(a->v);
	free(a->grp);
	*a = (struct feed_addrs){ 0 };
}

void feed_addrs_push(const struct feed_addrs *a, const struct loc *at,
		     struct addr_list *l)
{
	addr_list_reserve(l, a->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct feed_group *g = a->grp[i] == FEED_ALL_PORTS ? NULL
									 : &a->grps[a->grp[i]];

		if (g)
			addr_list_push_ports(l, &a->v[i], at, g->ports, g->nports);
		else
			addr_list_push(l, &a->v[i], at);
	}
}
