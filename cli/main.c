/* main.c - fedwall's command table: exact matching, and help generated
 * from the same table (the wireguard-tools way). */
#include "cli.h"

#include <malloc.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int argc, const char *argv[]);
	const char *summary;
} commands[] = {
	{ "check", check_main, "Validate a policy and everything it names (like nft -c)" },
	{ "generate", generate_main, "Print the nftables ruleset a policy compiles to" },
	{ "plan", plan_main, "Show what apply would change in the kernel (exit 2: changes pending)" },
	{ "apply", apply_main, "Apply a policy to the kernel in one transaction" },
	{ "status", status_main, "Show the live table: per partner elements and counters" },
	{ "explain", explain_main, "Say who admits an address, on which ports, and why (exit 2: dropped)" },
	{ "flush", flush_main, "Delete fedwall's table (and nothing else)" },
	{ "refresh", refresh_main, "Resolve names, re-read lists, apply what changed (for cron)" },
	{ "daemon", daemon_main, "Keep partners' addresses current, each source on its own schedule" },
	{ "confirm", confirm_main, "Keep what 'apply --confirm' applied (else it is rolled back)" },
};

const char *cli_summary(const char *cmd)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].summary;
	return NULL;
}

static void usage(FILE *out, const char *prog)
{
	fprintf(out, "Usage: %s <command> [options]\n\nCommands:\n", prog);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'%s <command> -h' shows a command's options;"
		" '%s --version' the version.\n", prog, prog);
}

/* A run builds and frees arrays of 100k prefixes several times over (the
 * list, the state's copy, the merges, the table's image).  glibc serves
 * each from a fresh mmap and unmaps it on free, so every one is faulted
 * in page by page again: a third of a one-line refresh's page faults.
 * From the heap they are reused.  The threshold stays below the 1M-prefix
 * arrays, which keep their own mappings (peak RSS); the daemon hands the
 * heap back between cycles (malloc_trim). */
static void heap_tune(void)
{
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	mallopt(M_TOP_PAD, 4 << 20);
}

int main(int argc, const char *argv[])
{
	const char *prog = "fedwall";

	heap_tune();

	if (argc < 2) {
		usage(stderr, prog);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout, prog);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("fedwall %s\n", FEDWALL_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: invalid command '%s'\n", prog, argv[1]);
	usage(stderr, prog);
	return EXIT_USAGE;
}
