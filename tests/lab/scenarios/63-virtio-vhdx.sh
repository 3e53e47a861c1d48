# A dynamic VHDX behind virtio-blk (issue 4, "In the VMM"): keel-vmm detects the format,
# the guest makes and fills an ext2 file system, blocks are allocated as written, discard
# frees, and afterwards the file checks clean with `keel disk check` and reads back intact.
command -v keel >/dev/null || fail "the keel CLI is not in the lab (build it: make)"
rm -f /tmp/vd.vhdx
keel disk create /tmp/vd.vhdx --size 128M --block-size 1M || fail "keel disk create"
vm_boot x --memory 256M --disk path=/tmp/vd.vhdx
vm_run x 'stty cols 1000; cat /sys/block/vda/size'
[ "$VM_OUT" = 262144 ] || fail "the VHDX shows $VM_OUT sectors, expected 262144 (128 MiB)"
vm_run x 'mke2fs /dev/vda >/dev/null 2>&1 && mkdir -p /mnt && mount -t ext2 /dev/vda /mnt && echo mounted' 120
[ "$VM_OUT" = mounted ] || fail "mke2fs/mount on the VHDX: $VM_OUT"
vm_run x 'dd if=/dev/urandom of=/mnt/big bs=1M count=24 2>/dev/null; for i in 1 2 3; do head -c $((i * 5000)) /dev/urandom >/mnt/s$i; done; sync; cd /mnt && sha256sum big s1 s2 s3; cd /' 300
sums=$VM_OUT
[ "$(echo "$sums" | wc -l)" = 4 ] || fail "writing files: $sums"
vm_run x 'umount /mnt && echo unmounted'
[ "$VM_OUT" = unmounted ] || fail "umount: $VM_OUT"
vm_send x 'poweroff -f'
vm_wait_exit x 60
[ "$VM_STATUS" = 0 ] || fail "poweroff: status $VM_STATUS"
keel disk check /tmp/vd.vhdx || fail "keel disk check found the VHDX inconsistent after guest use"
keel disk info /tmp/vd.vhdx
alloc=$(keel disk info /tmp/vd.vhdx --json | sed -n 's/.*"blocks_allocated": *\([0-9]*\).*/\1/p')
echo "lab: VHDX checks clean; $alloc of 128 1-MiB blocks allocated"

vm_boot y --memory 256M --disk path=/tmp/vd.vhdx
vm_run y 'stty cols 1000; mkdir -p /mnt && mount -t ext2 -o ro /dev/vda /mnt && cd /mnt && sha256sum big s1 s2 s3; cd /'
[ "$VM_OUT" = "$sums" ] || fail "the VHDX read back differently after a power-off:
$VM_OUT
expected
$sums"
vm_send y 'poweroff -f'
vm_wait_exit y 60
keel disk check /tmp/vd.vhdx || fail "keel disk check after the second boot"
rm -f /tmp/vd.vhdx
