/* check.c - `fedwall check`: the whole offline pipeline but the side
 * effect, like `nft -c` or `bgpd -n`: the policy, the list files and the
 * state it names, and the ruleset they compile to (overlap warnings
 * included).  Exit 0 when valid, 1 after reporting every problem, 2 on
 * usage errors; -v prints the normalised policy, itself a valid policy. */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "policy/policy.h"

#define CHECK_USAGE "[-v] [-f FILE] [--state-dir DIR]"

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
	if (p && o.verbose)
		policy_print(stdout, p);
	if (!rs)
		fprintf(stderr, "%s: %u error%s\n", o.policy, d.errors,
			d.errors == 1 ? "" : "s");
	ir_free(rs);
	policy_free(p);
	return rs ? EXIT_OK : EXIT_ERROR;
}
