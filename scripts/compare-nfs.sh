#!/usr/bin/env bash
# compare-nfs.sh: the nfs:// backend against libnfs's nfs-cp on one NFS-Ganesha export, in
# one run.
#
# It starts Ganesha on loopback (through the testbed, via the backend's test binary), copies
# a 256 MiB file to and from the export with nfs-cp (1 MiB UNSTABLE writes + COMMIT, 1 MiB
# reads, one request at a time), then runs the backend's Go benchmarks on the same export:
# the same sequential transfer with 1 MiB requests, one and four in flight, and 4 KiB random
# reads with 1 and 16 in flight. Each side's best of REPS transfers is compared (the machine
# is shared; best-of is the least noisy); nfs-cp's time includes its mount (a few ms), ours
# excludes Open. It prints MB/s (10^6 bytes/s, as Go benchmarks do) and the ratio, and each
# client's user+system CPU seconds per GiB (nfs-cp: its process under /usr/bin/time, mount
# included; ours: the benchmark's cpu-s/GiB over the timed transfer), the least of the REPS
# runs, with per 1,000 I/Os (1 MiB each: x 1000/1024) and the ratio ours / nfs-cp.
# Targets: ours >= 0.9x nfs-cp's throughput, <= 1.1x its CPU.
#
# Needs root, nfs-ganesha, nfs-ganesha-vfs, rpcbind and libnfs-utils (nfs-cp).
# Usage: scripts/compare-nfs.sh [REPS (default 3)]
set -euo pipefail

reps=${1:-3}
size=$((256 << 20))
cd "$(dirname "$0")/.."

for bin in nfs-cp ganesha.nfsd /usr/bin/time; do
	command -v "$bin" >/dev/null || { echo "compare-nfs: $bin not found (apt-get install libnfs-utils nfs-ganesha nfs-ganesha-vfs rpcbind)" >&2; exit 1; }
done

work=$(mktemp -d)
# Files copied by nfs-cp live in memory so that the local side costs nothing.
shm=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
helper=""
cleanup() {
	if [[ -n "$helper" ]]; then
		kill -TERM "$helper" 2>/dev/null || true
		wait "$helper" 2>/dev/null || true
	fi
	rm -rf "$work" "$shm"
}
trap cleanup EXIT

echo "building the backend's test binary..."
go test -c -o "$work/nfs.test" ./backends/nfs

mkdir "$work/ganesha"
VMSTORBENCH_GANESHA_DIR="$work/ganesha" "$work/nfs.test" >"$work/helper.out" 2>&1 &
helper=$!
url=""
for _ in $(seq 300); do
	url=$(sed -n 's/^URL //p' "$work/helper.out")
	[[ -n "$url" ]] && break
	kill -0 "$helper" 2>/dev/null || break
	sleep 0.1
done
if [[ -z "$url" ]]; then
	echo "compare-nfs: Ganesha did not start:" >&2
	cat "$work/helper.out" >&2
	exit 1
fi
# nfs://127.0.0.1:<nfsport><export>/vmstorbench.img?mountport=<mountport>
nfsport=$(sed -E 's#^nfs://[^:/]+:([0-9]+)/.*#\1#' <<<"$url")
mountport=$(sed -E 's#.*[?&]mountport=([0-9]+).*#\1#' <<<"$url")
export_dir=$(sed -E 's#^nfs://[^/]+(/.*)/[^/?]+(\?.*)?$#\1#' <<<"$url")
echo "Ganesha: NFS port $nfsport, MOUNT port $mountport, export $export_dir"
ncp_url() { echo "nfs://127.0.0.1$export_dir/$1?nfsport=$nfsport&mountport=$mountport"; }

now() { date +%s%N; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }'; }

head -c "$size" /dev/urandom >"$shm/src.bin"

echo "nfs-cp: $reps x write and read of 256 MiB..."
# cpu_of FILE: user+system seconds recorded by /usr/bin/time -f '%U %S'.
cpu_of() { awk '{ printf "%.3f", $1 + $2 }' "$1"; }
least() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }
best=0 cpus=
for i in $(seq "$reps"); do
	t0=$(now)
	/usr/bin/time -f '%U %S' -o "$work/time" nfs-cp "$shm/src.bin" "$(ncp_url "ncp$i.bin")" >/dev/null
	t=$(($(now) - t0))
	((best == 0 || t < best)) && best=$t
	cpus+=" $(cpu_of "$work/time")"
done
ncp_write=$(mbps "$size" "$best")
ncp_write_cpu=$(least <<<"$cpus")
best=0 cpus=
for i in $(seq "$reps"); do
	rm -f "$shm/dst.bin"
	t0=$(now)
	/usr/bin/time -f '%U %S' -o "$work/time" nfs-cp "$(ncp_url "ncp$i.bin")" "$shm/dst.bin" >/dev/null
	t=$(($(now) - t0))
	((best == 0 || t < best)) && best=$t
	cpus+=" $(cpu_of "$work/time")"
done
ncp_read_cpu=$(least <<<"$cpus")
cmp -s "$shm/src.bin" "$shm/dst.bin" || { echo "compare-nfs: nfs-cp read back different data" >&2; exit 1; }
ncp_read=$(mbps "$size" "$best")
rm -f "$shm/dst.bin" "$shm/src.bin"
for i in $(seq "$reps"); do rm -f "$export_dir/ncp$i.bin"; done

echo "vmstorbench nfs:// backend: Go benchmarks..."
VMSTORBENCH_NFS_URL="$url" "$work/nfs.test" -test.run '^$' -test.bench 'BenchmarkSeq(Read|Write)$' \
	-test.benchtime 1x -test.count "$reps" >"$work/seq.out"
VMSTORBENCH_NFS_URL="$url" "$work/nfs.test" -test.run '^$' -test.bench 'BenchmarkRandRead4k$' \
	-test.benchtime 2s >"$work/rand.out"
# ours FILE BENCHMARK UNIT: the best value of UNIT over the benchmark's runs.
ours() {
	awk -v n="$2" -v unit="$3" '$1 ~ "^"n"(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == unit && $i > best) best = $i }
		END { printf "%.1f\n", best }' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
# ours_least FILE BENCHMARK UNIT: the least value of UNIT over the benchmark's runs.
ours_least() {
	awk -v n="$2" -v unit="$3" '$1 ~ "^"n"(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == unit && (least == "" || $i < least)) least = $i }
		END { printf "%.3f\n", least }' "$1"
}

r1=$(ours "$work/seq.out" BenchmarkSeqRead/qd1 MB/s)
r4=$(ours "$work/seq.out" BenchmarkSeqRead/qd4 MB/s)
w1=$(ours "$work/seq.out" BenchmarkSeqWrite/unstable/qd1 MB/s)
w4=$(ours "$work/seq.out" BenchmarkSeqWrite/unstable/qd4 MB/s)
f1=$(ours "$work/seq.out" BenchmarkSeqWrite/filesync/qd1 MB/s)
f4=$(ours "$work/seq.out" BenchmarkSeqWrite/filesync/qd4 MB/s)
i1=$(ours "$work/rand.out" BenchmarkRandRead4k/qd1 IOPS)
i16=$(ours "$work/rand.out" BenchmarkRandRead4k/qd16 IOPS)

echo
printf '%-34s %12s %12s %8s %12s %8s\n' "256 MiB, 1 MiB requests" "nfs-cp MB/s" "ours qd1" "ratio" "ours qd4" "ratio"
printf '%-34s %12s %12s %8s %12s %8s\n' "read" "$ncp_read" "$r1" "$(ratio "$r1" "$ncp_read")" "$r4" "$(ratio "$r4" "$ncp_read")"
printf '%-34s %12s %12s %8s %12s %8s\n' "write (UNSTABLE + COMMIT)" "$ncp_write" "$w1" "$(ratio "$w1" "$ncp_write")" "$w4" "$(ratio "$w4" "$ncp_write")"
printf '%-34s %12s %12s %8s %12s %8s\n' "write (ours FILE_SYNC)" "$ncp_write" "$f1" "$(ratio "$f1" "$ncp_write")" "$f4" "$(ratio "$f4" "$ncp_write")"
echo
# nfs-cp's CPU is for 256 MiB: per GiB x4.
ncp_read_gib=$(awk -v c="$ncp_read_cpu" 'BEGIN { printf "%.3f", c * 4 }')
ncp_write_gib=$(awk -v c="$ncp_write_cpu" 'BEGIN { printf "%.3f", c * 4 }')
cr1=$(ours_least "$work/seq.out" BenchmarkSeqRead/qd1 cpu-s/GiB)
cr4=$(ours_least "$work/seq.out" BenchmarkSeqRead/qd4 cpu-s/GiB)
cw1=$(ours_least "$work/seq.out" BenchmarkSeqWrite/unstable/qd1 cpu-s/GiB)
cw4=$(ours_least "$work/seq.out" BenchmarkSeqWrite/unstable/qd4 cpu-s/GiB)
printf '%-34s %12s %12s %8s %12s %8s\n' "client CPU s/GiB (least of $reps)" "nfs-cp" "ours qd1" "ratio" "ours qd4" "ratio"
printf '%-34s %12s %12s %8s %12s %8s\n' "read" "$ncp_read_gib" "$cr1" "$(ratio "$cr1" "$ncp_read_gib")" "$cr4" "$(ratio "$cr4" "$ncp_read_gib")"
printf '%-34s %12s %12s %8s %12s %8s\n' "write (UNSTABLE + COMMIT)" "$ncp_write_gib" "$cw1" "$(ratio "$cw1" "$ncp_write_gib")" "$cw4" "$(ratio "$cw4" "$ncp_write_gib")"
echo "(per 1,000 1 MiB I/Os: x 1000/1024)"
echo
printf '4 KiB random read, one connection: %s IOPS at 1 in flight, %s IOPS at 16 in flight\n' "${i1%.*}" "${i16%.*}"
