#!/bin/sh
# tests/policy.sh - golden tests of the policy language and `fedwall check`:
# valid policies print their normalised form (and that form checks and
# prints identically), invalid ones give exactly the expected diagnostics,
# every example checks, usage errors exit 2.  `make golden` rewrites the
# .ok and .err files.
. "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check_ok NAME FILE [GOLDEN]: exit 0, stdout == GOLDEN (when given), and
# the printed policy is itself valid and prints back identically.
check_ok() {
	name=$1 file=$2 golden=${3:-}
	if "$FEDWALL" check -v -f "$file" >"$tmp/out" 2>"$tmp/err"; then
		if [ -n "$golden" ]; then
			# list paths print absolute: golden files hold them
			# relative to the top of the tree
			sed "s|$TOP/||g" "$tmp/out" >"$tmp/rel"
			same "$golden" "$tmp/rel" "$name"
		else
			pass "$name"
		fi
	else
		fail "$name (exit $?)"
		sed 's/^/    /' "$tmp/err" >&2
		return
	fi
	cp "$tmp/out" "$tmp/printed.yaml"
	if "$FEDWALL" check -v -f "$tmp/printed.yaml" >"$tmp/out2" 2>"$tmp/err"; then
		same "$tmp/out" "$tmp/out2" "$name round trip"
	else
		fail "$name round trip (exit $?)"
		sed 's/^/    /' "$tmp/err" >&2
	fi
}

for f in tests/policy/ok/*.yaml; do
	check_ok "policy/ok/${f##*/}" "$f" "${f%.yaml}.ok"
done

for f in tests/policy/fail/*.yaml; do
	name="policy/fail/${f##*/}"
	"$FEDWALL" check -f "$f" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 1 ]; then
		fail "$name (exit $rc, expected 1)"
		sed 's/^/    /' "$tmp/err" >&2
	elif [ -s "$tmp/out" ]; then
		fail "$name (wrote to stdout)"
	else
		same "${f%.yaml}.err" "$tmp/err" "$name"
	fi
done

# multi CASE: `check` of tests/policy/multi/CASE.yaml exits 1 and writes
# exactly CASE.err (list files named relative to the top of the tree):
# every problem in one run, the policy's and its list files'.
multi() {
	name=policy/multi/$1 f=tests/policy/multi/$1
	"$FEDWALL" check -f "$f.yaml" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 1 ] || [ -s "$tmp/out" ]; then
		fail "$name (exit $rc, expected 1 and nothing on stdout)"
		sed 's/^/    /' "$tmp/err" >&2
		return
	fi
	sed "s|$TOP/||g" "$tmp/err" >"$tmp/rel"
	same "$f.err" "$tmp/rel" "$name"
}

multi policy
multi lists-only
multi shared-list
# generate reads the policy the same way, and builds nothing from it
if "$FEDWALL" generate -f tests/policy/multi/policy.yaml >"$tmp/out" 2>/dev/null ||
	[ -s "$tmp/out" ]; then
	fail "policy/multi/generate-refuses"
else
	pass "policy/multi/generate-refuses"
fi

for f in examples/*.yaml examples/ha/*.yaml; do
	check_ok "policy/example/${f#examples/}" "$f"
done

# usage NAME STATUS ARGS...: `fedwall check ARGS` exits STATUS.
usage() {
	name=$1 want=$2
	shift 2
	"$FEDWALL" check "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		pass "policy/usage/$name"
	else
		fail "policy/usage/$name (exit $rc, expected $want)"
	fi
}

usage operand 2 -f examples/msn-pic.yaml examples/gateway.yaml
usage unknown-option 2 -x
usage missing-value 2 -f
usage json-not-taken 2 --json -f examples/msn-pic.yaml
usage help 0 -h
usage missing-file 1 -f "$tmp/does-not-exist.yaml"
usage directory 1 -f tests
usage quiet-when-valid 0 -f examples/msn-pic.yaml
if [ -s "$tmp/out" ] || [ -s "$tmp/err" ]; then
	fail "policy/usage/quiet-output (check without -v printed something)"
else
	pass "policy/usage/quiet-output"
fi
usage state-dir 0 --state-dir "$tmp" -f examples/msn-pic.yaml
usage long-file 0 --file=examples/msn-pic.yaml

exit $SUITE_FAILED
