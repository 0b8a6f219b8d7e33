#!/bin/sh
# tests/usage.sh - the command line itself, without a kernel: each
# command's -h exits 0 and lists its options; contradicting or unknown
# options are usage errors (exit 2, plan 64) that say what is wrong, before
# anything is read.
. "$(dirname "$0")/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# usage NAME STATUS PATTERN ARGS...: `fedwall ARGS` exits STATUS and its
# stderr matches PATTERN (grep -E).
usage() {
	name=$1 want=$2 pat=$3
	shift 3
	"$FEDWALL" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "usage: $name (exit $rc, expected $want)"
		sed 's/^/    /' "$T/err" >&2
	elif ! grep -Eq -- "$pat" "$T/err"; then
		fail "usage: $name (no /$pat/ on stderr)"
		sed 's/^/    /' "$T/err" >&2
	else
		pass "usage: $name"
	fi
}

usage "status --json --format prometheus contradict" 2 \
	"--json and --format prometheus contradict" status --json --format prometheus
usage "status --format text --json contradict" 2 \
	"--json and --format text contradict" status --format=text --json
usage "status --format yaml is unknown" 2 "unknown format 'yaml'" status --format yaml
usage "--force is refresh's" 2 "unknown option '--force'" apply --force
usage "--allow-missing-interfaces is not check's" 2 \
	"unknown option '--allow-missing-interfaces'" check --allow-missing-interfaces
usage "plan's usage errors are 64" 64 "unknown option" plan --bogus
usage "explain's usage errors are 64 (2 is dropped)" 64 "unknown option" explain --bogus 192.0.2.1
usage "explain needs an ADDRESS" 64 "missing 'ADDRESS'" explain
usage "explain takes an address, not a prefix" 64 \
	"not an IPv4 or IPv6 address: '192.0.2.0/24'" explain 192.0.2.0/24
usage "explain takes one port" 64 "not one port" explain 192.0.2.1 tcp/1-2
usage "explain takes at most two operands" 64 "unexpected argument 'x'" explain 192.0.2.1 tcp/1 x

for c in check generate plan apply confirm status flush refresh daemon explain; do
	"$FEDWALL" "$c" -h >"$T/h" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q '^Options:$' "$T/h" &&
		grep -q '^  --state-dir DIR  *the state directory' "$T/h"; then
		pass "usage: $c -h lists what its options do"
	else
		fail "usage: $c -h (exit $rc)"
		sed 's/^/    /' "$T/h" >&2
	fi
done
exit $SUITE_FAILED
