#!/usr/bin/env bash
# compare-iscsi.sh: vmstorbench's pure-Go iSCSI initiator against libiscsi on the same LUN, in
# one run, with the ratios: 4 KiB random reads at queue depth 1 and 32, and 1 MiB sequential
# reads at queue depth 8. Two comparisons, side by side in the same rounds:
#
# - The clients: libiscsi's iscsi-perf against BenchmarkRead (backends/iscsi/bench_test.go:
#   one Queue at QD > 1, ReadAt at QD1, the way the engine drives it, a buffer per request in
#   flight). Both read with READ(16) through one session and count completed commands per
#   second. iscsi-perf hands libiscsi no buffer: every Data-In lands in one reused (cache-warm)
#   buffer and is dropped, which costs less at 1 MiB than delivering into 8 distinct buffers.
# - The benchmark tools on the same job: fio's libiscsi engine (fio 3.33 built with libiscsi by
#   scripts/fio-build.sh, as Debian's fio has no such engine) against `vmstorbench run
#   --target iscsi://…`. Like-for-like: both read with READ(16) into one buffer per I/O in
#   flight (fio's io_u buffers), submit asynchronously and reap, and count their CPU over the
#   I/O phase (fio: its job's usr_cpu + sys_cpu, getrusage of the job process; ours: the
#   result document's cpu, getrusage of the process over the run). fio's engine declares
#   itself synchronous and prints "queue depth will be capped at 1", but queues anyway: its
#   "IO depths" histogram shows the depth asked for. FIO=0 leaves this comparison out.
#
# It starts tgtd (Debian's tgt) on a random loopback port with one 256 MiB file-backed LUN
# filled with random data, then for ROUNDS rounds runs, case by case, each side for SECS
# seconds, back to back in rotating order (none always follows another). MiB/s = IOPS x the
# request size. The summary gives each side's medians and the median of the per-round ratios:
# the runs of a round are back to back, so their ratio is the least disturbed by other load on
# a shared machine. Targets: IOPS ratio >= 0.9, CPU per read (user+system time, also given per
# 1,000 reads and per GiB read) ours / reference <= 1.1; load disturbs CPU less than IOPS.
#
# With GOTGT=1 the same cases run against the gotgt target too (started from the compiled
# test binary in its testbed child mode), for the record.
#
# With BEFORE=DIR (another checkout of vmstorbench, e.g. a `git worktree` of the commit before
# a change) its BenchmarkRead runs in the same rounds as another side, and the summary adds its
# figures and the CPU ratio ours / before: the way to tell whether a change lowers the CPU per
# read when the machine's load drifts by 2x between runs.
# OURS_ENV="NAME=VALUE ..." sets environment variables for our sides (and BEFORE's), e.g.
# GOMAXPROCS=1 to see what the Go scheduler's second thread costs.
#
#   scripts/compare-iscsi.sh              # needs root, tgt, libiscsi-bin, go (and fio-build.sh's)
#   ROUNDS=5 SECS=5 GOTGT=1 scripts/compare-iscsi.sh
#   CASES=1m-seq-qd8 scripts/compare-iscsi.sh   # only the cases whose names match this regexp
#   BEFORE=/tmp/before scripts/compare-iscsi.sh  # /tmp/before: git worktree add --detach /tmp/before main
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
GOTGT=${GOTGT:-0}
CASES=${CASES:-.}
BEFORE=${BEFORE:-}
FIO=${FIO:-1}
OURS_ENV=${OURS_ENV:-}
IQN=iqn.2025-01.org.vmstorbench:compare

cd "$(dirname "$0")/.."
for tool in tgtd tgtadm iscsi-perf go /usr/bin/time python3; do
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
fio=
if [ "$FIO" = 1 ]; then
	go build -o "$work/vmstorbench" ./cmd/vmstorbench
	fio=$(scripts/fio-build.sh) || { echo "compare-iscsi: no fio with libiscsi (FIO=0 leaves it out)" >&2; exit 1; }
fi
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

# case: name, iscsi-perf flags, benchmark name, request bytes, fio/vmstorbench rw, queue depth
cases=(
	"4k-rand-qd1|-m 1 -b 8 -r|4k-rand-qd1|4096|randread|1"
	"4k-rand-qd32|-m 32 -b 8 -r|4k-rand-qd32|4096|randread|32"
	"1m-seq-qd8|-m 8 -b 2048|1m-seq-qd8|1048576|read|8"
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

bench_run() { # bench_run URL BENCH [TEST-BINARY] -> "IOPS CPU-µs-per-read"
	local out
	# shellcheck disable=SC2086
	out=$(env $OURS_ENV VMSTORBENCH_ISCSI_BENCH_URL="$1" "${3:-$work/iscsi.test}" -test.run '^$' \
		-test.bench "^BenchmarkRead/$2\$" -test.benchtime "${SECS}s" 2>&1) ||
		{ echo "compare-iscsi: BenchmarkRead/$2 (${3:-$work/iscsi.test}) failed: $out" >&2; exit 1; }
	echo "$out" | awk '/^BenchmarkRead\// { for (i = 2; i <= NF; i++) { if ($(i) == "IOPS") n = $(i-1); if ($(i) == "cpu-us/op") c = $(i-1) } }
		END { printf "%.0f %.1f\n", n, c }'
}

fio_run() { # fio_run URL RW BS QD -> "IOPS CPU-µs-per-read"
	# fio splits a filename at ':' unless it is escaped.
	timeout $((SECS + 30)) "$fio" --name=compare --ioengine=libiscsi --filename="${1//:/\\:}" --rw="$2" --bs="$3" \
		--iodepth="$4" --time_based --runtime="$SECS" --output-format=json --output="$work/fio.json" \
		>"$work/fio.log" 2>&1 || { echo "compare-iscsi: fio --ioengine=libiscsi failed: $(cat "$work/fio.log")" >&2; exit 1; }
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
n = max(j["read"]["total_ios"], 1)
# usr_cpu and sys_cpu: percent of the job runtime (ms), from getrusage over the I/O phase.
print("%d %.1f" % (j["read"]["iops"], (j["usr_cpu"] + j["sys_cpu"]) / 100 * j["job_runtime"] * 1e3 / n))' "$work/fio.json"
}

run_run() { # run_run URL RW BS QD -> "IOPS CPU-µs-per-read"
	# shellcheck disable=SC2086
	env $OURS_ENV "$work/vmstorbench" run --target "$1" --rw "$2" --bs "$3" --iodepth "$4" --runtime "${SECS}s" --time-based \
		--no-save --json 2>"$work/run.err" | python3 -c '
import json, sys
d = json.load(sys.stdin)
r, c = d["read"], d["cpu"]
print("%d %.1f" % (r["iops"], (c["user_ns"] + c["sys_ns"]) / 1e3 / max(r["ios"], 1)))' ||
		{ echo "compare-iscsi: vmstorbench run failed: $(cat "$work/run.err")" >&2; exit 1; }
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
lowest() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

# Sides, and the pairs compared (ours:reference) with their per-round ratios.
sides=(perf ours)
pairs=(ours:perf)
[ -z "$fio" ] || { sides+=(fio run); pairs+=(run:fio); }
[ -z "$BEFORE" ] || { sides+=(before); pairs+=(ours:before); }
declare -A title=([perf]="iscsi-perf" [ours]="BenchmarkRead" [fio]="fio libiscsi" [run]="vmstorbench run" [before]="BEFORE")

summary=()
for t in "${targets[@]}"; do
	tname=${t%% *}
	url=${t#* }
	echo "== $tname ($url), $ROUNDS rounds of ${SECS}s per side and case"
	line=$(printf '%-6s %-14s' round case)
	for s in "${sides[@]}"; do line+=$(printf ' %24s' "${title[$s]} IOPS (cpu)"); done
	echo "$line"
	declare -A iops=() cpu=() riops=() rcpu=()
	for r in $(seq "$ROUNDS"); do
		for c in "${cases[@]}"; do
			IFS='|' read -r name flags bench bytes rw qd <<<"$c"
			declare -A got=()
			for i in $(seq 0 $((${#sides[@]} - 1))); do
				s=${sides[$(((i + r) % ${#sides[@]}))]}
				case $s in
				# shellcheck disable=SC2086
				perf) got[$s]=$(perf_run "$url" $flags) ;;
				ours) got[$s]=$(bench_run "$url" "$bench") ;;
				fio) got[$s]=$(fio_run "$url" "$rw" "$bytes" "$qd") ;;
				run) got[$s]=$(run_run "$url" "$rw" "$bytes" "$qd") ;;
				before) got[$s]=$(bench_run "$url" "$bench" "$work/before.test") ;;
				esac
			done
			line=$(printf '%-6s %-14s' "$r" "$name")
			for s in "${sides[@]}"; do
				read -r n u <<<"${got[$s]}"
				iops[$s,$name]+=" $n"
				cpu[$s,$name]+=" $u"
				line+=$(printf ' %14s (%6.1f µs)' "$n" "$u")
			done
			echo "$line"
			for p in "${pairs[@]}"; do
				read -r n1 u1 <<<"${got[${p%%:*}]}"
				read -r n2 u2 <<<"${got[${p#*:}]}"
				riops[$p,$name]+=" $(ratio "$n1" "$n2")"
				rcpu[$p,$name]+=" $(ratio "$u1" "$u2")"
			done
			unset got
		done
	done
	for c in "${cases[@]}"; do
		IFS='|' read -r name flags bench bytes rw qd <<<"$c"
		for p in "${pairs[@]}"; do
			a=${p%%:*} b=${p#*:}
			# CPU per 1,000 reads in ms equals CPU per read in µs; per GiB it scales by the read size.
			summary+=("$(awk -v t="$tname" -v n="$name" -v a="${title[$a]}" -v b="${title[$b]}" -v bytes="$bytes" \
				-v ai="$(echo "${iops[$a,$name]}" | median)" -v ac="$(echo "${cpu[$a,$name]}" | median)" \
				-v bi="$(echo "${iops[$b,$name]}" | median)" -v bc="$(echo "${cpu[$b,$name]}" | median)" \
				-v ri="$(echo "${riops[$p,$name]}" | median)" -v rc="$(echo "${rcpu[$p,$name]}" | median)" \
				-v rl="$(echo "${rcpu[$p,$name]}" | lowest)" 'BEGIN {
				printf "%-6s %-13s %-33s %7d IOPS %7.1f MiB/s %6.1f ms %6.3f s   %7d IOPS %6.1f ms %6.3f s   %5.2f  %5.2f  %5.2f / %4.2f",
					t, n, a " / " b, ai, ai * bytes / 1048576, ac, ac * 1073741824 / bytes / 1e6,
					bi, bc, bc * 1073741824 / bytes / 1e6, ri, (bc > 0 ? ac / bc : 0), rc, rl }')")
		done
	done
	unset iops cpu riops rcpu
done

echo
echo "medians of $ROUNDS rounds, ours / reference (ms: user+system CPU per 1,000 reads; s: per GiB read;"
echo "IOPS: median of the per-round ratios; CPU: of the medians; CPU/round: median / lowest of the"
echo "per-round CPU ratios (the sides of a round share its load)):"
printf '%-6s %-13s %-33s %-51s   %-33s   %5s  %5s  %s\n' target case "ours / reference" "ours" "reference" IOPS CPU "CPU/round"
printf '%s\n' "${summary[@]}"
