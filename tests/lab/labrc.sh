# tests/lab/labrc.sh - the namespace lab.  Sourced by lab suites after
# tests/lib.sh (run-tests.sh does not run it as a suite).
#
# lab_topology builds, in namespaces named $LAB-<host> ($LAB = fwt<pid>):
#
#   alpha     198.51.100.11  2001:db8:51::11 ──┐
#   bravo     198.51.100.12  2001:db8:51::12 ──┤
#   charlie   198.51.100.13  2001:db8:51::13 ──┤  br0 in $LAB-sw
#   stranger  198.51.100.99  2001:db8:51::99 ──┤  (one L2 segment)
#   mgmt      192.0.2.22     2001:db8:2::22  ──┤
#                                              └── eth0  fw  dmz0 ── eth0  edge
#   fw eth0: 198.51.100.1 192.0.2.1 2001:db8:51::1 2001:db8:2::1  (router,
#   fw dmz0: 203.0.113.1 2001:db8:10::1             v4+v6 forwarding)
#   edge:    203.0.113.10 2001:db8:10::10 (default route via fw)
#
# Host mode: the ruleset goes into `edge`; gateway mode: into `fw`, which
# forwards to the edge behind it.  Hosts have one interface, eth0; the fw
# has eth0 (outside, the switch) and dmz0 (towards the edge), the names
# examples/gateway.yaml uses.
# Only documentation addresses; nothing leaves the namespaces.  IPv6 DAD
# is off, so addresses work at once.
#
# API (all names are short host names, not namespace names):
#   lab_require             SKIP line and false when the lab cannot run
#   lab_init                $LAB, $LAB_DIR (scratch), cleanup trap
#   lab_topology            the picture above
#   lab_core, lab_host NAME ADDR4/LEN ADDR6/LEN
#                           the same piecewise: switch, fw, edge; one host
#   lab_exec HOST CMD...    run CMD inside HOST
#   lab_serve HOST ARGS...  background `probe serve ARGS`, waits for "ready"
#   lab_apply POLICY [HOST] load POLICY into HOST (default edge): `fedwall
#                           apply` when the binary has it, else `fedwall
#                           generate | nft -f` (one code path for suites)
#   lab_flush POLICY [HOST] remove fedwall's table again (fedwall flush, or
#                           nft delete table)
#   reach NAME HOST PROTO ADDR PORT     PASS when the probe's echo returns
#   blocked NAME HOST PROTO ADDR PORT   PASS when the probe meets silence
#   pings / no_ping NAME HOST ADDR      likewise for ICMP(v6) echo
#   lab_counter HOST NAME [TABLE]       packets of a named counter, or -1
#   lab_hold TAG HOST ADDR PORT SECS    a TCP connection held open; then
#   lab_held NAME TAG, lab_cut NAME TAG PASS when it lasted / was cut

: "${PROBE:=$(dirname "$FEDWALL")/tests/lab/probe}"
LAB_OK_MS=${LAB_OK_MS:-3000}	# a connection that must work: generous
LAB_NO_MS=${LAB_NO_MS:-300}	# one that must be dropped: veth RTT is µs
LAB_PIDS=
LAB_NS=

lab_require() {
	if [ "$(id -u)" -ne 0 ]; then
		skip "lab (needs root)"; return 1
	fi
	for c in nft ip unshare; do
		if ! command -v $c >/dev/null 2>&1; then
			skip "lab (no $c)"; return 1
		fi
	done
	if ! ip netns add "fwt$$-probe" 2>/dev/null; then
		skip "lab (ip netns does not work here)"; return 1
	fi
	ip netns del "fwt$$-probe"
	if [ ! -x "$PROBE" ]; then
		skip "lab (no $PROBE: make tests)"; return 1
	fi
	if [ ! -x "$FEDWALL" ]; then
		skip "lab (no $FEDWALL: make)"; return 1
	fi
	return 0
}

lab_init() {
	LAB=fwt$$
	LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$LAB.XXXXXX")
	mkdir -p "$LAB_DIR/state"
	trap lab_cleanup EXIT
	trap 'lab_cleanup; trap - EXIT; exit 130' INT TERM HUP PIPE
}

# Kills what the lab started, every process still inside a lab namespace,
# and the namespaces.  Safe to call twice.
lab_cleanup() {
	for p in $LAB_PIDS; do kill "$p" 2>/dev/null; done
	for n in $LAB_NS; do
		for p in $(ip netns pids "$LAB-$n" 2>/dev/null); do
			kill "$p" 2>/dev/null
		done
	done
	for p in $LAB_PIDS; do wait "$p" 2>/dev/null; done
	for n in $LAB_NS; do ip netns del "$LAB-$n" 2>/dev/null; done
	LAB_PIDS=
	LAB_NS=
	[ -n "${LAB_DIR:-}" ] && rm -rf "$LAB_DIR"
	LAB_DIR=
}

lab_exec() {
	_h=$1; shift
	ip netns exec "$LAB-$_h" "$@"
}

# lab_ns HOST: a fresh namespace with lo up, DAD off, no router adverts.
lab_ns() {
	ip netns add "$LAB-$1" || return 1
	LAB_NS="$LAB_NS $1"
	ip -n "$LAB-$1" link set lo up
	lab_exec "$1" sh -c '
		for c in all default; do
			echo 0 >/proc/sys/net/ipv6/conf/$c/accept_dad
			echo 0 >/proc/sys/net/ipv6/conf/$c/accept_ra
		done'
}

# lab_addr HOST IFACE ADDR/LEN...: addresses, IPv6 ones usable at once.
lab_addr() {
	_h=$1 _i=$2; shift 2
	for _a in "$@"; do
		case $_a in
		*:*) ip -n "$LAB-$_h" addr add "$_a" dev "$_i" nodad ;;
		*) ip -n "$LAB-$_h" addr add "$_a" dev "$_i" ;;
		esac || return 1
	done
}

# lab_host NAME ADDR4/LEN ADDR6/LEN: a host on the outside segment; its
# default routes go to .1 and ::1 of its prefixes (the fw).
lab_host() {
	lab_ns "$1" || return 1
	ip -n "$LAB-sw" link add "p-$1" type veth peer name eth0 \
		netns "$LAB-$1" || return 1
	ip -n "$LAB-sw" link set "p-$1" master br0 up
	ip -n "$LAB-$1" link set eth0 up
	lab_addr "$1" eth0 "$2" "$3" || return 1
	ip -n "$LAB-$1" route add default via "${2%.*/*}.1"
	ip -n "$LAB-$1" -6 route add default via "${3%::*}::1"
}

# lab_core: switch, fw and edge, without outside hosts (add them with
# lab_host).
lab_core() {
	lab_ns sw && lab_ns fw && lab_ns edge || return 1
	ip -n "$LAB-sw" link add br0 type bridge forward_delay 0 stp_state 0
	ip -n "$LAB-sw" link set br0 up
	# fw: eth0 on the switch, dmz0 straight to the edge
	ip -n "$LAB-sw" link add p-fw type veth peer name eth0 netns "$LAB-fw"
	ip -n "$LAB-sw" link set p-fw master br0 up
	ip -n "$LAB-fw" link add dmz0 type veth peer name eth0 netns "$LAB-edge"
	lab_exec fw sh -c '
		echo 1 >/proc/sys/net/ipv4/ip_forward
		echo 1 >/proc/sys/net/ipv6/conf/all/forwarding'
	for i in eth0 dmz0; do ip -n "$LAB-fw" link set $i up; done
	lab_addr fw eth0 198.51.100.1/24 192.0.2.1/24 \
		2001:db8:51::1/64 2001:db8:2::1/64 || return 1
	lab_addr fw dmz0 203.0.113.1/24 2001:db8:10::1/64 || return 1
	ip -n "$LAB-edge" link set eth0 up
	lab_addr edge eth0 203.0.113.10/24 2001:db8:10::10/64 || return 1
	ip -n "$LAB-edge" route add default via 203.0.113.1
	ip -n "$LAB-edge" -6 route add default via 2001:db8:10::1
}

lab_topology() {
	lab_core &&
	lab_host alpha 198.51.100.11/24 2001:db8:51::11/64 &&
	lab_host bravo 198.51.100.12/24 2001:db8:51::12/64 &&
	lab_host charlie 198.51.100.13/24 2001:db8:51::13/64 &&
	lab_host stranger 198.51.100.99/24 2001:db8:51::99/64 &&
	lab_host mgmt 192.0.2.22/24 2001:db8:2::22/64
}

# lab_hold TAG HOST ADDR PORT SECONDS [OPTS...]: a TCP connection from
# HOST to ADDR:PORT held for SECONDS by `probe hold OPTS` in the
# background (a line every 100 ms, each echoed back), its output in
# $LAB_DIR/hold.TAG.{out,err}; once it printed "connected", its pid is in
# HOLD and HOLD_TAG.
lab_hold() {
	_t=$1 _h=$2 _a=$3 _port=$4 _secs=$5; shift 5
	lab_exec "$_h" "$PROBE" hold "$@" tcp "$_a" "$_port" "$_secs" \
		>"$LAB_DIR/hold.$_t.out" 2>"$LAB_DIR/hold.$_t.err" &
	HOLD=$!
	eval "HOLD_$_t=$!"
	LAB_PIDS="$LAB_PIDS $HOLD"
	for _n in $(seq 100); do
		grep -q connected "$LAB_DIR/hold.$_t.out" && return 0
		sleep 0.02
	done
	return 1
}

# lab_held NAME TAG: the held connection TAG lasted its time.
lab_held() {
	eval "_p=\$HOLD_$2"
	if wait "$_p"; then pass "$1"; else
		fail "$1"; sed 's/^/    /' "$LAB_DIR/hold.$2.err" >&2; fi
}

# lab_cut NAME TAG: the held connection TAG failed (a line was lost).
lab_cut() {
	eval "_p=\$HOLD_$2"
	if wait "$_p"; then
		fail "$1 (the connection kept flowing)"
	elif grep -q "lost" "$LAB_DIR/hold.$2.err"; then
		pass "$1"
	else
		fail "$1"; sed 's/^/    /' "$LAB_DIR/hold.$2.err" >&2
	fi
}

# lab_serve HOST ARGS...: `probe serve ARGS` in HOST until cleanup.
lab_serve() {
	_h=$1; shift
	_out="$LAB_DIR/serve.$_h.$(date +%s%N)"
	lab_exec "$_h" "$PROBE" serve "$@" >"$_out" 2>&1 &
	LAB_PIDS="$LAB_PIDS $!"
	for _n in $(seq 100); do
		grep -q '^ready$' "$_out" 2>/dev/null && return 0
		kill -0 $! 2>/dev/null || break
		sleep 0.02
	done
	echo "lab: probe serve $* in $_h did not start:" >&2
	sed 's/^/    /' "$_out" >&2
	return 1
}

# lab_probe HOST ARGS...: `probe ARGS` in HOST; its stderr in $LAB_WHY.
lab_probe() {
	_h=$1; shift
	LAB_WHY=$(lab_exec "$_h" "$PROBE" "$@" 2>&1 >/dev/null)
}

# reach NAME HOST PROTO ADDR PORT: a connection from HOST gets its echo.
reach() {
	if lab_probe "$2" connect -t "$LAB_OK_MS" "$3" "$4" "$5"; then
		pass "$1"
	else
		fail "$1"
		echo "    $2: $LAB_WHY" >&2
	fi
}

# blocked NAME HOST PROTO ADDR PORT: no answer at all (a silent drop on
# the way, or EPERM from HOST's own output hook; a refusal would mean the
# packet got through to a closed port).
blocked() {
	if lab_probe "$2" connect -t "$LAB_NO_MS" "$3" "$4" "$5"; then
		fail "$1"
		echo "    $2: $3 $4 $5 got through" >&2
	elif echo "$LAB_WHY" | grep -Eq ': (timeout|dropped \(.*\))$'; then
		pass "$1"
	else
		fail "$1"
		echo "    $2: expected a silent drop, got: $LAB_WHY" >&2
	fi
}

pings() {
	if lab_probe "$2" ping -t "$LAB_OK_MS" "$3"; then pass "$1"; else
		fail "$1"; echo "    $2: $LAB_WHY" >&2; fi
}

no_ping() {
	if lab_probe "$2" ping -t "$LAB_NO_MS" "$3"; then
		fail "$1"; echo "    $2: ping $3 answered" >&2
	else pass "$1"; fi
}

# lab_has CMD: the fedwall under test has subcommand CMD.
lab_has() {
	"$FEDWALL" --help 2>/dev/null | grep -q "^  $1 "
}

# lab_apply POLICY [HOST]: the one way suites load a policy.
lab_apply() {
	_h=${2:-edge}
	if lab_has apply; then
		lab_exec "$_h" "$FEDWALL" apply -f "$1" \
			--state-dir "$LAB_DIR/state" >"$LAB_DIR/apply.out" 2>&1
	else
		"$FEDWALL" generate -f "$1" --state-dir "$LAB_DIR/state" \
			>"$LAB_DIR/ruleset.nft" 2>"$LAB_DIR/apply.out" &&
			lab_exec "$_h" nft -f "$LAB_DIR/ruleset.nft" \
				>>"$LAB_DIR/apply.out" 2>&1
	fi
	_rc=$?
	[ $_rc -eq 0 ] || sed 's/^/    /' "$LAB_DIR/apply.out" >&2
	return $_rc
}

# lab_apply_how: one line saying which path lab_apply takes.
lab_apply_how() {
	if lab_has apply; then echo "fedwall apply"
	else echo "fedwall generate | nft -f (no 'fedwall apply' yet)"; fi
}

# lab_table_name POLICY: the table name a policy uses (default fedwall).
lab_table_name() {
	_t=$(sed -n 's/^table:[[:space:]]*\([A-Za-z0-9_.-]*\).*/\1/p' "$1")
	echo "${_t:-fedwall}"
}

lab_flush() {
	_h=${2:-edge}
	if lab_has flush; then
		lab_exec "$_h" "$FEDWALL" flush -f "$1" \
			--state-dir "$LAB_DIR/state" >"$LAB_DIR/flush.out" 2>&1
	else
		lab_exec "$_h" nft delete table inet "$(lab_table_name "$1")" \
			>"$LAB_DIR/flush.out" 2>&1
	fi
	_rc=$?
	[ $_rc -eq 0 ] || sed 's/^/    /' "$LAB_DIR/flush.out" >&2
	return $_rc
}

# lab_counter HOST NAME [TABLE]: packets of named counter NAME, -1 if none.
lab_counter() {
	_n=$(lab_exec "$1" nft list counter inet "${3:-fedwall}" "$2" 2>/dev/null |
		sed -n 's/.*packets \([0-9]*\).*/\1/p')
	echo "${_n:--1}"
}

# ---- a lab DNS server as the edge's resolver --------------------------------
# lab_dns_init: lab_init for a suite whose edge resolves through the lab's
# DNS server: the edge's /etc/netns/LAB-edge (NETNS_ETC) goes with the rest.
lab_dns_init() {
	lab_init
	NETNS_ETC=/etc/netns/$LAB-edge
	trap lab_dns_cleanup EXIT
	trap 'lab_dns_cleanup; trap - EXIT; exit 130' INT TERM HUP PIPE
}

lab_dns_cleanup() {
	rm -rf "$NETNS_ETC"
	lab_cleanup
}

# lab_dns_topology WHAT [foxtrot] [golf]: lab_topology, the hosts delta and
# echo (198.51.100.14, .15), foxtrot (.16) and golf (.17) when named, and
# dns (.53) as the edge's only resolver; false (after a FAIL naming WHAT)
# if any of it cannot be built.
lab_dns_topology() {
	_what=$1; shift
	lab_topology &&
	lab_host delta 198.51.100.14/24 2001:db8:51::14/64 &&
	lab_host echo 198.51.100.15/24 2001:db8:51::15/64 || {
		fail "$_what: build the namespace topology"; return 1; }
	for _h in "$@"; do
		case $_h in foxtrot) _o=16 ;; golf) _o=17 ;; *) _o= ;; esac
		[ -n "$_o" ] && lab_host "$_h" 198.51.100.$_o/24 2001:db8:51::$_o/64 || {
			fail "$_what: build the namespace topology ($_h)"; return 1; }
	done
	lab_host dns 198.51.100.53/24 2001:db8:51::53/64 &&
	mkdir -p "$NETNS_ETC" &&
	echo "nameserver 198.51.100.53" >"$NETNS_ETC/resolv.conf" || {
		fail "$_what: build the namespace topology (dns)"; return 1; }
}

# lab_dnsmasq_conf FILE LISTEN HOSTS [SRV...]: a dnsmasq configuration in
# FILE for the lab's DNS server: port 53 on address LISTEN only,
# authoritative for example.test from the hosts file HOSTS (TTL 1), no
# upstream; each SRV ("_svc._tcp.name,target,port") as an srv-host.
lab_dnsmasq_conf() {
	_f=$1 _l=$2 _h=$3
	shift 3
	{ printf 'port=53\nlisten-address=%s\nbind-interfaces\nno-resolv\nno-hosts\n' "$_l"
	  printf 'addn-hosts=%s\nlocal=/example.test/\nlocal-ttl=1\n' "$_h"
	  for _s in "$@"; do printf 'srv-host=%s\n' "$_s"; done
	  printf 'user=root\ngroup=root\n'; } >"$_f"
}

# ---- a suite's fedwall runs ------------------------------------------------
# A suite's own fw() runs fedwall with its arguments and leaves the exit
# status in $RC, stdout in $LAB_DIR/out ($OUT) and stderr in
# $LAB_DIR/err ($ERR); these judge it.

# lab_fw HOST ARGS...: fedwall ARGS in HOST, judged by the helpers below.
lab_fw() {
	_h=$1; shift
	lab_exec "$_h" "$FEDWALL" "$@" >"$LAB_DIR/out" 2>"$LAB_DIR/err"
	RC=$?
	OUT=$(cat "$LAB_DIR/out")
	ERR=$(cat "$LAB_DIR/err")
}
show() { { echo "    exit $RC"; sed 's/^/    out: /' "$LAB_DIR/out"
	sed 's/^/    err: /' "$LAB_DIR/err"; } >&2; }
# expect_rc RC NAME: the last fw exited RC
expect_rc() { if [ "$RC" -eq "$1" ]; then pass "$2"; else fail "$2"; show; fi; }
# has WHERE PATTERN NAME: $OUT or $ERR matches PATTERN (grep -E)
has() {
	if eval "printf '%s\n' \"\$$1\"" | grep -Eq -- "$2"; then pass "$3"
	else fail "$3"; echo "    no /$2/ in $1" >&2; show; fi
}
# lab_table NS: table inet fedwall as text, normalised: element lists and
# objects sorted (the kernel lists interval elements in the order they
# were added, a set rebuilt by a swap after the others), counter values
# blanked (probes' packets move them)
lab_table() {
	lab_exec "$1" nft list table inet fedwall 2>&1 | perl -0777 -pe '
		s/packets \d+ bytes \d+/packets - bytes -/g;
		s/elements = \{(.*?)\}/"elements = { " . join(", ", sort map {
			s|^\s+||; s|\s+$||; $_ } split(m|,|, $1)) . " }"/gse;
		$_ = join("\n\n", sort split(/\n\n/, $_))'
}

# ---- an HTTPS server: a test CA and nginx (https.sh, feeds.sh) -------------

# lab_https_require NAME: whether nginx, openssl and python3 (PY) are
# here, after lab_require; else a SKIP naming what to install.
lab_https_require() {
	lab_require || return 1
	PY=$(command -v python3 || true)
	for _c in /usr/sbin/nginx openssl "$PY"; do
		if [ -z "$_c" ] || ! command -v "$_c" >/dev/null 2>&1; then
			skip "$1 (no ${_c:-python3}: apt-get install nginx-light openssl python3)"
			return 1
		fi
	done
}

# lab_ca DIR NAME ADDR: DIR/NAME-ca.pem (CN "fedwall NAME test CA") and a
# server certificate DIR/NAME-srv.pem (key DIR/NAME-srv.key) for IP:ADDR
# that it signed; EC P-256, valid two days.
lab_ca() {
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$1/$2-ca.key" -out "$1/$2-ca.pem" -days 2 \
		-subj "/CN=fedwall $2 test CA" 2>/dev/null &&
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$1/$2-srv.key" -out "$1/$2-srv.csr" -subj "/CN=$3" 2>/dev/null &&
	printf 'subjectAltName=IP:%s\n' "$3" >"$1/ext" &&
	openssl x509 -req -in "$1/$2-srv.csr" -CA "$1/$2-ca.pem" -CAkey "$1/$2-ca.key" \
		-CAcreateserial -out "$1/$2-srv.pem" -days 2 -extfile "$1/ext" 2>/dev/null
}

# lab_nginx_conf DIR ADDR TYPE [PLAIN]: DIR/nginx.conf serving DIR/www over
# https on ADDR:443 with DIR/srv.pem and DIR/srv.key (content type TYPE),
# and with PLAIN over http on ADDR:80 too; its access log DIR/access.log
# says "STATUS URI" a request.
lab_nginx_conf() {
	_plain=
	[ -n "${4:-}" ] && _plain="server { listen $2:80; root $1/www; }"
	mkdir -p "$1/tmp" "$1/www"
	cat >"$1/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 64; }
http {
	log_format st '\$status \$request_uri';
	access_log $1/access.log st;
	client_body_temp_path $1/tmp;
	proxy_temp_path $1/tmp;
	fastcgi_temp_path $1/tmp;
	uwsgi_temp_path $1/tmp;
	scgi_temp_path $1/tmp;
	default_type $3;
	server {
		listen $2:443 ssl;
		ssl_certificate $1/srv.pem;
		ssl_certificate_key $1/srv.key;
		root $1/www;
	}
	$_plain
}
EOF
}

# lab_nginx_start HOST DIR: nginx with DIR/nginx.conf in HOST's namespace,
# in the foreground of a background job ($LAB_NGINX, killed with the
# lab); back once its pid file says the sockets are bound.
lab_nginx_start() {
	lab_exec "$1" /usr/sbin/nginx -e "$2/error.log" -p "$2" -c "$2/nginx.conf" \
		-g 'daemon off;' &
	LAB_NGINX=$!
	LAB_PIDS="$LAB_PIDS $LAB_NGINX"
	for _n in $(seq 100); do
		[ -s "$2/nginx.pid" ] && return 0
		sleep 0.05
	done
	return 1
}

# lab_wait_reach SECONDS HOST ADDR PORT: HOST's tcp connect to ADDR PORT
# gets through within SECONDS (a daemon's change, awaited).
lab_wait_reach() {
	_end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -le $_end ]; do
		lab_probe "$2" connect -t 300 tcp "$3" "$4" && return 0
		sleep 0.2
	done
	return 1
}
