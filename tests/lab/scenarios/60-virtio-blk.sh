# virtio over PCI with Debian's stock drivers: the devices on the PCI bus (/sys/bus/pci, the
# guest's busybox has no lspci), /dev/hwrng gives bytes, an ext2 file system made on a raw
# virtio disk keeps files with known checksums across a power-off, and a read-only disk
# refuses writes; afterwards the image checks clean with e2fsck -fn on the lab host.
dd if=/dev/zero of=/tmp/vblk.raw bs=1M count=64 2>/dev/null || fail "cannot create the disk file"
dd if=/dev/urandom of=/tmp/vblk-ro.raw bs=1M count=4 2>/dev/null || fail "cannot create the read-only disk file"
ro_sum=$(sha256sum /tmp/vblk-ro.raw | cut -d' ' -f1)

vm_boot a --memory 256M --disk path=/tmp/vblk.raw,serial=keel-disk-1 --disk path=/tmp/vblk-ro.raw,readonly=on
vm_run a 'stty cols 1000' # long command lines must not wrap on the console
vm_run a 'for d in /sys/bus/pci/devices/*; do echo ${d##*/} $(cat $d/vendor $d/device $d/class); done'
echo "lab: guest PCI devices:"
echo "$VM_OUT" | sed 's/^/lab:   /'
echo "$VM_OUT" | grep -q '^0000:00:00.0 0x8086 0x29c0 0x060000$' || fail "no Q35 host bridge (8086:29c0) at 00:00.0"
echo "$VM_OUT" | grep -q '^0000:00:1f.0 0x8086 0x2918 0x060100$' || fail "no ICH9 LPC bridge (8086:2918) at 00:1f.0"
[ "$(echo "$VM_OUT" | grep -c ' 0x1af4 0x1042 ')" = 2 ] || fail "expected two virtio-blk devices (1af4:1042)"
echo "$VM_OUT" | grep -q ' 0x1af4 0x1044 ' || fail "no virtio-rng device (1af4:1044)"
vm_run a 'ls /sys/bus/virtio/drivers && ls /sys/bus/virtio/devices/*/driver -d | wc -l'
echo "$VM_OUT" | grep -q virtio_blk || fail "the virtio_blk driver is not bound: $VM_OUT"

vm_run a 'dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c'
[ "$VM_OUT" = 256 ] || fail "/dev/hwrng gave '$VM_OUT' bytes, expected 256"
vm_run a 'cat /sys/class/misc/hw_random/rng_current'
case "$VM_OUT" in virtio_rng*) ;; *) fail "hw_random uses '$VM_OUT', expected virtio_rng" ;; esac

vm_run a 'for f in vda/size vda/serial vdb/ro vdb/size; do echo $(cat /sys/block/$f); done'
[ "$(echo $VM_OUT)" = "131072 keel-disk-1 1 8192" ] || fail "vda size/serial, vdb ro/size: '$(echo $VM_OUT)'"
vm_run a 'dd if=/dev/vdb bs=1M 2>/dev/null | sha256sum | cut -d" " -f1'
[ "$VM_OUT" = "$ro_sum" ] || fail "the read-only disk reads back $VM_OUT, the file is $ro_sum"
vm_run a 'dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>&1'
[ "$VM_RC" != 0 ] || fail "a write to the read-only disk succeeded: $VM_OUT"
[ "$(sha256sum /tmp/vblk-ro.raw | cut -d' ' -f1)" = "$ro_sum" ] || fail "the read-only disk file changed"

vm_run a 'mke2fs /dev/vda >/dev/null 2>&1 && mkdir -p /mnt && mount -t ext2 /dev/vda /mnt && echo mounted' 120
[ "$VM_OUT" = mounted ] || fail "mke2fs/mount on /dev/vda: $VM_OUT"
vm_run a 'dd if=/dev/urandom of=/mnt/big bs=1M count=20 2>/dev/null; mkdir /mnt/d; for i in 1 2 3 4 5; do head -c $((i * 3000)) /dev/urandom >/mnt/d/f$i; done; sync; cd /mnt && sha256sum big d/*; cd /' 180
sums1=$VM_OUT
[ "$(echo "$sums1" | wc -l)" = 6 ] || fail "writing the files: $sums1"
vm_run a 'umount /mnt && echo unmounted'
[ "$VM_OUT" = unmounted ] || fail "umount: $VM_OUT"
vm_send a 'poweroff -f'
vm_wait_exit a 60
[ "$VM_STATUS" = 0 ] || fail "poweroff: status $VM_STATUS"

vm_boot b --memory 256M --disk path=/tmp/vblk.raw
vm_run b 'stty cols 1000'
vm_run b 'mkdir -p /mnt && mount -t ext2 -o ro /dev/vda /mnt && cd /mnt && sha256sum big d/*; cd /'
[ "$VM_OUT" = "$sums1" ] || fail "after a power-off the files read back differently:
$VM_OUT
expected
$sums1"
echo "lab: 6 files with matching checksums after a power-off"

# Renegotiation: unbind the driver from the disk and bind it again (the device is reset and
# set up anew), then a guest reboot inside the same keel-vmm (the whole VM is reset).
vm_run b 'umount /mnt; d=$(basename $(readlink /sys/block/vda/device)); echo $d > /sys/bus/virtio/drivers/virtio_blk/unbind; ls /sys/block | grep -c vd; echo $d > /sys/bus/virtio/drivers/virtio_blk/bind; sleep 1; ls /sys/block | grep -c vd'
[ "$(echo $VM_OUT)" = "0 1" ] || fail "unbind/bind of virtio_blk: disk counts '$(echo $VM_OUT)', expected 0 then 1"
vm_run b 'mount -t ext2 -o ro /dev/vda /mnt && cd /mnt && sha256sum big d/*; cd /; umount /mnt'
[ "$VM_OUT" = "$sums1" ] || fail "after unbind/bind the files read back differently: $VM_OUT"
vm_send b 'reboot -f'
vm_wait b "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
vm_run b 'mkdir -p /mnt && mount -t ext2 -o ro /dev/vda /mnt && cd /mnt && sha256sum big d/*; cd /; umount /mnt'
[ "$VM_OUT" = "$sums1" ] || fail "after a guest reboot the files read back differently: $VM_OUT"
vm_run b 'dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c'
[ "$VM_OUT" = 32 ] || fail "/dev/hwrng after a reboot gave '$VM_OUT' bytes"
echo "lab: files intact after driver unbind/bind and after a guest reboot"
vm_send b 'poweroff -f'
vm_wait_exit b 60
[ "$VM_STATUS" = 0 ] || fail "poweroff: status $VM_STATUS"
# The image the guest wrote checks clean on the lab host, with the host's own e2fsck.
out=$(e2fsck -fn /tmp/vblk.raw 2>&1) || fail "e2fsck -fn on the lab host: $out"
echo "lab: e2fsck -fn on the lab host: $(echo "$out" | tail -n 1)"
rm -f /tmp/vblk.raw /tmp/vblk-ro.raw
