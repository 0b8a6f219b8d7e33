#!/bin/sh
# bench/run.sh FEDWALL - fedwall's benchmarks, every figure next to its
# baseline measured in the same run (issues 6 and 14; docs/BENCHMARKS.md
# and its rows of issue 14).  Refresh figures for two policy shapes:
# the eight-partner mix and one partner with one service.  The real-list
# rows read ../shared/data/real-lists/ (next to the repository) and say
# "skipped" without it.
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
#   BENCH_ONLY="S.." only these sections: apply mix solo over real rate
#                   daemon (default all; bench/vm.sh runs a few of them on
#                   Debian 12's own kernel, where each costs ~15x)
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
only() { [ -z "${BENCH_ONLY:-}" ] || case " $BENCH_ONLY " in *" $1 "*) ;; *) return 1 ;; esac; }
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

fresh_state() { rm -rf "$1" && mkdir -m 700 "$1"; }	# fresh_state DIR
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

# med KEY [COLUMN]: median of column (1 wall s, 2 peak RSS KB); "-" if
# none; runs that failed (exit status, column 3, not 0 or 2) do not count
med() {
	[ -s "$W/$1.dat" ] || { echo -; return; }
	awk -v c="${2:-1}" 'NF < 3 || $3 == 0 || $3 == 2 { print $c }' "$W/$1.dat" | sort -g |
		awk '{ v[NR] = $1 } END { if (!NR) print "failed (see the log)";
			else if (NR % 2) print v[(NR + 1) / 2];
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
# crow NAME COUNT TARGET: a count (commits, dumps) checked against the
# target itself, not a ratio
crow() {
	row "$1" "$2" n "" "" "$3"
}
# trow NAME KEY BASE_NAME BASE_KEY TARGET: a timing row from two keys
trow() {
	row "$1" "$(med "$2")" s "$3" "$(med "$4")" "$5" "$(med "$2" 4)" "$(med "$4" 4)"
}
fmt() {		# fmt VALUE UNIT
	case $1 in -|pending*|skipped*|failed*) echo "$1"; return ;; esac
	case $2 in
	s) awk -v v="$1" 'BEGIN { if (v < 1) printf "%.0f ms", v * 1000;
		else printf "%.2f s", v }' ;;
	KB) awk -v v="$1" 'BEGIN { printf "%.0f MB", v / 1024 }' ;;
	cps) awk -v v="$1" 'BEGIN { printf "%.0f/s", v }' ;;
	B) awk -v v="$1" 'BEGIN { printf "%.1f B/prefix", v }' ;;
	n) echo "$1" ;;
	*) echo "$1 $2" ;;
	esac
}
print_table() {
	printf '\n| measurement | fedwall | baseline | ratio | target | | CPU s fedwall / baseline |\n'
	printf '|---|---|---|---|---|---|---|\n'
	while IFS='|' read -r name v unit bname bv target cpu bcpu; do
		ratio=-; verdict=; x=×; base="$bname: $(fmt "$bv" "$unit")"
		case $v$bv in *-*|*pending*|*skipped*|*failed*) ;; *)
			ratio=$(awk -v a="$v" -v b="$bv" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
		esac
		# a count is checked itself against its target: no baseline
		[ "$unit" = n ] && { ratio=$v; x=; base=-; }
		case $v in -|pending*|skipped*|failed*) ratio=- ;; esac
		if [ "$ratio" != - ] && [ -n "$target" ]; then
			op=${target%%[0-9.]*}; lim=${target#"$op"}
			verdict=$(awk -v r="$ratio" -v l="$lim" -v op="$op" 'BEGIN {
				ok = (op == "<=") ? r <= l : r >= l; print ok ? "met" : "MISSED" }')
		fi
		case $target in "") tgt=report ;; *) tgt="$target$x" ;; esac
		case $v in pending*) verdict=pending ;; skipped*) verdict=skipped ;;
		failed*) verdict=failed ;; esac
		[ "$unit" = n ] && ratio=-
		cpus=
		[ -n "$cpu" ] && cpus=$(awk -v a="$cpu" -v b="$bcpu" 'BEGIN {
			printf "%.2f / %.2f", a, b }')
		[ "$ratio" != - ] && ratio="$ratio×"
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(fmt "$v" "$unit")" \
			"$base" "$ratio" "$tgt" "$verdict" "$cpus"
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
"$FEDWALL" generate -f "$W/one/policy.yaml" >"$W/mix-one.nft" 2>>"$W/log" || exit 1
# issue 14's one-partner, one-service shape (sip-federation, inbound)
"$HB/genpol" -1 "$BIG" "$W/s$BIG" && "$HB/genpol" -1 -c 1 "$BIG" "$W/sone" &&
	"$HB/genpol" -1 -c "$PCT" "$BIG" "$W/spct" || exit 1
"$FEDWALL" generate -f "$W/sone/policy.yaml" >"$W/solo-one.nft" 2>>"$W/log" || exit 1
"$HB/genpol" 10 "$W/p10" || exit 1
"$HB/genpol" -i "$W/ipt$IPT_N.nft" "$IPT_N" "$W/ipt-src" || exit 1
[ -d "$W/p$IPT_N" ] || "$HB/genpol" "$IPT_N" "$W/p$IPT_N" || exit 1
ELEMS=$(grep -c ' : jump ' "$W/p$BIG.nft")
echo "policies: 8 synthetic partners (+1 lab partner), $BIG prefixes -> $ELEMS map elements"
echo "  (each prefix x the port classes of its partner's services x its directions)"
echo "policies: 1 synthetic partner (sip-federation, inbound), $BIG prefixes -> $(grep -c ' : jump ' "$W/solo-one.nft") map elements"
# the apply-over-a-table policy: the mix sized to ~2x$BIG elements
AN=$(awk -v b="$BIG" -v e="$ELEMS" 'BEGIN { n = int(2 * b * b / e / 1000 + 0.5) * 1000;
	print n < 1000 ? 1000 : n }')
"$HB/genpol" "$AN" "$W/a" && "$HB/genpol" -c 1 "$AN" "$W/aone" || exit 1
"$FEDWALL" generate -f "$W/aone/policy.yaml" >"$W/aone.nft" 2>>"$W/log" || exit 1
AELEMS=$(grep -c ' : jump ' "$W/aone.nft")
ASETS=$(grep -cE '^[[:space:]]*(set|map) ' "$W/aone.nft")
echo "policies: 8 synthetic partners, $AN prefixes -> $AELEMS map elements in $ASETS sets (apply over a table)"

# ---- 1. apply into an empty namespace vs nft -f of generate's text ---------
only apply && for n in $SIZES; do
	r=$REPS
	[ "$n" -ge 1000000 ] && r=1
	progress "apply $n prefixes ($r runs each)"
	for i in $(seq "$r"); do
		# a state directory of its own, empty, as a first apply finds it
		# (never the system's /var/lib/fedwall)
		fresh_state "$W/sa$n"
		measure "apply$n" - "$FEDWALL" apply -f "$W/p$n/policy.yaml" --state-dir "$W/sa$n"
		sleep 0.5	# let the dead namespace's table be freed
		measure "nftf$n" - nft -f "$W/p$n.nft"
		sleep 0.5
	done
	tgt=
	[ "$n" -ge 100000 ] && tgt="<=0.5"
	trow "apply, $n prefixes, empty namespace ($(nruns "apply$n") runs)" "apply$n" \
		"nft -f" "nftf$n" "$tgt"
	row "  peak RSS, $n prefixes" "$(med "apply$n" 2)" KB "nft -f" "$(med "nftf$n" 2)" ""
	[ "$n" -ge 1000000 ] && echo "peak RSS of fedwall apply, $n prefixes: $(med "apply$n" 2) KB (target <= 153600 KB)"
done

# ---- 2. changes to a loaded table, per policy shape ---------------------------
# Each shape in namespaces of its own: F<tag> (fresh: apply, then refresh
# twice) and L<tag> (loaded; each run moves it between the base policy and
# a variant, so that every timed run is a real change of that size).
# The policy is always $LIVE/policy.yaml, its lists copied in.
REFRESH=apply
has refresh && REFRESH=refresh
# sync_lists POLICY_DIR: copy in the list files that differ, and only
# those, as a fetcher that rewrites a list only when it changed: a no-op
# refresh finds its files untouched (mtime and size as they were)
sync_lists() {
	for _f in "$1/lists/"*.txt; do
		cmp -s "$_f" "$LIVE/lists/${_f##*/}" || cp "$_f" "$LIVE/lists/"
	done
}
change() {	# change KEY POLICY: one timed refresh (or apply) to POLICY
	if [ $REFRESH = refresh ]; then
		sync_lists "$2"
		measure "$1" "$SNS" "$FEDWALL" refresh -f "$LIVE/policy.yaml" --state-dir "$STATE"
	else
		measure "$1" "$SNS" "$FEDWALL" apply -f "$2/policy.yaml"
	fi
}
reset_to() {	# untimed
	if [ $REFRESH = refresh ]; then
		sync_lists "$1"
		inns "$SNS" "$FEDWALL" refresh -f "$LIVE/policy.yaml" --state-dir "$STATE" >>"$W/log" 2>&1
	else
		inns "$SNS" "$FEDWALL" apply -f "$1/policy.yaml" >>"$W/log" 2>&1
	fi
}
# straced KEY NS CMD...: one untimed run, its netlink sends decoded by
# strace into $W/KEY.strace
straced() {
	_k=$1 _n=$2; shift 2
	inns "$_n" strace -f -qq -e trace=sendmsg,sendto -o "$W/$_k.strace" "$@" >>"$W/log" 2>&1
}
# commits KEY: netlink batches (transactions) sent: NFNL_MSG_BATCH_BEGIN
commits() { grep -c 'nlmsg_type=NFNL_MSG_BATCH_BEGIN' "$W/$1.strace"; }
# dumps KEY: element dump requests (reading set elements back), one per
# set of the table in a whole read-back
dumps() { grep -c 'NFT_MSG_GETSETELEM' "$W/$1.strace"; }
# batches KEY POLICY: how many commits one refresh (or apply) to POLICY sends
batches() {
	if [ $REFRESH = refresh ]; then
		sync_lists "$2"
		straced "$1" "$SNS" "$FEDWALL" refresh -f "$LIVE/policy.yaml" --state-dir "$STATE"
	else
		straced "$1" "$SNS" "$FEDWALL" apply -f "$2/policy.yaml"
	fi
	commits "$1"
}
use_shape() {	# use_shape TAG POLICY: live dir, state dir, namespace
	SNS=L$1 LIVE=$W/$1-live STATE=$W/$1-state
	rm -rf "$LIVE" && mkdir -p "$LIVE/lists" && fresh_state "$STATE"
	cp "$2/policy.yaml" "$LIVE/" && sync_lists "$2"
}
# per_prefix KEY BYTES PREFIXES: bytes per prefix into $W/KEY.dat
per_prefix() {
	awk -v b="$2" -v n="$3" 'BEGIN { printf "%.1f\n", b / n }' >"$W/$1.dat"
}
fsize() { if [ -f "$1" ]; then wc -c <"$1"; else echo 0; fi; }

# first_after_apply TAG ONE: REPS rounds in a fresh namespace each: a
# timed apply of ONE (the new table, into an empty namespace, with an
# empty state directory), then two refreshes with nothing changed: the
# first one after the apply, and an ordinary no-op one.  One more round
# under strace counts what the first refresh asks the kernel.
first_after_apply() {
	_t=$1
	sync_lists "$2"
	for i in $(seq "$REPS"); do
		ns_new "F$_t"; fresh_state "$W/$_t-fstate"
		set -- -f "$LIVE/policy.yaml" --state-dir "$W/$_t-fstate"
		measure "$_t-fresh" "F$_t" "$FEDWALL" apply "$@"
		if [ $REFRESH = refresh ]; then
			measure "$_t-first" "F$_t" "$FEDWALL" refresh "$@"
			measure "$_t-noop" "F$_t" "$FEDWALL" refresh "$@"
		fi
		ns_del "F$_t"; sleep 0.5	# let the dead namespace's table be freed
	done
	[ $REFRESH = refresh ] || return 0
	ns_new "F$_t"; fresh_state "$W/$_t-fstate"
	inns "F$_t" "$FEDWALL" apply "$@" >>"$W/log" 2>&1
	straced "$_t-first" "F$_t" "$FEDWALL" refresh "$@"
	ns_del "F$_t"
}

# shape_changes TAG LABEL BASE ONE PCT: the refresh figures of one policy
# shape (BASE and its variants with 1 and $PCT prefixes changed, $BIG
# prefixes); baseline text $W/TAG-one.nft.
shape_changes() {
	_t=$1 _l=$2
	progress "$_l: fresh apply, then the first refresh after it ($REPS rounds)"
	use_shape "$_t" "$3"
	first_after_apply "$_t" "$4"
	progress "$_l: changes to a loaded $BIG-prefix table, via fedwall $REFRESH"
	sync_lists "$3"
	ns_new "$SNS"
	reset_to "$3"
	for i in $(seq "$REPS"); do		# 1 address: base -> one -> base ...
		change "$_t-one" "$4"; change "$_t-one" "$3"
	done
	# what the state directory holds after those refreshes
	per_prefix "$_t-statesz" "$(fsize "$STATE/state")" "$BIG"
	per_prefix "$_t-cachesz" "$(fsize "$STATE/live.cache")" "$BIG"
	per_prefix "$_t-listsz" "$(cat "$3/lists/"*.txt | wc -c)" "$BIG"
	echo "$_l: after the 1-address refreshes: STATE_DIR/state $(fsize "$STATE/state") bytes, live.cache $(fsize "$STATE/live.cache") bytes ($BIG prefixes)" >"$W/$_t-sizes.txt"
	for i in $(seq "$REPS"); do
		change "$_t-none" "$3"
	done
	COMMITS_NONE=$(batches "$_t-nonestrace" "$3")
	COMMITS_ONE=$(batches "$_t-onestrace" "$4")
	DUMPS_NONE=$(dumps "$_t-nonestrace")
	DUMPS_ONE=$(dumps "$_t-onestrace")
	reset_to "$3"
	progress "$_l: 1% changed ($PCT prefixes)"
	for i in $(seq "$REPS"); do
		change "$_t-pct" "$5"; change "$_t-pct" "$3"
	done
	[ "$_t" = mix ] && readback_plan "$3"
	progress "$_l: baseline: nft -f of the new text into the loaded namespace"
	for i in $(seq "$REPS"); do
		measure "$_t-nftnew" "$SNS" nft -f "$W/$_t-one.nft"
	done
	ns_del "$SNS"
	shape_rows "$_t" "$_l"
}

# readback_plan BASE: plan on the loaded, unchanged table (it always reads
# the whole table back) against nft list table; and what a change of each
# size does in the kernel, in plan's words
readback_plan() {
	for i in $(seq "$REPS"); do
		measure plan "$SNS" "$FEDWALL" plan -f "$1/policy.yaml" --state-dir "$STATE"
	done
	progress "read-back baseline: nft list table ($LIST_REPS runs)"
	for i in $(seq "$LIST_REPS"); do
		measure nftlist "$SNS" nft list table inet fedwall
	done
	for v in one pct; do
		echo "plan of the $v variant against the loaded base:" >"$W/plan-$v.txt"
		inns "$SNS" "$FEDWALL" plan -f "$W/$v/policy.yaml" --state-dir "$STATE" 2>&1 |
			grep -v '^ *[+-] ' |
			head -6 | sed 's/^/  /' >>"$W/plan-$v.txt"
	done
}

shape_rows() {	# shape_rows TAG LABEL
	_t=$1 _l=$2 lbl=$REFRESH
	[ $REFRESH = apply ] && lbl="apply (no refresh yet)"
	trow "$_l: $lbl, 1 address changed of $BIG ($(nruns "$_t-one") runs)" "$_t-one" \
		"nft -f new text" "$_t-nftnew" "<=0.05"
	trow "$_l:   the same" "$_t-one" "fresh fedwall apply" "$_t-fresh" "<=0.15"
	trow "$_l: $lbl, $PCT prefixes (1%) changed" "$_t-pct" "nft -f new text" "$_t-nftnew" "<=0.1"
	trow "$_l: $lbl, nothing changed" "$_t-none" "nft -f new text" "$_t-nftnew" "<=0.03"
	crow "$_l:   commits sent by a no-op $lbl" "$COMMITS_NONE" "<=0"
	if [ $REFRESH = refresh ]; then
		trow "$_l: first refresh after apply, nothing changed" "$_t-first" \
			"no-op refresh after it" "$_t-noop" "<=1.2"
		crow "$_l:   element dumps requested by that first refresh" \
			"$(dumps "$_t-first")" "<=0"
	else
		row "$_l: first refresh after apply, nothing changed" \
			"pending (no fedwall refresh in this build)" s "no-op refresh" - "<=1.2"
	fi
	row "$_l:   peak RSS, $lbl 1 address changed" "$(med "$_t-one" 2)" KB \
		"nft -f" "$(med "$_t-nftnew" 2)" ""
	row "$_l:   STATE_DIR/state after those runs, per prefix" "$(med "$_t-statesz")" \
		B "list text" "$(med "$_t-listsz")" ""
	row "$_l:   STATE_DIR/live.cache after those runs, per prefix" "$(med "$_t-cachesz")" \
		B "list text" "$(med "$_t-listsz")" ""
	[ "$_t" = mix ] && trow "fedwall plan, unchanged $BIG table (read back + diff)" plan \
		"nft list table" nftlist ""
	echo "$_l: commits sent (netlink batches, strace): nothing changed: $COMMITS_NONE, 1 address changed: $COMMITS_ONE"
	echo "$_l: set element dumps requested (read-backs): nothing changed: $DUMPS_NONE, 1 address changed: $DUMPS_ONE"
	cat "$W/$_t-sizes.txt"
	[ "$_t" = mix ] && cat "$W/plan-one.txt" "$W/plan-pct.txt"
	return 0
}

only mix && shape_changes mix "8 partners" "$W/p$BIG" "$W/one" "$W/pct"
only solo && shape_changes solo "1 partner" "$W/s$BIG" "$W/sone" "$W/spct"

# ---- 2b. apply over an existing table ------------------------------------------
# A namespace loaded (by apply, with a state directory) with the
# eight-partner mix sized to ~2x$BIG elements; each timed apply is a
# real change (1 address, back and forth), with the live table's cache
# valid, then with it removed before each run.
apply_over() {
	SNS=Aover STATE=$W/aover-state
	fresh_state "$STATE"
	ns_new "$SNS"
	set -- --state-dir "$STATE"
	inns "$SNS" "$FEDWALL" apply -f "$W/a/policy.yaml" "$@" >>"$W/log" 2>&1
	for i in $(seq "$REPS"); do
		measure aover "$SNS" "$FEDWALL" apply -f "$W/aone/policy.yaml" "$@"
		measure aover "$SNS" "$FEDWALL" apply -f "$W/a/policy.yaml" "$@"
	done
	for i in $(seq "$REPS"); do
		rm -f "$STATE/live.cache"
		measure aovernc "$SNS" "$FEDWALL" apply -f "$W/aone/policy.yaml" "$@"
		rm -f "$STATE/live.cache"
		measure aovernc "$SNS" "$FEDWALL" apply -f "$W/a/policy.yaml" "$@"
	done
	straced aover-cache "$SNS" "$FEDWALL" apply -f "$W/aone/policy.yaml" "$@"
	rm -f "$STATE/live.cache"
	straced aover-nocache "$SNS" "$FEDWALL" apply -f "$W/a/policy.yaml" "$@"
	for i in $(seq "$REPS"); do
		measure aovernft "$SNS" nft -f "$W/aone.nft"
	done
	ns_del "$SNS"
	_d=$(dumps aover-nocache)
	trow "apply over an existing $AELEMS-element table, 1 address changed, valid cache" \
		aover "nft -f new text" aovernft ""
	trow "  the same, live.cache removed before each run" aovernc \
		"nft -f new text" aovernft ""
	crow "  set element dumps with a valid cache" "$(dumps aover-cache)" "<=0"
	crow "  read-backs with live.cache removed ($_d dumps, $ASETS sets a read-back)" \
		"$(awk -v d="$_d" -v s="$ASETS" 'BEGIN { printf "%g", d / s }')" "<=1"
}
only over && progress "apply over an existing $AELEMS-element table ($AN prefixes)" &&
	apply_over

# ---- 2c. real published lists ------------------------------------------------------
# One partner whose list is a cloud provider's published ranges: applied
# with the older list into a fresh namespace, the list replaced by the
# newer one, then a timed refresh; against a fresh apply of the newer
# list into an empty namespace.  Only ever loaded into tables in the
# bench's own namespaces: never traffic targets.
REAL=$(cd "$SRC/../.." && pwd)/shared/data/real-lists
real_pair() {	# real_pair TAG OLD NEW TARGET
	_t=$1 _rp=$W/real-$1
	if [ ! -r "$REAL/$2" ] || [ ! -r "$REAL/$3" ]; then
		row "real lists, $1: refresh $2 -> $3" "skipped (no $REAL/$2 or $3)" s \
			"fresh apply" - "$4"
		return 0
	fi
	if [ $REFRESH != refresh ]; then
		row "real lists, $1" "pending (no fedwall refresh in this build)" s "fresh apply" - "$4"
		return 0
	fi
	mkdir -p "$_rp/lists"
	real_policy >"$_rp/policy.yaml"
	set -- "$@" "$(grep -v '^#' "$REAL/$3" | grep -c .)" \
		"$(real_changed "$REAL/$2" "$REAL/$3")"
	progress "real lists, $_t: $2 -> $3 ($REPS rounds)"
	for i in $(seq "$REPS"); do
		ns_new "R$_t"; fresh_state "$_rp/state"
		cp "$REAL/$2" "$_rp/lists/real.txt"
		inns "R$_t" "$FEDWALL" apply -f "$_rp/policy.yaml" --state-dir "$_rp/state" >>"$W/log" 2>&1
		cp "$REAL/$3" "$_rp/lists/real.txt"
		measure "real-$_t" "R$_t" "$FEDWALL" refresh -f "$_rp/policy.yaml" --state-dir "$_rp/state"
		ns_del "R$_t"; fresh_state "$_rp/state"
		measure "realfresh-$_t" - "$FEDWALL" apply -f "$_rp/policy.yaml" --state-dir "$_rp/state"
		sleep 0.5
	done
	trow "real lists, $_t: refresh after apply, list $2 -> $3 ($6 prefixes changed of $5)" \
		"real-$_t" "fresh apply of the new list" "realfresh-$_t" "$4"
}
real_policy() {
	cat <<-'EOP'
	# bench/run.sh: one partner with a cloud provider's published list;
	# AWS publishes adjacent IPv6 blocks that join wider than the default /32
	version: 1
	partners:
	  cloud:
	    description: a partner hosted in a public cloud
	    services: [sip-federation]
	    direction: inbound
	    lists: [lists/real.txt]
	guards:
	  min_prefix_v6: 24
	management:
	  - {from: 192.0.2.0/24, to: tcp/22}
	EOP
}
real_changed() {	# real_changed OLD NEW: prefixes in one list only
	grep -v '^#' "$1" | grep . | sort -u >"$W/real.old"
	grep -v '^#' "$2" | grep . | sort -u >"$W/real.new"
	comm -3 "$W/real.old" "$W/real.new" | wc -l
}
only real && real_pair azure azure-2025-05-04.txt azure-2025-06-21.txt "<=0.3"
only real && real_pair aws aws-2025-06-21.txt aws-2025-07-04.txt ""

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
		inns "e$1" "$FEDWALL" apply -f "$W/p$3/policy.yaml" --state-dir "$W/se$1" \
			>>"$W/log" 2>&1 || return 1
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
only rate || RATE_CFGS=
[ -n "$RATE_CFGS" ] && progress "new-connection rate ($RATE_SECS s loads, $REPS rounds, interleaved)"
rate_ok=1
for cfg in $RATE_CFGS; do
	rate_lab "$cfg" "${cfg%-*}" "${cfg#*-}" || { rate_ok=0; say "bench: rate lab $cfg failed"; }
done
if [ $rate_ok = 1 ] && [ -n "$RATE_CFGS" ]; then
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
if ! only daemon; then
	:
elif has daemon; then
	progress "daemon RSS over $DREFRESH refreshes"
	daemon_rss || row "fedwall daemon RSS after $DREFRESH refreshes" "-" KB "first" - "<=1.1"
else
	row "fedwall daemon RSS after 100 refreshes vs after the first" \
		"pending (no fedwall daemon in this build)" KB "first" - "<=1.1"
fi

print_table
echo
echo "total bench time: $(elapsed) s"
