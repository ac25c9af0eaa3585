#!/usr/bin/env bash
# Runs every example job file fio ships (/usr/share/doc/fio/examples/*.fio) through
# 'vmstorbench run FILE' against null:// and against a file:// directory, shortened by flag
# overrides (flags apply on top of every job section: --runtime, --ramp-time, --size, and
# startdelay=0 through --fio), and prints one line per file: how many of the two targets
# ran, and for a refused file the first line of the error. The goal of issue 12: every
# example whose I/O a VM image could see runs.
#   scripts/fio-examples.sh [path/to/vmstorbench] [examples dir]
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/vmstorbench}
dir=${2:-/usr/share/doc/fio/examples}
[ -x "$bin" ] || go build -o "$bin" ./cmd/vmstorbench
work=$(mktemp -d "${TMPDIR:-/var/tmp}/vmstorbench-fio-examples.XXXXXX")
trap 'rm -rf "$work"' EXIT
override=(--runtime 200ms --ramp-time 0 --size 16m --fio "startdelay=0")

printf '%-34s %-5s %s\n' FILE RUNS REFUSED
files=0 ran=0 refused=0
for f in "$dir"/*.fio; do
  files=$((files + 1))
  runs=0 reason=""
  for target in null:// "file://$work/files"; do
    mkdir -p "$work/files"
    if timeout 120 "$bin" run "$f" --target "$target" "${override[@]}" --no-save --quiet \
      --output-format csv >/dev/null 2>"$work/err"; then
      runs=$((runs + 1))
    elif [ -z "$reason" ]; then
      reason=$(grep -v '^note: ' "$work/err" | head -1 | sed -e 's/^vmstorbench: //' -e "s#^$f:#line #")
      [ -n "$reason" ] || reason="exit status $? (no message)"
      n=$(grep -v '^note: ' "$work/err" | grep -c .)
      [ "$n" -le 1 ] || reason="$reason (+$((n - 1)) more)"
    fi
    rm -rf "$work/files"
  done
  if [ "$runs" -eq 2 ]; then ran=$((ran + 1)); else refused=$((refused + 1)); fi
  printf '%-34s %d/2   %s\n' "$(basename "$f")" "$runs" "$reason"
done
echo
echo "$files files: $ran ran on both targets, $refused refused or failed on at least one"
