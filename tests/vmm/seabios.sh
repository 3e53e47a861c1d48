#!/usr/bin/env bash
# Debian's SeaBIOS runs on keel-vmm's Q35-compatible platform (--firmware bios): it prints
# its banner on the serial console (fw_cfg etc/sercon-port), finds no disk and says so. The
# VM sitting in the firmware is then saved (control socket) and restored into a new worker,
# which must carry on (the chipset, fw_cfg and the firmware's RAM come back) until quit. Once
# SeaBIOS has programmed the chipset, its image's pages are no longer resident in keel-vmm. A 3 GiB
# VM's RAM (SeaBIOS's e820 log, --firmware-debug) stays clear of its ECAM at 0xB0000000.
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
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
failed=0

# ctl SOCKET JSON: one control command, its answer on stdout.
ctl() {
	python3 - "$1" "$2" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.1)
s.sendall(sys.argv[2].encode() + b"\n")
print(s.recv(4096).decode().strip())
PY
}

"$vmm" --firmware bios --memory 64M --no-rng --serial "file:$tmp/serial" \
	--control "$tmp/ctl" 2>"$tmp/stderr" &
pid=$!
for _ in $(seq 600); do
	grep -q 'No bootable device' "$tmp/serial" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
echo "serial console:"
tr -d '\033' <"$tmp/serial" | sed 's/^/  | /'
grep -q 'SeaBIOS (version' "$tmp/serial" || { echo "FAIL: no SeaBIOS banner"; failed=1; }
grep -q 'No bootable device' "$tmp/serial" || { echo "FAIL: SeaBIOS did not finish looking for a boot device"; failed=1; }
# The firmware has left its image once it programmed the chipset (PCIEXBAR): keel-vmm drops
# the image's pages from its resident set (firmware_release), so the file's mapping holds none
# of the ~200 KiB SeaBIOS read while it started (a page read again since would count).
fw_rss=$(awk -v f="$bios" '$NF == f { m = 1; next } /^[0-9a-f]+-[0-9a-f]+ / { m = 0 }
	m && $1 == "Rss:" { s += $2 } END { print s + 0 }' "/proc/$pid/smaps" 2>/dev/null)
echo "firmware image resident in keel-vmm after SeaBIOS's set-up: ${fw_rss:-?} KiB"
[ -n "$fw_rss" ] && [ "$fw_rss" -le 8 ] ||
	{ echo "FAIL: $bios still has ${fw_rss:-?} KiB resident in keel-vmm (want at most 8)"; failed=1; }

mkdir "$tmp/save"
out=$(ctl "$tmp/ctl" '{"execute":"save","arguments":{"dir":"'"$tmp/save"'"}}')
[ "$out" = '{"return":{}}' ] || { echo "FAIL: save in the firmware: $out"; failed=1; }
ctl "$tmp/ctl" '{"execute":"quit"}' >/dev/null
wait "$pid"
pid=
"$vmm" --firmware bios --memory 64M --no-rng --serial "file:$tmp/serial2" \
	--control "$tmp/ctl2" --restore "$tmp/save" 2>>"$tmp/stderr" &
pid=$!
sleep 3
if kill -0 "$pid" 2>/dev/null; then
	out=$(ctl "$tmp/ctl2" '{"execute":"status"}')
	case "$out" in *'"state":"running"'*) ;; *) echo "FAIL: restored VM: status $out"; failed=1 ;; esac
	ctl "$tmp/ctl2" '{"execute":"quit"}' >/dev/null
	wait "$pid"
	rc=$?
	pid=
	[ "$rc" = 0 ] || { echo "FAIL: the restored VM's worker exited with $rc after quit"; failed=1; }
else
	wait "$pid"
	echo "FAIL: the restored VM's worker exited with $? at once"
	pid=
	failed=1
fi
# A VM above 2.75 GiB: SeaBIOS puts ECAM at 0xB0000000, so RAM below 4 GiB must end before it
# (keel ends it at 2 GiB, as QEMU's q35); RAM to 3 GiB hid ECAM from the firmware.
"$vmm" --firmware bios --memory 3G --no-rng --firmware-debug --serial "file:$tmp/serial3" \
	2>"$tmp/debug3" &
pid=$!
for _ in $(seq 600); do
	grep -q 'No bootable device' "$tmp/serial3" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
grep -q 'using q35 mmconfig at 0xb0000000' "$tmp/debug3" ||
	{ echo "FAIL: 3 GiB VM: SeaBIOS did not put ECAM at 0xB0000000"; failed=1; }
# SeaBIOS's e820 lines: "  N: START - END = 1 RAM" (hexadecimal, 16 digits).
overlap=0
while read -r start end; do
	((16#$start < 0xc0000000 && 16#$end > 0xb0000000)) && overlap=1
done < <(sed -n 's/.* \([0-9a-f]\{16\}\) - \([0-9a-f]\{16\}\) = 1 RAM.*/\1 \2/p' "$tmp/debug3")
if [ "$overlap" = 1 ]; then
	echo "FAIL: 3 GiB VM: RAM overlaps SeaBIOS's ECAM at 0xB0000000:"
	grep '= 1 RAM' "$tmp/debug3" | sed 's/^/  | /'
	failed=1
fi
grep -q '= 1 RAM' "$tmp/debug3" || { echo "FAIL: 3 GiB VM: no e820 map in SeaBIOS's log"; failed=1; }
if grep -q 'error' "$tmp/stderr"; then
	echo "FAIL: keel-vmm reported errors:"
	sed 's/^/  | /' "$tmp/stderr"
	failed=1
fi
[ "$failed" = 0 ] && echo "ok: SeaBIOS banner and 'No bootable device' on the serial console; its image released from keel-vmm's memory; saved in the firmware and restored; a 3 GiB VM's RAM clear of SeaBIOS's ECAM"
exit "$failed"
