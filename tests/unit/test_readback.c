/* test_readback.c - the read-back's element path without a kernel:
 * netlink dumps built by hand (table, chains and sets as lower.c makes
 * them, elements attribute by attribute) decoded through
 * nft_decode_dump(), the way nft_read() decodes the kernel's answers.
 * What fedwall writes must come back as the IR it came from; anything
 * else makes the set foreign or the dump refused, never a crash or a
 * leak (run it in build-san too). */
#include "../harness.h"

#include "generator/generator.h"
#include "nft/kernel-int.h"
#include "nft/nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TABLE "fedwall"

/* ---- building a dump ------------------------------------------------------ */

struct dump {
	char buf[1 << 16];
	size_t len;
};

static struct dump *dump_new(void)
{
	return xcalloc(1, sizeof(struct dump));  /* zeroed: libmnl leaves padding */
}

static struct nlmsghdr *msg(struct dump *d, uint16_t type)
{
	return nftnl_nlmsg_build_hdr(d->buf + d->len, type, NFPROTO_INET, NLM_F_MULTI, 1);
}

static void msg_done(struct dump *d, const struct nlmsghdr *nlh)
{
	d->len += MNL_ALIGN(nlh->nlmsg_len);
}

static void put_table(struct dump *d)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh = msg(d, NFT_MSG_NEWTABLE);

	nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	msg_done(d, nlh);
}

static void put_chain(struct dump *d, const char *name)
{
	struct ir_chain c = { .name = (char *)name };
	struct nftnl_chain *kc = nft_lower_chain(TABLE, &c);
	struct nlmsghdr *nlh = msg(d, NFT_MSG_NEWCHAIN);

	nftnl_chain_nlmsg_build_payload(nlh, kc);
	nftnl_chain_free(kc);
	msg_done(d, nlh);
}

static void put_set(struct dump *d, const char *name, enum ir_keytype key, bool is_map)
{
	struct ir_set s = { .name = (char *)name, .key = key, .is_map = is_map };
	struct nftnl_set *ks = nft_lower_set(TABLE, &s, 0);
	struct nlmsghdr *nlh = msg(d, NFT_MSG_NEWSET);

	nftnl_set_nlmsg_build_payload(nlh, ks);
	nftnl_set_free(ks);
	msg_done(d, nlh);
}

/* The usual head of a dump: the table, chains in_acme and in_bigco. */
static struct dump *dump_head(void)
{
	struct dump *d = dump_new();

	put_table(d);
	put_chain(d, "in_acme");
	put_chain(d, "in_bigco");
	return d;
}

static struct nlmsghdr *elems_begin(struct dump *d, const char *set, struct nlattr **list)
{
	struct nlmsghdr *nlh = msg(d, NFT_MSG_NEWSETELEM);

	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, TABLE);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
	*list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	return nlh;
}

static void elems_end(struct dump *d, struct nlmsghdr *nlh, struct nlattr *list)
{
	mnl_attr_nest_end(nlh, list);
	msg_done(d, nlh);
}

/* One element as the kernel dumps it. */
struct kel {
	const uint8_t *key, *key_end;
	size_t klen;
	uint32_t flags;
	const char *jump;       /* NFT_JUMP to it (or `code` when set) */
	int32_t code;
};

static void put_value(struct nlmsghdr *nlh, uint16_t type, const uint8_t *v, size_t n)
{
	struct nlattr *k = mnl_attr_nest_start(nlh, type);

	mnl_attr_put(nlh, NFTA_DATA_VALUE, n, v);
	mnl_attr_nest_end(nlh, k);
}

static void put_elem(struct nlmsghdr *nlh, const struct kel *e)
{
	struct nlattr *el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);

	if (e->key)
		put_value(nlh, NFTA_SET_ELEM_KEY, e->key, e->klen);
	if (e->key_end)
		put_value(nlh, NFTA_SET_ELEM_KEY_END, e->key_end, e->klen);
	if (e->flags)
		mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(e->flags));
	if (e->jump || e->code) {
		struct nlattr *data = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
		struct nlattr *v = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);

		mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE,
				 htonl((uint32_t)(e->code ? e->code : NFT_JUMP)));
		if (e->jump)
			mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, e->jump);
		mnl_attr_nest_end(nlh, v);
		mnl_attr_nest_end(nlh, data);
	}
	mnl_attr_nest_end(nlh, el);
}

static size_t addr_bytes(const char *a, uint8_t out[16])
{
	if (inet_pton(AF_INET, a, out) == 1)
		return 4;
	CHECK(inet_pton(AF_INET6, a, out) == 1);
	return 16;
}

/* A single-field bound: a start (jumping to `jump` in a map) or an end. */
static void bound(struct nlmsghdr *nlh, const char *addr, bool end, const char *jump)
{
	uint8_t a[16];
	struct kel e = { .key = a, .flags = end ? NFT_SET_ELEM_INTERVAL_END : 0, .jump = jump };

	e.klen = addr_bytes(addr, a);
	put_elem(nlh, &e);
}

/* ---- decoding and checking -------------------------------------------------- */

struct result {
	int ret;
	struct ir_ruleset *rs;
	char *why;
};

static struct result decode(const struct dump *d)
{
	struct result r = { 0 };
	void *copy = xmalloc(d->len);   /* exactly len bytes: overreads show */

	memcpy(copy, d->buf, d->len);
	r.ret = nft_decode_dump(TABLE, copy, d->len, &r.rs, &r.why);
	free(copy);
	return r;
}

static void result_free(struct result *r)
{
	ir_free(r->rs);
	free(r->why);
}

static const struct ir_set *rset(const struct result *r, const char *name)
{
	return r->rs ? ir_find_set(r->rs, name) : NULL;
}

/* Element i of `s` is PREFIX (and port part, proto 0: none) -> chain. */
static void check_elem(const struct result *r, const struct ir_set *s, size_t i,
		       const char *pfx, uint8_t proto, uint16_t lo, uint16_t hi,
		       const char *chain)
{
	char buf[PREFIX_STRLEN];

	CHECK(s && i < s->nelems);
	if (!s || i >= s->nelems)
		return;
	if (pfx)
		CHECK_STR(prefix_fmt(&s->elems[i].addr, buf, sizeof(buf)), pfx);
	else
		CHECK_INT(s->elems[i].addr.family, 0);
	CHECK_INT(s->elems[i].port.proto, proto);
	CHECK_INT(s->elems[i].port.lo, lo);
	CHECK_INT(s->elems[i].port.hi, hi);
	if (chain)
		CHECK_STR(r->rs->chains[s->elems[i].chain].name, chain);
	else
		CHECK_INT(s->elems[i].chain, 0);
}

/* Decoded, nothing foreign. */
static void check_ours(const struct result *r)
{
	CHECK_INT(r->ret, 0);
	CHECK(r->rs != NULL);
	if (r->why)
		fprintf(stderr, "  foreign: %s\n", r->why);
	CHECK(r->why == NULL);
}

/* Decoded, with set `name` foreign (and left without elements). */
static void check_foreign_set(const struct dump *d, const char *name)
{
	struct result r = decode(d);
	char want[128];

	snprintf(want, sizeof(want), "set '%s' is not one fedwall writes", name);
	CHECK_INT(r.ret, 0);
	CHECK_STR(r.why, want);
	CHECK(rset(&r, name) && rset(&r, name)->nelems == 0);
	result_free(&r);
}

static void check_refused(const struct dump *d)
{
	struct result r = decode(d);

	CHECK_INT(r.ret, -EBADMSG);
	CHECK(r.rs == NULL && r.why == NULL);
	result_free(&r);
}

/* ---- single-field interval maps ------------------------------------------- */

/* What the kernel's rbtree dumps for
 *   192.0.2.64/26 : jump in_bigco, 198.51.100.0/24 : jump in_acme,
 *   203.0.113.7 : jump in_acme
 * (descending, with the end at zero fedwall and nft write), split over
 * two messages. */
static struct dump *v4_map_dump(void)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l;

	put_set(d, "in4_1", IR_KEY_ADDR4, true);
	nlh = elems_begin(d, "in4_1", &l);
	bound(nlh, "203.0.113.8", true, NULL);
	bound(nlh, "203.0.113.7", false, "in_acme");
	bound(nlh, "198.51.101.0", true, NULL);
	bound(nlh, "198.51.100.0", false, "in_acme");
	elems_end(d, nlh, l);
	nlh = elems_begin(d, "in4_1", &l);
	bound(nlh, "192.0.2.128", true, NULL);
	bound(nlh, "192.0.2.64", false, "in_bigco");
	bound(nlh, "0.0.0.0", true, NULL);
	elems_end(d, nlh, l);
	return d;
}

TEST(single_field_v4_map_with_verdicts)
{
	struct dump *d = v4_map_dump();
	struct result r = decode(d);
	const struct ir_set *s = rset(&r, "in4_1");

	check_ours(&r);
	CHECK(s && s->is_map && s->key == IR_KEY_ADDR4);
	CHECK(s && s->nelems == 3);
	check_elem(&r, s, 0, "192.0.2.64/26", 0, 0, 0, "in_bigco");
	check_elem(&r, s, 1, "198.51.100.0/24", 0, 0, 0, "in_acme");
	check_elem(&r, s, 2, "203.0.113.7", 0, 0, 0, "in_acme");
	result_free(&r);
	free(d);
}

/* Any order the bounds come in (a recorded dump, another kernel). */
TEST(single_field_bounds_in_any_order)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l;
	struct result r;
	const struct ir_set *s;

	put_set(d, "in4_1", IR_KEY_ADDR4, true);
	nlh = elems_begin(d, "in4_1", &l);
	bound(nlh, "198.51.100.0", false, "in_acme");
	bound(nlh, "203.0.113.8", true, NULL);
	bound(nlh, "192.0.2.64", false, "in_bigco");
	bound(nlh, "198.51.101.0", true, NULL);
	bound(nlh, "203.0.113.7", false, "in_acme");
	bound(nlh, "192.0.2.128", true, NULL);
	elems_end(d, nlh, l);
	r = decode(d);
	s = rset(&r, "in4_1");
	check_ours(&r);
	CHECK(s && s->nelems == 3);
	check_elem(&r, s, 0, "192.0.2.64/26", 0, 0, 0, "in_bigco");
	check_elem(&r, s, 1, "198.51.100.0/24", 0, 0, 0, "in_acme");
	check_elem(&r, s, 2, "203.0.113.7", 0, 0, 0, "in_acme");
	result_free(&r);
	free(d);
}

/* Two intervals that touch: the first one's end and the second one's
 * start share a key (the kernel dumps the start first, descending). */
TEST(single_field_adjacent_intervals)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l;
	struct result r;
	const struct ir_set *s;

	put_set(d, "in4_1", IR_KEY_ADDR4, true);
	nlh = elems_begin(d, "in4_1", &l);
	bound(nlh, "198.51.101.0", true, NULL);
	bound(nlh, "198.51.100.128", false, "in_bigco");
	bound(nlh, "198.51.100.128", true, NULL);
	bound(nlh, "198.51.100.0", false, "in_acme");
	elems_end(d, nlh, l);
	r = decode(d);
	s = rset(&r, "in4_1");
	check_ours(&r);
	CHECK(s && s->nelems == 2);
	check_elem(&r, s, 0, "198.51.100.0/25", 0, 0, 0, "in_acme");
	check_elem(&r, s, 1, "198.51.100.128/25", 0, 0, 0, "in_bigco");
	result_free(&r);
	free(d);
}

/* An interval that reaches the top of the space has no end element. */
TEST(single_field_end_at_top_of_space)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l;
	struct result r;

	put_set(d, "in4_1", IR_KEY_ADDR4, true);
	put_set(d, "in6_1", IR_KEY_ADDR6, true);
	put_set(d, "all4", IR_KEY_ADDR4, false);
	nlh = elems_begin(d, "in4_1", &l);
	bound(nlh, "240.0.0.0", false, "in_bigco");
	bound(nlh, "198.51.101.0", true, NULL);
	bound(nlh, "198.51.100.0", false, "in_acme");
	bound(nlh, "0.0.0.0", true, NULL);
	elems_end(d, nlh, l);
	nlh = elems_begin(d, "in6_1", &l);
	bound(nlh, "ffff:ff00::", false, "in_acme");
	bound(nlh, "2001:db9::", true, NULL);
	bound(nlh, "2001:db8::", false, "in_bigco");
	elems_end(d, nlh, l);
	nlh = elems_begin(d, "all4", &l);
	bound(nlh, "0.0.0.0", false, NULL);
	elems_end(d, nlh, l);
	r = decode(d);
	check_ours(&r);
	CHECK(rset(&r, "in4_1") && rset(&r, "in4_1")->nelems == 2);
	check_elem(&r, rset(&r, "in4_1"), 0, "198.51.100.0/24", 0, 0, 0, "in_acme");
	check_elem(&r, rset(&r, "in4_1"), 1, "240.0.0.0/4", 0, 0, 0, "in_bigco");
	CHECK(rset(&r, "in6_1") && rset(&r, "in6_1")->nelems == 2);
	check_elem(&r, rset(&r, "in6_1"), 0, "2001:db8::/32", 0, 0, 0, "in_bigco");
	check_elem(&r, rset(&r, "in6_1"), 1, "ffff:ff00::/24", 0, 0, 0, "in_acme");
	CHECK(rset(&r, "all4") && rset(&r, "all4")->nelems == 1);
	check_elem(&r, rset(&r, "all4"), 0, "0.0.0.0/0", 0, 0, 0, NULL);
	result_free(&r);
	free(d);
}

/* A recorded dump may bring the chains after the elements that jump to
 * them: targets are resolved when converting, not when parsing. */
TEST(elements_before_their_chains)
{
	struct dump *d = dump_new();
	struct nlmsghdr *nlh;
	struct nlattr *l;
	struct result r;

	put_table(d);
	put_set(d, "in4_1", IR_KEY_ADDR4, true);
	nlh = elems_begin(d, "in4_1", &l);
	bound(nlh, "198.51.101.0", true, NULL);
	bound(nlh, "198.51.100.0", false, "in_bigco");
	elems_end(d, nlh, l);
	put_chain(d, "in_acme");
	put_chain(d, "in_bigco");
	r = decode(d);
	check_ours(&r);
	check_elem(&r, rset(&r, "in4_1"), 0, "198.51.100.0/24", 0, 0, 0, "in_bigco");
	result_free(&r);
	free(d);
}

/* ---- concatenations ----------------------------------------------------------- */

static void proto_port(uint8_t *k, uint8_t proto, uint16_t port)
{
	uint16_t be = htons(port);

	memset(k, 0, 8);
	k[0] = proto;
	memcpy(k + 4, &be, 2);
}

/* addr . proto . port, from..to */
static void concat(struct nlmsghdr *nlh, const char *first, const char *last,
		   uint8_t proto, uint16_t lo, uint16_t hi, const char *jump)
{
	uint8_t k[24] = { 0 }, ke[24] = { 0 };
	size_t al = first ? addr_bytes(first, k) : 0;
	struct kel e = { .key = k, .key_end = ke, .klen = al + 8, .jump = jump };

	if (last)
		addr_bytes(last, ke);
	proto_port(k + al, proto, lo);
	proto_port(ke + al, proto, hi);
	put_elem(nlh, &e);
}

TEST(concat_elements)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l;
	struct result r;
	const struct ir_set *s;

	put_set(d, "lookup4", IR_KEY_ADDR4_PROTO_PORT, true);
	put_set(d, "ports", IR_KEY_PROTO_PORT, true);
	put_set(d, "allow6", IR_KEY_ADDR6_PROTO_PORT, false);
	nlh = elems_begin(d, "lookup4", &l);
	concat(nlh, "203.0.113.7", "203.0.113.7", PROTO_TCP, 5061, 5061, "in_bigco");
	concat(nlh, "198.51.100.0", "198.51.100.255", PROTO_UDP, 3478, 3481, "in_acme");
	elems_end(d, nlh, l);
	nlh = elems_begin(d, "ports", &l);
	concat(nlh, NULL, NULL, PROTO_UDP, 50000, 59999, "in_bigco");
	concat(nlh, NULL, NULL, PROTO_TCP, 443, 443, "in_acme");
	elems_end(d, nlh, l);
	nlh = elems_begin(d, "allow6", &l);
	concat(nlh, "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", PROTO_TCP,
	       22, 22, NULL);
	elems_end(d, nlh, l);
	r = decode(d);
	check_ours(&r);
	s = rset(&r, "lookup4");
	CHECK(s && s->nelems == 2);
	check_elem(&r, s, 0, "203.0.113.7", PROTO_TCP, 5061, 5061, "in_bigco");
	check_elem(&r, s, 1, "198.51.100.0/24", PROTO_UDP, 3478, 3481, "in_acme");
	s = rset(&r, "ports");
	CHECK(s && s->nelems == 2);
	check_elem(&r, s, 0, NULL, PROTO_TCP, 443, 443, "in_acme");
	check_elem(&r, s, 1, NULL, PROTO_UDP, 50000, 59999, "in_bigco");
	s = rset(&r, "allow6");
	CHECK(s && s->nelems == 1);
	check_elem(&r, s, 0, "2001:db8::/32", PROTO_TCP, 22, 22, NULL);
	result_free(&r);
	free(d);
}

/* ---- what lower.c writes comes back ------------------------------------------- */

static void add_elem(struct ir_set *s, const char *pfx, uint8_t proto, uint16_t lo,
		     uint16_t hi, uint32_t chain)
{
	struct ir_elem e = { .port = { proto, lo, hi }, .chain = chain };

	if (pfx)
		CHECK(prefix_parse(pfx, &e.addr) == PREFIX_OK);
	s->elems = xreallocarray(s->elems, s->nelems + 1, sizeof(*s->elems));
	s->elems[s->nelems++] = e;
}

/* The elements of `s` as nft_elem_encode() makes them, with the end at
 * zero that add_elems() puts first, in one message, reversed as the
 * kernel dumps them. */
static void put_encoded(struct dump *d, const struct ir_set *s, const char *const *chains)
{
	const struct nft_keyinfo *ki = nft_keyinfo(s->key);
	struct nft_kelem k[2 * 8 + 1];
	size_t n = 0;
	struct nlmsghdr *nlh;
	struct nlattr *l;

	if (ki->nfields == 1)
		k[n++] = (struct nft_kelem){ .interval_end = true };
	for (size_t i = 0; i < s->nelems && n + 2 <= ARRAY_SIZE(k); i++)
		n += nft_elem_encode(s, &s->elems[i], &k[n]);
	nlh = elems_begin(d, s->name, &l);
	while (n--) {
		struct kel e = { .key = k[n].key, .klen = ki->len,
				 .key_end = k[n].has_end ? k[n].key_end : NULL,
				 .flags = k[n].interval_end ? NFT_SET_ELEM_INTERVAL_END : 0 };

		/* the start or only element of IR element j jumps */
		for (size_t j = 0; s->is_map && !k[n].interval_end && j < s->nelems; j++) {
			struct nft_kelem o[2];

			nft_elem_encode(s, &s->elems[j], o);
			if (!memcmp(o[0].key, k[n].key, ki->len))
				e.jump = chains[s->elems[j].chain];
		}
		put_elem(nlh, &e);
	}
	elems_end(d, nlh, l);
}

static int elem_qcmp(const void *x, const void *y)
{
	return ir_elem_cmp(x, y);
}

TEST(encoded_elements_round_trip)
{
	static const char *const chains[] = { "in_acme", "in_bigco" };
	struct ir_set sets[] = {
		{ .name = "in4_1", .key = IR_KEY_ADDR4, .is_map = true },
		{ .name = "in6_1", .key = IR_KEY_ADDR6, .is_map = true },
		{ .name = "lookup4", .key = IR_KEY_ADDR4_PROTO_PORT, .is_map = true },
		{ .name = "ports", .key = IR_KEY_PROTO_PORT, .is_map = true },
		{ .name = "mgmt4", .key = IR_KEY_ADDR4, .is_map = false },
	};
	struct dump *d = dump_head();
	struct result r;

	add_elem(&sets[0], "192.0.2.0/25", 0, 0, 0, 1);
	add_elem(&sets[0], "198.51.100.7", 0, 0, 0, 0);
	add_elem(&sets[0], "224.0.0.0/3", 0, 0, 0, 1);
	add_elem(&sets[1], "2001:db8::/48", 0, 0, 0, 0);
	add_elem(&sets[1], "2001:db8:1::1", 0, 0, 0, 1);
	add_elem(&sets[2], "198.51.100.0/24", PROTO_TCP, 5061, 5061, 0);
	add_elem(&sets[2], "203.0.113.0/28", PROTO_UDP, 3478, 3481, 1);
	add_elem(&sets[3], NULL, PROTO_TCP, 5061, 5061, 1);
	add_elem(&sets[3], NULL, PROTO_UDP, 50000, 59999, 0);
	add_elem(&sets[4], "0.0.0.0/1", 0, 0, 0, 0);
	add_elem(&sets[4], "192.0.2.0/24", 0, 0, 0, 0);
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
		qsort(sets[i].elems, sets[i].nelems, sizeof(struct ir_elem), elem_qcmp);
		put_set(d, sets[i].name, sets[i].key, sets[i].is_map);
		put_encoded(d, &sets[i], chains);
	}
	r = decode(d);
	check_ours(&r);
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
		const struct ir_set *s = rset(&r, sets[i].name);

		CHECK(s && s->nelems == sets[i].nelems);
		for (size_t j = 0; s && j < s->nelems && j < sets[i].nelems; j++) {
			CHECK_INT(ir_elem_cmp(&s->elems[j], &sets[i].elems[j]), 0);
			CHECK_INT(s->elems[j].chain, sets[i].elems[j].chain);
		}
		free(sets[i].elems);
	}
	result_free(&r);
	free(d);
}

/* ---- what fedwall never writes ------------------------------------------------- */

/* A v4 map with one good interval and then `bad` in the same message. */
static struct dump *v4_map_with(void (*bad)(struct nlmsghdr *))
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l;

	put_set(d, "in4_1", IR_KEY_ADDR4, true);
	put_set(d, "in4_2", IR_KEY_ADDR4, true);
	nlh = elems_begin(d, "in4_1", &l);
	bound(nlh, "198.51.101.0", true, NULL);
	bound(nlh, "198.51.100.0", false, "in_acme");
	bad(nlh);
	elems_end(d, nlh, l);
	nlh = elems_begin(d, "in4_2", &l);
	bound(nlh, "192.0.2.1", false, "in_acme");
	bound(nlh, "192.0.2.2", true, NULL);
	elems_end(d, nlh, l);
	return d;
}

static void missing_key(struct nlmsghdr *nlh)
{
	put_elem(nlh, &(struct kel){ .jump = "in_acme" });
}

static void short_key(struct nlmsghdr *nlh)
{
	static const uint8_t k[3] = { 203, 0, 113 };

	put_elem(nlh, &(struct kel){ .key = k, .klen = 3, .jump = "in_acme" });
}

static void long_key(struct nlmsghdr *nlh)
{
	static const uint8_t k[16] = { 203, 0, 113, 7 };

	put_elem(nlh, &(struct kel){ .key = k, .klen = 16, .jump = "in_acme" });
}

static void unknown_chain(struct nlmsghdr *nlh)
{
	bound(nlh, "203.0.113.7", false, "in_nobody");
	bound(nlh, "203.0.113.8", true, NULL);
}

static void accept_verdict(struct nlmsghdr *nlh)
{
	static const uint8_t k[4] = { 203, 0, 113, 7 };

	put_elem(nlh, &(struct kel){ .key = k, .klen = 4, .code = NF_ACCEPT });
	bound(nlh, "203.0.113.8", true, NULL);
}

static void goto_verdict(struct nlmsghdr *nlh)
{
	static const uint8_t k[4] = { 203, 0, 113, 7 };

	put_elem(nlh, &(struct kel){ .key = k, .klen = 4, .code = NFT_GOTO,
				     .jump = "in_acme" });
	bound(nlh, "203.0.113.8", true, NULL);
}

static void jump_without_chain(struct nlmsghdr *nlh)
{
	static const uint8_t k[4] = { 203, 0, 113, 7 };

	put_elem(nlh, &(struct kel){ .key = k, .klen = 4, .code = NFT_JUMP });
	bound(nlh, "203.0.113.8", true, NULL);
}

static void start_without_verdict(struct nlmsghdr *nlh)
{
	bound(nlh, "203.0.113.7", false, NULL);
	bound(nlh, "203.0.113.8", true, NULL);
}

static void end_without_start(struct nlmsghdr *nlh)
{
	bound(nlh, "203.0.113.8", true, NULL);
}

static void end_with_verdict(struct nlmsghdr *nlh)
{
	bound(nlh, "203.0.113.7", false, "in_acme");
	bound(nlh, "203.0.113.8", true, "in_acme");
}

static void two_starts(struct nlmsghdr *nlh)
{
	bound(nlh, "203.0.113.0", false, "in_acme");
	bound(nlh, "203.0.113.7", false, "in_acme");
	bound(nlh, "203.0.113.8", true, NULL);
}

static void not_a_prefix(struct nlmsghdr *nlh)
{
	bound(nlh, "203.0.113.0", false, "in_acme");
	bound(nlh, "203.0.113.3", true, NULL);  /* .0 - .2 */
}

static void catchall(struct nlmsghdr *nlh)
{
	put_elem(nlh, &(struct kel){ .flags = NFT_SET_ELEM_CATCHALL, .jump = "in_acme" });
}

static void with_comment(struct nlmsghdr *nlh)
{
	struct nlattr *el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	static const uint8_t k[4] = { 203, 0, 113, 7 };
	struct nlattr *data, *v;

	put_value(nlh, NFTA_SET_ELEM_KEY, k, 4);
	data = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_DATA);
	v = mnl_attr_nest_start(nlh, NFTA_DATA_VERDICT);
	mnl_attr_put_u32(nlh, NFTA_VERDICT_CODE, htonl((uint32_t)NFT_JUMP));
	mnl_attr_put_strz(nlh, NFTA_VERDICT_CHAIN, "in_acme");
	mnl_attr_nest_end(nlh, v);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_put(nlh, NFTA_SET_ELEM_USERDATA, 4, "\x00\x02hi");
	mnl_attr_nest_end(nlh, el);
	bound(nlh, "203.0.113.8", true, NULL);
}

static void concat_key_end(struct nlmsghdr *nlh)
{
	static const uint8_t k[4] = { 203, 0, 113, 7 };

	put_elem(nlh, &(struct kel){ .key = k, .key_end = k, .klen = 4, .jump = "in_acme" });
}

TEST(not_what_fedwall_writes_makes_the_set_foreign)
{
	static void (*const bad[])(struct nlmsghdr *) = {
		missing_key, short_key, long_key, unknown_chain, accept_verdict,
		goto_verdict, jump_without_chain, start_without_verdict,
		end_without_start, end_with_verdict, two_starts, not_a_prefix,
		catchall, with_comment, concat_key_end,
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct dump *d = v4_map_with(bad[i]);
		struct result r = decode(d);

		if (r.why == NULL)
			fprintf(stderr, "  case %zu was decoded\n", i);
		result_free(&r);
		check_foreign_set(d, "in4_1");
		/* the other map still decodes */
		r = decode(d);
		CHECK(rset(&r, "in4_2") && rset(&r, "in4_2")->nelems == 1);
		result_free(&r);
		free(d);
	}
}

TEST(set_elements_that_do_not_fit_the_set)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l;

	put_set(d, "plain4", IR_KEY_ADDR4, false);
	put_set(d, "lookup4", IR_KEY_ADDR4_PROTO_PORT, true);
	put_set(d, "ports", IR_KEY_PROTO_PORT, true);
	nlh = elems_begin(d, "plain4", &l);
	bound(nlh, "198.51.100.0", false, "in_acme");   /* a verdict in a set */
	bound(nlh, "198.51.101.0", true, NULL);
	elems_end(d, nlh, l);
	nlh = elems_begin(d, "lookup4", &l);
	{
		uint8_t k[12] = { 198, 51, 100, 0 };
		struct kel e = { .key = k, .klen = 12, .jump = "in_acme" };

		proto_port(k + 4, PROTO_TCP, 5061);
		put_elem(nlh, &e);      /* no key_end */
	}
	elems_end(d, nlh, l);
	nlh = elems_begin(d, "ports", &l);
	{
		uint8_t k[8], ke[8];
		struct kel e = { .key = k, .key_end = ke, .klen = 8, .jump = "in_acme" };

		proto_port(k, PROTO_TCP, 5061);
		proto_port(ke, PROTO_TCP, 5061);
		k[2] = 1;               /* padding fedwall writes as zero */
		put_elem(nlh, &e);
	}
	elems_end(d, nlh, l);
	{
		struct result r = decode(d);

		CHECK_INT(r.ret, 0);
		CHECK(r.why != NULL);
		for (size_t i = 0; r.rs && i < r.rs->nsets; i++)
			CHECK_INT(r.rs->sets[i].nelems, 0);
		result_free(&r);
	}
	check_foreign_set(d, "plain4");
	free(d);
}

/* Each set alone, to be sure each is refused on its own count. */
TEST(concat_mismatches_each_foreign)
{
	static const struct { enum ir_keytype key; uint8_t proto; uint16_t lo, hi; } c[] = {
		{ IR_KEY_PROTO_PORT, 1, 5, 5 },         /* not tcp or udp */
		{ IR_KEY_PROTO_PORT, PROTO_TCP, 0, 5 }, /* port 0 */
		{ IR_KEY_PROTO_PORT, PROTO_TCP, 9, 5 }, /* hi < lo */
	};

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct dump *d = dump_head();
		struct nlmsghdr *nlh;
		struct nlattr *l;

		put_set(d, "ports", c[i].key, true);
		nlh = elems_begin(d, "ports", &l);
		concat(nlh, NULL, NULL, c[i].proto, c[i].lo, c[i].hi, "in_acme");
		elems_end(d, nlh, l);
		check_foreign_set(d, "ports");
		free(d);
	}
}

/* ---- malformed netlink ---------------------------------------------------------- */

/* The first attribute of `type` inside `nest` (the elements list). */
static struct nlattr *find(struct nlattr *nest, uint16_t type)
{
	struct nlattr *a;

	mnl_attr_for_each_nested(a, nest)
		if (mnl_attr_get_type(a) == type)
			return a;
	return NULL;
}

/* A one-element message whose element `mangle` then damages in place. */
static struct dump *mangled(void (*mangle)(struct nlattr *elem))
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l;

	put_set(d, "in4_1", IR_KEY_ADDR4, true);
	nlh = elems_begin(d, "in4_1", &l);
	bound(nlh, "198.51.100.0", false, "in_acme");
	elems_end(d, nlh, l);
	mangle(find(l, NFTA_LIST_ELEM));
	return d;
}

static void truncate_key(struct nlattr *el)
{
	find(el, NFTA_SET_ELEM_KEY)->nla_len += 64;    /* overruns the element */
}

static void truncate_value(struct nlattr *el)
{
	find(find(el, NFTA_SET_ELEM_KEY), NFTA_DATA_VALUE)->nla_len += 1;
}

static void short_verdict_code(struct nlattr *el)
{
	struct nlattr *v = find(find(el, NFTA_SET_ELEM_DATA), NFTA_DATA_VERDICT);

	find(v, NFTA_VERDICT_CODE)->nla_len = MNL_ATTR_HDRLEN + 2;
}

static void unterminated_chain(struct nlattr *el)
{
	struct nlattr *v = find(find(el, NFTA_SET_ELEM_DATA), NFTA_DATA_VERDICT);
	struct nlattr *c = find(v, NFTA_VERDICT_CHAIN);

	((char *)mnl_attr_get_payload(c))[mnl_attr_get_payload_len(c) - 1] = 'x';
}

static void duplicate_key(struct nlattr *el)
{
	struct nlattr *a = find(el, NFTA_SET_ELEM_DATA);

	a->nla_type = NFTA_SET_ELEM_KEY | NLA_F_NESTED;
}

static void key_not_nested(struct nlattr *el)
{
	struct nlattr *k = find(el, NFTA_SET_ELEM_KEY);

	k->nla_len = MNL_ATTR_HDRLEN + 2;       /* too short for a header */
}

static void not_a_list_elem(struct nlattr *el)
{
	el->nla_type = NFTA_LIST_UNSPEC;
}

TEST(malformed_attributes_are_refused)
{
	static void (*const bad[])(struct nlattr *) = {
		truncate_key, truncate_value, short_verdict_code, unterminated_chain,
		duplicate_key, key_not_nested, not_a_list_elem,
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct dump *d = mangled(bad[i]);

		check_refused(d);
		free(d);
	}
}

TEST(flags_of_the_wrong_size_are_refused)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh;
	struct nlattr *l, *el;
	static const uint8_t k[4] = { 198, 51, 100, 0 };

	put_set(d, "in4_1", IR_KEY_ADDR4, true);
	nlh = elems_begin(d, "in4_1", &l);
	el = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	put_value(nlh, NFTA_SET_ELEM_KEY, k, 4);
	mnl_attr_put_u16(nlh, NFTA_SET_ELEM_FLAGS, htons(1));
	mnl_attr_nest_end(nlh, el);
	elems_end(d, nlh, l);
	check_refused(d);
	free(d);
}

/* The element list or the message ends inside an attribute header. */
TEST(truncated_lists_and_messages_are_refused)
{
	struct dump *d = v4_map_dump();
	struct nlmsghdr *nlh;
	struct nlattr *l;

	put_set(d, "in4_2", IR_KEY_ADDR4, true);
	nlh = elems_begin(d, "in4_2", &l);
	bound(nlh, "198.51.100.0", false, "in_acme");
	mnl_attr_nest_end(nlh, l);
	l->nla_len += 2;                /* two stray bytes in the list */
	nlh->nlmsg_len += 4;
	msg_done(d, nlh);
	check_refused(d);

	l->nla_len -= 2;                /* a message ending in a stray word */
	check_refused(d);
	free(d);
}

/* The dump placed to end where an inaccessible page starts: a read
 * past it faults.  ASan cannot see such a read when libmnl (not
 * instrumented) makes it.  The start is then unaligned when the length
 * is, which UBSan would flag: the sanitized build decodes as usual. */
static struct result decode_guarded(const struct dump *d)
{
#ifdef __SANITIZE_ADDRESS__
	return decode(d);
#else
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), span = (d->len + pg - 1) / pg * pg;
	char *m = mmap(NULL, span + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	struct result r = { 0 };

	CHECK(m != MAP_FAILED);
	if (m == MAP_FAILED)
		return r;
	CHECK_INT(mprotect(m + span, pg, PROT_NONE), 0);
	memcpy(m + span - d->len, d->buf, d->len);
	r.ret = nft_decode_dump(TABLE, m + span - d->len, d->len, &r.rs, &r.why);
	munmap(m, span + pg);
	return r;
#endif
}

/* A last message whose length is not a multiple of 4: libmnl's
 * attribute walks run to its aligned end, past the buffer. */
TEST(unaligned_last_message_is_not_read_past)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh = msg(d, NFT_MSG_NEWSETELEM);
	struct result r;

	mnl_attr_put_u16(nlh, NFTA_SET_ELEM_LIST_SET, 0);
	nlh->nlmsg_len = 21;            /* half an attribute header */
	d->len += nlh->nlmsg_len;
	r = decode_guarded(d);
	CHECK_INT(r.ret, 0);
	result_free(&r);

	d->len = 0;                     /* the table itself, cut short */
	nlh = msg(d, NFT_MSG_NEWTABLE);
	mnl_attr_put_u16(nlh, NFTA_TABLE_NAME, 0);
	nlh->nlmsg_len = 21;
	d->len += nlh->nlmsg_len;
	r = decode_guarded(d);
	CHECK_INT(r.ret, -ENOENT);
	result_free(&r);
	free(d);
}

/* An expression name without its NUL, last in the dump: strcmp() on it
 * would read past the buffer (ASan in build-san).  The rule is left out,
 * as rule_cb() leaves out what libnftnl would trip over. */
TEST(unterminated_expression_name_is_refused)
{
	struct dump *d = dump_head();
	struct nlmsghdr *nlh = msg(d, NFT_MSG_NEWRULE);
	struct nlattr *list, *e;
	struct result r;

	mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, TABLE);
	mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, "in_acme");
	list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
	e = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
	mnl_attr_put(nlh, NFTA_EXPR_NAME, 8, "immediat");
	mnl_attr_nest_end(nlh, e);
	mnl_attr_nest_end(nlh, list);
	msg_done(d, nlh);
	r = decode(d);
	CHECK_INT(r.ret, 0);
	CHECK(r.rs && ir_find_chain(r.rs, "in_acme") &&
	      ir_find_chain(r.rs, "in_acme")->nrules == 0);     /* left out */
	result_free(&r);
	free(d);
}

/* Elements of a set the dump never declared are not fedwall's business. */
TEST(elements_of_an_unknown_set_are_skipped)
{
	struct dump *d = v4_map_dump();
	struct nlmsghdr *nlh;
	struct nlattr *l;
	struct result r;

	nlh = elems_begin(d, "nosuchset", &l);
	bound(nlh, "198.51.100.0", false, "in_acme");
	elems_end(d, nlh, l);
	r = decode(d);
	check_ours(&r);
	CHECK(rset(&r, "in4_1") && rset(&r, "in4_1")->nelems == 3);
	result_free(&r);
	free(d);
}

/* ---- recorded kernel dumps (the fuzzer's seeds) ------------------------------------- */

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = xmalloc((size_t)n);
		*len = fread(buf, 1, (size_t)n, f);
	}
	fclose(f);
	return buf;
}

/* Recorded from this fedwall: a table with outbound allowances and the
 * per-reason drop counters decodes whole (no foreign rule: every counting
 * rule form reads back), and the same table set dormant keeps its flags. */
TEST(recorded_dumps_of_this_layout)
{
	static const char *const names[] = { "outallow-counters", "dormant" };
	char path[256];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct ir_ruleset *rs = NULL;
		char *why = NULL;
		size_t len = 0;
		void *buf;

		snprintf(path, sizeof(path), "tests/fuzz/corpus/fuzz_readback/%s.dump", names[i]);
		buf = slurp(path, &len);
		CHECK(buf != NULL);
		if (!buf)
			continue;
		CHECK_INT(nft_decode_dump(TABLE, buf, len, &rs, &why), 0);
		if (why)
			fprintf(stderr, "  %s: %s\n", names[i], why);
		CHECK(why == NULL);
		CHECK(rs && ir_find_set(rs, "outallow4") && ir_find_set(rs, "outallow4")->nelems > 0);
		CHECK(rs && rs->flags == (i ? (uint32_t)IR_TABLE_F_DORMANT : 0));
		ir_free(rs);
		free(why);
		free(buf);
	}
}

/* Their rules follow the layout of the day (re-lowering decides), their
 * sets and elements must decode: the first foreign reason, if any, is
 * about a rule; the dump with a set added by nft names that set. */
TEST(recorded_dumps_decode)
{
	static const char *const ok[] = { "enhanced-federation", "gateway", "hosts-and-lists",
					  "msn-pic", "gateway-port-classes" };
	char path[256];

	for (size_t i = 0; i <= ARRAY_SIZE(ok); i++) {
		const char *name = i < ARRAY_SIZE(ok) ? ok[i] : "foreign";
		struct ir_ruleset *rs = NULL;
		char *why = NULL;
		size_t len = 0, nelems = 0;
		void *buf;

		snprintf(path, sizeof(path), "tests/fuzz/corpus/fuzz_readback/%s.dump", name);
		buf = slurp(path, &len);
		CHECK(buf != NULL);
		if (!buf)
			continue;
		CHECK_INT(nft_decode_dump(TABLE, buf, len, &rs, &why), 0);
		for (size_t j = 0; rs && j < rs->nsets; j++)
			nelems += rs->sets[j].nelems;
		CHECK(nelems > 0);
		if (i < ARRAY_SIZE(ok))
			CHECK(!why || strncmp(why, "set '", 5) != 0);
		else
			CHECK(why && !strncmp(why, "set '", 5));
		if (why && i < ARRAY_SIZE(ok))
			fprintf(stderr, "  %s: %s\n", name, why);
		ir_free(rs);
		free(why);
		free(buf);
	}
}
