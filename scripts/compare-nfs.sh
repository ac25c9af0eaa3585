#!/usr/bin/env bash
# compare-nfs.sh: the nfs:// backend against libnfs on one NFS-Ganesha export, in one run,
# in two parts.
#
# It starts Ganesha on loopback (through the testbed, via the backend's test binary, which
# takes the machine-wide Ganesha lock /tmp/vmstorbench-nfs-ganesha.lock).
#
# Part 1, nfs-cp (NFSCP=0 skips it): copies a 256 MiB file to and from the export with
# nfs-cp (1 MiB UNSTABLE writes + COMMIT, 1 MiB reads, one request at a time), then runs the
# backend's Go benchmarks on the same export: the same sequential transfer with 1 MiB
# requests, one and four in flight, and 4 KiB random reads with 1 and 16 in flight. Each
# side's best of REPS transfers is compared (the machine is shared; best-of is the least
# noisy); nfs-cp's time includes its mount (a few ms), ours excludes Open. It prints MB/s
# (10^6 bytes/s, as Go benchmarks do) and the ratio, and each client's user+system CPU seconds
# per GiB (nfs-cp: its process under /usr/bin/time, mount included; ours: the benchmark's
# cpu-s/GiB over the timed transfer), the least of the REPS runs, with per 1,000 I/Os (1 MiB
# each: x 1000/1024) and the ratio ours / nfs-cp.
#
# Part 2, fio (FIO=0 skips it): fio's nfs ioengine (libnfs; fio 3.33 built with it by
# scripts/fio-build.sh, as Debian's fio lacks it) against `vmstorbench run --target nfs://…`,
# the same jobs on the same pre-created file of SIZE random bytes in the export (neither tool
# lays anything out), each SECS seconds time-based, one connection each:
#   4k-rand-qd1    4 KiB random reads, 1 in flight
#   4k-rand-qd16   4 KiB random reads, 16 in flight
#   1m-seq-qd8     1 MiB sequential reads, 8 in flight
#   1m-write-qd8   1 MiB sequential writes, 8 in flight
# fio's engine is asynchronous (nfs_pread_async/nfs_pwrite_async, iodepth requests on the
# wire from the one job process, completions reaped with poll). Its writes are UNSTABLE
# (libnfs sends FILE_SYNC only for files opened O_SYNC, which the engine never does, whatever
# fio's sync= says) and libnfs COMMITs a written file when it is closed, after the timed
# run. Ours writes with stable=unstable to match (its default is FILE_SYNC) and sends no
# COMMIT during the run either. For ROUNDS rounds, case by case, the sides run back to back
# in rotating order. IOPS: each tool's own figure. CPU per I/O: fio's job (its getrusage over
# the I/O: (usr_cpu + sys_cpu) x job_runtime / total_ios, from --output-format=json), ours
# from the result document ((cpu.user_ns + cpu.sys_ns) / ios: the process's getrusage over
# the run); the whole process under /usr/bin/time (start-up, mount, fio's parent process
# included) is printed for the record. The summary gives medians (IOPS, MiB/s, client CPU
# per 1,000 I/Os and per GiB) and the median of the per-round ratios ours / fio (CPU: median
# and lowest): the runs of a round are back to back, so their ratio is the least disturbed
# by other load on a shared machine.
#
# With BEFORE=DIR (another checkout of vmstorbench, e.g. a `git worktree` of the commit before
# a change) its vmstorbench runs in the same rounds as a third side, and the summary adds the
# CPU ratio ours / before (median / lowest). OURS_ENV="NAME=VALUE ..." sets environment
# variables for our side (and BEFORE's), e.g. GOMAXPROCS=1.
#
# Targets: ours >= 0.9x the reference's throughput, <= 1.1x its CPU per I/O.
#
# Needs root, nfs-ganesha, nfs-ganesha-vfs, rpcbind, libnfs-utils (nfs-cp), go, python3; the
# fio part builds fio once (scripts/fio-build.sh: gcc, libnfs-dev, ...).
# Usage: scripts/compare-nfs.sh [REPS (default 3)]
#   FIO=0 scripts/compare-nfs.sh                  # part 1 only
#   NFSCP=0 ROUNDS=5 SECS=3 scripts/compare-nfs.sh  # part 2 only
#   NFSCP=0 CASES=4k scripts/compare-nfs.sh       # only the fio cases matching this regexp
#   NFSCP=0 BEFORE=/tmp/before scripts/compare-nfs.sh  # git worktree add --detach /tmp/before main
set -euo pipefail

reps=${1:-3}
size=$((256 << 20))
NFSCP=${NFSCP:-1}
FIO=${FIO:-1}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
SIZE=${SIZE:-256M}
CASES=${CASES:-.}
BEFORE=${BEFORE:-}
OURS_ENV=${OURS_ENV:-}
cd "$(dirname "$0")/.."

[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "compare-nfs: REPS must be a positive number, not '$reps'" >&2; exit 1; }
for v in ROUNDS SECS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "compare-nfs: $v must be a positive number, not '${!v}'" >&2; exit 1; }
done
[ "$NFSCP" != 0 ] || [ "$FIO" != 0 ] || { echo "compare-nfs: NFSCP=0 and FIO=0 leave nothing to run" >&2; exit 1; }
for bin in ganesha.nfsd go /usr/bin/time python3; do
	command -v "$bin" >/dev/null || { echo "compare-nfs: $bin not found (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind time python3)" >&2; exit 1; }
done
if [ "$NFSCP" != 0 ]; then
	command -v nfs-cp >/dev/null || { echo "compare-nfs: nfs-cp not found (apt-get install libnfs-utils)" >&2; exit 1; }
fi
fio=""
if [ "$FIO" != 0 ]; then
	fio=$(scripts/fio-build.sh) || { echo "compare-nfs: cannot build fio with the nfs engine (scripts/fio-build.sh)" >&2; exit 1; }
fi

work=$(mktemp -d)
# Files copied by nfs-cp live in memory so that the local side costs nothing.
shm=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
helper=""
# kill_fio PID: ends the fio started as PID (/usr/bin/time), its job processes first: they
# are in sessions of their own (fio calls setsid), out of reach of a signal to fio's group.
kill_fio() {
	local parent
	parent=$(pgrep -P "$1" || true)
	# shellcheck disable=SC2046 # one pid per word
	[ -z "$parent" ] || kill -KILL $(pgrep -P "$parent") "$parent" 2>/dev/null || true
}
cleanup() {
	# A fio run still going (the script was interrupted): see fio_run.
	if [[ -s "$work/fio.pid" ]] && kill -0 "$(cat "$work/fio.pid")" 2>/dev/null; then
		kill_fio "$(cat "$work/fio.pid")"
	fi
	if [[ -n "$helper" ]]; then
		kill -TERM "$helper" 2>/dev/null || true
		wait "$helper" 2>/dev/null || true
	fi
	rm -rf "$work" "$shm"
}
trap cleanup EXIT

echo "building the backend's test binary..."
go test -c -o "$work/nfs.test" ./backends/nfs

mkdir "$work/ganesha"
VMSTORBENCH_GANESHA_DIR="$work/ganesha" "$work/nfs.test" >"$work/helper.out" 2>&1 &
helper=$!
url=""
for _ in $(seq 300); do
	url=$(sed -n 's/^URL //p' "$work/helper.out")
	[[ -n "$url" ]] && break
	kill -0 "$helper" 2>/dev/null || break
	sleep 0.1
done
if [[ -z "$url" ]]; then
	echo "compare-nfs: Ganesha did not start:" >&2
	cat "$work/helper.out" >&2
	exit 1
fi
# nfs://127.0.0.1:<nfsport><export>/vmstorbench.img?mountport=<mountport>
nfsport=$(sed -E 's#^nfs://[^:/]+:([0-9]+)/.*#\1#' <<<"$url")
mountport=$(sed -E 's#.*[?&]mountport=([0-9]+).*#\1#' <<<"$url")
export_dir=$(sed -E 's#^nfs://[^/]+(/.*)/[^/?]+(\?.*)?$#\1#' <<<"$url")
echo "Ganesha: NFS port $nfsport, MOUNT port $mountport, export $export_dir"
ncp_url() { echo "nfs://127.0.0.1$export_dir/$1?nfsport=$nfsport&mountport=$mountport"; }

now() { date +%s%N; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }'; }

# Part 1: nfs-cp against the backend's Go benchmarks.
nfscp_part() {
	head -c "$size" /dev/urandom >"$shm/src.bin"

	echo "nfs-cp: $reps x write and read of 256 MiB..."
	# cpu_of FILE: user+system seconds recorded by /usr/bin/time -f '%U %S'.
	cpu_of() { awk '{ printf "%.3f", $1 + $2 }' "$1"; }
	least() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }
	best=0 cpus=
	for i in $(seq "$reps"); do
		t0=$(now)
		/usr/bin/time -f '%U %S' -o "$work/time" nfs-cp "$shm/src.bin" "$(ncp_url "ncp$i.bin")" >/dev/null
		t=$(($(now) - t0))
		((best == 0 || t < best)) && best=$t
		cpus+=" $(cpu_of "$work/time")"
	done
	ncp_write=$(mbps "$size" "$best")
	ncp_write_cpu=$(least <<<"$cpus")
	best=0 cpus=
	for i in $(seq "$reps"); do
		rm -f "$shm/dst.bin"
		t0=$(now)
		/usr/bin/time -f '%U %S' -o "$work/time" nfs-cp "$(ncp_url "ncp$i.bin")" "$shm/dst.bin" >/dev/null
		t=$(($(now) - t0))
		((best == 0 || t < best)) && best=$t
		cpus+=" $(cpu_of "$work/time")"
	done
	ncp_read_cpu=$(least <<<"$cpus")
	cmp -s "$shm/src.bin" "$shm/dst.bin" || { echo "compare-nfs: nfs-cp read back different data" >&2; exit 1; }
	ncp_read=$(mbps "$size" "$best")
	rm -f "$shm/dst.bin" "$shm/src.bin"
	for i in $(seq "$reps"); do rm -f "$export_dir/ncp$i.bin"; done

	echo "vmstorbench nfs:// backend: Go benchmarks..."
	VMSTORBENCH_NFS_URL="$url" "$work/nfs.test" -test.run '^$' -test.bench 'BenchmarkSeq(Read|Write)$' \
		-test.benchtime 1x -test.count "$reps" >"$work/seq.out"
	VMSTORBENCH_NFS_URL="$url" "$work/nfs.test" -test.run '^$' -test.bench 'BenchmarkRandRead4k$' \
		-test.benchtime 2s >"$work/rand.out"
	# ours FILE BENCHMARK UNIT: the best value of UNIT over the benchmark's runs.
	ours() {
		awk -v n="$2" -v unit="$3" '$1 ~ "^"n"(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == unit && $i > best) best = $i }
			END { printf "%.1f\n", best }' "$1"
	}
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
	# ours_least FILE BENCHMARK UNIT: the least value of UNIT over the benchmark's runs.
	ours_least() {
		awk -v n="$2" -v unit="$3" '$1 ~ "^"n"(-[0-9]+)?$" { for (i = 1; i < NF; i++) if ($(i+1) == unit && (least == "" || $i < least)) least = $i }
			END { printf "%.3f\n", least }' "$1"
	}

	r1=$(ours "$work/seq.out" BenchmarkSeqRead/qd1 MB/s)
	r4=$(ours "$work/seq.out" BenchmarkSeqRead/qd4 MB/s)
	w1=$(ours "$work/seq.out" BenchmarkSeqWrite/unstable/qd1 MB/s)
	w4=$(ours "$work/seq.out" BenchmarkSeqWrite/unstable/qd4 MB/s)
	f1=$(ours "$work/seq.out" BenchmarkSeqWrite/filesync/qd1 MB/s)
	f4=$(ours "$work/seq.out" BenchmarkSeqWrite/filesync/qd4 MB/s)
	i1=$(ours "$work/rand.out" BenchmarkRandRead4k/qd1 IOPS)
	i16=$(ours "$work/rand.out" BenchmarkRandRead4k/qd16 IOPS)

	echo
	printf '%-34s %12s %12s %8s %12s %8s\n' "256 MiB, 1 MiB requests" "nfs-cp MB/s" "ours qd1" "ratio" "ours qd4" "ratio"
	printf '%-34s %12s %12s %8s %12s %8s\n' "read" "$ncp_read" "$r1" "$(ratio "$r1" "$ncp_read")" "$r4" "$(ratio "$r4" "$ncp_read")"
	printf '%-34s %12s %12s %8s %12s %8s\n' "write (UNSTABLE + COMMIT)" "$ncp_write" "$w1" "$(ratio "$w1" "$ncp_write")" "$w4" "$(ratio "$w4" "$ncp_write")"
	printf '%-34s %12s %12s %8s %12s %8s\n' "write (ours FILE_SYNC)" "$ncp_write" "$f1" "$(ratio "$f1" "$ncp_write")" "$f4" "$(ratio "$f4" "$ncp_write")"
	echo
	# nfs-cp's CPU is for 256 MiB: per GiB x4.
	ncp_read_gib=$(awk -v c="$ncp_read_cpu" 'BEGIN { printf "%.3f", c * 4 }')
	ncp_write_gib=$(awk -v c="$ncp_write_cpu" 'BEGIN { printf "%.3f", c * 4 }')
	cr1=$(ours_least "$work/seq.out" BenchmarkSeqRead/qd1 cpu-s/GiB)
	cr4=$(ours_least "$work/seq.out" BenchmarkSeqRead/qd4 cpu-s/GiB)
	cw1=$(ours_least "$work/seq.out" BenchmarkSeqWrite/unstable/qd1 cpu-s/GiB)
	cw4=$(ours_least "$work/seq.out" BenchmarkSeqWrite/unstable/qd4 cpu-s/GiB)
	printf '%-34s %12s %12s %8s %12s %8s\n' "client CPU s/GiB (least of $reps)" "nfs-cp" "ours qd1" "ratio" "ours qd4" "ratio"
	printf '%-34s %12s %12s %8s %12s %8s\n' "read" "$ncp_read_gib" "$cr1" "$(ratio "$cr1" "$ncp_read_gib")" "$cr4" "$(ratio "$cr4" "$ncp_read_gib")"
	printf '%-34s %12s %12s %8s %12s %8s\n' "write (UNSTABLE + COMMIT)" "$ncp_write_gib" "$cw1" "$(ratio "$cw1" "$ncp_write_gib")" "$cw4" "$(ratio "$cw4" "$ncp_write_gib")"
	echo "(per 1,000 1 MiB I/Os: x 1000/1024)"
	echo
	printf '4 KiB random read, one connection: %s IOPS at 1 in flight, %s IOPS at 16 in flight\n' "${i1%.*}" "${i16%.*}"
}

# Part 2: fio's nfs engine (libnfs) against `vmstorbench run`, the same jobs on one file.
fio_part() {
	# case: name, request bytes, queue depth, --rw
	local cases=(
		"4k-rand-qd1|4096|1|randread"
		"4k-rand-qd16|4096|16|randread"
		"1m-seq-qd8|1048576|8|read"
		"1m-write-qd8|1048576|8|write"
	)
	local selected=() c
	for c in "${cases[@]}"; do
		[[ ${c%%|*} =~ $CASES ]] && selected+=("$c")
	done
	[ ${#selected[@]} -gt 0 ] || { echo "compare-nfs: no case matches CASES=$CASES" >&2; exit 1; }
	cases=("${selected[@]}")

	echo "building vmstorbench..."
	go build -o "$work/vmstorbench" ./cmd/vmstorbench
	if [ -n "$BEFORE" ]; then
		(cd "$BEFORE" && go build -o "$work/before" ./cmd/vmstorbench) ||
			{ echo "compare-nfs: cannot build vmstorbench in BEFORE=$BEFORE" >&2; exit 1; }
	fi

	# The file both tools use, laid out here: fio's nfs engine does not lay files out, and
	# vmstorbench uses an existing file as it is.
	local file=compare.dat
	head -c "$SIZE" /dev/urandom >"$export_dir/$file"
	local bytes
	bytes=$(stat -c %s "$export_dir/$file")
	local fio_url="nfs://127.0.0.1$export_dir?nfsport=$nfsport&mountport=$mountport"
	local ours_url="nfs://127.0.0.1:$nfsport$export_dir/$file?mountport=$mountport"

	# Each *_run prints "IOPS CPU-µs-per-I/O process-CPU-µs-per-I/O".
	fio_run() { # fio_run BS QD RW
		# fio's nfs engine leaves the requests in flight when the run ends (up to iodepth - 1:
		# not I/O errors, it logs each as "Failed NFS operation(code:-14)"), and libnfs's
		# umount then sometimes never returns (seen with 1 MiB reads at iodepth 8: the job
		# process polls the MOUNT connection forever, fio's output unwritten). Such a run is
		# killed after SECS + 15 s and run again; the summary counts them.
		local try rc pid t hung
		for try in 1 2 3; do
			rm -f "$work/fio.json"
			/usr/bin/time -f '%U %S' -o "$work/time" "$fio" \
				--name=compare --ioengine=nfs --nfs_url="$fio_url" --filename="$file" \
				--size="$bytes" --rw="$3" --bs="$1" --iodepth="$2" --runtime="$SECS" --time_based=1 \
				--output-format=json --output="$work/fio.json" >/dev/null 2>"$work/fio.err" &
			pid=$!
			echo "$pid" >"$work/fio.pid"
			for ((t = 0; t < (SECS + 15) * 10; t++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			hung=0
			if kill -0 "$pid" 2>/dev/null; then
				hung=1
				kill_fio "$pid"
				echo "$1 $2 $3" >>"$work/fio-hung"
			fi
			rc=0
			wait "$pid" || rc=$?
			rm -f "$work/fio.pid"
			[ "$hung" = 1 ] || break
		done
		[ "$rc" = 0 ] && [ -s "$work/fio.json" ] ||
			{ echo "compare-nfs: fio failed (exit status $rc, $try tries): $(grep -v '^Failed NFS operation(code:-14)' "$work/fio.err")" >&2; exit 1; }
		python3 - "$work/fio.json" "$work/time" "$3" <<-'PY'
			import json, sys
			j = json.load(open(sys.argv[1]))["jobs"][0]
			d = j["write" if sys.argv[3].endswith("write") else "read"]
			if j["error"]:
			    sys.exit("fio job error %d" % j["error"])
			n = max(d["total_ios"], 1)
			job = (j["usr_cpu"] + j["sys_cpu"]) / 100 * j["job_runtime"] * 1e3 / n
			u, s = open(sys.argv[2]).read().split()[:2]
			print("%d %.2f %.2f" % (d["iops"], job, (float(u) + float(s)) * 1e6 / n))
		PY
	}
	ours_run() { # ours_run BINARY BS QD RW
		local url=$ours_url extra=()
		if [[ $4 == *write ]]; then
			# UNSTABLE writes, as libnfs sends them; the file is the script's, not ours.
			url+="&stable=unstable"
			extra=(--allow-destructive)
		fi
		# shellcheck disable=SC2086 # OURS_ENV is a list of NAME=VALUE words
		env $OURS_ENV /usr/bin/time -f '%U %S' -o "$work/time" "$1" run --target "$url" --rw "$4" \
			--bs "$2" --iodepth "$3" --runtime "${SECS}s" --time-based "${extra[@]}" \
			--no-save --json -q >"$work/ours.json" 2>"$work/ours.err" ||
			{ echo "compare-nfs: $1 failed: $(cat "$work/ours.err")" >&2; exit 1; }
		python3 - "$work/ours.json" "$work/time" "$4" <<-'PY'
			import json, sys
			doc = json.load(open(sys.argv[1]))
			d, c = doc["write" if sys.argv[3].endswith("write") else "read"], doc["cpu"]
			n = max(d["ios"], 1)
			u, s = open(sys.argv[2]).read().split()[:2]
			print("%d %.2f %.2f" % (d["iops"], (c["user_ns"] + c["sys_ns"]) / 1e3 / n,
			                        (float(u) + float(s)) * 1e6 / n))
		PY
	}

	median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
	lowest() { tr ' ' '\n' | grep -v '^$' | sort -g | head -1; }
	fratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

	local sides=(fio ours)
	[ -z "$BEFORE" ] || sides+=(before)
	declare -A fall fcpu fproc oall ocpu oproc ball bcpu bproc ri rc rp rb
	echo
	echo "== fio $("$fio" --version) nfs engine (libnfs $(pkg-config --modversion libnfs 2>/dev/null || echo '?')) vs vmstorbench run, $bytes-byte file, $ROUNDS rounds, ${SECS}s per tool and case"
	echo "(CPU: client user+system µs per I/O, over the run; in brackets the whole process under /usr/bin/time)"
	local head
	head=$(printf '%-6s %-13s %28s %28s' round case "fio (cpu)" "vmstorbench (cpu)")
	[ -z "$BEFORE" ] || head+=$(printf ' %28s' "BEFORE (cpu)")
	echo "$head"
	local r i name bs qd rw f fc fp o oc op b bc bp line out
	for r in $(seq "$ROUNDS"); do
		for c in "${cases[@]}"; do
			IFS='|' read -r name bs qd rw <<<"$c"
			f=0 fc=0 fp=0 o=0 oc=0 op=0 b=0 bc=0 bp=0
			# Rotate which side goes first, so that none always follows another.
			for i in $(seq 0 $((${#sides[@]} - 1))); do
				# (A failing run exits its command substitution: stop here too.)
				case ${sides[$(((i + r) % ${#sides[@]}))]} in
				fio) out=$(fio_run "$bs" "$qd" "$rw") || exit 1; read -r f fc fp <<<"$out" ;;
				ours) out=$(ours_run "$work/vmstorbench" "$bs" "$qd" "$rw") || exit 1; read -r o oc op <<<"$out" ;;
				before) out=$(ours_run "$work/before" "$bs" "$qd" "$rw") || exit 1; read -r b bc bp <<<"$out" ;;
				esac
			done
			fall[$name]="${fall[$name]:-} $f"; fcpu[$name]="${fcpu[$name]:-} $fc"; fproc[$name]="${fproc[$name]:-} $fp"
			oall[$name]="${oall[$name]:-} $o"; ocpu[$name]="${ocpu[$name]:-} $oc"; oproc[$name]="${oproc[$name]:-} $op"
			ball[$name]="${ball[$name]:-} $b"; bcpu[$name]="${bcpu[$name]:-} $bc"; bproc[$name]="${bproc[$name]:-} $bp"
			ri[$name]="${ri[$name]:-} $(fratio "$o" "$f")"
			rc[$name]="${rc[$name]:-} $(fratio "$oc" "$fc")"
			rp[$name]="${rp[$name]:-} $(fratio "$op" "$fp")"
			rb[$name]="${rb[$name]:-} $(fratio "$oc" "$bc")"
			line=$(printf '%-6s %-13s %8s IOPS (%5.1f [%5.1f] µs) %8s IOPS (%5.1f [%5.1f] µs)' "$r" "$name" "$f" "$fc" "$fp" "$o" "$oc" "$op")
			[ -z "$BEFORE" ] || line+=$(printf ' %8s IOPS (%5.1f [%5.1f] µs)' "$b" "$bc" "$bp")
			echo "$line"
		done
	done

	echo
	echo "medians of $ROUNDS rounds (IOPS, MiB/s; CPU: client user+system ms per 1,000 I/Os and s per GiB,"
	echo "over the run; ratios ours / fio: IOPS the median of the per-round ratios, CPU the median / lowest"
	echo "of the per-round ratios, the sides of a round sharing its load; proc: the same for the whole"
	echo "processes under /usr/bin/time):"
	head=$(printf '%-13s %-36s %-36s %-6s %-11s %-5s' case "fio" "vmstorbench" IOPS CPU proc)
	[ -z "$BEFORE" ] || head+=$(printf ' %-36s %s' BEFORE "CPU ours/before")
	echo "$head"
	side() { # side IOPS-LIST CPU-LIST BYTES: "IOPS  MiB/s  ms/1000  s/GiB"
		awk -v i="$(echo "$1" | median)" -v c="$(echo "$2" | median)" -v b="$3" \
			'BEGIN { printf "%7d %6.0f MiB/s %6.1f ms %6.3f s", i, i * b / 1048576, c, c * 1073741824 / b / 1e6 }'
	}
	for c in "${cases[@]}"; do
		IFS='|' read -r name bs _ _ <<<"$c"
		line=$(printf '%-13s %-36s %-36s %5s× %5s/%5s %5s×' "$name" \
			"$(side "${fall[$name]}" "${fcpu[$name]}" "$bs")" \
			"$(side "${oall[$name]}" "${ocpu[$name]}" "$bs")" \
			"$(echo "${ri[$name]}" | median)" "$(echo "${rc[$name]}" | median)" "$(echo "${rc[$name]}" | lowest)" \
			"$(echo "${rp[$name]}" | median)")
		[ -z "$BEFORE" ] || line+=$(printf ' %-36s %5s/%5s' "$(side "${ball[$name]}" "${bcpu[$name]}" "$bs")" \
			"$(echo "${rb[$name]}" | median)" "$(echo "${rb[$name]}" | lowest)")
		echo "$line"
	done
	echo "(writes: UNSTABLE on both sides, no COMMIT in the timed run; fio's libnfs COMMITs at close)"
	if [ -s "$work/fio-hung" ]; then
		echo "fio runs that hung in libnfs's umount after their I/O, killed and run again: $(wc -l <"$work/fio-hung") ($(sort "$work/fio-hung" | uniq -c | awk '{ printf "%s%s× bs %s qd %s %s", sep, $1, $2, $3, $4; sep = ", " }'))"
	fi
	rm -f "$export_dir/$file"
}

[ "$NFSCP" = 0 ] || nfscp_part
[ "$FIO" = 0 ] || fio_part
