#!/bin/sh
# tests/gen.sh - golden tests of `fedwall generate`, and every generated
# ruleset (tests/gen/*.yaml, examples/*.yaml) checked by nftables itself:
# `nft -c -f`, then loaded twice with `nft -f` in one throwaway network
# namespace (idempotence), after which the table must list.
#
# tests/gen/X.yaml with X.nft: exit 0 and stdout == X.nft.  Without X.nft:
# exit 1 (a policy generate refuses).  stderr == X.err when it exists,
# else empty.  Paths under the tree are shown relative to it.
# `make golden` rewrites the .nft and .err files.
. "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# state_of FILE: --state-dir X.state for tests/gen/X.yaml when that
# directory exists (the last known good of X's feeds), else nothing.
state_of() {
	[ -d "${1%.yaml}.state" ] && printf '%s\n' --state-dir "${1%.yaml}.state"
}

# gen FILE: runs generate on FILE into $tmp/out, $tmp/err (tree-relative).
gen() {
	# shellcheck disable=SC2046 # two words or none
	"$FEDWALL" generate -f "$1" $(state_of "$1") >"$tmp/out" 2>"$tmp/err.raw"
	rc=$?
	sed "s|$TOP/||g" "$tmp/err.raw" >"$tmp/err"
	return $rc
}

golden() {
	f=$1 name="gen/${1##*/}" exp=${1%.yaml}
	gen "$f"
	rc=$?
	if [ -f "$exp.nft" ]; then
		if [ "$rc" -eq 0 ]; then
			same "$exp.nft" "$tmp/out" "$name"
		else
			fail "$name (exit $rc)"
			sed 's/^/    /' "$tmp/err" >&2
		fi
	elif [ "$rc" -eq 1 ] && [ ! -s "$tmp/out" ]; then
		pass "$name (refused)"
	else
		fail "$name (exit $rc, expected 1 and no output)"
	fi
	if [ -f "$exp.err" ]; then
		same "$exp.err" "$tmp/err" "$name diagnostics"
	elif [ -s "$tmp/err" ]; then
		fail "$name diagnostics (unexpected)"
		sed 's/^/    /' "$tmp/err" >&2
	fi
}

for f in tests/gen/*.yaml; do
	golden "$f"
done

# Deterministic, and -o writes exactly what stdout shows.
f=tests/gen/host.yaml
"$FEDWALL" generate -f "$f" >"$tmp/a" 2>/dev/null
"$FEDWALL" generate -f "$f" -o "$tmp/b" 2>/dev/null
ok "gen: -o exit 0" test $? -eq 0
same "$tmp/a" "$tmp/b" "gen: -o FILE == stdout"
"$FEDWALL" generate -f "$f" >"$tmp/c" 2>/dev/null
same "$tmp/a" "$tmp/c" "gen: deterministic"
ok "gen: -o leaves no temporary file" test "$(ls "$tmp" | grep -c '^b\.')" -eq 0
# -o to a device or a FIFO writes through it: renaming over /dev/null
# would leave a regular file there (a private one made with mknod here)
if mknod "$tmp/null" c 1 3 2>/dev/null; then
	"$FEDWALL" generate -f "$f" -o "$tmp/null" 2>/dev/null
	ok "gen: -o to a character device exits 0" test $? -eq 0
	ok "gen: ... and it stays a character device" test -c "$tmp/null"
else
	skip "gen: -o to a character device (mknod needs root)"
fi
mkfifo "$tmp/fifo"
# A FIFO nobody reads is refused at once, never waited on.
timeout 10 "$FEDWALL" generate -f "$f" -o "$tmp/fifo" 2>"$tmp/fifo.err"
ok "gen: -o to a FIFO nobody reads fails at once" test $? -eq 1
ok "gen: ... saying so" grep -q "a FIFO that nobody reads" "$tmp/fifo.err"
cat "$tmp/fifo" >"$tmp/from-fifo" &
# (until cat is in open(), the FIFO has no reader yet)
for _ in $(seq 50); do
	"$FEDWALL" generate -f "$f" -o "$tmp/fifo" 2>"$tmp/fifo.err" && break
	grep -q "nobody reads" "$tmp/fifo.err" || break
	sleep 0.1
done
ok "gen: -o to a FIFO with a reader exits 0" test ! -s "$tmp/fifo.err"
wait
same "$tmp/a" "$tmp/from-fifo" "gen: ... and the reader gets the ruleset"
ok "gen: ... and it stays a FIFO" test -p "$tmp/fifo"

# Usage and input errors.
"$FEDWALL" generate --bogus >/dev/null 2>&1
ok "gen: unknown option exits 2" test $? -eq 2
"$FEDWALL" generate -f "$f" extra >/dev/null 2>&1
ok "gen: stray operand exits 2" test $? -eq 2
"$FEDWALL" generate -f "$tmp/nonexistent.yaml" >/dev/null 2>&1
ok "gen: missing policy exits 1" test $? -eq 1
"$FEDWALL" generate -f "$f" -o "$tmp/no/such/dir/x.nft" >/dev/null 2>&1
ok "gen: unwritable -o exits 1" test $? -eq 1
"$FEDWALL" generate -h >/dev/null 2>&1
ok "gen: -h exits 0" test $? -eq 0

# ---- nftables accepts it, and loads it again and again -------------------
if ! can_kernel; then
	skip "gen: nft -c -f and double load (needs root, nft and unshare -n)"
	exit $SUITE_FAILED
fi
for f in tests/gen/*.yaml examples/*.yaml examples/ha/*.yaml; do
	name="gen: nft ${f#tests/}"
	# shellcheck disable=SC2046
	if ! "$FEDWALL" generate -f "$f" $(state_of "$f") -o "$tmp/r.nft" 2>/dev/null; then
		[ -f "${f%.yaml}.nft" ] || [ "${f#examples/}" != "$f" ] ||
			continue        # a refused test policy
		fail "$name (generate failed)"
		continue
	fi
	table=$(sed -n 's/^table inet \([^ ]*\) {}$/\1/p' "$tmp/r.nft")
	if unshare -n nft -c -f "$tmp/r.nft" 2>"$tmp/nft.err"; then
		pass "$name -c"
	else
		fail "$name -c"
		head -20 "$tmp/nft.err" | sed 's/^/    /' >&2
	fi
	if unshare -n sh -c 'nft -f "$1" && nft -f "$1" && nft list table inet "$2" >/dev/null' \
		sh "$tmp/r.nft" "$table" 2>"$tmp/nft.err"; then
		pass "$name loads twice"
	else
		fail "$name loads twice"
		head -20 "$tmp/nft.err" | sed 's/^/    /' >&2
	fi
done
exit $SUITE_FAILED
