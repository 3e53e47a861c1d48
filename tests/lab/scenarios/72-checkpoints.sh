# Checkpoints of a running Linux guest through keeld and keel (issue 6, docs/checkpoints.md).
# The VM's disk is a dynamic VHDX holding an ext2 file system. Before each of the checkpoints
# c1, c2 and c3 (taken while the guest runs) and once more after c3, the guest writes a new
# 1 MB file /mnt/f and notes its SHA-256. Then: deleting c2, the middle of the chain (its
# file is merged into c3's), while the VM runs leaves the guest's file as it was; applying c3
# and starting the VM brings back c3's file, read from the disk (page cache dropped), and so
# does applying c1 for c1's: the later checkpoint is intact after the merge, and apply
# reverts the file on disk. `keel disk check` passes on every file left.
keeld_start
D=$KD/disks
mkdir -p $D
keel disk create $D/ck.vhdx --size 64M --block-size 1M >/dev/null || fail "keel disk create failed"
keel vm create ck --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
	--cpus 1 --memory 256M --disk $D/ck.vhdx || fail "keel vm create failed"
keel vm start ck || fail "keel vm start failed: $(keel vm log ck | tail -3)"
keel_console_wait ck "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
keel_run ck 'stty cols 4096; mke2fs /dev/vda >/dev/null 2>&1 && mkdir -p /mnt && mount -t ext2 /dev/vda /mnt && echo mounted' 120
[ "$KEEL_OUT" = mounted ] || fail "mke2fs/mount on /dev/vda: $KEEL_OUT"

put() { # a new /mnt/f, synced; SUM: its SHA-256
	keel_run ck 'head -c 1000000 /dev/urandom >/mnt/f && sync && sha256sum /mnt/f | cut -c1-64' 120
	SUM=$KEEL_OUT
	[ ${#SUM} = 64 ] || fail "writing /mnt/f: $SUM"
}

expect() { # expect SUM WHAT: /mnt/f, read from the disk, has SUM
	keel_run ck 'echo 3 >/proc/sys/vm/drop_caches; sha256sum /mnt/f | cut -c1-64' 120
	[ "$KEEL_OUT" = "$1" ] || fail "$2: /mnt/f reads $KEEL_OUT, expected $1"
}

checkpoint() { # checkpoint NAME: of the running VM, which carries on
	t0=$(_now)
	keel checkpoint create ck --name "$1" >$KD/ck.out 2>&1 || fail "checkpoint create $1: $(cat $KD/ck.out)"
	[ "$(vm_state ck)" = Running ] || fail "ck is $(vm_state ck) after checkpoint $1"
	echo "lab: checkpoint $1 of the running VM in about $(($(_now) - t0)) s"
}

put && s1=$SUM && checkpoint c1
put && s2=$SUM && checkpoint c2
put && s3=$SUM && checkpoint c3
put && s4=$SUM
expect "$s4" "after three checkpoints"
keel checkpoint list ck

keel checkpoint delete ck c2 >$KD/ck.out 2>&1 || fail "checkpoint delete c2: $(cat $KD/ck.out)"
[ "$(vm_state ck)" = Running ] || fail "ck is $(vm_state ck) after deleting c2"
keel checkpoint list ck --json | grep -q '"c2"' && fail "c2 is still listed after its delete"
expect "$s4" "the running VM after deleting c2"
echo "lab: deleted c2 (middle of the chain) while the VM ran; its data is intact"

applied() { # applied NAME SUM: apply NAME, start, the guest carries on with NAME's file
	keel checkpoint apply ck "$1" >$KD/ck.out 2>&1 || fail "checkpoint apply $1: $(cat $KD/ck.out)"
	[ "$(vm_state ck)" = Saved ] || fail "ck is $(vm_state ck) after applying $1, expected Saved"
	keel vm start ck || fail "keel vm start after applying $1: $(keel vm log ck | tail -3)"
	expect "$2" "after applying $1"
	echo "lab: applied $1: /mnt/f on disk is $1's again"
}
applied c3 "$s3"
applied c1 "$s1"
keel vm turn-off ck || fail "keel vm turn-off failed"
for f in $D/*; do
	keel disk check "$f" >$KD/check.out 2>&1 || fail "keel disk check $f: $(cat $KD/check.out)"
done
echo "lab: keel disk check passes on $(ls $D | wc -l) files: $(ls $D | tr '\n' ' ')"
kill "$(cat "$KD/pid")"
