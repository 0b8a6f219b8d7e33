#!/bin/sh
# tests/layers.sh - the layer rules (tools/layers.sh) hold for the tree:
# includes, and cli/ verb files exporting only their <verb>_main; and the
# checker does catch each kind of violation (fake trees with one of each).
. "$(dirname "$0")/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

if sh "$TOP/tools/layers.sh" "$TOP" >"$T/out" 2>&1; then
	pass "layers: every folder includes only what it may; verb files export only <verb>_main"
else
	fail "layers: include rules broken"
	sed 's/^/    /' "$T/out" >&2
fi

mkdir -p "$T/tree/generator" "$T/tree/policy" "$T/tree/cli" "$T/tree/nft"
printf '#include "common/common.h"\n#include "nft/nft.h"\n' >"$T/tree/generator/up.c"
printf '#include <string.h>\n#include <libnftnl/rule.h>\n' >"$T/tree/policy/nl.c"
printf '#include "engine/engine.h"\n#include <yaml.h>\n' >"$T/tree/cli/yaml.c"
printf '#include <libmnl/libmnl.h>\n#include "refresh/refresh.h"\n' >"$T/tree/nft/dns.c"
sh "$TOP/tools/layers.sh" "$T/tree" >"$T/out" 2>&1
rc=$?
ok "layers: a violation fails the check" test "$rc" -eq 1
for want in 'generator/up.c:2: includes "nft/nft.h"' \
	'policy/nl.c:2: includes <libnftnl/rule.h>, which only nft/' \
	'cli/yaml.c:2: includes <yaml.h>, which only policy/' \
	'nft/dns.c:2: includes "refresh/refresh.h"'; do
	ok "layers: catches $want" grep -qF "$want" "$T/out"
done
ok "layers: and nothing else" test "$(wc -l <"$T/out")" -eq 4

# A verb file that exports a helper besides its <verb>_main; what may
# look like one and is not (static, in a comment, a string, a macro, an
# initialiser, a declaration); main.c and opts.c may export.
mkdir -p "$T/verbs/cli"
cat >"$T/verbs/cli/apply.c" <<'EOF'
#include "cli.h"
#define TWICE(x) int x##_twice(void) { return 2; }
/* int in_comment(void) { return 0; } */
static const char *s = "int in_string(void) { '{' }";
static const struct { int (*fn)(void); } table[] = { { 0 } };
int declared_only(int x);
__attribute__((unused)) static int quiet(void)
{
	return '}';
}

static int
helper_static(int x)
{
	return x;
}

int apply_main(int argc, const char *argv[])
{
	return argc + (argv ? quiet() : 0);
}

struct ir_ruleset *
apply_helper(const char *p,
	     int x)
{
	return 0;
}
EOF
printf 'int cli_summary(void)\n{\n\treturn 0;\n}\n' >"$T/verbs/cli/main.c"
printf 'int common_parse(void)\n{\n\treturn 0;\n}\n' >"$T/verbs/cli/opts.c"
printf 'static int x(void)\n{\n\treturn 0;\n}\nint plan_main(void)\n{\n\treturn x();\n}\n' \
	>"$T/verbs/cli/plan.c"
sh "$TOP/tools/layers.sh" "$T/verbs" >"$T/out" 2>&1
rc=$?
ok "layers: a verb file exporting a helper fails the check" test "$rc" -eq 1
ok "layers: catches the helper, at its line" grep -qF \
	'cli/apply.c:24: defines apply_helper() without static: a verb file exports only apply_main' \
	"$T/out"
ok "layers: and nothing else (static, comments, strings, main.c, opts.c)" \
	test "$(wc -l <"$T/out")" -eq 1
exit $SUITE_FAILED
