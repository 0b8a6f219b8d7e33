/* fuzz_state.c - libFuzzer target: the state file's parser (state_parse,
 * what state_load runs on STATE_DIR/state after its size and mode
 * checks), every format.
 *
 * The input's checksum is made right first (formats 4, 3 and 2: its
 * trailer; format 1: a `# sum` line appended), so that the fuzzer reaches
 * the parser behind it.  Any input: refused with one warning, or a state
 * whose encoding parses again to the same bytes; a trusted format-4
 * input is byte for byte what the encoder writes (nothing half-read, no
 * second spelling of a state, its fetch fields and port groups included;
 * format 3 is read as it is, 2 and 1 are migrated: each name split into
 * its families).  The seeds are a format-4 (a list URL's validators, a
 * feed's version and port groups), a format-3, a format-2 and a format-1
 * state. */
#include "refresh/state.h"

#include <endian.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input with a checksum that matches. */
static char *summed(const uint8_t *data, size_t size, size_t *len, bool *v2)
{
	struct strbuf sb = { 0 };
	uint64_t sum;

	sb_add(&sb, (const char *)data, size);
	*v2 = size >= STATE2_MAGIC_LEN && !memcmp(data, STATE2_MAGIC, STATE2_MAGIC_LEN);
	if (*v2 && size >= 16) {
		sum = htole64(sum64(sb.s, size - 8));
		memcpy(sb.s + size - 8, &sum, 8);
	} else if (!*v2) {
		sb_addf(&sb, "# sum %016" PRIx64 "\n", fnv1a64(FNV1A64_INIT, data, size));
	}
	*len = sb.len;
	return sb.s ? sb.s : xstrdup("");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state a = { 0 }, b = { 0 };
	unsigned char *one = NULL, *two = NULL;
	size_t len, n1 = 0, n2 = 0;
	uint32_t version = 0;
	struct diag d;
	bool v2;
	char *in = summed(data, size, &len, &v2);

	diag_init(&d, NULL);
	if (!state_parse(&a, "fuzz", in, len, &d)) {
		if (a.n || !a.discarded || d.warnings != 1)
			abort();
		goto out;
	}
	one = state_encode(&a, &n1);
	if (v2 && len >= 12)
		memcpy(&version, in + 8, sizeof(version));
	if (!one || (v2 && le32toh(version) == STATE_VERSION &&
		     (n1 != len || memcmp(one, in, len))))
		abort();
	if (!state_parse(&b, "again", one, n1, &d))
		abort();
	two = state_encode(&b, &n2);
	if (!two || n1 != n2 || memcmp(one, two, n1))
		abort();
out:
	free(one);
	free(two);
	state_free(&a);
	state_free(&b);
	free(in);
	return 0;
}
