#!/usr/bin/env bash
# Runs the same jobs through fio and through vmstorbench, alternating over several rounds in
# one run, and prints the best round of each and their ratio (ours / fio). Jobs: the null
# engine (the engine's own ceiling) at iodepth 1 and 32, a page-cached local file with
# fio's psync engine, and a buffered random read with fio's default invalidate=1 (both tools
# drop the file's cache before the job, so both measure the storage).
#   scripts/compare-fio.sh [path/to/vmstorbench] [runtime seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/vmstorbench}
runtime=${2:-5}
rounds=${3:-3}
[ -x "$bin" ] || go build -o "$bin" ./cmd/vmstorbench
command -v fio >/dev/null || { echo "compare-fio: fio not installed (apt-get install fio)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/vmstorbench-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
file=$work/bench.dat
args=()

# job LABEL "fio options" "vmstorbench options" TARGET
job() {
  local label=$1 fioopts=$2 ouropts=$3 target=$4 refs="" ours="" r
  for r in $(seq 1 "$rounds"); do
    # shellcheck disable=SC2086
    fio --name=job --output-format=json --time_based --runtime="$runtime" $fioopts >"$work/$label.fio.$r.json"
    # shellcheck disable=SC2086
    "$bin" run --quiet --no-save --output-format fio-json --allow-destructive --time-based --runtime "${runtime}s" \
      --target "$target" $ouropts >"$work/$label.ours.$r.json"
    refs+="${refs:+,}$work/$label.fio.$r.json"
    ours+="${ours:+,}$work/$label.ours.$r.json"
  done
  args+=("$label" "$refs" "$ours")
}

job null-randread-4k-qd1  "--ioengine=null --rw=randread --bs=4k --size=1g --iodepth=1"  "--rw randread --bs 4k --size 1g --iodepth 1"  "null://"
job null-randread-4k-qd32 "--ioengine=null --rw=randread --bs=4k --size=1g --iodepth=32" "--rw randread --bs 4k --size 1g --iodepth 32" "null://"

# 256 MiB stays in the page cache here (a 1 GiB file trips memory-cgroup dirty throttling
# and measures the disk). Lay the file out once; both tools then run on the same page-cached
# file (both drop the file's cache before each job by default: invalidate=0 keeps it, so these
# jobs measure the engines over the page cache).
fio --name=layout --filename="$file" --size=256m --rw=write --bs=1m --output=/dev/null
for spec in "randread 4k" "randwrite 4k" "read 1m" "write 1m"; do
  set -- $spec
  job "file-$1-$2" "--ioengine=psync --invalidate=0 --filename=$file --size=256m --rw=$1 --bs=$2" "--rw $1 --bs $2 --size 256m --fio invalidate=0" "file://$file"
done

# Default invalidate: no invalidate option on either side. fio drops the file's cached pages
# before the job (invalidate=1) and so does vmstorbench (posix_fadvise DONTNEED, target info
# "cache"); a tool that kept them would read a freshly written file from memory, many times
# faster.
big=$work/big.dat
fio --name=layout --filename="$big" --size=1g --rw=write --bs=1m --end_fsync=1 --output=/dev/null
# One job file, no invalidate line, read by both tools (the freshly written file is in the
# page cache when each round starts).
cat >"$work/invalidate.fio" <<EOF
[randread-4k]
ioengine=psync
filename=$big
size=1g
rw=randread
bs=4k
EOF
for r in $(seq 1 "$rounds"); do
  fio --output-format=json --time_based --runtime="$runtime" "$work/invalidate.fio" >"$work/inv.fio.$r.json"
  "$bin" run "$work/invalidate.fio" --quiet --no-save --output-format fio-json --allow-destructive \
    --time-based --runtime "${runtime}s" >"$work/inv.ours.$r.json" 2>/dev/null
done
args+=(file-randread-4k-invalidate "$(seq -s, -f "$work/inv.fio.%g.json" 1 "$rounds")" "$(seq -s, -f "$work/inv.ours.%g.json" 1 "$rounds")")

go run ./scripts/fiocompare "${args[@]}"
