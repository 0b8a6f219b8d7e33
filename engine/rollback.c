/* rollback.c - apply --confirm's way back: the snapshot of the table
 * before (engine_snapshot_want, engine_apply's want builder) and the
 * rollback to it (engine_rollback): apply's loop (engine_apply), read
 * back every time, retried when the ruleset moves, through the final
 * guard.  Whatever someone did to the table in the meantime, the
 * rollback restores the table as it was. */
#include "engine/engine.h"
#include "generator/generator.h"
#include "generator/snapshot.h"
#include "nft/nft.h"

#include <errno.h>
#include <string.h>

#define ROLLBACK_TRIES 10

/* Whether the read-back left objects fedwall did not write out of `live`
 * (what nft_foreign() said of the read that made it): it stands in a ct
 * state rule without a verdict for each chain or rule it cannot decode,
 * and an empty map for each such set; the generator writes no such rule,
 * and a rule of its own looks up every set it makes. */
static bool foreign_in(const struct ir_ruleset *live)
{
	for (size_t i = 0; i < live->nchains; i++)
		for (size_t j = 0; j < live->chains[i].nrules; j++) {
			const struct ir_rule *r = &live->chains[i].rules[j];

			if (r->kind == IR_R_CT_STATE && r->verdict == IR_VERDICT_NONE)
				return true;
		}
	for (size_t k = 0; k < live->nsets; k++) {
		bool used = false;

		for (size_t i = 0; !used && i < live->nchains; i++)
			for (size_t j = 0; !used && j < live->chains[i].nrules; j++)
				used = live->chains[i].rules[j].set &&
				       !strcmp(live->chains[i].rules[j].set, live->sets[k].name);
		if (!used)
			return true;
	}
	return false;
}

/* engine_apply's want builder.  The table before is the `live` engine_apply
 * diffs against, read back or from the cache whose key proved it the
 * kernel's (no second read of the table): the commit is checked against
 * the generation `live` is true at, so if it goes through, nothing
 * changed in between and this copy is exactly the table it replaced.  If
 * something did change, the commit is refused and this runs again. */
const struct ir_ruleset *engine_snapshot_want(void *arg, const struct ir_ruleset *live,
					     struct diag *d)
{
	struct engine_snapshot *s = arg;
	struct strbuf img = { 0 };
	const char *why = NULL;

	ir_free(s->prev);
	s->prev = NULL;
	s->foreign = false;
	if (!live)
		return s->want;
	ir_encode(live, &img);
	s->prev = ir_decode(img.s, img.len, &why);
	sb_free(&img);
	if (!s->prev) {
		diag_error(d, NULL, "cannot keep table inet %s for the rollback: %s",
			   s->want->table, why);
		return NULL;
	}
	s->foreign = foreign_in(live);
	return s->want;
}

static const struct ir_ruleset *given(void *arg, const struct ir_ruleset *live,
				      struct diag *d)
{
	(void)live;
	(void)d;
	return arg;
}

/* No table before: the rollback deletes it, one transaction, nothing to
 * diff or guard. */
static int delete_table(const char *table, struct diag *d)
{
	struct nft_ctx *ctx;
	int ret = nft_open(&ctx);

	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
		return ret;
	}
	ret = nft_delete_table(ctx, table, d);
	nft_close(ctx);
	return ret == -ENOENT ? 0 : ret;
}

/* engine_apply's loop, read back every time (the cache is apply's
 * bookkeeping: what the rollback restores must not trust it), quiet,
 * tried ROLLBACK_TRIES times (an interrupted read too: a rollback that
 * gives up leaves the unconfirmed table), and guarded only when something
 * is to be committed: a table that is `prev` already stays. */
int engine_rollback(const char *table, const struct ir_ruleset *prev, const struct policy *p,
		    struct diag *d)
{
	struct engine_apply_opts o = { .want = given, .arg = (void *)prev, .policy = p,
				       .tries = ROLLBACK_TRIES, .retry_read = true,
				       .guard_changes_only = true };
	struct engine_applied res;

	if (!prev)
		return delete_table(table, d);
	return engine_apply(table, &o, &res, d);
}
