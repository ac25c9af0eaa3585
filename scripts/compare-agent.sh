#!/usr/bin/env bash
# The in-guest agent's overhead (issue 5, "Performance"): one job run by the agent inside the
# guest on its file-backed disk (vmstorbench migrate --mode none: boot, run, no migration)
# and by vmstorbench on the host against the same image, alternating over several rounds in
# one run, then the steady IOPS of the best round of each and their ratio (guest / host).
# Under TCG the guest side pays for the emulation too, which dwarfs the agent's own cost.
#   scripts/compare-agent.sh [path/to/vmstorbench] [runtime seconds] [rounds] [profile]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/vmstorbench}
runtime=${2:-8}
rounds=${3:-2}
profile=${4:-oltp}
disk=32m
[ -x "$bin" ] || go build -o "$bin" ./cmd/vmstorbench
work=$(mktemp -d /var/tmp/vmstorbench-agent.XXXXXX)
trap 'rm -rf "$work"' EXIT
img=$work/disk.img
truncate -s "$disk" "$img"
# Build (or find in the cache) the guest image first, so that no round pays for it.
"$bin" vm image >/dev/null

guests="" hosts=""
for r in $(seq 1 "$rounds"); do
  # The guest runs the profile direct and time-based on its whole disk; the host the same.
  "$bin" migrate --quiet --no-save --json --mode none --at "${runtime}s" --after 100ms --no-verify \
    --allow-destructive --disk-size "$disk" --target "file://$img" --profile "$profile" >"$work/guest.$r.json"
  "$bin" run --quiet --no-save --json --allow-destructive --time-based --runtime "${runtime}s" \
    --target "file://$img" --profile "$profile" --fio "size=$disk direct=1 ramp_time=0" >"$work/host.$r.json"
  guests+="${guests:+,}$work/guest.$r.json"
  hosts+="${hosts:+,}$work/host.$r.json"
done

go run ./scripts/agentcompare "$guests" "$hosts"
