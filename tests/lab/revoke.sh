#!/bin/sh
# tests/lab/revoke.sh - revocation with real packets: when an address
# leaves a partner (element change) or a partner leaves the policy
# (structural change), `fedwall apply` cuts the established connections
# it admitted (conntrack entries deleted), while held connections of
# addresses and partners that stay keep flowing.  Host mode, the lab of
# labrc.sh, tests/lab/policies/host.yaml.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
if ! lab_has apply; then
	skip "revoke (no 'fedwall apply' yet)"
	exit 0
fi
lab_init
POL=$TOP/tests/lab/policies
E4=203.0.113.10 E6=2001:db8:10::10
HOLD_SECS=4

if ! lab_topology; then
	fail "lab: build the namespace topology"
	exit 1
fi

# hold TAG HOST ADDR PORT: a held TCP connection in the background (a
# line every 100 ms, each must come back within 1 s); $HOLD_<TAG> is its
# pid once it printed "connected".
hold() {
	lab_hold "$1" "$2" "$3" "$4" $HOLD_SECS -t 1000
}

# apply_says NAME POLICY PATTERN: apply succeeds and its output matches.
apply_says() {
	if lab_apply "$2" && grep -q "$3" "$LAB_DIR/apply.out"; then
		pass "$1"
	else
		fail "$1"; sed 's/^/    /' "$LAB_DIR/apply.out" >&2
	fi
}

# no_entry NAME ADDR PORT: the edge's conntrack has no entry of ADDR with
# PORT, in either direction (a session the edge itself revived has the
# edge as its original source).
no_entry() {
	if lab_exec edge conntrack -L 2>/dev/null | grep -F "$2" | grep -q "port=$3 "; then
		fail "$1"; lab_exec edge conntrack -L 2>/dev/null | grep -F "$2" | sed 's/^/    /' >&2
	else
		pass "$1"
	fi
}

# The edge runs with the kernel's default nf_conntrack_tcp_loose=1, as an
# appliance would: `tcp flags != syn ... ct state new drop` in edge_in and
# edge_out keeps loose pickup from reviving a cut session
# (docs/RULESET.md, revocation).
if [ "$(lab_exec edge cat /proc/sys/net/netfilter/nf_conntrack_tcp_loose)" = 1 ]; then
	pass "revoke: the edge runs with the default nf_conntrack_tcp_loose=1"
else
	fail "revoke: the edge runs with the default nf_conntrack_tcp_loose=1"
fi

ok "revoke: apply host.yaml" lab_apply "$POL/host.yaml" || exit 1

# 0. No connection at all: an element leaving has nothing to cut, and the
#    conntrack dump (a walk of every bucket of the host's hash) is not
#    even asked for; the namespace's own nf_conntrack_count says so.
sed 's/198\.51\.100\.11,/198.51.100.14,/' "$POL/host.yaml" >"$LAB_DIR/moved.yaml"
lab_exec edge conntrack -F >/dev/null 2>&1
lab_exec edge env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq -e trace=sendto,sendmsg -o "$LAB_DIR/ct.trace" \
	"$FEDWALL" apply -f "$LAB_DIR/moved.yaml" >/dev/null 2>&1
if [ "$(lab_exec edge cat /proc/sys/net/netfilter/nf_conntrack_count)" != 0 ]; then
	skip "revoke: no connection, no conntrack dump (the edge has conntrack entries)"
elif grep -q 'IPCTNL_MSG_CT_GET' "$LAB_DIR/ct.trace"; then
	fail "revoke: no connection, no conntrack dump"
elif grep -q 'NFT_MSG_DELSETELEM' "$LAB_DIR/ct.trace"; then
	pass "revoke: no connection, no conntrack dump"
else fail "revoke: no connection, no conntrack dump (no element deleted)"; fi
ok "revoke: apply host.yaml again" lab_apply "$POL/host.yaml" || exit 1
lab_serve edge tcp 5061 5269 || exit 1

# 1. An address leaves a partner: alpha's IPv4 address is replaced, an
#    element change.  Its IPv4 session is cut; its IPv6 session and
#    charlie's stay.
M="revoke, address leaves alpha"
sed 's/198\.51\.100\.11,/198.51.100.14,/' "$POL/host.yaml" >"$LAB_DIR/moved.yaml"
hold a4 alpha $E4 5061 || fail "$M: alpha holds a connection over IPv4"
hold a6 alpha $E6 5061 || fail "$M: alpha holds a connection over IPv6"
hold c4 charlie $E4 5269 || fail "$M: charlie holds a connection"
sleep 0.3
apply_says "$M: apply reports the cut" "$LAB_DIR/moved.yaml" \
	"revoked 1 connection of 198.51.100.11 (tcp/5061)"
if grep -q "replaced" "$LAB_DIR/apply.out"; then
	fail "$M: an element change, not a table replacement"
	sed 's/^/    /' "$LAB_DIR/apply.out" >&2
else
	pass "$M: an element change, not a table replacement"
fi
lab_cut "$M: alpha's IPv4 session is cut" a4
lab_held "$M: alpha's IPv6 session keeps flowing" a6
lab_held "$M: charlie's session keeps flowing" c4
no_entry "$M: no conntrack entry of 198.51.100.11 left" 198.51.100.11 5061

# 2. A partner leaves the policy (its chain and counter go: the table is
#    replaced).  alpha's remaining session is cut, charlie's stays.
M="revoke, alpha leaves the policy"
awk '/^  alpha:/ { skip = 1; next } /^  [a-z]+:/ { skip = 0 } !skip' \
	"$LAB_DIR/moved.yaml" >"$LAB_DIR/noalpha.yaml"
hold a6 alpha $E6 5061 || fail "$M: alpha holds a connection over IPv6"
hold c4 charlie $E4 5269 || fail "$M: charlie holds a connection"
sleep 0.3
apply_says "$M: apply replaces the table and reports the cut" "$LAB_DIR/noalpha.yaml" \
	"revoked [0-9]* connections* of 2001:db8:51::11 (tcp/5061)"
lab_cut "$M: alpha's session is cut" a6
lab_held "$M: charlie's session keeps flowing" c4

# 3. Management is never revoked, and nothing is cut when nothing left.
M="revoke, nothing left"
hold c4 charlie $E4 5269 || fail "$M: charlie holds a connection"
apply_says "$M: reapply changes nothing" "$LAB_DIR/noalpha.yaml" "no changes"
lab_held "$M: charlie's session keeps flowing" c4

# 4. Loose pickup, deterministically: with nf_conntrack_tcp_loose=1 set
#    explicitly, the edge is made to retransmit across the cut (its
#    segments to alpha held back by a table of the lab's own at output
#    priority -10), which the race of case 1 does only now and then.
#    Its first retransmission after the cut creates a new entry in
#    mid-stream; without the SYN check edge_out admits it (alpha's
#    ephemeral port is no federation port) and alpha's packets become
#    replies: the session lives on.  It must stay cut.
M="revoke, loose pickup (tcp_loose=1)"
lab_exec edge sh -c 'echo 1 >/proc/sys/net/netfilter/nf_conntrack_tcp_loose' ||
	fail "$M: nf_conntrack_tcp_loose=1 in edge"
ok "$M: apply host.yaml again" lab_apply "$POL/host.yaml"
hold a4 alpha $E4 5061 || fail "$M: alpha holds a connection over IPv4"
sleep 0.3
lab_exec edge nft -f - <<'EOF' || fail "$M: hold back the edge's segments to alpha"
table inet fwtlab {
	chain out {
		type filter hook output priority -10; policy accept;
		ip daddr 198.51.100.11 tcp sport 5061 drop
	}
}
EOF
sleep 0.2
apply_says "$M: apply reports the cut" "$LAB_DIR/moved.yaml" \
	"revoked 1 connection of 198.51.100.11 (tcp/5061)"
lab_exec edge nft delete table inet fwtlab
sleep 2.5
no_entry "$M: the edge's retransmissions revive nothing (no entry 2.5 s later)" \
	198.51.100.11 5061
lab_cut "$M: alpha's session stays cut" a4

exit $SUITE_FAILED
