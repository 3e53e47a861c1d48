# PCI hot plug of network adapters (issue 12): a virtio-net adapter added over keel-vmm's
# control socket ("nic-add") to a running Debian-kernel guest appears as a new interface (the
# ACPI GPE, the DSDT's device check, Linux's acpiphp, unmodified) and reaches a peer on its
# bridge. The VM is saved with it and restored in a new keel-vmm started with the adapter in
# its description: the interface is still there and still reaches the peer. Removed
# ("nic-remove"), the guest ejects it (_EJ0), the interface disappears, the worker tears the
# card down (its tap goes). A second adapter then takes the freed slot, works, and is removed
# the same way. The guest's kernel log has no error about any of it. The workers run jailed
# (api.sh, vm_start), so the host attaches each hot-added adapter's tap and passes it with the
# request (lab-vmmctl --tap, "fd":true), as keeld does; VM hp saves into $VM_DIR/hp/jail/save,
# the one directory its uid may write. The data path (issue 16): the first adapter is added
# with the host's /dev/vhost-net passed second (lab-vmmctl --tap --vhost, "vhost_fd":true), as
# keeld adds one on a host that has it, and the kernel's data path serves it, also once
# restored (there it is a boot-time adapter, its vhost-net passed by lab-jail); the second is
# added with the tap alone and keel-vmm's user-space path serves it, said so. Multi-queue
# (issue 16): the VM has 2 vCPUs and the first adapter is added with 2 queue pairs, the tap's
# 2 queues and 2 /dev/vhost-nets passed (lab-vmmctl --queues 2, "queues":2), as keeld adds one
# by default on such a VM: the guest's driver enables both (2 rx and 2 tx queues in sysfs,
# both tap queues attached), also once restored with 2; the second, added without "queues",
# has one pair.
# lab-timeout: 400
command -v lab-vmmctl >/dev/null || fail "lab-vmmctl is not in the lab (tests/lab/vmmctl.c)"
[ -c /dev/vhost-net ] || fail "the lab host has no /dev/vhost-net (tests/lab/host/modules: vhost_net)"
SAVE=$VM_DIR/hp/jail/save
MAC1=52:54:00:12:34:71
MAC2=52:54:00:12:34:72
for l in khbr0 khtap1 khtap2; do ip link del "$l" 2>/dev/null; done
# A fixed MAC: the bridge keeps its address when its ports come and go (70-save-restore).
brctl addbr khbr0 && ip link set khbr0 address 02:00:00:00:74:01 &&
	ip addr add 10.11.0.254/24 dev khbr0 && ip link set khbr0 up ||
	fail "cannot create bridge khbr0 with 10.11.0.254 (the peer)"

ctl() { # ctl VM REQUEST [TAP ["[--queues N] [--vhost]"]]: one control request that must
	# succeed, with TAP's queues attached and passed when given (and as many /dev/vhost-nets
	# after them with --vhost); CTL_OUT: the reply
	CTL_OUT=$(lab-vmmctl ${3:+--tap "$3"} $4 "/tmp/$1.sock" "$2" 2>&1) || fail "control request $2 to $1 failed: $CTL_OUT"
	echo "lab: $1 <- $2: $CTL_OUT"
}

path_is() { # path_is VM TAP WORDS: the worker's log says which data path serves the adapter
	grep -q "$2: $3" "$VM_DIR/$1/out" ||
		fail "$1's log does not say '$2: $3': $(grep -e vhost -e 'data path' "$VM_DIR/$1/out" | tail -n 4)"
	echo "lab: $1: $(grep "$2: $3" "$VM_DIR/$1/out" | tail -n 1 | tr -d '\r')"
}

bridge_tap() { vm_bridge_tap khbr0 "$1"; } # bridge_tap TAP: made for the worker (lab-jail, lab-vmmctl --tap)

ping_peer() { # ping_peer VM WHEN
	vm_run "$1" 'ping -c 3 -W 10 10.11.0.254 | grep -o "[0-9]* packets received"' 90
	[ "$VM_OUT" = "3 packets received" ] || fail "ping from $1's hot-added adapter $2: '$VM_OUT'"
	echo "lab: $1 pings the peer through its hot-added adapter $2"
}

queues_are() { # queues_are VM TAP N WHEN: the guest's eth0 has N rx and N tx queues (the pairs
	# its driver enabled) and the tap N attached queues (a tap's tx queues in sysfs)
	_want=$(i=0; while [ $i -lt "$3" ]; do printf 'rx-%d ' $i; i=$((i + 1)); done
		i=0; while [ $i -lt "$3" ]; do printf 'tx-%d ' $i; i=$((i + 1)); done)
	vm_run "$1" 'echo $(ls /sys/class/net/eth0/queues)'
	[ "$VM_OUT " = "$_want" ] || fail "$1's eth0 $4 has queues '$VM_OUT', expected '$_want'"
	_q=$(ls "/sys/class/net/$2/queues" | grep -c tx-)
	[ "$_q" = "$3" ] || fail "tap $2 $4 has $_q attached queues, expected $3"
	echo "lab: $1's eth0 $4: queues $VM_OUT; tap $2 has $_q attached"
}

add_nic() { # add_nic VM TAP MAC ADDR [vhost]: add (with vhost: 2 queue pairs on the host's
	# vhost-net, the kernel's data path; else one on the user-space path), see it appear with
	# its pairs, give it ADDR, ping; sets SLOT
	if [ "$5" = vhost ]; then
		ctl "$1" "{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"$2\",\"mac\":\"$3\",\"fd\":true,\"vhost_fd\":true,\"queues\":2}}" "$2" "--queues 2 --vhost"
		path_is "$1" "$2" "vhost-net: the host kernel's data path serves the adapter"
	else
		ctl "$1" "{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"$2\",\"mac\":\"$3\",\"fd\":true}}" "$2"
		path_is "$1" "$2" "user-space data path: keeld passed no /dev/vhost-net"
	fi
	SLOT=$(echo "$CTL_OUT" | sed -n 's/.*"slot":\([0-9]*\).*/\1/p')
	[ -n "$SLOT" ] || fail "nic-add gave no slot: $CTL_OUT"
	bridge_tap "$2"
	t0=$(_now)
	vm_run "$1" "for i in \$(seq 60); do [ -e /sys/class/net/eth0 ] && break; sleep 1; done; cat /sys/class/net/eth0/address" 90
	[ "$VM_OUT" = "$3" ] || fail "no eth0 with MAC $3 appeared in $1: '$VM_OUT'"
	echo "lab: eth0 ($3) appeared in $1 at slot $SLOT within $(($(_now) - t0)) s"
	vm_run "$1" "ip addr add $4/24 dev eth0 && ip link set eth0 up && echo ok"
	[ "$VM_OUT" = ok ] || fail "eth0 set-up in $1: $VM_OUT"
	queues_are "$1" "$2" "$([ "$5" = vhost ] && echo 2 || echo 1)" "added"
	ping_peer "$1" "$3"
}

remove_nic() { # remove_nic VM TAP MAC: the guest ejects it, the worker tears it down
	ctl "$1" "{\"execute\":\"nic-remove\",\"arguments\":{\"mac\":\"$3\"}}"
	t0=$(_now)
	sleep 1 # the worker's log line on the console first, not inside the command's output
	# The verdict is the last line: the worker's log may still land among the lines.
	vm_run "$1" 'for i in $(seq 60); do [ -e /sys/class/net/eth0 ] || break; sleep 1; done; [ -e /sys/class/net/eth0 ] && echo STILL || echo GONE' 90
	[ "$(printf '%s\n' "$VM_OUT" | tail -n 1)" = GONE ] || fail "eth0 is still in $1 after the removal: $VM_OUT"
	echo "lab: eth0 ($3) disappeared from $1 within $(($(_now) - t0)) s"
	_i=0
	while :; do
		CTL_OUT=$(lab-vmmctl "/tmp/$1.sock" '{"execute":"nic-list"}' 2>&1) || fail "nic-list: $CTL_OUT"
		case "$CTL_OUT" in *'"nics":[]'*) break ;; esac
		_i=$((_i + 1))
		[ "$_i" -le 30 ] || fail "$1's worker still has the card after the guest's eject: $CTL_OUT"
		sleep 1
	done
	grep -q "network adapter $2 ($3) at slot [0-9]* removed" "$VM_DIR/$1/out" ||
		fail "$1's worker did not log the removal"
	! ip link show "$2" >/dev/null 2>&1 || fail "tap $2 is still there: the card was not torn down"
	echo "lab: $1's worker tore the card down after the guest's eject (tap $2 gone)"
}

vm_boot hp --memory 320M --cpus 2 --control /tmp/hp.sock
vm_run hp 'ls /sys/class/net | tr "\n" " "; ls /sys/bus/pci/slots | wc -l'
echo "lab: before: interfaces, then how many hot-pluggable slots acpiphp registered: $VM_OUT"
case "$VM_OUT" in *eth*) fail "the guest has an adapter before any was added: $VM_OUT" ;; esac
[ "${VM_OUT##* }" -gt 0 ] || fail "acpiphp registered no hot-pluggable slot (/sys/bus/pci/slots is empty)"
out=$(lab-vmmctl --tap khtap1 /tmp/hp.sock '{"execute":"nic-add","arguments":{"tap":"khtap1","mac":"01:00:00:00:00:01","fd":true}}' 2>&1) &&
	fail "nic-add with a multicast MAC was accepted: $out"
case "$out" in *"not a unicast MAC"*) ;; *) fail "nic-add with a multicast MAC: $out" ;; esac
echo "lab: a multicast MAC is refused: $out"

add_nic hp khtap1 $MAC1 10.11.0.1 vhost
slot1=$SLOT

# Saved with the hot-added adapter; restored in a new keel-vmm whose description has it.
ctl hp "{\"execute\":\"save\",\"arguments\":{\"dir\":\"$SAVE\"}}"
ctl hp '{"execute":"quit"}'
vm_wait_exit hp 30
[ "$VM_STATUS" = 0 ] || fail "quit after the save: keel-vmm exited with $VM_STATUS"
vm_start hp2 --memory 320M --cpus 2 --net "tap=khtap1,mac=$MAC1,slot=$slot1" --control /tmp/hp2.sock --restore $SAVE
bridge_tap khtap1
vm_run hp2 'cat /sys/class/net/eth0/address'
[ "$VM_OUT" = $MAC1 ] || fail "the restored guest's eth0: '$VM_OUT'"
path_is hp2 khtap1 "vhost-net: the host kernel's data path serves the adapter"
queues_are hp2 khtap1 2 "after the restore"
ping_peer hp2 "$MAC1 after the restore"
remove_nic hp2 khtap1 $MAC1

add_nic hp2 khtap2 $MAC2 10.11.0.2
[ "$SLOT" = "$slot1" ] || echo "lab: the second adapter took slot $SLOT (the first had $slot1)"
remove_nic hp2 khtap2 $MAC2

# Errors: acpiphp's failures, an oops, BUG or WARN ("WARNING: CPU: ..."; not the boot-time
# notices every lab guest prints: i8042's "Warning: Keylock active", the CPU's "Speculative
# Return Stack Overflow: WARNING: See ...", _OSC's "(AE_NOT_FOUND)"), ACPI's errors.
vm_run hp2 '{ dmesg | grep -iE "acpiphp.*(fail|error|unable)"; dmesg | grep -E "Oops|BUG:|WARNING: CPU|Call Trace|ACPI Error|ACPI BIOS Error"; } >/tmp/err; tail -20 /tmp/err; echo "error lines: $(wc -l </tmp/err)"'
[ "$(printf '%s\n' "$VM_OUT" | tail -n 1)" = "error lines: 0" ] || fail "the guest's kernel log has errors: $VM_OUT"
echo "lab: no acpiphp failure, oops, BUG, WARNING or ACPI error in the guest's kernel log"
vm_run hp2 'dmesg | grep -iE "acpiphp|1af4:1041|virtio_net" | tail -8'
echo "lab: the guest's kernel log on hot plug: $VM_OUT"
vm_send hp2 'poweroff -f'
vm_wait_exit hp2 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f ended the VMM with status $VM_STATUS, expected 0"
brctl delbr khbr0 2>/dev/null
true
