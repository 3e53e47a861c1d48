# shellcheck shell=sh
# The agent benchmark's lab side (installed as /lab/bench/agent.sh by bench/agent/run.sh in
# its own lab initramfs; run by the lab /init in keel.lab=bench mode with keel.bench=agent).
# One guest made and started by keeld: 1 vCPU, 512 MiB, virtio-vsock (keel-agent, started by
# the guest's init) and a network adapter on keeld's Default Switch (NAT; the lab host has the
# switch's host address); its initramfs (/lab/guest/bench-ssh.cpio) is the suite's guest with
# dropbear added, started here through keel vm exec. From the lab host:
#   exec: `keel vm exec NAME -- true` against `ssh root@GUEST true` (OpenSSH, a new connection
#         each run) and against the same through one multiplexed connection (ControlMaster),
#         alternating, each timed by bench-agent-time; prints the medians in microseconds;
#   copy: COPYMIB MiB of random bytes from the lab host's RAM-backed /tmp into the guest's,
#         `keel vm copy-file` against `ssh root@GUEST 'cat >FILE' <FILE`, alternating, the
#         sha256 in the guest checked after each; prints the median MiB/s (x100).
# Prints "bench: ..." lines and "bench: done".
. /lab/api.sh

V=bagent
fail() {
	if [ -n "${KEEL_SOCKET:-}" ] && keel vm show $V >/dev/null 2>&1; then
		echo "bench: console of $V:"
		keel console $V --read-only --timeout 2 2>/dev/null | tr -d '\r' | tail -n 20 | sed 's/^/bench:   | /'
	fi
	echo "bench: FAIL $*"
	exit 1
}

# The parameters from the lab's command line (keel.execn=N and so on; whole numbers only).
execn=20 copymib=64 copyruns=2
eval "$(tr ' ' '\n' </proc/cmdline | sed -n 's/^keel\.\(execn\|copymib\|copyruns\)=\([1-9][0-9]*\)$/\1=\2/p')"

# median: the median of the numbers on stdin (the mean of the middle two for an even count).
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%d\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# timed LIST [--stdin FILE] -- COMMAND...: run COMMAND once under bench-agent-time, append its
# microseconds to file LIST; a failed run fails the benchmark.
timed() {
	_list=$1
	shift
	_t=$(bench-agent-time "$@" 2>/tmp/ba-time.err) || fail "$* failed: $(cat /tmp/ba-time.err)"
	echo "${_t#us=}" >>"$_list"
}

keeld_start
keel switch show "Default Switch" >/tmp/ba-ds.out 2>&1 || fail "keel switch show: $(cat /tmp/ba-ds.out)"
subnet=$(sed -n 's/^Subnet: *\([0-9./]*\),.*/\1/p' /tmp/ba-ds.out)
gw=$(sed -n 's/^Subnet: .*host address \([0-9.]*\)$/\1/p' /tmp/ba-ds.out)
[ -n "$subnet" ] && [ -n "$gw" ] || fail "the Default Switch's subnet: $(cat /tmp/ba-ds.out)"
ip=${gw%.*}.77
keel vm create $V --kernel "$GUEST_KERNEL" --initrd /lab/guest/bench-ssh.cpio --cmdline "$GUEST_CMDLINE" \
	--cpus 1 --memory 512M --vsock --net "switch=Default Switch" >/tmp/ba-create.out 2>&1 ||
	fail "keel vm create: $(cat /tmp/ba-create.out)"
keel vm start $V >/dev/null || fail "keel vm start: $(keel vm log $V | tail -3)"
keel_console_wait $V "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
i=0
until keel vm show $V | grep -q '^Heartbeat: *OK'; do
	i=$((i + 1))
	[ $i -le 300 ] || fail "the agent's heartbeat is not OK 60 s after the boot: $(keel vm show $V | grep Heartbeat)"
	sleep 0.2
done
# The guest's address (the lab host is $gw on the switch's bridge) and its SSH server,
# through the agent.
keel vm exec $V -- sh -c "ip addr add $ip/${subnet#*/} dev eth0 && ip link set eth0 up" >/tmp/ba-x.out 2>&1 ||
	fail "the guest's address: $(cat /tmp/ba-x.out)"
keel vm exec $V -- sh -c 'setsid /usr/sbin/dropbear -r /etc/dropbear/dropbear_ed25519_host_key -s -P /tmp/dropbear.pid </dev/null >/dev/null 2>&1 & sleep 1; pidof dropbear' >/tmp/ba-x.out 2>&1 ||
	fail "dropbear did not start in the guest: $(cat /tmp/ba-x.out)"
SSH="ssh -F /dev/null -i /root/.ssh/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=60"
i=0
until $SSH root@$ip true </dev/null >/tmp/ba-ssh.out 2>&1; do
	i=$((i + 1))
	[ $i -le 10 ] || fail "ssh root@$ip true does not work: $(cat /tmp/ba-ssh.out)"
	sleep 2
done
out=$($SSH root@$ip 'echo $SSH_CLIENT; uname -r' </dev/null 2>&1)
cipher=$($SSH -v root@$ip true </dev/null 2>&1 | sed -n 's/.*kex: server->client cipher: \([^ ]*\) MAC: \([^ ]*\).*/\1 \2/p' | head -n 1)
echo "bench: agent: guest $ip on the Default Switch ($subnet, lab host $gw), SSH: $(ssh -V 2>&1) to dropbear, cipher ${cipher:-?}; ssh sees: $(echo "$out" | tr '\n' ' ')"
echo "bench: agent: guest kernel $(keel vm exec $V -- uname -r), $execn exec runs, $copyruns copies of $copymib MiB each"

# exec: alternating; the multiplexed connection's master is started once, before.
# shellcheck disable=SC2086 # SSH is words
$SSH -o ControlMaster=yes -o ControlPath=/tmp/ba-ssh.ctl -o ControlPersist=yes -N -f root@$ip </dev/null ||
	fail "the SSH master connection did not start"
rm -f /tmp/ba-keel.us /tmp/ba-ssh.us /tmp/ba-mux.us
n=0
while [ $n -lt "$execn" ]; do
	n=$((n + 1))
	timed /tmp/ba-keel.us -- keel vm exec $V -- true
	# shellcheck disable=SC2086
	timed /tmp/ba-ssh.us -- $SSH root@$ip true
	# shellcheck disable=SC2086
	timed /tmp/ba-mux.us -- $SSH -o ControlMaster=no -o ControlPath=/tmp/ba-ssh.ctl root@$ip true
done
# shellcheck disable=SC2086
$SSH -o ControlPath=/tmp/ba-ssh.ctl -O exit root@$ip >/dev/null 2>&1
for w in keel ssh mux; do
	echo "bench: agent: exec $w runs (us): $(tr '\n' ' ' </tmp/ba-$w.us)"
done
echo "bench: exec keel median_us=$(median </tmp/ba-keel.us)"
echo "bench: exec ssh median_us=$(median </tmp/ba-ssh.us)"
echo "bench: exec ssh-mux median_us=$(median </tmp/ba-mux.us)"

# copy: the same file each time, a new name in the guest each time (removed after its check).
head -c $((copymib * 1048576)) /dev/urandom >/tmp/ba-src || fail "cannot make the $copymib MiB source file"
sum=$(sha256sum /tmp/ba-src | cut -d' ' -f1)
check() { # check FILE: the guest's FILE has the source's sha256 and size; then removed
	g=$(keel vm exec $V --timeout 300 -- sh -c "sha256sum $1 | cut -d' ' -f1; stat -c %s $1; rm -f $1" 2>&1)
	[ "$g" = "$sum
$((copymib * 1048576))" ] || fail "the guest's $1 after the copy: '$g'; sent $((copymib * 1048576)) bytes with sha256 $sum"
}
rm -f /tmp/ba-kc.us /tmp/ba-sc.us
n=0
while [ $n -lt "$copyruns" ]; do
	n=$((n + 1))
	timed /tmp/ba-kc.us -- keel vm copy-file $V /tmp/ba-src /tmp/keel-$n
	check /tmp/keel-$n
	# shellcheck disable=SC2086
	timed /tmp/ba-sc.us --stdin /tmp/ba-src -- $SSH root@$ip "cat >/tmp/ssh-$n"
	check /tmp/ssh-$n
done
rm -f /tmp/ba-src
for w in kc sc; do
	echo "bench: agent: copy $w runs (us): $(tr '\n' ' ' </tmp/ba-$w.us)"
done
# MiB/s x100 from the median time.
echo "bench: copy keel MiBps_x100=$((copymib * 100000000 / $(median </tmp/ba-kc.us))) sha256=ok"
echo "bench: copy ssh MiBps_x100=$((copymib * 100000000 / $(median </tmp/ba-sc.us))) sha256=ok"
keel vm turn-off $V >/dev/null 2>&1
kill "$(cat "$KD/pid")" 2>/dev/null
echo "bench: done"
