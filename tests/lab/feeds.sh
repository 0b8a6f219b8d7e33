#!/bin/sh
# tests/lab/feeds.sh - provider feeds in their providers' real formats,
# served over HTTPS by nginx (a test CA made here) in the lab:
#
# - Microsoft 365: the real endpoints JSON (../shared/data/feeds/), every
#   set kept, documentation addresses swapped into the Skype sets 11
#   (udp 3478-3481), 12 (tcp 80, 443), 13 and 22 (tcp 443) and into the
#   Exchange set 1; a partner with services [av-edge] and the feed
#   filtered to service_area Skype.  Real packets: set 11's address on
#   udp/3478 and not on tcp/443, sets 12/13/22's on tcp/443 and not on
#   udp/3478 or tcp/80, the Exchange set's nowhere.  An unchanged
#   `latest` at /version/worldwide fetches no endpoints (nginx's log).
# - AWS: the real ip-ranges.json filtered to CHIME_VOICECONNECTOR loads
#   exactly that service's prefixes, counted from the JSON by python3;
#   read from `plan --resolve --json` (real AWS addresses never become
#   traffic, nor enter a kernel table).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

FEEDS=${FEDWALL_FEEDS:-$TOP/../shared/data/feeds}
lab_https_require "feeds lab" || exit 0
if [ ! -f "$FEEDS/m365-endpoints-worldwide.json" ] || [ ! -f "$FEEDS/aws-ip-ranges.json" ]; then
	skip "feeds lab (the real feeds are not in $FEEDS; set FEDWALL_FEEDS)"
	exit 0
fi
lab_init

W4=198.51.100.80
E4=203.0.113.10
E6=2001:db8:10::10
ST=$LAB_DIR/state
POLF=$LAB_DIR/policy.yaml
D=$LAB_DIR/web
mkdir -p "$D/www/endpoints" "$D/www/version" "$D/tmp"

lab_core && lab_host web $W4/24 2001:db8:51::80/64 &&
	lab_host eleven 198.51.100.17/24 2001:db8:51::17/64 &&
	lab_host twelve 192.0.2.33/24 2001:db8:2::33/64 &&
	lab_host exch 192.0.2.97/24 2001:db8:2::97/64 || {
	fail "feeds lab: build the namespace topology"; exit 1; }

# ---- a test CA and nginx (labrc.sh) ---------------------------------------
lab_ca "$D" test $W4 && cp "$D/test-ca.pem" "$D/ca.pem" &&
	cp "$D/test-srv.pem" "$D/srv.pem" && cp "$D/test-srv.key" "$D/srv.key" ||
	{ fail "feeds lab: openssl makes the certificates"; exit 1; }
lab_nginx_conf "$D" $W4 application/json
lab_nginx_start web "$D" ||
	{ fail "feeds lab: nginx starts"; cat "$D/error.log" >&2; exit 1; }

# ---- the feeds: the real files, documentation addresses swapped in -------
"$PY" - "$FEEDS" "$D/www" <<'EOF' || { fail "feeds lab: python3 rewrites the m365 feed"; exit 1; }
import json, sys
src, www = sys.argv[1], sys.argv[2]
sets = json.load(open(src + "/m365-endpoints-worldwide.json"))
by = {s["id"]: s for s in sets}
assert by[11]["udpPorts"] == "3478,3479,3480,3481" and by[12]["tcpPorts"] == "80,443"
assert by[13]["tcpPorts"] == "443" and by[22]["tcpPorts"] == "443"
assert by[1]["serviceArea"] == "Exchange"
# set 11: its three prefixes become documentation ones (eleven is in the first)
by[11]["ips"] = ["198.51.100.16/28", "198.51.100.32/28", "2001:db8:51::14/126"]
# sets 12, 13, 22 hold the same prefixes: each mapped to one of ours, in
# order (twelve is in the first of each family)
doc4 = iter("192.0.2.32/28 192.0.2.48/28 192.0.2.64/28 192.0.2.80/29 192.0.2.88/29".split())
doc6 = iter("2001:db8:2::30/126 2001:db8:2::38/125 2001:db8:2::40/125 "
            "2001:db8:2::48/125 2001:db8:2::50/125 2001:db8:2::58/125".split())
real = by[12]["ips"]
swap = {p: next(doc6 if ":" in p else doc4) for p in real}
for i in (12, 13, 22):
    assert by[i]["ips"] == real
    by[i]["ips"] = [swap[p] for p in real]
# the Exchange set: exch's addresses first, its own after them (filtered
# out with the rest: never loaded)
by[1]["ips"] = ["192.0.2.96/28", "2001:db8:2::94/126"] + by[1]["ips"]
json.dump(sets, open(www + "/endpoints/worldwide", "w"), indent=1)
EOF
printf '{"instance": "Worldwide", "latest": "2024053100"}\n' >"$D/www/version/worldwide"
cp "$FEEDS/aws-ip-ranges.json" "$D/www/ip-ranges.json"
pass "feeds lab: nginx serves the real feeds (documentation addresses in the Skype and Exchange sets)"

cat >"$POLF" <<EOF
version: 1
partners:
  teams:
    services: [av-edge]
    direction: inbound
    feeds:
      - url: https://$W4/endpoints/worldwide?clientrequestid=b10c5ed1-bad1-445f-b386-b919946339a7
        format: m365
        service_area: [Skype]
fetch: {ca_file: $D/ca.pem, timeout: 5s}
EOF
fw() { lab_fw edge "$@" -f "$POLF" --state-dir "$ST"; }
lab_serve edge tcp 443 && lab_serve edge udp 3478 && lab_serve edge tcp 80 ||
	{ fail "feeds lab: probe servers"; exit 1; }

fw refresh
expect_rc 0 "refresh: the m365 feed fetched and applied (exit 0)"
has OUT "^fedwall: partner teams: " "refresh: says what the feed changed for partner teams"

# ---- set 11: udp/3478 only (av-edge's of 3478-3481) ----------------------
reach "m365: set 11's address admitted on udp/3478" eleven udp $E4 3478
blocked "m365: set 11's address not on tcp/443" eleven tcp $E4 443
blocked "m365: set 11's address not on udp/3479 (not av-edge's)" eleven udp $E4 3479
blocked "m365: set 11's address not on tcp/50000 (av-edge's, not the set's)" eleven tcp $E4 50000
reach "m365: set 11's IPv6 address admitted on udp/3478" eleven udp $E6 3478
# ---- sets 12, 13, 22: tcp/443 only (80 is not av-edge's) ------------------
reach "m365: sets 12/13/22's address admitted on tcp/443" twelve tcp $E4 443
blocked "m365: sets 12/13/22's address not on tcp/80" twelve tcp $E4 80
blocked "m365: sets 12/13/22's address not on udp/3478" twelve udp $E4 3478
reach "m365: sets 12/13/22's IPv6 address admitted on tcp/443" twelve tcp $E6 443
blocked "m365: sets 12/13/22's IPv6 address not on udp/3478" twelve udp $E6 3478
# ---- the Exchange set: filtered out ---------------------------------------
blocked "m365: the Exchange set's address not on tcp/443" exch tcp $E4 443
blocked "m365: the Exchange set's address not on udp/3478" exch udp $E4 3478
blocked "m365: the Exchange set's IPv6 address not on tcp/443" exch tcp $E6 443

# ---- the version check: an unchanged `latest` fetches no endpoints --------
n() { grep -c "^$1 /$2/worldwide" "$D/access.log" 2>/dev/null || true; }
if [ "$(n 200 endpoints)" -eq 1 ] && [ "$(n 200 version)" -eq 1 ]; then
	pass "m365: the first refresh asked the version, then fetched the endpoints"
else fail "m365: the first refresh asked the version, then fetched the endpoints"
	cat "$D/access.log" >&2; fi
fw refresh
expect_rc 0 "m365: refresh with the same version exits 0"
if [ "$(n 200 endpoints)" -eq 1 ] && [ "$(n 200 version)" -eq 2 ]; then
	pass "m365: the same version (asked again): the endpoints not fetched again (access log)"
else fail "m365: the same version (asked again): the endpoints not fetched again"
	cat "$D/access.log" >&2; fi
reach "m365: ... and set 11's address still on udp/3478" eleven udp $E4 3478

# ---- aws: one service, exactly its prefixes --------------------------------
# the service's prefixes, as the table holds them: merged where adjacent
want=$("$PY" -c 'import ipaddress, json, sys
d = json.load(open(sys.argv[1]))
v4 = {ipaddress.ip_network(p["ip_prefix"]) for p in d["prefixes"]
      if p["service"] == "CHIME_VOICECONNECTOR"}
v6 = {ipaddress.ip_network(p["ipv6_prefix"]) for p in d["ipv6_prefixes"]
      if p["service"] == "CHIME_VOICECONNECTOR"}
print(len(list(ipaddress.collapse_addresses(v4))) + len(list(ipaddress.collapse_addresses(v6))))' \
	"$FEEDS/aws-ip-ranges.json")
cat >"$LAB_DIR/aws.yaml" <<EOF
version: 1
partners:
  chime:
    services: [teams-direct-routing]
    direction: inbound
    feeds:
      - url: https://$W4/ip-ranges.json
        format: aws
        service: CHIME_VOICECONNECTOR
fetch: {ca_file: $D/ca.pem, timeout: 5s}
EOF
lab_exec edge "$FEDWALL" plan --resolve --json -f "$LAB_DIR/aws.yaml" \
	--state-dir "$LAB_DIR/aws-state" >"$LAB_DIR/aws.json" 2>"$LAB_DIR/aws.err"
rc=$?
# plan's elements added for chime: one per prefix in its one port class
got=$("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
add = d["partners"]["chime"]["add"]
print(len({e["element"] for e in add if e["set"].startswith(("in4_", "in6_"))}))' \
	"$LAB_DIR/aws.json" 2>/dev/null)
if [ "$rc" -eq 2 ] && [ -n "$want" ] && [ "$want" -gt 0 ] && [ "$got" = "$want" ]; then
	pass "aws: CHIME_VOICECONNECTOR alone: $got prefixes, as many as the JSON has"
else
	fail "aws: CHIME_VOICECONNECTOR alone: plan says ${got:-?} prefixes (exit $rc), the JSON $want"
	sed 's/^/    /' "$LAB_DIR/aws.err" "$LAB_DIR/aws.json" | head -40 >&2
fi
lab_exec edge nft list table inet fedwall >"$LAB_DIR/after-aws.nft" 2>&1
if ! grep -q "99\.77\." "$LAB_DIR/after-aws.nft"; then
	pass "aws: plan put no AWS address into the kernel"
else fail "aws: plan put no AWS address into the kernel"; fi
exit $SUITE_FAILED
