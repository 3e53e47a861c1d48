# Saved state (issue 6, docs/state.md) with a real Linux guest. A shell loop prints a counter
# and the guest's uptime twice a second. Pause stops the counter and resume continues it;
# `save` over the control socket writes the VM to a directory and leaves it paused; the
# worker quits; a new keel-vmm started with --restore carries on: the next line is the next
# number, the guest's clock moves on from where it was (not back, not far ahead), and the
# shell still answers. The VM has its virtio devices (issue 6): virtio-rng gives bytes and a
# file written to an ext2 file system on a virtio-blk disk before the save reads back after
# the restore, where another file is written, synced and read back after a remount; its
# virtio-net, on a tap bridged to the lab host, pings the lab host before the save and after
# the restore (the restored worker opens the tap again and the lab bridges it again).
# Both workers run jailed (api.sh, vm_start): VM a saves into the one directory its uid may
# write, $VM_DIR/a/jail/save (as keeld gives a worker its save directory), and lab-jail
# passes VM b the saved state as descriptors (--fd state, --fd memory) for --restore.
command -v lab-vmmctl >/dev/null || fail "lab-vmmctl is not in the lab (tests/lab/vmmctl.c)"
SAVE=$VM_DIR/a/jail/save
DISK=/tmp/save-disk.raw
dd if=/dev/zero of=$DISK bs=1M count=32 2>/dev/null || fail "cannot create the disk file"
OPTS="--cpus 1 --memory 256M --disk path=$DISK --net tap=ktap70"
for l in kbr70 ktap70; do ip link del "$l" 2>/dev/null; done
# The bridge gets a fixed MAC: by default a Linux bridge takes the lowest MAC of its ports,
# so replacing its only port (the restored worker's new tap) would change the lab host's
# MAC under the guest's ARP cache, and its pings would go nowhere until the entry expired.
brctl addbr kbr70 && ip link set kbr70 address 02:00:00:00:70:01 &&
	ip addr add 10.70.0.1/24 dev kbr70 && ip link set kbr70 up ||
	fail "cannot create bridge kbr70 with 10.70.0.1"

bridge_tap() { # lab-jail opened ktap70 for the worker: put it on the bridge
	_i=0
	until ip link show ktap70 >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || fail "ktap70 did not appear within 10 s"
		sleep 0.1
	done
	brctl addif kbr70 ktap70 && ip link set ktap70 up || fail "cannot bridge ktap70"
}

ping_host() { # ping_host VM WHEN: the guest reaches the lab host over virtio-net
	vm_run "$1" 'ping -c 3 -W 10 10.70.0.1 | grep -o "[0-9]* packets received"' 60
	case "$VM_OUT" in *"3 packets received"*) ;; *) fail "ping from $1 $2: '$VM_OUT'" ;; esac
	echo "lab: $1 pings the lab host $2"
}

ctl() { # ctl VM REQUEST: one control request that must succeed
	lab-vmmctl "/tmp/$1.sock" "$2" >/tmp/ctl.out 2>&1 ||
		fail "control request $2 to VM $1 failed: $(cat /tmp/ctl.out)"
	echo "lab: $1 <- $2: $(cat /tmp/ctl.out)"
}

run_b() { # vm_run on VM b, without the lines of the counter running in the background
	vm_run b "$@"
	VM_OUT=$(printf '%s\n' "$VM_OUT" | grep -v '^count [0-9]')
}

last_count() { # the highest counter VM $1 printed so far
	tr -d '\r' <"$VM_DIR/$1/out" | sed -n 's/^count \([0-9][0-9]*\) .*/\1/p' | tail -n 1
}

# shellcheck disable=SC2086
vm_boot a $OPTS --control /tmp/a.sock
bridge_tap
vm_run a 'ip addr add 10.70.0.2/24 dev eth0 && ip link set eth0 up && echo ok'
[ "$VM_OUT" = ok ] || fail "eth0 set-up: $VM_OUT"
ping_host a "before the save"
vm_run a 'mke2fs /dev/vda >/dev/null 2>&1 && mkdir -p /mnt && mount -t ext2 /dev/vda /mnt && echo mounted' 120
[ "$VM_OUT" = mounted ] || fail "mke2fs/mount on /dev/vda: $VM_OUT"
vm_run a 'head -c 300000 /dev/urandom >/mnt/before && sync && sha256sum /mnt/before | cut -d" " -f1' 120
sum_before=$VM_OUT
[ ${#sum_before} = 64 ] || fail "writing /mnt/before: $sum_before"
vm_run a 'dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c'
[ "$VM_OUT" = 32 ] || fail "/dev/hwrng before the save gave '$VM_OUT' bytes"
vm_send a 'i=0; while :; do i=$((i+1)); read u x </proc/uptime; echo "count $i $u"; sleep 0.5; done &'
vm_wait a '^count 3 ' 60

# Pause stops the counter, resume continues it.
ctl a '{"execute":"pause"}'
sleep 1
n=$(last_count a)
sleep 3
[ "$(last_count a)" = "$n" ] || fail "the counter went from $n to $(last_count a) while paused"
ctl a '{"execute":"resume"}'
vm_wait a "^count $((n + 1)) " 30
vm_wait a "^count $((n + 3)) " 30

# Save: the VM is paused and stays paused; then the worker quits (Save-VM).
t0=$(_now)
ctl a "{\"execute\":\"save\",\"arguments\":{\"dir\":\"$SAVE\"}}"
echo "lab: save took about $(($(_now) - t0)) s; $(ls -ls $SAVE | tr '\n' ' ')"
lab-vmmctl /tmp/a.sock '{"execute":"status"}' | grep -q '"paused"' || fail "VM a is not paused after save"
sleep 1
n=$(last_count a)
up=$(tr -d '\r' <"$VM_DIR/a/out" | sed -n "s/^count $n \([0-9.]*\).*/\1/p" | tail -n 1)
[ -n "$n" ] && [ -n "$up" ] || fail "no counter line before the save"
ctl a '{"execute":"quit"}'
vm_wait_exit a 30
[ "$VM_STATUS" = 0 ] || fail "quit after save: keel-vmm exited with $VM_STATUS"

# Restore in a new keel-vmm: it carries on from the next number. The console of the saved
# run and of the restored run, joined, hold every number once and in order (a line cut by
# the save is completed by the restored VM).
# shellcheck disable=SC2086
vm_start b $OPTS --control /tmp/b.sock --restore $SAVE
bridge_tap
vm_wait b "^count [0-9]+ " 60
echo "lab: restored VM printed: $VM_LINE (saved after count $n at uptime $up)"
vm_wait b "^count [0-9]+ " 30
vm_wait b "^count [0-9]+ " 30
cat "$VM_DIR/a/out" "$VM_DIR/b/out" | tr -d '\r' | sed -n 's/^count \([0-9][0-9]*\) .*/\1/p' |
	awk 'NR > 1 && $1 != prev + 1 { print "after " prev " came " $1; bad = 1 } { prev = $1 }
	     END { exit bad }' >/tmp/seq.out || fail "counter lines across save and restore: $(cat /tmp/seq.out)"
first=$(tr -d '\r' <"$VM_DIR/b/out" | sed -n 's/^count \([0-9][0-9]*\) .*/\1/p' | head -n 1)
up2=$(tr -d '\r' <"$VM_DIR/b/out" | sed -n "s/^count $first \([0-9.]*\).*/\1/p" | head -n 1)
[ "$first" -le $((n + 2)) ] || fail "the restored VM's first full counter line is $first, saved after $n"
# The guest's clock carries on from the save: later than the saved uptime, by less than 30 s.
awk -v a="$up" -v b="$up2" 'BEGIN { exit !(b > a && b - a < 30) }' ||
	fail "guest uptime went from $up (count $n, before the save) to $up2 (count $first, restored)"
echo "lab: counter $n -> $first, guest uptime $up -> $up2"
vm_run b 'echo restored-shell-ok'
printf '%s\n' "$VM_OUT" | grep -qx restored-shell-ok || fail "the restored guest's shell printed '$VM_OUT'"
# The virtio devices carry on: virtio-rng, and the disk read and written through the same
# queues as before the save.
# The counter has done its part: stop it, so its lines no longer mix with the output below.
run_b 'kill %1 2>/dev/null || kill $!; sleep 1; echo stopped' 60
run_b 'dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c' 60
[ "$VM_OUT" = 256 ] || fail "/dev/hwrng after the restore gave '$VM_OUT' bytes, expected 256"
run_b 'echo 3 >/proc/sys/vm/drop_caches; sha256sum /mnt/before | cut -d" " -f1' 120
[ "$VM_OUT" = "$sum_before" ] || fail "/mnt/before reads back $VM_OUT after the restore, was $sum_before"
run_b 'head -c 200000 /dev/urandom >/mnt/after && sync && sha256sum /mnt/after | cut -d" " -f1' 120
sum_after=$VM_OUT
[ ${#sum_after} = 64 ] || fail "writing /mnt/after: $sum_after"
run_b 'umount /mnt && mount -t ext2 /dev/vda /mnt && cd /mnt && sha256sum before after | cut -d" " -f1; cd /' 120
[ "$(echo $VM_OUT)" = "$sum_before $sum_after" ] || fail "after a remount: '$(echo $VM_OUT)', expected '$sum_before $sum_after'"
echo "lab: virtio-rng and virtio-blk work after the restore (file written before the save read back, another written and read after a remount)"
ping_host b "after the restore"
run_b 'umount /mnt && echo unmounted' 60
[ "$VM_OUT" = unmounted ] || fail "umount after the restore: $VM_OUT"
vm_send b 'poweroff -f'
vm_wait_exit b 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f after restore: keel-vmm exited with $VM_STATUS"
