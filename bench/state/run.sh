#!/usr/bin/env bash
# Saved-state benchmark (issue 6): save and restore time of a guest with BENCH_MIB (512) MiB of
# RAM, BENCH_FILL (256) MiB of it filled with random data, keel-vmm (save to a directory,
# --restore with the memory file mapped lazily) against QEMU with KVM (migrate to a file,
# -incoming from it), both inside one nested-lab session. Restore time is VMM start to the
# restored guest's first console line. Prints medians and the keel/QEMU ratios (goal: restore
# <= 0.1x QEMU's); console log: build/lab/bench-state.log. Environment: BENCH_N (restores per
# VMM, default 3), BENCH_MIB, BENCH_FILL, BENCH_TIMEOUT (lab session, default 1500 s).
# Method and results: docs/BENCHMARKS.md.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"

n=${BENCH_N:-3}
mib=${BENCH_MIB:-512}
fill=${BENCH_FILL:-256}
log=$LAB_OUT/bench-state.log
[ -x "$top/build/keel-vmm" ] || lab_die "build/keel-vmm does not exist; run make first"
lab_build || exit 1
echo "bench/state: one lab session: save, then $n restores each of keel-vmm and QEMU" \
	"(microvm), $mib MiB guests with $fill MiB filled; log: ${log#"$top"/}"
lab_boot bench "${BENCH_TIMEOUT:-1500}" keel.bench=state "keel.n=$n" "keel.mib=$mib" \
	"keel.fill=$fill" </dev/null 2>&1 |
	sed -u 's/\r//g' | grep --line-buffered -v "TCG doesn't support requested feature" |
	tee "$log" | grep --line-buffered -E '^bench: '
grep -q '^bench: done' "$log" || {
	echo "bench/state: FAIL: the benchmark did not complete; see ${log#"$top"/}"
	exit 1
}
awk '/^bench: median restore ms / { split($7, r, "="); printf "bench/state: restore time keel/QEMU = %s (goal <= 0.10): %s\n", r[2], (r[2] <= 0.1 ? "met" : "NOT met") }
     /^bench: median save ms / { split($7, r, "="); printf "bench/state: save time keel/QEMU = %s\n", r[2] }' "$log"
