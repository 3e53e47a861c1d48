# A real distribution (issue 11, lab test 6; what `make demo` boots): Debian 12 with systemd
# (scripts/images/debian12-vhdx.sh: mmdebstrap, Debian's cloud kernel, GRUB EFI on an EFI
# System Partition, an ext4 root) in a dynamic VHDX, on keel-vmm --firmware uefi. OVMF boots
# GRUB from the ESP, GRUB the kernel and initramfs from the root; systemd starts the serial
# getty on ttyS0. The scenario logs in as root (password "keel"), asks `systemctl
# is-system-running --wait` (the answer must be "running"; "degraded" fails with the failed
# units), and powers the system off with `systemctl poweroff`: keel-vmm exits 0.
# About 5 minutes in the lab (OVMF alone takes 1.5), hence its own limit:
# lab-timeout: 600
# lab-images: debian12-vhdx
echo "lab: Debian 12 image: user root, password keel"
image_copy debian12-vhdx "$VM_DIR/debian12.vhdx"
vm_command() {
	printf 'exec keel-vmm --name %s --firmware uefi --nvram %s --cpus 2 --memory 512M --no-rng --disk path=%s\n' \
		"$1" "$VM_DIR/debian12.vars.fd" "$VM_DIR/debian12.vhdx"
}
t0=$(_now)
vm_start deb
vm_wait deb 'Loading Linux' 280
echo "lab: GRUB after $(($(_now) - t0)) s: $VM_LINE"
vm_wait deb 'Welcome to .*Debian' 240
vm_wait deb 'login: ' 240
echo "lab: the serial getty after $(($(_now) - t0)) s: $VM_LINE"
vm_send deb root
vm_wait deb 'Password: ' 60
vm_send deb keel
vm_wait deb 'root@keel-debian12' 60
vm_run deb 'systemctl is-system-running --wait' 240
state=$(echo "$VM_OUT" | grep -E -o 'initializing|starting|running|degraded|maintenance|stopping' | tail -n 1)
echo "lab: systemctl is-system-running after $(($(_now) - t0)) s: ${state:-$VM_OUT}"
if [ "$state" != running ]; then
	vm_run deb 'systemctl --failed --no-pager --plain' 60
	fail "systemctl is-system-running answered '${state:-$VM_OUT}'; failed units: $(echo "$VM_OUT" | tr '\n' ' ')"
fi
vm_send deb 'systemctl poweroff'
vm_wait_exit deb 120
[ "$VM_STATUS" = 0 ] || fail "keel-vmm exit status $VM_STATUS after systemctl poweroff"
echo "lab: powered off after $(($(_now) - t0)) s, keel-vmm exit status 0"
