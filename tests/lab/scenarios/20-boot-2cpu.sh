# Two vCPUs, 1 GiB: the guest brings up both (nproc says 2), MemTotal matches --memory, and
# `poweroff -f` makes the VMM exit 0.
vm_boot a --cpus 2 --memory 1G
vm_run a nproc
[ "$VM_OUT" = 2 ] || fail "nproc printed '$VM_OUT' with --cpus 2"
check_memtotal a 1024
vm_send a 'poweroff -f'
vm_wait_exit a 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f: the VMM exited with status $VM_STATUS, expected 0"
