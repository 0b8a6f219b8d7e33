#!/bin/sh
# tests/lab/https.sh - list URLs fetched over HTTPS: a real nginx (Debian's
# nginx-light) in a lab namespace on 198.51.100.80, with a test CA and a
# server certificate made here by openssl, and a small TLS server of our
# own (python3) for the answers nginx will not give (a body cut short of
# its Content-Length, a stall mid-body).  fedwall refresh runs in the
# edge, fetches through the lab's router, and real packets say who is
# admitted: a list followed as it changes; an unchanged one costs a 304
# (nginx's access log) and no commit; every failure (server down, another
# CA's certificate, a body over max_size, a stall, a truncated body,
# garbage) keeps the last known good, changes nothing live and says why;
# plain http:// only with the entry's opt-in.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_https_require "https lab" || exit 0
lab_init
# the lab's server is reached directly, whatever proxy the host knows
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

W4=198.51.100.80
E4=203.0.113.10
ST=$LAB_DIR/state
POLF=$LAB_DIR/policy.yaml
D=$LAB_DIR/web
mkdir -p "$D/www" "$D/tmp"
# publish FILE LINE...: the list FILE under www/ now holds LINEs, with an
# mtime a second after the last one's: nginx's validators (ETag: mtime and
# size; Last-Modified: seconds) then tell every version from the one
# before, which two same-size writes within one second would not.
PUB_T=$(($(date +%s) - 3600))
publish() {
	_f=$D/www/$1; shift
	printf '%s\n' "$@" >"$_f" && PUB_T=$((PUB_T + 1)) && touch -d "@$PUB_T" "$_f"
}

lab_topology && lab_host web $W4/24 2001:db8:51::80/64 &&
	lab_host delta 198.51.100.14/24 2001:db8:51::14/64 &&
	lab_host echo 198.51.100.15/24 2001:db8:51::15/64 || {
	fail "https lab: build the namespace topology"; exit 1; }

# ---- certificates: a test CA, the server's, and another CA's ------------
if lab_ca "$D" test $W4 && lab_ca "$D" other $W4; then pass "https lab: test CA and server certificates made"
else fail "https lab: openssl makes the certificates"; exit 1; fi
use_cert() { cp "$D/$1-srv.pem" "$D/srv.pem" && cp "$D/$1-srv.key" "$D/srv.key"; }
# serve_cert NAME: nginx reloaded with NAME's certificate, serving it, and
# its old worker gone (until then the old one may still accept a
# connection, with the old certificate)
serve_cert() {
	use_cert "$1" && kill -HUP "$(cat "$D/nginx.pid")" || return 1
	for _n in $(seq 200); do
		if [ "$(pgrep -c -P "$(cat "$D/nginx.pid")")" = 1 ] &&
		   lab_exec edge openssl s_client -connect $W4:443 </dev/null 2>/dev/null |
			grep -q "^issuer=CN = fedwall $1 test CA"; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}
use_cert test

# ---- nginx: https on 443 (the lists), plain http on 80 ------------------
lab_nginx_conf "$D" $W4 text/plain http
nginx_start() { lab_nginx_start web "$D" && NGINXPID=$LAB_NGINX; }
# by its pid file: $NGINXPID is the subshell that ran it
nginx_stop() {
	kill "$(cat "$D/nginx.pid")" 2>/dev/null; wait "$NGINXPID" 2>/dev/null
	rm -f "$D/nginx.pid"
}

# ---- our own TLS server on 8443: MODE file says how it answers ----------
# good: the list; trunc: a Content-Length 100 bytes more than it sends;
# stall: half the body, then silence
cat >"$D/odd.py" <<'EOF'
import socket, ssl, sys, time
d, addr = sys.argv[1], sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/srv.pem", d + "/srv.key")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, 8443))
s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        t = ctx.wrap_socket(c, server_side=True)
        req = b""
        while b"\r\n\r\n" not in req:
            b = t.recv(4096)
            if not b:
                break
            req += b
        mode = open(d + "/mode").read().strip()
        body = open(d + "/odd.txt", "rb").read()
        n = len(body) + (100 if mode == "trunc" else 0)
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" % n)
        if mode == "stall":
            t.sendall(body[:len(body) // 2])
            time.sleep(30)
        else:
            t.sendall(body)
        t.close()
    except Exception:
        pass
    finally:
        c.close()
EOF
echo good >"$D/mode"
echo 198.51.100.13 >"$D/odd.txt"
lab_exec web "$PY" "$D/odd.py" "$D" $W4 >"$D/odd.out" 2>&1 &
LAB_PIDS="$LAB_PIDS $!"

cat >"$POLF" <<EOF
version: 1
partners:
  followed:
    services: [sip-federation]
    direction: inbound
    lists: [https://$W4/followed.txt]
  odd:
    services: [sip-federation]
    direction: inbound
    lists: [https://$W4:8443/odd.txt]
  plain:
    services: [sip-federation]
    direction: inbound
    lists: [{url: "http://$W4/plain.txt", insecure_http: true}]
  teams:
    services: [av-edge]
    direction: inbound
    feeds:
      - {url: "https://$W4/m365/endpoints/worldwide", format: m365, service_area: Skype}
fetch: {ca_file: $D/test-ca.pem, timeout: 2s, max_size: 1KiB}
EOF

fw() { lab_fw edge "$@" -f "$POLF" --state-dir "$ST"; }
in_ok() { reach "$1" "$2" tcp $E4 5061; }
in_no() { blocked "$1" "$2" tcp $E4 5061; }
# live NAME: the edge's table is what it was at `snap`
snap() { lab_table edge >"$LAB_DIR/table.before"; }
live_same() {
	lab_table edge >"$LAB_DIR/table.after"
	if cmp -s "$LAB_DIR/table.before" "$LAB_DIR/table.after"; then pass "$1"
	else fail "$1"; diff "$LAB_DIR/table.before" "$LAB_DIR/table.after" >&2; fi
}
n304() { grep -c '^304 /followed.txt$' "$D/access.log" 2>/dev/null || true; }

publish followed.txt 198.51.100.11
publish plain.txt 192.0.2.22
# m365 VERSION A11 A12: the Microsoft 365 web service's answers, in its
# own structure: set 11 (Skype, udp/3478-3481) on A11, set 12 (Skype,
# tcp/80,443) on A12, set 1 (Exchange, tcp/80,443) on stranger's
m365() {
	mkdir -p "$D/www/m365/endpoints" "$D/www/m365/version"
	printf '{"instance": "Worldwide", "latest": "%s"}\n' "$1" >"$D/www/m365/version/worldwide"
	cat >"$D/www/m365/endpoints/worldwide" <<EOJ
[{"id": 1, "serviceArea": "Exchange", "category": "Optimize", "required": true,
  "tcpPorts": "80,443", "ips": ["198.51.100.99/32"]},
 {"id": 11, "serviceArea": "Skype", "category": "Optimize", "required": true,
  "udpPorts": "3478,3479,3480,3481", "ips": ["$2/32"]},
 {"id": 12, "serviceArea": "Skype", "category": "Allow", "required": true,
  "tcpPorts": "80,443", "ips": ["$3/32"]}]
EOJ
}
m365 2026120700 198.51.100.14 198.51.100.15
lab_serve edge tcp 5061 && lab_serve edge tcp 443 && lab_serve edge udp 3478 ||
	{ fail "https lab: probe servers"; exit 1; }
nginx_start || { fail "https lab: nginx answers on $W4:443"; cat "$D/error.log" >&2; exit 1; }
for _n in $(seq 100); do grep -q ready "$D/odd.out" && break; sleep 0.05; done
pass "https lab: nginx and the odd server run on $W4"

# ---- offline first: nothing fetched, nothing known -----------------------
fw check
expect_rc 0 "check: list URLs are not fetched offline (no state yet: a note)"
has ERR "no addresses known yet for list 'https://$W4/followed.txt' \(run fedwall refresh\)" "check: says the URL is not fetched yet"
if [ ! -s "$D/access.log" ]; then pass "check: no request reached the server"
else fail "check: no request reached the server"; cat "$D/access.log" >&2; fi

# ---- first refresh: every list fetched ------------------------------------
fw refresh
expect_rc 0 "refresh: first fetch of every list URL exits 0"
has OUT "^fedwall: partner followed: \+1 -0 address \(list URLs https://$W4/followed.txt\)$" \
	"refresh: the partner's line names the URL"
in_ok "refresh: the fetched list admits alpha" alpha
in_ok "refresh: the odd server's list admits charlie" charlie
in_ok "refresh: the plain http list (insecure_http) admits mgmt" mgmt
in_no "refresh: bravo is in no list yet" bravo
in_no "refresh: stranger dropped" stranger
fw plan
expect_rc 0 "plan: offline, from the state: nothing pending"
if [ -z "$(grep -v '^200 ' "$D/access.log")" ]; then
	pass "refresh: nginx answered 200 to the first fetches"
else fail "refresh: nginx answered 200 to the first fetches"; cat "$D/access.log" >&2; fi

# ---- the m365 feed: each set's addresses on its own ports -----------------
reach "feed: set 11's address (delta) admitted on udp/3478" delta udp $E4 3478
blocked "feed: set 11's address (delta) not on tcp/443" delta tcp $E4 443
reach "feed: set 12's address (echo) admitted on tcp/443" echo tcp $E4 443
blocked "feed: set 12's address (echo) not on udp/3478" echo udp $E4 3478
blocked "feed: the Exchange set's address (stranger) nowhere (filtered out)" stranger tcp $E4 443
nv() { grep -c "^200 /m365/$1/worldwide$" "$D/access.log" 2>/dev/null || true; }

# ---- unchanged: a 304, nothing parsed, nothing committed ------------------
snap
fw refresh -v
expect_rc 0 "unchanged: refresh exits 0"
if [ "$(n304)" -eq 1 ]; then pass "unchanged: the conditional request got a 304 (access log)"
else fail "unchanged: the conditional request got a 304 (access log)"; cat "$D/access.log" >&2; fi
if ! printf '%s\n' "$OUT" | grep -q partner; then pass "unchanged: no partner changed (no commit)"
else fail "unchanged: no partner changed (no commit)"; show; fi
live_same "unchanged: the live table is as it was"
if [ "$(nv version)" -eq 2 ] && [ "$(nv endpoints)" -eq 1 ]; then
	pass "feed: the same version: its endpoints not fetched again (access log)"
else fail "feed: the same version: its endpoints not fetched again"; cat "$D/access.log" >&2; fi
fw status
has OUT "https://$W4/followed.txt" "status: names the list URL"
has OUT "^list URL: partner followed, https://$W4/followed.txt: 1 address; fetched .*, confirmed .*; ETag \"" \
	"status: the URL, when fetched and confirmed, the validator in use"
has OUT "^feed: partner teams, https://$W4/m365/endpoints/worldwide \(m365\): 2 addresses; .*; version 2026120700$" \
	"status: the feed, its format and version"

# ---- the list changes: followed -------------------------------------------
publish followed.txt 198.51.100.12
fw refresh
expect_rc 0 "change: refresh exits 0"
has OUT "^fedwall: partner followed: \+1 -1 addresses \(list URLs https://$W4/followed.txt\)$" \
	"change: one line naming the URL"
in_ok "change: the new address (bravo) admitted" bravo
in_no "change: the removed address (alpha) refused" alpha

m365 2026120800 198.51.100.15 198.51.100.14
fw refresh
has OUT "^fedwall: partner teams: " "feed: a new version is fetched and applied"
if [ "$(nv endpoints)" -eq 2 ]; then pass "feed: a new version: its endpoints fetched again"
else fail "feed: a new version: its endpoints fetched again"; cat "$D/access.log" >&2; fi
reach "feed: the sets swapped: echo now on udp/3478" echo udp $E4 3478
blocked "feed: the sets swapped: echo no longer on tcp/443" echo tcp $E4 443
reach "feed: the sets swapped: delta now on tcp/443" delta tcp $E4 443
"$TOP/tools/state-text.py" "$ST/state" >"$LAB_DIR/state.txt"
if grep -q "^source url [0-9]* 0 https https://$W4/followed.txt$" "$LAB_DIR/state.txt" &&
	grep -q '^etag "' "$LAB_DIR/state.txt" && grep -q '^version 2026120800$' "$LAB_DIR/state.txt" &&
	grep -q '^ports [12] udp/3478-3481$' "$LAB_DIR/state.txt" &&
	grep -Eq '^ids (11;12|12;11)$' "$LAB_DIR/state.txt" &&
	grep -q '^addr 198.51.100.15 ports [12]$' "$LAB_DIR/state.txt"; then
	pass "state: the URL's validator, the feed's version and its ports per address"
else fail "state: the URL's validator, the feed's version and its ports per address"
	cat "$LAB_DIR/state.txt" >&2; fi

# ---- the daemon follows a list URL on its own interval ---------------------
sed "s|lists: \[https://$W4/followed.txt\]|lists: [{url: \"https://$W4/followed.txt\", interval: 1s}]|" \
	"$POLF" >"$LAB_DIR/daemon.yaml"
ip netns exec "$LAB-edge" "$FEDWALL" daemon -d -f "$LAB_DIR/daemon.yaml" --state-dir "$ST" \
	2>"$LAB_DIR/daemon.log" &
DPID=$!
LAB_PIDS="$LAB_PIDS $DPID"
# wait_reach SECONDS HOST: HOST gets through within SECONDS
wait_reach() { lab_wait_reach "$1" "$2" $E4 5061; }
publish followed.txt 198.51.100.11
if wait_reach 6 alpha; then pass "daemon: follows the list URL as it changes (alpha admitted within 6 s)"
else fail "daemon: follows the list URL as it changes (alpha admitted within 6 s)"
	sed 's/^/    /' "$LAB_DIR/daemon.log" >&2; fi
in_no "daemon: the address the list dropped (bravo) refused" bravo
kill "$DPID"
if wait "$DPID"; then pass "daemon: SIGTERM exits 0"
else fail "daemon: SIGTERM exits 0"; sed 's/^/    /' "$LAB_DIR/daemon.log" >&2; fi
publish followed.txt 198.51.100.12
fw refresh
in_ok "daemon: bravo admitted again by a refresh after it" bravo

# ---- what came from where: explain, metrics ------------------------------
lab_fw edge explain -f "$POLF" --state-dir "$ST" 198.51.100.12
has OUT "list URL https://$W4/followed.txt: 198.51.100.12 \(last known good; fetched [0-9T:-]+Z, last confirmed [0-9T:-]+Z, [0-9]+ s ago, ETag \"" \
	"explain: names the URL, when fetched and confirmed, its ETag"
lab_fw edge explain -f "$POLF" --state-dir "$ST" 198.51.100.15
has OUT "feed https://$W4/m365/endpoints/worldwide: 198.51.100.15 \(.*version 2026120800; on udp/3478-3481 \\(feed entry 11\\) only" \
	"explain: names the feed, its version and the ports it gives the address"
fw status --format prometheus
has OUT "^fedwall_source_last_fetched_timestamp_seconds\{partner=\"followed\",kind=\"url\",source=\"https://$W4/followed.txt\"\} [1-9]" \
	"metrics: when the list URL was last fetched"
has OUT "^fedwall_source_validator_info\{partner=\"teams\",kind=\"feed\",.*version=\"2026120800\"\} 1" \
	"metrics: the feed's version"

# ---- failures: each keeps the last known good and says why ----------------
# fails NAME PATTERN: the refresh failed with PATTERN in its messages,
# nothing live changed, bravo still admitted
fails() {
	expect_rc 1 "$1: refresh exits 1 (a failed source)"
	has ERR "$2" "$1: says why"
	has ERR "keeping its 1 last known good address" "$1: keeps the last known good"
	live_same "$1: nothing live changed"
}
snap
publish followed.txt 'this is not a list' 198.51.100.14
fw refresh
fails "garbage" "https://$W4/followed.txt:1:1: error: 'this is not a list'"
publish followed.txt "$(head -c 4096 /dev/zero | tr '\0' '#')"
fw refresh
fails "over max_size" "larger than max_size \(1024 bytes\)"
publish followed.txt 198.51.100.99
serve_cert other || fail "another CA: nginx serves the other CA's certificate"
fw refresh
fails "another CA" "followed.txt': SSL certificate problem: unable to get local issuer certificate"
serve_cert test || fail "another CA: nginx serves the test CA's certificate again"
nginx_stop
fw refresh
fails "server down" "followed.txt': Failed to connect to $W4 port 443.*Couldn't connect"
in_ok "server down: bravo still admitted (last known good)" bravo
in_no "server down: the new list's address (stranger's) was never fetched" stranger

echo trunc >"$D/mode"
echo 198.51.100.99 >"$D/odd.txt"
fw refresh
has ERR "odd.txt': the body was cut short" "truncated: says the body was cut short"
has ERR "partner 'odd': list 'https://$W4:8443/odd.txt': .*keeping its 1 last known good" \
	"truncated: keeps the last known good"
in_no "truncated: the half-read list's address (stranger) not admitted" stranger
in_ok "truncated: charlie still admitted" charlie
echo stall >"$D/mode"
fw refresh
has ERR "odd.txt': timed out" "stall mid-body: says it timed out"
in_no "stall mid-body: stranger not admitted" stranger
in_ok "stall mid-body: charlie still admitted" charlie

# ---- plan, offline: where each address it would add comes from ------------
lab_fw edge flush -f "$POLF"
fw plan
expect_rc 2 "plan: with the table gone, everything to add"
has OUT "198.51.100.12 .*from https://$W4/followed.txt \(fetched [0-9-]+ [0-9:]+ UTC, ETag \"" \
	"plan: the URL an address comes from, when fetched, its validator"
has OUT "198.51.100.15 .*from https://$W4/m365/endpoints/worldwide \(fetched [0-9-]+ [0-9:]+ UTC, version 2026120800, entry 11\)" \
	"plan: the feed, its version and the feed entry an address comes from"

# ---- plain http:// needs the entry's opt-in --------------------------------
sed "s|{url: \"http://$W4/plain.txt\", insecure_http: true}|http://$W4/plain.txt|" \
	"$POLF" >"$LAB_DIR/nohttp.yaml"
lab_fw edge check -f "$LAB_DIR/nohttp.yaml" --state-dir "$ST"
expect_rc 1 "http://: refused without insecure_http"
has ERR "nohttp.yaml:14:13: error: list URL 'http://$W4/plain.txt' is plain http: anyone on the path" \
	"http://: the error names file:line:col, the URL and why"

exit $SUITE_FAILED
