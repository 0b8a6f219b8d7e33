/* opts.c - the options all subcommands share, parsed one way. */
#include "cli.h"
#include "policy/policy.h"

#include <string.h>

static bool takes(const char *allowed, char c)
{
	return strchr(allowed, c) != NULL;
}

/* Matches "--name" or "--name=VALUE"; *val is set for the second form. */
static bool long_opt(const char *arg, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return false;
	if (arg[n] == '\0') {
		*val = NULL;
		return true;
	}
	if (arg[n] == '=') {
		*val = arg + n + 1;
		return true;
	}
	return false;
}

static int bad(const char *cmd, const char *usage, const char *what, const char *arg)
{
	fprintf(stderr, "fedwall %s: %s '%s'\nUsage: fedwall %s %s\n",
		cmd, what, arg, cmd, usage);
	return -1;
}

int common_parse(int argc, const char *argv[], const char *allowed,
		 const char *usage, struct common_opts *o)
{
	const char *cmd = argv[0];
	int i;

	memset(o, 0, sizeof(*o));
	o->policy = POLICY_DEFAULT_PATH;
	o->state_dir = STATE_DIR_DEFAULT;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		const char **dst = NULL;

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("Usage: fedwall %s %s\n", cmd, usage);
			return -2;
		} else if (takes(allowed, 'v') && (!strcmp(a, "-v") || !strcmp(a, "--verbose"))) {
			o->verbose = true;
		} else if (takes(allowed, 'j') && !strcmp(a, "--json")) {
			o->json = true;
		} else if (takes(allowed, 'r') && !strcmp(a, "--resolve")) {
			o->resolve = true;
		} else if (takes(allowed, 'F') && !strcmp(a, "--force")) {
			o->force = true;
		} else if (takes(allowed, 'd') && (!strcmp(a, "-d") || !strcmp(a, "--foreground"))) {
			o->foreground = true;
		} else if (takes(allowed, 'f') && (!strcmp(a, "-f") || long_opt(a, "--file", &val))) {
			dst = &o->policy;
		} else if (takes(allowed, 'o') && (!strcmp(a, "-o") || long_opt(a, "--output", &val))) {
			dst = &o->output;
		} else if (takes(allowed, 'm') && long_opt(a, "--metrics", &val)) {
			dst = &o->metrics;
		} else if (takes(allowed, 't') && long_opt(a, "--table", &val)) {
			dst = &o->table;
		} else if (long_opt(a, "--state-dir", &val)) {
			dst = &o->state_dir;
		} else {
			return bad(cmd, usage, "unknown option", a);
		}
		if (dst && !val) {
			if (i + 1 >= argc)
				return bad(cmd, usage, "missing value for", a);
			val = argv[++i];
		}
		if (dst)
			*dst = val;
	}
	if (i < argc)
		return bad(cmd, usage, "unexpected argument", argv[i]);
	return i;
}
