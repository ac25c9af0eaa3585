#!/usr/bin/env bash
# soak.sh: N live migrations in a row through the `vmstorbench migrate` binary, rotating the
# modes (precopy, postcopy, stopcopy) over the testbed's kinds of storage so that every mode
# meets every target, on LAN and WAN links alternately, with --check-memory wherever the mode
# allows it (not post-copy) and the verify workload (oltp with verifiable blocks: the guest's
# own verify pass and the read-back on the destination). Then a CSV, one row a run, and a
# summary table per mode. A DRBD pair that does not start (twice) is left out, loudly, unless
# DRBD_REQUIRED is set. Exits 1 when any run failed, did not complete its migration,
# mismatched or left differing memory pages; 2 on bad input or a testbed that did not start.
#
#   scripts/soak.sh 50                          # all targets; DRBD too when the pair starts
#   TARGETS="file nfs-ganesha" scripts/soak.sh 6
#   SOAK_DIR=/var/tmp/soak scripts/soak.sh 50   # the CSV, results and logs go there
#                                               # (default: a new directory under $TMPDIR)
#
# Targets (TARGETS, in rotation order): file (a scratch image in a local directory),
# nfs-ganesha (QEMU's libnfs), nfs-gonfs (the embedded Go NFS server, through vmstorbench's
# NBD export: libnfs cannot talk to it), iscsi-tgt-chap (QEMU's libiscsi, CHAP), smb-encrypted
# (Samba, encryption required, through the NBD export), nbd-qemu (qemu-nbd) and drbd-c (a DRBD
# pair of TCG guests, protocol C, `testbed up --with drbd`). Run i uses mode i mod 3 and target
# (i / 3) mod T, so every mode meets every target within 3·T runs; the link alternates so
# that the next 3·T runs give every pair the other link.
#
# One testbed (`vmstorbench testbed up --only` the servers the targets need, its own state
# directory) serves all runs; it is stopped at the end (`testbed down`, which stops the
# servers by the PIDs they recorded).
# Each run is bounded by RUN_TIMEOUT (default 600 s; SIGINT, so the CLI saves what it has).
# Environment: AT, AFTER (workload before/after the migration, default 2s), DISK (16m),
# PROFILE (oltp), EXTRA (more migrate flags).
set -uo pipefail

N=${1:-}
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: scripts/soak.sh N   (N migrations, N >= 1)" >&2
	exit 2
fi
TARGETS=${TARGETS:-"file nfs-ganesha nfs-gonfs iscsi-tgt-chap smb-encrypted nbd-qemu drbd-c"}
MODES=(precopy postcopy stopcopy)
LINKS=(lan wan)
AT=${AT:-2s}
AFTER=${AFTER:-2s}
DISK=${DISK:-16m}
PROFILE=${PROFILE:-oltp}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
EXTRA=${EXTRA:-}

cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
for tool in go jq timeout awk sort; do
	command -v "$tool" >/dev/null || {
		echo "soak: $tool not found" >&2
		exit 2
	}
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmstorbench-soak.XXXXXX")
out=${SOAK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/vmstorbench-soak-out.XXXXXX")}
mkdir -p "$out/results" "$out/logs" "$tmp/disk"
tb=$tmp/testbed
bin=$tmp/vmstorbench
testbed_up=0
cleanup() {
	if [ "$testbed_up" = 1 ]; then
		"$bin" testbed down --state "$tb" >/dev/null 2>&1 || echo "soak: testbed down failed (state $tb)" >&2
	fi
	rm -rf "$tmp" # the binary, the testbed's state, the file target's directory
	echo "soak: CSV, summary, results and logs in $out" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One static binary: the DRBD pair's in-guest agent is this binary, and a guest cannot run a
# dynamically linked one.
echo "soak: building vmstorbench" >&2
CGO_ENABLED=0 go build -o "$bin" ./cmd/vmstorbench || exit 2

read -r -a targets <<<"$TARGETS"
# server_of TARGET: the testbed server behind a target ("" for file).
server_of() {
	case $1 in
	file) ;;
	nfs-ganesha) echo ganesha ;;
	nfs-gonfs) echo gonfs ;;
	iscsi-tgt | iscsi-tgt-chap) echo tgt ;;
	iscsi-gotgt) echo gotgt ;;
	smb | smb-signed | smb-encrypted) echo samba ;;
	nbd-qemu | nbd-qemu-tls) echo qemu-nbd ;;
	drbd-a | drbd-b | drbd-c) echo drbd ;;
	*) return 1 ;;
	esac
}
# servers: the testbed servers the targets need, comma-separated (only these start: fewer
# guests and daemons on a loaded machine, and no lock taken on a server another user needs).
servers() {
	local t s list=
	for t in "${targets[@]}"; do
		s=$(server_of "$t") || return 1
		[ -n "$s" ] && [[ ",$list," != *",$s,"* ]] && list=${list:+$list,}$s
	done
	echo "$list"
}
for t in "${targets[@]}"; do
	server_of "$t" >/dev/null || {
		echo "soak: unknown target $t" >&2
		exit 2
	}
done

# start_testbed: testbed up with the servers the targets need; nothing to start for file.
start_testbed() {
	local only
	only=$(servers)
	[ -z "$only" ] && return 0
	echo "soak: starting the testbed: $only" >&2
	if "$bin" testbed up --state "$tb" --only "$only" >"$out/testbed.txt" 2>&1; then
		testbed_up=1
		cat "$out/testbed.txt" >&2
		return 0
	fi
	cat "$out/testbed.txt" >&2
	"$bin" testbed down --state "$tb" >/dev/null 2>&1
	return 1
}

# The DRBD pair sometimes fails to connect on a loaded machine: TESTBED_TRIES (default 2).
# Without DRBD_REQUIRED, a pair that will not start leaves the other targets to soak: said
# on stderr and in the summary, never silently.
started=0
for ((try = 1; try <= ${TESTBED_TRIES:-2}; try++)); do
	start_testbed && { started=1; break; }
done
dropped=
if [ "$started" = 0 ] && [[ ",$(servers)," == *,drbd,* ]] && [ -z "${DRBD_REQUIRED:-}" ]; then
	kept=()
	for t in "${targets[@]}"; do
		case $t in drbd-*) dropped="$dropped $t" ;; *) kept+=("$t") ;; esac
	done
	targets=("${kept[@]}")
	echo "soak: the DRBD pair did not start; soaking without:$dropped" >&2
	[ ${#targets[@]} -gt 0 ] && start_testbed && started=1
fi
[ "$started" = 1 ] || {
	echo "soak: the testbed did not start" >&2
	exit 2
}

csv=$out/soak.csv
echo "run,mode,target,link,exit,outcome,complete,mismatches,checked,differing_pages,downtime_ms,stall_ms,check_pause_ms,duration_s,error" >"$csv"

# args_for TARGET: the --target and access flags for one target.
args_for() {
	case $1 in
	file) echo "--target file://$tmp/disk" ;;
	nfs-gonfs) echo "--target testbed:nfs-gonfs --access nbd" ;;
	iscsi-* | nbd-* | drbd-*) echo "--target testbed:$1 --allow-destructive" ;;
	*) echo "--target testbed:$1" ;;
	esac
}

T=${#targets[@]}
# With 3·T even, i mod 2 would give each mode-target pair the same link every time: flip the
# phase every 3·T runs. With 3·T odd, i mod 2 already alternates each pair's link.
flip=$((1 - (3 * T) % 2))
start_all=$(date +%s)
for ((i = 0; i < N; i++)); do
	mode=${MODES[i % 3]}
	target=${targets[(i / 3) % T]}
	link=${LINKS[(i + flip * (i / (3 * T))) % 2]}
	check=()
	[ "$mode" != postcopy ] && check=(--check-memory)
	run=$(printf '%03d' "$i")
	res=$out/results/$run
	mkdir -p "$res"
	log=$out/logs/$run-$mode-$target-$link.log
	# shellcheck disable=SC2046,SC2086 # args_for and EXTRA are word lists on purpose
	set -- --accel tcg --quiet --profile "$PROFILE" --at "$AT" --after "$AFTER" --disk-size "$DISK" \
		--mode "$mode" --link "$link" "${check[@]}" --testbed-state "$tb" --results "$res" \
		$(args_for "$target") $EXTRA
	t0=$(date +%s.%N)
	echo "+ vmstorbench migrate $*" >"$log"
	timeout --signal=INT --kill-after=60 "$RUN_TIMEOUT" "$bin" migrate "$@" >>"$log" 2>&1
	code=$?
	dur=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	doc=$(ls "$res"/*.json 2>/dev/null | head -1)
	if [ -n "$doc" ]; then
		row=$(jq -r '[
			(.migration.outcome // "none"),
			(.complete // false),
			([.verify.mismatches, .migration.integrity.read_back.mismatches] | map(. // 0) | add),
			([.verify.checked, .migration.integrity.read_back.checked] | map(. // 0) | add),
			(if .migration.memory then .migration.memory.differing_pages else "" end),
			(.migration.qemu_downtime_ms // 0 | . * 10 | round / 10),
			(.migration.longest_stall_ms // 0 | . * 10 | round / 10),
			(.migration.check_pause_ms // 0 | . * 10 | round / 10),
			((.error // "") | gsub("[,\n\"]"; " ") | .[0:160])
		] | map(tostring) | join("\u001f")' "$doc")
		# A separator that is not white space: read keeps empty fields (no memory compared).
		IFS=$'\x1f' read -r outcome complete mism checked pages down stall cpause err <<<"$row"
	else
		outcome=none complete=false mism= checked= pages= down= stall= cpause=
		err="no result document ($(tail -1 "$log" | tr ',"' '  ' | cut -c1-140))"
	fi
	echo "$i,$mode,$target,$link,$code,$outcome,$complete,$mism,$checked,$pages,$down,$stall,$cpause,$dur,\"$err\"" >>"$csv"
	printf 'soak: %3d/%d %-8s %-14s %-3s exit %-3s %-9s complete=%-5s mismatches=%s pages=%s downtime=%sms stall=%sms %ss\n' \
		"$((i + 1))" "$N" "$mode" "$target" "$link" "$code" "$outcome" "$complete" "${mism:-?}" "${pages:--}" "${down:-?}" "${stall:-?}" "$dur" >&2
done
elapsed=$(($(date +%s) - start_all))

# Summary per mode (and all): completed/total (exit 0, migration completed, run complete),
# verify mismatches in the blocks checked (the guest's verify pass and the read-back),
# differing pages (runs compared), QEMU downtime and the workload's longest stall (check
# pauses left out) as p50/p95/max (nearest rank) over the runs whose migration completed.
summary() {
	awk -F, -v secs="$elapsed" '
	function pct(arr, n, p,    k) { if (n == 0) return "-"; k = int(p * n + 0.999999); if (k < 1) k = 1; return arr[k] }
	function sortn(arr, n,    i, j, t) { for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t } }
	function line(name, tot, ok, mis, chk, pg, pgr, d, nd, s, ns,    dd, ss, i) {
		for (i = 1; i <= nd; i++) dd[i] = d[i]; sortn(dd, nd)
		for (i = 1; i <= ns; i++) ss[i] = s[i]; sortn(ss, ns)
		printf "| %s | %d/%d | %d in %d | %s | %s / %s / %s | %s / %s / %s |\n", name, ok, tot, mis, chk, (pgr ? pg " in " pgr : "-"),
			pct(dd, nd, .5), pct(dd, nd, .95), pct(dd, nd, 1), pct(ss, ns, .5), pct(ss, ns, .95), pct(ss, ns, 1)
	}
	NR == 1 { next }
	{
		m = $2; tot[m]++; all++
		if ($5 == 0 && $6 == "completed" && $7 == "true") { ok[m]++; okall++ }
		mis[m] += $8; misall += $8; chk[m] += $9; chkall += $9
		if ($10 != "") { pg[m] += $10; pgr[m]++; pgall += $10; pgrall++ }
		if ($6 == "completed") { d[m, ++nd[m]] = $11 + 0; s[m, ++ns[m]] = $12 + 0; dall[++ndall] = $11 + 0; sall[++nsall] = $12 + 0 }
	}
	END {
		print "| mode | completed | verify mismatches in blocks checked | differing pages (runs compared) | QEMU downtime ms p50 / p95 / max | longest stall ms p50 / p95 / max |"
		print "|---|---|---|---|---|---|"
		split("precopy postcopy stopcopy", order, " ")
		for (k = 1; k <= 3; k++) {
			m = order[k]; if (!(m in tot)) continue
			delete dd; delete ss
			for (i = 1; i <= nd[m]; i++) dd[i] = d[m, i]
			for (i = 1; i <= ns[m]; i++) ss[i] = s[m, i]
			line(m, tot[m], ok[m] + 0, mis[m], chk[m], pg[m] + 0, pgr[m] + 0, dd, nd[m] + 0, ss, ns[m] + 0)
		}
		line("all", all, okall + 0, misall, chkall, pgall + 0, pgrall + 0, dall, ndall + 0, sall, nsall + 0)
		printf "\n%d runs in %d s\n", all, secs
	}' "$csv"
}
summary | tee "$out/summary.md"
[ -n "$dropped" ] && echo "not soaked (the DRBD pair did not start):$dropped" | tee -a "$out/summary.md"

echo "soak: CSV $csv" >&2
bad=$(awk -F, 'NR > 1 && ($5 != 0 || $6 != "completed" || $7 != "true" || $8 != 0 || ($10 != "" && $10 != 0)) { n++ } END { print n + 0 }' "$csv")
if [ "$bad" -gt 0 ]; then
	echo "soak: $bad of $N runs failed, did not complete, mismatched or differed (logs: $out/logs):" >&2
	awk -F, 'NR > 1 && ($5 != 0 || $6 != "completed" || $7 != "true" || $8 != 0 || ($10 != "" && $10 != 0))' "$csv" >&2
	exit 1
fi
