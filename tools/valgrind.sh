#!/bin/sh
# tools/valgrind.sh BUILD [VALGRIND]: the unit tests of BUILD and the shell
# suites that need no kernel of their own (tests/policy.sh, tests/gen.sh)
# with every run of the binary under valgrind memcheck.  Each run logs to
# a file of its own; any log with content (an invalid access, an
# uninitialised value used, a definite or indirect leak) fails, whatever
# the exit status the suite expected.  Ends with `N passed, N failed`.
set -u
cd "$(dirname "$0")/.."
build=${1:-build}
vg=${2:-valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --quiet}
if ! command -v valgrind >/dev/null 2>&1; then
	echo "SKIP: valgrind (not installed: apt-get install valgrind)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/logs"
top=$(pwd)
# The wrapper the suites run as $FEDWALL (tests/lib.sh: FEDWALL_WRAP).
cat >"$tmp/fedwall" <<EOW
#!/bin/sh
exec $vg --log-file="$tmp/logs/fedwall.%p.log" "$top/$build/fedwall" "\$@"
EOW
chmod +x "$tmp/fedwall"

pass=0 failed=0
result() {
	if [ "$1" -eq 0 ]; then
		echo "PASS: valgrind/$2"; pass=$((pass + 1))
	else
		echo "FAIL: valgrind/$2"; failed=$((failed + 1))
	fi
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	$vg --log-file="$tmp/logs/$n.%p.log" "$t" >"$tmp/out" 2>&1
	rc=$?
	[ "$rc" -eq 0 ] && ! find "$tmp/logs" -name "$n.*" -size +0 | grep -q .
	result $? "unit/$n (exit $rc)"
	grep -h '^FAIL' "$tmp/out" | sed 's/^/    /'
done
for s in tests/policy.sh tests/gen.sh; do
	FEDWALL_WRAP="$tmp/fedwall" FEDWALL="$build/fedwall" sh "$s" >"$tmp/out" 2>&1
	rc=$?
	result "$rc" "$s: $(grep -c '^PASS' "$tmp/out") checks"
	grep -h '^FAIL' "$tmp/out" | sed 's/^/    /'
done
runs=$(ls "$tmp/logs" | grep -c '^fedwall\.')
bad=$(find "$tmp/logs" -name 'fedwall.*' -size +0)
[ -z "$bad" ]
result $? "$runs runs of fedwall under the suites, none with a memcheck report"
for f in $bad; do sed 's/^/    /' "$f" | head -40; done
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
