/* test_livecache.c - what the live table's cache (engine/cache.c)
 * relies on in nft/, not the cache itself (test_engine.c reaches that),
 * against the real kernel, each test in a network namespace of its own
 * (skipped when not root): a commit checked against generation G leaves
 * the ruleset at G + 1 exactly (the result's genid), an element-only commit
 * leaves what ir_take_elems() says (image for image with a read-back,
 * rule handles included), namespaces have distinct cookies, the
 * counters can be read alone, and after a commit that created the table
 * or swapped sets in, its shape read alone (nft_read_shape) with the
 * committed elements is what a read-back gives. */
#define _GNU_SOURCE
#include "../harness.h"
#include "fixture.h"

#include "generator/generator.h"
#include "generator/snapshot.h"
#include "nft/kernel-int.h"     /* ctx->force: a swap on demand */
#include "nft/nft.h"
#include "policy/policy.h"

#include <errno.h>
#include <sched.h>
#include <unistd.h>

#define HEAD "version: 1\nedge:\n  addresses: [203.0.113.10, 2001:db8:10::10]\n" \
	"partners:\n  contoso:\n    services: [sip-federation, av-edge]\n" \
	"    addresses: [198.51.100.0/26, 2001:db8:100::/48]\n" \
	"  litware:\n    services: [sip-federation]\n    direction: inbound\n"

static const char A[] = HEAD "    addresses: [192.0.2.200, 192.0.2.7]\n";
static const char B[] = HEAD "    addresses: [192.0.2.201, 192.0.2.7, 2001:db8:200::1]\n";

static struct ir_ruleset *generated(const char *yaml)
{
	return fixture_generate("livecache.yaml", yaml);
}

static uint32_t gen_now(struct nft_ctx *ctx)
{
	uint32_t g = 0;

	CHECK_INT(nft_genid(ctx, &g), 0);
	return g;
}

/* Creates table `a` in the test's namespace (one commit); what the commit
 * did in *cr. */
static void create(struct nft_ctx *ctx, const struct ir_ruleset *a,
		   struct nft_commit_result *cr, struct diag *d)
{
	struct ir_diff diff = { 0 };

	ir_diff(NULL, a, &diff);
	CHECK_INT(nft_commit(ctx, NULL, a, &diff, gen_now(ctx), cr, d), 0);
	ir_diff_free(&diff);
}

/* The image of rs with its counters at zero (they move by themselves). */
static void image(struct ir_ruleset *rs, struct strbuf *out)
{
	for (size_t i = 0; i < rs->ncounters; i++)
		rs->counters[i].packets = rs->counters[i].bytes = 0;
	ir_encode(rs, out);
}

TEST(commit_moves_the_generation_by_one)
{
	struct ir_ruleset *a = generated(A), *b = generated(B), *live = NULL, *back = NULL;
	struct strbuf mine = { 0 }, kernel = { 0 };
	struct nft_commit_result cr;
	struct ir_diff diff = { 0 };
	struct nft_ctx *ctx;
	struct diag d;
	uint32_t g, g2;

	if (!a || !b || !fixture_netns(__func__) || nft_open(&ctx))
		goto out_free;
	diag_init(&d, stderr);
	g = gen_now(ctx);
	ir_diff(NULL, a, &diff);
	CHECK_INT(nft_commit(ctx, NULL, a, &diff, g, &cr, &d), 0);
	ir_diff_free(&diff);
	CHECK_INT(cr.genid, g + 1);
	CHECK_INT(gen_now(ctx), g + 1);
	/* element-only: 192.0.2.200 goes, 192.0.2.201 and 2001:db8:200::1 come */
	CHECK_INT(nft_read(ctx, a->table, &live, &g), 0);
	ir_diff(live, b, &diff);
	CHECK(!diff.structural && diff.nsets > 0);
	CHECK_INT(nft_commit(ctx, live, b, &diff, g, &cr, &d), 0);
	CHECK(!cr.replaced && cr.swapped == 0);
	CHECK_INT(cr.genid, g + 1);
	CHECK(ir_take_elems(live, b, &diff));
	CHECK_INT(nft_read(ctx, a->table, &back, &g2), 0);
	CHECK_INT(g2, g + 1);
	image(live, &mine);
	if (back)
		image(back, &kernel);
	CHECK(mine.len == kernel.len && mine.len && !memcmp(mine.s, kernel.s, mine.len));
	nft_close(ctx);
out_free:
	ir_diff_free(&diff);
	sb_free(&mine);
	sb_free(&kernel);
	ir_free(live);
	ir_free(back);
	ir_free(a);
	ir_free(b);
}

TEST(stale_generation_refused_and_unknown)
{
	struct ir_ruleset *a = generated(A), *b = generated(B), *live = NULL;
	struct nft_commit_result cr;
	struct ir_diff diff = { 0 };
	struct nft_ctx *ctx;
	struct diag d;
	uint32_t g;

	if (!a || !b || !fixture_netns(__func__) || nft_open(&ctx))
		goto out_free;
	diag_init(&d, NULL);
	create(ctx, a, &cr, &d);
	CHECK(cr.genid != 0);
	CHECK_INT(nft_read(ctx, a->table, &live, &g), 0);
	ir_diff(live, b, &diff);
	/* `cr` still holds the first commit's: the refused one zeroes it */
	CHECK_INT(nft_commit(ctx, live, b, &diff, g - 1, &cr, &d), -ERESTART);
	CHECK_INT(cr.genid, 0);
	CHECK_INT(gen_now(ctx), g);
	nft_close(ctx);
out_free:
	ir_diff_free(&diff);
	ir_free(live);
	ir_free(a);
	ir_free(b);
}

TEST(namespaces_have_their_own_cookie)
{
	struct nft_ctx *one, *two;
	uint64_t c1 = 0, c2 = 0;

	if (!fixture_netns(__func__) || nft_open(&one))
		return;
	if (nft_netns_cookie(one, &c1) == -ENOPROTOOPT) {
		fprintf(stderr, "skip: %s: no SO_NETNS_COOKIE (Linux < 5.14)\n", __func__);
		nft_close(one);
		return;
	}
	CHECK(c1 != 0);
	if (fixture_netns(__func__) && !nft_open(&two)) {
		CHECK_INT(nft_netns_cookie(two, &c2), 0);
		CHECK(c2 != 0 && c2 != c1);
		nft_close(two);
	}
	nft_close(one);
}

TEST(counters_read_alone)
{
	struct ir_ruleset *a = generated(A), *copy = NULL;
	struct nft_commit_result cr;
	struct strbuf img = { 0 };
	struct nft_ctx *ctx;
	const char *why;
	struct diag d;

	if (!a || !fixture_netns(__func__) || nft_open(&ctx))
		goto out_free;
	diag_init(&d, stderr);
	create(ctx, a, &cr, &d);
	CHECK(a->ncounters > 0);
	ir_encode(a, &img);
	copy = ir_decode(img.s, img.len, &why);
	CHECK(copy != NULL);
	for (size_t i = 0; copy && i < copy->ncounters; i++)
		copy->counters[i].packets = copy->counters[i].bytes = 77;
	if (copy) {
		CHECK_INT(nft_read_counters(ctx, copy), 0);
		for (size_t i = 0; i < copy->ncounters; i++)
			CHECK(copy->counters[i].packets == 0 && copy->counters[i].bytes == 0);
		free(copy->counters[0].name);
		copy->counters[0].name = xstrdup("not_there");
		CHECK_INT(nft_read_counters(ctx, copy), -ESRCH);
	}
	nft_close(ctx);
out_free:
	sb_free(&img);
	ir_free(copy);
	ir_free(a);
}

/* What a commit that created, replaced or swapped left, from its shape
 * alone (nft_read_shape: no element read) and the committed IR's
 * elements, the way engine/apply.c caches it: image for image what a full
 * read-back gives, at the generation the commit left (`at`). */
static void shape_is_readback(struct nft_ctx *ctx, const struct ir_ruleset *want, uint32_t at)
{
	struct ir_ruleset *shape = NULL, *back = NULL;
	struct strbuf mine = { 0 }, kernel = { 0 };
	struct ir_diff diff = { 0 };
	uint32_t g = 0, g2 = 0;

	CHECK_INT(nft_read_shape(ctx, want->table, &shape, &g), 0);
	CHECK_INT(g, at);
	CHECK(nft_foreign(ctx) == NULL);
	for (size_t i = 0; shape && i < shape->nsets; i++)
		CHECK_INT(shape->sets[i].nelems, 0);
	if (shape) {
		ir_diff(shape, want, &diff);
		CHECK(!diff.structural && diff.nsets > 0);
		CHECK(ir_take_elems(shape, want, &diff));
		image(shape, &mine);
	}
	CHECK_INT(nft_read(ctx, want->table, &back, &g2), 0);
	CHECK_INT(g2, g);
	if (back)
		image(back, &kernel);
	CHECK(mine.len == kernel.len && mine.len && !memcmp(mine.s, kernel.s, mine.len));
	ir_diff_free(&diff);
	sb_free(&mine);
	sb_free(&kernel);
	ir_free(shape);
	ir_free(back);
}

TEST(shape_after_create_and_swap)
{
	struct ir_ruleset *a = generated(A), *b = generated(B), *live = NULL;
	struct nft_commit_result cr;
	struct ir_diff diff = { 0 };
	struct nft_ctx *ctx;
	struct diag d;
	uint32_t g;

	if (!a || !b || !fixture_netns(__func__) || nft_open(&ctx))
		goto out_free;
	diag_init(&d, stderr);
	create(ctx, a, &cr, &d);
	CHECK(cr.replaced);
	shape_is_readback(ctx, a, cr.genid);
	/* rebuilt sets come back last, their rules with new handles */
	CHECK_INT(nft_read(ctx, a->table, &live, &g), 0);
	ir_diff(live, b, &diff);
	ctx->force = NFT_PATH_SWAP;
	CHECK_INT(nft_commit(ctx, live, b, &diff, g, &cr, &d), 0);
	ctx->force = NFT_PATH_AUTO;
	CHECK(!cr.replaced && cr.swapped > 0);
	shape_is_readback(ctx, b, cr.genid);
	nft_close(ctx);
out_free:
	ir_diff_free(&diff);
	ir_free(live);
	ir_free(a);
	ir_free(b);
}

TEST(shape_reads_no_table)
{
	struct ir_ruleset *rs = (void *)1;
	struct nft_ctx *ctx;
	uint32_t g = 0;

	if (!fixture_netns(__func__) || nft_open(&ctx))
		return;
	CHECK_INT(nft_read_shape(ctx, "fedwall", &rs, &g), -ENOENT);
	CHECK(rs == NULL && g == gen_now(ctx));
	nft_close(ctx);
}
