/* apply.c - `fedwall apply`: make the kernel hold what the policy says,
 * in one transaction: element adds/deletes when only addresses changed
 * (counters survive), a replacement of the table otherwise.  Retries when
 * someone else changed the ruleset between our read and our commit. */
#include "cli.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"

#include <errno.h>
#include <string.h>

#define USAGE "[-f POLICY] [--state-dir DIR] [-v]"
#define TRIES 3

static size_t total_elems(const struct ir_ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nsets; i++)
		n += rs->sets[i].nelems;
	return n;
}

static void summary(const struct ir_ruleset *live, const struct ir_ruleset *want,
		    const struct ir_diff *diff, bool replaced)
{
	size_t add = 0, del = 0;

	if (replaced) {
		printf("fedwall: table inet %s: %s (%s): %zu chains, %zu sets, %zu elements,"
		       " %zu counters\n", want->table, live ? "replaced" : "created",
		       diff->structural && diff->why ? diff->why
		       : "element deletions cost more than a rebuild", want->nchains,
		       want->nsets, total_elems(want), want->ncounters);
		return;
	}
	for (size_t i = 0; i < diff->nsets; i++) {
		add += diff->sets[i].nadd;
		del += diff->sets[i].ndel;
	}
	printf("fedwall: table inet %s: %zu element%s added, %zu removed\n", want->table,
	       add, add == 1 ? "" : "s", del);
}

/* One read-diff-commit round.  -ERESTART: the ruleset moved, try again. */
static int apply_once(struct nft_ctx *ctx, const struct ir_ruleset *want, bool verbose,
		      struct diag *d)
{
	struct ir_ruleset *live = NULL;
	struct ir_diff diff = { 0 };
	uint32_t genid = 0;
	int ret;

	ret = cli_read_diff(ctx, want->table, want, &live, &genid, &diff, d);
	if (ret)
		return ret;
	if (ir_diff_empty(&diff)) {
		printf("fedwall: table inet %s: no changes\n", want->table);
		goto out_free;
	}
	if (verbose && diff.structural)
		diag_note(d, NULL, "replacing table inet %s: %s", want->table, diff.why);
	ret = nft_commit(ctx, live, want, &diff, genid, d);
	if (!ret)
		summary(live, want, &diff, nft_commit_replaced(ctx));
out_free:
	ir_diff_free(&diff);
	ir_free(live);
	return ret;
}

static int run(const struct common_opts *o, const struct ir_ruleset *want, struct diag *d)
{
	struct nft_ctx *ctx;
	int ret = nft_open(&ctx);

	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
		return ret;
	}
	for (int i = 0; i < TRIES; i++) {
		ret = apply_once(ctx, want, o->verbose, d);
		if (ret != -ERESTART)
			break;
		if (o->verbose)
			diag_note(d, NULL, "the ruleset changed since it was read; reading again");
	}
	if (ret == -ERESTART)
		diag_error(d, NULL, "the ruleset kept changing under fedwall; gave up after"
			   " %d tries, nothing applied", TRIES);
	else if (ret && !d->errors)
		diag_error(d, NULL, "apply failed: %s", strerror(-ret));
	else if (ret)
		diag_note(d, NULL, "nothing was applied: table inet %s is as it was", want->table);
	nft_close(ctx);
	return ret;
}

int apply_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct ir_ruleset *want;
	struct policy *p;
	struct diag d;
	int i = common_parse(argc, argv, "fv", USAGE, &o), rc = EXIT_ERROR;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	want = cli_want(&o, &p, &d);
	if (want && !run(&o, want, &d))
		rc = EXIT_OK;
	ir_free(want);
	policy_free(p);
	return rc;
}
