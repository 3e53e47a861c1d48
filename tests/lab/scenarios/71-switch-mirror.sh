# Port mirroring on issue 12's switches with real guests (docs/networking.md, "Port
# mirroring"): on private switch mir, g1 pings g2 while g3 counts the echo requests and
# replies between them with a packet socket (lab-echocount, tests/lab/echocount.c). Without
# the option g3 sees none of them; with g3's adapter a destination and g1's a source (set on
# the running VMs, as Set-VMNetworkAdapter does) it sees every one, both ways; again after
# keeld's restart with g1's filters deleted while keeld was down; none once g3 is no
# destination. On failure the report holds the taps' tc filters and keeld's mirroring lines.
# lab-timeout: 480
IP=/usr/sbin/ip
TC=/usr/sbin/tc
[ -x $IP ] && [ -x $TC ] || fail "iproute2's ip and tc are not in the lab (tests/lab/lab.sh copies them with keeld)"
switches_reset
keeld_start
keel switch create mir --type private >$KD/mir.out || fail "keel switch create mir: $(cat $KD/mir.out)"
for v in g1 g2 g3; do
	keel vm create $v --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
		--cpus 1 --memory 160M --net "switch=mir" || fail "keel vm create $v"
	keel vm start $v || fail "keel vm start $v: $(keel vm log $v | tail -3)"
done
macof() { keel vm show "$1" --json | sed -n 's/.*"mac": "\([0-9a-f:]*\)".*/\1/p' | head -n 1; }
mac1=$(macof g1)
mac3=$(macof g3)
tap1=k$(echo "$mac1" | tr -d :)
state() {
	echo "g1's tap $tap1: $($TC filter show dev "$tap1" ingress 2>&1 | grep -o 'mirred ([^)]*)' | tr '\n' ' ')"
	echo "keeld: $(grep -iE 'mirror' "$KD/keeld.log" | tail -n 6 | tr '\n' ' ')"
}
for v in g1 g2 g3; do
	keel_console_wait $v "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
	keel_run $v 'stty cols 1000'
	keel_run $v "ip addr add 10.97.0.${v#g}/24 dev eth0 && ip link set eth0 up && echo ok"
	[ "$KEEL_OUT" = ok ] || fail "$v eth0 set-up: $KEEL_OUT"
done
# watch WHAT: g3 counts while g1 pings g2 ten times; KEEL_OUT is g3's "requests N replies M"
watch() {
	keel_run g3 'rm -f /tmp/c; (lab-echocount eth0 25 10.97.0.1 10.97.0.2 >/tmp/c 2>&1 &); echo started'
	[ "$KEEL_OUT" = started ] || fail "lab-echocount in g3: '$KEEL_OUT'"
	keel_run g1 'sleep 2; ping -c 10 -i 0.5 -W 5 10.97.0.2 | grep -o "[0-9]* packets received"' 90
	[ "$KEEL_OUT" = "10 packets received" ] || fail "g1 -> g2 ($1): '$KEEL_OUT'; $(state)"
	keel_run g3 'while [ ! -s /tmp/c ]; do sleep 1; done; cat /tmp/c' 90
}
watch "no mirroring"
[ "$KEEL_OUT" = "requests 0 replies 0" ] || fail "g3 saw g1's and g2's pings without mirroring: '$KEEL_OUT'; $(state)"
echo "lab: switch mirror: without port mirroring g3 saw none of g1's pings to g2 ($KEEL_OUT)"
keel vm set g3 --net "switch=mir,mac=$mac3,port-mirroring=destination" >$KD/set.out 2>&1 ||
	fail "keel vm set g3: $(cat $KD/set.out)"
keel vm set g1 --net "switch=mir,mac=$mac1,port-mirroring=source" >$KD/set.out 2>&1 ||
	fail "keel vm set g1: $(cat $KD/set.out)"
watch "g1 mirrored to g3"
[ "$KEEL_OUT" = "requests 10 replies 10" ] || fail "g3 as g1's mirroring destination: '$KEEL_OUT'; $(state)"
echo "lab: switch mirror: g1 a source, g3 a destination: g3 saw g1's 10 echo requests and g2's 10 replies ($KEEL_OUT)"
# keeld restarted; g1's filters deleted while it was down: back at its start.
kill "$(cat "$KD/pid")"
while kill -0 "$(cat "$KD/pid")" 2>/dev/null; do sleep 0.1; done
$TC qdisc del dev "$tap1" clsact || fail "g1's tap had no clsact qdisc: $(state)"
keeld_start
watch "after keeld's restart"
[ "$KEEL_OUT" = "requests 10 replies 10" ] || fail "g3 after keeld's restart: '$KEEL_OUT'; $(state)"
echo "lab: switch mirror: after keeld's restart (g1's filters deleted meanwhile) g3 saw them all again ($KEEL_OUT)"
keel vm set g3 --net "switch=mir,mac=$mac3,port-mirroring=none" >$KD/set.out 2>&1 ||
	fail "keel vm set g3 none: $(cat $KD/set.out)"
watch "g3 no destination"
[ "$KEEL_OUT" = "requests 0 replies 0" ] || fail "g3 no longer a destination: '$KEEL_OUT'; $(state)"
echo "lab: switch mirror: g3 no destination: none again ($KEEL_OUT)"
for v in g1 g2 g3; do keel vm turn-off $v || fail "turn-off $v"; done
for v in g1 g2 g3; do keel vm delete $v >/dev/null || fail "delete $v"; done
keel switch delete mir >/dev/null || fail "keel switch delete mir"
kill "$(cat "$KD/pid")" 2>/dev/null
true
