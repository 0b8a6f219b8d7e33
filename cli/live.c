/* live.c - what apply, plan, status and flush share: the desired ruleset
 * from a policy (offline), and the live one from the kernel with its
 * diff. */
#include "cli.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	if (!sources_offline(p, o->state_dir, &src, d))
		goto out_free;
	extra = xcalloc(p->npartners + 1, sizeof(*extra));
	for (size_t k = 0; k < p->npartners && k < src.n; k++)
		extra[k] = (struct gen_addrs){ src.partners[k].v, src.partners[k].n,
					       src.partners[k].locs };
	rs = generate(p, extra, d);
	if (rs && d->errors) {
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

const char *cli_partner_of(const char *chain)
{
	if (!chain)
		return NULL;
	if (!strncmp(chain, "in_", 3) && chain[3])
		return chain + 3;
	if (!strncmp(chain, "out_", 4) && chain[4])
		return chain + 4;
	return NULL;
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
