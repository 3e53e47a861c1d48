#!/bin/sh
# Host-side check of where `make demo` runs its VM (scripts/demo-where.sh, no lab needed): on
# the host only with vmx or svm in /proc/cpuinfo AND a /dev/kvm that is a character device
# opening for reading and writing; else in the nested lab, with one line saying why (once the
# flag alone chose the host, and a host without a usable /dev/kvm failed at `keel vm start`).
# Fake cpuinfo files and fake KVM paths stand in for the host's.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/demo-where.sh
. "$top/scripts/demo-where.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0

# want CPUINFO KVM EXPECTED: demo_where's one line is EXPECTED.
want() {
	got=$(demo_where "$1" "$2")
	if [ "$got" = "$3" ]; then
		echo "ok: $(basename "$1") $2 -> $got"
	else
		echo "FAIL: demo_where $1 $2 said '$got', expected '$3'"
		failed=1
	fi
}

printf 'processor\t: 0\nflags\t\t: fpu vme de pse vmx sse2\n' >"$dir/vmx"
printf 'processor\t: 0\nflags\t\t: fpu vme svm sse2\n' >"$dir/svm"
printf 'processor\t: 0\nflags\t\t: fpu vme de pse sse2 hypervisor\n' >"$dir/none"
# A flag's name inside another word is not the flag.
printf 'processor\t: 0\nflags\t\t: fpu vmxnot svmx\n' >"$dir/like"
: >"$dir/kvm-file"
# A character device that opens: /dev/null (usable KVM for the check's purpose).
ok=/dev/null
# A character device that does not open: no driver behind major 0 (ENXIO), as a /dev/kvm
# node left without its module. Making one needs root (mknod).
if mknod "$dir/kvm-dead" c 0 0 2>/dev/null; then :; else
	echo "SKIP: mknod (root) is needed for a character device that does not open"
	exit 77
fi

want "$dir/vmx" "$ok" host
want "$dir/svm" "$ok" host
want "$dir/none" "$ok" "lab: this host has no VT-x/AMD-V (no vmx/svm in $dir/none)"
want "$dir/like" "$ok" "lab: this host has no VT-x/AMD-V (no vmx/svm in $dir/like)"
want "$dir/missing" "$ok" "lab: this host has no VT-x/AMD-V (no vmx/svm in $dir/missing)"
want "$dir/vmx" "$dir/no-kvm" "lab: this host has VT-x/AMD-V but no $dir/no-kvm (load kvm_intel or kvm_amd)"
want "$dir/vmx" "$dir/kvm-file" "lab: this host has VT-x/AMD-V but $dir/kvm-file is not a character device"
want "$dir/svm" "$dir" "lab: this host has VT-x/AMD-V but $dir is not a character device"
want "$dir/vmx" "$dir/kvm-dead" "lab: this host has VT-x/AMD-V but $dir/kvm-dead does not open for reading and writing (No such device or address)"

# A user the device does not open for (a root-only /dev/kvm): EACCES, and the lab.
if command -v setpriv >/dev/null; then
	mknod -m 600 "$dir/kvm-root" c 1 3 # /dev/null's numbers, root's alone
	cp "$top/scripts/demo-where.sh" "$dir/where.sh"
	chmod 755 "$dir"
	chmod 644 "$dir/vmx" "$dir/where.sh"
	# shellcheck disable=SC2016 # expanded by the inner sh
	got=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
		sh -c '. "$0" && demo_where "$1" "$2"' "$dir/where.sh" "$dir/vmx" "$dir/kvm-root")
	expected="lab: this host has VT-x/AMD-V but $dir/kvm-root does not open for reading and writing (Permission denied)"
	if [ "$got" = "$expected" ]; then
		echo "ok: vmx $dir/kvm-root as uid 65534 -> $got"
	else
		echo "FAIL: demo_where as uid 65534 said '$got', expected '$expected'"
		failed=1
	fi
else
	echo "SKIP: setpriv (util-linux) is needed to open a device as another user"
	exit 77
fi

# demo.sh itself asks demo_where about /proc/cpuinfo and /dev/kvm and says why it uses the lab.
# shellcheck disable=SC2016 # the line as written
grep -q '^where=$(demo_where /proc/cpuinfo /dev/kvm)$' "$top/scripts/demo.sh" || {
	echo "FAIL: scripts/demo.sh does not decide with demo_where /proc/cpuinfo /dev/kvm"
	failed=1
}
[ "$failed" = 0 ] && echo "demo-where-test: ok"
exit "$failed"
