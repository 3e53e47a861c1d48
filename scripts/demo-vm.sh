#!/bin/sh
# The user's part of `make demo` (scripts/demo.sh): with keeld answering on $KEEL_SOCKET and
# keel on PATH, make the Debian 12 system of lab test 6 a Generation 2 VM, start it and attach
# to its serial console, the way a keel user would. Runs in the nested lab (busybox sh, the
# lab's /init in demo mode) and on a host with VT-x/AMD-V (scripts/demo.sh).
#   demo-vm.sh DISK.vhdx    a writable copy of the debian12-vhdx image, in a storage pool
# Environment: DEMO_CPUS (default 2), DEMO_MEMORY (default 512M).
# Exit status: keel console's (0 when the guest powered off or the user detached); 1 when
# the VM could not be created or started, or crashed.
set -u
disk=$1
cpus=${DEMO_CPUS:-2}
memory=${DEMO_MEMORY:-512M}
name=debian12

say() { echo "demo: $*"; }
state() { keel vm show "$name" --json | sed -n 's/^ *"state": "\([A-Za-z]*\)".*/\1/p'; }
run() { # show a keel command as the user would type it, then run it
	say "\$ $*"
	"$@"
}

run keel vm create "$name" --generation 2 --cpus "$cpus" --memory "$memory" --disk "$disk" \
	--vsock || exit 1
keel vm show "$name" | grep -E '^(Generation|NVRAM file|Disk)' | sed 's/^/demo:   /'
run keel vm start "$name" || exit 1
say "Debian 12 is booting through OVMF (UEFI), GRUB and systemd; its serial console follows."
say "log in as root, password keel."
say "the VM has a vsock channel for keel-agent, the integration services (docs/integration-services.md)."
say "leave with 'poweroff' at the guest's shell (the VM powers off and the demo ends),"
say "or detach with Ctrl-] (the demo then turns the VM off)."
run keel console "$name"
rc=$?
# The console closes when the guest powers off; keeld marks the VM Off as its worker ends.
i=0
while state=$(state) && [ "$state" = Running ] && [ $i -lt 20 ]; do
	i=$((i + 1))
	sleep 0.5
done
case "$state" in
Off) ;;
Crashed)
	say "the VM crashed; its log (keel vm log $name) ends:"
	keel vm log "$name" | tail -n 5 | sed 's/^/demo:   /'
	rc=1
	;;
*)
	say "the console was detached with the VM $state: turning it off"
	keel vm turn-off "$name" >/dev/null
	;;
esac
say "VM '$name' is $(state) (keel console exited with status $rc)"
exit "$rc"
