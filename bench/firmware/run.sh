#!/usr/bin/env bash
# Firmware boot benchmark (issue 11): process start to the guest's init for keel-vmm and for
# QEMU with KVM (-M q35), both generations (SeaBIOS booting the mbr-bios image, OVMF booting
# the gpt-uefi image; scripts/images/), the same Debian firmware files and disks, in one
# nested-lab session; and keel-vmm's own memory with firmware. Prints medians and keel/QEMU
# ratios against the goals (time <= 0.7x QEMU's, own memory <= 5 MiB). Console log:
# build/lab/bench-firmware.log. Environment: BENCH_N (runs per VMM and generation, default
# 3), BENCH_TIMEOUT (the whole lab session, default 1800 s), BENCH_PROFILE=1 (first an exit
# profile: one untimed boot per VMM and generation with KVM's trace events counted, keel-vmm
# with --exit-stats), BENCH_KEEL_BEFORE=FILE (another keel-vmm build the profile boots too, as
# "before"). Method: docs/BENCHMARKS.md.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"

n=${BENCH_N:-3}
log=$LAB_OUT/bench-firmware.log
[ -x "$top/build/keel-vmm" ] || lab_die "build/keel-vmm does not exist; run make first"
lab_build || exit 1
LAB_IMAGES=mbr-bios,gpt-uefi lab_images || exit 1
echo "bench/firmware: one lab session, $n boots each of keel-vmm and QEMU (q35) per generation;" \
	"log: ${log#"$top"/}"
lab_boot bench "${BENCH_TIMEOUT:-1800}" keel.bench=firmware "keel.n=$n" \
	"keel.profile=${BENCH_PROFILE:-0}" </dev/null 2>&1 |
	sed -u 's/\r//g' | grep --line-buffered -v "TCG doesn't support requested feature" |
	tee "$log" | grep --line-buffered -E '^bench: '
grep -q '^bench: done' "$log" || {
	echo "bench/firmware: FAIL: the benchmark did not complete; see ${log#"$top"/}"
	exit 1
}
awk '/^bench: median gen[12] ms / { split($7, r, "="); printf "bench/firmware: %s boot time keel/QEMU = %s (goal <= 0.70): %s\n", $3, r[2], (r[2] <= 0.7 ? "met" : "NOT met") }
     /^bench: median gen[12] own_kib / { split($5, k, "="); printf "bench/firmware: %s keel-vmm own memory = %.2f MiB (goal <= 5 MiB): %s\n", $3, k[2] / 1024, (k[2] <= 5120 ? "met" : "NOT met") }
     /^bench: median gen[12] own_anon_kib / { split($5, k, "="); split($6, q, "="); printf "bench/firmware: %s own anonymous memory (no file pages) keel-vmm %.2f MiB, QEMU %.2f MiB\n", $3, k[2] / 1024, q[2] / 1024 }' "$log"
# The phases: when each stamp's line arrived, median over the boots, per VMM and generation.
awk '/^bench: stamp / { key = $3 " " $4; t = $6; $1 = $2 = $3 = $4 = $5 = $6 = ""; sub(/^ +/, "");
       k = key " | " $0; n[k]++; v[k, n[k]] = t }
     END { for (k in n) { m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, i];
             for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
             printf "bench/firmware: phase %s: median %.0f ms of %d\n", k, (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2), m } }' "$log" | sort
