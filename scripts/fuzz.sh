#!/usr/bin/env bash
# Runs every Go native fuzz target of the module (found with `go test -list`), one after
# another, each for $FUZZTIME (default 10m), then prints a table: target, time, result ("ok"
# or the crasher the fuzzer wrote under the package's testdata/fuzz/). Exits non-zero when a
# target failed. `go test ./...` already runs every target's seed corpus; this searches
# further.
#
#   scripts/fuzz.sh                     # 10 minutes per target
#   FUZZTIME=30s scripts/fuzz.sh        # a quick pass
#   FUZZ='FuzzReply|FuzzQMP' scripts/fuzz.sh   # only targets matching a regexp
#
# -timeout 0: go test's default 10-minute test timeout would otherwise end a 10-minute fuzz run
# with a panic just as it finishes.
# FUZZPARALLEL sets go test's -parallel (fuzzing workers; default GOMAXPROCS).
# FUZZMINIMIZETIME bounds the minimizing of each new input (default 5s; go's 60s lets the
# slow targets, results and report, spend most of a short run minimizing). The fuzzers' logs
# go to $FUZZLOGS (default: a temporary directory, named at the end).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10m}
FUZZ=${FUZZ:-.}
LOGS=${FUZZLOGS:-$(mktemp -d "${TMPDIR:-/tmp}/vmstorbench-fuzz.XXXXXX")}
mkdir -p "$LOGS"
parallel=()
[ -n "${FUZZPARALLEL:-}" ] && parallel=(-parallel "$FUZZPARALLEL")

# `go test -list` prints a package's matching names, then "ok  <package> <time>".
list=$("$GO" test -list '^Fuzz' ./... 2>&1) || { echo "$list" >&2; echo "fuzz.sh: listing the fuzz targets failed" >&2; exit 2; }
targets=()
names=()
while read -r first second _; do
	case $first in
	Fuzz*) names+=("$first") ;;
	ok)
		for n in "${names[@]}"; do
			[[ $n =~ $FUZZ ]] && targets+=("$second $n")
		done
		names=()
		;;
	esac
done <<<"$list"
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz target matches '$FUZZ'" >&2
	exit 2
fi
echo "fuzz.sh: ${#targets[@]} targets, $FUZZTIME each; logs in $LOGS"

rows=()
failed=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	log="$LOGS/$name.log"
	echo "== $name ($pkg)"
	start=$SECONDS
	"$GO" test -timeout 0 -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINIMIZETIME:-5s}" \
		"${parallel[@]}" "$pkg" >"$log" 2>&1
	rc=$?
	took=$((SECONDS - start))
	if [ $rc -eq 0 ]; then
		result=ok
	else
		failed=$((failed + 1))
		dir=$("$GO" list -f '{{.Dir}}' "$pkg")
		crasher=$(sed -n 's/^[[:space:]]*Failing input written to \(.*\)$/\1/p' "$log" | tail -1)
		if [ -n "$crasher" ]; then
			result="FAIL ${dir#"$PWD"/}/$crasher"
		else
			result="FAIL (exit $rc, see $log)"
		fi
	fi
	tail -n 3 "$log" | sed 's/^/   /'
	rows+=("$(printf '%-22s %-40s %6ss  %s' "$name" "${pkg#github.com/vmstorbench/vmstorbench/}" "$took" "$result")")
done

echo
printf '%-22s %-40s %7s  %s\n' TARGET PACKAGE TIME RESULT
printf '%s\n' "${rows[@]}"
echo "logs: $LOGS"
if [ $failed -gt 0 ]; then
	echo "fuzz.sh: $failed of ${#targets[@]} targets failed; each crasher is now a seed: fix the code, keep the file" >&2
	exit 1
fi
