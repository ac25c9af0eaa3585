#!/usr/bin/env bash
# The main job on the embedded default: start the loopback testbed (real Samba, NFS-Ganesha,
# the embedded NFS server, iSCSI targets when available), run the same workloads against
# every endpoint, and write the comparison report. Everything it starts is stopped on exit.
#   scripts/demo.sh [path/to/vmstorbench] [output dir]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/vmstorbench}
out=${2:-demo-out}
runtime=${DEMO_RUNTIME:-3s}
state=$(mktemp -d /tmp/vmstorbench-demo.XXXXXX)
trap '"$bin" testbed down --state "$state" >/dev/null 2>&1 || true' EXIT

rm -rf "$out"
mkdir -p "$out/results"
echo "== starting the testbed (real servers on 127.0.0.1)"
"$bin" testbed up --state "$state"

for profile in rand-read-4k seq-read seq-write; do
  echo "== $profile on every endpoint"
  # --allow-destructive: the testbed's iSCSI LUNs are scratch devices of its own.
  "$bin" run --testbed --testbed-state "$state" --profile "$profile" --allow-destructive \
    --size 64m --runtime "$runtime" --interval 100ms --results "$out/results" --quiet
done

"$bin" report "$out/results" --format md >"$out/report.md"
"$bin" report "$out/results" --format csv >"$out/report.csv"
echo "== report: $out/report.md ($out/report.csv, result documents in $out/results)"
