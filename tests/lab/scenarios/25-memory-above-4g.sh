# 3.5 GiB: RAM is laid out around the 32-bit MMIO hole (keel-vmm: RAM up to 3 GiB, the rest
# from 4 GiB), the guest sees all of it (MemTotal matches --memory), part of it above 4 GiB,
# and powers off cleanly. 3.5 GiB because the lab host has 4 GiB and keel-vmm refuses more
# memory than its host has.
vm_boot a --cpus 1 --memory 3584M
check_memtotal a 3584
vm_run a "grep 'System RAM' /proc/iomem; dmesg | grep -E 'Memory:|software IO TLB'"
echo "lab: guest RAM ranges: $(echo "$VM_OUT" | tr '\n' ';')"
case "$VM_OUT" in
*100000000-*) ;;
*) fail "no guest RAM range starts at 4 GiB in /proc/iomem: $(echo "$VM_OUT" | tr '\n' ';')" ;;
esac
vm_send a 'poweroff -f'
vm_wait_exit a 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f: the VMM exited with status $VM_STATUS, expected 0"
