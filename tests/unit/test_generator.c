/* test_generator.c - policy -> IR: shape, overlaps, determinism, diff, scale. */
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"
#include "../harness.h"

#define HEAD "version: 1\nservices:\n  sip: [tcp/5061]\n  xmpp: [tcp/5269]\n" \
	"  wide: [tcp/5000-5100]\n  media: [udp/3478]\npartners:\n"

static struct policy *parse(const char *yaml)
{
	struct diag d;
	struct policy *p;

	diag_init(&d, stderr);
	p = policy_parse("t.yaml", yaml, strlen(yaml), &d);
	CHECK(p != NULL);
	return p;
}

/* Generates, keeping what diag printed in *msgs (caller frees). */
static struct ir_ruleset *gen(const struct policy *p, const struct gen_addrs *x,
			      unsigned *warnings, char **msgs)
{
	struct diag d;
	size_t len;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);
	struct ir_ruleset *rs;

	diag_init(&d, f);
	rs = generate(p, x, &d);
	fclose(f);
	CHECK(rs != NULL);
	CHECK_INT(d.errors, 0);
	if (warnings)
		*warnings = d.warnings;
	if (msgs)
		*msgs = buf;
	else
		free(buf);
	return rs;
}

static char *text(const struct ir_ruleset *rs)
{
	struct strbuf sb = { 0 };
	struct nft_text_opts o = { "t.yaml", "fedwall test" };

	nft_text(&sb, rs, &o);
	return sb.s;
}

/* "in4", "in6", "out4", "out6": the partner map of a direction and
 * family, which is one address map per port class (DIRF_N). */
static bool logical(const char *set)
{
	return !strcmp(set, "in4") || !strcmp(set, "in6") || !strcmp(set, "out4") ||
	       !strcmp(set, "out6");
}

/* The element of logical map `set` for exactly `pfx` on the port class of
 * `port` (its first port): port dispatch map, class chain, address map. */
static const struct ir_elem *find(const struct ir_ruleset *rs, const char *set,
				  const char *pfx, const char *port)
{
	bool out = set[0] == 'o';
	uint8_t fam = set[strlen(set) - 1] == '6' ? 6 : 4;
	const struct ir_set *d = ir_find_set(rs, out ? "out_ports" : "in_ports"), *s = NULL;
	const struct ir_elem *de;
	struct ir_elem want = { 0 };
	struct portrange pr;

	CHECK(prefix_parse(pfx, &want.addr) == PREFIX_OK);
	CHECK(portrange_parse(port, &pr) == PORT_OK);
	if (!logical(set)) {
		s = ir_find_set(rs, set);
		want.port = pr;
		CHECK(s != NULL);
		d = NULL;
	}
	CHECK(d != NULL || s != NULL);
	de = d ? ir_set_lookup(d, fam, NULL, pr.proto, pr.lo) : NULL;
	for (size_t i = 0; de && i < rs->chains[de->chain].nrules; i++) {
		const struct ir_rule *r = &rs->chains[de->chain].rules[i];

		if (r->kind == IR_R_VMAP && r->family == fam)
			s = ir_find_set(rs, r->set);
	}
	for (size_t i = 0; s && i < s->nelems; i++)
		if (!ir_elem_cmp(&s->elems[i], &want))
			return &s->elems[i];
	return NULL;
}

static const char *jump(const struct ir_ruleset *rs, const struct ir_elem *e)
{
	return e && e->chain < rs->nchains ? rs->chains[e->chain].name : "(none)";
}

/* Elements of a set; of a logical partner map, of all its port classes. */
static size_t nelems(const struct ir_ruleset *rs, const char *set)
{
	const struct ir_set *s = ir_find_set(rs, set);
	size_t n = 0, len = strlen(set);

	if (!logical(set))
		return s ? s->nelems : 0;
	for (size_t i = 0; i < rs->nsets; i++)
		if (!strncmp(rs->sets[i].name, set, len) && rs->sets[i].name[len] == '_')
			n += rs->sets[i].nelems;
	return n;
}

static size_t nrules(const struct ir_ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nchains; i++)
		n += rs->chains[i].nrules;
	return n;
}

/* Keys of every set are sorted and never overlap. */
static void check_sets(const struct ir_ruleset *rs)
{
	for (size_t i = 0; i < rs->nsets; i++) {
		const struct ir_set *s = &rs->sets[i];

		for (size_t j = 1; j < s->nelems; j++)
			CHECK(ir_elem_cmp(&s->elems[j - 1], &s->elems[j]) < 0);
		for (size_t j = 0; j < s->nelems; j++)
			for (size_t k = j + 1; k < s->nelems && k < j + 64; k++) {
				const struct ir_elem *a = &s->elems[j], *b = &s->elems[k];
				bool ports = a->port.proto == b->port.proto &&
					     a->port.lo <= b->port.hi && b->port.lo <= a->port.hi;

				CHECK(!(ports && prefix_overlaps(&a->addr, &b->addr)));
			}
	}
}

TEST(shape_host)
{
	struct policy *p = parse("version: 1\nedge: {interfaces: [eth0, eth1]}\n"
				 "icmp: {echo: true}\n"
				 "partners:\n  a-b_c:\n    services: [sip-federation]\n"
				 "    direction: inbound\n    addresses: [192.0.2.1]\n"
				 "log: {enabled: false}\n");
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);
	const struct ir_chain *in = ir_find_chain(rs, "input"), *e = ir_find_chain(rs, "edge_in");
	char *t = text(rs);

	CHECK(in && in->hook == IR_HOOK_INPUT && in->nrules == 3);
	CHECK(ir_find_chain(rs, "in_a-b_c") != NULL);
	CHECK(ir_find_chain(rs, "out_a-b_c") == NULL);
	CHECK(ir_find_set(rs, "edge4") == NULL);
	CHECK(e != NULL);
	CHECK(strstr(t, "icmpv6 type echo-request accept") != NULL);
	CHECK(strstr(t, "icmpv6 type nd-neighbor-solicit accept") != NULL);
	CHECK(strstr(t, " log ") == NULL);
	CHECK(strstr(t, "iifname \"eth1\" jump edge_in") != NULL);
	CHECK(strstr(t, "counter in_a-b_c {") != NULL);
	CHECK(strstr(t, "counter out_a-b_c") == NULL);
	CHECK(strstr(t, "tcp . 5061 : jump edge_in_1") != NULL);
	CHECK(strstr(t, "ip saddr vmap @in4_1\n") != NULL);
	CHECK(strstr(t, "192.0.2.1 : jump in_a-b_c") != NULL);
	free(t);
	ir_free(rs);
	policy_free(p);
}

TEST(shape_gateway)
{
	struct policy *p = parse("version: 1\nmode: gateway\n"
				 "edge: {addresses: [203.0.113.10, 2001:db8:10::10]}\n"
				 "partners:\n  a:\n    services: [sip-federation]\n"
				 "    direction: outbound\n    addresses: [192.0.2.1]\n"
				 "log: {rate: 5/second, prefix: \"gw: \"}\n");
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);
	const struct ir_chain *fw = ir_find_chain(rs, "forward");
	char *t = text(rs);

	CHECK(fw && fw->hook == IR_HOOK_FORWARD && fw->nrules == 4);
	CHECK(!ir_find_chain(rs, "input") && !ir_find_chain(rs, "output"));
	CHECK_INT(nelems(rs, "edge4"), 1);
	CHECK_INT(nelems(rs, "edge6"), 1);
	CHECK_INT(nelems(rs, "fedports"), 1);
	CHECK(strstr(t, "nd-neighbor") == NULL);
	CHECK(strstr(t, "limit rate 5/second log prefix \"gw: \"") != NULL);
	CHECK(strstr(t, "\tip6 daddr @edge6 jump edge_in\n") != NULL);
	free(t);
	ir_free(rs);
	policy_free(p);
}

TEST(overlap_nested)
{
	struct policy *p = parse(HEAD "  a:\n    services: [sip]\n"
				 "    addresses: [198.51.100.0/24]\n"
				 "  b:\n    services: [sip]\n    addresses: [198.51.100.16/28]\n");
	unsigned w;
	char *msg;
	struct ir_ruleset *rs = gen(p, NULL, &w, &msg);
	static const char *const a_pieces[] = { "198.51.100.0/28", "198.51.100.32/27",
						"198.51.100.64/26", "198.51.100.128/25" };

	CHECK_INT(w, 1);
	CHECK(strstr(msg, "t.yaml:10:") == msg);        /* a's address */
	CHECK(strstr(msg, "'a' and 'b'") && strstr(msg, "198.51.100.16/28") &&
	      strstr(msg, "tcp/5061") && strstr(msg, "198.51.100.0/24"));
	CHECK_INT(nelems(rs, "in4"), 5);
	CHECK_INT(nelems(rs, "out4"), 5);
	for (size_t i = 0; i < ARRAY_SIZE(a_pieces); i++)
		CHECK_STR(jump(rs, find(rs, "in4", a_pieces[i], "tcp/5061")), "in_a");
	CHECK_STR(jump(rs, find(rs, "in4", "198.51.100.16/28", "tcp/5061")), "in_b");
	CHECK_STR(jump(rs, find(rs, "out4", "198.51.100.16/28", "tcp/5061")), "out_b");
	check_sets(rs);
	free(msg);
	ir_free(rs);
	policy_free(p);
}

TEST(overlap_identical)
{
	struct policy *p = parse(HEAD "  zed:\n    services: [sip]\n"
				 "    addresses: [192.0.2.0/24]\n"
				 "  alpha:\n    services: [sip]\n    addresses: [192.0.2.0/24]\n");
	unsigned w;
	char *msg;
	struct ir_ruleset *rs = gen(p, NULL, &w, &msg);

	CHECK_INT(w, 1);
	CHECK(strstr(msg, "'zed' and 'alpha'") && strstr(msg, "same prefix"));
	CHECK(strstr(msg, "t.yaml:10:") == msg);        /* zed's address */
	CHECK_INT(nelems(rs, "in4"), 1);
	CHECK_STR(jump(rs, find(rs, "in4", "192.0.2.0/24", "tcp/5061")), "in_alpha");
	CHECK(ir_find_chain(rs, "in_zed") != NULL);     /* shape stays */
	free(msg);
	ir_free(rs);
	policy_free(p);
}

TEST(overlap_one_port)
{
	struct policy *p = parse(HEAD "  a:\n    services: [sip, xmpp]\n"
				 "    addresses: [198.51.100.0/24]\n"
				 "  b:\n    services: [sip]\n    addresses: [198.51.100.7]\n");
	unsigned w;
	char *msg;
	struct ir_ruleset *rs = gen(p, NULL, &w, &msg);

	CHECK_INT(w, 1);
	CHECK(strstr(msg, "tcp/5061") && !strstr(msg, "5269"));
	CHECK_STR(jump(rs, find(rs, "in4", "198.51.100.0/24", "tcp/5269")), "in_a");
	CHECK_STR(jump(rs, find(rs, "in4", "198.51.100.7", "tcp/5061")), "in_b");
	CHECK_STR(jump(rs, find(rs, "in4", "198.51.100.6/32", "tcp/5061")), "in_a");
	CHECK_STR(jump(rs, find(rs, "in4", "198.51.100.0/30", "tcp/5061")), "in_a");
	CHECK(find(rs, "in4", "198.51.100.0/24", "tcp/5061") == NULL);
	CHECK_INT(nelems(rs, "in4"), 1 + 8 + 1);
	check_sets(rs);
	free(msg);
	ir_free(rs);
	policy_free(p);
}

/* A port range cut by another partner's port: two classes, {a} on
 * 5000-5060 and 5062-5100, {a, b} on 5061; a is in both, b only on 5061. */
TEST(overlap_port_classes)
{
	struct policy *p = parse(HEAD "  a:\n    services: [wide]\n"
				 "    addresses: [198.51.100.0/24]\n"
				 "  b:\n    services: [sip]\n    addresses: [192.0.2.7]\n");
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);
	const uint8_t b[4] = { 192, 0, 2, 7 }, a[4] = { 198, 51, 100, 9 };

	CHECK_INT(nelems(rs, "in4"), 3);
	CHECK_INT(nelems(rs, "in_ports"), 3);
	CHECK_STR(jump(rs, find(rs, "in4", "198.51.100.0/24", "tcp/5000")), "in_a");
	CHECK_STR(jump(rs, find(rs, "in4", "198.51.100.0/24", "tcp/5100")), "in_a");
	CHECK_STR(jump(rs, find(rs, "in4", "198.51.100.0/24", "tcp/5061")), "in_a");
	CHECK_STR(jump(rs, find(rs, "in4", "192.0.2.7", "tcp/5061")), "in_b");
	CHECK(find(rs, "in4", "192.0.2.7", "tcp/5000") == NULL);
	CHECK(ir_admits(rs, IR_SADDR, 4, b, PROTO_TCP, 5061, NULL, NULL));
	CHECK(!ir_admits(rs, IR_SADDR, 4, b, PROTO_TCP, 5062, NULL, NULL));
	CHECK(ir_admits(rs, IR_SADDR, 4, a, PROTO_TCP, 5062, NULL, NULL));
	CHECK(!ir_admits(rs, IR_SADDR, 4, a, PROTO_TCP, 5101, NULL, NULL));
	CHECK(!ir_admits(rs, IR_SADDR, 4, a, PROTO_UDP, 5062, NULL, NULL));
	CHECK(ir_admits(rs, IR_DADDR, 4, a, PROTO_TCP, 5062, NULL, NULL));  /* both ways */
	CHECK(!ir_admits(rs, IR_DADDR, 4, b, PROTO_TCP, 5062, NULL, NULL));
	ir_free(rs);
	policy_free(p);
}

TEST(overlap_v6_and_extra)
{
	struct policy *p = parse(HEAD "  a:\n    services: [sip]\n"
				 "    addresses: [2001:db8::/32]\n"
				 "  b:\n    services: [sip]\n    hosts: [b.example]\n");
	struct prefix x[2];
	struct loc locs[2] = { { "b.txt", 3, 1 }, { "b.txt", 4, 1 } };
	struct gen_addrs extra[2] = { { NULL, 0, NULL, NULL, NULL, NULL, 0 },
				      { x, 2, locs, NULL, NULL, NULL, 0 } };
	unsigned w;
	char *msg;
	struct ir_ruleset *rs;

	prefix_parse("2001:db8:1::/48", &x[0]);
	prefix_parse("2001:db8:0::/48", &x[1]);        /* sibling: joins to /47 */
	rs = gen(p, extra, &w, &msg);
	CHECK_INT(w, 2);                /* one per prefix of b */
	CHECK(strstr(msg, "b.txt") == NULL);    /* a, the loser, is inline */
	CHECK(strstr(msg, "2001:db8:1::/48") && strstr(msg, "2001:db8::/48"));
	CHECK_STR(jump(rs, find(rs, "in6", "2001:db8::/47", "tcp/5061")), "in_b");
	CHECK_STR(jump(rs, find(rs, "in6", "2001:db8:2::/47", "tcp/5061")), "in_a");
	CHECK_INT(nelems(rs, "in6"), 15 + 1);    /* /32 minus /47: /33 ... /47 */
	CHECK_INT(nelems(rs, "in4"), 0);
	check_sets(rs);
	free(msg);
	ir_free(rs);
	policy_free(p);
}

/* Brute force: every address of 198.51.100.0/24 on every port goes to the
 * partner with the longest prefix covering it, ties by name. */
TEST(overlap_brute_force)
{
	static const char *const svc[] = { "[sip]", "[wide]", "[sip, media]", "[xmpp, wide]" };
	unsigned seed = 12345;

	for (int round = 0; round < 40; round++) {
		struct strbuf y = { 0 };
		struct prefix px[6][3];
		struct gen_addrs extra[6];
		int sv[6];
		struct policy *p;
		struct ir_ruleset *rs;

		sb_addf(&y, HEAD);
		for (int i = 0; i < 6; i++) {
			sv[i] = (int)((seed = seed * 1103515245 + 12345) >> 16) % 4;
			sb_addf(&y, "  p%d:\n    services: %s\n    hosts: [x.example]\n", i, svc[sv[i]]);
			for (int j = 0; j < 3; j++) {
				unsigned r = (seed = seed * 1103515245 + 12345) >> 16;
				char s[40];

				snprintf(s, sizeof(s), "198.51.100.%u/%u", r % 256, 24 + (r >> 8) % 9);
				prefix_parse(s, &px[i][j]);
				prefix_mask(&px[i][j]);
			}
			extra[i] = (struct gen_addrs){ px[i], 3, NULL, NULL, NULL, NULL, 0 };
		}
		p = parse(sb_str(&y));
		rs = gen(p, extra, NULL, NULL);
		check_sets(rs);
		for (unsigned host = 0; host < 256; host++) {
			static const struct portrange ports[] = {
				{ 6, 5061, 5061 }, { 6, 5000, 5000 }, { 6, 5269, 5269 },
				{ 17, 3478, 3478 }, { 6, 5101, 5101 },
			};

			for (size_t k = 0; k < ARRAY_SIZE(ports); k++) {
				struct prefix a = { 4, 32, { 198, 51, 100, (uint8_t)host } };
				int best = -1, blen = -1;
				const char *got = NULL;
				const struct ir_elem *e;
				char name[16];

				for (int i = 0; i < 6; i++) {
					bool has = (ports[k].lo == 5061 && sv[i] != 1 && sv[i] != 3) ||
						   (ports[k].lo == 5061 && (sv[i] == 1 || sv[i] == 3)) ||
						   (ports[k].lo == 5000 && (sv[i] == 1 || sv[i] == 3)) ||
						   (ports[k].lo == 5269 && sv[i] == 3) ||
						   (ports[k].proto == 17 && sv[i] == 2);

					for (int j = 0; has && j < 3; j++)
						if (prefix_contains(&px[i][j], &a) && px[i][j].len > blen) {
							best = i;
							blen = px[i][j].len;
						}
				}
				if (ir_admits(rs, IR_SADDR, 4, a.a, ports[k].proto, ports[k].lo,
					      NULL, &e))
					got = jump(rs, e);
				snprintf(name, sizeof(name), "in_p%d", best);
				if (best < 0)
					CHECK(got == NULL);
				else
					CHECK_STR(got, name);
			}
		}
		sb_free(&y);
		ir_free(rs);
		policy_free(p);
	}
}

TEST(mgmt_union)
{
	struct policy *p = parse("version: 1\npartners:\n  a:\n    services: [sip-federation]\n"
				 "    addresses: [192.0.2.1]\nmanagement:\n"
				 "  - {from: [192.0.2.0/25], to: [tcp/22, tcp/443]}\n"
				 "  - {from: [192.0.2.128/25, 192.0.2.5], to: [tcp/22]}\n"
				 "  - {from: [2001:db8::1], to: [tcp/22-23]}\n");
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);

	CHECK_INT(nelems(rs, "mgmt4"), 2);
	CHECK(find(rs, "mgmt4", "192.0.2.0/24", "tcp/22") != NULL);
	CHECK(find(rs, "mgmt4", "192.0.2.0/25", "tcp/443") != NULL);
	CHECK(find(rs, "mgmt6", "2001:db8::1", "tcp/22-23") != NULL);
	check_sets(rs);
	ir_free(rs);
	policy_free(p);
}

TEST(deterministic)
{
	const char *y1 = HEAD "  b:\n    services: [sip, media]\n"
		"    addresses: [198.51.100.9, 192.0.2.0/24, 2001:db8::/48]\n"
		"  a:\n    services: [wide]\n    addresses: [192.0.2.128/26, 198.51.100.0/24]\n";
	const char *y2 = HEAD "  a:\n    services: [wide]\n    addresses: [198.51.100.0/24, 192.0.2.128/26]\n"
		"  b:\n    services: [media, sip]\n"
		"    addresses: [2001:db8::/48, 192.0.2.0/24, 198.51.100.9]\n";
	struct policy *p1 = parse(y1), *p2 = parse(y2);
	struct ir_ruleset *r1 = gen(p1, NULL, NULL, NULL), *r2 = gen(p1, NULL, NULL, NULL);
	struct ir_ruleset *r3 = gen(p2, NULL, NULL, NULL);
	char *t1 = text(r1), *t2 = text(r2), *t3 = text(r3);
	struct ir_diff d;

	CHECK_STR(t1, t2);
	CHECK(strstr(t3, "(t.yaml:8)") != NULL);  /* only comments differ */
	ir_diff(r1, r3, &d);
	CHECK(ir_diff_empty(&d));
	ir_diff_free(&d);
	free(t1);
	free(t2);
	free(t3);
	ir_free(r1);
	ir_free(r2);
	ir_free(r3);
	policy_free(p1);
	policy_free(p2);
}

TEST(diff_elements_only)
{
	struct policy *p1 = parse(HEAD "  a:\n    services: [sip]\n    addresses: [192.0.2.1]\n");
	struct policy *p2 = parse(HEAD "  a:\n    services: [sip]\n"
				  "    addresses: [192.0.2.2, 2001:db8::2]\n");
	struct ir_ruleset *r1 = gen(p1, NULL, NULL, NULL), *r2 = gen(p2, NULL, NULL, NULL);
	struct ir_diff d;

	ir_diff(r1, r2, &d);
	CHECK(!d.structural && d.why == NULL && !ir_diff_empty(&d));
	CHECK_INT(d.nsets, 4);          /* in4_1 in6_1 out4_1 out6_1 */
	for (size_t i = 0; i < d.nsets; i++) {
		bool v4 = d.sets[i].set->key == IR_KEY_ADDR4;

		CHECK_INT(d.sets[i].nadd, 1);
		CHECK_INT(d.sets[i].ndel, v4 ? 1 : 0);
	}
	ir_diff_free(&d);
	ir_diff(r2, r2, &d);
	CHECK(ir_diff_empty(&d));
	ir_diff_free(&d);
	ir_diff(NULL, r2, &d);
	CHECK(d.structural && strstr(d.why, "does not exist"));
	ir_diff_free(&d);
	ir_free(r1);
	ir_free(r2);
	policy_free(p1);
	policy_free(p2);
}

TEST(diff_structural)
{
	struct policy *p1 = parse(HEAD "  a:\n    services: [sip]\n    addresses: [192.0.2.1]\n");
	struct policy *p2 = parse(HEAD "  a:\n    services: [sip]\n    addresses: [192.0.2.1]\n"
				  "  b:\n    services: [sip]\n    direction: inbound\n"
				  "    addresses: [192.0.2.2]\n");
	struct policy *p3 = parse(HEAD "  a:\n    services: [sip]\n    addresses: [192.0.2.1]\n"
				  "log: {rate: 3/second}\n");
	struct ir_ruleset *r1 = gen(p1, NULL, NULL, NULL), *r2 = gen(p2, NULL, NULL, NULL);
	struct ir_ruleset *r3 = gen(p3, NULL, NULL, NULL);
	struct ir_diff d;

	ir_diff(r1, r2, &d);
	CHECK(d.structural && d.why && strstr(d.why, "in_b"));
	CHECK(!ir_diff_empty(&d));
	ir_diff_free(&d);
	ir_diff(r2, r1, &d);
	CHECK(d.structural && d.why && strstr(d.why, "goes away"));
	ir_diff_free(&d);
	ir_diff(r1, r3, &d);
	CHECK(d.structural && d.why && strstr(d.why, "edge_in"));
	CHECK_INT(d.nsets, 0);
	ir_diff_free(&d);
	ir_free(r1);
	ir_free(r2);
	ir_free(r3);
	policy_free(p1);
	policy_free(p2);
	policy_free(p3);
}

/* The index of the first rule of `kind` on `set` (NULL: any) in `c`. */
static size_t rule_at(const struct ir_chain *c, enum ir_rule_kind kind, const char *set)
{
	for (size_t j = 0; j < c->nrules; j++)
		if (c->rules[j].kind == kind &&
		    (!set || (c->rules[j].set && !strcmp(c->rules[j].set, set))))
			return j;
	return SIZE_MAX;
}

/* In both edge chains, after the port dispatch (edge_out: and after the
 * outbound allowances), in both modes, and nowhere else: a new TCP
 * connection without a SYN is picked up only through a partner map, a
 * revoked or stranger's one is dropped and counted. */
static void check_new_not_syn(const struct ir_ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nchains; i++) {
		const struct ir_chain *c = &rs->chains[i];
		bool in = !strcmp(c->name, "edge_in"), out = !strcmp(c->name, "edge_out");

		for (size_t j = 0; j < c->nrules; j++) {
			const struct ir_rule *r = &c->rules[j];

			if (r->kind != IR_R_NEW_NOT_SYN)
				continue;
			n++;
			CHECK(in || out);
			CHECK_INT(r->verdict, IR_DROP);
			CHECK(r->comment && strstr(r->comment, "SYN"));
			CHECK_STR(r->target, in ? "dropped_in_nosyn" : "dropped_out_nosyn");
			CHECK(j > rule_at(c, IR_R_PORT_VMAP, NULL));
			if (out)
				CHECK_INT(rule_at(c, IR_R_LOOKUP, "outallow6"), j - 1);
			else
				CHECK_INT(rule_at(c, IR_R_PORT_VMAP, "in_ports"), j - 1);
			CHECK(c->rules[1].kind == IR_R_CT_STATE && c->rules[1].verdict == IR_DROP);
			CHECK_STR(c->rules[1].target, in ? "dropped_in_invalid"
							 : "dropped_out_invalid");
		}
	}
	CHECK_INT(n, 2);
}

TEST(new_not_syn_in_both_edge_chains)
{
	struct policy *ph = parse(HEAD "  a:\n    services: [sip]\n    addresses: [192.0.2.1]\n");
	struct policy *pg = parse("version: 1\nmode: gateway\n"
				  "edge: {addresses: [203.0.113.10]}\n"
				  "partners:\n  a:\n    services: [sip-federation]\n"
				  "    addresses: [192.0.2.1]\n");
	struct ir_ruleset *rh = gen(ph, NULL, NULL, NULL), *rg = gen(pg, NULL, NULL, NULL);
	struct ir_ruleset *old = gen(ph, NULL, NULL, NULL);
	struct ir_chain *eo = (struct ir_chain *)ir_find_chain(old, "edge_out");
	const char *line = "\t\ttcp flags != syn / fin,syn,rst,ack ct state new counter name "
			   "\"dropped_";
	char *t = text(rh), *p;
	size_t k = eo ? rule_at(eo, IR_R_NEW_NOT_SYN, NULL) : SIZE_MAX;
	struct ir_diff d;

	check_new_not_syn(rh);
	check_new_not_syn(rg);
	p = strstr(t, line);
	CHECK(p != NULL);
	CHECK(p && strstr(p + 1, line) != NULL);
	CHECK(strstr(t, "\t\tct state invalid counter name \"dropped_in_invalid\" drop\n"));
	/* A table of a fedwall without the rule is replaced, not patched. */
	CHECK(k != SIZE_MAX);
	if (k != SIZE_MAX) {
		free(eo->rules[k].comment);
		free(eo->rules[k].target);
		memmove(&eo->rules[k], &eo->rules[k + 1],
			(eo->nrules - k - 1) * sizeof(eo->rules[0]));
		eo->nrules--;
	}
	ir_diff(old, rh, &d);
	CHECK(d.structural && d.why && strstr(d.why, "edge_out"));
	ir_diff_free(&d);
	free(t);
	ir_free(old);
	ir_free(rh);
	ir_free(rg);
	policy_free(ph);
	policy_free(pg);
}

/* Every drop counter is declared, whatever the policy. */
TEST(drop_counters)
{
	static const char *const names[] = {
		"dropped_in", "dropped_in_invalid", "dropped_in_nosyn",
		"dropped_out", "dropped_out_invalid", "dropped_out_nosyn",
	};
	struct policy *p = parse("version: 1\n");
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		bool found = false;

		for (size_t j = 0; j < rs->ncounters; j++)
			found |= !strcmp(rs->counters[j].name, names[i]);
		CHECK(found);
	}
	ir_free(rs);
	policy_free(p);
}

/* The elements of plain set `name` as "tcp/5061 tcp/5269 ..." (ports) or
 * "192.0.2.0/24 . tcp/5061 ..." (addresses with ports). */
static char *set_text(const struct ir_ruleset *rs, const char *name)
{
	const struct ir_set *s = ir_find_set(rs, name);
	struct strbuf sb = { 0 };

	CHECK(s != NULL);
	for (size_t i = 0; s && i < s->nelems; i++) {
		char a[PREFIX_STRLEN], pr[PORTRANGE_STRLEN];

		if (s->key != IR_KEY_PROTO_PORT)
			sb_addf(&sb, "%s . ", prefix_fmt(&s->elems[i].addr, a, sizeof(a)));
		sb_addf(&sb, "%s%s", portrange_fmt(&s->elems[i].port, pr, sizeof(pr)),
			i + 1 < s->nelems ? " " : "");
	}
	return sb.s ? sb.s : xstrdup("");
}

static void check_fedports(const char *yaml, const char *want)
{
	struct policy *p = parse(yaml);
	struct ir_ruleset *rs = p ? gen(p, NULL, NULL, NULL) : NULL;
	char *got = rs ? set_text(rs, "fedports") : NULL;

	CHECK(got != NULL);
	if (got && strcmp(got, want))
		fprintf(stderr, "fedports of:\n%s\n  are '%s', expected '%s'\n", yaml, got, want);
	CHECK(got && !strcmp(got, want));
	free(got);
	ir_free(rs);
	policy_free(p);
}

/* Signalling ports restrict the edge's outbound connections as soon as any
 * partner uses them, whatever its direction; tcp/443 and media ranges
 * never do unless a service says so. */
TEST(fedports_by_service)
{
	check_fedports("version: 1\npartners:\n  a:\n    services: [sip-federation]\n"
		       "    direction: inbound\n    addresses: [192.0.2.1]\n", "tcp/5061");
	check_fedports("version: 1\npartners:\n  a:\n    services: [av-edge, web-conferencing]\n"
		       "    addresses: [192.0.2.1]\n", "");
	check_fedports("version: 1\npartners:\n  a:\n    services: [av-edge, sip-federation,"
		       " xmpp-s2s, matrix-federation, teams-direct-routing]\n"
		       "    direction: outbound\n    addresses: [192.0.2.1]\n",
		       "tcp/5061 tcp/5269 tcp/8448");
	/* user services: ports written alone restrict, but the shared ones
	 * and ranges; `outbound:` says otherwise */
	check_fedports("version: 1\nservices:\n"
		       "  av: [tcp/443, udp/3478, udp/50000-59999, tcp/5060, tcp/5061]\n"
		       "  smtp: {ports: [tcp/25], outbound: open}\n"
		       "  relay: {ports: [tcp/443, udp/40000-40999], outbound: restrict}\n"
		       "  mix: {ports: [tcp/7000-7999], outbound: [tcp/7100-7199]}\n"
		       "partners:\n  a:\n    services: [av, smtp, relay, mix]\n"
		       "    addresses: [192.0.2.1]\n",
		       "tcp/443 tcp/5060-5061 tcp/7100-7199 udp/40000-40999");
	/* no partner uses it: nothing restricted */
	check_fedports("version: 1\nservices:\n  x: [tcp/25]\n", "");
}

/* outbound: {allow}: destination . proto . port, per family, looked up in
 * edge_out before the drops. */
TEST(outbound_allowances)
{
	struct policy *p = parse("version: 1\noutbound:\n  allow:\n"
				 "    - {to: [192.0.2.0/24, 2001:db8::/48], ports: [tcp/5061]}\n"
				 "    - {to: 198.51.100.7, ports: [tcp/5269, tcp/5061]}\n");
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);
	char *a4 = set_text(rs, "outallow4"), *a6 = set_text(rs, "outallow6");
	const struct ir_chain *eo = ir_find_chain(rs, "edge_out");
	size_t k = eo ? rule_at(eo, IR_R_LOOKUP, "outallow4") : SIZE_MAX;

	CHECK_STR(a4, "192.0.2.0/24 . tcp/5061 198.51.100.7 . tcp/5061 198.51.100.7 . tcp/5269");
	CHECK_STR(a6, "2001:db8::/48 . tcp/5061");
	CHECK(k != SIZE_MAX && k > rule_at(eo, IR_R_PORT_VMAP, "out_ports"));
	CHECK(k != SIZE_MAX && eo->rules[k].field == IR_DADDR &&
	      eo->rules[k].verdict == IR_ACCEPT);
	CHECK(k < rule_at(eo, IR_R_COUNTER, "fedports"));
	free(a4);
	free(a6);
	ir_free(rs);
	policy_free(p);
}

/* A dormant table (or one with any flag fedwall does not set) filters
 * nothing: structural, so that the table is replaced. */
TEST(diff_table_flags)
{
	struct policy *p = parse("version: 1\n");
	struct ir_ruleset *live = gen(p, NULL, NULL, NULL), *want = gen(p, NULL, NULL, NULL);
	struct ir_diff d;

	ir_diff(live, want, &d);
	CHECK(ir_diff_empty(&d));
	ir_diff_free(&d);
	live->flags = IR_TABLE_F_DORMANT;
	ir_diff(live, want, &d);
	CHECK(d.structural && d.why && strstr(d.why, "dormant"));
	ir_diff_free(&d);
	live->flags = 4;
	ir_diff(live, want, &d);
	CHECK(d.structural && d.why && strstr(d.why, "flags"));
	ir_diff_free(&d);
	ir_free(live);
	ir_free(want);
	policy_free(p);
}

/* An address moving from one partner to another changes only the jump
 * target: the element is deleted and added again. */
TEST(diff_jump_target)
{
	const char *fmt = HEAD "  a:\n    services: [sip]\n    direction: inbound\n"
		"    addresses: [192.0.2.1%s]\n  b:\n    services: [sip]\n"
		"    direction: inbound\n    addresses: [192.0.2.2%s]\n";
	char y1[512], y2[512];
	struct policy *p1, *p2;
	struct ir_ruleset *r1, *r2;
	struct ir_diff d;

	snprintf(y1, sizeof(y1), fmt, ", 192.0.2.9", "");
	snprintf(y2, sizeof(y2), fmt, "", ", 192.0.2.9");
	p1 = parse(y1);
	p2 = parse(y2);
	r1 = gen(p1, NULL, NULL, NULL);
	r2 = gen(p2, NULL, NULL, NULL);
	ir_diff(r1, r2, &d);
	CHECK(!d.structural);
	CHECK_INT(d.nsets, 1);
	if (d.nsets == 1) {
		char a[PREFIX_STRLEN];

		CHECK_STR(d.sets[0].set->name, "in4_1");
		CHECK_INT(d.sets[0].nadd, 1);
		CHECK_INT(d.sets[0].ndel, 1);
		CHECK_STR(prefix_fmt(&d.sets[0].add[0]->addr, a, sizeof(a)), "192.0.2.9");
		CHECK_STR(jump(r2, d.sets[0].add[0]), "in_b");
		CHECK_STR(jump(r1, d.sets[0].del[0]), "in_a");
	}
	ir_diff_free(&d);
	ir_free(r1);
	ir_free(r2);
	policy_free(p1);
	policy_free(p2);
}

/* 1,000 partners: 1 address each, then 100 each.  The text grows; the
 * number of rules does not. */
TEST(rules_independent_of_addresses)
{
	struct strbuf y = { 0 };
	struct gen_addrs *extra = calloc(1000, sizeof(*extra));
	struct prefix *x = calloc(1000 * 100, sizeof(*x));
	struct policy *p;
	struct ir_ruleset *small, *big;
	char *ts, *tb;

	sb_addf(&y, HEAD);
	for (unsigned i = 0; i < 1000; i++)
		sb_addf(&y, "  p%04u:\n    services: [%s]\n    addresses: [2001:db8:%x::1]\n",
			i, i % 3 ? "sip" : "sip, media", i);
	for (unsigned i = 0; i < 1000; i++) {
		for (unsigned j = 0; j < 100; j++) {
			struct prefix *q = &x[i * 100 + j];

			q->family = 6;
			q->len = 128;
			q->a[0] = 0x20; q->a[1] = 0x01; q->a[2] = 0x0d; q->a[3] = 0xb8;
			q->a[4] = (uint8_t)(i >> 8); q->a[5] = (uint8_t)i;
			q->a[14] = (uint8_t)(j + 1); q->a[15] = 0x77;
		}
		extra[i] = (struct gen_addrs){ &x[i * 100], 100, NULL, NULL, NULL, NULL, 0 };
	}
	p = parse(sb_str(&y));
	small = gen(p, NULL, NULL, NULL);
	big = gen(p, extra, NULL, NULL);
	ts = text(small);
	tb = text(big);
	CHECK_INT(nrules(small), nrules(big));
	CHECK_INT(small->nchains, big->nchains);
	CHECK_INT(nelems(small, "in6"), 1000 + 334);
	CHECK_INT(nelems(big, "in6"), 101 * (1000 + 334));
	CHECK(strlen(tb) > 10 * strlen(ts));
	check_sets(big);
	free(ts);
	free(tb);
	ir_free(small);
	ir_free(big);
	policy_free(p);
	free(x);
	free(extra);
	sb_free(&y);
}

/* ---- ir_admits_conn: what the rules do with a new connection (sweep) ---- */

/* Whether `rs` admits a new PROTO connection SRC -> DST:PORT at `hook`,
 * arriving or leaving by `ifname` (NULL: an edge interface). */
static bool conn_admitted(const struct ir_ruleset *rs, enum ir_hook hook, const char *ifname,
			  uint8_t proto, const char *src, const char *dst, uint16_t port)
{
	struct prefix s, d;
	struct ir_eval ev;
	struct ir_conn c;
	bool yes;

	CHECK(prefix_parse(src, &s) == PREFIX_OK && prefix_parse(dst, &d) == PREFIX_OK);
	c = (struct ir_conn){ hook, ifname, s.family, proto, s.a, d.a, port };
	ir_eval_init(rs, &ev);
	yes = ir_admits_conn(&ev, &c);
	ir_eval_free(&ev);
	return yes;
}

#define CONN_POLICY "services:\n  sip: [tcp/5061]\n  xmpp: [tcp/5269]\n" \
	"partners:\n  alpha:\n    services: [sip, xmpp]\n    direction: both\n" \
	"    addresses: [198.51.100.11, 2001:db8:51::11]\n" \
	"  charlie:\n    services: [xmpp]\n    direction: inbound\n" \
	"    addresses: [198.51.100.13]\n" \
	"management:\n  - {from: 192.0.2.0/24, to: tcp/22}\n"

TEST(admits_conn_host)
{
	struct policy *p = parse("version: 1\nedge: {interfaces: [eth0]}\n" CONN_POLICY);
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);
	const char *e4 = "203.0.113.10", *e6 = "2001:db8:10::10";
	enum ir_hook in = IR_HOOK_INPUT, out = IR_HOOK_OUTPUT;

	/* inbound: partners on their ports, management, nobody else */
	CHECK(conn_admitted(rs, in, NULL, PROTO_TCP, "198.51.100.11", e4, 5061));
	CHECK(conn_admitted(rs, in, NULL, PROTO_TCP, "2001:db8:51::11", e6, 5269));
	CHECK(conn_admitted(rs, in, NULL, PROTO_TCP, "198.51.100.13", e4, 5269));
	CHECK(!conn_admitted(rs, in, NULL, PROTO_TCP, "198.51.100.13", e4, 5061));
	CHECK(!conn_admitted(rs, in, NULL, PROTO_TCP, "198.51.100.11", e4, 5062));
	CHECK(!conn_admitted(rs, in, NULL, PROTO_UDP, "198.51.100.11", e4, 5061));
	CHECK(!conn_admitted(rs, in, NULL, PROTO_TCP, "198.51.100.99", e4, 5061));
	CHECK(!conn_admitted(rs, in, NULL, PROTO_TCP, "2001:db8:51::99", e6, 5061));
	CHECK(conn_admitted(rs, in, NULL, PROTO_TCP, "192.0.2.22", e4, 22));
	CHECK(!conn_admitted(rs, in, NULL, PROTO_TCP, "192.0.2.22", e4, 23));
	CHECK(!conn_admitted(rs, in, NULL, PROTO_TCP, "192.0.3.22", e4, 22));
	/* the interfaces the policy filters, and only those */
	CHECK(!conn_admitted(rs, in, "eth0", PROTO_TCP, "198.51.100.99", e4, 5061));
	CHECK(conn_admitted(rs, in, "eth1", PROTO_TCP, "198.51.100.99", e4, 5061));
	CHECK(conn_admitted(rs, in, "lo", PROTO_TCP, "198.51.100.99", e4, 5061));
	/* outbound: partners on federation ports, anybody elsewhere */
	CHECK(conn_admitted(rs, out, NULL, PROTO_TCP, e4, "198.51.100.11", 5061));
	CHECK(!conn_admitted(rs, out, NULL, PROTO_TCP, e4, "198.51.100.99", 5061));
	CHECK(!conn_admitted(rs, out, NULL, PROTO_TCP, e6, "2001:db8:51::99", 5269));
	CHECK(conn_admitted(rs, out, NULL, PROTO_TCP, e4, "198.51.100.99", 8080));
	CHECK(conn_admitted(rs, out, NULL, PROTO_UDP, e4, "198.51.100.99", 53));
	CHECK(conn_admitted(rs, out, "eth1", PROTO_TCP, e4, "198.51.100.99", 5061));
	/* host mode filters no forwarded traffic */
	CHECK(conn_admitted(rs, IR_HOOK_FORWARD, NULL, PROTO_TCP, "198.51.100.99", e4, 5061));
	ir_free(rs);
	policy_free(p);
}

TEST(admits_conn_gateway)
{
	struct policy *p = parse("version: 1\nmode: gateway\n"
				 "edge: {addresses: [203.0.113.10, 2001:db8:10::10]}\n"
				 CONN_POLICY);
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);
	enum ir_hook fw = IR_HOOK_FORWARD;

	CHECK(conn_admitted(rs, fw, NULL, PROTO_TCP, "198.51.100.11", "203.0.113.10", 5061));
	CHECK(!conn_admitted(rs, fw, NULL, PROTO_TCP, "198.51.100.99", "203.0.113.10", 5061));
	CHECK(!conn_admitted(rs, fw, NULL, PROTO_TCP, "2001:db8:51::99", "2001:db8:10::10",
			     5269));
	CHECK(conn_admitted(rs, fw, NULL, PROTO_TCP, "192.0.2.22", "203.0.113.10", 22));
	/* not the edge's: the forward chain leaves it alone */
	CHECK(conn_admitted(rs, fw, NULL, PROTO_TCP, "198.51.100.99", "203.0.113.11", 5061));
	CHECK(conn_admitted(rs, fw, NULL, PROTO_TCP, "203.0.113.10", "198.51.100.11", 5269));
	CHECK(!conn_admitted(rs, fw, NULL, PROTO_TCP, "203.0.113.10", "198.51.100.99", 5269));
	CHECK(conn_admitted(rs, fw, NULL, PROTO_TCP, "203.0.113.10", "198.51.100.99", 8080));
	/* gateway mode has no input or output chain */
	CHECK(conn_admitted(rs, IR_HOOK_INPUT, NULL, PROTO_TCP, "198.51.100.99", "203.0.113.10",
			    5061));
	ir_free(rs);
	policy_free(p);
}

/* The verdict follows the rules wherever they stand: with the SYN check
 * moved to the end of edge_in (a new connection's SYN never matches it)
 * and a drop-everything base chain policy, the same answers. */
TEST(admits_conn_rule_order)
{
	struct policy *p = parse("version: 1\n" CONN_POLICY);
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);
	struct ir_chain *e = (struct ir_chain *)ir_find_chain(rs, "edge_in");
	struct ir_chain *in = (struct ir_chain *)ir_find_chain(rs, "input");
	size_t k = 0;

	CHECK(e && in);
	while (e && k < e->nrules && e->rules[k].kind != IR_R_NEW_NOT_SYN)
		k++;
	CHECK(e && k < e->nrules);
	for (; e && k + 1 < e->nrules; k++) {
		struct ir_rule r = e->rules[k];

		e->rules[k] = e->rules[k + 1];
		e->rules[k + 1] = r;
	}
	if (in)
		in->policy = IR_DROP;
	CHECK(conn_admitted(rs, IR_HOOK_INPUT, NULL, PROTO_TCP, "198.51.100.11", "203.0.113.10",
			    5061));
	CHECK(!conn_admitted(rs, IR_HOOK_INPUT, NULL, PROTO_TCP, "198.51.100.99",
			     "203.0.113.10", 5061));
	CHECK(conn_admitted(rs, IR_HOOK_INPUT, NULL, PROTO_TCP, "192.0.2.22", "203.0.113.10",
			    22));
	/* loopback: accepted before the policy */
	CHECK(conn_admitted(rs, IR_HOOK_INPUT, "lo", PROTO_TCP, "127.0.0.1", "127.0.0.1", 5061));
	ir_free(rs);
	policy_free(p);
}

/* An outbound allowance admits the edge's call to its destination on its
 * port, though that is a federation port, and nothing else. */
TEST(admits_conn_outbound_allowance)
{
	struct policy *p = parse("version: 1\n" CONN_POLICY "outbound:\n  allow:\n"
				 "    - to: [198.51.100.99]\n      ports: [tcp/5061]\n");
	struct ir_ruleset *rs = gen(p, NULL, NULL, NULL);
	enum ir_hook out = IR_HOOK_OUTPUT;

	CHECK(conn_admitted(rs, out, NULL, PROTO_TCP, "203.0.113.10", "198.51.100.99", 5061));
	CHECK(!conn_admitted(rs, out, NULL, PROTO_TCP, "203.0.113.10", "198.51.100.99", 5269));
	CHECK(!conn_admitted(rs, out, NULL, PROTO_TCP, "203.0.113.10", "198.51.100.98", 5061));
	CHECK(!conn_admitted(rs, IR_HOOK_INPUT, NULL, PROTO_TCP, "198.51.100.99", "203.0.113.10",
			     5061));
	ir_free(rs);
	policy_free(p);
}

/* ---- addresses per service ---------------------------------------------- */

static const char SCOPED[] =
	"version: 1\nservices:\n  media: [udp/3478]\npartners:\n"
	"  fabrikam:\n    services: [sip-federation, xmpp-s2s, media]\n"
	"    direction: both\n    domains: [fabrikam.example.test]\n"
	"    addresses: [198.51.100.15]\n"
	"  other:\n    services: [sip-federation]\n    direction: inbound\n"
	"    addresses: [198.51.100.20]\n";

/* fabrikam's addresses beyond its inline one: from its SIP and XMPP SRV
 * records (scoped), and from a list (0: all its services). */
static const struct { uint8_t last, scope; } SCOPED_X[] = {
	{ 11, SRV_SIP }, { 12, SRV_XMPP }, { 13, SRV_SIP }, { 13, SRV_XMPP },
	{ 16, 0 }, { 17, SRV_SIP | SRV_XMPP },
};

static bool admits4(const struct ir_ruleset *rs, enum ir_field f, uint8_t last,
		    uint8_t proto, uint16_t port)
{
	uint8_t a[4] = { 198, 51, 100, last };

	return ir_admits(rs, f, 4, a, proto, port, NULL, NULL);
}

/* An SRV target is admitted on the ports of the services of its SRV
 * record's kind only; inline and list addresses on all; a target both
 * records name on both; and the ruleset's shape does not depend on the
 * addresses. */
TEST(srv_addresses_per_service)
{
	struct policy *p = parse(SCOPED);
	struct prefix v[ARRAY_SIZE(SCOPED_X)];
	uint8_t scope[ARRAY_SIZE(SCOPED_X)];
	struct gen_addrs x[2] = { { v, ARRAY_SIZE(SCOPED_X), NULL, scope, NULL, NULL, 0 },
				  { NULL, 0, NULL, NULL, NULL, NULL, 0 } };
	struct ir_ruleset *rs, *bare;
	struct ir_diff diff = { 0 };

	if (!p)
		return;
	CHECK_INT((long)partner_srv_scoped(p, &p->partners[0]), SRV_SIP | SRV_XMPP);
	CHECK_INT((long)partner_srv_scoped(p, &p->partners[1]), 0);
	for (size_t i = 0; i < ARRAY_SIZE(SCOPED_X); i++) {
		v[i] = (struct prefix){ .family = 4, .len = 32,
					.a = { 198, 51, 100, SCOPED_X[i].last } };
		scope[i] = SCOPED_X[i].scope;
	}
	rs = gen(p, x, NULL, NULL);
	bare = gen(p, NULL, NULL, NULL);
	for (int f = IR_SADDR; rs && f <= IR_DADDR; f++) {
		CHECK(admits4(rs, f, 11, PROTO_TCP, 5061));
		CHECK(!admits4(rs, f, 11, PROTO_TCP, 5269));
		CHECK(!admits4(rs, f, 11, PROTO_UDP, 3478));
		CHECK(!admits4(rs, f, 12, PROTO_TCP, 5061));
		CHECK(admits4(rs, f, 12, PROTO_TCP, 5269));
		CHECK(!admits4(rs, f, 12, PROTO_UDP, 3478));
		CHECK(admits4(rs, f, 13, PROTO_TCP, 5061));
		CHECK(admits4(rs, f, 13, PROTO_TCP, 5269));
		CHECK(!admits4(rs, f, 13, PROTO_UDP, 3478));
		CHECK(admits4(rs, f, 17, PROTO_TCP, 5061));
		CHECK(admits4(rs, f, 17, PROTO_TCP, 5269));
		CHECK(!admits4(rs, f, 17, PROTO_UDP, 3478));
		for (uint8_t last = 15; last <= 16; last++) {
			CHECK(admits4(rs, f, last, PROTO_TCP, 5061));
			CHECK(admits4(rs, f, last, PROTO_TCP, 5269));
			CHECK(admits4(rs, f, last, PROTO_UDP, 3478));
		}
	}
	/* the other partner of tcp/5061 keeps its own */
	CHECK(rs && admits4(rs, IR_SADDR, 20, PROTO_TCP, 5061));
	CHECK(rs && !admits4(rs, IR_SADDR, 20, PROTO_TCP, 5269));
	/* ports split into classes by the policy, not by the addresses */
	ir_diff(bare, rs, &diff);
	CHECK(!diff.structural);
	CHECK(rs && ir_find_set(rs, "in4_3") != NULL);
	ir_diff_free(&diff);
	ir_free(bare);
	ir_free(rs);
	policy_free(p);
}

/* No split where every service shares the SRV kind, or none has one (the
 * SIP fallback): what the SRV records give is on all the services. */
TEST(srv_addresses_unscoped)
{
	struct policy *p = parse(
		"version: 1\nservices:\n  media: [udp/3478]\npartners:\n"
		"  contoso:\n    services: [sip-federation, web-conferencing]\n"
		"    direction: inbound\n    domains: [contoso.example.test]\n"
		"  litware:\n    services: [media]\n    direction: inbound\n"
		"    domains: [litware.example.test]\n");
	struct prefix a = { .family = 4, .len = 32, .a = { 198, 51, 100, 11 } };
	struct prefix b = { .family = 4, .len = 32, .a = { 198, 51, 100, 12 } };
	uint8_t sip = SRV_SIP;
	struct gen_addrs x[2] = { { &a, 1, NULL, &sip, NULL, NULL, 0 },
				  { &b, 1, NULL, &sip, NULL, NULL, 0 } };
	struct ir_ruleset *rs;

	if (!p)
		return;
	CHECK_INT((long)partner_srv_scoped(p, &p->partners[0]), 0);
	CHECK_INT((long)partner_srv_scoped(p, &p->partners[1]), 0);
	rs = gen(p, x, NULL, NULL);
	CHECK(rs && admits4(rs, IR_SADDR, 11, PROTO_TCP, 5061));
	CHECK(rs && admits4(rs, IR_SADDR, 11, PROTO_TCP, 443));
	CHECK(rs && admits4(rs, IR_SADDR, 12, PROTO_UDP, 3478));
	ir_free(rs);
	policy_free(p);
}

/* The HA pair's rules: conntrackd's port from the peers only, on
 * ha.interface only, in gateway mode on the node's input; the node's own
 * sync datagrams leave (host mode).  (A partner's service on the port is
 * an error: policy/fail/ha-port-clash.yaml.) */
TEST(admits_conn_ha)
{
	struct policy *g = parse("version: 1\nmode: gateway\n"
				 "edge: {addresses: [203.0.113.10]}\n" CONN_POLICY
				 "ha: {peers: [192.0.2.1, 192.0.2.2], interface: ha0,"
				 " conntrackd: true}\n");
	struct policy *h = parse("version: 1\nservices:\n  sync: [udp/3781]\n"
				 "partners:\n  alpha: {services: [sync], addresses: [198.51.100.11]}\n"
				 "ha: {peers: [192.0.2.1, 192.0.2.2], conntrackd: true}\n");
	struct ir_ruleset *rg = gen(g, NULL, NULL, NULL), *rh = gen(h, NULL, NULL, NULL);
	enum ir_hook in = IR_HOOK_INPUT;

	CHECK(conn_admitted(rg, in, "ha0", PROTO_UDP, "192.0.2.2", "192.0.2.1", 3780));
	CHECK(!conn_admitted(rg, in, "eth0", PROTO_UDP, "192.0.2.2", "192.0.2.1", 3780));
	CHECK(!conn_admitted(rg, in, "ha0", PROTO_UDP, "192.0.2.99", "192.0.2.1", 3780));
	CHECK(!conn_admitted(rg, in, "ha0", PROTO_UDP, "198.51.100.11", "192.0.2.1", 3780));
	/* gateway mode filters nothing else of the node's own */
	CHECK(conn_admitted(rg, in, "eth0", PROTO_TCP, "198.51.100.99", "192.0.2.1", 22));
	CHECK(conn_admitted(rg, in, "eth0", PROTO_UDP, "198.51.100.99", "192.0.2.1", 3781));
	CHECK(conn_admitted(rg, IR_HOOK_FORWARD, NULL, PROTO_TCP, "198.51.100.11",
			    "203.0.113.10", 5061));
	/* host mode: the port is the pair's; the partner's service next to it */
	CHECK(conn_admitted(rh, in, NULL, PROTO_UDP, "192.0.2.1", "192.0.2.2", 3780));
	CHECK(!conn_admitted(rh, in, NULL, PROTO_UDP, "198.51.100.11", "192.0.2.2", 3780));
	CHECK(conn_admitted(rh, in, NULL, PROTO_UDP, "198.51.100.11", "192.0.2.2", 3781));
	CHECK(!conn_admitted(rh, in, NULL, PROTO_UDP, "192.0.2.1", "192.0.2.2", 3781));
	CHECK(conn_admitted(rh, IR_HOOK_OUTPUT, NULL, PROTO_UDP, "192.0.2.2", "192.0.2.1",
			    3780));
	ir_free(rg);
	ir_free(rh);
	policy_free(g);
	policy_free(h);
}
