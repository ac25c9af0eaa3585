#!/usr/bin/env bash
# compare-nbd.sh: QEMU's NBD client (`qemu-img bench`) and libnbd's (`nbdcopy`, when
# installed) against vmstorbench's pure-Go NBD client on the same qemu-nbd export, in one
# run, with the ratios: 4 KiB random reads at queue depth 1 and 32, and 1 MiB sequential reads
# at queue depth 8, one connection each.
#
# It starts qemu-nbd on a random loopback port, as the testbed does (raw, --cache=writeback,
# --aio=threads, --shared=16, -t), exporting an image of IMG bytes of random data as "vm" for
# the 4 KiB cases, and a second one of BIG bytes for the 1 MiB case (nbdcopy reads a whole
# image: IMG keeps its 4 KiB runs short, BIG gives it enough 1 MiB reads to time).
# Then for ROUNDS rounds, per case, back to back in rotating order:
#   qemu-img bench -f raw -c COUNT -d QD -s BS nbd://…/vm     (sequential reads;
#       COUNT is calibrated in round 1 to last about SECS seconds)
#   nbdcopy -C 1 -T 1 -R QD --request-size=BS --no-extents nbd://…/vm null:
#       (the whole image in sequential reads; libnbd-bin)
#   vmstorbench run --target nbd://…/vm --rw randread|read --bs BS --iodepth QD --runtime SECS
# IOPS: requests over wall time (qemu-img bench's "Run completed in", nbdcopy's elapsed
# time, vmstorbench's own figure). CPU: the client's user+system time per read (/usr/bin/time;
# vmstorbench's result document), also given per 1,000 reads and per GiB read. The summary
# gives medians and the median of the per-round ratios ours/reference: the runs of a round are
# back to back, so their ratio is the least disturbed by other load on a shared machine.
# Targets: IOPS ratio >= 0.9, CPU ratio ours / reference <= 1.1.
#
# With BEFORE=DIR (another checkout of vmstorbench, e.g. a `git worktree` of the commit before
# a change) its vmstorbench runs in the same rounds as a fourth side, and the summary adds its
# figures and the CPU ratio ours / before per round (median / lowest): the way to tell whether
# a change lowers the CPU per read when the machine's load drifts between runs.
#
# With BENCH=1 our side (and BEFORE's) is BenchmarkRead/CASE of backends/nbd (SECS seconds,
# its cpu-us/op: the process's getrusage over the timed reads) instead of `vmstorbench run`:
# the client without the engine, driven as backendtest.BenchRead drives it (through one
# backends.Queue at QD > 1 when the Target is a Queuer, else QD goroutines).
#
#   scripts/compare-nbd.sh                  # needs qemu-utils, go; libnbd-bin optional
#   ROUNDS=5 SECS=5 IMG=64M BIG=1G scripts/compare-nbd.sh
#   CASES=qd1 scripts/compare-nbd.sh        # only the cases whose names match this regexp
#   BEFORE=/tmp/before scripts/compare-nbd.sh  # /tmp/before: git worktree add --detach /tmp/before main
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
IMG=${IMG:-64M}
BIG=${BIG:-1G}
CASES=${CASES:-.}
BEFORE=${BEFORE:-}
BENCH=${BENCH:-}

cd "$(dirname "$0")/.."
for tool in qemu-nbd qemu-img go /usr/bin/time python3; do
	command -v "$tool" >/dev/null || {
		echo "compare-nbd: $tool not found (apt-get install qemu-utils time python3)" >&2
		exit 1
	}
done
have_nbdcopy=0
command -v nbdcopy >/dev/null && have_nbdcopy=1

# case: name, request bytes, queue depth, vmstorbench --rw, image (small: IMG, big: BIG)
cases=(
	"4k-rand-qd1|4096|1|randread|small"
	"4k-rand-qd32|4096|32|randread|small"
	"1m-seq-qd8|1048576|8|read|big"
)
selected=()
for c in "${cases[@]}"; do
	[[ ${c%%|*} =~ $CASES ]] && selected+=("$c")
done
[ ${#selected[@]} -gt 0 ] || { echo "compare-nbd: no case matches CASES=$CASES" >&2; exit 1; }
cases=("${selected[@]}")

work=$(mktemp -d /tmp/compare-nbd.XXXXXX)
nbd_pids=()
cleanup() {
	for p in "${nbd_pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
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

if [ -n "$BENCH" ]; then
	go test -c -o "$work/vmstorbench" ./backends/nbd
else
	go build -o "$work/vmstorbench" ./cmd/vmstorbench
fi
if [ -n "$BEFORE" ]; then
	if [ -n "$BENCH" ]; then
		(cd "$BEFORE" && go test -c -o "$work/before" ./backends/nbd)
	else
		(cd "$BEFORE" && go build -o "$work/before" ./cmd/vmstorbench)
	fi || { echo "compare-nbd: cannot build vmstorbench in BEFORE=$BEFORE" >&2; exit 1; }
fi

declare -A url img_bytes
serve() { # serve NAME SIZE: an image of SIZE random bytes exported by its own qemu-nbd
	local port pid
	head -c "$2" /dev/urandom >"$work/$1.img"
	img_bytes[$1]=$(stat -c %s "$work/$1.img")
	port=$(free_port)
	qemu-nbd -b 127.0.0.1 -p "$port" -x vm -f raw -t --shared=16 --cache=writeback --aio=threads \
		"$work/$1.img" >"$work/qemu-nbd-$1.log" 2>&1 &
	pid=$!
	nbd_pids+=("$pid")
	for i in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || { echo "compare-nbd: qemu-nbd exited: $(cat "$work/qemu-nbd-$1.log")" >&2; exit 1; }
		[ "$i" = 200 ] && { echo "compare-nbd: qemu-nbd not listening on $port" >&2; exit 1; }
		sleep 0.05
	done
	url[$1]="nbd://127.0.0.1:$port/vm"
}
for c in "${cases[@]}"; do
	IFS='|' read -r _ _ _ _ image <<<"$c"
	if [ -z "${url[$image]:-}" ]; then
		if [ "$image" = big ]; then serve big "$BIG"; else serve small "$IMG"; fi
	fi
done

# Each *_run prints "IOPS CPU-µs-per-read".
qemu_run() { # qemu_run URL BS QD COUNT
	local out secs
	out=$(/usr/bin/time -f '%U %S' -o "$work/time" qemu-img bench -f raw -c "$4" -d "$3" -s "$2" "$1" 2>&1) ||
		{ echo "compare-nbd: qemu-img bench failed: $out" >&2; exit 1; }
	secs=$(echo "$out" | sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
	awk -v n="$4" -v s="$secs" '{ printf "%d %.1f\n", n / s, ($1 + $2) * 1e6 / n }' "$work/time"
}

nbdcopy_run() { # nbdcopy_run URL BS QD IMAGE-BYTES
	local t0 t1 n=$(($4 / $2))
	t0=$(date +%s.%N)
	/usr/bin/time -f '%U %S' -o "$work/time" nbdcopy -C 1 -T 1 -R "$3" --request-size="$2" --no-extents "$1" null: ||
		{ echo "compare-nbd: nbdcopy failed" >&2; exit 1; }
	t1=$(date +%s.%N)
	awk -v n="$n" -v a="$t0" -v b="$t1" '{ printf "%d %.1f\n", n / (b - a), ($1 + $2) * 1e6 / n }' "$work/time"
}

ours_run() { # ours_run BINARY URL BS QD RW CASE
	if [ -n "$BENCH" ]; then
		bench_run "$1" "$2" "$6"
		return
	fi
	"$1" run --target "$2" --rw "$5" --bs "$3" --iodepth "$4" --runtime "${SECS}s" \
		--no-save --json 2>"$work/ours.err" | python3 -c '
import json, sys
d = json.load(sys.stdin)
r, c = d["read"], d["cpu"]
print("%d %.1f" % (r["iops"], (c["user_ns"] + c["sys_ns"]) / 1e3 / max(r["ios"], 1)))' ||
		{ echo "compare-nbd: $1 failed: $(cat "$work/ours.err")" >&2; exit 1; }
}

bench_run() { # bench_run TEST-BINARY URL CASE
	local out
	out=$(VMSTORBENCH_NBD_BENCH_URL="$2" "$1" -test.run '^$' -test.bench "^BenchmarkRead/$3\$" \
		-test.benchtime "${SECS}s" 2>&1) || { echo "compare-nbd: BenchmarkRead/$3 ($1) failed: $out" >&2; exit 1; }
	echo "$out" | awk '/^BenchmarkRead\// { for (i = 2; i <= NF; i++) { if ($(i) == "IOPS") n = $(i-1); if ($(i) == "cpu-us/op") c = $(i-1) } }
		END { printf "%.0f %.1f\n", n, c }'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
lowest() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

sides=(qemu ours)
[ "$have_nbdcopy" = 1 ] && sides+=(nbdcopy)
[ -z "$BEFORE" ] || sides+=(before)
declare -A count qall call oall ball qcpu ccpu ocpu bcpu rq rc cq cc cb
echo "== qemu-nbd $(qemu-nbd --version | head -1 | awk '{print $2}'), IMG $IMG, BIG $BIG, $ROUNDS rounds, ${SECS}s per tool and case"
head=$(printf '%-6s %-13s %22s %22s %22s' round case "qemu-img bench (cpu)" "nbdcopy (cpu)" "vmstorbench (cpu)")
[ -z "$BEFORE" ] || head+=$(printf ' %22s' "BEFORE (cpu)")
echo "$head"
for r in $(seq "$ROUNDS"); do
	for c in "${cases[@]}"; do
		IFS='|' read -r name bs qd rw image <<<"$c"
		u=${url[$image]}
		if [ -z "${count[$name]:-}" ]; then # calibrate: about SECS seconds of qemu-img bench
			read -r p _ <<<"$(qemu_run "$u" "$bs" "$qd" 200)"
			count[$name]=$((p * SECS > 200 ? p * SECS : 200))
		fi
		q=0 qc=0 n=0 nc=0 o=0 oc=0 b=0 bc=0
		# Rotate which side goes first, so that none always follows another.
		for i in $(seq 0 $((${#sides[@]} - 1))); do
			case ${sides[$(((i + r) % ${#sides[@]}))]} in
			qemu) read -r q qc <<<"$(qemu_run "$u" "$bs" "$qd" "${count[$name]}")" ;;
			nbdcopy) read -r n nc <<<"$(nbdcopy_run "$u" "$bs" "$qd" "${img_bytes[$image]}")" ;;
			ours) read -r o oc <<<"$(ours_run "$work/vmstorbench" "$u" "$bs" "$qd" "$rw" "$name")" ;;
			before) read -r b bc <<<"$(ours_run "$work/before" "$u" "$bs" "$qd" "$rw" "$name")" ;;
			esac
		done
		qall[$name]="${qall[$name]:-} $q"; qcpu[$name]="${qcpu[$name]:-} $qc"
		call[$name]="${call[$name]:-} $n"; ccpu[$name]="${ccpu[$name]:-} $nc"
		oall[$name]="${oall[$name]:-} $o"; ocpu[$name]="${ocpu[$name]:-} $oc"
		ball[$name]="${ball[$name]:-} $b"; bcpu[$name]="${bcpu[$name]:-} $bc"
		rq[$name]="${rq[$name]:-} $(ratio "$o" "$q")"
		rc[$name]="${rc[$name]:-} $(ratio "$o" "$n")"
		cq[$name]="${cq[$name]:-} $(ratio "$oc" "$qc")"
		cc[$name]="${cc[$name]:-} $(ratio "$oc" "$nc")"
		cb[$name]="${cb[$name]:-} $(ratio "$oc" "$bc")"
		line=$(printf '%-6s %-13s %12s (%6.1f µs) %12s (%6.1f µs) %12s (%6.1f µs)' "$r" "$name" "$q" "$qc" "$n" "$nc" "$o" "$oc")
		[ -z "$BEFORE" ] || line+=$(printf ' %12s (%6.1f µs)' "$b" "$bc")
		echo "$line"
	done
done

echo
echo "medians of $ROUNDS rounds (IOPS; CPU: client user+system ms per 1,000 reads, s per GiB read;"
echo "IOPS ratio: median of the per-round ratios ours / reference; CPU ratio: median / lowest of"
echo "the per-round CPU ratios ours / reference, the sides of a round sharing its load):"
head=$(printf '%-13s %-30s %-30s %-30s %-19s %-19s' case "qemu-img bench" nbdcopy vmstorbench "vs qemu IOPS, CPU" "vs nbdcopy IOPS, CPU")
[ -z "$BEFORE" ] || head+=$(printf ' %-30s %s' BEFORE "CPU ours/before")
echo "$head"
side() { # side IOPS-LIST CPU-LIST BYTES: "IOPS  ms/1000  s/GiB"
	awk -v i="$(echo "$1" | median)" -v c="$(echo "$2" | median)" -v b="$3" \
		'BEGIN { printf "%8d %7.1f ms %7.3f s", i, c, c * 1073741824 / b / 1e6 }'
}
for c in "${cases[@]}"; do
	IFS='|' read -r name bs _ _ _ <<<"$c"
	line=$(printf '%-13s %-30s %-30s %-30s %5s× %4s/%4s %5s× %4s/%4s' "$name" \
		"$(side "${qall[$name]}" "${qcpu[$name]}" "$bs")" \
		"$(side "${call[$name]}" "${ccpu[$name]}" "$bs")" \
		"$(side "${oall[$name]}" "${ocpu[$name]}" "$bs")" \
		"$(echo "${rq[$name]}" | median)" "$(echo "${cq[$name]}" | median)" "$(echo "${cq[$name]}" | lowest)" \
		"$(echo "${rc[$name]}" | median)" "$(echo "${cc[$name]}" | median)" "$(echo "${cc[$name]}" | lowest)")
	[ -z "$BEFORE" ] || line+=$(printf ' %-30s %5s/%5s' "$(side "${ball[$name]}" "${bcpu[$name]}" "$bs")" \
		"$(echo "${cb[$name]}" | median)" "$(echo "${cb[$name]}" | lowest)")
	echo "$line"
done
[ "$have_nbdcopy" = 1 ] || echo "(nbdcopy not installed: apt-get install libnbd-bin for the second reference)"
