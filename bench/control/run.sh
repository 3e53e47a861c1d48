#!/usr/bin/env bash
# bench/control: keel-vmm start to control socket ready (CPU ms), and keeld's API call to
# VM running for 20 VMs one after another and at once, each next to QEMU in the same run.
# Needs `make` (build/) and /dev/kvm. Results go to stdout and, with --record, into
# docs/BENCHMARKS.md. Options are passed on to control.py (--runs N, --vms N).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${BUILD:-$top/build}
for f in "$b/src/daemon/keeld" "$b/src/vmm/keel-vmm" "$b/tests/daemon/daemon-guest.elf"; do
	[ -e "$f" ] || { echo "bench/control: $f is missing; run make" >&2; exit 1; }
done
exec python3 "$top/bench/control/control.py" --keeld "$b/src/daemon/keeld" \
	--keel-vmm "$b/src/vmm/keel-vmm" --guest "$b/tests/daemon/daemon-guest.elf" "$@"
