/* check.c - `fedwall check`: validate a policy, like `nft -c` or `sshd -t`.
 * Exit 0 when valid, 1 after reporting every problem, 2 on usage errors;
 * -v prints the normalised policy, which is itself a valid policy. */
#include "cli.h"
#include "policy/policy.h"

#define CHECK_USAGE "[-v] [-f FILE] [--state-dir DIR]"

int check_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct policy *p;
	struct diag d;
	int i = common_parse(argc, argv, "fv", CHECK_USAGE, &o);

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc) {
		fprintf(stderr, "fedwall check: unexpected operand '%s' (the policy "
			"file goes after -f)\nUsage: fedwall check %s\n", argv[i],
			CHECK_USAGE);
		return EXIT_USAGE;
	}
	diag_init(&d, stderr);
	p = policy_load(o.policy, &d);
	if (!p) {
		fprintf(stderr, "%s: %u error%s\n", o.policy, d.errors,
			d.errors == 1 ? "" : "s");
		return EXIT_ERROR;
	}
	if (o.verbose)
		policy_print(stdout, p);
	policy_free(p);
	return EXIT_OK;
}
