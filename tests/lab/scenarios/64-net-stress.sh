# TCP streams into guests, over and over (issue 15): n1 sends a 64 MiB file over TCP to n2
# (1 vCPU) and to n3 (2 vCPUs), N times each, through a bridge in the lab host; every
# transfer must arrive whole (sha256) and no guest may crash. Heavy receive traffic is what
# exposed a fault of the lab's outer QEMU that killed nested guests (docs/lab.md, "Guest
# crashes under network load"); this scenario is its regression test.
#
# Knobs on the lab's kernel command line (LAB_ARGS="..." tests/lab/run.sh):
#   keel.stress_n=N      transfers per receiver (default 4: the suite's short run; the
#                        loop of issue 15 is 50 or more)
#   keel.stress_mib=M    size of each transfer (default 16)
#   keel.qnet=,OPTS      with LAB_VMM=qemu: virtio-net-pci options, for example
#                        ,mrg_rxbuf=off,guest_tso4=off,guest_tso6=off,guest_csum=off
#                        to give QEMU's device keel's receive features
# While it runs, the lab host records KVM's trace events; when a guest crashes the scenario
# freezes the trace, names the guest's RIP and prints the events that led to it.
N=4 MIB=16
for w in $(cat /proc/cmdline); do
	case $w in
	keel.stress_n=*) N=${w#*=} ;;
	keel.stress_mib=*) MIB=${w#*=} ;;
	keel.qnet=*) export QEMU_NET_OPTS="${w#*=}" ;;
	esac
done

T=/sys/kernel/tracing
mount -t tracefs tracefs $T 2>/dev/null
if [ -w $T/tracing_on ]; then
	echo 0 >$T/tracing_on
	echo 16384 >$T/buffer_size_kb
	: >$T/trace
	for e in kvm_exit kvm_entry kvm_inj_exception kvm_inj_virq kvm_msi_set_irq \
		kvm_apic_accept_irq kvm_mmio kvm_msr kvm_page_fault; do
		echo 1 >$T/events/kvm/$e/enable
	done
	echo 1 >$T/tracing_on
else
	echo "lab: no tracefs in the lab host: a crash will not be traced"
fi

# A guest crashed: keel-vmm reported it and exited, the guest panicked (panic=0 keeps it
# halted), or (QEMU, which resets a guest that triple-faults) the guest booted a second time.
crashed() { # VM
	[ -e $VM_DIR/$1/out ] || return 1
	{ [ -e $VM_DIR/$1/status ] && [ "$(cat $VM_DIR/$1/status)" != 0 ]; } ||
		grep -q -e 'Kernel panic' -e 'double fault' $VM_DIR/$1/out ||
		[ "$(grep -c "$GUEST_MARKER" $VM_DIR/$1/out)" -gt 1 ]
}
any_crashed() {
	for v in n1 n2 n3; do
		crashed $v && echo $v && return
	done
}
# Freeze the trace at the first crash, before the trace buffer wraps.
(
	while sleep 0.5; do
		[ -z "$(any_crashed)" ] || { echo 0 >$T/tracing_on 2>/dev/null; break; }
	done
) &
watcher=$!

for l in kbr0 ktap1 ktap2 ktap3; do ip link del "$l" 2>/dev/null; done
brctl addbr kbr0 || fail "cannot create bridge kbr0 (bridge module?)"
ip link set kbr0 up
args="--cmdline '$GUEST_CMDLINE panic=0' --memory 320M"
# keel-vmm's control sockets: a stalled transfer asks them for the devices' state.
ctl() { [ "$LAB_VMM" = qemu ] || echo "--control /tmp/$1.ctl"; }
eval vm_boot n1 $args $(ctl n1) --net tap=ktap1,mac=52:54:00:12:34:01
eval vm_boot n2 $args $(ctl n2) --net tap=ktap2,mac=52:54:00:12:34:02
eval vm_boot n3 $args $(ctl n3) --cpus 2 --net tap=ktap3,mac=52:54:00:12:34:03
for t in ktap1 ktap2 ktap3; do
	brctl addif kbr0 $t || fail "cannot put $t on the bridge"
	ip link set $t up # keel-vmm brings its tap up, QEMU (LAB_VMM=qemu) does not
done
n=1
for v in n1 n2 n3; do
	vm_run $v "grep -w _text /proc/kallsyms | cut -c1-16"
	eval text_$v=$VM_OUT
	vm_run $v "ip addr add 10.9.0.$n/24 dev eth0 && ip link set eth0 up && echo ok"
	[ "$VM_OUT" = ok ] || fail "$v eth0 set-up: $VM_OUT"
	n=$((n + 1))
done
vm_run n1 'ping -c 2 -W 10 10.9.0.2 >/dev/null && ping -c 2 -W 10 10.9.0.3 >/dev/null && echo ok' 60
[ "$VM_OUT" = ok ] || fail "n1 cannot ping n2 and n3: $VM_OUT"
vm_run n1 "dd if=/dev/urandom of=/tmp/f bs=1M count=$MIB 2>/dev/null; sha256sum /tmp/f | cut -c1-64" 300
sum=$VM_OUT
for v in n2 n3; do
	vm_send $v 'while :; do nc -l -p 5000 | sha256sum | cut -c1-64 >>/tmp/rx.sum; done &'
done
sleep 2

# Name the crashed guest's RIP (from its panic, or from the host's kvm_exit of a triple fault)
# with a live guest's /proc/kallsyms (same kernel, another KASLR offset) and print the KVM
# events before the first one at that RIP.
explain_crash() { # VM
	d=$1 alive=n1 addr=
	[ $d != n1 ] || alive=n2
	eval tdead=\$text_$d talive=\$text_$alive
	echo 0 >$T/tracing_on 2>/dev/null
	# The end of the trace only: busybox's grep over all of it takes minutes.
	tail -n 30000 $T/trace >/tmp/trace.tail 2>/dev/null
	echo "lab: $d crashed: $(grep -m1 -e 'VM crashed' -e 'RIP: ' -e 'Kernel panic' $VM_DIR/$d/out)"
	sym=$(grep -m1 'RIP: 0010:' $VM_DIR/$d/out | sed 's/.*RIP: 0010:\([^+]*\)+\(0x[0-9a-f]*\).*/\1 \2/')
	if [ -n "$sym" ]; then
		set -- $sym
		vm_run $alive "grep -w $1 /proc/kallsyms | head -1 | cut -c1-16"
		addr=$(printf '%x' $((0x$VM_OUT - 0x$talive + 0x$tdead + $2)))
		echo "lab: $d's RIP $1+$2 is 0x$addr"
	fi
	for a in $(grep -o "reason shutdown rip 0x[0-9a-f]*" /tmp/trace.tail | awk '{print substr($4,3)}' | sort -u); do
		b=$(printf '%016x' $((0x$a - 0x$tdead + 0x$talive)))
		vm_run $alive "awk '\$1 <= \"$b\"' /proc/kallsyms | sort | tail -n 1"
		echo "lab: a triple fault at 0x$a, in $d's kernel: $VM_OUT"
		addr=$a
	done
	[ -s /tmp/trace.tail ] || return
	# The crashed vCPU's thread: the one that took the shutdown exit, or the last one that
	# entered the guest at the panic's RIP.
	task=$(grep "reason shutdown" /tmp/trace.tail | head -1 | awk '{print $1}')
	[ -n "$task" ] || [ -z "$addr" ] ||
		task=$(grep "kvm_entry: vcpu [0-9]*, rip 0x$addr" /tmp/trace.tail | tail -1 | awk '{print $1}')
	if [ -n "$task" ]; then
		l=$(grep -n "reason shutdown" /tmp/trace.tail | head -1 | cut -d: -f1)
		[ -n "$l" ] || l=$(grep -n "rip 0x$addr" /tmp/trace.tail | tail -1 | cut -d: -f1)
		echo "lab: ---- KVM events of $task (and MSIs) before its crash"
		head -n "$l" /tmp/trace.tail | grep -e "^ *$task " -e kvm_msi_set_irq | tail -n 150
	else
		echo "lab: ---- the last 150 KVM events"
		tail -n 150 /tmp/trace.tail
	fi
}
# A step that fails because a VM died (vm_run, vm_wait) ends the scenario at once: explain
# the crash on the way out.
on_exit() {
	trap - EXIT
	d=$(any_crashed)
	[ -z "$d" ] || explain_crash $d
}
trap on_exit EXIT

# A transfer that did not finish (no crash): show which side stopped. For each guest its
# TCP sockets (queues, timers, retransmits), virtio interrupt counts and eth0 counters,
# twice, 5 s apart (moving or not), and the lab host's counters of the taps and bridge.
explain_stall() { # RECEIVER
	for k in 1 2; do
		for v in n1 $1; do
			vm_run $v 'grep -v " 0A " /proc/net/tcp | cut -c1-150; grep virtio /proc/interrupts; \
				cd /sys/class/net/eth0/statistics && for f in rx_packets rx_dropped tx_packets tx_dropped; do echo "$f $(cat $f)"; done' 30 ||
				true
			echo "lab: $v at look $k:"
			printf '%s\n' "$VM_OUT" | sed 's/^/lab:   /'
		done
		for v in n1 $1; do
			[ ! -S /tmp/$v.ctl ] ||
				echo "lab: $v's devices at look $k: $(lab-vmmctl /tmp/$v.ctl '{"execute":"devices"}')"
		done
		echo "lab: lab host at look $k:"
		grep -e ktap -e kbr0 /proc/net/dev | sed 's/^/lab:   /'
		sleep 5
	done
}

i=0
while [ $i -lt "$N" ]; do
	i=$((i + 1))
	for v in n2 n3; do
		ip=10.9.0.2 cpus=1
		[ $v = n2 ] || ip=10.9.0.3 cpus=2
		t0=$(_now)
		vm_run n1 "timeout 600 nc -w 10 $ip 5000 </tmp/f; echo sent \$?" 700
		d=$(any_crashed)
		[ -z "$d" ] || fail "$d crashed during transfer $i to $v"
		if [ "$VM_OUT" != "sent 0" ]; then
			out=$VM_OUT
			explain_stall $v
			fail "transfer $i to $v: $out"
		fi
		echo "lab: transfer $i of $MIB MiB to $v ($cpus vCPU): $(($(_now) - t0)) s"
	done
done
kill $watcher 2>/dev/null
trap - EXIT # from here on VMs exit on purpose
echo 0 >$T/tracing_on 2>/dev/null
for v in n2 n3; do
	j=0
	while :; do
		vm_run $v 'wc -l </tmp/rx.sum'
		[ "$VM_OUT" -lt "$N" ] || break
		j=$((j + 1))
		[ $j -le 30 ] || fail "$v has $VM_OUT of $N transfers after a minute"
		sleep 2
	done
	vm_run $v "grep -c -v -x $sum /tmp/rx.sum"
	[ "$VM_OUT" = 0 ] || fail "$v received $VM_OUT transfers whose sha256 is not $sum"
done
echo "lab: $N transfers of $MIB MiB to each receiver, all with sha256 $sum"
for v in n1 n2 n3; do vm_send $v 'poweroff -f'; done
for v in n1 n2 n3; do vm_wait_exit $v 60; done
brctl delbr kbr0 2>/dev/null
true
