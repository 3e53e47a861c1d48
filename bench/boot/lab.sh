# shellcheck shell=sh
# The boot benchmark's lab side (installed as /lab/bench/boot.sh; run by the lab /init in
# keel.lab=bench mode). Boots the same guest kernel and initramfs keel.n times with keel-vmm
# and with QEMU+KVM (-M microvm, qboot), alternating, after one unmeasured warm-up each;
# every boot is timed by /bin/lab-boottime from just before fork() to the guest /init's
# marker line, and its memory is read from /proc/PID/smaps at that moment.
# Prints "bench: run VMM I ms=... own_kib=..." per boot, then medians and keel/QEMU ratios.
. /lab/api.sh

n=${LAB_N:-5}
cpus=$(for w in $(cat /proc/cmdline); do case "$w" in keel.cpus=*) echo "${w#*=}" ;; esac; done)
mib=$(for w in $(cat /proc/cmdline); do case "$w" in keel.mib=*) echo "${w#*=}" ;; esac; done)
cpus=${cpus:-1} mib=${mib:-256}
results=/tmp/bench-boot
: >"$results"

one() { # one VMM RUN: boot once, record the numbers (RUN 0 is the warm-up)
	LAB_VMM=$1
	cmd=$(vm_command bench --cpus "$cpus" --memory "${mib}M")
	line=$(lab-boottime --verbose --marker "$GUEST_MARKER" --guest-mib "$mib" --timeout 120 \
		-- sh -c "$cmd" 2>/tmp/bench-console)
	rc=$?
	# The largest mappings that count as the VMM's own memory, for the log.
	[ "$2" != 1 ] || grep '^lab-boottime: map' /tmp/bench-console
	if [ "$rc" != 0 ] || [ -z "$line" ]; then
		echo "bench: FAIL $1 run $2: $(tail -n 1 /tmp/bench-console)"
		tr -d '\r' </tmp/bench-console | tail -n 20 | awk '{ print "  | " $0 }'
		echo "bench: the lab kernel's last messages:"
		dmesg | tail -n 20 | awk '{ print "  | " $0 }'
		return 1
	fi
	echo "bench: run $1 $2 ${line#boottime: }"
	[ "$2" = 0 ] || echo "$1 ${line#boottime: }" >>"$results"
}

echo "bench: boot: $n runs each (plus one warm-up), $cpus vCPU, $mib MiB, guest kernel $(uname -r)"
ok=1
for vmm in keel qemu; do one "$vmm" 0 || ok=0; done
i=1
while [ "$i" -le "$n" ] && [ "$ok" = 1 ]; do
	for vmm in keel qemu; do one "$vmm" "$i" || ok=0; done
	i=$((i + 1))
done

median() { # median VMM KEY
	grep "^$1 " "$results" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

if [ "$ok" = 1 ]; then
	for key in ms own_kib own_private_kib peak_own_kib guest_kib; do
		k=$(median keel "$key")
		q=$(median qemu "$key")
		echo "bench: median $key keel=$k qemu=$q ratio=$(awk -v k="$k" -v q="$q" 'BEGIN { printf "%.2f", k / q }')"
	done
	# The fastest boot of each: the least disturbed by other load on the host.
	k=$(grep '^keel ' "$results" | tr ' ' '\n' | sed -n 's/^ms=//p' | sort -n | head -n 1)
	q=$(grep '^qemu ' "$results" | tr ' ' '\n' | sed -n 's/^ms=//p' | sort -n | head -n 1)
	echo "bench: min ms keel=$k qemu=$q ratio=$(awk -v k="$k" -v q="$q" 'BEGIN { printf "%.2f", k / q }')"
	echo "bench: done"
else
	echo "bench: FAIL: not every boot reached the guest's init marker"
fi
