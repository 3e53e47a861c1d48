# shellcheck shell=sh
# The firmware boot benchmark's lab side (installed as /lab/bench/firmware.sh; run by the lab
# /init with keel.lab=bench keel.bench=firmware). Boots the mbr-bios image through SeaBIOS
# (Generation 1) and the gpt-uefi image through OVMF (Generation 2), keel.n times each with
# keel-vmm and with QEMU+KVM (-M q35, the same Debian firmware files and disk images),
# alternating. Every boot is timed by /bin/lab-boottime from just before fork() to the
# image init's marker line, with the VMM's own memory (resident, not guest RAM) at that
# moment. Each UEFI boot starts from a fresh copy of OVMF_VARS_4M.fd (keel-vmm creates it
# from the template when the --nvram file is missing; QEMU gets a copy), so both do the
# same first-boot work. Prints one line per boot, medians and keel/QEMU ratios.
. /lab/api.sh

n=${LAB_N:-3}
mib=256
results=/tmp/bench-firmware
: >"$results"
OVMF=/usr/share/OVMF
MARKER='keel-image: init ready'
# The phases of a boot, stamped when their first line arrives (lab-boottime --stamp): the
# firmware's first line (SeaBIOS's banner; OVMF's boot manager), the firmware handing over to
# the boot loader, GRUB's menu entry, GRUB loading Linux from the disk; then the marker.
STAMPS='SeaBIOS (version|Booting from Hard Disk|BdsDxe: loading|Welcome to GRUB|Booting `|keel-image: GRUB'
image_copy mbr-bios /tmp/bench-mbr.raw
image_copy gpt-uefi /tmp/bench-gpt.raw

command_of() { # VMM GEN: the command line of one boot
	case "$1.$2" in
	keel.1) echo "exec keel-vmm --name bench --firmware bios --memory ${mib}M --no-rng --disk path=/tmp/bench-mbr.raw" ;;
	keel.2)
		rm -f /tmp/bench-keel.vars.fd
		echo "exec keel-vmm --name bench --firmware uefi --nvram /tmp/bench-keel.vars.fd --memory ${mib}M --no-rng --disk path=/tmp/bench-gpt.raw"
		;;
	qemu.*)
		q="exec qemu-system-x86_64 -M q35 -accel kvm -cpu host -m $mib -nodefaults -no-user-config -display none -serial stdio"
		if [ "$2" = 1 ]; then
			echo "$q -bios /usr/share/seabios/bios-256k.bin -drive file=/tmp/bench-mbr.raw,format=raw,if=virtio"
		else
			cp "$OVMF/OVMF_VARS_4M.fd" /tmp/bench-qemu.vars.fd
			echo "$q -drive if=pflash,format=raw,unit=0,readonly=on,file=$OVMF/OVMF_CODE_4M.fd -drive if=pflash,format=raw,unit=1,file=/tmp/bench-qemu.vars.fd -drive file=/tmp/bench-gpt.raw,format=raw,if=virtio"
		fi
		;;
	esac
}

one() { # VMM GEN RUN
	cmd=$(command_of "$1" "$2")
	stamps=$(echo "$STAMPS" | tr '|' '\n' | while IFS= read -r s; do printf '%s\n' --stamp "$s"; done)
	old_ifs=$IFS
	IFS='
'
	# shellcheck disable=SC2086 # one argument per line
	line=$(lab-boottime --verbose --marker "$MARKER" --guest-mib "$mib" --timeout 400 \
		$stamps -- sh -c "$cmd" 2>/tmp/bench-console)
	rc=$?
	IFS=$old_ifs
	if [ "$rc" != 0 ] || [ -z "$line" ]; then
		echo "bench: FAIL $1 gen$2 run $3: $(tail -n 1 /tmp/bench-console)"
		tr -d '\r' </tmp/bench-console | tail -n 20 | awk '{ print "  | " $0 }'
		return 1
	fi
	echo "bench: run $1 gen$2 $3 ${line#boottime: }"
	sed -n "s/^lab-boottime: stamp /bench: stamp $1 gen$2 $3 /p" /tmp/bench-console
	# Where the VMM's own memory is, once per VMM and generation: every mapping other than
	# guest RAM with 512 KiB or more resident (lab-boottime --verbose), and for keel-vmm
	# every mapping with anything resident.
	[ "$3" != 1 ] || sed -n -e "s/^lab-boottime: map /bench: map $1 gen$2 /p" \
		-e "s/^lab-boottime: huge /bench: huge $1 gen$2 /p" /tmp/bench-console
	[ "$3" != 1 ] || [ "$1" != keel ] ||
		sed -n "s/^lab-boottime: vma /bench: vma $1 gen$2 /p" /tmp/bench-console
	echo "$1.$2 ${line#boottime: }" >>"$results"
}

# The exit profile (keel.profile=1): one more boot of each generation per VMM, not timed, with
# the lab kernel's KVM tracepoints counted in histograms (the same count for both VMMs): every
# exit by its SVM exit code (kvm_exit), exits to user space (kvm_userspace_exit), port I/O by
# port (kvm_pio) and MMIO by 4 KiB page (kvm_mmio); keel-vmm also with --exit-stats (its own
# count, by device). "before" is the keel-vmm build given as BENCH_KEEL_BEFORE (run.sh), when
# there is one. Lines "bench: trace VMM GEN EVENT ..." and "bench: exits VMM GEN ...".
T=/sys/kernel/tracing
HIST_EXIT='hist:keys=exit_reason:sort=hitcount.descending'
HIST_USER='hist:keys=reason:sort=hitcount.descending'
HIST_PIO='hist:keys=rw,port:sort=hitcount.descending'
HIST_MMIO='hist:keys=type,gpa.buckets=4096:sort=hitcount.descending'

trace_set() { # trace_set ''|'!': add or remove the histograms
	echo "$1$HIST_EXIT" >$T/events/kvm/kvm_exit/trigger &&
		echo "$1$HIST_USER" >$T/events/kvm/kvm_userspace_exit/trigger &&
		echo "$1$HIST_PIO" >$T/events/kvm/kvm_pio/trigger &&
		echo "$1$HIST_MMIO" >$T/events/kvm/kvm_mmio/trigger
}

trace_print() { # VMM GEN
	for e in kvm_exit kvm_userspace_exit kvm_pio kvm_mmio; do
		grep -v -e '^#' -e '^$' "$T/events/kvm/$e/hist" | grep -v -e '^Totals:' |
			sed 's/  */ /g' | head -n 25 | sed "s/^/bench: trace $1 gen$2 $e /"
	done
}

profile_one() { # VMM GEN (VMM: keel, before or qemu)
	case $1 in
	keel) cmd="$(command_of keel "$2") --exit-stats" ;;
	before) cmd=$(command_of keel "$2" | sed 's/exec keel-vmm /exec keel-vmm-before /') ;;
	*) cmd=$(command_of "$1" "$2") ;;
	esac
	trace_set '' || { echo "bench: FAIL profile: cannot set the KVM trace histograms"; return 1; }
	sh -c "$cmd" >/tmp/bench-profile 2>&1 </dev/null &
	pid=$!
	t=0
	while ! grep -q "$MARKER" /tmp/bench-profile && [ "$t" -lt 800 ]; do
		sleep 0.5
		t=$((t + 1))
	done
	grep -q "$MARKER" /tmp/bench-profile || echo "bench: FAIL profile $1 gen$2: no marker"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	trace_print "$1" "$2"
	trace_set '!'
	sed -n 's/.*exit stats: */bench: exits '"$1"' gen'"$2"' /p' /tmp/bench-profile
}

profile() {
	[ -d $T/events/kvm ] || mount -t tracefs nodev $T 2>/dev/null
	[ -d $T/events/kvm ] || { echo "bench: FAIL profile: no KVM trace events in $T"; return 1; }
	# Pages need the histograms' .buckets (Linux 5.19 and later); else MMIO by kind only.
	if echo "$HIST_MMIO" >$T/events/kvm/kvm_mmio/trigger 2>/dev/null; then
		echo "!$HIST_MMIO" >$T/events/kvm/kvm_mmio/trigger
	else
		HIST_MMIO='hist:keys=type:sort=hitcount.descending'
	fi
	for gen in 1 2; do
		for vmm in before keel qemu; do
			[ "$vmm" != before ] || [ -x /bin/keel-vmm-before ] || continue
			profile_one "$vmm" "$gen"
		done
	done
}

median() { # median VMM.GEN KEY
	grep "^$1 " "$results" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

case " $(cat /proc/cmdline) " in *" keel.profile=1 "*) profile ;; esac
echo "bench: firmware: $n runs each of keel-vmm and QEMU (q35) per generation, $mib MiB, guest kernel $(uname -r)"
ok=1
i=1
while [ "$i" -le "$n" ] && [ "$ok" = 1 ]; do
	for gen in 1 2; do
		for vmm in keel qemu; do one "$vmm" "$gen" "$i" || ok=0; done
	done
	i=$((i + 1))
done
if [ "$ok" = 1 ]; then
	for gen in 1 2; do
		for key in ms own_kib own_private_kib own_anon_kib own_pss_kib; do
			k=$(median "keel.$gen" "$key")
			q=$(median "qemu.$gen" "$key")
			echo "bench: median gen$gen $key keel=$k qemu=$q ratio=$(awk -v k="$k" -v q="$q" 'BEGIN { printf "%.2f", k / q }')"
		done
	done
	echo "bench: done"
else
	echo "bench: FAIL: not every boot reached the image init's marker"
fi
