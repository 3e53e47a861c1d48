# The guards of issue 12's switches with real guests (docs/networking.md, "Guards"): on a
# private switch, g1 and g2 reach each other; g1 under another MAC is cut off (MAC spoofing
# is off by default) and back under its own; a DHCP server in g1, whose adapter has the DHCP
# guard, gives g2 no lease, while one in g2 (no guard) gives g1 its lease. On failure the
# report holds the guests' links, the switch's ports, its forwarding table and the ruleset
# with the guard rules' counters. Then both move, running, to switch grd2 (g1's carrier goes
# down and up); a trunk port's VLAN subinterface reaches VLAN 10 and not VLAN 20; and g1's
# router advertisements are dropped by its router guard, received without it.
IP=/usr/sbin/ip
[ -x $IP ] || fail "iproute2's ip is not in the lab (tests/lab/lab.sh copies it with keeld)"
switches_reset
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
# Connect-VMNetworkAdapter: running adapters moved to another switch (keel vm set --net with
# the adapter's MAC). g2 first: g1 no longer reaches it; then g1, whose guest sees its
# carrier go down and up, and reaches g2 on the new switch.
mac2=$(keel vm show g2 --json | sed -n 's/.*"mac": "\([0-9a-f:]*\)".*/\1/p' | head -n 1)
keel switch create grd2 --type private >$KD/grd2.out || fail "keel switch create grd2: $(cat $KD/grd2.out)"
br2=$(sed -n 's/^Bridge: *\([a-z0-9]*\) .*/\1/p' $KD/grd2.out)
move() { # VM NET: keel vm set VM --net NET on the running VM
	keel vm set "$1" --net "$2" >$KD/set.out 2>&1 || fail "keel vm set $1 --net $2: $(cat $KD/set.out)"
}
reach() { # VM ADDRESS WAIT N WHAT: N of 2 pings (each waited WAIT s) get through, else fail
	keel_run "$1" "ping -c 2 -W $3 $2 | grep -o '[0-9]* packets received'" 60
	[ "$KEEL_OUT" = "$4 packets received" ] ||
		fail "$5: '$KEEL_OUT'; VLANs: $(/usr/sbin/bridge vlan show 2>&1 | tr '\n\t' '  ')"
}
carrier='echo $(cat /sys/class/net/eth0/carrier_down_count /sys/class/net/eth0/carrier_up_count /sys/class/net/eth0/carrier)'
move g2 "switch=grd2,mac=$mac2"
reach g1 10.96.0.2 3 0 "g1 reaches g2 moved to another switch"
keel_run g1 "$carrier"
want=$(echo "$KEEL_OUT" | awk '{ print $1 + 1, $2 + 1, 1 }')
move g1 "switch=grd2,mac=$mac,dhcp-guard=on"
keel_run g1 "sleep 2; $carrier"
[ "$KEEL_OUT" = "$want" ] || fail "g1's carrier (down count, up count, carrier) after its move: '$KEEL_OUT', wanted '$want'; $(keel vm log g1 | grep 'link' | tail -4)"
ports=$($IP -o link show master "$br2" | grep -c "k$(echo $mac | tr -d :)\|k$(echo $mac2 | tr -d :)")
[ "$ports" = 2 ] || fail "grd2's ports after the moves: $($IP -o link show master "$br2")"
reach g1 10.96.0.2 10 2 "g1 -> g2 on grd2"
echo "lab: switch guards: g2 then g1 moved to grd2 ($br2) while running; g1's carrier went down and up (counts $want), g1 reaches g2 there"
# A trunk (VLAN 10 tagged, native VLAN 1): g1's VLAN subinterface eth0.10 reaches g2 on an
# access port of VLAN 10; g1's untagged eth0 does not; with g2 in VLAN 20 (not in the
# trunk's list), g1's eth0.20 does not reach it either.
move g1 "switch=grd2,mac=$mac,vlan-trunk=10,native-vlan=1"
move g2 "switch=grd2,mac=$mac2,vlan=10"
vlanif='ip link add link eth0 name eth0.V type vlan id V 2>/dev/null || vconfig add eth0 V; ip addr add 10.V.0.1/24 dev eth0.V && ip link set eth0.V up && echo ok'
keel_run g1 "$(echo "$vlanif" | sed 's/V/10/g')"
[ "$KEEL_OUT" = ok ] || fail "g1's eth0.10: '$KEEL_OUT'"
keel_run g2 'ip addr add 10.10.0.2/24 dev eth0 && ip addr add 10.20.0.2/24 dev eth0 && echo ok'
[ "$KEEL_OUT" = ok ] || fail "g2's addresses in VLANs 10 and 20: '$KEEL_OUT'"
reach g1 10.10.0.2 10 2 "g1's eth0.10 -> g2 in VLAN 10"
reach g1 10.96.0.2 3 0 "g1's untagged eth0 reaches g2 in VLAN 10"
move g2 "switch=grd2,mac=$mac2,vlan=20"
keel_run g1 "$(echo "$vlanif" | sed 's/V/20/g')"
[ "$KEEL_OUT" = ok ] || fail "g1's eth0.20: '$KEEL_OUT'"
reach g1 10.20.0.2 3 0 "g1's eth0.20 reaches g2 in VLAN 20, not in its trunk"
echo "lab: switch guards: a trunk port's eth0.10 reaches an access port of VLAN 10, not VLAN 20 (outside its list), nor untagged"
# The router guard: g1's router advertisements (lab-ra: to ff02::1, hop limit 255) do not
# reach g2 while g1's adapter has it, and do once it is off (g2 counts them in snmp6).
move g1 "switch=grd2,mac=$mac,router-guard=on"
move g2 "switch=grd2,mac=$mac2"
ras='sleep 3; grep Icmp6InRouterAdvertisements /proc/net/snmp6 | tr -s " \t" " " | cut -d" " -f2'
keel_run g2 "$ras"
ra0=$KEEL_OUT
keel_run g1 'sleep 3; lab-ra eth0 5' 60
[ "$KEEL_OUT" = "sent 5" ] || fail "lab-ra in g1: '$KEEL_OUT'"
keel_run g2 "$ras"
[ "$KEEL_OUT" = "$ra0" ] || fail "g2 received router advertisements from g1 behind the router guard: $ra0 then $KEEL_OUT; $(state)"
move g1 "switch=grd2,mac=$mac"
keel_run g1 'sleep 3; lab-ra eth0 5' 60
[ "$KEEL_OUT" = "sent 5" ] || fail "lab-ra in g1: '$KEEL_OUT'"
keel_run g2 "$ras"
[ "$KEEL_OUT" -ge $((ra0 + 5)) ] 2>/dev/null || fail "g2 received not all 5 of g1's router advertisements without the guard: $ra0 then '$KEEL_OUT'"
echo "lab: switch guards: router advertisements from g1 dropped with its router guard ($ra0 before and after at g2), received without it ($KEEL_OUT)"
for v in g1 g2; do keel vm turn-off $v || fail "turn-off $v"; done
for v in g1 g2; do keel vm delete $v >/dev/null || fail "delete $v"; done
keel switch delete grd >/dev/null || fail "keel switch delete grd"
keel switch delete grd2 >/dev/null || fail "keel switch delete grd2"
kill "$(cat "$KD/pid")" 2>/dev/null
true
