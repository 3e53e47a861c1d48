#!/usr/bin/env bash
# Crash safety: a writer is killed with SIGKILL at random moments, many times, on the same
# image. After each kill: keel check (log replayed in memory), a read-only scan that every
# sector is zeros or data a write put at that offset (no BAT entry exposing garbage: blocks
# allocated since the last flush are logged only at the next flush), then a writable reopen
# that verifies every write a completed flush acknowledged, then keel and qemu-img check.
. "$(dirname "$0")/lib.sh"
cd "$T"
ROUNDS=${CRASH_ROUNDS:-25}
# check_round WHAT: the image after a kill is consistent, holds no garbage (and, in the
# differencing disk, zeros nowhere over its parent's data), and every acknowledged write.
check_round() {
	local out
	if ! out=$("$KEEL" disk check img.vhdx 2>&1); then fail "$1: keel check after kill: $out"; return 1; fi
	if ! out=$("$DISKTOOL" scan img.vhdx "$data_end" 2>&1); then fail "$1: $out"; return 1; fi
	if ! out=$("$DISKTOOL" verify img.vhdx journal 2>&1); then fail "$1: $out"; return 1; fi
	if ! out=$("$KEEL" disk check img.vhdx 2>&1); then fail "$1: keel check after reopen: $out"; return 1; fi
	if [ $kind = dynamic ] && ! out=$(qemu-img check -f vhdx img.vhdx 2>&1); then
		fail "$1: qemu-img check: $out"; return 1
	fi
}
for kind in dynamic differencing; do
	data_end=0
	if [ $kind = dynamic ]; then
		"$KEEL" disk create img.vhdx --size 1G --block-size 1M
	else
		data_end=$((64 << 20))
		"$KEEL" disk create base.vhdx --size 1G --block-size 1M
		"$DISKTOOL" write base.vhdx 0 $((64 << 20)) 99
		rm -f img.vhdx
		"$KEEL" disk create img.vhdx --parent base.vhdx --block-size 2M
	fi
	: > journal
	for i in $(seq 1 "$ROUNDS"); do
		"$DISKTOOL" crash img.vhdx journal $((i * 7919)) &
		pid=$!
		sleep "0.$(printf '%02d' $((RANDOM % 20 + 2)))"
		kill -9 $pid
		wait $pid 2>/dev/null || true
		check_round "$kind round $i" || break
	done
	pass "$kind: $ROUNDS kills, $(wc -l < journal) acknowledged writes all present, checks clean"
	# Kills at chosen points: right after N writes (staged blocks and sector bitmap bits not
	# yet logged) and right after their flush (logged: they must all be there).
	for i in $(seq 1 10); do
		when=$([ $((i % 2)) = 0 ] && echo flush || echo noflush)
		"$DISKTOOL" crash img.vhdx journal $((i * 104729)) $((i * 5 + 3)) $when && {
			fail "$kind kill $i: the writer did not stop"; break
		}
		check_round "$kind kill $i ($when)" || break
	done
	pass "$kind: 10 kills between writes and their flush and after it, checks clean"
done
finish
