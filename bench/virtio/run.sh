#!/usr/bin/env bash
# Virtio benchmark (issue 3): disk (sequential 1 MiB O_DIRECT writes and reads in the guest)
# and network (guest-to-guest TCP over a bridge), keel-vmm against QEMU with KVM on the same
# backing file and bridge, in one nested-lab session (bench/virtio/lab.sh). Prints the
# keel/QEMU ratios of throughput and of the VMM's CPU time per MiB. Goal: at least QEMU's
# throughput for no more CPU. Environment: BENCH_DISK_MIB (128), BENCH_NET_MIB (16),
# BENCH_ONLY (disk, vhdx, net or switch, comma-separated; switch: keel's guests through
# keeld on a keel switch, QEMU's on a bridge made by hand; vhdx: a dynamic VHDX against the raw
# file (goal: within 10%) and against QEMU's vhdx driver), BENCH_TIMEOUT (lab session, default 1500 s). Log: build/lab/bench-virtio.log.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"

log=$LAB_OUT/bench-virtio.log
[ -x "$top/build/keel-vmm" ] || lab_die "build/keel-vmm does not exist; run make first"
lab_build || exit 1
echo "bench/virtio: one lab session, keel-vmm then QEMU (microvm, pcie=on); log: ${log#"$top"/}"
lab_boot bench "${BENCH_TIMEOUT:-1500}" keel.bench=virtio "keel.diskmib=${BENCH_DISK_MIB:-128}" \
	"keel.netmib=${BENCH_NET_MIB:-16}" ${BENCH_ONLY:+"keel.what=$BENCH_ONLY"} </dev/null 2>&1 |
	sed -u 's/\r//g' | grep --line-buffered -v "TCG doesn't support requested feature" |
	tee "$log" | grep --line-buffered -E '^bench: '
grep -q '^bench: done' "$log" || {
	echo "bench/virtio: FAIL: the benchmark did not complete; see ${log#"$top"/}"
	exit 1
}
awk '
/^bench: disk / { split($5, t, "="); split($6, c, "="); tp[$3 " " $4] = t[2]; cpu[$3 " " $4] = c[2] }
/^bench: vhdx / { split($5, t, "="); split($6, c, "="); vt[$3 " " $4] = t[2]; vc[$3 " " $4] = c[2] }
/^bench: (net|switch) [a-z]+ tcp / { split($5, t, "="); split($6, c, "="); tp[$3 " " $2] = t[2] / 100; cpu[$3 " " $2] = c[2] }
END {
	n = split("write read net switch", kinds, " ")
	for (i = 1; i <= n; i++) {
		k = kinds[i]
		if (!(("keel " k) in tp) || !(("qemu " k) in tp) || tp["qemu " k] == 0) continue
		r = tp["keel " k] / tp["qemu " k]
		cr = (cpu["qemu " k] > 0) ? cpu["keel " k] / cpu["qemu " k] : 0
		printf "bench/virtio: %-5s keel %.2f MiB/s, QEMU %.2f MiB/s: throughput keel/QEMU = %.2f; VMM CPU ms %d vs %d: keel/QEMU = %.2f\n", \
			k, tp["keel " k], tp["qemu " k], r, cpu["keel " k], cpu["qemu " k], cr
	}
	for (i = 1; i <= 2; i++) {
		k = kinds[i]
		if (("keel " k) in vt && ("keel " k) in tp && tp["keel " k] > 0)
			printf "bench/virtio: vhdx %-5s keel %d MiB/s on dynamic VHDX vs %d on raw: VHDX/raw = %.2f (goal >= 0.90)\n", \
				k, vt["keel " k], tp["keel " k], vt["keel " k] / tp["keel " k]
		if (("keel " k) in vt && ("qemu " k) in vt && vt["qemu " k] > 0)
			printf "bench/virtio: vhdx %-5s keel %d MiB/s, QEMU vhdx driver %d MiB/s: keel/QEMU = %.2f; VMM CPU ms %d vs %d\n", \
				k, vt["keel " k], vt["qemu " k], vt["keel " k] / vt["qemu " k], vc["keel " k], vc["qemu " k]
	}
}' "$log"
