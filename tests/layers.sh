#!/bin/sh
# tests/layers.sh - the include rules (tools/layers.sh) hold for the tree,
# and the checker does catch each kind of violation (a fake tree with one
# of each).
. "$(dirname "$0")/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

if sh "$TOP/tools/layers.sh" "$TOP" >"$T/out" 2>&1; then
	pass "layers: every folder includes only what it may"
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
exit $SUITE_FAILED
