/* fuzz_list.c - libFuzzer target: partner address list files
 * (list_parse, the parser list_read uses after reading the file).
 *
 * Any input: accepted with every address a normalised prefix no wider
 * than the guards allow, or refused with at least one error and `out`
 * left as it was.  The first byte picks the guards (none, or defaults),
 * so that both the strict (offline) and lenient (refresh) paths run. */
#include "refresh/refresh.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct guards defaults = {
		.max_shrink = 50, .min_prefix_v4 = 8, .min_prefix_v6 = 32,
		.stale_after = 86400,
	};
	const struct guards *g = NULL;
	struct addr_list out = { 0 };
	struct prefix keep = { .family = 4, .len = 32, .a = { 192, 0, 2, 1 } };
	struct diag d;
	bool ok;

	if (!sink)
		sink = fopen("/dev/null", "w");
	diag_init(&d, sink);
	if (size > 0) {
		g = data[0] & 1 ? &defaults : NULL;
		data++;
		size--;
	}
	addr_list_push(&out, &keep, NULL);      /* must survive a refusal */
	ok = list_parse("fuzz.txt", (const char *)data, size, g, &out, &d);
	if (ok != (d.errors == 0))
		abort();
	if (!ok && out.n != 1)
		abort();
	for (size_t i = 1; i < out.n; i++) {
		const struct prefix *p = &out.v[i];

		if ((p->family != 4 && p->family != 6) || p->len > (p->family == 4 ? 32 : 128))
			abort();
		if (g && p->len < (p->family == 4 ? g->min_prefix_v4 : g->min_prefix_v6))
			abort();
		if (out.locs[i].line == 0 || out.locs[i].col == 0)
			abort();
	}
	addr_list_free(&out);
	return 0;
}
