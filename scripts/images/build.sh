#!/usr/bin/env bash
# Build keel's test and demo disk images from Debian packages, cached host-wide by content.
#
#   scripts/images/build.sh NAME...   build each image if its cache lacks it; print its path
#   scripts/images/build.sh all       every image (the lab runner builds only what its scenarios name)
#   scripts/images/build.sh --list    the image names
#   scripts/images/build.sh --path NAME   the path it has or would have; build nothing
#
# Images (one builder each, scripts/images/NAME.sh; docs/lab.md, "Firmware images"):
#   mbr-bios       raw MBR disk, GRUB i386-pc, kernel and busybox initramfs on ext4 (lab test 1)
#   gpt-uefi       raw GPT disk, EFI System Partition with GRUB EFI, kernel, initramfs (test 2)
#   dvd            ISO 9660, El Torito for BIOS and for UEFI (grub-mkrescue) (test 4)
#   installer      ISO 9660 whose init installs a GPT/ESP system onto the empty disk (test 5)
#   debian12-vhdx  Debian 12 with systemd through GRUB EFI, dynamic VHDX (test 6, make demo)
#
# The cache is KEEL_CACHE (default /var/cache/keel)/images/<key>/<file>, where key is the
# SHA-256 of lib.sh, the builder, and what the builder says it is made of (package versions,
# the kernel's version). A changed script or package builds a new image; a fresh clone on the
# same machine reuses the old one. Builds write to a temporary name and rename when complete.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/images/lib.sh
. "$here/lib.sh"
cache=${KEEL_CACHE:-/var/cache/keel}/images
names=(mbr-bios gpt-uefi dvd installer debian12-vhdx)

# key_path NAME: print the image's cached path (after sourcing its builder in a subshell).
key_path() {
	(
		# shellcheck disable=SC1090
		. "$here/$1.sh"
		key=$({
			cat "$here/lib.sh" "$here/$1.sh"
			image_inputs
		} | sha256sum | cut -c1-16)
		echo "$cache/$key/$image_file"
	)
}

build_one() {
	local name=$1 path dir
	[ -e "$here/$name.sh" ] || img_die "no image named '$name' (images: ${names[*]})"
	path=$(key_path "$name")
	if [ ! -e "$path" ]; then
		dir=$(dirname "$path")
		mkdir -p "$dir"
		# One builder at a time per image, across processes (two lab runs at once).
		exec 9>"$dir/.lock"
		flock 9
		if [ ! -e "$path" ]; then
			echo "images: building $name in $dir" >&2
			local t0=$SECONDS
			(
				# shellcheck disable=SC1090
				. "$here/$name.sh"
				rm -f "$path.tmp"
				image_build "$path.tmp"
			) >&2 || {
				rm -f "$path.tmp"
				img_die "building $name failed"
			}
			mv "$path.tmp" "$path"
			echo "images: built $name ($(du -h --apparent-size "$path" | cut -f1), $((SECONDS - t0)) s)" >&2
		fi
		exec 9>&-
	fi
	echo "$path"
}

[ $# -gt 0 ] || img_die "usage: build.sh NAME...|all|--list|--path NAME"
case "$1" in
--list) printf '%s\n' "${names[@]}" ;;
--path)
	[ $# = 2 ] && [ -e "$here/$2.sh" ] || img_die "usage: build.sh --path NAME (one of ${names[*]})"
	key_path "$2"
	;;
all) for n in "${names[@]}"; do build_one "$n"; done ;;
*) for n in "$@"; do build_one "$n"; done ;;
esac
