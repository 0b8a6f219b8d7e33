/* fuzz_feed_aws.c - libFuzzer target: AWS ip-ranges.json (feed_parse,
 * format aws).
 *
 * Any input: accepted with what feed_check.h asks (every address on all
 * the partner's ports here: no group), or refused with at least one error
 * and nothing kept.  The first byte picks the filters (one service, one
 * region, one border group), the guards (none or defaults) and, with bit
 * 5, format plain instead (a list's syntax through the feed's wrapper). */
#include "refresh/refresh.h"
#include "tests/fuzz/feed_check.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink;

static void set1(struct feed *f, enum feed_key k, struct strval *v, const char *s)
{
	v->s = (char *)s;
	f->filter[k].v = v;
	f->filter[k].n = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct guards defaults = {
		.max_shrink = 50, .min_prefix_v4 = 8, .min_prefix_v6 = 32,
		.stale_after = 86400, .max_entries = 1000,
	};
	struct strval vals[3] = { { 0 } };
	struct feed f = { .format = FEED_AWS };
	const struct guards *g;
	struct feed_addrs a;
	uint8_t sel = 0;
	struct diag d;
	bool ok;

	if (!sink)
		sink = fopen("/dev/null", "w");
	diag_init(&d, sink);
	if (size > 0) {
		sel = data[0];
		data++;
		size--;
	}
	if (sel & 1)
		set1(&f, FK_SERVICE, &vals[0], "CHIME_VOICECONNECTOR");
	if (sel & 2)
		set1(&f, FK_REGION, &vals[1], "us-east-1");
	if (sel & 4)
		set1(&f, FK_NBG, &vals[2], "us-east-1");
	g = sel & 8 ? &defaults : NULL;
	if (sel & 32)
		f.format = FEED_PLAIN;
	ok = feed_parse(&f, "fuzz", (const char *)data, size, g, &a, &d);
	if (ok != (d.errors == 0))
		abort();
	if (!ok && (a.n || a.v || a.ngrps))
		abort();
	if (a.ngrps)
		abort();
	check_addrs(&a, g);
	feed_addrs_free(&a);
	return 0;
}
