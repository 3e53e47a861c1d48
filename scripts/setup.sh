#!/usr/bin/env bash
# keel's one setup script: installs every Debian package that the build, the tests,
# the benchmarks and the demo need, and fetches Debian's cloud kernel for the nested
# lab. Idempotent: a second run installs nothing and returns in about a second.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

packages=(
	# build
	build-essential meson ninja-build pkg-config clang clang-format
	# unit tests and fuzzing (libFuzzer ships with clang's runtime)
	libcmocka-dev libclang-rt-14-dev
	# 32-bit tiny test guests (gcc -m32 -ffreestanding needs no multilib, binutils does it)
	binutils
	# the nested lab, the demo and the peer VMM in benchmarks
	qemu-system-x86 qemu-utils busybox-static cpio kmod e2fsprogs zstd
	# the firmware keel-vmm runs (--firmware bios|uefi): Debian's SeaBIOS and OVMF, unmodified
	# (tests/vmm/seabios.sh; lab scenarios 80, 82, 83)
	ovmf seabios
	# building the lab's outer QEMU from Debian's source with keel's patches (scripts/lab-qemu.sh)
	libglib2.0-dev libpixman-1-dev flex bison zlib1g-dev libfdt-dev xz-utils patch
	# disk format tests (json-c: `keel disk info --json`)
	libjson-c-dev
	python3
	# keeld and keel (issue 5): store, API server, JSON; sqlite3 and curl for its tests;
	# libcurl: keel's HTTP client (Unix socket now, TCP+TLS later)
	libsqlite3-dev libmicrohttpd-dev libjson-c-dev sqlite3 curl libcurl4-openssl-dev
	# keel-vmm's block backend (io_uring)
	liburing-dev
	# the jailed worker's seccomp allow-lists (issue 10)
	libseccomp-dev
	# virtual switches (issue 12): netlink, nftables, DHCP and DNS; iproute2 for the tests
	libmnl-dev libnftables-dev nftables dnsmasq-base iproute2
	# ISO 9660 images for the lab's DVD scenario (66-virtio-scsi)
	xorriso
	# the firmware-boot images (scripts/images/, lab scenarios 85-89): GRUB for BIOS and UEFI,
	# partition tables and file systems in plain files, Debian 12 made by mmdebstrap
	grub-pc-bin grub-efi-amd64-bin mtools dosfstools fdisk mmdebstrap
	# bench/virtio's guest tools (issue 16): iperf3 for the network streams (copied into the
	# lab guest with its libraries); fio is built static from Debian's source (guest-fio.sh)
	iperf3
)

if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's QEMU 10 (bookworm-backports; Debian 13 has it already): the peer VMM the
# benchmarks run inside the lab, and the source of the lab's own outer QEMU, which
# scripts/lab-qemu.sh builds with keel's patches to TCG's emulation of AMD-V (below;
# bookworm's 7.2 and the packaged 10.0.2 crash the lab host or abort on firmware guests:
# docs/lab.md).
qemu_min=1:10.0
qemu_have=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
if ! dpkg --compare-versions "${qemu_have:-0}" ge "$qemu_min"; then
	. /etc/os-release
	target=()
	if [ "${VERSION_CODENAME:-}" = bookworm ]; then
		if ! grep -rqs '^deb .*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
			echo "setup: adding bookworm-backports to apt's sources (for QEMU $qemu_min)"
			echo "deb http://deb.debian.org/debian bookworm-backports main" |
				$sudo tee /etc/apt/sources.list.d/keel-bookworm-backports.list >/dev/null
		fi
		target=(-t bookworm-backports)
	fi
	echo "setup: installing QEMU >= $qemu_min (have ${qemu_have:-none})"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		"${target[@]}" qemu-system-x86 qemu-utils seabios
	qemu_have=$(dpkg-query -W -f='${Version}' qemu-system-x86)
	dpkg --compare-versions "$qemu_have" ge "$qemu_min" ||
		{ echo "setup: QEMU $qemu_have is installed; the lab needs $qemu_min or later" >&2; exit 1; }
fi

# The lab's outer QEMU: Debian's QEMU source with keel's patches, built once per host
# (cached by content under /var/cache/keel; docs/lab.md says why).
"$top/scripts/lab-qemu.sh" >/dev/null
# The lab guest's static fio (bench/virtio), cached the same way.
"$top/scripts/guest-fio.sh" >/dev/null

# Debian's cloud kernel and its modules, unpacked (never installed: the host's /boot is
# not ours to change). The lab boots it as its host kernel and as the guest kernel.
cache="$top/.cache/kernel"
if [ ! -e "$cache/ready" ]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
	if [ -z "$pkg" ]; then
		apt-get update -qq
		pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
	fi
	[ -n "$pkg" ] || { echo "setup: cannot resolve linux-image-cloud-amd64 to a kernel package" >&2; exit 1; }
	echo "setup: fetching $pkg"
	rm -rf "$cache" && mkdir -p "$cache/deb"
	(cd "$cache/deb" && apt-get download -qq "$pkg")
	dpkg-deb -x "$cache"/deb/*.deb "$cache/root"
	kver=${pkg#linux-image-}
	ln -sf "root/boot/vmlinuz-$kver" "$cache/vmlinuz"
	echo "$kver" > "$cache/version"
	# The package ships no modules.dep; make one so modprobe can resolve dependencies.
	depmod -b "$cache/root" "$kver"
	touch "$cache/ready"
fi
