/* plan.c - what an apply would change: the live table read back (never
 * the cache: plan shows the kernel's truth), its diff against what is
 * wanted, and whether the kernel would get element changes or a rebuild.
 * Changes nothing.
 */
#include "engine/engine.h"
#include "generator/generator.h"
#include "nft/nft.h"

#include <errno.h>
#include <string.h>

static int read_diff(struct nft_ctx *ctx, struct engine_plan *pl, struct diag *d)
{
	const char *table = pl->want->table;
	uint32_t genid;
	int ret = nft_read(ctx, table, &pl->live, &genid);

	if (ret == -ENOENT) {
		pl->live = NULL;
		ret = 0;
	}
	if (ret) {
		diag_error(d, NULL, "cannot read table inet %s from the kernel: %s", table,
			   strerror(-ret));
		return ret;
	}
	engine_diff(ctx, pl->live, pl->want, &pl->diff);
	pl->rebuild = pl->live && !pl->diff.structural &&
		      nft_delta_too_dear(pl->live, pl->want, &pl->diff);
	return 0;
}

int engine_plan(struct engine_plan *pl, struct diag *d)
{
	struct nft_ctx *ctx;
	int ret = nft_open(&ctx);

	pl->live = NULL;
	memset(&pl->diff, 0, sizeof(pl->diff));
	pl->rebuild = false;
	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
		return ret;
	}
	ret = read_diff(ctx, pl, d);
	nft_close(ctx);
	return ret;
}

void engine_plan_free(struct engine_plan *pl)
{
	ir_diff_free(&pl->diff);
	ir_free(pl->live);
	pl->live = NULL;
}
