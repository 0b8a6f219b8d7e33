#!/bin/sh
# tests/lab/semantics.sh - the ruleset of docs/RULESET.md proven with real
# packets: policies from tests/lab/policies/ loaded into the namespace lab
# of labrc.sh, then real TCP handshakes, UDP datagrams and ICMP echoes
# from partners, a stranger and a management host, in and out.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
lab_init
POL=$TOP/tests/lab/policies
E4=203.0.113.10 E6=2001:db8:10::10

if ! lab_topology; then
	fail "lab: build the namespace topology"
	exit 1
fi
echo "# loading rulesets with: $(lab_apply_how)"

# addr HOST FAMILY: the lab address of HOST (4 or 6).
addr() {
	case $1.$2 in
	edge.4) echo $E4 ;; edge.6) echo $E6 ;;
	alpha.4) echo 198.51.100.11 ;; alpha.6) echo 2001:db8:51::11 ;;
	bravo.4) echo 198.51.100.12 ;; bravo.6) echo 2001:db8:51::12 ;;
	charlie.4) echo 198.51.100.13 ;; charlie.6) echo 2001:db8:51::13 ;;
	stranger.4) echo 198.51.100.99 ;; stranger.6) echo 2001:db8:51::99 ;;
	mgmt.4) echo 192.0.2.22 ;; mgmt.6) echo 2001:db8:2::22 ;;
	esac
}

# in_ok / in_no MODE FROM PROTO PORT FAMILY [WHY]: FROM -> edge.
in_ok() {
	reach "$1: $2 -> edge $3/$4 IPv$5 admitted, echo returns${6:+ ($6)}" \
		"$2" "$3" "$(addr edge "$5")" "$4"
}
in_no() {
	blocked "$1: $2 -> edge $3/$4 IPv$5 dropped${6:+ ($6)}" \
		"$2" "$3" "$(addr edge "$5")" "$4"
}
# out_ok / out_no MODE TO PROTO PORT FAMILY [WHY]: edge -> TO.
out_ok() {
	reach "$1: edge -> $2 $3/$4 IPv$5 admitted, echo returns${6:+ ($6)}" \
		edge "$3" "$(addr "$2" "$5")" "$4"
}
out_no() {
	blocked "$1: edge -> $2 $3/$4 IPv$5 dropped${6:+ ($6)}" \
		edge "$3" "$(addr "$2" "$5")" "$4"
}
# counter_pos HOST COUNTER WHY: the named counter counted packets.
counter_pos() {
	_c=$(lab_counter "$1" "$2")
	if [ "$_c" -gt 0 ] 2>/dev/null; then
		pass "$3: counter $2 = $_c packets"
	else
		fail "$3: counter $2 > 0"
		echo "    nft list counter inet fedwall $2 in $1: $_c" >&2
	fi
}
# table_same FILE WHY: `table inet other` in edge is as it was.
table_same() {
	lab_exec edge nft list table inet other >"$LAB_DIR/other.now" 2>&1
	same "$1" "$LAB_DIR/other.now" "$2"
}
# neigh_flush HOST...: forget every neighbour, so ND must run again.
neigh_flush() {
	for _h in "$@"; do lab_exec "$_h" ip neigh flush all; done
}

# ---- servers, and a baseline without any ruleset ----------------------
lab_serve edge tcp 22 443 5061 5269 8080 udp 3478 53 55555 &&
lab_serve alpha tcp 443 5061 udp 3478 &&
lab_serve bravo tcp 5061 &&
lab_serve charlie tcp 5061 5269 &&
lab_serve stranger tcp 443 5061 5269 8080 udp 3478 || {
	fail "lab: start the probe servers"; exit 1; }
pass "lab: probe servers listening in edge, alpha, bravo, charlie, stranger"

# So that every "dropped" below is the firewall's doing, not the lab's.
in_ok baseline stranger tcp 5061 4 "no ruleset"
in_ok baseline stranger tcp 5061 6 "no ruleset"
in_ok baseline stranger udp 3478 4 "no ruleset"
out_ok baseline stranger tcp 5061 4 "no ruleset"
in_ok baseline alpha tcp 8080 6 "no ruleset"

# Another table, made before fedwall's: it must survive everything.
lab_exec edge nft -f - <<'EOF'
table inet other {
	set trusted {
		type ipv4_addr
		elements = { 192.0.2.200, 192.0.2.201 }
	}
	chain helper {
		ip saddr @trusted accept
	}
	chain input {
		type filter hook input priority 10; policy accept;
		jump helper
	}
}
EOF
lab_exec edge nft list table inet other >"$LAB_DIR/other.before"

# ---- host mode: the ruleset on the edge itself ------------------------
host_mode() {
	M=host
	# inbound: alpha is admitted on each port of both its services
	for f in 4 6; do
		in_ok $M alpha tcp 5061 $f sip-federation
		in_ok $M alpha tcp 443 $f av-media
		in_ok $M alpha udp 3478 $f av-media
		in_ok $M alpha udp 55555 $f "inside av-media udp/50000-59999"
		in_ok $M charlie tcp 5269 $f "inbound-only partner"
	done
	in_ok $M mgmt tcp 22 4 "management 192.0.2.0/24"
	# inbound: nobody else, nowhere else
	for f in 4 6; do
		in_no $M stranger tcp 5061 $f stranger
		in_no $M stranger udp 3478 $f stranger
		in_no $M bravo tcp 5061 $f "partner admitted outbound only"
		in_no $M alpha tcp 5269 $f "another partner's service"
		in_no $M charlie tcp 5061 $f "not charlie's service"
	done
	in_no $M alpha tcp 8080 4 "port of no service"
	in_no $M alpha udp 53 4 "port of no service"
	in_no $M stranger tcp 22 4 "management port, not from 192.0.2.0/24"
	in_no $M mgmt tcp 5061 4 "management host is no partner"
	# outbound: partners on their service ports; others' signalling
	# ports dropped (whatever the partners' direction: xmpp-s2s is
	# charlie's, inbound only); shared ports and anything else open
	for f in 4 6; do
		out_ok $M bravo tcp 5061 $f "outbound-only partner"
		out_ok $M alpha tcp 5061 $f "partner both ways"
		out_ok $M alpha udp 3478 $f "partner both ways"
		out_no $M stranger tcp 5061 $f "stranger's signalling port"
		out_no $M stranger tcp 5269 $f "signalling port of an inbound-only partner"
		out_ok $M stranger udp 3478 $f "STUN: a shared port, never restricted"
		out_ok $M stranger tcp 443 $f "tcp/443: a shared port, never restricted"
		out_ok $M stranger tcp 8080 $f "not a federation port"
	done
	out_no $M charlie tcp 5061 4 "inbound-only partner"
	out_no $M charlie tcp 5269 4 "inbound-only partner on its own service"
	# ICMP echo is on in host.yaml: answered, to anybody
	pings "$M: alpha ping edge IPv4 answered (icmp echo on)" alpha $E4
	pings "$M: alpha ping edge IPv6 answered (icmp echo on)" alpha $E6
	pings "$M: stranger ping edge IPv4 answered (icmp echo on)" stranger $E4
	# IPv6 neighbour discovery runs under the ruleset
	neigh_flush edge fw
	pings "$M: ND after neighbour flush: alpha ping6 edge" alpha $E6
	neigh_flush edge fw
	out_ok $M bravo tcp 5061 6 "ND after neighbour flush, edge first"
	# counters
	counter_pos edge in_alpha "$M: alpha's accepted connections"
	counter_pos edge in_charlie "$M: charlie's accepted connections"
	counter_pos edge out_bravo "$M: edge's connections to bravo"
	counter_pos edge dropped_in "$M: stranger's attempts dropped"
	counter_pos edge dropped_out "$M: edge's attempts to strangers dropped"
}

host_reapply() {
	M=host
	# An established connection keeps flowing while the same policy is
	# applied again; nothing else changes.
	hold_start alpha $E4 1 || fail "$M: alpha holds a connection"
	ok "$M: reapply the same policy" lab_apply "$POL/host.yaml"
	hold_ok "$M: alpha's established connection survives reapply"
	plan_is 0 "$POL/host.yaml" "$M: plan exits 0 after reapply"
	table_same "$LAB_DIR/other.before" "$M: table inet other untouched by reapply"
	in_ok $M alpha tcp 5061 4 "after reapply"
	in_no $M stranger tcp 5061 4 "after reapply"

	# echo off: no answers, but ND still works
	sed 's/echo: true/echo: false/' "$POL/host.yaml" >"$LAB_DIR/noecho.yaml"
	if ok "$M: apply with icmp echo off" lab_apply "$LAB_DIR/noecho.yaml"; then
		no_ping "$M: alpha ping edge IPv4 dropped (icmp echo off)" alpha $E4
		no_ping "$M: alpha ping edge IPv6 dropped (icmp echo off)" alpha $E6
		neigh_flush edge fw
		in_ok $M alpha tcp 5061 6 "echo off, ND after neighbour flush"
		plan_is 2 "$POL/host.yaml" \
			"$M: plan of the echo-on policy exits 2 (changes pending)"
	fi
}

# hold_start HOST ADDR SECONDS: a held TCP connection to ADDR:5061 in the
# background; $HOLD is its pid once it printed "connected".
hold_start() {
	lab_hold h "$1" "$2" 5061 "$3"
}
hold_ok() {
	if wait $HOLD; then pass "$1"; else
		fail "$1"; sed 's/^/    /' "$LAB_DIR/hold.h.err" >&2; fi
}

# plan_is RC POLICY NAME: `fedwall plan` in edge exits RC (when it exists).
plan_is() {
	if ! lab_has plan; then
		skip "$3 (no 'fedwall plan' yet)"
		return
	fi
	lab_exec edge "$FEDWALL" plan -f "$2" --state-dir "$LAB_DIR/state" \
		>"$LAB_DIR/plan.out" 2>&1
	_rc=$?
	if [ $_rc -eq "$1" ]; then pass "$3"; else
		fail "$3 (exit $_rc)"; sed 's/^/    /' "$LAB_DIR/plan.out" >&2; fi
}

# Only alpha's IPv4 address changes (198.51.100.11 -> .14): an element
# change.  New connections from the old address stop (its established
# ones are cut: tests/lab/revoke.sh); one established before over the
# address that stays keeps flowing; counters of untouched partners
# survive when `fedwall apply` sends element deltas only.
host_addr_change() {
	M="host, address change"
	ok "$M: apply host.yaml again" lab_apply "$POL/host.yaml" || return
	in_ok "$M" charlie tcp 5269 4 "before"
	c0=$(lab_counter edge in_charlie)
	sed 's/198\.51\.100\.11,/198.51.100.14,/' "$POL/host.yaml" \
		>"$LAB_DIR/moved.yaml"
	plan_is 2 "$LAB_DIR/moved.yaml" "$M: plan exits 2 (changes pending)"
	hold_start alpha $E6 1 || fail "$M: alpha holds a connection"
	ok "$M: apply alpha's new address list" lab_apply "$LAB_DIR/moved.yaml"
	hold_ok "$M: alpha's established IPv6 connection keeps flowing"
	in_no "$M" alpha tcp 5061 4 "198.51.100.11 no longer alpha's"
	in_ok "$M" alpha tcp 5061 6 "alpha's IPv6 address unchanged"
	in_no "$M" stranger tcp 5061 4 "still a stranger"
	plan_is 0 "$LAB_DIR/moved.yaml" "$M: plan exits 0 after apply"
	if lab_has apply; then
		c1=$(lab_counter edge in_charlie)
		if [ "$c1" -ge "$c0" ] && [ "$c0" -gt 0 ]; then
			pass "$M: charlie's counter kept ($c0 -> $c1 packets)"
		else
			fail "$M: charlie's counter kept ($c0 -> $c1 packets)"
		fi
	fi
}

host_flush() {
	M=host
	ok "$M: flush" lab_flush "$POL/host.yaml"
	table_same "$LAB_DIR/other.before" "$M: table inet other untouched by flush"
	if lab_exec edge nft list table inet fedwall >/dev/null 2>&1; then
		fail "$M: table inet fedwall gone after flush"
	else
		pass "$M: table inet fedwall gone after flush"
	fi
	in_ok $M stranger tcp 5061 4 "after flush, nothing filters"
}

# The kernel refuses a commit: another netlink socket holds table inet
# fedwall (table flag "owner", kept by an `nft -i` reading a FIFO), so
# every change from anybody else is refused with EPERM.  fedwall must
# fail, and leave the held ruleset exactly as it was.
refused_commit() {
	M="refused commit"
	if ! lab_has apply; then
		skip "$M: kernel refuses apply, previous ruleset intact (no 'fedwall apply' yet)"
		return
	fi
	"$FEDWALL" generate -f "$POL/host.yaml" --state-dir "$LAB_DIR/state" |
		awk '/^table inet fedwall \{$/ && !o { print; print "\tflags owner"; o = 1; next } 1' \
		>"$LAB_DIR/held.nft"
	mkfifo "$LAB_DIR/holder.fifo"
	lab_exec edge nft -i <"$LAB_DIR/holder.fifo" >"$LAB_DIR/holder.out" 2>&1 &
	holder=$!
	LAB_PIDS="$LAB_PIDS $holder"
	exec 9>"$LAB_DIR/holder.fifo"
	echo "include \"$LAB_DIR/held.nft\"" >&9
	for _n in $(seq 100); do
		lab_exec edge nft list table inet fedwall >"$LAB_DIR/held.before" \
			2>/dev/null && grep -q 'flags owner' "$LAB_DIR/held.before" &&
			break
		sleep 0.05
	done
	if ! grep -q 'flags owner' "$LAB_DIR/held.before"; then
		skip "$M: kernel refuses apply (could not hold the table: nft too old?)"
		sed "s/^/    /" "$LAB_DIR/holder.out" "$LAB_DIR/held.before" >&2
		exec 9>&-
		return
	fi
	if lab_apply "$LAB_DIR/noecho.yaml" 2>"$LAB_DIR/refused.err"; then
		fail "$M: fedwall apply fails when the kernel refuses (EPERM)"
	else
		pass "$M: fedwall apply fails when the kernel refuses (EPERM)"
		sed 's/^ */    # fedwall said: /' "$LAB_DIR/refused.err" | head -3
	fi
	lab_exec edge nft list table inet fedwall >"$LAB_DIR/held.after" 2>&1
	same "$LAB_DIR/held.before" "$LAB_DIR/held.after" \
		"$M: previous ruleset in place, whole"
	in_ok "$M" alpha tcp 5061 4 "previous ruleset"
	in_no "$M" stranger tcp 5061 4 "previous ruleset"
	pings "$M: alpha ping edge IPv4 answered (previous ruleset: echo on)" alpha $E4
	table_same "$LAB_DIR/other.before" "$M: table inet other untouched"
	exec 9>&-	# the holder ends, and its table with it
	wait $holder
}

if ok "host: apply tests/lab/policies/host.yaml in edge" lab_apply "$POL/host.yaml"; then
	table_same "$LAB_DIR/other.before" "host: table inet other untouched by apply"
	plan_is 0 "$POL/host.yaml" "host: plan exits 0 right after apply"
	host_mode
	host_reapply
	host_addr_change
	host_flush
	refused_commit
else
	skip "host: packet checks (policy did not load)"
fi

# ---- gateway mode: fw filters the forward path to the edge behind it ---
gateway_mode() {
	M=gateway
	for f in 4 6; do
		in_ok $M alpha tcp 5061 $f "forwarded by fw"
		in_ok $M alpha udp 55555 $f "forwarded, inside udp/50000-59999"
		in_no $M stranger tcp 5061 $f "stranger, at fw"
		in_no $M bravo tcp 5061 $f "outbound-only partner, at fw"
		in_no $M alpha tcp 8080 $f "port of no service, at fw"
		out_ok $M bravo tcp 5061 $f "outbound-only partner, through fw"
		out_no $M stranger tcp 5061 $f "stranger's federation port, at fw"
		out_ok $M stranger tcp 8080 $f "not a federation port, through fw"
	done
	in_ok $M mgmt tcp 22 4 "management through fw"
	counter_pos fw in_alpha "$M: alpha's forwarded connections"
	counter_pos fw out_bravo "$M: edge's forwarded connections to bravo"
	counter_pos fw dropped_in "$M: stranger's attempts dropped at fw"
	# the fw's own ruleset does not filter the edge's input
	if lab_exec edge nft list table inet fedwall >/dev/null 2>&1; then
		fail "$M: no fedwall table in edge (only in fw)"
	fi
	ok "$M: flush in fw" lab_flush "$POL/gateway.yaml" fw
}

if ok "gateway: apply tests/lab/policies/gateway.yaml in fw" \
	lab_apply "$POL/gateway.yaml" fw; then
	gateway_mode
else
	skip "gateway: packet checks (policy did not load)"
fi

# examples/gateway.yaml as written, in the lab's fw (whose DMZ side is
# dmz0, as in the example): contoso is 198.51.100.0/24 and
# 2001:db8:100::/48, so alpha plays contoso over IPv4 only; mgmt
# (192.0.2.22) is management on tcp/22 and nobody's partner.
gateway_example() {
	M="gateway, examples/gateway.yaml"
	in_ok "$M" alpha tcp 5061 4 "inside contoso's 198.51.100.0/24"
	in_ok "$M" alpha udp 55555 4 "contoso av-edge udp/50000-59999"
	in_no "$M" alpha tcp 5061 6 "outside contoso's 2001:db8:100::/48"
	in_no "$M" alpha tcp 8080 4 "port of no service"
	in_no "$M" mgmt tcp 5061 4 "192.0.2.22 is nobody's partner"
	in_ok "$M" mgmt tcp 22 4 "management"
	ok "$M: flush in fw" lab_flush "$TOP/examples/gateway.yaml" fw
}

if ok "gateway: apply examples/gateway.yaml in fw" \
	lab_apply "$TOP/examples/gateway.yaml" fw; then
	gateway_example
else
	skip "gateway: packet checks of examples/gateway.yaml (did not load)"
fi

table_same "$LAB_DIR/other.before" "lab: table inet other as it was at the end"
exit $SUITE_FAILED
