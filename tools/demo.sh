#!/bin/sh
# tools/demo.sh FEDWALL - `make demo`: fedwall's main job, shown with real
# packets in a throwaway set of network namespaces.  Root, nothing else.
#
# The policy is a lab twin of examples/msn-pic.yaml: the real (historical)
# MSN addresses are replaced by documentation addresses, so that the lab
# hosts playing MSN never carry a real Internet address.
set -u
FEDWALL=${1:-build/fedwall}
. "$(dirname "$0")/../tests/lib.sh"
. "$TOP/tests/lab/labrc.sh"

EXAMPLE=$TOP/examples/msn-pic.yaml
E4=203.0.113.10
STRANGER=198.51.100.99
OPS=192.0.2.22

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
indent() { sed 's/^/    /'; }
die() { say "demo: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, nftables)"
[ -x "$FEDWALL" ] || die "no $FEDWALL: run make first"
if [ ! -x "$PROBE" ]; then	# make demo builds fedwall only
	make -s -C "$TOP" BUILD="$(dirname "$FEDWALL")" "$PROBE" >/dev/null ||
		die "cannot build $PROBE"
fi
why=$(lab_require) || die "cannot run the lab: $why"
lab_init

# twin FILE: the policy with every non-documentation IPv4 address replaced
# by 198.51.100.101, .102, ... in order of appearance; prints the mapping.
twin() {
	_map=$LAB_DIR/map.sed
	: >"$_map"
	_i=100
	for _a in $(grep -v '^[[:space:]]*#' "$1" |
		grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}(/[0-9]+)?' | awk '!seen[$0]++'); do
		case $_a in
		192.0.2.*|198.51.100.*|203.0.113.*) continue ;;
		*/*) die "$1: prefix $_a: the demo maps single addresses only" ;;
		esac
		_i=$((_i + 1))
		printf '    %-15s -> 198.51.100.%s\n' "$_a" "$_i" >>"$LAB_DIR/map.txt"
		printf 's/\\<%s\\>/198.51.100.%s/g\n' \
			"$(echo "$_a" | sed 's/\./\\./g')" "$_i" >>"$_map"
	done
	sed -f "$_map" "$1"
}

say "fedwall demo: an Edge server open to its federation partner (MSN), closed"
say "to everybody else, proven with real TCP in throwaway network namespaces."
say "Lab addresses come from the documentation ranges only; no packet leaves"
say "the lab."

step "Lab policy: a twin of examples/msn-pic.yaml"
say "The example lists MSN's real (historical) addresses; in the lab those are"
say "replaced by documentation addresses:"
twin "$EXAMPLE" >"$LAB_DIR/msn-pic-lab.yaml"
cat "$LAB_DIR/map.txt"
POLICY=$LAB_DIR/msn-pic-lab.yaml
if grep -v '^[[:space:]]*#' "$POLICY" | grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}' |
	grep -vqE '^(192\.0\.2|198\.51\.100|203\.0\.113)\.'; then
	die "the lab policy still holds a non-documentation address"
fi
MSN1=198.51.100.101
say
say "msn-pic-lab.yaml, without its comments:"
grep -v '^[[:space:]]*#' "$POLICY" | grep -v '^[[:space:]]*$' | indent

step "fedwall check -f msn-pic-lab.yaml"
if "$FEDWALL" check -f "$POLICY" >"$LAB_DIR/check.out" 2>&1; then
	indent <"$LAB_DIR/check.out"
	say "policy OK"
else
	indent <"$LAB_DIR/check.out"
	die "fedwall check refused the policy"
fi

step "The lab"
lab_core || die "cannot build the namespaces"
lab_host msn1 $MSN1/24 2001:db8:51::101/64 &&
lab_host stranger $STRANGER/24 2001:db8:51::99/64 &&
lab_host ops $OPS/24 2001:db8:2::22/64 || die "cannot build the namespaces"
cat <<EOF
    msn1      $MSN1  MSN server #1 of the lab policy ─┐
    stranger  $STRANGER   in no partner list              ─┼─ switch ── router ── edge $E4
    ops       $OPS      operations network              ─┘           (the Edge server, fedwall runs here)
EOF
lab_serve edge -4 tcp 5061 22 && lab_serve msn1 -4 tcp 5061 &&
	lab_serve stranger -4 tcp 5061 || die "cannot start the test servers"
say "Servers listening: edge tcp/5061 (SIP federation) and tcp/22 (ssh);"
say "msn1 and stranger tcp/5061."

step "What fedwall would change on the edge"
if lab_has plan; then
	say "fedwall plan -f msn-pic-lab.yaml:"
	lab_exec edge "$FEDWALL" plan -f "$POLICY" \
		--state-dir "$LAB_DIR/state" 2>&1 | indent
else
	say "(no 'fedwall plan' in this build yet: showing the ruleset it would load,"
	say " fedwall generate -f msn-pic-lab.yaml)"
	"$FEDWALL" generate -f "$POLICY" --state-dir "$LAB_DIR/state" 2>&1 | indent
fi

step "Apply ($(lab_apply_how))"
lab_apply "$POLICY" edge || die "the policy did not load"
indent <"$LAB_DIR/apply.out"
say "loaded into the edge's kernel."
if lab_has plan; then
	lab_exec edge "$FEDWALL" plan -f "$POLICY" --state-dir "$LAB_DIR/state" \
		>/dev/null 2>&1
	say "fedwall plan now exits $? (0: the kernel matches the policy)."
fi

# try LABEL FROM ADDR PORT: one real TCP connection, one result line.
RESULT=0
try() {
	if lab_probe "$2" connect -t 1000 tcp "$3" "$4"; then
		_r="GOT THROUGH (handshake, data echoed back)"
		_got=yes
	else
		case $LAB_WHY in
		*timeout) _r="BLOCKED (no answer: dropped)" ;;
		*dropped*) _r="BLOCKED (dropped by the edge's output rules)" ;;
		*) _r="BLOCKED (${LAB_WHY##*: })" ;;
		esac
		_got=no
	fi
	[ "$5" = yes ] && _p="policy: admit" || _p="policy: drop"
	printf '    %-42s %-14s %s\n' "$1" "$_p" "$_r"
	[ "$_got" = "$5" ] || RESULT=1
}

step "Real TCP connections"
try "msn1 $MSN1 -> edge tcp/5061" msn1 $E4 5061 yes
try "stranger $STRANGER -> edge tcp/5061" stranger $E4 5061 no
try "ops $OPS -> edge tcp/22 (management)" ops $E4 22 yes
try "stranger $STRANGER -> edge tcp/22" stranger $E4 22 no
try "edge -> msn1 $MSN1 tcp/5061" edge $MSN1 5061 yes
try "edge -> stranger $STRANGER tcp/5061" edge $STRANGER 5061 no

step "Who was counted"
if lab_has status; then
	say "fedwall status -f msn-pic-lab.yaml:"
	lab_exec edge "$FEDWALL" status -f "$POLICY" \
		--state-dir "$LAB_DIR/state" 2>&1 | indent
else
	say "(no 'fedwall status' in this build yet: nft list counters)"
	lab_exec edge nft list counters table inet "$(lab_table "$POLICY")" 2>&1 |
		awk '$1 == "counter" { n = $2 }
		     $1 == "packets" { printf "%-12s %s packets, %s bytes\n", n, $2, $4 }' |
		indent
fi

step "Clean up"
lab_cleanup
say "namespaces and processes removed."
echo
if [ $RESULT -eq 0 ]; then
	say "demo OK: the partner got in, the stranger did not."
else
	say "demo FAILED: some connection above did not do what the policy says."
fi
exit $RESULT
