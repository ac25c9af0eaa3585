#!/usr/bin/env bash
# Throughput of the mirror and of the copy that `vmstorbench migrate --storage mirror|copy` use, against
# `qemu-img convert -O raw` into the same kind of destination (a destination QEMU's NBD
# export of an empty image; the copy into the same destination image), same source image,
# alternating rounds; prints both ratios.
#   scripts/compare-mirror.sh [size] [rounds] [link]     e.g. scripts/compare-mirror.sh 256m 3 lan
set -euo pipefail
cd "$(dirname "$0")/.."
args=(-size "${1:-256m}" -rounds "${2:-3}")
[ -n "${3:-}" ] && args+=(-link "$3")
go run ./scripts/mirrorcompare "${args[@]}"
