# tests/lib.sh - shared by the shell suites.  Each check prints one line
# `PASS: name`, `FAIL: name` or `SKIP: name (why)` for tools/run-tests.sh.
# FEDWALL is the binary under test (set by the runner).

: "${FEDWALL:=build/fedwall}"
TOP=$(cd "$(dirname "$0")/.." && pwd)
while [ ! -f "$TOP/Makefile" ] && [ "$TOP" != / ]; do TOP=$(dirname "$TOP"); done
case "$FEDWALL" in /*) ;; *) FEDWALL="$TOP/$FEDWALL" ;; esac
# FEDWALL_WRAP: an executable that runs the binary under a tool (valgrind:
# tools/valgrind.sh); the suites then run it instead of $FEDWALL.
if [ -n "${FEDWALL_WRAP:-}" ]; then FEDWALL=$FEDWALL_WRAP; fi
SUITE_FAILED=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; SUITE_FAILED=1; }
skip() { echo "SKIP: $*"; }

# ok NAME CMD...: passes when CMD exits 0.
ok() {
	name=$1; shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# need_root NAME: true when this run can touch the kernel (root + nft).
can_kernel() {
	[ "$(id -u)" -eq 0 ] && command -v nft >/dev/null 2>&1 &&
		unshare -n true 2>/dev/null
}

# same FILE_EXPECTED FILE_ACTUAL NAME: exact comparison, diff on failure.
same() {
	if cmp -s "$1" "$2"; then
		pass "$3"
	else
		fail "$3"
		diff -u "$1" "$2" | head -40 | sed 's/^/    /' >&2
	fi
}
