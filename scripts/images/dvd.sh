# shellcheck shell=bash
# A DVD both generations boot (issue 11, lab test 4): an ISO 9660 image made by
# grub-mkrescue, with El Torito boot images for BIOS (GRUB i386-pc) and for UEFI (an EFI
# System Partition image with GRUB x86_64-efi), one grub.cfg for both, Debian's cloud kernel
# and the busybox initramfs (scripts/images/init) in /keel.
image_file=dvd.iso

image_inputs() {
	img_initramfs_inputs
	img_pkgver grub-pc-bin grub-efi-amd64-bin xorriso mtools
}

# dvd_make OUT FROM ROLE EXTRA-DIR: an ISO of the kernel, the initramfs and EXTRA-DIR's files.
dvd_make() {
	local out=$1 from=$2 role=$3 extra=${4:-} work
	img_need grub-mkrescue grub-common
	img_need xorriso xorriso
	img_need mformat mtools
	work=$(mktemp -d)
	mkdir -p "$work/iso/boot/grub" "$work/iso/keel"
	install -m 0644 "$(readlink -f "$IMG_KDIR/vmlinuz")" "$work/iso/keel/vmlinuz"
	img_initramfs "$work/iso/keel/initrd.img"
	[ -z "$extra" ] || cp -a "$extra"/. "$work/iso/"
	cat >"$work/iso/boot/grub/grub.cfg" <<CFG
if [ "\$grub_platform" = pc ]; then
	serial --unit=0 --speed=115200
	terminal_input serial
	terminal_output serial
fi
set timeout=0
menuentry 'keel image: DVD ($role)' {
	echo "keel-image: GRUB (\$grub_cpu-\$grub_platform) loading Linux from the DVD"
	linux /keel/vmlinuz $IMG_CMDLINE keel.from=$from keel.role=$role
	initrd /keel/initrd.img
}
CFG
	grub-mkrescue -o "$out" "$work/iso" -- -volid KEEL_DVD >/dev/null 2>"$work/log" || {
		cat "$work/log" >&2
		rm -rf "$work"
		img_die "grub-mkrescue failed"
	}
	rm -rf "$work"
	xorriso -indev "$out" -report_el_torito plain 2>/dev/null | grep -q 'El Torito boot img.*BIOS' &&
		xorriso -indev "$out" -report_el_torito plain 2>/dev/null | grep -q 'El Torito boot img.*UEFI' ||
		img_die "$out lacks an El Torito boot image for BIOS or for UEFI"
}

image_build() {
	dvd_make "$1" dvd system
}
