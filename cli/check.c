/* check.c - `fedwall check`: the whole offline pipeline but the side
 * effect, like `nft -c` or `bgpd -n`: the policy, the list files and the
 * state it names, and the ruleset they compile to (overlap warnings
 * included).  Exit 0 when valid, 1 after reporting every problem (a
 * policy's errors do not hide its list files'), 2 on usage errors; -v
 * prints the normalised policy, itself a valid policy. */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"
#include "refresh/refresh.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_USAGE "[-v] [-f FILE] [--state-dir DIR]"

static int src_key_cmp(const void *x, const void *y)
{
	const struct src *a = *(const struct src *const *)x;
	const struct src *b = *(const struct src *const *)y;
	int c = strcmp(a->key, b->key);

	return c ? c : a < b ? -1 : a > b;
}

/* Each list file due once, however many partners name it: its errors
 * are one problem. */
static void lists_due(struct srcset *s)
{
	struct src **v = xcalloc(s->n + 1, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == STATE_LIST)
			v[n++] = &s->v[i];
	qsort(v, n, sizeof(*v), src_key_cmp);
	for (size_t i = 0; i < n; i++)
		v[i]->due = !i || strcmp(v[i - 1]->key, v[i]->key);
	free(v);
}

/* A policy with errors builds nothing, but the list files it names are
 * read all the same, as the offline sources read them (and only those:
 * the rest depends on the policy), so that one run shows their errors
 * too, and its trust anchor looked at.  The policy's own errors were
 * reported: its second parse is quiet. */
static void check_lists(const char *path, struct diag *d)
{
	struct src_opts so = { .strict_lists = true, .now = (int64_t)time(NULL) };
	struct state st = { 0 };
	struct srcset s = { 0 };
	struct diag quiet;
	struct policy *p;

	diag_init(&quiet, NULL);
	p = policy_load_partial(path, &quiet);
	if (!p)
		return;
	srcset_build(p, &s);
	lists_due(&s);
	srcset_fill(p, &s, &st, &so, d);
	dns_anchor_check(p, d);
	srcset_free(&s);
	policy_free(p);
}

int check_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct engine_want w;
	struct ir_ruleset *rs;
	struct policy *p;
	struct diag d;
	int i = common_parse(argc, argv, "fv", CHECK_USAGE, &o);

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	w = (struct engine_want){ .policy = o.policy, .state_dir = o.state_dir,
				  .resolve = o.resolve };
	rs = engine_want_build(&w, &d);
	p = w.p;
	if (p)
		ifaces_check(p, IFACE_NOTE, &d);
	else
		check_lists(o.policy, &d);
	/* What a refresh would find only when it resolves. */
	if (p && !dns_anchor_check(p, &d)) {
		ir_free(rs);
		rs = NULL;
	}
	if (p && o.verbose)
		policy_print(stdout, p);
	if (!rs)
		fprintf(stderr, "%s: %u error%s\n", o.policy, d.errors,
			d.errors == 1 ? "" : "s");
	ir_free(rs);
	policy_free(p);
	return rs ? EXIT_OK : EXIT_ERROR;
}
