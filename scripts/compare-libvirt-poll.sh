#!/usr/bin/env bash
# What polling libvirt's job statistics every 50 ms costs a live migration: the testbed's
# libvirt pair (two session daemons, run as root), the guest migrated back and forth,
# alternating a migration polled every 50 ms and one not polled; prints each migration's
# total time and the ratio of the medians (target: within 5%).
#   scripts/compare-libvirt-poll.sh [rounds] [poll]     e.g. scripts/compare-libvirt-poll.sh 5 50ms
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./scripts/libvirtpoll -rounds "${1:-5}" -poll "${2:-50ms}"
