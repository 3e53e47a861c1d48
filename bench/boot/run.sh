#!/usr/bin/env bash
# Boot benchmark: keel-vmm against QEMU with KVM (-M microvm), both inside one nested-lab
# session (QEMU TCG with an emulated AMD-V CPU), same guest kernel (Debian's cloud kernel),
# initramfs, vCPUs and memory. Measures time from VMM process start to the guest /init's
# marker line, and each VMM's own memory (resident memory that is not guest RAM, from
# /proc/PID/smaps). Prints medians and keel/QEMU ratios; console log: build/lab/bench-boot.log.
# Environment: BENCH_N (runs per VMM, default 5), BENCH_CPUS (1), BENCH_MIB (256),
# BENCH_TIMEOUT (seconds for the whole lab session, default 1200). Method: docs/BENCHMARKS.md.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"

n=${BENCH_N:-5}
cpus=${BENCH_CPUS:-1}
mib=${BENCH_MIB:-256}
log=$LAB_OUT/bench-boot.log
[ -x "$top/build/keel-vmm" ] || lab_die "build/keel-vmm does not exist; run make first"
lab_build || exit 1
echo "bench/boot: one lab session, $n boots each of keel-vmm and QEMU (microvm), $cpus vCPU," \
	"$mib MiB; log: ${log#"$top"/}"
lab_boot bench "${BENCH_TIMEOUT:-1200}" "keel.n=$n" "keel.cpus=$cpus" "keel.mib=$mib" </dev/null 2>&1 |
	sed -u 's/\r//g' | grep --line-buffered -v "TCG doesn't support requested feature" |
	tee "$log" | grep --line-buffered -E '^bench: '
grep -q '^bench: done' "$log" || {
	echo "bench/boot: FAIL: the benchmark did not complete; see ${log#"$top"/}"
	exit 1
}
awk '/^bench: median ms / { split($4, k, "="); split($6, r, "="); printf "bench/boot: boot time keel/QEMU = %s (goal <= 0.50): %s\n", r[2], (r[2] <= 0.5 ? "met" : "NOT met") }
     /^bench: median own_kib / { split($4, k, "="); printf "bench/boot: keel-vmm own memory = %.2f MiB (goal <= 5 MiB): %s\n", k[2] / 1024, (k[2] <= 5120 ? "met" : "NOT met") }' "$log"
