#!/usr/bin/env bash
# Installs what vmstorbench's tests and demo need on Debian 12: the real servers and reference
# tools (apt) and the Go modules. Idempotent: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  fio                                   # reference tool for the engine comparison
  samba smbclient                       # SMB server and reference client
  nfs-ganesha nfs-ganesha-vfs rpcbind   # NFS server
  libnfs-utils                          # nfs-cp, NFS reference client
  tgt libiscsi-bin                      # iSCSI target and iscsi-perf reference
  libnbd-bin                            # nbdcopy, NBD reference client (qemu-nbd is in qemu-utils)
  qemu-system-x86 qemu-utils qemu-block-extra busybox-static cpio xz-utils  # VM mode
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients  # the testbed's libvirt pair (virsh: diagnostics only)
  iproute2 procps
  chromium fonts-liberation2            # the HTML report's browser test; the charts' font
)

scripts/apt-install.sh "${packages[@]}"

# The VM mode fetches the guest kernel (linux-image-amd64) with `apt-get download` when none
# is installed: that needs package lists.
if [ "$(id -u)" = 0 ] && [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
  apt-get -o DPkg::Lock::Timeout=300 update -qq
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  else
    echo "deps: no Go toolchain: install Go 1.26 (https://go.dev/dl) into /usr/local/go" >&2
    exit 1
  fi
fi
go mod download
