# Virtual switches (issue 12) with keeld: a Linux guest on the Default Switch gets its address
# from the switch's dnsmasq (keel vm net list shows it) and reaches a web server in a network
# namespace standing in for the outside world, through NAT: that namespace has no route to
# the switch's subnet, and its server logs the host's address; 8 MiB uploaded to it arrive
# whole. On an internal switch the
# guest and the host reach each other and the outside (with a route back) is out of reach; through an external
# switch bridging a veth into the outside, the outside's own DHCP server gives it an address. Two guests on a private switch
# reach each other; neither reaches the host, nor the host them, even with an address of the
# host's put on the switch's bridge by hand; two more on it in VLAN 10 reach each other and not
# the first two. (The guards with real guests: 69-switch-guards.)
IP=/usr/sbin/ip
[ -x $IP ] || fail "iproute2's ip is not in the lab (tests/lab/lab.sh copies it with keeld)"
# An earlier attempt's switches and dnsmasq (each keeld state directory is an attempt's own;
# its dnsmasq would keep the DHCP port).
killall -q dnsmasq
$IP link del up0 2>/dev/null
$IP link del up2 2>/dev/null
for b in kbr0 kbr1 kbr2 kbr3 kbr4 kbr5; do $IP link del $b 2>/dev/null; done
/usr/sbin/nft delete table inet keel 2>/dev/null
/usr/sbin/nft delete table bridge keel 2>/dev/null
# An earlier attempt's outside namespace and server.
[ -e /tmp/keel-outside.pids ] && kill $(cat /tmp/keel-outside.pids) 2>/dev/null
mkdir -p "$KD"
# The outside world: a namespace (held by a sleeping process) behind a veth, with a server.
unshare -n sleep 100000 &
out=$!
sleep 1
$IP link add up0 type veth peer name up1 || fail "cannot create a veth pair (veth module?)"
$IP link set up1 netns "$out" || fail "cannot move up1 into the outside namespace"
$IP addr add 10.99.0.1/24 dev up0 && $IP link set up0 up || fail "up0 set-up"
nsenter -t "$out" -n $IP addr add 10.99.0.2/24 dev up1 &&
	nsenter -t "$out" -n $IP link set up1 up && nsenter -t "$out" -n $IP link set lo up ||
	fail "up1 set-up in the outside namespace"
mkdir -p $KD/www && echo keel-nat-ok >$KD/www/probe
nsenter -t "$out" -n httpd -f -v -p 8080 -h $KD/www >$KD/httpd.log 2>&1 &
httpd_pid=$!
echo "$out $httpd_pid" >/tmp/keel-outside.pids

keeld_start
keel switch show "Default Switch" >$KD/ds.out || fail "keel switch show: $(cat $KD/ds.out)"
subnet=$(sed -n 's/^Subnet: *\([0-9./]*\),.*/\1/p' $KD/ds.out)
gw=$(sed -n 's/^Subnet: .*host address \([0-9.]*\)$/\1/p' $KD/ds.out)
grep -q '^DHCP, DNS: *dnsmasq [0-9]' $KD/ds.out || fail "no dnsmasq on the Default Switch: $(cat $KD/ds.out)"
[ -n "$subnet" ] && [ -n "$gw" ] || fail "Default Switch: $(cat $KD/ds.out)"
/usr/sbin/nft list table inet keel | grep -q masquerade || fail "no masquerade rule"
echo "lab: switch: the Default Switch is $subnet, the host at $gw"

keel vm create s1 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
	--cpus 1 --memory 256M --net "switch=Default Switch" || fail "keel vm create s1"
keel vm start s1 || fail "keel vm start s1: $(keel vm log s1 | tail -3)"
keel_console_wait s1 "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
# A wide terminal (keel_run reads a command's output between the guest's own marker lines,
# so a wrapped echo loses nothing; a wide one keeps the console log readable).
keel_run s1 'stty cols 1000'
t0=$(_now)
keel_run s1 'ip link set eth0 up; udhcpc -i eth0 -n -q -f -t 10 -T 3 -s /bin/true 2>&1 | grep -o "lease of [0-9.]* obtained"' 180
lease=$(echo "$KEEL_OUT" | sed -n 's/^lease of \([0-9.]*\) obtained$/\1/p')
[ -n "$lease" ] || fail "s1 got no DHCP lease: $KEEL_OUT"
case "$lease" in "${subnet%.*/*}".*) ;; *) fail "s1's lease $lease is not in $subnet" ;; esac
echo "lab: switch: s1 got $lease from the Default Switch's dnsmasq in about $(($(_now) - t0)) s"
keel vm net list s1 >$KD/net.out
grep -q "Default Switch .* $lease\$" $KD/net.out || fail "keel vm net list s1: $(cat $KD/net.out)"
keel_run s1 "ip addr add $lease/24 dev eth0 && ip route add default via $gw && printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | nc -w 20 10.99.0.2 8080 | tail -n 1" 120
[ "$KEEL_OUT" = keel-nat-ok ] || fail "s1 -> outside server through NAT: '$KEEL_OUT' (status $KEEL_RC)"
sleep 1
# busybox httpd logs its client as [::ffff:A.B.C.D]:PORT (an IPv6 socket) or A.B.C.D:PORT.
grep -Eq '^(\[::ffff:)?10\.99\.0\.1\]?:[0-9]+: response:200' $KD/httpd.log ||
	fail "the outside server did not see the host's address: $(cat $KD/httpd.log)"
! grep -q "$lease" $KD/httpd.log || fail "the outside server saw the guest's own address"
nsenter -t "$out" -n $IP route | grep -q "${subnet%/*}" && fail "the outside has a route to $subnet"
echo "lab: switch: s1 reached the outside server through NAT (it saw 10.99.0.1)"
# Bulk TCP through the NAT: 8 MiB of random bytes from s1 to the outside, whole and the same
# (sha256 at both ends). The receiver writes what the connection brings (nc -e): a busybox nc
# whose stdin is at its end (a background job's /dev/null) half-closes at once, and the
# sending busybox nc quits on that FIN with most of its data unsent.
rm -f $KD/nat-up
nsenter -t "$out" -n nc -l -p 5002 -e sh -c "cat >$KD/nat-up" &
sleep 1
keel_run s1 'dd if=/dev/urandom of=/tmp/up bs=1M count=8 2>/dev/null && nc 10.99.0.2 5002 </tmp/up && sha256sum </tmp/up' 180
sent=$(echo "$KEEL_OUT" | tail -n 1 | cut -d' ' -f1)
got=$(sha256sum <$KD/nat-up | cut -d' ' -f1)
[ -n "$sent" ] && [ "$sent" = "$got" ] ||
	fail "8 MiB from s1 to the outside through NAT: sent '$KEEL_OUT', received $(wc -c <$KD/nat-up) bytes ($got)"
echo "lab: switch: 8 MiB from s1 reached the outside through NAT whole (sha256 $got)"
keel vm turn-off s1 || fail "turn-off s1"

# s1 again, on an internal switch (eth0: the host reaches it, it reaches the host, not the
# outside) and on an external switch bridging a second veth into the outside namespace, whose
# own DHCP server (busybox udhcpd) gives eth1 its address.
$IP link add up2 type veth peer name up3 || fail "second veth pair"
$IP link set up3 netns "$out" && $IP link set up2 up || fail "up3 into the outside namespace"
nsenter -t "$out" -n $IP addr add 10.97.0.1/24 dev up3 && nsenter -t "$out" -n $IP link set up3 up ||
	fail "up3 set-up"
printf 'start 10.97.0.10\nend 10.97.0.20\ninterface up3\nlease_file %s/udhcpd.leases\nopt subnet 255.255.255.0\n' \
	"$KD" >$KD/udhcpd.conf
: >$KD/udhcpd.leases
nsenter -t "$out" -n udhcpd -f $KD/udhcpd.conf >$KD/udhcpd.log 2>&1 &
echo "$out $httpd_pid $!" >/tmp/keel-outside.pids
keel switch create int --type internal --subnet 10.61.0.0/24 >/dev/null || fail "keel switch create int"
keel switch create ext --type external --adapter up2 >/dev/null || fail "keel switch create ext"
keel vm set s1 --net switch=int --net switch=ext >/dev/null || fail "keel vm set s1 (int, ext)"
keel vm start s1 || fail "keel vm start s1 on int and ext: $(keel vm log s1 | tail -3)"
keel_console_wait s1 "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
keel_run s1 'stty cols 1000'
keel_run s1 'ip addr add 10.61.0.5/24 dev eth0 && ip link set eth0 up && ip route add default via 10.61.0.1 && ping -c 2 -W 10 10.61.0.1 2>&1 | tail -n 2' 90
case "$KEEL_OUT" in *"2 packets received"*) ;; *) fail "s1 -> the host on the internal switch: '$KEEL_OUT'" ;; esac
ping -c 2 -W 5 10.61.0.5 >/dev/null 2>&1 || fail "the host did not reach s1 on the internal switch"
# The outside has a route back to the internal switch's subnet (via the host): only keel's
# rules for the switch keep s1 from it, not a missing route for the replies.
nsenter -t "$out" -n $IP route add 10.61.0.0/24 via 10.99.0.1 || fail "the outside's route to 10.61.0.0/24"
keel_run s1 "printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | nc -w 5 10.99.0.2 8080 | tail -n 1; echo end" 60
case "$KEEL_OUT" in *keel-nat-ok*) fail "s1 on an internal switch reached the outside: '$KEEL_OUT'" ;; esac
nsenter -t "$out" -n $IP route del 10.61.0.0/24
case "$KEEL_OUT" in *end) ;; *) fail "s1's nc to the outside did not end: '$KEEL_OUT'" ;; esac
echo "lab: switch: on the internal switch s1 and the host reach each other, the outside is out of reach"
keel_run s1 'ip link set eth1 up; udhcpc -i eth1 -n -q -f -t 10 -T 3 -s /bin/true 2>&1 | grep -o "lease of [0-9.]* obtained"' 180
case "$KEEL_OUT" in "lease of 10.97.0."*" obtained") ;; *)
	fail "s1 got no lease from the outside's DHCP server through the external switch: '$KEEL_OUT'; $(cat $KD/udhcpd.log)" ;;
esac
echo "lab: switch: through the external switch s1 got its address from the outside's own DHCP server ($KEEL_OUT)"
keel vm turn-off s1 || fail "turn-off s1"
keel vm set s1 --net "switch=Default Switch" >/dev/null || fail "keel vm set s1"
keel switch delete int >/dev/null && keel switch delete ext >/dev/null || fail "delete int, ext"
$IP link del up2 2>/dev/null

# A private switch: the guests only; p3 and p4 in VLAN 10 on it, apart from p1 and p2.
keel switch create iso --type private >$KD/iso.out || fail "keel switch create iso: $(cat $KD/iso.out)"
br=$(sed -n 's/^Bridge: *\([a-z0-9]*\) .*/\1/p' $KD/iso.out)
for v in p1 p2 p3 p4; do
	case $v in p3 | p4) vlan=,vlan=10 ;; *) vlan= ;; esac
	keel vm create $v --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
		--cpus 1 --memory 192M --net "switch=iso$vlan" || fail "keel vm create $v"
	keel vm start $v || fail "keel vm start $v: $(keel vm log $v | tail -3)"
done
for v in p1 p2 p3 p4; do
	keel_console_wait $v "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
	keel_run $v 'stty cols 1000'
	keel_run $v "ip addr add 10.98.0.${v#p}/24 dev eth0 && ip link set eth0 up && echo ok"
	[ "$KEEL_OUT" = ok ] || fail "$v eth0 set-up: $KEEL_OUT"
done
# What the switch looks like, for a failure's report.
switch_state() {
	echo "bridge links: $(bridge_links)"
	echo "vlans: $(/usr/sbin/bridge vlan show 2>&1 | tr '\n' ' ')"
	echo "ruleset: $(/usr/sbin/nft list ruleset 2>&1 | tr '\n\t' '  ')"
	echo "fdb: $(/usr/sbin/bridge fdb show br "$br" 2>&1 | tr '\n' ' ')"
	echo "keeld: $(grep -iE 'nft|guard|switch' "$KD/keeld.log" | tail -n 20 | tr '\n' ' ')"
}
bridge_links() { $IP -o link show master "$br" 2>&1 | tr '\n' ' '; }
keel_run p1 'ping -c 3 -W 10 10.98.0.2 2>&1 | tail -n 2' 90
case "$KEEL_OUT" in *"3 packets received"*) ;; *)
	keel_run p1 'ip addr; ip neigh' 30
	fail "ping p1 -> p2 on the private switch: '$KEEL_OUT'; p1: $KEEL_OUT; $(switch_state)" ;;
esac
keel_run p3 'ping -c 3 -W 10 10.98.0.4 2>&1 | tail -n 2' 90
case "$KEEL_OUT" in *"3 packets received"*) ;; *)
	fail "ping p3 -> p4 in VLAN 10: '$KEEL_OUT'; $(switch_state)" ;;
esac
echo "lab: switch: p1 and p2, and p3 and p4 in VLAN 10, reach each other on private switch iso ($br)"
keel_run p1 'ping -c 2 -W 3 10.98.0.3 | grep -o "[0-9]* packets received"' 60
[ "$KEEL_OUT" = "0 packets received" ] || fail "p1 (untagged) reached p3 in VLAN 10: '$KEEL_OUT'"
keel_run p4 'ping -c 2 -W 3 10.98.0.2 | grep -o "[0-9]* packets received"' 60
[ "$KEEL_OUT" = "0 packets received" ] || fail "p4 in VLAN 10 reached p2 (untagged): '$KEEL_OUT'"
echo "lab: switch: VLAN 10 and the untagged adapters do not see each other"
# The host has no address there; one put on the bridge by hand is still not reachable.
$IP addr add 10.98.0.254/24 dev "$br" || fail "cannot put a test address on $br"
keel_run p1 'ping -c 2 -W 3 10.98.0.254 | grep -o "[0-9]* packets received"' 60
[ "$KEEL_OUT" = "0 packets received" ] || fail "p1 reached the host on a private switch: '$KEEL_OUT'"
ping -c 2 -W 3 10.98.0.2 >/dev/null 2>&1 && fail "the host reached p2 on a private switch"
$IP addr del 10.98.0.254/24 dev "$br"
echo "lab: switch: the host and the private switch's guests do not reach each other"
for v in p1 p2 p3 p4; do keel vm turn-off $v || fail "turn-off $v"; done
for v in s1 p1 p2 p3 p4; do keel vm delete $v >/dev/null || fail "delete $v"; done
keel switch delete iso >/dev/null || fail "keel switch delete iso"
kill "$(cat "$KD/pid")" $(cat /tmp/keel-outside.pids) 2>/dev/null
$IP link del up0 2>/dev/null
true
