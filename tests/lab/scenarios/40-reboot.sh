# Without --no-reboot, `reboot -f` resets the VM and the guest boots a second time; powering
# off the second boot ends the VMM with status 0.
# The second boot is a new boot: its uptime is less than the first boot's uptime plus the
# time that passed in between (a guest that never reset would show at least that).
vm_boot a --cpus 1 --memory 256M
vm_run a 'cut -d. -f1 /proc/uptime'
up1=$VM_OUT t1=$(_now)
case "$up1" in '' | *[!0-9]*) fail "first boot: /proc/uptime gave '$up1'" ;; esac
vm_send a 'reboot -f'
vm_wait a "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
vm_run a 'cut -d. -f1 /proc/uptime'
up2=$VM_OUT t2=$(_now)
case "$up2" in '' | *[!0-9]*) fail "second boot: /proc/uptime gave '$up2'" ;; esac
[ "$up2" -lt $((up1 + t2 - t1)) ] ||
	fail "no reset: uptime $up2 s after the reboot, $up1 s before it and $((t2 - t1)) s between"
echo "lab: second boot, uptime $up2 s (first boot had $up1 s, $((t2 - t1)) s earlier)"
vm_send a 'poweroff -f'
vm_wait_exit a 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f after a reboot: the VMM exited with status $VM_STATUS, expected 0"
