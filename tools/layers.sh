#!/bin/sh
# tools/layers.sh [TOP] - the rules of the house about includes, checked:
# each folder includes the headers of the folders it may use (HACKING.md's
# table) and no others, and each third-party header stays in the one folder
# that owns it.  Prints one line per violation (FILE:LINE: what) and exits
# 1 when there is one.
set -u
top=${1:-.}
cd "$top" || exit 2

# folder: the folders whose headers it may include (itself included).
may() {
	case $1 in
	common) echo "common" ;;
	policy) echo "common policy" ;;
	refresh) echo "common policy refresh" ;;
	generator) echo "common policy generator" ;;
	nft) echo "common generator nft" ;;
	engine) echo "common policy refresh generator nft engine" ;;
	cli) echo "common policy refresh generator nft engine cli" ;;
	esac
}

# header (as in #include <...>): the folder that owns it, or "" (libc).
owner() {
	case $1 in
	yaml.h) echo policy ;;
	unbound.h|curl/*|jansson.h) echo refresh ;;
	libnftnl/*|libmnl/*|linux/netfilter*|linux/netlink.h|linux/rtnetlink.h) echo nft ;;
	cap-ng.h) echo cli ;;
	esac
}

bad=0
for dir in common policy refresh generator nft engine cli; do
	[ -d "$dir" ] || continue
	allowed=" $(may "$dir") "
	for f in "$dir"/*.c "$dir"/*.h; do
		[ -f "$f" ] || continue
		# "LINE QUOTE HEADER" for each #include
		grep -n '^[[:space:]]*#[[:space:]]*include' "$f" |
		sed 's/^\([0-9]*\):[[:space:]]*#[[:space:]]*include[[:space:]]*\([<"]\)\([^>"]*\).*/\1 \2 \3/' |
		while read -r line q hdr; do
			if [ "$q" = '"' ]; then
				case $hdr in */*) ;; *) continue ;; esac   # same folder
				top_dir=${hdr%%/*}
				case $allowed in
				*" $top_dir "*) ;;
				*) echo "$f:$line: includes \"$hdr\": $dir/ may use only$allowed" ;;
				esac
			else
				o=$(owner "$hdr")
				if [ -n "$o" ] && [ "$o" != "$dir" ]; then
					echo "$f:$line: includes <$hdr>, which only $o/ may include"
				fi
			fi
		done
	done
done >"${TMPDIR:-/tmp}/layers.$$"
if [ -s "${TMPDIR:-/tmp}/layers.$$" ]; then
	cat "${TMPDIR:-/tmp}/layers.$$"
	bad=1
fi
rm -f "${TMPDIR:-/tmp}/layers.$$"
exit $bad
