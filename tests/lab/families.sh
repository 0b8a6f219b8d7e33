#!/bin/sh
# tests/lab/families.sh - a name's A and AAAA records are two sources, each
# with its own last known good, TTL and staleness, against a real DNS
# server and real packets.  dnsmasq answers a name of its hosts file that
# lies outside its --local domain for the family it has, and REFUSED for
# the other (it has no upstream): the broken AAAA of a partner's server,
# as non-authoritative servers give it.  One family failing never
# discards or freezes the other: the A records are admitted and followed
# while the AAAA fails, past stale_after too; the AAAA source goes stale,
# its addresses are dropped, and it stays reported stale (metrics, status
# --json, status, refresh's messages) until it answers again.  The same
# for an SRV target's A/AAAA, and the reverse (A failing, AAAA answering).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

DNSMASQ=/usr/sbin/dnsmasq
PY=/usr/bin/python3
lab_require || exit 0
if [ ! -x "$DNSMASQ" ]; then
	skip "families lab (no $DNSMASQ: apt-get install dnsmasq-base)"
	exit 0
fi
lab_dns_init

E4=203.0.113.10 E6=2001:db8:10::10
ST=$LAB_DIR/state
POLF=$LAB_DIR/policy.yaml
D=$LAB_DIR/dns

# mover (host mover.fam.test): alpha, then delta; six (host six.fam.test,
# AAAA only): bravo; hosted (SRV of famsrv.test -> sip.famsrv.test):
# charlie; plain (plain.example.test, inside the local domain: its AAAA
# is NODATA, a valid empty answer): echo
lab_dns_topology "families lab" || exit 1
mkdir -p "$D"

lab_dnsmasq_conf "$D/dnsmasq.conf" 198.51.100.53 "$D/hosts" \
	_sipfederationtls._tcp.famsrv.test,sip.famsrv.test,5061
# records MOVER_A [MOVER_AAAA]: the hosts file, reloaded
records() {
	{ echo "$1 mover.fam.test"
	  [ -n "${2:-}" ] && echo "$2 mover.fam.test"
	  echo "2001:db8:51::12 six.fam.test"
	  echo "198.51.100.13 sip.famsrv.test"
	  echo "198.51.100.15 plain.example.test"; } >"$D/hosts"
	[ -n "${DNSPID:-}" ] && kill -HUP "$DNSPID"
	sleep 0.2
}
records 198.51.100.11 2001:db8:51::11
ip netns exec "$LAB-dns" "$DNSMASQ" --keep-in-foreground --conf-file="$D/dnsmasq.conf" \
	--log-facility="$D/log" --pid-file="$D/pid" &
DNSPID=$!
LAB_PIDS="$LAB_PIDS $DNSPID"
up=
for _n in $(seq 100); do
	lab_exec edge getent hosts plain.example.test >/dev/null 2>&1 && { up=1; break; }
	sleep 0.05
done
[ -n "$up" ] || { fail "families lab: dnsmasq answers in the lab"; exit 1; }

# policy STALE_AFTER
policy() {
	cat >"$POLF" <<EOF
version: 1
partners:
  mover:
    services: [sip-federation]
    direction: inbound
    hosts: [mover.fam.test]
  six:
    services: [sip-federation]
    direction: inbound
    hosts: [six.fam.test]
  hosted:
    services: [sip-federation]
    direction: inbound
    domains: [famsrv.test]
  plain:
    services: [sip-federation]
    direction: inbound
    hosts: [plain.example.test]
guards: {max_shrink: 50%, stale_after: $1}
resolve: {ttl_min: 1s, ttl_max: 2s, timeout: 1s}
EOF
}

fw() { lab_fw edge "$@" -f "$POLF" --state-dir "$ST"; }
in4_ok() { reach "$1" "$2" tcp $E4 5061; }
in4_no() { blocked "$1" "$2" tcp $E4 5061; }
in6_ok() { reach "$1" "$2" tcp $E6 5061; }
in6_no() { blocked "$1" "$2" tcp $E6 5061; }
# metric NAME LABELS VALUE TEST: the sample NAME{LABELS} is VALUE
metric() {
	if grep -qxF "$1{$2} $3" "$LAB_DIR/samples.raw"; then pass "$4"; else
		fail "$4"; echo "    wanted: $1{$2} $3" >&2
		grep "^$1{" "$LAB_DIR/samples.raw" | sed 's/^/    /' >&2; fi
}
prom() {
	lab_exec edge "$FEDWALL" status --format prometheus -f "$POLF" --state-dir "$ST" \
		>"$LAB_DIR/samples.raw"
}
# confirmed HOST FAMILY: when the state says HOST's FAMILY was last confirmed
confirmed() {
	"$TOP/tools/state-text.py" "$ST/state" | awk -v h="$1" -v f="$2" '
		$1 == "source" { name = $6; when = $3; fam = 0 }
		$1 == "family" { fam = $2; if (name == h && fam == f) print when }'
}
MOVER='partner="mover",kind="host",source="mover.fam.test"'

lab_serve edge tcp 5061 || { fail "families lab: probe server"; exit 1; }
policy 1h

# ---- both families answer ---------------------------------------------------
fw refresh
has OUT "^fedwall: partner mover: \+2 -0 addresses \(hosts mover.fam.test)$" \
	"both answer: mover admitted on its A and AAAA records"
in4_ok "both answer: alpha over IPv4 (A)" alpha
in6_ok "both answer: alpha over IPv6 (AAAA)" alpha
in4_no "both answer: stranger dropped" stranger
# One family failing from the start: the other is admitted all the same.
in6_ok "AAAA alone (A refused): bravo over IPv6" bravo
in4_no "AAAA alone: bravo over IPv4 dropped (no A record answered)" bravo
in4_ok "SRV target's A admitted while its AAAA fails: charlie" charlie
has ERR "partner 'six': host 'six.fam.test': six.fam.test A: servfail" \
	"A refused: reported, naming the family"
# NODATA for one family beside the other's record is an empty answer, no failure
if printf '%s\n' "$ERR" | grep -q "plain.example.test"; then
	fail "NODATA AAAA: no warning for plain.example.test"; show
else pass "NODATA AAAA: no warning for plain.example.test"; fi
in4_ok "NODATA AAAA: echo admitted on its A record" echo
T_AAAA=$(confirmed mover.fam.test 6)
[ -n "$T_AAAA" ] && pass "the state records the AAAA source on its own ($T_AAAA)" ||
	fail "the state records the AAAA source on its own"

# ---- the AAAA fails: the A record is still followed ---------------------------
records 198.51.100.11
fw refresh
expect_rc 1 "AAAA fails: refresh exits 1 (a source failed)"
has ERR "partner 'mover': host 'mover.fam.test': mover.fam.test AAAA: servfail .*; keeping its 1 last known good address" \
	"AAAA fails: its last known good kept, said so"
if printf '%s\n' "$ERR" | grep -q "partner 'mover'.*no last known good"; then
	fail "AAAA fails: the A answer is not thrown away"; show
else pass "AAAA fails: the A answer is not thrown away"; fi
in6_ok "AAAA fails: alpha over IPv6 still admitted (last known good)" alpha
records 198.51.100.14
fw refresh
has OUT "^fedwall: partner mover: \+1 -1 addresses \(hosts mover.fam.test\)$" \
	"A moves while AAAA fails: followed"
in4_ok "A moved: delta admitted" delta
in4_no "A moved: alpha's old IPv4 address refused" alpha
in6_ok "A moved: alpha's IPv6 (the AAAA's last known good) still admitted" alpha

# ---- past stale_after: the AAAA dropped, the A never --------------------------
policy 3s
while [ "$(date +%s)" -le $((T_AAAA + 4)) ]; do sleep 0.2; done
fw refresh
expect_rc 1 "stale: refresh exits 1"
has ERR "partner 'mover': host 'mover.fam.test' \(AAAA\) \(.*\): last confirmed [0-9]+ s ago, more than stale_after \(3 s\): dropping its 1 last known good address" \
	"stale: the AAAA source dropped, loudly"
in6_no "stale: alpha over IPv6 refused (the AAAA's address dropped)" alpha
in4_ok "stale: mover not cut, its A answered every time (delta)" delta
in4_ok "stale: the SRV target's A answered every time (charlie)" charlie
in6_ok "stale: six's AAAA answered every time (bravo)" bravo
prom
metric fedwall_source_stale "$MOVER,family=\"ipv6\"" 1 "metrics: the AAAA source is stale"
metric fedwall_source_dropped "$MOVER,family=\"ipv6\"" 1 "metrics: its addresses dropped"
metric fedwall_source_last_confirmed_timestamp_seconds "$MOVER,family=\"ipv6\"" "$T_AAAA" \
	"metrics: when it was last confirmed, kept after the drop"
metric fedwall_source_stale "$MOVER,family=\"ipv4\"" 0 "metrics: the A source is not stale"
metric fedwall_source_addresses "$MOVER,family=\"ipv4\"" 1 "metrics: the A source's address"
metric fedwall_partner_stale_sources 'partner="mover"' 1 "metrics: mover has one stale source"

# Later refreshes: still reported, the partner still admitted.
sleep 3.2
fw refresh
has ERR "partner 'mover': host 'mover.fam.test' \(AAAA\): mover.fam.test AAAA: servfail .*; still stale: last confirmed [0-9]+ s ago, more than stale_after \(3 s\), its 1 last known good address dropped" \
	"still failing: refresh still says the AAAA source is stale, its address dropped"
in4_ok "still failing, another stale_after later: delta admitted" delta
prom
metric fedwall_source_stale "$MOVER,family=\"ipv6\"" 1 "metrics: still stale after another refresh"
metric fedwall_source_dropped "$MOVER,family=\"ipv6\"" 1 "metrics: still dropped"
metric fedwall_partner_stale_sources 'partner="mover"' 1 "metrics: mover's stale count stays"
lab_exec edge "$FEDWALL" status --json -f "$POLF" --state-dir "$ST" >"$LAB_DIR/status.json"
ok "status --json: the AAAA source stale, dropped, last confirmed" $PY -c '
import json, sys
j = json.load(open(sys.argv[1]))
s = [s for s in j["sources"] if s["source"] == "mover.fam.test"]
assert len(s) == 2, s
a = [x for x in s if x["family"] == "ipv4"][0]
b = [x for x in s if x["family"] == "ipv6"][0]
assert a["stale"] is False and a["dropped"] is False and a["addresses"] == 1, a
assert b["stale"] is True and b["dropped"] is True and b["dropped_addresses"] == 1, b
assert b["last_confirmed"] == int(sys.argv[2]) and b["addresses"] == 0, b' \
	"$LAB_DIR/status.json" "$T_AAAA"
lab_exec edge "$FEDWALL" status -f "$POLF" --state-dir "$ST" >"$LAB_DIR/status.txt" 2>&1
ok "status: names the stale AAAA source and its dropped address" grep -q \
	"^stale source: partner mover, host mover.fam.test (AAAA): last confirmed .*; its 1 address dropped" \
	"$LAB_DIR/status.txt"

# ---- it answers again: admitted, no longer reported -------------------------
records 198.51.100.14 2001:db8:51::11
fw refresh
has OUT "^fedwall: partner mover: \+1 -0 address \(hosts mover.fam.test\)$" \
	"AAAA back: its address admitted again"
in6_ok "AAAA back: alpha over IPv6" alpha
in4_ok "AAAA back: delta over IPv4" delta
prom
metric fedwall_source_stale "$MOVER,family=\"ipv6\"" 0 "metrics: AAAA answered: no longer stale"
metric fedwall_source_dropped "$MOVER,family=\"ipv6\"" 0 "metrics: AAAA answered: not dropped"
metric fedwall_partner_stale_sources 'partner="mover"' 0 "metrics: mover's stale count back to 0"
lab_exec edge "$FEDWALL" status --json -f "$POLF" --state-dir "$ST" >"$LAB_DIR/status.json"
ok "status --json: the AAAA source fresh again" $PY -c '
import json, sys
j = json.load(open(sys.argv[1]))
b = [s for s in j["sources"] if s["source"] == "mover.fam.test" and s["family"] == "ipv6"][0]
assert b["stale"] is False and b["dropped"] is False and b["addresses"] == 1, b' \
	"$LAB_DIR/status.json"

exit $SUITE_FAILED
