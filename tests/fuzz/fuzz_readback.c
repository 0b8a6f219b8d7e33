/* fuzz_readback.c - libFuzzer target: the netlink read-back parser
 * (nft_decode_dump: the object callbacks and IR conversion nft_read()
 * runs on the kernel's dump of table inet fedwall).
 *
 * Any input: a table decoded into an IR, or refused; the seeds are dumps
 * recorded from a kernel (FEDWALL_RECORD_DUMP, see docs/ROBUSTNESS.md).
 * Beyond "no crash, no leak": a decoded IR names its table, a foreign
 * reason is never empty, and a refusal yields no IR.
 *
 * libnftnl (1.2.4) calls exit() when an attribute it knows has the wrong
 * length ("nf_tables kernel ABI is broken"): trusted kernel data, by
 * design.  Such inputs are recognised by a first run under
 * __lsan_disable() that exit() escapes from (longjmp), and skipped; every
 * other input runs again with leak detection on. */
#include "nft/nft.h"

#include <dlfcn.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void __lsan_disable(void);
void __lsan_enable(void);

static jmp_buf escape;
static volatile int probing;

void exit(int status)
{
	void (*real)(int);

	if (probing) {
		probing = 0;
		longjmp(escape, 1);
	}
	*(void **)&real = dlsym(RTLD_NEXT, "exit");
	real(status);
	__builtin_unreachable();
}

static void decode(const void *buf, size_t size)
{
	struct ir_ruleset *rs = NULL;
	char *why = NULL;
	int ret = nft_decode_dump("fedwall", buf, size, &rs, &why);

	if (ret && (rs || why))
		abort();
	if (!ret && (!rs || strcmp(rs->table, "fedwall")))
		abort();
	if (why && !*why)
		abort();
	ir_free(rs);
	free(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly `size` bytes: reads past it are caught. */
	void *buf = malloc(size ? size : 1);

	if (size)
		memcpy(buf, data, size);
	__lsan_disable();
	if (setjmp(escape)) {
		__lsan_enable();        /* libnftnl refused the input */
		free(buf);
		return 0;
	}
	probing = 1;
	decode(buf, size);
	probing = 0;
	__lsan_enable();
	decode(buf, size);
	free(buf);
	return 0;
}
