# Integration services with a real guest, part two (issue 13, docs/integration-services.md):
# a freeze makes the guest's writes block and a thaw releases them, and a guest that crashed
# (sysrq c, the kernel told not to reboot on panic: it spins in its panic loop, vCPU busy,
# agent silent) is "Lost communication" with "guest hung", not "agent gone" (68-agent shows
# "agent gone" for a SIGSTOPped agent).
#
# No keel command freezes without taking a checkpoint or a backup (Hyper-V has none either),
# whose pause would hide a blocked write, so the freeze and thaw go to keel-agent as keeld's
# do: the agent protocol (docs/agent-protocol.md) on the VM's vsock.sock, the frames written
# by hand, through lab-vsock.
keeld_start
V=agent2
rm -f /tmp/ah-disk.vhdx
keel disk create /tmp/ah-disk.vhdx --size 64M || fail "keel disk create failed"
# panic=0 after the lab's panic=-1: a panicked guest loops instead of rebooting.
keel vm create $V --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
	--cmdline "$GUEST_CMDLINE panic=0" --cpus 1 --memory 320M --vsock \
	--disk /tmp/ah-disk.vhdx || fail "keel vm create --vsock failed"
command -v lab-vsock >/dev/null || fail "lab-vsock is not in the lab (tests/lab/vsockcat.c)"

_now_ms() { # milliseconds since boot
	read -r _up _ </proc/uptime
	_cs=${_up#*.}
	echo $((${_up%.*} * 1000 + ${_cs#0} * 10))
}

hb_line() { keel vm show $V | sed -n 's/^Heartbeat: *//p'; }

# wait_hb TEXT SECONDS WHAT: the Heartbeat line contains TEXT within SECONDS; HB_MS its time.
wait_hb() {
	_t0=$(_now_ms)
	until hb_line | grep -q "$1"; do
		[ $(($(_now_ms) - _t0)) -le $(($2 * 1000)) ] ||
			fail "$3: the heartbeat is '$(hb_line)', without '$1', after $2 s"
		sleep 0.2
	done
	HB_MS=$(($(_now_ms) - _t0))
}

# x CMD...: keel vm exec, must succeed; X_OUT its output.
x() {
	X_OUT=$(keel vm exec $V --timeout 120 -- "$@" 2>/tmp/ah-x.err) ||
		fail "keel vm exec $V -- $*: status $? ($(cat /tmp/ah-x.err))"
}

keel vm start $V || fail "keel vm start failed: $(keel vm log $V | tail -3)"
keel_console_wait $V "^$GUEST_MARKER\$" "$GUEST_BOOT_TIMEOUT"
wait_hb '^OK' 60 "after the boot"
x sh -c 'mke2fs /dev/vda >/dev/null 2>&1 && mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo mounted'
[ "$X_OUT" = mounted ] || fail "mke2fs and mount -t ext4 of /dev/vda in the guest: $X_OUT"
sock=$(keel vm show $V --json | sed -n 's/^ *"agent_socket": "\(.*\)",*$/\1/p')
[ -S "$sock" ] || fail "the VM's agent socket '$sock' is not a socket"

# One connection to the agent: hello, then freeze (deadline 60 s); thaw comes later. The
# replies are in /tmp/ah-agent.out. Frames: length, type, flags, id; attributes tag, len, value
# (little-endian, docs/agent-protocol.md).
rm -f /tmp/ah-fifo /tmp/ah-agent.out
mkfifo /tmp/ah-fifo
lab-vsock unix-connect "$sock" 52 </tmp/ah-fifo >/tmp/ah-agent.out 2>/tmp/ah-agent.err &
ap=$!
exec 7>/tmp/ah-fifo
# hello: 28 bytes, type 1, id 1, version-min (1) = 1, version-max (2) = 1
printf '\034\0\0\0\001\0\0\0\001\0\0\0\001\0\004\0\001\0\0\0\002\0\004\0\001\0\0\0' >&7
# freeze: 20 bytes, type 17, id 2, timeout-ms (18) = 60000
printf '\024\0\0\0\021\0\0\0\002\0\0\0\022\0\004\0\140\352\0\0' >&7
hex() { od -An -v -tx1 /tmp/ah-agent.out | tr -s ' \n' '  '; }
# reply_count TYPE ID: the count attribute (31) of the reply (flags REPLY only) to TYPE, ID.
reply_count() {
	_c=$(hex | sed -n "s/.* $1 00 01 00 $2 00 00 00 1f 00 04 00 \(..\) \(..\) .*/\2\1/p")
	[ -n "$_c" ] && echo $((0x$_c))
}
t0=$(_now_ms)
until [ -n "$(reply_count 11 02)" ]; do
	hex | grep -q ' 11 00 03 00 02 00 00 00' &&
		fail "the agent refused the freeze: $(hex)"
	[ $(($(_now_ms) - t0)) -le 30000 ] ||
		fail "no freeze reply within 30 s: $(hex) $(cat /tmp/ah-agent.err)"
	sleep 0.2
done
nfrozen=$(reply_count 11 02)
[ "$nfrozen" -ge 1 ] || fail "the freeze froze $nfrozen file systems"
# a path attribute (25) "/mnt" (busybox's tr cannot take the other bytes out)
hex | grep -q ' 19 00 05 00 2f 6d 6e 74 00 ' || fail "the freeze reply does not name /mnt: $(hex)"
echo "lab: agent: freeze: $nfrozen file system(s) frozen in $(($(_now_ms) - t0)) ms (/mnt among them)"

# A writer in the guest, writing and fsyncing a file on the frozen ext4: it must not finish.
keel vm exec $V --timeout 120 -- sh -c \
	'dd if=/dev/urandom of=/mnt/frozen bs=4096 count=4 conv=fsync 2>/dev/null && echo written' \
	>/tmp/ah-w.out 2>&1 &
wp=$!
sleep 3
alive $wp || fail "the write on the frozen file system finished while frozen: $(cat /tmp/ah-w.out)"
[ ! -s /tmp/ah-w.out ] || fail "the writer printed while frozen: $(cat /tmp/ah-w.out)"
x sh -c 'ps -o pid,stat,comm | grep " dd$"; true'
echo "lab: agent: 3 s after it started, the guest's writer still waits: $X_OUT"

# thaw: 12 bytes, type 18, id 3.
t0=$(_now_ms)
printf '\014\0\0\0\022\0\0\0\003\0\0\0' >&7
while alive $wp; do
	[ $(($(_now_ms) - t0)) -le 60000 ] || fail "the writer did not finish within 60 s of the thaw"
	sleep 0.1
done
w_ms=$(($(_now_ms) - t0))
wait $wp || fail "the writer failed after the thaw: $(cat /tmp/ah-w.out)"
[ "$(cat /tmp/ah-w.out)" = written ] || fail "the writer after the thaw: $(cat /tmp/ah-w.out)"
until [ -n "$(reply_count 12 03)" ]; do
	[ $(($(_now_ms) - t0)) -le 30000 ] || fail "no thaw reply within 30 s: $(hex)"
	sleep 0.1
done
nthawed=$(reply_count 12 03)
[ "$nthawed" = "$nfrozen" ] || fail "the thaw thawed $nthawed file systems, the freeze froze $nfrozen"
exec 7>&-
wait $ap
x stat -c %s /mnt/frozen
[ "$X_OUT" = 16384 ] || fail "the file written across the thaw has $X_OUT bytes, not 16384"
echo "lab: agent: thaw of $nthawed file system(s): the writer finished $w_ms ms later, its 16384 bytes on the disk"

# The guest crashes (typed on the console: the agent's own exec would die with it): its panic
# loop spins the vCPU with the local APIC off, the agent is silent: "guest hung".
pid=$(keel vm show $V --json | sed -n 's/^ *"pid": \([0-9]*\).*/\1/p' | head -n 1)
[ -n "$pid" ] || fail "no worker pid in keel vm show --json"
vcpu_ns() { # the worker's vCPU threads' CPU time (schedstat), in ns
	_s=0
	for _t in "/proc/$pid/task/"*; do
		case "$(cat "$_t/comm" 2>/dev/null)" in vcpu*) ;; *) continue ;; esac
		read -r _n _ <"$_t/schedstat" && _s=$((_s + _n))
	done
	echo $_s
}
wait_hb '^OK' 30 "before the crash"
printf 'echo c >/proc/sysrq-trigger\n' | timeout 30 keel console $V --linger 0 >/dev/null 2>&1
t0=$(_now_ms)
ns0=$(vcpu_ns)
wait_hb 'guest hung' 20 "after the guest crashed"
ns1=$(vcpu_ns)
hung_ms=$HB_MS
sleep 2
ns2=$(vcpu_ns)
hb_line | grep -q '^Lost communication (.*guest hung' ||
	fail "the crashed guest's heartbeat is '$(hb_line)', not Lost communication with guest hung"
[ "$(vm_state $V)" = Running ] || fail "$V is $(vm_state $V) after the crash, not Running"
# The vCPU spins (its thread uses CPU) while keeld says hung: a floor, not a timing.
[ $(((ns2 - ns1) / 1000000)) -ge 500 ] ||
	fail "the crashed guest's vCPU used only $(((ns2 - ns1) / 1000000)) ms of CPU in 2 s"
echo "lab: agent: crashed guest: '$(hb_line)' $hung_ms ms after the crash was typed; its vCPU thread used $(((ns1 - ns0) / 1000000)) ms of CPU until then and $(((ns2 - ns1) / 1000000)) ms in the 2 s after"
grep 'hung guest is told\|told by its vCPUs' "$KD/keeld.log" | tail -n 1
keel vm turn-off $V || fail "keel vm turn-off of the crashed guest failed"
kill "$(cat "$KD/pid")"
