# Generation 2 boots an installed disk, and its variable store survives a kill (issue 11, lab
# tests 2 and 3): keel-vmm --firmware uefi with a new variable store and the gpt-uefi image
# (scripts/images/gpt-uefi.sh) as a virtio-blk disk. OVMF finds the EFI System Partition and
# runs \EFI\BOOT\BOOTX64.EFI (GRUB x86_64-efi), which loads Debian's kernel and initramfs from
# the ESP; the guest sees /sys/firmware/efi and efivarfs lists OVMF's variables. On this first
# boot the guest's init writes a variable through efivarfs (KeelLabBoots=1) and then
# KeelLabStress=1, 2, 3 ... in a loop (keel.efistress=1, scripts/images/init); the worker is
# killed with SIGKILL in the middle of those writes. A new keel-vmm on the same store: OVMF
# must accept it and boot again, and the guest must find KeelLabBoots=1 and a KeelLabStress
# that is a number (how many of the last writes made it is the 200 ms write-back's business,
# formats/nvram.md), then power off (keel-vmm exits 0).
# The workers run jailed (api.sh, vm_start): both runs are one VM whose directory, the jail
# root VM_ROOT, holds the variable store in a directory of its own (nvram/), which lab-jail
# gives to each worker's uid with the store, as keeld does with vms/UUID/nvram.
# lab-images: gpt-uefi
image_copy gpt-uefi "$VM_DIR/gpt.raw"
VM_ROOT=$VM_DIR/gpt-vm
vm_command() {
	printf 'exec keel-vmm --name %s --firmware uefi --nvram %s --memory 256M --no-rng --disk path=%s\n' \
		"$1" "$VM_ROOT/nvram/gpt.vars.fd" "$VM_DIR/gpt.raw"
}
vm_start gpt
image_wait gpt 'GRUB [(]x86_64-efi[)] loading Linux from the EFI System Partition' 280
image_wait gpt '^keel-image: init ready from=gpt-disk firmware=efi ' 120
case "$VM_LINE" in *efivars=0*) fail "efivarfs lists no variable: $VM_LINE" ;; esac
case "$VM_LINE" in *" boots=0 stress=none") ;; *) fail "a new store already has keel's variables: $VM_LINE" ;; esac
image_wait gpt '^keel-image: efivar writes 40$' 240
vm_kill gpt
echo "lab: killed keel-vmm (SIGKILL) while the guest writes UEFI variables"
vm_start again
image_wait again 'GRUB [(]x86_64-efi[)] loading Linux from the EFI System Partition' 280
image_wait again '^keel-image: init ready from=gpt-disk firmware=efi ' 120
case "$VM_LINE" in
*" boots=1 stress="[0-9]*) ;;
*) fail "after the kill the store lacks the guest's variables (want boots=1 and a stress count): $VM_LINE" ;;
esac
image_poweroff again
