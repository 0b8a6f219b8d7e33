#!/bin/sh
# tests/lab/dnssec.sh - `dnssec: require` against a real signed zone.
# nsd (Debian's authoritative server) serves sec.test, signed here with
# ldns-signzone under a key made with ldns-keygen, whose DS record is the
# policy's resolve.trust_anchor, and plain.test unsigned; fedwall in the
# edge resolves through it (the edge's resolv.conf names nsd).  A
# partner that requires DNSSEC is admitted on its validated address
# (real packets; status, plan and explain say validated by DNSSEC); the
# zone re-served with a record changed after signing is bogus: the
# partner keeps its last known good address, the refresh names DNSSEC and
# the reason, the changed (new) address is not admitted, and the source
# is reported failed (the metrics' last refresh, its last confirmation
# unchanged).  A partner that requires DNSSEC in the unsigned zone is
# refused ("answer not validated (insecure)"); one that does not keeps
# working there.  Without resolve.trust_anchor and with Debian's root
# anchor hidden, check warns and only the requiring partners' names fail.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

NSD=/usr/sbin/nsd
PY=/usr/bin/python3
lab_require || exit 0
for t in "$NSD" /usr/bin/ldns-keygen /usr/bin/ldns-signzone; do
	if [ ! -x "$t" ]; then
		skip "dnssec lab (no $t: apt-get install nsd ldnsutils)"
		exit 0
	fi
done
lab_dns_init

E4=203.0.113.10 E6=2001:db8:10::10
ST=$LAB_DIR/state
POLF=$LAB_DIR/policy.yaml
D=$LAB_DIR/dns
NS=198.51.100.53

# signed (www.sec.test, validated): alpha; then, the zone broken, bravo;
# plain (www.plain.test, unsigned, no dnssec): charlie; unsigned
# (insecure.plain.test, requires dnssec): delta; hosted (SRV of sec.test
# -> sip.sec.test, requires dnssec): echo
lab_dns_topology "dnssec lab" || exit 1
mkdir -p "$D"

# ---- the zones --------------------------------------------------------------
cat >"$D/sec.test.zone" <<EOF
\$ORIGIN sec.test.
\$TTL 1
@ IN SOA ns.sec.test. hostmaster.sec.test. 1 3600 600 86400 1
@ IN NS ns.sec.test.
ns IN A $NS
www IN A 198.51.100.11
www IN AAAA 2001:db8:51::11
_sipfederationtls._tcp IN SRV 0 0 5061 sip.sec.test.
sip IN A 198.51.100.15
EOF
cat >"$D/plain.test.zone" <<EOF
\$ORIGIN plain.test.
\$TTL 1
@ IN SOA ns.plain.test. hostmaster.plain.test. 1 3600 600 86400 1
@ IN NS ns.plain.test.
ns IN A $NS
www IN A 198.51.100.13
insecure IN A 198.51.100.14
EOF
KEY=$(cd "$D" && ldns-keygen -a ECDSAP256SHA256 -k sec.test) &&
(cd "$D" && ldns-signzone -f sec.test.signed sec.test.zone "$KEY") &&
cp "$D/$KEY.ds" "$D/anchor.ds" || { fail "dnssec lab: sign sec.test"; exit 1; }
# The same zone with www's A record changed after signing: its RRSIG no
# longer matches (a tampered or broken zone).
sed 's/^\(www\.sec\.test\.[[:space:]].*[[:space:]]A[[:space:]]*\)198\.51\.100\.11$/\1198.51.100.12/' \
	"$D/sec.test.signed" >"$D/sec.test.broken"
if cmp -s "$D/sec.test.signed" "$D/sec.test.broken"; then
	fail "dnssec lab: break the signed zone"; exit 1
fi

cat >"$D/nsd.conf" <<EOF
server:
	ip-address: $NS
	port: 53
	zonesdir: "$D"
	pidfile: "$D/nsd.pid"
	logfile: "$D/nsd.log"
	xfrdfile: "$D/xfrd.state"
	zonelistfile: "$D/zone.list"
	xfrdir: "$D"
	database: ""
	username: ""
	chroot: ""
	server-count: 1
	verbosity: 1
remote-control:
	control-enable: no
zone:
	name: sec.test
	zonefile: sec.test.served
zone:
	name: plain.test
	zonefile: plain.test.zone
EOF
NSDPID=
# serve ZONEFILE: (re)start nsd with sec.test from ZONEFILE
serve() {
	if [ -n "$NSDPID" ]; then
		kill "$NSDPID"
		wait "$NSDPID" 2>/dev/null
	fi
	cp "$D/$1" "$D/sec.test.served"
	ip netns exec "$LAB-dns" "$NSD" -d -c "$D/nsd.conf" >>"$D/nsd.out" 2>&1 &
	NSDPID=$!
	LAB_PIDS="$LAB_PIDS $NSDPID"
	for _n in $(seq 100); do
		lab_exec edge "$PY" - "$NS" www.plain.test <<'EOF' 2>/dev/null && return 0
import socket, struct, sys
q = struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[2].split(".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
s.sendto(q, (sys.argv[1], 53))
r = s.recv(512)
sys.exit(0 if r[3] & 15 == 0 and struct.unpack(">H", r[6:8])[0] > 0 else 1)
EOF
		sleep 0.05
	done
	return 1
}
serve sec.test.signed || { fail "dnssec lab: nsd answers in the lab"
	sed 's/^/    /' "$D/nsd.out" "$D/nsd.log" >&2; exit 1; }

cat >"$POLF" <<EOF
version: 1
partners:
  signed:
    services: [sip-federation]
    direction: inbound
    hosts: [www.sec.test]
    dnssec: require
  plain:
    services: [sip-federation]
    direction: inbound
    hosts: [www.plain.test]
  unsigned:
    services: [sip-federation]
    direction: inbound
    hosts: [insecure.plain.test]
    dnssec: require
  hosted:
    services: [sip-federation]
    direction: inbound
    domains: [sec.test]
    dnssec: require
guards: {stale_after: 1h}
resolve: {ttl_min: 1s, ttl_max: 2s, timeout: 1s, trust_anchor: $D/anchor.ds}
EOF

fw() { lab_fw edge "$@" -f "$POLF" --state-dir "$ST"; }
in4_ok() { reach "$1" "$2" tcp $E4 5061; }
in4_no() { blocked "$1" "$2" tcp $E4 5061; }
in6_ok() { reach "$1" "$2" tcp $E6 5061; }
prom() {
	lab_exec edge "$FEDWALL" status --format prometheus -f "$POLF" --state-dir "$ST" \
		>"$LAB_DIR/samples.raw"
}
# metric NAME LABELS VALUE TEST: the sample NAME{LABELS} (or NAME) is VALUE
metric() {
	_s=$1${2:+\{$2\}}
	if grep -qxF "$_s $3" "$LAB_DIR/samples.raw"; then pass "$4"; else
		fail "$4"; echo "    wanted: $_s $3" >&2
		grep "^$1" "$LAB_DIR/samples.raw" | sed 's/^/    /' >&2; fi
}
SIGNED='partner="signed",kind="host",source="www.sec.test",family="ipv4"'

lab_serve edge tcp 5061 || { fail "dnssec lab: probe server"; exit 1; }

fw check
expect_rc 0 "check: the policy and its trust anchor are fine"

# ---- a validated answer -----------------------------------------------------
fw refresh
has OUT "^fedwall: partner signed: \+2 -0 addresses \(hosts www.sec.test\)$" \
	"validated: the signed partner admitted on its A and AAAA records"
in4_ok "validated: alpha over IPv4" alpha
in6_ok "validated: alpha over IPv6" alpha
in4_ok "no dnssec, unsigned zone: the plain partner keeps working (charlie)" charlie
in4_no "requires dnssec, unsigned zone: delta refused" delta
has ERR "partner 'unsigned': host 'insecure.plain.test': insecure.plain.test A: insecure \(insecure.plain.test A: DNSSEC: answer not validated \(insecure\)\)" \
	"requires dnssec, unsigned zone: refused as insecure, said so"
expect_rc 1 "requires dnssec, unsigned zone: refresh exits 1 (a source failed)"
in4_ok "validated SRV record and target: echo admitted" echo
in4_no "a stranger dropped" stranger

lab_exec edge "$FEDWALL" status -f "$POLF" --state-dir "$ST" >"$LAB_DIR/status.txt" 2>&1
ok "status: the signed partner's A source validated by DNSSEC" grep -q \
	"^dnssec: partner signed, host www.sec.test (A): 1 address validated by DNSSEC" \
	"$LAB_DIR/status.txt"
ok "status: the SRV domain's targets validated by DNSSEC" grep -q \
	"^dnssec: partner hosted, domain _sipfederationtls._tcp.sec.test (A): 1 address validated by DNSSEC" \
	"$LAB_DIR/status.txt"
ok "status: the unsigned partner's source not validated" grep -q \
	"^dnssec: partner unsigned, host insecure.plain.test (A): not validated by DNSSEC" \
	"$LAB_DIR/status.txt"
lab_exec edge "$FEDWALL" status --json -f "$POLF" --state-dir "$ST" >"$LAB_DIR/status.json"
ok "status --json: validated sources say dnssec true, the others false" $PY -c '
import json, sys
j = json.load(open(sys.argv[1]))
d = {(s["source"], s["family"]): s for s in j["sources"]}
assert d[("www.sec.test", "ipv4")]["dnssec"] is True, d
assert d[("www.sec.test", "ipv6")]["dnssec"] is True, d
assert d[("www.plain.test", "ipv4")]["dnssec"] is False, d
assert d[("insecure.plain.test", "ipv4")]["dnssec"] is False, d' "$LAB_DIR/status.json"
lab_exec edge "$FEDWALL" explain -f "$POLF" --state-dir "$ST" 198.51.100.11 tcp/5061 \
	>"$LAB_DIR/explain.txt" 2>&1
ok "explain: alpha admitted by www.sec.test, validated by DNSSEC" grep -q \
	"host www.sec.test (A records): 198.51.100.11 (.*, validated by DNSSEC;" \
	"$LAB_DIR/explain.txt"
lab_exec edge "$FEDWALL" explain -f "$POLF" --state-dir "$ST" 198.51.100.13 tcp/5061 \
	>"$LAB_DIR/explain.txt" 2>&1
ok "explain: charlie admitted by www.plain.test, not validated by DNSSEC" grep -q \
	"host www.plain.test (A records): 198.51.100.13 (.*, not validated by DNSSEC;" \
	"$LAB_DIR/explain.txt"
lab_exec edge "$FEDWALL" flush -f "$POLF" --state-dir "$ST" >/dev/null 2>&1
lab_exec edge "$FEDWALL" plan -f "$POLF" --state-dir "$ST" >"$LAB_DIR/plan.txt" 2>&1
ok "plan: the signed partner's addresses validated by DNSSEC" grep -q \
	"^    + 198.51.100.11 .*validated by DNSSEC: www.sec.test" "$LAB_DIR/plan.txt"
if grep -q "198.51.100.13 .*validated by DNSSEC" "$LAB_DIR/plan.txt"; then
	fail "plan: the plain partner's address not said validated"
	sed 's/^/    /' "$LAB_DIR/plan.txt" >&2
else pass "plan: the plain partner's address not said validated"; fi
fw refresh
in4_ok "refreshed again: alpha admitted" alpha
prom
metric fedwall_source_dnssec_validated "$SIGNED" 1 "metrics: the signed A source validated"
metric fedwall_source_dnssec_validated \
	'partner="plain",kind="host",source="www.plain.test",family="ipv4"' 0 \
	"metrics: the plain source not validated"
metric fedwall_source_dnssec_validated \
	'partner="unsigned",kind="host",source="insecure.plain.test",family="ipv4"' 0 \
	"metrics: the unsigned partner's source not validated"
T_SIGNED=$("$TOP/tools/state-text.py" "$ST/state" | awk '
	$1 == "source" { name = $6; when = $3 }
	$1 == "family" && $2 == 4 && name == "www.sec.test" { print when }')

# ---- the zone broken: bogus -------------------------------------------------
serve sec.test.broken || { fail "dnssec lab: nsd serves the broken zone"; exit 1; }

fw refresh
expect_rc 1 "bogus: refresh exits 1 (a source failed)"
has ERR "partner 'signed': host 'www.sec.test': www.sec.test A: bogus \(www.sec.test A: DNSSEC: bogus: .+\); keeping its 1 last known good address" \
	"bogus: the A source failed naming DNSSEC and the reason, its last known good kept"
in4_ok "bogus: alpha still admitted (last known good)" alpha
in6_ok "bogus: alpha over IPv6 still admitted (its AAAA was validated)" alpha
in4_no "bogus: the changed address (bravo) is not admitted" bravo
in4_ok "bogus: the plain partner still works (charlie)" charlie
in4_ok "bogus www only: the SRV partner, still valid, admitted (echo)" echo
prom
metric fedwall_last_refresh_success "" 0 "metrics: the last refresh failed a source"
metric fedwall_source_last_confirmed_timestamp_seconds "$SIGNED" "$T_SIGNED" \
	"metrics: the bogus source's last confirmation is the validated one"
metric fedwall_source_addresses "$SIGNED" 1 "metrics: it holds its last known good address"
metric fedwall_source_dnssec_validated "$SIGNED" 1 \
	"metrics: its last known good is the validated answer"

# ---- signed again -----------------------------------------------------------
serve sec.test.signed || { fail "dnssec lab: nsd serves the signed zone again"; exit 1; }

fw refresh
if printf '%s\n' "$ERR" | grep -q "partner 'signed'"; then
	fail "signed again: no warning for the signed partner"; show
else pass "signed again: no warning for the signed partner"; fi
in4_ok "signed again: alpha admitted" alpha
in4_no "signed again: bravo still dropped" bravo

# ---- the default trust anchor missing -----------------------------------------
# Debian's root anchor hidden (a tmpfs over /usr/share/dns in a mount
# namespace of its own): check warns; a refresh (no table, no state)
# fails the names of the partners that require DNSSEC, saying what to
# install, and no other's.
sed '/^resolve:/d' "$POLF" >"$LAB_DIR/noanchor.yaml"
noanchor() {
	lab_exec edge unshare -m sh -c '[ ! -d /usr/share/dns ] ||
		mount -t tmpfs none /usr/share/dns || exit 99; exec "$@"' sh \
		"$FEDWALL" "$@" -f "$LAB_DIR/noanchor.yaml" --state-dir "$LAB_DIR/st2" \
		>"$LAB_DIR/out" 2>"$LAB_DIR/err"
	RC=$?
	OUT=$(cat "$LAB_DIR/out")
	ERR=$(cat "$LAB_DIR/err")
}
mkdir -p "$LAB_DIR/st2"
lab_exec edge "$FEDWALL" flush -f "$POLF" --state-dir "$ST" >/dev/null 2>&1
noanchor check
expect_rc 0 "no default anchor: check passes"
has ERR "noanchor.yaml:7:13: warning: partner 'signed' requires DNSSEC, but the default trust anchor '/usr/share/dns/root.key' cannot be read \(No such file or directory\): its names will fail to refresh \(install dns-root-data, or set resolve.trust_anchor\)" \
	"no default anchor: check warns at the partner's dnssec key"
noanchor refresh
expect_rc 1 "no default anchor: refresh exits 1"
has ERR "partner 'signed': host 'www.sec.test': www.sec.test A: error \(DNSSEC: trust anchor '/usr/share/dns/root.key': No such file or directory \(install dns-root-data, or set resolve.trust_anchor\)\); no last known good addresses" \
	"no default anchor: the signed partner's names fail, saying why"
has OUT "^fedwall: partner plain: \+1 -0 address" \
	"no default anchor: the plain partner is admitted all the same"
in4_ok "no default anchor: charlie (plain) admitted" charlie
in4_no "no default anchor: alpha (signed, not validated) dropped" alpha

exit $SUITE_FAILED
