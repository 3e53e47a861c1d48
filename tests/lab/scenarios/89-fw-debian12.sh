# A real distribution (issue 11, lab test 6; what `make demo` boots) with keel's integration
# services installed as a user installs them (issue 13, docs/integration-services.md,
# "Installing the agent in a guest"). Debian 12 with systemd (scripts/images/debian12-vhdx.sh:
# mmdebstrap, Debian's cloud kernel, GRUB EFI on an EFI System Partition, an ext4 root, no
# keel-agent) in a dynamic VHDX, a Generation 2 VM of keeld's (keel vm create --generation 2,
# OVMF) with virtio-vsock, an empty DVD drive and a network adapter on the Default Switch.
# OVMF boots GRUB from the ESP, GRUB the kernel and initramfs from the root; systemd starts
# the serial getty on ttyS0, whose login prompt stays clean (no kernel message on its line).
# The scenario logs in on `keel console` as root (password "keel") and asks `systemctl
# is-system-running --wait` (the answer must be "running"; "degraded" fails with the failed
# units). Then the user's path: the guest has the virtio-vsock device (its transport module
# bound) and no agent (`No contact`); `keel vm set --dvd keel-agent.iso` (make agent-iso)
# inserts the agent's disk, and in the guest `mount -r /dev/sr0 /mnt && dpkg -i
# /mnt/keel-agent_*.deb`; the package's unit starts keel-agent under systemd. keel vm show
# then says `Heartbeat: OK`; keel vm exec runs commands (output, status, the unit active);
# the guest's facts (OSName Debian GNU/Linux, its kernel) and, once systemd-networkd has
# DHCP on the adapter, its IPv4 address on the switch come through key-value exchange; the
# disk is ejected; and `keel vm stop` powers the guest off through the agent (`systemctl
# poweroff`: systemd's shutdown is seen on the console, the kernel's "Power down").
# 3 to 5 minutes in the lab (OVMF alone takes 1.5), hence its own limit:
# lab-timeout: 600
# lab-images: debian12-vhdx
echo "lab: Debian 12 image: user root, password keel"
[ -s /lab/keel-agent.iso ] || fail "/lab/keel-agent.iso is missing (tests/lab/lab.sh makes it with scripts/agent-iso.sh)"
keeld_start
V=deb
image_copy debian12-vhdx "$VM_DIR/debian12.vhdx"
cp /lab/keel-agent.iso "$VM_DIR/keel-agent.iso" || fail "cannot copy the agent's disk into the pool /tmp"
keel vm create $V --generation 2 --cpus 2 --memory 512M --disk "$VM_DIR/debian12.vhdx" --dvd none \
	--vsock --net "switch=Default Switch" >/tmp/deb-create.out 2>&1 ||
	fail "keel vm create --generation 2: $(cat /tmp/deb-create.out)"
keel vm show $V --json | grep -q '"vsock"' || fail "the VM has no vsock device: $(keel vm show $V --json)"

hb() { # the Heartbeat line's value (OK, Lost communication, No contact)
	keel vm show $V | sed -n 's/^Heartbeat: *\([A-Za-z ]*[A-Za-z]\).*/\1/p'
}
type_line() { # type one line on the console
	printf '%s\n' "$1" | timeout 30 keel console $V --linger 1 >/dev/null 2>&1 ||
		fail "keel console $V: cannot type '$1'"
}
# x CMD...: keel vm exec, must succeed; X_OUT its output.
x() {
	X_OUT=$(keel vm exec $V --timeout 120 -- "$@" 2>/tmp/deb-x.err) ||
		fail "keel vm exec $V -- $*: status $? ($(cat /tmp/deb-x.err))"
}

t0=$(_now)
keel vm start $V >/tmp/deb-start.out 2>&1 || fail "keel vm start: $(cat /tmp/deb-start.out) $(keel vm log $V | tail -3)"
keel_console_wait $V 'Loading Linux' 280
echo "lab: GRUB after $(($(_now) - t0)) s"
keel_console_wait $V 'login: ' 480
t_login=$(($(_now) - t0))
echo "lab: the serial getty after $t_login s"
type_line root
keel_console_wait $V 'Password: ' 60
type_line keel
keel_console_wait $V 'root@keel-debian12' 60
# The terminal wide (the console log readable; keel_run does not need it: it reads a
# command's output between the guest's own marker lines, not after the echo).
keel_run $V 'stty cols 4096'
keel_run $V 'systemctl is-system-running --wait' 240
state=$(echo "$KEEL_OUT" | grep -E -o 'initializing|starting|running|degraded|maintenance|stopping' | tail -n 1)
echo "lab: systemctl is-system-running after $(($(_now) - t0)) s: ${state:-$KEEL_OUT}"
if [ "$state" != running ]; then
	keel_run $V 'systemctl --failed --no-pager --plain' 60
	fail "systemctl is-system-running answered '${state:-$KEEL_OUT}'; failed units: $(echo "$KEEL_OUT" | tr '\n' ' ')"
fi
# The login prompt is clean: the line that shows it holds the prompt and the typed name only
# (the image's kernel.printk keeps udev's module messages off the console).
keel console $V --read-only --timeout 2 2>/dev/null | tr -d '\r' >/tmp/deb-console.out
login_line=$(grep -a 'keel-debian12 login: ' /tmp/deb-console.out | tail -n 1)
[ "$login_line" = 'keel-debian12 login: root' ] ||
	fail "the login prompt's line is '$login_line', not the prompt and the typed name"
echo "lab: the login prompt's line: '$login_line'"

# The guest has keel-vmm's virtio-vsock device (virtio device ID 19) bound to Debian's
# transport module, and no agent yet.
# shellcheck disable=SC2016 # expanded by the guest's shell
keel_run $V 'for d in /sys/bus/virtio/devices/*; do grep -q 0x0013 $d/device && echo ${d##*/} $(basename $(readlink $d/driver)); done'
case "$KEEL_OUT" in
virtio[0-9]*' vmw_vsock_virtio_transport') ;;
*) fail "the guest has no virtio-vsock device bound to vmw_vsock_virtio_transport: '$KEEL_OUT'" ;;
esac
[ "$(hb)" = "No contact" ] || fail "the heartbeat is '$(hb)' before the agent is installed"
echo "lab: agent: the guest's virtio-vsock device and its driver: $KEEL_OUT; heartbeat: No contact"

# The user's path: the agent's disk in the DVD drive, its package installed from it.
keel vm set $V --dvd "$VM_DIR/keel-agent.iso" >/tmp/deb-set.out 2>&1 || fail "keel vm set --dvd: $(cat /tmp/deb-set.out)"
# The guest learns of the medium by polling the drive (media events): wait for it.
# shellcheck disable=SC2016 # expanded by the guest's shell
keel_run $V 'i=0; until blkid /dev/sr0 >/dev/null; do i=$((i+1)); [ $i -lt 30 ] || break; sleep 1; done; blkid -o value -s LABEL /dev/sr0' 60
[ "$KEEL_OUT" = KEEL_AGENT ] || fail "the guest does not see the agent's disk in /dev/sr0: '$KEEL_OUT'"
t_inst=$(_now)
keel_run $V 'mount -r /dev/sr0 /mnt && dpkg -i /mnt/keel-agent_*.deb && umount /mnt' 180
[ "$KEEL_RC" = 0 ] || fail "installing the agent from its disk failed ($KEEL_RC): $KEEL_OUT"
echo "lab: agent: dpkg -i from the disk in $(($(_now) - t_inst)) s: $(echo "$KEEL_OUT" | grep -E '^(Setting up|Created symlink)' | tr '\n' ' ')"
t_hb=$(_now)
i=0
until [ "$(hb)" = OK ]; do
	i=$((i + 1))
	[ $i -le 300 ] || fail "the heartbeat is '$(hb)' 60 s after the agent was installed"
	sleep 0.2
done
echo "lab: agent: $(keel vm show $V | grep '^Heartbeat') $(($(_now) - t_hb)) s after dpkg -i ended ($(($(_now) - t0)) s after the start)"

# Exec, and the agent running as systemd's service.
x systemctl is-active keel-agent
[ "$X_OUT" = active ] || fail "keel-agent.service is '$X_OUT'"
x systemctl show -p MainPID --value keel-agent
mainpid=$X_OUT
x cat /proc/"$mainpid"/cgroup
echo "$X_OUT" | grep -q '/system.slice/keel-agent.service$' || fail "the agent's main process is not in its unit's cgroup: $X_OUT"
x uname -r
kver=$X_OUT
# The guest reads the VM's own UUID (SMBIOS type 1, which cloud-init and licensing read).
vm_id=$(keel vm show $V --json | sed -n 's/^ *"id": "\([0-9a-f-]*\)".*/\1/p' | head -n 1)
x cat /sys/class/dmi/id/product_uuid
[ -n "$vm_id" ] && [ "$X_OUT" = "$vm_id" ] ||
	fail "the guest's SMBIOS UUID is '$X_OUT', the VM's id '$vm_id'"
echo "lab: the guest's /sys/class/dmi/id/product_uuid is the VM's id $vm_id"
keel vm exec $V -- sh -c 'exit 7' 2>/dev/null
rc=$?
[ $rc = 7 ] || fail "keel vm exec -- sh -c 'exit 7' gave status $rc"
echo "lab: agent: keel-agent.service active (main PID $mainpid in its cgroup); exec: uname -r = $kver, exit 7 gives 7"

# Key-value exchange: the guest's facts, and its address on the switch once systemd-networkd
# runs DHCP on the adapter (the image configures no network).
keel vm kvp list $V --pool auto >/tmp/deb-kvp.out 2>&1 || fail "keel vm kvp list --pool auto: $(cat /tmp/deb-kvp.out)"
grep -q ' OSName=Debian GNU/Linux$' /tmp/deb-kvp.out || fail "the guest's OS is not in its facts: $(cat /tmp/deb-kvp.out)"
grep -q " OSKernelVersion=$kver\$" /tmp/deb-kvp.out || fail "the guest's kernel is not in its facts: $(cat /tmp/deb-kvp.out)"
echo "lab: agent: facts: $(grep -E ' (FullyQualifiedDomainName|OSName|OSVersion|OSKernelVersion|IntegrationServicesVersion)=' /tmp/deb-kvp.out | tr '\n' ';')"
x sh -c 'printf "[Match]\nName=en*\n[Network]\nDHCP=ipv4\n" >/etc/systemd/network/50-lab.network && systemctl start systemd-networkd'
subnet=$(keel switch show "Default Switch" | sed -n 's/^Subnet: *\([0-9.]*\)\.[0-9]*\/.*/\1/p')
[ -n "$subnet" ] || fail "the Default Switch's subnet: $(keel switch show "Default Switch")"
t_net=$(_now)
until keel vm show $V | grep -q "^Addresses: .*$subnet\.[0-9]"; do
	[ $(($(_now) - t_net)) -le 90 ] ||
		fail "no address in $subnet.0 in keel vm show 90 s after networkd started: $(keel vm show $V | grep -E '^(Heartbeat|Addresses)'); guest: $(keel vm exec $V -- networkctl --no-pager 2>&1 | tr '\n' ' ')"
	sleep 1
done
echo "lab: agent: $(keel vm show $V | grep '^Addresses') $(($(_now) - t_net)) s after networkd started"
keel vm set $V --eject >/tmp/deb-set.out 2>&1 || fail "keel vm set --eject: $(cat /tmp/deb-set.out)"
# The guest sees the medium go: its drive reports no medium (sense 3a) once it has polled.
x sh -c 'i=0; while blkid /dev/sr0 >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 30 ] || break; sleep 1; done; dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2>&1; true'
case "$X_OUT" in *'No medium found'*) ;; *) fail "after keel vm set --eject the guest still reads /dev/sr0: $X_OUT" ;; esac
echo "lab: after keel vm set --eject the guest's drive has no medium: $(echo "$X_OUT" | head -n 1)"

# keel vm stop through the agent: systemctl poweroff, systemd's shutdown on the console.
timeout 200 keel console $V --read-only >/tmp/deb-stop.console 2>&1 &
cpid=$!
sleep 1
t_stop=$(_now)
keel vm stop $V --timeout 120 >/tmp/deb-stop.out 2>&1 || fail "keel vm stop failed: $(cat /tmp/deb-stop.out)"
grep -q 'through keel-agent' /tmp/deb-stop.out || fail "keel vm stop did not go through the agent: $(cat /tmp/deb-stop.out)"
[ "$(vm_state $V)" = Off ] || fail "$V is $(vm_state $V) after stop"
wait $cpid
awk -v esc="$_ESC" "{ $_PLAIN; print }" /tmp/deb-stop.console >/tmp/deb-stop.txt
grep -q 'Reached target.*System Power Off' /tmp/deb-stop.txt ||
	fail "systemd's power-off is not on the console: $(tail -n 15 /tmp/deb-stop.txt)"
grep -q 'reboot: Power down' /tmp/deb-stop.txt || fail "the kernel did not power down: $(tail -n 15 /tmp/deb-stop.txt)"
echo "lab: agent: $(cat /tmp/deb-stop.out) and Off in $(($(_now) - t_stop)) s; console: $(grep -E 'Stopped keel-agent|System Power Off|Power down' /tmp/deb-stop.txt | tr '\n' ';')"
echo "lab: Debian 12 done after $(($(_now) - t0)) s"
