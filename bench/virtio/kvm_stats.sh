# shellcheck shell=sh
# KVM's own statistics of one VM, for any VMM (issue 16: "count the guest's exits per request
# on both VMMs"): the counters the kernel keeps per VM in debugfs,
# /sys/kernel/debug/kvm/PID-FD/ (PID: the thread that made the VM, FD: its VM file
# descriptor), each vCPU's counters summed over the VM's vCPUs. Sourced by
# bench/virtio/lab.sh (installed as /lab/bench/kvm_stats.sh) and usable on any host with
# KVM, as root, where debugfs is readable (not under kernel lockdown; docs/BENCHMARKS.md,
# "KVM's exits per request", says what each counter is):
#   kvm_stats_init                 mount debugfs on /sys/kernel/debug if KVM's directory is not
#                                  there (once; harmless when it is)
#   s0=$(kvm_stats_snap PID)       "name value" lines of every counter of process PID's VM
#                                  (nothing when there is no debugfs or no VM of PID)
#   kvm_stats_line WHAT S0 S1 N UNIT
#                                  prints "bench: kvm WHAT unit=UNIT n=N name=DELTA/PER ..."
#                                  for the counters between snapshots S0 and S1, PER = DELTA / N;
#                                  what is not available is said once ("bench: kvm not
#                                  available: ...": call it in the script's own shell, not in
#                                  $(...), for "once"), and nothing ever fails.
# Variables are prefixed _ks_: the scripts that source this file use short global names.

KVM_STATS_ROOT=${KVM_STATS_ROOT:-/sys/kernel/debug/kvm}
KVM_STATS_SAID=

kvm_stats_init() {
	[ -d "$KVM_STATS_ROOT" ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null || :
}

# kvm_stats_dir PID: the debugfs directory of the VM that a thread of process PID made.
kvm_stats_dir() {
	for _ks_t in /proc/"$1"/task/*; do
		for _ks_d in "$KVM_STATS_ROOT/${_ks_t##*/}"-*; do
			[ -d "$_ks_d" ] && echo "$_ks_d" && return 0
		done
	done
	return 1
}

# kvm_stats_snap PID: "name value" per counter file of PID's VM, then "name ?" for every file
# (so that a file that exists but cannot be read, as under kernel lockdown, is told apart from
# one this kernel does not have); grep -s: the vcpuN directories are skipped.
kvm_stats_snap() {
	_ks_d=$(kvm_stats_dir "$1") || return 0
	(
		cd "$_ks_d" || exit 0
		grep -s . ./* | sed -n 's|^\./\([a-z0-9_]*\):\([0-9][0-9]*\)$|\1 \2|p'
		for _ks_f in *; do [ ! -f "$_ks_f" ] || echo "$_ks_f ?"; done
	)
}

# kvm_stats_note WHY: print "bench: kvm not available: WHY" unless it was printed already.
kvm_stats_note() {
	case "$KVM_STATS_SAID" in *"|$1|"*) return 0 ;; esac
	KVM_STATS_SAID="$KVM_STATS_SAID|$1|"
	echo "bench: kvm not available: $1"
}

# kvm_stats_delta S0 S1 N: the fields of kvm_stats_line (first line) and, when counters are
# missing, "missing NAME..." and "unreadable NAME..." (further lines). Exits by kind (each a VM exit the kernel took):
# io (port I/O, handled in the kernel or by the VMM), mmio (MMIO the VMM completed in user
# space), hlt, intr (a host interrupt arrived in guest mode), irqwin (the guest opened its
# interrupt window for a pending interrupt), other (the rest: nested page faults handled in
# the kernel, MMIO to ioeventfds and the in-kernel APIC, MSRs, CPUID...); emul (instructions
# the kernel emulated, MMIO it decoded included), npf (page faults KVM's MMU handled), inj
# (interrupts injected), wake (halts woken), poll_ok/poll_try (halt polls that found work /
# tried), poll_ns and wait_ns (halt polling and halted time in ns), signal (returns to user
# space for a signal), reload (host state reloaded: returns to user space and preemptions),
# hcall (hypercalls); pages_4k, pages_2m: the VM's nested page table mappings at the end
# (counts, not deltas).
kvm_stats_delta() {
	printf '%s\n' "$1" | awk -v after="$2" -v n="$3" '
	function d(name) {
		if ((name in A) && (name in B)) return A[name] - B[name]
		if (!(name in M)) {
			if ((name in UA) || (name in UB)) unread = unread " " name
			else miss = miss " " name
		}
		M[name] = 1
		return ""
	}
	function f(key, v, ns) {
		if (v == "") { out = out " " key "=-"; return }
		out = out " " key "=" v "/" sprintf(ns ? "%.0f" : "%.2f", n > 0 ? v / n : 0)
	}
	function now(name) { out = out " " name "=" ((name in A) ? A[name] : "-"); if (!(name in A)) d(name) }
	BEGIN {
		k = split(after, a, "\n")
		for (i = 1; i <= k; i++)
			if (split(a[i], g, " ") == 2) { if (g[2] != "?") A[g[1]] = g[2]; else if (!(g[1] in A)) UA[g[1]] = 1 }
	}
	NF == 2 && $2 != "?" { B[$1] = $2 }
	NF == 2 && $2 == "?" && !($1 in B) { UB[$1] = 1 }
	END {
		out = "n=" n
		x = d("exits"); f("exits", x)
		io = d("io_exits"); f("io", io)
		mm = d("mmio_exits"); f("mmio", mm)
		h = d("halt_exits"); f("hlt", h)
		it = d("irq_exits"); f("intr", it)
		w = d("irq_window_exits"); f("irqwin", w)
		nw = d("nmi_window_exits")
		o = ""
		if (x != "" && io != "" && mm != "" && h != "" && it != "" && w != "" && nw != "")
			o = x - io - mm - h - it - w - nw
		f("other", o)
		f("emul", d("insn_emulation")); f("npf", d("pf_taken")); f("inj", d("irq_injections"))
		f("wake", d("halt_wakeup")); f("poll_ok", d("halt_successful_poll"))
		f("poll_try", d("halt_attempted_poll"))
		ps = d("halt_poll_success_ns"); pf = d("halt_poll_fail_ns")
		f("poll_ns", ps == "" || pf == "" ? "" : ps + pf, 1)
		f("wait_ns", d("halt_wait_ns"), 1)
		f("signal", d("signal_exits")); f("reload", d("host_state_reload")); f("hcall", d("hypercalls"))
		now("pages_4k"); now("pages_2m")
		print out
		if (miss != "") print "missing" miss
		if (unread != "") print "unreadable" unread
	}'
}

# kvm_stats_line WHAT S0 S1 N UNIT: one "bench: kvm WHAT ..." line, or why not (no line
# without the exit count).
kvm_stats_line() {
	if [ -z "$2" ] || [ -z "$3" ]; then
		if [ ! -d "$KVM_STATS_ROOT" ]; then
			kvm_stats_note "no $KVM_STATS_ROOT (no debugfs, or a kernel without it)"
		else
			kvm_stats_note "no VM directory of the VMM's process in $KVM_STATS_ROOT"
		fi
		return 0
	fi
	_ks_o=$(kvm_stats_delta "$2" "$3" "$4")
	_ks_m=$(printf '%s\n' "$_ks_o" | sed -n 's/^missing //p')
	[ -z "$_ks_m" ] || kvm_stats_note "counters $_ks_m (this kernel has no such file)"
	_ks_m=$(printf '%s\n' "$_ks_o" | sed -n 's/^unreadable //p')
	[ -z "$_ks_m" ] || kvm_stats_note "counters $_ks_m (the files exist but cannot be read: kernel lockdown restricts debugfs?)"
	_ks_o=$(printf '%s\n' "$_ks_o" | sed -n 1p)
	case "$_ks_o" in *" exits=-"*) return 0 ;; esac
	echo "bench: kvm $1 unit=$5 $_ks_o"
}
