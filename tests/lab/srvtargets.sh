#!/bin/sh
# tests/lab/srvtargets.sh - where a partner's SRV targets may lie, against a
# real DNS server (dnsmasq in a lab namespace of its own) and real packets:
# inside the partner's domain always; outside it (a hosted service's edge,
# as a Teams / Skype for Business Online tenant's SIP SRV points at
# sipfed.online.lync.com) only under a suffix the partner's srv_targets
# names, else ignored with a warning.  The same rule for the SIP and the
# XMPP SRV record.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

DNSMASQ=/usr/sbin/dnsmasq
lab_require || exit 0
if [ ! -x "$DNSMASQ" ]; then
	skip "srv_targets lab (no $DNSMASQ: apt-get install dnsmasq-base)"
	exit 0
fi
lab_dns_init

E4=203.0.113.10 E6=2001:db8:10::10
ST=$LAB_DIR/state
POLF=$LAB_DIR/policy.yaml
D=$LAB_DIR/dns

# alpha: contoso's hosted SIP edge, bravo: jabber's hosted XMPP server,
# charlie and echo: their own servers inside their domains, delta: a
# target whose name ends like the hosted suffix but not at a label
lab_dns_topology "srv_targets lab" || exit 1
mkdir -p "$D"

# ---- the DNS server --------------------------------------------------------
lab_dnsmasq_conf "$D/dnsmasq.conf" 198.51.100.53 "$D/hosts" \
	_sipfederationtls._tcp.contoso.example.test,sipfed.online.lync.test,5061 \
	_sipfederationtls._tcp.contoso.example.test,sip.contoso.example.test,5061 \
	_sipfederationtls._tcp.contoso.example.test,edge.xonline.lync.test,5061 \
	_xmpp-server._tcp.jabber.example.test,xmpp1.im.hosting.test,5269 \
	_xmpp-server._tcp.jabber.example.test,xmpp.jabber.example.test,5269
# The hosted zones answered here too (AAAA included), not forwarded.
printf 'local=/lync.test/\nlocal=/hosting.test/\n' >>"$D/dnsmasq.conf"
cat >"$D/hosts" <<EOF
198.51.100.11 sipfed.online.lync.test
2001:db8:51::11 sipfed.online.lync.test
198.51.100.13 sip.contoso.example.test
198.51.100.14 edge.xonline.lync.test
198.51.100.12 xmpp1.im.hosting.test
198.51.100.15 xmpp.jabber.example.test
EOF
ip netns exec "$LAB-dns" "$DNSMASQ" --keep-in-foreground --conf-file="$D/dnsmasq.conf" \
	--log-facility="$D/log" --pid-file="$D/pid" &
LAB_PIDS="$LAB_PIDS $!"
up=
for _n in $(seq 100); do
	lab_exec edge getent hosts sipfed.online.lync.test >/dev/null 2>&1 && { up=1; break; }
	sleep 0.05
done
[ -n "$up" ] || { fail "srv_targets lab: dnsmasq answers in the lab"; exit 1; }

# policy [SRV_TARGETS_LINE...]: contoso (SIP) and jabber (XMPP), each
# discovered through its domain's SRV record
policy() {
	cat >"$POLF" <<EOF
version: 1
partners:
  contoso:
    services: [sip-federation]
    direction: inbound
    domains: [contoso.example.test]
${1:-}
  jabber:
    services: [xmpp-s2s]
    direction: inbound
    domains: [jabber.example.test]
${2:-}
EOF
}

fw() { lab_fw edge "$@" -f "$POLF" --state-dir "$ST"; }
sip_ok() { reach "$1" "$2" tcp $E4 5061; }
sip_no() { blocked "$1" "$2" tcp $E4 5061; }
xmpp_ok() { reach "$1" "$2" tcp $E4 5269; }
xmpp_no() { blocked "$1" "$2" tcp $E4 5269; }

lab_serve edge tcp 5061 tcp 5269 || { fail "srv_targets lab: probe server"; exit 1; }

# ---- without srv_targets: targets outside the domain are ignored -----------
policy
fw refresh
expect_rc 0 "default: refresh exits 0 (each domain has a target inside it)"
has ERR "warning: DNS: '_sipfederationtls\._tcp\.contoso\.example\.test' SRV: ignoring target 'sipfed\.online\.lync\.test' outside the domain 'contoso\.example\.test' \(a hosting provider's\? add its suffix to the partner's srv_targets\)" \
	"default: the hosted SIP target is ignored with a warning that names srv_targets"
has ERR "SRV: ignoring target 'xmpp1\.im\.hosting\.test' outside the domain 'jabber\.example\.test'" \
	"default: the hosted XMPP target is ignored by the same rule (it was once followed)"
sip_no "default: the hosted SIP edge (alpha) dropped on tcp/5061" alpha
blocked "default: the hosted SIP edge dropped over IPv6 too" alpha tcp $E6 5061
sip_ok "default: contoso's own SIP server (charlie) admitted" charlie
xmpp_no "default: the hosted XMPP server (bravo) dropped on tcp/5269" bravo
xmpp_ok "default: jabber's own XMPP server (echo) admitted" echo
sip_no "default: the stranger dropped" stranger

# ---- with srv_targets: the hosted targets are admitted ---------------------
policy "    srv_targets: [online.lync.test]" "    srv_targets: [im.hosting.test.]"
fw check
expect_rc 0 "srv_targets: the policy checks"
fw refresh
expect_rc 0 "srv_targets: refresh exits 0"
if printf '%s\n' "$ERR" | grep -Eq "ignoring target '(sipfed\.online\.lync|xmpp1\.im\.hosting)\.test'"; then
	fail "srv_targets: no warning for the targets under srv_targets"; show
else pass "srv_targets: no warning for the targets under srv_targets"; fi
has ERR "ignoring target 'edge\.xonline\.lync\.test' outside the domain 'contoso\.example\.test' and its srv_targets" \
	"srv_targets: a name ending in the suffix but not at a label is still ignored"
has OUT "^fedwall: partner contoso: \+2 -0 addresses" \
	"srv_targets: contoso gains the hosted edge's two addresses"
sip_ok "srv_targets: the hosted SIP edge (alpha) admitted on tcp/5061" alpha
reach "srv_targets: the hosted SIP edge admitted over IPv6 (its AAAA)" alpha tcp $E6 5061
sip_ok "srv_targets: contoso's own SIP server still admitted (charlie)" charlie
xmpp_ok "srv_targets: the hosted XMPP server (bravo) admitted on tcp/5269" bravo
xmpp_ok "srv_targets: jabber's own XMPP server still admitted (echo)" echo
sip_no "srv_targets: the look-alike target (delta) dropped" delta
sip_no "srv_targets: the stranger dropped" stranger
xmpp_no "srv_targets: the stranger dropped on tcp/5269" stranger

exit $SUITE_FAILED
