#!/usr/bin/env bash
# bench/switch: a NAT switch from request to a DHCP lease, keel against the same parts set up
# by hand (switch.py). Needs `make` (build/), root, iproute2, nftables, dnsmasq, busybox.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
b=${BUILD:-$top/build}
for f in "$b/src/daemon/keeld" "$b/src/cli/keel" "$b/src/vmm/keel-vmm"; do
	[ -e "$f" ] || { echo "bench/switch: $f is missing; run make" >&2; exit 1; }
done
exec python3 "$top/bench/switch/switch.py" --keeld "$b/src/daemon/keeld" --keel "$b/src/cli/keel" \
	--keel-vmm "$b/src/vmm/keel-vmm" "$@"
