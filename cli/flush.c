/* flush.c - `fedwall flush`: delete fedwall's table, in one transaction,
 * and nothing else in the ruleset. */
#include "cli.h"
#include "nft/nft.h"
#include "policy/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "[-f POLICY | --table NAME] [--state-dir DIR]"

/* The table to work on: --table, else the policy's.  NULL after
 * reporting; the caller frees. */
static char *table_of(const struct common_opts *o, struct diag *d)
{
	struct policy *p;
	char *t;

	if (o->table)
		return xstrdup(o->table);
	p = policy_load(o->policy, d);
	if (!p)
		return NULL;
	t = xstrdup(p->table);
	policy_free(p);
	return t;
}

int flush_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct nft_ctx *ctx;
	struct diag d;
	char *table;
	int i = common_parse(argc, argv, "fvt", USAGE, &o), ret, rc = EXIT_ERROR;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	table = table_of(&o, &d);
	if (!table)
		return EXIT_ERROR;
	ret = nft_open(&ctx);
	if (ret) {
		diag_error(&d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
		goto out_free_table;
	}
	ret = nft_delete_table(ctx, table, &d);
	if (!ret) {
		printf("fedwall: table inet %s deleted\n", table);
		rc = EXIT_OK;
	} else if (ret == -ENOENT) {
		printf("fedwall: table inet %s is not loaded: nothing to flush\n", table);
		rc = EXIT_OK;
	}
	nft_close(ctx);
out_free_table:
	free(table);
	return rc;
}
