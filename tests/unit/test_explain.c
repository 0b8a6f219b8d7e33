/* test_explain.c - engine/explain.c without root: what a generated table
 * does with one address (partner maps by port class and direction,
 * management, allowances, the longer prefix of an overlap, the dropping
 * rule and the ports it is limited to), a table changed by hand compared
 * with the policy's, where the policy and its sources name an address
 * (inline lines, every list line that covers it, host names and SRV
 * records with when they were confirmed, stale ones not counting), why a
 * partner that is named does not admit, and the whole question offline
 * from a policy file, a list file and an empty state directory. */
#define _GNU_SOURCE
#include "../harness.h"
#include "fixture.h"

#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <stdlib.h>
#include <unistd.h>

static const char POL[] =
	"version: 1\n"
	"partners:\n"
	"  alpha:\n"
	"    services: [sip-federation]\n"
	"    addresses: [198.51.100.11, 198.51.100.0/24]\n"
	"  bravo:\n"
	"    services: [xmpp-s2s]\n"
	"    direction: inbound\n"
	"    addresses: [198.51.100.12]\n"
	"management:\n"
	"  - {from: 192.0.2.0/24, to: tcp/22}\n"
	"outbound:\n"
	"  allow:\n"
	"    - {to: [203.0.113.50], ports: [tcp/5061]}\n";

static struct prefix addr(const char *s)
{
	struct prefix p;

	CHECK(prefix_parse(s, &p) == PREFIX_OK);
	return p;
}

static struct portrange port(const char *s)
{
	struct portrange r;

	CHECK(portrange_parse(s, &r) == PORT_OK);
	return r;
}

static size_t count(const struct explain_table *t, enum explain_via via, bool in,
		    const char *partner)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		n += t->v[i].via == via && t->v[i].inbound == in &&
		     (!partner || (t->v[i].partner && !strcmp(t->v[i].partner, partner)));
	return n;
}

TEST(partner_both_directions)
{
	struct ir_ruleset *rs = fixture_generate("p.yaml", POL);
	struct prefix a = addr("198.51.100.11");
	struct explain_table t;
	char buf[PORTRANGE_STRLEN];

	explain_table(rs, &a, NULL, &t);
	CHECK_INT(count(&t, EXPLAIN_BY_PARTNER, true, "alpha"), 1);
	CHECK_INT(count(&t, EXPLAIN_BY_PARTNER, false, "alpha"), 1);
	CHECK_INT(t.n, 2);
	CHECK_STR(portrange_fmt(&t.v[0].port, buf, sizeof(buf)), "tcp/5061");
	CHECK_INT(t.v[0].elem.len, 24);      /* .11 merged into the /24 */
	CHECK(t.drop_in == NULL && t.drop_out == NULL);
	explain_table_free(&t);
	ir_free(rs);
}

TEST(longer_prefix_and_port)
{
	struct ir_ruleset *rs = fixture_generate("p.yaml", POL);
	struct prefix a = addr("198.51.100.12");
	struct portrange xmpp = port("tcp/5269"), sip = port("tcp/5061");
	struct explain_table t;

	/* alpha's /24 on 5061, bravo's own address on 5269 */
	explain_table(rs, &a, &xmpp, &t);
	CHECK_INT(t.n, 1);
	CHECK_INT(count(&t, EXPLAIN_BY_PARTNER, true, "bravo"), 1);
	CHECK(t.drop_out != NULL);      /* bravo is inbound only; 5269 restricts */
	CHECK_STR(t.drop_out, "dropped_out");
	explain_table_free(&t);
	explain_table(rs, &a, &sip, &t);
	CHECK_INT(count(&t, EXPLAIN_BY_PARTNER, true, "alpha"), 1);
	CHECK_INT(count(&t, EXPLAIN_BY_PARTNER, true, "bravo"), 0);
	CHECK_INT(t.v[0].elem.len, 24);
	explain_table_free(&t);
	ir_free(rs);
}

TEST(management_allowance_stranger)
{
	struct ir_ruleset *rs = fixture_generate("p.yaml", POL);
	struct prefix m = addr("192.0.2.22"), al = addr("203.0.113.50"), s = addr("203.0.113.99");
	struct portrange ssh = port("tcp/22"), web = port("tcp/443"), sip = port("tcp/5061");
	struct explain_table t;

	explain_table(rs, &m, &ssh, &t);
	CHECK_INT(count(&t, EXPLAIN_BY_MGMT, true, NULL), 1);
	CHECK_STR(t.v[0].set, "mgmt4");
	explain_table_free(&t);
	explain_table(rs, &m, &sip, &t);
	CHECK_INT(t.n, 0);
	CHECK_STR(t.drop_in, "dropped_in");
	explain_table_free(&t);
	explain_table(rs, &al, NULL, &t);
	CHECK_INT(count(&t, EXPLAIN_BY_ALLOW, false, NULL), 1);
	CHECK_STR(t.drop_in, "dropped_in");
	CHECK(t.drop_out == NULL);
	explain_table_free(&t);
	explain_table(rs, &s, NULL, &t);
	CHECK_INT(t.n, 0);
	CHECK_STR(t.drop_in, "dropped_in");
	CHECK_STR(t.drop_out, "dropped_out");
	CHECK(t.drop_out_ports != NULL && t.drop_out_ports->nelems == 2);
	CHECK(t.drop_in_ports == NULL);
	explain_table_free(&t);
	/* a port nobody restricts: the edge calls anybody there */
	explain_table(rs, &s, &web, &t);
	CHECK_INT(t.n, 0);
	CHECK(t.drop_out == NULL);
	CHECK_STR(t.drop_in, "dropped_in");
	explain_table_free(&t);
	explain_table(NULL, &s, NULL, &t);
	CHECK(t.n == 0 && !t.drop_in && !t.drop_out);
	explain_table_free(&t);
	ir_free(rs);
}

/* The HA pair: a peer is admitted on VRRP and conntrackd's port (by
 * ha4), anybody else's datagram to that port is dropped by ha_in
 * (dropped_ha), and the policy's peers name the address. */
TEST(ha_peer_and_stranger)
{
	static const char pol[] = "version: 1\n"
		"partners:\n  alpha: {services: [sip-federation], addresses: [198.51.100.11]}\n"
		"ha: {peers: [192.0.2.1, 192.0.2.2], vrrp: true, conntrackd: udp/3780}\n";
	struct ir_ruleset *rs = fixture_generate("p.yaml", pol);
	struct prefix peer = addr("192.0.2.2"), s = addr("198.51.100.99");
	struct portrange sync = port("udp/3780"), sip = port("tcp/5061");
	struct explain_table t;

	explain_table(rs, &peer, NULL, &t);
	CHECK_INT(count(&t, EXPLAIN_BY_HA, true, NULL), 2);         /* vrrp, udp/3780 */
	CHECK_STR(t.v[0].set, "ha4");
	explain_table_free(&t);
	explain_table(rs, &peer, &sync, &t);
	CHECK_INT(t.n, 1);
	CHECK_INT(t.v[0].port.lo, 3780);
	explain_table_free(&t);
	explain_table(rs, &s, &sync, &t);
	CHECK_INT(t.n, 0);
	CHECK_STR(t.drop_in, "dropped_ha");
	CHECK_STR(t.drop_in_chain, "ha_in");
	explain_table_free(&t);
	explain_table(rs, &s, &sip, &t);
	CHECK_STR(t.drop_in, "dropped_in");
	CHECK_STR(t.drop_in_chain, "edge_in");
	explain_table_free(&t);
	ir_free(rs);
}

/* An element added to a copy of the table (as `nft add element` does to
 * the live one): admitted there, and the two tables disagree. */
TEST(element_added_by_hand)
{
	struct ir_ruleset *rs = fixture_generate("p.yaml", POL), *live = ir_dup(rs);
	struct prefix s = addr("203.0.113.99");
	struct ir_set *m = NULL;
	const struct ir_chain *in = ir_find_chain(live, "in_bravo");
	struct explain_table t, want;

	for (size_t i = 0; i < live->nsets; i++)
		if (!strcmp(live->sets[i].name, "in4_2"))
			m = &live->sets[i];
	CHECK(m != NULL && in != NULL);
	if (!m || !in)
		goto out_free;
	m->elems = xreallocarray(m->elems, m->nelems + 1, sizeof(*m->elems));
	m->elems[m->nelems++] = (struct ir_elem){ .addr = s,
						  .chain = (uint32_t)(in - live->chains) };
	qsort(m->elems, m->nelems, sizeof(*m->elems),
	      (int (*)(const void *, const void *))ir_elem_cmp);
	explain_table(live, &s, NULL, &t);
	explain_table(rs, &s, NULL, &want);
	CHECK_INT(count(&t, EXPLAIN_BY_PARTNER, true, "bravo"), 1);
	CHECK_INT(want.n, 0);
	CHECK(!explain_tables_agree(&t, &want));
	CHECK(explain_tables_agree(&want, &want));
	CHECK(t.n && !explain_admitted(&want, &t.v[0]));
	explain_table_free(&t);
	explain_table_free(&want);
out_free:
	ir_free(live);
	ir_free(rs);
}

struct tmp {
	char dir[40];
	char list[80], pol[80];
};

static bool tmp_make(struct tmp *t, const char *list)
{
	FILE *f;

	snprintf(t->dir, sizeof(t->dir), "/tmp/test_explain.XXXXXX");
	if (!mkdtemp(t->dir))
		return false;
	snprintf(t->list, sizeof(t->list), "%s/l.txt", t->dir);
	snprintf(t->pol, sizeof(t->pol), "%s/p.yaml", t->dir);
	f = fopen(t->list, "w");
	if (!f)
		return false;
	fputs(list, f);
	fclose(f);
	f = fopen(t->pol, "w");
	if (!f)
		return false;
	fprintf(f, "version: 1\npartners:\n  alpha:\n    services: [sip-federation]\n"
		"    addresses: [198.51.100.11]\n    lists: [%s]\n"
		"    hosts: [sip.example.test]\n    domains: [example.test]\n"
		"  bravo:\n    services: [xmpp-s2s]\n    direction: inbound\n"
		"    hosts: [old.example.test]\n", t->list);
	fclose(f);
	return true;
}

static void tmp_remove(struct tmp *t)
{
	char path[80];

	unlink(t->list);
	unlink(t->pol);
	snprintf(path, sizeof(path), "%s/state", t->dir);
	unlink(path);
	rmdir(t->dir);
}

/* Source k of `s` answered with `a` at `when` (what srcset_fill leaves). */
static void answered(struct srcset *s, const char *key, const char *a, enum src_status st,
		     int64_t when)
{
	for (size_t i = 0; i < s->n; i++) {
		/* a name's A source, when it has two, comes first */
		if (strcmp(s->v[i].key, key))
			continue;
		free(s->v[i].addrs);
		s->v[i].addrs = xmalloc(sizeof(*s->v[i].addrs));
		s->v[i].addrs[0] = addr(a);
		s->v[i].naddrs = 1;
		s->v[i].status = st;
		s->v[i].confirmed = when;
		return;
	}
	CHECK(!"no such source");
}

static const struct explain_source *find(const struct explain_sources *x, enum explain_kind k,
					 unsigned line)
{
	for (size_t i = 0; i < x->n; i++)
		if (x->v[i].kind == k && (!line || x->v[i].line.line == line))
			return &x->v[i];
	return NULL;
}

TEST(sources_provenance)
{
	struct tmp t;
	struct diag d;
	struct policy *p;
	struct srcset s = { 0 };
	struct explain_sources x;
	struct prefix a = addr("198.51.100.11"), other = addr("198.51.100.99");
	const struct explain_source *e;

	diag_init(&d, stderr);
	if (!tmp_make(&t, "# list\n198.51.100.11\n198.51.100.0/28\n\n198.51.100.11\n")) {
		CHECK(!"tmp");
		return;
	}
	p = policy_load(t.pol, &d);
	CHECK(p != NULL);
	if (!p)
		goto out_tmp;
	srcset_build(p, &s);
	answered(&s, t.list, "198.51.100.0/28", SRC_FRESH, 1000);
	answered(&s, "sip.example.test", "198.51.100.11", SRC_KEPT, 2000);
	answered(&s, "_sipfederationtls._tcp.example.test", "198.51.100.11", SRC_KEPT, 3000);
	answered(&s, "old.example.test", "198.51.100.11", SRC_STALE, 10);
	explain_sources(p, &s, &a, 5000, &x);
	e = find(&x, EXPLAIN_INLINE, 0);
	CHECK(e && e->at.line == 5 && e->counts && e->partner == 0);
	/* every line that covers it, read again: 2, 3 and the duplicate 5 */
	CHECK(find(&x, EXPLAIN_LIST, 2) && find(&x, EXPLAIN_LIST, 3) && find(&x, EXPLAIN_LIST, 5));
	CHECK(!find(&x, EXPLAIN_LIST, 1) && !find(&x, EXPLAIN_LIST, 4));
	e = find(&x, EXPLAIN_LIST, 3);
	CHECK(e && e->prefix.len == 28 && e->at.line == 6);
	e = find(&x, EXPLAIN_SRV, 0);
	CHECK(e && e->record && !strcmp(e->record, "_sipfederationtls._tcp.example.test"));
	CHECK(e && e->confirmed == 3000 && e->counts && !strcmp(e->name, "example.test"));
	for (size_t i = 0; i < x.n; i++) {
		if (x.v[i].kind != EXPLAIN_HOST)
			continue;
		if (!strcmp(x.v[i].name, "sip.example.test"))
			CHECK(x.v[i].counts && x.v[i].confirmed == 2000 && x.v[i].partner == 0);
		else
			CHECK(!x.v[i].counts && x.v[i].partner == 1 &&
			      !strcmp(x.v[i].status, "stale (dropped)"));
	}
	explain_sources_free(&x);
	explain_sources(p, &s, &other, 5000, &x);
	CHECK_INT(x.n, 0);
	explain_sources_free(&x);
	srcset_free(&s);
	policy_free(p);
out_tmp:
	tmp_remove(&t);
}

/* The whole question offline: policy file, list, an empty state. */
TEST(engine_explain_offline)
{
	struct tmp t;
	struct diag d;
	struct engine_explain e = { 0 };

	diag_init(&d, stderr);
	if (!tmp_make(&t, "198.51.100.20\n")) {
		CHECK(!"tmp");
		return;
	}
	e = (struct engine_explain){ .policy = t.pol, .state_dir = t.dir,
				     .addr = addr("198.51.100.20") };
	CHECK_INT(engine_explain(&e, &d), 0);
	CHECK_INT(count(&e.table, EXPLAIN_BY_PARTNER, true, "alpha"), 1);
	CHECK(explain_tables_agree(&e.table, &e.policy_table));
	CHECK(find(&e.sources, EXPLAIN_LIST, 1) != NULL);
	CHECK(e.sources.n && explain_backed(e.p, &e.sources, &e.table.v[0]));
	CHECK(explain_partner_why(&e, 0) == NULL);
	engine_explain_free(&e);

	/* on a port that is not alpha's: dropped, and why */
	e = (struct engine_explain){ .policy = t.pol, .state_dir = t.dir,
				     .addr = addr("198.51.100.20"), .has_port = true,
				     .port = port("tcp/5269") };
	CHECK_INT(engine_explain(&e, &d), 0);
	CHECK_INT(e.table.n, 0);
	CHECK_STR(e.table.drop_in, "dropped_in");
	CHECK_STR(explain_partner_why(&e, 0), "the port is none of its services' ports");
	engine_explain_free(&e);

	/* a policy that does not load: an error */
	e = (struct engine_explain){ .policy = t.list, .state_dir = t.dir,
				     .addr = addr("198.51.100.20") };
	diag_init(&d, NULL);
	CHECK(engine_explain(&e, &d) < 0);
	CHECK(d.errors > 0);
	engine_explain_free(&e);
	tmp_remove(&t);
}
