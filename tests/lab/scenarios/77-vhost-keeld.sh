# vhost-net under keeld (issue 16, docs/virtio.md "vhost-net", docs/security.md): keeld opens
# /dev/vhost-net and passes it next to the tap (--fd vhost.0) to its jailed worker, which
# hands the rings to the kernel from a vCPU thread (DRIVER_OK) and takes them back and gives
# them again from its main loop (pause, resume), each under its seccomp filter; the guest
# pings the lab host before and after. An adapter with vhost=off says it uses the user-space
# path.
[ -c /dev/vhost-net ] || fail "the lab host has no /dev/vhost-net (tests/lab/host/modules: vhost_net)"
keeld_start
for l in kbr77 kvh77; do ip link del "$l" 2>/dev/null; done
brctl addbr kbr77 && ip link set kbr77 address 02:00:00:00:77:01 &&
	ip addr add 10.77.0.1/24 dev kbr77 && ip link set kbr77 up || fail "cannot create bridge kbr77"
keel vm create vk --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
	--cpus 1 --memory 256M --net kvh77 || fail "keel vm create failed"
keel vm start vk || fail "keel vm start failed: $(keel vm log vk | tail -3)"
vm_bridge_tap kbr77 kvh77
keel vm log vk | grep -q -- "--fd=vhost.0=" || fail "keeld passed no vhost.0: $(keel vm log vk | grep starting)"
keel vm log vk | grep -q "vhost-net: the host kernel's data path serves the adapter" ||
	fail "the worker does not use vhost-net: $(keel vm log vk | grep -i -e vhost -e 'data path')"
echo "lab: vhost-keeld: $(keel vm log vk | grep -m1 'data path' | tr -d '\r')"
keel_console_wait vk "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
ping_host() { # WHEN
	keel_run vk 'ping -c 3 -W 10 10.77.0.1 | grep -o "[0-9]* packets received"' 90
	[ "$KEEL_OUT" = "3 packets received" ] || fail "ping from vk $1: '$KEEL_OUT'"
	echo "lab: vhost-keeld: the guest pings the lab host $1"
}
keel_run vk 'ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up && echo up'
[ "$KEEL_OUT" = up ] || fail "vk eth0 set-up: $KEEL_OUT"
ping_host "on vhost-net (rings handed over on a vCPU thread)"
keel vm pause vk || fail "keel vm pause failed"
keel vm resume vk || fail "keel vm resume failed"
[ "$(vm_state vk)" = Running ] || fail "vk is $(vm_state vk) after pause and resume: $(keel vm log vk | tail -3)"
ping_host "after a pause and resume (rings taken back and handed over on the main loop)"
keel vm turn-off vk || fail "turn-off failed"
keel vm log vk | grep -i -e "seccomp" -e "forbidden" -e "VHOST_" && fail "the worker's log has the above"
# vhost=off: the user-space path, said so.
keel vm set vk --net kvh77,vhost=off || fail "keel vm set vhost=off failed"
keel vm start vk || fail "keel vm start (vhost=off) failed: $(keel vm log vk | tail -3)"
keel vm log vk | grep -q "user-space data path (vhost=off)" ||
	fail "vhost=off: $(keel vm log vk | grep -i -e vhost -e 'data path')"
echo "lab: vhost-keeld: vhost=off: the user-space data path, said so"
keel vm turn-off vk || fail "turn-off failed"
kill "$(cat "$KD/pid")"
brctl delbr kbr77 2>/dev/null
true
