# shellcheck shell=bash
# Debian 12 (bookworm), a real installed system (issue 11, lab test 6; what `make demo` shows):
# mmdebstrap --variant=minbase with systemd, Debian's cloud kernel and its initramfs, on a GPT
# disk with an EFI System Partition holding GRUB (x86_64-efi) and an ext4 root; the serial
# console (console=ttyS0) gets systemd's serial getty. User root, password "keel" (the tests
# and the demo print it). Converted to a dynamic VHDX with keel's own disk tool.
# The console: no `quiet` (the user sees the kernel and systemd boot), and once systemd-sysctl
# has run, only the kernel's errors (kernel.printk 4 4 1 7, the file Debian's procps installs
# in its cloud images, which minbase lacks): the modules udev loads afterwards (kvm, the
# power button, crypto) would otherwise print over the login prompt.
# No keel-agent: a user installs it from `make agent-iso`'s disk (89-fw-debian12 does).
# The image records the version of every package in it (packages.txt beside it); the cache
# key is the scripts' text, the suite and the host's GRUB.
DEB_SUITE=bookworm
DEB_MIRROR=http://deb.debian.org/debian
DEB_PASSWORD=keel
# Fixed so that grub.cfg and fstab can name them.
DEB_ROOT_UUID=4b45454c-d12d-4e4c-8000-00000000000c
image_file=debian12.vhdx

image_inputs() {
	echo "suite $DEB_SUITE $DEB_MIRROR"
	img_pkgver grub-efi-amd64-bin mmdebstrap e2fsprogs
}

image_build() {
	local out=$1 work
	img_need mmdebstrap mmdebstrap
	img_need mkfs.ext4 e2fsprogs
	img_need sfdisk fdisk
	work=$(mktemp -d /var/tmp/keel-debian12.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" RETURN
	echo "images: debian12: mmdebstrap $DEB_SUITE (a few minutes)" >&2
	mmdebstrap --variant=minbase --quiet \
		--include=systemd-sysv,udev,dbus,linux-image-cloud-amd64,initramfs-tools,login,passwd \
		--customize-hook="echo 'root:$DEB_PASSWORD' | chroot \"\$1\" chpasswd" \
		--customize-hook='echo keel-debian12 >"$1/etc/hostname"' \
		--customize-hook='printf "127.0.0.1 localhost\n127.0.1.1 keel-debian12\n" >"$1/etc/hosts"' \
		--customize-hook="echo 'UUID=$DEB_ROOT_UUID / ext4 errors=remount-ro 0 1' >\"\$1/etc/fstab\"" \
		--customize-hook='mkdir -p "$1/etc/sysctl.d" && printf "kernel.printk = 4 4 1 7\n" >"$1/etc/sysctl.d/10-console-messages.conf"' \
		--customize-hook='chroot "$1" dpkg-query -W -f="\${Package} \${Version}\n" >"$1/.keel-packages"' \
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb' \
		"$DEB_SUITE" "$work/root" "$DEB_MIRROR" >&2 || img_die "mmdebstrap failed"
	mv "$work/root/.keel-packages" "$(dirname "$out")/packages.txt"
	local kver
	kver=$(cd "$work/root/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | head -n 1)
	[ -n "$kver" ] && [ -e "$work/root/boot/initrd.img-$kver" ] || img_die "no kernel and initramfs in the image"
	# The EFI System Partition: GRUB, and its grub.cfg, which loads the kernel from the root.
	mkdir -p "$work/esp/EFI/BOOT"
	img_grub_efi "$work/esp/EFI/BOOT/BOOTX64.EFI"
	cat >"$work/esp/EFI/BOOT/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry 'Debian GNU/Linux 12 (keel image)' {
	search --no-floppy --fs-uuid --set=root $DEB_ROOT_UUID
	echo 'Loading Linux $kver ...'
	linux /boot/vmlinuz-$kver root=UUID=$DEB_ROOT_UUID ro console=tty0 console=ttyS0,115200
	echo 'Loading initial ramdisk ...'
	initrd /boot/initrd.img-$kver
}
CFG
	img_esp "$work/esp.img" 32 "$work/esp"
	# The root: its size is what it holds plus a quarter and 64 MiB, in whole MiB.
	local used root_mib
	used=$(du -sm "$work/root" | cut -f1)
	root_mib=$((used + used / 4 + 64))
	mkfs.ext4 -q -F -L keel-root -U "$DEB_ROOT_UUID" -d "$work/root" "$work/root.img" "${root_mib}M" ||
		img_die "mkfs.ext4 -d failed"
	local disk=$work/disk.raw total=$((1 + 32 + root_mib + 1))
	truncate -s "${total}M" "$disk"
	sfdisk --quiet "$disk" <<PT || img_die "sfdisk on $disk failed"
label: gpt
start=1MiB, size=32MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System"
start=33MiB, size=${root_mib}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"
PT
	img_place "$disk" "$work/esp.img" 2048
	img_place "$disk" "$work/root.img" $((33 * 2048))
	local keel=$IMG_TOP/build/src/cli/keel
	[ -x "$keel" ] || img_die "$keel is not built (run make): it converts the image to VHDX"
	"$keel" disk convert "$disk" "$out" --format vhdx --type dynamic >&2 ||
		img_die "keel disk convert $disk to VHDX failed"
}
