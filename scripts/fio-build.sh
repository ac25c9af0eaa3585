#!/usr/bin/env bash
# fio-build.sh: builds fio with the libiscsi and libnfs engines and prints the binary's path.
#
# Debian's fio is built without them (its Build-Depends lack libiscsi-dev and libnfs-dev), so
# the comparison scripts have no like-for-like reference for our iSCSI and NFS clients: the
# libraries' own tools (iscsi-perf, nfs-cp) do less per I/O than a benchmark does (iscsi-perf
# copies every Data-In into one reused buffer; fio reads into one buffer per I/O in flight,
# as vmstorbench does). This builds the same fio as Debian 12's package (3.33, from Debian's
# own source tarball, checked against the checksum in Debian's fio_3.33-3.dsc) with
# --enable-libiscsi --enable-libnfs, once, into the cache:
#   ${VMSTORBENCH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/vmstorbench}/fio-3.33-libiscsi-libnfs/fio
# Needs gcc, make, pkg-config, curl, libiscsi-dev and libnfs-dev (installed when run as root).
#
#   fio=$(scripts/fio-build.sh)
#   "$fio" --name=x --ioengine=libiscsi --filename='iscsi\://127.0.0.1\:3260/iqn.x\:t/1' --rw=read
set -euo pipefail
cd "$(dirname "$0")/.."

version=3.33
sha256=d2410e13e0f379d061d077cc5ae325835bb7c6186aa7bafc1df954cbc9b014fc
url=${FIO_TARBALL_URL:-http://deb.debian.org/debian/pool/main/f/fio/fio_$version.orig.tar.gz}
cache=${VMSTORBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmstorbench}
dir=$cache/fio-$version-libiscsi-libnfs

has_engines() { # the engines this build is for, both compiled in
	local help
	help=$("$1" --enghelp 2>/dev/null) || return 1
	grep -qx '[[:space:]]*libiscsi' <<<"$help" && grep -qx '[[:space:]]*nfs' <<<"$help"
}
if [ -x "$dir/fio" ] && has_engines "$dir/fio"; then
	echo "$dir/fio"
	exit 0
fi

scripts/apt-install.sh gcc make pkg-config curl libiscsi-dev libnfs-dev zlib1g-dev >&2
mkdir -p "$cache"
build=$(mktemp -d "$cache/fio-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
echo "fio-build: fetching $url" >&2
curl -fsS --max-time 300 -o "$build/fio.tar.gz" "$url" ||
	{ echo "fio-build: cannot download $url" >&2; exit 1; }
got=$(sha256sum "$build/fio.tar.gz" | cut -d' ' -f1)
[ "$got" = "$sha256" ] ||
	{ echo "fio-build: $url has sha256 $got, expected $sha256" >&2; exit 1; }
tar -xzf "$build/fio.tar.gz" -C "$build"
src=$build/fio-$version
echo "fio-build: building fio $version with libiscsi and libnfs (about a minute)" >&2
(cd "$src" && ./configure --enable-libiscsi --enable-libnfs --disable-native >"$build/configure.log" 2>&1 &&
	make -j"$(nproc)" fio >"$build/make.log" 2>&1) ||
	{ echo "fio-build: build failed: $(tail -5 "$build/configure.log" "$build/make.log" 2>/dev/null)" >&2; exit 1; }
has_engines "$src/fio" ||
	{ echo "fio-build: the built fio lacks the libiscsi or nfs engine: $(grep -i 'iscsi\|nfs' "$build/configure.log")" >&2; exit 1; }
mkdir -p "$dir"
install -m 0755 "$src/fio" "$dir/fio.tmp"
mv "$dir/fio.tmp" "$dir/fio"
echo "$dir/fio"
