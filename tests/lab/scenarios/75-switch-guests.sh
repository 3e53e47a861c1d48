# Issue 12's switches with real Linux guests driven through keeld, in one lab boot
# (docs/networking.md, "Tests"):
#  dns      a guest on the Default Switch gets its DNS server from the switch's DHCP (the
#           host address, dnsmasq) and resolves a name of the lab host's /etc/hosts with it;
#  forward  `keel switch forward add`: 4 MiB sent from the lab host itself to the forwarded
#           port, and 4 MiB from a namespace standing in for the outside, reach a server in
#           the guest (sha256 equal);
#  survive  a TCP connection from the guest through NAT to the outside carries on, and the
#           guest keeps its address, across `nft flush ruleset` under a running keeld (its
#           watch puts the rules back) and across keeld's restart with the ruleset flushed
#           while it was down (it puts them back at its start): every line sent arrives, in
#           order, and a new DHCP exchange gives the same address;
#  lease    the lease is stable per MAC: the VM turned off and started, then deleted and made
#           again with the same MAC, gets the same address;
#  hotplug  `keel vm net add` onto an internal NAT switch on the running guest: a new eth1
#           appears, gets a lease there and reaches the host; `keel vm net remove`: eth1 goes,
#           no error in the guest's kernel log; another added then taken away with `--force`
#           (no eject asked): the guest goes on, eth0 works, and it is saved and restored;
#  private  64 MiB between two guests of VLAN 10 on a private switch, sha256 equal; the lab
#           host reaches neither, even with an address of its own on the switch in VLAN 10;
#  vlan     a VLAN 20 guest does not reach VLAN 10's (same IP subnet), and a trunk
#           (`--vlan-trunk 10,20 --native-vlan 1`) whose guest has 802.1Q subinterfaces
#           eth0.10 and eth0.20 reaches both.
# Every step fails the scenario with what it saw. The guests boot together (their boots are
# most of the time under nested emulation).
# lab-timeout: 1800
IP=/usr/sbin/ip
NFT=/usr/sbin/nft
[ -x $IP ] && [ -x $NFT ] || fail "iproute2's ip and nft are not in the lab (tests/lab/lab.sh copies them with keeld)"
BOOT=600 # the guests boot together, each waited for this long
switches_reset
$IP link del up0 2>/dev/null
[ -e /tmp/keel-outside.pids ] && kill $(cat /tmp/keel-outside.pids) 2>/dev/null
# A name only the lab host knows (no internet in the lab): dnsmasq serves its /etc/hosts.
grep -q 'outside\.keel\.lab' /etc/hosts 2>/dev/null || echo '10.99.0.2 outside.keel.lab' >>/etc/hosts
# The outside world: a namespace behind a veth, with no route to the switches' subnets.
unshare -n sleep 100000 &
out=$!
echo "$out" >/tmp/keel-outside.pids
sleep 1
$IP link add up0 type veth peer name up1 && $IP link set up1 netns "$out" ||
	fail "cannot make the veth pair into the outside namespace"
$IP addr add 10.99.0.1/24 dev up0 && $IP link set up0 up || fail "up0 set-up"
nsenter -t "$out" -n $IP addr add 10.99.0.2/24 dev up1 && nsenter -t "$out" -n $IP link set up1 up &&
	nsenter -t "$out" -n $IP link set lo up || fail "up1 set-up in the outside namespace"
outside() { nsenter -t "$out" -n "$@"; }

keeld_start
keel switch show "Default Switch" >$KD/ds.out || fail "keel switch show: $(cat $KD/ds.out)"
subnet=$(sed -n 's/^Subnet: *\([0-9./]*\),.*/\1/p' $KD/ds.out)
gw=$(sed -n 's/^Subnet: .*host address \([0-9.]*\)$/\1/p' $KD/ds.out)
[ -n "$subnet" ] && [ -n "$gw" ] || fail "Default Switch: $(cat $KD/ds.out)"
keel switch create prv --type private >$KD/prv.out || fail "keel switch create prv: $(cat $KD/prv.out)"
br=$(sed -n 's/^Bridge: *\([a-z0-9]*\) .*/\1/p' $KD/prv.out)
[ -n "$br" ] || fail "no bridge for prv: $(cat $KD/prv.out)"

mk() { # mk VM MEMORY NET-OPTIONS...: create and start
	_v=$1 _m=$2
	shift 2
	keel vm create $_v --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
		--cpus 1 --memory $_m "$@" >$KD/mk.out 2>&1 || fail "keel vm create $_v: $(cat $KD/mk.out)"
	keel vm start $_v >$KD/mk.out 2>&1 || fail "keel vm start $_v: $(cat $KD/mk.out); $(keel vm log $_v | tail -3)"
}
ready() { # ready VM: booted, a wide terminal (a long command's echo must not wrap)
	keel_console_wait $1 "^$GUEST_MARKER\$" $BOOT
	keel_run $1 'stty cols 1000'
}
macof() { keel vm show "$1" --json | sed -n 's/.*"mac": "\([0-9a-f:]*\)".*/\1/p' | head -n "${2:-1}" | tail -n 1; }
# udhcpc's script: what the lease gave (address, router, DNS server) in /tmp/lease.IFACE.
ustub='printf "#!/bin/sh\n[ \"\$1\" = bound ] && echo \"\$ip \$router \$dns\" >/tmp/lease.\$interface\nexit 0\n" >/tmp/u.sh && chmod +x /tmp/u.sh && echo ok'
lease() { # lease VM IFACE: a DHCP exchange on IFACE; LEASE, ROUTER, DNS
	_lv=$1 _li=$2
	keel_run $_lv "$ustub"
	[ "$KEEL_OUT" = ok ] || fail "udhcpc's script in $_lv: '$KEEL_OUT'"
	keel_run $_lv "rm -f /tmp/lease.$_li; ip link set $_li up; udhcpc -i $_li -n -q -f -t 10 -T 3 -s /tmp/u.sh >/dev/null 2>&1; cat /tmp/lease.$_li" 180
	set -- $KEEL_OUT
	LEASE=${1:-} ROUTER=${2:-} DNS=${3:-}
	[ -n "$LEASE" ] || fail "$_lv got no DHCP lease on $_li: '$KEEL_OUT'"
}

# Every guest at once: d1 on the Default Switch; on the private switch a and b in VLAN 10,
# c in VLAN 20, t a trunk of VLANs 10 and 20 (untagged: VLAN 1).
mk d1 256M --net "switch=Default Switch"
mk a 320M --net "switch=prv,vlan=10"
mk b 192M --net "switch=prv,vlan=10"
mk c 160M --net "switch=prv,vlan=20"
mk t 160M --net switch=prv --vlan-trunk 10,20 --native-vlan 1
t0=$(_now)
for v in d1 a b c t; do ready $v; done
echo "lab: switch guests: five guests booted together in $(($(_now) - t0)) s"

# dns: the DHCP-given DNS server (the switch's host address) resolves the lab host's name.
lease d1 eth0
case "$LEASE" in "${subnet%.*/*}".*) ;; *) fail "d1's lease $LEASE is not in $subnet" ;; esac
[ "$ROUTER" = "$gw" ] || fail "d1's router from DHCP is '$ROUTER', the switch's host address is $gw"
[ "$DNS" = "$gw" ] || fail "d1's DNS server from DHCP is '$DNS', expected the switch's host address $gw"
lease1=$LEASE
keel_run d1 "ip addr add $LEASE/24 dev eth0 && ip route add default via $ROUTER && echo ok"
[ "$KEEL_OUT" = ok ] || fail "d1's address and route: '$KEEL_OUT'"
keel_run d1 "nslookup outside.keel.lab $DNS 2>&1" 60
case "$KEEL_OUT" in *"Name:"*"outside.keel.lab"*"Address: 10.99.0.2"*) ;; *)
	fail "d1 did not resolve outside.keel.lab through the DHCP-given DNS server $DNS: '$KEEL_OUT'; dnsmasq: $(ps | grep '[d]nsmasq')" ;;
esac
keel_run d1 "nslookup no-such-name.keel.lab $DNS 2>&1" 60
case "$KEEL_OUT" in *"Name:"*) fail "d1 resolved a name nobody has (no-such-name.keel.lab): '$KEEL_OUT'" ;; esac
echo "lab: switch guests: dns: d1 got $LEASE, router and DNS $DNS; resolved outside.keel.lab (the host's /etc/hosts) to 10.99.0.2 there"

# forward: host port 8022 to d1's port 5005, from the lab host and from the outside.
keel switch forward add "Default Switch" --host-port 8022 --vm d1 --port 5005 >$KD/fwd.out 2>&1 ||
	fail "keel switch forward add: $(cat $KD/fwd.out)"
keel switch forward list "Default Switch" >$KD/fwd.out 2>&1
grep -q "$lease1" $KD/fwd.out || fail "the forward is not to d1's leased address $lease1: $(cat $KD/fwd.out)"
dd if=/dev/urandom of=$KD/fwd.bin bs=1M count=4 2>/dev/null
want=$(sha256sum <$KD/fwd.bin | cut -d' ' -f1)
forward_to_d1() { # forward_to_d1 WHO CLIENT-COMMAND...: 4 MiB through the forward, checked in d1
	_who=$1
	shift
	keel_run d1 "rm -f /tmp/fwd.sum; nc -l -p 5005 -e sh -c 'sha256sum >/tmp/fwd.part; mv /tmp/fwd.part /tmp/fwd.sum' & echo listening"
	[ "$KEEL_OUT" = listening ] || fail "d1's listener: '$KEEL_OUT'"
	sleep 1
	"$@" <$KD/fwd.bin >$KD/fwd.nc 2>&1 || fail "4 MiB from $_who to host port 8022: nc failed: $(cat $KD/fwd.nc); $($NFT list table inet keel 2>&1 | grep -i dnat | tr '\n\t' '  ')"
	keel_run d1 'for i in $(seq 60); do [ -e /tmp/fwd.sum ] && break; sleep 1; done; cut -d" " -f1 /tmp/fwd.sum' 90
	[ "$KEEL_OUT" = "$want" ] || fail "4 MiB from $_who through host port 8022 to d1: d1 got '$KEEL_OUT', sent $want"
	echo "lab: switch guests: forward: 4 MiB from $_who to host port 8022 reached d1's port 5005 whole (sha256 $want)"
}
forward_to_d1 "the lab host (10.99.0.1)" timeout 120 nc 10.99.0.1 8022
forward_to_d1 "the outside namespace" outside timeout 120 nc 10.99.0.1 8022

# survive: a line a second from d1 to the outside through NAT, across a flush under a running
# keeld, and across keeld's restart with the ruleset flushed while it was down.
rm -f $KD/conn.out
outside nc -l -p 5003 -e sh -c "cat >$KD/conn.out" &
conn_srv=$!
sleep 1
keel_run d1 'rm -f /tmp/stop /tmp/n; (i=0; while [ ! -e /tmp/stop ]; do i=$((i + 1)); echo $i; echo $i >/tmp/n; sleep 1; done) | nc 10.99.0.2 5003 >/dev/null 2>&1 & echo started'
[ "$KEEL_OUT" = started ] || fail "d1's sender: '$KEEL_OUT'"
lines() { wc -l <$KD/conn.out 2>/dev/null || echo 0; }
grows() { # grows WHEN: 3 more lines arrive within 90 s
	_n0=$(lines)
	_i=0
	while [ "$(lines)" -lt $((_n0 + 3)) ]; do
		_i=$((_i + 1))
		[ $_i -le 90 ] || fail "d1's connection to the outside carried nothing $1 (stuck at line $_n0); ruleset: $($NFT list ruleset 2>&1 | head -n 40 | tr '\n\t' '  '); keeld: $(grep -iE 'switch|nft|rule' $KD/keeld.log | tail -n 8 | tr '\n' ' ')"
		sleep 1
	done
	echo "lab: switch guests: survive: d1's connection carried lines $_n0 to $(lines) $1"
}
rules_back() { # rules_back WHEN: keel's table is there again within 60 s
	_i=0
	until $NFT list table inet keel 2>/dev/null | grep -q masquerade; do
		_i=$((_i + 1))
		[ $_i -le 60 ] || fail "keel's rules did not come back $1: $($NFT list ruleset 2>&1 | tr '\n\t' '  ')"
		sleep 1
	done
}
grows "before any flush"
$NFT flush ruleset || fail "nft flush ruleset"
$NFT list table inet keel >/dev/null 2>&1 && fail "nft flush ruleset left keel's table"
rules_back "after a flush under the running keeld"
grows "after nft flush ruleset under the running keeld (its watch put the rules back)"
kill "$(cat "$KD/pid")"
while kill -0 "$(cat "$KD/pid")" 2>/dev/null; do sleep 0.1; done
$NFT flush ruleset || fail "nft flush ruleset with keeld down"
sleep 3
keeld_start
rules_back "after keeld's restart"
grows "after keeld's restart with the ruleset flushed while it was down"
keel_run d1 'touch /tmp/stop; sleep 3; cat /tmp/n; ip -4 -o addr show dev eth0 | grep -o "inet [0-9.]*"' 60
last=$(echo "$KEEL_OUT" | head -n 1)
[ "$(echo "$KEEL_OUT" | tail -n 1)" = "inet $lease1" ] || fail "d1's address after the flushes and keeld's restart: '$KEEL_OUT', it had $lease1"
_i=0
while alive $conn_srv; do
	_i=$((_i + 1))
	[ $_i -le 60 ] || fail "the outside's receiver did not end after d1's sender stopped (line $(lines) of $last)"
	sleep 1
done
seq 1 "$last" | cmp -s - $KD/conn.out ||
	fail "d1's connection lost or reordered lines: sent 1 to $last, received $(lines) lines: $(head -c 300 $KD/conn.out | tr '\n' ' ')"
echo "lab: switch guests: survive: all $last lines arrived in order over one connection; d1 kept $lease1"
keel vm net list d1 >$KD/net.out 2>&1
grep -q "Default Switch .* $lease1\$" $KD/net.out || fail "keel vm net list d1 after keeld's restart: $(cat $KD/net.out)"
lease d1 eth0
[ "$LEASE" = "$lease1" ] || fail "d1's lease from the restarted dnsmasq is $LEASE, it had $lease1"
echo "lab: switch guests: survive: the restarted keeld's dnsmasq gave d1 the same $LEASE"

# lease: stable per MAC, across a stop and start and across delete and create with the MAC.
mac1=$(macof d1)
keel vm turn-off d1 >/dev/null || fail "keel vm turn-off d1"
keel vm start d1 >/dev/null || fail "keel vm start d1 again: $(keel vm log d1 | tail -3)"
ready d1
lease d1 eth0
[ "$LEASE" = "$lease1" ] || fail "d1 after a turn-off and start got $LEASE, it had $lease1 (MAC $mac1)"
echo "lab: switch guests: lease: d1 turned off and started again got the same $LEASE"
keel vm turn-off d1 >/dev/null || fail "keel vm turn-off d1"
keel vm delete d1 >/dev/null || fail "keel vm delete d1"
keel switch forward list "Default Switch" >$KD/fwd.out 2>&1
! grep -q 8022 $KD/fwd.out || fail "d1's forward outlived it: $(cat $KD/fwd.out)"
mk d2 256M --net "switch=Default Switch,mac=$mac1"
ready d2
lease d2 eth0
[ "$LEASE" = "$lease1" ] || fail "d2, made with d1's MAC $mac1 after d1 was deleted, got $LEASE, d1 had $lease1"
echo "lab: switch guests: lease: d2, made with deleted d1's MAC $mac1, got the same $LEASE"
keel_run d2 "ip addr add $LEASE/24 dev eth0 && echo ok"
[ "$KEEL_OUT" = ok ] || fail "d2's eth0 address: '$KEEL_OUT'"

# hotplug: an adapter onto internal NAT switch hp, on the running d2, and out again.
keel switch create hp --type internal --subnet 10.62.0.0/24 --nat on >$KD/hp.out 2>&1 ||
	fail "keel switch create hp: $(cat $KD/hp.out)"
keel_run d2 'echo $(ls /sys/class/net)'
case "$KEEL_OUT" in *eth1*) fail "d2 has an eth1 before the hot plug: $KEEL_OUT" ;; esac
keel vm net add d2 --net switch=hp >$KD/hp.out 2>&1 || fail "keel vm net add d2 --net switch=hp: $(cat $KD/hp.out)"
mac2=$(macof d2 2)
[ -n "$mac2" ] && [ "$mac2" != "$mac1" ] || fail "no second adapter in keel vm show d2: $(keel vm net list d2)"
keel_run d2 'for i in $(seq 60); do [ -e /sys/class/net/eth1 ] && break; sleep 1; done; cat /sys/class/net/eth1/address' 90
[ "$KEEL_OUT" = "$mac2" ] || fail "no eth1 with MAC $mac2 appeared in d2: '$KEEL_OUT'; $(keel vm log d2 | tail -5)"
lease d2 eth1
case "$LEASE" in 10.62.0.*) ;; *) fail "d2's eth1 lease $LEASE is not in hp's 10.62.0.0/24" ;; esac
[ "$ROUTER" = 10.62.0.1 ] || fail "d2's eth1 router is '$ROUTER', hp's host address is 10.62.0.1"
keel_run d2 "ip addr add $LEASE/24 dev eth1 && ping -c 3 -W 10 -I eth1 10.62.0.1 | grep -o '[0-9]* packets received'" 90
[ "$KEEL_OUT" = "3 packets received" ] || fail "d2's eth1 -> hp's host address: '$KEEL_OUT'"
ping -c 2 -W 5 "$LEASE" >/dev/null 2>&1 || fail "the lab host did not reach d2's hot-added eth1 at $LEASE"
keel vm net list d2 >$KD/net.out 2>&1
grep -q "hp .* $LEASE\$" $KD/net.out || fail "keel vm net list d2 does not show eth1's lease $LEASE: $(cat $KD/net.out)"
echo "lab: switch guests: hotplug: eth1 ($mac2) appeared in the running d2, got $LEASE from switch hp and reaches the host both ways"
keel vm net remove d2 "$mac2" >$KD/hp.out 2>&1 || fail "keel vm net remove d2 $mac2: $(cat $KD/hp.out)"
sleep 1
keel_run d2 'for i in $(seq 60); do [ -e /sys/class/net/eth1 ] || break; sleep 1; done; [ -e /sys/class/net/eth1 ] && echo STILL || echo GONE' 90
[ "$(printf '%s\n' "$KEEL_OUT" | tail -n 1)" = GONE ] || fail "eth1 is still in d2 after keel vm net remove: '$KEEL_OUT'"
_i=0
while $IP link show "k$(echo "$mac2" | tr -d :)" >/dev/null 2>&1; do
	_i=$((_i + 1))
	[ $_i -le 30 ] || fail "d2's hot-removed adapter's tap is still there 30 s after the guest let it go"
	sleep 1
done
keel vm net list d2 | grep -q "$mac2" && fail "keel vm net list d2 still shows $mac2"
keel_run d2 "ping -c 2 -W 10 $gw | grep -o '[0-9]* packets received'" 60
[ "$KEEL_OUT" = "2 packets received" ] || fail "d2's eth0 after eth1's removal: '$KEEL_OUT'"
echo "lab: switch guests: hotplug: keel vm net remove: eth1 went from d2, its tap with it; eth0 still works"
kerr='dmesg | grep -E "Oops|BUG:|WARNING: CPU|Call Trace|ACPI Error|ACPI BIOS Error" >/tmp/err; tail -5 /tmp/err; echo "error lines: $(wc -l </tmp/err)"'
keel_run d2 "$kerr"
[ "$(printf '%s\n' "$KEEL_OUT" | tail -n 1)" = "error lines: 0" ] || fail "d2's kernel log after the hot plug and removal: $KEEL_OUT"
# hotplug --force: another adapter onto hp, then taken away without the guest (a surprise
# removal: no eject asked). The guest goes on, eth0 working; a save and a restore work.
keel vm net add d2 --net switch=hp >$KD/hp.out 2>&1 || fail "keel vm net add d2 (again): $(cat $KD/hp.out)"
mac3=$(macof d2 2)
keel_run d2 'for i in $(seq 60); do [ -e /sys/class/net/eth1 ] && break; sleep 1; done; cat /sys/class/net/eth1/address' 90
[ "$KEEL_OUT" = "$mac3" ] || fail "no eth1 with MAC $mac3 appeared in d2 the second time: '$KEEL_OUT'"
keel vm net remove d2 "$mac3" --force >$KD/hp.out 2>&1 || fail "keel vm net remove d2 $mac3 --force: $(cat $KD/hp.out)"
grep -q forced $KD/hp.out || fail "keel vm net remove --force: $(cat $KD/hp.out)"
$IP link show "k$(echo "$mac3" | tr -d :)" >/dev/null 2>&1 && fail "the tap of the adapter taken away by force is still there"
keel vm net list d2 | grep -q "$mac3" && fail "keel vm net list d2 still shows $mac3 after --force"
keel_run d2 "sleep 2; ping -c 2 -W 10 $gw | grep -o '[0-9]* packets received'" 60
[ "$KEEL_OUT" = "2 packets received" ] || fail "d2's eth0 after eth1 was taken away by force: '$KEEL_OUT'"
keel_run d2 'echo "interfaces: $(ls /sys/class/net | tr "\n" " ")"; echo "kernel: $(dmesg | tail -n 4 | tr "\n" " ")"'
echo "lab: switch guests: hotplug: eth1 ($mac3) taken away from d2 by force (its tap gone); d2 goes on, eth0 pings; the guest: $KEEL_OUT"
keel vm save d2 >$KD/hp.out 2>&1 || fail "keel vm save d2 after the forced removal: $(cat $KD/hp.out)"
keel vm start d2 >$KD/hp.out 2>&1 || fail "keel vm start d2 (restore): $(cat $KD/hp.out); $(keel vm log d2 | tail -3)"
keel_run d2 "ping -c 2 -W 10 $gw | grep -o '[0-9]* packets received'" 90
[ "$KEEL_OUT" = "2 packets received" ] || fail "d2's eth0 after a save and restore following the forced removal: '$KEEL_OUT'"
echo "lab: switch guests: hotplug: d2 saved and restored after the forced removal; eth0 still pings"

# private and vlan: a, b in VLAN 10 (10.50.0.1, .2), c in VLAN 20 (10.50.0.3 and 10.20.0.3),
# t's eth0.10 10.50.0.9 and eth0.20 10.20.0.9.
for v in a:10.50.0.1 b:10.50.0.2 c:10.50.0.3; do
	keel_run ${v%%:*} "ip addr add ${v#*:}/24 dev eth0 && ip link set eth0 up && echo ok"
	[ "$KEEL_OUT" = ok ] || fail "${v%%:*}'s eth0: '$KEEL_OUT'"
done
keel_run c 'ip addr add 10.20.0.3/24 dev eth0 && echo ok'
[ "$KEEL_OUT" = ok ] || fail "c's second address: '$KEEL_OUT'"
vstate() { echo "VLANs: $(/usr/sbin/bridge vlan show 2>&1 | tr '\n\t' '  ')"; }
reach() { # reach VM ADDRESS WAIT N WHAT: N of 2 pings get through
	keel_run "$1" "ping -c 2 -W $3 $2 | grep -o '[0-9]* packets received'" 60
	[ "$KEEL_OUT" = "$4 packets received" ] || fail "$5: '$KEEL_OUT'; $(vstate)"
}
reach a 10.50.0.2 10 2 "a -> b, both in VLAN 10"
reach c 10.50.0.1 3 0 "c in VLAN 20 reaches a in VLAN 10"
reach a 10.50.0.3 3 0 "a in VLAN 10 reaches c in VLAN 20"
echo "lab: switch guests: vlan: a and b (VLAN 10) reach each other; c (VLAN 20, same IP subnet) and a do not"
vlanif='(ip link add link eth0 name eth0.V type vlan id V 2>/dev/null || vconfig add eth0 V) && ip addr add A/24 dev eth0.V && ip link set eth0.V up && echo ok'
keel_run t 'ip link set eth0 up && echo ok'
[ "$KEEL_OUT" = ok ] || fail "t's eth0 up: '$KEEL_OUT'"
for va in 10:10.50.0.9 20:10.20.0.9; do
	keel_run t "$(echo "$vlanif" | sed "s/V/${va%%:*}/g; s/A/${va#*:}/")"
	[ "$KEEL_OUT" = ok ] || fail "t's eth0.${va%%:*}: '$KEEL_OUT'"
done
reach t 10.50.0.1 10 2 "t's eth0.10 (trunk) -> a in VLAN 10"
reach t 10.50.0.2 10 2 "t's eth0.10 (trunk) -> b in VLAN 10"
reach t 10.20.0.3 10 2 "t's eth0.20 (trunk) -> c in VLAN 20"
echo "lab: switch guests: vlan: the trunk's eth0.10 reaches a and b (VLAN 10), its eth0.20 reaches c (VLAN 20)"
# 64 MiB from a to b; b's listener checksums what the connection brings.
keel_run b "rm -f /tmp/got; nc -l -p 5001 -e sh -c 'sha256sum >/tmp/got.part; mv /tmp/got.part /tmp/got' & echo listening"
[ "$KEEL_OUT" = listening ] || fail "b's listener: '$KEEL_OUT'"
t0=$(_now)
keel_run a 'dd if=/dev/urandom of=/tmp/d bs=1M count=64 2>/dev/null && sha256sum </tmp/d | cut -d" " -f1 && nc 10.50.0.2 5001 </tmp/d && echo sent' 900
sent=$(echo "$KEEL_OUT" | head -n 1)
[ "$(echo "$KEEL_OUT" | tail -n 1)" = sent ] && [ ${#sent} = 64 ] || fail "a's 64 MiB to b: '$KEEL_OUT'"
keel_run b 'for i in $(seq 120); do [ -e /tmp/got ] && break; sleep 1; done; cut -d" " -f1 /tmp/got' 180
[ "$KEEL_OUT" = "$sent" ] || fail "64 MiB from a to b on the private switch: b got '$KEEL_OUT', a sent $sent"
echo "lab: switch guests: private: 64 MiB from a to b whole (sha256 $sent); making the file, its sha256 and sending it took $(($(_now) - t0)) s"
# The host: an address on the bridge by hand, in VLAN 10 (the guests'), reaches neither.
/usr/sbin/bridge vlan add dev "$br" vid 10 pvid untagged self &&
	$IP addr add 10.50.0.254/24 dev "$br" || fail "cannot put the host on $br in VLAN 10"
/usr/sbin/bridge vlan show dev "$br" | grep -q '10 PVID' || fail "$br's own VLAN 10: $(vstate)"
ping -c 2 -W 3 10.50.0.1 >/dev/null 2>&1 && fail "the lab host reached a on private switch prv"
ping -c 2 -W 3 10.50.0.2 >/dev/null 2>&1 && fail "the lab host reached b on private switch prv"
reach a 10.50.0.254 3 0 "a reached the lab host on private switch prv"
$IP addr del 10.50.0.254/24 dev "$br"
/usr/sbin/bridge vlan del dev "$br" vid 10 self
echo "lab: switch guests: private: the lab host and a, b do not reach each other (the host's address put in VLAN 10 on $br by hand)"

for v in d2 a b c t; do keel vm turn-off $v >/dev/null || fail "turn-off $v"; done
for v in d2 a b c t; do keel vm delete $v >/dev/null || fail "delete $v"; done
keel switch delete prv >/dev/null || fail "keel switch delete prv"
keel switch delete hp >/dev/null || fail "keel switch delete hp"
kill "$(cat "$KD/pid")" $(cat /tmp/keel-outside.pids) 2>/dev/null
$IP link del up0 2>/dev/null
true
