# virtio-net on taps: two VMs on a bridge in the lab host ping each other and move 64 MiB
# over TCP with the same checksum at both ends; the second VM's MAC is the stable default.
# The second has 2 vCPUs, so its adapter has 2 queue pairs (multi-queue, docs/virtio.md): its
# driver negotiates MQ, enables both pairs (2 rx and 2 tx queues in the guest, 2 attached
# queues on the multi-queue tap), and 4 parallel TCP streams arrive whole; then (keel) it is
# saved with both pairs enabled and restored in a new keel-vmm, whose tap again has both
# queues attached, and 4 more parallel streams arrive whole. (keel) n2 is on keel-vmm's
# user-space data path (vhost=off; 76-vhost-net has the kernel's), one I/O thread per queue
# pair: its worker has threads vio-net-SS and vio-net-SS.1.
# A failed earlier attempt may have left the bridge and taps behind (the runner retries).
for l in kbr0 ktap1 ktap2; do ip link del "$l" 2>/dev/null; done
brctl addbr kbr0 || fail "cannot create bridge kbr0 (bridge module?)"
ip link set kbr0 up
vm_boot n1 --memory 320M --net tap=ktap1,mac=52:54:00:12:34:01
N2OPTS="--memory 320M --cpus 2 --net tap=ktap2"
ctl2=
[ "$LAB_VMM" = qemu ] || N2OPTS="$N2OPTS,vhost=off"
[ "$LAB_VMM" = qemu ] || ctl2="--control /tmp/n2.sock"
# shellcheck disable=SC2086
vm_boot n2 $N2OPTS $ctl2
brctl addif kbr0 ktap1 && brctl addif kbr0 ktap2 || fail "cannot put the taps on the bridge"
vm_run n1 'stty cols 1000; cat /sys/class/net/eth0/address'
[ "$VM_OUT" = 52:54:00:12:34:01 ] || fail "n1 has MAC '$VM_OUT', expected 52:54:00:12:34:01"
vm_run n2 'stty cols 1000; cat /sys/class/net/eth0/address'
case "$VM_OUT" in 52:54:00:*) ;; *) fail "n2 has MAC '$VM_OUT', expected the 52:54:00 default" ;; esac
mac2=$VM_OUT
vm_run n1 'ip addr add 10.9.0.1/24 dev eth0 && ip link set eth0 up && echo ok'
[ "$VM_OUT" = ok ] || fail "n1 eth0 set-up: $VM_OUT"
vm_run n2 'ip addr add 10.9.0.2/24 dev eth0 && ip link set eth0 up && echo ok'
[ "$VM_OUT" = ok ] || fail "n2 eth0 set-up: $VM_OUT"
# What Debian's virtio_net negotiated (one character per feature bit, bit 0 first): mergeable
# receive buffers (15), GUEST_CSUM (1), GUEST_TSO4/6 (7, 8), and CSUM, HOST_TSO4/6 (0, 11, 12).
for vm in n1 n2; do
	vm_run $vm 'cat /sys/class/net/eth0/device/features'
	echo "lab: $vm eth0 features $VM_OUT"
	for b in 0 1 7 8 11 12 15; do
		[ "${VM_OUT:$b:1}" = 1 ] || fail "$vm did not negotiate virtio-net feature bit $b: '$VM_OUT'"
	done
done
# Multi-queue on n2 (keel only: QEMU's device here has one pair): MQ (22) and the control
# queue (17) negotiated, two queue pairs in the guest, and both of the tap's queues attached
# (a tap's tx queues in sysfs are its attached queues; the pairs the driver does not use are
# detached).
if [ "$LAB_VMM" != qemu ]; then
	vm_run n2 'cat /sys/class/net/eth0/device/features'
	for b in 17 22; do
		[ "${VM_OUT:$b:1}" = 1 ] || fail "n2 did not negotiate virtio-net feature bit $b: '$VM_OUT'"
	done
	vm_run n2 'echo $(ls /sys/class/net/eth0/queues)'
	echo "lab: n2 eth0 queues: $VM_OUT"
	[ "$VM_OUT" = "rx-0 rx-1 tx-0 tx-1" ] || fail "n2 eth0 has queues '$VM_OUT', expected 2 rx and 2 tx"
	q=$(ls /sys/class/net/ktap2/queues | grep -c tx-)
	echo "lab: ktap2 has $q attached queues"
	[ "$q" = 2 ] || fail "ktap2 has $q attached queues, expected 2 (both pairs enabled)"
	grep -q "user-space data path (vhost=off)" "$VM_DIR/n2/out" ||
		fail "n2's log does not name the user-space path: $(grep -m3 -e vhost -e 'data path' "$VM_DIR/n2/out")"
	# One I/O thread per queue pair (docs/virtio.md): vio-net-SS and vio-net-SS.1.
	p2=$(cat "$VM_DIR/n2/vmm.pid")
	thr=$(cat /proc/"$p2"/task/*/comm 2>/dev/null | grep '^vio-net-' | sort | tr '\n' ' ')
	echo "lab: n2's virtio-net I/O threads: $thr"
	first=${thr%% *}
	[ "$thr" = "$first $first.1 " ] || fail "n2's worker has virtio-net threads '$thr', expected one per queue pair (vio-net-SS and vio-net-SS.1)"
fi
vm_run n1 'ping -c 3 -W 10 10.9.0.2 | grep -o "[0-9]* packets received"' 60
[ "$VM_OUT" = "3 packets received" ] || fail "ping n1 -> n2: '$VM_OUT'"
vm_run n2 "ip neigh | grep -c 10.9.0.1"
echo "lab: ping ok; n2's default MAC $mac2"

vm_run n1 'dd if=/dev/urandom of=/tmp/f bs=1M count=64 2>/dev/null; sha256sum /tmp/f | cut -c1-64' 300
sum1=$VM_OUT
vm_send n2 'nc -l -p 5000 | sha256sum | cut -c1-64 >/tmp/rx.sum &'
sleep 2
t0=$(_now)
vm_run n1 'nc -w 10 10.9.0.2 5000 </tmp/f; echo sent' 600
t1=$(_now)
i=0
while :; do
	vm_run n2 'cat /tmp/rx.sum 2>/dev/null'
	[ -z "$VM_OUT" ] || break
	i=$((i + 1))
	[ "$i" -le 60 ] || fail "n2 received nothing complete"
	sleep 2
done
[ "$VM_OUT" = "$sum1" ] || fail "64 MiB transfer: n2 received sha256 $VM_OUT, n1 sent $sum1"
echo "lab: 64 MiB n1 -> n2 in about $((t1 - t0)) s, sha256 $sum1 at both ends"

# Four parallel streams of 16 MiB each from n1 into VM $1 (its flows spread over its two
# queue pairs), each arriving with n1's sha256 ($sum4); $2 says when, for messages.
streams4() {
	vm_run "$1" 'rm -f /tmp/rx.500?; echo cleared' 30
	vm_send "$1" 'for p in 5001 5002 5003 5004; do (nc -l -p $p | sha256sum | cut -c1-64 >/tmp/rx.$p.tmp; mv /tmp/rx.$p.tmp /tmp/rx.$p) & done'
	sleep 2
	t0=$(_now)
	vm_run n1 'for p in 5001 5002 5003 5004; do (nc -w 10 10.9.0.2 $p </tmp/g; echo $? >/tmp/tx.$p) & done; wait; echo $(cat /tmp/tx.500?)' 600
	[ "$VM_OUT" = "0 0 0 0" ] || fail "4 parallel streams n1 -> $1 $2: nc exit statuses '$VM_OUT'"
	t1=$(_now)
	i=0
	while :; do
		vm_run "$1" 'cat /tmp/rx.5001 /tmp/rx.5002 /tmp/rx.5003 /tmp/rx.5004 2>/dev/null | wc -l'
		[ "$VM_OUT" != 4 ] || break
		i=$((i + 1))
		[ "$i" -le 60 ] || fail "$1 has $VM_OUT of 4 parallel streams complete $2"
		sleep 2
	done
	vm_run "$1" "cat /tmp/rx.500? | grep -c -v -x $sum4"
	[ "$VM_OUT" = 0 ] || fail "4 parallel streams $2: $VM_OUT arrived with a sha256 other than $sum4"
	vm_run "$1" 'echo $(grep -e input -e output /proc/interrupts | awk "{print \$NF, \$2 + \$3}")'
	echo "lab: 4 parallel streams of 16 MiB n1 -> $1 $2 in about $((t1 - t0)) s, all sha256 $sum4; its queue interrupts: $VM_OUT"
}
vm_run n1 'dd if=/tmp/f of=/tmp/g bs=1M count=16 2>/dev/null; sha256sum /tmp/g | cut -c1-64' 120
sum4=$VM_OUT
streams4 n2 "(2 queue pairs)"

# Saved with two pairs, restored with two (keel: docs/virtio.md, virtio-net's section 2).
if [ "$LAB_VMM" != qemu ]; then
	# The one directory the jailed worker may write (lab-jail gives it to its uid, as keeld
	# gives a worker its save directory); lab-jail passes the saved state to n2r as
	# descriptors.
	SAVE=$VM_DIR/n2/jail/save
	lab-vmmctl /tmp/n2.sock "{\"execute\":\"save\",\"arguments\":{\"dir\":\"$SAVE\"}}" >/tmp/ctl.out 2>&1 ||
		fail "save of n2: $(cat /tmp/ctl.out)"
	lab-vmmctl /tmp/n2.sock '{"execute":"quit"}' >/dev/null 2>&1
	vm_wait_exit n2 30
	# shellcheck disable=SC2086
	vm_start n2r $N2OPTS --control /tmp/n2r.sock --restore $SAVE
	i=0
	until ip link show ktap2 >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "the restored keel-vmm did not create ktap2 within 10 s"
		sleep 0.1
	done
	brctl addif kbr0 ktap2 || fail "cannot bridge the restored n2's ktap2"
	vm_run n2r 'echo restored-ok' 60
	printf '%s\n' "$VM_OUT" | grep -qx restored-ok || fail "the restored n2's shell printed '$VM_OUT'"
	q=$(ls /sys/class/net/ktap2/queues | grep -c tx-)
	[ "$q" = 2 ] || fail "the restored n2's ktap2 has $q attached queues, expected 2"
	streams4 n2r "after the restore"
	echo "lab: n2 saved with 2 queue pairs and restored with 2 (ktap2: $q attached queues)"
	n2=n2r
else
	n2=n2
fi
vm_send n1 'poweroff -f'
vm_send $n2 'poweroff -f'
vm_wait_exit n1 60
[ "$VM_STATUS" = 0 ] || fail "n1: poweroff -f ended the VMM with status $VM_STATUS, expected 0"
vm_wait_exit $n2 60
[ "$VM_STATUS" = 0 ] || fail "$n2: poweroff -f ended the VMM with status $VM_STATUS, expected 0"
brctl delbr kbr0 2>/dev/null
true
