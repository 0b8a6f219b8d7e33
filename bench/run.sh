#!/bin/sh
# bench/run.sh FEDWALL - fedwall's benchmarks, every figure next to its
# baseline measured in the same run (issue 6; docs/BENCHMARKS.md).
#
# Root only; everything happens in network namespaces this script creates
# (ip netns fwb<pid>-*, or unshare -n) and in a scratch directory, both
# removed at exit.  Timings are wall-clock of whole processes and peak
# RSS (bench/runstat: wait4's ru_maxrss), medians over $REPS runs.
#
# Environment:
#   BENCH_QUICK=1   smoke run: small sizes, 2 repetitions, 1 s loads (~1 min)
#   BENCH_1M=0      leave out the 1M-prefix apply (one run of each tool:
#                   ~25 s fedwall, ~2-3 minutes and ~4.5 GB for nft -f)
#   BENCH_REPS=N    repetitions (default 5, quick 2)
#   BENCH_KEEP=1    keep the scratch directory (its path is printed)
#   CC              compiler for the helpers (default cc)
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: bench/run.sh path/to/fedwall" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (network namespaces, nftables)" >&2
	exit 1
fi
for c in nft ip unshare strace awk; do
	command -v $c >/dev/null 2>&1 || { echo "bench: needs $c" >&2; exit 1; }
done

FEDWALL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$(dirname "$0")" && pwd)
HB=$(dirname "$FEDWALL")/bench		# helper binaries
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	REPS=${BENCH_REPS:-2}; BIG=10000; SIZES="1000 10000"; RATE_SECS=1
	IPT_N=1000; LIST_REPS=1
else
	REPS=${BENCH_REPS:-5}; BIG=100000; SIZES="1000 10000 100000"; RATE_SECS=3
	IPT_N=10000; LIST_REPS=2
fi
[ "$QUICK" != 1 ] && [ "${BENCH_1M:-1}" = 1 ] && SIZES="$SIZES 1000000"
PCT=$((BIG / 100))
NS=fwb$$
W=$(mktemp -d "${TMPDIR:-/tmp}/fwbench.XXXXXX")
T0=$(date +%s)
NSLIST=
PIDS=

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for n in $NSLIST; do
		for p in $(ip netns pids "$NS-$n" 2>/dev/null); do kill "$p" 2>/dev/null; done
	done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	for n in $NSLIST; do ip netns del "$NS-$n" 2>/dev/null; done
	NSLIST=; PIDS=
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: scratch kept in $W"
	else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'cleanup; trap - EXIT; exit 130' INT TERM HUP PIPE

say() { printf '%s\n' "$*" >&2; }
elapsed() { echo $(( $(date +%s) - T0 )); }
progress() { say "[$(elapsed) s] $*"; }

# ---- helpers: built next to fedwall, standalone C ------------------------
mkdir -p "$HB"
for h in genpol runstat connload; do
	if [ ! -x "$HB/$h" ] || [ "$SRC/$h.c" -nt "$HB/$h" ]; then
		${CC:-cc} -O2 -g -std=gnu11 -Wall -Wextra -o "$HB/$h" "$SRC/$h.c" ||
			{ say "bench: cannot build $h"; exit 1; }
	fi
done
RUNSTAT=$HB/runstat

has() { "$FEDWALL" --help 2>/dev/null | grep -q "^  $1 "; }

ns_new() {		# ns_new NAME: fresh namespace, lo up
	ip netns add "$NS-$1" || exit 1
	NSLIST="$NSLIST $1"
	ip -n "$NS-$1" link set lo up
}
ns_del() {	# kills what still runs inside first
	for _p in $(ip netns pids "$NS-$1" 2>/dev/null); do kill "$_p" 2>/dev/null; done
	ip netns del "$NS-$1" 2>/dev/null
	NSLIST=$(echo "$NSLIST" | sed "s/ $1\b//")
}
inns() { _n=$1; shift; ip netns exec "$NS-$_n" "$@"; }

# measure KEY NS CMD...: one timed run, appended to $W/KEY.dat; the
# command's output goes to $W/log.  NS "-": a fresh `unshare -n` each time.
measure() {
	_k=$1 _n=$2; shift 2
	echo "== $_k: $*" >>"$W/log"
	if [ "$_n" = - ]; then
		unshare -n "$RUNSTAT" "$W/$_k.dat" "$@" >>"$W/log" 2>&1
	else
		inns "$_n" "$RUNSTAT" "$W/$_k.dat" "$@" >>"$W/log" 2>&1
	fi
	_rc=$?
	[ $_rc -eq 0 ] || [ $_rc -eq 2 ] || say "bench: $_k: exit $_rc (see log)"
}

# med KEY [COLUMN]: median of column (1 wall s, 2 peak RSS KB); "-" if none
med() {
	[ -s "$W/$1.dat" ] || { echo -; return; }
	awk -v c="${2:-1}" '{ print $c }' "$W/$1.dat" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
nruns() { [ -s "$W/$1.dat" ] && wc -l <"$W/$1.dat" || echo 0; }

# ---- the table -------------------------------------------------------------
ROWS=$W/rows
: >"$ROWS"
# row NAME VALUE UNIT BASE_NAME BASE_VALUE TARGET(ratio op, e.g. "<=0.5")
#     [CPU BASE_CPU]: median CPU seconds (user+sys) of both, as context
row() {
	echo "$1|$2|$3|$4|$5|$6|${7:-}|${8:-}" >>"$ROWS"
}
# trow NAME KEY BASE_NAME BASE_KEY TARGET: a timing row from two keys
trow() {
	row "$1" "$(med "$2")" s "$3" "$(med "$4")" "$5" "$(med "$2" 4)" "$(med "$4" 4)"
}
fmt() {		# fmt VALUE UNIT
	case $1 in -|pending*) echo "$1"; return ;; esac
	case $2 in
	s) awk -v v="$1" 'BEGIN { if (v < 1) printf "%.0f ms", v * 1000;
		else printf "%.2f s", v }' ;;
	KB) awk -v v="$1" 'BEGIN { printf "%.0f MB", v / 1024 }' ;;
	cps) awk -v v="$1" 'BEGIN { printf "%.0f/s", v }' ;;
	*) echo "$1 $2" ;;
	esac
}
print_table() {
	printf '\n| measurement | fedwall | baseline | ratio | target | | CPU s fedwall / baseline |\n'
	printf '|---|---|---|---|---|---|---|\n'
	while IFS='|' read -r name v unit bname bv target cpu bcpu; do
		ratio=-; verdict=
		case $v$bv in *-*|*pending*) ;; *)
			ratio=$(awk -v a="$v" -v b="$bv" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
		esac
		if [ "$ratio" != - ] && [ -n "$target" ]; then
			op=${target%%[0-9.]*}; lim=${target#"$op"}
			verdict=$(awk -v r="$ratio" -v l="$lim" -v op="$op" 'BEGIN {
				ok = (op == "<=") ? r <= l : r >= l; print ok ? "met" : "MISSED" }')
		fi
		case $target in "") tgt=report ;; *) tgt="$target×" ;; esac
		case $v in pending*) verdict=pending ;; esac
		cpus=
		[ -n "$cpu" ] && cpus=$(awk -v a="$cpu" -v b="$bcpu" 'BEGIN {
			printf "%.2f / %.2f", a, b }')
		printf '| %s | %s | %s: %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$v" "$unit")" \
			"$bname" "$(fmt "$bv" "$unit")" "${ratio}×" "$tgt" "$verdict" "$cpus"
	done <"$ROWS"
}

# ---- header ------------------------------------------------------------------
cat <<EOF
# fedwall benchmark $(date -u +%Y-%m-%dT%H:%MZ)
machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), $(nft --version)
source: $(git -C "$SRC" log -1 --format='%h %cd' --date=short 2>/dev/null || echo unknown)$(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (working tree modified)')
fedwall: $FEDWALL ($("$FEDWALL" --version)), commands: $("$FEDWALL" --help | awk '/^  [a-z]/ { printf "%s ", $1 }')
load average at start: $(cut -d' ' -f1-3 /proc/loadavg)   (anything above ~0.5 on an idle machine means the figures are noisy)
mode: $([ "$QUICK" = 1 ] && echo "QUICK (smoke run, not for the record)" || echo full), $REPS repetitions, medians
EOF

# ---- policies ------------------------------------------------------------------
progress "generating policies"
for n in $SIZES; do
	"$HB/genpol" "$n" "$W/p$n" || exit 1
	"$FEDWALL" generate -f "$W/p$n/policy.yaml" >"$W/p$n.nft" 2>>"$W/log" || {
		say "bench: fedwall generate failed for $n prefixes"; exit 1; }
done
"$HB/genpol" -c 1 "$BIG" "$W/one" && "$HB/genpol" -c "$PCT" "$BIG" "$W/pct" || exit 1
"$FEDWALL" generate -f "$W/one/policy.yaml" >"$W/one.nft" 2>>"$W/log" || exit 1
"$HB/genpol" 10 "$W/p10" || exit 1
"$HB/genpol" -i "$W/ipt$IPT_N.nft" "$IPT_N" "$W/ipt-src" || exit 1
[ -d "$W/p$IPT_N" ] || "$HB/genpol" "$IPT_N" "$W/p$IPT_N" || exit 1
ELEMS=$(grep -c ' : jump ' "$W/p$BIG.nft")
echo "policies: 8 synthetic partners (+1 lab partner), $BIG prefixes -> $ELEMS map elements"
echo "  (each prefix x the port classes of its partner's services x its directions)"

# ---- 1. apply into an empty namespace vs nft -f of generate's text ---------
for n in $SIZES; do
	r=$REPS
	[ "$n" -ge 1000000 ] && r=1
	progress "apply $n prefixes ($r runs each)"
	for i in $(seq "$r"); do
		measure "apply$n" - "$FEDWALL" apply -f "$W/p$n/policy.yaml"
		sleep 0.5	# let the dead namespace's table be freed
		measure "nftf$n" - nft -f "$W/p$n.nft"
		sleep 0.5
	done
	tgt=
	[ "$n" -ge 100000 ] && tgt="<=0.5"
	trow "apply, $n prefixes, empty namespace ($(nruns apply$n) runs)" "apply$n" \
		"nft -f" "nftf$n" "$tgt"
	row "  peak RSS, $n prefixes" "$(med apply$n 2)" KB "nft -f" "$(med nftf$n 2)" ""
	[ "$n" -ge 1000000 ] && echo "peak RSS of fedwall apply, $n prefixes: $(med apply$n 2) KB (target <= 153600 KB)"
done

# ---- 2. changes to a loaded table ---------------------------------------------
# A loaded namespace; each run moves it between the base policy and a
# variant, so that every timed run is a real change of that size.
REFRESH=apply
has refresh && REFRESH=refresh
STATE=$W/state
mkdir -p "$STATE"
change() {	# change KEY POLICY: one timed refresh (or apply) to POLICY
	if [ $REFRESH = refresh ]; then
		cp "$2/lists/"*.txt "$W/live/lists/"
		measure "$1" big "$FEDWALL" refresh -f "$W/live/policy.yaml" --state-dir "$STATE"
	else
		measure "$1" big "$FEDWALL" apply -f "$2/policy.yaml"
	fi
}
reset_to() {	# untimed
	if [ $REFRESH = refresh ]; then
		cp "$1/lists/"*.txt "$W/live/lists/"
		inns big "$FEDWALL" refresh -f "$W/live/policy.yaml" --state-dir "$STATE" >>"$W/log" 2>&1
	else
		inns big "$FEDWALL" apply -f "$1/policy.yaml" >>"$W/log" 2>&1
	fi
}
# batches KEY POLICY: how many netlink batches (commits) one run sends,
# counted by strace's decoding of NFNL_MSG_BATCH_BEGIN.
batches() {
	if [ $REFRESH = refresh ]; then
		cp "$2/lists/"*.txt "$W/live/lists/"
		inns big strace -f -qq -e trace=sendmsg,sendto -o "$W/$1.strace" \
			"$FEDWALL" refresh -f "$W/live/policy.yaml" --state-dir "$STATE" >>"$W/log" 2>&1
	else
		inns big strace -f -qq -e trace=sendmsg,sendto -o "$W/$1.strace" \
			"$FEDWALL" apply -f "$2/policy.yaml" >>"$W/log" 2>&1
	fi
	grep -c 'nlmsg_type=NFNL_MSG_BATCH_BEGIN' "$W/$1.strace"
}
# dumps KEY: element dump requests (reading set elements back) in the
# strace batches() recorded
dumps() { grep -c 'NFT_MSG_GETSETELEM' "$W/$1.strace"; }

progress "changes to a loaded $BIG-prefix table, via fedwall $REFRESH"
mkdir -p "$W/live/lists"
cp "$W/p$BIG/policy.yaml" "$W/live/" && cp "$W/p$BIG/lists/"*.txt "$W/live/lists/"
ns_new big
reset_to "$W/p$BIG"
for i in $(seq "$REPS"); do		# 1 address: base -> one -> base ...
	change one "$W/one"; change one "$W/p$BIG"
done
for i in $(seq "$REPS"); do
	change none "$W/p$BIG"
done
for i in $(seq "$REPS"); do
	measure plan big "$FEDWALL" plan -f "$W/p$BIG/policy.yaml"
done
progress "read-back baseline: nft list table ($LIST_REPS runs)"
for i in $(seq "$LIST_REPS"); do
	measure nftlist big nft list table inet fedwall
done
# what a change of each size does in the kernel, in plan's words
for v in one pct; do
	echo "plan of the $v variant against the loaded base:" >"$W/plan-$v.txt"
	inns big "$FEDWALL" plan -f "$W/$v/policy.yaml" 2>&1 | grep -v '^ *[+-] ' |
		head -6 | sed 's/^/  /' >>"$W/plan-$v.txt"
done
COMMITS_NONE=$(batches nonestrace "$W/p$BIG")
COMMITS_ONE=$(batches onestrace "$W/one")
DUMPS_NONE=$(dumps nonestrace)
DUMPS_ONE=$(dumps onestrace)
reset_to "$W/p$BIG"
progress "1% changed ($PCT prefixes)"
for i in $(seq "$REPS"); do
	change pct "$W/pct"; change pct "$W/p$BIG"
done
progress "baseline: nft -f of the new text into the loaded namespace"
for i in $(seq "$REPS"); do
	measure nftnew big nft -f "$W/one.nft"
done
ns_del big

lbl=$REFRESH
[ $REFRESH = apply ] && lbl="apply (no refresh yet)"
trow "$lbl, 1 address changed of $BIG ($(nruns one) runs)" one "nft -f new text" nftnew "<=0.05"
trow "$lbl, $PCT prefixes (1%) changed" pct "nft -f new text" nftnew "<=0.3"
trow "$lbl, nothing changed" none "nft -f new text" nftnew "<=0.05"
row "  peak RSS, 1 address changed" "$(med one 2)" KB "nft -f" "$(med nftnew 2)" ""
trow "fedwall plan, unchanged $BIG table (read back + diff)" plan "nft list table" nftlist ""
echo "commits sent (netlink batches, strace): nothing changed: $COMMITS_NONE, 1 address changed: $COMMITS_ONE"
echo "set element dumps requested (read-backs): nothing changed: $DUMPS_NONE, 1 address changed: $DUMPS_ONE"
cat "$W/plan-one.txt" "$W/plan-pct.txt"

# ---- 3. new-connection rate through veth --------------------------------------
# edge (203.0.113.10, fedwall or the iptables-style table) <-veth-> client
# (198.51.100.11, the policy's `lab` partner).  connload keeps 32 TCP
# handshakes in flight, resetting each as soon as it completes.
rate_lab() {	# rate_lab TAG KIND N: namespaces eTAG (edge) and cTAG (client)
	ns_new "e$1" && ns_new "c$1" || return 1
	ip -n "$NS-e$1" link add eth0 type veth peer name eth0 netns "$NS-c$1"
	ip -n "$NS-e$1" link set eth0 up
	ip -n "$NS-c$1" link set eth0 up
	ip -n "$NS-e$1" addr add 203.0.113.10/24 dev eth0
	ip -n "$NS-c$1" addr add 198.51.100.11/24 dev eth0
	ip -n "$NS-e$1" route add 198.51.100.0/24 dev eth0
	ip -n "$NS-c$1" route add 203.0.113.0/24 dev eth0
	if [ "$2" = ipt ]; then
		inns "e$1" nft -f "$W/ipt$3.nft" || return 1
	else
		inns "e$1" "$FEDWALL" apply -f "$W/p$3/policy.yaml" >>"$W/log" 2>&1 || return 1
	fi
	ip netns exec "$NS-e$1" "$HB/connload" serve 203.0.113.10 5061 >"$W/serve.$1" 2>&1 &
	PIDS="$PIDS $!"
	for _i in $(seq 100); do
		grep -q ready "$W/serve.$1" 2>/dev/null && return 0
		sleep 0.05
	done
	say "bench: connload serve did not start"; cat "$W/serve.$1" >&2
	return 1
}

RATE_CFGS="fw-10 fw-$BIG fw-$IPT_N ipt-$IPT_N"
progress "new-connection rate ($RATE_SECS s loads, $REPS rounds, interleaved)"
rate_ok=1
for cfg in $RATE_CFGS; do
	rate_lab "$cfg" "${cfg%-*}" "${cfg#*-}" || { rate_ok=0; say "bench: rate lab $cfg failed"; }
done
if [ $rate_ok = 1 ]; then
	for i in $(seq "$REPS"); do
		for cfg in $RATE_CFGS; do
			inns "c$cfg" "$HB/connload" run -c 32 -d "$RATE_SECS" 203.0.113.10 5061 \
				>>"$W/rate-$cfg.rate" 2>>"$W/log"
		done
	done
	for f in "$W"/rate-*.rate; do
		awk '{ print $3, $4 }' "$f" >"${f%.rate}.dat"	# conns/s, failed
	done
	for cfg in $RATE_CFGS; do
		echo "rate $cfg, connections/s per round: $(awk '{ printf "%s ", $1 }' "$W/rate-$cfg.dat")"
	done
	row "new connections/s, $BIG prefixes" "$(med rate-fw-$BIG)" cps \
		"10 prefixes" "$(med rate-fw-10)" ">=0.9"
	row "new connections/s, $IPT_N prefixes as one rule per address" \
		"$(med rate-ipt-$IPT_N)" cps "fedwall, $IPT_N prefixes" "$(med rate-fw-$IPT_N)" ""
	echo "failed connects (sum over runs): $(cat "$W"/rate-*.dat | awk '{ s += $2 } END { print s + 0 }')"
fi
for cfg in $RATE_CFGS; do ns_del "e$cfg"; ns_del "c$cfg"; done

# ---- 4. daemon RSS ------------------------------------------------------------
# The daemon in the foreground in its own namespace on the $BIG-prefix
# policy; each SIGHUP reloads and refreshes at once.  The list flips
# between the base and the one-address variant, so every refresh is a
# real change and logs one "partner ...: +1 -1" line, which is how the
# script knows a cycle finished.  RSS from /proc/PID/status.
DREFRESH=100
[ "$QUICK" = 1 ] && DREFRESH=10
daemon_rss() {
	ns_new dmn
	rm -rf "$W/dstate" "$W/live"; mkdir -p "$W/dstate" "$W/live/lists"
	cp "$W/p$BIG/policy.yaml" "$W/live/" && cp "$W/p$BIG/lists/"*.txt "$W/live/lists/"
	touch -d @1500000000 "$W/live/lists/"*.txt
	: >"$W/daemon.log"
	# not through inns: $! must be the daemon itself (ip execs it)
	ip netns exec "$NS-dmn" "$FEDWALL" daemon -d -f "$W/live/policy.yaml" \
		--state-dir "$W/dstate" >"$W/daemon.log" 2>&1 &
	DPID=$!
	PIDS="$PIDS $DPID"
	wait_lines() {	# wait_lines PATTERN COUNT: up to 60 s
		_t=0
		while [ "$(grep -c "$1" "$W/daemon.log")" -lt "$2" ]; do
			sleep 0.05; _t=$((_t + 1))
			if [ $_t -gt 1200 ] || ! kill -0 "$DPID" 2>/dev/null; then
				say "bench: daemon: no '$1' #$2"; sed 's/^/    /' "$W/daemon.log" | tail -5 >&2
				return 1
			fi
		done
	}
	rss() { awk '/^VmRSS/ { print $2 }' "/proc/$DPID/status"; }
	# the first refresh: the table created from the lists
	wait_lines 'table created' 1 || return 1
	sleep 0.2
	RSS1=$(rss)
	for i in $(seq "$DREFRESH"); do
		if [ $((i % 2)) = 1 ]; then src=$W/one; else src=$W/p$BIG; fi
		# one fixed mtime: the daemon's own mtime poll never fires, so
		# each flip is exactly one refresh, the one the HUP starts
		cp "$src/lists/"*.txt "$W/live/lists/"
		touch -d @1500000000 "$W/live/lists/"*.txt
		kill -HUP "$DPID"
		wait_lines 'reloaded' "$i" && wait_lines '+1 -1 address' "$i" || return 1
		# sampled as the last one is: once the cycle is over (the
		# line above comes from inside it)
		[ "$i" = 1 ] && sleep 0.2 && RSS2=$(rss)
	done
	sleep 0.2
	RSSN=$(rss)
	HWM=$(awk '/^VmHWM/ { print $2 }' "/proc/$DPID/status")
	kill "$DPID"; wait "$DPID" 2>/dev/null
	CYCLES=$(sed -n 's/.*stopping after \([0-9]*\) refreshes.*/\1/p' "$W/daemon.log")
	PIDS=$(echo "$PIDS" | sed "s/ $DPID\b//")
	ns_del dmn
	row "fedwall daemon RSS after $DREFRESH refreshes ($BIG prefixes)" "$RSSN" KB \
		"after the first" "$RSS2" "<=1.1"
	echo "daemon: $CYCLES refresh cycles in all; RSS after start $RSS1 KB, after refresh 1 $RSS2 KB, after $DREFRESH: $RSSN KB, peak (VmHWM) $HWM KB"
}
if has daemon; then
	progress "daemon RSS over $DREFRESH refreshes"
	daemon_rss || row "fedwall daemon RSS after $DREFRESH refreshes" "-" KB "first" - "<=1.1"
else
	row "fedwall daemon RSS after 100 refreshes vs after the first" \
		"pending (no fedwall daemon in this build)" KB "first" - "<=1.1"
fi

print_table
echo
echo "total bench time: $(elapsed) s"
