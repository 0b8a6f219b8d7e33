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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_filters ff = {
		{ FK_SERVICE, FK_REGION, FK_NBG }, { "CHIME_VOICECONNECTOR", "us-east-1", "us-east-1" },
	};
	struct feed f = { .format = FEED_AWS };
	struct feed_addrs a;
	uint8_t sel = fuzz_take_sel(&data, &size);

	if (sel & 32)
		f.format = FEED_PLAIN;
	fuzz_feed(&f, &ff, sel, data, size, &a);
	if (a.ngrps)    /* aws and plain: every address on all the ports */
		abort();
	feed_addrs_free(&a);
	return 0;
}
