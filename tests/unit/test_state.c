/* Unit tests of refresh/state.c: the last known good state file. */
#define _GNU_SOURCE
#include "common/common.h"
#include "refresh/state.h"
#include "tests/harness.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static struct prefix P(const char *s)
{
	struct prefix p;
	enum prefix_err e = prefix_parse(s, &p);

	if (e != PREFIX_OK && e != PREFIX_HOST_BITS)
		fprintf(stderr, "bad test prefix %s\n", s);
	return p;
}

static void rm_dir(void)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char buf[512];

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] ||
		    (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		snprintf(buf, sizeof(buf), "%s/%s", dir, de->d_name);
		unlink(buf);
	}
	closedir(dp);
	rmdir(dir);
}

static void fresh_dir(void)
{
	if (!dir[0])
		atexit(rm_dir);
	if (dir[0]) {
		chmod(dir, 0700);
		rm_dir();
	}
	strcpy(dir, "/tmp/fedwall-state.XXXXXX");
	if (!mkdtemp(dir))
		perror("mkdtemp");
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE_NAME);
}

/* Files in dir (the state file and any leftovers). */
static unsigned count_files(void)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	while (dp && (de = readdir(dp)))
		n += de->d_name[0] != '.';
	if (dp)
		closedir(dp);
	return n;
}

static char *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	struct strbuf sb = { 0 };
	char buf[4096];
	size_t r;

	if (!f)
		return NULL;
	while ((r = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(&sb, buf, r);
	fclose(f);
	*len = sb.len;
	return sb.s ? sb.s : xstrdup("");
}

static void spit(const char *p, const char *s, size_t len)
{
	FILE *f = fopen(p, "wb");

	if (!f)
		return;
	fwrite(s, 1, len, f);
	fclose(f);
}

/* Writes body plus a correct sum line: well-formed as far as the
 * checksum goes, so that the parser's own checks are what is tested. */
static void spit_summed(const char *body)
{
	struct strbuf sb = { 0 };

	sb_addf(&sb, "%s# sum %016" PRIx64 "\n", body,
		fnv1a64(FNV1A64_INIT, body, strlen(body)));
	spit(path, sb.s, sb.len);
	sb_free(&sb);
}

/* A name's two families as refresh records them: A answered now, AAAA
 * failing for a day and dropped (state_expire keeps it, marked). */
static void sample_families(struct state *st)
{
	struct prefix a4 = P("198.51.100.8"), a6 = P("2001:db8:51::8");
	struct diag quiet;

	diag_init(&quiet, NULL);
	CHECK_INT(state_update_family(st, STATE_HOST, "fam.example.test", 4, STATE_FROM_DNS,
				      1700000000, 120, &a4, 1), 0);
	CHECK_INT(state_update_family(st, STATE_HOST, "fam.example.test", 6, STATE_FROM_DNS,
				      1600000000, 120, &a6, 1), 0);
	CHECK_INT(state_expire(st, 1700000000, 86400, &quiet), 1);
}

static void sample(struct state *st)
{
	struct prefix h[] = { P("2001:db8:51::7"), P("198.51.100.7"),
			      P("198.51.100.7") };
	struct prefix l[] = { P("192.0.2.0/24"), P("203.0.113.77/24") };
	struct prefix s[] = { P("203.0.113.5") };

	CHECK_INT(state_update(st, STATE_HOST, "partner1.example.test",
			       STATE_FROM_DNS, 1700000000, 300, h, 3), 0);
	CHECK_INT(state_update(st, STATE_LIST, "/var/lib/fedwall/lists/a b.txt",
			       STATE_FROM_FILE, 1700000100, 0, l, 2), 0);
	CHECK_INT(state_update(st, STATE_DOMAIN,
			       "_sipfederationtls._tcp.example.test",
			       STATE_FROM_DNSSEC, 1700000200, 60, s, 1), 0);
	CHECK_INT(state_update(st, STATE_HOST, "empty.example.test",
			       STATE_FROM_DNS, 1700000300, 30, NULL, 0), 0);
	sample_families(st);
}

TEST(round_trip)
{
	struct state a = { 0 }, b = { 0 };
	const struct state_entry *e;
	struct diag d;
	char *one, *two, buf[PREFIX_STRLEN];
	size_t n1 = 0, n2 = 0;
	struct stat sb;

	fresh_dir();
	diag_init(&d, stderr);
	sample(&a);
	CHECK_INT(state_save(&a, path), 0);
	CHECK_INT(state_load(&b, path, &d), 0);
	CHECK_INT(d.warnings, 0);
	CHECK(!b.discarded);
	CHECK_INT(b.n, 6);
	e = state_lookup_family(&b, STATE_HOST, "fam.example.test", 4);
	CHECK(e && e->naddrs == 1 && !e->dropped && e->ndropped == 0 && e->ttl == 120 &&
	      e->confirmed == 1700000000 && e->family == 4);
	/* Dropped: no address, but when it was last confirmed and how many
	 * it had survive the save, for status and the metrics. */
	e = state_lookup_family(&b, STATE_HOST, "fam.example.test", 6);
	CHECK(e && e->naddrs == 0 && e->dropped && e->ndropped == 1 &&
	      e->confirmed == 1600000000 && e->family == 6);
	CHECK(state_lookup(&b, STATE_HOST, "fam.example.test") == NULL);
	e = state_lookup(&b, STATE_HOST, "partner1.example.test");
	CHECK(e != NULL);
	if (e) {
		CHECK_INT(e->naddrs, 2);        /* the duplicate went */
		CHECK_STR(prefix_fmt(&e->addrs[0], buf, sizeof(buf)), "198.51.100.7");
		CHECK_STR(prefix_fmt(&e->addrs[1], buf, sizeof(buf)), "2001:db8:51::7");
		CHECK_INT(e->confirmed, 1700000000);
		CHECK_INT(e->ttl, 300);
		CHECK_INT(e->from, STATE_FROM_DNS);
	}
	e = state_lookup(&b, STATE_LIST, "/var/lib/fedwall/lists/a b.txt");
	CHECK(e && e->naddrs == 2 && e->from == STATE_FROM_FILE);
	if (e)
		CHECK_STR(prefix_fmt(&e->addrs[0], buf, sizeof(buf)), "192.0.2.0/24");
	e = state_lookup(&b, STATE_DOMAIN, "_sipfederationtls._tcp.example.test");
	CHECK(e && e->from == STATE_FROM_DNSSEC && e->ttl == 60);
	e = state_lookup(&b, STATE_HOST, "empty.example.test");
	CHECK(e && e->naddrs == 0);
	CHECK(state_lookup(&b, STATE_DOMAIN, "partner1.example.test") == NULL);

	/* Equal states give equal bytes; mode 0600; no leftovers. */
	one = slurp(path, &n1);
	CHECK_INT(state_save(&b, path), 0);
	two = slurp(path, &n2);
	CHECK(one && two && n1 == n2 && memcmp(one, two, n1) == 0);
	CHECK(one && n1 > STATE2_MAGIC_LEN && memcmp(one, STATE2_MAGIC, STATE2_MAGIC_LEN) == 0);
	CHECK_INT(stat(path, &sb), 0);
	CHECK_INT(sb.st_mode & 07777, 0600);
	CHECK_INT(count_files(), 1);
	free(one);
	free(two);
	state_free(&a);
	state_free(&b);
}

/* The file identity of a list survives a save; state_update clears it. */
TEST(ident_round_trip)
{
	struct state_ident id = { 64769, 1234567, 1511436, 1796667170123456789LL,
				  1796667171987654321LL };
	struct state a = { 0 }, b = { 0 };
	const struct state_entry *e;
	struct diag d;

	fresh_dir();
	diag_init(&d, stderr);
	sample(&a);
	CHECK(state_set_ident(&a, STATE_LIST, "/var/lib/fedwall/lists/a b.txt", &id));
	CHECK(!state_set_ident(&a, STATE_LIST, "/nowhere.txt", &id));
	CHECK_INT(state_save(&a, path), 0);
	CHECK_INT(state_load(&b, path, &d), 0);
	e = state_lookup(&b, STATE_LIST, "/var/lib/fedwall/lists/a b.txt");
	CHECK(e && !memcmp(&e->ident, &id, sizeof(id)) && state_ident_same(e, &id));
	e = state_lookup(&b, STATE_HOST, "partner1.example.test");
	CHECK(e && e->ident.ino == 0 && !state_ident_same(e, &e->ident));  /* zero: unknown */
	state_update(&b, STATE_LIST, "/var/lib/fedwall/lists/a b.txt", STATE_FROM_FILE, 5, 0,
		     NULL, 0);
	e = state_lookup(&b, STATE_LIST, "/var/lib/fedwall/lists/a b.txt");
	CHECK(e && e->ident.ino == 0 && e->naddrs == 0);
	state_free(&a);
	state_free(&b);
}

/* An install's format-1 (text) state loads, each name split into its two
 * families, and its next save is format 3 with the same content. */
TEST(format1_migrates)
{
	struct state st = { 0 }, again = { 0 };
	const struct state_entry *e;
	char buf[PREFIX_STRLEN], *bytes;
	size_t len = 0;
	struct diag d;

	fresh_dir();
	diag_init(&d, stderr);
	spit_summed("fedwall-state 1\n"
		    "source host 1700000000 300 dns partner1.example.test\n"
		    "addr 198.51.100.7\naddr 2001:db8:51::7\n"
		    "source list 1700000200 0 file /l/empty.txt\n"
		    "source list 1700000100 0 file /var/lib/fedwall/lists/a b.txt\n"
		    "addr 192.0.2.0/24\n");
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(!st.discarded && st.n == 4);
	CHECK_INT(state_save(&st, path), 0);
	bytes = slurp(path, &len);
	CHECK(bytes && len > STATE2_MAGIC_LEN && !memcmp(bytes, STATE2_MAGIC, STATE2_MAGIC_LEN));
	CHECK(bytes && len > 12 && bytes[8] == STATE_VERSION);
	CHECK_INT(state_load(&again, path, &d), 0);
	CHECK(!again.discarded && again.n == 4);
	CHECK(state_lookup(&again, STATE_HOST, "partner1.example.test") == NULL);
	e = state_lookup_family(&again, STATE_HOST, "partner1.example.test", 4);
	CHECK(e && e->naddrs == 1 && e->ttl == 300 && e->confirmed == 1700000000);
	if (e && e->naddrs == 1)
		CHECK_STR(prefix_fmt(&e->addrs[0], buf, sizeof(buf)), "198.51.100.7");
	e = state_lookup_family(&again, STATE_HOST, "partner1.example.test", 6);
	CHECK(e && e->naddrs == 1 && e->ttl == 300 && e->confirmed == 1700000000);
	if (e && e->naddrs == 1)
		CHECK_STR(prefix_fmt(&e->addrs[0], buf, sizeof(buf)), "2001:db8:51::7");
	e = state_lookup(&again, STATE_LIST, "/var/lib/fedwall/lists/a b.txt");
	CHECK(e && e->naddrs == 1 && e->from == STATE_FROM_FILE && e->ident.ino == 0);
	e = state_lookup(&again, STATE_LIST, "/l/empty.txt");
	CHECK(e && e->naddrs == 0);
	CHECK_INT(d.warnings, 0);
	free(bytes);
	state_free(&st);
	state_free(&again);
}

/* A format-3 file with a correct checksum is trusted only if it is
 * exactly what the writer writes: every single-byte change (checksum
 * fixed up after it) is refused with one warning, or reads as a state
 * that saves to those very bytes (a changed time, ttl, identity or
 * count of dropped addresses).  The version field is left alone: 3 with
 * one bit flipped is 2, which is read and migrated (format2_loads_split). */
TEST(format3_canonical_or_refused)
{
	static const uint8_t deltas[] = { 0x01, 0x80, 0xff };
	struct state a = { 0 }, b = { 0 };
	size_t len = 0, refused = 0, taken = 0, tries = 0;
	char other[160], *good, *re;
	struct diag d;

	fresh_dir();
	snprintf(other, sizeof(other), "%s/other", dir);
	sample(&a);
	CHECK_INT(state_save(&a, path), 0);
	good = slurp(path, &len);
	for (size_t i = 0; good && i + 8 < len; i++) {
		if (i >= 8 && i < 12)
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(deltas); k++) {
			uint64_t sum;
			size_t rlen = 0;

			good[i] ^= (char)deltas[k];
			sum = htole64(sum64(good, len - 8));
			memcpy(good + len - 8, &sum, 8);
			spit(path, good, len);
			diag_init(&d, NULL);
			CHECK_INT(state_load(&b, path, &d), 0);
			tries++;
			if (b.discarded && b.n == 0 && d.warnings == 1) {
				refused++;
			} else if (!b.discarded && d.warnings == 0 && state_save(&b, other) == 0) {
				re = slurp(other, &rlen);
				taken += re && rlen == len && !memcmp(re, good, len);
				free(re);
			}
			good[i] ^= (char)deltas[k];
		}
	}
	CHECK_INT(refused + taken, tries);
	CHECK(refused > 300 && taken > 0);        /* both kinds of byte were met */
	free(good);
	state_free(&a);
	state_free(&b);
}

TEST(missing_file_is_empty)
{
	struct state st = { 0 };
	struct diag d;

	fresh_dir();
	diag_init(&d, stderr);
	sample(&st);    /* load replaces whatever was there */
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK_INT(st.n, 0);
	CHECK(!st.discarded);
	CHECK_INT(d.warnings + d.errors, 0);
	state_free(&st);
	state_free(&st);        /* twice is fine */
}

TEST(update_lookup_remove)
{
	struct state st = { 0 };
	struct prefix bad = { .family = 5 };
	struct prefix a = P("198.51.100.9");
	const struct state_entry *e;

	CHECK_INT(state_update(&st, STATE_HOST, "", STATE_FROM_DNS, 1, 1, NULL, 0), -EINVAL);
	CHECK_INT(state_update(&st, STATE_HOST, "a\nb", STATE_FROM_DNS, 1, 1, NULL, 0), -EINVAL);
	CHECK_INT(state_update(&st, STATE_HOST, " lead", STATE_FROM_DNS, 1, 1, NULL, 0), -EINVAL);
	CHECK_INT(state_update(&st, STATE_HOST, "x", STATE_FROM_DNS, 1, 1, &bad, 1), -EINVAL);
	CHECK_INT(state_update(&st, STATE_HOST, "x", STATE_FROM_DNS, -1, 1, NULL, 0), -EINVAL);
	CHECK_INT(st.n, 0);
	CHECK_INT(state_update(&st, STATE_HOST, "x", STATE_FROM_DNS, 5, 10, &a, 1), 0);
	CHECK_INT(state_update(&st, STATE_HOST, "x", STATE_FROM_DNS, 9, 20, NULL, 0), 0);
	CHECK_INT(st.n, 1);
	e = state_lookup(&st, STATE_HOST, "x");
	CHECK(e && e->confirmed == 9 && e->ttl == 20 && e->naddrs == 0);
	CHECK(state_remove(&st, STATE_HOST, "x"));
	CHECK(!state_remove(&st, STATE_HOST, "x"));
	CHECK_INT(st.n, 0);
	/* Per family: a family's entry holds that family's addresses only;
	 * a list has no family. */
	CHECK_INT(state_update_family(&st, STATE_HOST, "x", 6, STATE_FROM_DNS, 1, 1, &a, 1),
		  -EINVAL);
	CHECK_INT(state_update_family(&st, STATE_LIST, "/x", 4, STATE_FROM_FILE, 1, 0, &a, 1),
		  -EINVAL);
	CHECK_INT(state_update_family(&st, STATE_HOST, "x", 5, STATE_FROM_DNS, 1, 1, NULL, 0),
		  -EINVAL);
	CHECK_INT(st.n, 0);
	CHECK_INT(state_update_family(&st, STATE_HOST, "x", 4, STATE_FROM_DNS, 1, 1, &a, 1), 0);
	CHECK_INT(state_update_family(&st, STATE_HOST, "x", 6, STATE_FROM_DNS, 2, 1, NULL, 0), 0);
	CHECK_INT(state_update(&st, STATE_HOST, "w", STATE_FROM_DNS, 2, 1, NULL, 0), 0);
	CHECK_INT(st.n, 3);
	e = state_lookup_family(&st, STATE_HOST, "x", 4);
	CHECK(e && e->naddrs == 1 && e->confirmed == 1);
	e = state_lookup_family(&st, STATE_HOST, "x", 6);
	CHECK(e && e->naddrs == 0 && e->confirmed == 2);
	CHECK(state_lookup(&st, STATE_HOST, "x") == NULL);
	CHECK(state_remove_family(&st, STATE_HOST, "x", 6));
	CHECK(!state_remove_family(&st, STATE_HOST, "x", 6));
	CHECK(state_lookup_family(&st, STATE_HOST, "x", 4) != NULL);
	CHECK(state_update_family(&st, STATE_HOST, "x", 6, STATE_FROM_DNS, 2, 1, NULL, 0) == 0);
	CHECK(state_remove(&st, STATE_HOST, "x"));      /* every family */
	CHECK_INT(st.n, 1);
	CHECK(state_lookup(&st, STATE_HOST, "w") != NULL);
	state_free(&st);
}

/* Every cut of a good file must be refused, never half-trusted. */
TEST(truncated_file_is_ignored)
{
	struct state a = { 0 }, b = { 0 };
	struct diag d;
	char *buf;
	size_t len = 0, refused = 0, cuts = 0;

	fresh_dir();
	sample(&a);
	CHECK_INT(state_save(&a, path), 0);
	buf = slurp(path, &len);
	for (size_t cut = 0; buf && cut < len; cut++) {
		diag_init(&d, NULL);
		spit(path, buf, cut);
		CHECK_INT(state_load(&b, path, &d), 0);
		cuts++;
		refused += b.n == 0 && b.discarded && d.warnings == 1;
	}
	CHECK_INT(refused, cuts);
	CHECK(cuts > 100);
	free(buf);
	state_free(&a);
	state_free(&b);
}

TEST(corrupted_file_is_ignored)
{
	struct state a = { 0 }, b = { 0 };
	struct diag d;
	char *buf;
	size_t len = 0, refused = 0;

	fresh_dir();
	sample(&a);
	CHECK_INT(state_save(&a, path), 0);
	buf = slurp(path, &len);
	/* One flipped bit anywhere. */
	for (size_t i = 0; buf && i < len; i++) {
		buf[i] ^= 0x04;
		spit(path, buf, len);
		buf[i] ^= 0x04;
		diag_init(&d, NULL);
		CHECK_INT(state_load(&b, path, &d), 0);
		refused += b.n == 0 && b.discarded && d.warnings == 1;
	}
	CHECK_INT(refused, len);
	/* Appended garbage after the sum line. */
	spit(path, buf, len);
	{
		FILE *f = fopen(path, "ab");

		if (f) {
			fputs("addr 0.0.0.0/0\n", f);
			fclose(f);
		}
	}
	diag_init(&d, NULL);
	CHECK_INT(state_load(&b, path, &d), 0);
	CHECK(b.n == 0 && b.discarded);
	free(buf);
	state_free(&a);
	state_free(&b);
}

/* Summed correctly, but not what fedwall writes: still refused, with the
 * line that gave it away. */
TEST(malformed_file_is_ignored)
{
	static const char *const bodies[] = {
		"fedwall-state 2\n",
		"fedwall-state 1\naddr 192.0.2.1\n",
		"fedwall-state 1\nsource host 1 2 dns\n",
		"fedwall-state 1\nsource host 1 2 dns x\naddr 192.0.2.1/33\n",
		"fedwall-state 1\nsource host 1 2 dns x\naddr 192.0.2.1/24\n",
		"fedwall-state 1\nsource host -1 2 dns x\n",
		"fedwall-state 1\nsource host 1 4294967296 dns x\n",
		"fedwall-state 1\nsource cname 1 2 dns x\n",
		"fedwall-state 1\nsource host 1 2 hearsay x\n",
		"fedwall-state 1\nsource host 1 2 dns y\nsource host 1 2 dns x\n",
		"fedwall-state 1\nsource host 1 2 dns x\nsource host 1 2 dns x\n",
		"fedwall-state 1\nsource host 1 2 dns x\naddr 192.0.2.2\naddr 192.0.2.1\n",
		"fedwall-state 1\nsource host 1 2 dns x\nbogus\n",
		"fedwall-state 1\nsource host 1 2 dns x\naddr 192.0.2.1",
	};
	struct state st = { 0 };
	struct diag d;
	struct strbuf longline = { 0 };
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem;

	fresh_dir();
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		diag_init(&d, NULL);
		spit_summed(bodies[i]);
		CHECK_INT(state_load(&st, path, &d), 0);
		if (st.n || !st.discarded || d.warnings != 1)
			fprintf(stderr, "not refused: body %zu\n", i);
		CHECK(st.n == 0 && st.discarded && d.warnings == 1);
	}
	/* A line over STATE_MAX_LINE. */
	sb_addf(&longline, "fedwall-state 1\nsource host 1 2 dns ");
	for (int i = 0; i < STATE_MAX_LINE; i++)
		sb_addc(&longline, 'a');
	sb_addc(&longline, '\n');
	spit_summed(sb_str(&longline));
	mem = open_memstream(&out, &outlen);
	diag_init(&d, mem);
	CHECK_INT(state_load(&st, path, &d), 0);
	fclose(mem);
	CHECK(st.n == 0 && st.discarded);
	/* The warning names the file and the line. */
	CHECK(out && strstr(out, ":2:1: warning: state file is malformed"));
	free(out);
	/* The good case of the same helper, so the test above means something. */
	spit_summed("fedwall-state 1\nsource host 1 2 dns x y\naddr 192.0.2.1\n");
	diag_init(&d, NULL);
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(st.n == 2 && !st.discarded && state_lookup_family(&st, STATE_HOST, "x y", 4) &&
	      state_lookup_family(&st, STATE_HOST, "x y", 6));
	sb_free(&longline);
	state_free(&st);
}

TEST(oversized_file_is_ignored)
{
	struct state st = { 0 };
	struct diag d;
	int fd;

	fresh_dir();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	/* Sparse: costs no disk. */
	CHECK_INT(ftruncate(fd, (off_t)STATE_MAX_FILE + 1), 0);
	close(fd);
	diag_init(&d, NULL);
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(st.n == 0 && st.discarded && d.warnings == 1);
	/* A good format-2 file grown past the cap: refused before it is read. */
	sample(&st);
	CHECK_INT(state_save(&st, path), 0);
	CHECK_INT(truncate(path, (off_t)STATE_MAX_FILE + 8), 0);
	diag_init(&d, NULL);
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(st.n == 0 && st.discarded && d.warnings == 1);
	/* A directory where the file should be. */
	unlink(path);
	CHECK_INT(mkdir(path, 0700), 0);
	diag_init(&d, NULL);
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(st.n == 0 && st.discarded && d.warnings == 1);
	rmdir(path);
	state_free(&st);
}

/* A failed save leaves the old file as it was and no temporary file. */
static void check_old_file_kept(const char *old, size_t oldlen)
{
	size_t len = 0;
	char *now = slurp(path, &len);

	CHECK(now && len == oldlen && memcmp(now, old, len) == 0);
	CHECK_INT(count_files(), 1);
	free(now);
}

TEST(failed_write_keeps_old_file)
{
	struct state st = { 0 };
	struct rlimit old, small = { 0 };
	char *before, name[64];
	size_t len = 0;

	fresh_dir();
	sample(&st);
	CHECK_INT(state_save(&st, path), 0);
	before = slurp(path, &len);
	/* Make the new file bigger than the file size limit allows: the write
	 * fails (EFBIG) even for root. */
	for (int i = 0; i < 200; i++) {
		struct prefix p = P("198.51.100.0");

		p.a[3] = (uint8_t)i;
		snprintf(name, sizeof(name), "h%03d.example.test", i);
		state_update(&st, STATE_HOST, name, STATE_FROM_DNS, 1, 1, &p, 1);
	}
	getrlimit(RLIMIT_FSIZE, &old);
	small.rlim_cur = small.rlim_max = old.rlim_max;
	small.rlim_cur = 1024;
	signal(SIGXFSZ, SIG_IGN);
	CHECK_INT(setrlimit(RLIMIT_FSIZE, &small), 0);
	CHECK_INT(state_save(&st, path), -EFBIG);
	CHECK_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	check_old_file_kept(before, len);
	free(before);
	state_free(&st);
}

/* Read-only directory: run as an unprivileged user, since root may write
 * anyway. */
static int save_unprivileged(const struct state *st)
{
	struct passwd *pw = getpwnam("nobody");
	pid_t pid;
	int status;

	if (geteuid() != 0)
		return state_save(st, path) == -EACCES ? 0 : 1;
	if (!pw)
		return -1;
	pid = fork();
	if (pid == 0) {
		if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(3);
		_exit(state_save(st, path) == -EACCES ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 2;
	return WEXITSTATUS(status);
}

TEST(read_only_dir_keeps_old_file)
{
	struct state st = { 0 };
	char *before;
	size_t len = 0;
	int rc;

	fresh_dir();
	sample(&st);
	CHECK_INT(state_save(&st, path), 0);
	before = slurp(path, &len);
	CHECK_INT(state_update(&st, STATE_HOST, "new.example.test",
			       STATE_FROM_DNS, 2, 2, NULL, 0), 0);
	chmod(dir, 0555);
	rc = save_unprivileged(&st);
	chmod(dir, 0700);
	if (rc >= 0)
		CHECK_INT(rc, 0);
	check_old_file_kept(before, len);
	/* A directory that does not exist. */
	CHECK_INT(state_save(&st, "/nonexistent-fedwall-dir/state"), -ENOENT);
	free(before);
	state_free(&st);
}

TEST(expiry)
{
	struct state st = { 0 };
	const struct state_entry *e;
	struct prefix a = P("198.51.100.7");
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem = open_memstream(&out, &outlen);
	struct diag d;

	diag_init(&d, mem);
	state_update(&st, STATE_HOST, "old.example.test", STATE_FROM_DNS, 1000, 60, &a, 1);
	state_update(&st, STATE_HOST, "edge.example.test", STATE_FROM_DNS, 1000 + 100, 60, &a, 1);
	state_update(&st, STATE_LIST, "/l.txt", STATE_FROM_FILE, 1000 + 150, 0, &a, 1);
	state_update(&st, STATE_DOMAIN, "_x._tcp.example.test", STATE_FROM_DNS, 5000, 60, &a, 1);
	state_update_family(&st, STATE_HOST, "six.example.test", 6, STATE_FROM_DNS, 1000, 60,
			    NULL, 0);
	/* now 1200, stale_after 100: old is 200 s old, edge exactly 100.
	 * What is dropped stays, marked, with when it was last confirmed:
	 * status and the metrics keep reporting it stale. */
	CHECK_INT(state_expire(&st, 1200, 100, &d), 2);
	CHECK_INT(d.warnings, 2);
	CHECK_INT(st.n, 5);
	e = state_lookup(&st, STATE_HOST, "old.example.test");
	CHECK(e && e->dropped && e->naddrs == 0 && e->ndropped == 1 && e->confirmed == 1000);
	e = state_lookup(&st, STATE_HOST, "edge.example.test");
	CHECK(e && !e->dropped && e->naddrs == 1);
	e = state_lookup(&st, STATE_DOMAIN, "_x._tcp.example.test");
	CHECK(e && !e->dropped);
	e = state_lookup_family(&st, STATE_HOST, "six.example.test", 6);
	CHECK(e && e->dropped && e->ndropped == 0);     /* an empty family goes stale too */
	/* Dropped once: not again, not warned again. */
	CHECK_INT(state_expire(&st, 1300, 100, &d), 2);
	CHECK_INT(d.warnings, 4);
	CHECK_INT(st.n, 5);
	CHECK_INT(state_expire(&st, 1300, 100, &d), 0);
	CHECK_INT(d.warnings, 4);
	/* It answers again: confirmed, its addresses back, the mark gone. */
	CHECK_INT(state_update(&st, STATE_HOST, "old.example.test", STATE_FROM_DNS, 1400, 60,
			       &a, 1), 0);
	e = state_lookup(&st, STATE_HOST, "old.example.test");
	CHECK(e && !e->dropped && e->ndropped == 0 && e->naddrs == 1 && e->confirmed == 1400);
	fclose(mem);
	CHECK(out && strstr(out, "warning: host 'old.example.test' not confirmed for 200 s"));
	CHECK(out && strstr(out, "warning: host 'six.example.test' (AAAA) not confirmed"));
	CHECK(out && strstr(out, "list '/l.txt'"));
	free(out);
	state_free(&st);
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* state_encode()'s bytes of a state without URLs or feeds, rewritten as
 * an older fedwall wrote them (format 2 or 3: entries of 72 bytes, no
 * fetch fields), with their length and sum; *len updated. */
static unsigned char *downgrade(const unsigned char *b, size_t *len, unsigned version)
{
	unsigned char *out = xcalloc(1, *len);
	size_t in = 32, o = 32, n = 0;
	uint64_t v, sum;

	memcpy(out, b, 32);
	out[8] = (unsigned char)version;
	memcpy(&v, b + 16, 8);
	for (uint64_t i = 0; i < le64toh(v); i++) {
		uint32_t nlen, n4, n6;
		size_t rest;

		memcpy(&nlen, b + in + 4, 4);
		memcpy(&n4, b + in + 20, 4);
		memcpy(&n6, b + in + 24, 4);
		rest = pad8(le32toh(nlen)) + pad8((size_t)le32toh(n4) * 5 + (size_t)le32toh(n6) * 17);
		memcpy(out + o, b + in, 72);
		memcpy(out + o + 72, b + in + 96, rest);
		in += 96 + rest;
		o += 72 + rest;
	}
	n = o + 8;
	v = htole64(n);
	memcpy(out + 24, &v, 8);
	sum = htole64(sum64(out, n - 8));
	memcpy(out + n - 8, &sum, 8);
	*len = n;
	return out;
}

/* A format-3 file (fedwall before list URLs) loads as it was, and saves
 * as format 4. */
TEST(format3_loads)
{
	struct state a = { 0 }, b = { 0 };
	unsigned char *bytes, *old, *again;
	size_t len = 0, len3, len4 = 0;
	struct diag d;

	diag_init(&d, stderr);
	sample(&a);
	bytes = state_encode(&a, &len);
	len3 = len;
	old = bytes ? downgrade(bytes, &len3, 3) : NULL;
	CHECK(old && state_parse(&b, "v3", old, len3, &d));
	CHECK_INT(d.warnings, 0);
	CHECK_INT(b.n, a.n);
	again = state_encode(&b, &len4);
	CHECK(again && len4 == len && !memcmp(again, bytes, len));
	free(again);
	free(old);
	free(bytes);
	state_free(&a);
	state_free(&b);
}

/* A list URL's and a feed's fetch fields (validators, version, when
 * fetched, port groups) round-trip through the file; state_update()
 * clears them (new addresses: no validator vouches for them). */
TEST(fetch_fields_round_trip)
{
	struct prefix u[] = { P("192.0.2.0/25"), P("2001:db8:7::/48") };
	struct prefix f[] = { P("198.51.100.0/24"), P("198.51.100.0/24"), P("203.0.113.9") };
	struct portrange p0[] = { { PROTO_UDP, 3478, 3481 } };
	struct portrange p1[] = { { PROTO_TCP, 443, 443 }, { PROTO_TCP, 80, 80 } };
	struct portset groups[] = { { p0, 1 }, { p1, 2 } };
	uint32_t grp[] = { 1, 2 };
	struct state_fetch m = { 1700000500, "\"abc-123\"", "Mon, 07 Dec 2026 23:00:00 GMT",
				 NULL };
	struct state a = { 0 }, b = { 0 };
	const struct state_entry *e;
	struct diag d, quiet;

	fresh_dir();
	diag_init(&d, stderr);
	diag_init(&quiet, NULL);
	sample(&a);
	CHECK_INT(state_update(&a, STATE_URL, "https://lists.example.test/p.txt",
			       STATE_FROM_HTTPS, 1700000600, 0, u, 2), 0);
	CHECK(state_set_fetch(&a, STATE_URL, "https://lists.example.test/p.txt", &m));
	CHECK_INT(state_update(&a, STATE_FEED, "https://feed.example.test/e/Worldwide",
			       STATE_FROM_HTTPS, 1700000700, 0, f, 3), 0);
	m.version = "2026120700";
	m.etag = NULL;
	CHECK(state_set_fetch(&a, STATE_FEED, "https://feed.example.test/e/Worldwide", &m));
	CHECK(state_set_groups(&a, STATE_FEED, "https://feed.example.test/e/Worldwide",
			       groups, 2, grp, "11;12,13,22"));
	CHECK_INT(state_save(&a, path), 0);
	CHECK_INT(state_load(&b, path, &d), 0);
	CHECK_INT(d.warnings, 0);
	e = state_lookup(&b, STATE_URL, "https://lists.example.test/p.txt");
	CHECK(e && e->naddrs == 2 && e->fetched == 1700000500 && e->confirmed == 1700000600 &&
	      e->from == STATE_FROM_HTTPS && e->etag && !strcmp(e->etag, "\"abc-123\"") &&
	      e->last_modified && !strcmp(e->last_modified, "Mon, 07 Dec 2026 23:00:00 GMT") &&
	      !e->version && !e->ngroups);
	e = state_lookup(&b, STATE_FEED, "https://feed.example.test/e/Worldwide");
	CHECK(e && e->naddrs == 2 && !e->etag && e->version &&
	      !strcmp(e->version, "2026120700") && e->ngroups == 2 && e->grp &&
	      e->grp[0] == 1 && e->grp[1] == 2 && e->groups[1].n == 2 &&
	      e->groups[1].v[0].lo == 80 && e->groups[0].v[0].hi == 3481 &&
	      e->group_ids && !strcmp(e->group_ids, "11;12,13,22"));
	if (e) {
		char *id1 = state_group_id(e->group_ids, 1), *id2 = state_group_id(e->group_ids, 2);

		CHECK(id1 && !strcmp(id1, "11") && id2 && !strcmp(id2, "12,13,22") &&
		      !state_group_id(e->group_ids, 0) && !state_group_id(e->group_ids, 3));
		free(id1);
		free(id2);
	}
	/* New addresses: the validators no longer vouch for them. */
	CHECK_INT(state_update(&b, STATE_URL, "https://lists.example.test/p.txt",
			       STATE_FROM_HTTPS, 1700000900, 0, u, 1), 0);
	e = state_lookup(&b, STATE_URL, "https://lists.example.test/p.txt");
	CHECK(e && !e->etag && !e->last_modified && !e->fetched);
	/* Dropped (stale): no validator is kept to confirm what is gone. */
	CHECK_INT(state_expire(&b, 1700000700 + 90000, 86400, &quiet), 7);
	e = state_lookup(&b, STATE_FEED, "https://feed.example.test/e/Worldwide");
	CHECK(e && e->dropped && !e->version && !e->ngroups && e->fetched == 1700000500);
	state_free(&a);
	state_free(&b);
}

/* A format-2 file (one entry per name, as fedwall wrote until the
 * families were split) loads: each host and domain entry becomes its A
 * and its AAAA entry, each with its family's addresses, confirmed when
 * the name was; lists stay as they are.  Its next save is format 3. */
TEST(format2_loads_split)
{
	struct state_ident id = { 1, 2, 3, 4, 5 };
	struct state a = { 0 }, b = { 0 }, c = { 0 };
	const struct state_entry *e;
	unsigned char *bytes = NULL, *again;
	size_t len = 0, len2 = 0;
	char buf[PREFIX_STRLEN];
	uint64_t sum;
	struct diag d;

	diag_init(&d, stderr);
	sample(&a);
	state_remove(&a, STATE_HOST, "fam.example.test");       /* format 3's */
	CHECK(state_set_ident(&a, STATE_LIST, "/var/lib/fedwall/lists/a b.txt", &id));
	again = state_encode(&a, &len);
	CHECK(again != NULL);
	if (!again)
		goto out_free;
	/* Without family entries the layout is format 2's: only the
	 * version differs from format 3's. */
	bytes = downgrade(again, &len, 2);
	free(again);
	CHECK(state_parse(&b, "v2", bytes, len, &d));
	CHECK_INT(d.warnings, 0);
	CHECK_INT(b.n, 7);
	CHECK(state_lookup(&b, STATE_HOST, "partner1.example.test") == NULL);
	e = state_lookup_family(&b, STATE_HOST, "partner1.example.test", 4);
	CHECK(e && e->naddrs == 1 && e->confirmed == 1700000000 && e->ttl == 300 &&
	      e->from == STATE_FROM_DNS && !e->dropped);
	if (e && e->naddrs)
		CHECK_STR(prefix_fmt(&e->addrs[0], buf, sizeof(buf)), "198.51.100.7");
	e = state_lookup_family(&b, STATE_HOST, "partner1.example.test", 6);
	CHECK(e && e->naddrs == 1 && e->confirmed == 1700000000 && e->ttl == 300);
	if (e && e->naddrs)
		CHECK_STR(prefix_fmt(&e->addrs[0], buf, sizeof(buf)), "2001:db8:51::7");
	/* A family the name had no address of: confirmed empty then. */
	e = state_lookup_family(&b, STATE_DOMAIN, "_sipfederationtls._tcp.example.test", 6);
	CHECK(e && e->naddrs == 0 && e->confirmed == 1700000200 && e->from == STATE_FROM_DNSSEC);
	e = state_lookup_family(&b, STATE_DOMAIN, "_sipfederationtls._tcp.example.test", 4);
	CHECK(e && e->naddrs == 1);
	CHECK(state_lookup_family(&b, STATE_HOST, "empty.example.test", 4) &&
	      state_lookup_family(&b, STATE_HOST, "empty.example.test", 6));
	e = state_lookup(&b, STATE_LIST, "/var/lib/fedwall/lists/a b.txt");
	CHECK(e && e->naddrs == 2 && e->family == 0 && state_ident_same(e, &id));
	/* Saved again: format 3, and read back the same. */
	again = state_encode(&b, &len2);
	CHECK(again && again[8] == STATE_VERSION);
	CHECK(again && state_parse(&c, "v3", again, len2, &d) && c.n == 7);
	free(again);
	/* Format 2 has no family, flags or dropped count: a file with one is
	 * not what it wrote. */
	bytes[32 + 2] = 4;
	sum = htole64(sum64(bytes, len - 8));
	memcpy(bytes + len - 8, &sum, 8);
	diag_init(&d, NULL);
	CHECK(!state_parse(&c, "v2", bytes, len, &d));
	CHECK(c.discarded && c.n == 0 && d.warnings == 1);
out_free:
	free(bytes);
	state_free(&a);
	state_free(&b);
	state_free(&c);
}

/* Runs state_write on what is at `path` now; *msg gets what it printed. */
static int write_at(const struct state *st, char *msg, size_t n)
{
	FILE *mem = fmemopen(msg, n, "w");
	struct diag d;
	int ret;

	diag_init(&d, mem);
	ret = state_write(st, path, &d);
	fclose(mem);
	return ret;
}

/* What is not a regular file is refused unopened (a FIFO would block the
 * open forever), naming it; a symlink to a regular file is replaced
 * itself, its target untouched. */
TEST(write_refuses_what_is_not_a_file)
{
	struct state st = { 0 };
	char msg[512], target[160];
	struct stat sb;

	fresh_dir();
	sample(&st);
	CHECK_INT(mkfifo(path, 0600), 0);
	CHECK_INT(write_at(&st, msg, sizeof(msg)), -EPERM);
	CHECK(strstr(msg, "/state: refusing to write: a FIFO, not a regular file") != NULL);
	CHECK(lstat(path, &sb) == 0 && S_ISFIFO(sb.st_mode));
	unlink(path);
	CHECK_INT(symlink("/dev/null", path), 0);
	CHECK_INT(write_at(&st, msg, sizeof(msg)), -EPERM);
	CHECK(strstr(msg, "refusing to write: a symlink to a character device") != NULL);
	unlink(path);
	CHECK_INT(mkdir(path, 0700), 0);
	CHECK_INT(write_at(&st, msg, sizeof(msg)), -EPERM);
	CHECK(strstr(msg, "refusing to write: a directory") != NULL);
	rmdir(path);
	CHECK_INT(count_files(), 0);
	snprintf(target, sizeof(target), "%s/target", dir);
	CHECK_INT(close(open(target, O_WRONLY | O_CREAT, 0600)), 0);
	CHECK_INT(symlink(target, path), 0);
	CHECK_INT(write_at(&st, msg, sizeof(msg)), 0);
	CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode));
	CHECK(stat(target, &sb) == 0 && sb.st_size == 0);
	unlink(path);
	CHECK_INT(symlink("nowhere", path), 0);       /* dangling: replaced */
	CHECK_INT(write_at(&st, msg, sizeof(msg)), 0);
	CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode));
	state_free(&st);
}

/* The mark that the state is behind the table: made without opening
 * what is there, seen by state_load, gone with state_clear_behind. */
TEST(behind_mark)
{
	struct state st = { 0 };
	char mark[160];
	struct diag d;

	fresh_dir();
	diag_init(&d, NULL);
	sample(&st);
	CHECK_INT(state_save(&st, path), 0);
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(!st.behind);
	CHECK_INT(state_mark_behind(path), 0);
	CHECK_INT(state_mark_behind(path), 0);      /* already marked */
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(st.behind);
	CHECK(st.n > 0);                            /* its entries still read */
	state_clear_behind(path);
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(!st.behind);
	snprintf(mark, sizeof(mark), "%s%s", path, STATE_BEHIND_SUFFIX);
	CHECK_INT(mkfifo(mark, 0600), 0);           /* never opened: no block */
	CHECK_INT(state_mark_behind(path), 0);
	CHECK_INT(state_load(&st, path, &d), 0);
	CHECK(st.behind);
	state_clear_behind(path);
	CHECK_INT(state_mark_behind("/nonexistent-fedwall-dir/state"), -ENOENT);
	CHECK_INT(d.errors, 0);
	state_free(&st);
}
