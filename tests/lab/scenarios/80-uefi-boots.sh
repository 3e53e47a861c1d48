# UEFI firmware in the lab (issue 14): Debian's OVMF booted again and again by Debian's QEMU
# with KVM (keel-vmm cannot boot firmware yet). OVMF writes CR8, which made the lab's outer
# QEMU 10.0.2 abort (docs/lab.md, "The lab's QEMU and firmware guests"): the lab must survive
# every boot. N boots without SMM, then N with SMM (OVMF's SMM build, the one Secure Boot
# needs), each on a fresh copy of the empty variable store, to the built-in UEFI Shell (there
# is no boot device, so OVMF falls through to it), then `reset -s` at its prompt, which powers
# the VM off: QEMU must exit 0. Secure Boot itself is 81-uefi-secure-boot: with the keys
# enrolled OVMF refuses this shell (it is not signed).
# N: keel.uefi_n=N on the lab's kernel command line, default 1. A boot takes 50-70 s in the
# lab (3.5 s with TCG alone on the host; docs/lab.md says where the time goes) and a scenario
# has 300 s (LAB_SCENARIO_TIMEOUT), so raise that with N: for ten boots,
#   LAB_ONLY=80-uefi LAB_SCENARIO_TIMEOUT=900 LAB_ARGS=keel.uefi_n=5 tests/lab/run.sh
N=1
for w in $(cat /proc/cmdline); do
	case $w in keel.uefi_n=*) N=${w#*=} ;; esac
done
case "$N" in '' | *[!0-9]*) fail "keel.uefi_n=$N is not a number" ;; esac
OVMF=/usr/share/OVMF

# vm_start runs what vm_command prints, and the API's translation for QEMU boots a kernel on
# microvm. For firmware on q35 print this command instead, so that vm_start, vm_wait,
# vm_wait_exit and the runner's console dump work as for any VM. -nodefaults: no NIC (whose
# iPXE ROM the lab does not have) and no VGA. UEFI_SMM and UEFI_CODE: set by uefi_boot.
vm_command() {
	_m=q35 _sec=
	# The SMM build refuses to run without SMM, and only SMM may write its flash.
	[ "$UEFI_SMM" = off ] || _m=q35,smm=on _sec=' -global driver=cfi.pflash01,property=secure,value=on'
	printf 'exec qemu-system-x86_64 -M %s -accel kvm -cpu host -m 256M -nodefaults' "$_m"
	printf ' -no-user-config -display none -serial stdio%s' "$_sec"
	printf ' -drive if=pflash,format=raw,unit=0,readonly=on,file=%s/%s' "$OVMF" "$UEFI_CODE"
	printf ' -drive if=pflash,format=raw,unit=1,file=%s\n' "$VM_DIR/$1.vars.fd"
}

since() { # seconds since the VM started, one decimal
	read -r _t _ </proc/uptime
	awk -v a="$t0" -v b="$_t" 'BEGIN { printf "%.1f", b - a }'
}

# uefi_boot NAME SMM(on|off) CODE: one boot to the shell's prompt and a power-off from it.
uefi_boot() {
	UEFI_SMM=$2 UEFI_CODE=$3
	# A fresh copy of the empty store for each boot, as for a new VM (README.Debian: every
	# guest gets its own); Secure Boot is off in it, so the built-in shell may run.
	cp "$OVMF/OVMF_VARS_4M.fd" "$VM_DIR/$1.vars.fd" || fail "cannot copy OVMF_VARS_4M.fd"
	read -r t0 _ </proc/uptime
	vm_start "$1"
	vm_wait "$1" 'UEFI Interactive Shell' 240
	banner=$(since)
	# The shell counts down 5 s before running startup.nsh; ESC skips that. A key typed before
	# the countdown reads the keyboard may be lost, so type ESC until the prompt shows (at the
	# prompt, ESC only clears the empty line).
	i=0
	until tr -d '\r' <"$VM_DIR/$1/out" | grep -q 'Shell> '; do
		[ ! -e "$VM_DIR/$1/status" ] ||
			fail "VM $1 exited with status $(cat "$VM_DIR/$1/status") before the shell's prompt"
		i=$((i + 1))
		[ "$i" -le 30 ] || fail "VM $1: no 'Shell> ' prompt within 30 s of the shell's banner"
		printf '\033' >"$VM_DIR/$1/in"
		sleep 1
	done
	echo "lab: uefi boot $k (smm=$2): shell after $(since) s (banner at $banner s)"
	# The shell takes Enter as a carriage return (vm_send types a line feed).
	printf 'reset -s\r' >"$VM_DIR/$1/in"
	vm_wait_exit "$1" 60
	[ "$VM_STATUS" = 0 ] || fail "VM $1: 'reset -s' at the UEFI shell: QEMU exit status $VM_STATUS"
	rm -f "$VM_DIR/$1.vars.fd"
}

k=0
for smm in off on; do
	code=OVMF_CODE_4M.fd
	[ "$smm" = off ] || code=OVMF_CODE_4M.secboot.fd
	j=0
	while [ "$j" -lt "$N" ]; do
		j=$((j + 1)) k=$((k + 1))
		uefi_boot "uefi$k-smm-$smm" "$smm" "$code"
	done
done
