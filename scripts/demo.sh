#!/usr/bin/env bash
# The main job on the embedded default: start the loopback testbed (real Samba, NFS-Ganesha,
# the embedded NFS server, tgt and gotgt iSCSI targets), run the same workloads against every
# endpoint (examples/suites/demo.yaml), live-migrate a VM whose disk is on NFS while it and the
# host run I/O (examples/suites/demo-migration.yaml), and write the report: HTML with charts,
# Markdown and CSV tables. Everything it starts is stopped on exit.
#   scripts/demo.sh [path/to/vmstorbench] [output dir]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/vmstorbench}
out=${2:-demo-out}
state=$(mktemp -d /tmp/vmstorbench-demo.XXXXXX)
trap '"$bin" testbed down --state "$state" >/dev/null 2>&1 || true' EXIT
start=$SECONDS

rm -rf "$out"
mkdir -p "$out"
# The guest first: on a fresh machine its kernel is fetched (apt-get download, once, into the
# cache) before any server starts, so a failure shows in seconds, not after the host runs.
echo "== the guest for the live migration (kernel, busybox initramfs, agent; cached after the first time)"
# Only the summary and the kernel's origin (sed reads to the end: no SIGPIPE under pipefail).
"$bin" vm image | sed -n 1,2p

echo "== starting the testbed (real servers on 127.0.0.1)"
"$bin" testbed up --state "$state"

echo "== NFS vs SMB (none, signed, encrypted) vs iSCSI: three workloads on every endpoint"
"$bin" suite run examples/suites/demo.yaml --testbed-state "$state" --out "$out/host" >/dev/null

echo "== a live migration (pre-copy) with the VM's disk on NFS, I/O inside and outside the VM"
"$bin" suite run examples/suites/demo-migration.yaml --testbed-state "$state" --out "$out/migration" >/dev/null

"$bin" report "$out/host" "$out/migration" --title "vmstorbench demo: NFS vs SMB vs iSCSI, and a live migration" \
  --html "$out/report.html" --charts "$out/charts" --format md --quiet=false >"$out/report.md"
"$bin" report "$out/host" "$out/migration" --format csv >"$out/report.csv"
echo "== report: $out/report.html (charts in $out/charts, tables in $out/report.md and .csv, result documents in $out/host and $out/migration)"
echo "== demo took $((SECONDS - start)) s"
