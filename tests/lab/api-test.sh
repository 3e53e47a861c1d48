#!/bin/sh
# Host-side check of tests/lab/host/api.sh's console matching (run by hand or from CI: no lab
# needed): vm_wait must find a line however carriage returns surround it. The firmware-boot
# images' init line follows a lone carriage return on the serial console, which a match that
# removed only trailing ones never saw (85-fw-mbr-disk, docs/lab.md).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
VM_DIR=$(mktemp -d)
trap 'rm -rf "$VM_DIR"' EXIT
export VM_DIR
# shellcheck source=tests/lab/host/api.sh
. "$top/tests/lab/host/api.sh"
fail() {
	echo "api-test: FAIL: $*"
	exit 1
}
mkdir -p "$VM_DIR/a"
printf 'GRUB loading Linux\r\n\rkeel-image: init ready from=mbr-disk firmware=bios\r\n\r\r[ 6.1] reboot: Power down\r\n' >"$VM_DIR/a/out"
echo 0 >"$VM_DIR/a/seen"
echo 0 >"$VM_DIR/a/status"
vm_wait a 'loading Linux' 5
vm_wait a '^keel-image: init ready from=mbr-disk firmware=bios$' 5
[ "$VM_LINE" = 'keel-image: init ready from=mbr-disk firmware=bios' ] || fail "VM_LINE is '$VM_LINE'"
vm_wait a 'reboot: Power down$' 5
# Terminal control sequences (ESC-introduced) are not text: bash 5.2 starts a command's first
# output line with ESC[?2004l, systemd colours its status with ESC[0;32m, a cursor-style
# request has an intermediate byte (ESC[2 q). Text with brackets and letters stays as it is.
mkdir -p "$VM_DIR/b"
printf '\033[?2004l\r@@DONE@@ 0\r\n[\033[0;32m  OK  \033[0m] Started a[b]c [?2004l x\r\n\033[2 q\033[>0cend\033[K\r\n' >"$VM_DIR/b/out"
echo 0 >"$VM_DIR/b/seen"
echo 0 >"$VM_DIR/b/status"
vm_wait b '^@@DONE@@ [0-9]+$' 5
vm_wait b 'Started' 5
[ "$VM_LINE" = '[  OK  ] Started a[b]c [?2004l x' ] || fail "VM_LINE is '$VM_LINE'"
vm_wait b '^end$' 5
# keel_run reads keel console's replay the same way: bash 5.2 on Debian 12's serial console
# starts the output with ESC[?2004l (89-fw-debian12), which must not hide it. A fake keel:
# typing is swallowed, the replay is a bash session's.
KD=$VM_DIR/kd
mkdir -p "$KD"
keel() {
	case " $* " in
	*" --read-only "*) printf 'root@keel-debian12:~# \033[?2004hecho @@S"1"@@; blkid; echo @@K"1"@@ $?\r\n\033[?2004l\r@@S1@@\r\nKEEL_AGENT\r\n@@K1@@ 0\r\n' ;;
	*) cat >/dev/null ;;
	esac
}
keel_run deb 'blkid' 5
[ "$KEEL_RC" = 0 ] || fail "KEEL_RC is '$KEEL_RC'"
[ "$KEEL_OUT" = KEEL_AGENT ] || fail "KEEL_OUT is '$KEEL_OUT'"
# A command longer than the console's 80 columns: busybox ash's line editor wraps its echo,
# splitting the quoted markers over lines (lab 77's first run: its ping's output was lost).
keel() {
	case " $* " in
	*" --read-only "*) printf 'guest# echo @@S"2"@@; ping -c 3 -W 10 10.77.0.1 | grep -o "[0-9]* packets rec\r\neived"; echo @@K"2\r\n"@@ $?\r\n@@S2@@\r\n3 packets received\r\n@@K2@@ 0\r\n' ;;
	*) cat >/dev/null ;;
	esac
}
keel_run vk 'ping -c 3 -W 10 10.77.0.1 | grep -o "[0-9]* packets received"' 5
[ "$KEEL_RC" = 0 ] || fail "wrapped echo: KEEL_RC is '$KEEL_RC'"
[ "$KEEL_OUT" = "3 packets received" ] || fail "wrapped echo: KEEL_OUT is '$KEEL_OUT'"
# Every keel-vmm a scenario starts runs through lab-jail (vm_start), and the first line
# vm_wait matches checks it runs jailed (vm_jailed, _jail_verdict). Fakes of both programs:
# lab-jail writes the worker's pid (this test's shell's, which is not jailed) and prints its
# words.
mkdir -p "$VM_DIR/bin"
printf '#!/bin/sh\necho $$ >"$4"\necho "args: $*"\nexec sleep 30\n' >"$VM_DIR/bin/lab-jail"
printf '#!/bin/sh\nexit 0\n' >"$VM_DIR/bin/keel-vmm"
chmod +x "$VM_DIR/bin/lab-jail" "$VM_DIR/bin/keel-vmm"
PATH=$VM_DIR/bin:$PATH
LAB_VMM=keel
vm_command() { echo 'exec keel-vmm --name j --memory 64M'; }
vm_start j >/dev/null
[ -e "$VM_DIR/j/jailrun" ] || fail "vm_start did not mark VM j as run through lab-jail"
case "$(cat "$VM_DIR/j/cmd")" in
"exec lab-jail --root $VM_DIR/j/jail --pid-file $VM_DIR/j/vmm.pid -- $VM_DIR/bin/keel-vmm --name j --memory 64M") ;;
*) fail "vm_start runs: $(cat "$VM_DIR/j/cmd")" ;;
esac
msg=$( (vm_wait j '^args: ' 5) 2>&1) && fail "an unjailed worker passed vm_wait's check: $msg"
case "$msg" in *"does not run jailed: Uid:"*"NoNewPrivs:0 Seccomp:0"*) ;; *) fail "vm_wait on an unjailed worker: $msg" ;; esac
kill "$(cat "$VM_DIR/j/vmm.pid")" 2>/dev/null
# A jailed worker's status (read from one lab-jail started on a development host) passes.
v=$(printf 'Uid:\t3221225472\t3221225472\t3221225472\t3221225472\nGid:\t3221225472\t3221225472\t3221225472\t3221225472\nNSpid:\t14940\t1\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t2\n' | _jail_verdict)
case "$v" in "uid 3221225472, no capabilities, NoNewPrivs 1, Seccomp 2 (2 filters)"*) ;; *) fail "a jailed worker's status: $v" ;; esac
# Each flaw alone fails it: a uid outside the range, a capability, no seccomp, the host's PID namespace.
for bad in 's/^Uid:\t3221225472/Uid:\t0/' 's/^Gid:\t3221225472/Gid:\t4294967294/' 's/^CapBnd:.*/CapBnd:\t000001ffffffffff/' 's/^Seccomp:\t2/Seccomp:\t0/' 's/^NSpid:.*/NSpid:\t14940/'; do
	v=$(printf 'Uid:\t3221225472\t3221225472\t3221225472\t3221225472\nGid:\t3221225472\t3221225472\t3221225472\t3221225472\nNSpid:\t14940\t1\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n' | sed "$bad" | _jail_verdict)
	case "$v" in NOT*) ;; *) fail "a status changed by $bad passed: $v" ;; esac
done
# The namespaces: this shell shares the host's; a process that has its own mount, network, IPC
# and UTS namespaces (as keel-vmm's jail makes them) passes.
case "$(_jail_ns $$)" in "NOT in its own mnt namespace (mnt:"*) ;; *) fail "this shell's namespaces: $(_jail_ns $$)" ;; esac
case "$(_jail_ns 999999999)" in "NOT in its own mnt namespace (unreadable)") ;; *) fail "a pid that does not exist: $(_jail_ns 999999999)" ;; esac
# ns_of FLAGS: _jail_ns of a process that unshare FLAGS started (as root in a user namespace).
ns_of() {
	rm -f "$VM_DIR/ns-ready"
	unshare -r "$@" sh -c "touch $VM_DIR/ns-ready; exec sleep 30" &
	_p=$!
	_i=0
	until [ -e "$VM_DIR/ns-ready" ]; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || fail "unshare -r $* did not start"
		sleep 0.1
	done
	_jail_ns $_p
	kill $_p
	wait $_p 2>/dev/null
}
v=$(ns_of -m -n -i -u)
[ -z "$v" ] || fail "a process in namespaces of its own: $v"
v=$(ns_of -m -n -u)
case "$v" in "NOT in its own ipc namespace (ipc:"*) ;; *) fail "a process in the host's IPC namespace: '$v'" ;; esac
echo "api-test: ok"
