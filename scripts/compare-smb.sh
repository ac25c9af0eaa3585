#!/usr/bin/env bash
# compare-smb.sh: sequential throughput of smbclient and of vmstorbench's smb backend on the
# same Samba share, in one run, with the ratio; plus the backend's 4 KiB random-read IOPS.
#
# It starts the Samba testbed (testbed.Samba through backends/smb/internal/sambaserve),
# writes a SIZE_MIB file with `smbclient put` and reads it back with `smbclient get` (to
# /dev/null), and runs BenchmarkSMB (1 MiB requests, INFLIGHT in flight on one connection)
# over the same number of bytes on the same share. ROUNDS rounds alternate the two clients;
# the best round of each is compared (the machine is shared: best-of is the least noisy).
# smbclient's own transfer rate is used, so its connection set-up is not counted, as ours
# is not. MB/s are 10^6 bytes per second. Target: ratio >= 0.9.
#
#   scripts/compare-smb.sh            # needs root, samba, smbclient, go
#   ROUNDS=5 SIZE_MIB=512 INFLIGHT=16 scripts/compare-smb.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-256}
INFLIGHT=${INFLIGHT:-8}
IOPS_TIME=${IOPS_TIME:-2s}

cd "$(dirname "$0")/.."
for tool in smbclient go; do
	command -v "$tool" >/dev/null || { echo "compare-smb: $tool not found (apt-get install smbclient)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "compare-smb: the Samba testbed needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/compare-smb.XXXXXX)
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/sambaserve" ./backends/smb/internal/sambaserve
go test -c -o "$work/smb.test" ./backends/smb

"$work/sambaserve" -dir "$work/samba" -env "$work/env" &
server_pid=$!
for _ in $(seq 200); do
	[ -s "$work/env" ] && break
	kill -0 "$server_pid" 2>/dev/null || { echo "compare-smb: Samba testbed failed to start" >&2; exit 1; }
	sleep 0.1
done
[ -s "$work/env" ] || { echo "compare-smb: Samba testbed not ready after 20 s" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/env" # SMB_PORT, SMB_URL, ..., exports VMSTORBENCH_SMB_PASSWORD

umask 077
printf 'username = vmstorbench\npassword = %s\n' "$VMSTORBENCH_SMB_PASSWORD" >"$work/auth"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/src"

smbclient_run() { # smbclient_run COMMAND -> MB/s from smbclient's "(average N kb/s)"
	local out
	out=$(smbclient "//127.0.0.1/bench" -p "$SMB_PORT" -A "$work/auth" -c "$1" 2>&1) ||
		{ echo "compare-smb: smbclient -c '$1' failed: $out" >&2; exit 1; }
	echo "$out" | sed -n 's/.*(average \([0-9.]*\) \(kb\/s\|KiloBytes\/sec\)).*/\1/p' | tail -1 |
		awk '{ printf "%.1f", $1 * 1024 / 1e6 }'
}

ours_run() { # ours_run BENCH-REGEX BENCHTIME -> raw benchmark lines
	VMSTORBENCH_SMB_BENCH_URL="${SMB_URL%/*}/ours.img" VMSTORBENCH_SMB_BENCH_SIZE="${SIZE_MIB}m" \
		"$work/smb.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2" 2>&1 |
		grep '^BenchmarkSMB/' || { echo "compare-smb: benchmark $1 failed" >&2; exit 1; }
}

mbps() { # mbps NAME < benchmark lines
	awk -v n="$1" 'index($1, n) { for (i = 2; i <= NF; i++) if ($(i) == "MB/s") print $(i-1) }' | tail -1
}

best() { tr ' ' '\n' | grep -v '^$' | sort -g | tail -1; }

put_all= get_all= ow_all= or_all= ow1_all= or1_all=
printf '%-6s %14s %14s %16s %16s %16s %16s\n' round "smbclient put" "smbclient get" "ours write QD$INFLIGHT" "ours read QD$INFLIGHT" "ours write QD1" "ours read QD1"
for r in $(seq "$ROUNDS"); do
	put=$(smbclient_run "put $work/src ref.img")
	get=$(smbclient_run "get ref.img /dev/null")
	lines=$(ours_run "SMB/seq(write|read)/inflight=(1|$INFLIGHT)\$" "${SIZE_MIB}x")
	ow=$(mbps "seqwrite/inflight=$INFLIGHT-" <<<"$lines")
	or=$(mbps "seqread/inflight=$INFLIGHT-" <<<"$lines")
	ow1=$(mbps "seqwrite/inflight=1-" <<<"$lines")
	or1=$(mbps "seqread/inflight=1-" <<<"$lines")
	printf '%-6s %14s %14s %16s %16s %16s %16s\n' "$r" "$put" "$get" "$ow" "$or" "$ow1" "$or1"
	put_all+=" $put" get_all+=" $get" ow_all+=" $ow" or_all+=" $or" ow1_all+=" $ow1" or1_all+=" $or1"
done

put_best=$(best <<<"$put_all") get_best=$(best <<<"$get_all")
ow_best=$(best <<<"$ow_all") or_best=$(best <<<"$or_all")
echo
echo "best of $ROUNDS, $SIZE_MIB MiB, MB/s (ours: 1 MiB requests, $INFLIGHT in flight, one connection):"
awk -v sp="$put_best" -v sg="$get_best" -v ow="$ow_best" -v or="$or_best" -v ow1="$(best <<<"$ow1_all")" -v or1="$(best <<<"$or1_all")" 'BEGIN {
	printf "  write: smbclient %8.1f  ours %8.1f  ratio %.2f  (ours QD1 %.1f)\n", sp, ow, ow / sp, ow1
	printf "  read:  smbclient %8.1f  ours %8.1f  ratio %.2f  (ours QD1 %.1f)\n", sg, or, or / sg, or1
}'

echo
echo "ours, 4 KiB random reads ($IOPS_TIME each):"
ours_run 'SMB/randread4k/' "$IOPS_TIME" |
	awk '{ for (i = 2; i <= NF; i++) if ($(i) == "IOPS") { sub(/^BenchmarkSMB\/randread4k\//, "", $1); sub(/-[0-9]+$/, "", $1); printf "  %-12s %10.0f IOPS\n", $1, $(i-1) } }'
