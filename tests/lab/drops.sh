#!/bin/sh
# tests/lab/drops.sh - the first apply on a live edge, and every drop
# counted (docs/RULESET.md), with real packets in the lab of labrc.sh:
#  - a partner's TCP session that predates the first apply (conntrack
#    never saw it) is picked up in mid-stream and keeps flowing; a
#    stranger's, and the edge's own to a non-partner, are dropped and
#    counted as dropped_in_nosyn / dropped_out_nosyn;
#  - a stranger's SYN is dropped_in, a call to a signalling port of a
#    non-partner dropped_out;
#  - with nf_conntrack_tcp_loose=0 the same mid-stream packets are
#    invalid: dropped_in_invalid / dropped_out_invalid;
#  - a table set dormant by someone else is drift: plan exits 2 naming
#    it, status exits 1, the metrics say fedwall_table_dormant 1, and the
#    next `fedwall refresh` restores the table (the stranger is dropped
#    again).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
lab_init
E4=203.0.113.10
S4=198.51.100.99

if ! lab_topology; then
	fail "lab: build the namespace topology"
	exit 1
fi
POLF=$LAB_DIR/live.yaml
cat >"$POLF" <<'EOF'
version: 1
edge: {interfaces: [eth0]}
partners:
  alpha:
    services: [sip-federation]
    direction: inbound
    addresses: [198.51.100.11, 2001:db8:51::11]
EOF

lab_serve edge tcp 5061 &&
lab_serve stranger tcp 5061 8080 || { fail "lab: probe servers"; exit 1; }

# fw VERB [ARGS]: fedwall VERB in the edge with the policy and state.
fw() {
	lab_exec edge "$FEDWALL" "$@" -f "$POLF" --state-dir "$LAB_DIR/state" \
		>"$LAB_DIR/out" 2>"$LAB_DIR/err"
	RC=$?
}
show() { echo "    exit $RC"; sed 's/^/    out: /' "$LAB_DIR/out" "$LAB_DIR/err" >&2; }
expect_rc() { if [ "$RC" -eq "$1" ]; then pass "$2"; else fail "$2"; show; fi; }
said() { if grep -q "$1" "$LAB_DIR/out" "$LAB_DIR/err"; then pass "$2"; else fail "$2"; show; fi; }

# hold TAG HOST ADDR PORT: a held TCP connection (a line every 100 ms,
# each back within 1 s, for 3 s) in the background.
hold() { lab_hold "$1" "$2" "$3" "$4" 3 -t 1000; }
# moved NAME COUNTER: the named counter counted packets.
moved() {
	_c=$(lab_counter edge "$2")
	if [ "$_c" -gt 0 ] 2>/dev/null; then
		pass "$1: $2 = $_c packets"
	else
		fail "$1: $2 > 0 (is $_c)"
	fi
}
loose() { lab_exec edge sysctl -qw net.netfilter.nf_conntrack_tcp_loose="$1"; }

# ---- the first apply on a live edge (loose pickup on, the default) ------
loose 1 || { skip "drops: no nf_conntrack_tcp_loose sysctl"; exit 0; }
hold a alpha $E4 5061 || fail "drops: alpha's session before the first apply"
hold s stranger $E4 5061 || fail "drops: the stranger's session before the first apply"
hold e edge $S4 8080 || fail "drops: the edge's session to the stranger before the first apply"
ok "drops: first apply while sessions run" lab_apply "$POLF"
lab_held "drops: the partner's session predating the first apply keeps flowing" a
lab_cut "drops: the stranger's session predating the first apply is cut" s
lab_cut "drops: the edge's own session to a non-partner (no SYN seen) is cut" e
moved "drops: the stranger's mid-stream packets counted" dropped_in_nosyn
moved "drops: the edge's mid-stream packets to a non-partner counted" dropped_out_nosyn
fw plan
expect_rc 0 "drops: plan exits 0 after apply (the counting rules read back as ours)"

# ---- strangers -----------------------------------------------------------
blocked "drops: stranger -> edge tcp/5061 dropped" stranger tcp $E4 5061
moved "drops: the stranger's SYN counted" dropped_in
blocked "drops: edge -> stranger tcp/5061 dropped (sip-federation restricts outbound)" \
	edge tcp $S4 5061
moved "drops: the edge's call to a non-partner's signalling port counted" dropped_out

# ---- invalid: loose pickup off ----------------------------------------------
# Deleting the table lets conntrack stop tracking in the namespace, so the
# next sessions again predate the ruleset.
ok "drops: flush the table" lab_exec edge "$FEDWALL" flush -f "$POLF" \
	--state-dir "$LAB_DIR/state"
loose 0
hold ai alpha $E4 5061 || fail "drops: alpha's session before the apply (loose 0)"
hold ei edge $S4 8080 || fail "drops: the edge's session before the apply (loose 0)"
ok "drops: apply with loose pickup off" lab_apply "$POLF"
lab_cut "drops: loose 0: mid-stream packets are invalid, even a partner's" ai
lab_cut "drops: loose 0: the edge's own mid-stream packets are invalid" ei
moved "drops: invalid packets to the edge counted" dropped_in_invalid
moved "drops: invalid packets from the edge counted" dropped_out_invalid
loose 1

# ---- a dormant table is drift ---------------------------------------------
blocked "drops: stranger dropped before the table goes dormant" stranger tcp $E4 5061
lab_exec edge nft add table inet fedwall '{ flags dormant; }'
reach "drops: a dormant table filters nothing (the stranger gets in)" \
	stranger tcp $E4 5061
fw plan
expect_rc 2 "drops: plan exits 2 on a dormant table"
said "dormant" "drops: plan names the dormant table"
fw status
expect_rc 1 "drops: status exits 1 on a dormant table"
said "dormant" "drops: status says the table is dormant"
fw status --format prometheus
said "^fedwall_table_dormant 1$" "drops: metrics: fedwall_table_dormant 1"
fw refresh
expect_rc 0 "drops: refresh restores the dormant table"
said "dormant" "drops: refresh says why it replaced the table"
blocked "drops: the stranger is dropped again after refresh" stranger tcp $E4 5061
fw plan
expect_rc 0 "drops: plan exits 0 after the refresh"
fw status --format prometheus
said "^fedwall_table_dormant 0$" "drops: metrics: fedwall_table_dormant 0"
lab_exec edge nft add chain inet fedwall input '{ policy drop; }'
fw plan
expect_rc 2 "drops: a base chain's policy changed by hand is drift"
said "input" "drops: plan names the chain"
fw refresh
expect_rc 0 "drops: refresh restores the base chain"
reach "drops: alpha admitted after the restore" alpha tcp $E4 5061

# ---- the daemon restores a dormant table at its next run ------------------------
# (ip netns exec execs the daemon: $! is its pid, for the signals)
ip netns exec "$LAB-edge" "$FEDWALL" daemon -d -f "$POLF" --state-dir "$LAB_DIR/state" \
	2>"$LAB_DIR/daemon.log" &
DPID=$!
LAB_PIDS="$LAB_PIDS $DPID"
# wait_blocked SECONDS: the stranger's SYN is dropped within SECONDS.
wait_blocked() {
	_end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -le $_end ]; do
		lab_probe stranger connect -t 300 tcp $E4 5061 || return 0
		sleep 0.2
	done
	return 1
}
ok "drops: daemon: the table is there" wait_blocked 5
lab_exec edge nft add table inet fedwall '{ flags dormant; }'
reach "drops: daemon: the dormant table lets the stranger in" stranger tcp $E4 5061
kill -HUP "$DPID"
ok "drops: daemon: its next run (SIGHUP) restores the table: the stranger is dropped" \
	wait_blocked 5
if grep -q "dormant" "$LAB_DIR/daemon.log"; then
	pass "drops: daemon: its log says the table was dormant"
else
	fail "drops: daemon: its log says the table was dormant"; sed 's/^/    /' "$LAB_DIR/daemon.log" >&2
fi
kill -TERM "$DPID"
wait "$DPID"
ok "drops: daemon: SIGTERM exits 0" test $? -eq 0

exit $SUITE_FAILED
