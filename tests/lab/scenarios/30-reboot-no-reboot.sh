# With --no-reboot, `reboot -f` makes the VMM exit with status 0 instead of restarting.
vm_boot a --cpus 1 --memory 256M --no-reboot
vm_send a 'reboot -f'
vm_wait_exit a 60
[ "$VM_STATUS" = 0 ] || fail "reboot -f with --no-reboot: the VMM exited with status $VM_STATUS, expected 0"
