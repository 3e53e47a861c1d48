# virtio-net's kernel data path (issue 16, docs/virtio.md "vhost-net"): two guests on one
# bridge, v1 on vhost-net (vhost=on) and v2 on keel-vmm's user-space path (vhost=off), each
# worker saying in its log which path serves it. 64 MiB go each way over TCP with the same
# sha256 at both ends; v1 is paused and resumed in the middle of a transfer (the kernel gives
# the rings back and takes them again at the same indexes). Then v1 is saved and restored on
# the user-space path, and that one saved and restored on vhost-net again (one saved-state
# format for both paths); after each restore 8 MiB go each way, checksums matching. First,
# lab-vhost-net checks the kernel path's dirty log, interrupts and indexes on a fake machine.
# Last, v3 (2 vCPUs) on vhost-net has 2 queue pairs, a vhost-net each, both enabled.
[ -c /dev/vhost-net ] || fail "the lab host has no /dev/vhost-net (tests/lab/host/modules: vhost_net)"
command -v lab-vmmctl >/dev/null || fail "lab-vmmctl is not in the lab (tests/lab/vmmctl.c)"
# The data path on the fake machine first (tests/unit/lab_vhost_net.c): a receive written by
# the kernel into guest RAM with its page's bit in the dirty log, the irqfd and the masked
# vector's pending bit, a pause's indexes, a save and restore, the resume.
command -v lab-vhost-net >/dev/null || fail "lab-vhost-net is not in the lab (make builds build/tests/unit/lab-vhost-net)"
ip link del kvh0 2>/dev/null
v6=$(cat /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null)
[ -z "$v6" ] || echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
lab-vhost-net kvh0 >/tmp/vhost-net.out 2>&1
st=$?
[ -z "$v6" ] || echo "$v6" >/proc/sys/net/ipv6/conf/default/disable_ipv6
sed 's/^/lab: /' /tmp/vhost-net.out
[ $st = 0 ] || fail "lab-vhost-net: exit $st"
for l in kbr75 ktap751 ktap752 ktap753; do ip link del "$l" 2>/dev/null; done
brctl addbr kbr75 && ip link set kbr75 address 02:00:00:00:75:01 && ip link set kbr75 up ||
	fail "cannot create bridge kbr75"
OPTS1="--memory 320M --control /tmp/v1.sock"

bridge_tap() { vm_bridge_tap kbr75 "$1"; } # bridge_tap TAP: the VMM opened it

ctl() { # ctl SOCKET REQUEST: one control request that must succeed
	lab-vmmctl "$1" "$2" >/tmp/ctl75.out 2>&1 ||
		fail "control request $2 on $1 failed: $(cat /tmp/ctl75.out)"
}

path_is() { # VM WORDS: the worker's log says which data path serves its adapter
	grep -q "$2" "$VM_DIR/$1/out" || fail "$1's log does not say '$2': $(grep -m3 -e vhost -e 'data path' "$VM_DIR/$1/out")"
	echo "lab: $1: $(grep -m1 "$2" "$VM_DIR/$1/out" | tr -d '\r')"
}

# received FROM TO MIB SUM: TO's listener got all of it, with sha256 SUM.
received() {
	_j=0
	while :; do
		vm_run "$2" 'cat /tmp/rx.sum 2>/dev/null || echo none'
		[ "$VM_OUT" = none ] || break
		_j=$((_j + 1))
		[ $_j -le 30 ] || fail "$2 has no checksum of the $3 MiB from $1 after a minute"
		sleep 2
	done
	[ "$VM_OUT" = "$4" ] || fail "$3 MiB from $1 to $2: sent sha256 $4, received $VM_OUT"
}

# transfer FROM TO TOIP MIB: FROM sends MIB MiB of random data to TO over TCP; both sha256s
# must match.
transfer() {
	vm_run "$1" "dd if=/dev/urandom of=/tmp/f bs=1M count=$4 2>/dev/null; sha256sum /tmp/f | cut -c1-64" 300
	_sum=$VM_OUT
	[ ${#_sum} = 64 ] || fail "$1: making the file: $_sum"
	vm_send "$2" 'rm -f /tmp/rx.sum; nc -l -p 5075 | sha256sum | cut -c1-64 >/tmp/rx.part && mv /tmp/rx.part /tmp/rx.sum &'
	sleep 2
	_t0=$(_now)
	vm_run "$1" "timeout 900 nc -w 20 $3 5075 </tmp/f; echo sent \$?" 1000
	[ "$VM_OUT" = "sent 0" ] || fail "$4 MiB from $1 to $2: $VM_OUT"
	received "$1" "$2" "$4" "$_sum"
	echo "lab: $4 MiB from $1 to $2 in $(($(_now) - _t0)) s, sha256 $_sum at both ends"
}

ip_up() { # VM ADDR
	vm_run "$1" "ip addr add $2/24 dev eth0 && ip link set eth0 up && echo ok"
	[ "$VM_OUT" = ok ] || fail "$1 eth0 set-up: $VM_OUT"
}

# shellcheck disable=SC2086
vm_boot v1 $OPTS1 --net tap=ktap751,mac=52:54:00:75:00:01,vhost=on
vm_boot v2 --memory 320M --net tap=ktap752,mac=52:54:00:75:00:02,vhost=off
bridge_tap ktap751
bridge_tap ktap752
path_is v1 "vhost-net: the host kernel's data path serves the adapter"
path_is v2 "user-space data path (vhost=off)"
ip_up v1 10.75.0.1
ip_up v2 10.75.0.2
vm_run v1 'ping -c 3 -W 10 10.75.0.2 | grep -o "[0-9]* packets received"' 60
[ "$VM_OUT" = "3 packets received" ] || fail "ping v1 -> v2: '$VM_OUT'"
# What v1's driver negotiated on vhost-net: mergeable buffers (15) and the offloads, as on
# the user-space path (tests/lab/scenarios/62-virtio-net.sh).
vm_run v1 'cat /sys/class/net/eth0/device/features'
for b in 0 1 7 8 11 12 15; do
	[ "${VM_OUT:$b:1}" = 1 ] || fail "v1 did not negotiate virtio-net feature bit $b: '$VM_OUT'"
done

transfer v1 v2 10.75.0.2 64
# v2 to v1, with v1 paused and resumed twice while the data flows.
vm_run v2 "dd if=/dev/urandom of=/tmp/f bs=1M count=64 2>/dev/null; sha256sum /tmp/f | cut -c1-64" 300
sum=$VM_OUT
vm_send v1 'rm -f /tmp/rx.sum; nc -l -p 5075 | sha256sum | cut -c1-64 >/tmp/rx.part && mv /tmp/rx.part /tmp/rx.sum &'
sleep 2
vm_send v2 'timeout 900 nc -w 30 10.75.0.1 5075 </tmp/f; echo "sent-$?-done"'
for k in 1 2; do
	sleep 4
	ctl /tmp/v1.sock '{"execute":"pause"}'
	sleep 2
	ctl /tmp/v1.sock '{"execute":"resume"}'
	echo "lab: v1 paused and resumed during the transfer ($k)"
done
vm_wait v2 '^sent-[0-9]+-done' 1000
[ "$VM_LINE" = "sent-0-done" ] || fail "64 MiB from v2 to v1 across pauses: $VM_LINE"
received v2 v1 64 "$sum"
echo "lab: 64 MiB from v2 to v1 across two pauses of v1, sha256 $sum at both ends"

# Saved on vhost-net, restored on the user-space path, saved again, restored on vhost-net.
prev=v1
for step in "v1u off" "v1v on"; do
	set -- $step
	# The one directory the jailed worker may write (lab-jail gives it to the worker's uid),
	# as keeld gives a worker its save directory; lab-jail passes the saved state to the
	# restored worker as descriptors.
	save=$VM_DIR/$prev/jail/save
	ctl /tmp/$prev.sock "{\"execute\":\"save\",\"arguments\":{\"dir\":\"$save\"}}"
	ctl /tmp/$prev.sock '{"execute":"quit"}'
	vm_wait_exit $prev 30
	[ "$VM_STATUS" = 0 ] || fail "quit after save: $prev exited with $VM_STATUS"
	# shellcheck disable=SC2086
	vm_start $1 --memory 320M --control /tmp/$1.sock --restore "$save" \
		--net tap=ktap751,mac=52:54:00:75:00:01,vhost=$2
	bridge_tap ktap751
	vm_run $1 'echo restored-ok' 60
	printf '%s\n' "$VM_OUT" | grep -qx restored-ok || fail "$1's shell after the restore: '$VM_OUT'"
	if [ $2 = on ]; then
		path_is $1 "vhost-net: the host kernel's data path serves the adapter"
	else
		path_is $1 "user-space data path (vhost=off)"
	fi
	transfer v2 $1 10.75.0.1 8
	transfer $1 v2 10.75.0.2 8
	prev=$1
done
# Multi-queue on vhost-net: a 2-vCPU guest's adapter has 2 queue pairs, one vhost-net each
# (its backend the tap's queue of the same number); the driver enables both, so both of the
# tap's queues are attached, and data flows both ways.
vm_boot v3 --memory 320M --cpus 2 --net tap=ktap753,mac=52:54:00:75:00:03,vhost=on
bridge_tap ktap753
path_is v3 "vhost-net: the host kernel's data path serves the adapter (2 queue pairs, one vhost-net each)"
vm_run v3 'echo $(ls /sys/class/net/eth0/queues)'
[ "$VM_OUT" = "rx-0 rx-1 tx-0 tx-1" ] || fail "v3 eth0 has queues '$VM_OUT', expected 2 rx and 2 tx"
q=$(ls /sys/class/net/ktap753/queues | grep -c tx-)
echo "lab: v3 eth0 queues rx-0 rx-1 tx-0 tx-1; ktap753 has $q attached queues"
[ "$q" = 2 ] || fail "ktap753 has $q attached queues, expected 2 (both pairs enabled on vhost-net)"
ip_up v3 10.75.0.3
transfer v2 v3 10.75.0.3 8
transfer v3 v2 10.75.0.2 8
for v in $prev v2 v3; do vm_send $v 'poweroff -f'; done
for v in $prev v2 v3; do vm_wait_exit $v 60; done
brctl delbr kbr75 2>/dev/null
true
