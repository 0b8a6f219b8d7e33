/* fixture.h - what several unit tests set up the same way: a ruleset
 * generated from a YAML policy (the policy kept alive until exit: the IR
 * borrows its locs' file names), and a network namespace of the test's
 * own.  Static inline: a test takes what it needs. */
#ifndef FEDWALL_TESTS_FIXTURE_H
#define FEDWALL_TESTS_FIXTURE_H

#include "generator/generator.h"
#include "policy/policy.h"
#include "../harness.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE_POLICIES 16

static struct policy *fixture_policies[FIXTURE_POLICIES];
static size_t fixture_npolicies;

__attribute__((destructor)) static inline void fixture_free(void)
{
	for (size_t i = 0; i < fixture_npolicies; i++)
		policy_free(fixture_policies[i]);
}

/* A new empty set or map named `name` appended to hand-built `rs`. */
static inline struct ir_set *fixture_add_set(struct ir_ruleset *rs, const char *name,
					     enum ir_keytype key, bool is_map)
{
	struct ir_set *s;

	rs->sets = xreallocarray(rs->sets, rs->nsets + 1, sizeof(*rs->sets));
	s = &rs->sets[rs->nsets++];
	memset(s, 0, sizeof(*s));
	s->name = xstrdup(name);
	s->key = key;
	s->is_map = is_map;
	return s;
}

/* The IR of policy `yaml` (diagnostics to stderr, named `name`). */
static inline struct ir_ruleset *fixture_generate(const char *name, const char *yaml)
{
	struct diag d;
	struct policy *p;
	struct ir_ruleset *rs = NULL;

	diag_init(&d, stderr);
	p = policy_parse(name, yaml, strlen(yaml), &d);
	CHECK(p != NULL);
	if (p)
		rs = generate(p, NULL, &d);
	CHECK(rs != NULL);
	if (p && fixture_npolicies < FIXTURE_POLICIES)
		fixture_policies[fixture_npolicies++] = p;
	else
		policy_free(p);
	return rs;
}

/* Moves the test into a network namespace of its own; false (after
 * saying why: the test is skipped) without root. */
static inline bool fixture_netns(const char *test)
{
	if (geteuid() != 0) {
		fprintf(stderr, "skip: %s: needs root for a network namespace\n", test);
		return false;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "skip: %s: unshare(CLONE_NEWNET): %s\n", test, strerror(errno));
		return false;
	}
	return true;
}

#endif
