# shellcheck shell=sh
# The saved-state benchmark's lab side (installed as /lab/bench/state.sh; run by the lab /init
# in keel.lab=bench mode with keel.bench=state). For each VMM, one guest with keel.mib MiB of
# RAM, of which keel.fill MiB are filled with random data (a tmpfs file), and a shell loop
# printing "bench-alive" ten times a second:
#   keel-vmm   save: the control socket's save (VM paused, to a directory); restore:
#              keel-vmm --restore DIR, memory file mapped lazily
#   QEMU+KVM   save: HMP `migrate "exec:cat > FILE"` of the running guest (returns when the
#              migration completed); restore: qemu ... -incoming "exec:cat FILE"
# Restore time: from just before fork() to the first "bench-alive" line of the restored
# guest (lab-boottime), keel.n times each, alternating. Files live on the lab's RAM-backed
# /tmp for both. Prints "bench: ..." lines, then medians and the keel/QEMU ratio.
. /lab/api.sh

arg() {
	v=$2
	for w in $(cat /proc/cmdline); do
		case "$w" in "keel.$1="*) v=${w#keel.$1=} ;; esac
	done
	echo "$v"
}
n=$(arg n 3)
mib=$(arg mib 512)
fill=$(arg fill 256)
results=/tmp/bench-state
: >"$results"

ms() { # milliseconds since boot
	awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

prepare() { # prepare NAME: fill guest memory and start the alive loop
	vm_wait "$1" "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
	vm_run "$1" "mkdir -p /fill && mount -t tmpfs -o size=$((fill + 32))m tmpfs /fill && dd if=/dev/urandom of=/fill/f bs=1M count=$fill 2>/dev/null; echo filled \$(du -m /fill/f)" 900
	echo "bench: $1: $VM_OUT"
	vm_send "$1" 'while :; do echo bench-alive; sleep 0.1; done &'
	vm_wait "$1" '^bench-alive' 60
}

echo "bench: state: $mib MiB guests, $fill MiB of it filled, $n restores each, guest kernel $(uname -r)"

# keel-vmm
vm_start k --cpus 1 --memory "${mib}M" --no-rng --control /tmp/k.sock
prepare k
t0=$(ms)
lab-vmmctl /tmp/k.sock '{"execute":"save","arguments":{"dir":"/tmp/ksave"}}' >/tmp/k.out ||
	fail "keel-vmm save failed: $(cat /tmp/k.out)"
t1=$(ms)
lab-vmmctl /tmp/k.sock '{"execute":"quit"}' >/dev/null
vm_wait_exit k 60
echo "bench: save keel ms=$((t1 - t0)) bytes=$(du -k /tmp/ksave/memory | cut -f1)KiB-allocated"
echo "save keel ms=$((t1 - t0))" >>"$results"
kcmd="$(LAB_VMM=keel vm_command kr --cpus 1 --memory "${mib}M" --no-rng --restore /tmp/ksave)"

# QEMU with KVM
qcmd="$(LAB_VMM=qemu vm_command q --cpus 1 --memory "${mib}M")"
vm_command() { echo "$qcmd -monitor unix:/tmp/q.mon,server=on,wait=off"; }
vm_start q
prepare q
t0=$(ms)
lab-vmmctl --hmp /tmp/q.mon 'migrate "exec:cat > /tmp/q.mig"' >/tmp/q.out ||
	fail "QEMU migrate failed: $(cat /tmp/q.out)"
t1=$(ms)
lab-vmmctl --hmp /tmp/q.mon 'info migrate' | grep -i '^migration status' >/tmp/q.status
grep -q completed /tmp/q.status || fail "QEMU migration did not complete: $(cat /tmp/q.status)"
vm_kill q
echo "bench: save qemu ms=$((t1 - t0)) bytes=$(du -k /tmp/q.mig | cut -f1)KiB"
echo "save qemu ms=$((t1 - t0))" >>"$results"
qrcmd="$qcmd -incoming 'exec:cat /tmp/q.mig'"

one() { # one VMM RUN
	if [ "$1" = keel ]; then c=$kcmd; else c=$qrcmd; fi
	line=$(lab-boottime --marker bench-alive --guest-mib "$mib" --timeout 120 -- sh -c "$c" \
		2>/tmp/bench-console)
	if [ $? != 0 ] || [ -z "$line" ]; then
		echo "bench: FAIL restore $1 run $2: $(tail -n 1 /tmp/bench-console)"
		tr -d '\r' </tmp/bench-console | tail -n 20 | awk '{ print "  | " $0 }'
		return 1
	fi
	m=$(echo "$line" | tr ' ' '\n' | sed -n 's/^ms=//p')
	echo "bench: restore $1 run $2 ms=$m"
	echo "restore $1 ms=$m" >>"$results"
}

ok=1
i=1
while [ "$i" -le "$n" ] && [ "$ok" = 1 ]; do
	for vmm in keel qemu; do one "$vmm" "$i" || ok=0; done
	i=$((i + 1))
done

median() { # median restore|save VMM
	grep "^$1 $2 " "$results" | sed -n 's/.*ms=//p' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
if [ "$ok" = 1 ]; then
	for what in save restore; do
		k=$(median "$what" keel)
		q=$(median "$what" qemu)
		echo "bench: median $what ms keel=$k qemu=$q ratio=$(awk -v k="$k" -v q="$q" 'BEGIN { printf "%.3f", k / q }')"
	done
	echo "bench: done"
fi
