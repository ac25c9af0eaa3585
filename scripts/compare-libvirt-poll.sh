#!/usr/bin/env bash
# What polling libvirt's job statistics every 50 ms costs a live migration: the testbed's
# libvirt pair (two session daemons, run as root), the guest migrated back and forth,
# alternating a migration polled every 50 ms and one not polled; prints each migration's
# total time, the ratio of the medians (target: within 5%) and its bootstrap interval.
# Further arguments go to scripts/libvirtpoll (-settle D: pause before each migration).
#   scripts/compare-libvirt-poll.sh [rounds] [poll] [flags]   e.g. scripts/compare-libvirt-poll.sh 15 50ms -settle 2s
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./scripts/libvirtpoll -rounds "${1:-5}" -poll "${2:-50ms}" "${@:3}"
