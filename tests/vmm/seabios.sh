#!/usr/bin/env bash
# Debian's SeaBIOS runs on keel-vmm's Q35-compatible platform (--firmware bios): it prints
# its banner on the serial console (fw_cfg etc/sercon-port), finds no disk and says so.
# usage: seabios.sh KEEL_VMM
set -uo pipefail
vmm=$1
bios=/usr/share/seabios/bios-256k.bin
if [ ! -f "$bios" ]; then
	echo "SKIP: $bios is missing (scripts/setup.sh installs Debian's seabios package)"
	exit 77
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "SKIP: no /dev/kvm"
	exit 77
fi
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
"$vmm" --firmware bios --memory 64M --no-rng --serial "file:$tmp/serial" 2>"$tmp/stderr" &
pid=$!
for _ in $(seq 600); do
	grep -q 'No bootable device' "$tmp/serial" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
echo "serial console:"
tr -d '\033' <"$tmp/serial" | sed 's/^/  | /'
failed=0
grep -q 'SeaBIOS (version' "$tmp/serial" || { echo "FAIL: no SeaBIOS banner"; failed=1; }
grep -q 'No bootable device' "$tmp/serial" || { echo "FAIL: SeaBIOS did not finish looking for a boot device"; failed=1; }
if grep -q 'error' "$tmp/stderr"; then
	echo "FAIL: keel-vmm reported errors:"
	sed 's/^/  | /' "$tmp/stderr"
	failed=1
fi
[ "$failed" = 0 ] && echo "ok: SeaBIOS banner and 'No bootable device' on the serial console"
exit "$failed"
