# shellcheck shell=bash
# Generation 2 disk (issue 11, lab test 2): a raw GPT disk whose only partition is an EFI
# System Partition (FAT) with GRUB for x86_64 UEFI at the removable-media path
# \EFI\BOOT\BOOTX64.EFI, its grub.cfg, Debian's cloud kernel and the busybox initramfs
# (scripts/images/init). OVMF boots it with no boot entry of its own; the guest sees
# /sys/firmware/efi. Its first boot with a new variable store writes UEFI variables until
# killed (keel.efistress=1, scripts/images/init), for 86-fw-gpt-disk. The installer
# (installer.sh) writes the same layout onto an empty disk.
image_file=gpt-uefi.raw

image_inputs() {
	img_initramfs_inputs
	img_pkgver grub-efi-amd64-bin dosfstools mtools fdisk
}

# esp_tree DIR FROM [ARGS]: the ESP's files: GRUB, a grub.cfg passing keel.from=FROM (and
# ARGS), kernel, initramfs.
esp_tree() {
	local dir=$1 from=$2 more=${3:-}
	mkdir -p "$dir/EFI/BOOT" "$dir/keel"
	img_grub_efi "$dir/EFI/BOOT/BOOTX64.EFI"
	cat >"$dir/EFI/BOOT/grub.cfg" <<CFG
set timeout=0
menuentry 'keel image: GPT disk, EFI System Partition, GRUB EFI' {
	search --no-floppy --set=root --file /keel/vmlinuz
	echo 'keel-image: GRUB (x86_64-efi) loading Linux from the EFI System Partition'
	linux /keel/vmlinuz $IMG_CMDLINE keel.from=$from keel.role=system$more
	initrd /keel/initrd.img
}
CFG
	install -m 0644 "$(readlink -f "$IMG_KDIR/vmlinuz")" "$dir/keel/vmlinuz"
	img_initramfs "$dir/keel/initrd.img"
}

image_build() {
	local out=$1 work
	img_need sfdisk fdisk
	work=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" RETURN
	esp_tree "$work/esp" gpt-disk " keel.efistress=1"
	img_esp "$work/esp.img" 62 "$work/esp"
	truncate -s 64M "$out"
	printf 'label: gpt\nstart=2048, size=62MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System"\n' |
		sfdisk --quiet "$out" || img_die "sfdisk on $out failed"
	img_place "$out" "$work/esp.img" 2048
}
