/* test_guard.c - the guards against wide ranges, from the pure run finder
 * (common/addr.c) through the per-partner guard of refresh (guard_width,
 * guard_max_shrink), the list reader's entry cap, to the final guard on
 * the ruleset (engine_guard); and a property test over random policies
 * and lists that goes through the refresh path's own pieces (guards ->
 * generate -> engine_guard) and holds engine_guard to an independent
 * oracle: it accepts exactly the rulesets with no run wider than its
 * guard.  Deterministic: a fixed seed and loop count. */
#define _GNU_SOURCE     /* fixture.h */
#include "common/common.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"
#include "refresh/refresh.h"
#include "tests/harness.h"
#include "fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261207u
#define ROUNDS 1500

static struct prefix P(const char *s)
{
	struct prefix p;

	if (prefix_parse(s, &p) != PREFIX_OK)
		abort();
	return p;
}

/* The first wide run of the prefixes (sorted here), formatted, or "". */
static const char *wide(const char *const *s, size_t n, unsigned min4, unsigned min6)
{
	static char buf[PREFIX_RUN_STRLEN];
	struct prefix v[32];
	struct prefix_run r;

	for (size_t i = 0; i < n; i++)
		v[i] = P(s[i]);
	qsort(v, n, sizeof(*v), (int (*)(const void *, const void *))prefix_cmp);
	if (!prefixes_wide_run(v, n, min4, min6, &r))
		return "";
	return prefix_run_fmt(&r, buf, sizeof(buf));
}

/* ---- the run finder ------------------------------------------------------ */

TEST(runs_join_touching_overlapping_nested)
{
	const char *halves[] = { "0.0.0.0/1", "128.0.0.0/1" };
	const char *touch[] = { "192.0.3.0/24", "192.0.4.0/24" };
	const char *gap[] = { "192.0.3.0/24", "192.0.5.0/24" };
	const char *nested[] = { "10.0.0.0/9", "10.1.0.0/16", "10.128.0.0/9" };
	const char *v6[] = { "::/1", "8000::/1" };
	const char *top[] = { "255.255.255.254/31", "255.255.255.0/25",
			      "255.255.255.128/26", "255.255.255.192/26" };

	CHECK_STR(wide(halves, 2, 1, 32), "0.0.0.0/0");         /* joins to /0 */
	CHECK_STR(wide(halves, 2, 0, 32), "0.0.0.0/0");         /* /0 whatever min */
	CHECK_STR(wide(touch, 2, 24, 32), "192.0.3.0-192.0.4.255");   /* no CIDR */
	CHECK_STR(wide(touch, 2, 23, 32), "");                  /* 512 fit in a /23 */
	CHECK_STR(wide(gap, 2, 24, 32), "");
	CHECK_STR(wide(nested, 3, 9, 32), "10.0.0.0/8");
	CHECK_STR(wide(nested, 3, 8, 32), "");
	CHECK_STR(wide(v6, 2, 8, 1), "::/0");
	CHECK_STR(wide(top, 4, 25, 32), "255.255.255.0/24");    /* at the very end */
	CHECK_STR(wide(top, 4, 24, 32), "");
}

TEST(runs_iterate_and_families_stay_apart)
{
	struct prefix v[] = { P("192.0.2.0/25"), P("192.0.2.128/25"), P("198.51.100.7"),
			      P("255.255.255.255"), P("::/128"), P("::1") };
	struct prefix_run r;
	size_t pos = 0, n = 0;
	char buf[PREFIX_RUN_STRLEN];

	while (prefix_run_next(v, ARRAY_SIZE(v), &pos, &r)) {
		n++;
		if (n == 1) {
			CHECK_STR(prefix_run_fmt(&r, buf, sizeof(buf)), "192.0.2.0/24");
			CHECK_INT(r.lo, 0);
			CHECK_INT(r.hi, 2);
		}
		if (n == 4)
			CHECK_STR(prefix_run_fmt(&r, buf, sizeof(buf)), "::/127");
	}
	CHECK_INT(n, 4);     /* 255.255.255.255 and :: touch only as numbers */
	pos = 0;
	prefix_run_next(v, 1, &pos, &r);
	CHECK(!prefix_run_whole(&r));
	CHECK(!prefix_run_wider(&r, 25));
	CHECK(prefix_run_wider(&r, 26));
}

/* ---- refresh's guard ------------------------------------------------------ */

static const struct guards G = { .max_shrink = 50, .min_prefix_v4 = 16,
				 .min_prefix_v6 = 32, .stale_after = 86400,
				 .max_entries = 4 };

TEST(guard_width_names_lines_and_range)
{
	struct loc l1 = { "lp.txt", 1, 1 }, l2 = { "lp.txt", 2, 1 }, l3 = { "p.yaml", 12, 5 };
	struct prefix host = P("198.51.100.11"), world = P("0.0.0.0/0");
	struct prefix hi = P("10.1.0.0/16"), lo = P("10.0.0.0/16");
	struct addr_list a = { 0 };
	char *why;

	addr_list_push(&a, &host, &l1);
	addr_list_push(&a, &world, &l2);
	why = guard_width(&G, &a);
	CHECK_STR(why, "lp.txt:2: 0.0.0.0/0 is the whole IPv4 Internet (never admitted)");
	free(why);
	a.n = 0;
	addr_list_push(&a, &hi, &l2);
	addr_list_push(&a, &lo, &l3);
	why = guard_width(&G, &a);
	CHECK_STR(why, "10.0.0.0/16 (p.yaml:12) and 10.1.0.0/16 (lp.txt:2) join into"
		  " 10.0.0.0/15, wider than /16 (guards.min_prefix_v4)");
	free(why);
	addr_list_free(&a);
}

TEST(guard_width_has_no_exemption_and_caps_entries)
{
	struct prefix have[] = { P("198.0.0.0/7") }, six[6];
	struct prefix dup[] = { P("192.0.2.1"), P("192.0.2.1"), P("192.0.2.1"),
				P("192.0.2.1"), P("192.0.2.1"), P("192.0.2.3") };
	char *why = guard_width(&G,
				&(struct addr_list){ have, NULL, 1, 1, NULL, NULL, NULL, 0 });

	CHECK(why && strstr(why, "198.0.0.0/7 is wider than /16"));     /* live too */
	free(why);
	for (int i = 0; i < 6; i++)
		six[i] = P("192.0.2.0"), six[i].a[3] = (uint8_t)(2 * i);
	why = guard_width(&G, &(struct addr_list){ six, NULL, 6, 6, NULL, NULL, NULL, 0 });
	CHECK_STR(why, "has 6 entries, more than guards.max_entries 4");
	free(why);
	/* 2 once merged */
	why = guard_width(&G, &(struct addr_list){ dup, NULL, 6, 6, NULL, NULL, NULL, 0 });
	CHECK(why == NULL);
	free(why);
	why = guard_max_shrink(&G, six, 6, six, 1, NULL, 0);    /* --force's one */
	CHECK_STR(why, "would remove 5 prefixes, 5 of its 6 IPv4 addresses (83% fewer,"
		  " more than guards.max_shrink 50%)");
	free(why);
}

/* ---- max_shrink in addresses ------------------------------------------------ */

/* guard_max_shrink over lists written as strings; NULL-terminated. */
static char *shrink(unsigned max, const char *const *have, const char *const *want)
{
	struct guards g = G;
	struct prefix h[160], w[160];
	size_t nh = 0, nw = 0;

	g.max_shrink = max;
	while (have[nh])
		h[nh] = P(have[nh]), nh++;
	while (want[nw])
		w[nw] = P(want[nw]), nw++;
	return guard_max_shrink(&g, h, nh, w, nw, NULL, 0);
}

/* Whether the shrink is refused; the message goes to stderr. */
static bool shrink_refused(unsigned max, const char *const *have, const char *const *want)
{
	char *why = shrink(max, have, want);
	bool refused = why != NULL;

	if (why)
		fprintf(stderr, "  (guard: %s)\n", why);
	free(why);
	return refused;
}

/* Ten contiguous addresses merge into a /29 and a /31: losing one of
 * them is 10% of the addresses, not "1 of 2 prefixes"; a /24 and one
 * address losing the /24 is 256 of 257, not "1 of 2". */
TEST(max_shrink_counts_addresses)
{
	const char *ten[] = { "198.51.100.0/29", "198.51.100.8", "198.51.100.9", NULL };
	const char *nine[] = { "198.51.100.0/29", "198.51.100.8", NULL };
	const char *big[] = { "198.51.100.0/24", "203.0.113.1", NULL };
	const char *one[] = { "203.0.113.1", NULL };
	const char *none[] = { NULL };
	char *why;

	CHECK(!shrink_refused(25, ten, nine));
	CHECK(!shrink_refused(10, ten, nine));                  /* exactly 10% */
	why = shrink(9, ten, nine);
	CHECK_STR(why, "would remove 1 prefix, 1 of its 10 IPv4 addresses (10% fewer,"
		  " more than guards.max_shrink 9%)");
	free(why);
	why = shrink(50, big, one);
	CHECK_STR(why, "would remove 1 prefix, 256 of its 257 IPv4 addresses (99% fewer,"
		  " more than guards.max_shrink 50%)");
	free(why);
	CHECK(!shrink_refused(50, one, big));                   /* growth */
	CHECK(!shrink_refused(50, big, big));
	why = shrink(0, one, none);
	CHECK_STR(why, "would remove 1 prefix, 1 of its 1 IPv4 address (100% fewer,"
		  " more than guards.max_shrink 0%)");
	free(why);
}

/* Addresses removed and added in their place cancel out; the message
 * says both. */
TEST(max_shrink_nets_out_moves)
{
	const char *have[] = { "198.51.100.0/30", NULL };
	const char *moved[] = { "198.51.100.4/30", NULL };
	const char *less[] = { "198.51.100.8", NULL };
	char *why;

	CHECK(!shrink_refused(0, have, moved));                 /* 4 out, 4 in */
	why = shrink(50, have, less);
	CHECK_STR(why, "would remove 1 prefix, 4 of its 4 IPv4 addresses and add 1"
		  " (75% fewer, more than guards.max_shrink 50%)");
	free(why);
}

/* IPv6 counts go to 2^128 and are exact: a /32 losing half of itself
 * plus one address is more than 50%, by one address in 2^96. */
TEST(max_shrink_ipv6_exact)
{
	const char *big[] = { "2001:db8:100::/48", "2001:db8::1", NULL };
	const char *one[] = { "2001:db8::1", NULL };
	const char *all[] = { "2001:db8::/32", NULL };
	const char *half[] = { "2001:db8::/33", NULL };
	const char *world[] = { "::/0", NULL };
	const char *half_and_one[] = { "2001:db8::/33", "2001:db8:8000::", NULL };
	struct prefix h = P("2001:db8::/32"), w[100], outer = P("2001:db8::/33");
	struct prefix hole = P("2001:db8::1");
	size_t nw = 0;
	char *why;

	why = shrink(50, big, one);
	CHECK_STR(why, "would remove 1 prefix, 1208925819614629174706176 of its"
		  " 1208925819614629174706177 IPv6 addresses (99% fewer, more than"
		  " guards.max_shrink 50%)");
	free(why);
	CHECK(!shrink_refused(50, all, half));                  /* exactly half */
	CHECK(!shrink_refused(50, all, half_and_one));
	why = shrink(49, all, half_and_one);    /* 2^95 - 1 of 2^96: 49.99..% */
	CHECK_STR(why, "would remove 1 prefix, 39614081257132168796771975167 of its"
		  " 79228162514264337593543950336 IPv6 addresses (49% fewer, more than"
		  " guards.max_shrink 49%)");
	free(why);
	/* half less one address: one address over 50% */
	prefix_subtract(&outer, &hole, w, &nw);
	CHECK_INT(nw, 95);
	why = guard_max_shrink(&G, &h, 1, w, nw, NULL, 0);
	CHECK_STR(why, "would remove 1 prefix, 39614081257132168796771975169 of its"
		  " 79228162514264337593543950336 IPv6 addresses (50% fewer, more than"
		  " guards.max_shrink 50%)");
	free(why);
	why = shrink(50, world, one);   /* all 2^128: no overflow */
	CHECK_STR(why, "would remove 1 prefix, 340282366920938463463374607431768211455 of"
		  " its 340282366920938463463374607431768211456 IPv6 addresses (99% fewer,"
		  " more than guards.max_shrink 50%)");
	free(why);
	CHECK(!shrink_refused(100, world, one));
}

/* IPv4 and IPv6 are weighed each on its own: a partner that loses every
 * IPv4 address is refused, however many IPv6 ones it keeps. */
TEST(max_shrink_per_family)
{
	const char *both[] = { "198.51.100.0/29", "198.51.100.8/31", "2001:db8::/64", NULL };
	const char *v6[] = { "2001:db8::/64", NULL };
	const char *v4[] = { "198.51.100.0/29", "198.51.100.8/31", "2001:db8::1", NULL };
	char *why;

	why = shrink(50, both, v6);
	CHECK_STR(why, "would remove 2 prefixes, 10 of its 10 IPv4 addresses (100% fewer,"
		  " more than guards.max_shrink 50%)");
	free(why);
	why = shrink(50, both, v4);
	CHECK(why && strstr(why, "18446744073709551615 of its 18446744073709551616 IPv6"
			    " addresses (99% fewer"));
	CHECK(why && !strstr(why, "IPv4"));
	free(why);
	why = shrink(50, both, (const char *const[]){ NULL });
	CHECK(why && strstr(why, "IPv4 addresses (100% fewer") &&
	      strstr(why, "; would remove 1 prefix, 18446744073709551616 of its"));
	free(why);
}

TEST(list_cap_stops_early)
{
	struct guards g = G;
	struct addr_list out = { 0 };
	struct strbuf sb = { 0 };
	struct diag d;
	char *msg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&msg, &len);

	for (int i = 0; i < 1000; i++)
		sb_addf(&sb, "192.0.%d.%d\n", i / 256, i % 256);
	sb_addf(&sb, "# a comment\n\nnot-an-address\n");
	diag_init(&d, f);
	CHECK(!list_parse("big.txt", sb.s, sb.len, &g, &out, &d));
	fclose(f);
	CHECK_INT(out.n, 0);
	CHECK(out.cap <= 16);   /* stopped at the cap: never held 1000 */
	CHECK(msg && strstr(msg, "big.txt: error: has 1001 entries, more than"
			    " guards.max_entries 4"));
	free(msg);
	g.max_entries = 2000;
	diag_init(&d, NULL);
	sb_reset(&sb);
	sb_addf(&sb, "192.0.2.1\n192.0.2.2\n");
	CHECK(list_parse("ok.txt", sb.s, sb.len, &g, &out, &d));
	CHECK_INT(out.n, 2);
	addr_list_free(&out);
	sb_free(&sb);
}

/* ---- the final guard on hand-built rulesets --------------------------------- */

static struct ir_ruleset *ruleset(size_t nchains, const char *const *chains)
{
	struct ir_ruleset *rs = xcalloc(1, sizeof(*rs));

	rs->table = xstrdup("t");
	rs->chains = xcalloc(nchains + 1, sizeof(*rs->chains));
	for (size_t i = 0; i < nchains; i++)
		rs->chains[rs->nchains++].name = xstrdup(chains[i]);
	return rs;
}

static int elem_qcmp(const void *x, const void *y)
{
	return ir_elem_cmp(x, y);
}

static void push_elem(struct ir_set *s, struct ir_elem e)
{
	s->elems = xreallocarray(s->elems, s->nelems + 1, sizeof(*s->elems));
	s->elems[s->nelems++] = e;
	qsort(s->elems, s->nelems, sizeof(*s->elems), elem_qcmp);
}

static void add_elem(struct ir_set *s, const char *addr, uint32_t chain)
{
	push_elem(s, (struct ir_elem){ .addr = P(addr), .chain = chain });
}

static int guard_says(const struct policy *p, const struct ir_ruleset *rs, char **msg)
{
	struct diag d;
	size_t len = 0;
	FILE *f = open_memstream(msg, &len);
	int ret;

	diag_init(&d, f);
	ret = engine_guard(p, rs, &d);
	fclose(f);
	return ret;
}

TEST(engine_guard_by_hand)
{
	const char *chains[] = { "input", "in_a", "in_b" };
	struct ir_ruleset *rs = ruleset(3, chains);
	struct ir_set *m = fixture_add_set(rs, "in4_1", IR_KEY_ADDR4, true);
	char *msg = NULL;

	add_elem(m, "198.51.100.0/25", 1);
	add_elem(m, "198.51.100.128/25", 2);            /* b's, not a's */
	CHECK_INT(guard_says(NULL, rs, &msg), 0);       /* /25s, two owners: fine */
	free(msg);
	add_elem(m, "198.51.101.0/24", 2);
	add_elem(m, "198.51.102.0/24", 2);              /* b: 2.5 /24s in a row */
	CHECK_INT(guard_says(NULL, rs, &msg), 0);       /* default /8 */
	free(msg);
	add_elem(m, "0.0.0.0/1", 1);
	add_elem(m, "128.0.0.0/1", 2);                  /* each owner's own /1 ... */
	CHECK_INT(guard_says(NULL, rs, &msg), -EPERM);
	CHECK(msg && strstr(msg, "refusing to commit: map in4_1: partner 'a' (chain in_a):"
			    " 0.0.0.0/1 is wider than /8 (guards.min_prefix_v4)"));
	free(msg);
	ir_free(rs);

	rs = ruleset(3, chains);
	m = fixture_add_set(rs, "in4_1", IR_KEY_ADDR4, true);
	add_elem(m, "0.0.0.0/1", 1);
	add_elem(m, "128.0.0.0/1", 2);
	{
		struct diag d;
		struct policy *p;
		const char *y = "version: 1\npartners: {}\nguards: {min_prefix_v4: 1}\n";

		diag_init(&d, stderr);
		p = policy_parse("t.yaml", y, strlen(y), &d);
		CHECK(p != NULL);
		CHECK_INT(guard_says(p, rs, &msg), -EPERM);     /* ... adds up to /0 */
		CHECK(msg && strstr(msg, "map in4_1: its elements together: 0.0.0.0/1,"
				    " 128.0.0.0/1 join into 0.0.0.0/0, the whole IPv4"
				    " Internet"));
		free(msg);
		policy_free(p);
	}
	m = fixture_add_set(rs, "mgmt6", IR_KEY_ADDR6_PROTO_PORT, false);
	add_elem(m, "2001:db8::/33", 0);
	add_elem(m, "2001:db8:8000::/33", 0);
	CHECK_INT(guard_says(NULL, rs, &msg), -EPERM);
	CHECK(msg && strstr(msg, "set mgmt6") == NULL);         /* a /32: allowed */
	free(msg);
	add_elem(m, "2001:db9::/32", 0);
	CHECK_INT(guard_says(NULL, rs, &msg), -EPERM);
	CHECK(msg && strstr(msg, "refusing to commit: set mgmt6: 2001:db8::/33,"
			    " 2001:db8:8000::/33, 2001:db9::/32 join into 2001:db8::/31,"
			    " wider than /32 (guards.min_prefix_v6)"));
	free(msg);
	m = fixture_add_set(rs, "edge4", IR_KEY_ADDR4, false);
	for (int i = 0; i < 12; i++) {          /* twelve /7s, apart */
		char a[32];

		snprintf(a, sizeof(a), "%d.0.0.0/7", 16 * i);
		add_elem(m, a, 0);
	}
	CHECK_INT(guard_says(NULL, rs, &msg), -EPERM);
	CHECK(msg && strstr(msg, "set edge4: 144.0.0.0/7 is wider than /8"));
	CHECK(msg && !strstr(msg, "set edge4: 160.0.0.0/7"));  /* ten, then a count */
	CHECK(msg && strstr(msg, "refusing to commit: set edge4: 2 more ranges too wide"));
	free(msg);
	ir_free(rs);
}

/* ---- the property test ------------------------------------------------------ */

static unsigned rng_state = SEED;

static uint32_t rnd(void)
{
	return th_xorshift(&rng_state);
}

static unsigned below(unsigned n)
{
	return n ? rnd() % n : 0;
}

static struct prefix rand_prefix(uint8_t family, unsigned len)
{
	struct prefix p = { .family = family, .len = (uint8_t)len };

	for (unsigned i = 0; i < (family == 4 ? 4u : 16u); i++)
		p.a[i] = (uint8_t)rnd();
	if (family == 6 && below(2)) {          /* often near each other */
		p.a[0] = 0x20;
		p.a[1] = 0x01;
	}
	prefix_mask(&p);
	return p;
}

/* The block right after p (same length), if any. */
static bool next_block(struct prefix *p)
{
	unsigned max = prefix_maxlen(p);
	struct prefix q = *p;

	if (p->len == 0)
		return false;
	for (unsigned b = p->len; b-- > 0;) {
		uint8_t bit = (uint8_t)(0x80 >> (b % 8));

		q.a[b / 8] ^= bit;
		if (q.a[b / 8] & bit) {
			*p = q;
			return true;
		}
	}
	(void)max;
	return false;
}

/* A partner's proposed addresses: random prefixes around the guard,
 * and the adversarial ones: halves of a too-wide prefix, nested ones,
 * runs of touching blocks that join into no prefix, the world. */
static void rand_addrs(struct addr_list *out, unsigned min4, unsigned min6)
{
	unsigned n = below(7);

	for (unsigned i = 0; i < n; i++) {
		uint8_t fam = below(3) ? 4 : 6;
		unsigned min = fam == 4 ? min4 : min6, max = fam == 4 ? 32 : 128;
		unsigned len = min + below(max - min + 1);
		struct prefix p = rand_prefix(fam, len), q;

		switch (below(12)) {
		case 0:         /* halves of something one wider than allowed */
			p = rand_prefix(fam, min ? min - 1 : 0);
			p.len++;
			addr_list_push(out, &p, NULL);
			q = p;
			if (next_block(&q))
				addr_list_push(out, &q, NULL);
			break;
		case 1:         /* touching blocks, often not one CIDR */
			p = rand_prefix(fam, min);
			for (unsigned k = 0, m = 1 + below(3); k < m; k++) {
				addr_list_push(out, &p, NULL);
				if (!next_block(&p))
					break;
			}
			break;
		case 2:         /* nested */
			addr_list_push(out, &p, NULL);
			q = p;
			q.len = (uint8_t)(len + below(max - len + 1));
			addr_list_push(out, &q, NULL);
			break;
		case 3:
			if (!below(8)) {        /* the world, now and then */
				p = rand_prefix(fam, 0);
				addr_list_push(out, &p, NULL);
				break;
			}
			/* fall through */
		default:
			addr_list_push(out, &p, NULL);
		}
	}
}

static struct policy *rand_policy(size_t n, unsigned min4, unsigned min6)
{
	static const char *const dirs[] = { "inbound", "outbound", "both" };
	struct strbuf y = { 0 };
	struct policy *p;
	struct diag d;

	sb_addf(&y, "version: 1\npartners:\n");
	for (size_t i = 0; i < n; i++)
		sb_addf(&y, "  p%zu:\n    services: [%s]\n    direction: %s\n"
			"    hosts: [p%zu.example.test]\n", i,
			below(3) ? "sip-federation" : "sip-federation, xmpp-s2s",
			dirs[below(3)], i);
	sb_addf(&y, "guards: {min_prefix_v4: %u, min_prefix_v6: %u}\n", min4, min6);
	diag_init(&d, stderr);
	p = policy_parse("prop.yaml", y.s, y.len, &d);
	sb_free(&y);
	return p;
}

/* ---- the oracle: runs by plain interval arithmetic ----------------------- */

typedef unsigned __int128 u128;

struct ival {
	size_t owner;
	u128 lo, hi;
};

static u128 addr_num(const uint8_t *a, unsigned nb)
{
	u128 x = 0;

	for (unsigned i = 0; i < nb; i++)
		x = x << 8 | a[i];
	return x;
}

static int ival_cmp(const void *x, const void *y)
{
	const struct ival *a = x, *b = y;

	if (a->owner != b->owner)
		return a->owner < b->owner ? -1 : 1;
	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Whether [lo, hi] is too wide: the whole family, or more addresses than
 * one /min. */
static bool too_wide(u128 lo, u128 hi, unsigned bits, unsigned min)
{
	u128 top = bits == 128 ? ~(u128)0 : ((u128)1 << bits) - 1;

	if (lo == 0 && hi == top)
		return true;
	return min < bits && hi - lo >= (u128)1 << (bits - min);
}

/* Runs of v (sorted by owner then lo): *per_owner when one owner's run is
 * too wide, *whole when the set's union covers the whole family. */
static void runs_of(struct ival *v, size_t n, unsigned bits, unsigned min,
		    bool *per_owner, bool *whole)
{
	u128 top = bits == 128 ? ~(u128)0 : ((u128)1 << bits) - 1;

	for (size_t i = 0; i < n;) {
		u128 lo = v[i].lo, hi = v[i].hi;
		size_t j = i + 1;

		while (j < n && v[j].owner == v[i].owner && (hi == top || v[j].lo <= hi + 1)) {
			if (v[j].hi > hi)
				hi = v[j].hi;
			j++;
		}
		*per_owner |= too_wide(lo, hi, bits, min);
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		v[i].owner = 0;
	qsort(v, n, sizeof(*v), ival_cmp);
	for (size_t i = 0; i < n;) {
		u128 lo = v[i].lo, hi = v[i].hi;
		size_t j = i + 1;

		while (j < n && (hi == top || v[j].lo <= hi + 1)) {
			if (v[j].hi > hi)
				hi = v[j].hi;
			j++;
		}
		*whole |= lo == 0 && hi == top;
		i = j;
	}
}

static void oracle(const struct ir_ruleset *rs, unsigned min4, unsigned min6,
		   bool *per_owner, bool *whole)
{
	*per_owner = *whole = false;
	for (size_t i = 0; i < rs->nsets; i++) {
		const struct ir_set *s = &rs->sets[i];
		bool v4 = s->key == IR_KEY_ADDR4 || s->key == IR_KEY_ADDR4_PROTO_PORT;
		unsigned nb = v4 ? 4 : 16;
		struct ival *v;

		if (s->key == IR_KEY_PROTO_PORT || !s->nelems)
			continue;
		v = xcalloc(s->nelems, sizeof(*v));
		for (size_t k = 0; k < s->nelems; k++) {
			uint8_t last[16];

			prefix_last(&s->elems[k].addr, last);
			v[k] = (struct ival){ s->is_map ? s->elems[k].chain : 0,
					      addr_num(s->elems[k].addr.a, nb), addr_num(last, nb) };
		}
		qsort(v, s->nelems, sizeof(*v), ival_cmp);
		runs_of(v, s->nelems, nb * 8, v4 ? min4 : min6, per_owner, whole);
		free(v);
	}
}

/* One refresh's choice per partner: what the guards let through, else
 * what it had (`have`), exactly as engine/refresh.c's guard_one does. */
static unsigned prop_held, prop_partners;

static void guard_all(const struct guards *g, struct addr_list *prop, struct addr_list *have,
		      size_t n, bool force, struct addr_list *use)
{
	for (size_t i = 0; i < n; i++) {
		char *why = guard_width(g, &prop[i]);

		if (!why && !force)
			why = guard_max_shrink(g, have[i].v, have[i].n, prop[i].v, prop[i].n,
					       NULL, 0);
		use[i] = why ? have[i] : prop[i];
		prop_held += why != NULL;
		prop_partners++;
		free(why);
	}
}

static struct ir_ruleset *gen(const struct policy *p, const struct addr_list *use)
{
	struct gen_addrs *extra = xcalloc(p->npartners + 1, sizeof(*extra));
	struct ir_ruleset *rs;
	struct diag d;

	for (size_t i = 0; i < p->npartners; i++)
		extra[i] = (struct gen_addrs){ use[i].v, use[i].n, NULL, NULL, NULL, NULL, 0 };
	diag_init(&d, NULL);
	rs = generate(p, extra, &d);
	free(extra);
	return rs;
}

/* Something the guards upstream would never let through, put in by hand
 * (a bug upstream, a forged snapshot): the final guard must catch it. */
static void tamper(struct ir_ruleset *rs, unsigned min4)
{
	for (size_t i = 0; i < rs->nsets; i++) {
		struct ir_set *s = &rs->sets[i];
		struct ir_elem e;

		if (!s->is_map || s->key != IR_KEY_ADDR4 || !s->nelems)
			continue;
		e = s->elems[below((unsigned)s->nelems)];
		e.addr = rand_prefix(4, min4 ? min4 - 1 : 0);
		push_elem(s, e);
		return;
	}
}

static unsigned prop_checked, prop_refused, prop_tampered;

/* What the generator made of `use`, through the final guard, against the
 * oracle; then the same ruleset tampered with. */
static void judge(const struct policy *p, const struct addr_list *use)
{
	unsigned min4 = p->guards.min_prefix_v4, min6 = p->guards.min_prefix_v6;
	struct ir_ruleset *rs = gen(p, use);
	bool per_owner, whole;
	struct diag quiet;
	int ret;

	CHECK(rs != NULL);
	if (!rs)
		return;
	diag_init(&quiet, NULL);
	oracle(rs, min4, min6, &per_owner, &whole);
	CHECK(!per_owner);      /* the partner guard let nothing wide through */
	ret = engine_guard(p, rs, &quiet);
	CHECK_INT(ret, whole ? -EPERM : 0);     /* refuses exactly the bad ones */
	prop_checked++;
	prop_refused += ret != 0;
	tamper(rs, min4);
	oracle(rs, min4, min6, &per_owner, &whole);
	if (per_owner || whole) {
		CHECK_INT(engine_guard(p, rs, &quiet), -EPERM);
		prop_tampered++;
	}
	ir_free(rs);
}

/* Two refreshes: from nothing, then to new random lists with what the
 * first let through live (so that max_shrink and --force matter). */
static void one_round(void)
{
	unsigned min4 = 1 + below(below(2) ? 32 : 12), min6 = 1 + below(128);
	size_t n = 1 + below(5);
	struct policy *p = rand_policy(n, min4, min6);
	struct addr_list *prop = xcalloc(n, sizeof(*prop)), *have = xcalloc(n, sizeof(*have));
	struct addr_list *use = xcalloc(n, sizeof(*use)), *prop2 = xcalloc(n, sizeof(*prop2));

	CHECK(p != NULL);
	if (!p)
		goto out_free;
	for (size_t i = 0; i < n; i++) {
		rand_addrs(&prop[i], min4, min6);
		rand_addrs(&prop2[i], min4, min6);
	}
	guard_all(&p->guards, prop, have, n, below(2), use);
	judge(p, use);
	memcpy(have, use, n * sizeof(*have));
	guard_all(&p->guards, prop2, have, n, below(2), use);
	judge(p, use);
out_free:
	for (size_t i = 0; i < n; i++) {
		addr_list_free(&prop[i]);
		addr_list_free(&prop2[i]);
	}
	free(prop);
	free(prop2);
	free(have);
	free(use);
	policy_free(p);
}

TEST(property_nothing_wide_is_committed)
{
	unsigned before = th_failed_checks;

	for (unsigned i = 0; i < ROUNDS && th_failed_checks == before; i++)
		one_round();
	fprintf(stderr, "  property: %u rulesets (seed %u): %u of %u partners held back by"
		" the guards, %u rulesets refused as a whole map, %u tampered ones refused\n",
		prop_checked, SEED, prop_held, prop_partners, prop_refused, prop_tampered);
	CHECK(prop_held > prop_partners / 10);  /* the adversarial inputs were */
	CHECK(prop_checked == 2 * ROUNDS || th_failed_checks != before);
	CHECK(prop_tampered > ROUNDS / 4);      /* the oracle agreed they were bad */
}
