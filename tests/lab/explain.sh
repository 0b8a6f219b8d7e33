#!/bin/sh
# tests/lab/explain.sh - fedwall explain against a real policy, a list
# file, a real DNS server (dnsmasq: A records and an SRV record), a
# refresh that resolved them into the state, and the table it applied in
# the lab's edge: who admits an address and why (the policy's line, the
# list's lines, the DNS name and when it was confirmed, the SRV record),
# a stranger and a port that nothing admits (exit 2, the dropping rule,
# whose counter the real packet moves), and --live against a table
# changed behind fedwall's back (an element added with nft: --live says
# admitted and that the policy does not, offline says dropped, and a real
# packet agrees with --live).  --json is parsed and checked.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

DNSMASQ=/usr/sbin/dnsmasq
lab_require || exit 0
if [ ! -x "$DNSMASQ" ]; then
	skip "explain lab (no $DNSMASQ: apt-get install dnsmasq-base)"
	exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
	skip "explain lab (no python3 to parse --json)"
	exit 0
fi
lab_dns_init

E4=203.0.113.10
ST=$LAB_DIR/state
POLF=$LAB_DIR/policy.yaml
LIST=$LAB_DIR/listed.txt
D=$LAB_DIR/dns

lab_dns_topology "explain lab" || exit 1
mkdir -p "$D"

# The zone: delta by name, echo as the target of fabrikam's SRV record.
lab_dnsmasq_conf "$D/dnsmasq.conf" 198.51.100.53 "$D/hosts" \
	_sipfederationtls._tcp.fabrikam.example.test,sip.fabrikam.example.test,5061
printf '198.51.100.14 mover.example.test\n198.51.100.15 sip.fabrikam.example.test\n' \
	>"$D/hosts"
ip netns exec "$LAB-dns" "$DNSMASQ" --keep-in-foreground --conf-file="$D/dnsmasq.conf" \
	--log-facility="$D/log" --pid-file="$D/pid" &
LAB_PIDS="$LAB_PIDS $!"
for _n in $(seq 100); do
	lab_exec edge getent hosts mover.example.test >/dev/null 2>&1 && break
	sleep 0.05
done

# bravo (.12) is on line 2 and inside the /31 of line 4 (with charlie).
printf '# partner listed\n198.51.100.12\n\n198.51.100.12/31\n' >"$LIST"
cat >"$POLF" <<EOF
version: 1
partners:
  inl:
    services: [sip-federation]
    direction: inbound
    addresses: [198.51.100.11, 2001:db8:51::11]
  listed:
    services: [sip-federation]
    direction: inbound
    lists: [$LIST]
  mover:
    services: [sip-federation]
    direction: inbound
    hosts: [mover.example.test]
  fab:
    services: [sip-federation]
    direction: inbound
    domains: [fabrikam.example.test]
management:
  - {from: 192.0.2.22, to: tcp/22}
resolve: {ttl_min: 1s, ttl_max: 2s, timeout: 1s}
EOF
INL_LINE=$(grep -n 'addresses: \[198.51.100.11,' "$POLF" | cut -d: -f1)
HOST_LINE=$(grep -n 'hosts: \[mover' "$POLF" | cut -d: -f1)
DOM_LINE=$(grep -n 'domains: \[fabrikam' "$POLF" | cut -d: -f1)
MGMT_LINE=$(grep -n 'from: 192.0.2.22' "$POLF" | cut -d: -f1)

# fw ARGS...: fedwall in the edge with the lab's policy and state.
fw() { lab_fw edge "$@" -f "$POLF" --state-dir "$ST"; }
# fwx ARGS...: fedwall explain ARGS (options before the operands).
fwx() { lab_fw edge explain -f "$POLF" --state-dir "$ST" "$@"; }
# json CHECK NAME: the last output parsed as JSON, CHECK a python
# expression on it (j) that must hold.
json() {
	if printf '%s\n' "$OUT" | python3 -c 'import json, sys
j = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"; then pass "$2"; else fail "$2"; show; fi
}

lab_serve edge tcp 5061 || { fail "explain lab: probe server"; exit 1; }
lab_serve edge tcp 5269 || { fail "explain lab: probe server (5269)"; exit 1; }
lab_serve edge tcp 22 || { fail "explain lab: probe server (22)"; exit 1; }
T0=$(date +%s)
fw refresh
expect_rc 0 "explain lab: refresh resolves the names and applies the table"
T1=$(date +%s)

# ---- an inline address: the policy's line ---------------------------------
fwx 198.51.100.11
expect_rc 0 "explain: an inline address is admitted (exit 0)"
has OUT "^  inbound from 198.51.100.11 on tcp/5061: partner inl \(map in4_[0-9]+, element 198.51.100.11\)$" \
	"explain: inline: who, direction, port, map"
has OUT "^    inline 198.51.100.11 \(at $POLF:$INL_LINE\)$" \
	"explain: inline: the policy's file:line"
reach "explain: inline: alpha really gets in on tcp/5061" alpha tcp $E4 5061
fwx 2001:db8:51::11 tcp/5061
expect_rc 0 "explain: an inline IPv6 address is admitted on tcp/5061"
has OUT "^  inbound from 2001:db8:51::11 on tcp/5061: partner inl \(map in6_[0-9]+, element 2001:db8:51::11\)$" \
	"explain: inline IPv6: the IPv6 map"
has OUT "^    inline 2001:db8:51::11 \(at $POLF:$INL_LINE\)$" "explain: inline IPv6: the policy's line"

# ---- a list line: every line that covers it, file:line ---------------------
fwx 198.51.100.12
expect_rc 0 "explain: a listed address is admitted"
has OUT "^    list $LIST line 2: 198.51.100.12 \(read now" "explain: list: the exact line (file line 2)"
has OUT "^    list $LIST line 4: 198.51.100.12/31 \(" "explain: list: the containing prefix's line (line 4)"
fwx --json 198.51.100.12
json 'j["admitted"] and sorted(s["line"] for s in j["sources"] if s["kind"] == "list") == ["'"$LIST"':2", "'"$LIST"':4"]' \
	"explain --json: list sources with file:line"
json 'all(a["partner"] == "listed" and a["direction"] == "in" and a["ports"] == "tcp/5061" for a in j["admits"])' \
	"explain --json: admits partner listed inbound on tcp/5061"

# ---- a DNS name: the name, when last confirmed -----------------------------
fwx 198.51.100.14
expect_rc 0 "explain: an address of a DNS name is admitted"
has OUT "^    host mover.example.test \(A records\): 198.51.100.14 \(last known good, last confirmed 20[0-9-]+T[0-9:]+Z, [0-9]+ s ago, not validated by DNSSEC; at $POLF:$HOST_LINE\)$" \
	"explain: host: the name, last confirmed, the policy's line"
fwx --json 198.51.100.14
json '[(s["name"], s["policy"]) for s in j["sources"]] == [("mover.example.test", "'"$POLF:$HOST_LINE"'")] and '"$T0"' <= j["sources"][0]["confirmed"] <= '"$T1" \
	"explain --json: host source confirmed by the refresh"
reach "explain: host: delta really gets in" delta tcp $E4 5061

# ---- an SRV chain: the SRV record that led to the address ------------------
fwx 198.51.100.15
expect_rc 0 "explain: an address found through SRV is admitted"
has OUT "^    srv record _sipfederationtls._tcp.fabrikam.example.test \(domain fabrikam.example.test\) -> its targets' A records: 198.51.100.15 \(last known good, last confirmed 20" \
	"explain: srv: the SRV record and its domain"
has OUT "at $POLF:$DOM_LINE\)$" "explain: srv: the policy's domains: line"
fwx --json 198.51.100.15
json 'j["sources"][0]["kind"] == "srv" and j["sources"][0]["record"] == "_sipfederationtls._tcp.fabrikam.example.test" and j["sources"][0]["partner"] == "fab"' \
	"explain --json: srv record and partner"
reach "explain: srv: echo (the SRV target) really gets in" echo tcp $E4 5061

# ---- management ------------------------------------------------------------
fwx 192.0.2.22 tcp/22
expect_rc 0 "explain: management admits its host on tcp/22"
has OUT "^  inbound from 192.0.2.22 on tcp/22: management \(set mgmt4, element 192.0.2.22\)$" \
	"explain: management: the set and port"
has OUT "^    management 192.0.2.22 \(at $POLF:$MGMT_LINE\)$" "explain: management: the policy's line"
reach "explain: management: mgmt really gets in on tcp/22" mgmt tcp $E4 22

# ---- a stranger: exit 2, the rule that drops it, whose counter moves -------
fwx 198.51.100.99
expect_rc 2 "explain: a stranger is dropped (exit 2)"
has OUT "^  inbound: nothing admits it: dropped by chain edge_in's last rule \(counter dropped_in\)$" \
	"explain: stranger: the dropping rule and its counter"
has OUT "^no partner, management or allowance entry of the policy names it$" \
	"explain: stranger: named nowhere"
fwx --json 198.51.100.99
json 'not j["admitted"] and j["admits"] == [] and j["dropped"]["in"]["counter"] == "dropped_in" and j["sources"] == []' \
	"explain --json: stranger dropped by dropped_in"
before=$(lab_counter edge dropped_in)
blocked "explain: stranger: really dropped" stranger tcp $E4 5061
after=$(lab_counter edge dropped_in)
if [ "$after" -gt "$before" ]; then pass "explain: stranger: counter dropped_in counts it"
else fail "explain: stranger: counter dropped_in counts it ($before -> $after)"; fi

# ---- an admitted address on a port it is not admitted on -------------------
fwx 198.51.100.11 tcp/5269
expect_rc 2 "explain: inline address on tcp/5269 (not its service) is dropped (exit 2)"
has OUT "^  inbound on tcp/5269: nothing admits it: dropped by chain edge_in's last rule \(counter dropped_in\)$" \
	"explain: port: the dropping rule for that port"
has OUT "^    admits it nowhere asked: the port is none of its services' ports$" \
	"explain: port: says tcp/5269 is none of partner inl's services' ports"
fwx 198.51.100.11 tcp/5061
expect_rc 0 "explain: the same address on tcp/5061 is admitted"
blocked "explain: port: alpha really dropped on tcp/5269" alpha tcp $E4 5269

# ---- --live: an element added behind fedwall's back ------------------------
MAP=$(printf '%s\n' "$OUT" | sed -n 's/.*(map \(in4_[0-9]*\), .*/\1/p' | head -1)
lab_exec edge nft add element inet fedwall "$MAP" '{ 198.51.100.99 : jump in_inl }'
fwx --live 198.51.100.99
expect_rc 0 "explain --live: the element added by hand admits the stranger (exit 0)"
has OUT "^  inbound from 198.51.100.99 on tcp/5061: partner inl \(map $MAP, element 198.51.100.99\)$" \
	"explain --live: partner inl admits it in the live table"
has OUT "^    not in the policy: no source of it names this element" \
	"explain --live: says the policy does not name it"
has OUT "^live and policy disagree: the table the policy makes now admits it nowhere \(dropped\)$" \
	"explain --live: says live and policy disagree"
fwx --live --json 198.51.100.99
json 'j["from"] == "live" and j["admitted"] and not j["agrees"] and j["admits"][0]["in_policy"] is False and j["policy_admits"] == []' \
	"explain --live --json: admitted, not in the policy, disagrees"
fwx 198.51.100.99
expect_rc 2 "explain (offline) still says dropped"
reach "explain --live: the stranger really gets in now" stranger tcp $E4 5061
fwx --live 198.51.100.11
expect_rc 0 "explain --live: an address fedwall applied is admitted"
if printf '%s\n' "$OUT" | grep -q "disagree\|not in the policy"; then
	fail "explain --live: live and policy agree on an applied address"; show
else pass "explain --live: live and policy agree on an applied address"; fi

# ---- errors and usage ------------------------------------------------------
fwx 198.51.100.0/24
expect_rc 64 "explain: a prefix is a usage error (64)"
fwx 198.51.100.11 tcp/5061-5062
expect_rc 64 "explain: a port range is a usage error (64)"
lab_fw edge explain -f "$LAB_DIR/nonexistent.yaml" --state-dir "$ST" 198.51.100.11
expect_rc 1 "explain: a missing policy is an error (exit 1)"
lab_flush "$POLF"
fwx --live 198.51.100.11
expect_rc 1 "explain --live without the table is an error (exit 1)"
has ERR "table inet fedwall is not loaded" "explain --live: says the table is not loaded"
exit $SUITE_FAILED
