#!/usr/bin/env bash
# Runs the same jobs through fio and through vmstorbench, one after the other in one run, and
# prints both and their ratio (ours / fio). Jobs: the null engine (the engine's own ceiling)
# at iodepth 1 and 32, and a page-cached local file with fio's psync engine.
#   scripts/compare-fio.sh [path/to/vmstorbench] [runtime]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/vmstorbench}
runtime=${2:-5}
[ -x "$bin" ] || go build -o "$bin" ./cmd/vmstorbench
command -v fio >/dev/null || { echo "compare-fio: fio not installed (apt-get install fio)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/vmstorbench-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
file=$work/bench.dat
args=()

# job LABEL "fio options" "vmstorbench options" TARGET
job() {
  local label=$1 fioopts=$2 ouropts=$3 target=$4
  # shellcheck disable=SC2086
  fio --name=job --output-format=json --time_based --runtime="$runtime" $fioopts >"$work/$label.fio.json"
  # shellcheck disable=SC2086
  "$bin" run --quiet --no-save --output-format fio-json --allow-destructive --time-based --runtime "${runtime}s" \
    --target "$target" $ouropts >"$work/$label.ours.json"
  args+=("$label" "$work/$label.fio.json" "$work/$label.ours.json")
}

job null-randread-4k-qd1  "--ioengine=null --rw=randread --bs=4k --size=1g --iodepth=1"  "--rw randread --bs 4k --size 1g --iodepth 1"  "null://"
job null-randread-4k-qd32 "--ioengine=null --rw=randread --bs=4k --size=1g --iodepth=32" "--rw randread --bs 4k --size 1g --iodepth 32" "null://"

# Lay the file out once; both tools then run on the same page-cached file.
fio --name=layout --filename="$file" --size=1g --rw=write --bs=1m --output=/dev/null
for spec in "randread 4k" "randwrite 4k" "read 1m" "write 1m"; do
  set -- $spec
  job "file-$1-$2" "--ioengine=psync --filename=$file --size=1g --rw=$1 --bs=$2" "--rw $1 --bs $2 --size 1g" "file://$file"
done

go run ./scripts/fiocompare "${args[@]}"
