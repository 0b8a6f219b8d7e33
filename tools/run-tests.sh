#!/bin/sh
# Runs every suite for each build directory given (plain, sanitized) and
# ends with one line `N passed, N failed` (and skipped, if any).
set -u
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run_one BUILD CMD...: runs one suite; a suite that dies (a sanitizer
# abort, a crash) counts as a failure even if it printed no FAIL line.
run_one() {
	b=$1; shift
	out=$(mktemp)
	"$@" >"$out" 2>&1
	rc=$?
	sed "s|^\(PASS\|FAIL\|SKIP\): |\1: $b/|" "$out" | tee -a "$log"
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$out"; then
		echo "FAIL: $b/$* (exit status $rc)" | tee -a "$log"
	fi
	rm -f "$out"
}

for build in "$@"; do
	echo "== suites with $build"
	export FEDWALL="$build/fedwall"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "$build" "$t"
	done
	for s in tests/*.sh tests/lab/*.sh; do
		[ -f "$s" ] || continue
		case "$s" in */lib.sh|*/labrc.sh) continue ;; esac
		# The fuzz targets are a build of their own: fuzzed once.
		[ "$s" = tests/fuzz.sh ] && [ "$build" != "$1" ] && continue
		run_one "$build" sh "$s"
	done
done

p=$(grep -c '^PASS: ' "$log")
f=$(grep -c '^FAIL: ' "$log")
s=$(grep -c '^SKIP: ' "$log")
if [ "$f" -ne 0 ]; then
	echo "failed:"
	grep '^FAIL: ' "$log" | sed 's/^/  /'
fi
if [ "$s" -ne 0 ]; then
	echo "$p passed, $f failed, $s skipped"
else
	echo "$p passed, $f failed"
fi
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
