#!/usr/bin/env bash
# compare-smb.sh: sequential throughput and client CPU of smbclient and of vmstorbench's smb
# backend on the same Samba share, at each SMB security level, in one run, with the ratios;
# plus the backend's 4 KiB random-read IOPS.
#
# It starts the Samba testbed (testbed.Samba through backends/smb/internal/sambaserve: the
# main smbd offers AES-128-GMAC signing first, a second one AES-128-CMAC only). At each level
#   none         share bench, no signing (smbclient's default; ours without sign=)
#   signed-gmac  share bench, every message signed; both clients negotiate AES-128-GMAC
#   signed-cmac  the CMAC-only smbd: every message signed with AES-128-CMAC
#   encrypted    share bench-enc ("smb encrypt = required"): AES-128-GCM
# it writes a SIZE_MIB file with `smbclient put`, reads it back with `smbclient get` (to
# /dev/null), and runs BenchmarkSMB (1 MiB requests, INFLIGHT in flight on one connection)
# over the same number of bytes on the same share. ROUNDS rounds alternate which client goes
# first; the best round of each is compared (the machine is shared: best-of is the least
# noisy). Throughput: smbclient's own transfer rate, so its connection set-up is not counted,
# as ours is not; MB/s are 10^6 bytes per second. CPU: user+system seconds of the client
# process per GiB moved, the least of the rounds; smbclient's is its process's CPU (bash's
# `time`) less that of the same command moving a 4 KiB file (start-up, logon, tree connect),
# ours is the benchmark's cpu-µs/op (the process's getrusage over the timed requests). With
# 1 MiB requests, CPU per 1,000 I/Os is CPU per GiB x 1000/1024.
# With VSB=1 (the default) each round also runs the product itself, `vmstorbench run` (rw=write
# then rw=read, bs=1m, iodepth=INFLIGHT, size=SIZE_MIB), and takes its rate and the CPU time
# from the result document (read.bw_bytes_per_s or write's, cpu.user_ns + cpu.sys_ns: the
# process over the run, engine included).
# With BEFORE=DIR (another checkout of vmstorbench, e.g. a `git worktree` of the commit before
# a change), each round also runs that checkout's BenchmarkSMB right after ours, and a last
# table compares it with smbclient the same way: before and after, side by side in one run.
# Targets: throughput ratio >= 0.9, CPU ratio (ours / smbclient) <= 1.1, at every level.
#
#   scripts/compare-smb.sh            # needs root, samba, smbclient, go
#   ROUNDS=5 SIZE_MIB=512 INFLIGHT=16 LEVELS="signed-gmac signed-cmac" scripts/compare-smb.sh
#   BEFORE=/tmp/before VSB=0 scripts/compare-smb.sh   # /tmp/before: git worktree add --detach /tmp/before main
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-256}
INFLIGHT=${INFLIGHT:-8}
IOPS_TIME=${IOPS_TIME:-2s} # 0: skip the random-read IOPS
LEVELS=${LEVELS:-none signed-gmac signed-cmac encrypted}
VSB=${VSB:-1}
BEFORE=${BEFORE:-}

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
[ "$VSB" = 1 ] && go build -o "$work/vmstorbench" ./cmd/vmstorbench
if [ -n "$BEFORE" ]; then
	(cd "$BEFORE" && go test -c -o "$work/smb-before.test" ./backends/smb) ||
		{ echo "compare-smb: cannot build BenchmarkSMB in BEFORE=$BEFORE" >&2; exit 1; }
fi

"$work/sambaserve" -dir "$work/samba" -env "$work/env" &
server_pid=$!
for _ in $(seq 200); do
	[ -s "$work/env" ] && break
	kill -0 "$server_pid" 2>/dev/null || { echo "compare-smb: Samba testbed failed to start" >&2; exit 1; }
	sleep 0.1
done
[ -s "$work/env" ] || { echo "compare-smb: Samba testbed not ready after 20 s" >&2; exit 1; }
# shellcheck disable=SC1091
. "$work/env" # SMB_PORT, SMB_URL, SMB_SIGNED_CMAC_PORT, ..., exports VMSTORBENCH_SMB_PASSWORD

umask 077
printf 'username = vmstorbench\npassword = %s\n' "$VMSTORBENCH_SMB_PASSWORD" >"$work/auth"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/src"
head -c 4096 /dev/urandom >"$work/tiny"

# level_conf LEVEL -> sets share, port, prot (smbclient's --client-protection) and url (ours)
level_conf() {
	case "$1" in
	none) share=bench port=$SMB_PORT prot=off url="${SMB_URL%/*}/ours.img" ;;
	signed-gmac) share=bench port=$SMB_PORT prot=sign url="${SMB_SIGNED_URL%/*}/ours.img?sign=required" ;;
	signed-cmac) share=bench port=$SMB_SIGNED_CMAC_PORT prot=sign url="${SMB_SIGNED_CMAC_URL%/*}/ours.img?sign=required" ;;
	encrypted) share=bench-enc port=$SMB_PORT prot=encrypt url="${SMB_ENCRYPTED_URL%/*}/ours.img" ;;
	*) echo "compare-smb: unknown level $1 (none, signed-gmac, signed-cmac, encrypted)" >&2; exit 1 ;;
	esac
}

# smbclient_run COMMAND -> "MBPS CPU_SECONDS": smbclient's "(average N kb/s)" in MB/s, and
# the process's user+system seconds. Uses share, port and prot.
smbclient_run() {
	local out cpu
	TIMEFORMAT='%U %S'
	if ! { time smbclient "//127.0.0.1/$share" -p "$port" -A "$work/auth" --client-protection="$prot" -c "$1" >"$work/out" 2>&1; } 2>"$work/cpu"; then
		echo "compare-smb: smbclient -c '$1' on //127.0.0.1:$port/$share failed: $(cat "$work/out")" >&2
		exit 1
	fi
	out=$(sed -n 's/.*(average \([0-9.]*\) \(kb\/s\|KiloBytes\/sec\)).*/\1/p' "$work/out" | tail -1)
	cpu=$(awk '{ print $1 + $2 }' "$work/cpu")
	awk -v k="${out:-0}" -v c="$cpu" 'BEGIN { printf "%.1f %.4f", k * 1024 / 1e6, c }'
}

ours_run() { # ours_run BENCH-REGEX BENCHTIME [TEST-BINARY] -> raw benchmark lines (uses url)
	VMSTORBENCH_SMB_BENCH_URL="$url" VMSTORBENCH_SMB_BENCH_SIZE="${SIZE_MIB}m" \
		"${3:-$work/smb.test}" -test.run '^$' -test.bench "$1" -test.benchtime "$2" 2>&1 |
		grep '^BenchmarkSMB/' || { echo "compare-smb: benchmark $1 on $url failed" >&2; exit 1; }
}

# vsb_run RW -> "MBPS CPU_S_PER_GIB" of one `vmstorbench run` over the file, from its result
# document (uses url, with the file renamed).
vsb_run() {
	local doc
	doc=$(VMSTORBENCH_SMB_PASSWORD=$VMSTORBENCH_SMB_PASSWORD "$work/vmstorbench" run --target "${url/ours.img/vsb.img}" \
		--rw "$1" --bs 1m --iodepth "$INFLIGHT" --size "${SIZE_MIB}m" --json --no-save 2>"$work/vsb.err") ||
		{ echo "compare-smb: vmstorbench run --rw $1 on $url failed: $(cat "$work/vsb.err")" >&2; exit 1; }
	awk -v m="$SIZE_MIB" '
		!bw && /"bw_bytes_per_s"/ { gsub(/[^0-9.e+]/, "", $2); bw = $2 }
		/"user_ns"/ { gsub(/[^0-9]/, "", $2); u = $2 }
		/"sys_ns"/ { gsub(/[^0-9]/, "", $2); s = $2 }
		END { printf "%.1f %.4f", bw / 1e6, (u + s) / 1e9 * 1024 / m }' FS=: <<<"$doc"
}

metric() { # metric NAME UNIT < benchmark lines
	awk -v n="$1" -v u="$2" 'index($1, n) { for (i = 2; i <= NF; i++) if ($(i) == u) print $(i-1) }' | tail -1
}

best() { tr ' ' '\n' | grep -v '^$' | sort -g | tail -1; }
least() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }
# per_gib CPU_SECONDS_OVER_THE_FILE -> CPU seconds per GiB
per_gib() { awk -v c="$1" -v m="$SIZE_MIB" 'BEGIN { printf "%.4f", c * 1024 / m }'; }

declare -A R # R[level,metric] = space-separated values of the rounds
for level in $LEVELS; do
	level_conf "$level"
	smbclient_run "put $work/tiny tiny.img" >/dev/null
	echo
	echo "== $level: //127.0.0.1:$port/$share, smbclient --client-protection=$prot; ours $url"
	printf '%-6s %14s %14s %16s %16s | CPU s/GiB: %10s %10s %10s %10s\n' round "smbclient put" "smbclient get" "ours write QD$INFLIGHT" "ours read QD$INFLIGHT" "smbc put" "smbc get" "ours wr" "ours rd"
	for r in $(seq "$ROUNDS"); do
		run_smbclient() {
			read -r put putcpu <<<"$(smbclient_run "put $work/src ref.img")"
			read -r get getcpu <<<"$(smbclient_run "get ref.img /dev/null")"
			read -r _ base <<<"$(smbclient_run "get tiny.img /dev/null")"
			putcpu=$(per_gib "$(awk -v a="$putcpu" -v b="$base" 'BEGIN { print a - b }')")
			getcpu=$(per_gib "$(awk -v a="$getcpu" -v b="$base" 'BEGIN { print a - b }')")
		}
		run_ours() { # run_ours [TEST-BINARY]
			lines=$(ours_run "SMB/seq(write|read)/inflight=$INFLIGHT\$" "${SIZE_MIB}x" "$@")
			ow=$(metric "seqwrite/inflight=$INFLIGHT-" MB/s <<<"$lines")
			or=$(metric "seqread/inflight=$INFLIGHT-" MB/s <<<"$lines")
			owcpu=$(awk -v us="$(metric "seqwrite/inflight=$INFLIGHT-" cpu-µs/op <<<"$lines")" 'BEGIN { printf "%.4f", us * 1024 / 1e6 }')
			orcpu=$(awk -v us="$(metric "seqread/inflight=$INFLIGHT-" cpu-µs/op <<<"$lines")" 'BEGIN { printf "%.4f", us * 1024 / 1e6 }')
		}
		run_before() {
			[ -n "$BEFORE" ] || return 0
			run_ours "$work/smb-before.test"
			R[$level,bw]+=" $ow" R[$level,br]+=" $or" R[$level,bwcpu]+=" $owcpu" R[$level,brcpu]+=" $orcpu"
			printf '%-6s %14s %14s %16s %16s | %21s %10s %10s %10s\n' "" "" "" "before: $ow" "before: $or" "" "" "$owcpu" "$orcpu"
		}
		if ((r % 2)); then run_smbclient; run_before; run_ours; else run_before; run_ours; run_smbclient; fi
		printf '%-6s %14s %14s %16s %16s | %21s %10s %10s %10s\n' "$r" "$put" "$get" "$ow" "$or" "$putcpu" "$getcpu" "$owcpu" "$orcpu"
		R[$level,put]+=" $put" R[$level,get]+=" $get" R[$level,ow]+=" $ow" R[$level,or]+=" $or"
		R[$level,putcpu]+=" $putcpu" R[$level,getcpu]+=" $getcpu" R[$level,owcpu]+=" $owcpu" R[$level,orcpu]+=" $orcpu"
		if [ "$VSB" = 1 ]; then
			read -r vw vwcpu <<<"$(vsb_run write)"
			read -r vr vrcpu <<<"$(vsb_run read)"
			printf '%-6s %14s %14s %16s %16s | %21s %10s %10s %10s\n' "" "" "" "run: $vw" "run: $vr" "" "" "$vwcpu" "$vrcpu"
			R[$level,vw]+=" $vw" R[$level,vr]+=" $vr" R[$level,vwcpu]+=" $vwcpu" R[$level,vrcpu]+=" $vrcpu"
		fi
	done
done

echo
echo "best of $ROUNDS rounds, $SIZE_MIB MiB; ours: 1 MiB requests, $INFLIGHT in flight, one connection."
echo "MB/s: best round; CPU: client user+system s/GiB, least round (per 1,000 1 MiB I/Os: x0.977)."
echo
echo "| level | smbclient put | ours write | ratio | smbclient get | ours read | ratio | CPU/GiB put / ours write | ratio | CPU/GiB get / ours read | ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for level in $LEVELS; do
	awk -v l="$level" \
		-v sp="$(best <<<"${R[$level,put]}")" -v ow="$(best <<<"${R[$level,ow]}")" \
		-v sg="$(best <<<"${R[$level,get]}")" -v or="$(best <<<"${R[$level,or]}")" \
		-v cp="$(least <<<"${R[$level,putcpu]}")" -v cw="$(least <<<"${R[$level,owcpu]}")" \
		-v cg="$(least <<<"${R[$level,getcpu]}")" -v cr="$(least <<<"${R[$level,orcpu]}")" 'BEGIN {
		printf "| %s | %.0f MB/s | %.0f MB/s | %.2f | %.0f MB/s | %.0f MB/s | %.2f | %.3f / %.3f s | %.2f | %.3f / %.3f s | %.2f |\n",
			l, sp, ow, ow / sp, sg, or, or / sg, cp, cw, cw / cp, cg, cr, cr / cg
	}'
done

# side_table TITLE NAME W RD: a table of the rounds' series R[level,W], R[level,RD] (rates)
# and R[level,Wcpu], R[level,RDcpu] against smbclient's put and get.
side_table() {
	echo
	echo "$1, against smbclient:"
	echo
	echo "| level | $2 write | ratio to put | $2 read | ratio to get | CPU/GiB write | ratio | CPU/GiB read | ratio |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for level in $LEVELS; do
		awk -v l="$level" \
			-v sp="$(best <<<"${R[$level,put]}")" -v vw="$(best <<<"${R[$level,$3]}")" \
			-v sg="$(best <<<"${R[$level,get]}")" -v vr="$(best <<<"${R[$level,$4]}")" \
			-v cp="$(least <<<"${R[$level,putcpu]}")" -v cw="$(least <<<"${R[$level,${3}cpu]}")" \
			-v cg="$(least <<<"${R[$level,getcpu]}")" -v cr="$(least <<<"${R[$level,${4}cpu]}")" 'BEGIN {
			printf "| %s | %.0f MB/s | %.2f | %.0f MB/s | %.2f | %.3f s | %.2f | %.3f s | %.2f |\n",
				l, vw, vw / sp, vr, vr / sg, cw, cw / cp, cr, cr / cg
		}'
	done
}
[ -z "$BEFORE" ] || side_table "BEFORE ($BEFORE), its BenchmarkSMB in the same rounds" before bw br
[ "$VSB" != 1 ] || side_table "ours through \`vmstorbench run\` (rate and CPU from the result document)" vmstorbench vw vr

if [ "$IOPS_TIME" != 0 ]; then
	echo
	echo "ours, 4 KiB random reads ($IOPS_TIME each, level none):"
	level_conf none
	ours_run 'SMB/randread4k/' "$IOPS_TIME" |
		awk '{ for (i = 2; i <= NF; i++) if ($(i) == "IOPS") { sub(/^BenchmarkSMB\/randread4k\//, "", $1); sub(/-[0-9]+$/, "", $1); printf "  %-12s %10.0f IOPS\n", $1, $(i-1) } }'
fi
