#!/usr/bin/env bash
# keel-vmm refuses bad input with one clear line on stderr and a non-zero status:
# options, kernel files, memory sizes, a host without /dev/kvm or without Debian's firmware.
# usage: errors.sh KEEL_VMM KERNEL_DIR   (KERNEL_DIR holds Debian's vmlinuz, may be absent)
set -uo pipefail
vmm=$1
kdir=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# expect PATTERN ARGS...: a non-zero status and exactly one output line matching PATTERN.
run=("$vmm")
hidden=
expect() {
	local pattern=$1
	shift
	local out rc lines shown="$*"
	shown=${shown:0:100}
	out=$("${run[@]}" "$@" 2>&1 </dev/null)
	rc=$?
	lines=$(printf '%s\n' "$out" | grep -c .)
	if [ "$rc" -eq 0 ] || ! grep -qE -- "$pattern" <<<"$out" || [ "$lines" -ne 1 ]; then
		echo "FAIL: keel-vmm $shown$hidden: status $rc, output:"
		printf '%s\n' "$out" | sed 's/^/  | /'
		echo "  expected one line matching: $pattern"
		failed=1
	else
		echo "ok: keel-vmm $shown$hidden -> $out"
	fi
}

# expect_hidden DIR PATTERN ARGS...: as expect, with DIR an empty tmpfs in a private mount
# namespace (needs root), so that the files under it are missing for keel-vmm alone.
expect_hidden() {
	local dir=$1
	shift
	run=(unshare -m sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$dir" "$vmm")
	hidden=" ($dir hidden)"
	expect "$@"
	run=("$vmm")
	hidden=
}

printf 'not a kernel at all\n' >"$tmp/text"
head -c 600 /dev/zero >"$tmp/zeros"
: >"$tmp/empty"

expect 'error: --kernel FILE, --firmware bios\|uefi or --config FILE is required'
expect 'error: --firmware bogus: expected bios or uefi, optionally =FILE' --firmware bogus
expect 'error: --net tap=t0,vhost=maybe: expected tap=IFNAME .*\[,vhost=auto\|off\|on\]$' --kernel "$tmp/text" --net tap=t0,vhost=maybe
expect 'error: --firmware bios=: FILE is empty' --firmware bios=
expect "error: VM '' has both a 'kernel' and a 'generation'" --firmware bios --kernel "$tmp/text"
expect "error: VM '': an 'nvram' variable store is UEFI's \(Generation 2\); Generation 1 \(BIOS\) has none" --firmware bios --nvram "$tmp/vars"
expect "error: boot order: 'cdrom' is not a boot device" --firmware bios --boot-order cdrom
expect "error: boot order: 'disk' is named twice" --firmware bios --boot-order disk,dvd,disk
expect "error: boot order: VM '' has no DVD drive" --firmware bios --boot-order dvd
expect "error: VM '': a 'boot_order' is the firmware's" --kernel "$tmp/text" --boot-order disk
expect "error: VM '': a 'boot_menu' is the firmware's" --kernel "$tmp/text" --boot-menu
expect "error: VM '': 'initrd' and 'cmdline' need a 'kernel'" --firmware uefi --cmdline quiet
expect 'error: firmware file /nonexistent/bios.bin: No such file or directory' --firmware bios=/nonexistent/bios.bin
expect "error: firmware file $tmp/text: 20 bytes, expected a multiple of 4 KiB from 128 KiB to 16 MiB" --firmware bios="$tmp/text"
expect 'error: unknown option --bogus' --bogus
expect 'error: --cpus 0: expected a whole number from 1 to 255' --kernel "$tmp/text" --cpus 0
expect 'error: --memory 12Q: expected a size' --kernel "$tmp/text" --memory 12Q
expect 'error: --memory 1M: must be from 2M to 1048576M' --kernel "$tmp/text" --memory 1M
expect 'error: --memory 64T: must be from 2M to 1048576M' --kernel "$tmp/text" --memory 64T
expect 'error: --cmdline: at most 4095 bytes' --kernel "$tmp/text" --cmdline "$(head -c 70000 /dev/zero | tr '\0' x)"
expect "error: --disk path=/a,b: expected path=FILE.*needs --config" --kernel "$tmp/text" --disk path=/a,b
printf '{"kernel": "%s", "cpus": 2}' "$tmp/text" >"$tmp/vm.json"
expect "error: --memory describes the VM, and so does --config $tmp/vm.json" --config "$tmp/vm.json" --memory 1G
printf '{"kernel": "%s", "cpus": "two"}' "$tmp/text" >"$tmp/bad.json"
expect "error: VM description $tmp/bad.json: field 'cpus' must be an integer" --config "$tmp/bad.json"
expect "error: cannot open VM description $tmp/none.json: No such file or directory" --config "$tmp/none.json"
expect 'error: --serial tcp:1: expected stdio, file:PATH, unix:PATH or off' --kernel "$tmp/text" --serial tcp:1
expect 'error: kernel /nonexistent/vmlinuz: No such file or directory' --kernel /nonexistent/vmlinuz
expect 'error: kernel /: not a regular file' --kernel /
expect 'error: initrd /nonexistent: No such file or directory' --kernel "$tmp/text" --initrd /nonexistent
expect "error: $tmp/empty is empty" --kernel "$tmp/empty"
expect 'error: --memory [0-9]+ MiB is more than this host' --kernel "$tmp/text" --memory 1000G

if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	expect "error: $tmp/text is not a kernel keel-vmm can boot" --kernel "$tmp/text"
	expect "error: $tmp/zeros is not a kernel keel-vmm can boot" --kernel "$tmp/zeros"
	if [ -f "$kdir/vmlinuz" ]; then
		expect 'error: memory too small: this kernel needs [0-9]+ MiB' --kernel "$kdir/vmlinuz" --memory 8M
		expect 'error: command line is [0-9]+ bytes, this kernel takes at most' \
			--kernel "$kdir/vmlinuz" --cmdline "$(head -c 4000 /dev/zero | tr '\0' x)"
	else
		echo "note: no Debian kernel in $kdir (scripts/setup.sh fetches it); bzImage checks not run"
	fi
else
	echo "note: /dev/kvm is not usable here; kernel-format checks need it and were not run"
fi

# A host without /dev/kvm: hide it in a private mount namespace (needs root).
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	out=$(unshare -m sh -c 'mount -t tmpfs none /dev && exec "$0" --kernel "$1"' "$vmm" "$tmp/text" 2>&1)
	if [ $? -ne 0 ] && grep -q 'error: /dev/kvm does not exist' <<<"$out"; then
		echo "ok: without /dev/kvm -> $out"
	else
		echo "FAIL: without /dev/kvm: $out"
		failed=1
	fi
	# Debian's firmware file hidden the same way: one line naming the package to install.
	expect_hidden /usr/share/OVMF \
		"error: Generation 2 \(UEFI\)'s firmware file /usr/share/OVMF/OVMF_CODE_4M.fd is missing: install Debian's 'ovmf' package$" \
		--firmware uefi
	expect_hidden /usr/share/seabios \
		"error: Generation 1 \(BIOS\)'s firmware file /usr/share/seabios/bios-256k.bin is missing: install Debian's 'seabios' package$" \
		--firmware bios
	# Only the variable store template missing (the firmware code named by its path, a copy
	# outside the hidden directory): the same one line as keeld's (vmdef_vars_template_missing),
	# said as the firmware's flash is made, after KVM's set-up.
	if ! { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
		echo "note: /dev/kvm is not usable here; the variable store template check needs it and was not run"
	elif cp /usr/share/OVMF/OVMF_CODE_4M.fd "$tmp/code.fd"; then
		expect_hidden /usr/share/OVMF \
			"error: UEFI variable store template /usr/share/OVMF/OVMF_VARS_4M.fd is missing: install Debian's 'ovmf' package$" \
			--firmware uefi="$tmp/code.fd"
	else
		echo "FAIL: no /usr/share/OVMF/OVMF_CODE_4M.fd to copy (scripts/setup.sh installs ovmf)"
		failed=1
	fi
else
	echo "note: not root; the missing-/dev/kvm and missing-firmware checks need a private mount namespace"
fi
exit $failed
