#!/bin/sh
# Installs the Debian packages that the build, the tests and the demo need;
# `tools/deps.sh deb` those that `make deb` needs instead.
# As root it runs apt-get; otherwise it prints the exact command and stops.
set -eu

# build; kernel tests and the lab (nft, ip, dnsmasq, conntrack); docs.sh (mandoc, man,
# systemd-analyze); the metrics test (a Prometheus text format parser);
# tests/hostile.sh (GNU time: peak memory); make valgrind; the clang build
# and the libFuzzer targets (clang, its runtime); make bench (strace counts
# netlink sends); tests/lab/dnssec.sh (nsd serves a zone signed with
# ldnsutils' ldns-keygen and ldns-signzone); HTTPS list sources and provider
# feeds (libcurl, OpenSSL flavour; jansson parses the feeds' JSON) and their
# lab tests (nginx-light serves them, openssl makes the test CA); the HA pair's
# lab test (keepalived, conntrackd).
PKGS="gcc make pkg-config libc6-dev libyaml-dev libnftnl-dev libmnl-dev \
nftables iproute2 conntrack libunbound-dev libcap-ng-dev dnsmasq-base \
mandoc man-db systemd python3 python3-prometheus-client time valgrind \
clang libclang-rt-14-dev strace nsd ldnsutils \
libcurl4-openssl-dev libjansson-dev nginx-light openssl keepalived conntrackd"

# packaging only (make deb): never needed by check.
DEB_PKGS="dpkg-dev debhelper fakeroot lintian"
# bench/vm.sh only (the bench on Debian 12's own kernel in qemu).
VM_PKGS="qemu-system-x86 busybox-static kmod cpio"

[ "${1:-}" = deb ] && PKGS=$DEB_PKGS
[ "${1:-}" = vm ] && PKGS=$VM_PKGS

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "fedwall: missing Debian packages:$missing" >&2
	echo "fedwall: run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "fedwall: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The tests start the servers they need (nsd, dnsmasq, nginx, keepalived,
# conntrackd) in their own namespaces: none is left running or enabled on
# the machine, where nsd would take port 53 and nginx port 80.
# policy-rc.d 101 keeps the packages from starting them now; a service
# installed here is disabled for the next boot.
rcd=/usr/sbin/policy-rc.d
own_rcd=
if [ ! -e "$rcd" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$rcd" && chmod 755 "$rcd" && own_rcd=1
fi
st=0
$cmd || st=$?
[ -n "$own_rcd" ] && rm -f "$rcd"
for svc in nsd nginx-light keepalived conntrackd; do
	case " $missing " in
	*" $svc "*) if command -v systemctl >/dev/null 2>&1; then
		# without a running systemd (a container) it only unlinks
		systemctl disable --now "${svc%-light}.service" >/dev/null 2>&1 || :
	fi ;;
	esac
done
exit $st
