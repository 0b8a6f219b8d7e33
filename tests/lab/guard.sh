#!/bin/sh
# tests/lab/guard.sh - the guards fail closed, with real packets: no path
# (check, apply, refresh, refresh --force) puts into the kernel an address
# range wider than guards.min_prefix_v4 once its prefixes are joined, a
# whole family never, and no list longer than guards.max_entries.  A
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

exit $SUITE_FAILED
