# shellcheck shell=bash
# Host side of the nested lab, sourced by tests/lab/run.sh, scripts/demo.sh and bench/boot/run.sh.
#
#   lab_build          build build/lab/guest.cpio and build/lab/lab.cpio (only what changed)
#   lab_guest_build    build only the guest initramfs (the demo on a host with VT-x/AMD-V)
#   lab_boot MODE ...  boot the lab host (QEMU TCG, emulated AMD-V) with /init in MODE:
#                      test | demo | bench | shell; extra arguments are added to its command line
#
# The lab host is `qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt`: a software-emulated
# AMD CPU with SVM and nested paging, so /dev/kvm inside it is real KVM. Everything it needs is
# in one uncompressed cpio (the Debian cloud kernel has no 9p; uncompressed because unpacking
# is cheaper than decompressing under emulation). See docs/lab.md.

LAB_TOP=${LAB_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LAB_OUT=${LAB_OUT:-$LAB_TOP/build/lab}
LAB_KDIR=$LAB_TOP/.cache/kernel
# The lab's outer QEMU: Debian's QEMU source with keel's patches (scripts/lab-qemu.sh, built
# by scripts/setup.sh; docs/lab.md says why). LAB_QEMU=qemu-system-x86_64 uses Debian's instead.
# Inside the lab, the peer VMM is always Debian's packaged QEMU (LAB_PEER_QEMU).
LAB_QEMU=${LAB_QEMU:-$("$LAB_TOP/scripts/lab-qemu.sh" --path || echo "lab-QEMU-not-built")}
LAB_PEER_QEMU=${LAB_PEER_QEMU:-qemu-system-x86_64}
LAB_E2FSCK=${LAB_E2FSCK:-$(PATH=$PATH:/usr/sbin:/sbin command -v e2fsck)}
# Firmware QEMU's microvm machine loads inside the lab (qboot), found in QEMU's data directory
# or (bios-microvm.bin, since QEMU 8) in SeaBIOS's; installed in the lab under /usr/share/qemu.
# kvmvapic.bin is for q35 (the firmware scenarios 80 and 81): its APIC always loads that ROM.
LAB_QEMU_FIRMWARE=(bios-microvm.bin qboot.rom linuxboot_dma.bin kvmvapic.bin)
LAB_QEMU_FIRMWARE_DIRS=(/usr/share/qemu /usr/share/seabios)
# Debian's OVMF (package ovmf), for the UEFI guests of 80-uefi-boots and 81-uefi-secure-boot:
# the code and an empty variable store, and the SMM build with the Microsoft-keys store
# (Secure Boot on). Installed in the lab at the same paths.
# Debian's SeaBIOS (package seabios) too, for keel-vmm --firmware bios (82-keel-seabios).
LAB_OVMF=(/usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_VARS_4M.fd
	/usr/share/OVMF/OVMF_CODE_4M.secboot.fd /usr/share/OVMF/OVMF_VARS_4M.ms.fd
	/usr/share/seabios/bios-256k.bin)

lab_die() {
	echo "lab: $*" >&2
	exit 1
}

lab_check_inputs() {
	[ -e "$LAB_KDIR/ready" ] && [ -e "$LAB_KDIR/vmlinuz" ] ||
		lab_die "no Debian cloud kernel in $LAB_KDIR; run scripts/setup.sh"
	[ -x /bin/busybox ] && ! readelf -l /bin/busybox 2>/dev/null | grep -q 'INTERP' ||
		lab_die "/bin/busybox is not busybox-static; run scripts/setup.sh"
	command -v cpio >/dev/null || lab_die "cpio is not installed; run scripts/setup.sh"
	command -v "$LAB_QEMU" >/dev/null || lab_die "$LAB_QEMU is not built; run scripts/setup.sh"
	command -v "$LAB_PEER_QEMU" >/dev/null || lab_die "$LAB_PEER_QEMU is not installed; run scripts/setup.sh"
	command -v modprobe >/dev/null || lab_die "modprobe (kmod) is not installed; run scripts/setup.sh"
	local f
	for f in "${LAB_OVMF[@]}"; do
		[ -e "$f" ] || lab_die "$f is missing (packages ovmf, seabios); run scripts/setup.sh"
	done
}

# One cpio "newc" entry for a character device; appended after the archive that cpio made so
# that the initramfs has /dev/console without needing mknod (and root) on the build host.
_lab_newc_chardev() { # NAME MAJOR MINOR INODE
	local name=$1 namesize=$((${#1} + 1)) pad
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$4" $((0020000 | 0600)) 0 0 1 0 0 0 0 "$2" "$3" "$namesize" 0
	printf '%s\0' "$name"
	pad=$(((4 - (110 + namesize) % 4) % 4))
	head -c "$pad" /dev/zero
}

_lab_newc_trailer() {
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' 0 0 0 0 1 0 0 0 0 0 0 11 0
	printf 'TRAILER!!!\0\0\0\0' # 110 + 11 = 121 bytes, padded to 124
}

# Pack directory $1 into the cpio archive $2 (owned by root, plus /dev/console).
_lab_pack() {
	local dir=$1 out=$2
	mkdir -p "$dir/dev"
	(cd "$dir" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc -R 0:0 --quiet) >"$out.tmp"
	{
		_lab_newc_chardev dev/console 5 1 999999
		_lab_newc_trailer
	} >>"$out.tmp"
	mv "$out.tmp" "$out"
}

# The libraries of a dynamically linked program (and the dynamic loader), one path a line.
_lab_libs() {
	ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
}

# Copy a dynamically linked program and every library ldd lists (with the dynamic loader)
# into root directory $2, each at its own absolute path; the program goes to $3.
_lab_copy_program() {
	local prog=$1 root=$2 dest=$3 lib
	install -D -m 0755 "$(readlink -f "$prog")" "$root$dest"
	while read -r lib; do
		[ -n "$lib" ] || continue
		[ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
	done < <(_lab_libs "$prog")
}

# Resolve a module list file (NAME [PARAMS] per line) through modules.dep, dependencies first
# and each module once; copy the modules into root $2 and write $2/etc/keel/modules with one
# "insmod PATH [PARAMS]" line each.
_lab_add_modules() {
	local list=$1 root=$2 kver name params line path seen=" "
	kver=$(cat "$LAB_KDIR/version")
	mkdir -p "$root/etc/keel"
	: >"$root/etc/keel/modules"
	while read -r name params; do
		case "$name" in '' | '#'*) continue ;; esac
		local deps
		deps=$(modprobe -d "$LAB_KDIR/root" -S "$kver" --show-depends "$name") ||
			lab_die "module $name (from $list) not found in $LAB_KDIR/root"
		while read -r line; do
			set -- $line
			[ "$1" = insmod ] || continue
			path=${2#"$LAB_KDIR/root"}
			case "$seen" in *" $path "*) continue ;; esac
			seen="$seen$path "
			install -D -m 0644 "$LAB_KDIR/root$path" "$root$path"
			# Parameters apply to the named module itself, not to its dependencies.
			if [ "$(basename "$path" .ko)" = "$(echo "$name" | tr _ -)" ] ||
				[ "$(basename "$path" .ko)" = "$name" ]; then
				echo "$path $params" >>"$root/etc/keel/modules"
			else
				echo "$path" >>"$root/etc/keel/modules"
			fi
		done <<<"$deps"
	done <"$list"
}

# Print a fingerprint of the given files (path, size, mtime); used to rebuild only on change.
_lab_fingerprint() {
	local f
	for f in "$@"; do
		if [ -e "$f" ]; then stat -L -c '%n %s %Y' "$f"; else echo "$f missing"; fi
	done | sha256sum | cut -d' ' -f1
}

lab_guest_build() {
	lab_check_inputs
	local src=$LAB_TOP/tests/lab/guest out=$LAB_OUT/guest.cpio fp
	fp=$(_lab_fingerprint "$src/init" "$src/modules" /bin/busybox "$LAB_KDIR/ready" \
		"$LAB_TOP/tests/lab/lab.sh" "$LAB_TOP/tests/lab/vsockcat.c" "$LAB_TOP/tests/lab/rasend.c" \
		"$LAB_TOP/tests/lab/echocount.c" "$LAB_TOP/build/src/agent/keel-agent")
	if [ -e "$out" ] && [ "$(cat "$out.fp" 2>/dev/null)" = "$fp" ]; then
		return 0
	fi
	local root=$LAB_OUT/guest-root
	rm -rf "$root" && mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,root,etc}
	install -m 0755 /bin/busybox "$root/bin/busybox"
	local app
	for app in $(/bin/busybox --list); do
		[ "$app" = busybox ] || ln -s busybox "$root/bin/$app"
	done
	install -m 0755 "$src/init" "$root/init"
	# virtio-vsock's guest side (67-virtio-vsock): AF_VSOCK listen and connect.
	cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$root/bin/lab-vsock" \
		"$LAB_TOP/tests/lab/vsockcat.c" || lab_die "cannot build tests/lab/vsockcat.c"
	# A rogue router's advertisements (69-switch-guards: the router guard).
	cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$root/bin/lab-ra" \
		"$LAB_TOP/tests/lab/rasend.c" || lab_die "cannot build tests/lab/rasend.c"
	# A port mirroring destination's count of other guests' pings (71-switch-mirror).
	cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$root/bin/lab-echocount" \
		"$LAB_TOP/tests/lab/echocount.c" || lab_die "cannot build tests/lab/echocount.c"
	# keel-agent (issue 13, 68-agent), when built: the init starts it in the background. Its
	# KVP facts read the OS's name from /etc/os-release.
	printf 'NAME="keel lab guest"\nVERSION_ID="1"\nPRETTY_NAME="keel lab guest 1 (busybox)"\nID=keel-lab\n' \
		>"$root/etc/os-release"
	if [ -x "$LAB_TOP/build/src/agent/keel-agent" ]; then
		install -D -m 0755 "$(readlink -f "$LAB_TOP/build/src/agent/keel-agent")" "$root/sbin/keel-agent"
	fi
	_lab_add_modules "$src/modules" "$root"
	_lab_pack "$root" "$out"
	rm -rf "$root"
	echo "$fp" >"$out.fp"
	echo "lab: built $out ($(du -h "$out" | cut -f1))"
}

# bench/virtio's guest tools (issue 16) as a second initramfs that bench/virtio/lab.sh appends
# to the guest's (the kernel unpacks concatenated archives in turn), so that only the
# benchmark's guests carry them: a static fio built from Debian's source (cached by content
# under /var/cache/keel, scripts/guest-fio.sh) and Debian's iperf3 with its libraries.
lab_guest_tools_build() {
	local out=$LAB_OUT/guest-tools.cpio fp fio iperf3 root=$LAB_OUT/guest-tools-root
	fio=$("$LAB_TOP/scripts/guest-fio.sh") || lab_die "scripts/guest-fio.sh could not build fio"
	iperf3=$(command -v iperf3) || lab_die "iperf3 is not installed; run scripts/setup.sh"
	fp=$(_lab_fingerprint "$fio" "$iperf3" "$LAB_TOP/tests/lab/lab.sh")
	if [ -e "$out" ] && [ "$(cat "$out.fp" 2>/dev/null)" = "$fp" ]; then
		return 0
	fi
	rm -rf "$root" && mkdir -p "$root/bin"
	install -m 0755 "$fio" "$root/bin/fio"
	_lab_copy_program "$iperf3" "$root" /bin/iperf3
	_lab_pack "$root" "$out"
	rm -rf "$root"
	echo "$fp" >"$out.fp"
	echo "lab: built $out ($(du -h "$out" | cut -f1))"
}

# The files that go into the lab host's initramfs, besides programs and modules.
_lab_host_files() {
	local d=$LAB_TOP/tests/lab
	echo "$d/host/init" "$d/host/api.sh" "$d/host/modules" "$d/lab.sh" "$LAB_TOP/scripts/demo-vm.sh"
	ls "$d"/scenarios/*.sh 2>/dev/null
	ls "$LAB_TOP"/bench/boot/lab.sh "$LAB_TOP"/bench/boot/boottime.c 2>/dev/null
	ls "$LAB_TOP"/bench/virtio/lab.sh "$LAB_TOP"/bench/virtio/kvm_stats.sh \
		"$LAB_TOP"/bench/virtio/kvm_trace.sh 2>/dev/null
	ls "$LAB_TOP"/bench/firmware/lab.sh 2>/dev/null
	ls "$LAB_TOP"/tests/lab/vmmctl.c "$LAB_TOP"/bench/state/lab.sh 2>/dev/null
	ls "$LAB_TOP"/tests/lab/vsockcat.c 2>/dev/null
	ls "$LAB_TOP"/build/tests/unit/lab-vhost-net 2>/dev/null
}

lab_build() {
	lab_check_inputs
	lab_guest_build
	lab_guest_tools_build
	local out=$LAB_OUT/lab.cpio fp vmm qemu keel=""
	qemu=$(command -v "$LAB_PEER_QEMU")
	vmm=$LAB_TOP/build/keel-vmm
	[ -x "$vmm" ] && keel=$(readlink -f "$vmm")
	# keeld and keel (issue 5), when built: the keeld scenario runs them inside the lab.
	local mgmt=()
	if [ -x "$LAB_TOP/build/src/daemon/keeld" ] && [ -x "$LAB_TOP/build/src/cli/keel" ]; then
		mgmt=("$LAB_TOP/build/src/daemon/keeld" "$LAB_TOP/build/src/cli/keel")
	fi
	local fw=()
	for f in "${LAB_QEMU_FIRMWARE[@]}"; do
		local dir found=
		for dir in "${LAB_QEMU_FIRMWARE_DIRS[@]}"; do
			[ -e "$dir/$f" ] && found=$dir/$f && break
		done
		[ -n "$found" ] || lab_die "QEMU firmware $f is in none of ${LAB_QEMU_FIRMWARE_DIRS[*]}; run scripts/setup.sh"
		fw+=("$found")
	done
	# shellcheck disable=SC2046
	fp=$(_lab_fingerprint $(_lab_host_files) "$LAB_OUT/guest.cpio" "$LAB_OUT/guest-tools.cpio" "$LAB_KDIR/vmlinuz" \
		"$LAB_KDIR/ready" /bin/busybox "$qemu" "$LAB_E2FSCK" "${fw[@]}" "${LAB_OVMF[@]}" ${keel:+"$keel"} \
		"$LAB_TOP/scripts/agent-iso.sh" "$LAB_TOP/scripts/agent-deb.sh" "$LAB_TOP/contrib/systemd/keel-agent.service" \
		${BENCH_KEEL_BEFORE:+"$BENCH_KEEL_BEFORE"})
	[ ${#mgmt[@]} -eq 0 ] || fp="$fp $(_lab_fingerprint "${mgmt[@]}")"
	fp="$fp $(_lab_fingerprint "$LAB_TOP/build/tests/lab/lab-jail" "$LAB_TOP/build/tests/lab/lab-vmmctl")"
	if [ -e "$out" ] && [ "$(cat "$out.fp" 2>/dev/null)" = "$fp" ]; then
		return 0
	fi
	local root=$LAB_OUT/lab-root
	rm -rf "$root" && mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,root,etc,lab/guest,lab/scenarios}
	install -m 0755 /bin/busybox "$root/bin/busybox"
	local app
	for app in $(/bin/busybox --list); do
		[ "$app" = busybox ] || ln -s busybox "$root/bin/$app"
	done
	local d=$LAB_TOP/tests/lab
	install -m 0755 "$d/host/init" "$root/init"
	install -m 0644 "$d/host/api.sh" "$root/lab/api.sh"
	install -m 0644 "$LAB_TOP/scripts/demo-vm.sh" "$root/lab/demo-vm.sh"
	local s
	for s in "$d"/scenarios/*.sh; do
		[ -e "$s" ] && install -m 0644 "$s" "$root/lab/scenarios/"
	done
	_lab_add_modules "$d/host/modules" "$root"
	# The guest: the same Debian kernel, and the guest initramfs.
	install -m 0644 "$(readlink -f "$LAB_KDIR/vmlinuz")" "$root/lab/guest/vmlinuz"
	install -m 0644 "$LAB_OUT/guest.cpio" "$root/lab/guest/initramfs.cpio"
	install -m 0644 "$LAB_OUT/guest-tools.cpio" "$root/lab/guest/tools.cpio"
	# The VMMs: keel-vmm (when built) and the peer, QEMU with KVM (microvm + qboot).
	if [ -n "$keel" ]; then
		_lab_copy_program "$keel" "$root" /bin/keel-vmm
		# The launcher that runs the scenarios' own keel-vmm jailed, as keeld does (api.sh,
		# vm_start; tests/lab/jailrun.c).
		[ -x "$LAB_TOP/build/tests/lab/lab-jail" ] ||
			lab_die "build/tests/lab/lab-jail does not exist (run make first)"
		_lab_copy_program "$LAB_TOP/build/tests/lab/lab-jail" "$root" /bin/lab-jail
	fi
	# bench/firmware's exit profile: another keel-vmm build to compare (BENCH_KEEL_BEFORE).
	[ -z "${BENCH_KEEL_BEFORE:-}" ] || _lab_copy_program "$BENCH_KEEL_BEFORE" "$root" /bin/keel-vmm-before
	if [ ${#mgmt[@]} -gt 0 ]; then
		_lab_copy_program "${mgmt[0]}" "$root" /bin/keeld
		_lab_copy_program "${mgmt[1]}" "$root" /bin/keel
		# keeld's switches (issue 12): dnsmasq per NAT switch, which runs as nobody; nft
		# for the scenario to look at the rules.
		_lab_copy_program "$(PATH=$PATH:/usr/sbin command -v dnsmasq)" "$root" /usr/sbin/dnsmasq
		_lab_copy_program "$(PATH=$PATH:/usr/sbin command -v nft)" "$root" /usr/sbin/nft
		# iproute2's ip (busybox's has no veth peers or netns moves) as /usr/sbin/ip.
		_lab_copy_program "$(PATH=$PATH:/usr/sbin:/sbin command -v ip)" "$root" /usr/sbin/ip
		_lab_copy_program "$(PATH=$PATH:/usr/sbin:/sbin command -v bridge)" "$root" /usr/sbin/bridge
		# tc, for 71-switch-mirror to look at (and delete) a tap's mirroring filters.
		_lab_copy_program "$(PATH=$PATH:/usr/sbin:/sbin command -v tc)" "$root" /usr/sbin/tc
		printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
			>"$root/etc/passwd"
		printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	fi
	_lab_copy_program "$qemu" "$root" /usr/bin/qemu-system-x86_64
	# e2fsck, to check file systems guests wrote, and debugfs, to read files out of them
	# (package e2fsprogs).
	_lab_copy_program "$LAB_E2FSCK" "$root" /sbin/e2fsck
	_lab_copy_program "$(PATH=$PATH:/usr/sbin:/sbin command -v debugfs)" "$root" /sbin/debugfs
	# e2fsprogs' mke2fs as mkfs.ext4, for bench/virtio's disk file system: an ext4 with
	# extents, as a host's is (busybox's mke2fs makes ext2 only: indirect block maps).
	_lab_copy_program "$(PATH=$PATH:/usr/sbin:/sbin command -v mke2fs)" "$root" /sbin/mkfs.ext4
	# Two small ISO 9660 images (xorriso) with their files, for the DVD of 66-virtio-scsi.
	_lab_dvds "$root/lab/dvd"
	# The agent's installation disk (make agent-iso), which 89-fw-debian12 inserts into the
	# Debian 12 VM's DVD drive to install keel-agent's package as a user would.
	if [ -x "$LAB_TOP/build/src/agent/keel-agent" ]; then
		"$LAB_TOP/scripts/agent-iso.sh" "$LAB_TOP/build" "$root/lab/keel-agent.iso" >/dev/null ||
			lab_die "scripts/agent-iso.sh could not make the agent's disk"
	fi
	for f in "${fw[@]}"; do
		install -D -m 0644 "$(readlink -f "$f")" "$root/usr/share/qemu/${f##*/}"
	done
	for f in "${LAB_OVMF[@]}"; do
		install -D -m 0644 "$(readlink -f "$f")" "$root$f"
	done
	# A client for keel-vmm's control socket (busybox has none): save, pause, resume, quit.
	# (meson builds it with keel's tap_open: lab-vmmctl --tap, tests/lab/meson.build)
	[ -x "$LAB_TOP/build/tests/lab/lab-vmmctl" ] ||
		lab_die "build/tests/lab/lab-vmmctl does not exist (run make first)"
	_lab_copy_program "$LAB_TOP/build/tests/lab/lab-vmmctl" "$root" /bin/lab-vmmctl
	# virtio-net's kernel data path against the lab host's vhost-net (76-vhost-net).
	if [ -x "$LAB_TOP/build/tests/unit/lab-vhost-net" ]; then
		_lab_copy_program "$LAB_TOP/build/tests/unit/lab-vhost-net" "$root" /bin/lab-vhost-net
	fi
	# virtio-vsock's host side (67-virtio-vsock): the worker's Unix sockets.
	cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$root/bin/lab-vsock" \
		"$d/vsockcat.c" || lab_die "cannot build tests/lab/vsockcat.c"
	# The boot benchmark's lab side: its script and its timing helper (static, no libraries).
	if [ -e "$LAB_TOP/bench/boot/lab.sh" ]; then
		install -D -m 0644 "$LAB_TOP/bench/boot/lab.sh" "$root/lab/bench/boot.sh"
		# bench/state (keel.bench=state): save and restore against QEMU's migrate to file.
		[ ! -e "$LAB_TOP/bench/state/lab.sh" ] ||
			install -D -m 0644 "$LAB_TOP/bench/state/lab.sh" "$root/lab/bench/state.sh"
		# bench/virtio (keel.bench=virtio): disk and network against QEMU's virtio.
		[ ! -e "$LAB_TOP/bench/virtio/lab.sh" ] ||
			install -D -m 0644 "$LAB_TOP/bench/virtio/lab.sh" "$root/lab/bench/virtio.sh"
		# ... and its KVM counters and trace histograms (sourced by it)
		for f in kvm_stats.sh kvm_trace.sh; do
			[ ! -e "$LAB_TOP/bench/virtio/$f" ] ||
				install -D -m 0644 "$LAB_TOP/bench/virtio/$f" "$root/lab/bench/$f"
		done
		# bench/firmware (keel.bench=firmware): SeaBIOS and OVMF boots against QEMU's q35.
		[ ! -e "$LAB_TOP/bench/firmware/lab.sh" ] ||
			install -D -m 0644 "$LAB_TOP/bench/firmware/lab.sh" "$root/lab/bench/firmware.sh"
		cc -std=gnu11 -O2 -Wall -Wextra -Werror -static -o "$root/bin/lab-boottime" \
			"$LAB_TOP/bench/boot/boottime.c" || lab_die "cannot build bench/boot/boottime.c"
	fi
	_lab_pack "$root" "$out"
	rm -rf "$root"
	echo "$fp" >"$out.fp"
	echo "lab: built $out ($(du -h "$out" | cut -f1))${keel:+ with keel-vmm}"
}

# lab_console_filter: the lab's console as run.sh logs it, line by line: without carriage
# returns and without the outer QEMU's warnings about CPU features TCG lacks. grep -a: the
# console is text even when a byte in it (a NUL or bad UTF-8, as after the lab's power-off)
# makes grep call it binary, after which grep prints no more lines but "binary file
# matches", and run.sh would see no PASS or FAIL line from there on.
# tests/lab/lab-sh-test.sh checks it.
lab_console_filter() {
	sed -u 's/\r//g' | grep -a --line-buffered -v "TCG doesn't support requested feature"
}

# lab_check_timeouts SCENARIO...: a scenario's own limit, a line "# lab-timeout: S", must be
# a whole number of seconds, 1 to 99999; the lab's /init reads only such a line and would
# silently apply the default limit to anything else ("600s", "10m", "-5"). Dies naming the
# file and the line otherwise. tests/lab/lab-sh-test.sh checks it.
lab_check_timeouts() {
	local s bad
	for s in "$@"; do
		bad=$(grep -E '^#[[:space:]]*lab-timeout' "$s" | grep -vE '^# lab-timeout: *[1-9][0-9]{0,4} *$' | head -n 1)
		[ -z "$bad" ] || lab_die "${s#"$LAB_TOP"/}: '$bad': a scenario's limit is '# lab-timeout: S' with S a whole number of seconds (1 to 99999)"
	done
	return 0
}

# The firmware-boot images (scripts/images/, issue 11) are too large for the cpio: the lab
# host gets each as a read-only virtio-blk drive of its own whose serial is the image's name,
# and scenarios copy the one they boot (api.sh, image_copy). lab_images builds what the cache
# lacks (minutes the first time on a host, for debian12-vhdx) and writes NAME PATH lines to
# $LAB_OUT/images.list, which lab_boot reads. LAB_IMAGES=none boots the lab without them.
lab_images() {
	local list=$LAB_OUT/images.list names n path
	rm -f "$list"
	[ "${LAB_IMAGES:-all}" != none ] || return 0
	names=${LAB_IMAGES:-$("$LAB_TOP/scripts/images/build.sh" --list)}
	mkdir -p "$LAB_OUT"
	for n in ${names//,/ }; do
		path=$("$LAB_TOP/scripts/images/build.sh" "$n") || lab_die "cannot build the lab image $n"
		echo "$n $path" >>"$list"
	done
}

# The lab's tiers of the host tier's tests (tests/lab/guests_tier.py, docs/testing.md): the
# tests a host without KVM skips, with what they need, on a read-only ext4 drive of the lab
# host (serial guests-tier) that 95-guests-tier and 96-daemon-tier mount at
# $LAB_GUESTS_TIER_MNT (api.sh host_tier): Debian's python3 (its standard library and the
# libraries of both), bash and qemu-img (which the guests cases call), curl, sqlite3 and
# util-linux's nsenter (which the daemon cases call; iproute2's ip, bridge and tc, nft and
# dnsmasq are in lab.cpio with keeld), the ASan+UBSan build's keel-vmm, keel, keeld,
# keel-agent, disktool and guests under keel/build, the cases' runners under keel/src, and
# each tier's keel/TIER.json (guests_tier.py list). An image rather than more of the cpio: the kernel
# reads only the blocks the tier uses (ext4 is built into the lab kernel), and only when it
# runs; every other lab boot unpacks nothing more. Rebuilt when an input changed: every file
# it copies (the programs, the libraries they and Python's compiled modules load, the whole
# standard library) and every file the list is made from; the drive is added to
# $LAB_OUT/images.list (after lab_images, which starts that list afresh).
LAB_GUESTS_TIER_MNT=/mnt/guests-tier
lab_guests_tier_build() {
	local b=$LAB_TOP/build-asan out=$LAB_OUT/guests-tier.ext4 root=$LAB_OUT/guests-tier-root
	local py qimg bfiles sfiles progs f fp mb n t tools
	[ -x "$b/src/vmm/keel-vmm" ] ||
		lab_die "build-asan/src/vmm/keel-vmm does not exist (make test-lab builds it; or make build-asan/build.ninja && ninja -C build-asan)"
	grep -q -- -DKEEL_TEST_HOOKS "$b/build.ninja" ||
		lab_die "build-asan was set up without test hooks (meson configure build-asan -Dtest_hooks=true)"
	py=$(readlink -f /usr/bin/python3) || lab_die "Debian's /usr/bin/python3 is missing (package python3)"
	qimg=$(command -v qemu-img) || lab_die "qemu-img is not installed; run scripts/setup.sh"
	tools=$(PATH=$PATH:/usr/sbin:/sbin command -v curl sqlite3 nsenter | xargs)
	[ "$(echo "$tools" | wc -w)" = 3 ] ||
		lab_die "the daemon tier needs curl, sqlite3 and nsenter (util-linux); run scripts/setup.sh"
	bfiles=$(cd "$b" && ls src/vmm/keel-vmm src/cli/keel src/daemon/keeld src/agent/keel-agent \
		tests/daemon/daemon-disktool tests/guests/*.elf tests/guests/*.bin \
		tests/daemon/daemon-guest.elf meson-info/intro-tests.json)
	sfiles=$(cd "$LAB_TOP" && ls tests/guests/*.py tests/vmm/*.sh tests/daemon/*.py \
		tests/agent/vsock_mux.py tests/summary.py tests/lab/guests_tier.py)
	progs="$py /bin/bash $qimg $tools $b/src/vmm/keel-vmm $b/src/cli/keel $b/src/daemon/keeld"
	progs="$progs $b/src/agent/keel-agent $b/tests/daemon/daemon-disktool $(ls /usr/lib/python3.11/lib-dynload/*.so)"
	# shellcheck disable=SC2046,SC2086
	fp=$({
		_lab_fingerprint "$LAB_TOP/tests/lab/lab.sh" $progs \
			$(for f in $progs; do _lab_libs "$f"; done | sort -u) \
			$(for f in $bfiles; do echo "$b/$f"; done) $(for f in $sfiles; do echo "$LAB_TOP/$f"; done) \
			"$b"/meson-info/{meson-info,intro-projectinfo}.json "$b/meson-private/meson_test_setup.dat"
		find /usr/lib/python3.11 -printf '%p %s %T@\n' | sort
	} | sha256sum | cut -d' ' -f1)
	if [ ! -e "$out" ] || [ "$(cat "$out.fp" 2>/dev/null)" != "$fp" ]; then
		rm -rf "$root" && mkdir -p "$root/usr/lib"
		_lab_copy_program "$py" "$root" /usr/bin/python3.11
		ln -s python3.11 "$root/usr/bin/python3"
		# The standard library with its compiled modules (a read-only drive: Python could
		# not write them, and compiling every import under emulation is slow), less what
		# no test imports.
		cp -a /usr/lib/python3.11 "$root/usr/lib/" || lab_die "cannot copy /usr/lib/python3.11"
		rm -rf "$root"/usr/lib/python3.11/{test,idlelib,tkinter,turtledemo,ensurepip,lib2to3,pydoc_data,config-3.11-x86_64-linux-gnu}
		find "$root/usr/lib/python3.11" -name '*.opt-[12].pyc' -delete
		rm -f "$root"/usr/lib/python3.11/lib-dynload/{_test,xx}*.so
		for f in "$root"/usr/lib/python3.11/lib-dynload/*.so; do # their libraries
			_lab_copy_program "${f#"$root"}" "$root" "${f#"$root"}"
		done
		_lab_copy_program /bin/bash "$root" /bin/bash
		_lab_copy_program "$qimg" "$root" /usr/bin/qemu-img
		for f in $tools; do
			_lab_copy_program "$f" "$root" "/usr/bin/${f##*/}"
		done
		for f in $bfiles; do
			case "$f" in
			src/* | tests/daemon/daemon-disktool) _lab_copy_program "$b/$f" "$root" "/keel/build/$f" ;;
			*) install -D -m 0644 "$b/$f" "$root/keel/build/$f" ;;
			esac
		done
		for f in $sfiles; do
			install -D -m "$(stat -c %a "$LAB_TOP/$f")" "$LAB_TOP/$f" "$root/keel/src/$f"
		done
		n=
		for t in $("$LAB_TOP/tests/lab/guests_tier.py" tiers); do
			"$LAB_TOP/tests/lab/guests_tier.py" list "$t" "$b" "$root/keel" "$LAB_GUESTS_TIER_MNT/keel" \
				>"$root/keel/$t.json" || lab_die "cannot list the $t tier's tests"
			n="$n${n:+, }$(grep -c '"name"' "$root/keel/$t.json") $t"
		done
		mb=$(($(du -sm "$root" | cut -f1) * 5 / 4 + 16))
		rm -f "$out.tmp"
		"$(PATH=$PATH:/usr/sbin:/sbin command -v mke2fs)" -q -F -t ext4 -b 4096 -O ^has_journal -L guests-tier -E root_owner=0:0 -d "$root" \
			"$out.tmp" "${mb}M" >/dev/null || lab_die "mke2fs could not make $out"
		mv "$out.tmp" "$out"
		rm -rf "$root"
		echo "$fp" >"$out.fp"
		echo "lab: built $out ($mb MiB, $n tests)"
	fi
	echo "guests-tier $out" >>"$LAB_OUT/images.list"
}

# The outer QEMU's options for the images of $LAB_OUT/images.list.
_lab_image_drives() {
	local n path i=0
	[ -e "$LAB_OUT/images.list" ] || return 0
	while read -r n path; do
		i=$((i + 1))
		echo "-drive file=$path,format=raw,if=none,id=img$i,readonly=on -device virtio-blk-pci,drive=img$i,serial=$n"
	done <"$LAB_OUT/images.list"
}

# _lab_dvds DIR: DIR/one.iso and DIR/two.iso, each an ISO 9660 image (Rock Ridge, volume ID
# KEEL_ONE, KEEL_TWO) of DIR/one and DIR/two: a text file and 3 MiB of fixed bytes whose
# checksums the scenario compares with what the guest reads from the mounted DVD.
_lab_dvds() {
	local dir=$1 n
	command -v xorriso >/dev/null || lab_die "xorriso is not installed; run scripts/setup.sh"
	for n in one two; do
		mkdir -p "$dir/$n"
		echo "keel DVD $n" >"$dir/$n/hello.txt"
		seq -f "$n %08g" 1 200000 | head -c 3145728 >"$dir/$n/data.bin"
		xorriso -as mkisofs -quiet -R -V "KEEL_${n^^}" -o "$dir/$n.iso" "$dir/$n" ||
			lab_die "xorriso could not make $dir/$n.iso"
	done
}

# lab_boot MODE TIMEOUT [KEY=VALUE ...]: boot the lab with /init in MODE, stdio on its console.
# Exits with QEMU's status (124 when the timeout hit; 0 when the lab powered off).
lab_boot() {
	local mode=$1 tmo=$2
	shift 2
	# -L: Debian's firmware (SeaBIOS) for a QEMU built from the "+ds" source, which has none.
	local args=(-accel "${LAB_ACCEL:-tcg}" -cpu EPYC,+svm,+npt -smp 2 -m 4G -nographic -no-reboot -nic none
		-L /usr/share/qemu -L /usr/share/seabios
		-pidfile "$LAB_OUT/qemu.pid"
		-kernel "$LAB_KDIR/vmlinuz" -initrd "$LAB_OUT/lab.cpio"
		-append "console=ttyS0 quiet panic=-1 keel.lab=$mode $*")
	# shellcheck disable=SC2207 # one option per word; image paths have no spaces
	args+=($(_lab_image_drives))
	if [ "$tmo" = 0 ]; then
		"$LAB_QEMU" "${args[@]}"
	else
		timeout -k 10 "$tmo" "$LAB_QEMU" "${args[@]}"
	fi
}
