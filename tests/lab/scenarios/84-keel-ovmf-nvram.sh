# UEFI variables persist in keel's NVRAM file (issue 11): OVMF on keel-vmm (--firmware uefi
# --nvram FILE) writes a non-volatile variable from its UEFI Shell (`setvar`, through the
# CFI flash's program and erase commands), powers off, and a new keel-vmm on the same file
# finds it (`dmpstore`). The variable is in keel's own namespace (a GUID of its own): the
# firmware refuses unknown names in the UEFI global one.
OVMF=/usr/share/OVMF
GUID=4b45454c-0b00-4e4c-8000-000000000084
VARS=$VM_DIR/persist.vars.fd
[ -f "$OVMF/OVMF_CODE_4M.fd" ] || fail "the lab image has no $OVMF/OVMF_CODE_4M.fd"
vm_command() {
	printf 'exec keel-vmm --name %s --firmware uefi --nvram %s --memory 256M --no-rng\n' "$1" "$VARS"
}

# shell NAME: start keel-vmm, wait for the UEFI Shell's prompt (ESC skips the countdown).
shell() {
	vm_start "$1"
	vm_wait "$1" 'UEFI Interactive Shell' 280
	i=0
	until tr -d '\r' <"$VM_DIR/$1/out" | grep -q 'Shell> '; do
		[ ! -e "$VM_DIR/$1/status" ] || fail "VM $1 exited with status $(cat "$VM_DIR/$1/status")"
		i=$((i + 1))
		[ "$i" -le 30 ] || fail "VM $1: no 'Shell> ' prompt within 30 s of the shell's banner"
		printf '\033' >"$VM_DIR/$1/in"
		sleep 1
	done
}

# off NAME: `reset -s` at the shell; keel-vmm must exit 0.
off() {
	printf 'reset -s\r' >"$VM_DIR/$1/in"
	vm_wait_exit "$1" 60
	[ "$VM_STATUS" = 0 ] || fail "VM $1: 'reset -s': keel-vmm exit status $VM_STATUS"
}

shell write
printf 'setvar KeelLab -guid %s -nv -bs =L"persisted"\r' "$GUID" >"$VM_DIR/write/in"
sleep 5
printf 'dmpstore KeelLab -guid %s\r' "$GUID" >"$VM_DIR/write/in"
# The shell colours its output ("Variable ESC[..mNV+BS ESC[..m ...KeelLab... DataSize"); the
# pattern reaches awk -v, which eats backslashes: [+] for a plus.
vm_wait write "Variable .*NV[+]BS.*KeelLab.*DataSize" 60
echo "lab: written: $VM_LINE"
off write
[ -f "$VARS" ] || fail "no NVRAM file $VARS after the first boot"
[ ! -e "$VARS.new" ] || fail "a stray $VARS.new was left behind"

shell read
printf 'dmpstore KeelLab -guid %s\r' "$GUID" >"$VM_DIR/read/in"
vm_wait read "Variable .*NV[+]BS.*KeelLab.*DataSize" 60 ||
	fail "the variable written in the first boot is not in the store after power-off"
echo "lab: after power-off and a new keel-vmm: $VM_LINE"
tr -d '\r' <"$VM_DIR/read/out" | grep -q 'Variable.*not found' &&
	fail "dmpstore says the variable is not found"
off read
