# shellcheck shell=bash
# Generation 1 disk (issue 11, lab test 1): a raw MBR disk, one bootable ext4 partition with
# Debian's cloud kernel, the busybox initramfs (scripts/images/init) and GRUB's i386-pc modules
# and grub.cfg in /boot; GRUB's boot.img in the MBR and its core.img in the gap after it, as
# grub-install would put them (boot.img's and diskboot's default sector numbers match that
# place, so nothing is patched). SeaBIOS boots it; GRUB loads the kernel from the partition.
image_file=mbr-bios.raw

image_inputs() {
	img_initramfs_inputs
	img_pkgver grub-pc-bin e2fsprogs fdisk
}

image_build() {
	local out=$1 work mods=/usr/lib/grub/i386-pc
	img_need grub-mkimage grub-common
	img_need mkfs.ext4 e2fsprogs
	img_need sfdisk fdisk
	[ -e "$mods/boot.img" ] || img_die "$mods/boot.img is missing (package grub-pc-bin); run scripts/setup.sh"
	work=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" RETURN
	mkdir -p "$work/root/boot/grub/i386-pc"
	install -m 0644 "$(readlink -f "$IMG_KDIR/vmlinuz")" "$work/root/boot/vmlinuz"
	img_initramfs "$work/root/boot/initrd.img"
	cp "$mods"/*.mod "$mods"/*.lst "$work/root/boot/grub/i386-pc/"
	cat >"$work/root/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry 'keel image: MBR disk, GRUB i386-pc' {
	echo 'keel-image: GRUB (i386-pc) loading Linux from the MBR disk'
	linux /boot/vmlinuz $IMG_CMDLINE keel.from=mbr-disk keel.role=system
	initrd /boot/initrd.img
}
CFG
	mkfs.ext4 -q -F -L keel-mbr -d "$work/root" "$work/part.img" 62M || img_die "mkfs.ext4 -d failed"
	truncate -s 64M "$out"
	printf 'label: dos\nstart=2048, size=62MiB, type=83, bootable\n' | sfdisk --quiet "$out" ||
		img_die "sfdisk on $out failed"
	img_place "$out" "$work/part.img" 2048
	grub-mkimage -O i386-pc -o "$work/core.img" -p '(hd0,msdos1)/boot/grub' \
		biosdisk part_msdos ext2 normal serial terminal linux echo ||
		img_die "grub-mkimage -O i386-pc failed"
	[ "$(stat -c %s "$work/core.img")" -lt $((2047 * 512)) ] || img_die "core.img does not fit before the partition"
	# boot.img's code only (440 bytes): the partition table and signature stay.
	dd if="$mods/boot.img" of="$out" bs=440 count=1 conv=notrunc status=none
	dd if="$work/core.img" of="$out" bs=512 seek=1 conv=notrunc status=none
}
