# virtio-vsock (issue 13, docs/virtio.md): Linux's vmw_vsock_virtio_transport drives keel-vmm's
# hybrid vsock, whose host side is Unix sockets. Every worker here is jailed as keeld runs it
# (lab-jail through api.sh's vm_start: its own uid, its root $VM_DIR/NAME/jail, where its vsock
# socket is and where it connects to SOCK_<port>, seccomp filters): 16 MiB go each way with matching sha256:
# guest to host (a guest connect to CID 2 port 5001 reaches the lab host's listener on
# SOCK_5001) and host to guest (CONNECT 5002 on SOCK reaches the guest's listener). A connect
# to a port nobody listens on is refused both ways. Then a connection is left open across a
# pause and resume (VM j): the worker drops it (the host client sees the end) and tells the guest
# TRANSPORT_RESET (the guest's socket is reset: the device sends no RST then, so that is the
# event's doing), and new connections work both ways; and the
# same across a save (into $VM_DIR/a/jail/save, the one directory VM a's uid may write), a new
# worker restored from it, and a resume (VMs a and b).
command -v lab-vmmctl >/dev/null || fail "lab-vmmctl is not in the lab (tests/lab/vmmctl.c)"
command -v lab-vsock >/dev/null || fail "lab-vsock is not in the lab (tests/lab/vsockcat.c)"
SOCK=$VM_DIR/j/jail/v.sock
MIB16=16777216
rm -f /tmp/vs-*

ctl() { # ctl VM REQUEST: one control request that must succeed
	lab-vmmctl "/tmp/$1.ctl" "$2" >/tmp/vs-ctl.out 2>&1 ||
		fail "control request $2 to VM $1 failed: $(cat /tmp/vs-ctl.out)"
	echo "lab: $1 <- $2: $(cat /tmp/vs-ctl.out)"
}

wait_gone() { # wait_gone PID SECONDS WHAT: the process ends in time
	_i=0
	while kill -0 "$1" 2>/dev/null; do
		_i=$((_i + 1))
		[ "$_i" -le $(($2 * 10)) ] || fail "$3: still running after $2 s"
		sleep 0.1
	done
}

# small VM WHEN: a few bytes each way on new connections (after a reset, both sides connect
# again).
small() {
	rm -f "$SOCK"_5011 /tmp/vs-small.out
	lab-vsock unix-listen "$SOCK"_5011 </dev/null >/tmp/vs-small.out 2>/tmp/vs-small.err &
	_l=$!
	sleep 0.5
	vm_run "$1" "echo guest-to-host-$2 | lab-vsock connect 2 5011 >/dev/null; echo rc=\$?" 60
	wait_gone $_l 30 "the host listener on port 5011 $2"
	[ "$(cat /tmp/vs-small.out)" = "guest-to-host-$2" ] ||
		fail "guest to host $2: the host got '$(cat /tmp/vs-small.out)' ($VM_OUT; $(cat /tmp/vs-small.err))"
	vm_send "$1" "lab-vsock listen 5012 </dev/null >/tmp/small.out 2>&1 &"
	_i=0
	until echo "host-to-guest-$2" | lab-vsock unix-connect $SOCK 5012 >/dev/null 2>/tmp/vs-c.err; do
		_i=$((_i + 1))
		[ "$_i" -le 20 ] || fail "host to guest $2: no connection to port 5012: $(cat /tmp/vs-c.err)"
		sleep 1
	done
	vm_run "$1" 'wait; cat /tmp/small.out' 60
	[ "$VM_OUT" = "host-to-guest-$2" ] || fail "host to guest $2: the guest got '$VM_OUT'"
	echo "lab: vsock: new connections both ways $2"
}

# held_open VM: a connection from the host to the guest, open until something ends it: the
# guest writes a line every second, the host reads (HELD: the host client's pid).
held_open() {
	vm_send "$1" "(while :; do echo tick; sleep 1; done | lab-vsock listen 5013 >/dev/null 2>/tmp/held.err; echo held-exit \$?) &"
	_i=0
	while :; do
		lab-vsock unix-connect $SOCK 5013 </dev/null >/tmp/vs-held.out 2>/tmp/vs-held.err &
		HELD=$!
		sleep 2
		grep -q tick /tmp/vs-held.out && break
		kill $HELD 2>/dev/null
		_i=$((_i + 1))
		[ "$_i" -le 15 ] || fail "no held connection to guest port 5013: $(cat /tmp/vs-held.err)"
	done
	echo "lab: vsock: a connection to guest port 5013 is open ($(grep -c tick /tmp/vs-held.out) lines so far)"
}

# The jailed worker connects to SOCK_<port> inside its jail (/v.sock_<port>) as its own uid:
# lab-vsock's listeners are mode 0666 (keeld gives its own to the worker's uid).
# shellcheck disable=SC2086
vm_boot j --memory 512M --vsock cid=3,socket=$SOCK --control /tmp/j.ctl \
	--status-file $VM_DIR/j/status.json
vm_jailed j
vm_run j 'ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport | grep -c virtio' 60
[ "$VM_OUT" = 1 ] || fail "vmw_vsock_virtio_transport is bound to no device: '$VM_OUT'"

# Refused both ways: nobody on host port 5999, nobody on guest port 5998.
vm_run j 'lab-vsock connect 2 5999 </dev/null; echo rc=$?' 60
case "$VM_OUT" in *"rc=1"*) ;; *) fail "a guest connect to an empty host port: '$VM_OUT'" ;; esac
if lab-vsock unix-connect $SOCK 5998 </dev/null >/dev/null 2>/tmp/vs-r.err; then
	fail "a host connect to an empty guest port was accepted"
fi
echo "lab: vsock: refused both ways ($(echo $VM_OUT | tr '\n' ' '); host: $(cat /tmp/vs-r.err))"

# Guest to host, 16 MiB.
vm_run j "head -c $MIB16 /dev/urandom >/tmp/g2h && sha256sum /tmp/g2h | cut -d' ' -f1" 300
g2h_sum=$VM_OUT
[ ${#g2h_sum} = 64 ] || fail "making /tmp/g2h in the guest: $g2h_sum"
lab-vsock unix-listen "$SOCK"_5001 </dev/null >/tmp/vs-g2h 2>/tmp/vs-g2h.err &
L=$!
sleep 0.5
t0=$(_now)
vm_run j 'lab-vsock connect 2 5001 </tmp/g2h >/dev/null; echo rc=$?' 600
wait_gone $L 60 "the host listener on port 5001"
secs=$(($(_now) - t0))
got=$(sha256sum /tmp/vs-g2h | cut -d' ' -f1)
[ "$got" = "$g2h_sum" ] ||
	fail "guest to host: $(wc -c </tmp/vs-g2h) bytes with sha256 $got, sent $MIB16 with $g2h_sum ($VM_OUT; $(cat /tmp/vs-g2h.err))"
echo "lab: vsock: guest to host 16 MiB in about $secs s, sha256 $got matches"
rm -f /tmp/vs-g2h

# Host to guest, 16 MiB.
head -c $MIB16 /dev/urandom >/tmp/vs-h2g
h2g_sum=$(sha256sum /tmp/vs-h2g | cut -d' ' -f1)
vm_send j "lab-vsock listen 5002 </dev/null >/tmp/h2g 2>/tmp/h2g.err &"
t0=$(_now)
_i=0
until lab-vsock unix-connect $SOCK 5002 </tmp/vs-h2g >/dev/null 2>/tmp/vs-c.err; do
	_i=$((_i + 1))
	[ "$_i" -le 20 ] || fail "host to guest: no connection to port 5002: $(cat /tmp/vs-c.err)"
	sleep 1
done
secs=$(($(_now) - t0))
vm_run j "wait; sha256sum /tmp/h2g | cut -d' ' -f1; rm -f /tmp/h2g /tmp/g2h" 300
[ "$VM_OUT" = "$h2g_sum" ] || fail "host to guest: the guest's sha256 is '$VM_OUT', sent $h2g_sum"
echo "lab: vsock: host to guest 16 MiB in about $secs s, sha256 $h2g_sum matches"
rm -f /tmp/vs-h2g

# Pause and resume: the held connection ends on both sides, new ones work.
held_open j
ctl j '{"execute":"pause"}'
sleep 1
ctl j '{"execute":"resume"}'
wait_gone $HELD 10 "the host end of the held connection after pause and resume"
vm_wait j 'held-exit [0-9]+$' 30
held="held-exit ${VM_LINE##*held-exit }"
vm_run j 'cat /tmp/held.err'
echo "lab: vsock: pause and resume ended the held connection (guest: $held, $VM_OUT)"
small j "after pause and resume"

vm_send j 'poweroff -f'
vm_wait_exit j 60
[ "$VM_STATUS" = 0 ] || fail "poweroff of the jailed VM: status $VM_STATUS (a forbidden system call ends it with another)"

# Save, quit, restore into a new worker, resume: the same.
SOCK=$VM_DIR/a/jail/v.sock SAVE=$VM_DIR/a/jail/save
# shellcheck disable=SC2086
vm_boot a --memory 256M --vsock cid=3,socket=$SOCK --control /tmp/a.ctl
held_open a
ctl a "{\"execute\":\"save\",\"arguments\":{\"dir\":\"$SAVE\"}}"
ctl a '{"execute":"quit"}'
vm_wait_exit a 30
[ "$VM_STATUS" = 0 ] || fail "quit after save: keel-vmm exited with $VM_STATUS"
wait_gone $HELD 10 "the host end of the held connection after the save"
SOCK=$VM_DIR/b/jail/v.sock
# shellcheck disable=SC2086
vm_start b --memory 256M --vsock cid=3,socket=$SOCK --control /tmp/b.ctl --restore $SAVE
vm_wait b 'held-exit [0-9]+$' 60
echo "lab: vsock: the restored guest's held connection was reset (held-exit ${VM_LINE##*held-exit })"
vm_run b 'cat /tmp/held.err'
echo "lab: vsock: the restored guest's listener said: $VM_OUT"
small b "after the restore"
vm_send b 'poweroff -f'
vm_wait_exit b 60
[ "$VM_STATUS" = 0 ] || fail "poweroff: status $VM_STATUS"
