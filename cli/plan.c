/* plan.c - `fedwall plan`: what apply would do, as a reviewed change:
 * per partner the addresses added and removed, and the structural
 * changes.  Exit 0: the kernel matches; 2: changes pending; 1: error;
 * 64: usage (2 is taken). */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USAGE "[-f POLICY] [--state-dir DIR] [--resolve] [--json] [-v]"
#define EXIT_PENDING 2
#define EXIT_PLAN_USAGE 64

/* One element change, grouped for printing. */
struct change {
	char *group;            /* partner name, or "" for a plain set */
	const char *set;
	bool add;
	char *elem;
	char *ports;            /* a port class map's ports, or NULL */
	char *dnssec;           /* the names whose DNSSEC-validated answers
				 * gave an added address, or NULL */
	char *fetched;          /* the list URLs and feeds that gave an added
				 * address, when fetched, with their validator,
				 * or NULL */
	struct prefix addr;     /* family 0: not an address element */
	char *services;         /* a partner's with addresses per service
				 * (partner_srv_scoped): the services of it
				 * the class serves, or NULL */
	size_t order;
};

/* One structural object change. */
struct objchange {
	const char *kind;       /* chain, set, map, counter */
	const char *name;
	bool add;
};

struct plan {
	const struct policy *p;
	VEC(struct change) ch;
	VEC(struct objchange) obj;
	size_t nadd, ndel;
};

static char *elem_text(const struct ir_set *s, const struct ir_elem *e)
{
	char buf[PREFIX_STRLEN];
	struct strbuf sb = { 0 };
	bool addr = s->key != IR_KEY_PROTO_PORT;
	bool port = s->key != IR_KEY_ADDR4 && s->key != IR_KEY_ADDR6;

	if (addr)
		sb_addf(&sb, "%s%s", prefix_fmt(&e->addr, buf, sizeof(buf)), port ? " . " : "");
	if (port) {
		sb_addf(&sb, "%s . %u", proto_name(e->port.proto), e->port.lo);
		if (e->port.hi != e->port.lo)
			sb_addf(&sb, "-%u", e->port.hi);
	}
	return sb.s;
}

typedef VEC(struct portrange) range_vec;

/* The port ranges of map `s`'s port class: the elements of the port
 * dispatch maps whose chain looks `s` up. */
static void class_ranges(const struct ir_ruleset *rs, const struct ir_set *s, range_vec *out)
{
	for (size_t i = 0; i < rs->nsets; i++) {
		const struct ir_set *d = &rs->sets[i];

		if (!d->is_map || d->key != IR_KEY_PROTO_PORT)
			continue;
		for (size_t k = 0; k < d->nelems; k++) {
			const struct ir_chain *c = d->elems[k].chain < rs->nchains
						   ? &rs->chains[d->elems[k].chain] : NULL;

			for (size_t j = 0; c && j < c->nrules; j++)
				if (c->rules[j].kind == IR_R_VMAP && c->rules[j].set &&
				    !strcmp(c->rules[j].set, s->name))
					VEC_PUSH(out, d->elems[k].port);
		}
	}
}

/* The ports a port dispatch map sends to the chain that looks up the
 * address map `s` ("tcp/443, tcp/5061"), or NULL: what an element of a
 * port class map admits. */
static char *class_ports(const struct ir_ruleset *rs, const struct ir_set *s)
{
	struct strbuf sb = { 0 };
	char buf[PORTRANGE_STRLEN];
	range_vec r = { 0 };

	class_ranges(rs, s, &r);
	for (size_t k = 0; k < r.n; k++)
		sb_addf(&sb, "%s%s", k ? ", " : "", portrange_fmt(&r.v[k], buf, sizeof(buf)));
	free(r.v);
	return sb.s;
}

static const struct partner *partner_named(const struct policy *p, const char *name)
{
	for (size_t i = 0; p && name && i < p->npartners; i++)
		if (!strcmp(p->partners[i].name, name))
			return &p->partners[i];
	return NULL;
}

static bool service_in_class(const struct ir_ruleset *rs, const struct ir_set *s,
			     const struct service *sv)
{
	range_vec r = { 0 };
	bool in = false;

	class_ranges(rs, s, &r);
	for (size_t k = 0; k < r.n && !in; k++)
		for (size_t q = 0; q < sv->nports && !in; q++)
			in = sv->ports[q].r.proto == r.v[k].proto &&
			     sv->ports[q].r.lo <= r.v[k].hi && r.v[k].lo <= sv->ports[q].r.hi;
	free(r.v);
	return in;
}

/* "xmpp-s2s": for a partner whose SRV targets count on some of its
 * services only (partner_srv_scoped), the services of it whose ports the
 * port class of map `s` holds, when not all of them; else NULL.  An
 * address the partner has on all its services is in each of its
 * classes; an SRV target of one kind only in those of its services. */
static char *class_services(const struct policy *p, const struct ir_ruleset *rs,
			    const struct ir_set *s, const char *partner)
{
	const struct partner *pt = partner_named(p, partner);
	struct strbuf sb = { 0 };
	size_t n = 0;

	if (!pt || !partner_srv_scoped(p, pt))
		return NULL;
	for (size_t i = 0; i < pt->nservices; i++) {
		const struct service *sv = &p->services[pt->services[i].idx];

		if (!service_in_class(rs, s, sv))
			continue;
		sb_addf(&sb, "%s%s", n++ ? ", " : "", sv->name);
	}
	if (n == pt->nservices || !n) {
		sb_free(&sb);
		return NULL;
	}
	return sb.s;
}

static void add_change(struct plan *pl, const struct ir_ruleset *rs, const struct ir_set *s,
		       const struct ir_elem *e, bool add)
{
	const char *partner = NULL;
	struct change c;

	if (s->is_map && e->chain < rs->nchains)
		partner = ir_chain_partner(rs->chains[e->chain].name);
	c.group = xstrdup(partner ? partner : "");
	c.set = s->name;
	c.add = add;
	c.elem = elem_text(s, e);
	c.ports = s->is_map && s->key != IR_KEY_PROTO_PORT ? class_ports(rs, s) : NULL;
	c.dnssec = NULL;
	c.fetched = NULL;
	c.addr = s->key != IR_KEY_PROTO_PORT ? e->addr : (struct prefix){ 0 };
	c.services = c.ports ? class_services(pl->p, rs, s, partner) : NULL;
	c.order = pl->ch.n;
	VEC_PUSH(&pl->ch, c);
	if (add)
		pl->nadd++;
	else
		pl->ndel++;
}

static int change_cmp(const void *x, const void *y)
{
	const struct change *a = x, *b = y;
	int c = strcmp(a->group, b->group);

	if (!c && !a->group[0])
		c = strcmp(a->set, b->set);
	if (!c)
		c = (int)a->add - (int)b->add;  /* removals first */
	if (!c)
		c = a->order < b->order ? -1 : a->order > b->order;
	return c;
}

static void objects(struct plan *pl, const struct ir_ruleset *from, const struct ir_ruleset *to,
		    bool add)
{
	for (size_t i = 0; i < to->nchains; i++)
		if (!from || !ir_find_chain(from, to->chains[i].name))
			VEC_PUSH(&pl->obj, ((struct objchange){ "chain", to->chains[i].name, add }));
	for (size_t i = 0; i < to->nsets; i++)
		if (!from || !ir_find_set(from, to->sets[i].name))
			VEC_PUSH(&pl->obj, ((struct objchange){ to->sets[i].is_map ? "map" : "set",
								to->sets[i].name, add }));
	for (size_t i = 0; i < to->ncounters; i++) {
		bool found = false;

		for (size_t j = 0; from && j < from->ncounters; j++)
			found |= !strcmp(from->counters[j].name, to->counters[i].name);
		if (!found)
			VEC_PUSH(&pl->obj, ((struct objchange){ "counter", to->counters[i].name,
								add }));
	}
}

static void plan_build(struct plan *pl, const struct ir_ruleset *live,
		       const struct ir_ruleset *want, const struct ir_diff *diff)
{
	for (size_t i = 0; i < diff->nsets; i++) {
		const struct ir_set_delta *sd = &diff->sets[i];
		const struct ir_set *old = live ? ir_find_set(live, sd->set->name) : NULL;

		for (size_t k = 0; k < sd->ndel && old; k++)
			add_change(pl, live, old, sd->del[k], false);
		for (size_t k = 0; k < sd->nadd; k++)
			add_change(pl, want, sd->set, sd->add[k], true);
	}
	/* `order` breaks every tie: the sort is deterministic. */
	if (pl->ch.n)
		qsort(pl->ch.v, pl->ch.n, sizeof(*pl->ch.v), change_cmp);
	if (diff->structural) {
		objects(pl, live, want, true);
		if (live)
			objects(pl, want, live, false);
	}
}

/* ---- which added addresses DNSSEC vouches for ---------------------------- */

static bool overlap(const struct prefix *a, const struct prefix *b)
{
	return a->family == b->family && (prefix_contains(a, b) || prefix_contains(b, a));
}

static ssize_t partner_idx(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->npartners; i++)
		if (!strcmp(p->partners[i].name, name))
			return (ssize_t)i;
	return -1;
}

/* The partner's names whose validated answers (the state's, as the
 * offline plan builds from it) hold an address of `c`: "www.a.example". */
static char *vouched(const struct policy *p, const struct srcset *s, const struct state *st,
		     int64_t now, const struct change *c)
{
	ssize_t pi = partner_idx(p, c->group);
	struct strbuf sb = { 0 };
	const char *last = NULL;

	for (size_t k = 0; pi >= 0 && k < s->n; k++) {
		const struct state_entry *e = s->v[k].partner == (size_t)pi
					      ? srcset_state_of(s, p, k, st, now) : NULL;
		bool hit = false;

		for (size_t j = 0; e && e->from == STATE_FROM_DNSSEC && j < e->naddrs; j++)
			hit |= overlap(&e->addrs[j], &c->addr);
		/* A name's A and AAAA sources (side by side): once. */
		if (!hit || (last && !strcmp(last, s->v[k].key)))
			continue;
		sb_addf(&sb, "%s%s", sb.s ? ", " : "", s->v[k].key);
		last = s->v[k].key;
	}
	return sb.s;
}

/* "https://x/l.txt (fetched 2026-12-07 23:00:00 UTC, ETag \"ab\")": the
 * list URLs and feeds of c's partner whose last known good holds an
 * address of c. */
static char *fetched_from(const struct policy *p, const struct srcset *s,
			  const struct state *st, int64_t now, const struct change *c)
{
	ssize_t pi = partner_idx(p, c->group);
	struct strbuf sb = { 0 };

	for (size_t k = 0; pi >= 0 && k < s->n; k++) {
		const struct state_entry *e = s->v[k].partner == (size_t)pi &&
					      s->v[k].kind >= STATE_URL
					      ? srcset_state_of(s, p, k, st, now) : NULL;
		bool hit = false;
		time_t t = e ? (time_t)e->fetched : 0;
		char when[32] = "never", *id = NULL;
		struct tm tm;

		for (size_t j = 0; e && j < e->naddrs; j++) {
			if (!overlap(&e->addrs[j], &c->addr))
				continue;
			hit = true;
			if (!id && e->grp)
				id = state_group_id(e->group_ids, e->grp[j]);
		}
		if (!hit)
			continue;
		if (t)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
		sb_addf(&sb, "%s%s (fetched %s", sb.s ? ", " : "", s->v[k].name, when);
		if (e->version)
			sb_addf(&sb, ", version %s", e->version);
		else if (e->etag)
			sb_addf(&sb, ", ETag %s", e->etag);
		else if (e->last_modified)
			sb_addf(&sb, ", Last-Modified %s", e->last_modified);
		if (id)
			sb_addf(&sb, ", entry %s", id);
		free(id);
		sb_addc(&sb, ')');
	}
	return sb.s;
}

static void plan_dnssec(struct plan *pl, const struct policy *p, const char *state_dir)
{
	struct strbuf path = { 0 };
	struct state st = { 0 };
	struct srcset s = { 0 };
	struct diag quiet;

	diag_init(&quiet, NULL);
	sb_addf(&path, "%s/%s", state_dir, STATE_FILE_NAME);
	(void)state_load(&st, sb_str(&path), &quiet);
	srcset_build(p, &s);
	for (size_t i = 0; i < pl->ch.n; i++) {
		struct change *c = &pl->ch.v[i];

		if (c->add && c->group[0] && c->addr.family) {
			c->dnssec = vouched(p, &s, &st, (int64_t)time(NULL), c);
			c->fetched = fetched_from(p, &s, &st, (int64_t)time(NULL), c);
		}
	}
	srcset_free(&s);
	state_free(&st);
	sb_free(&path);
}

static void plan_free(struct plan *pl)
{
	for (size_t i = 0; i < pl->ch.n; i++) {
		free(pl->ch.v[i].group);
		free(pl->ch.v[i].elem);
		free(pl->ch.v[i].ports);
		free(pl->ch.v[i].dnssec);
		free(pl->ch.v[i].fetched);
		free(pl->ch.v[i].services);
	}
	free(pl->ch.v);
	free(pl->obj.v);
}

static bool same_group(const struct change *a, const struct change *b)
{
	return !strcmp(a->group, b->group) && (a->group[0] || !strcmp(a->set, b->set));
}

static void print_text(const struct plan *pl, const struct ir_ruleset *want,
		       const struct ir_diff *diff, bool rebuild)
{
	if (ir_diff_empty(diff)) {
		printf("fedwall: table inet %s: no changes\n", want->table);
		return;
	}
	printf("table inet %s:\n", want->table);
	if (diff->structural) {
		printf("  replace the table in one transaction: %s\n", diff->why);
		for (size_t i = 0; i < pl->obj.n; i++)
			printf("    %c %s %s\n", pl->obj.v[i].add ? '+' : '-', pl->obj.v[i].kind,
			       pl->obj.v[i].name);
	} else if (rebuild) {
		printf("  rebuild a map and swap it in, in one transaction (counters kept):"
		       " deleting these elements one by one would cost the kernel more\n");
	}
	for (size_t i = 0; i < pl->ch.n; i++) {
		const struct change *c = &pl->ch.v[i];

		if (!i || !same_group(c, &pl->ch.v[i - 1])) {
			if (c->group[0])
				printf("  partner %s:\n", c->group);
			else
				printf("  set %s:\n", c->set);
		}
		printf("    %c %s", c->add ? '+' : '-', c->elem);
		if (c->group[0])
			printf("  (%s%s%s%s%s%s%s)", c->set, c->ports ? ": " : "",
			       c->ports ? c->ports : "", c->services ? " for " : "",
			       c->services ? c->services : "", c->dnssec ? "; validated by DNSSEC: " : "",
			       c->dnssec ? c->dnssec : "");
		if (c->fetched)
			printf("  from %s", c->fetched);
		printf("\n");
	}
	printf("%zu element%s to add, %zu to remove%s\n", pl->nadd, pl->nadd == 1 ? "" : "s",
	       pl->ndel, diff->structural ? "; counters restart from zero" : "");
}

static void json_elems(const struct plan *pl, const char *group, const char *set, bool add)
{
	bool first = true;

	printf("[");
	for (size_t i = 0; i < pl->ch.n; i++) {
		const struct change *c = &pl->ch.v[i];

		if (c->add != add || strcmp(c->group, group) || (set && strcmp(c->set, set)))
			continue;
		printf("%s{\"set\": ", first ? "" : ", ");
		json_str(stdout, c->set);
		printf(", \"element\": ");
		json_str(stdout, c->elem);
		if (c->ports) {
			printf(", \"ports\": ");
			json_str(stdout, c->ports);
		}
		if (c->dnssec) {
			printf(", \"dnssec\": ");
			json_str(stdout, c->dnssec);
		}
		if (c->fetched) {
			printf(", \"fetched_from\": ");
			json_str(stdout, c->fetched);
		}
		if (c->services) {
			printf(", \"services\": ");
			json_str(stdout, c->services);
		}
		printf("}");
		first = false;
	}
	printf("]");
}

static void json_groups(const struct plan *pl, bool partners)
{
	bool first = true;

	printf("{");
	for (size_t i = 0; i < pl->ch.n; i++) {
		const struct change *c = &pl->ch.v[i];
		const char *set = partners ? NULL : c->set;

		if (!c->group[0] == partners || (i && same_group(c, &pl->ch.v[i - 1])))
			continue;
		printf("%s", first ? "" : ", ");
		json_str(stdout, partners ? c->group : c->set);
		printf(": {\"add\": ");
		json_elems(pl, c->group, set, true);
		printf(", \"remove\": ");
		json_elems(pl, c->group, set, false);
		printf("}");
		first = false;
	}
	printf("}");
}

static void json_objs(const struct plan *pl, bool add)
{
	bool first = true;

	printf("[");
	for (size_t i = 0; i < pl->obj.n; i++) {
		if (pl->obj.v[i].add != add)
			continue;
		printf("%s{\"kind\": \"%s\", \"name\": ", first ? "" : ", ", pl->obj.v[i].kind);
		json_str(stdout, pl->obj.v[i].name);
		printf("}");
		first = false;
	}
	printf("]");
}

static void print_json(const struct plan *pl, const struct ir_ruleset *want,
		       const struct ir_diff *diff, bool rebuild)
{
	printf("{\"table\": ");
	json_str(stdout, want->table);
	printf(", \"changes\": %s, \"structural\": %s, \"why\": ",
	       ir_diff_empty(diff) ? "false" : "true", diff->structural ? "true" : "false");
	if (diff->why)
		json_str(stdout, diff->why);
	else
		printf("null");
	printf(", \"replace\": %s, \"rebuild\": %s, \"create\": ",
	       diff->structural ? "true" : "false", rebuild ? "true" : "false");
	json_objs(pl, true);
	printf(", \"delete\": ");
	json_objs(pl, false);
	printf(", \"partners\": ");
	json_groups(pl, true);
	printf(", \"sets\": ");
	json_groups(pl, false);
	printf(", \"add\": %zu, \"remove\": %zu}\n", pl->nadd, pl->ndel);
}

static int run(const struct common_opts *o, const struct policy *p,
	       const struct ir_ruleset *want, struct diag *d)
{
	struct engine_plan ep = { .want = want };
	struct plan pl = { .p = p };
	int rc;

	if (engine_plan(&ep, d))
		return EXIT_ERROR;
	plan_build(&pl, ep.live, want, &ep.diff);
	/* --resolve's answers are not in the state: it vouches for none. */
	if (!o->resolve)
		plan_dnssec(&pl, p, o->state_dir);
	if (o->json)
		print_json(&pl, want, &ep.diff, ep.rebuild);
	else
		print_text(&pl, want, &ep.diff, ep.rebuild);
	rc = ir_diff_empty(&ep.diff) ? EXIT_OK : EXIT_PENDING;
	plan_free(&pl);
	engine_plan_free(&ep);
	return rc;
}

int plan_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct engine_want w;
	struct ir_ruleset *want;
	struct policy *p;
	struct diag d;
	int i = common_parse(argc, argv, "fvjr", USAGE, &o), rc = EXIT_ERROR;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_PLAN_USAGE;
	diag_init(&d, stderr);
	w = (struct engine_want){ .policy = o.policy, .state_dir = o.state_dir,
				  .resolve = o.resolve };
	want = engine_want_build(&w, &d);
	p = w.p;
	if (p)
		ifaces_check(p, IFACE_NOTE, &d);
	if (want)
		rc = run(&o, p, want, &d);
	ir_free(want);
	policy_free(p);
	return rc;
}
