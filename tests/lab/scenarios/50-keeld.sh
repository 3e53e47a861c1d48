# keeld and keel inside the lab (issue 5): create a VM with Debian's kernel, start it, see
# the boot on `keel console` and type into it, `keel vm stop` shuts the guest down through
# the ACPI power button (the guest's busybox acpid), and a keeld killed with SIGKILL and
# started again while the VM runs still controls it. With a cgroup v2 hierarchy mounted,
# the worker runs in keel.slice/vm-UUID with its memory.max and pids.max, keeld outside it,
# and the cgroup goes with the worker (issue 10, docs/security.md).
CG=/sys/fs/cgroup
grep -q " $CG cgroup2 " /proc/mounts || mount -t cgroup2 none $CG || fail "cannot mount cgroup2"
keeld_start
grep -q "per-VM cgroups under $CG/keel.slice" $KD/keeld.log ||
	fail "keeld did not take the cgroup v2 hierarchy: $(grep -i cgroup $KD/keeld.log)"
keel vm create lab1 --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cmdline "$GUEST_CMDLINE" \
	--cpus 1 --memory 256M || fail "keel vm create failed"
keel vm start lab1 || fail "keel vm start failed: $(keel vm log lab1 | tail -3)"
[ "$(vm_state lab1)" = Running ] || fail "lab1 is $(vm_state lab1) after start"
keel_console_wait lab1 "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
echo "lab: keeld: the console shows the boot"
pid=$(keel vm show lab1 --json | sed -n 's/^ *"pid": \([0-9]*\).*/\1/p' | head -1)
id=$(keel vm show lab1 --json | sed -n 's/^ *"id": "\([0-9a-f-]*\)".*/\1/p' | head -1)
cg=$CG/keel.slice/vm-$id
grep -qx "0::/keel.slice/vm-$id" /proc/$pid/cgroup || fail "worker $pid is in $(cat /proc/$pid/cgroup)"
# The VM's memory + 64 MiB + 1/128 of it (page tables).
[ "$(cat $cg/memory.max)" = $(((256 + 64 + 2) << 20)) ] || fail "memory.max is $(cat $cg/memory.max)"
[ "$(cat $cg/pids.max)" = 258 ] || fail "pids.max is $(cat $cg/pids.max)"
grep -q "^$pid\$" $cg/cgroup.procs || fail "cgroup.procs: $(cat $cg/cgroup.procs)"
! grep -q keel.slice /proc/$(cat "$KD/pid")/cgroup || fail "keeld is in $(cat /proc/$(cat "$KD/pid")/cgroup)"
echo "lab: keeld: the worker runs in $cg (memory.max $(cat $cg/memory.max), pids.max 258, $(cat $cg/pids.current) tasks), keeld in $(cut -d: -f3 /proc/$(cat "$KD/pid")/cgroup)"
printf 'echo keel-lab-$((6 * 7))\n' | keel console lab1 --linger 5 >$KD/typed.out 2>&1
tr -d '\r' <$KD/typed.out | grep -q '^keel-lab-42$' ||
	fail "the console did not take input: $(tail -5 $KD/typed.out)"
echo "lab: keeld: the console takes input"

# The guest must have its power button wired to acpid, else the stop below cannot work.
printf 'ls /dev/input; pidof acpid && echo acpid-runs; grep -i acpi /proc/interrupts\n' |
	keel console lab1 --linger 4 >$KD/acpi.out 2>&1
tr -d '\r' <$KD/acpi.out | grep -q '^acpid-runs$' ||
	fail "acpid does not run in the guest: $(tr -d '\r' <$KD/acpi.out | tail -6 | tr '\n' ' ')"
if ! keel vm stop lab1 --timeout 90; then
	printf 'grep -i acpi /proc/interrupts; dmesg | grep -i -E "button|acpi|sci" | tail -8\n' |
		keel console lab1 --linger 4 >$KD/acpi.out 2>&1
	fail "keel vm stop: the guest did not power off; guest: $(tr -d '\r' <$KD/acpi.out | tail -12 | tr '\n' '|')"
fi
[ "$(vm_state lab1)" = Off ] || fail "lab1 is $(vm_state lab1) after stop"
keel vm show lab1 | grep -q 'power button' || fail "stop reason: $(keel vm show lab1 | grep Status)"
echo "lab: keeld: keel vm stop shut the guest down through the power button"
[ ! -e "$cg" ] || fail "$cg stays after its worker ended ($(cat $cg/cgroup.procs 2>&1))"
echo "lab: keeld: the cgroup $cg went with its worker"

# keeld SIGKILLed while the VM runs; the new keeld takes it back.
keel vm start lab1 || fail "second start failed"
keel_console_wait lab1 "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
pid=$(keel vm show lab1 --json | sed -n 's/^ *"pid": \([0-9]*\).*/\1/p')
kill -9 "$(cat "$KD/pid")"
sleep 1
alive "$pid" || fail "the VM's worker died with keeld"
keeld_start
[ "$(vm_state lab1)" = Running ] || fail "lab1 is $(vm_state lab1) after keeld restart"
printf 'echo after-restart-$((7 * 6))\n' | keel console lab1 --linger 5 >$KD/typed.out 2>&1
tr -d '\r' <$KD/typed.out | grep -q '^after-restart-42$' || fail "console after keeld restart"
keel vm stop lab1 --timeout 90 || fail "keel vm stop after keeld restart failed"
[ "$(vm_state lab1)" = Off ] || fail "lab1 is $(vm_state lab1) after the last stop"
! alive "$pid" || fail "the worker is still running after stop"
echo "lab: keeld: a restarted keeld controls the VM it re-attached"
[ ! -e "$cg" ] || fail "$cg stays after the re-attached worker ended ($(cat $cg/cgroup.procs 2>&1))"
echo "lab: keeld: after the re-attached worker ended, its cgroup $cg is gone"
kill "$(cat "$KD/pid")"
