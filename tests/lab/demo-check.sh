#!/usr/bin/env bash
# Checks `make demo` (scripts/demo.sh) without a person at the keyboard: its stdin and stdout
# are pipes. Like a user it waits for Debian 12's login prompt on `keel console`, logs in as
# root with the password the demo printed, types a command and checks its answer, types
# `poweroff` and checks that the VM powered off and the demo returned with status 0. Prints
# one line:
#   lab: PASS demo (Ns; login prompt after Ms)   or   lab: FAIL demo: REASON
# The demo's whole output goes to build/lab/demo.log.
#   demo-check.sh [DEMO [LOG]]   check DEMO (default scripts/demo.sh), its output in LOG
#                                (tests/lab/demo-check-test.sh checks the cleanup with a fake)
# The demo runs in a process group of its own, which the check ends on every way out (a
# failed check, Ctrl-C, SIGTERM): the lab's QEMU, an image build or keel console left behind
# would keep running, and under flock keep the lab lock.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
demo=${1:-$top/scripts/demo.sh}
out=${2:-$top/build/lab/demo.log}
dir=$(mktemp -d)
pid=
# stop_demo: SIGTERM to the demo's process group (demo.sh's own exit trap then stops keeld and
# its VM), SIGKILL to what is left after 30 s.
# shellcheck disable=SC2317 # called by the exit trap
stop_demo() {
	[ -n "$pid" ] || return 0
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	for _ in $(seq 60); do
		kill -0 -- "-$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	kill -KILL -- "-$pid" 2>/dev/null
}
trap 'stop_demo; rm -rf "$dir"' EXIT
mkfifo "$dir/in"
start=$(date +%s)
set -m # the demo's own process group, whose id is its pid
"$demo" <"$dir/in" >"$out" 2>&1 &
pid=$!
set +m
exec 3>"$dir/in"

result() {
	if [ "$1" = PASS ]; then
		echo "lab: PASS demo ($(($(date +%s) - start))s; login prompt after ${login}s)"
		exit 0
	fi
	echo "lab: FAIL demo: $2; see ${out#"$top"/}"
	exit 1 # the exit trap stops the demo's process group
}

# wait_for ERE SECONDS: a line of the demo's output (carriage returns removed) matches ERE.
wait_for() {
	local end=$(($(date +%s) + $2))
	while ! tr -d '\r' <"$out" | grep -qE "$1"; do
		kill -0 "$pid" 2>/dev/null || result FAIL "the demo ended before printing '$1'"
		[ "$(date +%s)" -lt "$end" ] || result FAIL "no line matching '$1' within $2s"
		sleep 0.5
	done
}

wait_for '^demo: this host has' 30
# The image is built when the cache lacks it (minutes, once per host), then the lab boots.
wait_for '^demo: \$ keel vm create debian12 --generation 2 ' 900
wait_for '^demo: log in as root, password keel' 120
wait_for '^demo: leave with' 10
# OVMF, GRUB, Linux and systemd to the serial getty: 3-5 minutes in the lab.
# Prompts are not anchored at the line's end: the image keeps the kernel's informational
# messages off the console once systemd-sysctl has run (kernel.printk 4 4 1 7), but an error
# the guest's kernel prints at the login still lands on the prompt's line (89-fw-debian12
# asserts the clean prompt; the demo only needs to log in).
wait_for 'login: ' 600
login=$(($(date +%s) - start))
sleep 1
echo root >&3
wait_for 'Password: ' 60
echo keel >&3
wait_for 'root@keel-debian12:~# ' 60
# The answer differs from the echo of the typed line (which shows $((6*7))).
# shellcheck disable=SC2016 # expanded by the guest's shell, not here
echo 'echo "keel demo: $(uname -s) $((6*7))"' >&3
wait_for 'keel demo: Linux 42' 60
echo poweroff >&3
end=$(($(date +%s) + 180))
while kill -0 "$pid" 2>/dev/null; do
	[ "$(date +%s)" -lt "$end" ] || result FAIL "the demo did not return within 180s of poweroff"
	sleep 0.5
done
wait "$pid"
rc=$?
[ "$rc" = 0 ] || result FAIL "the demo returned status $rc after poweroff"
# A guest crash fails the demo as it fails a scenario (docs/lab.md).
crash=$(tr -d '\r' <"$out" | grep -m 1 -E 'VM crashed|KVM internal error|Kernel panic - not syncing')
[ -z "$crash" ] || result FAIL "a guest crashed: $crash"
tr -d '\r' <"$out" | grep -q "^demo: VM 'debian12' is Off (keel console exited with status 0)$" ||
	result FAIL "the VM was not Off with keel console's status 0 after poweroff"
if ! grep -qw 'svm\|vmx' /proc/cpuinfo; then
	tr -d '\r' <"$out" | grep -q '^lab: the demo exited with status 0$' ||
		result FAIL "inside the lab the demo did not exit with status 0"
fi
result PASS
