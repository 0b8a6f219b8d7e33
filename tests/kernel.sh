#!/bin/sh
# tests/kernel.sh - apply, plan, status and flush against the real kernel,
# inside a network namespace of their own (unshare -n): exit statuses, the
# second apply changing nothing, element-only changes, foreign rules, and
# another table surviving everything.  Independent of `nft -c`.
. "$(dirname "$0")/lib.sh"

if ! can_kernel; then
	skip "kernel: apply/plan/status/flush (needs root, nft and unshare -n)"
	exit 0
fi
if [ -z "${FWT_IN_NETNS:-}" ]; then
	FWT_IN_NETNS=1 exec unshare -n sh "$0" "$@"
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
STATE=$T/state
mkdir -p "$STATE"
MSN=$TOP/examples/msn-pic.yaml
if [ ! -f "$MSN" ]; then
	skip "kernel: examples/msn-pic.yaml is missing"
	exit 0
fi
fw() { "$FEDWALL" "$@" --state-dir "$STATE"; }

# rc NAME WANT CMD...: passes when CMD exits with WANT; output in $T/out.
rc() {
	name=$1 want=$2; shift 2
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" -eq "$want" ]; then
		pass "$name"
	else
		fail "$name (exit $got, expected $want)"
		sed 's/^/    /' "$T/out" "$T/err" | head -20 >&2
	fi
}

# has NAME PATTERN: passes when the last output ($T/out) has PATTERN.
has() {
	if grep -q -- "$2" "$T/out"; then pass "$1"; else fail "$1"; sed 's/^/    /' "$T/out" >&2; fi
}

# Another table, with sets, chains and a counter: must never change.
nft -f - <<'EOF'
table inet other {
	set s {
		type ipv4_addr
		flags interval
		elements = { 192.0.2.0/24 }
	}
	counter c {
	}
	chain in {
		type filter hook input priority -5; policy accept;
		ip saddr @s counter name "c" accept
	}
	chain helper {
		tcp dport 22 accept
	}
}
table ip fedwall {
	chain c {
		counter
	}
}
EOF
other() { nft list table inet other; nft list table ip fedwall; }
other >"$T/other.before"

rc "kernel: plan before apply: changes pending (2)" 2 fw plan -f "$MSN"
has "kernel: plan before apply lists the table's creation" "+ chain in_msn"
rc "kernel: apply msn-pic" 0 fw apply -f "$MSN"
has "kernel: apply creates the table" "created"
rc "kernel: plan after apply: nothing pending (0)" 0 fw plan -f "$MSN"
rc "kernel: plan --json after apply" 0 fw plan --json -f "$MSN"
has "kernel: plan --json says no changes" '"changes": false'
rc "kernel: second apply" 0 fw apply -f "$MSN"
has "kernel: second apply changes nothing" "no changes"

# The kernel holds what `nft -f` of the generated text would hold.
nft list table inet fedwall >"$T/mine"
fw generate -f "$MSN" >"$T/gen.nft" 2>/dev/null
unshare -n sh -c "nft -f '$T/gen.nft' && nft list table inet fedwall" >"$T/theirs" 2>&1
same "$T/theirs" "$T/mine" "kernel: nft list shows what nft -f of the generated text shows"

# An address change is an element change.
sed 's|      - 65.54.227.249|      - 65.54.227.249\n      - 198.51.100.0/24|; /64.4.9.245/d' \
	"$MSN" >"$T/msn2.yaml"
rc "kernel: plan after an address change: pending (2)" 2 fw plan -f "$T/msn2.yaml"
has "kernel: plan names the partner" "partner msn:"
has "kernel: plan shows the added address" "+ 198.51.100.0/24  (in4_1: tcp/5061)"
has "kernel: plan shows the removed address" "- 64.4.9.245  (in4_1: tcp/5061)"
rc "kernel: plan --json after an address change" 2 fw plan --json -f "$T/msn2.yaml"
if command -v python3 >/dev/null 2>&1; then
	ok "kernel: plan --json is JSON" python3 -m json.tool "$T/out" >/dev/null
fi
has "kernel: plan --json has the partner" '"msn": {"add": \[{"set": "in4_1", "element": "198.51.100.0/24", "ports": "tcp/5061"}'
rc "kernel: apply the address change" 0 fw apply -f "$T/msn2.yaml"
has "kernel: only elements change" "2 elements added, 2 removed"
rc "kernel: plan after it: nothing pending" 0 fw plan -f "$T/msn2.yaml"

rc "kernel: status" 0 fw status -f "$MSN"
has "kernel: status shows the partner's elements" "^msn  *6 "
has "kernel: status shows the drop counter" "dropped_in: 0 packets"
rc "kernel: status --json" 0 fw status --json --table fedwall
has "kernel: status --json" '"msn": {"in": {"elements": 6'

# Another service is still only elements (sets are declared whatever
# they hold); turning logging off removes rules: the table is replaced.
sed 's|services: \[sip-federation\]|services: [sip-federation, xmpp-s2s]|' "$T/msn2.yaml" \
	>"$T/msn3.yaml"
rc "kernel: apply another service" 0 fw apply -f "$T/msn3.yaml"
has "kernel: another service is an element change" "elements added, 0 removed"
sed 's|enabled: true|enabled: false|' "$T/msn3.yaml" >"$T/msn4.yaml"
rc "kernel: plan a structural change: pending (2)" 2 fw plan -f "$T/msn4.yaml"
has "kernel: plan says why the table is replaced" "replace the table in one transaction: chain"
rc "kernel: apply a structural change" 0 fw apply -f "$T/msn4.yaml"
has "kernel: a structural change replaces the table" "replaced"
rc "kernel: plan after it: nothing pending" 0 fw plan -f "$T/msn4.yaml"

# Somebody edits fedwall's table by hand: plan sees it, apply repairs it.
nft add rule inet fedwall edge_in tcp dport 1234 accept
rc "kernel: plan after a hand edit: pending (2)" 2 fw plan -f "$MSN"
has "kernel: plan explains the hand edit" "not one fedwall writes"
rc "kernel: apply repairs a hand edit" 0 fw apply -f "$MSN"
rc "kernel: plan after the repair: nothing pending" 0 fw plan -f "$MSN"
if nft list chain inet fedwall edge_in | grep -q "dport 1234"; then
	fail "kernel: the hand-added rule is gone"
else
	pass "kernel: the hand-added rule is gone"
fi

# Every example round-trips: apply, then plan has nothing to do; and the
# kernel holds, down to the netlink expressions and element bytes, what
# `nft -f` of the generated text makes it hold.
# as_nft_would POLICY NAME: the kernel holds, message for message, what
# nft -f of the generated text loads into a namespace of its own.
as_nft_would() {
	nft --debug=netlink list table inet fedwall >"$T/mine" 2>&1
	fw generate -f "$1" >"$T/gen.nft" 2>/dev/null
	unshare -n sh -c "nft -f '$T/gen.nft' && nft --debug=netlink list table inet fedwall" \
		>"$T/theirs" 2>&1
	same "$T/theirs" "$T/mine" "kernel: $2: the kernel holds what nft -f would load"
}

for ex in "$TOP"/examples/*.yaml; do
	n=$(basename "$ex" .yaml)
	rc "kernel: apply example $n" 0 fw apply -f "$ex"
	rc "kernel: plan example $n after apply: nothing pending" 0 fw plan -f "$ex"
	as_nft_would "$ex" "example $n"
done

# The HA pair's rules (VRRP, conntrackd's port, on an interface or any;
# host and gateway mode) read back as applied: a plan right after the
# apply has nothing to do.  Their interfaces need not exist here.
for ex in "$TOP"/tests/gen/ha-*.yaml "$TOP"/examples/ha/policy.yaml; do
	n=${ex#"$TOP"/}
	rc "kernel: apply $n" 0 fw apply --allow-missing-interfaces -f "$ex"
	rc "kernel: plan $n after apply: nothing pending" 0 fw plan -f "$ex"
	has "kernel: plan $n says no changes" "no changes"
	as_nft_would "$ex" "$n"
done

rc "kernel: flush" 0 fw flush -f "$MSN"
if nft list table inet fedwall >/dev/null 2>&1; then
	fail "kernel: flush deletes the table"
else
	pass "kernel: flush deletes the table"
fi
rc "kernel: flush with no table" 0 fw flush --table fedwall
has "kernel: flush with no table says so" "nothing to flush"
rc "kernel: status with no table: 1" 1 fw status -f "$MSN"

other >"$T/other.after"
same "$T/other.before" "$T/other.after" "kernel: other tables survive apply, reapply and flush"

rc "kernel: plan usage error exits 64" 64 fw plan --bogus
rc "kernel: apply usage error exits 2" 2 fw apply --bogus
rc "kernel: plan of a bad policy exits 1" 1 fw plan -f "$T/missing.yaml"

exit "$SUITE_FAILED"
