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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_filters ff = {
		{ FK_SERVICE_AREA, FK_REQUIRED, FK_IDS }, { "Skype", "true", "11" },
	};
	struct feed f = { .format = FEED_M365 };
	struct feed_addrs a;
	uint8_t sel = fuzz_take_sel(&data, &size);

	if (sel & 16) {
		static FILE *sink;
		struct diag d;
		char *latest;
		bool ok;

		if (!sink)
			sink = fopen("/dev/null", "w");
		diag_init(&d, sink);
		ok = feed_version_parse("fuzz", (const char *)data, size, &latest, &d);
		if (ok != (d.errors == 0) || ok != (latest != NULL))
			abort();
		free(latest);
		return 0;
	}
	fuzz_feed(&f, &ff, sel, data, size, &a);
	feed_addrs_free(&a);
	return 0;
}
