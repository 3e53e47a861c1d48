# Generation 2 boots an installed disk (issue 11, lab test 2): keel-vmm --firmware uefi with a
# new variable store and the gpt-uefi image (scripts/images/gpt-uefi.sh) as a virtio-blk
# disk. OVMF finds the EFI System Partition and runs \EFI\BOOT\BOOTX64.EFI (GRUB x86_64-efi),
# which loads Debian's kernel and initramfs from the ESP; the guest sees /sys/firmware/efi and
# efivarfs lists OVMF's variables (at least one); it powers off and keel-vmm exits 0.
# lab-images: gpt-uefi
image_copy gpt-uefi "$VM_DIR/gpt.raw"
vm_command() {
	printf 'exec keel-vmm --name %s --firmware uefi --nvram %s --memory 256M --no-rng --disk path=%s\n' \
		"$1" "$VM_DIR/gpt.vars.fd" "$VM_DIR/gpt.raw"
}
vm_start gpt
image_wait gpt 'GRUB [(]x86_64-efi[)] loading Linux from the EFI System Partition' 280
image_wait gpt '^keel-image: init ready from=gpt-disk firmware=efi ' 120
case "$VM_LINE" in *efivars=0) fail "efivarfs lists no variable: $VM_LINE" ;; esac
image_poweroff gpt
