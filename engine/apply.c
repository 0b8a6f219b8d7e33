/* apply.c - the apply loop apply, apply --confirm, refresh, the daemon
 * and apply --confirm's rollback share: read the live table (from the cache when its key holds),
 * build what is wanted from it, diff, the final guard, commit in one
 * transaction checked against the generation read, keep the cache in
 * step; read again and build again when the ruleset moved in between.
 */
#include "engine/engine.h"
#include "generator/generator.h"
#include "generator/snapshot.h"
#include "nft/nft.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define APPLY_TRIES 3

void engine_diff(const struct nft_ctx *ctx, const struct ir_ruleset *live,
		 const struct ir_ruleset *want, struct ir_diff *diff)
{
	ir_diff(live, want, diff);
	if (nft_foreign(ctx)) {
		free(diff->why);
		diff->why = xstrdup(nft_foreign(ctx));
		diff->structural = true;
	}
}

static size_t total_elems(const struct ir_ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nsets; i++)
		n += rs->sets[i].nelems;
	return n;
}

static void summary(FILE *out, const struct ir_ruleset *live, const struct ir_ruleset *want,
		    const struct ir_diff *diff, struct engine_applied *res)
{
	for (size_t i = 0; i < diff->nsets; i++) {
		res->nadd += diff->sets[i].nadd;
		res->ndel += diff->sets[i].ndel;
	}
	if (!out)
		return;
	if (res->replaced) {
		fprintf(out, "fedwall: table inet %s: %s (%s): %zu chains, %zu sets, %zu"
			" elements, %zu counters\n", want->table, live ? "replaced" : "created",
			diff->structural && diff->why ? diff->why
			: "element deletions cost more than a rebuild", want->nchains,
			want->nsets, total_elems(want), want->ncounters);
		return;
	}
	fprintf(out, "fedwall: table inet %s: %zu element%s added, %zu removed\n",
		want->table, res->nadd, res->nadd == 1 ? "" : "s", res->ndel);
}

/* After a commit that created or replaced the table, or swapped sets in
 * (new rule handles, the swapped sets last in the kernel's order): the
 * table it left, without reading 100k elements back.  The kernel holds
 * exactly `want` but for what only it knows, so its shape (table,
 * chains, rules with handles, sets, counters: a few dozen objects) is
 * read back at the generation the commit left (`at`) and gets want's
 * elements.  NULL and why not when the read is at another generation
 * (someone committed since), finds foreign objects, or differs from
 * `want` in more than elements. */
static struct ir_ruleset *committed_table(struct nft_ctx *ctx, const struct ir_ruleset *want,
					  uint32_t at, const char **why)
{
	struct ir_ruleset *rs = NULL;
	struct ir_diff diff = { 0 };
	uint32_t genid = 0;

	*why = NULL;
	if (nft_read_shape(ctx, want->table, &rs, &genid))
		*why = "the table's shape cannot be read back";
	else if (genid != at)
		*why = "the ruleset moved on since the commit";
	else if (nft_foreign(ctx))
		*why = "the table holds foreign objects";
	if (!*why)
		ir_diff(rs, want, &diff);
	if (!*why && diff.structural)
		*why = "the table read back is not the one committed";
	else if (!*why && !ir_take_elems(rs, want, &diff))
		*why = "the table after the commit is unknown";
	ir_diff_free(&diff);
	if (*why) {
		ir_free(rs);
		rs = NULL;
	}
	return rs;
}

/* After a commit of `diff` that did `cr`, the cache follows it at the
 * generation the commit left: an element-only commit leaves `live` with
 * want's elements (the rules, their handles, stay as they were); any
 * other, the table committed_table() finds. */
static void cache_after(struct nft_ctx *ctx, const struct engine_cache *cc,
			struct ir_ruleset *live, const struct ir_ruleset *want,
			const struct ir_diff *diff, const struct nft_commit_result *cr,
			struct diag *d)
{
	struct ir_ruleset *now = NULL;
	const char *why = NULL;

	if (!cc->dir)
		return;
	if (!cr->genid)
		why = "the generation after the commit is unknown";
	else if (cr->replaced || cr->swapped)
		now = committed_table(ctx, want, cr->genid, &why);
	else if (!ir_take_elems(live, want, diff))
		why = "the table after the commit is unknown";
	if (why)
		engine_live_drop(cc, why, d);
	else
		engine_live_put(ctx, cc, now ? now : live, cr->genid, d);
	ir_free(now);
}

static int unchanged(const char *table, uint32_t genid, const struct engine_apply_opts *o,
		     struct engine_applied *res, struct diag *d)
{
	res->unchanged = true;
	if (o->verbose)
		diag_note(d, NULL, "table inet %s: built from these very inputs, and nothing"
			  " changed it since (generation %u)", table, genid);
	if (o->out)
		fprintf(o->out, "fedwall: table inet %s: no changes\n", table);
	return 0;
}

/* One read-diff-commit round: what it read and built. */
struct round {
	struct nft_ctx *ctx;
	const struct engine_apply_opts *o;
	struct engine_cache cc;
	struct engine_live got;         /* got.rs: the live table, owned */
	const struct ir_ruleset *want;
	struct ir_diff diff;            /* live -> want */
};

/* Commits rd->diff (not empty) against the generation read and keeps the
 * cache in step. */
static int commit(struct round *rd, struct engine_applied *res, struct diag *d)
{
	const struct ir_ruleset *want = rd->want;
	struct ir_ruleset *live = rd->got.rs;
	struct nft_commit_result cr;
	int ret;

	if (rd->o->verbose && rd->diff.structural)
		diag_note(d, NULL, "replacing table inet %s: %s", want->table, rd->diff.why);
	ret = nft_commit(rd->ctx, live, want, &rd->diff, rd->got.genid, &cr, d);
	if (ret)
		return ret;
	res->changed = true;
	res->replaced = cr.replaced;
	if (rd->diff.structural && rd->diff.why)
		snprintf(res->why, sizeof(res->why), "%s", rd->diff.why);
	summary(rd->o->out, live, want, &rd->diff, res);
	cache_after(rd->ctx, &rd->cc, live, want, &rd->diff, &cr, d);
	return 0;
}

/* One round.  -ERESTART: the ruleset moved, try again (`fresh`: reading
 * the table back, whatever the cache says); so is an interrupted read
 * with o->retry_read. */
static int apply_once(struct nft_ctx *ctx, const char *table, const struct engine_apply_opts *o,
		      bool fresh, struct engine_applied *res, struct diag *d)
{
	struct round rd = { .ctx = ctx, .o = o,
			    .cc = { o->cache_dir, o->verbose, o->inputs ? *o->inputs : 0 } };
	int ret;

	if (!fresh && engine_live_unchanged(ctx, table, &rd.cc, &rd.got.genid))
		return unchanged(table, rd.got.genid, o, res, d);
	ret = engine_live_get(ctx, table, &rd.cc, fresh, &rd.got, d);
	if (ret)
		return ret == -EAGAIN && o->retry_read ? -ERESTART : ret;
	if (o->live_inputs)
		*o->live_inputs = rd.got.cached ? rd.got.inputs : 0;
	rd.want = o->want(o->arg, rd.got.rs, d);
	if (!rd.want) {
		ret = -EINVAL;
		goto out_free;
	}
	rd.cc.inputs = o->inputs ? *o->inputs : 0;     /* `want` may have said no */
	if (nft_foreign(ctx) || !o->known_diff ||
	    !o->known_diff(o->arg, rd.got.rs, rd.want, &rd.diff))
		engine_diff(ctx, rd.got.rs, rd.want, &rd.diff);
	/* The final guard: whatever path built `want`, nothing wider than
	 * the guards reaches the kernel. */
	if (!o->guard_changes_only || !ir_diff_empty(&rd.diff))
		ret = engine_guard(o->policy, rd.want, d);
	if (ret)
		goto out_free;
	if (!ir_diff_empty(&rd.diff)) {
		ret = commit(&rd, res, d);
		goto out_free;
	}
	if (o->out)
		fprintf(o->out, "fedwall: table inet %s: no changes\n", table);
	if (!rd.got.cached || rd.cc.inputs)     /* with the inputs: next time, no work */
		engine_live_put(ctx, &rd.cc, rd.got.rs, rd.got.genid, d);
out_free:
	ir_diff_free(&rd.diff);
	ir_free(rd.got.rs);
	return ret;
}

int engine_apply(const char *table, const struct engine_apply_opts *o,
		 struct engine_applied *res, struct diag *d)
{
	unsigned tries = o->tries ? o->tries : APPLY_TRIES;
	struct nft_ctx *ctx;
	int ret = nft_open(&ctx);

	memset(res, 0, sizeof(*res));
	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < tries; i++) {
		ret = apply_once(ctx, table, o, i > 0, res, d);
		if (ret != -ERESTART)
			break;
		if (o->verbose)
			diag_note(d, NULL, "the ruleset changed since it was read; reading again");
	}
	if (ret == -ERESTART)
		diag_error(d, NULL, "the ruleset kept changing under fedwall; gave up after"
			   " %u tries, nothing applied", tries);
	else if (ret && ret != -EINVAL && !d->errors)
		diag_error(d, NULL, "apply failed: %s", strerror(-ret));
	else if (ret && ret != -EINVAL)
		diag_note(d, NULL, "nothing was applied: table inet %s is as it was", table);
	nft_close(ctx);
	return ret;
}
