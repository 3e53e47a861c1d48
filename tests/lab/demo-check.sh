#!/usr/bin/env bash
# Checks `make demo` (scripts/demo.sh) without a person at the keyboard: its stdin and stdout
# are pipes; it waits for the guest's init marker, types `uname -r` and checks the answer,
# types `poweroff -f` and checks that the demo returns with status 0. Prints one line:
#   lab: PASS demo (Ns)   or   lab: FAIL demo: REASON
# The demo's whole output goes to build/lab/demo.log.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/lab/demo.log
kver=$(cat "$top/.cache/kernel/version")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkfifo "$dir/in"
start=$(date +%s)
"$top/scripts/demo.sh" <"$dir/in" >"$out" 2>&1 &
pid=$!
exec 3>"$dir/in"

result() {
	if [ "$1" = PASS ]; then
		echo "lab: PASS demo ($(($(date +%s) - start))s)"
		exit 0
	fi
	echo "lab: FAIL demo: $2; see ${out#"$top"/}"
	kill "$pid" 2>/dev/null
	exit 1
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
wait_for '^demo: leave with' 60
wait_for '^keel-guest: init ready$' 240
sleep 1
echo 'uname -r' >&3
wait_for "^$kver\$" 30
echo 'poweroff -f' >&3
end=$(($(date +%s) + 60))
while kill -0 "$pid" 2>/dev/null; do
	[ "$(date +%s)" -lt "$end" ] || result FAIL "the demo did not return within 60s of poweroff -f"
	sleep 0.5
done
wait "$pid"
rc=$?
[ "$rc" = 0 ] || result FAIL "the demo returned status $rc after poweroff -f"
# A guest crash fails the demo as it fails a scenario (docs/lab.md).
crash=$(tr -d '\r' <"$out" | grep -m 1 -E 'VM crashed|KVM internal error|Kernel panic - not syncing')
[ -z "$crash" ] || result FAIL "a guest crashed: $crash"
if ! grep -qw 'svm\|vmx' /proc/cpuinfo; then
	tr -d '\r' <"$out" | grep -q '^lab: the VMM exited with status 0$' ||
		result FAIL "inside the lab the VMM did not exit with status 0"
fi
result PASS
