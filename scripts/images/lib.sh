# shellcheck shell=bash
# Shared by the image builders of scripts/images/ (sourced by build.sh, which sources one
# builder per image). Each builder defines
#   image_file          the file name of the image in its cache directory
#   image_inputs        prints what the image is made of besides the scripts' text (package
#                       versions, the kernel's version): it goes into the cache key
#   image_build OUT     makes the image at OUT (a temporary name, renamed when complete)
# The helpers below make disks and partitions in plain files: no loop devices, no mounts
# (sfdisk on a file, mkfs.ext4 -d, mkfs.fat + mtools, GRUB's mkimage), so any CI machine
# can build them as an ordinary user with the packages of scripts/setup.sh.

IMG_TOP=${IMG_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
IMG_DIR=$IMG_TOP/scripts/images
IMG_KDIR=$IMG_TOP/.cache/kernel
# The guest kernel's command line for the small images: the lab's (tests/lab/host/api.sh).
# KEEL_IMAGE_CMDLINE replaces it (part of the cache key), e.g. without quiet to see a boot.
IMG_CMDLINE=${KEEL_IMAGE_CMDLINE:-console=ttyS0 quiet loglevel=1 panic=-1 i8042.noaux i8042.nomux i8042.nopnp tsc=reliable no_timer_check random.trust_cpu=on}

img_die() {
	echo "images: $*" >&2
	exit 1
}

img_need() { # PROGRAM PACKAGE
	PATH=$PATH:/usr/sbin:/sbin command -v "$1" >/dev/null ||
		img_die "$1 is missing (package $2); run scripts/setup.sh"
}

img_pkgver() { # PACKAGE...: "name version" lines, for the cache key
	dpkg-query -W -f='${Package} ${Version}\n' "$@" 2>/dev/null ||
		img_die "one of $* is not installed; run scripts/setup.sh"
}

img_kernel_inputs() {
	[ -e "$IMG_KDIR/ready" ] || img_die "no Debian cloud kernel in $IMG_KDIR; run scripts/setup.sh"
	echo "kernel $(cat "$IMG_KDIR/version") $(ls "$IMG_KDIR"/deb) cmdline $IMG_CMDLINE"
}

# img_initramfs OUT: the small images' initramfs (uncompressed cpio): busybox-static, the
# image /init (scripts/images/init), the modules of scripts/images/modules, sfdisk and
# mkfs.fat (the installer's tools) and chattr, with their libraries. The lab's own helpers pack it.
img_initramfs() {
	local out=$1 root
	# shellcheck source=tests/lab/lab.sh
	LAB_QEMU=unused . "$IMG_TOP/tests/lab/lab.sh"
	LAB_KDIR=$IMG_KDIR
	root=$(mktemp -d)
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,mnt,etc}
	install -m 0755 /bin/busybox "$root/bin/busybox"
	local app
	for app in $(/bin/busybox --list); do
		[ "$app" = busybox ] || ln -s busybox "$root/bin/$app"
	done
	install -m 0755 "$IMG_DIR/init" "$root/init"
	_lab_add_modules "$IMG_DIR/modules" "$root"
	_lab_copy_program "$(PATH=$PATH:/usr/sbin:/sbin command -v sfdisk)" "$root" /usr/sbin/sfdisk
	_lab_copy_program "$(PATH=$PATH:/usr/sbin:/sbin command -v mkfs.fat)" "$root" /usr/sbin/mkfs.fat
	# efivarfs marks variables immutable; busybox has no chattr (e2fsprogs' does it).
	_lab_copy_program "$(command -v chattr)" "$root" /usr/bin/chattr
	_lab_pack "$root" "$out"
	rm -rf "$root"
}

img_initramfs_inputs() {
	img_kernel_inputs
	img_pkgver busybox-static fdisk dosfstools e2fsprogs kmod cpio
	sha256sum "$IMG_DIR/init" "$IMG_DIR/modules" | cut -d' ' -f1
	# The lab's helpers that pack it (not the whole of lab.sh, which changes for other reasons).
	(
		# shellcheck source=tests/lab/lab.sh
		LAB_QEMU=unused . "$IMG_TOP/tests/lab/lab.sh"
		declare -f _lab_add_modules _lab_copy_program _lab_pack _lab_newc_chardev _lab_newc_trailer
	) | sha256sum | cut -d' ' -f1
}

# img_grub_efi OUT: GRUB for x86_64 UEFI as one EFI program (the removable-media path
# \EFI\BOOT\BOOTX64.EFI), with the modules the images use built in; it reads grub.cfg from
# /EFI/BOOT on the partition it was loaded from.
img_grub_efi() {
	img_need grub-mkimage grub-common
	grub-mkimage -O x86_64-efi -o "$1" -p /EFI/BOOT \
		part_gpt part_msdos fat ext2 iso9660 normal configfile linux echo test search \
		search_label search_fs_file search_fs_uuid serial terminal efi_gop all_video ||
		img_die "grub-mkimage -O x86_64-efi failed"
}

# img_esp OUT SIZE_MIB DIR: a FAT file system image of DIR's files (mkfs.fat + mtools).
img_esp() {
	local out=$1 mib=$2 dir=$3
	img_need mkfs.fat dosfstools
	img_need mcopy mtools
	rm -f "$out"
	mkfs.fat -C -n KEEL-ESP "$out" $((mib * 1024)) >/dev/null || img_die "mkfs.fat $out failed"
	MTOOLS_SKIP_CHECK=1 mcopy -s -i "$out" "$dir"/* ::/ || img_die "mcopy into $out failed"
}

# img_place DISK PART START_SECTOR: write the partition image PART into DISK at START_SECTOR.
img_place() {
	dd if="$2" of="$1" bs=512 seek="$3" conv=notrunc,sparse status=none || img_die "dd $2 into $1 failed"
}
