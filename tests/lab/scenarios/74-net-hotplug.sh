# PCI hot plug of network adapters (issue 12): a virtio-net adapter added over keel-vmm's
# control socket ("nic-add") to a running Debian-kernel guest appears as a new interface (the
# ACPI GPE, the DSDT's device check, Linux's acpiphp, unmodified) and reaches a peer on its
# bridge; removed ("nic-remove"), the guest ejects it (_EJ0), the interface disappears, the
# worker tears the card down (its tap goes), and the guest's kernel log has no error about it.
# Twice, so that a slot freed by an eject takes a new adapter.
# lab-timeout: 300
command -v lab-vmmctl >/dev/null || fail "lab-vmmctl is not in the lab (tests/lab/vmmctl.c)"
for l in khbr0 khtap1 khtap2; do ip link del "$l" 2>/dev/null; done
brctl addbr khbr0 || fail "cannot create bridge khbr0 (bridge module?)"
ip link set khbr0 up
ip addr add 10.11.0.254/24 dev khbr0 || fail "cannot give the bridge (the peer) an address"

SOCK=/tmp/hp.sock
ctl() { # ctl REQUEST: one control request that must succeed; CTL_OUT: the reply
	CTL_OUT=$(lab-vmmctl $SOCK "$1" 2>&1) || fail "control request $1 failed: $CTL_OUT"
	echo "lab: <- $1: $CTL_OUT"
}

vm_boot hp --memory 320M --control $SOCK
vm_run hp 'ls /sys/class/net | tr "\n" " "; ls /sys/bus/pci/slots | wc -l'
echo "lab: before: interfaces and acpiphp slots: $VM_OUT"
case "$VM_OUT" in *eth*) fail "the guest has an adapter before any was added: $VM_OUT" ;; esac
slots=${VM_OUT##* }
[ "$slots" -gt 0 ] || fail "acpiphp registered no hot-pluggable slot (/sys/bus/pci/slots is empty)"

# A bad request changes nothing.
out=$(lab-vmmctl $SOCK '{"execute":"nic-add","arguments":{"tap":"khtap1","mac":"01:00:00:00:00:01"}}' 2>&1) &&
	fail "nic-add with a multicast MAC was accepted: $out"
echo "lab: multicast MAC refused: $out"

round() { # round N TAP MAC ADDR: add, use, remove
	ctl "{\"execute\":\"nic-add\",\"arguments\":{\"tap\":\"$2\",\"mac\":\"$3\"}}"
	slot=$(echo "$CTL_OUT" | sed -n 's/.*"slot":\([0-9]*\).*/\1/p')
	[ -n "$slot" ] || fail "nic-add gave no slot: $CTL_OUT"
	brctl addif khbr0 "$2" || fail "cannot put $2 on the bridge"
	t0=$(_now)
	vm_run hp "for i in \$(seq 60); do [ -e /sys/class/net/eth0 ] && break; sleep 1; done; cat /sys/class/net/eth0/address" 90
	[ "$VM_OUT" = "$3" ] || fail "round $1: no eth0 with MAC $3 appeared in the guest: '$VM_OUT'"
	echo "lab: round $1: eth0 ($3) appeared in the guest at slot $slot within $(($(_now) - t0)) s"
	vm_run hp "ip addr add $4/24 dev eth0 && ip link set eth0 up && ping -c 3 -W 10 10.11.0.254 | grep -o '[0-9]* packets received'" 90
	[ "$VM_OUT" = "3 packets received" ] || fail "round $1: ping from the hot-added adapter: '$VM_OUT'"
	echo "lab: round $1: the guest pinged the peer through it"
	ctl "{\"execute\":\"nic-remove\",\"arguments\":{\"mac\":\"$3\"}}"
	t0=$(_now)
	vm_run hp 'for i in $(seq 60); do [ -e /sys/class/net/eth0 ] || break; sleep 1; done; ls /sys/class/net | tr "\n" " "' 90
	case "$VM_OUT" in *eth0*) fail "round $1: eth0 is still there after the removal: $VM_OUT" ;; esac
	echo "lab: round $1: eth0 disappeared within $(($(_now) - t0)) s"
	i=0
	while :; do
		CTL_OUT=$(lab-vmmctl $SOCK '{"execute":"nic-list"}' 2>&1) || fail "nic-list: $CTL_OUT"
		case "$CTL_OUT" in *'"nics":[]'*) break ;; esac
		i=$((i + 1))
		[ "$i" -le 30 ] || fail "round $1: the worker still has the card after the guest's eject: $CTL_OUT"
		sleep 1
	done
	grep -q "network adapter $2 ($3) at slot $slot removed" "$VM_DIR/hp/out" ||
		fail "round $1: the worker did not log the removal"
	! ip link show "$2" >/dev/null 2>&1 || fail "round $1: tap $2 is still there: the card was not torn down"
	echo "lab: round $1: the worker tore the card down after the guest's eject (tap $2 gone)"
}
round 1 khtap1 52:54:00:12:34:71 10.11.0.1
round 2 khtap2 52:54:00:12:34:72 10.11.0.2

vm_run hp 'dmesg | grep -ciE "acpiphp.*(fail|error|unable)|oops|BUG:|WARNING:|call trace|ACPI Error"'
echo "lab: error lines in the guest's kernel log: $VM_OUT"
if [ "$VM_OUT" != 0 ]; then
	vm_run hp 'dmesg | grep -iE "acpiphp|oops|BUG:|WARNING:|call trace|ACPI Error" | tail -20'
	fail "the guest's kernel log has errors: $VM_OUT"
fi
vm_run hp 'dmesg | grep -iE "acpiphp|hotplug|1af4:1041" | tail -8'
echo "lab: the guest's kernel log on hot plug: $VM_OUT"
vm_send hp 'poweroff -f'
vm_wait_exit hp 60
[ "$VM_STATUS" = 0 ] || fail "poweroff -f ended the VMM with status $VM_STATUS, expected 0"
brctl delbr khbr0 2>/dev/null
true
