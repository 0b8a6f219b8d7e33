/* test_refresh.c - the refresh module without the network: SRV service
 * choice, last known good and stale_after (srcset_fill against a state,
 * lists read leniently or strictly), guards, the daemon's schedule. */
#include "common/common.h"
#include "policy/policy.h"
#include "refresh/refresh.h"
#include "tests/harness.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct policy *pol(const char *text)
{
	struct diag d;
	struct policy *p;

	diag_init(&d, stderr);
	p = policy_parse("test.yaml", text, strlen(text), &d);
	if (!p)
		fprintf(stderr, "policy did not parse:\n%s\n", text);
	return p;
}

static struct prefix P(const char *s)
{
	struct prefix p;

	if (prefix_parse(s, &p) != PREFIX_OK)
		abort();
	return p;
}

static const struct partner *partner(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->npartners; i++)
		if (!strcmp(p->partners[i].name, name))
			return &p->partners[i];
	abort();
}

/* ---- SRV service choice ------------------------------------------------ */

TEST(srv_service_from_services)
{
	struct policy *p = pol("version: 1\npartners:\n"
		"  a: {services: [sip-federation, av-edge], domains: [a.example]}\n"
		"  b: {services: [xmpp-s2s], domains: [b.example]}\n"
		"  c: {services: [matrix-federation, xmpp-s2s, web-conferencing],"
		" domains: [c.example]}\n"
		"  d: {services: [own], domains: [d.example]}\n"
		"  e: {services: [teams-direct-routing], domains: [e.example]}\n"
		"services: {own: [tcp/7000]}\n");
	const char *s[SRV_MAX_SERVICES];

	if (!p)
		return;
	CHECK_INT(srv_services(p, partner(p, "a"), s), 1);
	CHECK_STR(s[0], "_sipfederationtls._tcp");
	CHECK_INT(srv_services(p, partner(p, "b"), s), 1);
	CHECK_STR(s[0], "_xmpp-server._tcp");
	CHECK_INT(srv_services(p, partner(p, "c"), s), 3);
	CHECK_STR(s[0], "_sipfederationtls._tcp");
	CHECK_STR(s[1], "_xmpp-server._tcp");
	CHECK_STR(s[2], "_matrix-fed._tcp");
	CHECK_INT(srv_services(p, partner(p, "d"), s), 1);      /* default */
	CHECK_STR(s[0], "_sipfederationtls._tcp");
	CHECK_INT(srv_services(p, partner(p, "e"), s), 1);
	CHECK_STR(s[0], "_sipfederationtls._tcp");
	policy_free(p);
}

TEST(srcset_keys)
{
	struct policy *p = pol("version: 1\npartners:\n"
		"  c: {services: [sip-federation, xmpp-s2s], hosts: [h.example],"
		" domains: [c.example], lists: [/nonexistent/l.txt]}\n");
	struct srcset s = { 0 };

	if (!p)
		return;
	srcset_build(p, &s);
	/* A name's A records and its AAAA records are two sources. */
	CHECK_INT(s.n, 7);
	CHECK_STR(s.v[0].key, "h.example");
	CHECK_STR(s.v[1].key, "h.example");
	CHECK(s.v[0].family == 4 && s.v[1].family == 6);
	CHECK_STR(src_rr(&s.v[0]), "A");
	CHECK_STR(src_family_name(&s.v[1]), "ipv6");
	CHECK_STR(s.v[2].key, "_sipfederationtls._tcp.c.example");
	CHECK_STR(s.v[3].key, "_sipfederationtls._tcp.c.example");
	CHECK(s.v[2].family == 4 && s.v[3].family == 6);
	CHECK_STR(s.v[3].service, DNS_SRV_SIP);
	CHECK_STR(s.v[4].key, "_xmpp-server._tcp.c.example");
	CHECK_STR(s.v[5].key, "_xmpp-server._tcp.c.example");
	CHECK_STR(s.v[6].key, "/nonexistent/l.txt");
	CHECK_INT(s.v[6].kind, STATE_LIST);
	CHECK_INT(s.v[6].family, 0);
	CHECK(src_rr(&s.v[6]) == NULL);
	srcset_free(&s);
	policy_free(p);
}

/* ---- last known good --------------------------------------------------- */

static size_t partner_n(const struct srcset *s, size_t i)
{
	struct addr_list l = { 0 };
	size_t n;

	srcset_partner_addrs(s, i, &l);
	n = l.n;
	addr_list_free(&l);
	return n;
}

TEST(lkg_kept_until_stale_after)
{
	struct policy *p = pol("version: 1\nguards: {stale_after: 100s}\npartners:\n"
		"  a: {services: [sip-federation], hosts: [h.example]}\n");
	struct prefix two[] = { P("198.51.100.7"), P("2001:db8::7") };
	struct src_opts o = { .now = 10000 };
	struct state st = { 0 };
	struct srcset s = { 0 };
	struct diag d;

	if (!p)
		return;
	diag_init(&d, NULL);
	srcset_build(p, &s);
	/* nothing known: nothing admitted */
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_UNKNOWN);
	CHECK_INT(partner_n(&s, 0), 0);
	/* confirmed 50 s ago: kept */
	CHECK_INT(state_update_family(&st, STATE_HOST, "h.example", 4, STATE_FROM_DNS, 9950,
				      60, &two[0], 1), 0);
	CHECK_INT(state_update_family(&st, STATE_HOST, "h.example", 6, STATE_FROM_DNS, 9950,
				      60, &two[1], 1), 0);
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_KEPT);
	CHECK_INT(s.v[1].status, SRC_KEPT);
	CHECK_INT(partner_n(&s, 0), 2);
	CHECK_INT(d.warnings, 0);       /* not due: no failure to report */
	/* confirmed 101 s ago: stale, dropped, warned (each family) */
	o.now = 10051;
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_STALE);
	CHECK_INT(s.v[1].status, SRC_STALE);
	CHECK_INT(partner_n(&s, 0), 0);
	CHECK_INT(d.warnings, 2);
	/* recorded: the state keeps it, marked dropped, confirmed when it was */
	srcset_record(&s, p, NULL, &st, o.now);
	CHECK(state_lookup_family(&st, STATE_HOST, "h.example", 4) != NULL);
	/* and it stays reported stale, with nothing to drop any more */
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_DROPPED);
	CHECK_INT(s.v[0].confirmed, 9950);
	CHECK_INT(partner_n(&s, 0), 0);
	CHECK_INT(d.warnings, 2);       /* not due: nothing new to say */
	{
		struct src_seen seen;

		srcset_seen(&s, p, 1, &st, o.now + 3600, &seen);
		CHECK(seen.stale && seen.dropped && seen.confirmed == 9950 &&
		      seen.naddrs == 0 && seen.ndropped == 1);
		CHECK(srcset_state_of(&s, p, 1, &st, o.now) == NULL);
	}
	srcset_free(&s);
	state_free(&st);
	policy_free(p);
}

/* A name's two families go stale each on its own: the AAAA records,
 * unconfirmed for longer than stale_after, are dropped; the A records,
 * confirmed, stay admitted. */
TEST(families_stand_alone)
{
	struct policy *p = pol("version: 1\nguards: {stale_after: 100s}\npartners:\n"
		"  a: {services: [sip-federation], domains: [d.example]}\n");
	struct prefix v4 = P("198.51.100.7"), v6 = P("2001:db8::7");
	struct src_opts o = { .now = 10000 };
	struct addr_list stale = { 0 };
	struct state st = { 0 };
	struct srcset s = { 0 };
	struct diag d;

	if (!p)
		return;
	diag_init(&d, NULL);
	srcset_build(p, &s);
	CHECK_INT(state_update_family(&st, STATE_DOMAIN, s.v[0].key, 4, STATE_FROM_DNS, 9990,
				      60, &v4, 1), 0);
	CHECK_INT(state_update_family(&st, STATE_DOMAIN, s.v[0].key, 6, STATE_FROM_DNS, 9000,
				      60, &v6, 1), 0);
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_KEPT);
	CHECK_INT(s.v[1].status, SRC_STALE);
	CHECK_INT(partner_n(&s, 0), 1);
	srcset_stale_addrs(&s, 0, &stale);
	CHECK(stale.n == 1 && prefix_cmp(&stale.v[0], &v6) == 0);
	CHECK(srcset_state_of(&s, p, 0, &st, o.now) != NULL);
	CHECK(srcset_state_of(&s, p, 1, &st, o.now) == NULL);
	addr_list_free(&stale);
	srcset_free(&s);
	state_free(&st);
	policy_free(p);
}

static char *tmpfile_with(const char *text)
{
	char *path = xstrdup("/tmp/fedwall-test-list.XXXXXX");
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	return path;
}

TEST(list_failure_keeps_last_known_good)
{
	char *path = tmpfile_with("192.0.2.1\n192.0.2.2 # two\n");
	struct strbuf y = { 0 };
	struct src_opts o = { .now = 5000 };
	struct state st = { 0 };
	struct srcset s = { 0 };
	struct policy *p;
	struct diag d;
	FILE *f;

	sb_addf(&y, "version: 1\nguards: {stale_after: 60s}\npartners:\n"
		"  a: {services: [sip-federation], lists: [%s]}\n", path);
	p = pol(sb_str(&y));
	if (!p)
		goto out;
	diag_init(&d, NULL);
	srcset_build(p, &s);
	s.v[0].due = true;
	CHECK(srcset_fill(p, &s, &st, &o, &d));
	CHECK_INT(s.v[0].status, SRC_FRESH);
	CHECK(s.v[0].changed);
	CHECK_INT(partner_n(&s, 0), 2);
	srcset_record(&s, p, NULL, &st, o.now);
	/* a bad line: the whole list fails, the last known good stays */
	f = fopen(path, "w");
	fputs("192.0.2.1\nnot-an-address\n", f);
	fclose(f);
	o.now = 5030;
	CHECK(srcset_fill(p, &s, &st, &o, &d));  /* lenient: no error result */
	CHECK_INT(s.v[0].status, SRC_KEPT);
	CHECK(s.v[0].failed);
	CHECK_INT(partner_n(&s, 0), 2);
	/* an empty list is a failure too */
	f = fopen(path, "w");
	fclose(f);
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_KEPT);
	/* strict (offline commands): a bad list is an error */
	f = fopen(path, "w");
	fputs("nope\n", f);
	fclose(f);
	o.strict_lists = true;
	CHECK(!srcset_fill(p, &s, &st, &o, &d));
	/* past stale_after the kept addresses go */
	o.strict_lists = false;
	o.now = 5061;
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_STALE);
	CHECK_INT(partner_n(&s, 0), 0);
	srcset_free(&s);
	policy_free(p);
out:
	state_free(&st);
	unlink(path);
	free(path);
	sb_free(&y);
}

TEST(record_skips_refused_and_forgets_old_sources)
{
	struct policy *p = pol("version: 1\npartners:\n"
		"  a: {services: [sip-federation], hosts: [a.example]}\n"
		"  b: {services: [sip-federation], hosts: [b.example]}\n");
	struct prefix x = P("198.51.100.1");
	struct state st = { 0 };
	struct srcset s = { 0 };
	bool skip[2] = { false, true };

	if (!p)
		return;
	srcset_build(p, &s);
	state_update(&st, STATE_HOST, "gone.example", STATE_FROM_DNS, 1, 0, &x, 1);
	/* a format-2 entry of a name the policy has: replaced by families */
	state_update(&st, STATE_HOST, "a.example", STATE_FROM_DNS, 1, 0, &x, 1);
	for (size_t i = 0; i < s.n; i++) {
		s.v[i].status = SRC_FRESH;
		s.v[i].confirmed = 100;
		s.v[i].addrs = xmalloc(sizeof(x));
		s.v[i].addrs[0] = x;
		s.v[i].naddrs = s.v[i].family == 4;
	}
	srcset_record(&s, p, skip, &st, 100);
	CHECK(state_lookup_family(&st, STATE_HOST, "a.example", 4) != NULL);
	CHECK(state_lookup_family(&st, STATE_HOST, "a.example", 6) != NULL);
	CHECK(state_lookup(&st, STATE_HOST, "a.example") == NULL);
	CHECK(state_lookup_family(&st, STATE_HOST, "b.example", 4) == NULL);  /* refused */
	CHECK(state_lookup(&st, STATE_HOST, "gone.example") == NULL); /* left the policy */
	CHECK_INT(st.n, 2);
	srcset_free(&s);
	state_free(&st);
	policy_free(p);
}

/* ---- an unchanged list is not read again -------------------------------- */

/* Waits (no assertion) until `path` last changed longer ago than a read
 * needs to vouch for it (list_read_id: LIST_RACY_NS, or 2 s without
 * sub-second timestamps). */
static void settle(const char *path)
{
	struct timespec nap = { 0, 10000000 }, now;
	struct stat sb;

	for (int i = 0; i < 600 && stat(path, &sb) == 0; i++) {
		int64_t window = sb.st_ctim.tv_nsec ? LIST_RACY_NS : 2000000000;

		clock_gettime(CLOCK_REALTIME, &now);
		if ((now.tv_sec - sb.st_ctim.tv_sec) * 1000000000LL +
		    (now.tv_nsec - sb.st_ctim.tv_nsec) > window + 1000000)
			return;
		nanosleep(&nap, NULL);
	}
}

static void rewrite(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	settle(path);
}

/* One fill of the list source s->v[0] against `st`, then recorded. */
static void fill_record(struct policy *p, struct srcset *s, struct state *st, int64_t now,
			bool strict, struct diag *d)
{
	struct src_opts o = { .now = now, .strict_lists = strict };

	s->v[0].due = true;
	srcset_fill(p, s, st, &o, d);
	if (!strict)
		srcset_record(s, p, NULL, st, now);
}

static bool has_addr(const struct src *x, const char *pfx)
{
	struct prefix want = P(pfx);

	for (size_t i = 0; i < x->naddrs; i++)
		if (!prefix_cmp(&x->addrs[i], &want))
			return true;
	return false;
}

/* One partner whose one list is a new file holding `text`, settled (old
 * enough for its identity to be trusted), its sources built: what the
 * tests of the unchanged-list shortcut start from.  lf_free() undoes it. */
struct lf {
	char *path;
	struct strbuf y;
	struct policy *p;
	struct state st;
	struct srcset s;
	struct diag d;
};

static bool lf_init(struct lf *f, const char *text)
{
	memset(f, 0, sizeof(*f));
	f->path = tmpfile_with(text);
	sb_addf(&f->y, "version: 1\npartners:\n"
		"  a: {services: [sip-federation], lists: [%s]}\n", f->path);
	f->p = pol(sb_str(&f->y));
	if (!f->p)
		return false;
	diag_init(&f->d, NULL);
	settle(f->path);
	srcset_build(f->p, &f->s);
	return true;
}

static void lf_free(struct lf *f)
{
	srcset_free(&f->s);
	policy_free(f->p);
	state_free(&f->st);
	unlink(f->path);
	free(f->path);
	sb_free(&f->y);
}

TEST(list_unchanged_is_not_read)
{
	struct lf f;
	struct prefix other = P("203.0.113.9");
	const struct state_entry *e;
	struct state_ident id;

	if (!lf_init(&f, "192.0.2.1\n192.0.2.2 # two\n"))
		goto out;
	/* read: locs, and the file's identity recorded in the state */
	fill_record(f.p, &f.s, &f.st, 1000, false, &f.d);
	CHECK(f.s.v[0].status == SRC_FRESH && f.s.v[0].changed && f.s.v[0].locs != NULL);
	e = state_lookup(&f.st, STATE_LIST, f.path);
	CHECK(e && e->ident.ino != 0 && e->ident.ctime_ns != 0);
	/* unchanged: the state's addresses, no locs, confirmed now */
	fill_record(f.p, &f.s, &f.st, 1100, false, &f.d);
	CHECK(f.s.v[0].status == SRC_FRESH && !f.s.v[0].changed && !f.s.v[0].failed);
	CHECK(f.s.v[0].locs == NULL && f.s.v[0].naddrs == 2 && f.s.v[0].confirmed == 1100);
	CHECK(has_addr(&f.s.v[0], "192.0.2.2"));
	e = state_lookup(&f.st, STATE_LIST, f.path);
	CHECK(e && e->confirmed == 1100 && e->ident.ino != 0);
	/* not opened: what the state says of that identity is what it gives */
	id = e ? e->ident : (struct state_ident){ 0 };
	state_update(&f.st, STATE_LIST, f.path, STATE_FROM_FILE, 1100, 0, &other, 1);
	CHECK(state_lookup(&f.st, STATE_LIST, f.path)->ident.ino == 0);  /* cleared */
	state_set_ident(&f.st, STATE_LIST, f.path, &id);
	fill_record(f.p, &f.s, &f.st, 1200, false, &f.d);
	CHECK(f.s.v[0].locs == NULL && f.s.v[0].naddrs == 1 && has_addr(&f.s.v[0], "203.0.113.9"));
	/* offline commands always read (their errors name FILE:LINE) */
	fill_record(f.p, &f.s, &f.st, 1200, true, &f.d);
	CHECK(f.s.v[0].locs != NULL && f.s.v[0].naddrs == 2);
	CHECK_INT(f.d.errors + f.d.warnings, 0);
out:
	lf_free(&f);
}

TEST(list_rewritten_or_touched_is_read)
{
	struct lf f;
	struct timespec times[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };

	if (!lf_init(&f, "192.0.2.1\n192.0.2.2\n"))
		goto out;
	fill_record(f.p, &f.s, &f.st, 1000, false, &f.d);
	fill_record(f.p, &f.s, &f.st, 1001, false, &f.d);
	CHECK(f.s.v[0].locs == NULL);                 /* the shortcut, as a baseline */
	/* same size, other bytes: read again */
	rewrite(f.path, "192.0.2.1\n192.0.2.3\n");
	fill_record(f.p, &f.s, &f.st, 1002, false, &f.d);
	CHECK(f.s.v[0].locs != NULL && f.s.v[0].changed);
	CHECK(has_addr(&f.s.v[0], "192.0.2.3") && !has_addr(&f.s.v[0], "192.0.2.2"));
	fill_record(f.p, &f.s, &f.st, 1003, false, &f.d);
	CHECK(f.s.v[0].locs == NULL && !f.s.v[0].changed && has_addr(&f.s.v[0], "192.0.2.3"));
	/* touched, bytes the same: read again, nothing changed */
	CHECK_INT(utimensat(AT_FDCWD, f.path, times, 0), 0);
	settle(f.path);
	fill_record(f.p, &f.s, &f.st, 1004, false, &f.d);
	CHECK(f.s.v[0].locs != NULL && !f.s.v[0].changed && f.s.v[0].status == SRC_FRESH);
	/* gone: no shortcut on the state's word, the failure is seen */
	unlink(f.path);
	fill_record(f.p, &f.s, &f.st, 1005, false, &f.d);
	CHECK(f.s.v[0].failed && f.s.v[0].status == SRC_KEPT);
out:
	lf_free(&f);
}

/* The guards of the policy now hold for an unchanged list too: past
 * them it is read, and the error names the file. */
TEST(list_unchanged_still_guarded)
{
	struct lf f;
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem;

	if (!lf_init(&f, "192.0.2.1\n192.0.2.2\n192.0.2.3\n"))
		goto out;
	fill_record(f.p, &f.s, &f.st, 1000, false, &f.d);
	fill_record(f.p, &f.s, &f.st, 1001, false, &f.d);
	CHECK(f.s.v[0].locs == NULL && f.s.v[0].naddrs == 3);
	f.p->guards.max_entries = 2;
	mem = open_memstream(&out, &outlen);
	diag_init(&f.d, mem);
	fill_record(f.p, &f.s, &f.st, 1002, false, &f.d);
	fclose(mem);
	CHECK(f.s.v[0].failed && f.s.v[0].status == SRC_KEPT);
	CHECK(out && strstr(out, "has 3 entries, more than guards.max_entries 2"));
	CHECK(out && strstr(out, f.path));
	free(out);
out:
	lf_free(&f);
}

/* Whether list_parse() takes `line` exactly as prefix_parse() does
 * (the same prefix) or refuses it as it does; *accepted counts the lines
 * taken.  A mismatch is said on stderr. */
static bool read_as_prefix_parse(const char *name, const char *line, size_t *accepted)
{
	struct addr_list l = { 0 };
	struct prefix want;
	struct diag d;
	bool good = prefix_parse(line, &want) == PREFIX_OK, ok, same;

	diag_init(&d, NULL);
	ok = list_parse(name, line, strlen(line), NULL, &l, &d);
	*accepted += ok;
	same = ok == good && (!ok || (l.n == 1 && !prefix_cmp(&l.v[0], &want)));
	if (!same)
		fprintf(stderr, "  '%s': list %d, prefix_parse %d\n", line, ok, good);
	addr_list_free(&l);
	return same;
}

/* Dotted quads take a fast path in the list reader: whatever it takes,
 * it must take exactly as prefix_parse() does, and refuse the rest. */
TEST(list_quads_read_as_prefix_parse)
{
	static const char *const pieces[] = {
		"0", "1", "01", "9", "10", "99", "100", "192", "255", "256", "999", "1000",
		".", ".", ".", "/", "/0", "/8", "/24", "/032", "/33", "/1", "x", ":",
	};
	static const char *const octets[13] = {
		"0", "00", "01", "1", "9", "10", "010", "99", "100", "255", "256", "300", "0255",
	};
	static const char *const lens[10] = {
		"", "/0", "/8", "/24", "/032", "/32", "/33", "/", "/00", "/1",
	};
	size_t mismatches = 0, accepted = 0;
	uint32_t r = 4242;

	for (int t = 0; t < 20000; t++) {
		char line[64] = "";

		r = r * 1103515245 + 12345;
		for (unsigned k = 0, np = 1 + (r >> 8) % 9; k < np; k++) {
			r = r * 1103515245 + 12345;
			strcat(line, pieces[(r >> 10) % ARRAY_SIZE(pieces)]);
		}
		if (t % 2 == 0)     /* quads, some with leading zeros or too big */
			snprintf(line, sizeof(line), "%s.%s.%s.%s%s", octets[(r >> 3) % 13],
				 octets[(r >> 7) % 13], octets[(r >> 11) % 13],
				 (r >> 15) % 2 ? "0" : octets[(r >> 16) % 13], lens[(r >> 20) % 10]);
		mismatches += !read_as_prefix_parse("q.txt", line, &accepted);
	}
	CHECK_INT(mismatches, 0);
	CHECK(accepted > 200);
}

/* IPv6 lines take a fast path too: groups, "::" anywhere, prefix
 * lengths, host bits, and the near misses (a fifth digit, a third colon,
 * two "::", an embedded IPv4 address, a stray '/'): taken exactly as
 * prefix_parse() takes them, the rest refused. */
TEST(list_ipv6_read_as_prefix_parse)
{
	static const char *const groups[] = {
		"0", "1", "db8", "2001", "ffff", "FFFF", "0000", "00000", "12345", "g", "",
	};
	static const char *const seps[] = { ":", ":", ":", "::", ":::", "/", "." };
	static const char *const lens[] = {
		"", "", "/0", "/32", "/48", "/64", "/127", "/128", "/129", "/064", "/", "/1",
	};
	size_t mismatches = 0, accepted = 0;
	uint32_t r = 2606;

	for (int t = 0; t < 40000; t++) {
		char line[128] = "";
		unsigned ng;

		r = r * 1103515245 + 12345;
		ng = 1 + (r >> 8) % 9;
		if ((r >> 4) % 4 == 0)
			strcat(line, "::");
		for (unsigned k = 0; k < ng; k++) {
			r = r * 1103515245 + 12345;
			strcat(line, groups[(r >> 10) % ((r >> 20) % 3 ? 5 : ARRAY_SIZE(groups))]);
			if (k + 1 < ng)
				strcat(line, seps[(r >> 14) % ((r >> 24) % 4 ? 3 : ARRAY_SIZE(seps))]);
		}
		r = r * 1103515245 + 12345;
		if ((r >> 5) % 6 == 0)
			strcat(line, (r >> 9) % 2 ? "::" : ":");
		if ((r >> 11) % 9 == 0)
			strcat(line, ":1.2.3.4");
		strcat(line, lens[(r >> 16) % ARRAY_SIZE(lens)]);
		if (t % 3 == 0) {   /* a good one as inet_ntop writes it: "::" where it can */
			struct prefix p = { .family = 6, .len = (uint8_t)((r >> 3) % 129) };
			char buf[PREFIX_STRLEN];

			for (int b = 0; b < 16; b++) {
				r = r * 1103515245 + 12345;
				p.a[b] = (r >> 12) % 4 ? 0 : (uint8_t)(r >> 16);
			}
			prefix_mask(&p);
			snprintf(line, sizeof(line), "%s", prefix_fmt(&p, buf, sizeof(buf)));
		}
		if (!line[0])
			continue;
		mismatches += !read_as_prefix_parse("six.txt", line, &accepted);
	}
	CHECK_INT(mismatches, 0);
	fprintf(stderr, "  %zu of the lines accepted\n", accepted);
	CHECK(accepted > 10000);
}

/* The radix sort gives exactly prefix_cmp's order, stably. */
static int qcmp(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

TEST(prefixes_sort_is_prefix_cmp_order)
{
	enum { N = 5000 };
	struct prefix *a = xcalloc(N, sizeof(*a)), *b = xcalloc(N, sizeof(*b));
	size_t *perm = xcalloc(N, sizeof(*perm)), bad = 0, unstable = 0;
	uint32_t r = 12345;

	for (size_t i = 0; i < N; i++) {
		r = r * 1103515245 + 12345;
		a[i].family = (r >> 7) % 5 ? 4 : 6;
		a[i].len = (uint8_t)((r >> 3) % (a[i].family == 4 ? 33 : 129));
		for (unsigned k = 0; k < (a[i].family == 4 ? 4u : 16u); k++) {
			r = r * 1103515245 + 12345;
			a[i].a[k] = (uint8_t)((r >> 16) % 4);  /* many ties and near ties */
		}
		prefix_mask(&a[i]);
	}
	memcpy(b, a, N * sizeof(*a));
	CHECK(prefixes_order(a, N, perm));
	qsort(b, N, sizeof(*b), qcmp);
	for (size_t i = 0; i < N; i++) {
		bad += memcmp(&a[perm[i]], &b[i], sizeof(*b)) != 0;
		unstable += i && !prefix_cmp(&a[perm[i - 1]], &a[perm[i]]) && perm[i - 1] > perm[i];
	}
	CHECK_INT(bad, 0);
	CHECK_INT(unstable, 0);
	prefixes_sort(a, N);
	CHECK(memcmp(a, b, N * sizeof(*a)) == 0);
	CHECK(!prefixes_order(a, N, perm));      /* in order: nothing to do */
	free(a);
	free(b);
	free(perm);
}

/* ---- guards ------------------------------------------------------------ */

static struct guards G = { .max_shrink = 50, .min_prefix_v4 = 8,
			   .min_prefix_v6 = 32, .stale_after = 86400 };

static bool refused(const char *const *have, size_t nh, const char *const *want,
		    size_t nw, const char *const *ex, size_t ne)
{
	struct prefix h[16], w[16], e[16];
	char *why;

	for (size_t i = 0; i < nh; i++)
		h[i] = P(have[i]);
	for (size_t i = 0; i < nw; i++)
		w[i] = P(want[i]);
	for (size_t i = 0; i < ne; i++)
		e[i] = P(ex[i]);
	/* as refresh's guard_one: the width, then the shrink */
	why = guard_width(&G, &(struct addr_list){ w, NULL, nw, nw, NULL, NULL, NULL, 0 });
	if (!why)
		why = guard_max_shrink(&G, h, nh, w, nw, e, ne);
	if (why)
		fprintf(stderr, "  (guard: %s)\n", why);
	free(why);
	return why != NULL;
}

TEST(guard_shrink)
{
	const char *four[] = { "198.51.100.1", "198.51.100.3", "198.51.100.5", "198.51.100.7" };
	const char *two[] = { "198.51.100.1", "198.51.100.3" };
	const char *one[] = { "198.51.100.1" };
	const char *moved[] = { "198.51.100.9" };
	const char *none[] = { NULL };

	CHECK(!refused(four, 4, four, 4, none, 0));     /* no change */
	CHECK(!refused(four, 4, two, 2, none, 0));      /* 50%: allowed */
	CHECK(refused(four, 4, one, 1, none, 0));       /* 75% */
	CHECK(refused(one, 1, none, 0, none, 0));       /* to nothing */
	CHECK(!refused(one, 1, moved, 1, none, 0));     /* a moved record */
	CHECK(!refused(none, 0, four, 4, none, 0));     /* growth */
	CHECK(!refused(four, 4, one, 1, four + 1, 3));  /* stale ones leave freely */
	G.max_shrink = 100;
	CHECK(!refused(four, 4, none, 0, none, 0));
	G.max_shrink = 0;
	CHECK(refused(four, 4, two, 2, none, 0));
	G.max_shrink = 50;
}

TEST(guard_wide_prefix)
{
	const char *have[] = { "198.51.100.0/24" };
	const char *wide[] = { "198.0.0.0/7" };
	const char *inside[] = { "198.51.100.0/25", "198.51.100.128/25" };
	const char *v6[] = { "2001::/16" };
	const char *none[] = { NULL };

	CHECK(refused(have, 1, wide, 1, none, 0));
	CHECK(!refused(have, 1, inside, 2, none, 0));
	CHECK(refused(none, 0, v6, 1, none, 0));
	CHECK(refused(wide, 1, wide, 1, none, 0));      /* live already: refused all the same */
}

/* ---- the schedule ------------------------------------------------------ */

TEST(schedule_clamp_and_jitter)
{
	struct resolvecfg r = { .ttl_min = 30, .ttl_max = 3600, .timeout = 3 };

	CHECK_INT(sched_delay_ms(300, &r, 0.5), 300000);        /* no jitter mid-way */
	CHECK_INT(sched_delay_ms(5, &r, 0.5), 30000);           /* floor */
	CHECK_INT(sched_delay_ms(0, &r, 0.5), 30000);           /* failure: ttl_min */
	CHECK_INT(sched_delay_ms(86400, &r, 0.5), 3600000);     /* ceiling */
	CHECK_INT(sched_delay_ms(300, &r, 0.0), 270000);        /* -10% */
	CHECK(sched_delay_ms(300, &r, 0.999999) <= 330000);     /* +10% */
	CHECK(sched_delay_ms(300, &r, 0.999999) > 329000);
	for (int i = 0; i < 1000; i++) {
		uint64_t t = sched_delay_ms(60, &r, (double)i / 1000.0);

		CHECK(t >= 54000 && t <= 66000);
	}
	r.ttl_min = r.ttl_max = 0;
	CHECK_INT(sched_delay_ms(0, &r, 0.0), SCHED_FLOOR_MS);  /* never a busy loop */
}

/* A partner that requires DNSSEC stands only on validated answers: a
 * last known good the state recorded unvalidated (before `dnssec:
 * require`) is as good as none, a validated one is kept; another partner
 * of the same name takes either; status sees which (src_seen.dnssec). */
TEST(dnssec_partner_keeps_only_validated)
{
	struct policy *p = pol("version: 1\npartners:\n"
		"  a: {services: [sip-federation], hosts: [h.example], dnssec: require}\n"
		"  b: {services: [sip-federation], hosts: [h.example]}\n");
	struct prefix v4 = P("198.51.100.7");
	struct src_opts o = { .now = 10000 };
	struct state st = { 0 };
	struct srcset s = { 0 };
	struct src_seen seen;
	struct diag d;

	if (!p)
		return;
	diag_init(&d, NULL);
	srcset_build(p, &s);
	CHECK(s.n == 4 && s.v[0].dnssec && !s.v[2].dnssec);
	CHECK_INT(state_update_family(&st, STATE_HOST, "h.example", 4, STATE_FROM_DNS, 9950,
				      60, &v4, 1), 0);
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_UNKNOWN);
	CHECK_INT(partner_n(&s, 0), 0);
	CHECK_INT(s.v[2].status, SRC_KEPT);
	CHECK_INT(partner_n(&s, 1), 1);
	CHECK(srcset_state_of(&s, p, 0, &st, o.now) == NULL);
	srcset_seen(&s, p, 0, &st, o.now, &seen);
	CHECK(!seen.dnssec && !seen.confirmed);
	CHECK_INT(state_update_family(&st, STATE_HOST, "h.example", 4, STATE_FROM_DNSSEC, 9950,
				      60, &v4, 1), 0);
	srcset_fill(p, &s, &st, &o, &d);
	CHECK_INT(s.v[0].status, SRC_KEPT);
	CHECK_INT(s.v[0].from, STATE_FROM_DNSSEC);
	CHECK_INT(partner_n(&s, 0), 1);
	srcset_seen(&s, p, 0, &st, o.now, &seen);
	CHECK(seen.dnssec && seen.naddrs == 1);
	srcset_free(&s);
	state_free(&st);
	policy_free(p);
}

/* ---- list URLs and feeds, offline -------------------------------------- */

/* A list URL is fetched after its interval, sooner (interval / 8, at least
 * 10 s, at most 5 min, never beyond the interval) after a failure; both
 * jittered. */
TEST(fetch_schedule)
{
	CHECK_INT(sched_fetch_delay_ms(3600, false, 0.5), 3600000);
	CHECK_INT(sched_fetch_delay_ms(3600, true, 0.5), 300000);       /* capped */
	CHECK_INT(sched_fetch_delay_ms(400, true, 0.5), 50000);         /* 1/8 */
	CHECK_INT(sched_fetch_delay_ms(40, true, 0.5), 10000);          /* floor */
	CHECK_INT(sched_fetch_delay_ms(5, true, 0.5), 5000);            /* the interval */
	for (int i = 0; i < 1000; i++) {
		uint64_t t = sched_fetch_delay_ms(900, false, (double)i / 1000.0);

		CHECK(t >= 810000 && t <= 990000);
	}
}

/* Offline (no fetch), a list URL and a feed stand on what the state
 * keeps: the addresses, the validators and when fetched, a feed's
 * addresses each with its ports; nothing known is no address (and said
 * so).  A stale one is dropped as a name would be. */
TEST(url_and_feed_from_state)
{
	struct policy *p = pol("version: 1\npartners:\n"
		"  a: {services: [av-edge], lists: [https://l.example/a.txt],\n"
		"      feeds: [{url: https://f.example/endpoints/w, format: m365}]}\n"
		"  b: {services: [sip-federation], lists: [https://l.example/b.txt]}\n");
	struct prefix u[] = { P("198.51.100.7") }, f[] = { P("192.0.2.0/24"), P("203.0.113.9") };
	struct portrange udp[] = { { PROTO_UDP, 3478, 3481 } };
	struct portset g[] = { { udp, 1 } };
	uint32_t grp[] = { 1, 0 };
	struct state st = { 0 };
	struct srcset s = { 0 };
	struct addr_list l = { 0 };
	struct src_opts o = { .strict_lists = true, .now = 100000 };
	struct diag d;
	const struct src *x, *y = NULL;

	if (!p)
		return;
	diag_init(&d, NULL);
	srcset_build(p, &s);
	x = &s.v[0];
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i].kind == STATE_FEED)
			y = &s.v[i];
	CHECK(x->kind == STATE_URL && y && x->interval == 3600);
	if (!y)
		goto out;
	CHECK_INT(state_update(&st, STATE_URL, "https://l.example/a.txt", STATE_FROM_HTTPS,
			       99000, 0, u, 1), 0);
	CHECK(state_set_fetch(&st, STATE_URL, "https://l.example/a.txt",
			      &(struct state_fetch){ 98000, "\"v1\"", NULL, NULL }));
	CHECK_INT(state_update(&st, STATE_FEED, y->key, STATE_FROM_HTTPS, 99000, 0, f, 2), 0);
	CHECK(state_set_fetch(&st, STATE_FEED, y->key,
			      &(struct state_fetch){ 98000, NULL, NULL, "2026120700" }));
	CHECK(state_set_groups(&st, STATE_FEED, y->key, g, 1, grp, "11"));
	CHECK(srcset_fill(p, &s, &st, &o, &d));
	CHECK(x->status == SRC_KEPT && x->naddrs == 1 && x->fetched == 98000 && x->etag &&
	      !strcmp(x->etag, "\"v1\""));
	CHECK(y->status == SRC_KEPT && y->naddrs == 2 && y->version &&
	      !strcmp(y->version, "2026120700") && y->ngroups == 1);
	CHECK(s.v[s.n - 1].status == SRC_UNKNOWN);      /* b's list: never fetched */
	srcset_partner_addrs(&s, 0, &l);
	CHECK_INT(l.n, 3);
	for (size_t i = 0; i < l.n; i++) {
		const struct portset *ps = addr_list_ports(&l, i);

		if (!prefix_cmp(&l.v[i], &f[0]))
			CHECK(ps && ps->n == 1 && ps->v[0].lo == 3478);
		else
			CHECK(ps == NULL);
	}
	addr_list_free(&l);
	/* Past stale_after: dropped, as any source. */
	o.now = 99000 + 86401;
	CHECK(srcset_fill(p, &s, &st, &o, &d));
	CHECK(x->status == SRC_STALE && y->status == SRC_STALE);
out:
	srcset_free(&s);
	state_free(&st);
	policy_free(p);
}
