/* apply.c - `fedwall apply`: make the kernel hold what the policy says,
 * in one transaction: element adds/deletes when only addresses changed
 * (counters survive), a replacement of the table otherwise.  Retries when
 * someone else changed the ruleset between our read and our commit.  The
 * live table comes from, and goes to, the state directory's cache
 * (cache.c) like refresh's. */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "[-f POLICY] [--state-dir DIR] [--resolve] [-v] [--confirm SECONDS]\n" \
	"       [--allow-missing-interfaces]"
#define CONFIRM_MAX (24 * 3600)

static const struct ir_ruleset *fixed(void *arg, const struct ir_ruleset *live,
				      struct diag *d)
{
	(void)live;
	(void)d;
	return arg;
}

/* Takes --confirm SECONDS (or --confirm=SECONDS) out of argv into av,
 * the rest for common_parse.  *secs is 0 without it; -1 after a usage
 * error. */
static int take_confirm(int argc, const char *argv[], const char **av, unsigned *secs)
{
	int n = 0;

	*secs = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		char *end;
		long v;

		if (!strcmp(a, "--")) {
			while (i < argc)
				av[n++] = argv[i++];
			break;
		}
		if (!strcmp(a, "--confirm"))
			val = i + 1 < argc ? argv[++i] : "";
		else if (!strncmp(a, "--confirm=", 10))
			val = a + 10;
		if (!val) {
			av[n++] = a;
			continue;
		}
		v = strtol(val, &end, 10);
		if (!*val || *end || v < 1 || v > CONFIRM_MAX) {
			fprintf(stderr, "fedwall apply: --confirm takes seconds, 1 to %d: '%s'\n"
				"Usage: fedwall apply %s\n", CONFIRM_MAX, val, USAGE);
			return -1;
		}
		*secs = (unsigned)v;
	}
	return n;
}

int apply_main(int argc, const char *argv[])
{
	const char **av = xcalloc((size_t)argc + 1, sizeof(*av));
	struct ir_ruleset *want = NULL;
	struct policy *p = NULL;
	struct common_opts o;
	struct engine_want w;
	unsigned secs;
	uint64_t inputs;
	struct diag d;
	int n = take_confirm(argc, argv, av, &secs), i, rc = EXIT_USAGE;

	i = n < 0 ? -1 : common_parse(n, av, "fvri", USAGE, &o);
	if (i == -2)
		rc = EXIT_OK;
	if (i < 0)
		goto out_free_av;
	rc = EXIT_ERROR;
	diag_init(&d, stderr);
	w = (struct engine_want){ .policy = o.policy, .state_dir = o.state_dir,
				  .resolve = o.resolve, .digest = true, .record = !secs };
	want = engine_want_build(&w, &d);
	p = w.p;
	inputs = w.inputs;
	if (want && cli_ifaces_refused(&o, p, &d)) {
		ir_free(want);
		want = NULL;
	}
	if (want && secs) {
		struct engine_confirm c = { want, p, o.state_dir, secs, o.verbose, stdout };

		rc = engine_confirm_apply(&c, &d) ? EXIT_ERROR : EXIT_OK;
	} else if (want) {
		/* The live table's cache, as refresh keeps it: its key (one
		 * GETGEN) proves the kernel still holds it, and the next
		 * refresh starts from what this apply committed.  With the
		 * inputs digest a refresh computes from the same addresses:
		 * `want` is the table those inputs make (apply holds no
		 * partner back; it refuses the whole policy), so a refresh
		 * whose sources answer as the state did stops after one
		 * GETGEN; one that got other answers has another digest. */
		struct engine_apply_opts ao = { .want = fixed, .arg = want, .verbose = o.verbose,
						.out = stdout, .policy = p,
						.cache_dir = o.state_dir, .inputs = &inputs };
		struct engine_applied res;

		engine_confirm_notes(o.state_dir, true, stderr);
		if (!engine_apply(want->table, &ao, &res, &d))
			rc = EXIT_OK;
	}
	if (!want && p)
		diag_note(&d, NULL, "nothing was applied: table inet %s is as it was", p->table);
	ir_free(want);
	policy_free(p);
out_free_av:
	free(av);
	return rc;
}
