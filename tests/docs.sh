#!/bin/sh
# tests/docs.sh - the man pages render without a warning (mandoc -T lint,
# man -l) and cover everything: every command of `fedwall --help` and
# every option of each command's -h in fedwall(8), every key the policy
# validator knows and every built-in service in fedwall-policy(5); the bash
# completion offers every command and option.
. "$(dirname "$0")/lib.sh"

P8=$TOP/docs/fedwall.8
P5=$TOP/docs/fedwall-policy.5
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# quiet NAME CMD...: passes when CMD exits 0 and prints nothing at all.
quiet() {
	name=$1; shift
	if "$@" >"$T/q" 2>&1 && [ ! -s "$T/q" ]; then
		pass "$name"
	else
		fail "$name"
		sed 's/^/    /' "$T/q" | head -20 >&2
	fi
}

for page in "$P8" "$P5"; do
	n=$(basename "$page")
	if command -v mandoc >/dev/null 2>&1; then
		quiet "docs: mandoc -T lint -W all $n" mandoc -T lint -W all "$page"
	else
		fail "docs: mandoc is missing (apt-get install mandoc)"
	fi
	if command -v man >/dev/null 2>&1; then
		quiet "docs: man --warnings -l $n" sh -c \
			"MANWIDTH=80 man --warnings -l '$page' 2>&1 >/dev/null"
	else
		fail "docs: man is missing (apt-get install man-db)"
	fi
done

# section PAGE NAME: the source lines of section NAME, with \- as -.
section() {
	awk -v s=".SH $2" '/^\.SH /{on = ($0 == s)} on' "$1" | sed 's/\\-/-/g'
}
section "$P8" SYNOPSIS >"$T/synopsis"
section "$P8" COMMANDS >"$T/commands"
section "$P8" OPTIONS >"$T/options"
section "$P5" KEYS >"$T/keys"
section "$P5" "BUILT-IN SERVICES" >"$T/builtins"

# The command table, as `fedwall --help` prints it.
"$FEDWALL" --help | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1}' >"$T/cmds"
ok "docs: fedwall --help lists commands" test -s "$T/cmds"
for c in $(cat "$T/cmds"); do
	ok "docs: fedwall.8 describes command '$c'" grep -qx "\.B $c" "$T/commands"
	# This command's synopsis: from `.B fedwall CMD` to the next .br.
	awk -v s=".B fedwall $c" '$0 == s {on=1} on && /^\.br/ {on=0} on' \
		"$T/synopsis" >"$T/syn.$c"
	ok "docs: fedwall.8 synopsis has '$c'" test -s "$T/syn.$c"
	"$FEDWALL" "$c" -h >"$T/usage" 2>&1
	if ! grep -q "^Usage: fedwall $c" "$T/usage"; then
		fail "docs: '$c -h' prints its usage"
		continue
	fi
	# The usage lines (up to the first blank line) name the options;
	# the list below them says what each does.
	sed '/^$/q' "$T/usage" >"$T/usage.syn"
	for o in $(grep -o -- '--*[a-z][a-z-]*' "$T/usage.syn" | sort -u); do
		case $o in -h|--help) continue ;; esac
		ok "docs: '$c -h' says what $o does" sh -c "grep '^  -' '$T/usage' |
			cut -c1-31 | grep -Eq -- '(^| )$o(,| |\$)'"
		ok "docs: fedwall.8 synopsis of '$c' has $o" grep -q -- "[ \"]$o\( \|\"\|$\)" "$T/syn.$c"
		ok "docs: fedwall.8 OPTIONS describes $o" \
			grep -Eq -- "^\.(B|BR|BI) (.* )?\"?$o( |\"|$)" "$T/options"
	done
done

# Every key of the validator's key tables (top_keys[] and each section's
# keys[]) has an entry (`.B key`) in fedwall-policy(5)'s KEYS.
awk '/(keys|top_keys)\[\] = \{/ {on=1} on {print} on && /\};/ {on=0}' \
	"$TOP/policy/validate.c" | grep -o '"[a-z_0-9]*"' | tr -d '"' | sort -u >"$T/pkeys"
ok "docs: policy keys found in policy/validate.c" test "$(wc -l <"$T/pkeys")" -gt 20
for k in $(cat "$T/pkeys"); do
	ok "docs: fedwall-policy.5 describes key '$k'" grep -Eq "^\.(B|BR) $k( |$)" "$T/keys"
done
# ... and every key `check -v` writes for a policy that sets them all.
"$FEDWALL" check -v -f "$TOP/tests/policy/ok/full.yaml" --state-dir "$T" 2>/dev/null |
	sed -n 's/^ *-* *\([a-z][a-z_0-9]*\):.*/\1/p' | sort -u >"$T/printed"
for k in $(comm -23 "$T/printed" "$T/pkeys"); do
	# Names the user chose (services, partners) are not keys.
	grep -q "^  *$k:" "$TOP/tests/policy/ok/full.yaml" &&
		! grep -q "^$k:" "$TOP/tests/policy/ok/full.yaml" && continue
	fail "docs: key '$k' printed by check -v is not in validate.c's tables"
done

# Every built-in service.
grep -o 'SVC("[a-z-]*"' "$TOP/policy/builtin.c" | sed 's/SVC("//; s/"//' >"$T/builtin"
ok "docs: built-in services found in policy/builtin.c" test -s "$T/builtin"
for b in $(cat "$T/builtin"); do
	ok "docs: fedwall-policy.5 describes built-in service '$b'" grep -qx "\.B $b" "$T/builtins"
done

# Bash completion: commands, each command's options.
COMP=$TOP/dist/fedwall.bash
if command -v bash >/dev/null 2>&1 && [ -f "$COMP" ]; then
	complete_words() { # WORDS...: what completing the last word offers
		bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
			_fedwall; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@"
	}
	complete_words fedwall "" >"$T/c.cmds"
	for c in $(cat "$T/cmds"); do
		ok "docs: completion offers command '$c'" grep -qx "$c" "$T/c.cmds"
		"$FEDWALL" "$c" -h 2>&1 | sed '/^$/q' >"$T/usage"
		complete_words fedwall "$c" - >"$T/c.opts"
		for o in $(grep -o -- '--*[a-z][a-z-]*' "$T/usage" | sort -u); do
			ok "docs: completion offers '$c $o'" grep -qx -- "$o" "$T/c.opts"
		done
	done
	mkdir -p "$T/comp/sub"
	touch "$T/comp/a.yaml" "$T/comp/b.yml" "$T/comp/c.txt"
	(cd "$T/comp" && complete_words fedwall check -f "") | sort >"$T/c.files"
	printf 'a.yaml\nb.yml\nsub/\n' >"$T/c.want"
	same "$T/c.want" "$T/c.files" "docs: completion of -f offers .yaml files and directories"
	(cd "$T/comp" && complete_words fedwall status --format p) >"$T/c.fmt"
	ok "docs: completion of --format" grep -qx prometheus "$T/c.fmt"
else
	fail "docs: bash or dist/fedwall.bash missing"
fi
exit $SUITE_FAILED
