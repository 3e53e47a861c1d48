# An install (issue 11, lab test 5), Generation 2: the installer DVD (scripts/images/
# installer.sh) and an empty 64 MiB virtio-blk disk. OVMF boots the DVD (El Torito EFI); its
# init partitions the disk (GPT, one EFI System Partition), copies GRUB EFI, grub.cfg, the
# kernel and initramfs onto it and powers off. A new keel-vmm on the same disk and variable
# store, with the DVD drive empty (--dvd none: ejected), boots the installed system: OVMF runs
# the disk's \EFI\BOOT\BOOTX64.EFI and GRUB the installed kernel (keel.from=installed-disk).
# The installer's init wrote a UEFI variable through efivarfs (KeelLabBoots=1, scripts/images/
# init); the installed system must read it back: it survived the power-off (issue 11, test 3).
# Then the boot order under OVMF: the DVD back in, the disk boots by default, the DVD with
# --boot-order dvd,disk.
# The workers run jailed (api.sh, vm_start): both runs are one VM whose directory, the jail
# root VM_ROOT, holds the variable store in a directory of its own (nvram/), which lab-jail
# gives to each worker's uid with the store, as keeld does with vms/UUID/nvram.
# lab-images: installer
image_copy installer "$VM_DIR/installer.iso"
truncate -s 64M "$VM_DIR/disk.raw"
VM_ROOT=$VM_DIR/g2-vm
vm_command() {
	printf 'exec keel-vmm --name %s --firmware uefi --nvram %s --memory 256M --no-rng --disk path=%s --dvd %s\n' \
		"$1" "$VM_ROOT/nvram/vars.fd" "$VM_DIR/disk.raw" "$2"
}
vm_start install "$VM_DIR/installer.iso"
image_wait install 'GRUB [(]x86_64-efi[)] loading Linux from the DVD' 280
image_wait install '^keel-image: init ready from=installer firmware=efi .* boots=0 ' 120
image_wait install '^keel-image: installed ' 120
image_poweroff install
vm_start installed none
image_wait installed 'GRUB [(]x86_64-efi[)] loading Linux from the EFI System Partition' 280
image_wait installed '^keel-image: init ready from=installed-disk firmware=efi disks=sr0,vda .* boots=1 ' 120
image_poweroff installed
# The boot order reaches OVMF (fw_cfg bootorder): with the installer DVD in the drive again,
# the default order (disk first) boots the installed disk, and --boot-order dvd,disk the DVD
# (stopped once GRUB loads its kernel, before the installer would write the disk again).
vm_start dvdin "$VM_DIR/installer.iso"
image_wait dvdin 'GRUB [(]x86_64-efi[)] loading Linux from the EFI System Partition' 280
vm_kill dvdin
vm_command() {
	printf 'exec keel-vmm --name %s --firmware uefi --nvram %s --memory 256M --no-rng --disk path=%s --dvd %s --boot-order dvd,disk\n' \
		"$1" "$VM_ROOT/nvram/vars.fd" "$VM_DIR/disk.raw" "$2"
}
vm_start dvdfirst "$VM_DIR/installer.iso"
image_wait dvdfirst 'GRUB [(]x86_64-efi[)] loading Linux from the DVD' 280
vm_kill dvdfirst
echo "lab: fw-install: OVMF boots the disk first by default and the DVD first with --boot-order dvd,disk"
