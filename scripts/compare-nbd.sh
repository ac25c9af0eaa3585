#!/usr/bin/env bash
# compare-nbd.sh: QEMU's NBD client (`qemu-img bench`) and libnbd's (`nbdcopy`, when
# installed) against vmstorbench's pure-Go NBD client on the same qemu-nbd export, in one
# run, with the ratios: 4 KiB reads at queue depth 1 and 16, one connection each.
#
# It starts qemu-nbd on a random loopback port, as the testbed does (raw, --cache=writeback,
# --aio=threads, --shared=16, -t), exporting an image of IMG bytes of random data as "vm".
# Then for ROUNDS rounds, per queue depth, back to back in alternating order:
#   qemu-img bench -f raw -c COUNT -d QD -s 4096 nbd://…/vm     (sequential 4 KiB reads;
#       COUNT is calibrated in round 1 to last about SECS seconds)
#   nbdcopy -C 1 -T 1 -R QD --request-size=4096 --no-extents nbd://…/vm null:
#       (the whole image in sequential 4 KiB reads; libnbd-bin)
#   vmstorbench run --target nbd://…/vm --rw randread --bs 4k --iodepth QD --runtime SECS
# IOPS: requests over wall time (qemu-img bench's "Run completed in", nbdcopy's elapsed
# time, vmstorbench's own figure). CPU: the client's user+system time per read (/usr/bin/time;
# vmstorbench's result document). The summary gives medians and the median of the per-round
# ratios ours/reference: the runs of a round are back to back, so their ratio is the least
# disturbed by other load on a shared machine. Target: ratio >= 0.9.
#
#   scripts/compare-nbd.sh                  # needs qemu-utils, go; libnbd-bin optional
#   ROUNDS=5 SECS=5 IMG=64M scripts/compare-nbd.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
IMG=${IMG:-64M}
DEPTHS=${DEPTHS:-"1 16"}

cd "$(dirname "$0")/.."
for tool in qemu-nbd qemu-img go /usr/bin/time python3; do
	command -v "$tool" >/dev/null || {
		echo "compare-nbd: $tool not found (apt-get install qemu-utils time python3)" >&2
		exit 1
	}
done
have_nbdcopy=0
command -v nbdcopy >/dev/null && have_nbdcopy=1

work=$(mktemp -d /tmp/compare-nbd.XXXXXX)
nbd_pid=
cleanup() {
	if [ -n "$nbd_pid" ]; then
		kill "$nbd_pid" 2>/dev/null || true
		wait "$nbd_pid" 2>/dev/null || true
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

go build -o "$work/vmstorbench" ./cmd/vmstorbench
head -c "$IMG" /dev/urandom >"$work/vm.img"
img_bytes=$(stat -c %s "$work/vm.img")
port=$(free_port)
qemu-nbd -b 127.0.0.1 -p "$port" -x vm -f raw -t --shared=16 --cache=writeback --aio=threads \
	"$work/vm.img" >"$work/qemu-nbd.log" 2>&1 &
nbd_pid=$!
for i in $(seq 200); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	kill -0 "$nbd_pid" 2>/dev/null || { echo "compare-nbd: qemu-nbd exited: $(cat "$work/qemu-nbd.log")" >&2; exit 1; }
	[ "$i" = 200 ] && { echo "compare-nbd: qemu-nbd not listening on $port" >&2; exit 1; }
	sleep 0.05
done
url="nbd://127.0.0.1:$port/vm"

# Each *_run prints "IOPS CPU-µs-per-read".
qemu_run() { # qemu_run QD COUNT
	local out secs
	out=$(/usr/bin/time -f '%U %S' -o "$work/time" qemu-img bench -f raw -c "$2" -d "$1" -s 4096 "$url" 2>&1) ||
		{ echo "compare-nbd: qemu-img bench failed: $out" >&2; exit 1; }
	secs=$(echo "$out" | sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
	awk -v n="$2" -v s="$secs" '{ printf "%d %.1f\n", n / s, ($1 + $2) * 1e6 / n }' "$work/time"
}

nbdcopy_run() { # nbdcopy_run QD
	local t0 t1 n=$((img_bytes / 4096))
	t0=$(date +%s.%N)
	/usr/bin/time -f '%U %S' -o "$work/time" nbdcopy -C 1 -T 1 -R "$1" --request-size=4096 --no-extents "$url" null: ||
		{ echo "compare-nbd: nbdcopy failed" >&2; exit 1; }
	t1=$(date +%s.%N)
	awk -v n="$n" -v a="$t0" -v b="$t1" '{ printf "%d %.1f\n", n / (b - a), ($1 + $2) * 1e6 / n }' "$work/time"
}

ours_run() { # ours_run QD
	"$work/vmstorbench" run --target "$url" --rw randread --bs 4k --iodepth "$1" --runtime "${SECS}s" \
		--no-save --json 2>"$work/ours.err" | python3 -c '
import json, sys
d = json.load(sys.stdin)
r, c = d["read"], d["cpu"]
print("%d %.1f" % (r["iops"], (c["user_ns"] + c["sys_ns"]) / 1e3 / max(r["ios"], 1)))' ||
		{ echo "compare-nbd: vmstorbench failed: $(cat "$work/ours.err")" >&2; exit 1; }
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

declare -A count qall call oall ncall qcpu ccpu ocpu rq rc
echo "== qemu-nbd $(qemu-nbd --version | head -1 | awk '{print $2}'), $url ($img_bytes bytes), $ROUNDS rounds, ${SECS}s per tool and depth"
printf '%-6s %-4s %24s %24s %24s\n' round qd "qemu-img bench (cpu)" "nbdcopy (cpu)" "vmstorbench (cpu)"
for r in $(seq "$ROUNDS"); do
	for qd in $DEPTHS; do
		if [ -z "${count[$qd]:-}" ]; then # calibrate: about SECS seconds of qemu-img bench
			read -r p _ <<<"$(qemu_run "$qd" 500)"
			count[$qd]=$((p * SECS > 500 ? p * SECS : 500))
		fi
		q= qc= c=0 cc=0
		if [ $((r % 2)) = 1 ]; then
			read -r q qc <<<"$(qemu_run "$qd" "${count[$qd]}")"
			[ "$have_nbdcopy" = 1 ] && read -r c cc <<<"$(nbdcopy_run "$qd")"
			read -r o oc <<<"$(ours_run "$qd")"
		else
			read -r o oc <<<"$(ours_run "$qd")"
			[ "$have_nbdcopy" = 1 ] && read -r c cc <<<"$(nbdcopy_run "$qd")"
			read -r q qc <<<"$(qemu_run "$qd" "${count[$qd]}")"
		fi
		qall[$qd]="${qall[$qd]:-} $q"; qcpu[$qd]="${qcpu[$qd]:-} $qc"
		call[$qd]="${call[$qd]:-} $c"; ccpu[$qd]="${ccpu[$qd]:-} $cc"
		oall[$qd]="${oall[$qd]:-} $o"; ocpu[$qd]="${ocpu[$qd]:-} $oc"
		rq[$qd]="${rq[$qd]:-} $(ratio "$o" "$q")"
		rc[$qd]="${rc[$qd]:-} $(ratio "$o" "$c")"
		printf '%-6s %-4s %12s (%6.1f µs) %12s (%6.1f µs) %12s (%6.1f µs)\n' "$r" "$qd" "$q" "$qc" "$c" "$cc" "$o" "$oc"
	done
done

echo
echo "medians of $ROUNDS rounds (IOPS, CPU µs per read; ratio: median of the per-round IOPS ratios, ours / reference):"
printf '%-4s %22s %22s %22s %10s %10s\n' qd "qemu-img bench" nbdcopy vmstorbench "vs qemu" "vs nbdcopy"
for qd in $DEPTHS; do
	printf '%-4s %12s (%5s µs) %12s (%5s µs) %12s (%5s µs) %9s× %9s×\n' "$qd" \
		"$(echo "${qall[$qd]}" | median)" "$(echo "${qcpu[$qd]}" | median)" \
		"$(echo "${call[$qd]}" | median)" "$(echo "${ccpu[$qd]}" | median)" \
		"$(echo "${oall[$qd]}" | median)" "$(echo "${ocpu[$qd]}" | median)" \
		"$(echo "${rq[$qd]}" | median)" "$(echo "${rc[$qd]}" | median)"
done
[ "$have_nbdcopy" = 1 ] || echo "(nbdcopy not installed: apt-get install libnbd-bin for the second reference)"
