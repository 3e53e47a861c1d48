# One vCPU, 512 MiB: the guest's /init runs (its marker line and a shell that answers),
# nproc says 1, MemTotal matches --memory, the kernel uses the local APIC timer's TSC-deadline
# mode (CPUID offers it, as QEMU's does), and `poweroff -f` makes the VMM exit 0.
vm_boot a --cpus 1 --memory 512M
vm_run a 'cat /proc/cmdline'
case "$VM_OUT" in *console=ttyS0*) ;; *) fail "/proc/cmdline in the guest is '$VM_OUT'" ;; esac
vm_run a nproc
[ "$VM_OUT" = 1 ] || fail "nproc printed '$VM_OUT' with --cpus 1"
check_memtotal a 512
vm_run a 'grep -o -m1 -w tsc_deadline_timer /proc/cpuinfo; cat /sys/devices/system/clockevents/clockevent0/current_device'
case "$VM_OUT" in tsc_deadline_timer*lapic-deadline*) ;; *) fail "the guest's timer is not the TSC-deadline one: '$VM_OUT'" ;; esac
echo "lab: the guest's clock event device: ${VM_OUT##*[[:space:]]}"
vm_send a 'poweroff -f'
vm_wait_exit a 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f: the VMM exited with status $VM_STATUS, expected 0"
