#!/bin/sh
# tools/layers.sh [TOP] - the rules of the house about layers, checked:
# each folder includes the headers of the folders it may use (HACKING.md's
# table) and no others, each third-party header stays in the one folder
# that owns it, and each cli/ verb file exports only its <verb>_main (from
# the sources: no build needed).  Prints one line per violation
# (FILE:LINE: what) and exits 1 when there is one.
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

# The functions a C file defines at file scope without `static`, one
# "NAME LINE" each: comments, string and character literals and
# preprocessor lines skipped, __attribute__((...)) dropped; a definition
# is what stands between one `;` or `}` at file scope and a `{` that opens
# a body, with a `(` and no `=` in it.
exported='
{ src = src $0 "\n" }
function check(t, l,   pre, nl) {
	gsub(/__attribute__[ \t]*\(\([^()]*(\([^()]*\)[^()]*)*\)\)/, " ", t)
	if (t !~ /\(/ || t ~ /=/)
		return
	pre = t
	sub(/^[ \t\n]+/, "", pre)
	sub(/\(.*/, "", pre)
	if (pre ~ /(^|[^A-Za-z0-9_])(static|typedef)([^A-Za-z0-9_]|$)/)
		return
	sub(/[ \t\n]+$/, "", pre)
	if (!match(pre, /[A-Za-z_][A-Za-z0-9_]*$/))
		return
	nl = pre
	print substr(pre, RSTART, RLENGTH), l + gsub(/\n/, "", nl)
}
END {
	n = length(src); depth = 0; text = ""; ln = 1; tl = 1; bol = 1
	for (i = 1; i <= n; i++) {
		c = substr(src, i, 1)
		if (c == "\n") {
			ln++; bol = 1
			if (depth == 0) text = text "\n"
			continue
		}
		if (bol && c == "#") {          # a preprocessor line, continued or not
			for (; i <= n; i++) {
				c = substr(src, i, 1)
				if (c == "\\" && substr(src, i + 1, 1) == "\n") { i++; ln++; continue }
				if (c == "\n") break
			}
			i--
			continue
		}
		if (c != " " && c != "\t") bol = 0
		two = substr(src, i, 2)
		if (two == "/*") {
			for (i += 2; i <= n && substr(src, i, 2) != "*/"; i++)
				if (substr(src, i, 1) == "\n") ln++
			i++
			continue
		}
		if (two == "//") {
			while (i < n && substr(src, i + 1, 1) != "\n") i++
			continue
		}
		if (c == "\"" || c == "\047") {
			for (i++; i <= n && substr(src, i, 1) != c; i++) {
				if (substr(src, i, 1) == "\\") i++
				else if (substr(src, i, 1) == "\n") ln++
			}
			if (depth == 0) text = text "\"\""
			continue
		}
		if (c == "{") {
			if (depth == 0) check(text, tl)
			depth++
		} else if (c == "}") {
			if (--depth == 0) text = ""
		} else if (depth == 0 && c == ";") {
			text = ""
		} else if (depth == 0) {
			if (text ~ /^[ \t\n]*$/ && c != " " && c != "\t") tl = ln
			text = text c
		}
	}
}'

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
# cli/'s verb files (all but main.c's command table and opts.c's shared
# options) export their <verb>_main and nothing else: what a second verb
# needs belongs to a lower layer (engine/, common/).
for f in cli/*.c; do
	[ -f "$f" ] || continue
	verb=${f##*/}
	verb=${verb%.c}
	case $verb in main|opts) continue ;; esac
	awk "$exported" "$f" | while read -r name line; do
		[ "$name" = "${verb}_main" ] ||
			echo "$f:$line: defines $name() without static: a verb file exports only ${verb}_main"
	done
done >>"${TMPDIR:-/tmp}/layers.$$"
if [ -s "${TMPDIR:-/tmp}/layers.$$" ]; then
	cat "${TMPDIR:-/tmp}/layers.$$"
	bad=1
fi
rm -f "${TMPDIR:-/tmp}/layers.$$"
exit $bad
