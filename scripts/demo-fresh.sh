#!/usr/bin/env bash
# The main job as on a fresh machine, for `make test` (what CI runs): the demo with vmstorbench's cache
# (guest kernel, guest image, agent, KVM check) in a new, empty directory, so the kernel
# download and every build step run, and the demo's output in a temporary directory; both
# are removed afterwards. Go's own build and module caches stay where they are: a fresh
# machine fills them in make's build step, which is not what this checks.
#   scripts/demo-fresh.sh [path/to/vmstorbench]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/vmstorbench}
export PATH=/usr/local/go/bin:$PATH
GOCACHE=$(go env GOCACHE)
GOMODCACHE=$(go env GOMODCACHE)
export GOCACHE GOMODCACHE
tmp=$(mktemp -d /tmp/vmstorbench-demo-fresh.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset VMSTORBENCH_CACHE
export XDG_CACHE_HOME=$tmp/cache
mkdir -p "$XDG_CACHE_HOME"
echo "== demo on an empty cache ($XDG_CACHE_HOME)"
scripts/demo.sh "$bin" "$tmp/out"
