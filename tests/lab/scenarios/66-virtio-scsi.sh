# virtio-scsi (issue 11) with Debian's stock drivers (virtio_scsi, sd_mod, sr_mod, cdrom,
# isofs): one controller at its own PCI function with a disk (LUN 0) and a DVD drive (LUN 1).
# The guest reads the disk with the checksum the host computed, writes into it and the host
# reads the guest's bytes back; it mounts the ISO 9660 image in the drive (built by
# tests/lab/lab.sh with xorriso) and reads its files with the right checksums. The host then
# ejects the DVD over keel-vmm's control socket ("dvd"): the guest finds no medium; the host
# inserts another image and the guest mounts it and reads its files. The VM is saved and
# restored in a new keel-vmm: it has the second, as at the save, and the guest reads its files
# and the disk again. The workers run jailed (api.sh, vm_start), so they open no medium by
# path: the host passes each inserted image as a descriptor (lab-vmmctl --fd, "fd":true, as
# keeld does), VM a saves into $VM_DIR/a/jail/save (the directory its uid may write), and VM
# b is started with the medium that was in the drive at the save, as keeld's description
# of the VM would name it (a saved medium the description does not name would be opened by
# path inside the jail, where it is not: docs/security.md, "Not yet"). Last, storage QoS on
# the SCSI disk (issue 16): LUN 0 limited at run time to 20 I/Os per second, the guest's 60
# direct 8 KiB reads wait for it (the worker's counters: requests throttled, never more I/Os
# than the burst plus the limit for the time they took), then the limit is lifted.
command -v lab-vmmctl >/dev/null || fail "lab-vmmctl is not in the lab (tests/lab/vmmctl.c)"
DVD=/lab/dvd
for f in one.iso two.iso one/hello.txt one/data.bin two/hello.txt two/data.bin; do
	[ -s "$DVD/$f" ] || fail "$DVD/$f is missing from the lab (tests/lab/lab.sh builds it)"
done
DISK=/tmp/vscsi.raw
dd if=/dev/urandom of=$DISK bs=1M count=16 2>/dev/null || fail "cannot create the disk file"
disk_sum=$(sha256sum $DISK | cut -d' ' -f1)
sums() { (cd "$DVD/$1" && sha256sum hello.txt data.bin); }

SOCK=/tmp/vscsi.sock
ctl() { # ctl REQUEST: one control request to $SOCK that must succeed; CTL_OUT: the reply
	# (JSON's escaped slashes, "\/", as plain ones)
	CTL_OUT=$(lab-vmmctl ${CTL_FD:+--fd "$CTL_FD"} $SOCK "$1" 2>&1) ||
		fail "control request $1 failed: $CTL_OUT"
	CTL_OUT=$(printf '%s' "$CTL_OUT" | sed 's|\\/|/|g')
	echo "lab: <- $1: $CTL_OUT"
}

VM=a
dvd_files() { # dvd_files NAME: mount VM $VM's DVD, read its files, which must be NAME's
	vm_run $VM 'mkdir -p /cdrom && mount -t iso9660 -o ro /dev/sr0 /cdrom && cd /cdrom && sha256sum hello.txt data.bin; cd /; umount /cdrom' 120
	[ "$VM_OUT" = "$(sums "$1")" ] || fail "the DVD ($1.iso) reads back as:
$VM_OUT
expected
$(sums "$1")"
	echo "lab: the guest mounted $1.iso and read its files with matching checksums"
}

vm_boot a --memory 256M --disk path=$DISK,bus=scsi,serial=keel-scsi-1 --dvd $DVD/one.iso \
	--control /tmp/vscsi.sock
vm_run a 'for d in /sys/bus/pci/devices/*; do echo ${d##*/} $(cat $d/vendor $d/device $d/class); done'
echo "$VM_OUT" | grep -q ' 0x1af4 0x1048 0x010000$' || fail "no virtio-scsi controller (1af4:1048, class 010000): $VM_OUT"
vm_run a 'ls /sys/bus/virtio/drivers'
echo "$VM_OUT" | grep -q virtio_scsi || fail "the virtio_scsi driver is not there: $VM_OUT"
vm_run a 'for d in /sys/bus/scsi/devices/*:*:*:*; do echo ${d##*/} $(cat $d/type $d/vendor $d/model); done'
echo "lab: guest SCSI devices:"
echo "$VM_OUT" | sed 's/^/lab:   /'
echo "$VM_OUT" | grep -q ':0:0:0 0 KEEL VIRTUAL DISK$' || fail "no disk at LUN 0: $VM_OUT"
echo "$VM_OUT" | grep -q ':0:0:1 5 KEEL VIRTUAL DVD-ROM$' || fail "no DVD drive at LUN 1: $VM_OUT"
vm_run a 'echo $(cat /sys/block/sda/size /sys/block/sr0/size /sys/block/sr0/ro)'
[ "$VM_OUT" = "32768 $(($(wc -c <$DVD/one.iso) / 512)) 1" ] || fail "sda size, sr0 size and ro: '$VM_OUT'"

# The disk: the host's bytes, then the guest's bytes on the host.
vm_run a 'dd if=/dev/sda bs=1M 2>/dev/null | sha256sum | cut -d" " -f1' 120
[ "$VM_OUT" = "$disk_sum" ] || fail "the SCSI disk reads $VM_OUT in the guest, the file is $disk_sum"
vm_run a 'dd if=/dev/urandom of=/dev/sda bs=64k seek=16 count=64 oflag=direct conv=fsync 2>/dev/null && dd if=/dev/sda bs=1M iflag=direct 2>/dev/null | sha256sum | cut -d" " -f1' 120
[ "$VM_OUT" = "$(sha256sum $DISK | cut -d' ' -f1)" ] || fail "after the guest's write it reads $VM_OUT, the file is $(sha256sum $DISK | cut -d' ' -f1)"
[ "$VM_OUT" != "$disk_sum" ] || fail "the guest's write changed nothing"
echo "lab: the SCSI disk read the host's bytes, and the host read the guest's 4 MiB"

# The DVD: one.iso, ejected by the host, two.iso inserted by the host.
dvd_files one
ctl '{"execute":"dvd"}'
case "$CTL_OUT" in *'"lun":1,"medium":"/lab/dvd/one.iso","tray":"closed"'*) ;; *) fail "dvd lists $CTL_OUT" ;; esac
out=$(lab-vmmctl --fd /lab/dvd/one/hello.txt /tmp/vscsi.sock '{"execute":"dvd","arguments":{"path":"/lab/dvd/one/hello.txt","fd":true}}' 2>&1) &&
	fail "a file that is not an ISO image was accepted: $out"
case "$out" in *"not an ISO 9660 or UDF image"*) ;; *) fail "a file that is not an ISO image: $out" ;; esac
ctl '{"execute":"dvd","arguments":{"path":null}}'
case "$CTL_OUT" in *'"medium":null'*) ;; *) fail "after the eject dvd lists $CTL_OUT" ;; esac
vm_run a 'dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2>&1'
[ "$VM_RC" != 0 ] || fail "the guest read the DVD after the host ejected it: $VM_OUT"
case "$VM_OUT" in *"No medium"*) ;; *) fail "reading the ejected DVD: '$VM_OUT', expected No medium found" ;; esac
echo "lab: after the host's eject the guest finds no medium: $VM_OUT"
CTL_FD=/lab/dvd/two.iso
ctl '{"execute":"dvd","arguments":{"path":"/lab/dvd/two.iso","fd":true}}'
CTL_FD=
dvd_files two

# Saved, and restored by a worker whose description names two.iso: two.iso is in the drive.
SAVE=$VM_DIR/a/jail/save
ctl "{\"execute\":\"save\",\"arguments\":{\"dir\":\"$SAVE\"}}"
ctl '{"execute":"quit"}'
vm_wait_exit a 30
[ "$VM_STATUS" = 0 ] || fail "quit after the save: status $VM_STATUS"
disk_sum=$(sha256sum $DISK | cut -d' ' -f1)
vm_start b --memory 256M --disk path=$DISK,bus=scsi,serial=keel-scsi-1 --dvd $DVD/two.iso \
	--control /tmp/vscsi-b.sock --restore $SAVE
SOCK=/tmp/vscsi-b.sock VM=b
vm_run b 'echo restored-shell-ok' 60
printf '%s\n' "$VM_OUT" | grep -qx restored-shell-ok || fail "the restored guest's shell printed '$VM_OUT'"
ctl '{"execute":"dvd"}'
case "$CTL_OUT" in *'"medium":"/lab/dvd/two.iso"'*) ;; *) fail "the restored VM's drive: $CTL_OUT" ;; esac
dvd_files two
vm_run b 'dd if=/dev/sda bs=1M iflag=direct 2>/dev/null | sha256sum | cut -d" " -f1' 120
[ "$VM_OUT" = "$disk_sum" ] || fail "after the restore the SCSI disk reads $VM_OUT, the file is $disk_sum"
echo "lab: the restored VM has two.iso in its drive and reads it and its disk"
qos_field() { printf '%s' "$CTL_OUT" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
ctl '{"execute":"disk-qos","arguments":{"lun":0,"max_iops":20}}'
ios0=$(qos_field ios) thr0=$(qos_field throttled)
t0=$(_now)
vm_run b 'dd if=/dev/sda of=/dev/null bs=8k count=60 iflag=direct 2>&1 | tail -1' 300
t1=$(_now)
ctl '{"execute":"disk-qos","arguments":{"lun":0}}'
ios=$(($(qos_field ios) - ios0)) thr=$(($(qos_field throttled) - thr0))
echo "lab: 60 reads of 8 KiB at max_iops 20: $ios I/Os in about $((t1 - t0)) s, $thr waited; dd: $VM_OUT"
[ "$ios" -ge 60 ] || fail "the guest's 60 reads counted $ios I/Os"
[ "$thr" -gt 0 ] || fail "no read waited for LUN 0's limit of 20 I/Os per second"
[ "$ios" -le $((20 + 20 * (t1 - t0 + 1))) ] || fail "$ios I/Os in $((t1 - t0)) s with max_iops 20"
ctl '{"execute":"disk-qos","arguments":{"lun":0,"max_iops":0}}'
case "$CTL_OUT" in *'"max_iops":0'*'"waiting":0'*) ;; *) fail "lifting the limit: $CTL_OUT" ;; esac
vm_send b 'poweroff -f'
vm_wait_exit b 60
[ "$VM_STATUS" = 0 ] || fail "poweroff: status $VM_STATUS"
rm -rf $DISK
