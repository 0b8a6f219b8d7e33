#!/bin/sh
# tests/lab/incremental.sh - the differential test of the incremental
# refresh (issue 14): a seeded random sequence of list and DNS changes
# (overlaps between partners, nesting, duplicates and moves within one,
# adjacent prefixes that join, prefixes that break the guards once
# joined, steps that change nothing; now and then a policy edit, or a
# `fedwall apply` before the refresh) is refreshed step by step in
# namespace A with one persistent state directory, the path that patches
# the cached table.
# After every step namespace B derives the same inputs afresh, with an
# empty state directory (nothing to be incremental from), twice:
#   B1: from A's table as it was before the step (loaded with nft -f),
#       so guards that hold a partner back on what it has weigh the same;
#   B2: from no table at all (only when A took every input: a partner
#       held back keeps addresses no fresh derivation can know).
# (After an apply, which has guards of its own, B2 alone when A took
# every input.)
# A's table must equal B's element for element (nft list, every set's
# and map's elements sorted, chains and rules too), with the same exit
# status; `fedwall plan` in A then has nothing to do.  The -v notes
# "incremental: ..." / "full derivation: ..." are counted: both kinds
# must occur, or the test cannot tell a fast path never taken (or never
# left) from a correct one; each refresh that changed the table says one
# of them, and an incremental one's +A -R are the elements that changed.
# Real packets check the width guard.  Runs in about 30 s.
#
# INCR_SEED=N replays a sequence (printed), INCR_STEPS=N sets its length.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/lab/labrc.sh"

DNSMASQ=/usr/sbin/dnsmasq
SEED=${INCR_SEED:-14}
STEPS=${INCR_STEPS:-50}
lab_require || exit 0
if [ ! -x "$DNSMASQ" ]; then
	skip "incremental lab (no $DNSMASQ: apt-get install dnsmasq-base)"
	exit 0
fi
if ! command -v perl >/dev/null 2>&1; then
	skip "incremental lab (no perl, which normalises the tables)"
	exit 0
fi
lab_init
incr_cleanup() {
	rm -rf "/etc/netns/$LAB-edge" "/etc/netns/$LAB-bee"
	lab_cleanup
}
trap incr_cleanup EXIT
trap 'incr_cleanup; trap - EXIT; exit 130' INT TERM HUP PIPE

D=$LAB_DIR
L=$D/lists
POLF=$D/policy.yaml
STA=$D/state            # A's, kept from step to step
STB=$D/stateb           # B's, empty before each derivation
E4=203.0.113.10
mkdir -p "$L" "$D/dns"

lab_topology &&
lab_host hotel 198.51.100.140/24 2001:db8:51::140/64 &&
lab_host bee 198.51.100.30/24 2001:db8:51::30/64 &&
lab_host dns 198.51.100.53/24 2001:db8:51::53/64 || {
	fail "incremental lab: build the namespace topology"; exit 1; }
for n in edge bee; do
	mkdir -p "/etc/netns/$LAB-$n"
	echo "nameserver 198.51.100.53" >"/etc/netns/$LAB-$n/resolv.conf"
done

# ---- random numbers: an LCG in shell arithmetic, the same everywhere ------
# rnd N: R = the next number in [0, N).  Never inside $(...): the seed
# would not move.
RS=$SEED
rnd() {
	RS=$(((RS * 1103515245 + 12345) % 2147483648))
	R=$(((RS >> 8) % $1))
}

# ---- the address pool --------------------------------------------------------
# v4 pieces /26 to /32 inside 192.0.2.0/24, 203.0.113.0/24 and
# 198.51.100.192/26 (the lab hosts live below .192, where the guard case
# puts its /26s); v6 pieces /122 to /128 in the last byte of
# 2001:db8:5:N::/120, N 1 to 6.  With min_prefix 25 / 121 no single
# piece breaks the guards; three /26 (/122) in a row do.  Mostly narrow
# pieces: sparse enough that many changes touch no other partner (the
# incremental path), dense enough that many do (the fallback).
V4LENS="32 32 32 32 32 32 31 30 30 29 28 27 26"
V6LENS="128 128 128 128 127 126 125 124 122"
# nth N WORDS...: W = the Nth word (from 0)
nth() { _n=$1; shift; shift "$_n"; W=$1; }
# pfx4 / pfx6: P = a random prefix
pfx4() {
	rnd 13; nth $R $V4LENS; _l=$W; _s=$((1 << (32 - _l)))
	rnd 3
	case $R in
	0) _h=192.0.2 _lo=0 _w=256 ;;
	1) _h=203.0.113 _lo=0 _w=256 ;;
	*) _h=198.51.100 _lo=192 _w=64 ;;
	esac
	rnd $((_w / _s)); P=$_h.$((_lo + R * _s))/$_l
	[ "$_l" = 32 ] && rnd 2 && [ $R = 0 ] && P=${P%/32}
}
pfx6() {
	rnd 9; nth $R $V6LENS; _l=$W; _s=$((1 << (128 - _l)))
	rnd 6; _h=2001:db8:5:$((R + 1)):
	rnd $((256 / _s)); SEP=:; mk "$_h" $((R * _s)) "$_l"
}
pfx() { rnd 2; if [ $R = 0 ]; then pfx6; else pfx4; fi; }
# split PREFIX: HEAD (all but the last byte), OFF (the last byte), LEN,
# MAX (32 or 128) and SEP (the separator before the last byte)
split() {
	_p=${1%/*}
	case $1 in */*) LEN=${1#*/} ;; *) LEN= ;; esac
	case $_p in
	*:*) HEAD=${_p%:*} _g=${_p##*:} MAX=128 SEP=:; OFF=$((0x${_g:-0})) ;;
	*) HEAD=${_p%.*} OFF=${_p##*.} MAX=32 SEP=. ;;
	esac
	LEN=${LEN:-$MAX}
}
# mk HEAD OFF LEN: P = the prefix written back (as getent prints
# addresses: 2001:db8:5:1::, not ...::0)
mk() {
	if [ "$SEP" = . ]; then P=$1.$2/$3
	elif [ "$2" = 0 ]; then P=$1:/$3
	else P=$1:$(printf %x "$2")/$3; fi
}
# nested PREFIX: P = a prefix inside PREFIX (itself when it is one address)
nested() {
	split "$1"
	[ "$LEN" -ge "$MAX" ] && { P=$1; return; }
	rnd $((MAX - LEN)); _l=$((LEN + 1 + R))
	rnd $((1 << (_l - LEN)))
	mk "$HEAD" $((OFF + R * (1 << (MAX - _l)))) $_l
}
# adjacent PREFIX: P = a prefix of the same length that touches it (its
# sibling, which joins into one CIDR prefix, or the one after / before)
adjacent() {
	split "$1"
	_s=$((1 << (MAX - LEN)))
	rnd 3
	case $R in
	0) _o=$((OFF ^ _s)) ;;
	1) _o=$((OFF + _s)) ;;
	*) _o=$((OFF - _s)) ;;
	esac
	# stay in the byte, and clear of the lab hosts in 198.51.100
	if [ $_o -lt 0 ] || [ $_o -ge 256 ] ||
		{ [ "$HEAD" = 198.51.100 ] && [ $_o -lt 192 ]; }; then
		_o=$((OFF ^ _s))
		[ "$HEAD" = 198.51.100 ] && [ $_o -lt 192 ] && _o=$OFF
	fi
	mk "$HEAD" $_o "$LEN"
}

# ---- the sources ----------------------------------------------------------------
LISTS="sip1 sip2 av1 chat1 chat2 web1"
owner() { case $1 in sip*) W=sipco ;; av*) W=avco ;; chat*) W=chat ;; *) W=webco ;; esac; }
sibling_list() { case $1 in sip1) W=sip2 ;; sip2) W=sip1 ;; chat1) W=chat2 ;; chat2) W=chat1 ;; *) W= ;; esac; }
NAMES="sip.sipco.example.test edge1.avco.example.test edge2.avco.example.test conf.webco.example.test"

# policy: the policy; CHAT_SVC and WEB_DIR vary it (a structural change:
# port classes and chains come and go)
CHAT_SVC="xmpp-s2s, matrix-federation" WEB_DIR=outbound
policy() {
	cat >"$POLF" <<EOF
version: 1
partners:
  sipco:
    services: [sip-federation]
    direction: inbound
    lists: [$L/sip1.txt, $L/sip2.txt]
    domains: [sipco.example.test]
  avco:
    services: [sip-federation, av-edge]
    direction: both
    lists: [$L/av1.txt]
    hosts: [edge1.avco.example.test, edge2.avco.example.test]
  chat:
    services: [$CHAT_SVC]
    direction: both
    lists: [$L/chat1.txt, $L/chat2.txt]
  guardco:
    services: [xmpp-s2s]
    direction: inbound
    addresses: [198.51.100.13]
    lists: [$L/g1.txt, $L/g2.txt]
  webco:
    services: [web-conferencing, matrix-federation]
    direction: $WEB_DIR
    lists: [$L/web1.txt]
    hosts: [conf.webco.example.test]
guards: {min_prefix_v4: 25, min_prefix_v6: 121, max_shrink: 75%}
resolve: {timeout: 2s}
EOF
}
policy

lab_dnsmasq_conf "$D/dns/dnsmasq.conf" 198.51.100.53 "$D/dns/hosts" \
	_sipfederationtls._tcp.sipco.example.test,sip.sipco.example.test,5061
# answer NAME: P = 1-3 addresses for NAME: fresh ones, or one inside a
# prefix some list holds (an overlap with that list's partner)
answer() {
	rnd 3; _k=$((R + 1)); _a=
	while [ $_k -gt 0 ]; do
		rnd 3
		if [ $R = 0 ] && pick_line "$D/all"; then nested "$W"; else pfx; fi
		split "$P"
		rnd $((1 << (MAX - LEN)))
		mk "$HEAD" $((OFF + R)) "$MAX"
		_a="$_a ${P%/*}"
		_k=$((_k - 1))
	done
	P=$_a
}
# zone: the hosts file from $D/dns/NAME (addresses of each name)
zone() {
	for n in $NAMES; do
		for a in $(cat "$D/dns/$n"); do echo "$a $n"; done
	done >"$D/dns/hosts"
}
# resolved NAME: the name resolves to exactly its addresses (v4 and v6)
resolved() {
	_want=$(tr ' ' '\n' <"$D/dns/$1" | grep . | sort -u)
	_got=$(lab_exec edge getent ahosts "$1" 2>/dev/null | awk '{ print $1 }' | sort -u)
	[ "$_want" = "$_got" ]
}
# dns_wait NAMES...: dnsmasq (after SIGHUP) answers what the files say
dns_wait() {
	for _n in $(seq 100); do
		_ok=1
		for n in "$@"; do resolved "$n" || _ok=0; done
		[ $_ok = 1 ] && return 0
		sleep 0.05
	done
	return 1
}

# pick_line FILE: W = a random line of FILE; false when it has none
pick_line() {
	_c=$(grep -c . "$1" 2>/dev/null)
	[ "${_c:-0}" -gt 0 ] || return 1
	rnd "$_c"
	W=$(grep . "$1" | sed -n "$((R + 1))p")
}
# all_lines [EXCEPT_PARTNER]: $D/all = every list line (of other partners)
all_lines() {
	: >"$D/all"
	for f in $LISTS; do
		owner $f
		[ "$W" = "${1:-}" ] || cat "$L/$f.txt" >>"$D/all"
	done
}

# drop FILE LINE: LINE (each copy of it) leaves FILE, unless nothing would
# be left: an empty list is a failed source, which keeps its last known
# good addresses (B's empty state has none)
drop() {
	grep -vxF "$2" "$1" >"$1.new"
	if [ -s "$1.new" ]; then mv "$1.new" "$1"; else rm -f "$1.new"; return 1; fi
}

# change: one random change, described in $WHAT (appended)
change() {
	rnd 6; nth $R $LISTS; f=$W; F=$L/$f.txt
	owner $f; me=$W
	rnd 20
	case $R in
	0 | 1 | 2 | 3)
		pfx; echo "$P" >>"$F"; WHAT="$WHAT; $f +$P" ;;
	4 | 5)
		all_lines "$me"
		if pick_line "$D/all"; then
			echo "$W" >>"$F"; WHAT="$WHAT; $f +$W (another partner's)"
		else pfx; echo "$P" >>"$F"; WHAT="$WHAT; $f +$P"; fi ;;
	6 | 7)
		if pick_line "$F"; then nested "$W"; echo "$P" >>"$F"
			WHAT="$WHAT; $f +$P (in $W)"; fi ;;
	8 | 9)
		if pick_line "$F"; then adjacent "$W"; echo "$P" >>"$F"
			WHAT="$WHAT; $f +$P (next to $W)"; fi ;;
	10)
		sibling_list $f; _to=$W
		rnd 2
		if [ -n "$_to" ] && [ $R = 0 ] && pick_line "$L/$_to.txt"; then
			echo "$W" >>"$F"; WHAT="$WHAT; $f +$W (a duplicate)"
		elif [ -n "$_to" ] && pick_line "$F" && drop "$F" "$W"; then
			echo "$W" >>"$L/$_to.txt"; WHAT="$WHAT; $W moved from $f to $_to"
		fi ;;
	11 | 12 | 13 | 14)
		if pick_line "$F" && drop "$F" "$W"; then WHAT="$WHAT; $f -$W"; fi ;;
	15 | 16)
		if pick_line "$F"; then
			_old=$W; pfx
			grep -vxF "$_old" "$F" >"$F.new"; echo "$P" >>"$F.new"; mv "$F.new" "$F"
			WHAT="$WHAT; $f $_old->$P"
		fi ;;
	*)
		rnd 4; nth $R $NAMES; n=$W
		all_lines; answer "$n"
		echo "$P" >"$D/dns/$n"; DNS_CHANGED="$DNS_CHANGED $n"
		WHAT="$WHAT; $n ->$P" ;;
	esac
}

# fix PARTNER: what an operator does about a partner the guards hold
# back: one of its widest lines (/26, /27; /122, /123) goes, else any
fix() {
	case $1 in sipco) _fl="sip1 sip2" ;; avco) _fl=av1 ;; chat) _fl="chat1 chat2" ;;
	webco) _fl=web1 ;; *) return ;; esac
	: >"$D/wide"
	for f in $_fl; do
		grep -E '/(2[67]|12[23])$' "$L/$f.txt" | sed "s|^|$f |" >>"$D/wide"
	done
	if ! pick_line "$D/wide"; then
		for f in $_fl; do sed "s|^|$f |" "$L/$f.txt"; done >"$D/wide"
		pick_line "$D/wide" || return
	fi
	f=${W%% *}; _old=${W#* }
	drop "$L/$f.txt" "$_old" && WHAT="$WHAT; $f -$_old (held back: the fix)"
}

# ---- running fedwall in A and B ----------------------------------------------------
# fa / fb ARGS...: fedwall -v in A (edge) / B (bee); $RC, $D/out, $D/err
fa() { lab_fw edge "$@" -v -f "$POLF" --state-dir "$STA"; }
# (B also turns the incremental path off: FEDWALL_INCR=0; with an empty
# state it has nothing to patch from anyway, which NBINC checks)
fb() {
	lab_exec bee env FEDWALL_INCR=0 "$FEDWALL" "$@" -v -f "$POLF" --state-dir "$STB" \
		>"$D/out" 2>"$D/err"
	RC=$?
}
NFAIL=0
# bad STEP WHAT...: one FAIL line naming the seed and the step; for the
# first five, what the step changed and how to replay it on stderr, and
# true: the caller then shows the details
bad() {
	_s=$1; shift
	fail "incremental: seed $SEED step $_s: $*"
	NFAIL=$((NFAIL + 1))
	[ $NFAIL -le 5 ] || return 1
	echo "    step $_s changed:${STEPWHAT:- nothing}" >&2
	echo "    replay: INCR_SEED=$SEED INCR_STEPS=$STEPS FEDWALL=$FEDWALL sh $0" >&2
}
# differ A B: the diff of two table listings, shortened
differ() { diff -u "$1" "$2" | head -40 | sed "s/^/    /" >&2; }
# errs WHO FILE: a run's stderr but its notes on each source
errs() { grep -v ": note: partner '" "$D/$2" | sed "s/^/    $1: /" >&2; }

# tbl HOST FILE: table inet fedwall of HOST into FILE, normalised: every
# set's and map's elements one a line, sorted; blocks (sets, maps,
# chains) sorted; counter values blanked.  FILE.el: "SET ELEMENT" lines
# (a set's match stops at its end: an empty map has no elements line).
tbl() {
	lab_exec "$1" nft list table inet fedwall 2>/dev/null | EL="$2.el" perl -0777 -ne '
		s/packets \d+ bytes \d+/packets - bytes -/g;
		my @el;
		s{((?:set|map) (\S+) \{(?:(?!\n\t\}).)*?)elements = \{(.*?)\}}{
			my ($head, $set) = ($1, $2);
			my @e = sort grep { length } map { s/^\s+|\s+$//g; $_ } split /,/, $3;
			push @el, map { "$set $_\n" } @e;
			$head . "elements = {\n" . join("", map { "\t\t\t$_\n" } @e) . "\t\t}"
		}gse;
		print join("\n\n", sort split(/\n\n/, $_));
		open(my $f, ">", $ENV{EL}) or die; print $f sort @el;' >"$2"
}

# derive_b MODE: B's full derivation, MODE pre (from A's table before the
# step, in $D/pre.nft) or none (from no table); its table in $D/b.MODE,
# exit status in RCB, stderr in $D/b.MODE.err
derive_b() {
	lab_exec bee nft flush ruleset
	if [ "$1" = pre ] && [ -s "$D/pre.nft" ] &&
		! lab_exec bee nft -f "$D/pre.nft" 2>"$D/b.load.err"; then
		sed 's/^/    nft -f: /' "$D/b.load.err" >&2
		return 1
	fi
	rm -rf "$STB"; mkdir -p "$STB"
	# shellcheck disable=SC2086
	fb refresh $FORCE
	RCB=$RC
	cp "$D/err" "$D/b.$1.err"
	tbl bee "$D/b.$1"
}

lab_serve edge tcp 5269 || { fail "incremental lab: probe server"; exit 1; }

# ---- the start ---------------------------------------------------------------------
for f in $LISTS; do
	: >"$L/$f.txt"
	rnd 4; _k=$((R + 3))
	while [ $_k -gt 0 ]; do pfx; echo "$P" >>"$L/$f.txt"; _k=$((_k - 1)); done
done
printf '198.51.100.0/26\n2001:db8:5:9::1\n2001:db8:5:9::3\n' >"$L/g1.txt"
printf '198.51.100.64/26\n2001:db8:5:9::5\n2001:db8:5:9::7\n' >"$L/g2.txt"
all_lines
for n in $NAMES; do answer "$n"; echo "$P" >"$D/dns/$n"; done
zone
ip netns exec "$LAB-dns" "$DNSMASQ" --keep-in-foreground --conf-file="$D/dns/dnsmasq.conf" \
	--log-facility="$D/dns/log" --pid-file="$D/dns/pid" &
DNSPID=$!
LAB_PIDS="$LAB_PIDS $DNSPID"
# shellcheck disable=SC2086
dns_wait $NAMES || { fail "incremental lab: dnsmasq answers in the lab"; exit 1; }
echo "incremental: seed $SEED, $STEPS steps (INCR_SEED=N to replay another)"

# The guard cases, at fixed steps, on partner guardco, whose lists only
# they change: it starts with 198.51.100.0/26 and .64/26 (with its inline
# .13: one /25, allowed: the stranger, .99, gets in) and four IPv6
# addresses.  Step GW adds .128/26 alone, which joins them into 192
# addresses: refused (hotel, .140, stays out; the stranger keeps its way
# in); GW+1 takes it away again.  GS leaves one IPv6 line in each of
# guardco's lists (an empty list would be a failed source, not an empty
# partner): more than max_shrink, refused, while webco gains a line in
# the same step; GS+1 refreshes the same with --force, which lets the
# shrink through (B's too); GS+2 puts the lines back.
GW=$((STEPS / 3))
GS=$((2 * STEPS / 3))
[ $GS -gt $((GW + 2)) ] || GS=$((GW + 3))
HELD='' NOTEBAD='' COUNTBAD='' NCOUNTED=0
: >"$D/why.log"
NAPPLY=0 NINC=0 NFULL=0 NREF=0 NB1=0 NB2=0 NPLAN=0 NCOMMIT=0 NQUIET=0 NBINC=0

step=0
while [ $step -le "$STEPS" ]; do
	WHAT='' DNS_CHANGED='' APPLY='' FORCE=''
	lab_exec edge nft list table inet fedwall >"$D/pre.nft" 2>/dev/null || : >"$D/pre.nft"
	tbl edge "$D/a.pre"
	if [ $step = 0 ]; then
		WHAT="; the first refresh: the table is created"
	elif [ $step = $GW ]; then
		echo 198.51.100.128/26 >>"$L/g2.txt"
		WHAT="; g2 +198.51.100.128/26 (joins into .0-.191: wider than /25)"
	elif [ $step = $((GW + 1)) ]; then
		grep -vxF 198.51.100.128/26 "$L/g2.txt" >"$L/g2.new"
		mv "$L/g2.new" "$L/g2.txt"
		WHAT="; g2 -198.51.100.128/26"
		change
	elif [ $step = $GS ]; then
		cp "$L/g1.txt" "$D/g1.keep"; cp "$L/g2.txt" "$D/g2.keep"
		# (an empty list is a failed source, not an empty partner)
		echo 2001:db8:5:9::99 >"$L/g1.txt"; echo 2001:db8:5:9::99 >"$L/g2.txt"
		echo 2001:db8:5:7::1 >>"$L/web1.txt"
		WHAT="; g1, g2 one new line each (all else removed: more than max_shrink); web1 +2001:db8:5:7::1"
	elif [ $step = $((GS + 1)) ]; then
		FORCE=--force
		WHAT="; nothing, but refresh --force: the shrink goes through"
	elif [ $step = $((GS + 2)) ]; then
		cp "$D/g1.keep" "$L/g1.txt"; cp "$D/g2.keep" "$L/g2.txt"
		WHAT="; g1, g2 back"
	else
		# shellcheck disable=SC2086
		for p in $HELD; do fix $p; done
		rnd 25
		case $R in
		0 | 1) WHAT="${WHAT:-; nothing}" ;;
		18)
			if [ "$WEB_DIR" = outbound ]; then WEB_DIR=both; else WEB_DIR=outbound; fi
			policy; WHAT="$WHAT; the policy: webco $WEB_DIR"; change ;;
		19)
			if [ "$CHAT_SVC" = xmpp-s2s ]; then CHAT_SVC="xmpp-s2s, matrix-federation"
			else CHAT_SVC=xmpp-s2s; fi
			policy; WHAT="$WHAT; the policy: chat [$CHAT_SVC]" ;;
		20 | 21) change; APPLY=1 ;;
		2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11) change ;;
		12 | 13 | 14 | 15 | 16 | 22 | 23) change; change ;;
		*) change; change; change ;;
		esac
	fi
	STEPWHAT=$WHAT
	echo "$step$WHAT" >>"$D/steps.log"
	if [ -n "$DNS_CHANGED" ]; then
		zone
		kill -HUP "$DNSPID"
		# shellcheck disable=SC2086
		dns_wait $DNS_CHANGED || bad $step "dnsmasq did not take the new answers"
	fi

	# A: the incremental refresh; sometimes `fedwall apply` first, which
	# takes the lists as they are and the state's DNS answers, and leaves
	# a cache and an inputs digest the refresh must not take for what the
	# state records (the guards of apply are not refresh's: it may commit
	# a shrink refresh would refuse, so then only B2 is the reference)
	if [ -n "$APPLY" ]; then
		fa apply
		WHAT="$WHAT; fedwall apply (exit $RC), then the refresh"
		STEPWHAT=$WHAT
		echo "$step; fedwall apply (exit $RC)" >>"$D/steps.log"
		NAPPLY=$((NAPPLY + 1))
		tbl edge "$D/a.mid"
	else
		cp "$D/a.pre" "$D/a.mid"; cp "$D/a.pre.el" "$D/a.mid.el"
	fi
	# shellcheck disable=SC2086
	fa refresh $FORCE
	RCA=$RC
	cp "$D/out" "$D/a.out"; cp "$D/err" "$D/a.err"
	tbl edge "$D/a.post"
	# (a refresh with nothing to patch says "incremental: 0 partners")
	if grep -Eq 'fedwall: note: table inet fedwall: incremental: [1-9]' "$D/a.err"; then
		NINC=$((NINC + 1))
	fi
	if grep -q 'fedwall: note: table inet fedwall: full derivation:' "$D/a.err"; then
		NFULL=$((NFULL + 1))
	fi
	# each refresh that changed the table says which way it went, once;
	# an incremental one counts the elements it added and removed
	_notes=$(grep -Ec 'fedwall: note: table inet fedwall: (incremental|full derivation):' "$D/a.err")
	if cmp -s "$D/a.mid" "$D/a.post"; then
		NQUIET=$((NQUIET + 1))
	else
		NCOMMIT=$((NCOMMIT + 1))
		[ "$_notes" -eq 1 ] || NOTEBAD="$NOTEBAD $step($_notes)"
	fi
	sed -n 's/.*table inet fedwall: full derivation: //p' "$D/a.err" >>"$D/why.log"
	_n=$(sed -En 's/.*table inet fedwall: incremental: .*[+]([0-9]+) -([0-9]+) element.*/+\1 -\2/p' "$D/a.err")
	if [ -n "$_n" ]; then
		_add=$(comm -13 "$D/a.mid.el" "$D/a.post.el" | wc -l)
		_del=$(comm -23 "$D/a.mid.el" "$D/a.post.el" | wc -l)
		NCOUNTED=$((NCOUNTED + 1))
		if [ "$_n" != "+$_add -$_del" ]; then
			COUNTBAD="$COUNTBAD $step(said $_n, the table +$_add -$_del)"
			{ echo "step $step:$STEPWHAT"
			  grep "incremental:" "$D/a.err"
			  diff "$D/a.mid.el" "$D/a.post.el" | grep '^[<>]' | head -30
			} | sed 's/^/    /' >>"$D/countbad"
		fi
	fi
	refused=0
	grep -q "refresh refused" "$D/a.err" && refused=1 && NREF=$((NREF + 1))
	HELD=$(sed -n "s/.*error: partner '\([a-z0-9_-]*\)': refresh refused.*/\1/p" "$D/a.err" | sort -u)
	if [ $RCA -ne 0 ] && [ $refused = 0 ]; then
		bad $step "A's refresh exits $RCA, no partner refused" && errs A a.err
	fi

	# B1: the same inputs derived afresh over A's table before the step
	if [ -n "$APPLY" ] && [ $RCA -eq 0 ]; then
		:
	elif derive_b pre; then
		NB1=$((NB1 + 1))
		if ! cmp -s "$D/b.pre" "$D/a.post"; then
			bad $step "A's table differs from B's fresh derivation over the same table (- B, + A)" &&
				{ differ "$D/b.pre" "$D/a.post"; errs A a.err; }
		fi
		if [ $RCB -ne $RCA ]; then
			bad $step "A's refresh exits $RCA, B's $RCB" && { errs A a.err; errs B b.pre.err; }
		fi
		grep -q "table inet fedwall: incremental:" "$D/b.pre.err" && NBINC=$((NBINC + 1))
	else
		bad $step "B: A's table before the step does not load with nft -f"
	fi

	# B2 and plan: only when A took every input
	if [ $RCA -eq 0 ]; then
		derive_b none
		NB2=$((NB2 + 1))
		if ! cmp -s "$D/b.none" "$D/a.post"; then
			bad $step "A's table differs from B's derivation from nothing (- B, + A)" &&
				{ differ "$D/b.none" "$D/a.post"; errs A a.err; }
		fi
		[ $RCB -eq 0 ] || bad $step "B's derivation from nothing exits $RCB"
		grep -q "table inet fedwall: incremental:" "$D/b.none.err" && NBINC=$((NBINC + 1))
		fa plan
		NPLAN=$((NPLAN + 1))
		if [ $RC -ne 0 ] || ! printf '%s\n' "$OUT" | grep -q "no changes"; then
			bad $step "plan in A after the refresh: exit $RC, not \"no changes\"" && show
		fi
		# the cache A's next refresh starts from is the kernel's table:
		# a refresh that compares it with a read-back has nothing to do
		lab_exec edge env FEDWALL_LIVE_CACHE=verify "$FEDWALL" refresh -v -f "$POLF" \
			--state-dir "$STA" >"$D/out" 2>"$D/err"
		RC=$?
		tbl edge "$D/a.verify"
		if [ $RC -ne 0 ] || grep -q "FEDWALL_LIVE_CACHE=verify:" "$D/err" ||
			! cmp -s "$D/a.post" "$D/a.verify"; then
			bad $step "A's cache is not the kernel's table (FEDWALL_LIVE_CACHE=verify: exit $RC)" &&
				{ errs A err; differ "$D/a.post" "$D/a.verify"; }
		fi
	fi

	# the guard cases: the same refusal as the full path, and packets
	case $step in
	0)
		reach "guard: guardco's .64/26 admits the stranger (198.51.100.99) on tcp/5269" \
			stranger tcp $E4 5269
		blocked "guard: hotel (198.51.100.140) is out" hotel tcp $E4 5269 ;;
	"$GW")
		if [ $RCA -eq 1 ] && grep -q "partner 'guardco': refresh refused" "$D/a.err" &&
			cmp -s "$D/a.pre" "$D/a.post"; then
			pass "guard: a /26 joining guardco's /25 into .0-.191 is refused (exit 1, table unchanged, as B's)"
		else
			fail "guard: a /26 joining guardco's /25 into .0-.191 is refused (exit $RCA, as B's: $RCB)"
			errs A a.err; differ "$D/a.pre" "$D/a.post"
		fi
		blocked "guard: hotel (198.51.100.140, in the refused /26) stays out" \
			hotel tcp $E4 5269
		reach "guard: guardco keeps what it had (the stranger, in .64/26, still gets in)" \
			stranger tcp $E4 5269
		reach "guard: guardco's inline address (charlie) still gets in" charlie tcp $E4 5269 ;;
	$((GW + 1)))
		blocked "guard: the /26 taken away, hotel is still out" hotel tcp $E4 5269
		reach "guard: ... and the stranger still in" stranger tcp $E4 5269 ;;
	"$GS")
		# webco's line goes in, unless the random steps before left
		# webco held back by its own guard (a shrink of its addresses
		# still pending): then it keeps what it had, line and all
		WEBIN=0 WEBWANT=1 WEBHELD=
		grep -Eq "2001:db8:5:7::1( |\$)" "$D/a.post" && WEBIN=1
		if grep -q "partner 'webco': refresh refused" "$D/a.err"; then
			WEBWANT=0 WEBHELD="; webco itself held back, its line out"
		fi
		if [ $RCA -eq 1 ] && grep -q "partner 'guardco': refresh refused: would remove" "$D/a.err" &&
			[ $WEBIN = $WEBWANT ] && ! grep -Eq "2001:db8:5:7::1( |\$)" "$D/a.pre"; then
			pass "guard: guardco's lists replaced by one line: refused past max_shrink, webco's line goes in (as B's)$WEBHELD"
		else
			fail "guard: guardco's lists replaced by one line: refused past max_shrink, webco's line goes in"
			errs A a.err
		fi ;;
	$((GS + 1)))
		if [ $RCA -eq 0 ] && grep -Eq "2001:db8:5:9::99( |\$)" "$D/a.post" &&
			! grep -Eq "2001:db8:5:9::1( |\$)" "$D/a.post"; then
			pass "guard: refresh --force lets guardco's shrink through (as B's)"
		else
			fail "guard: refresh --force lets guardco's shrink through (exit $RCA)"
			errs A a.err
		fi ;;
	esac
	step=$((step + 1))
done

if [ $NFAIL -eq 0 ]; then
	pass "incremental: seed $SEED, $STEPS steps: A's table equals B's fresh derivation over the same table, element for element ($NB1 steps, $NREF with a partner refused, same exit status)"
	pass "incremental: ... and B's derivation from no table ($NB2 steps where A took every input); plan in A: no changes, and A's cache is the kernel's table ($NPLAN)"
fi
if [ $NBINC -eq 0 ]; then
	pass "incremental: B's derivations with an empty state were never incremental"
else
	fail "incremental: B's derivations with an empty state were never incremental ($NBINC were: the test cannot compare)"
fi
if [ $((NINC + NFULL)) -gt 0 ]; then
	if [ -z "$NOTEBAD" ]; then
		pass "incremental: each of the $NCOMMIT refreshes that changed A's table said once which way (incremental or full derivation)"
	else
		fail "incremental: each refresh that changed A's table says once which way (steps(notes):$NOTEBAD)"
	fi
fi
if [ $NCOUNTED -gt 0 ]; then
	if [ -z "$COUNTBAD" ]; then
		pass "incremental: the $NCOUNTED incremental notes count the elements that changed in the table (+A -R)"
	else
		fail "incremental: the incremental notes count the elements that changed in the table:$COUNTBAD"
		cat "$D/countbad" >&2
	fi
fi
# what the sequence did, so that a seed that never overlaps or never
# joins shows (a listing of each step: the FAIL lines, or $D/steps.log)
kinds() { grep -o -e "$1" "$D/steps.log" | wc -l | tr -d ' '; }
echo "incremental: changes: $(kinds '[a-z0-9]* +[0-9a-f]')" \
	"list lines added ($(kinds "another partner's") another partner's," \
	"$(kinds '(in ') nested, $(kinds '(next to') adjacent, $(kinds 'a duplicate')" \
	"duplicates), $(kinds '[a-z0-9]* -[0-9a-f]') removed, $(kinds "->[0-9]") replaced," \
	"$(kinds 'example.test ->') DNS answers, $(kinds 'moved from') lines moved to the" \
	"partner's other list, $(kinds 'the policy:') policy edits; $(kinds 'fedwall apply')" \
	"times apply before the refresh; $(kinds '; nothing') steps without any"
if [ -s "$D/why.log" ]; then
	echo "incremental: why A's refresh derived in full (partners and prefixes blanked):"
	sed -E "s/'[^']*'/'X'/g; s/[0-9a-f:.]+\/[0-9]+/P/g; s/prefix [0-9a-f:.]+ /prefix P /g" "$D/why.log" | sort | uniq -c | sort -rn |
		head -8 | sed 's/^/    /'
fi
echo "incremental: $NCOMMIT steps changed A's table, $NQUIET did not; notes: $NINC incremental, $NFULL full derivation"
if [ $NINC -gt 0 ] && [ $NFULL -gt 0 ]; then
	pass "incremental: both paths taken: $NINC refreshes patched partners incrementally, $NFULL fell back to the full derivation"
else
	fail "incremental: both paths taken ($NINC refreshes said \"incremental: N partners patched\" with N > 0, $NFULL \"full derivation:\"; both must occur)"
fi

exit $SUITE_FAILED
