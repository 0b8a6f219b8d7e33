/* test_nft.c - the kernel back end against the real kernel, each test in
 * a network namespace of its own (unshare(CLONE_NEWNET)); skipped with a
 * message when not root.  Plus lowering <-> decoding without a kernel. */
#define _GNU_SOURCE
#include "../harness.h"
#include "fixture.h"

#include "generator/generator.h"
#include "nft/kernel-int.h"
#include "nft/nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- building IRs by hand ------------------------------------------------ */

static struct ir_chain *chain(struct ir_ruleset *rs, const char *name, enum ir_hook hook)
{
	struct ir_chain *c;

	rs->chains = xreallocarray(rs->chains, rs->nchains + 1, sizeof(*rs->chains));
	c = &rs->chains[rs->nchains++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	c->hook = hook;
	c->policy = hook ? IR_ACCEPT : IR_VERDICT_NONE;
	c->loc = (struct loc){ "test.yaml", 7, 3 };
	return c;
}

static struct ir_rule *rule(struct ir_ruleset *rs, const char *chain_name,
			    enum ir_rule_kind k, enum ir_verdict v)
{
	struct ir_chain *c = (struct ir_chain *)ir_find_chain(rs, chain_name);
	struct ir_rule *r;

	c->rules = xreallocarray(c->rules, c->nrules + 1, sizeof(*c->rules));
	r = &c->rules[c->nrules++];
	memset(r, 0, sizeof(*r));
	r->kind = k;
	r->verdict = v;
	return r;
}

static struct ir_set *find_set(struct ir_ruleset *rs, const char *name)
{
	return (struct ir_set *)ir_find_set(rs, name);
}

static void counter(struct ir_ruleset *rs, const char *name)
{
	struct ir_counter *c;

	rs->counters = xreallocarray(rs->counters, rs->ncounters + 1, sizeof(*rs->counters));
	c = &rs->counters[rs->ncounters++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	c->comment = xstrdup("a counter");
}

static uint32_t chain_idx(const struct ir_ruleset *rs, const char *name)
{
	return (uint32_t)(ir_find_chain(rs, name) - rs->chains);
}

/* Adds "ADDR[/LEN] PROTO LO HI -> CHAIN" (proto 0: no port part). */
static void elem(struct ir_ruleset *rs, const char *setname, const char *addr,
		 uint8_t proto, uint16_t lo, uint16_t hi, const char *target)
{
	struct ir_set *s = find_set(rs, setname);
	struct ir_elem e = { 0 };

	if (addr)
		CHECK(prefix_parse(addr, &e.addr) == PREFIX_OK);
	e.port = (struct portrange){ proto, lo, hi };
	if (target)
		e.chain = chain_idx(rs, target);
	s->elems = xreallocarray(s->elems, s->nelems + 1, sizeof(*s->elems));
	s->elems[s->nelems++] = e;
}

static int qcmp(const void *a, const void *b)
{
	return ir_elem_cmp(a, b);
}

static void sort_all(struct ir_ruleset *rs)
{
	for (size_t i = 0; i < rs->nsets; i++)
		if (rs->sets[i].nelems)
			qsort(rs->sets[i].elems, rs->sets[i].nelems, sizeof(struct ir_elem), qcmp);
}

static struct ir_rule *match(struct ir_ruleset *rs, const char *c, enum ir_rule_kind k,
			     enum ir_verdict v, uint8_t family, enum ir_field f, const char *s)
{
	struct ir_rule *r = rule(rs, c, k, v);

	r->family = family;
	r->field = f;
	r->set = s ? xstrdup(s) : NULL;
	return r;
}

/* Every rule kind and key type RULESET.md uses, host and gateway rules in
 * one table. */
static struct ir_ruleset *sample(void)
{
	struct ir_ruleset *rs = xcalloc(1, sizeof(*rs));
	struct ir_rule *r;

	rs->table = xstrdup("fwtest");
	rs->comment = xstrdup("managed by fedwall: edits are overwritten");
	chain(rs, "input", IR_HOOK_INPUT);
	chain(rs, "forward", IR_HOOK_FORWARD)->policy = IR_DROP;
	chain(rs, "output", IR_HOOK_OUTPUT)->priority = 10;
	chain(rs, "edge_in", IR_HOOK_NONE)->comment = xstrdup("new connections to the edge");
	chain(rs, "edge_out", IR_HOOK_NONE);
	chain(rs, "in_msn", IR_HOOK_NONE)->comment = xstrdup("partner msn (test.yaml:7)");
	chain(rs, "out_msn", IR_HOOK_NONE);
	chain(rs, "in_acme", IR_HOOK_NONE);
	counter(rs, "dropped_in");
	counter(rs, "dropped_out");
	counter(rs, "in_msn");
	counter(rs, "out_msn");
	counter(rs, "in_acme");
	fixture_add_set(rs, "in4", IR_KEY_ADDR4_PROTO_PORT, true)->comment = xstrdup("partners in");
	fixture_add_set(rs, "in6", IR_KEY_ADDR6_PROTO_PORT, true);
	fixture_add_set(rs, "out4", IR_KEY_ADDR4_PROTO_PORT, true);
	fixture_add_set(rs, "mgmt4", IR_KEY_ADDR4_PROTO_PORT, false);
	fixture_add_set(rs, "fedports", IR_KEY_PROTO_PORT, false);
	fixture_add_set(rs, "edge4", IR_KEY_ADDR4, false);
	fixture_add_set(rs, "edge6", IR_KEY_ADDR6, false);

	rule(rs, "input", IR_R_LOOPBACK, IR_ACCEPT)->ifdir = IR_IIF;
	r = rule(rs, "input", IR_R_JUMP, IR_JUMP);
	r->ifdir = IR_IIF;
	r->ifname = xstrdup("eth0");
	r->target = xstrdup("edge_in");
	r = rule(rs, "output", IR_R_LOOPBACK, IR_ACCEPT);
	r->ifdir = IR_OIF;
	r->comment = xstrdup("loopback");
	rule(rs, "output", IR_R_JUMP, IR_JUMP)->target = xstrdup("edge_out");
	r = match(rs, "forward", IR_R_JUMP, IR_JUMP, 4, IR_DADDR, "edge4");
	r->ifdir = IR_IIF;
	r->ifname = xstrdup("eth1");
	r->target = xstrdup("edge_in");
	match(rs, "forward", IR_R_JUMP, IR_JUMP, 6, IR_SADDR, "edge6")->target = xstrdup("edge_out");

	rule(rs, "edge_in", IR_R_CT_STATE, IR_ACCEPT);
	rule(rs, "edge_in", IR_R_CT_STATE, IR_DROP);
	rule(rs, "edge_in", IR_R_NEW_NOT_SYN, IR_DROP)->comment = xstrdup("SYN first");
	r = rule(rs, "edge_in", IR_R_ICMP, IR_ACCEPT);
	r->family = 4;
	r->icmp_type = 3;
	r = rule(rs, "edge_in", IR_R_ICMP, IR_ACCEPT);
	r->family = 6;
	r->icmp_type = 2;
	match(rs, "edge_in", IR_R_LOOKUP, IR_ACCEPT, 4, IR_SADDR, "mgmt4");
	match(rs, "edge_in", IR_R_VMAP, IR_VERDICT_NONE, 4, IR_SADDR, "in4");
	match(rs, "edge_in", IR_R_VMAP, IR_VERDICT_NONE, 6, IR_SADDR, "in6");
	r = rule(rs, "edge_in", IR_R_LOG, IR_VERDICT_NONE);
	r->rate = 10;
	r->unit = LOG_MINUTE;
	r->log_prefix = xstrdup("fedwall drop: ");
	rule(rs, "edge_in", IR_R_COUNTER, IR_DROP)->target = xstrdup("dropped_in");
	/* the HA pair's: VRRP and conntrackd's port, with and without an
	 * interface, an address set and a counter */
	r = match(rs, "input", IR_R_PROTO, IR_ACCEPT, 4, IR_SADDR, "edge4");
	r->ifdir = IR_IIF;
	r->ifname = xstrdup("ha0");
	r->l4proto = 112;
	r->target = xstrdup("in_acme");
	r = match(rs, "input", IR_R_PROTO, IR_ACCEPT, 6, IR_SADDR, "edge6");
	r->l4proto = PROTO_UDP;
	r->dport = 3780;
	r = rule(rs, "input", IR_R_PROTO, IR_DROP);
	r->l4proto = PROTO_UDP;
	r->dport = 3780;
	r->target = xstrdup("dropped_in");
	r = rule(rs, "output", IR_R_PROTO, IR_ACCEPT);
	r->ifdir = IR_OIF;
	r->ifname = xstrdup("ha0");
	r->l4proto = 112;
	rule(rs, "edge_out", IR_R_NEW_NOT_SYN, IR_DROP);
	match(rs, "edge_out", IR_R_VMAP, IR_VERDICT_NONE, 4, IR_DADDR, "out4");
	r = match(rs, "edge_out", IR_R_LOG, IR_VERDICT_NONE, 0, IR_SADDR, "fedports");
	r->rate = 3;
	r->unit = LOG_HOUR;
	r->log_prefix = xstrdup("");
	r = match(rs, "edge_out", IR_R_COUNTER, IR_DROP, 0, IR_SADDR, "fedports");
	r->target = xstrdup("dropped_out");
	r->comment = xstrdup("strangers on federation ports");
	rule(rs, "in_msn", IR_R_COUNTER, IR_ACCEPT)->target = xstrdup("in_msn");
	rule(rs, "out_msn", IR_R_COUNTER, IR_ACCEPT)->target = xstrdup("out_msn");
	rule(rs, "in_acme", IR_R_COUNTER, IR_ACCEPT)->target = xstrdup("in_acme");

	elem(rs, "in4", "198.51.100.7", PROTO_TCP, 5061, 5061, "in_msn");
	elem(rs, "in4", "198.51.100.128/25", PROTO_UDP, 50000, 59999, "in_msn");
	elem(rs, "in4", "203.0.113.0/24", PROTO_TCP, 5061, 5061, "in_acme");
	elem(rs, "in6", "2001:db8:1::/48", PROTO_TCP, 5061, 5061, "in_msn");
	elem(rs, "in6", "2001:db8:2::5", PROTO_UDP, 3478, 3478, "in_acme");
	elem(rs, "out4", "198.51.100.7", PROTO_TCP, 5061, 5061, "out_msn");
	elem(rs, "mgmt4", "192.0.2.0/24", PROTO_TCP, 22, 22, NULL);
	elem(rs, "fedports", NULL, PROTO_TCP, 5061, 5061, NULL);
	elem(rs, "fedports", NULL, PROTO_UDP, 50000, 59999, NULL);
	elem(rs, "edge4", "203.0.113.10", 0, 0, 0, NULL);
	elem(rs, "edge4", "198.51.100.0/24", 0, 0, 0, NULL);
	elem(rs, "edge4", "198.51.101.0/25", 0, 0, 0, NULL);     /* adjacent */
	elem(rs, "edge4", "255.255.255.255", 0, 0, 0, NULL);     /* no end bound */
	elem(rs, "edge6", "2001:db8:10::10", 0, 0, 0, NULL);
	elem(rs, "edge6", "2001:db8:20::/48", 0, 0, 0, NULL);
	sort_all(rs);
	return rs;
}

/* ---- kernel plumbing --------------------------------------------------------- */


struct mdiag {
	struct diag d;
	char *buf;
	size_t len;
};

static void mdiag_init(struct mdiag *m)
{
	m->buf = NULL;
	m->len = 0;
	diag_init(&m->d, open_memstream(&m->buf, &m->len));
}

static const char *mdiag_text(struct mdiag *m)
{
	fflush(m->d.out);
	return m->buf ? m->buf : "";
}

static void mdiag_free(struct mdiag *m)
{
	fclose(m->d.out);
	free(m->buf);
}

/* What the commit of the last sync_to() did (zeros: it committed
 * nothing). */
static struct nft_commit_result synced;

/* Commits `want` over whatever is live; returns the commit's result. */
static int sync_to(struct nft_ctx *ctx, const struct ir_ruleset *want, struct diag *d)
{
	struct ir_ruleset *live = NULL;
	struct ir_diff diff;
	uint32_t genid = 0;
	int ret = nft_read(ctx, want->table, &live, &genid);

	if (ret && ret != -ENOENT)
		return ret;
	memset(&synced, 0, sizeof(synced));
	ir_diff(live, want, &diff);
	ret = ir_diff_empty(&diff) ? 0
	      : nft_commit(ctx, live, want, &diff, genid, &synced, d);
	ir_diff_free(&diff);
	ir_free(live);
	return ret;
}

/* True when the kernel holds exactly `want`. */
static bool live_is(struct nft_ctx *ctx, const struct ir_ruleset *want)
{
	struct ir_ruleset *live = NULL;
	struct ir_diff diff;
	uint32_t genid;
	bool same;

	if (nft_read(ctx, want->table, &live, &genid))
		return false;
	ir_diff(live, want, &diff);
	same = ir_diff_empty(&diff) && !nft_foreign(ctx);
	if (!same)
		fprintf(stderr, "live differs: %s\n", diff.why ? diff.why : "elements");
	ir_diff_free(&diff);
	ir_free(live);
	return same;
}

static uint64_t counter_packets(struct nft_ctx *ctx, const char *table, const char *name)
{
	struct ir_ruleset *live = NULL;
	uint32_t genid;
	uint64_t n = (uint64_t)-1;

	if (nft_read(ctx, table, &live, &genid))
		return n;
	for (size_t i = 0; i < live->ncounters; i++)
		if (!strcmp(live->counters[i].name, name))
			n = live->counters[i].packets;
	ir_free(live);
	return n;
}

/* A packet through the output hook: a UDP datagram to 192.0.2.2 out of a
 * veth (it hits `jump edge_out` and the drop counter). */
static void send_probe(void)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(50001) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	inet_pton(AF_INET, "192.0.2.2", &to.sin_addr);
	if (fd >= 0) {
		(void)!sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
		close(fd);
	}
}

static bool setup_dummy(void)
{
	return system("ip link add fwt0 type veth peer name fwt1 && "
		      "ip addr add 192.0.2.1/24 dev fwt0 && ip link set fwt1 up && "
		      "ip link set fwt0 up && ip link set lo up") == 0;
}

static char *capture(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	struct strbuf sb = { 0 };
	char buf[4096];
	size_t n;

	if (!p)
		return xstrdup("");
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		sb_add(&sb, buf, n);
	pclose(p);
	return sb.s ? sb.s : xstrdup("");
}

/* ---- without a kernel: lowering and decoding agree ------------------------------- */

TEST(lower_decode_round_trip)
{
	struct ir_ruleset *rs = sample();

	for (size_t i = 0; i < rs->nchains; i++) {
		const struct ir_chain *c = &rs->chains[i];

		for (size_t j = 0; j < c->nrules; j++) {
			const char *err = NULL;
			struct nftnl_rule *kr = nft_lower_rule(rs, c, &c->rules[j], NULL, &err);
			struct ir_rule back;
			struct ir_diff diff;

			CHECK(kr != NULL);
			if (!kr)
				continue;
			CHECK(nft_decode_rule(rs, kr, &back));
			nftnl_rule_free(kr);
			/* Compare through ir_diff: swap the rule in a copy. */
			struct ir_rule saved = c->rules[j];

			((struct ir_chain *)c)->rules[j] = back;
			ir_diff(rs, rs, &diff);
			CHECK(ir_diff_empty(&diff));
			ir_diff_free(&diff);
			CHECK_INT(back.kind, saved.kind);
			CHECK_INT(back.verdict, saved.verdict);
			CHECK_INT(back.family, saved.family);
			CHECK_INT(back.ifdir, saved.ifdir);
			free(back.ifname);
			free(back.set);
			free(back.target);
			free(back.log_prefix);
			free(back.comment);
			((struct ir_chain *)c)->rules[j] = saved;
		}
	}
	ir_free(rs);
}

TEST(elem_encoding)
{
	struct ir_ruleset *rs = sample();
	const struct ir_set *in4 = ir_find_set(rs, "in4"), *edge4 = ir_find_set(rs, "edge4");
	struct nft_kelem k[2];
	struct strbuf sb = { 0 };

	/* 198.51.100.7 . tcp . 5061: one element, key and key_end. */
	CHECK_INT(nft_elem_encode(in4, &in4->elems[0], k), 1);
	CHECK(k[0].has_end);
	CHECK(!memcmp(k[0].key, "\xc6\x33\x64\x07\x06\0\0\0\x13\xc5\0\0", 12));
	nft_elem_fmt(in4, &in4->elems[0], &sb);
	CHECK_STR(sb_str(&sb), "198.51.100.7 . tcp . 5061");
	sb_free(&sb);
	/* 255.255.255.255: a start bound only. */
	for (size_t i = 0; i < edge4->nelems; i++) {
		char buf[PREFIX_STRLEN];
		size_t n = nft_elem_encode(edge4, &edge4->elems[i], k);

		prefix_fmt(&edge4->elems[i].addr, buf, sizeof(buf));
		CHECK_INT(n, strcmp(buf, "255.255.255.255") ? 2 : 1);
		if (n == 2)
			CHECK(k[1].interval_end);
	}
	ir_free(rs);
}

/* ---- against the kernel -------------------------------------------------------- */

TEST(commit_read_back_is_identical)
{
	struct ir_ruleset *rs;
	struct nft_ctx *ctx;
	struct mdiag m;
	uint32_t genid;
	struct ir_ruleset *live = NULL;

	if (!fixture_netns(__func__))
		return;
	rs = sample();
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(nft_read(ctx, rs->table, &live, &genid), -ENOENT);
	CHECK(live == NULL);
	CHECK_INT(sync_to(ctx, rs, &m.d), 0);
	CHECK(synced.replaced);
	CHECK_STR(mdiag_text(&m), "");
	CHECK(live_is(ctx, rs));
	/* A second pass has nothing to do. */
	ctx->last_msgs = 99;
	CHECK_INT(sync_to(ctx, rs, &m.d), 0);
	CHECK_INT(ctx->last_msgs, 99);
	/* nft itself reads it back the way RULESET.md shows it. */
	char *text = capture("nft list table inet fwtest");

	CHECK(strstr(text, "ip saddr . meta l4proto . th dport vmap @in4") != NULL);
	CHECK(strstr(text, "iifname \"eth1\" ip daddr @edge4 jump edge_in") != NULL);
	CHECK(strstr(text, "meta l4proto . th dport @fedports counter name \"dropped_out\" drop"
			   " comment \"strangers on federation ports\"") != NULL);
	CHECK(strstr(text, "ct state established,related accept") != NULL);
	CHECK(strstr(text, "tcp flags != syn / fin,syn,rst,ack ct state new drop"
			   " comment \"SYN first\"") != NULL);
	CHECK(strstr(text, "icmpv6 type packet-too-big accept") != NULL);
	CHECK(strstr(text, "limit rate 3/hour log") != NULL);
	CHECK(strstr(text, "elements = { 198.51.100.0/24, 198.51.101.0/25,") != NULL);
	CHECK(strstr(text, "2001:db8:1::/48 . tcp . 5061 : jump in_msn") != NULL);
	CHECK(strstr(text, "comment \"managed by fedwall: edits are overwritten\"") != NULL);
	free(text);
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(rs);
}

TEST(element_change_sends_only_elements_and_keeps_counters)
{
	struct ir_ruleset *a, *b;
	struct nft_ctx *ctx;
	struct mdiag m;
	char *h1, *h2;

	if (!fixture_netns(__func__))
		return;
	CHECK(setup_dummy());
	a = sample();
	b = sample();
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	send_probe();
	send_probe();
	CHECK_INT(counter_packets(ctx, a->table, "dropped_out"), 2);
	h1 = capture("nft -a list tables | grep fwtest");
	/* Move one address between partners, drop one, add a v6 one. */
	find_set(b, "in4")->elems[0].chain = chain_idx(b, "in_acme");
	find_set(b, "edge6")->nelems--;
	elem(b, "in6", "2001:db8:3::/64", PROTO_TCP, 443, 443, "in_msn");
	elem(b, "edge4", "192.0.2.0/28", 0, 0, 0, NULL);
	sort_all(b);
	CHECK_INT(sync_to(ctx, b, &m.d), 0);
	CHECK(!synced.replaced);
	CHECK(ctx->last_msgs > 0);
	CHECK_INT(ctx->last_elem_msgs, ctx->last_msgs);
	CHECK(live_is(ctx, b));
	CHECK_INT(counter_packets(ctx, a->table, "dropped_out"), 2);
	h2 = capture("nft -a list tables | grep fwtest");
	CHECK_STR(h2, h1);
	CHECK_STR(mdiag_text(&m), "");
	free(h1);
	free(h2);
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
	ir_free(b);
}

TEST(structural_change_replaces)
{
	struct ir_ruleset *a, *b;
	struct nft_ctx *ctx;
	struct mdiag m;

	if (!fixture_netns(__func__))
		return;
	CHECK(setup_dummy());
	a = sample();
	b = sample();
	chain(b, "in_new", IR_HOOK_NONE);
	rule(b, "in_new", IR_R_COUNTER, IR_ACCEPT)->target = xstrdup("in_new");
	counter(b, "in_new");
	elem(b, "in4", "192.0.2.64/26", PROTO_TCP, 5222, 5269, "in_new");
	sort_all(b);
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	send_probe();
	CHECK_INT(counter_packets(ctx, a->table, "dropped_out"), 1);
	CHECK_INT(sync_to(ctx, b, &m.d), 0);
	CHECK(synced.replaced);
	CHECK(live_is(ctx, b));
	CHECK_INT(counter_packets(ctx, a->table, "dropped_out"), 0);
	/* And back. */
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK(live_is(ctx, a));
	CHECK_STR(mdiag_text(&m), "");
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
	ir_free(b);
}

TEST(large_set_spans_several_messages_in_one_batch)
{
	struct ir_ruleset *rs;
	struct nft_ctx *ctx;
	struct mdiag m;
	struct ir_set *in6, *edge4;

	if (!fixture_netns(__func__))
		return;
	rs = sample();
	in6 = find_set(rs, "in6");
	edge4 = find_set(rs, "edge4");
	free(in6->elems);
	in6->elems = xcalloc(20000, sizeof(*in6->elems));
	in6->nelems = 20000;
	free(edge4->elems);
	edge4->elems = xcalloc(20000, sizeof(*edge4->elems));
	edge4->nelems = 20000;
	for (unsigned i = 0; i < 20000; i++) {
		struct ir_elem *e = &in6->elems[i];

		prefix_parse("2001:db8::", &e->addr);
		e->addr.a[12] = (uint8_t)(i >> 8);
		e->addr.a[13] = (uint8_t)i;
		e->port = (struct portrange){ PROTO_TCP, 5061, 5061 };
		e->chain = chain_idx(rs, i % 2 ? "in_msn" : "in_acme");
		e = &edge4->elems[i];
		/* 10.0.0.0/8 is not a lab address: this set is never matched. */
		prefix_parse("10.0.0.0", &e->addr);
		e->addr.a[1] = (uint8_t)(i >> 8);
		e->addr.a[2] = (uint8_t)i;
		e->addr.len = 24;
	}
	sort_all(rs);
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, rs, &m.d), 0);
	CHECK(ctx->last_elem_msgs > 10);
	CHECK_STR(mdiag_text(&m), "");
	CHECK(live_is(ctx, rs));
	/* Deleting half of a concatenated set costs far more than a rebuild
	 * (each delete is linear in the set's size): that set alone is
	 * rebuilt and swapped in, the table stays. */
	in6->nelems = 10000;
	CHECK_INT(sync_to(ctx, rs, &m.d), 0);
	CHECK(!synced.replaced);
	CHECK_INT(synced.swapped, 1);
	CHECK(live_is(ctx, rs));
	/* A few deletes from the concatenated set, many from the single-field
	 * one: element messages only, several of them. */
	in6->nelems = 9995;
	edge4->nelems = 15000;
	CHECK_INT(sync_to(ctx, rs, &m.d), 0);
	CHECK(!synced.replaced);
	CHECK_INT(synced.swapped, 0);
	CHECK(ctx->last_elem_msgs > 2);
	CHECK_INT(ctx->last_elem_msgs, ctx->last_msgs);
	CHECK(live_is(ctx, rs));
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(rs);
}

static const char other_table[] =
	"table inet other {\n"
	"	set s { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }\n"
	"	counter c { }\n"
	"	chain in { type filter hook input priority -5; policy accept;\n"
	"		ip saddr @s counter accept\n"
	"	}\n"
	"	chain helper { tcp dport 22 accept; }\n"
	"}\n"
	"table ip fwtest {\n\tchain c {\n\t\tcounter\n\t}\n}\n";

TEST(other_tables_survive_apply_reapply_flush)
{
	struct ir_ruleset *a, *b;
	struct nft_ctx *ctx;
	struct mdiag m;
	char *before, *after;
	FILE *f;

	if (!fixture_netns(__func__))
		return;
	f = popen("nft -f -", "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(other_table, f);
	CHECK_INT(pclose(f), 0);
	before = capture("nft list table inet other; nft list table ip fwtest");
	CHECK(strstr(before, "chain helper") != NULL);
	a = sample();
	b = sample();
	find_set(b, "mgmt4")->nelems = 0;
	rule(b, "edge_in", IR_R_CT_STATE, IR_DROP);
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK_INT(sync_to(ctx, b, &m.d), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK_INT(nft_delete_table(ctx, a->table, &m.d), 0);
	CHECK_INT(nft_delete_table(ctx, a->table, &m.d), -ENOENT);
	CHECK_STR(mdiag_text(&m), "");
	after = capture("nft list table inet other; nft list table ip fwtest");
	CHECK_STR(after, before);
	free(before);
	free(after);
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
	ir_free(b);
}

TEST(refused_commit_leaves_previous_ruleset_whole)
{
	struct ir_ruleset *a, *bad;
	struct nft_commit_result cr;
	struct nft_ctx *ctx;
	struct mdiag m;
	struct ir_ruleset *live = NULL;
	struct ir_diff diff;
	uint32_t genid;
	int ret;

	if (!fixture_netns(__func__))
		return;
	a = sample();
	bad = sample();
	/* Structural: a jump to a chain that does not exist. */
	rule(bad, "edge_in", IR_R_JUMP, IR_JUMP)->target = xstrdup("nowhere");
	rule(bad, "edge_out", IR_R_JUMP, IR_JUMP)->target = xstrdup("nowhere_either");
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	ret = sync_to(ctx, bad, &m.d);
	CHECK(ret < 0);
	CHECK(strstr(mdiag_text(&m), "test.yaml:7:3: error: kernel refused rule 11 of chain"
				     " 'edge_in'") != NULL);
	CHECK(strstr(mdiag_text(&m), "rule 5 of chain 'edge_out'") != NULL);
	CHECK(live_is(ctx, a));

	/* Element-only: an element overlapping one that is there. */
	CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
	elem(bad, "in4", "198.51.100.0/24", PROTO_TCP, 5061, 5061, "in_acme");
	sort_all(bad);
	ir_free(bad);
	bad = sample();
	elem(bad, "in4", "198.51.100.200", PROTO_UDP, 55000, 55000, "in_acme");
	elem(bad, "mgmt4", "192.0.2.0/25", PROTO_TCP, 22, 22, NULL);
	sort_all(bad);
	ir_diff(live, bad, &diff);
	CHECK(!diff.structural);
	ret = nft_commit(ctx, live, bad, &diff, genid, &cr, &m.d);
	CHECK(ret == -EEXIST || ret == -ENOTEMPTY);
	CHECK(strstr(mdiag_text(&m), "test.yaml:7:3: error: kernel refused set 'in4' element"
				     " 198.51.100.200 . udp . 55000: File exists") != NULL);
	CHECK(strstr(mdiag_text(&m), "kernel refused set 'mgmt4' element 192.0.2.0/25") != NULL);
	ir_diff_free(&diff);
	ir_free(live);
	CHECK(live_is(ctx, a));
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
	ir_free(bad);
}

TEST(genid_moved_gives_erestart)
{
	struct ir_ruleset *a, *b, *live = NULL;
	struct nft_commit_result cr;
	struct nft_ctx *ctx;
	struct ir_diff diff;
	struct mdiag m;
	uint32_t genid;

	if (!fixture_netns(__func__))
		return;
	a = sample();
	b = sample();
	find_set(b, "mgmt4")->nelems = 0;
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
	CHECK_INT(system("nft add table inet somebody_else"), 0);
	ir_diff(live, b, &diff);
	CHECK_INT(nft_commit(ctx, live, b, &diff, genid, &cr, &m.d), -ERESTART);
	CHECK(live_is(ctx, a));
	/* Reading again gives a generation the kernel accepts. */
	ir_diff_free(&diff);
	ir_free(live);
	CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
	ir_diff(live, b, &diff);
	CHECK_INT(nft_commit(ctx, live, b, &diff, genid, &cr, &m.d), 0);
	CHECK(live_is(ctx, b));
	CHECK_STR(mdiag_text(&m), "");
	ir_diff_free(&diff);
	ir_free(live);
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
	ir_free(b);
}

TEST(foreign_rule_forces_replace)
{
	struct ir_ruleset *a, *live = NULL;
	struct nft_ctx *ctx;
	struct mdiag m;
	uint32_t genid;

	if (!fixture_netns(__func__))
		return;
	a = sample();
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK_INT(system("nft add rule inet fwtest edge_in tcp dport 1234 accept"), 0);
	CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
	CHECK(nft_foreign(ctx) != NULL);
	ir_free(live);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK(synced.replaced);
	CHECK(live_is(ctx, a));
	CHECK(nft_foreign(ctx) == NULL);
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
}

/* A SYN check that is not fedwall's (another mask, another ct state) is
 * not mistaken for IR_R_NEW_NOT_SYN. */
TEST(other_tcp_flags_rules_are_foreign)
{
	static const char *const rules[] = {
		"tcp flags & (syn | ack) != syn ct state new drop",
		"tcp flags & (fin | syn | rst | ack) != syn ct state invalid drop",
		"tcp flags & (fin | syn | rst | ack) != syn drop",
		"tcp flags & (fin | syn | rst | ack) != syn ct state new accept",
	};
	struct ir_ruleset *a, *live = NULL;
	struct nft_ctx *ctx;
	struct mdiag m;
	uint32_t genid;
	char cmd[256];

	if (!fixture_netns(__func__))
		return;
	a = sample();
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		CHECK_INT(sync_to(ctx, a, &m.d), 0);
		CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
		CHECK(nft_foreign(ctx) == NULL);
		ir_free(live);
		snprintf(cmd, sizeof(cmd), "nft 'insert rule inet fwtest edge_out %s'", rules[i]);
		CHECK_INT(system(cmd), 0);
		CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
		if (nft_foreign(ctx) == NULL)
			fprintf(stderr, "not foreign: %s\n", rules[i]);
		CHECK(nft_foreign(ctx) != NULL);
		ir_free(live);
	}
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
}

/* A dormant table filters nothing: read back with its flags, it differs
 * structurally (plan names it) and the commit replaces it, awake. */
TEST(dormant_table_is_drift_and_replaced)
{
	struct ir_ruleset *a, *live = NULL;
	struct nft_ctx *ctx;
	struct mdiag m;
	struct ir_diff d;
	uint32_t genid, before;

	if (!fixture_netns(__func__))
		return;
	a = sample();
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK_INT(nft_genid(ctx, &before), 0);
	CHECK_INT(system("nft add table inet fwtest '{ flags dormant; }'"), 0);
	CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
	/* the generation moved: a cache keyed by it is read again */
	CHECK(genid != before);
	CHECK(nft_foreign(ctx) == NULL);
	CHECK(live && live->flags == IR_TABLE_F_DORMANT);
	ir_diff(live, a, &d);
	CHECK(d.structural && d.why && strstr(d.why, "dormant"));
	ir_diff_free(&d);
	ir_free(live);
	live = NULL;
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK(synced.replaced);
	CHECK(live_is(ctx, a));
	CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
	CHECK(live && live->flags == 0);
	ir_free(live);
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
}

/* The counting forms of the ct state and SYN rules read back as
 * fedwall's (an extra one is a structural difference, not foreign);
 * with an anonymous counter they are not fedwall's: foreign. */
TEST(counting_rules_read_back_exactly)
{
	static const char *const rules[] = {
		"ct state invalid counter name dropped_in drop",
		"ct state invalid counter drop",
		"tcp flags & (fin | syn | rst | ack) != syn ct state new counter drop",
	};
	struct ir_ruleset *a, *live = NULL;
	struct nft_ctx *ctx;
	struct mdiag m;
	uint32_t genid;
	char cmd[256];

	if (!fixture_netns(__func__))
		return;
	a = sample();
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		struct ir_diff d;

		CHECK_INT(sync_to(ctx, a, &m.d), 0);
		snprintf(cmd, sizeof(cmd), "nft 'insert rule inet fwtest edge_in %s'", rules[i]);
		CHECK_INT(system(cmd), 0);
		CHECK_INT(nft_read(ctx, a->table, &live, &genid), 0);
		ir_diff(live, a, &d);
		CHECK(d.structural && d.why && strstr(d.why, "edge_in"));
		if ((i == 0) != (nft_foreign(ctx) == NULL))
			fprintf(stderr, "foreign or not, wrongly: %s\n", rules[i]);
		CHECK((i == 0) == (nft_foreign(ctx) == NULL));
		ir_diff_free(&d);
		ir_free(live);
	}
	nft_close(ctx);
	mdiag_free(&m);
	ir_free(a);
}

/* ---- set swaps and revocation, with real connections ------------------------ */

/* A second namespace ("the outside") joined by a veth pair: eth0 here
 * (the interface sample() filters) with 192.0.2.1, 198.51.100.1 and
 * 203.0.113.1, eth0 there with 192.0.2.22 (management), 198.51.100.7
 * (partner msn) and 203.0.113.5 (partner acme). */
struct peer {
	char name[64];
	int here, there;        /* namespace fds */
};

static bool peer_up(struct peer *p)
{
	char cmd[1024];

	snprintf(p->name, sizeof(p->name), "fwt-h7-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %1$s && ip link add eth0 type veth peer name eth0 netns %1$s &&"
		 " ip link set lo up && ip link set eth0 up &&"
		 " ip addr add 192.0.2.1/24 dev eth0 && ip addr add 198.51.100.1/24 dev eth0 &&"
		 " ip addr add 203.0.113.1/24 dev eth0 &&"
		 " ip -n %1$s link set lo up && ip -n %1$s link set eth0 up &&"
		 " ip -n %1$s addr add 192.0.2.22/24 dev eth0 &&"
		 " ip -n %1$s addr add 198.51.100.7/24 dev eth0 &&"
		 " ip -n %1$s addr add 203.0.113.5/24 dev eth0", p->name);
	if (system(cmd) != 0)
		return false;
	snprintf(cmd, sizeof(cmd), "/run/netns/%s", p->name);
	p->here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	p->there = open(cmd, O_RDONLY | O_CLOEXEC);
	return p->here >= 0 && p->there >= 0;
}

static void peer_down(struct peer *p)
{
	char cmd[128];

	close(p->here);
	close(p->there);
	snprintf(cmd, sizeof(cmd), "ip netns del %s", p->name);
	CHECK_INT(system(cmd), 0);
}

static struct sockaddr_in sin4(const char *addr, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, addr, &a.sin_addr);
	return a;
}

/* A TCP socket of namespace `ns` (sockets stay where they were made). */
static int tcp_in(struct peer *p, bool there)
{
	int fd, one = 1;

	if (there && setns(p->there, CLONE_NEWNET) < 0)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (there)
		CHECK_INT(setns(p->here, CLONE_NEWNET), 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	return fd;
}

static int listener(struct peer *p, bool there, const char *addr, uint16_t port)
{
	int fd = tcp_in(p, there);
	struct sockaddr_in a = sin4(addr, port);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0) {
		perror("listener");
		return -1;
	}
	return fd;
}

/* An established connection from src (in the namespace `there` or here)
 * to dst:port; conn[0] the client, conn[1] the accepted end. */
static bool connect_pair(struct peer *p, bool there, int lfd, const char *src,
			 const char *dst, uint16_t port, int conn[2])
{
	struct sockaddr_in s = sin4(src, 0), d = sin4(dst, port);
	struct timeval tv = { 2, 0 };

	conn[0] = tcp_in(p, there);
	conn[1] = -1;
	if (conn[0] < 0 || bind(conn[0], (struct sockaddr *)&s, sizeof(s)) < 0)
		return false;
	setsockopt(conn[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(conn[0], (struct sockaddr *)&d, sizeof(d)) < 0) {
		perror("connect");
		return false;
	}
	conn[1] = accept(lfd, NULL, NULL);
	return conn[1] >= 0;
}

/* A byte written at one end arrives at the other within `ms`. */
static bool flows(int conn[2], int ms)
{
	struct pollfd pf = { .fd = conn[1], .events = POLLIN };
	char c = 'x';

	if (write(conn[0], &c, 1) != 1 || poll(&pf, 1, ms) != 1)
		return false;
	return read(conn[1], &c, 1) == 1;
}

static void close_pair(int conn[2])
{
	close(conn[0]);
	close(conn[1]);
}

/* Conntrack entries of one tcp flow, counted by the conntrack tool. */
static int ct_count(const char *src, const char *dst, unsigned dport)
{
	char cmd[256], *out;
	int n;

	snprintf(cmd, sizeof(cmd), "conntrack -L -p tcp -s %s -d %s --dport %u 2>/dev/null"
		 " | grep -c ESTABLISHED", src, dst, dport);
	out = capture(cmd);
	n = atoi(out);
	free(out);
	return n;
}

/* sample(), plus what the connections below need: msn also on
 * tcp/5269, acme on tcp/22 from 192.0.2.16/28 (inside management). */
static struct ir_ruleset *sample_conns(void)
{
	struct ir_ruleset *rs = sample();

	elem(rs, "in4", "198.51.100.7", PROTO_TCP, 5269, 5269, "in_msn");
	elem(rs, "in4", "192.0.2.16/28", PROTO_TCP, 22, 22, "in_acme");
	sort_all(rs);
	return rs;
}

static void drop_elem(struct ir_ruleset *rs, const char *setname, const char *addr,
		      uint16_t port)
{
	struct ir_set *s = find_set(rs, setname);
	struct prefix p;

	CHECK(prefix_parse(addr, &p) == PREFIX_OK);
	for (size_t i = 0; i < s->nelems; i++) {
		if (!prefix_cmp(&s->elems[i].addr, &p) && s->elems[i].port.lo == port) {
			memmove(&s->elems[i], &s->elems[i + 1],
				(s->nelems - i - 1) * sizeof(*s->elems));
			s->nelems--;
			return;
		}
	}
	CHECK(!"element to drop not found");
}

enum { C_MSN, C_MSN_XMPP, C_ACME, C_MGMT, C_OUT, NCONN };

/* Five established connections through the firewall: msn to :5061 and
 * :5269, acme to :5061, management to :22 (also inside an acme element),
 * and this side to msn's :5061 (out4). */
static bool conns_up(struct peer *p, int l[4], int c[NCONN][2])
{
	l[0] = listener(p, false, "0.0.0.0", 5061);
	l[1] = listener(p, false, "0.0.0.0", 5269);
	l[2] = listener(p, false, "0.0.0.0", 22);
	l[3] = listener(p, true, "198.51.100.7", 5061);
	return l[0] >= 0 && l[1] >= 0 && l[2] >= 0 && l[3] >= 0 &&
	       connect_pair(p, true, l[0], "198.51.100.7", "192.0.2.1", 5061, c[C_MSN]) &&
	       connect_pair(p, true, l[1], "198.51.100.7", "192.0.2.1", 5269, c[C_MSN_XMPP]) &&
	       connect_pair(p, true, l[0], "203.0.113.5", "203.0.113.1", 5061, c[C_ACME]) &&
	       connect_pair(p, true, l[2], "192.0.2.22", "192.0.2.1", 22, c[C_MGMT]) &&
	       connect_pair(p, false, l[3], "198.51.100.1", "198.51.100.7", 5061, c[C_OUT]);
}

static void conns_down(int l[4], int c[NCONN][2])
{
	for (int i = 0; i < NCONN; i++)
		close_pair(c[i]);
	for (int i = 0; i < 4; i++)
		close(l[i]);
}

static bool have_conntrack_tool(const char *test)
{
	if (system("command -v conntrack >/dev/null 2>&1") == 0)
		return true;
	fprintf(stderr, "skip: %s: no conntrack tool (Debian package conntrack)\n", test);
	return false;
}

/* Only what left is cut: msn's 5061 in and out; msn's 5269, acme and the
 * management session (inside an acme element that left too) keep
 * flowing.  Element deltas; then a partner leaving (structural). */
TEST(revocation_cuts_only_what_left)
{
	struct ir_ruleset *a, *b, *c;
	int l[4], conn[NCONN][2];
	struct nft_ctx *ctx;
	struct peer p;
	struct mdiag m;

	if (!fixture_netns(__func__) || !have_conntrack_tool(__func__))
		return;
	CHECK(peer_up(&p));
	a = sample_conns();
	b = sample_conns();
	drop_elem(b, "in4", "198.51.100.7", 5061);
	drop_elem(b, "out4", "198.51.100.7", 5061);
	drop_elem(b, "in4", "192.0.2.16/28", 22);
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK(conns_up(&p, l, conn));
	for (int i = 0; i < NCONN; i++)
		CHECK(flows(conn[i], 2000));
	CHECK_INT(ct_count("198.51.100.7", "192.0.2.1", 5061), 1);

	CHECK_INT(sync_to(ctx, b, &m.d), 0);
	CHECK(!synced.replaced);
	CHECK_INT(synced.revoked, 2);
	CHECK(strstr(mdiag_text(&m), "note: revoked 1 connection of 198.51.100.7 (tcp/5061)"
				     " in map 'in4', was jump in_msn") != NULL);
	CHECK(strstr(mdiag_text(&m), "revoked 1 connection of 198.51.100.7 (tcp/5061)"
				     " in map 'out4'") != NULL);
	CHECK(strstr(mdiag_text(&m), "error") == NULL && strstr(mdiag_text(&m), "warn") == NULL);
	CHECK_INT(ct_count("198.51.100.7", "192.0.2.1", 5061), 0);
	CHECK_INT(ct_count("198.51.100.1", "198.51.100.7", 5061), 0);
	CHECK(!flows(conn[C_MSN], 300));
	CHECK(flows(conn[C_MSN_XMPP], 2000));
	CHECK(flows(conn[C_ACME], 2000));
	CHECK(flows(conn[C_MGMT], 2000));
	CHECK_INT(ct_count("192.0.2.22", "192.0.2.1", 22), 1);

	/* msn's last elements leave with a structural change (the table is
	 * replaced, as when a partner leaves the policy): its last
	 * connection (5269) goes, acme's stays. */
	c = sample_conns();
	drop_elem(c, "in4", "198.51.100.7", 5061);
	drop_elem(c, "in4", "198.51.100.7", 5269);
	drop_elem(c, "out4", "198.51.100.7", 5061);
	drop_elem(c, "in4", "198.51.100.128/25", 50000);
	drop_elem(c, "in6", "2001:db8:1::/48", 5061);
	counter(c, "in_new");   /* structural: the table is replaced */
	CHECK_INT(sync_to(ctx, c, &m.d), 0);
	CHECK(synced.replaced);
	CHECK_INT(synced.revoked, 1);
	CHECK(strstr(mdiag_text(&m), "revoked 1 connection of 198.51.100.7 (tcp/5269)") != NULL);
	CHECK(!flows(conn[C_MSN_XMPP], 300));
	CHECK(flows(conn[C_ACME], 2000));
	CHECK(flows(conn[C_MGMT], 2000));
	conns_down(l, conn);
	nft_close(ctx);
	mdiag_free(&m);
	peer_down(&p);
	ir_free(a);
	ir_free(b);
	ir_free(c);
}

/* Rebuilding sets and swapping them in keeps the table, the chains, the
 * named counters and held connections, puts the rules back where they
 * were, and reads back as the delta path does. */
TEST(set_swap_keeps_counters_rules_and_connections)
{
	struct ir_ruleset *a, *b;
	int l[4], conn[NCONN][2];
	struct ir_ruleset *r_delta = NULL, *r_swap = NULL;
	struct ir_diff diff;
	uint32_t genid;
	char *h1, *h2;
	struct nft_ctx *ctx;
	struct peer p;
	struct mdiag m;

	if (!fixture_netns(__func__))
		return;
	CHECK(peer_up(&p));
	a = sample_conns();
	b = sample_conns();
	/* in4 and in6 (adjacent vmap rules), fedports (two adjacent rules
	 * of edge_out), edge4 (a jump rule of forward at the chain's end). */
	elem(b, "in4", "203.0.113.128/25", PROTO_TCP, 5269, 5269, "in_acme");
	drop_elem(b, "in6", "2001:db8:2::5", 3478);
	elem(b, "fedports", NULL, PROTO_TCP, 5269, 5269, NULL);
	drop_elem(b, "edge4", "198.51.101.0/25", 0);
	sort_all(b);
	mdiag_init(&m);
	CHECK_INT(nft_open(&ctx), 0);

	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	ctx->force = NFT_PATH_DELTA;
	CHECK_INT(sync_to(ctx, b, &m.d), 0);
	CHECK_INT(synced.swapped, 0);
	CHECK(live_is(ctx, b));
	CHECK_INT(nft_read(ctx, b->table, &r_delta, &genid), 0);

	ctx->force = NFT_PATH_AUTO;
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK(conns_up(&p, l, conn));
	send_probe();
	send_probe();
	CHECK_INT(counter_packets(ctx, a->table, "dropped_out"), 2);
	h1 = capture("nft -a list tables | grep fwtest; nft -a list chains | grep handle");
	ctx->force = NFT_PATH_SWAP;
	CHECK_INT(sync_to(ctx, b, &m.d), 0);
	CHECK(!synced.replaced);
	CHECK_INT(synced.swapped, 4);
	CHECK(live_is(ctx, b));
	/* The same read-back as the delta path, both ways round. */
	CHECK_INT(nft_read(ctx, b->table, &r_swap, &genid), 0);
	ir_diff(r_delta, r_swap, &diff);
	CHECK(ir_diff_empty(&diff));
	ir_diff_free(&diff);
	ir_diff(r_swap, r_delta, &diff);
	CHECK(ir_diff_empty(&diff));
	ir_diff_free(&diff);
	h2 = capture("nft -a list tables | grep fwtest; nft -a list chains | grep handle");
	CHECK_STR(h2, h1);
	CHECK_INT(counter_packets(ctx, a->table, "dropped_out"), 2);
	for (int i = 0; i < NCONN; i++)
		CHECK(flows(conn[i], 2000));
	CHECK_INT(synced.revoked, 0);
	/* The counter still counts through the swapped fedports rules. */
	send_probe();
	CHECK_INT(counter_packets(ctx, a->table, "dropped_out"), 3);
	/* And back, by the swap path again. */
	CHECK_INT(sync_to(ctx, a, &m.d), 0);
	CHECK(live_is(ctx, a));
	CHECK_STR(mdiag_text(&m), "");
	conns_down(l, conn);
	free(h1);
	free(h2);
	ir_free(r_delta);
	ir_free(r_swap);
	nft_close(ctx);
	mdiag_free(&m);
	peer_down(&p);
	ir_free(a);
	ir_free(b);
}
