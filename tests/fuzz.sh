#!/bin/sh
# tests/fuzz.sh - the libFuzzer targets (tests/fuzz/fuzz_*.c, built by
# `make fuzz-targets` into FUZZ_BUILD, default build-fuzz): every
# regression input (tests/fuzz/regress/<target>/) replayed, then each
# target fuzzed for FUZZ_SECONDS (default 5) from its seed corpus
# (tests/fuzz/corpus/<target>/), inputs bounded by FUZZ_MAX_LEN (at
# least 32 KiB for fuzz_readback, whose seeds are whole kernel dumps).  New
# corpus entries go to a scratch directory (FUZZ_LONG=1, as `make fuzz`
# sets: FUZZ_BUILD/corpus/<target>, kept); a crash is left in
# FUZZ_BUILD/crashes/<target>/ and the check fails.  SKIP without clang
# and libFuzzer.  Independent of $FEDWALL: tools/run-tests.sh runs it once.
. "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 1

FB=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-5}
MAXLEN=${FUZZ_MAX_LEN:-16384}
targets=$(for f in tests/fuzz/fuzz_*.c; do [ -f "$f" ] && basename "$f" .c; done)

if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
	skip "fuzz (clang not installed)"
	exit 0
fi
if ! make --no-print-directory -s fuzz-targets FUZZ_BUILD="$FB" >/dev/null 2>&1; then
	skip "fuzz (clang cannot build the targets: libFuzzer missing? try: apt-get install libclang-rt-dev)"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

for t in $targets; do
	bin=$FB/fuzz/$t
	# Regressions: each input run once; any crash or leak fails.
	reg=tests/fuzz/regress/$t
	if [ -d "$reg" ] && [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
		if "$bin" -runs=1 "$reg"/* >"$tmp/$t.reg" 2>&1; then
			pass "fuzz/$t: $(ls "$reg" | wc -l) regression inputs"
		else
			fail "fuzz/$t: regression inputs"
			grep -m1 -A12 'ERROR\|runtime error\|abort' "$tmp/$t.reg" | sed 's/^/    /' >&2
		fi
	fi
	if [ "${FUZZ_LONG:-0}" = 1 ]; then
		work=$FB/corpus/$t
	else
		work=$tmp/corpus-$t
	fi
	crashes=$FB/crashes/$t
	mkdir -p "$work" "$crashes"
	len=$MAXLEN     # recorded kernel dumps (fuzz_readback) run to 20 KiB
	[ "$t" = fuzz_readback ] && [ "$len" -lt 32768 ] && len=32768
	if "$bin" -max_total_time="$SECS" -max_len="$len" -timeout=20 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
		"$work" "tests/fuzz/corpus/$t" >"$tmp/$t.log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t.log")
		cov=$(grep -o 'cov: [0-9]*' "$tmp/$t.log" | tail -1)
		pass "fuzz/$t: ${SECS}s, ${execs:-?} executions, $cov"
	else
		fail "fuzz/$t (crash kept in $crashes/)"
		grep -m1 -A20 'ERROR\|runtime error\|abort\|deadly signal' "$tmp/$t.log" |
			sed 's/^/    /' >&2
	fi
done
[ "$SUITE_FAILED" -eq 0 ]
