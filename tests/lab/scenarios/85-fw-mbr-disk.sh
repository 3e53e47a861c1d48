# Generation 1 boots an installed disk (issue 11, lab test 1): keel-vmm --firmware bios with
# the mbr-bios image (scripts/images/mbr-bios.sh) as a virtio-blk disk. SeaBIOS reads the MBR,
# GRUB i386-pc (boot.img, core.img in the gap) loads its modules and grub.cfg from the ext4
# partition and then Debian's kernel and initramfs from it; the guest's init says it runs on
# BIOS (no /sys/firmware/efi) and powers off; keel-vmm exits 0.
# lab-images: mbr-bios
image_copy mbr-bios "$VM_DIR/mbr.raw"
vm_command() {
	printf 'exec keel-vmm --name %s --firmware bios --memory 256M --no-rng --disk path=%s\n' "$1" "$VM_DIR/mbr.raw"
}
vm_start mbr
vm_wait mbr 'SeaBIOS [(]version' 120
image_wait mbr 'GRUB [(]i386-pc[)] loading Linux from the MBR disk' 120
image_wait mbr '^keel-image: init ready from=mbr-disk firmware=bios ' 120
image_poweroff mbr
