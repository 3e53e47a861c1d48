# The guards of issue 12's switches with real guests (docs/networking.md, "Guards"): on a
# private switch, g1 and g2 reach each other; g1 under another MAC is cut off (MAC spoofing
# is off by default) and back under its own; a DHCP server in g1, whose adapter has the DHCP
# guard, gives g2 no lease, while one in g2 (no guard) gives g1 its lease. On failure the
# report holds the guests' links, the switch's ports, its forwarding table and the ruleset
# with the guard rules' counters.
IP=/usr/sbin/ip
[ -x $IP ] || fail "iproute2's ip is not in the lab (tests/lab/lab.sh copies it with keeld)"
killall -q dnsmasq
for b in kbr0 kbr1 kbr2 kbr3; do $IP link del $b 2>/dev/null; done
/usr/sbin/nft delete table inet keel 2>/dev/null
/usr/sbin/nft delete table bridge keel 2>/dev/null
mkdir -p "$KD"
keeld_start
keel switch create grd --type private >$KD/grd.out || fail "keel switch create grd: $(cat $KD/grd.out)"
br=$(sed -n 's/^Bridge: *\([a-z0-9]*\) .*/\1/p' $KD/grd.out)
[ -n "$br" ] || fail "no bridge for grd: $(cat $KD/grd.out)"
for v in g1 g2; do
	case $v in g1) extra=,dhcp-guard=on ;; *) extra= ;; esac
	keel vm create $v --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
		--cpus 1 --memory 192M --net "switch=grd$extra" || fail "keel vm create $v"
	keel vm start $v || fail "keel vm start $v: $(keel vm log $v | tail -3)"
done
state() {
	echo "ports: $($IP -o link show master "$br" 2>&1 | tr '\n' ' ')"
	echo "fdb: $(/usr/sbin/bridge fdb show br "$br" 2>&1 | tr '\n' ' ')"
	echo "ruleset: $(/usr/sbin/nft list table bridge keel 2>&1 | tr '\n\t' '  ')"
	echo "keeld: $(grep -iE 'nft|guard|switch' "$KD/keeld.log" | tail -n 10 | tr '\n' ' ')"
}
for v in g1 g2; do
	keel_console_wait $v "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
	keel_run $v 'stty cols 1000'
	keel_run $v "ip addr add 10.96.0.${v#g}/24 dev eth0 && ip link set eth0 up && echo ok"
	[ "$KEEL_OUT" = ok ] || fail "$v eth0 set-up: $KEEL_OUT"
done
keel_run g1 'ping -c 2 -W 10 10.96.0.2 | grep -o "[0-9]* packets received"' 60
[ "$KEEL_OUT" = "2 packets received" ] || fail "g1 -> g2: '$KEEL_OUT'; $(state)"
mac=$(keel vm show g1 --json | sed -n 's/.*"mac": "\([0-9a-f:]*\)".*/\1/p' | head -n 1)
keel_run g1 'ip link show eth0 | grep -o "ether [0-9a-f:]*"'
[ "$KEEL_OUT" = "ether $mac" ] || fail "g1's MAC is '$KEEL_OUT', keel gave it $mac"
echo "lab: switch guards: g1 ($mac) and g2 reach each other on private switch grd ($br)"
# MAC spoofing (off by default): g1 under another MAC is cut off, under its own it is back.
keel_run g1 'ip link set eth0 address 02:66:66:66:66:66 && ip link show eth0 | grep -o "ether [0-9a-f:]*" && ping -c 2 -W 3 10.96.0.2 | grep -o "[0-9]* packets received"' 60
case "$KEEL_OUT" in *"ether 02:66:66:66:66:66"*"0 packets received") ;; *)
	fail "g1 under a spoofed MAC: '$KEEL_OUT'; $(state)" ;;
esac
keel_run g1 "ip link set eth0 address $mac && ping -c 2 -W 10 10.96.0.2 | grep -o '[0-9]* packets received'" 60
[ "$KEEL_OUT" = "2 packets received" ] || fail "g1 under its own MAC again: '$KEEL_OUT'; $(state)"
echo "lab: switch guards: frames from a spoofed MAC are dropped at the switch, its own MAC passes again"
# A rogue DHCP server: g1's (guarded) gives g2 nothing; g2's (not guarded) serves g1.
conf='printf "start 10.96.0.50\nend 10.96.0.60\ninterface eth0\nlease_file /tmp/l\nopt subnet 255.255.255.0\n" >/tmp/d.conf; : >/tmp/l; udhcpd /tmp/d.conf && echo up'
keel_run g1 "$conf"
[ "$KEEL_OUT" = up ] || fail "udhcpd in g1: '$KEEL_OUT'"
keel_run g2 'udhcpc -i eth0 -n -q -f -t 3 -T 2 -s /bin/true 2>&1 | grep -o "lease of [0-9.]* obtained"; echo end' 90
case "$KEEL_OUT" in *"lease of"*) fail "g2 got a lease from g1's server behind the DHCP guard: '$KEEL_OUT'; $(state)" ;; esac
keel_run g1 'killall udhcpd; echo ok'
keel_run g2 "$conf"
[ "$KEEL_OUT" = up ] || fail "udhcpd in g2: '$KEEL_OUT'"
keel_run g1 'udhcpc -i eth0 -n -q -f -t 5 -T 2 -s /bin/true 2>&1 | grep -o "lease of [0-9.]* obtained"' 90
case "$KEEL_OUT" in "lease of 10.96.0."*" obtained") ;; *)
	fail "g1 got no lease from g2's server (no guard there): '$KEEL_OUT'; $(state)" ;;
esac
echo "lab: switch guards: a DHCP server behind the DHCP guard serves nobody; one without it does ($KEEL_OUT)"
for v in g1 g2; do keel vm turn-off $v || fail "turn-off $v"; done
for v in g1 g2; do keel vm delete $v >/dev/null || fail "delete $v"; done
keel switch delete grd >/dev/null || fail "keel switch delete grd"
kill "$(cat "$KD/pid")" 2>/dev/null
true
