#!/bin/sh
# tests/lab/ifaces.sh - interfaces fail closed: a host-mode policy that
# names an interface the edge does not have would filter nothing on the
# interfaces it does have, so apply, refresh and the daemon refuse it
# (nothing reaches the kernel) unless --allow-missing-interfaces; then the
# interfaces it has are filtered (real packets), and status and the
# metrics report the absent one.  An alternative name (ip link property
# ... altname), which iifname never matches, is refused even then.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
lab_init

D=$LAB_DIR
ST=$D/state
E4=203.0.113.10

lab_topology || { fail "ifaces lab: build the namespace topology"; exit 1; }
lab_serve edge tcp 5061 || { fail "ifaces lab: probe server"; exit 1; }

# policy FILE IFACES: alpha admitted on tcp/5061, edge.interfaces IFACES
policy() {
	cat >"$1" <<EOF
version: 1
edge:
  interfaces: [$2]
partners:
  alpha:
    services: [sip-federation]
    direction: inbound
    addresses: [198.51.100.11]
EOF
}
policy "$D/absent.yaml" "ens3"
policy "$D/some.yaml" "eth0, ens9"
policy "$D/present.yaml" "eth0"
policy "$D/alt.yaml" "edgeext"

fw() { lab_fw edge "$@" --state-dir "$ST"; }
no_table() {
	if lab_exec edge nft list table inet fedwall >/dev/null 2>&1; then
		fail "$1"; lab_exec edge nft list ruleset | sed 's/^/    /' >&2
	else pass "$1"; fi
}

# ---- refused -------------------------------------------------------------
fw check -f "$D/absent.yaml"
expect_rc 0 "ifaces: check accepts the policy"
has ERR "absent.yaml:3:16: note: this machine has no interface 'ens3'" \
	"ifaces: ... and notes the absent interface with its line"
fw apply -f "$D/absent.yaml"
expect_rc 1 "ifaces: apply refuses an interface the edge does not have"
has ERR "absent.yaml:3:16: error: this machine has no interface 'ens3'" \
	"ifaces: ... naming it and its line"
no_table "ifaces: ... and nothing reaches the kernel"
fw plan -f "$D/absent.yaml"
has ERR "no interface 'ens3'" "ifaces: plan notes it"
fw refresh -f "$D/absent.yaml"
expect_rc 1 "ifaces: refresh refuses it too"
no_table "ifaces: ... nothing applied"
lab_exec edge timeout 10 "$FEDWALL" daemon -d -f "$D/absent.yaml" \
	--state-dir "$ST" >"$D/out" 2>"$D/err"
RC=$?
ERR=$(cat "$D/err")
expect_rc 1 "ifaces: the daemon does not start on it"
has ERR "no interface 'ens3'" "ifaces: ... and says why"
no_table "ifaces: ... nothing applied"

# ---- --allow-missing-interfaces: loaded, reported ---------------------------
fw apply --allow-missing-interfaces -f "$D/some.yaml"
expect_rc 0 "ifaces: apply --allow-missing-interfaces loads it"
has ERR "warning: this machine has no interface 'ens9'" "ifaces: ... with a warning"
reach "ifaces: the partner gets in on eth0" alpha tcp $E4 5061
blocked "ifaces: a stranger is blocked on eth0" stranger tcp $E4 5061
fw status -f "$D/some.yaml"
expect_rc 1 "ifaces: status exits 1 while an interface is absent"
has ERR "no interface 'ens9'" "ifaces: ... and names it"
has OUT "table inet fedwall" "ifaces: ... after showing the table"
fw status --json -f "$D/some.yaml"
expect_rc 1 "ifaces: status --json exits 1 too"
ok "ifaces: ... and its JSON lists the absent interface" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["interfaces_missing"] == ["ens9"], j["interfaces_missing"]
assert j["state_behind"] is False' "$D/out"
fw status --format prometheus -f "$D/some.yaml"
expect_rc 0 "ifaces: the metrics are written all the same"
has OUT '^fedwall_interface_present\{interface="ens9"\} 0$' \
	"ifaces: the metrics report the absent interface"
has OUT '^fedwall_interface_present\{interface="eth0"\} 1$' \
	"ifaces: ... and the present one"
fw refresh --allow-missing-interfaces -f "$D/some.yaml"
expect_rc 0 "ifaces: refresh --allow-missing-interfaces runs"
fw refresh -f "$D/some.yaml"
expect_rc 1 "ifaces: refresh without it refuses"

# ---- the interface comes up --------------------------------------------------
ip -n "$LAB-edge" link add ens9 type veth peer name ens9p
fw status -f "$D/some.yaml"
expect_rc 0 "ifaces: status is content once the interface exists"
fw apply -f "$D/present.yaml"
expect_rc 0 "ifaces: a policy naming present interfaces applies"

# ---- an alternative name never matches --------------------------------------
if ip -n "$LAB-edge" link property add dev eth0 altname edgeext 2>/dev/null; then
	fw apply --allow-missing-interfaces -f "$D/alt.yaml"
	expect_rc 1 "ifaces: an alternative name is refused, even when missing ones are allowed"
	has ERR "'edgeext' is an alternative name of 'eth0'" "ifaces: ... saying whose"
	reach "ifaces: ... and the table before it stays (partner)" alpha tcp $E4 5061
	blocked "ifaces: ... (stranger)" stranger tcp $E4 5061
else
	skip "ifaces: alternative names (ip link property not supported here)"
fi

exit $SUITE_FAILED
