#!/usr/bin/env bash
# make demo: boot Debian's cloud kernel with a busybox initramfs under keel-vmm and leave the
# user at a shell on the guest's serial console. On a host with VT-x/AMD-V that happens
# directly; without, inside the nested lab (QEMU TCG with an emulated AMD-V CPU).
# Environment: DEMO_CPUS (default 2), DEMO_MEMORY (default 512M), LAB_VMM=keel|qemu (in the
# lab only: qemu runs QEMU with KVM instead of keel-vmm, for checking the lab itself).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"

cpus=${DEMO_CPUS:-2}
memory=${DEMO_MEMORY:-512M}
vmm=${LAB_VMM:-keel}
# The guest command line the lab scenarios use (console=ttyS0, quiet and fast).
cmdline=$(sh -c '. "$1"; echo "$GUEST_CMDLINE"' sh "$top/tests/lab/host/api.sh")

[ -x "$top/build/keel-vmm" ] || lab_die "build/keel-vmm does not exist; run make first"

if grep -qwE 'vmx|svm' /proc/cpuinfo && [ "${DEMO_FORCE_LAB:-0}" = 0 ]; then
	echo "demo: this host has hardware virtualization: keel-vmm boots Debian's cloud kernel directly"
	lab_guest_build
	echo "demo: leave with 'poweroff -f' at the guest's shell, or Ctrl-A x (keel-vmm quits at once)"
	exec "$top/build/keel-vmm" --name demo --cpus "$cpus" --memory "$memory" \
		--kernel "$LAB_KDIR/vmlinuz" --initrd "$LAB_OUT/guest.cpio" --cmdline "$cmdline"
fi

echo "demo: this host has no VT-x/AMD-V (no vmx/svm in /proc/cpuinfo), so the demo runs inside the nested lab"
lab_build
echo "demo: booting the lab (QEMU TCG, emulated AMD-V), then $vmm with Debian's kernel;" \
	"the guest's shell comes up in about 15-20 s"
echo "demo: leave with 'poweroff -f' at the guest's shell (the lab powers off too);" \
	"Ctrl-A x stops the lab's QEMU at once; keel-vmm's own Ctrl-A x is Ctrl-A Ctrl-A x here"
set +e
lab_boot demo 0 "keel.vmm=$vmm" "keel.cpus=$cpus" "keel.memory=$memory" \
	2> >(grep --line-buffered -v "TCG doesn't support requested feature" >&2)
rc=$?
echo "demo: the lab exited (status $rc)"
exit "$rc"
