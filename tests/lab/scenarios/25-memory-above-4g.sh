# 5 GiB: RAM is laid out around the 32-bit MMIO hole, part of it above 4 GiB; the guest sees
# all of it (MemTotal matches --memory) and powers off cleanly. The lab host has 4 GiB, which
# is enough: the VMM maps guest RAM lazily and a busybox guest touches little of it.
vm_boot a --cpus 1 --memory 5G
check_memtotal a 5120
vm_run a "grep -c . /proc/iomem; grep 'System RAM' /proc/iomem"
echo "lab: guest RAM ranges: $(echo "$VM_OUT" | tail -n +2 | tr '\n' ';')"
vm_send a 'poweroff -f'
vm_wait_exit a 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f: the VMM exited with status $VM_STATUS, expected 0"
