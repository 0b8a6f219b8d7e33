/* live.c - what apply, plan, status, flush, refresh and the daemon
 * share: the desired ruleset from a policy (offline, or --resolve), the
 * live one from the kernel with its diff, the apply cycle (read, diff,
 * commit, retry when the ruleset moved), each partner's live addresses,
 */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "generator/snapshot.h"
#include "nft/nft.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define APPLY_TRIES 3

/* --resolve: every name now, through the system's resolver. */
static bool want_sources(const struct common_opts *o, const struct policy *p,
			 struct sources *src, struct diag *d)
{
	struct dns_opts dopt = { .timeout_ms = p->resolve.timeout * 1000 };
	struct dns_ctx *dns;
	bool ok;

	if (!o->resolve)
		return sources_offline(p, o->state_dir, src, d);
	dns = dns_ctx_new(&dopt, d);
	if (!dns)
		return false;
	ok = sources_online(p, o->state_dir, dns, src, d);
	dns_ctx_free(dns);
	return ok;
}

struct ir_ruleset *cli_want(const struct common_opts *o, struct policy **pp,
			    struct diag *d)
{
	struct sources src = { 0 };
	struct gen_addrs *extra = NULL;
	struct ir_ruleset *rs = NULL;
	struct policy *p;

	*pp = NULL;
	p = policy_load(o->policy, d);
	if (!p)
		return NULL;
	*pp = p;
	if (!want_sources(o, p, &src, d))
		goto out_free;
	extra = xcalloc(p->npartners + 1, sizeof(*extra));
	for (size_t k = 0; k < p->npartners && k < src.n; k++)
		extra[k] = (struct gen_addrs){ src.partners[k].v, src.partners[k].n,
					       src.partners[k].locs };
	rs = generate(p, extra, d);
	/* check, generate and plan see what apply's final guard would
	 * refuse (partners that each keep to their guard but add up to
	 * everybody), offline. */
	if (rs && (d->errors || engine_guard(p, rs, d))) {
		ir_free(rs);
		rs = NULL;
	}
out_free:
	free(extra);
	sources_free(&src);
	return rs;
}

int cli_read_diff(struct nft_ctx *ctx, const char *table, const struct ir_ruleset *want,
		  struct ir_ruleset **live, uint32_t *genid, struct ir_diff *diff,
		  struct diag *d)
{
	int ret = nft_read(ctx, table, live, genid);

	if (ret == -ENOENT) {
		*live = NULL;
		ret = 0;
	}
	if (ret) {
		diag_error(d, NULL, "cannot read table inet %s from the kernel: %s", table,
			   strerror(-ret));
		return ret;
	}
	ir_diff(*live, want, diff);
	if (nft_foreign(ctx)) {
		struct strbuf sb = { 0 };

		sb_addf(&sb, "%s", nft_foreign(ctx));
		free(diff->why);
		diff->why = sb.s;
		diff->structural = true;
	}
	return 0;
}

void cli_json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

char *cli_table(const struct common_opts *o, struct diag *d)
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

/* ---- the apply cycle ------------------------------------------------- */

static size_t total_elems(const struct ir_ruleset *rs)
{
	size_t n = 0;

	for (size_t i = 0; i < rs->nsets; i++)
		n += rs->sets[i].nelems;
	return n;
}

static void summary(FILE *out, const struct ir_ruleset *live, const struct ir_ruleset *want,
		    const struct ir_diff *diff, struct cli_applied *res)
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

static int unchanged(const char *table, uint32_t genid, const struct cli_apply_opts *o,
		     struct cli_applied *res, struct diag *d)
{
	res->unchanged = true;
	if (o->verbose)
		diag_note(d, NULL, "table inet %s: built from these very inputs, and nothing"
			  " changed it since (generation %u)", table, genid);
	if (o->out)
		fprintf(o->out, "fedwall: table inet %s: no changes\n", table);
	return 0;
}

/* One read-diff-commit round.  -ERESTART: the ruleset moved, try again
 * (`fresh`: reading the table back, whatever the cache says). */
static int apply_once(struct nft_ctx *ctx, const char *table, cli_want_fn fn, void *arg,
		      const struct cli_apply_opts *o, bool fresh, struct cli_applied *res,
		      struct diag *d)
{
	struct engine_cache cc = { o->cache_dir, o->verbose, o->inputs ? *o->inputs : 0 };
	struct nft_commit_result cr;
	struct engine_live got;
	const struct ir_ruleset *want;
	struct ir_ruleset *live = NULL;
	struct ir_diff diff = { 0 };
	uint32_t genid = 0;
	bool cached;
	int ret;

	if (!fresh && engine_live_unchanged(ctx, table, &cc, &genid))
		return unchanged(table, genid, o, res, d);
	ret = engine_live_get(ctx, table, &cc, fresh, &got, d);
	live = got.rs;
	genid = got.genid;
	cached = got.cached;
	if (ret)
		return ret;
	want = fn(arg, live, d);
	if (!want) {
		ret = -EINVAL;
		goto out_free;
	}
	/* The final guard: whatever path built `want`, nothing wider than
	 * the guards reaches the kernel. */
	ret = engine_guard(o->policy, want, d);
	if (ret)
		goto out_free;
	cc.inputs = o->inputs ? *o->inputs : 0;        /* `fn` may have said no */
	ir_diff(live, want, &diff);
	if (nft_foreign(ctx)) {
		free(diff.why);
		diff.why = xstrdup(nft_foreign(ctx));
		diff.structural = true;
	}
	if (ir_diff_empty(&diff)) {
		if (o->out)
			fprintf(o->out, "fedwall: table inet %s: no changes\n", table);
		if (!cached || cc.inputs)       /* with the inputs: next time, no work */
			engine_live_put(ctx, &cc, live, genid, d);
		goto out_free;
	}
	if (o->verbose && diff.structural)
		diag_note(d, NULL, "replacing table inet %s: %s", table, diff.why);
	ret = nft_commit(ctx, live, want, &diff, genid, &cr, d);
	if (!ret) {
		res->changed = true;
		res->replaced = cr.replaced;
		if (diff.structural && diff.why)
			snprintf(res->why, sizeof(res->why), "%s", diff.why);
		summary(o->out, live, want, &diff, res);
		cache_after(ctx, &cc, live, want, &diff, &cr, d);
	}
out_free:
	ir_diff_free(&diff);
	ir_free(live);
	return ret;
}

int cli_apply(const char *table, cli_want_fn fn, void *arg, const struct cli_apply_opts *o,
	      struct cli_applied *res, struct diag *d)
{
	struct nft_ctx *ctx;
	int ret = nft_open(&ctx);

	memset(res, 0, sizeof(*res));
	if (ret) {
		diag_error(d, NULL, "cannot talk to nf_tables: %s", strerror(-ret));
		return ret;
	}
	for (int i = 0; i < APPLY_TRIES; i++) {
		ret = apply_once(ctx, table, fn, arg, o, i > 0, res, d);
		if (ret != -ERESTART)
			break;
		if (o->verbose)
			diag_note(d, NULL, "the ruleset changed since it was read; reading again");
	}
	if (ret == -ERESTART)
		diag_error(d, NULL, "the ruleset kept changing under fedwall; gave up after"
			   " %d tries, nothing applied", APPLY_TRIES);
	else if (ret && ret != -EINVAL && !d->errors)
		diag_error(d, NULL, "apply failed: %s", strerror(-ret));
	else if (ret && ret != -EINVAL)
		diag_note(d, NULL, "nothing was applied: table inet %s is as it was", table);
	nft_close(ctx);
	return ret;
}

/* ---- each partner's live addresses ------------------------------------ */

static const struct partner *find_partner(const struct policy *p, const char *name)
{
	size_t lo = 0, hi = p->npartners;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, p->partners[mid].name);

		if (c == 0)
			return &p->partners[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int cmp_prefix(const void *x, const void *y)
{
	return prefix_cmp(x, y);
}

/* Partner index of each chain (SIZE_MAX: not a partner's). */
static size_t *chain_partners(const struct ir_ruleset *rs, const struct policy *p)
{
	size_t *cp = xcalloc(rs->nchains + 1, sizeof(*cp));

	for (size_t c = 0; c < rs->nchains; c++) {
		const char *name = ir_chain_partner(rs->chains[c].name);
		const struct partner *pt = name ? find_partner(p, name) : NULL;

		cp[c] = pt ? (size_t)(pt - p->partners) : SIZE_MAX;
	}
	return cp;
}

/* Two passes, so that each list is allocated once at its size: this runs
 * over every element of the table on each refresh. */
void cli_partner_addrs(const struct ir_ruleset *rs, const struct policy *p,
		       struct addr_list *out)
{
	size_t *cp = rs ? chain_partners(rs, p) : NULL;

	for (int pass = 0; rs && pass < 2; pass++) {
		for (size_t i = 0; i < rs->nsets; i++) {
			const struct ir_set *set = &rs->sets[i];

			if (!set->is_map || set->key == IR_KEY_PROTO_PORT)
				continue;
			for (size_t k = 0; k < set->nelems; k++) {
				uint32_t c = set->elems[k].chain;
				struct addr_list *l;

				if (c >= rs->nchains || cp[c] == SIZE_MAX)
					continue;
				l = &out[cp[c]];
				if (pass == 0)
					l->cap++;
				else
					l->v[l->n++] = set->elems[k].addr;
			}
		}
		for (size_t i = 0; pass == 0 && i < p->npartners; i++) {
			out[i].v = xcalloc(out[i].cap + 1, sizeof(*out[i].v));
			out[i].locs = xcalloc(out[i].cap + 1, sizeof(*out[i].locs));
		}
	}
	free(cp);
	for (size_t i = 0; i < p->npartners; i++) {
		struct addr_list *l = &out[i];
		size_t k = 0;

		sort_unless_sorted(l->v, l->n, sizeof(*l->v), cmp_prefix);
		for (size_t j = 0; j < l->n; j++)
			if (k == 0 || prefix_cmp(&l->v[k - 1], &l->v[j]))
				l->v[k++] = l->v[j];
		l->n = k;
	}
}

void addr_lists_copy(struct addr_list *dst, const struct addr_list *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].cap = src[i].n;
		dst[i].v = xcalloc(src[i].n + 1, sizeof(*dst[i].v));
		dst[i].locs = xcalloc(src[i].n + 1, sizeof(*dst[i].locs));
		if (src[i].n) {
			memcpy(dst[i].v, src[i].v, src[i].n * sizeof(*dst[i].v));
			memcpy(dst[i].locs, src[i].locs, src[i].n * sizeof(*dst[i].locs));
		}
	}
}
