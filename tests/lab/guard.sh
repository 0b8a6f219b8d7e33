#!/bin/sh
# tests/lab/guard.sh - the guards fail closed, with real packets: no path
# (check, apply, refresh, refresh --force) puts into the kernel an address
# range wider than guards.min_prefix_v4 once its prefixes are joined, a
# whole family never, and no list longer than guards.max_entries; a
# refresh removes no more than guards.max_shrink of a partner's addresses
# (counted in addresses, IPv4 and IPv6 each on its own) unless forced.  A
# refused partner keeps its previous addresses while the others proceed;
# a stranger stays out on the partner port throughout.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
lab_init

E4=203.0.113.10
ST=$LAB_DIR/state
POLF=$LAB_DIR/policy.yaml
LP=$LAB_DIR/lp.txt
OTHER=$LAB_DIR/other.txt

lab_topology || { fail "guard lab: build the namespace topology"; exit 1; }
lab_serve edge tcp 5061 || { fail "guard lab: probe server"; exit 1; }

# fw ARGS...: fedwall in the edge; output in $OUT, stderr in $ERR, $RC
fw() { lab_fw edge "$@" -f "$POLF" --state-dir "$ST"; }
in_ok() { reach "$1" "$2" tcp $E4 5061; }
in_no() { blocked "$1" "$2" tcp $E4 5061; }
# no_world NAME: the kernel holds no element starting at 0.0.0.0 or
# 128.0.0.0 (what a /0, or its halves, would leave in a map)
no_world() {
	if lab_exec edge nft list table inet fedwall 2>/dev/null |
		grep -Eq '(^|[ ,{])(0\.0\.0\.0|128\.0\.0\.0)/'; then
		fail "$1"
		lab_exec edge nft list table inet fedwall | grep -E ' (0|128)\.0\.0\.0/' >&2
	else pass "$1"; fi
}

# policy MIN4 [MORE]: partner lp from list lp.txt and partner other from
# other.txt, both inbound on sip-federation; MORE is added to the guards
policy() {
	cat >"$POLF" <<EOF
version: 1
partners:
  lp:
    services: [sip-federation]
    direction: inbound
    lists: [$LP]
  other:
    services: [sip-federation]
    direction: inbound
    lists: [$OTHER]
guards: {min_prefix_v4: $1${2:-}}
EOF
}

# ---- (a) refresh --force with a world-sized list -------------------------
policy 16
echo 198.51.100.11 >"$LP"
echo 198.51.100.12 >"$OTHER"
fw refresh
expect_rc 0 "setup: the first refresh loads lp (alpha) and other (bravo)"
in_ok "setup: alpha admitted from lp.txt" alpha
in_no "setup: stranger dropped" stranger

printf '198.51.100.11\n0.0.0.0/0\n' >"$LP"
echo 198.51.100.13 >"$OTHER"
fw check
expect_rc 1 "world list: check refuses it"
has ERR "lp.txt:2:1: error: '0\.0\.0\.0/0'" "world list: check names lp.txt:2"
fw refresh --force
expect_rc 1 "world list: refresh --force exits 1"
has ERR "partner 'lp': refresh refused: .*lp.txt:2: 0\.0\.0\.0/0 is the whole IPv4 Internet" \
	"world list: the refusal names lp.txt:2 and the range"
if printf '%s\n' "$ERR" | grep -q -- '--force'; then
	fail "world list: no suggestion to use --force"; show
else pass "world list: no suggestion to use --force"; fi
in_no "world list: stranger still dropped on tcp/5061 after --force" stranger
in_ok "world list: lp keeps its previous address (alpha)" alpha
in_ok "world list: the other partner proceeds (charlie from other.txt)" charlie
no_world "world list: nothing of 0.0.0.0/0 in the kernel"

# ---- a hole from before the guards is closed, not kept ------------------
# A table that already admits more for lp than the guards allow (an older
# fedwall, a forced commit, a hand edit): lp's list is refused again, and
# holding lp back on what it has would keep the hole open; it is admitted
# nowhere instead.
policy 28
lab_exec edge nft add element inet fedwall in4_1 '{ 198.51.100.64/26 : jump in_lp }'
reach "old hole: the stranger gets in through a hand-made /26 (the setup)" \
	stranger tcp $E4 5061
fw refresh
expect_rc 1 "old hole: refresh exits 1"
has ERR "partner 'lp': refresh refused: .*lp.txt:2: 0\.0\.0\.0/0 .*; what it has now breaks the guards too \(198\.51\.100\.64/26 is wider than /28 .*\): it is admitted nowhere" \
	"old hole: the message says lp is admitted nowhere, and why"
in_no "old hole: closed: the stranger is dropped again" stranger
in_no "old hole: lp's own address goes with it (alpha)" alpha
in_ok "old hole: the other partner stays (charlie)" charlie
echo 198.51.100.11 >"$LP"
fw refresh
expect_rc 0 "old hole: a fixed list brings lp back"
in_ok "old hole: alpha admitted again" alpha
in_no "old hole: the stranger stays out" stranger

# ---- (c) the halves of the world from a list, refresh --force -----------
policy 1
printf '0.0.0.0/1\n128.0.0.0/1\n' >"$LP"
fw refresh --force
expect_rc 1 "halves list: refresh --force exits 1"
has ERR "0\.0\.0\.0/1 \(.*lp.txt:1\) and 128\.0\.0\.0/1 \(.*lp.txt:2\) join into 0\.0\.0\.0/0" \
	"halves list: the refusal names both lines and the joined range"
in_no "halves list: stranger dropped" stranger
in_ok "halves list: lp keeps its previous address (alpha)" alpha
no_world "halves list: nothing of the halves in the kernel"
fw check
expect_rc 1 "halves list: check refuses them too"
has ERR "lp.txt:1\) and 128\.0\.0\.0/1 \(.*lp.txt:2\) join into 0\.0\.0\.0/0" \
	"halves list: check names both lines"

# ---- (b) adjacent halves inline: check and apply refuse -----------------
POLF=$LAB_DIR/halves.yaml
cat >"$POLF" <<EOF
version: 1
partners:
  world:
    services: [sip-federation]
    direction: inbound
    addresses: [0.0.0.0/1, 128.0.0.0/1]
guards: {min_prefix_v4: 1}
EOF
fw check
expect_rc 1 "halves inline: check refuses them"
has ERR "halves.yaml:6:17: error: '0\.0\.0\.0/1' \(6:17\) and '128\.0\.0\.0/1' \(6:28\) join into 0\.0\.0\.0/0" \
	"halves inline: the error names file:line:col and the range"
fw apply
expect_rc 1 "halves inline: apply refuses them"
no_world "halves inline: nothing of them in the kernel"
in_no "halves inline: stranger dropped" stranger
in_ok "halves inline: the table before stays (alpha admitted)" alpha

# ---- the final guard: partners each within the guard, the map the world --
POLF=$LAB_DIR/split.yaml
cat >"$POLF" <<EOF
version: 1
partners:
  lower:
    services: [sip-federation]
    direction: inbound
    addresses: [0.0.0.0/1]
  upper:
    services: [sip-federation]
    direction: inbound
    addresses: [128.0.0.0/1]
guards: {min_prefix_v4: 1}
EOF
fw apply
expect_rc 1 "final guard: apply of two partners adding up to 0.0.0.0/0 is refused"
has ERR "refusing to commit: map in4_1: its elements together: 0\.0\.0\.0/1, 128\.0\.0\.0/1 join into 0\.0\.0\.0/0" \
	"final guard: names the map and the range"
has ERR "nothing was applied" "final guard: says nothing was applied"
no_world "final guard: nothing of them in the kernel"
in_no "final guard: stranger dropped" stranger
fw check
expect_rc 1 "final guard: check refuses the same policy offline"
has ERR "map in4_1: its elements together: .* join into 0\.0\.0\.0/0" "final guard: ... naming the map"
fw plan
expect_rc 1 "final guard: plan refuses it too"

# ---- the entry cap ---------------------------------------------------------
POLF=$LAB_DIR/policy.yaml
policy 16 ", max_entries: 1000"
echo 198.51.100.11 >"$LP"
fw refresh
expect_rc 0 "cap: refresh with a small list"
awk 'BEGIN { for (i = 0; i < 5000; i++)
	printf "10.%d.%d.%d\n", int(i / 65536), int(i / 256) % 256, i % 256 }' >"$LP"
fw check
expect_rc 1 "cap: check refuses a list of 5000 entries"
has ERR "lp.txt: error: has 5000 entries, more than guards.max_entries 1000" \
	"cap: the error names the file and the count"
fw refresh
expect_rc 1 "cap: refresh exits 1"
has ERR "has 5000 entries, more than guards.max_entries 1000" "cap: refresh says why"
in_ok "cap: lp keeps its previous address (alpha)" alpha
in_no "cap: stranger dropped" stranger

# ---- max_shrink weighs addresses, each family on its own -----------------
E6=2001:db8:10::10
in6_ok() { reach "$1" "$2" tcp $E6 5061; }
in6_no() { blocked "$1" "$2" tcp $E6 5061; }
# lines ADDR...: the list lp.txt
lines() { printf '%s\n' "$@" >"$LP"; }

policy 16 ", max_shrink: 25%"
lines 198.51.100.8/29 198.51.100.16/31          # ten addresses, .8 to .17
echo 192.0.2.99 >"$OTHER"                       # charlie only through lp
fw refresh --force
expect_rc 0 "shrink setup: lp holds ten contiguous addresses (a /29 and a /31)"
in_ok "shrink setup: charlie (.13) admitted" charlie
# charlie leaves: 1 of 10 addresses, though 1 of the 2 merged prefixes
lines 198.51.100.8/30 198.51.100.12 198.51.100.14/31 198.51.100.16/31
fw refresh
expect_rc 0 "1 of 10 addresses at max_shrink 25%: accepted (1 of 2 prefixes once)"
in_no "1 of 10: charlie, the address removed, dropped" charlie
in_ok "1 of 10: alpha still admitted" alpha
in_ok "1 of 10: bravo still admitted" bravo

policy 16 ", max_shrink: 50%"
lines 198.51.100.0/24 192.0.2.5
fw refresh
expect_rc 0 "/24 + 1 setup: lp grows to a /24 and one address"
in_ok "/24 + 1 setup: the stranger is inside the /24 now" stranger
lines 192.0.2.5
fw refresh
expect_rc 1 "/24 + 1 losing the /24 at max_shrink 50%: refused (1 of 2 prefixes once)"
has ERR "partner 'lp': refresh refused: would remove 1 prefix, 256 of its 257 IPv4 addresses \(99% fewer, more than guards\.max_shrink 50%\); it keeps its previous addresses" \
	"/24 + 1: the message gives the prefix and the addresses"
in_ok "/24 + 1: lp keeps its /24 (alpha)" alpha
fw refresh --force
expect_rc 0 "/24 + 1: --force applies it"
in_no "/24 + 1: after --force alpha is dropped" alpha
in_no "/24 + 1: after --force the stranger is dropped" stranger

# IPv6: ten contiguous addresses ::8 to ::11, alpha's ::11 leaves
lines 198.51.100.11 2001:db8:51::8/125 2001:db8:51::10/127
fw refresh
expect_rc 0 "IPv6 setup: lp has alpha and ten contiguous IPv6 addresses"
in6_ok "IPv6 setup: alpha admitted over IPv6" alpha
lines 198.51.100.11 2001:db8:51::8/125 2001:db8:51::10
fw refresh
expect_rc 0 "IPv6: 1 of 10 addresses at max_shrink 50%: accepted"
in6_no "IPv6: alpha's removed address dropped" alpha
in_ok "IPv6: alpha still admitted over IPv4" alpha
lines 198.51.100.11 2001:db8:51::/120 2001:db8:99::1
fw refresh
expect_rc 0 "IPv6 /120 + 1 setup: accepted (growth)"
in6_ok "IPv6 /120 + 1 setup: the stranger's ::99 inside the /120" stranger
lines 198.51.100.11 2001:db8:99::1
fw refresh
expect_rc 1 "IPv6 /120 + 1 losing the /120: refused"
has ERR "would remove 1 prefix, 256 of its 257 IPv6 addresses \(99% fewer" \
	"IPv6 /120 + 1: the message counts IPv6 addresses"
in6_ok "IPv6 /120 + 1: lp keeps its /120 (the stranger over IPv6)" stranger
# Each family weighs on its own: all of IPv4 leaving is refused, however
# many IPv6 addresses come in its place.
lines 2001:db8:51::/64
fw refresh
expect_rc 1 "per family: IPv4's one address leaving for a whole IPv6 /64: refused"
has ERR "would remove 1 prefix, 1 of its 1 IPv4 address \(100% fewer" \
	"per family: the message names IPv4"
in_ok "per family: alpha still admitted over IPv4" alpha
in_no "per family: the stranger still dropped over IPv4" stranger

exit $SUITE_FAILED
