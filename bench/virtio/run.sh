#!/usr/bin/env bash
# Virtio benchmark (issue 3): disk (sequential 1 MiB O_DIRECT writes and reads in the guest)
# and network (guest-to-guest TCP over a bridge), keel-vmm against QEMU with KVM on the same
# backing file and bridge, in one nested-lab session (bench/virtio/lab.sh). Prints the
# keel/QEMU ratios of throughput and of the VMM's CPU time per MiB. Goal: at least QEMU's
# throughput for no more CPU. Environment: BENCH_DISK_MIB (128), BENCH_NET_MIB (16),
# BENCH_ONLY (disk, vhdx, net, switch or nat, comma-separated; switch: keel's guests through
# keeld on a keel switch, QEMU's on a bridge made by hand; nat: a guest to a namespace
# outside through the Default Switch's NAT, QEMU's through a bridge with NAT and dnsmasq made
# by hand, BENCH_NAT_RUNS rounds (3), medians and spreads; vhdx: a dynamic VHDX against the raw
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
	"keel.netmib=${BENCH_NET_MIB:-16}" "keel.natruns=${BENCH_NAT_RUNS:-3}" \
	${BENCH_ONLY:+"keel.what=$BENCH_ONLY"} </dev/null 2>&1 |
	sed -u 's/\r//g' | grep --line-buffered -v "TCG doesn't support requested feature" |
	tee "$log" | grep --line-buffered -E '^bench: '
grep -q '^bench: done' "$log" || {
	echo "bench/virtio: FAIL: the benchmark did not complete; see ${log#"$top"/}"
	exit 1
}
awk '
# stats(" v1 v2 ..."): "median min max n"; fmt: "median [min max]"
function stats(list,    v, n, i, j, x, med) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
	med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	return sprintf("%.2f %.2f %.2f %d", med, v[1], v[n], n)
}
function fmt(s,    a) { split(s, a, " "); return sprintf("%s [%s %s]", a[1], a[2], a[3]) }
/^bench: disk / { split($5, t, "="); split($6, c, "="); tp[$3 " " $4] = t[2]; cpu[$3 " " $4] = c[2] }
/^bench: vhdx / { split($5, t, "="); split($6, c, "="); vt[$3 " " $4] = t[2]; vc[$3 " " $4] = c[2] }
/^bench: nat [a-z]+ tcp MiBps/ { split($5, t, "="); nt[$3] = nt[$3] " " t[2] / 100; split($6, c, "="); nc[$3] = nc[$3] " " c[2] }
/^bench: nat [a-z]+ tcp FAIL / { nf[$3]++ }
/^bench: nat [a-z]+ lease_ms=/ { split($4, l, "="); nl[$3] = nl[$3] " " l[2] }
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
	# nat: the median, min and max of each side over its rounds, and the ratio of the medians
	for (side in nf) printf "bench/virtio: nat   %s: %d transfers of %d did not arrive whole (see the log)\n", side, nf[side], nf[side] + ((side in nt) ? split(nt[side], dummy, " ") : 0)
	if (("keel" in nt) && ("qemu" in nt)) {
		kt = stats(nt["keel"]); qt = stats(nt["qemu"]); kl = stats(nl["keel"]); ql = stats(nl["qemu"])
		kc = stats(nc["keel"]); qc = stats(nc["qemu"])
		split(kt, a, " "); split(qt, b, " ")
		printf "bench/virtio: nat   guest-to-outside TCP MiB/s, median [min max] of %d rounds: keel (Default Switch) %s, QEMU (hand-made bridge+NAT) %s: keel/QEMU = %.2f\n", a[4], fmt(kt), fmt(qt), (b[1] > 0 ? a[1] / b[1] : 0)
		printf "bench/virtio: nat   VMM CPU ms per transfer: keel %s, QEMU %s; DHCP lease ms (guest clock): keel %s, QEMU %s\n", fmt(kc), fmt(qc), fmt(kl), fmt(ql)
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
