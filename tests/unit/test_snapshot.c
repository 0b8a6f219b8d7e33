/* test_snapshot.c - the IR image (generator/snapshot.c): every field
 * survives encode -> decode, damaged and hostile images are refused
 * without harm, and ir_take_elems() gives what an element-only commit
 * leaves in the kernel.  No kernel needed. */
#define _GNU_SOURCE             /* unshare (fixture.h) */
#include "generator/generator.h"
#include "generator/snapshot.h"
#include "policy/policy.h"
#include "../harness.h"
#include "fixture.h"

static const char POLICY[] =
	"version: 1\n"
	"edge:\n  interfaces: [eth0]\n  addresses: [203.0.113.10, 2001:db8:10::10]\n"
	"services:\n  narrow:\n    ports: [udp/3478, tcp/443, udp/50000-50999]\n"
	"partners:\n"
	"  contoso:\n    services: [sip-federation, av-edge]\n"
	"    addresses: [198.51.100.0/26, 198.51.100.64/26, 2001:db8:100::/48]\n"
	"  fabrikam:\n    services: [sip-federation, narrow]\n"
	"    addresses: [192.0.2.32/27]\n"
	"  litware:\n    services: [sip-federation]\n    direction: inbound\n"
	"    addresses: [192.0.2.200, 2001:db8:200::1]\n"
	"management:\n  - from: [192.0.2.0/28, 2001:db8:ffff::/48]\n    to: [tcp/22]\n"
	"icmp:\n  echo: true\n";

/* The policies the generated rulesets' locs borrow from, freed at exit. */
static struct ir_ruleset *generated(const char *yaml)
{
	return fixture_generate("snapshot.yaml", yaml);
}

/* What a read-back adds: handles, counter values. */
static void as_read(struct ir_ruleset *rs)
{
	uint64_t h = 2;

	for (size_t i = 0; i < rs->nchains; i++)
		for (size_t j = 0; j < rs->chains[i].nrules; j++)
			rs->chains[i].rules[j].handle = h++;
	for (size_t i = 0; i < rs->ncounters; i++) {
		rs->counters[i].packets = 1000 + i;
		rs->counters[i].bytes = UINT64_MAX - i;
	}
}

static bool str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool loc_same(const struct loc *a, const struct loc *b)
{
	return str_same(a->file, b->file) && a->line == b->line && a->col == b->col;
}

static bool rule_same(const struct ir_rule *a, const struct ir_rule *b)
{
	return a->kind == b->kind && a->verdict == b->verdict && a->family == b->family &&
	       a->field == b->field && a->ifdir == b->ifdir && str_same(a->ifname, b->ifname) &&
	       str_same(a->set, b->set) && str_same(a->target, b->target) &&
	       a->icmp_type == b->icmp_type && a->rate == b->rate && a->unit == b->unit &&
	       str_same(a->log_prefix, b->log_prefix) && str_same(a->comment, b->comment) &&
	       a->handle == b->handle;
}

static bool chain_same(const struct ir_chain *a, const struct ir_chain *b)
{
	if (!str_same(a->name, b->name) || !str_same(a->comment, b->comment) ||
	    !loc_same(&a->loc, &b->loc) || a->hook != b->hook || a->priority != b->priority ||
	    a->policy != b->policy || a->nrules != b->nrules)
		return false;
	for (size_t i = 0; i < a->nrules; i++)
		if (!rule_same(&a->rules[i], &b->rules[i]))
			return false;
	return true;
}

static bool elem_same(const struct ir_elem *a, const struct ir_elem *b)
{
	return a->addr.family == b->addr.family && a->addr.len == b->addr.len &&
	       !memcmp(a->addr.a, b->addr.a, sizeof(a->addr.a)) &&
	       a->port.proto == b->port.proto && a->port.lo == b->port.lo &&
	       a->port.hi == b->port.hi && a->chain == b->chain;
}

static bool set_same(const struct ir_set *a, const struct ir_set *b)
{
	if (!str_same(a->name, b->name) || !str_same(a->comment, b->comment) ||
	    a->key != b->key || a->is_map != b->is_map || a->revoke != b->revoke ||
	    a->revoke_field != b->revoke_field || a->nelems != b->nelems)
		return false;
	for (size_t i = 0; i < a->nelems; i++)
		if (!elem_same(&a->elems[i], &b->elems[i]))
			return false;
	return true;
}

static bool counter_same(const struct ir_counter *a, const struct ir_counter *b)
{
	return str_same(a->name, b->name) && str_same(a->comment, b->comment) &&
	       loc_same(&a->loc, &b->loc) && a->packets == b->packets && a->bytes == b->bytes;
}

/* Field by field, everything: what ir_diff ignores too. */
static bool ir_same(const struct ir_ruleset *a, const struct ir_ruleset *b)
{
	if (!str_same(a->table, b->table) || !str_same(a->comment, b->comment) ||
	    a->nchains != b->nchains || a->nsets != b->nsets || a->ncounters != b->ncounters)
		return false;
	for (size_t i = 0; i < a->nchains; i++)
		if (!chain_same(&a->chains[i], &b->chains[i]))
			return false;
	for (size_t i = 0; i < a->nsets; i++)
		if (!set_same(&a->sets[i], &b->sets[i]))
			return false;
	for (size_t i = 0; i < a->ncounters; i++)
		if (!counter_same(&a->counters[i], &b->counters[i]))
			return false;
	return true;
}

static struct ir_ruleset *round_trip(const struct ir_ruleset *rs, struct strbuf *img)
{
	const char *why = "?";
	struct ir_ruleset *back;

	ir_encode(rs, img);
	back = ir_decode(img->s, img->len, &why);
	if (!back)
		fprintf(stderr, "decode: %s\n", why);
	return back;
}

static size_t total_elems(const struct ir_ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nsets; i++)
		n += rs->sets[i].nelems;
	return n;
}

TEST(generated_round_trip)
{
	struct ir_ruleset *rs = generated(POLICY), *back;
	struct strbuf a = { 0 }, b = { 0 };
	struct ir_diff diff = { 0 };

	if (!rs)
		return;
	as_read(rs);
	CHECK(rs->nchains > 3 && rs->nsets > 2 && rs->ncounters > 0 && total_elems(rs) > 10);
	back = round_trip(rs, &a);
	CHECK(back != NULL);
	if (back) {
		ir_diff(rs, back, &diff);
		CHECK(ir_diff_empty(&diff));
		CHECK(ir_same(rs, back));
		ir_encode(back, &b);
		CHECK(a.len == b.len && !memcmp(a.s, b.s, a.len));
	}
	ir_diff_free(&diff);
	ir_free(back);
	ir_free(rs);
	sb_free(&a);
	sb_free(&b);
}

/* ---- a ruleset by hand, every field at its edges ---------------------- */

static struct ir_ruleset *by_hand(void)
{
	struct ir_ruleset *rs = xcalloc(1, sizeof(*rs));
	struct ir_chain *c;
	struct ir_set *s;
	struct ir_rule *r;

	rs->table = xstrdup("t");
	rs->nchains = 2;
	rs->chains = xcalloc(2, sizeof(*rs->chains));
	c = &rs->chains[0];
	c->name = xstrdup("input");
	c->comment = xstrdup("caf\xc3\xa9 \"quoted\"");
	c->loc = (struct loc){ "a.yaml", UINT32_MAX, 1 };
	c->hook = IR_HOOK_INPUT;
	c->priority = INT32_MIN;
	c->policy = IR_DROP;
	c->nrules = 3;
	c->rules = xcalloc(3, sizeof(*c->rules));
	r = &c->rules[0];
	*r = (struct ir_rule){ .kind = IR_R_JUMP, .verdict = IR_JUMP, .family = 6,
			       .field = IR_DADDR, .ifdir = IR_OIF, .ifname = xstrdup("eth0"),
			       .set = xstrdup("m"), .target = xstrdup("in_x"),
			       .handle = UINT64_MAX };
	r = &c->rules[1];
	*r = (struct ir_rule){ .kind = IR_R_LOG, .rate = UINT32_MAX, .unit = LOG_DAY,
			       .log_prefix = xstrdup("drop: "), .comment = xstrdup("") };
	r = &c->rules[2];
	*r = (struct ir_rule){ .kind = IR_R_COUNTER, .verdict = IR_DROP, .target = xstrdup("k"),
			       .icmp_type = 255 };
	c = &rs->chains[1];
	c->name = xstrdup("in_x");
	c->loc = (struct loc){ "b.yaml", 3, 4 };
	rs->nsets = 2;
	rs->sets = xcalloc(2, sizeof(*rs->sets));
	s = &rs->sets[0];
	s->name = xstrdup("m");
	s->key = IR_KEY_ADDR6_PROTO_PORT;
	s->is_map = s->revoke = true;
	s->revoke_field = IR_DADDR;
	s->nelems = 3;
	s->elems = xcalloc(3, sizeof(*s->elems));
	s->elems[0] = (struct ir_elem){ { 6, 0, { 0 } }, { 6, 1, 1 }, 1 };
	s->elems[1] = (struct ir_elem){ { 6, 128, { [0 ... 15] = 0xff } }, { 17, 1, 65535 }, 1 };
	s->elems[2] = (struct ir_elem){ { 6, 127, { [15] = 0 } }, { 255, 65535, 65535 }, 0 };
	s = &rs->sets[1];
	s->name = xstrdup("");
	s->comment = xstrdup("empty");
	s->key = IR_KEY_PROTO_PORT;
	rs->ncounters = 1;
	rs->counters = xcalloc(1, sizeof(*rs->counters));
	rs->counters[0] = (struct ir_counter){ xstrdup("k"), NULL, { "a.yaml", 1, 2 },
					       UINT64_MAX, 0 };
	return rs;
}

TEST(edges_round_trip)
{
	struct ir_ruleset *rs = by_hand(), *back;
	struct strbuf img = { 0 };

	/* elements must be in order: sort as the generator does */
	{
		struct ir_set *s = &rs->sets[0];

		for (size_t i = 1; i < s->nelems; i++)
			for (size_t j = i; j > 0 && ir_elem_cmp(&s->elems[j - 1], &s->elems[j]) > 0; j--) {
				struct ir_elem t = s->elems[j];

				s->elems[j] = s->elems[j - 1];
				s->elems[j - 1] = t;
			}
	}
	back = round_trip(rs, &img);
	CHECK(back != NULL);
	if (back) {
		CHECK(ir_same(rs, back));
		/* the file names are the decoder's own copies */
		CHECK(back->chains[0].loc.file != rs->chains[0].loc.file);
		CHECK(back->chains[0].loc.file == back->counters[0].loc.file);
	}
	ir_free(back);
	ir_free(rs);
	sb_free(&img);
}

TEST(empty_ruleset_round_trip)
{
	struct ir_ruleset rs = { .table = "x" }, *back;
	struct strbuf img = { 0 };

	back = round_trip(&rs, &img);
	CHECK(back != NULL);
	if (back)
		CHECK(ir_same(&rs, back));
	ir_free(back);
	sb_free(&img);
}

/* An IPv4 host on a port range jumping to a chain: 13 bytes (the ir_elem
 * is 28). */
TEST(elements_compact)
{
	struct ir_ruleset rs = { .table = "t" };
	struct ir_chain c = { .name = "in_p" };
	struct ir_set s = { .name = "m", .key = IR_KEY_ADDR4_PROTO_PORT, .is_map = true };
	struct strbuf img = { 0 };

	s.nelems = 1000;
	s.elems = xcalloc(s.nelems, sizeof(*s.elems));
	for (size_t i = 0; i < s.nelems; i++)
		s.elems[i] = (struct ir_elem){ { 4, 32, { 198, 51, (uint8_t)(i >> 8),
							    (uint8_t)(i | 1) } },
					       { PROTO_UDP, 50000, 59999 }, 0 };
	rs.chains = &c;
	rs.nchains = 1;
	rs.sets = &s;
	rs.nsets = 1;
	ir_encode(&rs, &img);
	CHECK(img.len <= 13 * s.nelems + 32);
	free(s.elems);
	sb_free(&img);
}

/* ---- damaged and hostile images --------------------------------------- */

TEST(truncated_images_refused)
{
	struct ir_ruleset *rs = by_hand();
	struct strbuf img = { 0 };
	unsigned decoded = 0;

	ir_free(round_trip(rs, &img));
	for (size_t n = 0; n < img.len; n++) {
		char *copy = xmalloc(n + 1);    /* exact size: ASan sees overreads */
		const char *why = NULL;
		struct ir_ruleset *back;

		memcpy(copy, img.s, n);
		back = ir_decode(copy, n, &why);
		decoded += back != NULL;
		CHECK(back || why);
		ir_free(back);
		free(copy);
	}
	CHECK_INT(decoded, 0);
	ir_free(rs);
	sb_free(&img);
}

TEST(corrupt_images_safe)
{
	struct ir_ruleset *rs = generated(POLICY);
	struct strbuf img = { 0 };
	unsigned refused = 0;

	if (!rs)
		return;
	ir_free(round_trip(rs, &img));
	for (size_t i = 0; i < img.len; i++) {
		static const uint8_t flips[] = { 0x01, 0x80, 0xff };

		for (size_t f = 0; f < ARRAY_SIZE(flips); f++) {
			char *copy = xmalloc(img.len);
			const char *why = NULL;
			struct ir_ruleset *back;
			struct strbuf again = { 0 };

			memcpy(copy, img.s, img.len);
			copy[i] = (char)(copy[i] ^ flips[f]);
			back = ir_decode(copy, img.len, &why);
			refused += !back;
			/* what decodes is whole: it encodes and decodes again */
			if (back) {
				ir_encode(back, &again);
				ir_free(back);
				back = ir_decode(again.s, again.len, &why);
				CHECK(back != NULL);
			}
			ir_free(back);
			sb_free(&again);
			free(copy);
		}
	}
	CHECK(refused > 0);
	ir_free(rs);
	sb_free(&img);
}

static const char *decode_why(const void *buf, size_t len)
{
	const char *why = NULL;
	struct ir_ruleset *rs = ir_decode(buf, len, &why);

	ir_free(rs);
	return rs ? NULL : why;
}

TEST(hostile_images_refused)
{
	/* 2^63 file names */
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };
	/* an integer of 11 bytes */
	static const uint8_t wide[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0x01 };
	/* no files, table "a\0b" */
	static const uint8_t nul[] = { 0, 4, 'a', 0, 'b', 0, 0, 0, 0 };
	/* no files, table NULL */
	static const uint8_t noname[] = { 0, 0, 0, 0, 0, 0 };
	/* no files, table "t" (no comment, no flags), 1 chain of 1000000 rules */
	static const uint8_t rules[] = { 0, 2, 't', 0, 0, 1, 2, 'c', 0, 0, 0, 0, 0, 0, 0,
					 0xc0, 0x84, 0x3d };
	/* a whole empty ruleset, then a byte more */
	static const uint8_t trail[] = { 0, 2, 't', 0, 0, 0, 0, 0, 0 };
	/* one set of 2 elements out of order (10/8 before 9/8, both ipv4) */
	static const uint8_t order[] = { 0, 2, 't', 0, 0, 0, 1, 2, 's', 0, 0, 0, 0, 0, 2,
					 4, 8, 1, 10, 0, 0, 0, 0, 0, 0,
					 4, 8, 1, 9, 0, 0, 0, 0, 0, 0, 0 };
	/* a map element jumping to chain 5 of none */
	static const uint8_t jump[] = { 0, 2, 't', 0, 0, 0, 1, 2, 's', 0, 0, 1, 0, 0, 1,
					4, 8, 1, 10, 0, 0, 0, 0, 0, 5, 0 };
	/* an ipv4 prefix /33 */
	static const uint8_t wide4[] = { 0, 2, 't', 0, 0, 0, 1, 2, 's', 0, 0, 0, 0, 0, 1,
					 4, 33, 1, 10, 0, 0, 0, 0, 0, 0, 0 };
	/* a chain whose rule looks up set "nope" */
	static const uint8_t noset[] = { 0, 2, 't', 0, 0, 1, 2, 'c', 0, 0, 0, 0, 0, 0, 0, 1,
					 5, 0, 0, 0, 0, 0, 5, 'n', 'o', 'p', 'e',
					 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	/* a hook beyond the last */
	static const uint8_t hook[] = { 0, 2, 't', 0, 0, 1, 2, 'c', 0, 0, 0, 0, 9, 0, 0, 0,
					0, 0 };

	CHECK_STR(decode_why(huge, sizeof(huge)), "a count beyond the data");
	CHECK_STR(decode_why(wide, sizeof(wide)), "an integer out of range");
	CHECK_STR(decode_why(nul, sizeof(nul)), "a string with a NUL byte");
	CHECK_STR(decode_why(noname, sizeof(noname)), "a name missing");
	CHECK_STR(decode_why(rules, sizeof(rules)), "a count beyond the data");
	CHECK_STR(decode_why(trail, sizeof(trail)), "trailing bytes");
	CHECK(decode_why(trail, sizeof(trail) - 1) == NULL);
	CHECK_STR(decode_why(order, sizeof(order)), "elements out of order");
	CHECK_STR(decode_why(jump, sizeof(jump)),
		  "a map element jumps to a chain that is not there");
	CHECK_STR(decode_why(wide4, sizeof(wide4)), "a prefix out of range");
	CHECK_STR(decode_why(noset, sizeof(noset)), "a rule looks up a set that is not there");
	CHECK_STR(decode_why(hook, sizeof(hook)), "a value out of range");
	CHECK_STR(decode_why("", 0), "truncated");
}

/* The codec names every field of the IR (snapshot.c): a field added to
 * these structs must be encoded there too, or the cache of the live
 * table would lose it.  LP64 sizes. */
TEST(ir_layout_is_the_codecs)
{
	if (sizeof(void *) != 8)
		return;
	CHECK_INT(sizeof(struct ir_elem), 28);
	CHECK_INT(sizeof(struct ir_set), 48);
	CHECK_INT(sizeof(struct ir_counter), 48);
	CHECK_INT(sizeof(struct ir_rule), 88);
	CHECK_INT(sizeof(struct ir_chain), 64);
	CHECK_INT(sizeof(struct ir_ruleset), 72);
}

/* ---- after an element-only commit -------------------------------------- */

static const char OTHER[] =
	"version: 1\n"
	"edge:\n  interfaces: [eth0]\n  addresses: [203.0.113.10, 2001:db8:10::10]\n"
	"services:\n  narrow:\n    ports: [udp/3478, tcp/443, udp/50000-50999]\n"
	"partners:\n"
	"  contoso:\n    services: [sip-federation, av-edge]\n"
	"    addresses: [198.51.100.0/26, 2001:db8:100::/48, 203.0.113.77]\n"
	"  fabrikam:\n    services: [sip-federation, narrow]\n"
	"    addresses: [192.0.2.32/27, 192.0.2.99]\n"
	"  litware:\n    services: [sip-federation]\n    direction: inbound\n"
	"    addresses: [2001:db8:200::1]\n"
	"management:\n  - from: [192.0.2.0/28, 2001:db8:ffff::/48]\n    to: [tcp/22]\n"
	"icmp:\n  echo: true\n";

/* live's chains in another order (as a kernel may list them), its map
 * elements renumbered to match. */
static void reverse_chains(struct ir_ruleset *rs)
{
	size_t n = rs->nchains;

	for (size_t i = 0; i < n / 2; i++) {
		struct ir_chain t = rs->chains[i];

		rs->chains[i] = rs->chains[n - 1 - i];
		rs->chains[n - 1 - i] = t;
	}
	for (size_t i = 0; i < rs->nsets; i++)
		for (size_t k = 0; rs->sets[i].is_map && k < rs->sets[i].nelems; k++)
			rs->sets[i].elems[k].chain = (uint32_t)(n - 1 - rs->sets[i].elems[k].chain);
}

TEST(take_elems_is_the_commit)
{
	struct ir_ruleset *live = generated(POLICY), *want = generated(OTHER);
	struct ir_diff diff = { 0 }, after = { 0 };
	uint64_t handle;

	if (!live || !want)
		return;
	as_read(live);
	reverse_chains(live);
	handle = live->chains[0].rules[0].handle;
	ir_diff(live, want, &diff);
	CHECK(!diff.structural);
	CHECK(diff.nsets > 0);
	CHECK(ir_take_elems(live, want, &diff));
	ir_diff_free(&diff);
	ir_diff(live, want, &after);
	CHECK(ir_diff_empty(&after));
	CHECK(live->chains[0].rules[0].handle == handle);
	/* every map element jumps where want's does, by name */
	for (size_t i = 0; i < want->nsets; i++) {
		const struct ir_set *ws = &want->sets[i], *ls = ir_find_set(live, ws->name);

		CHECK(ls && ls->nelems == ws->nelems);
		for (size_t k = 0; ls && ws->is_map && k < ws->nelems; k++)
			CHECK_STR(live->chains[ls->elems[k].chain].name,
				  want->chains[ws->elems[k].chain].name);
	}
	ir_diff_free(&after);
	ir_free(live);
	ir_free(want);
}

TEST(take_elems_refuses_a_missing_set)
{
	struct ir_ruleset *live = generated(POLICY), *want = generated(OTHER);
	struct ir_diff diff = { 0 };

	if (!live || !want)
		return;
	ir_diff(live, want, &diff);
	CHECK(diff.nsets > 0);
	if (diff.nsets) {
		struct ir_set *ls = (struct ir_set *)ir_find_set(live, diff.sets[0].set->name);

		free(ls->name);
		ls->name = xstrdup("gone");
	}
	CHECK(!ir_take_elems(live, want, &diff));
	ir_diff_free(&diff);
	ir_free(live);
	ir_free(want);
}
