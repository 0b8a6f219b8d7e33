#!/bin/sh
# tests/lab/faults.sh - faults fedwall must survive, against the real
# kernel in a network namespace of its own (and mount namespaces for the
# state disk): the kernel refusing the commit, SIGKILL in the middle of an
# apply and of saving the state, a full or read-only state disk (and a
# failed save followed by a failing source: no revert to older addresses),
# a DNS server that never answers (refresh, and SIGTERM to a daemon in the
# wait), the table flushed or edited behind fedwall's back (refresh and
# daemon; a SIGHUP reload is not called a restore), another process
# holding the lock, a FIFO or a symlink to a device among the state
# directory's files; and least privilege: the running daemon's
# capabilities and no_new_privs, files others may write refused with a
# message naming them.
# For each: the ruleset stays whole (fail closed), the message says what
# happened, and the next run recovers without help.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

DNSMASQ=/usr/sbin/dnsmasq
lab_require || exit 0
lab_init
NETNS_ETC=/etc/netns/$LAB-h
faults_cleanup() {
	exec 9>&- 2>/dev/null
	rm -rf "$NETNS_ETC"
	lab_cleanup
}
trap faults_cleanup EXIT
trap 'faults_cleanup; trap - EXIT; exit 130' INT TERM HUP PIPE

D=$LAB_DIR
ST=$D/state
POLF=$D/policy.yaml
LIST=$D/list.txt
lab_ns h || { fail "faults: a network namespace"; exit 1; }
mkdir -p "$NETNS_ETC"
echo "nameserver 127.0.0.1" >"$NETNS_ETC/resolv.conf"

# policy [EXTRA [RESOLVE]]: a list partner, an inline one; EXTRA: more
# YAML lines; RESOLVE: the resolve line
policy() {
	_resolve=${2:-'resolve: {ttl_min: 1s, ttl_max: 2s, timeout: 1s}'}
	cat >"$POLF" <<EOF
version: 1
partners:
  big:
    services: [sip-federation]
    direction: inbound
    lists: [$LIST]
  small:
    services: [sip-federation]
    direction: inbound
    addresses: [198.51.100.7, 2001:db8:51::7]
${1:-}
guards: {max_shrink: 100%}
$_resolve
EOF
}
# biglist FILE TAG N: N non-adjacent /64s under 2001:db8:TAG::/48
biglist() {
	awk -v n="$3" -v t="$2" 'BEGIN { for (i = 0; i < n; i++)
		printf "2001:db8:%s:%x::/64\n", t, 2 * i }' >"$1"
}
# fw ARGS...: fedwall in the namespace; $RC, $OUT, $ERR
fw() { lab_fw h "$@" -f "$POLF" --state-dir "$ST"; }
table() { lab_table h; }
# fwt ARGS...: fw under `timeout 20`; $RC 124 means it blocked
fwt() {
	timeout 20 ip netns exec "$LAB-h" "$FEDWALL" "$@" -f "$POLF" --state-dir "$ST" \
		>"$D/out" 2>"$D/err"
	RC=$?
	OUT=$(cat "$D/out")
	ERR=$(cat "$D/err")
}
# alive PID: running (not gone, not a zombie waiting for `wait`)
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:.*Z' "/proc/$1/status"; }
# dnsq: bytes queued, unread, on the namespace's UDP port 53
dnsq() {
	lab_exec h ss -uanH 'sport = :53' | awk '{ q += $2 } END { print q + 0 }'
}
# state_text FILE: the state (binary, format 2) as text (tools/state-text.py)
state_text() { "$TOP/tools/state-text.py" "$1" 2>/dev/null; }
# addrs: the state file's addr lines (what it vouches for), or "none"
addrs() { state_text "$ST/state" | grep '^addr ' | sort | md5sum | cut -c1-12; }

policy
echo 198.51.100.12 >"$LIST"
fw refresh
expect_rc 0 "faults: first refresh creates the table"
table >"$D/t.small"

# ---- (a) the kernel refuses the commit -----------------------------------
# An `nft -i` reading a FIFO keeps the table with flag "owner": every
# change by anybody else is refused with EPERM.
lab_exec h nft delete table inet fedwall
"$FEDWALL" generate -f "$POLF" --state-dir "$ST" |
	awk '/^table inet fedwall \{$/ && !o { print; print "\tflags owner"; o = 1; next } 1' \
	>"$D/held.nft"
mkfifo "$D/holder.fifo"
ip netns exec "$LAB-h" nft -i <"$D/holder.fifo" >"$D/holder.out" 2>&1 &
HOLDER=$!
LAB_PIDS="$LAB_PIDS $HOLDER"
exec 9>"$D/holder.fifo"
echo "include \"$D/held.nft\"" >&9
for _n in $(seq 100); do
	table >"$D/held.before" && grep -q 'flags owner' "$D/held.before" && break
	sleep 0.05
done
if grep -q 'flags owner' "$D/held.before"; then
	cp "$ST/state" "$D/state.before"
	echo 198.51.100.13 >"$LIST"
	fw refresh
	expect_rc 1 "refused commit: refresh exits 1"
	has ERR "error: .*(not permitted|EPERM|refused)" \
		"refused commit: refresh says the kernel refused"
	table >"$D/held.after"
	same "$D/held.before" "$D/held.after" "refused commit: the old ruleset stays whole"
	if cmp -s "$D/state.before" "$ST/state"; then
		pass "refused commit: the state is not advanced past the kernel"
	else fail "refused commit: the state is not advanced past the kernel"; fi
	exec 9>&-
	wait "$HOLDER" 2>/dev/null
	fw refresh
	expect_rc 0 "refused commit: once the holder is gone, the next refresh recovers"
	has OUT "partner big: \+1 -0 address" "refresh: ... and reports what it applied"
else
	exec 9>&-
	skip "refused commit (could not hold the table: nft too old?)"
fi

# ---- (e) the table flushed or edited behind fedwall's back --------------
echo 198.51.100.12 >"$LIST"
fw refresh
table >"$D/t.good"
lab_exec h nft flush table inet fedwall
fw refresh
expect_rc 0 "tamper: refresh after 'nft flush table' exits 0"
has OUT "table inet fedwall: restored: it differed from the policy" \
	"tamper: refresh says it restored the flushed table"
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "tamper: the flushed table is restored exactly"
lab_exec h nft delete element inet fedwall in4_1 '{ 198.51.100.7 }'
fw refresh
has OUT "partner small: \+1 -0 address \(the table differed from the policy: restored\)" \
	"tamper: a deleted element is noticed and put back, naming the partner"
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "tamper: the element is back"
lab_exec h nft add rule inet fedwall input accept
fw refresh
has OUT "table inet fedwall: restored" "tamper: a rule added by hand is noticed"
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "tamper: the rule added by hand is gone"
fw refresh
if [ "$RC" -eq 0 ] && [ -z "$OUT$ERR" ]; then pass "tamper: then quiet again"
else fail "tamper: then quiet again"; show; fi

# ---- least privilege: the daemon, and files others may write -------------
ip netns exec "$LAB-h" "$FEDWALL" daemon -d -f "$POLF" --state-dir "$ST" 2>"$D/daemon.log" &
DPID=$!
LAB_PIDS="$LAB_PIDS $DPID"
sleep 0.5
PID=$DPID
if kill -0 "$PID" 2>/dev/null; then
	grep -E '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):' "/proc/$PID/status" >"$D/caps"
	if grep -q '^CapEff:.*0000000000001000$' "$D/caps" &&
		grep -q '^CapPrm:.*0000000000001000$' "$D/caps" &&
		grep -q '^CapBnd:.*0000000000001000$' "$D/caps" &&
		grep -q '^CapInh:.*0000000000000000$' "$D/caps" &&
		grep -q '^NoNewPrivs:.*1$' "$D/caps"; then
		pass "daemon: CAP_NET_ADMIN only (effective, permitted, bounding), no_new_privs"
	else fail "daemon: CAP_NET_ADMIN only, no_new_privs"; sed 's/^/    /' "$D/caps" >&2; fi
else fail "daemon: running (pid in the namespace)"; sed 's/^/    /' "$D/daemon.log" >&2; fi
# (e) for the daemon: no source is due for 60 s, yet it looks at the kernel
lab_exec h nft flush table inet fedwall
ok_restored=0
for _n in $(seq 40); do
	table >"$D/t.now"
	cmp -s "$D/t.good" "$D/t.now" && { ok_restored=1; break; }
	sleep 0.1
done
if [ $ok_restored -eq 1 ] && grep -q "restored: it differed from the policy" "$D/daemon.log"; then
	pass "tamper: the daemon restores a flushed table within ttl_min (no source due) and says so"
else fail "tamper: the daemon restores a flushed table"; sed 's/^/    /' "$D/daemon.log" >&2; fi
# A SIGHUP with a changed policy: the table follows it, and the log says
# it was the reload, not drift restored.
cp "$POLF" "$D/policy.keep"
sed 's|198.51.100.7, 2001:db8:51::7|198.51.100.7, 198.51.100.8, 2001:db8:51::7|' \
	"$D/policy.keep" >"$POLF"
n0=$(wc -l <"$D/daemon.log")
kill -HUP "$DPID"
for _n in $(seq 50); do
	lab_exec h nft list table inet fedwall | grep -q 198.51.100.8 && break
	sleep 0.1
done
sleep 0.2
tail -n +$((n0 + 1)) "$D/daemon.log" >"$D/daemon.reload"
if lab_exec h nft list table inet fedwall | grep -q 198.51.100.8 &&
	grep -q 'partner small: +1 -0 address (reloaded the policy)' "$D/daemon.reload" &&
	! grep -q 'restored' "$D/daemon.reload"; then
	pass "reload: a SIGHUP with a changed policy is logged as the reload, not as a restore"
else fail "reload: logged as the reload"; sed 's/^/    /' "$D/daemon.reload" >&2; fi
kill -TERM "$DPID"; wait "$DPID" 2>/dev/null
cp "$D/policy.keep" "$POLF"
fw refresh

chmod 666 "$POLF"
fw refresh
expect_rc 1 "perms: a policy others may write is refused"
has ERR "^fedwall: error: $POLF: refusing: writable by others \(mode 0666\)$" \
	"perms: the message names the file and its mode"
chmod 644 "$POLF"
chmod 620 "$LIST"
fw refresh
expect_rc 1 "perms: a list the group may write is refused (the source fails)"
has ERR "$LIST: refusing: writable by group \(mode 0620\)" "perms: ... naming the list"
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "perms: the list partner keeps its last known good addresses"
chmod 644 "$LIST"
chmod 777 "$ST"
fw refresh
expect_rc 1 "perms: a state directory others may write is refused"
has ERR "$ST: refusing: writable by others \(mode 0777\)" "perms: ... naming the directory"
chmod 700 "$ST"
chmod 666 "$ST/state"
fw refresh
has ERR "$ST/state: refusing: writable by others \(mode 0666\)" \
	"perms: a state file others may write is refused"
chmod 600 "$ST/state"
mkfifo "$D/fifo.txt"
sed "s|$LIST|$D/fifo.txt|" "$POLF" >"$D/fifo.yaml"
if timeout 5 "$FEDWALL" check -f "$D/fifo.yaml" --state-dir "$ST" >"$D/out" 2>&1; then
	fail "perms: a list that is a FIFO is refused"
else
	RC=$?
	[ $RC -ne 124 ] && pass "perms: a list that is a FIFO is refused without blocking" ||
		fail "perms: a list that is a FIFO blocked"
fi
fw refresh

# ---- non-regular files in the state directory -------------------------------
# A FIFO at a file fedwall writes there once blocked open(O_WRONLY) forever,
# the lock held.  Now each is refused unopened, naming it, and the lock goes.
for f in state live.cache last-refresh; do
	rm -f "$D/saved"
	[ -e "$ST/$f" ] && mv "$ST/$f" "$D/saved"
	mkfifo "$ST/$f"
	echo 198.51.100.12 >"$LIST"
	fwt refresh
	if [ $RC -eq 124 ]; then fail "fifo at $f: refresh blocked (killed after 20 s)"
	else pass "fifo at $f: refresh does not block"; fi
	expect_rc 1 "fifo at $f: refresh exits 1"
	has ERR "error: $ST/$f: refusing to write: a FIFO, not a regular file" \
		"fifo at $f: the error names the path and what it is"
	fwt refresh
	if [ $RC -ne 124 ] && ! printf '%s' "$ERR" | grep -q 'another fedwall'; then
		pass "fifo at $f: the lock is freed (the next refresh takes it)"
	else fail "fifo at $f: the lock is freed"; show; fi
	rm -f "$ST/$f"
	[ -e "$D/saved" ] && mv "$D/saved" "$ST/$f"
done
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "fifo: the table is what the policy makes all along"
cp -p "$ST/state" "$D/saved"
ln -sf /dev/zero "$ST/state"
fwt refresh
expect_rc 1 "state -> /dev/zero: refresh exits 1"
has ERR "error: $ST/state: refusing to write: a symlink to a character device" \
	"state -> /dev/zero: refused, naming the path and what it leads to"
if [ -L "$ST/state" ] && [ -c /dev/zero ]; then pass "state -> /dev/zero: nothing written there"
else fail "state -> /dev/zero: nothing written there"; fi
rm -f "$ST/state"
mv "$D/saved" "$ST/state"
fw refresh
expect_rc 0 "state back: refresh exits 0"

# ---- a failing refresh, its state directory not there yet -----------------
# Its record of the run is still written: the directory is made for it
# (before: "cannot write .../last-refresh: No such file or directory").
printf 'version: 1\npartners:\n  a: {bogus: 1}\n' >"$D/bad.yaml"
lab_exec h "$FEDWALL" refresh -f "$D/bad.yaml" --state-dir "$D/newstate" >"$D/out" 2>"$D/err"
RC=$?
ERR=$(cat "$D/err")
expect_rc 1 "new state dir: a refresh with a bad policy exits 1"
if grep -q '^[0-9]* failed 0$' "$D/newstate/last-refresh" 2>/dev/null &&
	! grep -q 'No such file' "$D/err"; then
	pass "new state dir: ... and records the failed run in a directory it makes"
else fail "new state dir: the failed run is recorded"; show; fi

# ---- (f) another process holds the lock -----------------------------------
sh -c 'echo $$ >"$1"; exec flock "$1" sleep 8' sh "$ST/lock" &
LH=$!
LAB_PIDS="$LAB_PIDS $LH"
sleep 0.3
cp "$ST/state" "$D/state.before"
t0=$(date +%s)
fw refresh
t1=$(date +%s)
expect_rc 1 "lock: refresh gives up when another process holds the lock"
has ERR "another fedwall \(pid $LH\) holds $ST/lock; gave up after 5 s" \
	"lock: ... after $((t1 - t0)) s, naming the holder"
kill "$LH" 2>/dev/null; wait "$LH" 2>/dev/null
fw refresh
expect_rc 0 "lock: the next refresh runs"

# ---- (c) the state disk full, or read-only ---------------------------------
# A private mount namespace: a small tmpfs over the state directory,
# filled up; then the same directory bind-mounted read-only.
echo 198.51.100.14 >"$LIST"
cp -p "$ST/state" "$D/state.before"
unshare -m sh -c '
	mount --make-rprivate / && mount -t tmpfs -o size=64k,mode=0700 tmpfs "$1" &&
	cp -p "$2" "$1/state" && { dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null; true; } &&
	ip netns exec "$3" "$4" refresh -f "$5" --state-dir "$1" >"$6/out" 2>"$6/err"
	echo $? >"$6/rc"; cp "$1/state" "$6/state.after"' \
	sh "$ST" "$D/state.before" "$LAB-h" "$FEDWALL" "$POLF" "$D"
RC=$(cat "$D/rc"); OUT=$(cat "$D/out"); ERR=$(cat "$D/err")
expect_rc 1 "disk full: refresh exits 1"
has ERR "cannot save the state to '$ST/state': No space left on device" \
	"disk full: says why it could not save"
has OUT "partner big: \+1 -1 addresses" "disk full: applied from memory all the same"
cmp -s "$D/state.before" "$D/state.after" &&
	pass "disk full: the old state file is intact" ||
	fail "disk full: the old state file is intact"
echo 198.51.100.15 >"$LIST"
unshare -m sh -c '
	mount --make-rprivate / && mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" &&
	ip netns exec "$2" "$3" refresh -f "$4" --state-dir "$1" >"$5/out" 2>"$5/err"
	echo $? >"$5/rc"' sh "$ST" "$LAB-h" "$FEDWALL" "$POLF" "$D"
RC=$(cat "$D/rc"); OUT=$(cat "$D/out"); ERR=$(cat "$D/err")
expect_rc 1 "read-only state: refresh exits 1"
has ERR "cannot save the state to '$ST/state': Read-only file system" \
	"read-only state: says why it could not save"
has OUT "partner big: \+1 -1 addresses" "read-only state: applied from memory all the same"
fw refresh
expect_rc 0 "state disk back: the next refresh saves again"

# ---- a failed save, then a source that fails ---------------------------------
# The kernel holds the list's new address, the state the old one.  The next
# refresh with the list failing must keep the new address (not put the old
# one back and call it "restored"); once the disk has room and the list
# reads again, the state catches up and the mark goes.  One mount
# namespace for all three runs: the full tmpfs stays full between them.
echo 198.51.100.16 >"$LIST"
fw refresh
cp -p "$ST/state" "$D/state.before"
cat >"$D/behind.sh" <<'EOS'
set -u
run() {	# N: refresh, its out/err/rc/table as $D/b.N.*
	ip netns exec "$NS" "$FEDWALL" refresh -f "$POLF" --state-dir "$ST" \
		>"$D/b.$1.out" 2>"$D/b.$1.err"
	echo $? >"$D/b.$1.rc"
	ip netns exec "$NS" nft list table inet fedwall >"$D/b.$1.table" 2>&1
	[ -e "$ST/state-behind" ] && echo yes >"$D/b.$1.mark" || echo no >"$D/b.$1.mark"
	ip netns exec "$NS" "$FEDWALL" status -f "$POLF" --state-dir "$ST" \
		>"$D/b.$1.st" 2>&1
	echo $? >"$D/b.$1.strc"
	ip netns exec "$NS" "$FEDWALL" status --format prometheus -f "$POLF" \
		--state-dir "$ST" 2>/dev/null | grep '^fedwall_state_behind ' >"$D/b.$1.prom"
	ip netns exec "$NS" "$FEDWALL" status --json -f "$POLF" --state-dir "$ST" \
		2>/dev/null | grep -o '"state_behind": [a-z]*' >"$D/b.$1.json"
}
mount --make-rprivate / && mount -t tmpfs -o size=64k,mode=0700 tmpfs "$ST" || exit 1
cp -p "$D/state.before" "$ST/state"
dd if=/dev/zero of="$ST/fill" bs=4k 2>/dev/null
echo 198.51.100.17 >"$LIST"; run 1
chmod 620 "$LIST"; run 2
chmod 644 "$LIST"; rm -f "$ST/fill"; run 3
"$TOP/tools/state-text.py" "$ST/state" | grep -c '^addr 198.51.100.17$' >"$D/b.3.state"
EOS
NS=$LAB-h FEDWALL=$FEDWALL POLF=$POLF ST=$ST D=$D LIST=$LIST TOP=$TOP unshare -m sh "$D/behind.sh"
b() { RC=$(cat "$D/b.$1.rc"); cp "$D/b.$1.out" "$D/out"; cp "$D/b.$1.err" "$D/err"
	OUT=$(cat "$D/out"); ERR=$(cat "$D/err"); }
b 1
expect_rc 1 "behind: the save fails on the full disk"
has OUT "partner big: \+1 -1 addresses" "behind: ... after the new address was applied"
[ "$(cat "$D/b.1.mark")" = yes ] && pass "behind: the state is marked behind the table" ||
	{ fail "behind: the state is marked behind the table"; show; }
[ "$(cat "$D/b.1.strc")" = 1 ] && grep -q 'state is older than the table' "$D/b.1.st" &&
	pass "behind: status says the state lags the table, and exits 1" ||
	{ fail "behind: status says the state lags the table"; sed 's/^/    /' "$D/b.1.st" >&2; }
[ "$(cat "$D/b.1.prom")" = "fedwall_state_behind 1" ] &&
	[ "$(cat "$D/b.1.json")" = '"state_behind": true' ] &&
	pass "behind: ... and the metrics (fedwall_state_behind 1) and --json" ||
	{ fail "behind: ... and the metrics"; cat "$D/b.1.prom" >&2; }
b 2
expect_rc 1 "behind: the next refresh, its list refused, exits 1"
if grep -q '198.51.100.17' "$D/b.2.table" && ! grep -q '198.51.100.16' "$D/b.2.table"
then pass "behind: the table keeps the NEW address (not the state's older one)"
else fail "behind: the table keeps the NEW address"; show; fi
if printf '%s' "$OUT$ERR" | grep -q 'restored'; then
	fail "behind: nothing is called restored"; show
else pass "behind: nothing is called restored"; fi
has ERR "partner 'big'.*its list '$LIST' did not answer, and the state is behind the table" \
	"behind: says why the partner keeps what the table holds"
b 3
expect_rc 0 "behind: with room and the list back, the next refresh exits 0"
[ "$(cat "$D/b.3.mark")" = no ] && [ "$(cat "$D/b.3.state")" = 1 ] &&
	pass "behind: the state records the new address and the mark is gone" ||
	{ fail "behind: the state records the new address and the mark is gone"; show; }
[ "$(cat "$D/b.3.strc")" = 0 ] && [ "$(cat "$D/b.3.prom")" = "fedwall_state_behind 0" ] &&
	pass "behind: then status and the metrics are content again" ||
	{ fail "behind: then status and the metrics are content again"; cat "$D/b.3.st" "$D/b.3.prom" >&2; }

# ---- (d) the DNS server hangs ---------------------------------------------
if [ -x "$DNSMASQ" ]; then
	lab_dnsmasq_conf "$D/dnsmasq.conf" 127.0.0.1 "$D/hosts"
	echo "198.51.100.21 named.example.test" >"$D/hosts"
	ip netns exec "$LAB-h" "$DNSMASQ" --keep-in-foreground --conf-file="$D/dnsmasq.conf" \
		--log-facility="$D/dns.log" --pid-file="$D/dns.pid" &
	DNSPID=$!
	LAB_PIDS="$LAB_PIDS $DNSPID"
	for _n in $(seq 100); do
		lab_exec h getent hosts named.example.test >/dev/null 2>&1 && break
		sleep 0.05
	done
	policy "  named: {services: [sip-federation], direction: inbound, hosts: [named.example.test]}"
	fw refresh
	expect_rc 0 "dns hang: baseline refresh resolves named.example.test"
	table >"$D/t.dns"
	kill -STOP "$DNSPID"
	t0=$(date +%s%N)
	fw refresh
	ms=$((($(date +%s%N) - t0) / 1000000))
	expect_rc 1 "dns hang: refresh exits 1 when the server never answers"
	if [ $ms -le 11000 ]; then pass "dns hang: refresh finished in $ms ms (deadline 10 s)"
	else fail "dns hang: refresh took $ms ms"; fi
	has ERR "named.example.test.*keeping its 1 last known good address" \
		"dns hang: keeps the last known good address, and says so"
	table >"$D/t.now"
	same "$D/t.dns" "$D/t.now" "dns hang: the table is unchanged"
	# The daemon in the middle of a DNS wait that may last 3 minutes
	# (timeout 60 s a lookup): SIGTERM must end it within 2 s.
	policy "  named: {services: [sip-federation], direction: inbound, hosts: [named.example.test]}" \
		"resolve: {ttl_min: 1s, ttl_max: 2s, timeout: 60s}"
	q0=$(dnsq)
	ip netns exec "$LAB-h" "$FEDWALL" daemon -d -f "$POLF" --state-dir "$ST" \
		2>"$D/daemon.dns.log" &
	DPID=$!
	LAB_PIDS="$LAB_PIDS $DPID"
	for _n in $(seq 100); do [ "$(dnsq)" -gt "$q0" ] && break; sleep 0.1; done
	if [ "$(dnsq)" -gt "$q0" ] && alive "$DPID"; then
		sleep 0.3       # well inside the wait: its queries are queued unanswered
		kill -TERM "$DPID"
		for _n in $(seq 20); do alive "$DPID" || break; sleep 0.1; done
		if alive "$DPID"; then
			fail "dns hang: the daemon stops on SIGTERM within 2 s (still running)"
			kill -KILL "$DPID"; wait "$DPID" 2>/dev/null
		else
			wait "$DPID"; drc=$?
			if [ $drc -eq 0 ] && grep -q 'daemon stopping' "$D/daemon.dns.log"; then
				pass "dns hang: the daemon in a DNS wait stops on SIGTERM within 2 s, exit 0"
			else fail "dns hang: the daemon stops cleanly (exit $drc)"
				sed 's/^/    /' "$D/daemon.dns.log" >&2; fi
		fi
	else
		fail "dns hang: the daemon reaches the DNS wait"
		sed 's/^/    /' "$D/daemon.dns.log" >&2
		kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null
	fi
	kill -CONT "$DNSPID"
	policy
else
	skip "dns hang (no $DNSMASQ)"
fi

# ---- (b) SIGKILL in the middle of an apply and of saving the state --------
# Two lists of 2000 prefixes each: every refresh swaps one for the other.
biglist "$D/A.txt" a 2000
biglist "$D/B.txt" b 2000
cp "$D/A.txt" "$LIST"; fw refresh; table >"$D/t.A"; SA=$(addrs)
cp "$D/B.txt" "$LIST"
t0=$(date +%s%N); fw refresh; ms=$((($(date +%s%N) - t0) / 1000000))
table >"$D/t.B"; SB=$(addrs)
[ $ms -lt 50 ] && ms=50
bad=0 torn=0 kills=0
for i in $(seq 20); do
	if [ $((i % 2)) -eq 1 ]; then cp "$D/A.txt" "$LIST"; else cp "$D/B.txt" "$LIST"; fi
	ip netns exec "$LAB-h" "$FEDWALL" refresh -f "$POLF" --state-dir "$ST" >/dev/null 2>&1 &
	p=$!
	sleep "$(awk -v s="$i" -v m="$ms" 'BEGIN { srand(s); printf "%.3f", rand() * m / 1000 }')"
	kill -KILL "$p" 2>/dev/null && kills=$((kills + 1))
	wait "$p" 2>/dev/null
	table >"$D/t.now"
	if ! cmp -s "$D/t.now" "$D/t.A" && ! cmp -s "$D/t.now" "$D/t.B"; then
		bad=$((bad + 1)); cp "$D/t.now" "$D/t.bad"
	fi
	s=$(addrs)
	if [ "$s" != "$SA" ] && [ "$s" != "$SB" ]; then torn=$((torn + 1)); fi
	# the state the next run reads: valid (no checksum warning)
	lab_exec h "$FEDWALL" plan -f "$POLF" --state-dir "$ST" >/dev/null 2>"$D/err"
	grep -q "state file" "$D/err" && torn=$((torn + 1))
done
[ $bad -eq 0 ] && pass "sigkill: the kernel held the old or the new ruleset after each of 20 kills ($kills mid-run, within $ms ms)" ||
	{ fail "sigkill: a torn ruleset after $bad of 20 kills"
	  diff "$D/t.A" "$D/t.bad" | cut -c1-200 | head >&2; }
[ $torn -eq 0 ] && pass "sigkill: the state file was the old or the new one, checksum valid, each time" ||
	fail "sigkill: a torn or unreadable state file ($torn times)"
fw refresh
table >"$D/t.now"
expect_rc 0 "sigkill: the next run recovers without help"
if cmp -s "$D/t.now" "$D/t.B"; then pass "sigkill: ... to the ruleset the list asks for"
else fail "sigkill: ... to the ruleset the list asks for"; fi
left=$(ls "$ST" | grep -c '^state\.')
[ "$left" -eq 0 ] && pass "sigkill: no temporary state file left behind" ||
	{ fail "sigkill: $left temporary state files left behind"; ls "$ST" >&2; }

exit $SUITE_FAILED
