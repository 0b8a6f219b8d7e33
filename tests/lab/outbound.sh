#!/bin/sh
# tests/lab/outbound.sh - the edge's own outbound connections, with real
# packets in the lab of labrc.sh (host mode): signalling ports restrict
# them to partners as soon as any partner uses the service, whatever its
# direction; tcp/443 and media ports never do (an A/V edge keeps reaching
# CRL, OCSP and update servers); an outbound allowance lets the edge call
# the destinations it names on the ports it names.  docs/RULESET.md,
# fedwall-policy(5) (services, outbound).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
lab_init
E4=203.0.113.10

if ! lab_topology; then
	fail "lab: build the namespace topology"
	exit 1
fi
lab_serve stranger tcp 443 5061 5269 8448 udp 3478 50000 &&
lab_serve alpha tcp 443 5061 &&
lab_serve charlie tcp 5061 || { fail "lab: probe servers"; exit 1; }

addr() {
	case $1.$2 in
	alpha.4) echo 198.51.100.11 ;; alpha.6) echo 2001:db8:51::11 ;;
	charlie.4) echo 198.51.100.13 ;; charlie.6) echo 2001:db8:51::13 ;;
	stranger.4) echo 198.51.100.99 ;; stranger.6) echo 2001:db8:51::99 ;;
	esac
}
# out_ok / out_no NAME TO PROTO PORT FAMILY: edge -> TO.
out_ok() { reach "$1: edge -> $2 $3/$4 IPv$5 admitted" edge "$3" "$(addr "$2" "$5")" "$4"; }
out_no() { blocked "$1: edge -> $2 $3/$4 IPv$5 dropped" edge "$3" "$(addr "$2" "$5")" "$4"; }
plan0() {
	lab_exec edge "$FEDWALL" plan -f "$1" --state-dir "$LAB_DIR/state" \
		>"$LAB_DIR/plan.out" 2>&1
	if [ $? -eq 0 ]; then pass "$2"; else fail "$2"; sed 's/^/    /' "$LAB_DIR/plan.out" >&2; fi
}

# policy FILE DIRECTION [TAIL]: an A/V edge whose partner alpha uses
# av-edge and sip-federation in DIRECTION.
policy() {
	cat >"$1" <<EOF
version: 1
edge: {interfaces: [eth0]}
partners:
  alpha:
    services: [av-edge, sip-federation]
    direction: $2
    addresses: [198.51.100.11, 2001:db8:51::11]
$3
EOF
}

# ---- an A/V edge with an inbound-only partner -----------------------------
M=inbound
policy "$LAB_DIR/in.yaml" inbound
if ok "$M: apply" lab_apply "$LAB_DIR/in.yaml"; then
	for f in 4 6; do
		out_ok $M stranger tcp 443 $f
		out_ok $M stranger udp 3478 $f
		out_ok $M stranger udp 50000 $f
		out_no $M stranger tcp 5061 $f
		out_ok $M stranger tcp 5269 $f
	done
	out_no $M alpha tcp 5061 4
	plan0 "$LAB_DIR/in.yaml" "$M: plan exits 0 after apply"
fi

# ---- both ways --------------------------------------------------------------
M=both
policy "$LAB_DIR/both.yaml" both
if ok "$M: apply" lab_apply "$LAB_DIR/both.yaml"; then
	for f in 4 6; do
		out_ok $M alpha tcp 5061 $f
		out_ok $M alpha tcp 443 $f
		out_ok $M stranger tcp 443 $f
		out_no $M stranger tcp 5061 $f
	done
	c=$(lab_counter edge out_alpha)
	if [ "$c" -gt 0 ] 2>/dev/null; then pass "$M: out_alpha counts the edge's calls ($c)"
	else fail "$M: out_alpha counts the edge's calls ($c)"; fi
	c=$(lab_counter edge dropped_out)
	if [ "$c" -gt 0 ] 2>/dev/null; then pass "$M: dropped_out counts the calls to strangers ($c)"
	else fail "$M: dropped_out counts the calls to strangers ($c)"; fi
fi

# ---- outbound allowances ------------------------------------------------------
M=allow
policy "$LAB_DIR/allow.yaml" inbound "outbound:
  allow:
    - to: [198.51.100.99]
      ports: [tcp/5061]
      description: the stranger's SBC, a test call target"
if ok "$M: apply" lab_apply "$LAB_DIR/allow.yaml"; then
	out_ok $M stranger tcp 5061 4
	out_no $M stranger tcp 5061 6
	out_no $M charlie tcp 5061 4
	out_ok $M stranger tcp 443 4
	plan0 "$LAB_DIR/allow.yaml" "$M: plan exits 0 after apply (the allowance rules read back)"
fi
# Taking the allowance away is a change of elements, and closes it again.
policy "$LAB_DIR/noallow.yaml" inbound "outbound: {allow: []}"
if ok "$M: apply without the allowance" lab_apply "$LAB_DIR/noallow.yaml"; then
	grep -q "replaced" "$LAB_DIR/apply.out" && fail "$M: removing an allowance replaced the table" ||
		pass "$M: removing an allowance changes elements only"
	out_no $M stranger tcp 5061 4
fi

# ---- a user service: ports written alone restrict, ranges and 443 do not ----
M=user
cat >"$LAB_DIR/user.yaml" <<'EOF'
version: 1
edge: {interfaces: [eth0]}
services:
  matrix: [tcp/8448]
  media: [tcp/443, udp/50000-50100]
partners:
  alpha:
    services: [matrix, media]
    direction: inbound
    addresses: [198.51.100.11]
EOF
if ok "$M: apply" lab_apply "$LAB_DIR/user.yaml"; then
	out_no $M stranger tcp 8448 4
	out_ok $M stranger tcp 443 4
	out_ok $M stranger udp 50000 4
fi

exit $SUITE_FAILED
