#!/bin/sh
# tests/lab/perservice.sh - addresses per service, against a real DNS
# server (dnsmasq in a lab namespace of its own) and real packets: a
# partner with services [sip-federation, xmpp-s2s] and a domain whose
# _sipfederationtls._tcp and _xmpp-server._tcp SRV records name different
# hosts.  A host learnt from one protocol's SRV record is admitted on that
# protocol's port only; a host both records name, and the partner's
# inline address, on both.  The XMPP target then moves: the new address is
# admitted on tcp/5269 only, the old one nowhere.  Last, max_shrink holds
# the partner back: it keeps each address on the services it was on.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

DNSMASQ=/usr/sbin/dnsmasq
lab_require || exit 0
if [ ! -x "$DNSMASQ" ]; then
	skip "per-service lab (no $DNSMASQ: apt-get install dnsmasq-base)"
	exit 0
fi
lab_dns_init

E4=203.0.113.10
ST=$LAB_DIR/state
POLF=$LAB_DIR/policy.yaml
D=$LAB_DIR/dns

# alpha: the SIP-only target, bravo: the XMPP-only target (until it moves
# to delta), charlie: the target both records name, echo: the partner's
# inline address
lab_dns_topology "per-service lab" || exit 1
mkdir -p "$D"

# ---- the DNS server --------------------------------------------------------
lab_dnsmasq_conf "$D/dnsmasq.conf" 198.51.100.53 "$D/hosts" \
	_sipfederationtls._tcp.fabrikam.example.test,sip.fabrikam.example.test,5061 \
	_sipfederationtls._tcp.fabrikam.example.test,both.fabrikam.example.test,5061 \
	_xmpp-server._tcp.fabrikam.example.test,xmpp.fabrikam.example.test,5269 \
	_xmpp-server._tcp.fabrikam.example.test,both.fabrikam.example.test,5269
# records XMPP_ADDR [SIP_ADDR]: the zone
records() {
	cat >"$D/hosts" <<EOF
${2:-198.51.100.11} sip.fabrikam.example.test
$1 xmpp.fabrikam.example.test
198.51.100.13 both.fabrikam.example.test
EOF
	[ -n "${DNSPID:-}" ] || return 0
	kill -HUP "$DNSPID"
	dns_says "$1"
}
# dns_says ADDR: until the server answers xmpp's A record with ADDR
dns_says() {
	for _n in $(seq 200); do
		lab_exec edge getent ahostsv4 xmpp.fabrikam.example.test 2>/dev/null |
			grep -q "^$1 " && return 0
		sleep 0.05
	done
	return 1
}
DNSPID= records 198.51.100.12
ip netns exec "$LAB-dns" "$DNSMASQ" --keep-in-foreground --conf-file="$D/dnsmasq.conf" \
	--log-facility="$D/log" --pid-file="$D/pid" &
DNSPID=$!
LAB_PIDS="$LAB_PIDS $DNSPID"
dns_says 198.51.100.12 || { fail "per-service lab: dnsmasq answers in the lab"; exit 1; }

cat >"$POLF" <<EOF
version: 1
partners:
  fabrikam:
    services: [sip-federation, xmpp-s2s]
    direction: inbound
    domains: [fabrikam.example.test]
    addresses: [198.51.100.15]
guards: {max_shrink: 25%}
EOF

fw() { lab_fw edge "$@" -f "$POLF" --state-dir "$ST"; }
sip_ok() { reach "$1" "$2" tcp $E4 5061; }
sip_no() { blocked "$1" "$2" tcp $E4 5061; }
xmpp_ok() { reach "$1" "$2" tcp $E4 5269; }
xmpp_no() { blocked "$1" "$2" tcp $E4 5269; }

lab_serve edge tcp 5061 tcp 5269 || { fail "per-service lab: probe server"; exit 1; }

# ---- the first refresh -----------------------------------------------------
fw refresh
expect_rc 0 "refresh exits 0"
sip_ok "the SIP-only target (alpha) admitted on tcp/5061" alpha
xmpp_no "the SIP-only target (alpha) refused on tcp/5269" alpha
xmpp_ok "the XMPP-only target (bravo) admitted on tcp/5269" bravo
sip_no "the XMPP-only target (bravo) refused on tcp/5061" bravo
sip_ok "the target both SRV records name (charlie) admitted on tcp/5061" charlie
xmpp_ok "the target both SRV records name (charlie) admitted on tcp/5269" charlie
sip_ok "the inline address (echo) admitted on tcp/5061" echo
xmpp_ok "the inline address (echo) admitted on tcp/5269" echo
sip_no "the stranger refused on tcp/5061" stranger
xmpp_no "the stranger refused on tcp/5269" stranger

# ---- what the ruleset, plan and status say ---------------------------------
lab_exec edge nft list table inet fedwall >"$LAB_DIR/table" 2>&1
if grep -q 'port class tcp/5061"' "$LAB_DIR/table" &&
   grep -q 'port class tcp/5269"' "$LAB_DIR/table"; then
	pass "ruleset: tcp/5061 and tcp/5269 are port classes of their own"
else fail "ruleset: tcp/5061 and tcp/5269 are port classes of their own"
	sed 's/^/    /' "$LAB_DIR/table" >&2; fi
fw plan
expect_rc 0 "plan: nothing to do after the refresh"
# plan against an empty kernel: every element, with the services it is on
lab_exec edge nft delete table inet fedwall
fw plan
expect_rc 2 "plan: the table is missing, changes pending"
has OUT "\+ 198\.51\.100\.11  \(in4_1: tcp/5061 for sip-federation\)" \
	"plan: the SIP-only target in the class of tcp/5061, for sip-federation"
has OUT "\+ 198\.51\.100\.12/31  \(in4_2: tcp/5269 for xmpp-s2s\)" \
	"plan: the XMPP-only and the shared target in the class of tcp/5269, for xmpp-s2s"
if printf '%s\n' "$OUT" | grep -q '+ 198\.51\.100\.11  (in4_2'; then
	fail "plan: the SIP-only target not in the class of tcp/5269"; show
else pass "plan: the SIP-only target not in the class of tcp/5269"; fi
has OUT "\+ 198\.51\.100\.15  \(in4_1: " "plan: the inline address in the class of tcp/5061"
has OUT "\+ 198\.51\.100\.15  \(in4_2: " "plan: the inline address in the class of tcp/5269"
fw apply
expect_rc 0 "apply: the table is back from the policy and the state (offline)"
sip_ok "apply: the SIP-only target (alpha) admitted on tcp/5061 again" alpha
xmpp_no "apply: the SIP-only target (alpha) still refused on tcp/5269" alpha
sip_no "apply: the XMPP-only target (bravo) still refused on tcp/5061" bravo
fw status
has OUT "198\.51\.100\.11 .*via SRV _sipfederationtls\._tcp: sip-federation only" \
	"status: the SIP-only target is shown on sip-federation only"
has OUT "198\.51\.100\.12 .*via SRV _xmpp-server\._tcp: xmpp-s2s only" \
	"status: the XMPP-only target is shown on xmpp-s2s only"
has OUT "198\.51\.100\.13 via SRV _sipfederationtls\._tcp, _xmpp-server\._tcp: all its services" \
	"status: the target both records name is shown on all services"
fw explain 198.51.100.12 tcp/5061
expect_rc 2 "explain: the XMPP-only target is dropped on tcp/5061"
has OUT "an SRV record gave it, and the port is none of the ports of that record's services" \
	"explain: says why: the SRV record's services do not have tcp/5061"
fw explain 198.51.100.12 tcp/5269
expect_rc 0 "explain: the XMPP-only target is admitted on tcp/5269"
has OUT "_xmpp-server\._tcp.*xmpp-s2s only" \
	"explain: its source counts for xmpp-s2s only"

# ---- the XMPP target moves ------------------------------------------------
records 198.51.100.14 || fail "per-service lab: dnsmasq serves the moved XMPP target"
lab_exec edge env FEDWALL_INCR=verify "$FEDWALL" refresh -v -f "$POLF" --state-dir "$ST" \
	>"$LAB_DIR/out" 2>"$LAB_DIR/err"
RC=$? OUT=$(cat "$LAB_DIR/out") ERR=$(cat "$LAB_DIR/err")
expect_rc 0 "move: refresh exits 0"
has OUT "^fedwall: partner fabrikam: \+1 -1 addresses" \
	"move: the partner gains one address and loses one"
has ERR "full derivation: partner 'fabrikam' has addresses per service" \
	"move: derived in full, not patched into the partner's every class"
xmpp_ok "move: the new XMPP target (delta) admitted on tcp/5269" delta
sip_no "move: the new XMPP target (delta) refused on tcp/5061" delta
xmpp_no "move: the old XMPP target (bravo) gone from tcp/5269" bravo
sip_no "move: the old XMPP target (bravo) still refused on tcp/5061" bravo
sip_ok "move: the SIP-only target (alpha) still admitted on tcp/5061" alpha
xmpp_no "move: the SIP-only target (alpha) still refused on tcp/5269" alpha
sip_ok "move: the shared target (charlie) still on tcp/5061" charlie
xmpp_ok "move: the shared target (charlie) still on tcp/5269" charlie
xmpp_ok "move: the inline address (echo) still on tcp/5269" echo

# ---- an unchanged refresh patches nothing and changes nothing -------------
fw refresh
expect_rc 0 "again: refresh exits 0"
if [ -z "$OUT" ]; then pass "again: nothing changed, nothing said"
else fail "again: nothing changed, nothing said"; show; fi
xmpp_ok "again: delta still on tcp/5269" delta
sip_no "again: delta still refused on tcp/5061" delta

# ---- held back: what it keeps stays on its services ------------------------
# Both targets now name charlie's address: the partner would go from four
# addresses to two, more than max_shrink; it keeps what the table holds,
# each address on the services it was on.
records 198.51.100.13 198.51.100.13 ||
	fail "per-service lab: dnsmasq serves the shrunk records"
fw refresh
expect_rc 1 "held back: refresh exits 1 (a partner held back)"
has ERR "partner 'fabrikam': refresh refused: would remove" \
	"held back: max_shrink refuses the partner"
sip_ok "held back: the SIP-only target (alpha) kept on tcp/5061" alpha
xmpp_no "held back: the SIP-only target (alpha) not widened to tcp/5269" alpha
xmpp_ok "held back: the XMPP-only target (delta) kept on tcp/5269" delta
sip_no "held back: the XMPP-only target (delta) not widened to tcp/5061" delta
xmpp_ok "held back: the inline address (echo) still on tcp/5269" echo

exit $SUITE_FAILED
