#!/bin/sh
# tests/lab/confirm.sh - commit-confirmed apply with real packets: `fedwall
# apply --confirm SECONDS` started from a shell that goes away rolls the
# table back, exactly, when nobody confirms (even after someone else
# changed it meanwhile); `fedwall confirm` keeps the change; with no table
# before, the rollback deletes it; `confirm` with nothing pending exits 1.
# Host mode in the lab of labrc.sh (edge, alpha, bravo).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
if ! lab_has confirm; then
	skip "confirm (no 'fedwall confirm' yet)"
	exit 0
fi
lab_init
E4=203.0.113.10 E6=2001:db8:10::10
ST=$LAB_DIR/state
PENDING=$ST/confirm.pending
# The watcher is detached (stderr is /dev/null): a sanitized build writes
# its reports here instead, checked at the end.
SAN_DIR=$LAB_DIR/san
mkdir -p "$SAN_DIR"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN_DIR/asan"

if ! { lab_core && lab_host alpha 198.51.100.11/24 2001:db8:51::11/64 &&
	lab_host bravo 198.51.100.12/24 2001:db8:51::12/64; }; then
	fail "lab: build the namespace topology"
	exit 1
fi
lab_serve edge tcp 5061 || { fail "lab: probe server in edge"; exit 1; }

# Policy A admits alpha, policy B bravo instead; charlie (no host in this
# lab) is in both, so that sets keep elements across the change.
A=$LAB_DIR/a.yaml B=$LAB_DIR/b.yaml
cat >"$A" <<'EOF'
version: 1
table: fedwall
mode: host
edge:
  interfaces: [eth0]
  addresses: [203.0.113.10, 2001:db8:10::10]
services:
  sip-federation: [tcp/5061]
partners:
  alpha:
    services: [sip-federation]
    direction: inbound
    addresses: [198.51.100.11, 2001:db8:51::11]
  charlie:
    services: [sip-federation]
    direction: both
    addresses: [198.51.100.13]
EOF
sed 's/alpha:/bravo:/; s/198\.51\.100\.11, 2001:db8:51::11/198.51.100.12, 2001:db8:51::12/' \
	"$A" >"$B"

fw() { lab_exec edge "$FEDWALL" "$@" --state-dir "$ST"; }

# table_text: the live table, counter values left out.
table_text() {
	lab_exec edge nft list table inet fedwall 2>&1 |
		sed -E 's/packets [0-9]+ bytes [0-9]+/packets N bytes N/'
}

# gone FILE SECS: FILE disappears within SECS seconds.
gone() {
	for _n in $(seq $(($2 * 20))); do
		[ -e "$1" ] || return 0
		sleep 0.05
	done
	return 1
}

# admits WHY HOST / drops WHY HOST: HOST -> edge tcp/5061 over IPv4 and IPv6.
admits() {
	reach "$1: $2 -> edge tcp/5061 IPv4 admitted" "$2" tcp $E4 5061
	reach "$1: $2 -> edge tcp/5061 IPv6 admitted" "$2" tcp $E6 5061
}
drops() {
	blocked "$1: $2 -> edge tcp/5061 IPv4 dropped" "$2" tcp $E4 5061
	blocked "$1: $2 -> edge tcp/5061 IPv6 dropped" "$2" tcp $E6 5061
}

# says NAME FILE PATTERN: FILE matches PATTERN.
says() {
	if grep -q -- "$3" "$2"; then pass "$1"; else
		fail "$1"; sed 's/^/    /' "$2" >&2; fi
}

watcher_pid() { sed -n 's/^pid //p' "$PENDING" 2>/dev/null; }

# ---- 1. not confirmed: back to A, exactly ------------------------------
M="confirm, not confirmed"
ok "$M: apply policy A" lab_apply "$A" || exit 1
admits "$M, A" alpha
drops "$M, A" bravo
table_text >"$LAB_DIR/a.nft"

# From a shell in a session of its own that exits once apply returns:
# the watcher must outlive it, with no terminal at all.
setsid sh -c 'ip netns exec "$1" "$2" apply --confirm 3 -f "$3" --state-dir "$4" \
	>"$5" 2>&1 </dev/null; echo $? >"$5.rc"' _ "$LAB-edge" "$FEDWALL" "$B" "$ST" \
	"$LAB_DIR/c1.out"
if [ "$(cat "$LAB_DIR/c1.out.rc")" = 0 ]; then
	pass "$M: apply --confirm 3 of policy B exits 0"
else
	fail "$M: apply --confirm 3 of policy B exits 0"
	sed 's/^/    /' "$LAB_DIR/c1.out" >&2
fi
says "$M: apply says how to confirm" "$LAB_DIR/c1.out" "run 'fedwall confirm' within 3 s"
W=$(watcher_pid)
if [ -n "$W" ] && kill -0 "$W" 2>/dev/null; then
	pass "$M: the watcher (pid $W) runs after its shell is gone"
else
	fail "$M: the watcher runs after its shell is gone"
fi
_fds=$(for f in 0 1 2; do readlink "/proc/$W/fd/$f"; done | sort -u)
if [ "$_fds" = /dev/null ] && [ "$(ps -o tty= -p "$W" | tr -d ' ')" = "?" ]; then
	pass "$M: the watcher has no terminal, stdio on /dev/null"
else
	fail "$M: the watcher has no terminal, stdio on /dev/null"
	echo "    fds: $_fds tty: $(ps -o tty= -p "$W")" >&2
fi
kill -HUP "$W" 2>/dev/null
kill -USR1 "$W" 2>/dev/null     # no token: confirms nothing
sleep 0.1
ok "$M: the watcher ignores SIGHUP and a stray SIGUSR1" kill -0 "$W"
admits "$M, B pending" bravo
drops "$M, B pending" alpha
# Someone else changes the table meanwhile: the rollback restores A all
# the same.
lab_exec edge nft add chain inet fedwall intruder &&
	lab_exec edge nft add rule inet fedwall intruder ip saddr 198.51.100.77 accept ||
	fail "$M: someone else changes the table"
lab_exec edge "$FEDWALL" status -f "$B" --state-dir "$ST" >/dev/null 2>"$LAB_DIR/st1"
says "$M: status shows the pending confirm" "$LAB_DIR/st1" "apply --confirm pending"
ok "$M: the watcher lets go after the deadline" gone "$PENDING" 8
table_text >"$LAB_DIR/back.nft"
same "$LAB_DIR/a.nft" "$LAB_DIR/back.nft" "$M: the table is exactly A again (nft list table)"
admits "$M, rolled back" alpha
drops "$M, rolled back" bravo
ok "$M: the previous table is in STATE_DIR/rollback as nft text" \
	grep -q "chain in_alpha" "$ST/rollback"
lab_exec edge "$FEDWALL" status -f "$A" --state-dir "$ST" >/dev/null 2>"$LAB_DIR/st2"
says "$M: status notes the rollback" "$LAB_DIR/st2" \
	"rolled back table inet fedwall to its state before apply --confirm (not confirmed within 3 s)"
fw apply -f "$A" >"$LAB_DIR/ap" 2>&1
says "$M: the next apply notes the rollback" "$LAB_DIR/ap" "rolled back table inet fedwall"
ok "$M: ... once" test ! -e "$ST/confirm.rolledback"

# ---- 2. confirmed in time: B stays past the deadline ---------------------
M="confirm, confirmed"
fw apply --confirm 5 -f "$B" </dev/null >"$LAB_DIR/c2.out" 2>&1 ||
	fail "$M: apply --confirm 5 of policy B"
sleep 0.5
if fw confirm >"$LAB_DIR/c2.conf" 2>&1; then
	pass "$M: fedwall confirm exits 0"
else
	fail "$M: fedwall confirm exits 0"
fi
says "$M: it says confirmed" "$LAB_DIR/c2.conf" "confirmed"
ok "$M: nothing pending after confirm" test ! -e "$PENDING"
sleep 5
admits "$M, past the deadline" bravo
drops "$M, past the deadline" alpha
if fw plan -f "$B" >/dev/null 2>&1; then
	pass "$M: the table is B (plan exits 0)"
else
	fail "$M: the table is B (plan exits 0)"
fi

# ---- 4. confirm with nothing pending ------------------------------------
M="confirm, nothing pending"
if fw confirm >"$LAB_DIR/c4" 2>&1; then
	fail "$M: exits 1"
else
	ok "$M: exits 1" test $? = 1
fi
says "$M: says so" "$LAB_DIR/c4" "nothing to confirm"

# ---- 3. no table before: the rollback deletes it --------------------------
M="confirm, no table before"
lab_flush "$A" || fail "$M: flush"
fw apply --confirm 2 -f "$A" </dev/null >"$LAB_DIR/c3.out" 2>&1 ||
	fail "$M: apply --confirm 2 of policy A"
admits "$M, pending" alpha
if fw apply --confirm 2 -f "$B" >"$LAB_DIR/c3b" 2>&1; then
	fail "$M: a second apply --confirm is refused"
else
	pass "$M: a second apply --confirm is refused"
fi
says "$M: ... saying what to do" "$LAB_DIR/c3b" "pending.*run 'fedwall confirm' first"
admits "$M, still A" alpha
ok "$M: the watcher lets go after the deadline" gone "$PENDING" 7
if lab_exec edge nft list table inet fedwall >/dev/null 2>&1; then
	fail "$M: the table is gone"
else
	pass "$M: the table is gone"
fi
reach "$M: bravo -> edge tcp/5061 IPv4 gets through (no table)" bravo tcp $E4 5061
says "$M: the note says why" "$ST/confirm.rolledback" "there was none: deleted it"

# ---- a FIFO where the pending record goes: refused, never waited on -------
M="confirm, FIFO at confirm.pending"
ok "$M: apply policy A" lab_apply "$A"
table_text >"$LAB_DIR/f.before"
mkfifo "$ST/confirm.pending"
timeout 20 ip netns exec "$LAB-edge" "$FEDWALL" apply --confirm 30 -f "$B" \
	--state-dir "$ST" >"$LAB_DIR/f.out" 2>&1 </dev/null
rc=$?
ok "$M: apply --confirm fails at once (no timeout)" test "$rc" -eq 1
says "$M: ... naming the FIFO" "$LAB_DIR/f.out" "confirm.pending: refusing: a FIFO"
table_text >"$LAB_DIR/f.after"
same "$LAB_DIR/f.before" "$LAB_DIR/f.after" "$M: ... and the table is as before (A)"
timeout 20 ip netns exec "$LAB-edge" "$FEDWALL" confirm --state-dir "$ST" \
	>"$LAB_DIR/f.out" 2>&1 </dev/null
rc=$?
ok "$M: confirm fails at once too" test "$rc" -eq 1
says "$M: ... naming it" "$LAB_DIR/f.out" "confirm.pending: refusing: a FIFO"
rm -f "$ST/confirm.pending"

# ---- the detached watchers' sanitizer reports, if any ---------------------
sleep 0.2
if ls "$SAN_DIR"/asan* >/dev/null 2>&1; then
	fail "confirm: sanitizer reports from fedwall (watchers included)"
	head -60 "$SAN_DIR"/asan* | sed 's/^/    /' >&2
else
	pass "confirm: no sanitizer report from fedwall (watchers included)"
fi
exit $SUITE_FAILED
