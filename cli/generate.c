/* generate.c - `fedwall generate`: policy -> nftables text, offline. */
#include "cli.h"
#include "engine/engine.h"
#include "generator/generator.h"
#include "nft/nft.h"
#include "policy/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define USAGE "[-f POLICY] [-o FILE] [--state-dir DIR] [--resolve]"

static int emit(const struct common_opts *o, const struct ir_ruleset *rs)
{
	struct nft_text_opts to = { .source = o->policy,
				    .generator = "fedwall " FEDWALL_VERSION };
	struct strbuf sb = { 0 };
	int err = 0;

	nft_text(&sb, rs, &to);
	if (o->output && strcmp(o->output, "-")) {
		err = file_write_atomic(o->output, sb_str(&sb), sb.len, 0644);
		if (err)
			fprintf(stderr, "fedwall generate: cannot write '%s': %s\n",
				o->output, file_write_strerror(err));
	} else if (fwrite(sb_str(&sb), 1, sb.len, stdout) != sb.len || fflush(stdout)) {
		fprintf(stderr, "fedwall generate: cannot write output: %s\n",
			strerror(errno));
		err = -EIO;
	}
	sb_free(&sb);
	return err ? EXIT_ERROR : EXIT_OK;
}

int generate_main(int argc, const char *argv[])
{
	struct common_opts o;
	struct engine_want w;
	struct ir_ruleset *rs;
	struct policy *p;
	struct diag d;
	int i = common_parse(argc, argv, "for", USAGE, &o), rc = EXIT_ERROR;

	if (i == -2)
		return EXIT_OK;
	if (i < 0)
		return EXIT_USAGE;
	diag_init(&d, stderr);
	w = (struct engine_want){ .policy = o.policy, .state_dir = o.state_dir,
				  .resolve = o.resolve };
	rs = engine_want_build(&w, &d);
	p = w.p;
	if (rs)
		rc = emit(&o, rs);
	ir_free(rs);
	policy_free(p);
	return rc;
}
