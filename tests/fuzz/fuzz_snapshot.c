/* fuzz_snapshot.c - libFuzzer target: the IR image decoder (ir_decode,
 * what reads STATE_DIR/live.cache behind its checksum and key).
 *
 * Any input: refused with a reason, or a ruleset that encodes to an
 * image that decodes again to the same image (nothing half-read, nothing
 * the encoder cannot write).  The seeds are images of the example
 * policies' rulesets. */
#include "generator/snapshot.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly `size` bytes: reads past it are caught. */
	void *buf = malloc(size ? size : 1);
	struct strbuf a = { 0 }, b = { 0 };
	struct ir_ruleset *rs, *again;
	const char *why = NULL;

	if (size)
		memcpy(buf, data, size);
	rs = ir_decode(buf, size, &why);
	if (!rs && (!why || !*why))
		abort();
	if (rs) {
		ir_encode(rs, &a);
		again = ir_decode(a.s, a.len, &why);
		if (!again)
			abort();
		ir_encode(again, &b);
		if (a.len != b.len || memcmp(a.s, b.s, a.len))
			abort();
		ir_free(again);
	}
	ir_free(rs);
	sb_free(&a);
	sb_free(&b);
	free(buf);
	return 0;
}
