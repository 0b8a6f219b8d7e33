#!/bin/sh
# tests/lab/ha.sh - an HA pair (issue 17): fedwall on both nodes of a
# keepalived + conntrackd edge, Debian's daemons in the lab's namespaces.
#
#   partner  198.51.100.11 ─┐                    ┌─ server 203.0.113.10
#   bravo    198.51.100.12 ─┤ out (bridge)       │  (the edge, behind the
#   stranger 198.51.100.99 ─┤                    │   pair: gateway mode)
#                           ├─ out0 a in0 ───────┤ in (bridge)
#                           └─ out0 b in0 ───────┘
#   a vr0 192.0.2.1 ── vr0 b 192.0.2.2    the VRRP link (keepalived)
#   a ha0 192.0.2.9 ── ha0 b 192.0.2.10   the HA link (conntrackd FTFW, udp/3780)
#   a: out0 198.51.100.2 in0 203.0.113.2; b: .3 and .3; the virtual
#   addresses 198.51.100.1 (out0) and 203.0.113.1 (in0) on the primary.
#
# keepalived (one VRRP instance on vr0, both virtual addresses) and
# conntrackd run in each node's namespace with their own files, and
# examples/ha/conntrackd-notify.sh is keepalived's notify hook.  Both
# nodes apply the same policy (examples/ha/policy.yaml's shape with the
# lab's addresses).  Checks: exactly one node holds the virtual
# addresses, before and after a failover (keepalived stopped on the
# primary); a partner's session through the primary reaches the backup's
# conntrackd (external cache), is committed there on failover and goes
# on (established: the partner's chain counts nothing on the new
# primary); a session conntrackd does not sync (bravo's: its address is
# ignored) is picked up in mid-stream, not blackholed; new sessions after
# the failover; the stranger kept out before and after; the stranger's
# VRRP advert and udp/3780 datagram reach a node and are dropped
# (dropped_ha); both nodes' status digests agree.  Then the same checks
# that `ha` makes pass are run without it, and must fail: with the peers
# under management (the issue's attempt, host mode) both nodes hold the
# virtual addresses; in gateway mode the stranger's datagram is answered.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
for c in keepalived conntrackd conntrack python3; do
	if ! command -v $c >/dev/null 2>&1; then
		skip "ha (no $c)"
		exit 0
	fi
done
lab_init
NOTIFY=$TOP/examples/ha/conntrackd-notify.sh
PORT=7000
VIP=198.51.100.1 VIN=203.0.113.1 SRV=203.0.113.10
P4=198.51.100.11 B4=198.51.100.12 S4=198.51.100.99
A_OUT=198.51.100.2 B_OUT=198.51.100.3

# ---- topology ------------------------------------------------------------------

# attach BRIDGE HOST IFACE ADDR/LEN: HOST's IFACE on the switch's BRIDGE.
attach() {
	ip -n "$LAB-sw" link add "$2-$3" type veth peer name "$3" netns "$LAB-$2" &&
	ip -n "$LAB-sw" link set "$2-$3" master "$1" up &&
	ip -n "$LAB-$2" link set "$3" up &&
	lab_addr "$2" "$3" "$4"
}

# wire IFACE ADDR_A ADDR_B: a point-to-point link between the nodes.
wire() {
	ip -n "$LAB-a" link add "$1" type veth peer name "$1" netns "$LAB-b" &&
	ip -n "$LAB-a" link set "$1" up && ip -n "$LAB-b" link set "$1" up &&
	lab_addr a "$1" "$2" && lab_addr b "$1" "$3"
}

topology() {
	for h in sw a b partner bravo stranger server; do lab_ns $h || return 1; done
	for br in out in; do
		ip -n "$LAB-sw" link add $br type bridge forward_delay 0 stp_state 0 &&
		ip -n "$LAB-sw" link set $br up || return 1
	done
	attach out a out0 $A_OUT/24 && attach in a in0 203.0.113.2/24 &&
	attach out b out0 $B_OUT/24 && attach in b in0 203.0.113.3/24 &&
	wire vr0 192.0.2.1/29 192.0.2.2/29 && wire ha0 192.0.2.9/29 192.0.2.10/29 &&
	attach out partner eth0 $P4/24 && attach out bravo eth0 $B4/24 &&
	attach out stranger eth0 $S4/24 && attach in server eth0 $SRV/24 || return 1
	for h in partner bravo stranger; do
		ip -n "$LAB-$h" route add default via $VIP || return 1
	done
	ip -n "$LAB-server" route add default via $VIN || return 1
	for n in a b; do
		lab_exec $n sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward' || return 1
	done
}

# ---- the daemons ---------------------------------------------------------------

# conf_conntrackd NODE LOCAL PEER: FTFW over UDP on the HA link; the
# nodes' own addresses and bravo's are not synced.
conf_conntrackd() {
	cat >"$LAB_DIR/$1.conntrackd.conf" <<EOF
Sync {
	Mode FTFW {
		DisableExternalCache Off
		CommitTimeout 1800
		PurgeTimeout 5
	}
	UDP {
		IPv4_address $2
		IPv4_Destination_Address $3
		Port 3780
		Interface ha0
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}
}
General {
	HashSize 8192
	HashLimit 65536
	LogFile $LAB_DIR/$1.conntrackd.log
	Syslog off
	LockFile $LAB_DIR/$1.conntrackd.lock
	UNIX {
		Path $LAB_DIR/$1.conntrackd.ctl
	}
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
	Filter From Userspace {
		Protocol Accept {
			TCP
		}
		Address Ignore {
			IPv4_address 127.0.0.1
			IPv4_address $VIP
			IPv4_address $VIN
			IPv4_address 192.0.2.0/24
			IPv4_address $A_OUT
			IPv4_address $B_OUT
			IPv4_address 203.0.113.2
			IPv4_address 203.0.113.3
			IPv4_address $B4
		}
	}
}
EOF
}

# conf_keepalived NODE PRIORITY: one VRRP instance on the VRRP link that
# holds both virtual addresses; the notify hook drives conntrackd.
conf_keepalived() {
	_c="$LAB_DIR/$1.conntrackd.conf"
	cat >"$LAB_DIR/$1.keepalived.conf" <<EOF
global_defs {
	router_id $LAB-$1
	script_user root
	vrrp_version 3
	vrrp_garp_master_repeat 2
}
vrrp_instance edge {
	state BACKUP
	interface vr0
	virtual_router_id 51
	priority $2
	advert_int 0.5
	virtual_ipaddress {
		$VIP/24 dev out0
		$VIN/24 dev in0
	}
	notify_master "$NOTIFY primary $_c"
	notify_backup "$NOTIFY backup $_c"
	notify_fault "$NOTIFY fault $_c"
}
EOF
}

start_conntrackd() {
	lab_exec "$1" conntrackd -C "$LAB_DIR/$1.conntrackd.conf" -d \
		>"$LAB_DIR/$1.conntrackd.out" 2>&1
}

# Not through lab_exec, a function: `&` would fork a subshell, and $!
# would not be keepalived (ip netns exec execs it).
start_keepalived() {
	ip netns exec "$LAB-$1" keepalived -n -l -D -P -f "$LAB_DIR/$1.keepalived.conf" \
		-p "$LAB_DIR/$1.keepalived.pid" -r "$LAB_DIR/$1.vrrp.pid" \
		-c "$LAB_DIR/$1.checkers.pid" >"$LAB_DIR/$1.keepalived.log" 2>&1 &
	eval "KA_$1=$!"
	LAB_PIDS="$LAB_PIDS $!"
}

stop_keepalived() {
	eval "_p=\$KA_$1"
	kill "$_p" 2>/dev/null
	wait "$_p" 2>/dev/null
}

# ---- observations --------------------------------------------------------------

# holds NODE: NODE has the virtual address.
holds() {
	ip -n "$LAB-$1" -4 addr show dev out0 2>/dev/null | grep -q "inet $VIP/"
}

# holders: "a", "b", "ab" or "" (who holds the virtual address now).
holders() {
	_w=
	holds a && _w=a
	holds b && _w=${_w}b
	echo "$_w"
}

# converge WANT TENTHS: holders is WANT within TENTHS tenths of a second.
converge() {
	for _n in $(seq "$2"); do
		[ "$(holders)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# sample TENTHS: holders every tenth of a second; the distinct answers.
sample() {
	for _n in $(seq "$1"); do holders; sleep 0.1; done | sort -u | tr '\n' ' '
}

# exclusive NAME WHO: the virtual address is WHO's alone for two seconds.
exclusive() {
	_s=$(sample 20)
	if [ "$_s" = "$2 " ]; then pass "$1"; else
		fail "$1"; echo "    holders seen: '$_s' (want '$2')" >&2; fi
}

# poll NAME TENTHS CMD...: CMD succeeds within TENTHS tenths of a second.
poll() {
	_name=$1 _t=$2; shift 2
	for _n in $(seq "$_t"); do
		if "$@" >/dev/null 2>&1; then pass "$_name"; return 0; fi
		sleep 0.1
	done
	fail "$_name"
	return 1
}

# synced NODE: NODE's conntrackd holds the partner's session in its
# external cache (what the other node's conntrackd sent it).
synced() {
	lab_exec "$1" conntrackd -C "$LAB_DIR/$1.conntrackd.conf" -e 2>/dev/null |
		grep "src=$P4 dst=$SRV" | grep -q "dport=$PORT"
}

# tracked NODE SRC: NODE's kernel table has SRC's session to the server.
tracked() {
	lab_exec "$1" conntrack -L -p tcp -s "$2" -d $SRV --dport $PORT 2>/dev/null |
		grep -q ESTABLISHED
}

# grew NODE COUNTER BEFORE: the named counter went beyond BEFORE.
grew() {
	[ "$(lab_counter "$1" "$2")" -gt "$3" ]
}

# advert NODE_ADDR: the stranger sends a VRRPv3 advert (priority 254,
# virtual router 51, the virtual address) straight to a node.
advert() {
	lab_exec stranger python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.sendto(bytes([0x31, 51, 254, 1, 0, 50, 0, 0]) + socket.inet_aton(sys.argv[2]),
	 (sys.argv[1], 0))' "$1" "$VIP"
}

# datagram NODE_ADDR: the stranger sends conntrackd's port a datagram.
datagram() {
	lab_exec stranger python3 -c '
import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"sync", (sys.argv[1], 3780))' "$1"
}

# rx NODE: packets NODE's out0 received so far.
rx() {
	lab_exec "$1" cat /sys/class/net/out0/statistics/rx_packets
}

# stranger_ha NAME NODE ADDR: the stranger's advert and datagram reach
# NODE (its out0 counts them) and fedwall drops them (dropped_ha).
stranger_ha() {
	_d=$(lab_counter "$2" dropped_ha) _r=$(rx "$2")
	advert "$3" && datagram "$3" ||
		{ fail "$1 (the stranger could not send)"; return; }
	for _n in $(seq 20); do
		[ "$(lab_counter "$2" dropped_ha)" -ge $((_d + 2)) ] && break
		sleep 0.1
	done
	if [ "$(rx "$2")" -ge $((_r + 2)) ] && [ "$(lab_counter "$2" dropped_ha)" -ge $((_d + 2)) ]
	then pass "$1"
	else fail "$1"; echo "    dropped_ha $_d -> $(lab_counter "$2" dropped_ha)," \
		"out0 rx $_r -> $(rx "$2")" >&2; fi
}

digest() {
	lab_exec "$1" "$FEDWALL" status -f "$2" --state-dir "$LAB_DIR/state.$1" |
		sed -n 's/^digest: \([0-9a-f]*\).*/\1/p'
}

# session TAG HOST: HOST opens a TCP session to the server and has one
# line echoed, then waits (silent: no segment crosses the pair) until
# `resume TAG`, sends another line and expects its echo.  Its output in
# $LAB_DIR/session.TAG; `ended NAME TAG` judges it.
session() {
	cat >"$LAB_DIR/session.py" <<'EOF'
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
f = s.makefile("rwb")
def echo(n):
    f.write(b"line %d\n" % n)
    f.flush()
    got = f.readline()
    assert got == b"line %d\n" % n, got
    print("echo", n, flush=True)
echo(1)
for _ in range(600):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.05)
echo(2)
EOF
	ip netns exec "$LAB-$2" python3 "$LAB_DIR/session.py" "$SRV" "$PORT" \
		"$LAB_DIR/go.$1" >"$LAB_DIR/session.$1" 2>&1 &
	eval "SESSION_$1=$!"
	LAB_PIDS="$LAB_PIDS $!"
	for _n in $(seq 50); do
		grep -q "echo 1" "$LAB_DIR/session.$1" && return 0
		sleep 0.1
	done
	return 1
}

resume() {
	touch "$LAB_DIR/go.$1"
}

ended() {
	eval "_p=\$SESSION_$2"
	if wait "$_p" && grep -q "echo 2" "$LAB_DIR/session.$2"; then pass "$1"; else
		fail "$1"; sed 's/^/    /' "$LAB_DIR/session.$2" >&2; fi
}

# ---- policies ------------------------------------------------------------------

# policy FILE MODE [HA]: the partner and bravo on the echo service; with
# HA, the ha section (the same file on both nodes).
policy() {
	{ cat <<EOF
version: 1
mode: $2
EOF
	  [ "$2" = gateway ] && echo "edge: {addresses: [$SRV]}"
	  cat <<EOF
services:
  echo: [tcp/$PORT]
partners:
  partner: {services: [echo], addresses: [$P4]}
  bravo: {services: [echo], addresses: [$B4]}
EOF
	  if [ -n "${3:-}" ]; then cat <<EOF
ha:
  peers: [192.0.2.1, 192.0.2.2, 192.0.2.9, 192.0.2.10]
  vrrp: true
  conntrackd: udp/3780
EOF
	  else cat <<EOF
management:
  - {from: [192.0.2.0/24], to: [udp/3780], description: the peers (the issue's attempt)}
EOF
	  fi; } >"$1"
}
policy "$LAB_DIR/gw-ha.yaml" gateway ha
policy "$LAB_DIR/gw.yaml" gateway
policy "$LAB_DIR/host-ha.yaml" host ha
policy "$LAB_DIR/host.yaml" host

apply() {
	mkdir -p "$LAB_DIR/state.$2"
	lab_exec "$2" "$FEDWALL" apply -f "$1" --state-dir "$LAB_DIR/state.$2" \
		>"$LAB_DIR/apply.out" 2>&1 || { sed 's/^/    /' "$LAB_DIR/apply.out" >&2; return 1; }
}

apply_both() {
	if apply "$1" a && apply "$1" b; then pass "$2"; else fail "$2"; return 1; fi
}

# ---- the pair, with ha ------------------------------------------------------------

if ! topology; then
	fail "ha: build the namespace topology"
	exit 1
fi
apply_both "$LAB_DIR/gw-ha.yaml" "ha: the same policy applied on both nodes" || exit 1
conf_conntrackd a 192.0.2.9 192.0.2.10
conf_conntrackd b 192.0.2.10 192.0.2.9
conf_keepalived a 150
conf_keepalived b 100
if start_conntrackd a && start_conntrackd b; then pass "ha: conntrackd runs on both nodes"
else fail "ha: conntrackd runs on both nodes"; cat "$LAB_DIR"/*.conntrackd.out >&2; exit 1; fi
start_keepalived a
start_keepalived b
lab_serve server -4 tcp $PORT || { fail "ha: start the server"; exit 1; }

if converge a 60; then pass "ha: node a (priority 150) takes the virtual addresses"
else fail "ha: node a takes the virtual addresses (holders: '$(holders)')"
	sed 's/^/    /' "$LAB_DIR/a.keepalived.log" | tail -20 >&2; fi
exclusive "ha: before the failover exactly one node holds them, always" a
poll "ha: a's VRRP adverts admitted on b (ha_peers)" 20 grew b ha_peers 0

reach "ha: the partner reaches the server through the pair" partner tcp $SRV $PORT
blocked "ha: the stranger does not, before the failover" stranger tcp $SRV $PORT
session p partner || fail "ha: the partner's session starts"
session q bravo || fail "ha: bravo's session starts"
poll "ha: the partner's session reaches the backup's conntrackd" 40 synced b
poll "ha: b's conntrackd acks admitted on a (ha_peers)" 30 grew a ha_peers 0
stranger_ha "ha: the stranger's advert and datagram reach the primary, dropped" a $A_OUT
stranger_ha "ha: ... and the backup, dropped" b $B_OUT
da=$(digest a "$LAB_DIR/gw-ha.yaml") db=$(digest b "$LAB_DIR/gw-ha.yaml")
if [ -n "$da" ] && [ "$da" = "$db" ]; then pass "ha: both nodes' status digests agree ($da)"
else fail "ha: both nodes' status digests agree ('$da', '$db')"; fi
# The same in JSON and in the metrics, with the HA counters.
lab_exec a "$FEDWALL" status --json -f "$LAB_DIR/gw-ha.yaml" --state-dir "$LAB_DIR/state.a" \
	>"$LAB_DIR/a.json" 2>/dev/null
if python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["digest"] == sys.argv[2], j["digest"]
assert j["ha"]["admitted"]["packets"] > 0 and j["ha"]["dropped"]["packets"] >= 2, j["ha"]
' "$LAB_DIR/a.json" "$db"; then pass "ha: status --json: a's digest is b's, the HA counters"
else fail "ha: status --json: a's digest is b's, the HA counters"; fi
lab_exec b "$FEDWALL" status --format prometheus -f "$LAB_DIR/gw-ha.yaml" \
	--state-dir "$LAB_DIR/state.b" >"$LAB_DIR/b.prom" 2>/dev/null
if grep -q "^fedwall_ruleset_info{digest=\"$da\"} 1$" "$LAB_DIR/b.prom" &&
	grep -Eq '^fedwall_ha_packets_total\{verdict="dropped"\} [1-9]' "$LAB_DIR/b.prom"; then
	pass "ha: metrics: b's digest is a's, the dropped HA packets"
else
	fail "ha: metrics: b's digest is a's, the dropped HA packets"
	grep -E 'ruleset_info|fedwall_ha_' "$LAB_DIR/b.prom" | sed 's/^/    /' >&2
fi

# ---- failover: keepalived stopped on the primary ----------------------------------

if tracked b $P4; then fail "ha: before the failover b's kernel has no entry of the partner's"
else pass "ha: before the failover b's kernel has no entry of the partner's"; fi
in_b=$(lab_counter b in_partner) bravo_b=$(lab_counter b in_bravo)
stop_keepalived a
if converge b 40; then pass "ha: failover: b takes the virtual addresses"
else fail "ha: failover: b takes the virtual addresses (holders: '$(holders)')"; fi
exclusive "ha: after the failover exactly one node holds them, always" b
# Both sessions are silent: an entry for the partner's on b is the one
# conntrackd committed; bravo's is not synced (conntrackd ignores it).
poll "ha: the partner's session is committed on b by the notify hook" 30 tracked b $P4
if tracked b $B4; then fail "ha: bravo's session is not on b (conntrackd ignores it)"
else pass "ha: bravo's session is not on b (conntrackd ignores it)"; fi
resume p
resume q
ended "ha: the partner's session goes on through b (echoed after the failover)" p
ended "ha: bravo's unsynced session is picked up on b, not blackholed" q
if [ "$(lab_counter b in_partner)" -eq "$in_b" ]; then
	pass "ha: on b the partner's session was established (committed), not picked up"
else
	fail "ha: on b the partner's session was established, not picked up" \
		"(in_partner $in_b -> $(lab_counter b in_partner))"
fi
if [ "$(lab_counter b in_bravo)" -gt "$bravo_b" ]; then
	pass "ha: on b bravo's session was picked up in mid-stream (in_bravo)"
else
	fail "ha: on b bravo's session was picked up in mid-stream (in_bravo $bravo_b)"
fi
reach "ha: a new partner session after the failover" partner tcp $SRV $PORT
blocked "ha: the stranger still does not, after the failover" stranger tcp $SRV $PORT
stranger_ha "ha: after the failover the stranger's advert and datagram are dropped on b" \
	b $B_OUT

# ---- without ha: the same checks must fail -----------------------------------------

# Gateway mode filters no input of the nodes: the stranger's datagram
# reaches conntrackd's port and is answered (port unreachable).
apply_both "$LAB_DIR/gw.yaml" "without ha: the policy applied on both nodes"
if lab_probe stranger connect -t "$LAB_NO_MS" udp $B_OUT 3780; then :; fi
case $LAB_WHY in
*refused*) pass "without ha: the stranger's datagram is not dropped (the check fails)" ;;
*) fail "without ha: the stranger's datagram is not dropped (got: $LAB_WHY)" ;;
esac
if [ "$(lab_counter b dropped_ha)" -eq -1 ]; then
	pass "without ha: no dropped_ha counter to tell"
else
	fail "without ha: no dropped_ha counter to tell"
fi
# Host mode, the peers under management (the issue's attempt): each
# node drops the other's adverts, and both take the virtual addresses.
start_keepalived a
converge a 60 || true
apply_both "$LAB_DIR/host.yaml" "without ha: host mode, the peers under management"
if converge ab 40; then pass "without ha: both nodes hold the virtual addresses (the check fails)"
else fail "without ha: both nodes hold the virtual addresses (holders: '$(holders)')"; fi
apply_both "$LAB_DIR/host-ha.yaml" "with ha again (host mode)"
if converge a 40; then pass "with ha: host mode: one node holds them again"
else fail "with ha: host mode: one node holds them again (holders: '$(holders)')"; fi
exclusive "with ha: host mode: exactly one node holds them, always" a

exit "$SUITE_FAILED"
