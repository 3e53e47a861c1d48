# Generation 1 firmware on keel-vmm (issue 11): Debian's SeaBIOS (--firmware bios) on keel's
# Q35-compatible platform, nested in the lab. It must print its banner on the serial console
# (fw_cfg etc/sercon-port), look for a boot device and find none (the VM has no disk), and
# keel-vmm must keep running (SeaBIOS retries every 60 s): killed at the end. The firmware's
# own log (port 0x402, --firmware-debug) goes to the same output and is shown on failure.
[ -f /usr/share/seabios/bios-256k.bin ] || fail "the lab image has no /usr/share/seabios/bios-256k.bin"
vm_command() {
	printf 'exec keel-vmm --name %s --firmware bios --memory 256M --no-rng --firmware-debug\n' "$1"
}
vm_start bios
vm_wait bios 'SeaBIOS \(version' 120
echo "lab: $VM_LINE"
vm_wait bios 'No bootable device' 180
echo "lab: SeaBIOS found no boot device, as expected"
[ ! -e "$VM_DIR/bios/status" ] || fail "keel-vmm exited with status $(cat "$VM_DIR/bios/status")"
if grep -q 'keel-vmm: error' "$VM_DIR/bios/out"; then
	fail "keel-vmm reported an error: $(grep 'keel-vmm: error' "$VM_DIR/bios/out" | head -n 3)"
fi
vm_kill bios
