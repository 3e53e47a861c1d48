# Guest-visible device addresses never move (issue 9, docs/vm-config.md): a keeld VM with one
# network adapter is started, two disks are added in front of it, and in the real guest the
# adapter keeps its name, its PCI address (what udev's enp0sN name comes from) and its MAC;
# the new disks appear. Then a disk whose path has a comma and "path=" in it reaches the
# guest as that file (its size proves which file the worker opened). Then the two disks are
# reordered, and one is removed: each time the adapter keeps its name, address and MAC, and
# the remaining disks keep their PCI addresses (compared by size: the guest renames vdb to
# vda after a removal whatever its address).
keeld_start
ip link del kst0 2>/dev/null
# Each disk's name, size, read-only flag and PCI address (by size, the address must not move:
# Linux names the disks in probe order, vda after a removal whatever its slot).
disk_info='for b in /sys/block/vd*; do echo "disk $(basename $b) $(cat $b/size) $(cat $b/ro) $(basename $(readlink -f $b/device/..))"; done'
nic_info='for n in /sys/class/net/eth*; do echo "nic $(basename $n) $(basename $(readlink -f $n/device/..)) $(cat $n/address)"; done'
keel vm create st1 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
	--cpus 1 --memory 256M --net kst0 || fail "keel vm create failed"
keel vm start st1 || fail "keel vm start failed: $(keel vm log st1 | tail -3)"
keel_console_wait st1 "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
keel_run st1 "$nic_info"
before=$(echo "$KEEL_OUT" | grep '^nic ')
case "$before" in
"nic eth0 0000:00:01.0 02:"*) ;; # the adapter takes slot 1, the first free one
*) fail "the guest's adapter is '$before', expected eth0 at 0000:00:01.0 with keeld's 02: MAC" ;;
esac
echo "lab: stable devices: before: $before"
keel vm turn-off st1 || fail "turn-off failed"

mkdir -p "$VM_DIR/d,readonly=on,path=$VM_DIR"
truncate -s 64M "$VM_DIR/a.img"
truncate -s 96M "$VM_DIR/d,readonly=on,path=$VM_DIR/b.img"
truncate -s 32M "$VM_DIR/b.img" # what an option splitter would have opened instead
# Private, as keel disk create makes disks: keeld refuses a disk a VM writes that every user
# may read (docs/security.md).
chmod 600 "$VM_DIR/a.img" "$VM_DIR/d,readonly=on,path=$VM_DIR/b.img" "$VM_DIR/b.img"
keel vm set st1 --disk "$VM_DIR/a.img" --disk "$VM_DIR/d,readonly=on,path=$VM_DIR/b.img" ||
	fail "keel vm set --disk failed"
keel vm start st1 || fail "second start failed: $(keel vm log st1 | tail -3)"
keel_console_wait st1 "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
keel_run st1 "$nic_info"
after=$(echo "$KEEL_OUT" | grep '^nic ')
[ "$after" = "$before" ] ||
	fail "the adapter moved after adding disks: before '$before', after '$after'"
keel_run st1 "$disk_info"
disks=$(echo "$KEEL_OUT" | grep '^disk ' | cut -d' ' -f1-4 | sort | tr '\n' ' ')
addrs=$(echo "$KEEL_OUT" | grep '^disk ' | cut -d' ' -f3,5 | sort)
# 512-byte sectors: 64 MiB = 131072, 96 MiB = 196608, writable.
[ "$disks" = "disk vda 131072 0 disk vdb 196608 0 " ] ||
	fail "the guest's disks are '$disks', expected vda 64 MiB and vdb 96 MiB (the comma path), both writable"
addrs0=$addrs
case "$(echo "$addrs0" | cut -d' ' -f2 | sort -u | wc -l) $addrs0" in
"2 131072 0000:00:"*) ;;
*) fail "the guest's disks have PCI addresses '$addrs0', expected two different ones" ;;
esac
echo "lab: stable devices: after adding two disks: $after; $disks; $(echo $addrs0)"
keel vm turn-off st1 || fail "turn-off after adding disks failed"

# Reorder the two disks in the list: each keeps its slot, so the guest sees the same vda and
# vdb, and the adapter stays.
keel vm set st1 --disk "$VM_DIR/d,readonly=on,path=$VM_DIR/b.img" --disk "$VM_DIR/a.img" ||
	fail "keel vm set (reordered disks) failed"
keel vm start st1 || fail "start after reordering failed: $(keel vm log st1 | tail -3)"
keel_console_wait st1 "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
keel_run st1 "$nic_info"
after=$(echo "$KEEL_OUT" | grep '^nic ')
[ "$after" = "$before" ] ||
	fail "the adapter moved after reordering the disks: before '$before', after '$after'"
keel_run st1 "$disk_info"
disks=$(echo "$KEEL_OUT" | grep '^disk ' | cut -d' ' -f1-4 | sort | tr '\n' ' ')
addrs=$(echo "$KEEL_OUT" | grep '^disk ' | cut -d' ' -f3,5 | sort)
[ "$disks" = "disk vda 131072 0 disk vdb 196608 0 " ] ||
	fail "after reordering, the guest's disks are '$disks', expected the same vda 64 MiB and vdb 96 MiB"
[ "$addrs" = "$addrs0" ] ||
	fail "a disk moved after reordering: PCI addresses by size were '$(echo $addrs0)', now '$(echo $addrs)'"
echo "lab: stable devices: after reordering the disks: $after; $disks; $(echo $addrs)"
keel vm turn-off st1 || fail "turn-off after reordering failed"

# Remove the first disk (64 MiB, the lower slot): the 96 MiB one is now the guest's only
# disk, and the adapter still keeps its name, address and MAC.
keel vm set st1 --disk "$VM_DIR/d,readonly=on,path=$VM_DIR/b.img" ||
	fail "keel vm set (one disk removed) failed"
keel vm start st1 || fail "start after removing a disk failed: $(keel vm log st1 | tail -3)"
keel_console_wait st1 "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
keel_run st1 "$nic_info"
after=$(echo "$KEEL_OUT" | grep '^nic ')
[ "$after" = "$before" ] ||
	fail "the adapter moved after removing a disk: before '$before', after '$after'"
keel_run st1 "$disk_info"
disks=$(echo "$KEEL_OUT" | grep '^disk ' | cut -d' ' -f1-4 | sort | tr '\n' ' ')
addrs=$(echo "$KEEL_OUT" | grep '^disk ' | cut -d' ' -f3,5 | sort)
[ "$disks" = "disk vda 196608 0 " ] ||
	fail "after removing the 64 MiB disk, the guest's disks are '$disks', expected only the 96 MiB one"
[ "$addrs" = "$(echo "$addrs0" | grep '^196608 ')" ] ||
	fail "the remaining 96 MiB disk moved after removing the other: its PCI address was '$(echo "$addrs0" | grep '^196608 ')', now '$addrs'"
echo "lab: stable devices: after removing a disk: $after; $disks; $addrs"
keel vm turn-off st1 || fail "last turn-off failed"
ip link del kst0 2>/dev/null
true
