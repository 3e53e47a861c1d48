# Generation 2 firmware on keel-vmm (issue 11): Debian's OVMF (--firmware uefi) with a new
# per-VM variable store (--nvram, created from OVMF_VARS_4M.fd) on keel's Q35-compatible
# platform, nested in the lab (OVMF needs paging, which the lab's KVM has). With no boot
# device OVMF falls through to its built-in UEFI Shell; ESC skips the startup countdown,
# `reset -s` powers off (OVMF writes SLP_EN to the PM block where it put PMBASE), and
# keel-vmm must exit 0. The store must still be a variable store of the template's size.
# The firmware's log (port 0x402, --firmware-debug) is in the VM's output for failures.
OVMF=/usr/share/OVMF
[ -f "$OVMF/OVMF_CODE_4M.fd" ] || fail "the lab image has no $OVMF/OVMF_CODE_4M.fd"
vm_command() {
	printf 'exec keel-vmm --name %s --firmware uefi --nvram %s --memory 256M --no-rng --firmware-debug\n' \
		"$1" "$VM_DIR/$1.vars.fd"
}
vm_start uefi
vm_wait uefi 'UEFI Interactive Shell' 280
echo "lab: OVMF reached its shell: $VM_LINE"
i=0
until tr -d '\r' <"$VM_DIR/uefi/out" | grep -q 'Shell> '; do
	[ ! -e "$VM_DIR/uefi/status" ] ||
		fail "keel-vmm exited with status $(cat "$VM_DIR/uefi/status") before the shell's prompt"
	i=$((i + 1))
	[ "$i" -le 30 ] || fail "no 'Shell> ' prompt within 30 s of the shell's banner"
	printf '\033' >"$VM_DIR/uefi/in"
	sleep 1
done
printf 'reset -s\r' >"$VM_DIR/uefi/in"
vm_wait_exit uefi 60
[ "$VM_STATUS" = 0 ] || fail "'reset -s' at the UEFI shell: keel-vmm exit status $VM_STATUS"
size=$(stat -c %s "$VM_DIR/uefi.vars.fd" 2>/dev/null)
[ "$size" = "$(stat -c %s "$OVMF/OVMF_VARS_4M.fd")" ] || fail "the variable store is ${size:-missing} bytes"
