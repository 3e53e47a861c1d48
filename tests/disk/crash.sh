#!/usr/bin/env bash
# Crash safety: a writer is killed with SIGKILL at random moments, many times, on the same
# image. After each kill: keel check (log replayed in memory), a read-only scan that every
# sector is zeros or data a write put at that offset (no BAT entry exposing garbage: blocks
# allocated since the last flush are logged only at the next flush), then a writable reopen
# that verifies every write a completed flush acknowledged, then keel and qemu-img check.
. "$(dirname "$0")/lib.sh"
cd "$T"
ROUNDS=${CRASH_ROUNDS:-25}
for kind in dynamic differencing; do
	if [ $kind = dynamic ]; then
		"$KEEL" disk create img.vhdx --size 1G --block-size 1M
	else
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
		if ! out=$("$KEEL" disk check img.vhdx 2>&1); then fail "$kind round $i: keel check after kill: $out"; break; fi
		if ! out=$("$DISKTOOL" scan img.vhdx 2>&1); then fail "$kind round $i: $out"; break; fi
		if ! out=$("$DISKTOOL" verify img.vhdx journal 2>&1); then fail "$kind round $i: $out"; break; fi
		if ! out=$("$KEEL" disk check img.vhdx 2>&1); then fail "$kind round $i: keel check after reopen: $out"; break; fi
		if [ $kind = dynamic ] && ! out=$(qemu-img check -f vhdx img.vhdx 2>&1); then
			fail "$kind round $i: qemu-img check: $out"; break
		fi
	done
	pass "$kind: $ROUNDS kills, $(wc -l < journal) acknowledged writes all present, checks clean"
done
finish
