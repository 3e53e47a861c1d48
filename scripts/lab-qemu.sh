#!/usr/bin/env bash
# Build the nested lab's outer QEMU: Debian's QEMU source with keel's patches
# (tests/lab/qemu/*.patch, each says why), x86_64 system emulation only.
#
#   scripts/lab-qemu.sh          build it if the cache lacks it; print the binary's path
#   scripts/lab-qemu.sh --path   print the path it has or would have; fetch and build nothing
#
# Cached by content in a host-wide directory (KEEL_CACHE, default /var/cache/keel): the key
# is the hash of the source tarball, the patches and the build recipe, so a fresh clone on the
# same machine reuses the binary and a changed patch builds a new one. About 5 minutes on
# 2 cores. The build dependencies are installed by scripts/setup.sh, which calls this.
#
# Once a packaged QEMU has every fix these patches make, the build is not needed: fixed_in
# below is the first version of Debian's qemu-system-x86 known to have them all (empty: none
# known yet). When the installed package is that version or later, both forms print Debian's
# /usr/bin/qemu-system-x86_64 and fetch and build nothing.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${KEEL_CACHE:-/var/cache/keel}/lab-qemu
src=$cache/src
# The source this recipe and the patches are written for (bookworm-backports; trixie has it).
version=10.0.2
tarball=qemu_$version+ds.orig.tar.xz
# The first qemu-system-x86 version with the fixes of tests/lab/qemu/*.patch (see above).
fixed_in=

say() { echo "lab-qemu: $*" >&2; }

# shellcheck source=scripts/debian-source.sh
. "$top/scripts/debian-source.sh"
fetch_source() { debian_source bookworm-backports qemu "1:$version+" "$tarball" "$src"; }

key_of() {
	{
		sha256sum "$src/$tarball" | cut -d' ' -f1
		cat "$top"/tests/lab/qemu/*.patch
		declare -f build build_tools # the recipe, without its comments
	} | sha256sum | cut -c1-16
}

# meson >= 1.5 and pycotap, which QEMU 10 needs, from bookworm-backports: unpacked for this
# build only, so the meson that builds keel stays Debian's.
build_tools() {
	local dir=$1 p
	mkdir -p "$dir/debs"
	for p in meson python3-pycotap; do
		(cd "$dir/debs" && apt-get download -qq -t bookworm-backports "$p" 2>&1 |
			{ grep -v "^W: Download is performed unsandboxed" || true; })
	done
	for p in "$dir"/debs/*.deb; do dpkg-deb -x "$p" "$dir/root"; done
}

build() {
	local out=$1
	work=$(mktemp -d "${TMPDIR:-/tmp}/keel-lab-qemu.XXXXXX")
	trap 'rm -rf "${work:-}"' EXIT
	say "building QEMU $version with $(ls "$top"/tests/lab/qemu/*.patch | wc -l) patch(es) into $out (about 5 minutes)"
	tar -xJf "$src/$tarball" -C "$work"
	local tree=$work/qemu-$version p
	for p in "$top"/tests/lab/qemu/*.patch; do
		patch -s -p1 -d "$tree" <"$p"
	done
	# The "+ds" tarball has no firmware blobs: do not unpack the edk2 ones it lacks.
	sed -i "s/^    unpack_edk2_blobs = bzip2.found()/    unpack_edk2_blobs = false/" "$tree/meson.build"
	grep -q "^    unpack_edk2_blobs = false" "$tree/meson.build" || { say "meson.build changed: cannot turn off the edk2 blobs"; exit 1; }
	build_tools "$work/tools"
	local py
	py=$(find "$work/tools/root/usr/lib/python3" -maxdepth 2 -name dist-packages | head -1)
	(
		cd "$tree"
		mkdir build && cd build
		export PYTHONPATH=$py PATH=$work/tools/root/usr/bin:$PATH
		../configure --python=/usr/bin/python3 --target-list=x86_64-softmmu \
			--enable-tcg --enable-kvm --enable-fdt=system --disable-install-blobs \
			--disable-docs --disable-tools --disable-user --disable-guest-agent \
			--disable-gtk --disable-sdl --disable-vnc --disable-opengl --disable-spice \
			--disable-libusb --disable-usb-redir --disable-gnutls --disable-nettle \
			--disable-gcrypt --disable-curl --disable-alsa --disable-pa --disable-jack \
			--disable-oss --disable-pipewire --disable-libssh --disable-rbd \
			--disable-glusterfs --disable-xen --disable-slirp --disable-capstone \
			--disable-werror >"$work/configure.log" 2>&1 ||
			{ tail -30 "$work/configure.log" >&2; grep -B2 -A8 "ERROR" build/meson-logs/meson-log.txt | tail -30 >&2; exit 1; }
		ninja -j"$(nproc)" qemu-system-x86_64 >"$work/build.log" 2>&1 ||
			{ tail -30 "$work/build.log" >&2 && exit 1; }
	)
	mkdir -p "$out.tmp"
	install -m 0755 "$tree/build/qemu-system-x86_64" "$out.tmp/qemu-system-x86_64"
	cp "$top"/tests/lab/qemu/*.patch "$out.tmp/"
	rm -rf "$out" && mv "$out.tmp" "$out"
	cp "$work/configure.log" "$out/configure.log"
}

# Is the installed qemu-system-x86 one that has the fixes (fixed_in or later)?
packaged_has_fixes() {
	local have
	[ -n "$fixed_in" ] || return 1
	have=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null) || return 1
	dpkg --compare-versions "$have" ge "$fixed_in"
}

main() {
	if packaged_has_fixes; then
		echo /usr/bin/qemu-system-x86_64
		return
	fi
	debian_cached_build qemu-system-x86_64 "$@"
}

main "$@"
