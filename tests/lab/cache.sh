#!/bin/sh
# tests/lab/cache.sh - the live table's cache (STATE_DIR/live.cache,
# engine/cache.c) against the real kernel and real packets: a refresh that
# finds the ruleset generation where fedwall left it takes the table from
# the cache and never dumps the sets (strace counts the netlink requests);
# one address changed is one commit, and the table and the packets follow;
# the cache then equals a read-back (FEDWALL_LIVE_CACHE=verify); an edit
# behind fedwall's back (the generation moves), a damaged, truncated or
# untrusted cache, one of another namespace, boot or binary, and a
# `fedwall apply` in between all mean a read-back, never a failed run;
# --metrics still shows live counters.  Written against behaviour (what
# `nft list` shows for an address), not set names.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

lab_require || exit 0
for c in strace perl; do
	if ! command -v $c >/dev/null 2>&1; then
		skip "cache lab (no $c)"
		exit 0
	fi
done
lab_init

D=$LAB_DIR
ST=$D/state
POLF=$D/policy.yaml
LIST=$D/list.txt
CACHE=$ST/live.cache
E4=203.0.113.10

lab_topology || { fail "cache lab: build the namespace topology"; exit 1; }
lab_serve edge tcp 5061 || { fail "cache lab: probe server"; exit 1; }

cat >"$POLF" <<EOF
version: 1
partners:
  listed:
    services: [sip-federation]
    direction: inbound
    lists: [$LIST]
  small:
    services: [sip-federation]
    direction: inbound
    addresses: [198.51.100.7, 2001:db8:51::7]
guards: {max_shrink: 100%}
EOF
# list EXTRA...: alpha, 300 IPv6 /64s (enough elements that a dump is
# many messages), and EXTRA
list() {
	{ echo 198.51.100.11
	  awk 'BEGIN { for (i = 0; i < 300; i++) printf "2001:db8:77:%x::/64\n", 2 * i }'
	  for a in "$@"; do echo "$a"; done; } >"$LIST"
}

# fw ARGS...: fedwall in the edge, -v; $RC, $OUT, $ERR.  FW_ENV: env
# assignments; FW_TRACE=NAME: under strace, into $D/trace.NAME
fw() {
	if [ -n "${FW_TRACE:-}" ]; then
		# LeakSanitizer cannot work under ptrace (the ASan build)
		set -- env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
			strace -f -qq -e trace=sendto,sendmsg -o "$D/trace.$FW_TRACE" \
			"$FEDWALL" "$@"
	else
		set -- "$FEDWALL" "$@"
	fi
	lab_exec edge env ${FW_ENV:-} "$@" -v -f "$POLF" --state-dir "$ST" \
		>"$D/out" 2>"$D/err"
	RC=$?
	OUT=$(cat "$D/out")
	ERR=$(cat "$D/err")
}
# msgs NAME TYPE: how many TYPE messages (NFT_MSG_GETSETELEM, ...) the
# traced run sent
msgs() { grep -o "$2" "$D/trace.$1" | wc -l; }
# count NAME TYPE N CHECK: the traced run sent N messages of TYPE
count() {
	_n=$(msgs "$1" "$2")
	if [ "$_n" -eq "$3" ]; then pass "$4"
	else fail "$4"; echo "    $2: $_n, expected $3" >&2; fi
}
# hand_add TAG ADDR: an element for ADDR (as alpha's 198.51.100.7, $WHOLE)
# added to $MAP by hand, behind fedwall's back, then a traced refresh
hand_add() {
	lab_exec edge nft add element inet fedwall "$MAP" \
		"{ $(printf '%s' "$WHOLE" | sed "s/^198\\.51\\.100\\.7/$2/") }"
	FW_TRACE=$1 fw refresh
}
# hand_add_read TAG CHECK DUMPED: that refresh read the table back (the
# generation moved), dumping the sets
hand_add_read() {
	read_back "$2" "at generation [0-9]+, the ruleset is at [0-9]+"
	if [ "$(msgs "$1" NFT_MSG_GETSETELEM)" -gt 0 ]; then pass "$3"; else fail "$3"; fi
}
table() { lab_table edge; }
# elem ADDR: "MAP KEY" and, in $ELEM, the whole element of the first map
# element whose key starts with ADDR
elem() {
	ELEM=$(lab_exec edge nft list table inet fedwall | ADDR=$1 perl -0777 -ne '
		while (/map (\S+) \{(.*?)\n\t\}/gs) {
			my ($m, $b) = ($1, $2);
			next unless $b =~ /elements = \{(.*?)\}/s;
			for my $e (split /,/, $1) {
				$e =~ s/^\s+|\s+$//g;
				next unless $e =~ /^\Q$ENV{ADDR}\E[ \/]/;
				(my $k = $e) =~ s/ : .*//;
				print "$m\t$k\t$e\n";
				exit;
			}
		}')
}
# rekey FIELD VALUE: the cache's header field FIELD=... becomes VALUE, the
# checksum made right again (common/util.c's sum64: little-endian words,
# multiply, xor-shift)
rekey() {
	python3 - "$CACHE" "$1" "$2" <<'EOF'
import re, sys
f, field, val = sys.argv[1:]
d = open(f, "rb").read()
body, n = re.subn(rb"^([^\n]*? )" + re.escape(field.encode()) + rb"=[^ \n]*",
                  lambda m: m.group(1) + field.encode() + b"=" + val.encode(), d[:-17], count=1)
if not n:
    sys.exit("no " + field)
M = (1 << 64) - 1
h = 0x9e3779b97f4a7c15 ^ len(body)
padded = body + b"\0" * (-len(body) % 8)
for i in range(0, len(padded), 8):
    h = ((h ^ int.from_bytes(padded[i:i + 8], "little")) * 0xff51afd7ed558ccd) & M
    h ^= h >> 32
h ^= h >> 33
h = (h * 0xc4ceb9fe1a85ec53) & M
open(f, "wb").write(body + b"%016x\n" % (h ^ h >> 33))
EOF
}
# hit: the cache was used: its table, or (same inputs) nothing to build
hit() { has ERR "(live table from the cache|built from these very inputs, and nothing changed it since) \(?(at )?generation [0-9]+" "$1"; }
same_inputs() { has ERR "built from these very inputs, and nothing changed it since" "$1"; }
cache_table() { has ERR "live table from the cache at generation [0-9]+" "$1"; }
read_back() { has ERR "reading the table back: cache $2" "$1"; }

# ---- the first runs ----------------------------------------------------------
list
FW_TRACE=create fw refresh
expect_rc 0 "cache: the first refresh creates the table"
has ERR "cached at generation [0-9]+" "cache: ... and caches the table it committed"
count create NFT_MSG_GETSETELEM 0 "cache: ... reading no set element back (its shape only)"
count create NFT_MSG_GETRULE 1 "cache: ... (the rules once, for their handles)"
if [ "$(stat -c %a "$CACHE" 2>/dev/null)" = 600 ]; then pass "cache: the file is mode 0600"
else fail "cache: the file is mode 0600"; ls -l "$CACHE" >&2; fi
FW_ENV=FEDWALL_LIVE_CACHE=verify fw refresh
expect_rc 0 "cache: the cache of the created table equals a read-back (verify)"
cache_table "cache: ... (verify compared a hit)"
rm -f "$CACHE"
fw refresh
read_back "cache: without one, a refresh reads the table back" "none yet"
has ERR "cached at generation [0-9]+" "cache: ... and caches it"
table >"$D/t.good"

# ---- nothing changed: no dump at all ----------------------------------------
FW_TRACE=same fw refresh
expect_rc 0 "cache: an unchanged refresh exits 0"
hit "cache: an unchanged refresh takes the table from the cache"
count same NFT_MSG_GETSETELEM 0 "cache: ... dumps no set elements"
count same 'NFT_MSG_GETSET\b' 0 "cache: ... no sets"
count same NFT_MSG_GETRULE 0 "cache: ... no rules"
count same NFT_MSG_GETCHAIN 0 "cache: ... no chains"
count same NFT_MSG_GETGEN 1 "cache: ... asks for the generation once"
count same NFNL_MSG_BATCH_BEGIN 0 "cache: ... and commits nothing"
has OUT "table inet fedwall: no changes" "cache: ... and says there was nothing to do"

# ---- the same inputs: nothing built, nothing read -----------------------------
# The run above stored the digest of its inputs (policy, each partner's
# proposed addresses) with the table it proved current.
FW_TRACE=inputs fw refresh
expect_rc 0 "inputs: a refresh with the same inputs exits 0"
same_inputs "inputs: the same inputs and the same generation: nothing to build"
count inputs NFT_MSG_GETGEN 1 "inputs: ... one GETGEN"
count inputs NFT_MSG_GETOBJ 0 "inputs: ... not even the counters"
count inputs NFT_MSG_GETSETELEM 0 "inputs: ... no set elements"
count inputs NFNL_MSG_BATCH_BEGIN 0 "inputs: ... no commit"
has OUT "table inet fedwall: no changes" "inputs: ... and says there was nothing to do"
printf '# a comment changes the policy file, not the table\n' >>"$POLF"
fw refresh
cache_table "inputs: an edited policy file is other inputs: built and compared"
has OUT "table inet fedwall: no changes" "inputs: ... the same table: no changes"
fw refresh
same_inputs "inputs: ... and then the same inputs again"
# A partner its guards hold back: the table is not what the inputs make,
# so the next run must weigh them again (and say so again), not skip.
list 198.0.0.0/7
fw refresh
has ERR "partner 'listed': refresh refused" "inputs: a partner held back by its guards"
fw refresh
has ERR "partner 'listed': refresh refused" "inputs: ... is held back and reported again on the next run"
if printf '%s\n' "$ERR" | grep -q "built from these very inputs"; then
	fail "inputs: ... whose inputs are never taken as applied"
else pass "inputs: ... whose inputs are never taken as applied"; fi
list
fw refresh
expect_rc 0 "inputs: the list as before: refresh exits 0"
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "inputs: ... and the table is as before"

# ---- one address changed: one commit, no dump ---------------------------------
list 198.51.100.12
blocked "cache: bravo is not admitted before" bravo tcp $E4 5061
FW_TRACE=one fw refresh
expect_rc 0 "cache: one address changed: refresh exits 0"
cache_table "cache: one address changed: the table comes from the cache"
count one NFT_MSG_GETSETELEM 0 "cache: one address changed: no set elements dumped"
count one NFNL_MSG_BATCH_BEGIN 1 "cache: one address changed: one commit"
has OUT "partner listed: \+1 -0 address" "cache: one address changed: reported"
has ERR "cached at generation [0-9]+" "cache: ... and the cache follows the commit"
if lab_exec edge nft list table inet fedwall | grep -q '198\.51\.100\.12[^0-9]'; then
	pass "cache: nft list shows the new address"
else fail "cache: nft list shows the new address"; fi
reach "cache: bravo is admitted after" bravo tcp $E4 5061
reach "cache: alpha still is" alpha tcp $E4 5061
FW_ENV=FEDWALL_LIVE_CACHE=verify fw refresh
expect_rc 0 "cache: after the commit, the cache equals a read-back (verify)"
hit "cache: ... (verify compared a hit)"
FW_ENV=FEDWALL_LIVE_CACHE=0 fw refresh
has OUT "no changes" "cache: a refresh without the cache finds nothing to do"
list
FW_TRACE=back fw refresh
count back NFT_MSG_GETSETELEM 0 "cache: the address removed again, still no dump"
blocked "cache: bravo is not admitted once removed" bravo tcp $E4 5061
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "cache: the table is as before"
FW_ENV=FEDWALL_LIVE_CACHE=verify fw refresh
expect_rc 0 "cache: ... and so is the cache (verify)"

# ---- edits behind fedwall's back --------------------------------------------
elem 198.51.100.7
MAP=$(printf '%s\n' "$ELEM" | cut -f1)
KEY=$(printf '%s\n' "$ELEM" | cut -f2)
WHOLE=$(printf '%s\n' "$ELEM" | cut -f3)
if [ -z "$MAP" ]; then
	fail "cache: find small's element in nft list"
else
	hand_add add 198.51.100.201
	expect_rc 0 "tamper: refresh after 'nft add element' exits 0"
	hand_add_read add "tamper: an element added by hand moves the generation: read back" \
		"tamper: ... (the sets were dumped)"
	table >"$D/t.now"
	same "$D/t.good" "$D/t.now" "tamper: the element added by hand is gone"
	lab_exec edge nft delete element inet fedwall "$MAP" "{ $KEY }"
	fw refresh
	read_back "tamper: an element deleted by hand: read back" "at generation"
	has OUT "partner small: \+1 -0 address" "tamper: ... noticed, naming the partner"
	table >"$D/t.now"
	same "$D/t.good" "$D/t.now" "tamper: the element deleted by hand is back"
	fw refresh
	hit "tamper: then from the cache again"
fi

# ---- a damaged or untrusted cache ------------------------------------------
# With the same inputs a run needs only the header line (its own hsum);
# the image is read when something changed: each case changes the list.
FLIP=0
flip() {
	if [ $FLIP = 0 ]; then list 198.51.100.14; FLIP=1; else list; FLIP=0; fi
}
SIZE=$(stat -c %s "$CACHE")
printf '\377' | dd of="$CACHE" bs=1 seek=$((SIZE / 2)) conv=notrunc 2>/dev/null
fw refresh
same_inputs "damaged: a flipped byte in the image: the same inputs need only the header"
flip
fw refresh
expect_rc 0 "damaged: refresh exits 0"
read_back "damaged: a flipped byte: read back" "damaged \(checksum\)"
fw refresh
hit "damaged: the cache is written again"
truncate -s $((SIZE / 2)) "$CACHE"
flip
fw refresh
expect_rc 0 "damaged: a truncated cache: refresh exits 0"
read_back "damaged: a truncated cache: read back" "(truncated|damaged)"
: >"$CACHE"
flip
fw refresh
read_back "damaged: an empty cache: read back" "(truncated|damaged)"
head -c 4096 /dev/urandom >"$CACHE"
flip
fw refresh
read_back "damaged: random bytes: read back" "(truncated|damaged)"
sed -i '1s/inputs=/inputz=/' "$CACHE"
fw refresh
read_back "damaged: a header whose own checksum fails: read back" "(truncated|damaged)"
chmod 666 "$CACHE"
flip
fw refresh
expect_rc 0 "untrusted: a cache others may write: refresh exits 0"
read_back "untrusted: ... not used" "not a private regular file"
if [ "$(stat -c %a "$CACHE")" = 600 ]; then pass "untrusted: ... and replaced by a private one"
else fail "untrusted: ... and replaced by a private one"; fi
[ $FLIP = 1 ] && flip && fw refresh
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "damaged: the table is as it was"

# ---- a key of something else --------------------------------------------------
fw refresh
rekey boot 00000000-0000-0000-0000-000000000000
fw refresh
read_back "key: a cache from another boot is not used" "from another boot"
rekey exe 1:2:3:4.000000000
fw refresh
read_back "key: nor one another fedwall binary wrote" "written by another fedwall binary"
rekey table other
fw refresh
read_back "key: nor one of another table" "of another table"
fw refresh
hit "key: (the cache is good again)"
# Another namespace at the very same generation (a fresh one starts at 1;
# each `nft add table` is one commit), sharing the state directory.
G=$(sed -n '1s/.* genid=\([0-9]*\) .*/\1/p' "$CACHE")
if lab_ns other; then
	for i in $(seq 2 "${G:-1}"); do lab_exec other nft add table inet pad$i; done
	cp -a "$ST" "$D/st2"
	lab_exec other "$FEDWALL" refresh -v -f "$POLF" --state-dir "$D/st2" >"$D/out" 2>"$D/err"
	RC=$?
	ERR=$(cat "$D/err")
	expect_rc 0 "key: refresh in another namespace exits 0"
	has ERR "reading the table back: cache of another network namespace" \
		"key: a cache of another namespace at the same generation ($G) is not used"
else fail "key: another namespace"; fi

# ---- fedwall apply writes the cache too ---------------------------------------
# apply keeps the cache as refresh does: over a table whose cache holds
# it reads nothing back, and what it commits (elements, or a table
# created or replaced) is cached, so the refresh after it reads nothing
# back either.
list 198.51.100.13
FW_TRACE=apply fw apply
expect_rc 0 "apply: one address more: apply exits 0"
cache_table "apply: over the table, with a valid cache: the live table from the cache"
count apply NFT_MSG_GETSETELEM 0 "apply: ... dumps no set elements"
count apply NFNL_MSG_BATCH_BEGIN 1 "apply: ... one commit"
has ERR "cached at generation [0-9]+" "apply: ... and caches what it committed"
reach "apply: charlie admitted" charlie tcp $E4 5061
# apply stores the digest of its inputs as a refresh computes it (the
# policy, each partner's inline and list addresses): the first refresh
# after it, nothing changed, is the same-inputs no-op.
FW_TRACE=after fw refresh
expect_rc 0 "apply: the refresh after it exits 0"
same_inputs "apply: the first refresh after it, nothing changed: the same inputs, nothing to build"
count after NFT_MSG_GETGEN 1 "apply: ... one GETGEN"
count after NFT_MSG_GETOBJ 0 "apply: ... not even the counters"
count after NFT_MSG_GETSETELEM 0 "apply: ... dumps no set elements"
count after NFNL_MSG_BATCH_BEGIN 0 "apply: ... and commits nothing"
has OUT "table inet fedwall: no changes" "apply: ... no changes"
FW_TRACE=again fw apply
expect_rc 0 "apply: apply again, nothing changed: exits 0"
same_inputs "apply: ... the same inputs: nothing to build"
count again NFNL_MSG_BATCH_BEGIN 0 "apply: ... and commits nothing"
# A list line changed after apply: other inputs, whatever apply stored.
list 198.51.100.13 198.51.100.15
FW_TRACE=listed fw refresh
expect_rc 0 "apply: a list line changed after it: refresh exits 0"
cache_table "apply: ... other inputs: the table is built and compared"
if printf '%s\n' "$ERR" | grep -q "built from these very inputs"; then
	fail "apply: ... not taken for the inputs apply stored"
else pass "apply: ... not taken for the inputs apply stored"; fi
count listed NFNL_MSG_BATCH_BEGIN 1 "apply: ... one commit"
has OUT "partner listed: \+1 -0 address" "apply: ... naming the partner"
list 198.51.100.13
fw apply
expect_rc 0 "apply: the list line back: apply exits 0"
FW_TRACE=after1 fw refresh
same_inputs "apply: ... and the refresh after it is the same-inputs no-op"
count after1 NFNL_MSG_BATCH_BEGIN 0 "apply: ... committing nothing"
# apply records each list it read in the state with the file's identity
# (once the file is older than the racy window): the refresh after it
# does not open the list apply read, and a line changed after the apply
# is patched onto the table apply left (what the state records is what
# the table was built from).  Before, only a refresh recorded lists: a
# list apply alone had read was read again and the table derived anew.
list 198.51.100.13 198.51.100.17
sleep 0.2
fw apply
expect_rc 0 "apply: a list line apply alone has read: apply exits 0"
lab_exec edge env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq -e trace=openat,open -o "$D/trace.open" \
	"$FEDWALL" refresh -f "$POLF" --state-dir "$ST" >/dev/null 2>&1
if grep -q "$LIST" "$D/trace.open"; then
	fail "apply: the refresh after it does not open the list apply read"
	grep "$LIST" "$D/trace.open" >&2
elif grep -q "$POLF" "$D/trace.open"; then
	pass "apply: the refresh after it does not open the list apply read"
else fail "apply: the refresh after it does not open the list apply read (no trace)"; fi
list 198.51.100.13
sleep 0.2
fw apply
list 198.51.100.13 198.51.100.19
FW_ENV=FEDWALL_INCR=verify fw refresh
expect_rc 0 "apply: then a list line changed: refresh exits 0 (the patch is the full derivation: verify)"
has ERR "incremental: 1 partner patched, \+1 -0 elements" \
	"apply: ... patched onto the table apply left (the state records the list apply read)"
# a fresh table: created by apply, then a refresh
lab_exec edge nft delete table inet fedwall
FW_TRACE=fresh fw apply
expect_rc 0 "apply: creating the table exits 0"
read_back "apply: the table deleted by hand moved the generation: not from the cache" \
	"at generation [0-9]+, the ruleset is at [0-9]+"
count fresh NFT_MSG_GETSETELEM 0 "apply: ... nor any set element read back after creating it"
has ERR "cached at generation [0-9]+" "apply: ... and caches the table it created"
FW_TRACE=after2 fw refresh
count after2 NFT_MSG_GETSETELEM 0 "apply: the refresh after creating the table dumps no set elements"
count after2 NFNL_MSG_BATCH_BEGIN 0 "apply: ... and commits nothing"
FW_ENV=FEDWALL_LIVE_CACHE=verify fw apply
expect_rc 0 "apply: the cache after it equals a read-back (verify)"
cache_table "apply: ... (verify compared a hit)"
# a replacement: a partner more is a structural change
cp "$POLF" "$D/policy.orig"
perl -0pi -e 's/^guards:/  extra:\n    services: [sip-federation]\n    direction: inbound\n    addresses: [192.0.2.77]\nguards:/m' "$POLF"
FW_TRACE=replace fw apply
expect_rc 0 "apply: a partner more: apply exits 0"
has OUT "table inet fedwall: replaced" "apply: ... replaces the table"
count replace NFT_MSG_GETSETELEM 0 "apply: ... reads no set element back, before or after"
FW_TRACE=after3 fw refresh
count after3 NFT_MSG_GETSETELEM 0 "apply: the refresh after the replacement dumps no set elements"
count after3 NFNL_MSG_BATCH_BEGIN 0 "apply: ... and commits nothing"
FW_ENV=FEDWALL_LIVE_CACHE=verify fw refresh
expect_rc 0 "apply: the cache of the replaced table equals a read-back (verify)"
cp "$D/policy.orig" "$POLF"
# an edit behind fedwall's back after apply still means a read-back
list
fw apply
expect_rc 0 "apply: charlie removed again (the table replaced back)"
blocked "apply: charlie not admitted after it" charlie tcp $E4 5061
if [ -n "$MAP" ]; then
	hand_add tamper2 198.51.100.202
	hand_add_read tamper2 "apply: an element added by hand after apply: read back" \
		"apply: ... (the sets were dumped)"
fi
table >"$D/t.now"
same "$D/t.good" "$D/t.now" "apply: ... and the table is as before"

# ---- --metrics shows live counters from a cache hit ---------------------------
blocked "metrics: a stranger's connection is dropped (counted)" stranger tcp $E4 5061
FW_TRACE=metrics fw refresh --metrics "$D/metrics.prom"
hit "metrics: refresh --metrics with the cache"
count metrics NFT_MSG_GETSETELEM 0 "metrics: ... dumps no set elements for the metrics either"
N=$(lab_counter edge dropped_in)
if [ "$N" -gt 0 ] &&
	grep -q "^fedwall_dropped_packets_total{direction=\"in\",reason=\"stranger\"} $N\$" "$D/metrics.prom"; then
	pass "metrics: the dropped counter is the kernel's ($N), not the cache's"
else
	fail "metrics: the dropped counter is the kernel's ($N)"
	grep dropped "$D/metrics.prom" | sed 's/^/    /' >&2
fi

exit $SUITE_FAILED
