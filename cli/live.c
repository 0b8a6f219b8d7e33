/* live.c - what apply, plan, status, flush, refresh and the daemon
 * share: the desired ruleset from a policy (offline, or --resolve), the
 * live one from the kernel with its diff, each partner's live addresses.
 * The apply loop itself is the engine's (engine_apply).
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
