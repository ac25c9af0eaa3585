#!/usr/bin/env bash
# compare-iscsi.sh: libiscsi's iscsi-perf against vmstorbench's pure-Go iSCSI initiator on
# the same LUN, in one run, with the ratio: 4 KiB random reads at queue depth 1 and 32, and
# 1 MiB sequential reads at queue depth 8.
#
# It starts tgtd (Debian's tgt) on a random loopback port with one 256 MiB file-backed LUN
# filled with random data, then for ROUNDS rounds runs, case by case, iscsi-perf for SECS
# seconds and next to it (first or second, alternately) BenchmarkRead (backends/iscsi/bench_test.go: one Queue at QD > 1,
# ReadAt at QD1, the way the engine drives it) for SECS seconds. iscsi-perf
# reads with READ(16) through one session, as we do; both count completed commands per second.
# MiB/s = IOPS × the request size. The summary gives each tool's median and the median of the
# per-round ratios: the two runs of a round are back to back, so their ratio is the least
# disturbed by other load on a shared machine. Target: ratio >= 0.9. It also gives the CPU
# time each initiator spends (iscsi-perf: its process's user+system time over its reads;
# ours: BenchmarkRead's cpu-us/op, the process's getrusage over the timed reads) per 1,000
# reads and per GiB read, and their ratio (ours / iscsi-perf; target <= 1.1), which other
# load disturbs much less than IOPS.
#
# With GOTGT=1 the same cases run against the gotgt target too (started from the compiled
# test binary in its testbed child mode), for the record.
#
# With BEFORE=DIR (another checkout of vmstorbench, e.g. a `git worktree` of the commit before
# a change) its BenchmarkRead runs in the same rounds as a third side, in rotating order, and
# the summary adds its figures and the CPU ratio ours / before: the way to tell whether a
# change lowers the CPU per read when the machine's load drifts by 2x between runs.
# OURS_ENV="NAME=VALUE ..." sets environment variables for our side (and BEFORE's), e.g.
# GOMAXPROCS=1 to see what the Go scheduler's second thread costs.
#
#   scripts/compare-iscsi.sh              # needs root, tgt, libiscsi-bin, go
#   ROUNDS=5 SECS=5 GOTGT=1 scripts/compare-iscsi.sh
#   CASES=1m-seq-qd8 scripts/compare-iscsi.sh   # only the cases whose names match this regexp
#   BEFORE=/tmp/before scripts/compare-iscsi.sh  # /tmp/before: git worktree add --detach /tmp/before main
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
GOTGT=${GOTGT:-0}
CASES=${CASES:-.}
BEFORE=${BEFORE:-}
OURS_ENV=${OURS_ENV:-}
IQN=iqn.2025-01.org.vmstorbench:compare

cd "$(dirname "$0")/.."
for tool in tgtd tgtadm iscsi-perf go /usr/bin/time; do
	command -v "$tool" >/dev/null || {
		echo "compare-iscsi: $tool not found (apt-get install tgt libiscsi-bin)" >&2
		exit 1
	}
done
[ "$(id -u)" = 0 ] || { echo "compare-iscsi: tgtd needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/compare-iscsi.XXXXXX)
tgt_pid= ctl= gotgt_pid=
cleanup() {
	if [ -n "$tgt_pid" ]; then
		# tgtd ignores SIGTERM while it has targets: delete them, ask it to exit, then KILL.
		tgtadm -C "$ctl" --lld iscsi --mode target --op delete --force --tid 1 >/dev/null 2>&1 || true
		tgtadm -C "$ctl" --mode system --op delete >/dev/null 2>&1 || true
		for _ in $(seq 20); do kill -0 "$tgt_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$tgt_pid" 2>/dev/null || true
		wait "$tgt_pid" 2>/dev/null || true
		rm -f "/var/run/tgtd/socket.$ctl" "/var/run/tgtd/socket.$ctl.lock"
	fi
	if [ -n "$gotgt_pid" ]; then
		kill "$gotgt_pid" 2>/dev/null || true
		wait "$gotgt_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { # a TCP port nothing listens on at 127.0.0.1
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
wait_port() { # wait_port PORT PID NAME
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
		kill -0 "$2" 2>/dev/null || { echo "compare-iscsi: $3 exited" >&2; exit 1; }
		sleep 0.05
	done
	echo "compare-iscsi: $3 not listening on port $1" >&2
	exit 1
}

go test -c -o "$work/iscsi.test" ./backends/iscsi
if [ -n "$BEFORE" ]; then
	(cd "$BEFORE" && go test -c -o "$work/before.test" ./backends/iscsi) ||
		{ echo "compare-iscsi: cannot build BenchmarkRead in BEFORE=$BEFORE" >&2; exit 1; }
fi
head -c 256M /dev/urandom >"$work/lun.img"

port=$(free_port)
while :; do
	ctl=$((1000 + RANDOM % 31000)) # tgtd takes control ports 0-32767
	[ -e "/var/run/tgtd/socket.$ctl" ] || break
done
tgtd -f -C "$ctl" --iscsi "portal=127.0.0.1:$port" >"$work/tgtd.log" 2>&1 &
tgt_pid=$!
for _ in $(seq 100); do
	tgtadm -C "$ctl" --lld iscsi --mode target --op show >/dev/null 2>&1 && break
	kill -0 "$tgt_pid" 2>/dev/null || { echo "compare-iscsi: tgtd exited: $(cat "$work/tgtd.log")" >&2; exit 1; }
	sleep 0.05
done
tgtadm -C "$ctl" --lld iscsi --mode target --op new --tid 1 --targetname "$IQN"
tgtadm -C "$ctl" --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$work/lun.img"
tgtadm -C "$ctl" --lld iscsi --mode target --op bind --tid 1 --initiator-address ALL
wait_port "$port" "$tgt_pid" tgtd
targets=("tgt iscsi://127.0.0.1:$port/$IQN/1")

if [ "$GOTGT" = 1 ]; then
	gport=$(free_port)
	mkdir -p "$work/gotgt"
	cfg=$(printf '{"port":%d,"target":"%s","lun_file":"%s","lun":1,"dir":"%s"}' "$gport" "$IQN" "$work/lun.img" "$work/gotgt")
	VMSTORBENCH_TESTBED_CHILD=gotgt VMSTORBENCH_GOTGT_CONFIG="$cfg" "$work/iscsi.test" >"$work/gotgt.log" 2>&1 &
	gotgt_pid=$!
	wait_port "$gport" "$gotgt_pid" gotgt
	targets+=("gotgt iscsi://127.0.0.1:$gport/$IQN/1")
fi

# case: name, iscsi-perf flags, benchmark name, request bytes
cases=(
	"4k-rand-qd1|-m 1 -b 8 -r|4k-rand-qd1|4096"
	"4k-rand-qd32|-m 32 -b 8 -r|4k-rand-qd32|4096"
	"1m-seq-qd8|-m 8 -b 2048|1m-seq-qd8|1048576"
)
selected=()
for c in "${cases[@]}"; do
	[[ ${c%%|*} =~ $CASES ]] && selected+=("$c")
done
[ ${#selected[@]} -gt 0 ] || { echo "compare-iscsi: no case matches CASES=$CASES" >&2; exit 1; }
cases=("${selected[@]}")

perf_run() { # perf_run URL FLAGS... -> "IOPS CPU-µs-per-read"
	local url=$1 out iops
	shift
	out=$(/usr/bin/time -f '%U %S' -o "$work/time" timeout $((SECS + 20)) iscsi-perf -t "$SECS" "$@" "$url" 2>&1) ||
		{ echo "compare-iscsi: iscsi-perf $* failed: $out" >&2; exit 1; }
	iops=$(echo "$out" | tr '\r' '\n' | sed -n 's/.*iops average \([0-9]*\).*/\1/p' | tail -1)
	awk -v n="$iops" -v s="$SECS" '{ printf "%d %.1f\n", n, (n > 0 ? ($1 + $2) * 1e6 / (n * s) : 0) }' "$work/time"
}

ours_run() { # ours_run URL BENCH [TEST-BINARY] -> "IOPS CPU-µs-per-read"
	local out
	# shellcheck disable=SC2086
	out=$(env $OURS_ENV VMSTORBENCH_ISCSI_BENCH_URL="$1" "${3:-$work/iscsi.test}" -test.run '^$' \
		-test.bench "^BenchmarkRead/$2\$" -test.benchtime "${SECS}s" 2>&1) ||
		{ echo "compare-iscsi: BenchmarkRead/$2 (${3:-$work/iscsi.test}) failed: $out" >&2; exit 1; }
	echo "$out" | awk '/^BenchmarkRead\// { for (i = 2; i <= NF; i++) { if ($(i) == "IOPS") n = $(i-1); if ($(i) == "cpu-us/op") c = $(i-1) } }
		END { printf "%.0f %.1f\n", n, c }'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
best() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }

summary=()
sides=(perf ours)
[ -z "$BEFORE" ] || sides+=(before)
for t in "${targets[@]}"; do
	tname=${t%% *}
	url=${t#* }
	echo "== $tname ($url), $ROUNDS rounds of ${SECS}s per tool and case"
	printf '%-6s %-14s %22s %22s' round case "iscsi-perf IOPS (cpu)" "vmstorbench IOPS (cpu)"
	[ -z "$BEFORE" ] && echo || printf ' %22s\n' "BEFORE IOPS (cpu)"
	declare -A pall=() oall=() rall=() pcpu=() ocpu=() crall=() ball=() bcpu=() brall=()
	for r in $(seq "$ROUNDS"); do
		for c in "${cases[@]}"; do
			IFS='|' read -r name flags bench bytes <<<"$c"
			# Rotate which side goes first, so that none always follows another.
			b=0 bc=0
			for i in $(seq 0 $((${#sides[@]} - 1))); do
				case ${sides[$(((i + r) % ${#sides[@]}))]} in
				# shellcheck disable=SC2086
				perf) read -r p pc <<<"$(perf_run "$url" $flags)" ;;
				ours) read -r o oc <<<"$(ours_run "$url" "$bench")" ;;
				before) read -r b bc <<<"$(ours_run "$url" "$bench" "$work/before.test")" ;;
				esac
			done
			pall[$name]="${pall[$name]:-} $p"
			oall[$name]="${oall[$name]:-} $o"
			pcpu[$name]="${pcpu[$name]:-} $pc"
			ocpu[$name]="${ocpu[$name]:-} $oc"
			rall[$name]="${rall[$name]:-} $(awk -v p="$p" -v o="$o" 'BEGIN { printf "%.3f", (p > 0 ? o / p : 0) }')"
			crall[$name]="${crall[$name]:-} $(awk -v p="$pc" -v o="$oc" 'BEGIN { printf "%.3f", (p > 0 ? o / p : 0) }')"
			printf '%-6s %-14s %12s (%6.1f µs) %12s (%6.1f µs)' "$r" "$name" "$p" "$pc" "$o" "$oc"
			if [ -n "$BEFORE" ]; then
				ball[$name]="${ball[$name]:-} $b"
				bcpu[$name]="${bcpu[$name]:-} $bc"
				brall[$name]="${brall[$name]:-} $(awk -v b="$bc" -v o="$oc" 'BEGIN { printf "%.3f", (b > 0 ? o / b : 0) }')"
				printf ' %12s (%6.1f µs)' "$b" "$bc"
			fi
			echo
		done
	done
	for c in "${cases[@]}"; do
		IFS='|' read -r name flags bench bytes <<<"$c"
		p=$(echo "${pall[$name]}" | median)
		o=$(echo "${oall[$name]}" | median)
		q=$(echo "${rall[$name]}" | median)
		pc=$(echo "${pcpu[$name]}" | median)
		oc=$(echo "${ocpu[$name]}" | median)
		cq=$(echo "${crall[$name]}" | median)
		cb=$(echo "${crall[$name]}" | best)
		# CPU per 1,000 reads in ms equals CPU per read in µs; per GiB it scales by the read size.
		line=$(awk -v t="$tname" -v n="$name" -v p="$p" -v o="$o" -v q="$q" -v b="$bytes" -v pc="$pc" -v oc="$oc" -v cq="$cq" -v cb="$cb" 'BEGIN {
			printf "%-6s %-14s %8d IOPS %7.1f MiB/s %6.1f ms %6.3f s   %8d IOPS %7.1f MiB/s %6.1f ms %6.3f s   %5.2f  %5.2f  %5.2f / %4.2f",
				t, n, p, p * b / 1048576, pc, pc * 1073741824 / b / 1e6, o, o * b / 1048576, oc, oc * 1073741824 / b / 1e6, q, (pc > 0 ? oc / pc : 0), cq, cb }')
		if [ -n "$BEFORE" ]; then
			line+=$(awk -v b="$(echo "${ball[$name]}" | median)" -v bc="$(echo "${bcpu[$name]}" | median)" \
				-v r="$(echo "${brall[$name]}" | median)" -v rb="$(echo "${brall[$name]}" | best)" 'BEGIN {
				printf "   %8d IOPS %6.1f ms  %5.2f / %4.2f", b, bc, r, rb }')
		fi
		summary+=("$line")
	done
	unset pall oall rall pcpu ocpu crall ball bcpu brall
done

echo
echo "medians of $ROUNDS rounds (ms: initiator user+system CPU per 1,000 reads; s: per GiB read;"
echo "ratio: median of the per-round IOPS ratios; CPU: ours / iscsi-perf of the medians; CPU/round:"
echo "median / lowest of the per-round CPU ratios ours / iscsi-perf (the sides of a round share its load)):"
header=$(printf '%-6s %-14s %-51s   %-51s   %5s  %5s  %s' target case "iscsi-perf (libiscsi)" "vmstorbench (Go initiator)" ratio "CPU" "CPU/round")
[ -z "$BEFORE" ] || header+=$(printf '   %-40s' "BEFORE: IOPS, CPU, CPU ours/before per round (median / lowest)")
echo "$header"
printf '%s\n' "${summary[@]}"
