# Secure Boot in the lab (issue 14): OVMF's SMM build with Debian's variable store that has
# the Microsoft keys enrolled and Secure Boot on, booted by Debian's QEMU with KVM (keel-vmm
# cannot boot firmware yet). With no boot device OVMF tries its built-in UEFI Shell, which is
# not signed: it must refuse it ("Security Violation"), find nothing else to boot and wait for
# a key; QEMU is stopped there. One boot, about 50 s (80-uefi-boots says why it is that slow).
OVMF=/usr/share/OVMF
# A copy of the store, as for a new VM (README.Debian: every guest gets its own).
cp "$OVMF/OVMF_VARS_4M.ms.fd" "$VM_DIR/sb.vars.fd" || fail "cannot copy OVMF_VARS_4M.ms.fd"

# vm_start runs what vm_command prints: here QEMU on q35 with SMM and OVMF instead of the
# API's kernel boot on microvm (as in 80-uefi-boots). SMM is what the SMM build requires and
# what alone may write its flash, so that the guest cannot change the keys.
vm_command() {
	echo "exec qemu-system-x86_64 -M q35,smm=on -accel kvm -cpu host -m 256M -nodefaults" \
		"-no-user-config -display none -serial stdio" \
		"-global driver=cfi.pflash01,property=secure,value=on" \
		"-drive if=pflash,format=raw,unit=0,readonly=on,file=$OVMF/OVMF_CODE_4M.secboot.fd" \
		"-drive if=pflash,format=raw,unit=1,file=$VM_DIR/sb.vars.fd"
}

read -r t0 _ </proc/uptime
vm_start sb
vm_wait sb 'EFI Internal Shell.*Security Violation' 240
vm_wait sb 'No bootable option or device was found' 60
read -r t1 _ </proc/uptime
echo "lab: uefi boot (smm=on, Secure Boot): unsigned shell refused after" \
	"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
# SIGTERM: QEMU stops cleanly.
kill "$(cat "$VM_DIR/sb/pid")"
vm_wait_exit sb 30
