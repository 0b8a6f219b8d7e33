/* flush.c - `fedwall flush`: delete fedwall's table, in one transaction,
 * and nothing else in the ruleset. */
#include "cli.h"
#include "nft/nft.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "[-f POLICY | --table NAME] [--state-dir DIR]"

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
	table = cli_table(&o, &d);
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
