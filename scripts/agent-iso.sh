#!/usr/bin/env bash
# Build keel-agent.iso (`make agent-iso`): an ISO 9660 image (Rock Ridge, Joliet, volume ID
# KEEL_AGENT) holding the agent's Debian package, the disk a user inserts into a running VM's
# DVD drive to install keel's integration services, as Hyper-V's "Insert Integration Services
# Setup Disk" does (docs/integration-services.md, "Installing the agent in a guest"):
#   keel vm set NAME --dvd POOL/keel-agent.iso   (a copy in a storage pool)
#   (in the guest) mount -r /dev/sr0 /mnt && dpkg -i /mnt/keel-agent_*.deb && umount /mnt
#   agent-iso.sh [BUILD [OUT]]   BUILD: the build directory (default build); OUT: the ISO
#                                (default BUILD/keel-agent.iso). Prints OUT.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
out=${2:-$build/keel-agent.iso}
command -v xorriso >/dev/null || { echo "agent-iso: xorriso is not installed (Debian package xorriso)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Reproducible: the package, the files and the volume's dates all carry the last commit's
# time (SOURCE_DATE_EPOCH, as agent-deb.sh sets it; xorriso honours it too).
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$top" log -1 --format=%ct 2>/dev/null || stat -c %Y "$top/meson.build")
fi
export SOURCE_DATE_EPOCH
deb=$("$top/scripts/agent-deb.sh" "$build")
mkdir "$dir/disk"
install -m 0644 "$deb" "$dir/disk/"
cat >"$dir/disk/README.txt" <<'README'
keel integration services (keel-agent) for Debian and its derivatives, amd64.

In the guest, as root (the VM needs virtio-vsock: keel vm create --vsock, or keel vm set
NAME --vsock while it is off):

    mount -r /dev/sr0 /mnt && dpkg -i /mnt/keel-agent_*.deb && umount /mnt

The package enables and starts keel-agent.service; keel vm show NAME then says
"Heartbeat: OK". Afterwards the host may eject the disk: keel vm set NAME --eject.
README
touch -d "@$SOURCE_DATE_EPOCH" "$dir/disk"/* "$dir/disk"
# xorriso's banner and notes are shown only when it fails.
xorriso -as mkisofs -quiet -R -J -V KEEL_AGENT -o "$out.tmp" "$dir/disk" 2>"$dir/xorriso.log" ||
	{ cat "$dir/xorriso.log" >&2; echo "agent-iso: xorriso could not make $out" >&2; rm -f "$out.tmp"; exit 1; }
mv "$out.tmp" "$out"
echo "$out"
