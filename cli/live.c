/* live.c - what the verbs share (check, generate, plan, apply, status,
 * flush): the desired ruleset from a policy (offline, or --resolve), the
 * live one from the kernel with its diff, the table to work on.  The
 * apply loop and each partner's live addresses are the engine's
 * (engine/engine.h).
 */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* The inputs digest a refresh would compute from the same addresses
 * (engine_proposed, engine_inputs_digest: one way for both), so that the
 * first refresh after an apply that changed nothing is a no-op. */
static uint64_t want_inputs(const struct policy *p, const struct sources *src)
{
	struct addr_list *prop = engine_proposed(p, NULL, src->partners);
	uint64_t h = engine_inputs_digest(p, prop);

	for (size_t i = 0; i < p->npartners; i++)
		addr_list_free(&prop[i]);
	free(prop);
	return h;
}

struct ir_ruleset *cli_want(const struct common_opts *o, struct policy **pp,
			    uint64_t *inputs, struct diag *d)
{
	struct sources src = { 0 };
	struct gen_addrs *extra = NULL;
	struct ir_ruleset *rs = NULL;
	struct policy *p;

	*pp = NULL;
	if (inputs)
		*inputs = 0;
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
	if (rs && inputs)
		*inputs = want_inputs(p, &src);
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
	engine_diff(ctx, *live, want, diff);
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
