# shellcheck shell=sh
# Where one VM's exits and interrupts go, for any VMM (issue 16: "keel's guests take more
# interrupts per request at queue depth 32"; kvm_stats.sh counts exits by kind, this says
# which): histograms of the lab kernel's KVM tracepoints, each keyed by the thread that
# fired it, so that one VMM's threads can be picked out while other VMs run:
#   kvm_exit         every exit by its exit code (SVM's in the lab: msr, npf, intr...)
#   kvm_msr          MSR accesses by direction and MSR (the x2APIC EOI 0x80b, the timer's
#                    TSC deadline 0x6e0, ...)
#   kvm_apic_accept_irq
#                    interrupts accepted by the guest's local APIC, by vector, counted for
#                    the thread that delivered them (the VMM's I/O thread writing an irqfd;
#                    a timer's from whatever thread the host interrupt fell on)
#   kvm_inj_virq     interrupts injected into the guest, by vector (in the vCPU's thread)
# Sourced by bench/virtio/lab.sh (installed as /lab/bench/kvm_trace.sh) when keel.trace=1
# (BENCH_TRACE=1); needs tracefs with KVM's events, as root:
#   kvm_trace_init                mount tracefs if needed; fails (saying why) when the
#                                 events are not there
#   kvm_trace_set ''|'!'          start (clear) or stop the histograms
#   kvm_trace_line WHAT PID N UNIT
#                                 prints "bench: trace WHAT unit=UNIT n=N exit:NAME=C/PER ...
#                                 msr:r|w:0xMSR=C/PER ... accept:0xVEC=C/PER ...
#                                 inj:0xVEC=C/PER ..." for the threads of process PID,
#                                 PER = C / N, the 8 largest of each
# Variables are prefixed _kt_.

KVM_TRACE_T=${KVM_TRACE_T:-/sys/kernel/tracing}
KVM_TRACE_HISTS="kvm_exit:common_pid,exit_reason kvm_msr:common_pid,write,ecx.hex
kvm_apic_accept_irq:common_pid,vec.hex kvm_inj_virq:common_pid,vector.hex"

kvm_trace_init() {
	[ -d "$KVM_TRACE_T/events/kvm" ] || mount -t tracefs nodev "$KVM_TRACE_T" 2>/dev/null
	# kvm_inj_virq names its vector "vector" in newer kernels, "irq" in older ones.
	! grep -q 'field:unsigned int irq;' "$KVM_TRACE_T/events/kvm/kvm_inj_virq/format" 2>/dev/null ||
		KVM_TRACE_HISTS=$(echo "$KVM_TRACE_HISTS" | sed 's/kvm_inj_virq:common_pid,vector/kvm_inj_virq:common_pid,irq/')
	for _kt_h in $KVM_TRACE_HISTS; do
		[ -e "$KVM_TRACE_T/events/kvm/${_kt_h%%:*}/trigger" ] || {
			echo "bench: trace not available: no $KVM_TRACE_T/events/kvm/${_kt_h%%:*}"
			return 1
		}
	done
}

kvm_trace_set() {
	for _kt_h in $KVM_TRACE_HISTS; do
		echo "${1}hist:keys=${_kt_h#*:}:size=4096" \
			>"$KVM_TRACE_T/events/kvm/${_kt_h%%:*}/trigger" || return 1
	done
}

# kvm_trace_hist PIDS N: reads histogram lines ("{ common_pid: 12, exit_reason: 124 }
# hitcount: 5", one per line) of one event on standard input, keeps those of threads PIDS
# (space-separated), sums them by their other keys; prints "KEY=C/PER" words, largest first,
# 8 at most. Exit codes are named (SVM's, the lab's CPU; VMX's differ and print as numbers).
kvm_trace_hist() {
	awk -v pids=" $1 " -v n="$2" '
	BEGIN {
		split("96 intr 97 nmi 100 vintr 114 cpuid 119 pause 120 hlt 123 io 124 msr 127 shutdown 129 vmmcall 1024 npf", a, " ")
		for (i = 1; i < 40 && (i + 1) in a; i += 2) nm[a[i]] = a[i + 1]
	}
	/^\{/ {
		line = $0
		h = line; sub(/.*hitcount: */, "", h); h += 0
		sub(/^\{ */, "", line); sub(/ *\}.*/, "", line)
		k = split(line, f, ", *")
		key = ""; pid = ""
		for (i = 1; i <= k; i++) {
			split(f[i], kv, ": *")
			if (kv[1] == "common_pid") { pid = kv[2] + 0; continue }
			v = kv[2]
			if (kv[1] == "exit_reason") v = ((v + 0) in nm) ? nm[v + 0] : v
			if (kv[1] == "write") v = v + 0 ? "w" : "r"
			if (kv[1] ~ /^(ecx|vec|vector|irq)$/) v = "0x" v # .hex keys print without 0x
			key = key (key == "" ? "" : ":") v
		}
		if (index(pids, " " pid " ") == 0) next
		c[key] += h
	}
	END {
		m = 0
		for (x in c) { o[++m] = x }
		for (i = 1; i <= m; i++)
			for (j = i + 1; j <= m; j++)
				if (c[o[j]] > c[o[i]]) { t = o[i]; o[i] = o[j]; o[j] = t }
		s = ""
		for (i = 1; i <= m && i <= 8; i++)
			s = s (s == "" ? "" : " ") o[i] "=" c[o[i]] "/" sprintf("%.2f", n > 0 ? c[o[i]] / n : 0)
		print s
	}'
}

kvm_trace_line() {
	_kt_pids=$(for _kt_t in /proc/"$2"/task/*; do echo "${_kt_t##*/}"; done | tr '\n' ' ')
	_kt_out="bench: trace $1 unit=$4 n=$3"
	for _kt_h in $KVM_TRACE_HISTS; do
		_kt_e=${_kt_h%%:*}
		_kt_s=$(kvm_trace_hist "$_kt_pids" "$3" <"$KVM_TRACE_T/events/kvm/$_kt_e/hist")
		case $_kt_e in
		kvm_exit) _kt_p="exit" ;;
		kvm_msr) _kt_p=msr ;;
		kvm_apic_accept_irq) _kt_p=accept ;;
		*) _kt_p=inj ;;
		esac
		[ -z "$_kt_s" ] || _kt_out="$_kt_out $(echo "$_kt_s" | sed "s/\([^ ]*\)/$_kt_p:\1/g")"
	done
	echo "$_kt_out"
}
