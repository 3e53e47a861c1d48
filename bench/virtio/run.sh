#!/usr/bin/env bash
# Virtio benchmark (issues 3, 12, 16): keel-vmm against QEMU with KVM on the same backing
# files and bridges, in one nested-lab session (bench/virtio/lab.sh). Disk: the guests of both
# VMMs on both formats (raw, vhdx: as BENCH_ONLY asks) up at once, each fio case on every one
# in BENCH_DISK_ROUNDS rounds (3; seqwrite-alloc once, the allocating random writes on a
# fresh region each round), the order reversed from round to round; a ratio (keel/QEMU,
# VHDX/raw, and likewise the network's rounds) is the median of the rounds' ratios, each
# round's pair run minutes apart. BENCH_ONLY (default disk,vhdx,net; comma-separated):
#   disk  fio in the guest on a raw file: sequential 1 MiB writes (first and rewrite) and
#         reads, random 4 KiB reads and writes at queue depth 1 and 32, random 4 KiB writes
#         into unwritten space; keel-vmm cache=none against QEMU aio=io_uring,cache=none.
#         The raw file is sparse, as `keel disk create --format raw` makes it, so that first
#         writes allocate on raw as on a dynamic VHDX; BENCH_RAW=full: written with zeros
#         first (every block allocated, as a fixed disk);
#   vhdx  the same on a fresh dynamic VHDX (`keel disk create`), keel's src/disk against
#         QEMU's vhdx driver, and keel's VHDX/raw ratio (goal >= 0.90 for every case);
#   net   guest-to-guest TCP (iperf3, one and four streams) over a bridge made by hand:
#         keel-vmm on vhost-net (keelvh) against QEMU on vhost-net (qemuvh), both pairs up
#         at once, in BENCH_NET_ROUNDS rounds (3) alternating which goes first (the medians
#         and each round's ratio); then keel-vmm's user-space path (keel) and QEMU without
#         vhost (qemu), one run each;
#   switch  the same with keel's guests made by keeld on a keel private switch (vhost-net),
#         against the same keel-vmm guests on a bridge made by hand (keelvh; both up at once,
#         BENCH_SWITCH_ROUNDS rounds, default 3, alternating which goes first; the medians
#         and each round's ratio), and QEMU's on the bridge;
#   nat   a guest to a namespace outside through NAT (busybox nc; BENCH_NAT_RUNS rounds).
# Prints each figure, the keel/QEMU ratios of throughput and of VMM CPU per GiB moved
# (/proc/PID/stat in the lab host), and whether each goal is met: every disk figure at
# least QEMU's at no more CPU, VHDX >= 0.90 raw, network (keel on vhost-net) at least QEMU
# with vhost-net, keel's switch at least the same VMs on a bridge made by hand.
# The same as a Markdown table: build/lab/bench-virtio.md. Other knobs: BENCH_DISK_MIB (size
# of each fio region, 128), BENCH_FIO_SECS (5), BENCH_NET_SECS (5), BENCH_NET_MIB (nat, 16),
# BENCH_TIMEOUT (lab session, 2400 s), BENCH_CASES (only these fio cases, comma-separated;
# region a is then filled by dd instead of seqwrite-alloc), BENCH_VMMS (only these: keel,
# keelvh, qemu, qemuvh; for switch, keel is its switch and its bridge peer together). Each fio case also prints the VMM's CPU per thread name ("bench: threads"),
# and each fio case and iperf3 run KVM's counters for the VM (exits by kind, interrupts
# injected, halt polling; bench/virtio/kvm_stats.sh, "bench: kvm"), which the summary puts side
# by side per request or MiB moved. BENCH_TRACE=1: each fio case also counts the VM's exits by
# exit code, its MSR accesses by MSR and its interrupts by vector (the lab kernel's KVM
# tracepoints in histograms, bench/virtio/kvm_trace.sh, "bench: trace"); the histograms cost
# each event a little, so figures of such a run are not compared with others'.
# Log: build/lab/bench-virtio.log.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"

log=$LAB_OUT/bench-virtio.log
[ -x "$top/build/keel-vmm" ] || lab_die "build/keel-vmm does not exist; run make first"
lab_build || exit 1
echo "bench/virtio: one lab session, keel-vmm then QEMU (microvm, pcie=on); log: ${log#"$top"/}"
lab_boot bench "${BENCH_TIMEOUT:-2400}" keel.bench=virtio "keel.diskmib=${BENCH_DISK_MIB:-128}" \
	"keel.netmib=${BENCH_NET_MIB:-16}" "keel.natruns=${BENCH_NAT_RUNS:-3}" \
	"keel.diskrounds=${BENCH_DISK_ROUNDS:-3}" \
	"keel.swrounds=${BENCH_SWITCH_ROUNDS:-3}" "keel.netrounds=${BENCH_NET_ROUNDS:-3}" \
	"keel.raw=${BENCH_RAW:-sparse}" \
	"keel.fiosecs=${BENCH_FIO_SECS:-5}" "keel.netsecs=${BENCH_NET_SECS:-5}" \
	${BENCH_ONLY:+"keel.what=$BENCH_ONLY"} ${BENCH_CASES:+"keel.cases=$BENCH_CASES"} \
	${BENCH_VMMS:+"keel.vmms=$BENCH_VMMS"} ${BENCH_TRACE:+"keel.trace=$BENCH_TRACE"} </dev/null 2>&1 |
	sed -u 's/\r//g' | grep --line-buffered -v "TCG doesn't support requested feature" |
	tee "$log" | grep --line-buffered -E '^bench: '
grep -q '^bench: done' "$log" || {
	echo "bench/virtio: FAIL: the benchmark did not complete; see ${log#"$top"/}"
	exit 1
}
awk -v md="$LAB_OUT/bench-virtio.md" -f "$top/bench/virtio/summary.awk" "$log"
