#!/bin/sh
# Sourced by scripts/demo.sh (and tests/lab/demo-where-test.sh): where `make demo` runs its VM.
#
# demo_where CPUINFO KVM: prints "host" when this host can run the VM itself: the CPU has
# VT-x or AMD-V (vmx or svm among CPUINFO's flags) and KVM is usable (KVM is a character
# device that opens for reading and writing: a host with the flag can still lack the kvm
# module, or run the demo in a container without the device). Otherwise prints
# "lab: WHY", one line saying why the nested lab runs it instead.
demo_where() {
	if ! grep -qwE 'vmx|svm' "$1" 2>/dev/null; then
		echo "lab: this host has no VT-x/AMD-V (no vmx/svm in $1)"
	elif [ ! -e "$2" ]; then
		echo "lab: this host has VT-x/AMD-V but no $2 (load kvm_intel or kvm_amd)"
	elif [ ! -c "$2" ]; then
		echo "lab: this host has VT-x/AMD-V but $2 is not a character device"
	elif ! demo_where_err=$( (exec 3<>"$2") 2>&1); then
		echo "lab: this host has VT-x/AMD-V but $2 does not open for reading and writing (${demo_where_err##*: })"
	else
		echo host
	fi
}
