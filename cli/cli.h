/* cli.h - the subcommands.  Each lives in its own file as
 * <name>_main(argc, argv), with argv[0] the subcommand's name.
 * Exit status: 0 success, 1 error (invalid input, kernel refused), 2 usage;
 * `plan` adds 2 = changes pending (its usage errors are 64). */
#ifndef FEDWALL_CLI_H
#define FEDWALL_CLI_H

#include "common/common.h"

#define STATE_DIR_DEFAULT "/var/lib/fedwall"

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_USAGE = 2 };

/* Options every subcommand that reads a policy takes the same way. */
struct common_opts {
	const char *policy;     /* -f, --file; default POLICY_DEFAULT_PATH */
	const char *state_dir;  /* --state-dir; default STATE_DIR_DEFAULT */
	bool verbose;           /* -v */
	bool json;              /* --json */
	bool resolve;           /* --resolve: query DNS (generate/plan/apply) */
	const char *output;     /* -o FILE */
	const char *table;      /* --table NAME (status, flush) */
	bool force;             /* --force: past guards.max_shrink only (refresh) */
	bool allow_missing_ifaces;      /* --allow-missing-interfaces (apply, refresh, daemon) */
	bool foreground;        /* -d: stay in the foreground, log to stderr (daemon) */
	const char *metrics;    /* --metrics FILE: prometheus file after each run (refresh, daemon) */
};

/* Parses argv into `o`; `allowed` is a string of the option letters this
 * subcommand takes among "fvjrotFidm" (f=-f, v=-v, j=--json, r=--resolve,
 * o=-o, t=--table, F=--force, i=--allow-missing-interfaces, d=-d,
 * m=--metrics); --state-dir and -h are always accepted.  -h prints what
 * each option the command takes does (opts.c's table).  Returns the index
 * of the first operand, or -1 after printing a usage error (exit 2), or -2
 * when help was printed (exit 0). */
int common_parse(int argc, const char *argv[], const char *allowed,
		 const char *usage, struct common_opts *o);

struct policy;

/* Whether host-mode policy `p` names an interface this machine does not
 * have, reported (an error each; a warning each under
 * --allow-missing-interfaces, which then returns false). */
bool cli_ifaces_refused(const struct common_opts *o, const struct policy *p, struct diag *d);

/* The command's one-line summary from main.c's table, or NULL. */
const char *cli_summary(const char *cmd);

int check_main(int argc, const char *argv[]);
int generate_main(int argc, const char *argv[]);
int apply_main(int argc, const char *argv[]);
int plan_main(int argc, const char *argv[]);
int status_main(int argc, const char *argv[]);
int flush_main(int argc, const char *argv[]);
int refresh_main(int argc, const char *argv[]);
int daemon_main(int argc, const char *argv[]);
int confirm_main(int argc, const char *argv[]);
int explain_main(int argc, const char *argv[]);

#endif
