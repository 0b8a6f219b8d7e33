/* opts.c - the options all subcommands share, parsed one way, and each
 * command's -h from one table: what every option it takes does. */
#include "cli.h"
#include "engine/engine.h"
#include "policy/policy.h"

#include <string.h>

/* One line of -h.  `letter` is the common_parse letter (0: every command
 * takes it); `cmds` (NULL: any command taking the letter) limits a line to
 * the commands it is written for: the same option may do a different
 * thing in each (-v), and a command's own options (--confirm, --format)
 * are parsed in its file but shown here, so that -h lists them all. */
static const struct opt_help {
	char letter;
	const char *cmds;
	const char *flag;
	const char *help;
} helps[] = {
	{ 'f', NULL, "-f, --file POLICY",
	  "the policy file (default " POLICY_DEFAULT_PATH ")" },
	{ 't', NULL, "--table NAME",
	  "work on table inet NAME instead of the policy's (no policy read)" },
	{ 'r', NULL, "--resolve",
	  "query DNS for host names and SRV domains now, instead of the last"
	  " known good state in the state directory" },
	{ 'o', NULL, "-o, --output FILE",
	  "write to FILE (replaced atomically) instead of standard output" },
	{ 'j', NULL, "--json", "print one JSON object instead of text" },
	{ 0, " status ", "--format FORMAT",
	  "text (default), json (= --json) or prometheus (the metrics)" },
	{ 0, " apply ", "--confirm SECONDS",
	  "roll the table back unless 'fedwall confirm' runs within SECONDS"
	  " (1 to 86400)" },
	{ 0, " explain ", "--live",
	  "answer from the kernel's table (read back) instead of the table the"
	  " policy and the state make; say where they disagree" },
	{ 'F', NULL, "--force",
	  "let a partner shrink by more than guards.max_shrink (that guard"
	  " only: no other guard yields)" },
	{ 'i', NULL, "--allow-missing-interfaces",
	  "load a host-mode policy although edge.interfaces names an interface"
	  " this machine does not have (yet); status and the metrics report it" },
	{ 'm', NULL, "--metrics FILE",
	  "after each run, write the Prometheus metrics to FILE (as"
	  " 'status --format prometheus -o FILE')" },
	{ 'd', NULL, "-d, --foreground",
	  "stay in the foreground and log to standard error" },
	{ 'v', " check ", "-v, --verbose", "also print the normalised policy" },
	{ 'v', " plan apply ", "-v, --verbose",
	  "every element changed, and why the table is replaced" },
	{ 'v', " refresh daemon ", "-v, --verbose",
	  "every source: what it answered, what was cached" },
	{ 'v', " status flush ", "-v, --verbose", "more detail" },
	{ 0, NULL, "--state-dir DIR",
	  "the state directory: last known good addresses, the lock (default "
	  STATE_DIR_DEFAULT ")" },
	{ 0, NULL, "-h, --help", "print this help and exit" },
};

static bool takes(const char *allowed, char c)
{
	return strchr(allowed, c) != NULL;
}

/* Whether help line h is for command cmd, which takes `allowed`. */
static bool help_for(const struct opt_help *h, const char *cmd, const char *allowed)
{
	char word[40];

	if (h->letter && !takes(allowed, h->letter))
		return false;
	if (!h->cmds)
		return true;
	snprintf(word, sizeof(word), " %s ", cmd);
	return strstr(h->cmds, word) != NULL;
}

/* "  FLAG   text", the text wrapped at 79 columns under itself. */
static void help_line(const char *flag, const char *text)
{
	enum { INDENT = 31, WIDTH = 79 };
	int col = printf("  %-28s", flag);
	bool first = true;

	while (*text) {
		size_t n = strcspn(text, " ");

		if (!first && col + 1 + (int)n > WIDTH)
			col = printf("\n%*s", INDENT - 1, "") - 1;
		col += printf(" %.*s", (int)n, text);
		text += n + (text[n] == ' ');
		first = false;
	}
	printf("\n");
}

static void help(const char *cmd, const char *allowed, const char *usage)
{
	printf("Usage: fedwall %s %s\n\n", cmd, usage);
	if (cli_summary(cmd))
		printf("%s.\n\n", cli_summary(cmd));
	printf("Options:\n");
	for (size_t i = 0; i < ARRAY_SIZE(helps); i++)
		if (help_for(&helps[i], cmd, allowed))
			help_line(helps[i].flag, helps[i].help);
	printf("\nSee fedwall(8) for the whole story.\n");
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
			help(cmd, allowed, usage);
			return -2;
		} else if (takes(allowed, 'v') && (!strcmp(a, "-v") || !strcmp(a, "--verbose"))) {
			o->verbose = true;
		} else if (takes(allowed, 'j') && !strcmp(a, "--json")) {
			o->json = true;
		} else if (takes(allowed, 'r') && !strcmp(a, "--resolve")) {
			o->resolve = true;
		} else if (takes(allowed, 'F') && !strcmp(a, "--force")) {
			o->force = true;
		} else if (takes(allowed, 'i') && !strcmp(a, "--allow-missing-interfaces")) {
			o->allow_missing_ifaces = true;
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

bool cli_ifaces_refused(const struct common_opts *o, const struct policy *p, struct diag *d)
{
	unsigned errors = d->errors;

	ifaces_check(p, o->allow_missing_ifaces ? IFACE_WARN : IFACE_REFUSE, d);
	return d->errors > errors;
}
