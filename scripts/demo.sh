#!/usr/bin/env bash
# make demo: what a keel user does. keeld runs; the Debian 12 system image of lab test 6
# (scripts/images/debian12-vhdx.sh: systemd, Debian's cloud kernel, GRUB EFI, in a dynamic
# VHDX) becomes a Generation 2 VM with `keel vm create`, starts with `keel vm start`, and the
# user is left at its login prompt through `keel console` (scripts/demo-vm.sh). On a host with
# VT-x/AMD-V and a usable /dev/kvm that happens on the host (as root: keeld starts jailed
# workers); without, inside the nested lab (QEMU TCG with an emulated AMD-V CPU), whose console
# is this terminal (scripts/demo-where.sh decides, and the demo says why in one line).
# Environment: DEMO_CPUS (default 2), DEMO_MEMORY (default 512M), DEMO_FORCE_LAB=1 (use the
# lab even with VT-x/AMD-V).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/lab/lab.sh
. "$top/tests/lab/lab.sh"
# shellcheck source=scripts/demo-where.sh
. "$top/scripts/demo-where.sh"

cpus=${DEMO_CPUS:-2}
memory=${DEMO_MEMORY:-512M}
for p in keel-vmm keeld keel; do
	[ -x "$top/build/$p" ] || lab_die "build/$p does not exist; run make first"
done

where=$(demo_where /proc/cpuinfo /dev/kvm)
[ "${DEMO_FORCE_LAB:-0}" = 0 ] || where="lab: DEMO_FORCE_LAB=${DEMO_FORCE_LAB} asks for it"
if [ "$where" = host ]; then
	echo "demo: this host has hardware virtualization and /dev/kvm: keeld runs here and boots Debian 12 directly"
	[ "$(id -u)" = 0 ] || lab_die "keeld starts each VM's worker jailed under a uid of its own: run the demo as root"
	image=$("$top/scripts/images/build.sh" debian12-vhdx)
	work=$(mktemp -d /var/tmp/keel-demo.XXXXXX)
	export KEEL_SOCKET=$work/keeld.sock
	PATH=$top/build:$PATH
	keeld_pid=
	# On every way out (the end, an error, Ctrl-C before the console, a hangup, SIGTERM):
	# turn the VM off first, since keeld never stops VMs when it exits and each worker has a
	# session of its own (it would run on, its disk deleted below), then keeld, then the
	# directory. keeld has a session of its own too, so that the signal that ends the demo
	# does not end keeld before it has turned the VM off.
	# shellcheck disable=SC2317 # called by the traps
	demo_cleanup() {
		trap - EXIT
		trap '' HUP INT TERM # a second Ctrl-C does not cut the cleanup short
		if [ -n "$keeld_pid" ]; then
			keel vm turn-off debian12 >/dev/null 2>&1
			kill "$keeld_pid" 2>/dev/null
			wait "$keeld_pid" 2>/dev/null
		fi
		rm -rf "$work"
	}
	trap demo_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
	setsid "$top/build/keeld" --state-dir "$work/state" --socket "$KEEL_SOCKET" </dev/null >"$work/keeld.log" 2>&1 &
	keeld_pid=$!
	for i in $(seq 101); do
		keel vm list >/dev/null 2>&1 && break
		kill -0 "$keeld_pid" 2>/dev/null || lab_die "keeld stopped: $(tail -n 3 "$work/keeld.log")"
		[ "$i" -le 100 ] || lab_die "keeld did not answer on $KEEL_SOCKET within 10 s: $(tail -n 3 "$work/keeld.log")"
		sleep 0.1
	done
	mkdir -p "$work/pool"
	keel pool create demo --path "$work/pool" >/dev/null
	echo "demo: keeld is running (state in $work); copying the Debian 12 image into its pool"
	cp "$image" "$work/pool/debian12.vhdx"
	# The VM writes it: private (keeld refuses a disk every user may read, docs/security.md).
	chmod 600 "$work/pool/debian12.vhdx"
	set +e
	DEMO_CPUS=$cpus DEMO_MEMORY=$memory sh "$top/scripts/demo-vm.sh" "$work/pool/debian12.vhdx"
	exit $?
fi

echo "demo: ${where#lab: }, so the demo runs inside the nested lab"
lab_build
LAB_IMAGES=debian12-vhdx lab_images
echo "demo: booting the lab (QEMU TCG, emulated AMD-V); in it keeld, and keel-vmm with OVMF" \
	"booting Debian 12: the login prompt comes in 2-5 minutes"
echo "demo: Ctrl-A x stops the lab's QEMU at once"
set +e
lab_boot demo 0 "keel.cpus=$cpus" "keel.memory=$memory" \
	2> >(grep --line-buffered -v "TCG doesn't support requested feature" >&2)
rc=$?
echo "demo: the lab exited (status $rc)"
exit "$rc"
