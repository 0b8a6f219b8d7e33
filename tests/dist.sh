#!/bin/sh
# tests/dist.sh - what an image builder takes: `make install` into a
# DESTDIR (layout for PREFIX=/usr/local and /usr, units pointing at the
# installed binary, `make uninstall` leaving nothing), the systemd units
# (systemd-analyze verify, sandboxing that keeps CAP_NET_ADMIN and the
# host's network), and the .deb when `make deb` has built one.
. "$(dirname "$0")/lib.sh"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
BUILD=$(dirname "$FEDWALL")
UNITS="fedwall.service fedwall-refresh.service fedwall-refresh.timer"

# ---- units ----
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$T/units"
	for u in $UNITS; do
		sed "s|/usr/sbin/fedwall|$FEDWALL|g" "$TOP/dist/$u" >"$T/units/$u"
	done
	# verify prints problems but exits 0 on most: any output fails.
	(cd "$T/units" && systemd-analyze verify --man=no ./fedwall.service \
		./fedwall-refresh.service ./fedwall-refresh.timer) >"$T/verify" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s "$T/verify" ]; then
		pass "dist: systemd-analyze verify of the units"
	else
		fail "dist: systemd-analyze verify of the units (exit $rc)"
		sed 's/^/    /' "$T/verify" >&2
	fi
else
	skip "dist: systemd-analyze verify (systemd-analyze not installed)"
fi
S=$TOP/dist/fedwall.service
for want in 'Type=notify' 'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' \
	'CapabilityBoundingSet=CAP_NET_ADMIN' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
	'StateDirectory=fedwall' 'RestrictAddressFamilies=AF_NETLINK AF_UNIX AF_INET AF_INET6' \
	'SystemCallFilter=@system-service'; do
	ok "dist: fedwall.service has $want" grep -qxF "$want" "$S"
done
ok "dist: fedwall.service runs the daemon" \
	grep -q '^ExecStart=/usr/sbin/fedwall daemon -f /etc/fedwall/policy.yaml' "$S"
ok "dist: no PrivateNetwork (must see the host's netfilter)" \
	sh -c "! grep -q '^PrivateNetwork' '$S' '$TOP/dist/fedwall-refresh.service'"
ok "dist: fedwall-refresh.service is a oneshot refresh" sh -c \
	"grep -qx 'Type=oneshot' '$TOP/dist/fedwall-refresh.service' &&
	 grep -q '^ExecStart=/usr/sbin/fedwall refresh ' '$TOP/dist/fedwall-refresh.service'"
ok "dist: timer every 5 minutes, randomized" sh -c \
	"grep -qx 'OnUnitActiveSec=5min' '$TOP/dist/fedwall-refresh.timer' &&
	 grep -q '^RandomizedDelaySec=' '$TOP/dist/fedwall-refresh.timer'"
ok "dist: example crontab runs refresh every 5 minutes" \
	grep -q '^\*/5 \* \* \* \*	root	fedwall refresh ' "$TOP/dist/fedwall.cron"

# ---- make install / uninstall ----
# -o all: install what $BUILD holds, never rebuild it here.
inst() { make -C "$TOP" --no-print-directory -s -o all BUILD="$BUILD" "$@" >"$T/make.out" 2>&1; }
D=$T/root
if inst install DESTDIR="$D"; then
	pass "dist: make install DESTDIR (PREFIX=/usr/local)"
else
	fail "dist: make install DESTDIR (PREFIX=/usr/local)"
	sed 's/^/    /' "$T/make.out" >&2
fi
for f in sbin/fedwall share/man/man8/fedwall.8 share/man/man5/fedwall-policy.5 \
	share/doc/fedwall/examples/msn-pic.yaml share/doc/fedwall/examples/lists/contoso.txt \
	share/doc/fedwall/examples/fedwall.cron share/bash-completion/completions/fedwall \
	share/doc/fedwall/examples/ha/policy.yaml share/doc/fedwall/examples/ha/conntrackd-notify.sh \
	lib/systemd/system/fedwall.service lib/systemd/system/fedwall-refresh.service \
	lib/systemd/system/fedwall-refresh.timer; do
	ok "dist: installs /usr/local/$f" test -f "$D/usr/local/$f"
done
ok "dist: the binary is executable" test -x "$D/usr/local/sbin/fedwall"
ok "dist: units run the installed binary" \
	grep -q '^ExecStart=/usr/local/sbin/fedwall daemon' "$D/usr/local/lib/systemd/system/fedwall.service"
ok "dist: man pages are 0644" test "$(stat -c %a "$D/usr/local/share/man/man8/fedwall.8")" = 644
ok "dist: installed examples check" "$D/usr/local/sbin/fedwall" check \
	-f "$D/usr/local/share/doc/fedwall/examples/hosts-and-lists.yaml" --state-dir "$T" 2>/dev/null
ok "dist: no state directory from make install" test ! -e "$D/var"
inst uninstall DESTDIR="$D"
left=$(find "$D" -type f | sed "s|^$D||")
if [ -z "$left" ]; then
	pass "dist: make uninstall removes every file"
else
	fail "dist: make uninstall removes every file"
	echo "$left" | sed 's/^/    left: /' >&2
fi
D=$T/usr
inst install DESTDIR="$D" PREFIX=/usr
ok "dist: PREFIX=/usr: binary in /usr/sbin" test -x "$D/usr/sbin/fedwall"
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
ok "dist: PREFIX=/usr: units in ${unitdir:-/lib/systemd/system}" \
	test -f "$D${unitdir:-/lib/systemd/system}/fedwall.service"
ok "dist: PREFIX=/usr: units run /usr/sbin/fedwall" \
	grep -q '^ExecStart=/usr/sbin/fedwall daemon' "$D${unitdir:-/lib/systemd/system}/fedwall.service"

# ---- the .deb, if `make deb` built one ----
deb=$(ls "$TOP"/build/deb/fedwall_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
	skip "dist: .deb checks (run make deb first)"
	exit $SUITE_FAILED
fi
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$T/deb.files"
for f in /usr/sbin/fedwall /usr/share/man/man8/fedwall.8.gz /usr/share/man/man5/fedwall-policy.5.gz \
	/lib/systemd/system/fedwall.service /lib/systemd/system/fedwall-refresh.timer \
	/usr/share/bash-completion/completions/fedwall /usr/share/doc/fedwall/copyright \
	/usr/share/doc/fedwall/examples/msn-pic.yaml; do
	ok "dist: .deb ships $f" grep -qx "$f" "$T/deb.files"
done
ok "dist: .deb depends on the libraries it links" sh -c \
	"dpkg-deb -f '$deb' Depends | grep -q libnftnl"
dpkg-deb -x "$deb" "$T/x"
ok "dist: the packaged binary runs" sh -c "'$T/x/usr/sbin/fedwall' --version >/dev/null"

# Install, use and purge it in a clean Debian root, when one is given:
#   debootstrap --variant=minbase bookworm /srv/fwt-root http://deb.debian.org/debian
#   FEDWALL_DEB_CHROOT=/srv/fwt-root sh tests/dist.sh
R=${FEDWALL_DEB_CHROOT:-}
if [ -z "$R" ] || [ ! -x "$R/usr/bin/apt-get" ] || [ "$(id -u)" -ne 0 ]; then
	skip "dist: .deb in a clean chroot (set FEDWALL_DEB_CHROOT to a debootstrapped root)"
	exit $SUITE_FAILED
fi
cp "$deb" "$R/tmp/fwt.deb"
[ -s "$R/etc/resolv.conf" ] || cp /etc/resolv.conf "$R/etc/resolv.conf"
in_root() { chroot "$R" env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_root apt-get purge -y -qq fedwall >/dev/null 2>&1
ok "dist: chroot: apt-get install of the .deb (dependencies from the archive)" \
	sh -c "chroot '$R' sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/fwt.deb' >'$T/apt.out' 2>&1"
ok "dist: chroot: installed" sh -c "chroot '$R' dpkg -s fedwall | grep -qx 'Status: install ok installed'"
ok "dist: chroot: units are not enabled by installing" \
	sh -c "! ls '$R'/etc/systemd/system/*.wants/ 2>/dev/null | grep -q fedwall"
ok "dist: chroot: state directory made" test -d "$R/var/lib/fedwall"
ok "dist: chroot: examples check" sh -c "chroot '$R' /usr/sbin/fedwall check \
	-f /usr/share/doc/fedwall/examples/msn-pic.yaml 2>/dev/null"
if can_kernel; then
	ok "dist: chroot: apply and metrics in a namespace" unshare -n chroot "$R" sh -c \
		'fedwall apply -f /usr/share/doc/fedwall/examples/msn-pic.yaml >/dev/null &&
		 fedwall status --format prometheus -f /usr/share/doc/fedwall/examples/msn-pic.yaml \
			-o /tmp/fwt.prom && grep -qx "fedwall_table_present 1" /tmp/fwt.prom'
fi
ok "dist: chroot: man page installed" test -f "$R/usr/share/man/man8/fedwall.8.gz"
ok "dist: chroot: purge" sh -c "chroot '$R' sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq fedwall' >/dev/null 2>&1"
ok "dist: chroot: purge removes the binary and the state" \
	test ! -e "$R/usr/sbin/fedwall" -a ! -e "$R/var/lib/fedwall"
rm -f "$R/tmp/fwt.deb" "$R/tmp/fwt.prom"
exit $SUITE_FAILED
