#!/bin/sh
# tests/metrics.sh - `fedwall status --format prometheus`: the metrics file
# for node_exporter's textfile collector, read back by a real Prometheus
# text format parser (prometheus_client's, Debian python3-prometheus-client;
# promtool as well when it is installed), against a live table in a network
# namespace of our own, with a state file holding a fresh and a stale
# source.
. "$(dirname "$0")/lib.sh"

if ! can_kernel; then
	skip "metrics: status --format prometheus (needs root, nft and unshare -n)"
	exit 0
fi
PY=/usr/bin/python3
if ! $PY -c 'import prometheus_client.parser' 2>/dev/null; then
	fail "metrics: no Prometheus text parser (apt-get install python3-prometheus-client)"
	exit 1
fi
if [ -z "${FWT_IN_NETNS:-}" ]; then
	FWT_IN_NETNS=1 exec unshare -n sh "$0" "$@"
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
STATE=$T/state
mkdir -p "$STATE" "$T/lists" "$T/metrics"
fw() { "$FEDWALL" "$@" --state-dir "$STATE"; }
echo 203.0.113.0/28 >"$T/lists/gamma.txt"
cat >"$T/policy.yaml" <<'P'
version: 1
partners:
  alpha:
    services: [sip-federation]
    addresses: [198.51.100.7, 2001:db8:7::/48]
    hosts: [sip.alpha.example]
  beta:
    services: [xmpp-s2s]
    direction: inbound
    domains: [beta.example]
  gamma:
    services: [matrix-federation]
    lists: [lists/gamma.txt]
guards:
  stale_after: 1h
P

# The state file as refresh writes it: alpha's host confirmed a minute
# ago, beta's SRV domain two hours ago (past stale_after).
now=$(date +%s)
$PY - "$STATE/state" "$((now - 60))" "$((now - 7200))" <<'PY'
import sys
path, fresh, stale = sys.argv[1], sys.argv[2], sys.argv[3]
body = ("fedwall-state 1\n"
	f"source host {fresh} 300 dns sip.alpha.example\naddr 198.51.100.20\n"
	f"source domain {stale} 300 dns _xmpp-server._tcp.beta.example\naddr 192.0.2.99\n")
h = 0xcbf29ce484222325
for b in body.encode():
	h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
open(path, "w").write(body + "# sum %016x\n" % h)
PY

# check_parse NAME FILE: the parser accepts FILE; prints "name{labels} value"
# lines sorted into $T/samples.
check_parse() {
	if $PY - "$2" >"$T/samples" 2>"$T/perr" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
out = []
for fam in text_string_to_metric_families(text):
	assert fam.documentation, "no HELP for " + fam.name
	assert fam.type in ("counter", "gauge"), fam.type
	for s in fam.samples:
		labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
		out.append("%s{%s} %s" % (s.name, labels, repr(float(s.value))))
print("\n".join(sorted(out)))
PY
	then
		pass "$1"
	else
		fail "$1"
		sed 's/^/    /' "$T/perr" >&2
	fi
	if command -v promtool >/dev/null 2>&1; then
		ok "$1 (promtool check metrics)" sh -c "promtool check metrics <'$2'"
	fi
}

# has NAME LINE: the parsed samples have LINE.
has() {
	if grep -qxF -- "$2" "$T/samples"; then
		pass "$1"
	else
		fail "$1"
		echo "    wanted: $2" >&2
		sed 's/^/    /' "$T/samples" | head -40 >&2
	fi
}

M=$T/metrics/fedwall.prom
ok "metrics: no table yet: written, exit 0" \
	fw status --format prometheus -f "$T/policy.yaml" -o "$M"
check_parse "metrics: no table: parses" "$M"
has "metrics: no table: fedwall_table_present 0" "fedwall_table_present{} 0.0"

ok "metrics: apply" fw apply -f "$T/policy.yaml" >/dev/null 2>&1
ok "metrics: written with a live table" fw status --format prometheus -f "$T/policy.yaml" -o "$M"
check_parse "metrics: live table: parses" "$M"
has "metrics: table present" "fedwall_table_present{} 1.0"
# (1 or 2: inline, plus the state's address once offline commands use it)
if grep -q '^fedwall_partner_elements{direction="in",family="ipv4",partner="alpha"} [12].0$' \
	"$T/samples"; then
	pass "metrics: alpha elements, ipv4 in"
else
	fail "metrics: alpha elements, ipv4 in"
fi
has "metrics: alpha elements, ipv6 in" \
	'fedwall_partner_elements{direction="in",family="ipv6",partner="alpha"} 1.0'
has "metrics: gamma elements (list)" \
	'fedwall_partner_elements{direction="out",family="ipv4",partner="gamma"} 1.0'
has "metrics: accepted packets counter" \
	'fedwall_partner_accepted_packets_total{direction="in",partner="alpha"} 0.0'
has "metrics: accepted bytes counter" \
	'fedwall_partner_accepted_bytes_total{direction="out",partner="alpha"} 0.0'
for dir in in out; do
	for why in stranger invalid nosyn; do
		has "metrics: dropped packets, $dir, $why" \
			"fedwall_dropped_packets_total{direction=\"$dir\",reason=\"$why\"} 0.0"
		has "metrics: dropped bytes, $dir, $why" \
			"fedwall_dropped_bytes_total{direction=\"$dir\",reason=\"$why\"} 0.0"
	done
done
has "metrics: the table is not dormant" "fedwall_table_dormant{} 0.0"
# A name's A and AAAA records are two sources (family label); the
# format-1 state's one entry per name reads as both, confirmed then.
for fam in ipv4 ipv6; do
	has "metrics: source last confirmed ($fam)" \
		"fedwall_source_last_confirmed_timestamp_seconds{family=\"$fam\",kind=\"host\",partner=\"alpha\",source=\"sip.alpha.example\"} $(($now - 60)).0"
	has "metrics: fresh source is not stale ($fam)" \
		"fedwall_source_stale{family=\"$fam\",kind=\"host\",partner=\"alpha\",source=\"sip.alpha.example\"} 0.0"
	has "metrics: source past stale_after is stale ($fam)" \
		"fedwall_source_stale{family=\"$fam\",kind=\"domain\",partner=\"beta\",source=\"_xmpp-server._tcp.beta.example\"} 1.0"
	has "metrics: stale, not dropped yet: no refresh since ($fam)" \
		"fedwall_source_dropped{family=\"$fam\",kind=\"domain\",partner=\"beta\",source=\"_xmpp-server._tcp.beta.example\"} 0.0"
done
has "metrics: the A records' addresses" \
	'fedwall_source_addresses{family="ipv4",kind="host",partner="alpha",source="sip.alpha.example"} 1.0'
has "metrics: no AAAA record" \
	'fedwall_source_addresses{family="ipv6",kind="host",partner="alpha",source="sip.alpha.example"} 0.0'
has "metrics: stale sources per partner" 'fedwall_partner_stale_sources{partner="beta"} 2.0'
has "metrics: a list has no family label" \
	"fedwall_source_stale{kind=\"list\",partner=\"gamma\",source=\"$T/lists/gamma.txt\"} 0.0"
# apply recorded the list it read (sources' record): confirmed then
if grep -q "^fedwall_source_last_confirmed_timestamp_seconds{kind=\"list\",partner=\"gamma\",source=\"$T/lists/gamma.txt\"} [1-9][0-9]*\.0$" "$T/samples"; then
	pass "metrics: the list apply read: confirmed by the apply"
else fail "metrics: the list apply read: confirmed by the apply"; grep gamma "$T/samples" >&2; fi
has "metrics: ... and not counted stale" 'fedwall_partner_stale_sources{partner="gamma"} 0.0'
has "metrics: no stale source for alpha" 'fedwall_partner_stale_sources{partner="alpha"} 0.0'

# Counters move with real packets: a connection out to alpha is admitted
# (out_alpha), one to a stranger on a federation port dropped (dropped_out).
# A veth pair without a peer address swallows the SYNs.
ip link add fwt0 type veth peer name fwt1 && ip link set fwt0 up && ip link set fwt1 up &&
	ip addr add 192.0.2.1/24 dev fwt0 && ip route add 198.51.100.0/24 dev fwt0
$PY - <<'PY'
import socket
for dst in ("198.51.100.7", "192.0.2.50"):
	s = socket.socket()
	s.settimeout(0.2)
	try:
		s.connect((dst, 5061))
	except OSError:
		pass
	s.close()
PY
fw status --format prometheus -f "$T/policy.yaml" -o "$M"
check_parse "metrics: after traffic: parses" "$M"
if grep -q '^fedwall_partner_accepted_packets_total{direction="out",partner="alpha"} [1-9]' \
	"$T/samples"; then
	pass "metrics: a connection to alpha counts as accepted"
else
	fail "metrics: a connection to alpha counts as accepted"
	grep accepted "$T/samples" | sed 's/^/    /' >&2
fi
if grep -q '^fedwall_dropped_packets_total{direction="out",reason="stranger"} [1-9]' \
	"$T/samples"; then
	pass "metrics: a connection to a stranger counts as dropped"
else
	fail "metrics: a connection to a stranger counts as dropped"
	grep dropped "$T/samples" | sed 's/^/    /' >&2
fi
# A bare ACK from the edge to a stranger's signalling port (no connection
# conntrack knows: new, no SYN) is counted by reason nosyn.
$PY - <<'PY'
import socket, struct
def csum(b):
	if len(b) % 2: b += b"\0"
	s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
	while s >> 16: s = (s & 0xffff) + (s >> 16)
	return ~s & 0xffff
src, dst = socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.50")
tcp = struct.pack("!HHIIBBHHH", 40000, 5061, 1, 1, 5 << 4, 0x10, 8192, 0, 0)
tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for _ in range(3):
	try:
		s.sendto(tcp, ("192.0.2.50", 0))
	except OSError:
		pass
PY
fw status --format prometheus -f "$T/policy.yaml" -o "$M"
check_parse "metrics: after a bare ACK: parses" "$M"
if grep -q '^fedwall_dropped_packets_total{direction="out",reason="nosyn"} [1-9]' \
	"$T/samples"; then
	pass "metrics: a bare ACK to a stranger counts as dropped, reason nosyn"
else
	fail "metrics: a bare ACK to a stranger counts as dropped, reason nosyn"
	grep dropped "$T/samples" | sed 's/^/    /' >&2
fi
# The JSON has every drop counter and the table's flags.
fw status --json -f "$T/policy.yaml" >"$T/status.json"
ok "metrics: status --json: drop counters per reason, dormant false" $PY -c '
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("dropped_in", "dropped_in_invalid", "dropped_in_nosyn",
	  "dropped_out", "dropped_out_invalid", "dropped_out_nosyn"):
	assert isinstance(j[k]["packets"], int), k
assert j["dormant"] is False and j["flags"] == 0
assert j["dropped_out_nosyn"]["packets"] > 0' "$T/status.json"
# A dormant table filters nothing: a gauge, and status exits 1.
nft add table inet fedwall '{ flags dormant; }'
fw status --format prometheus -f "$T/policy.yaml" -o "$M"
check_parse "metrics: dormant table: parses" "$M"
has "metrics: dormant table: fedwall_table_dormant 1" "fedwall_table_dormant{} 1.0"
fw status -f "$T/policy.yaml" >"$T/status.txt" 2>&1
ok "metrics: status exits 1 on a dormant table" test $? -eq 1
ok "metrics: status says it is dormant" grep -q dormant "$T/status.txt"
fw status --json -f "$T/policy.yaml" >"$T/status.json" 2>/dev/null
ok "metrics: status --json: dormant true" $PY -c '
import json, sys
assert json.load(open(sys.argv[1]))["dormant"] is True' "$T/status.json"
ok "metrics: apply wakes the table" fw apply -f "$T/policy.yaml" >/dev/null 2>&1
fw status --format prometheus -f "$T/policy.yaml" -o "$M"
check_parse "metrics: woken table: parses" "$M"
has "metrics: woken table: fedwall_table_dormant 0" "fedwall_table_dormant{} 0.0"

# Atomic: the file is replaced by rename (new inode), no temporary left.
ino1=$(stat -c %i "$M")
fw status --format prometheus -f "$T/policy.yaml" -o "$M"
ino2=$(stat -c %i "$M")
ok "metrics: replaced by rename" test "$ino1" != "$ino2"
ok "metrics: no temporary file left" test "$(ls "$T/metrics")" = fedwall.prom
ok "metrics: world-readable for node_exporter" test "$(stat -c %a "$M")" = 644
# A directory that cannot be written: exit 1, the old file untouched.
ok "metrics: unwritable target fails (exit 1)" \
	sh -c "! '$FEDWALL' status --format prometheus -f '$T/policy.yaml' --state-dir '$STATE' -o /proc/nonexistent/x.prom 2>/dev/null"
ok "metrics: --format json is --json" sh -c \
	"'$FEDWALL' status --format json --table fedwall | $PY -m json.tool >/dev/null"
ok "metrics: bad format is a usage error (2)" \
	sh -c "'$FEDWALL' status --format yaml >/dev/null 2>&1; test \$? -eq 2"

# ---- a stale source stays reported after its addresses were dropped ----
# A refresh (no DNS in this namespace: every name fails) drops the
# addresses of beta's stale SRV domain; the source stays reported stale,
# confirmed when it was, its addresses dropped, until it answers again.
sed 's/^guards:$/resolve: {timeout: 1s}\nguards:/' "$T/policy.yaml" >"$T/policy-r.yaml"
fw refresh -f "$T/policy-r.yaml" >"$T/refresh.out" 2>&1
rc=$?
ok "metrics: refresh without DNS exits 1 (sources failed)" test $rc -eq 1
ok "metrics: refresh drops the stale source's addresses, loudly" grep -q \
	"partner 'beta': domain '_xmpp-server._tcp.beta.example' (A) (.*): last confirmed [0-9]* s ago, more than stale_after (3600 s): dropping its 1 last known good address" \
	"$T/refresh.out"
fw refresh -f "$T/policy-r.yaml" >"$T/refresh.out" 2>&1
ok "metrics: the next refresh still says it is stale, its address dropped" grep -q \
	"partner 'beta': domain '_xmpp-server._tcp.beta.example' (A): .*; still stale: last confirmed [0-9]* s ago, more than stale_after (3600 s), its 1 last known good address dropped" \
	"$T/refresh.out"
fw status --format prometheus -f "$T/policy-r.yaml" -o "$M"
check_parse "metrics: after the drop: parses" "$M"
stale=$((now - 7200))
beta='kind="domain",partner="beta",source="_xmpp-server._tcp.beta.example"'
has "metrics: after the drop: still stale" "fedwall_source_stale{family=\"ipv4\",$beta} 1.0"
has "metrics: after the drop: dropped" "fedwall_source_dropped{family=\"ipv4\",$beta} 1.0"
has "metrics: after the drop: last confirmed kept" \
	"fedwall_source_last_confirmed_timestamp_seconds{family=\"ipv4\",$beta} $stale.0"
has "metrics: after the drop: no address left" "fedwall_source_addresses{family=\"ipv4\",$beta} 0.0"
has "metrics: after the drop: the partner's stale count stays" \
	'fedwall_partner_stale_sources{partner="beta"} 2.0'
has "metrics: alpha's failing names kept (not stale yet)" \
	'fedwall_partner_stale_sources{partner="alpha"} 0.0'
fw status --json -f "$T/policy-r.yaml" >"$T/status.json" 2>/dev/null
ok "metrics: status --json: the dropped source, stale, last confirmed" $PY -c '
import json, sys
j = json.load(open(sys.argv[1]))
src = [s for s in j["sources"] if s["partner"] == "beta" and s["family"] == "ipv4"]
assert len(src) == 1, j["sources"]
s = src[0]
assert s["kind"] == "domain" and s["source"] == "_xmpp-server._tcp.beta.example", s
assert s["stale"] is True and s["dropped"] is True, s
assert s["last_confirmed"] == int(sys.argv[2]), s
assert s["addresses"] == 0 and s["dropped_addresses"] == 1, s
lst = [s for s in j["sources"] if s["kind"] == "list"]
assert len(lst) == 1 and lst[0]["family"] is None and lst[0]["stale"] is False, lst' \
	"$T/status.json" "$stale"
fw status -f "$T/policy-r.yaml" >"$T/status.txt" 2>/dev/null
ok "metrics: status names the stale source and that its address was dropped" grep -q \
	"^stale source: partner beta, domain _xmpp-server._tcp.beta.example (A): last confirmed .* (7[0-9]* s ago, stale_after 3600 s); its 1 address dropped" \
	"$T/status.txt"
ok "metrics: status: no line for a source that is not stale" sh -c \
	"! grep -q 'partner alpha' '$T/status.txt'"

# ---- refresh --metrics, daemon --metrics: the last refresh ----
# Their own table and state; only inline addresses and a list (no DNS in
# this namespace), so that a refresh can succeed.
S2=$T/state2
M2=$T/metrics/refresh.prom
mkdir -p "$S2"
echo 192.0.2.128/28 >"$T/lists/delta.txt"
cat >"$T/policy2.yaml" <<'P'
version: 1
table: fwt_metrics
partners:
  delta:
    services: [sip-federation]
    addresses: [198.51.100.9]
    lists: [lists/delta.txt]
P
# last_refresh NAME SUCCESS: the parsed samples say SUCCESS (1 or 0) and a
# timestamp within the last minute.
last_refresh() {
	has "$1: fedwall_last_refresh_success $2" "fedwall_last_refresh_success{} $2.0"
	t=$(sed -n 's/^fedwall_last_refresh_timestamp_seconds{} \([0-9]*\)\.0$/\1/p' "$T/samples")
	now=$(date +%s)
	if [ -n "$t" ] && [ "$t" -le "$now" ] && [ "$t" -gt "$((now - 60))" ]; then
		pass "$1: last refresh timestamp within the last minute"
	else
		fail "$1: last refresh timestamp within the last minute (got '$t', now $now)"
	fi
}
ok "metrics: status before any refresh: written" \
	"$FEDWALL" status --format prometheus -f "$T/policy2.yaml" --state-dir "$S2" -o "$M2"
check_parse "metrics: before any refresh: parses" "$M2"
ok "metrics: before any refresh: no fedwall_last_refresh_* (absent, not 0)" \
	sh -c "! grep -q '^fedwall_last_refresh' '$T/samples'"

ok "metrics: refresh --metrics (exit 0)" \
	sh -c "'$FEDWALL' refresh -f '$T/policy2.yaml' --state-dir '$S2' --metrics '$M2' >/dev/null"
ok "metrics: refresh --metrics: file written" test -s "$M2"
check_parse "metrics: refresh --metrics: parses" "$M2"
last_refresh "metrics: refresh ok" 1
has "metrics: refresh --metrics: the table refresh made" "fedwall_table_present{} 1.0"
has "metrics: refresh --metrics: its list's elements" \
	'fedwall_partner_elements{direction="in",family="ipv4",partner="delta"} 2.0'
ok "metrics: last-refresh record: one line, ok, 1 partner changed" \
	grep -Eqx '[0-9]+ ok 1' "$S2/last-refresh"
ok "metrics: last-refresh record: mode 0600" test "$(stat -c %a "$S2/last-refresh")" = 600
ok "metrics: refresh --metrics: world-readable for node_exporter" \
	test "$(stat -c %a "$M2")" = 644
ok "metrics: status shows the record too" sh -c \
	"'$FEDWALL' status --format prometheus -f '$T/policy2.yaml' --state-dir '$S2' |
	 grep -qx 'fedwall_last_refresh_success 1'"

# A list fedwall will not read (writable by others): the refresh fails
# (exit 1), the metrics say so.
chmod 666 "$T/lists/delta.txt"
ok "metrics: refresh with an unreadable list fails (exit 1)" sh -c \
	"! '$FEDWALL' refresh -f '$T/policy2.yaml' --state-dir '$S2' --metrics '$M2' 2>/dev/null"
check_parse "metrics: failed refresh: parses" "$M2"
last_refresh "metrics: refresh failed" 0
ok "metrics: last-refresh record: failed, 0 changed" grep -Eqx '[0-9]+ failed 0' "$S2/last-refresh"
chmod 644 "$T/lists/delta.txt"

# A record others may write is not believed: the two metrics are left out.
chmod 666 "$S2/last-refresh"
"$FEDWALL" status --format prometheus -f "$T/policy2.yaml" --state-dir "$S2" -o "$M2" \
	2>"$T/err"
check_parse "metrics: untrusted record: parses" "$M2"
ok "metrics: untrusted record: no fedwall_last_refresh_*" \
	sh -c "! grep -q '^fedwall_last_refresh' '$T/samples'"
ok "metrics: untrusted record: refused with a message" \
	grep -q 'last-refresh: refusing: writable by others' "$T/err"
chmod 600 "$S2/last-refresh"

# No such directory (node_exporter not installed): nothing written, exit 0.
ok "metrics: refresh --metrics into a missing directory: exit 0, quiet" sh -c \
	"'$FEDWALL' refresh -f '$T/policy2.yaml' --state-dir '$S2' \
	 --metrics '$T/nonexistent/x.prom' >'$T/out' 2>&1 && test ! -s '$T/out' &&
	 test ! -e '$T/nonexistent'"

# The daemon writes it after each cycle.
M3=$T/metrics/daemon.prom
"$FEDWALL" daemon -d -f "$T/policy2.yaml" --state-dir "$S2" --metrics "$M3" 2>"$T/daemon.log" &
dpid=$!
i=0
while [ ! -s "$M3" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
ok "metrics: daemon --metrics: file written after its first cycle" test -s "$M3"
check_parse "metrics: daemon --metrics: parses" "$M3"
last_refresh "metrics: daemon cycle ok" 1
exit $SUITE_FAILED
