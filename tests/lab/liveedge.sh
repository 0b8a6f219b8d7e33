#!/bin/sh
# tests/lab/liveedge.sh - applying to a live edge: every apply, the first
# included, sweeps the edge's conntrack table and cuts the established
# sessions the new ruleset would not admit (docs/RULESET.md, Revocation:
# the sweep), while partners', management's and the edge's own sessions
# to non-federation ports keep flowing.  Host mode, the lab of labrc.sh.
#
# The sessions here are tracked before the apply (a table of the lab's
# own makes conntrack track the edge's traffic, as firewalld or docker
# would on a real machine): this suite is about entries that exist.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
if ! lab_has apply; then
	skip "liveedge (no 'fedwall apply' yet)"
	exit 0
fi
if ! command -v conntrack >/dev/null 2>&1; then
	skip "liveedge (no conntrack tool)"
	exit 0
fi
lab_init
E4=203.0.113.10 E6=2001:db8:10::10 S4=198.51.100.99 S6=2001:db8:51::99
A4=198.51.100.11 C4=198.51.100.13 M4=192.0.2.22
HOLD_SECS=4

if ! lab_topology; then
	fail "lab: build the namespace topology"
	exit 1
fi

# policy FILE MGMT [PARTNER [MORE]]: alpha (both directions) on SIP, the
# management entry from MGMT on tcp/22, and PARTNER (a YAML block) too;
# MORE: top-level keys.
policy() {
	cat >"$1" <<EOF
version: 1
table: fedwall
mode: host
edge:
  interfaces: [eth0]
  addresses: [$E4, $E6]
services:
  sip-federation: [tcp/5061]
  xmpp-s2s: [tcp/5269]
partners:
  alpha:
    services: [sip-federation]
    direction: both
    addresses: [$A4, 2001:db8:51::11]
${3:-}
management:
  - {from: $2, to: tcp/22}
${4:-}
EOF
}
CHARLIE="  charlie:
    services: [xmpp-s2s]
    direction: both
    addresses: [$C4]"
policy "$LAB_DIR/sip.yaml" 192.0.2.0/24
policy "$LAB_DIR/xmpp.yaml" 192.0.2.0/24 "$CHARLIE"
policy "$LAB_DIR/narrow.yaml" 192.0.2.128/25 "$CHARLIE"
policy "$LAB_DIR/allow.yaml" 192.0.2.128/25 "$CHARLIE" "outbound:
  allow:
    - to: [$S4]
      ports: [tcp/5061]"

hold() {
	lab_hold "$1" "$2" "$3" "$4" $HOLD_SECS -t 1000
}

# entries SRC DST DPORT: how many of the edge's TCP conntrack entries
# have this original source, destination and destination port.
entries() {
	lab_exec edge conntrack -L -p tcp -s "$1" -d "$2" --dport "$3" 2>/dev/null | wc -l
}

# tracked NAME SRC DST DPORT / untracked NAME SRC DST DPORT
tracked() {
	if [ "$(entries "$2" "$3" "$4")" -gt 0 ]; then pass "$1"; else
		fail "$1"; lab_exec edge conntrack -L 2>&1 | sed 's/^/    /' >&2; fi
}
untracked() {
	if [ "$(entries "$2" "$3" "$4")" -eq 0 ]; then pass "$1"; else
		fail "$1"; lab_exec edge conntrack -L 2>&1 | sed 's/^/    /' >&2; fi
}

# says NAME PATTERN / not_says NAME PATTERN: the last apply's output.
says() {
	if grep -q -- "$2" "$LAB_DIR/apply.out"; then pass "$1"; else
		fail "$1"; sed 's/^/    /' "$LAB_DIR/apply.out" >&2; fi
}
not_says() {
	if grep -q -- "$2" "$LAB_DIR/apply.out"; then
		fail "$1"; sed 's/^/    /' "$LAB_DIR/apply.out" >&2; else pass "$1"; fi
}

# conntrack tracks the edge's traffic before fedwall ever ran (nothing
# else here needs it): a table of the lab's own that only counts.
lab_exec edge nft -f - <<'EOF' || fail "liveedge: conntrack in the edge"
table inet fwtct {
	chain in { type filter hook input priority 10; ct state new counter; }
	chain out { type filter hook output priority 10; ct state new counter; }
}
EOF
# An inside host on the edge's second interface, eth1, which the policy
# does not filter (`interfaces: [eth0]`): its sessions are no business
# of fedwall's, though its address is no partner's.
I4=192.0.2.130
if lab_ns inside &&
	ip -n "$LAB-edge" link add eth1 type veth peer name eth0 netns "$LAB-inside" &&
	ip -n "$LAB-edge" link set eth1 up && ip -n "$LAB-inside" link set eth0 up &&
	lab_addr edge eth1 192.0.2.129/25 && lab_addr inside eth0 $I4/25; then
	pass "liveedge: an inside host behind the edge's eth1"
else
	fail "liveedge: an inside host behind the edge's eth1"
fi
lab_serve edge tcp 5061 22 || exit 1
lab_serve stranger tcp 5061 5269 8080 || exit 1
lab_serve alpha tcp 5061 || exit 1
lab_serve charlie tcp 5269 || exit 1

# 1. The first apply: no fedwall table before it.
M="liveedge, first apply"
hold s4 stranger $E4 5061 || fail "$M: the stranger holds a session over IPv4"
hold s6 stranger $E6 5061 || fail "$M: the stranger holds a session over IPv6"
hold a4 alpha $E4 5061 || fail "$M: alpha holds a session"
hold m4 mgmt $E4 22 || fail "$M: the operator holds a session to tcp/22"
hold of edge $S4 5061 || fail "$M: the edge holds a session to the stranger on tcp/5061"
hold oa edge $S4 8080 || fail "$M: the edge holds a session to the stranger on tcp/8080"
hold op edge $A4 5061 || fail "$M: the edge holds a session to alpha on tcp/5061"
hold i4 inside 192.0.2.129 5061 || fail "$M: the inside host holds a session over eth1"
if lab_exec edge nft list table inet fedwall >/dev/null 2>&1; then
	fail "$M: no fedwall table before it"
else
	pass "$M: no fedwall table before it"
fi
tracked "$M: the stranger's session is tracked before" $S4 $E4 5061
tracked "$M: alpha's session is tracked before" $A4 $E4 5061
ok "$M: fedwall apply" lab_apply "$LAB_DIR/sip.yaml"
says "$M: the cut of the stranger's IPv4 session is reported" \
	"cut 1 connection from $S4 to $E4 (tcp/5061)"
says "$M: the cut of the stranger's IPv6 session is reported" \
	"cut 1 connection from $S6 to $E6 (tcp/5061)"
says "$M: the cut of the edge's session to the stranger is reported" \
	"cut 1 connection from $E4 to $S4 (tcp/5061)"
not_says "$M: nothing of alpha's is cut" "$A4"
not_says "$M: nothing of the operator's is cut" "$M4"
not_says "$M: nothing on tcp/8080 is cut" "tcp/8080"
not_says "$M: nothing of the inside host's is cut" "$I4"
untracked "$M: the stranger's entry is gone" $S4 $E4 5061
untracked "$M: the stranger's IPv6 entry is gone" $S6 $E6 5061
untracked "$M: the edge's entry to the stranger on tcp/5061 is gone" $E4 $S4 5061
tracked "$M: alpha's entry is still there" $A4 $E4 5061
lab_cut "$M: the stranger's IPv4 session is cut" s4
lab_cut "$M: the stranger's IPv6 session is cut" s6
lab_cut "$M: the edge's session to the stranger on tcp/5061 is cut" of
lab_held "$M: alpha's session keeps flowing" a4
lab_held "$M: the operator's session keeps flowing" m4
lab_held "$M: the edge's session to the stranger on tcp/8080 keeps flowing" oa
lab_held "$M: the edge's session to alpha keeps flowing" op
lab_held "$M: the inside host's session over eth1 (not filtered) keeps flowing" i4
blocked "$M: the stranger cannot come back" stranger tcp $E4 5061

# 2. A policy change (a new partner: the table is replaced): tcp/5269
#    becomes a federation port, so the edge's session to the stranger on
#    it, which the old table admitted as an ordinary outbound connection
#    (no partner map), is cut; the one to charlie, the new partner, stays.
M="liveedge, policy change"
hold of edge $S4 5269 || fail "$M: the edge holds a session to the stranger on tcp/5269"
hold op edge $C4 5269 || fail "$M: the edge holds a session to charlie on tcp/5269"
hold a4 alpha $E4 5061 || fail "$M: alpha holds a session"
hold oa edge $S4 8080 || fail "$M: the edge holds a session to the stranger on tcp/8080"
ok "$M: fedwall apply" lab_apply "$LAB_DIR/xmpp.yaml"
says "$M: the table is replaced" "replaced"
says "$M: the cut is reported" "cut 1 connection from $E4 to $S4 (tcp/5269)"
untracked "$M: the edge's entry to the stranger on tcp/5269 is gone" $E4 $S4 5269
lab_cut "$M: the edge's session to the stranger on tcp/5269 is cut" of
lab_held "$M: the edge's session to charlie on tcp/5269 keeps flowing" op
lab_held "$M: alpha's session keeps flowing" a4
lab_held "$M: the edge's session to the stranger on tcp/8080 keeps flowing" oa

# 3. Management narrowed (an element change of mgmt4): the operator's
#    session is never cut, though it could not connect again.
M="liveedge, management narrowed"
hold m4 mgmt $E4 22 || fail "$M: the operator holds a session to tcp/22"
ok "$M: fedwall apply" lab_apply "$LAB_DIR/narrow.yaml"
not_says "$M: an element change" "replaced"
lab_held "$M: the operator's session keeps flowing" m4
blocked "$M: the operator cannot connect again" mgmt tcp $E4 22

# 4. An outbound allowance taken away (an element change of outallow4):
#    the edge's session it admitted is cut.
M="liveedge, allowance taken away"
ok "$M: apply with an allowance for the stranger on tcp/5061" lab_apply "$LAB_DIR/allow.yaml"
hold of edge $S4 5061 || fail "$M: the edge holds a session to the stranger on tcp/5061"
hold a4 alpha $E4 5061 || fail "$M: alpha holds a session"
ok "$M: apply without it" lab_apply "$LAB_DIR/narrow.yaml"
not_says "$M: an element change" "replaced"
says "$M: the cut is reported" "cut 1 connection from $E4 to $S4 (tcp/5061)"
lab_cut "$M: the edge's session to the stranger is cut" of
lab_held "$M: alpha's session keeps flowing" a4

exit $SUITE_FAILED
