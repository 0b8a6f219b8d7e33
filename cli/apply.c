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

#define USAGE "[-f POLICY] [--state-dir DIR] [--resolve] [-v]"

static const struct ir_ruleset *fixed(void *arg, const struct ir_ruleset *live,
				      struct diag *d)
{
	(void)live;
	(void)d;
	return arg;
}

int apply_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct ir_ruleset *want;
	struct policy *p;
	struct diag d;
	int i = common_parse(argc, argv, "fvr", USAGE, &o), rc = EXIT_ERROR;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	want = cli_want(&o, &p, &d);
	if (want) {
		struct cli_apply_opts ao = { .verbose = o.verbose, .out = stdout };
		struct cli_applied res;

		if (!cli_apply(want->table, fixed, want, &ao, &res, &d))
			rc = EXIT_OK;
	}
	ir_free(want);
	policy_free(p);
	return rc;
}
