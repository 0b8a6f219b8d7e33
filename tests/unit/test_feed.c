/* test_feed.c - the provider feed parsers (refresh/feed.c) against the
 * providers' real feeds in ../shared/data/feeds/ (FEDWALL_FEEDS
 * overrides), and malformed variants of them.  Expected counts come
 * from the JSON itself, read by python3, not from figures written here. */
#include "refresh/refresh.h"
#include "tests/harness.h"

#include <errno.h>

#define FEEDS_DEFAULT "../shared/data/feeds"

static const char *feeds_dir(void)
{
	const char *d = getenv("FEDWALL_FEEDS");

	return d && *d ? d : FEEDS_DEFAULT;
}

/* The whole file, NUL-terminated; NULL (and a SKIP line naming `test`)
 * when it is not there. */
static char *slurp(const char *file, size_t *len, const char *test)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", feeds_dir(), file);
	if (!(f = fopen(path, "rb"))) {
		printf("SKIP: unit/test_feed/%s (%s: %s; set FEDWALL_FEEDS)\n", test, path,
		       strerror(errno));
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = xcalloc((size_t)n + 1, 1);
	*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	return buf;
}

/* What python3 prints for `expr` over the feed file bound to `d`. */
static long py_count(const char *file, const char *expr)
{
	char cmd[2048];
	long n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; d=json.load(open(sys.argv[1]));"
		 " print(%s)' '%s/%s'", expr, feeds_dir(), file);
	if (!(p = popen(cmd, "r")))
		return -1;
	if (fscanf(p, "%ld", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

static void set_filter(struct feed *f, enum feed_key k, const char *a, const char *b)
{
	static struct strval vals[FEED_KEYS][2];

	vals[k][0] = (struct strval){ (char *)a, { 0 } };
	vals[k][1] = (struct strval){ (char *)b, { 0 } };
	f->filter[k] = (struct feed_filter){ vals[k], b ? 2 : 1, { 0 } };
}

static struct guards guards_default(void)
{
	return (struct guards){ 50, 8, 32, 86400, GUARD_MAX_ENTRIES };
}

static const struct feed_group *group_at(const struct feed_addrs *a, const char *pfx)
{
	struct prefix p;

	if (prefix_parse(pfx, &p) != PREFIX_OK)
		return NULL;
	for (size_t i = 0; i < a->n; i++)
		if (!prefix_cmp(&a->v[i], &p))
			return a->grp[i] == FEED_ALL_PORTS ? NULL : &a->grps[a->grp[i]];
	return NULL;
}

static bool has_prefix(const struct feed_addrs *a, const char *pfx)
{
	struct prefix p;

	prefix_parse(pfx, &p);
	for (size_t i = 0; i < a->n; i++)
		if (!prefix_cmp(&a->v[i], &p))
			return true;
	return false;
}

static bool opens(const struct feed_group *g, uint8_t proto, uint16_t port)
{
	for (size_t i = 0; g && i < g->nports; i++)
		if (g->ports[i].proto == proto && g->ports[i].lo <= port && port <= g->ports[i].hi)
			return true;
	return false;
}

/* feed_parse() with the diagnostics kept in *msg (caller frees). */
static bool parse_msg(const struct feed *f, const char *body, size_t len,
		      const struct guards *g, struct feed_addrs *out, char **msg)
{
	size_t mlen;
	FILE *m = open_memstream(msg, &mlen);
	struct diag d;
	bool ok;

	diag_init(&d, m);
	ok = feed_parse(f, "https://feeds.example/f.json", body, len, g, out, &d);
	fclose(m);
	return ok && d.errors == 0;
}

/* ---- m365 ------------------------------------------------------------ */

TEST(m365_skype_sets)
{
	struct feed f = { .format = FEED_M365 };
	struct guards g = guards_default();
	struct feed_addrs a;
	const struct feed_group *g11, *g12;
	size_t len;
	char *body = slurp("m365-endpoints-worldwide.json", &len, "m365_skype_sets"), *msg;

	if (!body)
		return;
	set_filter(&f, FK_SERVICE_AREA, "Skype", NULL);
	CHECK(parse_msg(&f, body, len, &g, &a, &msg));
	CHECK_STR(msg, "");
	CHECK_INT(a.n, 11);
	/* set 11's three: udp 3478-3481, and (in sets 12, 13, 22 too) tcp 80, 443 */
	g11 = group_at(&a, "52.112.0.0/14");
	CHECK(opens(g11, PROTO_UDP, 3478) && opens(g11, PROTO_UDP, 3481));
	CHECK(!opens(g11, PROTO_UDP, 3482) && !opens(g11, PROTO_TCP, 3478));
	CHECK(opens(g11, PROTO_TCP, 443) && opens(g11, PROTO_TCP, 80));
	CHECK_STR(g11 ? g11->id : NULL, "11,12,13,22");
	CHECK(group_at(&a, "13.107.64.0/18") == g11 && group_at(&a, "52.120.0.0/14") == g11);
	/* the other eight, IPv6 included: tcp 443 and 80 only */
	g12 = group_at(&a, "2620:1ec:40::/42");
	CHECK(g12 && g12 != g11 && group_at(&a, "52.238.119.141/32") == g12);
	CHECK(opens(g12, PROTO_TCP, 443) && opens(g12, PROTO_TCP, 80));
	CHECK(!opens(g12, PROTO_UDP, 3478) && !opens(g12, PROTO_TCP, 5061));
	CHECK_STR(g12 ? g12->id : NULL, "12,13,22");
	CHECK_INT(a.ngrps, 2);
	CHECK(!has_prefix(&a, "40.96.0.0/13"));        /* Exchange's */
	feed_addrs_free(&a);
	free(msg);
	free(body);
}

TEST(m365_filters)
{
	struct feed f = { .format = FEED_M365 };
	struct feed_addrs a;
	size_t len;
	char *body = slurp("m365-endpoints-worldwide.json", &len, "m365_filters"), *msg;
	long want;

	if (!body)
		return;
	set_filter(&f, FK_IDS, "11", NULL);
	CHECK(parse_msg(&f, body, len, NULL, &a, &msg));
	CHECK_INT(a.n, 3);
	CHECK(opens(group_at(&a, "13.107.64.0/18"), PROTO_UDP, 3479));
	CHECK(!opens(group_at(&a, "13.107.64.0/18"), PROTO_TCP, 443));
	CHECK_STR(a.ngrps ? a.grps[0].id : NULL, "11");
	feed_addrs_free(&a);
	free(msg);

	/* Skype's optional set alone: 22, tcp 443 */
	f.filter[FK_IDS].n = 0;
	set_filter(&f, FK_SERVICE_AREA, "Skype", NULL);
	set_filter(&f, FK_REQUIRED, "false", NULL);
	CHECK(parse_msg(&f, body, len, NULL, &a, &msg));
	CHECK_INT(a.n, 11);
	CHECK(opens(group_at(&a, "52.112.0.0/14"), PROTO_TCP, 443));
	CHECK(!opens(group_at(&a, "52.112.0.0/14"), PROTO_TCP, 80));
	CHECK(!opens(group_at(&a, "52.112.0.0/14"), PROTO_UDP, 3478));
	feed_addrs_free(&a);
	free(msg);

	/* Exchange and SharePoint's Optimize sets: as many as the JSON has */
	f.filter[FK_REQUIRED].n = 0;
	set_filter(&f, FK_SERVICE_AREA, "Exchange", "SharePoint");
	set_filter(&f, FK_CATEGORY, "Optimize", NULL);
	want = py_count("m365-endpoints-worldwide.json",
			"len({p for s in d if s[\"serviceArea\"] in (\"Exchange\",\"SharePoint\")"
			" and s[\"category\"]==\"Optimize\" for p in s.get(\"ips\",[])})");
	CHECK(want > 0);
	CHECK(parse_msg(&f, body, len, NULL, &a, &msg));
	CHECK_INT(a.n, want);
	CHECK(!has_prefix(&a, "52.112.0.0/14"));
	feed_addrs_free(&a);
	free(msg);
	free(body);
}

/* ---- aws ------------------------------------------------------------- */

static const char *aws_py(char *buf, size_t size, const char *cond)
{
	snprintf(buf, size, "len({p[\"ip_prefix\"] for p in d[\"prefixes\"] if %s}) + "
		 "len({p[\"ipv6_prefix\"] for p in d[\"ipv6_prefixes\"] if %s})", cond, cond);
	return buf;
}

TEST(aws_one_service)
{
	struct feed f = { .format = FEED_AWS };
	struct guards g = guards_default();
	struct feed_addrs a;
	size_t len;
	char *body = slurp("aws-ip-ranges.json", &len, "aws_one_service"), *msg, py[512];
	long want;

	if (!body)
		return;
	set_filter(&f, FK_SERVICE, "CHIME_VOICECONNECTOR", NULL);
	want = py_count("aws-ip-ranges.json",
			aws_py(py, sizeof(py), "p[\"service\"]==\"CHIME_VOICECONNECTOR\""));
	CHECK(want > 0);
	CHECK(parse_msg(&f, body, len, &g, &a, &msg));
	CHECK_STR(msg, "");
	CHECK_INT(a.n, want);
	CHECK_INT(a.ngrps, 0);
	for (size_t i = 0; i < a.n; i++)
		CHECK(a.grp[i] == FEED_ALL_PORTS);
	feed_addrs_free(&a);
	free(msg);

	/* two filters at once, and one of them two values */
	set_filter(&f, FK_SERVICE, "EC2", NULL);
	set_filter(&f, FK_REGION, "us-east-1", "eu-west-1");
	want = py_count("aws-ip-ranges.json", aws_py(py, sizeof(py),
			"p[\"service\"]==\"EC2\" and p[\"region\"] in (\"us-east-1\",\"eu-west-1\")"));
	CHECK(want > 0);
	CHECK(parse_msg(&f, body, len, &g, &a, &msg));
	CHECK_INT(a.n, want);
	feed_addrs_free(&a);
	free(msg);

	/* no filter: every prefix of both arrays, once */
	f.filter[FK_SERVICE].n = f.filter[FK_REGION].n = 0;
	set_filter(&f, FK_NBG, "us-west-2", NULL);
	want = py_count("aws-ip-ranges.json",
			aws_py(py, sizeof(py), "p[\"network_border_group\"]==\"us-west-2\""));
	CHECK(parse_msg(&f, body, len, &g, &a, &msg));
	CHECK_INT(a.n, want);
	feed_addrs_free(&a);
	free(msg);
	f.filter[FK_NBG].n = 0;
	want = py_count("aws-ip-ranges.json", aws_py(py, sizeof(py), "True"));
	CHECK(parse_msg(&f, body, len, &g, &a, &msg));
	CHECK_INT(a.n, want);
	feed_addrs_free(&a);
	free(msg);
	free(body);
}

/* ---- malformed bodies -------------------------------------------------- */

/* `body` with the first `from` replaced by `to`. */
static char *swap(const char *body, const char *from, const char *to, size_t *len)
{
	const char *at = strstr(body, from);
	struct strbuf sb = { 0 };

	if (!at)
		return NULL;
	sb_add(&sb, body, (size_t)(at - body));
	sb_addf(&sb, "%s%s", to, at + strlen(from));
	*len = sb.len;
	return sb.s;
}

/* Refused, nothing kept, and the message names the feed and `want`. */
static void refused(const struct feed *f, const char *body, size_t len,
		    const struct guards *g, const char *want)
{
	struct feed_addrs a;
	char *msg;

	CHECK(!parse_msg(f, body, len, g, &a, &msg));
	CHECK(a.n == 0 && a.v == NULL && a.ngrps == 0);
	CHECK(strstr(msg, "https://feeds.example/f.json:") == msg);
	if (!strstr(msg, want)) {
		fprintf(stderr, "message '%s' does not name '%s'\n", msg, want);
		CHECK(!"message");
	}
	free(msg);
}

TEST(m365_malformed)
{
	static const struct { const char *from, *to, *want; } cases[] = {
		{ "\"52.112.0.0/14\"", "\"52.112.0.0/33\"", "endpoint set 11: ips[1] '52.112.0.0/33'" },
		{ "\"52.112.0.0/14\"", "\"52.112.0.1/14\"", "did you mean '52.112.0.0/14'" },
		{ "\"52.112.0.0/14\"", "52112", "endpoint set 11: ips[1] must be a string" },
		{ "\"udpPorts\": \"3478,3479,3480,3481\"", "\"udpPorts\": \"3478,x\"",
		  "endpoint set 11: udpPorts '3478,x': bad port 'x'" },
		{ "\"udpPorts\": \"3478,3479,3480,3481\"", "\"udpPorts\": 3478",
		  "endpoint set 11: 'udpPorts' must be a string" },
		{ "\"id\": 11,", "\"id\": \"11\",", "'id' must be a positive integer" },
		{ "\"id\": 11,", "\"id\": 11, \"id\": 12,", "duplicate object key" },
		{ "\"serviceArea\": \"Skype\",", "", "no 'serviceArea'" },
		{ "\"required\": true", "\"required\": \"yes\"", "'required' must be true or false" },
	};
	struct feed f = { .format = FEED_M365 };
	size_t len, n;
	char *body = slurp("m365-endpoints-worldwide.json", &len, "m365_malformed"), *bad;

	if (!body)
		return;
	set_filter(&f, FK_SERVICE_AREA, "Skype", NULL);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *from = xstrdup(cases[i].from);

		/* set 11 is the first Skype set in the file: start there */
		const char *s11 = strstr(body, "\"id\": 11,");
		size_t off = s11 ? (size_t)(s11 - body) : 0;
		char *tail = swap(body + off, from, cases[i].to, &n);

		CHECK(tail != NULL);
		if (tail) {
			bad = xcalloc(off + n + 1, 1);
			memcpy(bad, body, off);
			memcpy(bad + off, tail, n);
			refused(&f, bad, off + n, NULL, cases[i].want);
			free(bad);
		}
		free(tail);
		free(from);
	}
	refused(&f, body, len / 2, NULL, "bad JSON");            /* truncated */
	refused(&f, "{\"a\": 1}", 8, NULL, "expected an array of endpoint sets");
	refused(&f, "[1]", 3, NULL, "[0]: an endpoint set must be an object");
	refused(&f, "", 0, NULL, "bad JSON");
	refused(&f, body, FEED_MAX_BODY + 1ull, NULL, "larger than");
	free(body);
}

TEST(aws_malformed)
{
	static const struct { const char *from, *to, *want; } cases[] = {
		{ "\"ip_prefix\": \"99.77.253.0/24\"", "\"ip_prefix\": \"2001:db8::/32\"",
		  "prefixes[0].ip_prefix '2001:db8::/32': not an IPv4 prefix" },
		{ "\"ip_prefix\": \"99.77.253.0/24\"", "\"ip_prefix\": \"99.77.253.0\"", "" },
		{ "\"region\": \"us-west-2\",", "", "prefixes[0]: no 'region'" },
		{ "\"ipv6_prefixes\"", "\"ipv6_prefixez\"", "the body: no 'ipv6_prefixes'" },
		{ "\"service\": \"CHIME_VOICECONNECTOR\"", "\"service\": null",
		  "prefixes[0]: 'service' must be a string" },
	};
	struct feed f = { .format = FEED_AWS };
	struct feed_addrs a;
	size_t len, n;
	char *body = slurp("aws-ip-ranges.json", &len, "aws_malformed"), *bad, *msg;
	const char *obj;

	if (!body)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		bad = swap(body, cases[i].from, cases[i].to, &n);
		CHECK(bad != NULL);
		if (bad && *cases[i].want)
			refused(&f, bad, n, NULL, cases[i].want);
		else if (bad) { /* a host address is a /32: fine */
			CHECK(parse_msg(&f, bad, n, NULL, &a, &msg));
			feed_addrs_free(&a);
			free(msg);
		}
		free(bad);
	}
	refused(&f, "[]", 2, NULL, "expected an object with 'prefixes'");
	obj = "{\"prefixes\": {}, \"ipv6_prefixes\": []}";
	refused(&f, obj, strlen(obj), NULL, "'prefixes' must be an array");
	free(body);
}

TEST(depth_and_guards)
{
	struct feed f = { .format = FEED_AWS };
	struct guards g = guards_default();
	struct strbuf sb = { 0 };
	size_t len;
	char *body;

	for (int i = 0; i < 5000; i++)
		sb_addc(&sb, '[');
	refused(&f, sb.s, sb.len, NULL, "nested deeper than");
	sb_free(&sb);

	f.format = FEED_M365;
	if (!(body = slurp("m365-endpoints-worldwide.json", &len, "depth_and_guards")))
		return;
	set_filter(&f, FK_SERVICE_AREA, "Skype", NULL);
	g.min_prefix_v4 = 16;
	refused(&f, body, len, &g,
		"endpoint set 11: ips[1] '52.112.0.0/14': prefix wider than /16");
	g = guards_default();
	g.max_entries = 10;
	refused(&f, body, len, &g, "has 11 prefixes, more than guards.max_entries 10");
	free(body);
}

/* feed_version_parse() of a NUL-terminated body. */
static bool version_of(const char *body, char **latest, struct diag *d)
{
	return feed_version_parse("v", body, strlen(body), latest, d);
}

TEST(version)
{
	struct diag d;
	char *latest;

	diag_init(&d, NULL);
	CHECK(version_of("{\"instance\": \"Worldwide\", \"latest\": \"2024053100\"}",
			 &latest, &d));
	CHECK_STR(latest, "2024053100");
	free(latest);
	CHECK(!version_of("{\"latest\": 2024053100}", &latest, &d));
	CHECK(!latest);
	CHECK(!version_of("{\"latest\": \"a b\"}", &latest, &d));
	CHECK(!version_of("{\"latest\": \"1\", \"latest\": \"2\"}", &latest, &d));
	CHECK(!version_of("[\"latest\"]", &latest, &d));
	CHECK(!version_of("{\"latest\": \"1\"", &latest, &d));
	CHECK(!version_of("{\"instance\": \"Worldwide\"}", &latest, &d));
	CHECK_INT(d.errors, 6);
}

TEST(plain_and_push)
{
	static const char list[] = "# partner\n192.0.2.0/24\n2001:db8::/48\n192.0.2.0/24\n";
	struct feed f = { .format = FEED_PLAIN };
	struct feed_addrs a;
	struct addr_list l = { 0 };
	struct loc at = { "feed", 1, 1 };
	char *msg;
	size_t len;
	char *body;

	CHECK(parse_msg(&f, list, sizeof(list) - 1, NULL, &a, &msg));
	CHECK_INT(a.n, 2);
	CHECK(a.grp[0] == FEED_ALL_PORTS && a.grp[1] == FEED_ALL_PORTS);
	feed_addrs_push(&a, &at, &l);
	CHECK_INT(l.n, 2);
	CHECK(l.pgrp == NULL && addr_list_ports(&l, 0) == NULL);
	feed_addrs_free(&a);
	free(msg);
	refused(&f, "192.0.2.0/33\n", 13, NULL, "192.0.2.0/33");

	f.format = FEED_M365;
	if (!(body = slurp("m365-endpoints-worldwide.json", &len, "plain_and_push")))
		goto out;
	set_filter(&f, FK_SERVICE_AREA, "Skype", NULL);
	CHECK(parse_msg(&f, body, len, NULL, &a, &msg));
	feed_addrs_push(&a, &at, &l);
	CHECK_INT(l.n, 13);
	CHECK_INT(l.npgroups, 2);       /* interned: 3 + 8 addresses, 2 port sets */
	CHECK(addr_list_ports(&l, 0) == NULL);
	CHECK(addr_list_ports(&l, 2) != NULL && addr_list_ports(&l, 12) != NULL);
	feed_addrs_free(&a);
	free(msg);
	free(body);
out:
	addr_list_free(&l);
}

/* ---- the policy's feed entries ------------------------------------------ */

static struct policy *feeds_policy(const char *feeds)
{
	char yaml[1024];
	struct diag d;

	snprintf(yaml, sizeof(yaml), "version: 1\npartners:\n  t:\n    services: [av-edge]\n"
		 "    feeds:\n%s", feeds);
	diag_init(&d, stderr);
	return policy_parse("t.yaml", yaml, strlen(yaml), &d);
}

TEST(version_url_derived)
{
	struct policy *p = feeds_policy(
		"      - {url: 'https://e.example/endpoints/worldwide?clientrequestid=x', format: m365}\n"
		"      - {url: 'https://e.example/m365/endpoints/Worldwide', format: m365}\n"
		"      - {url: 'https://e.example/feed.json', format: m365}\n"
		"      - {url: 'https://e.example/endpoints/', format: m365}\n"
		"      - {url: 'https://e.example/endpoints/worldwide', format: m365,"
		" version_url: 'https://v.example/latest'}\n"
		"      - {url: 'https://e.example/endpoints/worldwide', format: aws}\n");
	const struct feed *f;

	CHECK(p != NULL);
	if (!p)
		return;
	f = p->partners[0].feeds;
	CHECK_INT(p->partners[0].nfeeds, 6);
	CHECK_STR(f[0].version_url.s, "https://e.example/version/worldwide?clientrequestid=x");
	CHECK(!f[0].version_url_given);
	CHECK_STR(f[1].version_url.s, "https://e.example/m365/version/Worldwide");
	CHECK(f[2].version_url.s == NULL);      /* no /endpoints/INSTANCE: none */
	CHECK(f[3].version_url.s == NULL);
	CHECK_STR(f[4].version_url.s, "https://v.example/latest");
	CHECK(f[4].version_url_given);
	CHECK(f[5].version_url.s == NULL);      /* aws: no version check */
	CHECK(feed_format_ports(FEED_M365) && !feed_format_ports(FEED_AWS));
	CHECK(partner_feed_ports(&p->partners[0]));
	policy_free(p);
}

/* `check` reads a partial policy's sources: only the good feed entries
 * are kept (a bad one would be a source without a URL). */
TEST(partial_keeps_good_feeds)
{
	static const char yaml[] =
		"version: 1\npartners:\n  t:\n    services: [av-edge]\n    feeds:\n"
		"      - {url: 'https://e.example/endpoints/worldwide', format: m365}\n"
		"      - {format: m365}\n"
		"      - {url: 'http://e.example/x', format: aws}\n"
		"      - {url: 'https://e.example/y', format: aws, service_area: Skype}\n"
		"      - {url: 'https://e.example/z', format: aws, service: EC2}\n";
	struct diag d;
	struct policy *p;

	diag_init(&d, NULL);
	p = policy_parse_partial("t.yaml", yaml, strlen(yaml), &d);
	CHECK(p != NULL);
	CHECK_INT(d.errors, 3);
	if (!p)
		return;
	CHECK_INT(p->partners[0].nfeeds, 2);
	CHECK_STR(p->partners[0].feeds[0].url.s, "https://e.example/endpoints/worldwide");
	CHECK_STR(p->partners[0].nfeeds > 1 ? p->partners[0].feeds[1].url.s : NULL,
		  "https://e.example/z");
	policy_free(p);
}
