/* fuzz_policy.c - libFuzzer target: the policy parser and validator.
 *
 * Any input: policy_parse() returns a policy or NULL after reporting, and
 * never crashes, leaks or reads out of bounds.  A policy it accepts must
 * print (policy_print) as YAML that parses again and prints identically
 * (the round trip), and must compile (generate, inline addresses only)
 * or be refused with a reported error. */
#include "policy/policy.h"
#include "generator/generator.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink;

/* The policy printed, malloc'd; *len its length. */
static char *print_policy(const struct policy *p, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		abort();
	policy_print(f, p);
	fclose(f);
	return buf;
}

static void round_trip(const struct policy *p)
{
	struct diag d;
	size_t len1 = 0, len2 = 0;
	char *one = print_policy(p, &len1), *two;
	struct policy *q;

	diag_init(&d, stderr);
	q = policy_parse("printed.yaml", one, len1, &d);
	if (!q) {
		fprintf(stderr, "printed policy does not parse:\n%s\n", one);
		abort();
	}
	two = print_policy(q, &len2);
	if (len1 != len2 || memcmp(one, two, len1)) {
		fprintf(stderr, "round trip differs:\n--- first\n%s\n--- second\n%s\n", one, two);
		abort();
	}
	free(two);
	free(one);
	policy_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag d;
	struct policy *p;
	struct ir_ruleset *rs;

	if (!sink)
		sink = fopen("/dev/null", "w");
	diag_init(&d, sink);    /* messages formatted, not shown */
	p = policy_parse("fuzz.yaml", (const char *)data, size, &d);
	if (!p) {
		if (!d.errors)
			abort();        /* refused without saying why */
		return 0;
	}
	round_trip(p);
	rs = generate(p, NULL, &d);
	if (!rs && !d.errors)
		abort();
	ir_free(rs);
	policy_free(p);
	return 0;
}
