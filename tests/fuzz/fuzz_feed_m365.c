/* fuzz_feed_m365.c - libFuzzer target: the Microsoft 365 endpoints feed
 * (feed_parse, format m365) and its version answer (feed_version_parse).
 *
 * Any input: accepted with every address a normalised prefix, sorted and
 * unique, no wider than the guards allow, each on FEED_ALL_PORTS or a
 * group of merged, non-empty ports; or refused with at least one error
 * and nothing kept.  The first byte picks the filters (Skype only,
 * required only, set 11 only), the guards (none or defaults) and, with
 * bit 4, the version parser instead. */
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
	struct feed f = { .format = FEED_M365 };
	const struct guards *g = NULL;
	struct feed_addrs a;
	uint8_t sel = 0;
	char *latest;
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
	if (sel & 16) {
		ok = feed_version_parse("fuzz", (const char *)data, size, &latest, &d);
		if (ok != (d.errors == 0) || ok != (latest != NULL))
			abort();
		free(latest);
		return 0;
	}
	if (sel & 1)
		set1(&f, FK_SERVICE_AREA, &vals[0], "Skype");
	if (sel & 2)
		set1(&f, FK_REQUIRED, &vals[1], "true");
	if (sel & 4)
		set1(&f, FK_IDS, &vals[2], "11");
	g = sel & 8 ? &defaults : NULL;
	ok = feed_parse(&f, "fuzz", (const char *)data, size, g, &a, &d);
	if (ok != (d.errors == 0))
		abort();
	if (!ok && (a.n || a.v || a.ngrps))
		abort();
	check_addrs(&a, g);
	feed_addrs_free(&a);
	return 0;
}
