#!/usr/bin/env bash
# bench/jail: the worker jail's start-up cost (jail.py). Needs `make` (build/), root, /dev/kvm.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${BUILD:-$top/build}
for f in "$b/src/vmm/keel-vmm" "$b/tests/guests/debug-exit.elf"; do
	[ -e "$f" ] || { echo "bench/jail: $f is missing; run make" >&2; exit 1; }
done
exec python3 "$top/bench/jail/jail.py" --keel-vmm "$b/src/vmm/keel-vmm" \
	--guest "$b/tests/guests/debug-exit.elf" "$@"
