# Both generations boot a DVD with an empty disk attached (issue 11, lab test 4): the dvd
# image (scripts/images/dvd.sh, grub-mkrescue: El Torito for BIOS and for UEFI) in keel-vmm's
# DVD drive (virtio-scsi, --dvd) and an empty 64 MiB virtio-blk disk. SeaBIOS boots the BIOS
# El Torito image, OVMF the EFI one; GRUB loads the kernel and initramfs from the ISO 9660
# file system; each guest reports its firmware, sees the DVD (sr0) and the disk (vda), powers
# off, and keel-vmm exits 0.
# The workers run jailed (api.sh, vm_start): gen2's variable store is in a directory of its own
# in its VM directory, the jail root ($VM_DIR/gen2/jail/nvram), which lab-jail gives to the
# worker's uid with the store, as keeld does with vms/UUID/nvram.
# lab-images: dvd
image_copy dvd "$VM_DIR/dvd.iso"
truncate -s 64M "$VM_DIR/empty.raw"
vm_command() {
	case "$1" in
	gen1) printf 'exec keel-vmm --name %s --firmware bios' "$1" ;;
	gen2) printf 'exec keel-vmm --name %s --firmware uefi --nvram %s' "$1" "$VM_DIR/gen2/jail/nvram/gen2.vars.fd" ;;
	esac
	printf ' --memory 256M --no-rng --disk path=%s --dvd %s\n' "$VM_DIR/empty.raw" "$VM_DIR/dvd.iso"
}
vm_start gen1
image_wait gen1 'GRUB [(]i386-pc[)] loading Linux from the DVD' 120
image_wait gen1 '^keel-image: init ready from=dvd firmware=bios disks=sr0,vda ' 120
image_poweroff gen1
vm_start gen2
image_wait gen2 'GRUB [(]x86_64-efi[)] loading Linux from the DVD' 280
image_wait gen2 '^keel-image: init ready from=dvd firmware=efi disks=sr0,vda ' 120
image_poweroff gen2
# Still empty: its first 34 sectors (MBR, GPT header and entries) all zero. (Not od: it
# prints a run of equal lines as one line and '*'.)
[ "$(head -c 17408 "$VM_DIR/empty.raw" | tr -d '\000' | wc -c)" = 0 ] ||
	fail "the empty disk was written during the DVD boots"
