#!/bin/sh
# tests/hostile.sh - hostile input (docs/ROBUSTNESS.md, "Hostile input"):
# huge, deep, malformed and strange files as the policy and as a partner's
# list.  Each must be refused with a clear error or handled, within
# generous bounds of time and memory (a guard against hangs and blow-ups,
# not a performance assertion: 20 s, 1 GiB peak RSS, killed at 60 s), and
# a source that failed to parse must leave nothing behind: no output file
# from generate -o, and (in a network namespace of its own) the table
# applied before unchanged.  Inputs are generated in a temporary directory.
. "$(dirname "$0")/lib.sh"

if [ -z "${FWT_IN_NETNS:-}" ] && can_kernel; then
	FWT_IN_NETNS=1 exec unshare -n sh "$0" "$@"
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/state"
MAX_S=20
MAX_KB=$((1024 * 1024))
TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=

# bounded NAME WANT CMD...: runs CMD (output in $T/out, $T/err) and passes
# when it exits WANT within MAX_S seconds and MAX_KB of peak memory.
bounded() {
	name=$1 want=$2; shift 2
	if [ -n "$TIME" ]; then
		$TIME -f '%e %M' -o "$T/time" timeout 60 "$@" >"$T/out" 2>"$T/err"
	else
		timeout 60 "$@" >"$T/out" 2>"$T/err"
	fi
	got=$?
	secs=0 kb=0
	# GNU time puts "Command exited with non-zero status N" first.
	[ -n "$TIME" ] && read -r secs kb <<-EOT
	$(tail -n 1 "$T/time")
	EOT
	if [ "$got" -ne "$want" ]; then
		fail "$name (exit $got, expected $want)"
		head -5 "$T/err" | sed 's/^/    /' >&2
	elif [ "${secs%.*}" -ge "$MAX_S" ] || [ "$kb" -ge "$MAX_KB" ]; then
		fail "$name (${secs}s, ${kb} KiB: over ${MAX_S}s or $MAX_KB KiB)"
	else
		pass "$name (${secs}s, $((kb / 1024)) MiB)"
	fi
}

# says NAME PATTERN: the last command's stderr has PATTERN.
says() {
	if grep -q -- "$2" "$T/err"; then
		pass "$1"
	else
		fail "$1 (stderr lacks '$2')"
		head -5 "$T/err" | sed 's/^/    /' >&2
	fi
}

# policy_with_list FILE LIST: a policy whose partner 'acme' reads LIST.
policy_with_list() {
	cat >"$1" <<EOP
version: 1
partners:
  acme:
    services: [sip-federation]
    addresses: [198.51.100.10]
    lists: [$2]
EOP
}

# refused NAME POLICY PATTERN: check and generate -o exit 1 saying
# PATTERN, and generate leaves no output file.
refused() {
	rm -f "$T/out.nft"
	bounded "hostile: $1: check refuses" 1 "$FEDWALL" check -f "$2" --state-dir "$T/state"
	says "hostile: $1: the error says why" "$3"
	bounded "hostile: $1: generate refuses" 1 \
		"$FEDWALL" generate -f "$2" -o "$T/out.nft" --state-dir "$T/state"
	if [ -e "$T/out.nft" ] || ls "$T"/out.nft.* >/dev/null 2>&1; then
		fail "hostile: $1: generate -o left a file"
	else
		pass "hostile: $1: generate -o left no file"
	fi
}

# handled NAME POLICY: check and generate exit 0.
handled() {
	bounded "hostile: $1: check" 0 "$FEDWALL" check -f "$2" --state-dir "$T/state"
	bounded "hostile: $1: generate" 0 \
		"$FEDWALL" generate -f "$2" -o "$T/out.nft" --state-dir "$T/state"
}

P=$T/p.yaml
L=$T/list.txt

# ---- the policy file --------------------------------------------------

# 10 MB: a valid policy padded with comments, and one of 10 MB of partners.
{ echo "version: 1"; echo "partners:"
  echo "  acme: {services: [sip-federation], addresses: [198.51.100.10]}"
  yes '# padding padding padding padding padding padding padding padding padding' |
	head -c 10485760; echo; } >"$P"
handled "10 MB policy (comments)" "$P"
awk 'BEGIN { print "version: 1"; print "partners:";
	for (i = 0; i < 40000; i++)
		printf "  p%06d: {services: [sip-federation], addresses: [10.%d.%d.%d]}\n",
			i, int(i / 65536), int(i / 256) % 256, i % 256 }' >"$P"
handled "4 MB policy (40000 partners)" "$P"
head -c 70000000 /dev/zero | tr '\0' '#' >"$P"
refused "70 MB policy" "$P" "larger than"
# Deep nesting, an alias bomb ("billion laughs").
{ echo "version: 1"; printf 'partners: '; head -c 100000 /dev/zero | tr '\0' '['; } >"$P"
refused "policy nested 100000 deep" "$P" "nested deeper than"
cat >"$P" <<'EOP'
version: 1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
EOP
refused "alias bomb" "$P" "anchor"
printf 'version: 1\npartners:\n  ac\000me: {services: [sip-federation], addresses: [198.51.100.10]}\n' >"$P"
refused "NUL byte in the policy" "$P" "error"
printf 'version: 1\r\npartners:\r\n  acme: {services: [sip-federation], addresses: [198.51.100.10]}\r\n' >"$P"
handled "CRLF policy" "$P"
printf 'version: 1\npartners:\n  acme:\n    description: "caf\351"\n    services: [sip-federation]\n    addresses: [198.51.100.10]\n' >"$P"
refused "non-UTF-8 policy" "$P" "error"

# ---- a partner's list file ----------------------------------------------

policy_with_list "$P" "$L"
awk 'BEGIN { for (i = 0; i < 1000000; i++)
	printf "10.%d.%d.%d\n", int(i / 65536), int(i / 256) % 256, i % 256 }' >"$L"
refused "list of 1M lines, over the default max_entries" "$P" \
	"more than guards.max_entries 250000"
echo "guards: {max_entries: 1000000}" >>"$P"
handled "list of 1M lines under max_entries 1000000" "$P"
awk 'BEGIN { for (i = 0; i < 100000; i++)
	printf "203.%d.%d.%d/32\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256 }' >"$L"
handled "list of 100k /32s" "$P"
head -c 10485760 /dev/zero | tr '\0' '1' >"$L"
refused "list that is one 10 MB line" "$P" "list.txt:1:1025: error: line longer than"
printf '192.0.2.1\n198.51.100.\00020\n' >"$L"
refused "NUL byte in a list" "$P" "list.txt:2:1: error: .*NUL byte"
printf '# crlf\r\n192.0.2.1\r\n198.51.100.0/24 # x\r\n' >"$L"
handled "CRLF list" "$P"
printf '192.0.2.1\n\3777.0.0.1\n' >"$L"
refused "non-UTF-8 bytes in a list" "$P" "list.txt:2:1: error"
printf '192.0.2.1\n\033]0;owned\007\033[2J\n' >"$L"
refused "terminal escapes in a list" "$P" "list.txt:2:1: error: '?\]0;owned??\[2J'"
if grep -q "$(printf '\033')" "$T/err"; then
	fail "hostile: terminal escapes in a list reach stderr"
else
	pass "hostile: terminal escapes in a list are not echoed"
fi
rm -f "$L"; ln -s /dev/zero "$L"
refused "list symlinked to /dev/zero" "$P" "not a regular file"
rm -f "$L"; mkfifo "$L"
refused "list that is a FIFO" "$P" "not a regular file"
rm -f "$L"; mkdir "$L"
refused "list that is a directory" "$P" "not a regular file"
rmdir "$L"

# What a partner controlling its list would try: the whole Internet, a
# /1, ::/0 - refused by the guards (min_prefix_v4 8, min_prefix_v6 32)
# with file:line.
printf '192.0.2.1\n0.0.0.0/0\n' >"$L"
refused "list with 0.0.0.0/0" "$P" "list.txt:2:1: error: '0.0.0.0/0': prefix wider than /8"
printf '::/0\n' >"$L"
refused "list with ::/0" "$P" "list.txt:1:1: error: '::/0': prefix wider than /32"
printf '2001:db8::1\n128.0.0.0/1\n' >"$L"
refused "list with a /1" "$P" "list.txt:2:1: error: '128.0.0.0/1': prefix wider than /8"

# Loopback and the edge's own addresses in a partner's list are accepted:
# they only widen what that partner's services admit from sources the
# edge itself holds (a packet from outside cannot carry them past the
# kernel's reverse-path and martian checks on a routed edge); the
# loopback rule comes first in every chain either way.
printf '127.0.0.1\n::1\n203.0.113.10\n' >"$L"
handled "list with loopback and the edge's own address" "$P"

# apply: nothing from a source that failed to parse (own namespace only).
if [ -n "${FWT_IN_NETNS:-}" ]; then
	printf '192.0.2.1\n' >"$L"
	bounded "hostile: apply of a good list" 0 "$FEDWALL" apply -f "$P" --state-dir "$T/state"
	nft list table inet fedwall >"$T/before" 2>&1
	for bad in wide dev fifo nul; do
		rm -rf "$L"
		case $bad in
		wide) printf '192.0.2.1\n0.0.0.0/0\n' >"$L" ;;
		dev) ln -s /dev/zero "$L" ;;
		fifo) mkfifo "$L" ;;
		nul) printf '192.0.2.1\n198.51.100.\00020\n' >"$L" ;;
		esac
		bounded "hostile: apply refuses a $bad list" 1 \
			"$FEDWALL" apply -f "$P" --state-dir "$T/state"
		nft list table inet fedwall >"$T/after" 2>&1
		same "$T/before" "$T/after" "hostile: after the $bad list the table is as applied before"
	done
else
	skip "hostile: apply of a bad list (needs root, nft and unshare -n)"
fi

[ "$SUITE_FAILED" -eq 0 ]
