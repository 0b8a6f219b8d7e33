/* Unit tests of common/: prefixes, merging, ports. */
#include "common/common.h"
#include "tests/harness.h"

static const char *fmt(const struct prefix *p)
{
	static char buf[4][PREFIX_STRLEN];
	static int i;

	i = (i + 1) % 4;
	return prefix_fmt(p, buf[i], sizeof(buf[i]));
}

static struct prefix P(const char *s)
{
	struct prefix p;
	enum prefix_err e = prefix_parse(s, &p);

	if (e != PREFIX_OK && e != PREFIX_HOST_BITS)
		fprintf(stderr, "bad test prefix %s\n", s);
	return p;
}

/* Merges the NULL-terminated list and joins the result with spaces. */
static const char *merged(const char *const *in)
{
	static char out[1024];
	struct prefix v[64];
	size_t n = 0;

	while (in[n]) {
		v[n] = P(in[n]);
		n++;
	}
	n = prefixes_merge(v, n);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(out, " ");
		strcat(out, fmt(&v[i]));
	}
	return out;
}

TEST(parse_ipv4)
{
	struct prefix p;

	CHECK_INT(prefix_parse("64.4.9.181", &p), PREFIX_OK);
	CHECK_INT(p.family, 4);
	CHECK_INT(p.len, 32);
	CHECK_STR(fmt(&p), "64.4.9.181");
	CHECK_INT(prefix_parse("192.0.2.0/24", &p), PREFIX_OK);
	CHECK_STR(fmt(&p), "192.0.2.0/24");
	CHECK_INT(prefix_parse("192.0.2.77/24", &p), PREFIX_HOST_BITS);
	CHECK_STR(fmt(&p), "192.0.2.0/24");
	CHECK_INT(prefix_parse("0.0.0.0/0", &p), PREFIX_OK);
	CHECK_INT(p.len, 0);
}

TEST(parse_ipv6)
{
	struct prefix p;

	CHECK_INT(prefix_parse("2001:DB8::1", &p), PREFIX_OK);
	CHECK_STR(fmt(&p), "2001:db8::1");
	CHECK_INT(prefix_parse("2001:db8:0:0:0:0:0:0/32", &p), PREFIX_OK);
	CHECK_STR(fmt(&p), "2001:db8::/32");
	CHECK_INT(prefix_parse("2001:db8::1/64", &p), PREFIX_HOST_BITS);
	CHECK_STR(fmt(&p), "2001:db8::/64");
	CHECK_INT(prefix_parse("::/0", &p), PREFIX_OK);
	CHECK_INT(prefix_parse("::ffff:192.0.2.1", &p), PREFIX_OK);
	CHECK_INT(p.family, 6);
}

TEST(parse_rejects)
{
	struct prefix p;

	CHECK_INT(prefix_parse("", &p), PREFIX_BAD_ADDR);
	CHECK_INT(prefix_parse("64.4.9", &p), PREFIX_BAD_ADDR);
	CHECK_INT(prefix_parse("256.1.1.1", &p), PREFIX_BAD_ADDR);
	CHECK_INT(prefix_parse("01.2.3.4", &p), PREFIX_BAD_ADDR);
	CHECK_INT(prefix_parse(" 192.0.2.1", &p), PREFIX_BAD_ADDR);
	CHECK_INT(prefix_parse("sip.contoso.com", &p), PREFIX_BAD_ADDR);
	CHECK_INT(prefix_parse("192.0.2.0/33", &p), PREFIX_BAD_LEN);
	CHECK_INT(prefix_parse("192.0.2.0/", &p), PREFIX_BAD_LEN);
	CHECK_INT(prefix_parse("192.0.2.0/2x", &p), PREFIX_BAD_LEN);
	CHECK_INT(prefix_parse("192.0.2.0/-1", &p), PREFIX_BAD_LEN);
	CHECK_INT(prefix_parse("2001:db8::/129", &p), PREFIX_BAD_LEN);
	CHECK_INT(prefix_parse("2001:db8:::1", &p), PREFIX_BAD_ADDR);
}

TEST(merge_overlap_and_adjacent)
{
	CHECK_STR(merged((const char *[]){ "192.0.2.0/25", "192.0.2.128/25", NULL }),
		  "192.0.2.0/24");
	CHECK_STR(merged((const char *[]){ "192.0.2.5", "192.0.2.0/24", "192.0.2.5", NULL }),
		  "192.0.2.0/24");
	/* adjacent but not siblings: stays two prefixes */
	CHECK_STR(merged((const char *[]){ "192.0.2.128/25", "192.0.3.0/25", NULL }),
		  "192.0.2.128/25 192.0.3.0/25");
	/* four quarters cascade into the whole */
	CHECK_STR(merged((const char *[]){ "198.51.100.192/26", "198.51.100.0/26",
					   "198.51.100.128/26", "198.51.100.64/26", NULL }),
		  "198.51.100.0/24");
	CHECK_STR(merged((const char *[]){ "203.0.113.2", "203.0.113.3", "203.0.113.1", NULL }),
		  "203.0.113.1 203.0.113.2/31");
	CHECK_STR(merged((const char *[]){ "2001:db8::/33", "2001:db8:8000::/33",
					   "192.0.2.1", NULL }),
		  "192.0.2.1 2001:db8::/32");
	CHECK_STR(merged((const char *[]){ "::/1", "8000::/1", NULL }), "::/0");
	CHECK_STR(merged((const char *[]){ NULL }), "");
}

TEST(contains_and_overlap)
{
	struct prefix a = P("192.0.2.0/24"), b = P("192.0.2.200"), c = P("198.51.100.1");
	struct prefix v6 = P("2001:db8::/32");

	CHECK(prefix_contains(&a, &b));
	CHECK(!prefix_contains(&b, &a));
	CHECK(prefix_overlaps(&b, &a));
	CHECK(!prefix_overlaps(&a, &c));
	CHECK(!prefix_overlaps(&a, &v6));
}

TEST(subtract)
{
	struct prefix out[40];
	size_t n = 0;
	struct prefix o = P("192.0.2.0/24"), h = P("192.0.2.5");
	struct prefix all[41];

	prefix_subtract(&o, &h, out, &n);
	CHECK_INT(n, 8);
	for (size_t i = 0; i < n; i++) {
		CHECK(!prefix_overlaps(&out[i], &h));
		CHECK(prefix_contains(&o, &out[i]));
		all[i] = out[i];
	}
	all[n] = h;
	CHECK_INT(prefixes_merge(all, n + 1), 1);
	CHECK_STR(fmt(&all[0]), "192.0.2.0/24");
}

TEST(last_address)
{
	struct prefix p = P("198.51.100.0/22");
	uint8_t last[16];

	prefix_last(&p, last);
	CHECK_INT(last[0], 198);
	CHECK_INT(last[1], 51);
	CHECK_INT(last[2], 103);
	CHECK_INT(last[3], 255);
}

TEST(ports)
{
	struct portrange r, v[4];
	char buf[PORTRANGE_STRLEN];

	CHECK_INT(portrange_parse("tcp/5061", &r), PORT_OK);
	CHECK_STR(portrange_fmt(&r, buf, sizeof(buf)), "tcp/5061");
	CHECK_INT(portrange_parse("udp/50000-59999", &r), PORT_OK);
	CHECK_INT(r.lo, 50000);
	CHECK_INT(r.hi, 59999);
	CHECK_INT(portrange_parse("udp/59999-50000", &r), PORT_REVERSED);
	CHECK_INT(portrange_parse("tcp/0", &r), PORT_BAD_NUMBER);
	CHECK_INT(portrange_parse("tcp/65536", &r), PORT_BAD_NUMBER);
	CHECK_INT(portrange_parse("tcp/", &r), PORT_BAD_NUMBER);
	CHECK_INT(portrange_parse("sctp/5061", &r), PORT_BAD_PROTO);
	CHECK_INT(portrange_parse("5061", &r), PORT_BAD_PROTO);
	portrange_parse("tcp/5000-5060", &v[0]);
	portrange_parse("tcp/5061", &v[1]);
	portrange_parse("udp/3478", &v[2]);
	portrange_parse("tcp/443", &v[3]);
	CHECK_INT(portranges_merge(v, 4), 3);
	CHECK_STR(portrange_fmt(&v[0], buf, sizeof(buf)), "tcp/443");
	CHECK_STR(portrange_fmt(&v[1], buf, sizeof(buf)), "tcp/5000-5061");
	CHECK_STR(portrange_fmt(&v[2], buf, sizeof(buf)), "udp/3478");
}

TEST(did_you_mean)
{
	static const char *const keys[] = { "addresses", "hosts", "lists", "services" };

	CHECK_STR(closest_word("adresses", keys, 4), "addresses");
	CHECK_STR(closest_word("service", keys, 4), "services");
	CHECK(closest_word("frobnicate", keys, 4) == NULL);
}

/* IPv4 runs (prefix_run_next, prefix_run_wider: 32-bit arithmetic)
 * against 64-bit intervals merged here: random prefixes bunched in a few
 * /16s so that runs nest, overlap, touch and reach the family's ends. */
TEST(runs_ipv4_against_intervals)
{
	enum { N = 300, ROUNDS = 2000 };
	static const uint8_t tops[] = { 0, 10, 255 };
	struct prefix v[N];
	unsigned seed = 20261207;

	for (int round = 0; round < ROUNDS; round++) {
		size_t n = 1 + (size_t)(rand_r(&seed) % N), pos = 0, next = 0;
		struct prefix_run r;

		for (size_t i = 0; i < n; i++) {
			uint32_t a = (uint32_t)tops[rand_r(&seed) % 3] << 24 |
				     (uint32_t)(rand_r(&seed) % 2) << 16 |
				     (uint32_t)(rand_r(&seed) % 4) << 8 | (uint32_t)(rand_r(&seed) % 256);
			unsigned len = rand_r(&seed) % 8 == 0 ? (unsigned)(rand_r(&seed) % 33) :
				       22 + (unsigned)(rand_r(&seed) % 11);
			uint32_t mask = len ? 0xffffffffu << (32 - len) : 0;

			a &= mask;
			v[i] = (struct prefix){ .family = 4, .len = (uint8_t)len,
						.a = { a >> 24, a >> 16 & 0xff, a >> 8 & 0xff, a & 0xff } };
		}
		prefixes_sort(v, n);
		while (prefix_run_next(v, n, &pos, &r)) {
			uint64_t lo = UINT64_MAX, hi = 0, f, l;
			unsigned min = (unsigned)(rand_r(&seed) % 33);

			CHECK_INT(r.lo, next);
			for (size_t i = r.lo; i < r.hi; i++) {
				f = (uint64_t)v[i].a[0] << 24 | v[i].a[1] << 16 | v[i].a[2] << 8 | v[i].a[3];
				l = f + (1ull << (32 - v[i].len)) - 1;
				if (i > r.lo)
					CHECK(f <= hi + 1);     /* touches what came before */
				lo = f < lo ? f : lo;
				hi = l > hi ? l : hi;
			}
			if (r.hi < n) {                 /* the next prefix does not touch */
				f = (uint64_t)v[r.hi].a[0] << 24 | v[r.hi].a[1] << 16 |
				    v[r.hi].a[2] << 8 | v[r.hi].a[3];
				CHECK(f > hi + 1);
			}
			CHECK_INT(((uint64_t)r.first[0] << 24 | r.first[1] << 16 | r.first[2] << 8 |
				   r.first[3]), lo);
			CHECK_INT(((uint64_t)r.last[0] << 24 | r.last[1] << 16 | r.last[2] << 8 |
				   r.last[3]), hi);
			/* Wider than one /min: more addresses than it holds;
			 * the whole family always is. */
			CHECK_INT(prefix_run_wider(&r, min),
				  (lo == 0 && hi == 0xffffffffull) ||
				  (min > 0 && hi - lo + 1 > (1ull << (32 - min))));
			next = r.hi;
		}
		CHECK_INT(next, n);
	}
}
