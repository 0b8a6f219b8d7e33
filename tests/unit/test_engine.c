/* test_engine.c - the engine reached directly, not through the fedwall
 * binary: the live table's cache (engine_live_*) keeps a table only as
 * long as its key holds, is read around when damaged, and is dropped on
 * demand; refresh and apply compute the same inputs digest from the same
 * addresses; the refresh cycle creates the table, then stays quiet, and says
 * which partner moved; the record of the last refresh reads back what was
 * written and refuses a damaged or untrusted one; apply --confirm's
 * snapshot is the table before, and the rollback restores it (or deletes
 * a table that was not there).  The kernel tests run each in a network namespace of their own
 * (skipped when not root); the cache's file handling needs no root. */
#define _GNU_SOURCE
#include "../harness.h"
#include "fixture.h"

#include "engine/engine.h"
#include "generator/generator.h"
#include "generator/snapshot.h"
#include "nft/nft.h"
#include "refresh/refresh.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAD "version: 1\nedge:\n  addresses: [203.0.113.10, 2001:db8:10::10]\n" \
	"partners:\n  contoso:\n    services: [sip-federation]\n" \
	"    addresses: [198.51.100.0/26, 2001:db8:100::/48]\n"

static const char A[] = HEAD "  litware:\n    services: [sip-federation]\n"
	"    addresses: [192.0.2.200, 192.0.2.7]\n";
static const char B[] = HEAD "  litware:\n    services: [sip-federation]\n"
	"    addresses: [192.0.2.201, 192.0.2.7]\n";

struct tmpdir {
	char dir[32];
	char file[64];
};

static bool tmpdir_make(struct tmpdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/fwt-engine.XXXXXX");
	if (!mkdtemp(t->dir)) {
		CHECK(!"mkdtemp");
		return false;
	}
	snprintf(t->file, sizeof(t->file), "%s/%s", t->dir, LIVE_CACHE_FILE);
	return true;
}

static void tmpdir_remove(struct tmpdir *t)
{
	unlink(t->file);
	rmdir(t->dir);
}

static void zero_counters(struct ir_ruleset *rs)
{
	for (size_t i = 0; rs && i < rs->ncounters; i++)
		rs->counters[i].packets = rs->counters[i].bytes = 0;
}

/* Whether a and b are the same table, counters aside (they move). */
static bool same(struct ir_ruleset *a, struct ir_ruleset *b)
{
	struct strbuf x = { 0 }, y = { 0 };
	bool eq;

	zero_counters(a);
	zero_counters(b);
	if (!a || !b)
		return a == b;
	ir_encode(a, &x);
	ir_encode(b, &y);
	eq = x.len == y.len && !memcmp(x.s, y.s, x.len);
	sb_free(&x);
	sb_free(&y);
	return eq;
}

/* Commits `want` over what is live; the generation it left, or 0. */
static uint32_t commit(struct nft_ctx *ctx, const struct ir_ruleset *want)
{
	struct nft_commit_result cr = { 0 };
	struct ir_ruleset *live = NULL;
	struct ir_diff diff = { 0 };
	uint32_t g = 0;
	struct diag d;
	int ret = nft_read(ctx, want->table, &live, &g);

	diag_init(&d, stderr);
	CHECK(ret == 0 || ret == -ENOENT);
	ir_diff(live, want, &diff);
	CHECK_INT(nft_commit(ctx, live, want, &diff, g, &cr, &d), 0);
	ir_diff_free(&diff);
	ir_free(live);
	return cr.genid;
}

/* The table as read back now, and its generation. */
static struct ir_ruleset *readback(struct nft_ctx *ctx, const char *table, uint32_t *g)
{
	struct ir_ruleset *rs = NULL;

	CHECK_INT(nft_read(ctx, table, &rs, g), 0);
	return rs;
}

/* A network namespace of the test's own with `a` committed and cached
 * in a new directory t->dir; the table as read back (*back) and its
 * generation (*g).  NULL when skipped. */
static struct nft_ctx *cached(const char *test, const struct ir_ruleset *a, struct tmpdir *t,
			      const struct engine_cache *cc, struct ir_ruleset **back,
			      uint32_t *g, struct diag *d)
{
	struct nft_ctx *ctx;

	diag_init(d, stderr);
	if (!a || !fixture_netns(test) || nft_open(&ctx))
		return NULL;
	if (!tmpdir_make(t)) {
		nft_close(ctx);
		return NULL;
	}
	CHECK(commit(ctx, a) != 0);
	*back = readback(ctx, a->table, g);
	engine_live_put(ctx, cc, *back, *g, d);
	CHECK_INT(access(t->file, F_OK), 0);
	return ctx;
}

TEST(cache_holds_until_the_generation_moves)
{
	struct ir_ruleset *a = fixture_generate("engine.yaml", A);
	struct ir_ruleset *b = fixture_generate("engine.yaml", B), *back = NULL;
	struct engine_live got = { 0 };
	struct tmpdir t;
	struct engine_cache cc = { t.dir, false, 0x1234 }, other = cc;
	struct nft_ctx *ctx;
	struct diag d;
	uint32_t g = 0, g2 = 0;

	other.inputs = 0x4321;
	if (!b || !(ctx = cached(__func__, a, &t, &cc, &back, &g, &d)))
		goto out_free;
	CHECK(engine_live_unchanged(ctx, a->table, &cc, &g2));
	CHECK_INT(g2, g);
	CHECK(!engine_live_unchanged(ctx, a->table, &other, &g2));
	CHECK_INT(engine_live_get(ctx, a->table, &cc, false, &got, &d), 0);
	CHECK(got.cached && got.genid == g && same(got.rs, back));
	ir_free(got.rs);
	/* `fresh` reads back whatever the cache says */
	CHECK_INT(engine_live_get(ctx, a->table, &cc, true, &got, &d), 0);
	CHECK(!got.cached && same(got.rs, back));
	ir_free(got.rs);
	ir_free(back);
	/* a commit by anybody moves the generation: the cache is read around */
	CHECK(commit(ctx, b) == g + 1);
	CHECK(!engine_live_unchanged(ctx, a->table, &cc, &g2));
	CHECK_INT(engine_live_get(ctx, a->table, &cc, false, &got, &d), 0);
	back = readback(ctx, a->table, &g);
	CHECK(!got.cached && got.genid == g && same(got.rs, back));
	ir_free(got.rs);
	tmpdir_remove(&t);
	nft_close(ctx);
out_free:
	ir_free(back);
	ir_free(a);
	ir_free(b);
}

/* Flips one byte of the image, past the header line. */
static void damage(const char *path)
{
	int fd = open(path, O_RDWR);
	char c = 0;
	struct stat st;

	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 200);
	if (fd < 0)
		return;
	CHECK_INT(pread(fd, &c, 1, st.st_size - 40), 1);
	c ^= 0x20;
	CHECK_INT(pwrite(fd, &c, 1, st.st_size - 40), 1);
	close(fd);
}

TEST(damaged_cache_read_around)
{
	struct ir_ruleset *a = fixture_generate("engine.yaml", A), *back = NULL;
	struct engine_live got = { 0 };
	struct tmpdir t;
	struct engine_cache cc = { t.dir, false, 0 };
	struct nft_ctx *ctx;
	struct diag d;
	uint32_t g = 0;

	if (!(ctx = cached(__func__, a, &t, &cc, &back, &g, &d)))
		goto out_free;
	damage(t.file);
	CHECK_INT(engine_live_get(ctx, a->table, &cc, false, &got, &d), 0);
	CHECK(!got.cached && got.genid == g && same(got.rs, back));
	CHECK_INT(d.errors, 0);
	ir_free(got.rs);
	/* no table, no cache directory: nothing, and no error */
	cc.dir = NULL;
	CHECK_INT(engine_live_get(ctx, "fwt_none", &cc, false, &got, &d), 0);
	CHECK(got.rs == NULL && !got.cached);
	tmpdir_remove(&t);
	nft_close(ctx);
out_free:
	ir_free(back);
	ir_free(a);
}

TEST(drop_removes_the_file)
{
	struct tmpdir t;
	struct engine_cache cc = { NULL, false, 0 };
	struct diag d;
	int fd;

	if (!tmpdir_make(&t))
		return;
	diag_init(&d, stderr);
	fd = open(t.file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	engine_live_drop(&cc, "no directory: nothing", &d);
	CHECK_INT(access(t.file, F_OK), 0);
	cc.dir = t.dir;
	engine_live_drop(&cc, "the test says so", &d);
	CHECK(access(t.file, F_OK) < 0 && errno == ENOENT);
	CHECK_INT(d.errors, 0);
	tmpdir_remove(&t);
}

/* A want builder that hands out a ruleset built beforehand. */
struct given {
	const struct ir_ruleset *rs;
	unsigned calls;
};

static const struct ir_ruleset *given(void *arg, const struct ir_ruleset *live, struct diag *d)
{
	struct given *g = arg;

	(void)live;
	(void)d;
	g->calls++;
	return g->rs;
}

/* Applies g->rs with inputs `in`, from the cache in `dir`. */
static int apply(struct given *g, const char *dir, uint64_t in, struct engine_applied *res)
{
	struct engine_apply_opts o = { .want = given, .arg = g, .cache_dir = dir,
				       .inputs = &in };
	struct diag d;

	diag_init(&d, stderr);
	return engine_apply(g->rs ? g->rs->table : "fedwall", &o, res, &d);
}

TEST(apply_creates_changes_and_skips)
{
	struct ir_ruleset *a = fixture_generate("engine.yaml", A);
	struct ir_ruleset *b = fixture_generate("engine.yaml", B), *back = NULL;
	struct engine_live got = { 0 };
	struct given ga = { a, 0 }, gb = { b, 0 };
	struct engine_applied res;
	struct tmpdir t;
	struct engine_cache cc = { t.dir, false, 0 };
	struct nft_ctx *ctx;
	struct diag d;
	uint32_t g = 0;

	diag_init(&d, stderr);
	if (!a || !b || !fixture_netns(__func__) || nft_open(&ctx))
		goto out_free;
	if (!tmpdir_make(&t))
		goto out_close;
	CHECK_INT(apply(&ga, t.dir, 7, &res), 0);
	CHECK(res.changed && res.replaced && !res.unchanged && ga.calls == 1);
	/* the same inputs, nothing moved since: the builder is not called */
	CHECK_INT(apply(&ga, t.dir, 7, &res), 0);
	CHECK(res.unchanged && !res.changed && ga.calls == 1);
	/* other inputs, one address swapped: elements only */
	CHECK_INT(apply(&gb, t.dir, 8, &res), 0);
	CHECK(res.changed && !res.replaced && gb.calls == 1);
	CHECK(res.nadd > 0 && res.nadd == res.ndel);
	/* what the cache kept is what the kernel holds */
	CHECK_INT(engine_live_get(ctx, b->table, &cc, false, &got, &d), 0);
	back = readback(ctx, b->table, &g);
	CHECK(got.cached && got.genid == g && same(got.rs, back));
	ir_free(got.rs);
	tmpdir_remove(&t);
out_close:
	nft_close(ctx);
out_free:
	ir_free(back);
	ir_free(a);
	ir_free(b);
}

TEST(apply_refused_by_the_builder_commits_nothing)
{
	struct given none = { NULL, 0 };
	struct engine_applied res;
	struct ir_ruleset *back = NULL;
	struct nft_ctx *ctx;
	uint32_t g = 0;

	if (!fixture_netns(__func__) || nft_open(&ctx))
		return;
	CHECK_INT(apply(&none, NULL, 0, &res), -EINVAL);
	CHECK(!res.changed && none.calls == 1);
	CHECK_INT(nft_read(ctx, "fedwall", &back, &g), -ENOENT);
	ir_free(back);
	nft_close(ctx);
}

/* No root: the IR alone.  B's litware lists 192.0.2.7 in both
 * directions' maps: each partner gets its own, sorted, once. */
TEST(partner_addrs_by_jump_target)
{
	struct ir_ruleset *b = fixture_generate("engine.yaml", B);
	const struct policy *p = fixture_policies[fixture_npolicies - 1];
	struct addr_list got[2] = { 0 }, copy[2] = { 0 };
	char s[64];

	if (!b || p->npartners != 2)
		goto out_free;
	engine_partner_addrs(b, p, got);
	CHECK_STR(p->partners[0].name, "contoso");
	CHECK_INT(got[0].n, 2);
	CHECK_INT(got[1].n, 2);
	prefix_fmt(&got[1].v[0], s, sizeof(s));
	CHECK_STR(s, "192.0.2.7");
	prefix_fmt(&got[1].v[1], s, sizeof(s));
	CHECK_STR(s, "192.0.2.201");
	engine_addr_lists_copy(copy, got, 2);
	CHECK(copy[1].n == 2 && copy[1].v != got[1].v &&
	      !memcmp(copy[1].v, got[1].v, 2 * sizeof(*got[1].v)));
	for (size_t i = 0; i < 2; i++) {
		addr_list_free(&got[i]);
		addr_list_free(&copy[i]);
	}
out_free:
	ir_free(b);
}

/* ---- the refresh cycle (engine/refresh.c) -------------------------------- */

/* Removes directory `dir` and the files in it. */
static void dir_remove(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];

	while (dp && (e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (dp)
		closedir(dp);
	CHECK_INT(rmdir(dir), 0);
}

/* One cycle of policy p (inline addresses only: nothing is due); what it
 * printed goes to *printed (the caller frees). */
static int cycle(const struct policy *p, const char *dir, bool reloaded,
		 struct engine_refresh *r, char **printed)
{
	struct srcset s = { 0 };
	size_t len = 0;
	FILE *out = open_memstream(printed, &len);
	struct diag d;
	int ret;

	diag_init(&d, stderr);
	srcset_build(p, &s);
	*r = (struct engine_refresh){ .p = p, .src = &s, .state_dir = dir,
				      .reloaded = reloaded, .out = out };
	ret = engine_refresh_cycle(r, &d);
	if (out)
		fclose(out);
	srcset_free(&s);
	CHECK_INT(d.errors, 0);
	return ret;
}

TEST(refresh_cycle_creates_then_quiet)
{
	struct ir_ruleset *a = fixture_generate("engine.yaml", A);
	const struct policy *pa = fixture_policies[fixture_npolicies - 1];
	struct ir_ruleset *b = fixture_generate("engine.yaml", B);
	const struct policy *pb = fixture_policies[fixture_npolicies - 1];
	struct engine_refresh r;
	struct tmpdir t;
	char *out = NULL;

	if (!a || !b || !fixture_netns(__func__) || !tmpdir_make(&t))
		goto out_free;
	CHECK_INT(cycle(pa, t.dir, false, &r, &out), 0);
	CHECK(r.changed == 2 && !r.refused && !r.failed);
	CHECK(out && strstr(out, "fedwall: partner contoso: +2 -0 addresses (table created)\n"));
	CHECK(out && strstr(out, "fedwall: partner litware: +2 -0 addresses (table created)\n"));
	CHECK_INT(last_result_of(&r, 0), LAST_OK);
	free(out);
	out = NULL;
	/* nothing changed: quiet */
	CHECK_INT(cycle(pa, t.dir, false, &r, &out), 0);
	CHECK(r.changed == 0 && out && !*out);
	free(out);
	out = NULL;
	/* B moves litware from 192.0.2.200 to 192.0.2.201 */
	CHECK_INT(cycle(pb, t.dir, true, &r, &out), 0);
	CHECK_INT(r.changed, 1);
	CHECK_STR(out ? out : "", "fedwall: partner litware: +1 -1 addresses (reloaded the policy)\n");
	dir_remove(t.dir);
out_free:
	free(out);
	ir_free(a);
	ir_free(b);
}

/* ---- the inputs digest of refresh and of apply ----------------------------- */

static void lists_drop(struct addr_list *l, size_t n)
{
	for (size_t i = 0; l && i < n; i++)
		addr_list_free(&l[i]);
	free(l);
}

/* Refresh's way: the sources filled (the list due), then per partner. */
static uint64_t refresh_digest(const struct policy *p)
{
	struct src_opts o = { .now = 1700000000 };
	struct addr_list *prop;
	struct srcset s = { 0 };
	struct state st = { 0 };
	struct diag d;
	uint64_t h;

	diag_init(&d, stderr);
	srcset_build(p, &s);
	for (size_t i = 0; i < s.n; i++)
		s.v[i].due = true;
	CHECK(srcset_fill(p, &s, &st, &o, &d));
	prop = engine_proposed(p, &s, NULL);
	h = engine_inputs_digest(p, prop);
	lists_drop(prop, p->npartners);
	srcset_free(&s);
	return h;
}

/* Apply's way: sources_offline, as cli_want builds them. */
static uint64_t apply_digest(const struct policy *p)
{
	struct sources src = { 0 };
	struct addr_list *prop;
	struct diag d;
	uint64_t h;

	diag_init(&d, stderr);
	CHECK(sources_offline(p, NULL, &src, &d));
	prop = engine_proposed(p, NULL, src.partners);
	h = engine_inputs_digest(p, prop);
	lists_drop(prop, p->npartners);
	sources_free(&src);
	return h;
}

static bool write_list(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return false;
	fputs(text, f);
	return fclose(f) == 0;
}

TEST(inputs_digest_of_refresh_and_apply_agree)
{
	struct tmpdir t;
	char list[96], yaml[512];
	struct policy *p = NULL;
	struct diag d;
	uint64_t r1, a1;

	if (!tmpdir_make(&t))
		return;
	snprintf(list, sizeof(list), "%s/l.txt", t.dir);
	snprintf(yaml, sizeof(yaml), HEAD "  listed:\n    services: [sip-federation]\n"
		 "    addresses: [192.0.2.7]\n    lists: [%s]\n", list);
	diag_init(&d, stderr);
	p = policy_parse("engine.yaml", yaml, strlen(yaml), &d);
	CHECK(p != NULL);
	if (!p || !write_list(list, "192.0.2.10\n2001:db8:77::/64\n198.51.100.64/28\n"))
		goto out_free;
	r1 = refresh_digest(p);
	a1 = apply_digest(p);
	CHECK(r1 != 0 && r1 == a1);
	/* one address of the list differs: another digest, on both sides */
	if (!write_list(list, "192.0.2.11\n2001:db8:77::/64\n198.51.100.64/28\n"))
		goto out_free;
	CHECK(refresh_digest(p) != r1);
	CHECK(apply_digest(p) != a1);
	CHECK(refresh_digest(p) == apply_digest(p));
out_free:
	unlink(list);
	tmpdir_remove(&t);
	policy_free(p);
}

/* ---- the record of the last refresh (engine/record.c) -------------------- */

TEST(last_result_of_a_cycle)
{
	struct engine_refresh r = { 0 };

	CHECK_INT(last_result_of(&r, 0), LAST_OK);
	CHECK_INT(last_result_of(&r, -EIO), LAST_FAILED);
	CHECK_INT(last_result_of(&r, 1), LAST_FAILED);
	r.refused = 1;
	CHECK_INT(last_result_of(&r, 0), LAST_REFUSED);
	r.failed = 1;
	CHECK_INT(last_result_of(&r, 0), LAST_FAILED);
}

/* No root: a directory made for the record, the record read back, none. */
TEST(last_refresh_round_trip)
{
	struct last_refresh w = { 1700000000, LAST_REFUSED, 3 }, l = { 0 };
	struct tmpdir t;
	struct diag d;
	char sub[64], path[96];
	struct stat st;

	if (!tmpdir_make(&t))
		return;
	diag_init(&d, stderr);
	snprintf(sub, sizeof(sub), "%s/state", t.dir);
	snprintf(path, sizeof(path), "%s/%s", sub, LAST_REFRESH_FILE);
	CHECK_INT(last_refresh_read(t.dir, &l, &d), -ENOENT);
	CHECK(d.errors == 0 && d.warnings == 0);
	CHECK_INT(last_refresh_write(sub, &w, &d), 0);
	CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK_INT(last_refresh_read(sub, &l, &d), 0);
	CHECK(l.time == w.time && l.result == LAST_REFUSED && l.changed == 3);
	w = (struct last_refresh){ 1700000060, LAST_OK, 0 };
	CHECK_INT(last_refresh_write(sub, &w, &d), 0);
	CHECK_INT(last_refresh_read(sub, &l, &d), 0);
	CHECK(l.time == w.time && l.result == LAST_OK && l.changed == 0);
	CHECK(d.errors == 0 && d.warnings == 0);
	dir_remove(sub);
	rmdir(t.dir);
}

/* Writes `body` to dir's record with mode `mode`. */
static void record_put(const char *dir, const char *body, mode_t mode)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, LAST_REFRESH_FILE);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_INT(write(fd, body, strlen(body)), (long)strlen(body));
	CHECK_INT(fchmod(fd, mode), 0);
	close(fd);
}

/* A damaged record is a warning and ignored; one others may write, an
 * error. */
TEST(last_refresh_damaged_or_untrusted)
{
	static const char *const bad[] = { "", "12 ok\n", "12 maybe 1\n", "-1 ok 1\n",
					   "12 ok 1\nextra\n", "ok 12 1\n" };
	struct last_refresh l = { 0 };
	struct tmpdir t;
	struct diag d;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	if (!tmpdir_make(&t))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		diag_init(&d, NULL);
		record_put(t.dir, bad[i], 0600);
		CHECK_INT(last_refresh_read(t.dir, &l, &d), -EINVAL);
		CHECK(d.errors == 0 && d.warnings == 1);
	}
	mem = open_memstream(&buf, &len);
	diag_init(&d, mem);
	record_put(t.dir, "12 maybe 1\n", 0600);
	CHECK_INT(last_refresh_read(t.dir, &l, &d), -EINVAL);
	if (mem)
		fclose(mem);
	CHECK(buf && strstr(buf, "last-refresh: ignored: not a last-refresh record"));
	free(buf);
	diag_init(&d, NULL);
	record_put(t.dir, "12 ok 1\n", 0666);
	CHECK_INT(last_refresh_read(t.dir, &l, &d), -EPERM);
	CHECK_INT(d.errors, 1);
	dir_remove(t.dir);
}

/* ---- the rollback (engine/rollback.c) ------------------------------------- */

/* Applies s->want through the snapshot builder, without a cache. */
static int apply_snap(struct engine_snapshot *s)
{
	struct engine_apply_opts o = { .want = engine_snapshot_want, .arg = s };
	struct engine_applied res;
	struct diag d;

	diag_init(&d, stderr);
	return engine_apply(s->want->table, &o, &res, &d);
}

TEST(rollback_to_the_snapshot)
{
	struct ir_ruleset *a = fixture_generate("engine.yaml", A);
	struct ir_ruleset *b = fixture_generate("engine.yaml", B), *back = NULL, *now = NULL;
	struct engine_snapshot sa = { a, NULL, false }, sb = { b, NULL, false };
	struct nft_ctx *ctx = NULL;
	struct diag d;
	uint32_t g = 0;

	if (!a || !b || !fixture_netns(__func__) || nft_open(&ctx))
		goto out_free;
	diag_init(&d, stderr);
	CHECK_INT(apply_snap(&sa), 0);
	CHECK(sa.prev == NULL && !sa.foreign);  /* no table before */
	back = readback(ctx, a->table, &g);
	CHECK_INT(apply_snap(&sb), 0);
	CHECK(sb.prev && !sb.foreign && same(sb.prev, back));
	/* B is live: back to A */
	CHECK_INT(engine_rollback(a->table, sb.prev, NULL, &d), 0);
	now = readback(ctx, a->table, &g);
	CHECK(same(now, back));
	/* again: nothing differs, nothing to do */
	CHECK_INT(engine_rollback(a->table, sb.prev, NULL, &d), 0);
	/* to "no table": deleted, then nothing to delete */
	CHECK_INT(engine_rollback(a->table, sa.prev, NULL, &d), 0);
	ir_free(now);
	now = NULL;
	CHECK_INT(nft_read(ctx, a->table, &now, &g), -ENOENT);
	CHECK_INT(engine_rollback(a->table, NULL, NULL, &d), 0);
	CHECK_INT(d.errors, 0);
out_free:
	if (ctx)
		nft_close(ctx);
	ir_free(now);
	ir_free(back);
	ir_free(sb.prev);
	ir_free(a);
	ir_free(b);
}

/* ---- the daemon's schedule (engine/schedule.c) ---------------------------- */

static double jitter_none(void)
{
	return 0.5;     /* sched_delay_ms: the middle of the jitter, no change */
}

static double jitter_least(void)
{
	return 0.0;     /* SCHED_JITTER_PCT earlier */
}

/* A policy with one host name and one list file `list` (ttl_min 30 s). */
static struct policy *sched_policy(const char *list)
{
	char yaml[512];
	struct diag d;
	struct policy *p;

	snprintf(yaml, sizeof(yaml), "version: 1\nedge:\n  addresses: [203.0.113.10]\n"
		 "resolve: {ttl_min: 30s, ttl_max: 1h}\npartners:\n  contoso:\n"
		 "    services: [sip-federation]\n    hosts: [sip.contoso.example]\n"
		 "    lists: [%s]\n", list);
	diag_init(&d, stderr);
	p = policy_parse("sched.yaml", yaml, strlen(yaml), &d);
	CHECK(p != NULL);
	return p;
}

static size_t src_of(const struct engine_sched *s, enum state_kind kind)
{
	for (size_t i = 0; i < s->src->n; i++)
		if (s->src->v[i].kind == kind)
			return i;
	CHECK(!"no such source");
	return 0;
}

TEST(schedule_start_ttl_jitter_and_backoff)
{
	struct engine_sched s = { .rnd = jitter_none };
	const uint64_t t0 = 1000000;
	struct tmpdir t = { "", "" };
	struct policy *p = NULL;
	struct stat sb;
	size_t h, l;

	if (!tmpdir_make(&t) || !write_list(t.file, "192.0.2.1\n") || stat(t.file, &sb) ||
	    !(p = sched_policy(t.file)))
		goto out_free;
	/* The start: lists at once, names just after (the state protects). */
	engine_sched_init(&s, p, false, t0);
	h = src_of(&s, STATE_HOST);
	l = src_of(&s, STATE_LIST);
	s.src->v[l].mtime = (int64_t)sb.st_mtime;       /* as the cycle read it */
	CHECK(s.src->v[l].due && !s.src->v[h].due);
	CHECK_INT(engine_sched_wait_ms(&s, t0), 0);
	CHECK(engine_sched_due(&s, t0));
	CHECK(s.src->v[l].due && !s.src->v[h].due);
	engine_sched_done(&s, t0);
	CHECK(!s.src->v[l].due);
	CHECK_INT(s.due[l], t0 + ENGINE_LIST_PERIOD_MS);
	CHECK_INT(s.next_check, t0 + 30000);            /* resolve.ttl_min */
	/* After the start's cycle every name is asked. */
	engine_sched_names_now(&s, t0);
	CHECK(engine_sched_due(&s, t0 + 10));
	CHECK(s.src->v[h].due && !s.src->v[l].due);
	/* A failed name (both families: h + 1 is its AAAA source): again
	 * at ttl_min. */
	s.src->v[h].status = s.src->v[h + 1].status = SRC_KEPT;
	engine_sched_done(&s, t0 + 10);
	CHECK_INT(s.due[h], t0 + 10 + 30000);
	/* Nothing due before the lists' mtime look (every 2 s). */
	CHECK(!engine_sched_due(&s, t0 + 20));
	CHECK_INT(engine_sched_wait_ms(&s, t0 + 20), ENGINE_LIST_STAT_MS - 20);
	/* A fresh answer: at its TTL, jittered, clamped to ttl_max. */
	CHECK(engine_sched_due(&s, t0 + 30010));
	CHECK(s.src->v[h].due && !s.src->v[l].due);      /* the list is as read */
	s.src->v[h].status = s.src->v[h + 1].status = SRC_FRESH;
	s.src->v[h].ttl = s.src->v[h + 1].ttl = 120;
	engine_sched_done(&s, t0 + 30010);
	CHECK_INT(s.due[h], t0 + 30010 + 120000);
	s.src->v[h].due = true;
	s.rnd = jitter_least;
	engine_sched_done(&s, t0 + 30010);
	CHECK_INT(s.due[h], t0 + 30010 + 108000);
	s.src->v[h].due = true;
	s.src->v[h].ttl = 7200;
	s.rnd = jitter_none;
	engine_sched_done(&s, t0 + 30010);
	CHECK_INT(s.due[h], t0 + 30010 + 3600000);
	/* A list whose mtime changed is due at the next look, not before. */
	s.src->v[l].mtime = 1;
	CHECK(!engine_sched_due(&s, s.next_stat - 1));
	CHECK(engine_sched_due(&s, s.next_stat));
	CHECK(s.src->v[l].due && !s.src->v[h].due);
	/* The lock was busy: what was due, and the check, after 5 s. */
	engine_sched_busy(&s, t0 + 40000);
	CHECK_INT(s.due[l], t0 + 40000 + ENGINE_LOCK_RETRY_MS);
	CHECK_INT(s.due[h], t0 + 30010 + 3600000);
	CHECK_INT(s.next_check, t0 + 40000 + ENGINE_LOCK_RETRY_MS);
	/* Nothing due at all: the table is still compared every ttl_min. */
	engine_sched_done(&s, t0 + 40000);
	s.src->v[l].mtime = (int64_t)sb.st_mtime;
	CHECK(!engine_sched_due(&s, t0 + 40000 + 29999));
	CHECK(engine_sched_due(&s, t0 + 40000 + 30000));
	CHECK(!s.src->v[l].due && !s.src->v[h].due);
out_free:
	engine_sched_free(&s);
	policy_free(p);
	unlink(t.file);
	rmdir(t.dir);
}

/* The digest status shows: the same for the same policy wherever its
 * file lies (comments name the path), whatever order the objects are
 * listed in; another address, another digest. */
TEST(ruleset_digest_is_what_is_admitted)
{
	static const char ha[] = "ha: {peers: [192.0.2.1, 192.0.2.2], vrrp: true}\n";
	struct strbuf sa = { 0 }, sbb = { 0 };
	const char *pa, *pb;
	struct ir_ruleset *a, *a2, *b, *d;
	struct ir_set tmp;

	sb_addf(&sa, "%s%s", A, ha);
	sb_addf(&sbb, "%s%s", B, ha);
	pa = sb_str(&sa);
	pb = sb_str(&sbb);
	a = fixture_generate("/etc/fedwall/policy.yaml", pa);
	a2 = fixture_generate("/srv/node2/edge.yaml", pa);
	b = fixture_generate("/etc/fedwall/policy.yaml", pb);
	if (!a || !a2 || !b)
		goto out_free;
	d = ir_dup(a);
	tmp = d->sets[0];
	d->sets[0] = d->sets[d->nsets - 1];
	d->sets[d->nsets - 1] = tmp;
	d->counters[0].packets = 7;
	CHECK(engine_ruleset_digest(a) != 0);
	CHECK(engine_ruleset_digest(a) == engine_ruleset_digest(a2));
	CHECK(engine_ruleset_digest(a) == engine_ruleset_digest(d));
	CHECK(engine_ruleset_digest(a) != engine_ruleset_digest(b));
	ir_free(d);
out_free:
	ir_free(a);
	ir_free(a2);
	ir_free(b);
	sb_free(&sa);
	sb_free(&sbb);
}
