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
	line=$(lab-boottime --verbose --marker "$MARKER" --guest-mib "$mib" --timeout 400 \
		-- sh -c "$cmd" 2>/tmp/bench-console)
	rc=$?
	if [ "$rc" != 0 ] || [ -z "$line" ]; then
		echo "bench: FAIL $1 gen$2 run $3: $(tail -n 1 /tmp/bench-console)"
		tr -d '\r' </tmp/bench-console | tail -n 20 | awk '{ print "  | " $0 }'
		return 1
	fi
	echo "bench: run $1 gen$2 $3 ${line#boottime: }"
	# Where the VMM's own memory is, once per VMM and generation: every mapping other than
	# guest RAM with 512 KiB or more resident (lab-boottime --verbose).
	[ "$3" != 1 ] || sed -n "s/^lab-boottime: map /bench: map $1 gen$2 /p" /tmp/bench-console
	echo "$1.$2 ${line#boottime: }" >>"$results"
}

median() { # median VMM.GEN KEY
	grep "^$1 " "$results" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

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
		for key in ms own_kib own_private_kib; do
			k=$(median "keel.$gen" "$key")
			q=$(median "qemu.$gen" "$key")
			echo "bench: median gen$gen $key keel=$k qemu=$q ratio=$(awk -v k="$k" -v q="$q" 'BEGIN { printf "%.2f", k / q }')"
		done
	done
	echo "bench: done"
else
	echo "bench: FAIL: not every boot reached the image init's marker"
fi
