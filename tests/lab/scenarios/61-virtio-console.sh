# virtio-console as the guest's console: with the UART off and console=hvc0, the guest's
# shell runs on hvc0 (virtio_console), and input and output both go through the virtqueues.
vm_start c --memory 256M --serial off --console stdio \
	--cmdline "$(echo "$GUEST_CMDLINE" | sed 's/console=ttyS0/console=hvc0/')"
# /init's own output goes to the boot console, which exists only once virtio_console has
# loaded; the shell (cttyhack) opens hvc0. Type until the shell answers.
i=0
while ! grep -q '^hvc-ready 42' "$VM_DIR/c/out" 2>/dev/null; do
	[ ! -e "$VM_DIR/c/status" ] || fail "keel-vmm exited with status $(cat "$VM_DIR/c/status")"
	i=$((i + 1))
	[ "$i" -le 60 ] || fail "no shell answered on hvc0 within 120 s"
	vm_send c 'echo hvc-ready $((6 * 7))'
	sleep 2
done
vm_run c 'stty cols 1000; cat /sys/class/tty/console/active; tty'
echo "lab: console: $(echo $VM_OUT)"
case "$VM_OUT" in *hvc0*) ;; *) fail "the active console is not hvc0: $VM_OUT" ;; esac
vm_run c 'for i in 1 2 3 4 5 6 7 8 9 10; do echo line-$i-abcdefghijklmnopqrstuvwxyz0123456789; done | md5sum'
want=$(for i in 1 2 3 4 5 6 7 8 9 10; do echo line-$i-abcdefghijklmnopqrstuvwxyz0123456789; done | md5sum)
[ "$VM_OUT" = "$want" ] || fail "output through hvc0: '$VM_OUT', expected '$want'"
vm_run c 'ls /sys/bus/virtio/drivers/virtio_console | grep -c virtio'
[ "$VM_OUT" -ge 1 ] || fail "virtio_console is bound to no device"
vm_send c 'poweroff -f'
vm_wait_exit c 60
[ "$VM_STATUS" = 0 ] || fail "poweroff: status $VM_STATUS"
