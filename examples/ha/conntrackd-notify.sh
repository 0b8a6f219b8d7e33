#!/bin/sh
# conntrackd-notify.sh STATE [CONNTRACKD_CONF] - keepalived's notify hook for
# conntrackd on an HA pair (the primary-backup.sh of conntrackd's own
# examples, /usr/share/doc/conntrackd/examples/sync/primary-backup.sh):
#
#   notify_master "/etc/fedwall/ha/conntrackd-notify.sh primary"
#   notify_backup "/etc/fedwall/ha/conntrackd-notify.sh backup"
#   notify_fault  "/etc/fedwall/ha/conntrackd-notify.sh fault"
#
# primary: commit the connections the peer synced (the external cache)
#   into the kernel's table, so that the sessions the peer carried are
#   established here and fedwall's `ct state established` admits their
#   next segments; then start afresh from the kernel's table and send it
#   to the peer in bulk.
# backup: make sure conntrackd runs, shorten the kernel's timers of the
#   connections this node no longer carries, and ask the new primary for
#   its table.
# fault: shorten the timers.
#
# CONNTRACKD_CONF (default /etc/conntrackd/conntrackd.conf) names the
# daemon: its LockFile and UNIX socket Path come from there.  fedwall
# itself has nothing to do on a transition: both nodes hold the same
# ruleset all the time (`fedwall status` shows its digest on each).
set -u
STATE=${1:-}
CONF=${2:-/etc/conntrackd/conntrackd.conf}
BIN=${CONNTRACKD:-/usr/sbin/conntrackd}

say() { logger -t conntrackd-notify "$*" 2>/dev/null || echo "conntrackd-notify: $*" >&2; }

# run WHAT OPTION: conntrackd -C CONF OPTION, a failure logged.
run() {
	"$BIN" -C "$CONF" "$2" >/dev/null 2>&1 || say "ERROR: conntrackd $2 ($1) failed"
}

# The LockFile of CONF, for a daemon that died without removing it.
lockfile() {
	sed -n 's/^[[:space:]]*LockFile[[:space:]]\{1,\}\([^[:space:]#]*\).*/\1/p' "$CONF" | head -n 1
}

case $STATE in
primary)
	run commit -c
	run flush -f
	run resync -R
	run bulk -B
	;;
backup)
	if ! "$BIN" -C "$CONF" -s >/dev/null 2>&1; then
		lock=$(lockfile)
		if [ -n "$lock" ] && [ -f "$lock" ]; then
			say "WARNING: conntrackd was not cleanly stopped; removing $lock"
			rm -f "$lock"
		fi
		"$BIN" -C "$CONF" -d >/dev/null 2>&1 || { say "ERROR: cannot start conntrackd"; exit 1; }
	fi
	run shorten -t
	run request-resync -n
	;;
fault)
	run shorten -t
	;;
*)
	say "ERROR: unknown state transition '$STATE'"
	echo "usage: conntrackd-notify.sh primary|backup|fault [CONNTRACKD_CONF]" >&2
	exit 1
	;;
esac
exit 0
