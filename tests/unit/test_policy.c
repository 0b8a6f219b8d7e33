/* Unit tests of policy/: parsing from memory, defaults, built-ins,
 * merging, limits, and the printer's round trip. */
#include "policy/policy.h"
#include "tests/harness.h"

#include <time.h>

/* Parses `text`; diagnostics are counted, not printed. */
static struct policy *parse(const char *text, struct diag *d)
{
	diag_init(d, NULL);
	return policy_parse("mem.yaml", text, strlen(text), d);
}

static const char *fmt_prefix(const struct prefix *p)
{
	static char buf[4][PREFIX_STRLEN];
	static int i;

	i = (i + 1) % 4;
	return prefix_fmt(p, buf[i], sizeof(buf[i]));
}

TEST(defaults_filled)
{
	struct diag d;
	struct policy *p = parse("version: 1\n", &d);

	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_INT(d.errors, 0);
	CHECK_STR(p->table, "fedwall");
	CHECK_INT(p->mode, MODE_HOST);
	CHECK_INT(p->icmp_echo, false);
	CHECK_INT(p->guards.max_shrink, 50);
	CHECK_INT(p->guards.min_prefix_v4, 8);
	CHECK_INT(p->guards.min_prefix_v6, 32);
	CHECK_INT(p->guards.stale_after, 86400);
	CHECK_INT(p->log.enabled, true);
	CHECK_INT(p->log.rate, 10);
	CHECK_INT(p->log.unit, LOG_MINUTE);
	CHECK_STR(p->log.prefix, "fedwall drop: ");
	CHECK_INT(p->npartners, 0);
	CHECK_INT(p->nmanagement, 0);
	policy_free(p);
}

TEST(free_null_is_noop)
{
	policy_free(NULL);
}

/* A billion-laughs document must fail at the first anchor, long before
 * anything could be expanded. */
TEST(alias_bomb_refused_fast)
{
	struct strbuf sb = { 0 };
	struct diag d;
	struct policy *p;
	clock_t t0 = clock();

	sb_addf(&sb, "version: 1\na: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
	for (char c = 'b'; c <= 'z'; c++) {
		sb_addf(&sb, "%c: &%c [", c, c);
		for (int i = 0; i < 9; i++)
			sb_addf(&sb, "%s*%c", i ? "," : "", c - 1);
		sb_addf(&sb, "]\n");
	}
	p = parse(sb_str(&sb), &d);
	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
	CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 0.5);
	policy_free(p);
	sb_free(&sb);
}

TEST(alias_refused)
{
	struct diag d;
	struct policy *p = parse("version: 1\npartners: *x\n", &d);

	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
}

TEST(duplicate_keys_reported)
{
	struct diag d;
	struct policy *p = parse("version: 1\npartners:\n"
				 "  msn: {services: [sip-federation], addresses: [64.4.9.181]}\n"
				 "  msn: {services: [sip-federation], addresses: [64.4.9.245]}\n"
				 "guards: {stale_after: 1h, stale_after: 2h}\n", &d);

	CHECK(p == NULL);
	CHECK_INT(d.errors, 2);
}

TEST(every_error_reported)
{
	struct diag d;
	struct policy *p = parse("version: 1\nmode: gatway\npartners:\n"
				 "  a: {services: [nope], addresses: [0.0.0.0/0]}\n"
				 "  b: {services: [sip-federation], direction: sideways}\n", &d);

	CHECK(p == NULL);
	/* mode, unknown service, whole Internet, direction, b's sources */
	CHECK_INT(d.errors, 5);
}

TEST(nesting_bounded)
{
	struct strbuf sb = { 0 };
	struct diag d;
	struct policy *p;

	sb_addf(&sb, "version: 1\nx: ");
	for (int i = 0; i < 10000; i++)
		sb_addc(&sb, '[');
	p = parse(sb_str(&sb), &d);
	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
	sb_free(&sb);
}

TEST(size_bounded)
{
	static const char text[] = "version: 1\n";
	struct diag d;
	struct policy *p;

	diag_init(&d, NULL);
	/* Refused on the length alone: the buffer is never read. */
	p = policy_parse("big.yaml", text, (size_t)65 << 20, &d);
	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
}

TEST(nul_refused)
{
	static const char raw[] = "version: 1\0\n";
	struct diag d;
	struct policy *p;

	diag_init(&d, NULL);
	p = policy_parse("nul.yaml", raw, sizeof(raw) - 1, &d);
	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
	p = parse("version: 1\ntable: \"a\\0b\"\n", &d);
	CHECK(p == NULL);
}

TEST(builtins_sorted_and_merged)
{
	size_t n;
	const struct service *b = policy_builtin_services(&n);

	CHECK(n >= 6);
	for (size_t i = 0; i < n; i++) {
		struct portrange r[16];

		CHECK(b[i].builtin);
		CHECK(b[i].description != NULL);
		CHECK(b[i].nports > 0 && b[i].nports <= 16);
		if (i)
			CHECK(strcmp(b[i - 1].name, b[i].name) < 0);
		for (size_t j = 0; j < b[i].nports && j < 16; j++)
			r[j] = b[i].ports[j].r;
		CHECK_INT(portranges_merge(r, b[i].nports), b[i].nports);
		for (size_t j = 0; j < b[i].nports && j < 16; j++)
			CHECK_INT(portrange_cmp(&r[j], &b[i].ports[j].r), 0);
	}
}

TEST(builtin_override_in_place)
{
	struct diag d;
	size_t nb, at = 0;
	const struct service *b = policy_builtin_services(&nb);
	struct policy *p = parse("version: 1\nservices:\n"
				 "  mine: [tcp/1000]\n"
				 "  sip-federation: {description: moved, ports: [tcp/5062]}\n", &d);

	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_INT(p->nservices, nb + 1);
	for (size_t i = 0; i < nb; i++) {
		CHECK_STR(p->services[i].name, b[i].name);
		if (!strcmp(b[i].name, "sip-federation"))
			at = i;
		else
			CHECK(p->services[i].builtin);
	}
	CHECK(!p->services[at].builtin);
	CHECK_STR(p->services[at].description, "moved");
	CHECK_INT(p->services[at].ports[0].r.lo, 5062);
	CHECK_INT(p->services[at].loc.line, 4);
	CHECK_STR(p->services[nb].name, "mine");
	CHECK(!p->services[nb].builtin);
	policy_free(p);
}

TEST(partners_sorted_and_merged)
{
	struct diag d;
	struct policy *p = parse("version: 1\npartners:\n"
				 "  zulu:\n    services: [sip-federation]\n"
				 "    addresses: [198.51.100.128/25, 198.51.100.0/25, 192.0.2.1]\n"
				 "  alpha: {services: [av-edge, sip-federation], hosts: [SIP.Alpha.Example]}\n",
				 &d);

	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_INT(p->npartners, 2);
	CHECK_STR(p->partners[0].name, "alpha");
	CHECK_STR(p->partners[1].name, "zulu");
	CHECK_INT(p->partners[0].direction, DIR_BOTH);
	CHECK_STR(p->partners[0].hosts[0].s, "sip.alpha.example");
	CHECK_INT(p->partners[0].nservices, 2);
	CHECK_INT(p->partners[1].naddresses, 2);
	CHECK_STR(fmt_prefix(&p->partners[1].addresses[0].p), "192.0.2.1");
	CHECK_STR(fmt_prefix(&p->partners[1].addresses[1].p), "198.51.100.0/24");
	/* The merged /24 keeps the position of an entry it came from. */
	CHECK_INT(p->partners[1].addresses[1].loc.line, 5);
	CHECK_INT(p->partners[1].loc.line, 3);
	CHECK_INT(p->partners[1].loc.col, 3);
	CHECK_STR(p->partners[1].loc.file, "mem.yaml");
	policy_free(p);
}

TEST(lists_resolved_against_policy_dir)
{
	struct diag d;
	const char *text = "version: 1\npartners:\n  a:\n    services: [sip-federation]\n"
			   "    lists: [lists/a.txt, ../b.txt, /abs/./c.txt]\n";
	struct policy *p;

	diag_init(&d, NULL);
	p = policy_parse("/etc/fedwall/policy.yaml", text, strlen(text), &d);
	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_INT(p->partners[0].nlists, 3);
	CHECK_STR(p->partners[0].lists[0].s, "/abs/c.txt");
	CHECK_STR(p->partners[0].lists[1].s, "/etc/b.txt");
	CHECK_STR(p->partners[0].lists[2].s, "/etc/fedwall/lists/a.txt");
	policy_free(p);
}

TEST(guards_bound_prefixes_anywhere)
{
	struct diag d;
	struct policy *p = parse("version: 1\npartners:\n"
				 "  a: {services: [sip-federation], addresses: [198.51.0.0/16]}\n"
				 "guards: {min_prefix_v4: 24}\n", &d);

	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
	p = parse("version: 1\npartners:\n"
		  "  a: {services: [sip-federation], addresses: [198.51.0.0/16]}\n"
		  "guards: {min_prefix_v4: 16}\n", &d);
	CHECK(p != NULL);
	policy_free(p);
}

static char *print_to_string(const struct policy *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	policy_print(f, p);
	fclose(f);
	return buf;
}

TEST(print_round_trip)
{
	struct diag d;
	struct policy *p = parse("version: 1\nmode: gateway\n"
				 "edge: {addresses: [203.0.113.10, \"2001:db8::10\"]}\n"
				 "services: {m: {description: \"a \\\"b\\\"\\n\", ports: [udp/2, udp/1]}}\n"
				 "partners:\n  null: {services: [m], direction: inbound, "
				 "domains: [x.example], addresses: [\"::ffff:192.0.2.1\"]}\n"
				 "management: [{from: 192.0.2.0/24, to: tcp/22}]\n"
				 "guards: {stale_after: 61s}\nlog: {enabled: no, rate: 1/hour, prefix: ''}\n",
				 &d);
	struct policy *q;
	char *a, *b;

	CHECK(p != NULL);
	if (!p)
		return;
	a = print_to_string(p);
	q = parse(a, &d);
	CHECK(q != NULL);
	if (q) {
		b = print_to_string(q);
		CHECK_STR(a, b);
		CHECK_STR(q->partners[0].name, "null");
		CHECK_STR(q->services[q->nservices - 1].description, "a \"b\"\n");
		free(b);
	}
	free(a);
	policy_free(q);
	policy_free(p);
}

TEST(enum_names)
{
	CHECK_STR(direction_name(DIR_INBOUND), "inbound");
	CHECK_STR(direction_name(DIR_OUTBOUND), "outbound");
	CHECK_STR(direction_name(DIR_BOTH), "both");
	CHECK_STR(mode_name(MODE_GATEWAY), "gateway");
	CHECK_STR(log_unit_name(LOG_DAY), "day");
}

/* ---- every problem in one run ------------------------------------------ */

/* A partner whose name is bad, with two more problems and a list. */
static const char *const bad_partner =
	"version: 1\n"
	"partners:\n"
	"  Beta Corp:\n"
	"    services: [sip-federation]\n"
	"    direction: sideways\n"
	"    colour: blue\n"
	"    lists: [/srv/beta.txt]\n"
	"  good:\n"
	"    services: [sip-federation]\n"
	"    lists: nope\n";

/* Parses `text` keeping the policy despite its errors. */
static struct policy *parse_partial(const char *text, struct diag *d)
{
	diag_init(d, NULL);
	return policy_parse_partial("mem.yaml", text, strlen(text), d);
}

TEST(bad_partner_name_hides_nothing)
{
	struct diag d;
	struct policy *p = parse(bad_partner, &d);

	CHECK(p == NULL);
	/* the name, the direction, the key, and good's lists */
	CHECK_INT(d.errors, 4);
	policy_free(p);
}

TEST(partial_keeps_what_was_valid)
{
	struct diag d;
	struct policy *p = parse_partial(bad_partner, &d);

	CHECK(p != NULL);
	CHECK_INT(d.errors, 4);
	if (!p)
		return;
	CHECK_INT(p->npartners, 2);
	CHECK_STR(p->partners[0].name, "Beta Corp");
	CHECK_INT(p->partners[0].nlists, 1);
	if (p->partners[0].nlists)
		CHECK_STR(p->partners[0].lists[0].s, "/srv/beta.txt");
	CHECK_STR(p->partners[1].name, "good");
	CHECK_INT(p->partners[1].nlists, 0);
	policy_free(p);
}

TEST(partial_of_valid_is_the_policy)
{
	struct diag d;
	struct policy *p = parse_partial("version: 1\ntable: t\n", &d);

	CHECK(p != NULL);
	CHECK_INT(d.errors, 0);
	if (p)
		CHECK_STR(p->table, "t");
	policy_free(p);
}

/* Not YAML: nothing after the error can be read, so nothing comes back. */
TEST(partial_needs_yaml)
{
	struct diag d;
	struct policy *p = parse_partial("version: 1\npartners: [a\n", &d);

	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
	p = parse_partial("version: 1\na: &x 1\n", &d);
	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
}

/* A service with a bad name is one problem: the partner naming it finds
 * it (no "unknown service" besides). */
TEST(bad_service_name_once)
{
	struct diag d;
	struct policy *p = parse("version: 1\n"
				 "services:\n"
				 "  Media: [udp/5000]\n"
				 "partners:\n"
				 "  a:\n"
				 "    services: [Media]\n"
				 "    addresses: [192.0.2.1]\n", &d);

	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
	policy_free(p);
}

/* A guard in error is unknown: nothing is measured against its default
 * (which the intended value may not share), but the whole Internet,
 * which no guard admits, still is. */
TEST(bad_guard_measures_nothing)
{
	static const char *const guards[] = {
		"{min_prefix_v4: 4x}", "{min_prefix_v4: 0}", "50%",
	};
	struct strbuf sb = { 0 };
	struct diag d;

	for (size_t i = 0; i < ARRAY_SIZE(guards); i++) {
		struct policy *p;

		sb_reset(&sb);
		sb_addf(&sb, "version: 1\nguards: %s\npartners:\n  a:\n"
			"    services: [sip-federation]\n"
			"    addresses: [64.0.0.0/6]\n"
			"  b:\n    services: [sip-federation]\n"
			"    addresses: [0.0.0.0/0]\n", guards[i]);
		p = parse(sb_str(&sb), &d);
		CHECK(p == NULL);
		CHECK_INT(d.errors, 2);
		policy_free(p);
	}
	sb_free(&sb);
}

/* dnssec: require reaches the partner (off and absent: not required);
 * the trust anchor is made absolute against the policy's directory, and
 * absent stays NULL (the default, which only requiring partners need). */
TEST(dnssec_and_trust_anchor)
{
	const char *text = "version: 1\npartners:\n"
			   "  a:\n    services: [sip-federation]\n    hosts: [sip.a.example]\n"
			   "    dnssec: require\n"
			   "  b:\n    services: [sip-federation]\n    hosts: [sip.b.example]\n"
			   "    dnssec: off\n"
			   "  c:\n    services: [sip-federation]\n    domains: [c.example]\n"
			   "resolve: {trust_anchor: keys/../test.key}\n";
	struct policy *p;
	struct diag d;

	diag_init(&d, NULL);
	p = policy_parse("/etc/fedwall/policy.yaml", text, strlen(text), &d);
	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_INT(p->partners[0].dnssec_require, true);
	CHECK_INT(p->partners[0].dnssec_loc.line, 6);
	CHECK_INT(p->partners[1].dnssec_require, false);
	CHECK_INT(p->partners[2].dnssec_require, false);
	CHECK_STR(p->resolve.trust_anchor.s, "/etc/fedwall/test.key");
	CHECK_INT(p->resolve.trust_anchor.loc.line, 14);
	policy_free(p);
	p = parse("version: 1\n", &d);
	CHECK(p && !p->resolve.trust_anchor.s);
	policy_free(p);
	p = parse("version: 1\npartners:\n  a:\n    services: [sip-federation]\n"
		  "    hosts: [sip.a.example]\n    dnssec: true\n", &d);
	CHECK(p == NULL);
	CHECK_INT(d.errors, 1);
}

/* lists: a file, an https:// URL, a mapping with its own interval and
 * the plain-http opt-in; fetch: its settings, max_size in MiB alone. */
TEST(list_urls_and_fetch)
{
	static const char text[] = "version: 1\n"
		"fetch: {timeout: 5s, max_size: 3, interval: 10m}\n"
		"partners:\n"
		"  a:\n"
		"    services: [sip-federation]\n"
		"    lists:\n"
		"      - /srv/a.txt\n"
		"      - https://l.example/a.txt\n"
		"      - {url: 'http://l.example/b.txt', insecure_http: true, interval: 1m}\n";
	struct diag d;
	struct policy *p;
	const struct partner *pt;

	diag_init(&d, stderr);
	p = parse(text, &d);
	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_INT(p->fetch.timeout, 5);
	CHECK(p->fetch.max_size == 3u << 20);
	CHECK_INT(p->fetch.interval, 600);
	pt = &p->partners[0];
	CHECK_INT(pt->nlists, 3);
	CHECK(!pt->list_opts[0].url && !strcmp(pt->lists[0].s, "/srv/a.txt"));
	CHECK(pt->list_opts[1].url && pt->list_opts[1].insecure_http &&
	      pt->list_opts[1].interval == 60 && !strcmp(pt->lists[1].s, "http://l.example/b.txt"));
	CHECK(pt->list_opts[2].url && !pt->list_opts[2].insecure_http &&
	      !pt->list_opts[2].interval);
	policy_free(p);
}

/* http:// without its entry's opt-in is an error naming line and column. */
TEST(list_http_needs_opt_in)
{
	static const char text[] = "version: 1\npartners:\n"
		"  a: {services: [sip-federation], lists: [http://l.example/a.txt]}\n";
	char buf[1024] = "";
	FILE *mem = fmemopen(buf, sizeof(buf), "w");
	struct diag d;
	struct policy *p;

	diag_init(&d, mem);
	p = policy_parse("mem.yaml", text, strlen(text), &d);
	fclose(mem);
	CHECK(p == NULL);
	CHECK(strstr(buf, "mem.yaml:3:43: error: list URL 'http://l.example/a.txt' is plain http")
	      != NULL);
	policy_free(p);
}
