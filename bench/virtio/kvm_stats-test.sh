#!/bin/sh
# Host-side checks of bench/virtio/kvm_stats.sh, kvm_trace.sh and of summary.awk's KVM tables
# (no lab, no KVM needed): a VM directory laid out as Linux 6.1's debugfs has it (counters,
# vcpuN/) for a process of this test, its deltas per request, the "not available" notes said
# once, and the lines in run.sh's summary; tracefs histograms as Linux 6.1 prints them, one
# process's threads picked out of them. Runs under sh and, when there is one, busybox sh (the
# lab host's shell and awk); summary.awk with the host's awk, as run.sh runs it.
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${KVM_STATS_TEST_SH:-}" ] && [ -x /bin/busybox ]; then
	KVM_STATS_TEST_SH=busybox /bin/busybox sh "$0" || exit 1
fi
dir=$(mktemp -d)
sleep 600 &
vmm=$!
trap 'kill $vmm; rm -rf "$dir"' EXIT
fail() {
	echo "kvm_stats-test: FAIL: $*"
	exit 1
}
KVM_STATS_ROOT=$dir/kvm
# shellcheck source=bench/virtio/kvm_stats.sh
. "$top/bench/virtio/kvm_stats.sh"
vm=$KVM_STATS_ROOT/$vmm-12
mkdir -p "$vm/vcpu0" "$KVM_STATS_ROOT/1-3"
echo 1 >"$vm/vcpu0/guest_mode"
echo 999 >"$KVM_STATS_ROOT/1-3/exits" # another process's VM
put() { # put NAME VALUE...: counter files of the VM
	while [ $# -gt 1 ]; do
		echo "$2" >"$vm/$1"
		shift 2
	done
}
put exits 1000 io_exits 100 mmio_exits 50 halt_exits 200 irq_exits 30 irq_window_exits 20 \
	nmi_window_exits 0 insn_emulation 300 pf_taken 400 irq_injections 250 halt_wakeup 190 \
	halt_successful_poll 10 halt_attempted_poll 40 halt_poll_success_ns 1000 \
	halt_poll_fail_ns 2000 halt_wait_ns 100000 signal_exits 5 host_state_reload 60 \
	hypercalls 0 pages_4k 100 pages_2m 64
[ "$(kvm_stats_dir $vmm)" = "$vm" ] || fail "kvm_stats_dir found '$(kvm_stats_dir $vmm)', not $vm"
s0=$(kvm_stats_snap $vmm)
echo "$s0" | grep -q '^exits 1000$' || fail "the snapshot has no 'exits 1000': $s0"
echo "$s0" | grep -q guest_mode && fail "the snapshot took vcpu0/: $s0"
put exits 4000 io_exits 400 mmio_exits 250 halt_exits 700 irq_exits 130 irq_window_exits 120 nmi_window_exits 10 \
	insn_emulation 800 pf_taken 900 irq_injections 750 halt_wakeup 690 halt_successful_poll 60 \
	halt_attempted_poll 140 halt_poll_success_ns 51000 halt_poll_fail_ns 52000 \
	halt_wait_ns 10100000 signal_exits 6 host_state_reload 260 pages_2m 80
out=$(kvm_stats_line "disk keel raw seqwrite dev_ios=100" "$s0" "$(kvm_stats_snap $vmm)" 100 req)
want="bench: kvm disk keel raw seqwrite dev_ios=100 unit=req n=100 exits=3000/30.00 io=300/3.00 mmio=200/2.00 hlt=500/5.00 intr=100/1.00 irqwin=100/1.00 other=1790/17.90 emul=500/5.00 npf=500/5.00 inj=500/5.00 wake=500/5.00 poll_ok=50/0.50 poll_try=100/1.00 poll_ns=100000/1000 wait_ns=10000000/100000 signal=1/0.01 reload=200/2.00 hcall=0/0.00 pages_4k=100 pages_2m=80"
[ "$out" = "$want" ] || fail "the delta line is
$out
not
$want"
# A kernel without some counters: "-" for them, and said once over two lines.
rm "$vm/pf_taken" "$vm/hypercalls"
s1=$(kvm_stats_snap $vmm)
out=$(kvm_stats_line "net keel streams=1 side=tx" "$s1" "$s1" 2.5 MiB
	kvm_stats_line "net keel streams=1 side=rx" "$s1" "$s1" 2.5 MiB)
[ "$(echo "$out" | grep -c '^bench: kvm not available: counters pf_taken hypercalls (this kernel has no such file)$')" = 1 ] ||
	fail "missing counters not said once: $out"
[ "$(echo "$out" | grep -c '^bench: kvm net keel streams=1 side=.x unit=MiB n=2.5 exits=0/0.00 .* npf=- .* hcall=- ')" = 2 ] ||
	fail "missing counters not '-': $out"
# No VM directory for a process, no debugfs: said once, no line, never a failure.
out=$(kvm_stats_line "disk qemu raw seqwrite" "$(kvm_stats_snap $$)" "$(kvm_stats_snap $$)" 1 req)
[ "$out" = "bench: kvm not available: no VM directory of the VMM's process in $KVM_STATS_ROOT" ] ||
	fail "no VM directory: '$out'"
KVM_STATS_ROOT=$dir/none
out=$(kvm_stats_line a "" "" 1 req; kvm_stats_line b "" "" 1 req)
[ "$out" = "bench: kvm not available: no $dir/none (no debugfs, or a kernel without it)" ] ||
	fail "no debugfs: '$out'"
# run.sh's summary: keel and QEMU side by side per request, the network's sender / receiver.
cat >"$dir/log" <<'EOF'
bench: kvm disk keel raw console unit=run n=1 exits=900/900.00 io=800/800.00 mmio=0/0.00 hlt=50/50.00 intr=10/10.00 irqwin=5/5.00 other=35/35.00 emul=1/1.00 npf=1/1.00 inj=60/60.00 wake=50/50.00 poll_ok=0/0.00 poll_try=0/0.00 poll_ns=0/0 wait_ns=5000000/5000000 signal=0/0.00 reload=800/800.00 hcall=0/0.00 pages_4k=10 pages_2m=100
bench: kvm disk keel raw seqwrite dev_ios=450 unit=req n=450 exits=13500/30.00 io=900/2.00 mmio=450/1.00 hlt=900/2.00 intr=450/1.00 irqwin=0/0.00 other=10800/24.00 emul=450/1.00 npf=10000/22.22 inj=900/2.00 wake=900/2.00 poll_ok=0/0.00 poll_try=0/0.00 poll_ns=0/0 wait_ns=450000000/1000000 signal=0/0.00 reload=1350/3.00 hcall=0/0.00 pages_4k=10 pages_2m=100
bench: kvm disk qemu raw seqwrite dev_ios=900 unit=req n=900 exits=9000/10.00 io=900/1.00 mmio=0/0.00 hlt=900/1.00 intr=900/1.00 irqwin=-/- other=6300/7.00 emul=900/1.00 npf=900/1.00 inj=900/1.00 wake=900/1.00 poll_ok=0/0.00 poll_try=0/0.00 poll_ns=90000/100 wait_ns=90000000/100000 signal=0/0.00 reload=900/1.00 hcall=0/0.00 pages_4k=10 pages_2m=100
bench: kvm net keel streams=1 side=tx unit=MiB n=10.00 exits=500/50.00 io=10/1.00 mmio=0/0.00 hlt=100/10.00 intr=0/0.00 irqwin=0/0.00 other=390/39.00 emul=0/0.00 npf=0/0.00 inj=100/10.00 wake=100/10.00 poll_ok=0/0.00 poll_try=0/0.00 poll_ns=0/0 wait_ns=0/0 signal=0/0.00 reload=0/0.00 hcall=0/0.00 pages_4k=1 pages_2m=1
bench: kvm net keel streams=1 side=rx unit=MiB n=10.00 exits=800/80.00 io=10/1.00 mmio=0/0.00 hlt=100/10.00 intr=0/0.00 irqwin=0/0.00 other=690/69.00 emul=0/0.00 npf=0/0.00 inj=300/30.00 wake=100/10.00 poll_ok=0/0.00 poll_try=0/0.00 poll_ns=0/0 wait_ns=0/0 signal=0/0.00 reload=0/0.00 hcall=0/0.00 pages_4k=1 pages_2m=1
bench: kvm switch keel streams=1 side=tx unit=MiB n=10 exits=100/10.00 io=-
bench: kvm switch keel streams=1 side=tx unit=MiB n=30 exits=500/16.67 io=30/1.00
bench: kvm nat qemu streams=1 side=tx unit=MiB n=16 exits=320/20.00
bench: kvm nat qemu streams=1 side=tx unit=MiB n=16 exits=960/60.00
bench: kvm not available: counters pf_taken (this kernel has no such file)
bench: done
EOF
sum=$(env awk -v md="$dir/md" -f "$top/bench/virtio/summary.awk" "$dir/log") || fail "summary.awk failed"
echo "$sum" | grep -qF "bench/virtio: kvm raw  seqwrite             per request keel / QEMU: exits 30.00 / 10.00, port I/O 2.00 / 1.00, MMIO 1.00 / 0.00, HLT 2.00 / 1.00, host interrupts 1.00 / 1.00, interrupt windows 0.00 / -, other 24.00 / 7.00, interrupts injected 2.00 / 1.00, halt polling us 0.00 / 0.10" ||
	fail "summary's disk line: $sum"
echo "$sum" | grep -qF "bench/virtio: kvm net keel 1 stream(s) per MiB sender / receiver: exits 50.00 / 80.00," ||
	fail "summary's network line: $sum"
echo "$sum" | grep -qF "bench/virtio: kvm not available: counters pf_taken" || fail "summary's note: $sum"
grep -qF "| seqwrite (450 / 900 device requests) | 30.00 / 10.00 | 2.00 / 1.00 | 1.00 / 0.00 |" "$dir/md" ||
	fail "the Markdown table's seqwrite row: $(cat "$dir/md")"
grep -qF "| console only (per run, not per request) | 900 / - |" "$dir/md" ||
	fail "the Markdown table's console row: $(cat "$dir/md")"
grep -qF "| net keel 1 stream(s) | 50.00 / 80.00 |" "$dir/md" || fail "the network row: $(cat "$dir/md")"
# Rounds (the switch's): their sums over their MiB; a counter missing in one round is "-".
grep -qF "| switch keel 1 stream(s) | 15.00 / - | - / - |" "$dir/md" || fail "the switch's rounds: $(cat "$dir/md")"
grep -qF "| nat qemu 1 stream(s) | 40.00 / - |" "$dir/md" || fail "nat's rounds: $(cat "$dir/md")"

# kvm_trace.sh: the histograms of this test's process (thread $vmm) apart from another's (1).
KVM_TRACE_T=$dir/tracing
# shellcheck source=bench/virtio/kvm_trace.sh
. "$top/bench/virtio/kvm_trace.sh"
for e in kvm_exit kvm_msr kvm_apic_accept_irq kvm_inj_virq; do
	mkdir -p "$KVM_TRACE_T/events/kvm/$e"
	: >"$KVM_TRACE_T/events/kvm/$e/trigger"
done
echo 'field:unsigned int vector;' >"$KVM_TRACE_T/events/kvm/kvm_inj_virq/format"
kvm_trace_init || fail "kvm_trace_init with every event there"
hist() { # hist EVENT LINE...: a histogram file as tracefs prints one
	e=$1
	shift
	{
		printf '# event histogram\n#\n# trigger info: hist:keys=... [active]\n#\n\n'
		printf '%s\n' "$@"
		printf '\nTotals:\n    Hits: 1\n    Entries: 1\n    Dropped: 0\n'
	} >"$KVM_TRACE_T/events/kvm/$e/hist"
}
hist kvm_exit "{ common_pid: $(printf %10d "$vmm"), exit_reason:        124 } hitcount:         30" \
	"{ common_pid:          1, exit_reason:        124 } hitcount:       9999" \
	"{ common_pid: $(printf %10d "$vmm"), exit_reason:       1024 } hitcount:         50" \
	"{ common_pid: $(printf %10d "$vmm"), exit_reason:        555 } hitcount:          1"
hist kvm_msr "{ common_pid: $(printf %10d "$vmm"), write:          1, ecx:                80b } hitcount:         20"
hist kvm_apic_accept_irq "{ common_pid: $(printf %10d "$vmm"), vec:                 25 } hitcount:         40"
hist kvm_inj_virq
out=$(kvm_trace_line "disk keel raw randwrite-qd32" "$vmm" 10 req)
[ "$out" = "bench: trace disk keel raw randwrite-qd32 unit=req n=10 exit:npf=50/5.00 exit:msr=30/3.00 exit:555=1/0.10 msr:w:0x80b=20/2.00 accept:0x25=40/4.00" ] ||
	fail "kvm_trace_line: $out"
rm "$KVM_TRACE_T/events/kvm/kvm_msr/trigger"
kvm_trace_init >"$dir/init.out" && fail "kvm_trace_init without kvm_msr succeeded"
grep -qF "bench: trace not available: no $KVM_TRACE_T/events/kvm/kvm_msr" "$dir/init.out" ||
	fail "kvm_trace_init's message: $(cat "$dir/init.out")"
echo "kvm_stats-test: ok (${KVM_STATS_TEST_SH:-sh})"
