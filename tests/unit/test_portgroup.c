/* test_portgroup.c - a feed's ports per address through the generator:
 * an m365 set's address is admitted on its own ports among the
 * partner's services' (never beyond), on none when they share none (a
 * warning), and the live table gives the same addresses and ports back
 * (what a refused partner keeps); the incremental refresh leaves such a
 * partner to the full derivation.  Documentation addresses only. */
#include "engine/engine.h"
#include "refresh/refresh.h"
#include "generator/generator.h"
#include "tests/harness.h"

static const char policy_yaml[] =
	"version: 1\n"
	"partners:\n"
	"  teams:\n"
	"    services: [av-edge]\n"
	"    feeds:\n"
	"      - url: https://feeds.example/endpoints/worldwide\n"
	"        format: m365\n"
	"        service_area: Skype\n"
	"  webco:\n"
	"    services: [sip-federation, web-conferencing]\n"
	"    addresses: [192.0.2.64/27]\n";

/* Set 11 (udp 3478-3481), 12 (tcp 80, 443), 13 (tcp 443, an address of
 * 12's again), 30 (tcp 8080 only: nothing av-edge opens), an Exchange
 * set (filtered out). */
static const char m365_json[] =
	"[{\"id\": 11, \"serviceArea\": \"Skype\", \"category\": \"Optimize\","
	"  \"required\": true, \"udpPorts\": \"3478,3479,3480,3481\","
	"  \"ips\": [\"198.51.100.0/28\"]},"
	" {\"id\": 12, \"serviceArea\": \"Skype\", \"category\": \"Allow\","
	"  \"required\": true, \"tcpPorts\": \"80,443\","
	"  \"ips\": [\"203.0.113.0/28\", \"2001:db8:12::/48\"]},"
	" {\"id\": 13, \"serviceArea\": \"Skype\", \"category\": \"Allow\","
	"  \"required\": true, \"tcpPorts\": \"443\", \"ips\": [\"203.0.113.0/28\"]},"
	" {\"id\": 30, \"serviceArea\": \"Skype\", \"category\": \"Default\","
	"  \"required\": false, \"tcpPorts\": \"8080\", \"ips\": [\"192.0.2.128/28\"]},"
	" {\"id\": 1, \"serviceArea\": \"Exchange\", \"category\": \"Optimize\","
	"  \"required\": true, \"tcpPorts\": \"443\", \"ips\": [\"192.0.2.240/28\"]}]";

static struct policy *load(void)
{
	struct diag d;
	struct policy *p;

	diag_init(&d, stderr);
	p = policy_parse("t.yaml", policy_yaml, strlen(policy_yaml), &d);
	CHECK(p != NULL);
	return p;
}

/* Partner teams' addresses: the feed's, and one more on all its ports. */
static void teams_addrs(const struct policy *p, struct addr_list *l)
{
	struct feed_addrs a;
	struct diag d;
	struct prefix x;

	diag_init(&d, stderr);
	CHECK(feed_parse(&p->partners[0].feeds[0], "feed", m365_json, strlen(m365_json),
			 &p->guards, &a, &d));
	feed_addrs_push(&a, &p->partners[0].feeds[0].loc, l);
	feed_addrs_free(&a);
	prefix_parse("192.0.2.200/32", &x);
	addr_list_push(l, &x, NULL);
}

static struct ir_ruleset *gen(const struct policy *p, const struct addr_list *l,
			      char **msg)
{
	struct gen_addrs extra[2] = { engine_gen_addrs(&l[0]), engine_gen_addrs(&l[1]) };
	size_t len;
	FILE *m = open_memstream(msg, &len);
	struct diag d;
	struct ir_ruleset *rs;

	diag_init(&d, m);
	rs = generate(p, extra, &d);
	fclose(m);
	return rs;
}

static bool admits(const struct ir_ruleset *rs, enum ir_field f, const char *addr,
		   uint8_t proto, uint16_t port)
{
	struct prefix x;
	uint8_t b[16];

	prefix_parse(addr, &x);
	prefix_first(&x, b);
	return ir_admits(rs, f, x.family, b, proto, port, NULL, NULL);
}

TEST(narrowed_by_services)
{
	struct policy *p = load();
	struct addr_list l[2] = { { 0 } };
	struct ir_ruleset *rs;
	char *msg = NULL;

	if (!p)
		return;
	teams_addrs(p, &l[0]);
	rs = gen(p, l, &msg);
	CHECK(rs != NULL);
	for (int f = IR_SADDR; rs && f <= IR_DADDR; f++) {
		/* set 11: udp 3478 only (av-edge's of 3478-3481) */
		CHECK(admits(rs, f, "198.51.100.1", PROTO_UDP, 3478));
		CHECK(!admits(rs, f, "198.51.100.1", PROTO_UDP, 3479));
		CHECK(!admits(rs, f, "198.51.100.1", PROTO_TCP, 443));
		CHECK(!admits(rs, f, "198.51.100.1", PROTO_UDP, 50000));
		/* sets 12 and 13: tcp 443 only (80 is not av-edge's) */
		CHECK(admits(rs, f, "203.0.113.1", PROTO_TCP, 443));
		CHECK(!admits(rs, f, "203.0.113.1", PROTO_TCP, 80));
		CHECK(!admits(rs, f, "203.0.113.1", PROTO_UDP, 3478));
		CHECK(!admits(rs, f, "203.0.113.1", PROTO_TCP, 50000));
		CHECK(admits(rs, f, "2001:db8:12::1", PROTO_TCP, 443));
		CHECK(!admits(rs, f, "2001:db8:12::1", PROTO_UDP, 3478));
		/* set 30 and the Exchange set: nowhere */
		CHECK(!admits(rs, f, "192.0.2.129", PROTO_TCP, 8080));
		CHECK(!admits(rs, f, "192.0.2.129", PROTO_TCP, 443));
		CHECK(!admits(rs, f, "192.0.2.241", PROTO_TCP, 443));
		/* an address without ports of its own: all av-edge's */
		CHECK(admits(rs, f, "192.0.2.200", PROTO_TCP, 443));
		CHECK(admits(rs, f, "192.0.2.200", PROTO_TCP, 50000));
		CHECK(admits(rs, f, "192.0.2.200", PROTO_UDP, 3478));
		/* the other partner is untouched */
		CHECK(admits(rs, f, "192.0.2.65", PROTO_TCP, 5061));
		CHECK(!admits(rs, f, "198.51.100.1", PROTO_TCP, 5061));
	}
	CHECK(msg && strstr(msg, "partner 'teams': 1 address published for tcp/8080 only is"
			    " admitted nowhere"));
	ir_free(rs);
	free(msg);
	addr_list_free(&l[0]);
	policy_free(p);
}

/* What the live table says of each partner's addresses (and their
 * ports) makes the same table again: what a refused partner keeps is
 * admitted where it was, never on more. */
TEST(live_round_trip)
{
	struct policy *p = load();
	struct addr_list l[2] = { { 0 } }, live[2] = { { 0 } };
	struct ir_ruleset *rs, *again;
	struct ir_diff df = { 0 };
	char *msg = NULL, *msg2 = NULL;

	if (!p)
		return;
	teams_addrs(p, &l[0]);
	rs = gen(p, l, &msg);
	engine_partner_addrs(rs, p, live);
	engine_partner_scopes(rs, p, live);
	CHECK(live[0].pgrp != NULL);
	again = gen(p, live, &msg2);
	CHECK(again != NULL);
	ir_diff(rs, again, &df);
	CHECK(ir_diff_empty(&df));
	CHECK(!strstr(msg2, "admitted nowhere"));
	ir_diff_free(&df);
	ir_free(again);
	ir_free(rs);
	free(msg);
	free(msg2);
	for (int i = 0; i < 2; i++) {
		addr_list_free(&live[i]);
		addr_list_free(&l[i]);
	}
	policy_free(p);
}

TEST(incr_leaves_it_to_full)
{
	struct policy *p = load();
	struct addr_list l[2] = { { 0 } };
	struct ir_ruleset *rs;
	struct prefix_span b[2], a[2];
	size_t padd[2], pdel[2];
	struct engine_incr out = { .padd = padd, .pdel = pdel };
	struct prefix extra;
	char *msg = NULL;

	if (!p)
		return;
	teams_addrs(p, &l[0]);
	rs = gen(p, l, &msg);
	b[0] = (struct prefix_span){ l[0].v, l[0].n, NULL };
	b[1] = a[1] = (struct prefix_span){ &p->partners[1].addresses[0].p, 1, NULL };
	prefix_parse("198.51.100.64/28", &extra);
	addr_list_push_ports(&l[0], &extra, NULL, &(struct portrange){ PROTO_UDP, 3478, 3478 }, 1);
	a[0] = (struct prefix_span){ l[0].v, l[0].n, NULL };
	CHECK(engine_incr(p, rs, b, a, false, &out) == NULL);
	CHECK(strstr(out.why, "partner 'teams' has addresses on the ports a feed gives them"));
	ir_diff_free(&out.diff);
	ir_free(rs);
	free(msg);
	addr_list_free(&l[0]);
	policy_free(p);
}
