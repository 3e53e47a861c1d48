# Without --no-reboot, `reboot -f` resets the VM and the guest boots a second time; powering
# off the second boot ends the VMM with status 0.
vm_boot a --cpus 1 --memory 256M
vm_send a 'reboot -f'
vm_wait a "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
vm_run a 'cat /proc/uptime'
echo "lab: second boot, uptime $VM_OUT"
vm_send a 'poweroff -f'
vm_wait_exit a 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f after a reboot: the VMM exited with status $VM_STATUS, expected 0"
