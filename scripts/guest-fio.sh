#!/usr/bin/env bash
# Build a static fio for the lab's guest initramfs (bench/virtio's disk matrix, issue 16):
# Debian's fio source, configured without the optional engines that need libraries (rados,
# rbd, gluster, RDMA, pmem, NFS, HTTP, NUMA), linked statically, stripped. Its io_uring
# engine is fio's own (no liburing), so the binary needs nothing in the guest.
#
#   scripts/guest-fio.sh          build it if the cache lacks it; print the binary's path
#   scripts/guest-fio.sh --path   print the path it has or would have; fetch and build nothing
#
# Cached by content in the host-wide KEEL_CACHE (default /var/cache/keel), like the lab's
# QEMU (scripts/lab-qemu.sh): the key is the hash of the source tarball and of this recipe.
# About a minute on 2 cores. Called by scripts/setup.sh; tests/lab/lab.sh puts the binary in
# the guest initramfs as /bin/fio.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${KEEL_CACHE:-/var/cache/keel}/guest-fio
src=$cache/src
# The source this recipe is written for: bookworm's fio.
version=3.33
tarball=fio_$version.orig.tar.gz

say() { echo "guest-fio: $*" >&2; }

# shellcheck source=scripts/debian-source.sh
. "$top/scripts/debian-source.sh"
fetch_source() { debian_source bookworm fio "$version-" "$tarball" "$src"; }

key_of() {
	{
		sha256sum "$src/$tarball" | cut -d' ' -f1
		declare -f build # the recipe, without its comments
	} | sha256sum | cut -c1-16
}

build() {
	local out=$1 work
	work=$(mktemp -d "${TMPDIR:-/tmp}/keel-guest-fio.XXXXXX")
	trap 'rm -rf "${work:-}"' EXIT
	say "building a static fio $version into $out"
	tar -xzf "$src/$tarball" -C "$work"
	(
		cd "$work/fio-$version"
		./configure --build-static --disable-native --disable-numa --disable-rdma \
			--disable-rados --disable-rbd --disable-http --disable-gfapi --disable-libnfs \
			--disable-lex --disable-pmem --disable-xnvme --disable-libzbc --disable-tcmalloc \
			--disable-dfs >"$work/configure.log" 2>&1 || { tail -30 "$work/configure.log" >&2 && exit 1; }
		make -j"$(nproc)" fio >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2 && exit 1; }
		./fio --enghelp | grep -qw io_uring || { say "the fio built has no io_uring engine" && exit 1; }
	)
	mkdir -p "$out.tmp"
	install -m 0755 -s "$work/fio-$version/fio" "$out.tmp/fio"
	rm -rf "$out" && mv "$out.tmp" "$out"
}

debian_cached_build fio "$@"
