#!/usr/bin/env bash
# QEMU downtime of `--storage mirror` against the same run on shared storage, and the
# mirror's disruption against `--storage copy`'s: the same guest, workload (oltp on the first
# 32 MiB), image size and link, rounds alternating shared, mirror (background copy mode,
# the default), mirror-wb (--mirror-copy-mode write-blocking) and copy; the image check is
# off (its pause is reported apart from the disruption anyway). Prints every run, then the
# best and the median of each method and the issue's two ratios for both mirror modes
# (targets: mirror's QEMU downtime within 2× of shared storage's; mirror's disruption ≤ 5%
# of copy's).
#   scripts/compare-storage-downtime.sh [rounds] [link] [disk-size]   e.g. ... 3 lan 256m
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} link=${2:-lan} size=${3:-256m}
work=$(mktemp -d /var/tmp/vsb-sd-XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/vmstorbench" ./cmd/vmstorbench
methods=(shared mirror mirror-wb copy)
# Where the pause went, from the QMP events, ms: the source's STOP to pre-switchover (the
# stop's drain and flush: for the mirror, its requests in flight), pre-switchover to
# "device" (the mirror's final sync, vmstorbench's round trips), "device" to "completed" (the
# last RAM and the device state; for shared storage and copy from STOP, drain included),
# then the source's "completed" to the destination's RESUME (the link still carrying the
# stream, the destination loading it).
breakdown='.migration as $m
| ([$m.events[] | select(.side == "source" and .event == "STOP")] | last | .t_ns) as $stop
| def at(side; ev; det): [$m.events[] | select(.side == side and .event == ev and (det == null or .detail == det) and .t_ns >= $stop)] | first | .t_ns;
  def d(a; b): if a == null or b == null then "-" else ((b - a) / 1e5 | round) / 10 | tostring end;
  at("source"; "MIGRATION"; "pre-switchover") as $pre
| (at("source"; "MIGRATION"; "device") // $stop) as $dev
| at("source"; "MIGRATION"; "completed") as $done
| "\(d($stop; $pre)) \(d($pre; $dev)) \(d($dev; $done)) \(d($done; at("destination"; "RESUME"; null)))"'
printf '%-9s %-5s %10s %10s %12s %10s %10s   %s\n' method round qemu_ms pause_ms disruption_ms stall_ms disk_MB 'stop>pre pre>device device>completed completed>resume'
for r in $(seq "$rounds"); do
	for m in "${methods[@]}"; do
		out="$work/$m.$r.json"
		storage=(--storage "$m")
		[ "$m" = mirror-wb ] && storage=(--storage mirror --mirror-copy-mode write-blocking)
		# A run that fails (a guest starved on a loaded machine) is said and left out.
		if ! "$work/vmstorbench" migrate --target "file://$work" --disk-size "$size" --profile oltp --size 32m \
			--link "$link" "${storage[@]}" --check-image=false --deadline 5m -q --json --no-save >"$out" 2>"$work/err"; then
			printf '%-9s %-5s failed: %s\n' "$m" "$r" "$(grep -m1 vmstorbench: "$work/err" || tail -1 "$work/err")"
			jq -r '.migration.notes[]? | "          note: \(.)"' "$out" 2>/dev/null || true
			rm -f "$out"
			continue
		fi
		printf '%s   %s\n' "$(jq -r --arg m "$m" --arg r "$r" '.migration | "\($m) \($r) \(.qemu_downtime_ms) \(.pause_ms) \(.disruption_ms) \(.longest_stall_ms) \((.disk_transferred_bytes // 0) / 1e6)"' "$out" |
			awk '{printf "%-9s %-5s %10.1f %10.1f %12.1f %10.1f %10.1f", $1, $2, $3, $4, $5, $6, $7}')" "$(jq -r "$breakdown" "$out")"
	done
done
# best (minimum) and median of a field over one method's runs
stat() { jq -s "[.[].migration.$2] | sort | {best: .[0], median: .[(length-1)/2|floor], runs: length}" "$work"/"$1".*.json; }
echo
for m in "${methods[@]}"; do
	printf '%-9s qemu downtime %s  disruption %s\n' "$m" "$(stat "$m" qemu_downtime_ms | jq -c .)" "$(stat "$m" disruption_ms | jq -c .)"
done
ratio() { jq -rn --argjson a "$(stat "$1" "$3")" --argjson b "$(stat "$2" "$3")" '"best \((($a.best / $b.best) * 100 | round) / 100), median \((($a.median / $b.median) * 100 | round) / 100)"'; }
echo "$size image over $link, $rounds rounds:"
for m in mirror mirror-wb; do
	printf '  %-9s QEMU downtime / shared storage'"'"'s: %s   (target ≤ 2)\n' "$m" "$(ratio "$m" shared qemu_downtime_ms)"
	printf '  %-9s disruption / copy'"'"'s:              %s   (target ≤ 0.05)\n' "$m" "$(ratio "$m" copy disruption_ms)"
done
