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
#         MiB/s at the sender, and both VMMs' CPU time;
#   switch: the same with keel's VMs made and started by keeld on a keel private switch
#         (its bridge with VLAN filtering, the nftables guard chain every frame passes, vhost),
#         against the same keel-vmm guests with vhost on a bridge made by hand (brctl), as
#         libvirt's would be, both up at once and measured in keel.swrounds rounds (3)
#         alternating which goes first; and QEMU's on the hand-made bridge;
#   nat:  guest-to-outside TCP through NAT: keel's guest made and started by keeld on the
#         Default Switch (keeld's bridge, nftables masquerade, dnsmasq), QEMU's on a bridge
#         with an nftables masquerade and a dnsmasq made by hand, as libvirt's default
#         network is; the outside a network namespace behind a veth (no route back to either
#         subnet). keel.natruns rounds (3), alternating keel and QEMU, each a DHCP lease
#         (udhcpc, timed on the guest's clock) and a transfer to the outside.
# Each fio case and iperf3 run also prints KVM's own counters for the VMM's VM (exits by kind,
# interrupts injected, halt polling) per request or MiB moved ("bench: kvm", kvm_stats.sh).
# Prints "bench: ..." lines and "bench: done".
. /lab/api.sh
# shellcheck source=bench/virtio/kvm_stats.sh
. /lab/bench/kvm_stats.sh
# shellcheck source=bench/virtio/kvm_trace.sh
. /lab/bench/kvm_trace.sh

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
net_secs=$(arg netsecs 5)
fio_secs=$(arg fiosecs 5)
nat_runs=$(arg natruns 3)
disk_rounds=$(arg diskrounds 3)
sw_rounds=$(arg swrounds 3)
net_rounds=$(arg netrounds 3)
raw_kind=$(arg raw sparse)
what=$(arg what "disk,vhdx,net" | tr , ' ')
trace=$(arg trace 0)
only_cases=$(arg cases "" | tr , ' ')
only_vmms=$(arg vmms "" | tr , ' ')
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)

# vmm_pid NAME: the VMM process of VM NAME: keel-vmm itself for a worker lab-jail started
# (VM_DIR/NAME/vmm.pid; VM_DIR/NAME/pid is the launcher's, which uses no CPU of its own).
vmm_pid() {
	cat "$VM_DIR/$1/vmm.pid" 2>/dev/null || cat "$VM_DIR/$1/pid"
}

# thread_ms NAME: each thread's user+system CPU time so far, ms, summed by thread name
# ("comm ms" lines; io_uring's workers as iou-wrk, the VMM's vCPU and I/O threads by theirs).
thread_ms() {
	for t in /proc/"$(vmm_pid "$1")"/task/*; do
		c=$(cat "$t/comm" 2>/dev/null | sed 's/-[0-9]*$//; s/ /_/g')
		s=$(sed 's/.*) //' "$t/stat" 2>/dev/null) || continue
		echo "$c $s"
	done | awk -v hz="$hz" '{ ms[$1] += ($12 + $13) * 1000 / hz; n[$1]++ }
		END { for (c in ms) print c, int(ms[c]), n[c] }'
}

# threads_diff BEFORE AFTER: "comm=ms/threads" per thread name for the time between two
# thread_ms snapshots (threads that ended in between are not listed).
threads_diff() {
	printf '%s\n' "$1" | awk -v after="$2" 'BEGIN { n = split(after, a, "\n")
		for (i = 1; i <= n; i++) { split(a[i], f, " "); if (f[1] != "") { am[f[1]] = f[2]; at[f[1]] = f[3] } } }
		{ bm[$1] = $2 }
		END { for (c in am) printf "%s=%d/%d ", c, am[c] - bm[c], at[c]; print "" }'
}

cpu_ms() { # cpu_ms NAME: the VMM's user+system CPU time so far, ms
	awk -v hz="$hz" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$(vmm_pid "$1")/stat"
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
		GUEST_INITRD=$BENCH_INITRD
	fi
}

# guest_facts LABEL NAME: what guest NAME's kernel chose that a VMM can change: its clock
# source and its CPU's flags ("bench: guest LABEL clocksource=... flags ...").
guest_facts() {
	vm_run "$2" 'echo C $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) $(grep -m1 ^flags /proc/cpuinfo)'
	echo "bench: guest $1 $(echo "$VM_OUT" | sed -n 's/^C \([^ ]*\) flags[^:]*: */clocksource=\1 flags /p' | head -n 1)"
}

# irq_delta: the guest's interrupts between two /proc/interrupts dumps in VM_OUT (the first
# before, the second after), "NAME=COUNT" for each row that moved (a numbered row by its
# last field: the device's queue, e.g. virtio0-req.0; LOC: local timer, CAL, RES, TLB: IPIs).
irq_delta() {
	echo "$VM_OUT" | awk '$1 ~ /:$/ {
		s = 0
		for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i
		k = $1; sub(":", "", k)
		if (k ~ /^[0-9]+$/) k = $NF
		if (k in b) a[k] = s; else { b[k] = s; o[++n] = k }
	}
	END { for (i = 1; i <= n; i++) if ((o[i] in a) && a[o[i]] > b[o[i]]) printf "%s=%d ", o[i], a[o[i]] - b[o[i]]; print "" }'
}

# disk_case VMM FORMAT CASE RW BS QD OFFSET-MIB: one fio run in VM d<VMM><FORMAT> on /dev/vda
# (O_DIRECT, fio's io_uring engine); prints "bench: disk VMM FORMAT CASE kibps=... iops=...
# kib=... cpu_ms=..." (kib: what the run moved, cpu_ms: the VMM process's user+system time
# around it, all threads), its threads' CPU, the guest's interrupts and KVM's counters.
disk_case() {
	n=d$1$2
	tb="--time_based --runtime=$fio_secs"
	[ "$3" != seqwrite-alloc ] || tb=
	# F KIB KIBPS IOPS DEV-IOS (terse v3: read and write kib, bandwidth, iops; then the
	# disk statistics "vda;read ios;write ios;...", "-" without them)
	cmd="fio --name=$3 --filename=/dev/vda --direct=1 --ioengine=io_uring --rw=$4 --bs=$5 --iodepth=$6 --offset=${7}M --size=${disk_mib}M $tb --randrepeat=0 --norandommap --output-format=terse 2>&1 | awk -F';' 'NF > 100 { v = \"-\"; for (i = 100; i < NF; i++) if (\$i == \"vda\") v = \$(i + 1) + \$(i + 2); print \"F\", \$6 + \$47, \$7 + \$48, \$8 + \$49, v; next } { print }'"
	kp=$(vmm_pid "$n")
	if ! echo " $kbase " | grep -q " $n "; then
		kbase="$kbase $n"
		k0=$(kvm_stats_snap "$kp")
		vm_run "$n" ": $cmd" 900
		kvm_stats_line "disk $1 $2 console" "$k0" "$(kvm_stats_snap "$kp")" 1 run
	fi
	vm_run "$n" 'cat /proc/interrupts >/tmp/irq0'
	k0=$(kvm_stats_snap "$kp")
	[ "$trace" != 1 ] || kvm_trace_set '' || fail "cannot set the KVM trace histograms"
	t0=$(thread_ms $n)
	c0=$(cpu_ms $n)
	vm_run "$n" "$cmd" 900
	c1=$(cpu_ms $n)
	k1=$(kvm_stats_snap "$kp")
	# fio's requests: what it moved over its block size (1M or 4k)
	case $5 in *M) bk=$((${5%M} * 1024)) ;; *k) bk=${5%k} ;; *) bk=1 ;; esac
	fk=$(echo "$VM_OUT" | awk '/^F [0-9]/ { print $2; exit }')
	nreq=$((${fk:-0} / bk))
	tr_line=
	if [ "$trace" = 1 ]; then
		tr_line=$(kvm_trace_line "disk $1 $2 $3" "$kp" "$nreq" req)
		kvm_trace_set '!' || fail "cannot remove the KVM trace histograms"
	fi
	out=$VM_OUT
	vm_run "$n" 'cat /tmp/irq0 /proc/interrupts'
	echo "bench: irqs $1 $2 $3 $(irq_delta)"
	VM_OUT=$out
	echo "bench: threads $1 $2 $3 $(threads_diff "$t0" "$(thread_ms $n)")"
	r=$(echo "$VM_OUT" | awk '/^F [0-9]/ { print "kibps=" $3 " iops=" $4 " kib=" $2 }')
	[ -n "$r" ] || fail "$1 $2 $3: fio gave no figures: $VM_OUT"
	echo "bench: disk $1 $2 $3 $r cpu_ms=$((c1 - c0))"
	dios=$(echo "$VM_OUT" | awk '/^F [0-9]/ { print ($5 == "" ? "-" : $5); exit }')
	kvm_stats_line "disk $1 $2 $3 dev_ios=$dios" "$k0" "$k1" "$nreq" req
	[ -z "$tr_line" ] || echo "$tr_line"
}

# The disk matrix (issue 16), fio in the guest on /dev/vda: NAME RW BS QD REGION, REGION a:
# the first disk_mib MiB (written first, so the later runs rewrite and read allocated
# blocks), b: a disk_mib MiB region of its own for each round, after region a, never written
# before that round's run (random writes that allocate, on a sparse raw file as on a dynamic
# VHDX). The first run writes region a once (size-based); the others run fio_secs seconds
# each.
disk_cases="seqwrite-alloc:write:1M:1:a seqwrite:write:1M:1:a seqread:read:1M:1:a
randread-qd1:randread:4k:1:a randread-qd32:randread:4k:32:a
randwrite-qd1:randwrite:4k:1:a randwrite-qd32:randwrite:4k:32:a
randwrite-qd32-alloc:randwrite:4k:32:b"

# disk_bench FORMATS: a VM of each VMM (keel, qemu; only_vmms) and each format of FORMATS
# ("raw", "vhdx" or both), each on a file of its own: raw (a sparse file, as `keel disk create
# --format raw` and `qemu-img create` make it; with keel.raw=full a file written with zeros,
# every block allocated, as a fixed disk's) or vhdx (a fresh dynamic VHDX made by `keel disk
# create`) on the ext4 of bench_fs, all up at once; then each case on every one, in
# disk_rounds rounds, the order reversed from case to case and round to round so that no
# guest always goes first (the host's load falls on all alike). Each round pairs keel with
# QEMU on a format and keel's VHDX with keel's raw within minutes of each other: the summary
# takes the median of those per-round ratios. seqwrite-alloc runs once (it writes region a,
# which the later cases need written); randwrite-qd32-alloc runs in every round, each round on
# a region never written before (b), so that which VMM allocates first on the file system
# alternates too (until 2026-12-07 it ran once, and QEMU's guests went before keel's).
disk_bench() {
	guests=
	for fmt in $1; do
		for v in keel qemu; do
			[ -z "$only_vmms" ] || echo " $only_vmms " | grep -q " $v " || continue
			guests="$guests $v:$fmt"
			f=$BENCH_FS/bench.$v.$fmt
			rm -f "$f"
			if [ "$fmt" = raw ] && [ "$raw_kind" = full ]; then
				dd if=/dev/zero of="$f" bs=1M count=$(disk_size_mib) 2>/dev/null || fail "dd $f"
			else
				keel disk create "$f" --format "$fmt" --size "$(disk_size_mib)M" >/dev/null ||
					fail "keel disk create $f --format $fmt"
			fi
			# One VM name per VMM and format: a name is never reused in one session (vm_start).
			start_vm "$v" "d$v$fmt" --disk "path=$f,format=$fmt,cache=$cache" -- \
				-drive "id=d0,if=none,file=$f,format=$fmt,cache=$cache,aio=io_uring" \
				-device virtio-blk-pci,drive=d0,disable-legacy=on
			guest_facts "$v $fmt" "d$v$fmt"
		done
	done
	[ -n "$guests" ] || return 0
	flip=0
	for c in $disk_cases; do
		IFS=: read -r name rw bs qd region <<EOF_CASE
$c
EOF_CASE
		off=0
		if [ -n "$only_cases" ] && ! echo " $only_cases " | grep -q " $name "; then
			[ "$name" != seqwrite-alloc ] || for g in $guests; do
				vm_run "d${g%:*}${g#*:}" "dd if=/dev/zero of=/dev/vda bs=1M count=$disk_mib oflag=direct 2>&1" 900
			done
			continue
		fi
		rounds=$disk_rounds
		[ "$name" != seqwrite-alloc ] || rounds=1
		round=1 # not r: disk_case's (shell variables are global)
		while [ $round -le "$rounds" ]; do
			flip=$((1 - flip))
			order=$guests
			[ $flip = 1 ] || order=$(echo "$guests" | awk '{ for (i = NF; i >= 1; i--) printf "%s ", $i }')
			[ "$region" = a ] || off=$((disk_mib * round))
			for g in $order; do disk_case "${g%:*}" "${g#*:}" "$name" "$rw" "$bs" "$qd" "$off"; done
			round=$((round + 1))
		done
	done
	echo "bench: fs after the disk cases: $(df -m $BENCH_FS | awk 'NR == 2 { print $3 " of " $2 " MiB used" }'); lab host memory: $(awk '/^MemAvailable/ { printf "%s %d MiB", $1, $2 / 1024 }' /proc/meminfo)"
	for g in $guests; do
		v=${g%:*} fmt=${g#*:}
		n=d$v$fmt
		# Guest RAM (the one mapping of at least 224 MiB): its start modulo 2 MiB (KVM maps
		# huge pages only where host and guest addresses agree modulo 2 MiB) and its huge pages.
		awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); start = a[1] }
			/^Size:/ { big = $2 >= 229376 }
			/^AnonHugePages:/ && big { printf "bench: ram '"$v $fmt"' start=0x%s thp_kib=%d\n", start, $2 }' \
			"/proc/$(vmm_pid "$n")/smaps"
		if [ "$v" = keel ]; then # its request counts, logged as the disk closes
			kill -TERM "$(vmm_pid "$n")" 2>/dev/null # keel-vmm, not its launcher (lab-jail)
			for _i in $(seq 100); do [ -e "$VM_DIR/$n/status" ] && break; sleep 0.2; done
			sed -n 's/.*requests: /bench: paths keel '"$fmt"' /p' "$VM_DIR/$n/out"
		fi
		vm_kill "$n"
		rm -f "$BENCH_FS/bench.$v.$fmt"
	done
}

# Each disk: region a and a region b for each round (disk_bench), and 16 MiB more.
disk_size_mib() {
	echo $((disk_mib * (1 + disk_rounds) + 16))
}

# bench_fs: the disk files' file system, BENCH_FS: an ext4 (an ext2 by busybox mke2fs where
# the lab has no mkfs.ext4) on a loop device over a file on the lab's RAM-backed /tmp, so that
# both VMMs can open the files with O_DIRECT (cache=none), which tmpfs refuses before
# Linux 6.6. /tmp itself where it takes O_DIRECT.
bench_fs() {
	BENCH_FS=/tmp
	cache=none
	dd if=/dev/zero of=/tmp/bench.probe bs=4096 count=1 oflag=direct 2>/dev/null && {
		rm -f /tmp/bench.probe
		return
	}
	rm -f /tmp/bench.probe
	BENCH_FS=/bench
	# Four sparse disks (disk_size_mib), of which each writes region a and a little of each
	# round's region b, but QEMU's vhdx driver all of it (it writes a new block whole), and
	# room for ext4's own metadata; no root reserve (-m 0): keel-vmm writes as the jail's
	# uid, QEMU as root, and neither may meet a full file system the other would not. The
	# file is written whole first, as a disk is there whole: a sparse one made whoever
	# first wrote a part of the file system pay for the lab's RAM under it (tmpfs pages
	# allocated and zeroed under TCG), the first VMM's first writes most (2026-12-07).
	# keel.raw=full: the two raw disks are written whole before any case.
	# The lab's /tmp is its initramfs root (no mount point of its own, so df cannot say):
	# its room is the lab's memory, less the four guests' (256 MiB each) and their VMMs'.
	local fs_mib=$((disk_mib * (6 + disk_rounds) + 160)) free_mib
	[ "$raw_kind" != full ] || fs_mib=$((fs_mib + 2 * $(disk_size_mib)))
	free_mib=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) - 4 * 256 - 256 }' /proc/meminfo)
	[ -n "$free_mib" ] || fail "no MemAvailable in the lab's /proc/meminfo"
	[ "$fs_mib" -lt "$free_mib" ] ||
		fail "the bench's file system ($fs_mib MiB) does not fit in the lab's memory ($free_mib MiB left beside the guests): lower BENCH_DISK_MIB or BENCH_DISK_ROUNDS (or BENCH_RAW=sparse)"
	dd if=/dev/zero of=/tmp/bench.fs bs=1M count="$fs_mib" 2>/dev/null ||
		fail "cannot write /tmp/bench.fs"
	echo "bench: fs $fs_mib MiB ext4 on a loop device over /tmp/bench.fs, written whole first; lab host memory: $(awk '/^MemTotal|^MemAvailable/ { printf "%s %d MiB ", $1, $2 / 1024 }' /proc/meminfo)"
	# ext4 with extents (e2fsprogs' mke2fs, tests/lab/lab.sh), as a host's file system is;
	# busybox's mke2fs makes ext2 (indirect block maps), where first writes into a sparse
	# file (a dynamic VHDX's new blocks) ran at 0.44-0.47x the raw file's for both VMMs.
	if [ -x /sbin/mkfs.ext4 ]; then
		/sbin/mkfs.ext4 -q -F -t ext4 -b 4096 -m 0 /tmp/bench.fs >/dev/null 2>&1 || fail "mkfs.ext4 /tmp/bench.fs"
	else
		mke2fs -q -F -b 4096 -m 0 /tmp/bench.fs >/dev/null 2>&1 || fail "mke2fs /tmp/bench.fs"
	fi
	loop=$(losetup -f) && losetup "$loop" /tmp/bench.fs || fail "losetup /tmp/bench.fs"
	mkdir -p $BENCH_FS && mount -t ext4 "$loop" $BENCH_FS || fail "mount $loop on $BENCH_FS"
	dd if=/dev/zero of=$BENCH_FS/probe bs=4096 count=1 oflag=direct 2>/dev/null ||
		fail "$BENCH_FS (ext4 on $loop) refuses O_DIRECT"
	rm -f $BENCH_FS/probe
}

# net_transfer LABEL VMM A B CPU-A CPU-B: TCP from guest A to guest B (10.8.0.2; DST: another
# address), B listening already into /tmp/rx (B "-": the outside namespace, into
# /tmp/rx-out); prints "bench: LABEL VMM tcp MiBps_x100=... cpu_ms=..." and A's VM's KVM
# counters per MiB ("bench: kvm LABEL VMM streams=1 side=tx ...", as net_streams's). RUN runs
# a command in a guest (vm_run or keel_run; VM_OUT or KEEL_OUT its output); CPU-B "-": A's
# VMM alone.
net_transfer() {
	k0=$(kvm_stats_snap "$5")
	c0=$(($(cpu_ms_pid "$5") + $(cpu_ms_pid "$6")))
	$RUN "$3" "a=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero bs=1M count=$net_mib 2>/dev/null | nc -w 5 ${DST:-10.8.0.2} 5001; b=\$(cut -d' ' -f1 /proc/uptime); echo T \$a \$b" 900
	c1=$(($(cpu_ms_pid "$5") + $(cpu_ms_pid "$6")))
	k1=$(kvm_stats_snap "$5")
	# What the receiver got (nc | wc -c into /tmp/rx): all of it, or no figure at all.
	out=$(printf '%s\n%s\n' "${VM_OUT:-}" "${KEEL_OUT:-}")
	if [ "$4" = - ]; then
		w=0
		while [ ! -s /tmp/rx-out ] && [ $w -lt 20 ]; do sleep 0.5; w=$((w + 1)); done
		rx=$(tr -d ' ' </tmp/rx-out 2>/dev/null)
	else
		$RUN "$4" 'sleep 1; cat /tmp/rx' 60
		rx=$(printf '%s\n%s\n' "${VM_OUT:-}" "${KEEL_OUT:-}" | grep -E '^ *[0-9]+$' | tail -n 1 | tr -d ' ')
	fi
	if [ "$rx" != $((net_mib * 1048576)) ]; then
		# nat: recorded, and the rounds go on (the other side's figures still come)
		[ "$1" = nat ] || fail "$1 $2: the receiver got '${rx:-nothing}' bytes of $((net_mib * 1048576))"
		echo "bench: nat $2 tcp FAIL received=${rx:-0} of $((net_mib * 1048576)) bytes"
		return 1
	fi
	t=$(echo "$out" | awk '/^T / { printf "%d\n", ($3 - $2) * 100 }' | tail -n 1)
	# busybox nc's -w is its connect timeout only: the sender ends when the receiver, at the
	# end of the data, closes (its FIN), so that is the whole transfer (the guest clock).
	nt=${t:-1}
	[ "$nt" -gt 0 ] || nt=1
	echo "bench: $1 $2 tcp MiBps_x100=$((net_mib * 10000 / nt)) cpu_ms=$((c1 - c0))"
	# the sender's VM (A's VMM) per MiB; as net_streams's lines, one stream
	kvm_stats_line "$1 $2 streams=1 side=tx" "$k0" "$k1" "$net_mib" MiB
}

cpu_ms_pid() { # cpu_ms_pid PID: the process's user+system CPU time so far, ms ("-": 0)
	[ "$1" != - ] || { echo 0; return; }
	awk -v hz="$hz" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"
}

# net_streams LABEL VMM A B PID-A PID-B: iperf3 from guest A to guest B (NET_DST, default
# 10.8.0.2, its server running already) for net_secs seconds with one and with four parallel TCP streams;
# prints "bench: LABEL VMM streams=N mibps=... secs=... cpu_ms=..." (the receiver's figure
# from iperf3's summary; cpu_ms: both VMMs) and per VM "bench: kvm LABEL VMM streams=N
# side=tx|rx unit=MiB n=... COUNTER=DELTA/PER-MIB ..." (A's VM the sender, tx; n: MiB moved,
# mibps x secs). RUN runs a command in a guest (vm_run or keel_run; VM_OUT or KEEL_OUT its
# output).
net_streams() {
	for ns in 1 4; do
		ka0=$(kvm_stats_snap "$5")
		kb0=$(kvm_stats_snap "$6")
		c0=$(($(cpu_ms_pid "$5") + $(cpu_ms_pid "$6")))
		VM_OUT= KEEL_OUT=
		$RUN "$3" "iperf3 -c ${NET_DST:-10.8.0.2} -t $net_secs -P $ns -f M 2>&1 | grep -E 'receiver|error'" 300
		c1=$(($(cpu_ms_pid "$5") + $(cpu_ms_pid "$6")))
		ka1=$(kvm_stats_snap "$5")
		kb1=$(kvm_stats_snap "$6")
		# "[SUM]   0.00-5.04   sec  11.2 MBytes  2.22 MBytes/sec   receiver" (-P 1: "[  5]")
		r=$(printf '%s\n%s\n' "${VM_OUT:-}" "${KEEL_OUT:-}" | awk '/receiver/ {
			for (i = 2; i < NF; i++) { if ($(i + 1) == "sec") { split($i, t, "-"); s = t[2] } if ($(i + 1) == "MBytes/sec") r = $i }
			m = "mibps=" r " secs=" s }
			END { if (m != "") print m }')
		[ -n "$r" ] || fail "$1 $2: iperf3 with $ns stream(s) gave no figure: ${VM_OUT:-}${KEEL_OUT:-}"
		echo "bench: $1 $2 streams=$ns $r cpu_ms=$((c1 - c0))"
		mib=$(echo "$r" | awk '{ split($1, m, "="); split($2, s, "="); printf "%.2f\n", m[2] * s[2] }')
		kvm_stats_line "$1 $2 streams=$ns side=tx" "$ka0" "$ka1" "$mib" MiB
		kvm_stats_line "$1 $2 streams=$ns side=rx" "$kb0" "$kb1" "$mib" MiB
	done
}

# net_up VMM LABEL [BASE]: two guests of VMM on a bridge made by hand (bbr0), 10.8.0.BASE+1
# and 10.8.0.BASE+2 (BASE 0 by default), the second running an iperf3 server (its address in
# NET_DST); their VMM pids in NET_P1, NET_P2. Two pairs may share the bridge with different
# BASEs (net_rounds). VMM keel:
# keel-vmm's user-space data path (vhost=off); keelvh: keel-vmm with vhost-net (vhost=on);
# qemuvh: QEMU with vhost-net (/dev/vhost-net in the lab host). Returns 1 (said) when the
# lab host has no /dev/vhost-net for a vhost VMM.
net_up() {
	label=$2
	base=${3:-0}
	vh= kvh=off vmm=$1
	case $1 in
	qemuvh | keelvh)
		[ -c /dev/vhost-net ] || {
			echo "bench: $label $1 not measured: the lab host has no /dev/vhost-net"
			return 1
		}
		vh=,vhost=on kvh=on
		;;
	esac
	[ "$1" != keelvh ] || vmm=keel
	brctl addbr bbr0 2>/dev/null
	ip link set bbr0 up
	for i in 1 2; do
		ai=$((base + i))
		start_vm "$vmm" "$label$1$i" --net "tap=bk$i,mac=52:54:00:01:0$ai:0$ai,vhost=$kvh" -- \
			-netdev "tap,id=n0,ifname=bq$i,script=no,downscript=no,vnet_hdr=on$vh" \
			-device "virtio-net-pci,netdev=n0,disable-legacy=on,romfile=,mac=52:54:00:00:0$ai:0$ai"
		t=bk$i
		[ "$vmm" = keel ] || t=bq$i
		ip link set "$t" up
		brctl addif bbr0 "$t"
		vm_run "$label$1$i" "ip addr add 10.8.0.$ai/24 dev eth0 && ip link set eth0 up"
	done
	NET_DST=10.8.0.$((base + 2))
	# What the guest's virtio_net negotiated (one character per feature bit from bit 0:
	# 1 GUEST_CSUM, 7/8 GUEST_TSO4/6, 15 MRG_RXBUF).
	vm_run "$label${1}2" 'cat /sys/class/net/eth0/device/features'
	echo "bench: $label $1 receiver features $VM_OUT"
	vm_run "$label${1}1" "ping -c 2 -W 10 $NET_DST >/dev/null && echo ok" 60
	[ "$VM_OUT" = ok ] || fail "$1: no ping between the benchmark guests"
	vm_run "$label${1}2" 'iperf3 -s -D && echo ok'
	[ "$VM_OUT" = ok ] || fail "$1: iperf3 -s: $VM_OUT"
	sleep 1
	NET_P1=$(vmm_pid "$label${1}1") NET_P2=$(vmm_pid "$label${1}2")
}

net_down() { # net_down VMM LABEL [keep]: net_up's guests gone, and the bridge unless "keep"
	vm_kill "$2${1}1"
	vm_kill "$2${1}2"
	[ "${3:-}" = keep ] || brctl delbr bbr0 2>/dev/null
	case $1 in qemu*) ip link del bq1 2>/dev/null; ip link del bq2 2>/dev/null ;; esac
}

# net_bench VMM [LABEL]: net_up's two guests, iperf3 from the first to the second.
net_bench() {
	net_up "$1" "${2:-net}" || return 0
	RUN=vm_run net_streams "${2:-net}" "$1" "${2:-net}${1}1" "${2:-net}${1}2" "$NET_P1" "$NET_P2"
	net_down "$1" "${2:-net}"
}

# in_rounds WHAT N A B FN: N rounds of "FN A" and "FN B", A first in odd rounds and B in even
# ones, so that the host's load falls on both sides alike; "bench: WHAT round I of N" before
# each round.
in_rounds() {
	round=1 # not r: net_streams's (shell variables are global)
	while [ "$round" -le "$2" ]; do
		echo "bench: $1 round $round of $2"
		if [ $((round % 2)) = 1 ]; then
			"$5" "$3"
			"$5" "$4"
		else
			"$5" "$4"
			"$5" "$3"
		fi
		round=$((round + 1))
	done
}

# net_rounds: issue 16's network goal, keel-vmm on vhost-net (keelvh) against QEMU on
# vhost-net (qemuvh): both pairs of guests up at once on the bridge (keel's 10.8.0.1-2,
# QEMU's 10.8.0.3-4), then net_rounds rounds of net_streams on each, the order alternating
# (keel first in odd rounds), so that the host's load falls on both alike; the summary takes
# the medians and each round's ratio.
net_rounds() {
	net_up keelvh net || return 0
	kdst=$NET_DST kp1=$NET_P1 kp2=$NET_P2
	net_up qemuvh net 2 || { net_down keelvh net; return 0; }
	qdst=$NET_DST qp1=$NET_P1 qp2=$NET_P2
	net_side() {
		if [ "$1" = keelvh ]; then
			NET_DST=$kdst RUN=vm_run net_streams net keelvh netkeelvh1 netkeelvh2 "$kp1" "$kp2"
		else
			NET_DST=$qdst RUN=vm_run net_streams net qemuvh netqemuvh1 netqemuvh2 "$qp1" "$qp2"
		fi
	}
	in_rounds net "$net_rounds" keelvh qemuvh net_side
	net_down keelvh net keep
	net_down qemuvh net
}

# switch_bench VMM: for keel, its two guests made and started by keeld on a keel private
# switch (its guards on: MAC spoofing off; vhost=on, as keeld's default auto gives on a host
# with /dev/vhost-net) and, at the same time, the same keel-vmm guests on a bridge made by
# hand (keelvh: issue 12's peer, "the same VMs on a bridge set up by hand"); then sw_rounds
# rounds of net_streams on each, the order alternating (bridge first in odd rounds), so that
# the host's load falls on both sides alike. For qemu: QEMU's guests on the hand-made bridge.
switch_bench() {
	[ "$1" = keel ] || {
		net_bench "$1" switch
		return
	}
	keeld_start
	keel switch create bsw --type private >"$KD/bsw.out" 2>&1 || fail "keel switch create bsw: $(cat "$KD/bsw.out")"
	for i in 1 2; do
		keel vm create sw$i --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
			--cmdline "$GUEST_CMDLINE" --cpus 1 --memory 256M --net switch=bsw,vhost=on >/dev/null ||
			fail "keel vm create sw$i"
		keel vm start sw$i >/dev/null || fail "keel vm start sw$i"
	done
	for i in 1 2; do
		keel_console_wait sw$i "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
		keel_run sw$i 'stty cols 1000'
		keel_run sw$i "ip addr add 10.8.0.$i/24 dev eth0 && ip link set eth0 up && echo ok"
		[ "$KEEL_OUT" = ok ] || fail "sw$i eth0: $KEEL_OUT"
	done
	keel_run sw2 'cat /sys/class/net/eth0/device/features'
	echo "bench: switch keel receiver features $KEEL_OUT"
	keel_run sw1 'ping -c 2 -W 10 10.8.0.2 >/dev/null && echo ok' 60
	[ "$KEEL_OUT" = ok ] || fail "keel: no ping between the benchmark guests on switch bsw"
	keel_run sw2 'iperf3 -s -D && echo ok'
	[ "$KEEL_OUT" = ok ] || fail "keel: iperf3 -s on sw2: $KEEL_OUT"
	p1=$(keel vm show sw1 --json | sed -n 's/.*"pid": \([0-9]*\).*/\1/p' | head -n 1)
	p2=$(keel vm show sw2 --json | sed -n 's/.*"pid": \([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$p1" ] && [ -n "$p2" ] || fail "no worker pids for sw1, sw2"
	bridge=1
	net_up keelvh switch || bridge=0
	switch_side() {
		if [ "$1" = switch ]; then
			NET_DST=10.8.0.2 RUN=keel_run net_streams switch keel sw1 sw2 "$p1" "$p2"
		elif [ $bridge = 1 ]; then
			NET_DST=10.8.0.2 RUN=vm_run net_streams switch keelvh switchkeelvh1 switchkeelvh2 "$NET_P1" "$NET_P2"
		fi
	}
	in_rounds switch "$sw_rounds" bridge switch switch_side
	[ $bridge = 0 ] || net_down keelvh switch
	for i in 1 2; do keel vm turn-off sw$i >/dev/null; done
	kill "$(cat "$KD/pid")" 2>/dev/null
}

# The outside world of nat_bench: a network namespace (its holder's pid in OUT) behind the
# veth up0 (10.99.0.1, the lab host) - up1 (10.99.0.2), with no route to the guests' subnets.
outside_up() {
	[ -z "${OUT:-}" ] || return 0
	unshare -n sleep 100000 &
	OUT=$!
	sleep 1
	$IP link add up0 type veth peer name up1 && $IP link set up1 netns "$OUT" ||
		fail "nat: cannot make the outside's veth"
	$IP addr add 10.99.0.1/24 dev up0 && $IP link set up0 up || fail "nat: up0"
	nsenter -t "$OUT" -n sh -c "$IP addr add 10.99.0.2/24 dev up1 && $IP link set up1 up && $IP link set lo up" ||
		fail "nat: up1 in the outside namespace"
}

# nat_lease VMM NAME GATEWAY: a DHCP lease in guest NAME (RUN, as in net_transfer), its address
# on eth0 and the default route via GATEWAY; prints "bench: nat VMM lease_ms=...".
nat_lease() {
	KEEL_OUT= VM_OUT=
	$RUN "$2" "ip link set eth0 up; ip addr flush dev eth0; a=\$(cut -d' ' -f1 /proc/uptime); l=\$(udhcpc -i eth0 -n -q -f -t 10 -T 3 -s /bin/true 2>&1 | sed -n 's/.*lease of \([0-9.]*\) obtained.*/\1/p'); b=\$(cut -d' ' -f1 /proc/uptime); ip addr add \$l/24 dev eth0 && ip route replace default via $3 && echo L \$l \$a \$b" 180
	l=$(printf '%s\n%s\n' "${VM_OUT:-}" "${KEEL_OUT:-}" | awk '/^L [0-9]/ { printf "%s %d\n", $2, ($4 - $3) * 1000 }' | tail -n 1)
	[ -n "$l" ] || fail "nat $1: $2 got no lease: ${VM_OUT:-}${KEEL_OUT:-}"
	echo "bench: nat $1 lease_ms=${l#* } address=${l% *}"
}

# nat_round VMM NAME PID: one lease and one transfer from guest NAME to the outside.
nat_round() {
	nat_lease "$1" "$2" "$([ "$1" = keel ] && echo "$nat_gw" || echo 10.9.0.1)"
	rm -f /tmp/rx-out
	# The received bytes counted by wc on the connection itself (-e): busybox nc with its
	# stdin at its end (a background job's /dev/null) half-closes the connection at once, and
	# the sending busybox nc quits on that FIN, whatever it has left to send (the 71680-byte
	# "stall" of the first run).
	nsenter -t "$OUT" -n nc -l -p 5001 -e sh -c 'wc -c >/tmp/rx-out' &
	rcv=$!
	sleep 2
	KEEL_OUT= VM_OUT= DST=10.99.0.2 net_transfer nat "$1" "$2" - "$3" - ||
		echo "bench: nat $1 conntrack $(awk 'NR == 2' /proc/net/stat/nf_conntrack 2>/dev/null)"
	kill "$rcv" 2>/dev/null
}

# nat_bench: both sides' guests up, then nat_runs rounds alternating keel and QEMU (the loop
# below calls it for keel only: it does both).
nat_bench() {
	[ "$1" = keel ] || return 0
	IP=/usr/sbin/ip
	[ -x $IP ] || fail "nat: iproute2's ip is not in the lab"
	outside_up
	keeld_start
	keel switch show "Default Switch" >"$KD/ds.out" || fail "keel switch show: $(cat "$KD/ds.out")"
	nat_gw=$(sed -n 's/^Subnet: .*host address \([0-9.]*\)$/\1/p' "$KD/ds.out")
	[ -n "$nat_gw" ] || fail "nat: the Default Switch: $(cat "$KD/ds.out")"
	keel vm create nk --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
		--cpus 1 --memory 256M --net "switch=Default Switch" >/dev/null || fail "keel vm create nk"
	keel vm start nk >/dev/null || fail "keel vm start nk"
	# The peer, as libvirt's default network: a bridge with the gateway's address, a
	# masquerade for its subnet, forwarding on, a dnsmasq serving DHCP on it.
	brctl addbr pbr0 && $IP addr add 10.9.0.1/24 dev pbr0 && $IP link set pbr0 up || fail "nat: pbr0"
	echo 1 >/proc/sys/net/ipv4/ip_forward
	printf 'table ip bnat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  ip saddr 10.9.0.0/24 ip daddr != 10.9.0.0/24 masquerade\n }\n}\n' >/tmp/bnat.nft
	/usr/sbin/nft -f /tmp/bnat.nft || fail "nat: the peer's masquerade"
	dnsmasq --interface=pbr0 --bind-interfaces --except-interface=lo --port=0 \
		--dhcp-range=10.9.0.10,10.9.0.100,255.255.255.0,1h --dhcp-leasefile=/tmp/bnat.leases \
		--pid-file=/tmp/bnat.pid --dhcp-authoritative || fail "nat: the peer's dnsmasq"
	start_vm qemu nq -- -netdev "tap,id=n0,ifname=bq9,script=no,downscript=no,vnet_hdr=on" \
		-device "virtio-net-pci,netdev=n0,disable-legacy=on,romfile=,mac=52:54:00:00:09:09"
	$IP link set bq9 up && brctl addif pbr0 bq9 || fail "nat: bq9 on pbr0"
	keel_console_wait nk "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
	keel_run nk 'stty cols 1000'
	pk=$(keel vm show nk --json | sed -n 's/.*"pid": \([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$pk" ] || fail "nat: no worker pid for nk"
	pq=$(cat "$VM_DIR/nq/pid")
	i=0
	while [ $i -lt "$nat_runs" ]; do
		RUN=vm_run nat_round qemu nq "$pq"
		RUN=keel_run nat_round keel nk "$pk"
		i=$((i + 1))
	done
	keel vm turn-off nk >/dev/null
	vm_kill nq
	kill "$(cat /tmp/bnat.pid)" "$OUT" 2>/dev/null
	/usr/sbin/nft delete table ip bnat
	brctl delbr pbr0 2>/dev/null
	kill "$(cat "$KD/pid")" 2>/dev/null
}

# The benchmark's guests: the lab guest's initramfs with the tools' one appended (fio,
# iperf3; tests/lab/lab.sh lab_guest_tools_build).
BENCH_INITRD=/tmp/bench-initrd.cpio
cat "$GUEST_INITRD" /lab/guest/tools.cpio >$BENCH_INITRD || fail "cannot make $BENCH_INITRD"
GUEST_INITRD=$BENCH_INITRD
bench_fs
kvm_stats_init
[ "$trace" != 1 ] || kvm_trace_init || fail "BENCH_TRACE=1: no KVM trace events"
kbase=
echo "bench: virtio: disk $disk_mib MiB regions on $BENCH_FS (cache=$cache, raw files $raw_kind), fio ${fio_secs}s runs, net ${net_secs}s iperf3 runs, guest kernel $(uname -r), lab host vhost-net: $([ -c /dev/vhost-net ] && echo yes || echo no)"
for w in $what; do
	case $w in
	disk | vhdx) # every VMM and format asked for at once, in rounds (one disk_bench for both)
		fmts=$(for x in $what; do case $x in disk) echo raw ;; vhdx) echo vhdx ;; esac; done)
		[ "$w" = "$(echo "$what" | tr ' ' '\n' | grep -m1 -E '^(disk|vhdx)$')" ] && disk_bench "$fmts"
		continue
		;;
	net) # the kernel paths in rounds, both at once (when both are asked for); then the
		# user-space paths, one run each
		vmms="keel qemu"
		want() { [ -z "$only_vmms" ] || echo " $only_vmms " | grep -q " $1 "; }
		if want keelvh && want qemuvh; then
			net_rounds
		else
			for vmm in keelvh qemuvh; do want $vmm && net_bench $vmm; done
		fi
		;;
	switch) vmms="keel qemu" ;; # keel: its switch and its hand-made bridge (keelvh), in rounds
	*) vmms="keel qemu" ;;
	esac
	for vmm in $vmms; do
		[ -z "$only_vmms" ] || echo " $only_vmms " | grep -q " $vmm " || continue
		"${w}_bench" $vmm
	done
done
echo "bench: done"
