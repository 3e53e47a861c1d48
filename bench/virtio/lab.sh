# shellcheck shell=sh
# The virtio benchmark's lab side (installed as /lab/bench/virtio.sh; run by the lab /init in
# keel.lab=bench mode with keel.bench=virtio). For keel-vmm and for QEMU with KVM (microvm
# with a PCIe host, virtio-blk-pci and virtio-net-pci, no vhost), with the same backing file
# and the same guest:
#   disk: sequential 1 MiB writes then reads with O_DIRECT in the guest (dd) on a raw file on
#         the lab's RAM-backed /tmp: MiB/s from the guest's clock, and the VMM process's CPU
#         time (user + system, all threads, from /proc/PID/stat) during each run; both VMMs
#         with their io_uring backends and the page cache bypassed (keel: cache=none; QEMU:
#         aio=io_uring,cache=none);
#   vhdx: the same on a dynamic VHDX (32 MiB blocks, made by `keel disk create`, empty, so
#         the writes allocate), keel-vmm through src/disk and QEMU through its vhdx driver;
#   net:  two guests of the same VMM on a bridge, TCP (busybox nc) from one to the other:
#         MiB/s at the sender, and both VMMs' CPU time.
# Prints "bench: ..." lines and "bench: done".
. /lab/api.sh

# A failure shows the consoles (and VMM messages) of the VMs started so far.
fail() {
	for d in "$VM_DIR"/*; do
		[ -f "$d/out" ] || continue
		echo "bench: console of ${d##*/}:"
		tail -n 20 "$d/out" | sed 's/^/bench:   | /'
	done
	echo "bench: FAIL $*"
	exit 1
}

arg() {
	v=$2
	for w in $(cat /proc/cmdline); do
		case "$w" in "keel.$1="*) v=${w#keel.$1=} ;; esac
	done
	echo "$v"
}
disk_mib=$(arg diskmib 128)
net_mib=$(arg netmib 16)
what=$(arg what "disk,vhdx,net" | tr , ' ')
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)

cpu_ms() { # cpu_ms NAME: the VMM's user+system CPU time so far, ms
	awk -v hz="$hz" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$(cat "$VM_DIR/$1/pid")/stat"
}

guest_secs() { # run COMMAND in guest NAME, print its elapsed seconds (x100) into VM_T
	vm_run "$1" "a=\$(cut -d' ' -f1 /proc/uptime); $2; b=\$(cut -d' ' -f1 /proc/uptime); echo T \$a \$b" 900
	VM_T=$(echo "$VM_OUT" | awk '/^T / { printf "%d\n", ($3 - $2) * 100 }')
	[ -n "$VM_T" ] && [ "$VM_T" -gt 0 ] || VM_T=1
}

qemu_cmd() { # qemu_cmd NAME EXTRA...: QEMU microvm with a PCIe host and the lab guest
	n=$1
	shift
	echo "exec qemu-system-x86_64 -M microvm,pcie=on,acpi=on -accel kvm -cpu host -nodefaults" \
		"-no-user-config -display none -serial stdio -m 256M -smp 1" \
		"-kernel $GUEST_KERNEL -initrd $GUEST_INITRD -append '$GUEST_CMDLINE' $*"
}

start_vm() { # start_vm VMM NAME KEEL-OPTIONS -- QEMU-OPTIONS
	vmm=$1 name=$2
	shift 2
	kopts= qopts= side=k
	for a in "$@"; do
		if [ "$a" = -- ]; then side=q; continue; fi
		if [ $side = k ]; then kopts="$kopts $a"; else qopts="$qopts $a"; fi
	done
	if [ "$vmm" = keel ]; then
		# shellcheck disable=SC2086
		vm_boot "$name" --memory 256M --no-rng $kopts
	else
		qc=$(qemu_cmd "$name" $qopts)
		eval "vm_command() { echo \"\$qc\"; }"
		vm_boot "$name"
		unset -f vm_command
		. /lab/api.sh
	fi
}

# disk_bench VMM FORMAT: raw (a zeroed file) or vhdx (a fresh dynamic VHDX, so the writes
# allocate); prints "bench: FORMAT VMM write|read MiBps=... cpu_ms=...".
disk_bench() {
	if [ "$2" = vhdx ]; then
		f=/tmp/bench.vhdx
		rm -f $f
		keel disk create $f --size $((disk_mib + 16))M >/dev/null || fail "keel disk create $f"
	else
		f=/tmp/bench.raw
		dd if=/dev/zero of=$f bs=1M count=$((disk_mib + 16)) 2>/dev/null
	fi
	# One VM name per VMM and format: a name is never reused in one session (vm_start).
	n=d$1$2
	start_vm "$1" $n --disk "path=$f,format=$2,cache=$cache" -- \
		-drive "id=d0,if=none,file=$f,format=$2,cache=$cache,aio=io_uring" \
		-device virtio-blk-pci,drive=d0,disable-legacy=on
	c0=$(cpu_ms $n)
	guest_secs $n "dd if=/dev/zero of=/dev/vda bs=1M count=$disk_mib oflag=direct 2>/dev/null"
	c1=$(cpu_ms $n)
	wt=$VM_T
	guest_secs $n "dd if=/dev/vda of=/dev/null bs=1M count=$disk_mib iflag=direct 2>/dev/null"
	c2=$(cpu_ms $n)
	rt=$VM_T
	label=disk
	[ "$2" = raw ] || label=$2
	echo "bench: $label $1 write MiBps=$((disk_mib * 100 / wt)) cpu_ms=$((c1 - c0))"
	echo "bench: $label $1 read MiBps=$((disk_mib * 100 / rt)) cpu_ms=$((c2 - c1))"
	vm_kill $n
	rm -f $f
}

net_bench() { # net_bench VMM
	brctl addbr bbr0 2>/dev/null
	ip link set bbr0 up
	for i in 1 2; do
		start_vm "$1" "n$1$i" --net "tap=bk$i" -- \
			-netdev "tap,id=n0,ifname=bq$i,script=no,downscript=no,vnet_hdr=on" \
			-device "virtio-net-pci,netdev=n0,disable-legacy=on,romfile=,mac=52:54:00:00:0$i:0$i"
		t=bk$i
		[ "$1" = keel ] || t=bq$i
		ip link set "$t" up
		brctl addif bbr0 "$t"
		vm_run "n$1$i" "ip addr add 10.8.0.$i/24 dev eth0 && ip link set eth0 up"
	done
	# What the guest's virtio_net negotiated (one character per feature bit from bit 0:
	# 1 GUEST_CSUM, 7/8 GUEST_TSO4/6, 15 MRG_RXBUF).
	vm_run "n${1}2" 'cat /sys/class/net/eth0/device/features'
	echo "bench: net $1 receiver features $VM_OUT"
	vm_run "n${1}1" 'ping -c 2 -W 10 10.8.0.2 >/dev/null && echo ok' 60
	[ "$VM_OUT" = ok ] || fail "$1: no ping between the benchmark guests"
	vm_send "n${1}2" 'nc -l -p 5001 >/dev/null &'
	sleep 2
	c0=$(($(cpu_ms "n${1}1") + $(cpu_ms "n${1}2")))
	guest_secs "n${1}1" "dd if=/dev/zero bs=1M count=$net_mib 2>/dev/null | nc -w 5 10.8.0.2 5001"
	c1=$(($(cpu_ms "n${1}1") + $(cpu_ms "n${1}2")))
	# nc -w 5 waits up to 5 s idle after the data: take those off (the guest clock).
	nt=$((VM_T - 500))
	[ "$nt" -gt 0 ] || nt=1
	echo "bench: net $1 tcp MiBps_x100=$((net_mib * 10000 / nt)) cpu_ms=$((c1 - c0))"
	vm_kill "n${1}1"
	vm_kill "n${1}2"
	brctl delbr bbr0 2>/dev/null
	ip link del bq1 2>/dev/null
	ip link del bq2 2>/dev/null
}

# cache=none where /tmp takes O_DIRECT (tmpfs only from Linux 6.6), else both VMMs use the
# page cache (cache=writeback): QEMU refuses cache=none there, keel-vmm would fall back.
cache=none
dd if=/dev/zero of=/tmp/bench.probe bs=4096 count=1 oflag=direct 2>/dev/null || cache=writeback
rm -f /tmp/bench.probe
echo "bench: virtio: disk $disk_mib MiB (cache=$cache), net $net_mib MiB, guest kernel $(uname -r)"
for w in $what; do
	for vmm in keel qemu; do
		case $w in
		disk) disk_bench $vmm raw ;;
		vhdx) disk_bench $vmm vhdx ;;
		*) ${w}_bench $vmm ;;
		esac
	done
done
echo "bench: done"
