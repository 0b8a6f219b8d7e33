/* harness.h - the unit-test harness: one TEST() per behaviour, CHECK*()
 * report file:line and keep going, and every test prints one line
 * `PASS: suite/name` or `FAIL: suite/name` for tools/run-tests.sh to count.
 * Include it from exactly one .c file per test binary. */
#ifndef FEDWALL_HARNESS_H
#define FEDWALL_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*th_fn)(void);

/* xorshift32: the property tests' random numbers, seeded, so that every
 * run draws the same and a failure can be replayed. */
static inline unsigned th_xorshift(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static struct { const char *name; th_fn fn; } th_tests[256];
static unsigned th_ntests, th_failed_checks;

static void th_register(const char *name, th_fn fn)
{
	if (th_ntests < sizeof(th_tests) / sizeof(th_tests[0])) {
		th_tests[th_ntests].name = name;
		th_tests[th_ntests].fn = fn;
		th_ntests++;
	}
}

#define TEST(name)                                                             \
	static void name(void);                                                \
	__attribute__((constructor)) static void th_reg_##name(void)           \
	{                                                                      \
		th_register(#name, name);                                      \
	}                                                                      \
	static void name(void)

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			th_failed_checks++;                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define CHECK_INT(a, b)                                                        \
	do {                                                                   \
		long long th_a = (long long)(a), th_b = (long long)(b);        \
		if (th_a != th_b) {                                            \
			th_failed_checks++;                                    \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n",  \
				__FILE__, __LINE__, #a, th_a, th_b);           \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *th_a = (a), *th_b = (b);                           \
		if (!th_a || !th_b || strcmp(th_a, th_b) != 0) {               \
			th_failed_checks++;                                    \
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #a, th_a ? th_a : "(null)", \
				th_b ? th_b : "(null)");                       \
		}                                                              \
	} while (0)

static const char *th_suite(const char *argv0)
{
	const char *s = strrchr(argv0, '/');

	return s ? s + 1 : argv0;
}

int main(int argc, char **argv)
{
	unsigned failed = 0;

	(void)argc;
	for (unsigned i = 0; i < th_ntests; i++) {
		unsigned before = th_failed_checks;

		th_tests[i].fn();
		if (th_failed_checks != before)
			failed++;
		printf("%s: unit/%s/%s\n", th_failed_checks != before ? "FAIL" : "PASS",
		       th_suite(argv[0]), th_tests[i].name);
	}
	return failed ? 1 : 0;
}

#endif
