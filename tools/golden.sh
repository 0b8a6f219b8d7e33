#!/bin/sh
# tools/golden.sh FEDWALL - rewrites the golden files from the binary
# FEDWALL (`make golden` passes $(BUILD)/fedwall).  Review `git diff`
# before committing: a changed golden file is a changed behaviour.
#
# One loop per kind of golden file.  Paths are relative to the top of the
# tree, as tests/*.sh use them, so messages naming files are stable.
set -u
cd "$(dirname "$0")/.."
FEDWALL=${1:?usage: tools/golden.sh path/to/fedwall}
case "$FEDWALL" in /*) ;; *) FEDWALL="$PWD/$FEDWALL" ;; esac
status=0

# Kind 1: valid policies -> the normalised policy `check -v` prints.
for f in tests/policy/ok/*.yaml; do
	if "$FEDWALL" check -v -f "$f" >"${f%.yaml}.ok.tmp"; then
		sed "s|$PWD/||g" "${f%.yaml}.ok.tmp" >"${f%.yaml}.ok"
	else
		echo "golden: $f does not check (exit $?)" >&2
		status=1
	fi
	rm -f "${f%.yaml}.ok.tmp"
done

# Kind 2: invalid policies -> the diagnostics `check` writes to stderr.
for f in tests/policy/fail/*.yaml; do
	"$FEDWALL" check -f "$f" >/dev/null 2>"${f%.yaml}.err"
	rc=$?
	if [ "$rc" -ne 1 ]; then
		echo "golden: $f: expected exit 1, got $rc" >&2
		status=1
	fi
done

# Kind 3: policies -> the nft text `generate` prints (.nft), and its
# diagnostics (.err, only when there are any; tree paths made relative).
# A policy without .nft is one generate must refuse (exit 1).
top=$PWD
for f in tests/gen/*.yaml; do
	# X.state/: the state directory of X's feeds (as tests/gen.sh)
	sd=
	[ -d "${f%.yaml}.state" ] && sd="--state-dir ${f%.yaml}.state"
	# shellcheck disable=SC2086 # two words or none
	"$FEDWALL" generate -f "$f" $sd >"${f%.yaml}.nft.tmp" 2>"${f%.yaml}.err.tmp"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		mv "${f%.yaml}.nft.tmp" "${f%.yaml}.nft"
	else
		rm -f "${f%.yaml}.nft.tmp"
		if [ -f "${f%.yaml}.nft" ] || [ "$rc" -ne 1 ]; then
			echo "golden: $f: generate exit $rc (.nft kept)" >&2
			status=1
		fi
	fi
	sed "s|$top/||g" "${f%.yaml}.err.tmp" >"${f%.yaml}.err"
	rm -f "${f%.yaml}.err.tmp"
	[ -s "${f%.yaml}.err" ] || rm -f "${f%.yaml}.err"
done

exit $status
