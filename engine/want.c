/* want.c - the ruleset a policy asks for, the way check, generate, plan
 * and apply build it: the policy, its sources (offline: inline addresses,
 * list files, the state directory; or --resolve: every name now), the
 * generator, and the final guard, so that they see offline what apply's
 * commit would refuse.
 */
#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <stdlib.h>

/* --resolve: every name now, through the system's resolver. */
static bool want_sources(const struct engine_want *w, const struct policy *p,
			 struct sources *src, struct diag *d)
{
	struct dns_opts dopt = { .timeout_ms = p->resolve.timeout * 1000 };
	struct dns_ctx *dns;
	bool ok;

	if (!w->resolve)
		return sources_offline(p, w->state_dir, src, d);
	dns = dns_ctx_new(&dopt, d);
	if (!dns)
		return false;
	ok = sources_online(p, w->state_dir, dns, src, d);
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

struct ir_ruleset *engine_want_build(struct engine_want *w, struct diag *d)
{
	struct sources src = { 0 };
	struct gen_addrs *extra = NULL;
	struct ir_ruleset *rs = NULL;
	struct policy *p;

	w->p = NULL;
	w->inputs = 0;
	p = policy_load(w->policy, d);
	if (!p)
		return NULL;
	w->p = p;
	src.record = w->record;
	if (!want_sources(w, p, &src, d))
		goto out_free;
	extra = xcalloc(p->npartners + 1, sizeof(*extra));
	for (size_t k = 0; k < p->npartners && k < src.n; k++)
		extra[k] = engine_gen_addrs(&src.partners[k]);
	rs = generate(p, extra, d);
	/* check, generate and plan see what apply's final guard would
	 * refuse (partners that each keep to their guard but add up to
	 * everybody), offline. */
	if (rs && (d->errors || engine_guard(p, rs, d))) {
		ir_free(rs);
		rs = NULL;
	}
	if (rs && w->digest)
		w->inputs = want_inputs(p, &src);
out_free:
	free(extra);
	sources_free(&src);
	return rs;
}
