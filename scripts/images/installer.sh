# shellcheck shell=bash
# An installer DVD (issue 11, lab test 5): the DVD of dvd.sh whose init runs with
# keel.role=install (scripts/images/init): it partitions the VM's empty virtio-blk disk (GPT,
# one EFI System Partition), copies /install from the DVD onto it (GRUB EFI at
# \EFI\BOOT\BOOTX64.EFI, its grub.cfg, the kernel and initramfs: the layout of gpt-uefi.sh,
# booting with keel.from=installed-disk) and powers off. The VM then boots that disk through
# OVMF with the DVD drive empty.
image_file=installer.iso

image_inputs() {
	img_initramfs_inputs
	img_pkgver grub-pc-bin grub-efi-amd64-bin xorriso mtools
	sha256sum "$IMG_DIR/dvd.sh" "$IMG_DIR/gpt-uefi.sh" | cut -d' ' -f1
}

image_build() {
	local work
	# shellcheck source=scripts/images/dvd.sh
	. "$IMG_DIR/dvd.sh"
	# shellcheck source=scripts/images/gpt-uefi.sh
	. "$IMG_DIR/gpt-uefi.sh"
	work=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" RETURN
	esp_tree "$work/esp" installed-disk
	mkdir -p "$work/extra/install"
	mv "$work/esp/EFI/BOOT/BOOTX64.EFI" "$work/esp/EFI/BOOT/grub.cfg" "$work/esp/keel/vmlinuz" \
		"$work/esp/keel/initrd.img" "$work/extra/install/"
	dvd_make "$1" installer install "$work/extra"
}
