#!/bin/sh
# tests/dns.sh - the DNS lab (refresh/dns.c against a real dnsmasq).
#
# The lab itself lives in the unit test test_dns, which moves into a
# network namespace of its own and starts dnsmasq there; on its own it
# passes quietly where it cannot run.  This suite makes that visible: it
# says SKIP when this run has no lab (not root, no dnsmasq, no network
# namespaces), and otherwise requires the lab to come up and pass.
. "$(dirname "$0")/lib.sh"

BUILDDIR=$(dirname "$FEDWALL")
T="$BUILDDIR/tests/test_dns"
DNSMASQ=/usr/sbin/dnsmasq

if [ "$(id -u)" -ne 0 ]; then
	skip "dns/lab (not root)"
	exit 0
fi
if [ ! -x "$DNSMASQ" ]; then
	skip "dns/lab (no $DNSMASQ: apt-get install dnsmasq-base)"
	exit 0
fi
if ! unshare -n true 2>/dev/null; then
	skip "dns/lab (cannot create network namespaces)"
	exit 0
fi
if [ ! -x "$T" ]; then
	fail "dns/lab ($T not built)"
	exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
FEDWALL_DNS_LAB=require "$T" >"$out" 2>&1
rc=$?
n=$(grep -c '^PASS: ' "$out")
if [ "$rc" -eq 0 ] && ! grep -q '^FAIL: ' "$out" && [ "$n" -gt 0 ]; then
	pass "dns/lab ($n checks against dnsmasq)"
else
	fail "dns/lab (test_dns exit $rc)"
	sed 's/^/    /' "$out" >&2
fi

exit $SUITE_FAILED
