# shellcheck shell=sh
# The lab scenario API (busybox sh, inside the lab host). Every scenario file is run as
#   sh -c '. /lab/api.sh; . scenario.sh'
# in a fresh shell with a time limit; it passes when it returns (exit 0) and fails with
# `fail REASON` (or any non-zero exit). The API functions fail the scenario themselves when
# something goes wrong (a timeout, a VM that exited too early), so a scenario reads as a
# list of steps. Do not call them inside $(...): `fail` would only leave the subshell.
# Full reference with an example: docs/lab.md.
#
#   vm_start NAME [KEEL-VMM OPTIONS]    start a VM in the background
#   vm_boot NAME [KEEL-VMM OPTIONS]     vm_start, then wait for the guest's init marker
#   vm_wait NAME ERE [SECONDS]          wait for a console line matching ERE
#   vm_send NAME TEXT                   type TEXT and Enter on the VM's serial console
#   vm_run NAME COMMAND [SECONDS]       run COMMAND in the guest shell: sets VM_OUT, VM_RC
#   vm_wait_exit NAME [SECONDS]         wait for the VMM to exit: sets VM_STATUS
#   vm_kill NAME                        kill the VMM
#   vm_command NAME [OPTIONS]           print the VMM command line vm_start would run
#   vm_jailed NAME                      VM NAME's keel-vmm runs jailed (fails the scenario if not)
#   host_tier TIER SECONDS              run a tier of the host tier's tests (95-, 96-*-tier)
#   fail REASON                         end the scenario as failed
#   skip REASON                         end the scenario as skipped (it did not run)

LAB_VMM=${LAB_VMM:-keel}
GUEST_KERNEL=/lab/guest/vmlinuz
GUEST_INITRD=/lab/guest/initramfs.cpio
# console=ttyS0: the shell and the marker are on the serial port. quiet/loglevel: printk over
# an emulated UART costs a VM exit per byte, which is slow under nested emulation. The rest
# skips probing and calibration that the lab does not need: no i8042 mouse/multiplexer/PnP
# probing, the TSC trusted (no clocksource watchdog), the CPU's RNG trusted. Reboot keeps the
# kernel's default method order (ACPI reset register, then the i8042 reset line, ...).
GUEST_CMDLINE=${GUEST_CMDLINE:-console=ttyS0 quiet loglevel=1 panic=-1 i8042.noaux i8042.nomux i8042.nopnp tsc=reliable no_timer_check random.trust_cpu=on}
GUEST_MARKER='keel-guest: init ready'
GUEST_BOOT_TIMEOUT=${GUEST_BOOT_TIMEOUT:-120}
VM_DIR=${VM_DIR:-/tmp/vm}

fail() {
	[ -s /tmp/reason ] || echo "$*" >/tmp/reason
	echo "lab: scenario failure: $*"
	exit 1
}

# End the scenario as skipped: it did not run, for the reason given (counted and printed as
# such, never as a pass).
skip() {
	echo "$*" >/tmp/reason
	exit 77
}

_now() { # seconds since boot, whole
	read -r _up _ </proc/uptime
	echo "${_up%.*}"
}

_q() { # quote one word for sh
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

vm_command() {
	_name=$1
	shift
	_kernel=$GUEST_KERNEL _initrd=$GUEST_INITRD _cmdline=$GUEST_CMDLINE
	_cpus=1 _mem=512M _noreboot= _rest= _qnet= _nic=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--kernel) _kernel=$2 && shift ;;
		--initrd) _initrd=$2 && shift ;;
		--cmdline) _cmdline=$2 && shift ;;
		--cpus) _cpus=$2 && shift ;;
		--memory) _mem=$2 && shift ;;
		--no-reboot) _noreboot=1 ;;
		--net)
			if [ "$LAB_VMM" = qemu ]; then
				_nic=$((_nic + 1))
				_tap=${2#tap=} _mac=
				case "$_tap" in *,mac=*) _mac=,mac=${_tap#*,mac=} _tap=${_tap%%,*} ;; esac
				_qnet="$_qnet -netdev tap,id=n$_nic,ifname=$_tap,script=no,downscript=no,vnet_hdr=on"
				_qnet="$_qnet -device virtio-net-pci,romfile=,netdev=n$_nic$_mac${QEMU_NET_OPTS:-}"
			else
				_rest="$_rest --net $(_q "$2")"
			fi
			shift
			;;
		*) _rest="$_rest $(_q "$1")" ;;
		esac
		shift
	done
	if [ "$LAB_VMM" = qemu ]; then
		[ -z "$_rest" ] || {
			echo "vm_command: QEMU translation does not know:$_rest" >&2
			return 1
		}
		_machine=microvm
		[ -z "$_qnet" ] || _machine=microvm,pcie=on,acpi=on
		printf 'exec qemu-system-x86_64 -M %s -accel kvm -cpu host -nodefaults' "$_machine"
		printf ' -no-user-config -display none -serial stdio -m %s -smp %s' "$_mem" "$_cpus"
		printf ' -kernel %s -initrd %s -append %s' "$(_q "$_kernel")" "$(_q "$_initrd")" "$(_q "$_cmdline")"
		[ -z "$_noreboot" ] || printf ' -no-reboot'
		printf '%s' "$_qnet"
	else
		printf 'exec keel-vmm --name %s --cpus %s --memory %s' "$(_q "$_name")" "$_cpus" "$_mem"
		printf ' --kernel %s --initrd %s --cmdline %s' "$(_q "$_kernel")" "$(_q "$_initrd")" "$(_q "$_cmdline")"
		[ -z "$_noreboot" ] || printf ' --no-reboot'
		printf '%s' "$_rest"
	fi
	echo
}

# vm_start runs every keel-vmm jailed, as keeld runs a worker: a command that vm_command (or
# a scenario's own vm_command) prints as "exec keel-vmm ..." runs through lab-jail
# (tests/lab/jailrun.c: its own uid, its root $VM_DIR/NAME/jail, every file and socket opened
# for it and passed, a cgroup, a PID namespace), which writes the worker's pid to
# $VM_DIR/NAME/vmm.pid; the first line vm_wait matches checks that it runs jailed (vm_jailed).
# A jailed worker writes only into ROOT/save (the control socket's "save"), ROOT its jail root:
# $VM_ROOT when the scenario sets it (one VM directory that several runs of the same VM share,
# as keeld's vms/UUID is: a UEFI variable store kept across them must be inside it), else
# $VM_DIR/NAME/jail.
vm_start() {
	_d=$VM_DIR/$1
	[ ! -e "$_d" ] || fail "vm_start: a VM named $1 was already started"
	mkdir -p "$_d"
	vm_command "$@" >"$_d/cmd" || fail "vm_start $1: bad options"
	case "$(cat "$_d/cmd")" in
	"exec keel-vmm "*)
		command -v lab-jail >/dev/null || fail "lab-jail is not in the lab (tests/lab/jailrun.c: make)"
		sed -i "1s|^exec keel-vmm |exec lab-jail --root ${VM_ROOT:-$_d/jail} --pid-file $_d/vmm.pid -- $(command -v keel-vmm) |" "$_d/cmd"
		: >"$_d/jailrun"
		;;
	esac
	mkfifo "$_d/in"
	: >"$_d/out"
	echo 0 >"$_d/seen"
	# The holder keeps the fifo open for writing so that the VMM never reads end-of-file.
	sleep 2147483647 >"$_d/in" &
	echo $! >"$_d/holder"
	(
		sh "$_d/cmd" <"$_d/in" >"$_d/out" 2>&1 &
		echo $! >"$_d/pid"
		wait $!
		echo $? >"$_d/status.tmp"
		mv "$_d/status.tmp" "$_d/status"
		kill "$(cat "$_d/holder")" 2>/dev/null
	) &
	echo $! >"$_d/waiter"
	echo "lab: started VM $1: $(cat "$_d/cmd")"
}

# vm_bridge_tap BRIDGE TAP: once the VMM has made tap TAP (10 s at most), make it a port of
# BRIDGE and bring it up.
vm_bridge_tap() {
	_i=0
	until ip link show "$2" >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || fail "keel-vmm did not create $2 within 10 s"
		sleep 0.1
	done
	brctl addif "$1" "$2" && ip link set "$2" up || fail "cannot put $2 on $1"
}

# _jail_verdict: a /proc/PID/status on stdin judged as a jailed worker's (vm_jailed): "uid
# U, ..." when every uid and gid is of the workers' range (keeld's --worker-uids default,
# 65536 from 3221225472), no capability set holds any, NoNewPrivs is 1, Seccomp is 2 (filters) and
# the process is PID 1 of a PID namespace one level down; else "NOT" and what is wrong.
# tests/lab/api-test.sh checks it.
_jail_verdict() {
	awk '
		/^Uid:|^Gid:/ { for (i = 2; i <= 5; i++) if ($i < 3221225472 || $i >= 3221291008) bad = bad " " $1 $i }
		/^Uid:/ { uid = $2 }
		/^Cap(Eff|Prm|Inh|Bnd|Amb):/ && $2 !~ /^0+$/ { bad = bad " " $1 $2 }
		/^NoNewPrivs:/ { nnp = $2 } /^Seccomp:/ { sc = $2 } /^Seccomp_filters:/ { nf = $2 }
		/^NSpid:/ { ns = $NF; nsn = NF }
		END {
			if (nnp != 1) bad = bad " NoNewPrivs:" nnp
			if (sc != 2) bad = bad " Seccomp:" sc
			if (ns != 1 || nsn != 3) bad = bad " NSpid(last):" ns
			if (bad != "") print "NOT" bad
			else printf "uid %s, no capabilities, NoNewPrivs 1, Seccomp 2 (%s filters), PID 1 of its own PID namespace", uid, nf
		}'
}

# _jail_ns PID: nothing when PID has mount, network, IPC and UTS namespaces other than this
# shell's (the host's: src/vmm/jail.c makes them before its filters go on), else "NOT" and the
# first it shares (or cannot be read). tests/lab/api-test.sh checks it.
_jail_ns() {
	for _ns in mnt net ipc uts; do
		_a=$(readlink "/proc/$1/ns/$_ns" 2>/dev/null)
		if [ -z "$_a" ] || [ "$_a" = "$(readlink "/proc/$$/ns/$_ns")" ]; then
			echo "NOT in its own $_ns namespace (${_a:-unreadable})"
			return
		fi
	done
}

# vm_jailed NAME: VM NAME's keel-vmm (started through lab-jail) runs as keeld runs a worker
# (_jail_verdict on its /proc/PID/status, _jail_ns; with cgroups v2 mounted, in a cgroup of its
# own under keel.slice, /proc/PID/cgroup), waiting up to 10 s for the filters (they go on
# before the guest's first instruction, so a VM that printed anything has them).
vm_jailed() {
	_jd=$VM_DIR/$1 _ji=0
	while :; do
		_jp=$(cat "$_jd/vmm.pid" 2>/dev/null)
		_jj=$( ([ -n "$_jp" ] && cat "/proc/$_jp/status" 2>/dev/null) | _jail_verdict)
		case "$_jj" in
		uid*)
			_jn=$(_jail_ns "$_jp")
			_jj=${_jn:-"$_jj, its own mount, network, IPC and UTS namespaces"}
			;;
		esac
		# On a host with cgroups v2 (the lab's init mounts them), a cgroup of its own too.
		if [ -n "$_jp" ] && grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts; then
			_jc=$(sed -n 's/^0:://p' "/proc/$_jp/cgroup" 2>/dev/null)
			case "$_jc" in
			/keel.slice/vm-*) _jj="$_jj, cgroup $_jc" ;;
			*) _jj="NOT in cgroup '$_jc' (not one of its own under keel.slice)" ;;
			esac
		fi
		case "$_jj" in uid*) break ;; esac
		_ji=$((_ji + 1))
		[ "$_ji" -lt 100 ] || fail "VM $1's keel-vmm (pid ${_jp:-none}) does not run jailed:${_jj#NOT}"
		sleep 0.1
	done
	: >"$_jd/jailed"
	echo "lab: VM $1's keel-vmm (pid $_jp) runs jailed: $_jj"
}

vm_boot() {
	vm_start "$@"
	vm_wait "$1" "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
}

# What a console line says, as awk statements on $0 (with -v esc=ESC): without carriage returns
# and terminal control sequences (ECMA-48 CSI: ESC [, parameter bytes 0-?, intermediate bytes
# space to /, a final byte @ to ~; only what follows an ESC, so text with brackets stays). A
# terminal shows neither as text; bash 5.2's readline, for one, starts the first line of a
# command's output with ESC[?2004l (bracketed paste off) and a carriage return, so
# "@@DONE@@ 0" would not start its line otherwise. tests/lab/api-test.sh checks it.
_PLAIN='gsub(/\r/, ""); gsub(esc "\\[[0-?]*[ -/]*[@-~]", "")'
_ESC=$(printf '\033')

# vm_wait NAME ERE [SECONDS]: wait for a line matching ERE after the last line matched by an
# earlier vm_wait or vm_run on this VM (so waiting twice for the same line needs it twice).
# Carriage returns and terminal control sequences are removed before matching (_PLAIN). Sets
# VM_LINE to the matched line, so cleaned.
vm_wait() {
	_d=$VM_DIR/$1 _pat=$2 _tmo=${3:-60}
	[ -d "$_d" ] || fail "vm_wait: no VM named $1"
	_end=$(($(_now) + _tmo))
	while :; do
		_exited=0
		[ -e "$_d/status" ] && _exited=1
		_n=$(awk -v s="$(cat "$_d/seen")" -v p="$_pat" -v esc="$_ESC" \
			"NR > s { $_PLAIN; if (\$0 ~ p) { print NR; exit } }" "$_d/out")
		if [ -n "$_n" ]; then
			echo "$_n" >"$_d/seen"
			VM_LINE=$(awk -v n="$_n" -v esc="$_ESC" "NR == n { $_PLAIN; print; exit }" "$_d/out")
			[ ! -e "$_d/jailrun" ] || [ -e "$_d/jailed" ] || vm_jailed "$1"
			return 0
		fi
		[ "$_exited" = 0 ] ||
			fail "VM $1 exited with status $(cat "$_d/status") before printing a line matching '$_pat'"
		[ "$(_now)" -lt "$_end" ] ||
			fail "VM $1 printed no line matching '$_pat' within ${_tmo}s"
		sleep 0.1
	done
}

vm_send() {
	_d=$VM_DIR/$1
	[ -p "$_d/in" ] || fail "vm_send: no VM named $1"
	[ ! -e "$_d/status" ] || fail "vm_send: VM $1 has exited (status $(cat "$_d/status"))"
	printf '%s\n' "$2" >"$_d/in"
}

# vm_run NAME COMMAND [SECONDS]: run COMMAND at the guest's shell prompt (one line, at most
# about 4000 characters) and wait for it to finish. VM_OUT: its output, without carriage
# returns and terminal control sequences; VM_RC: its exit status.
vm_run() {
	_d=$VM_DIR/$1
	# The shell's line editor wraps the echo of lines longer than the terminal (80 columns on
	# a serial console); make the guest's terminal wide once, before the first command.
	if [ ! -e "$_d/wide" ]; then
		: >"$_d/wide"
		vm_run "$1" 'stty cols 4096 rows 64' "${3:-60}"
	fi
	_start=$(cat "$_d/seen" 2>/dev/null)
	vm_send "$1" "$2; echo @@D\"\"ONE@@ \$?"
	vm_wait "$1" '^@@DONE@@ [0-9]+$' "${3:-60}"
	VM_RC=${VM_LINE#@@DONE@@ }
	# The output is what follows the echo of the command line, up to the status line.
	VM_OUT=$(awk -v s="$_start" -v e="$(cat "$_d/seen")" -v esc="$_ESC" '
		NR > s && NR < e {
			'"$_PLAIN"'
			if (index($0, "@@D\"\"ONE@@")) { out = ""; n = 0; next }
			out = n++ ? out "\n" $0 : $0
		}
		END { printf "%s", out }' "$_d/out")
}

vm_wait_exit() {
	_d=$VM_DIR/$1 _tmo=${2:-60}
	[ -d "$_d" ] || fail "vm_wait_exit: no VM named $1"
	_end=$(($(_now) + _tmo))
	while [ ! -e "$_d/status" ]; do
		[ "$(_now)" -lt "$_end" ] || fail "VM $1 did not exit within ${_tmo}s"
		sleep 0.1
	done
	VM_STATUS=$(cat "$_d/status")
}

vm_kill() {
	_d=$VM_DIR/$1
	# The worker itself (lab-jail then exits 137), and what runs it.
	[ -s "$_d/vmm.pid" ] && kill -9 "$(cat "$_d/vmm.pid")" 2>/dev/null
	[ -s "$_d/pid" ] && kill -9 "$(cat "$_d/pid")" 2>/dev/null
	vm_wait_exit "$1" 10
}

# check_memtotal NAME MIB: the guest's MemTotal must be at most MIB MiB (the VMM gave no more
# than asked) and at least MIB less what the kernel keeps for itself: its image and static
# data (about 34 MiB for Debian's cloud kernel 6.1), the struct page array (64 bytes per
# 4 KiB page, 1.6%), the first MiB and firmware tables, and, when RAM reaches above 4 GiB
# (more than 3 GiB, keel-vmm's hole start), the 64 MiB SWIOTLB bounce buffer. Measured with
# keel-vmm and with QEMU: 41 MiB short at 512 MiB, 50 at 1 GiB, 159 at 3.5 GiB. Tolerance:
# 48 MiB + 2% of MIB (+ 64 MiB above 3 GiB), tight enough to catch a lost region of RAM.
check_memtotal() {
	vm_run "$1" "awk '/^MemTotal:/ { print \$2 }' /proc/meminfo"
	_kib=$VM_OUT
	case "$_kib" in '' | *[!0-9]*) fail "MemTotal in VM $1 is '$_kib'" ;; esac
	_want=$(($2 * 1024))
	_short=$((_want - _kib))
	_tol=$((48 * 1024 + _want / 50))
	[ "$2" -le 3072 ] || _tol=$((_tol + 64 * 1024))
	echo "lab: MemTotal $_kib KiB with --memory ${2}M: $((_short / 1024)) MiB short (tolerance $((_tol / 1024)) MiB)"
	[ "$_short" -ge 0 ] || fail "MemTotal $_kib KiB is more than --memory ${2}M"
	[ "$_short" -le "$_tol" ] ||
		fail "MemTotal $_kib KiB is $((_short / 1024)) MiB less than --memory ${2}M (tolerance $((_tol / 1024)) MiB)"
}

# keeld and keel (issue 5) in a scenario. keeld_start starts keeld with its state in $KD
# (default: a directory of this attempt's, under VM_DIR); the first call of an attempt stops
# whatever keeld and keel-vmm an earlier failed attempt left running. Every keel command
# then talks to it.
KD=${KD:-$VM_DIR/keeld}
export KEEL_SOCKET=$KD/keeld.sock

# switches_reset: what an earlier attempt's switches left (dnsmasq, bridges kbr0-3, keel's
# nftables tables) gone, before a switch scenario's keeld_start.
switches_reset() {
	killall -q dnsmasq
	for _b in kbr0 kbr1 kbr2 kbr3; do /usr/sbin/ip link del $_b 2>/dev/null; done
	/usr/sbin/nft delete table inet keel 2>/dev/null
	/usr/sbin/nft delete table bridge keel 2>/dev/null
	mkdir -p "$KD"
}

keeld_start() {
	command -v keeld >/dev/null && command -v keel >/dev/null ||
		fail "keeld and keel are not in the lab: build them (make) before the lab"
	if [ ! -e "$KD/started" ]; then
		killall -q -9 keeld keel-vmm
		mkdir -p "$KD"
		: >"$KD/started"
	fi
	# --freeze-timeout 30: under nested emulation a production checkpoint's freeze, save,
	# restart and thaw take 6-10 s, at the edge of the default 10 s (docs/checkpoints.md).
	keeld --state-dir "$KD/state" --socket "$KEEL_SOCKET" --freeze-timeout 30 >>"$KD/keeld.log" 2>&1 &
	echo $! >"$KD/pid"
	_i=0
	while ! keel vm list >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || { cat "$KD/keeld.log"; fail "keeld did not answer within 10 s"; }
		sleep 0.1
	done
	# The storage pools the scenarios' files come from (docs/security.md): the guest's
	# kernel and initrd, and /tmp (VM_DIR is beneath it).
	for _p in "guest $(dirname "$GUEST_KERNEL")" "tmp /tmp"; do
		set -- $_p
		keel pool list | grep -q "^$1 " || keel pool create "$1" --path "$2" >/dev/null ||
			fail "keel pool create $1 --path $2 failed"
	done
}

# keel_console_wait NAME ERE SECONDS: the console (with its replay) shows a matching line.
keel_console_wait() {
	_end=$(($(_now) + $3))
	while :; do
		keel console "$1" --read-only --timeout 2 >"$KD/console.out" 2>/dev/null
		tr -d '\r' <"$KD/console.out" | grep -Eq "$2" && return 0
		[ "$(_now)" -lt $_end ] || {
			tail -20 "$KD/console.out"
			fail "console of $1 did not show '$2' within $3 s"
		}
	done
}

# keel_run NAME COMMAND [SECONDS]: type COMMAND at the shell on `keel console NAME` and wait
# for it to finish. KEEL_OUT: its output (without carriage returns and terminal control
# sequences, as _PLAIN: bash 5.2's readline starts a command's output with ESC[?2004l);
# KEEL_RC: its status. The output is what comes between two lines the guest prints, @@SN@@
# and "@@KN@@ STATUS": never the echo of the typed line, which has the markers quoted
# (@@S"N"@@) and which the guest's line editor wraps at the terminal's width (80 columns on
# a serial console): a long command's echo is split over lines.
keel_run() {
	_kn=$((${_kn:-0} + 1))
	printf 'echo @@S"%s"@@; %s; echo @@K"%s"@@ $?\n' "$_kn" "$2" "$_kn" |
		keel console "$1" --linger 1 >/dev/null 2>&1 ||
		fail "keel console $1: cannot type '$2'"
	_end=$(($(_now) + ${3:-60}))
	while :; do
		keel console "$1" --read-only --timeout 2 2>/dev/null |
			awk -v esc="$_ESC" "{ $_PLAIN; print }" >"$KD/run.out"
		grep -Eq "^@@K$_kn@@ [0-9]+\$" "$KD/run.out" && break
		[ "$(_now)" -lt $_end ] || {
			tail -20 "$KD/run.out"
			fail "'$2' on the console of $1 did not finish within ${3:-60} s"
		}
	done
	KEEL_RC=$(sed -n "s/^@@K$_kn@@ \([0-9]*\)\$/\1/p" "$KD/run.out" | tail -n 1)
	KEEL_OUT=$(awk -v s="@@S$_kn@@" -v e="@@K$_kn@@" '
		$0 == s { out = ""; n = 0; on = 1; next }
		on && index($0, e) == 1 { on = 0; next }
		on { out = n++ ? out "\n" $0 : $0 }
		END { printf "%s", out }' "$KD/run.out")
}

alive() { # a process that has not exited (an orphaned zombie counts as gone)
	[ -e "/proc/$1/stat" ] && ! grep -q ') Z ' "/proc/$1/stat"
}

vm_state() {
	keel vm show "$1" --json | sed -n 's/^ *"state": "\([A-Za-z]*\)".*/\1/p'
}

# image_copy NAME FILE: copy the firmware-boot image NAME (scripts/images/; the lab host has it
# as a read-only virtio-blk drive whose serial is NAME, attached because the scenario names it
# in a "# lab-images: NAME" line) to FILE, which the VM may then write: mode 0600, as keel disk
# create makes disks (keeld refuses a disk a VM writes that every user may read: security.md).
image_copy() {
	for _b in /sys/block/vd*; do
		[ "$(cat "$_b/serial" 2>/dev/null)" = "$1" ] || continue
		(umask 077 && dd if="/dev/${_b##*/}" of="$2" bs=1M 2>/dev/null) ||
			fail "copying image $1 from /dev/${_b##*/} failed"
		chmod 600 "$2" || fail "cannot make $2 private"
		echo "lab: image $1: $(($(stat -c %s "$2") / 1048576)) MiB copied from /dev/${_b##*/}"
		return 0
	done
	fail "the lab has no image $1 (no drive with serial $1; the scenario needs '# lab-images: $1')"
}

# image_wait NAME ERE [SECONDS]: vm_wait for a line of the image's /init (scripts/images/init)
# matching ERE; its failure line ("keel-image: FAIL ...") fails the scenario at once.
image_wait() {
	vm_wait "$1" "^keel-image: FAIL|$2" "${3:-60}"
	case "$VM_LINE" in "keel-image: FAIL"*) fail "VM $1: ${VM_LINE#keel-image: }" ;; esac
	echo "lab: VM $1: $VM_LINE"
}

# image_poweroff NAME [SECONDS]: the guest powered off (ACPI S5): keel-vmm must exit 0.
image_poweroff() {
	vm_wait_exit "$1" "${2:-60}"
	[ "$VM_STATUS" = 0 ] || fail "VM $1: keel-vmm exit status $VM_STATUS after the guest's power-off"
}

# host_tier TIER SECONDS: the lab's tier TIER of the host tier's tests (docs/testing.md, "Without
# KVM on the host"; tests/lab/guests_tier.py: guests, daemon), as 95-guests-tier and
# 96-daemon-tier run it: from the read-only drive of run.sh (serial guests-tier, lab.sh
# lab_guests_tier_build), its tests listed in keel/TIER.json there, at most SECONDS in all
# (below the scenario's lab-timeout, whose SIGKILL would skip this cleanup). keel.time_scale=N
# on the lab's command line scales their time limits (default 4: the emulated CPU runs the
# guests and keel-vmm about that much slower than a host's own KVM). The tier kills every
# process of its tests when each ends, and should this shell die anyway, it gets SIGTERM and
# does the same (guests_tier.py run); at the end no keel-vmm may be left running.
host_tier() {
	_ht_scale=4 _ht_mnt=/mnt/guests-tier # LAB_GUESTS_TIER_MNT in lab.sh: the lists' paths begin with it
	for _w in $(cat /proc/cmdline); do
		case "$_w" in keel.time_scale=*) _ht_scale=${_w#*=} ;; esac
	done
	_ht_dev=
	for _b in /sys/block/vd*; do
		[ "$(cat "$_b/serial" 2>/dev/null)" = guests-tier ] && _ht_dev=/dev/${_b##*/}
	done
	[ -n "$_ht_dev" ] || fail "the lab has no guests-tier drive (run.sh attaches it on a host without KVM, or with LAB_GUESTS_TIER=on)"
	_ht_before=$(_ht_vmms)
	_ht_tmp=/mnt/$1-tmp _ht_fs=/tmp/$1-tier.fs _ht_loop=
	trap 'umount "$_ht_tmp" 2>/dev/null; [ -z "$_ht_loop" ] || losetup -d "$_ht_loop"; rm -f "$_ht_fs"; umount "$_ht_mnt" 2>/dev/null' EXIT
	mkdir -p "$_ht_mnt"
	mount -t ext4 -o ro "$_ht_dev" "$_ht_mnt" || fail "cannot mount the guests-tier drive $_ht_dev"
	# The tests' files (their TMPDIR) on an ext4 over a loop device: the disks of the
	# cache=none cases need O_DIRECT, which the lab's RAM-backed /tmp refuses (as tmpfs does
	# before Linux 6.6). Sparse: it takes the lab's RAM only as the tests write; and mounted
	# with discard, so that what they delete goes back at once (the loop device punches the
	# freed blocks out of the file). Online discard rather than fstrim between tests: it
	# frees what a test deletes even while that test runs, and needs no hook in the tier; on
	# the lab's tmpfs a discard is a cheap hole punch.
	dd if=/dev/zero of="$_ht_fs" bs=1M count=0 seek=2048 2>/dev/null || fail "cannot make $_ht_fs"
	/sbin/mkfs.ext4 -q -F -t ext4 -b 4096 -m 0 "$_ht_fs" >/dev/null 2>&1 || fail "mkfs.ext4 $_ht_fs"
	_ht_loop=$(losetup -f) && losetup "$_ht_loop" "$_ht_fs" || fail "losetup $_ht_fs"
	mkdir -p "$_ht_tmp" && mount -t ext4 -o discard "$_ht_loop" "$_ht_tmp" && chmod 1777 "$_ht_tmp" ||
		fail "cannot mount $_ht_loop on $_ht_tmp"
	echo "lab: $1 tier: $(grep -c '"name"' "$_ht_mnt/keel/$1.json") tests from $_ht_dev, time limits x$_ht_scale, TMPDIR $_ht_tmp"
	# The drive's programs first, then iproute2's ip, bridge and tc (/usr/sbin: the daemon
	# cases' ip netns; busybox's ip in /bin has none).
	PATH=$_ht_mnt/bin:$_ht_mnt/usr/bin:/usr/sbin:$PATH \
		LD_LIBRARY_PATH=$_ht_mnt/lib/x86_64-linux-gnu:$_ht_mnt/usr/lib/x86_64-linux-gnu \
		PYTHONHOME=$_ht_mnt/usr KEEL_TEST_TIME_SCALE=$_ht_scale TMPDIR=$_ht_tmp \
		python3 "$_ht_mnt/keel/src/tests/lab/guests_tier.py" run "$1" "$_ht_mnt/keel/$1.json" "$2"
	_ht_rc=$?
	_ht_left=$(_ht_vmms | grep -vxF "${_ht_before:-none}" | xargs)
	echo "lab: $1 tier: TMPDIR holds $(df -k "$_ht_tmp" | awk 'NR == 2 { printf "%d", $3 / 1024 }') MiB, its file $_ht_fs $(du -k "$_ht_fs" | awk '{ printf "%d", $1 / 1024 }') MiB of the lab's RAM; keel-vmm left running: ${_ht_left:-none}"
	if [ -n "$_ht_left" ]; then
		# shellcheck disable=SC2086 # one pid a word
		kill -9 $_ht_left 2>/dev/null
		fail "keel-vmm left running after the $1 tier (pids $_ht_left)"
	fi
	[ "$_ht_rc" = 0 ] || fail "tests of the $1 tier failed (their lines '$1-lab: FAIL')"
}

_ht_vmms() { # the pids of the keel-vmm processes running
	for _c in /proc/[0-9]*/comm; do
		[ "$(cat "$_c" 2>/dev/null)" = keel-vmm ] && { _c=${_c%/comm}; echo "${_c#/proc/}"; }
	done
}
