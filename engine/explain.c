/* explain.c - why an address is admitted or dropped (`fedwall explain`):
 * what a ruleset does with it (the table's part: read from the IR alone,
 * so that the table the policy makes and the live one are asked the same
 * way) and where the policy and its sources name it (the provenance: the
 * policy's line, the list's lines, the DNS name or SRV record, when it
 * was last confirmed), which no table keeps.
 */
#include "engine/engine.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the table's part --------------------------------------------------- */

static bool port_in(const struct portrange *r, const struct portrange *want)
{
	return !want || (r->proto == want->proto && r->lo <= want->lo && want->lo <= r->hi);
}

static void admit_push(struct explain_table *t, const struct explain_admit *a)
{
	VEC_PUSH(t, *a);
}

/* The address maps the port class chain `c` looks up (one per family and
 * field): each element holding the address admits it on `port`. */
static void class_admits(const struct ir_ruleset *rs, const struct ir_chain *c,
			 const struct portrange *port, const struct prefix *addr,
			 struct explain_table *t)
{
	for (size_t i = 0; i < c->nrules; i++) {
		const struct ir_rule *r = &c->rules[i];
		const struct ir_set *m = r->kind == IR_R_VMAP && r->family == addr->family &&
					 r->set ? ir_find_set(rs, r->set) : NULL;
		const struct ir_elem *e = m ? ir_set_lookup(m, addr->family, addr->a, 0, 0) : NULL;
		const char *who = e && e->chain < rs->nchains
				  ? ir_chain_partner(rs->chains[e->chain].name) : NULL;

		if (who)
			admit_push(t, &(struct explain_admit){ EXPLAIN_BY_PARTNER, r->field == IR_SADDR,
							       who, m->name, e->addr, *port });
	}
}

/* A port dispatch map (inet_proto . inet_service : jump edge_in_N): each
 * port range it sends to a class chain whose map holds the address. */
static void dispatch_admits(const struct ir_ruleset *rs, const struct ir_set *s,
			    const struct prefix *addr, const struct portrange *want,
			    struct explain_table *t)
{
	for (size_t k = 0; s && k < s->nelems; k++)
		if (s->elems[k].chain < rs->nchains && port_in(&s->elems[k].port, want))
			class_admits(rs, &rs->chains[s->elems[k].chain], &s->elems[k].port,
				     addr, t);
}

/* A plain address . proto . port set (management inbound, an outbound
 * allowance): each element whose prefix holds the address. */
static void lookup_admits(const struct ir_set *s, const struct ir_rule *r,
			  const struct prefix *addr, const struct portrange *want,
			  struct explain_table *t)
{
	bool in = r->field == IR_SADDR;

	for (size_t k = 0; s && k < s->nelems; k++) {
		const struct ir_elem *e = &s->elems[k];

		if (prefix_contains(&e->addr, addr) && port_in(&e->port, want))
			admit_push(t, &(struct explain_admit){ in ? EXPLAIN_BY_MGMT : EXPLAIN_BY_ALLOW, in,
							       NULL, s->name, e->addr, e->port });
	}
}

/* The HA pair's rule `r` (ha_in: peers' VRRP or conntrackd datagrams;
 * not ha_out's, which let this node's own out) whose peer set holds the
 * address; with `want`, only conntrackd's port. */
static void ha_admits(const struct ir_set *s, const struct ir_rule *r,
		      const struct prefix *addr, const struct portrange *want,
		      struct explain_table *t)
{
	struct portrange pr = { r->l4proto, r->dport, r->dport };
	const struct ir_elem *e = s ? ir_set_lookup(s, addr->family, addr->a, 0, 0) : NULL;

	if (e && (!want || (r->dport && port_in(&pr, want))))
		admit_push(t, &(struct explain_admit){ EXPLAIN_BY_HA, true, NULL, s->name,
						       e->addr, pr });
}

/* The HA pair's drop of `port` (conntrackd's, from anybody not a peer). */
static const char *ha_drop(const struct ir_ruleset *rs, const struct portrange *port)
{
	const struct ir_chain *c = ir_find_chain(rs, "ha_in");

	for (size_t i = 0; c && port && i < c->nrules; i++) {
		const struct ir_rule *r = &c->rules[i];

		if (r->kind == IR_R_PROTO && r->verdict == IR_DROP && r->dport &&
		    r->l4proto == port->proto && r->dport == port->lo)
			return r->target;
	}
	return NULL;
}

/* The last drop of `chain` that counts: what drops a new connection that
 * nothing before it admitted; *ports gets the set of ports it is limited
 * to (NULL: every port). */
static const char *drop_rule(const struct ir_ruleset *rs, const char *chain,
			     const struct ir_set **ports)
{
	const struct ir_chain *c = ir_find_chain(rs, chain);
	const char *name = NULL;

	*ports = NULL;
	for (size_t i = 0; c && i < c->nrules; i++) {
		const struct ir_rule *r = &c->rules[i];

		if (r->kind != IR_R_COUNTER || r->verdict != IR_DROP || !r->target)
			continue;
		name = r->target;
		*ports = r->set ? ir_find_set(rs, r->set) : NULL;
	}
	return name;
}

static bool admit_none(const struct explain_table *t, bool in)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].inbound == in)
			return false;
	return true;
}

void explain_table(const struct ir_ruleset *rs, const struct prefix *addr,
		   const struct portrange *port, struct explain_table *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; rs && i < rs->nchains; i++) {
		for (size_t j = 0; j < rs->chains[i].nrules; j++) {
			const struct ir_rule *r = &rs->chains[i].rules[j];
			const struct ir_set *s = r->set ? ir_find_set(rs, r->set) : NULL;

			if (r->kind == IR_R_PORT_VMAP)
				dispatch_admits(rs, s, addr, port, t);
			else if (r->kind == IR_R_LOOKUP && r->family == addr->family)
				lookup_admits(s, r, addr, port, t);
			else if (r->kind == IR_R_PROTO && r->set && r->verdict == IR_ACCEPT &&
				 r->field == IR_SADDR && r->family == addr->family)
				ha_admits(s, r, addr, port, t);
		}
	}
	if (!rs)
		return;
	t->drop_in = admit_none(t, true) ? drop_rule(rs, "edge_in", &t->drop_in_ports) : NULL;
	t->drop_in_chain = "edge_in";
	if (admit_none(t, true) && ha_drop(rs, port)) {
		t->drop_in = ha_drop(rs, port);
		t->drop_in_ports = NULL;
		t->drop_in_chain = "ha_in";
	}
	t->drop_out = admit_none(t, false) ? drop_rule(rs, "edge_out", &t->drop_out_ports) : NULL;
	/* An outbound connection to a port nobody restricts is the edge's
	 * own business: not dropped, and nothing of the address's. */
	if (t->drop_out && port && t->drop_out_ports &&
	    !ir_set_lookup(t->drop_out_ports, 0, NULL, port->proto, port->lo))
		t->drop_out = NULL;
}

void explain_table_free(struct explain_table *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static bool admit_same(const struct explain_admit *a, const struct explain_admit *b)
{
	return a->via == b->via && a->inbound == b->inbound &&
	       !strcmp(a->partner ? a->partner : "", b->partner ? b->partner : "") &&
	       !portrange_cmp(&a->port, &b->port) && !prefix_cmp(&a->elem, &b->elem);
}

static bool admits_within(const struct explain_table *a, const struct explain_table *b)
{
	for (size_t i = 0; i < a->n; i++) {
		size_t k = 0;

		while (k < b->n && !admit_same(&a->v[i], &b->v[k]))
			k++;
		if (k == b->n)
			return false;
	}
	return true;
}

bool explain_tables_agree(const struct explain_table *a, const struct explain_table *b)
{
	return admits_within(a, b) && admits_within(b, a);
}

bool explain_admitted(const struct explain_table *t, const struct explain_admit *a)
{
	for (size_t i = 0; i < t->n; i++)
		if (admit_same(&t->v[i], a))
			return true;
	return false;
}

/* ---- the provenance ------------------------------------------------------ */

static void src_push(struct explain_sources *out, const struct explain_source *x)
{
	VEC_PUSH(out, *x);
}

/* What the policy names itself: partners' inline addresses, management
 * sources, outbound allowances. */
static void policy_sources(const struct policy *p, const struct prefix *addr,
			   int64_t now, struct explain_sources *out)
{
	for (size_t i = 0; i < p->npartners; i++)
		for (size_t k = 0; k < p->partners[i].naddresses; k++) {
			const struct addr_ent *a = &p->partners[i].addresses[k];

			if (prefix_contains(&a->p, addr))
				src_push(out, &(struct explain_source){ .kind = EXPLAIN_INLINE,
					.partner = i, .at = a->loc, .line = a->loc, .prefix = a->p,
					.status = "inline", .counts = true, .confirmed = now });
		}
	for (size_t i = 0; i < p->nmanagement; i++)
		for (size_t k = 0; k < p->management[i].nfrom; k++) {
			const struct addr_ent *a = &p->management[i].from[k];

			if (prefix_contains(&a->p, addr))
				src_push(out, &(struct explain_source){ .kind = EXPLAIN_MGMT,
					.partner = SIZE_MAX, .at = a->loc, .line = a->loc,
					.prefix = a->p, .status = "inline", .counts = true,
					.confirmed = now, .entry = i });
		}
	for (size_t k = 0; k < p->ha.npeers; k++)
		if (prefix_contains(&p->ha.peers[k].p, addr))
			src_push(out, &(struct explain_source){ .kind = EXPLAIN_HA,
				.partner = SIZE_MAX, .at = p->ha.peers[k].loc,
				.line = p->ha.peers[k].loc, .prefix = p->ha.peers[k].p,
				.status = "inline", .counts = true, .confirmed = now });
	for (size_t i = 0; i < p->noutallow; i++)
		for (size_t k = 0; k < p->outallow[i].nto; k++) {
			const struct addr_ent *a = &p->outallow[i].to[k];

			if (prefix_contains(&a->p, addr))
				src_push(out, &(struct explain_source){ .kind = EXPLAIN_ALLOW,
					.partner = SIZE_MAX, .at = a->loc, .line = a->loc,
					.prefix = a->p, .status = "inline", .counts = true,
					.confirmed = now, .entry = i });
		}
}

static const char *status_word(const struct src *x)
{
	switch (x->status) {
	case SRC_FRESH:
		return x->kind == STATE_LIST ? "read now"
		       : x->kind != STATE_URL ? "confirmed now"
		       : x->not_modified ? "confirmed now (not modified)" : "fetched now";
	case SRC_KEPT:
		return "last known good";
	case SRC_STALE:
		return "stale (dropped)";
	case SRC_DROPPED:
		return "stale (dropped earlier, until it answers again)";
	case SRC_UNKNOWN:
		return "never confirmed";
	default:
		return "not counting";
	}
}

/* The prefix of source x that holds the address, or NULL. */
static const struct prefix *src_covers(const struct src *x, const struct prefix *addr)
{
	for (size_t i = 0; i < x->naddrs; i++)
		if (prefix_contains(&x->addrs[i], addr))
			return &x->addrs[i];
	return NULL;
}

/* A URL's or a feed's: when fetched, the validator in use, and the
 * feed's own ports for the prefix. */
static void fetch_facts(const struct src *x, const struct prefix *cover,
			struct explain_source *e)
{
	struct strbuf sb = { 0 };
	size_t i = (size_t)(cover - x->addrs);
	char *id;

	e->fetched = x->fetched;
	if (x->version)
		sb_addf(&sb, "version %s", x->version);
	else if (x->etag)
		sb_addf(&sb, "ETag %s", x->etag);
	else if (x->last_modified)
		sb_addf(&sb, "Last-Modified %s", x->last_modified);
	e->validator = sb.s;
	if (!x->grp || i >= x->naddrs || !x->grp[i])
		return;
	sb = (struct strbuf){ 0 };
	for (size_t k = 0; k < x->groups[x->grp[i] - 1].n; k++) {
		char pb[PORTRANGE_STRLEN];

		sb_addf(&sb, "%s%s", k ? ", " : "",
			portrange_fmt(&x->groups[x->grp[i] - 1].v[k], pb, sizeof(pb)));
	}
	id = state_group_id(x->group_ids, x->grp[i]);
	if (id)
		sb_addf(&sb, " (feed entry %s)", id);
	free(id);
	e->ports = sb.s;
}

static struct explain_source from_src(const struct src *x, const struct prefix *cover)
{
	struct explain_source e = {
		.kind = x->kind == STATE_LIST ? EXPLAIN_LIST : x->kind == STATE_URL ? EXPLAIN_URL
			: x->kind == STATE_FEED ? EXPLAIN_FEED
			: x->kind == STATE_DOMAIN ? EXPLAIN_SRV : EXPLAIN_HOST,
		.partner = x->partner, .name = x->name, .at = x->loc, .line = x->loc,
		.prefix = *cover, .status = status_word(x), .counts = src_contributes(x),
		.dnssec = x->from == STATE_FROM_DNSSEC, .ttl = x->ttl,
		.confirmed = x->kind == STATE_LIST ? x->mtime : x->confirmed,
	};

	if (x->kind == STATE_DOMAIN) {
		e.record = xstrdup(x->key);
		e.service = x->service;
		e.scope = x->scope;
	}
	if (x->kind == STATE_URL || x->kind == STATE_FEED)
		fetch_facts(x, cover, &e);
	return e;
}

/* Every line of list x that covers the address, read again: the sources
 * keep one line per prefix (duplicates go) and none when the list was not
 * read now.  False when the file gives none. */
static bool list_lines(const struct src *x, const struct prefix *addr,
		       struct explain_sources *out)
{
	struct addr_list l = { 0 };
	struct diag quiet;
	size_t before = out->n;

	diag_init(&quiet, NULL);
	if (!list_read(x->name, NULL, &l, &quiet))
		return false;
	for (size_t i = 0; i < l.n; i++) {
		struct explain_source e;

		if (!prefix_contains(&l.v[i], addr))
			continue;
		e = from_src(x, &l.v[i]);
		e.line = l.locs[i];
		src_push(out, &e);
	}
	addr_list_free(&l);
	return out->n > before;
}

void explain_sources(const struct policy *p, const struct srcset *s, const struct prefix *addr,
		     int64_t now, struct explain_sources *out)
{
	memset(out, 0, sizeof(*out));
	policy_sources(p, addr, now, out);
	for (size_t i = 0; s && i < s->n; i++) {
		const struct src *x = &s->v[i];
		const struct prefix *cover = src_covers(x, addr);
		struct explain_source e;

		if (!cover)
			continue;
		if (x->kind == STATE_LIST && list_lines(x, addr, out))
			continue;
		e = from_src(x, cover);

		src_push(out, &e);
	}
}

void explain_sources_free(struct explain_sources *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].record);
		free(s->v[i].validator);
		free(s->v[i].ports);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

bool explain_backed(const struct policy *p, const struct explain_sources *s,
		    const struct explain_admit *a)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct explain_source *x = &s->v[i];

		if (!x->counts || !prefix_overlaps(&x->prefix, &a->elem))
			continue;
		if (a->via == EXPLAIN_BY_PARTNER && x->partner < p->npartners &&
		    !strcmp(p->partners[x->partner].name, a->partner))
			return true;
		if (a->via == EXPLAIN_BY_MGMT && x->kind == EXPLAIN_MGMT)
			return true;
		if (a->via == EXPLAIN_BY_ALLOW && x->kind == EXPLAIN_ALLOW)
			return true;
		if (a->via == EXPLAIN_BY_HA && x->kind == EXPLAIN_HA)
			return true;
	}
	return false;
}

static bool partner_admits(const struct explain_table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].partner && !strcmp(t->v[i].partner, name))
			return true;
	return false;
}

static bool partner_counts(const struct explain_sources *s, size_t i)
{
	for (size_t k = 0; k < s->n; k++)
		if (s->v[k].partner == i && s->v[k].counts)
			return true;
	return false;
}

static bool partner_port(const struct policy *p, size_t i, const struct portrange *port)
{
	const struct partner *pt = &p->partners[i];

	for (size_t k = 0; k < pt->nservices; k++) {
		const struct service *sv = &p->services[pt->services[k].idx];

		for (size_t j = 0; j < sv->nports; j++)
			if (port_in(&sv->ports[j].r, port))
				return true;
	}
	return false;
}

/* Whether a source of partner i that counts and names the address
 * counts on `port`: an SRV source of a kind scoped to some services
 * (partner_srv_scoped) on those services' ports only. */
static bool scoped_port(const struct engine_explain *e, size_t i, const struct portrange *port)
{
	const struct partner *pt = &e->p->partners[i];

	for (size_t k = 0; k < e->sources.n; k++) {
		const struct explain_source *x = &e->sources.v[k];

		if (x->partner != i || !x->counts)
			continue;
		if (!x->scope)
			return true;
		for (size_t q = 0; q < pt->nservices; q++) {
			const struct service *sv = &e->p->services[pt->services[q].idx];

			if (!(service_srv(sv->name) & x->scope))
				continue;
			for (size_t j = 0; j < sv->nports; j++)
				if (port_in(&sv->ports[j].r, port))
					return true;
		}
	}
	return false;
}

const char *explain_partner_why(const struct engine_explain *e, size_t i)
{
	const struct portrange *port = e->has_port ? &e->port : NULL;

	if (partner_admits(&e->table, e->p->partners[i].name))
		return NULL;
	if (!partner_counts(&e->sources, i))
		return "what names it does not count now (stale, or never confirmed)";
	if (port && !partner_port(e->p, i, port))
		return "the port is none of its services' ports";
	if (port && !scoped_port(e, i, port))
		return "an SRV record gave it, and the port is none of the ports of that"
		       " record's services (addresses per service)";
	if (e->from_live && !partner_admits(&e->policy_table, e->p->partners[i].name))
		return "the live table does not hold it, nor would the policy's";
	if (e->from_live)
		return "the live table does not hold it (the policy's would: fedwall apply)";
	return "another partner owns the address on these ports (the longer prefix wins,"
	       " then the name that sorts first)";
}

/* ---- the whole question ---------------------------------------------------- */

/* The policy's sources as plan and generate see them: list files read
 * now, host names and SRV domains from the state directory.  Their
 * warnings were given by engine_want_build already. */
static void fill_sources(struct engine_explain *e, struct srcset *s)
{
	struct src_opts o = { .strict_lists = true, .now = e->now };
	struct strbuf path = { 0 };
	struct state st = { 0 };
	struct diag quiet;

	diag_init(&quiet, NULL);
	sb_addf(&path, "%s/%s", e->state_dir, STATE_FILE_NAME);
	(void)state_load(&st, sb_str(&path), &quiet);
	srcset_build(e->p, s);
	for (size_t i = 0; i < s->n; i++)
		s->v[i].due = s->v[i].kind == STATE_LIST;
	(void)srcset_fill(e->p, s, &st, &o, &quiet);
	state_free(&st);
	sb_free(&path);
}

static int read_live(struct engine_explain *e, struct diag *d)
{
	struct nft_ctx *ctx;
	uint32_t genid;
	int ret = nft_open(&ctx);

	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
		return ret;
	}
	ret = nft_read(ctx, e->p->table, &e->live, &genid);
	if (ret == -ENOENT)
		diag_error(d, NULL, "table inet %s is not loaded: fedwall filters nothing",
			   e->p->table);
	else if (ret)
		diag_error(d, NULL, "cannot read table inet %s: %s", e->p->table, strerror(-ret));
	nft_close(ctx);
	return ret;
}

/* The table plan would build.  Its warnings (overlaps, names not
 * resolved yet) are plan's and check's to give, about the whole policy:
 * here they are shown only when it was refused, with the errors. */
static struct ir_ruleset *build_want(struct engine_explain *e, struct diag *d)
{
	struct engine_want w = { .policy = e->policy, .state_dir = e->state_dir };
	struct ir_ruleset *rs;
	struct diag mem;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	diag_init(&mem, f ? f : d->out);
	rs = engine_want_build(&w, &mem);
	e->p = w.p;
	if (f)
		fclose(f);
	if (!rs && d->out && len)
		fwrite(buf, 1, len, d->out);
	d->errors += mem.errors;
	free(buf);
	return rs;
}

int engine_explain(struct engine_explain *e, struct diag *d)
{
	const struct portrange *port = e->has_port ? &e->port : NULL;
	struct srcset s = { 0 };
	int ret;

	e->p = NULL;
	e->want = e->live = NULL;
	memset(&e->table, 0, sizeof(e->table));
	memset(&e->policy_table, 0, sizeof(e->policy_table));
	memset(&e->sources, 0, sizeof(e->sources));
	if (!e->now)
		e->now = (int64_t)time(NULL);
	e->want = build_want(e, d);
	if (!e->want)
		return -EINVAL;
	if (e->from_live && (ret = read_live(e, d)))
		return ret;
	explain_table(e->want, &e->addr, port, &e->policy_table);
	explain_table(e->from_live ? e->live : e->want, &e->addr, port, &e->table);
	fill_sources(e, &s);
	explain_sources(e->p, &s, &e->addr, e->now, &e->sources);
	srcset_free(&s);
	return 0;
}

void engine_explain_free(struct engine_explain *e)
{
	explain_table_free(&e->table);
	explain_table_free(&e->policy_table);
	explain_sources_free(&e->sources);
	ir_free(e->live);
	ir_free(e->want);
	policy_free(e->p);
	e->live = e->want = NULL;
	e->p = NULL;
}
