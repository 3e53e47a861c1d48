#!/usr/bin/env bash
# Interop with qemu-img, an independent VHDX implementation, in both directions.
. "$(dirname "$0")/lib.sh"
cd "$T"

# 1. Images qemu-img creates and fills read back byte-identical through keel.
for sub in dynamic fixed; do
	for bs in 1M 8M 32M; do
		img=q-$sub-$bs.vhdx
		qemu-img create -q -f vhdx -o subformat=$sub,block_size=$bs "$img" 96M
		qemu-io -f vhdx -c "write -P 0x5a 0 64k" -c "write -P 0xa5 1020k 8k" \
			-c "write -P 0x11 33M 3M" -c "write -P 0x77 95M 1M" "$img" >/dev/null
		qemu-img convert -f vhdx -O raw "$img" ref.raw
		"$DISKTOOL" dump "$img" > got.raw
		same ref.raw got.raw "keel reads qemu-img $sub image, block size $bs"
		kcheck "$img"
	done
done
head -c 40M /dev/urandom > rnd.raw
truncate -s 64M rnd.raw
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=2M rnd.raw q-conv.vhdx
"$DISKTOOL" dump q-conv.vhdx > got.raw
same rnd.raw got.raw "keel reads an image qemu-img converted from raw"
"$KEEL" disk convert q-conv.vhdx k-from-q.raw
same rnd.raw k-from-q.raw "keel disk convert of a qemu-img image to raw"

# 2. Images keel creates and writes pass qemu-img check and convert back identical.
for args in "--block-size 1M" "--block-size 4M --sector-size 4096" "" "--type fixed --block-size 2M"; do
	name=k-$(echo "$args" | tr -d ' -').vhdx
	# shellcheck disable=SC2086
	"$KEEL" disk create "$name" --size 80M $args
	truncate -s 80M ref.raw && : > ref.raw && truncate -s 80M ref.raw
	"$DISKTOOL" ops "$name" ref.raw 60 ${#name}
	kcheck "$name"
	if [[ $args == *4096* ]]; then   # QEMU reads only 512-byte-sector VHDX
		"$DISKTOOL" dump "$name" > out.raw
		same ref.raw out.raw "keel reads back its image ($args)"
		continue
	fi
	qcheck "$name"
	qemu-img convert -f vhdx -O raw "$name" out.raw
	same ref.raw out.raw "qemu-img reads keel image ($args)"
done

# 3. keel convert: raw -> vhdx (dynamic and fixed) -> raw.
for type in dynamic fixed; do
	"$KEEL" disk convert rnd.raw k-$type.vhdx --type $type
	qcheck k-$type.vhdx
	qemu-img convert -f vhdx -O raw k-$type.vhdx out.raw
	same rnd.raw out.raw "keel convert raw to $type vhdx, read by qemu-img"
	"$KEEL" disk convert k-$type.vhdx back.raw --format raw
	same rnd.raw back.raw "keel convert $type vhdx back to raw"
	rm -f back.raw
done
info=$("$KEEL" disk info --json k-dynamic.vhdx)
grep -q '"type": *"dynamic"' <<<"$info" && grep -q '"virtual_size": *67108864' <<<"$info" &&
	pass "info --json" || fail "info --json: $info"

# 4. Resize: grow far enough to move the BAT, shrink back, refuse to cut data.
"$KEEL" disk create rs.vhdx --size 64M --block-size 1M
: > ref.raw && truncate -s 64M ref.raw
"$DISKTOOL" ops rs.vhdx ref.raw 30 5
"$KEEL" disk resize rs.vhdx --size 300G
qcheck rs.vhdx
kcheck rs.vhdx
# The top-level "virtual-size" (QEMU 8 and later also list the file node's size under "children").
[ "$(qemu-img info --output=json rs.vhdx | python3 -c 'import json, sys; print(json.load(sys.stdin)["virtual-size"])')" = 322122547200 ] &&
	pass "grown to 300G (BAT moved)" || fail "virtual size after grow"
"$DISKTOOL" write rs.vhdx $((200 << 30)) 1048576 9
"$KEEL" disk resize rs.vhdx --size 64M 2>/dev/null && fail "shrink over data was allowed" ||
	pass "shrink over data refused"
"$DISKTOOL" discard rs.vhdx $((200 << 30)) 1048576
"$KEEL" disk resize rs.vhdx --size 64M && pass "shrink back to 64M" || fail "shrink back to 64M"
qcheck rs.vhdx
qemu-img convert -f vhdx -O raw rs.vhdx out.raw
same ref.raw out.raw "data intact after grow and shrink"
"$KEEL" disk create rf.vhdx --size 16M --type fixed --block-size 1M
"$KEEL" disk resize rf.vhdx --size 40M
qcheck rf.vhdx
[ "$("$KEEL" disk info --json rf.vhdx | grep -o '"blocks_allocated": *[0-9]*' | grep -o '[0-9]*$')" = 40 ] &&
	pass "fixed disk grown with its blocks allocated" || fail "fixed grow allocation"

# 5. Compact: zero and discarded blocks are given back, data stays.
"$KEEL" disk create cp.vhdx --size 64M --block-size 1M
: > ref.raw && truncate -s 64M ref.raw
"$DISKTOOL" ops cp.vhdx ref.raw 40 11
dd if=/dev/zero of=zero.bin bs=1M count=8 status=none
qemu-io -f vhdx -c "write -z 8M 8M" cp.vhdx >/dev/null  # blocks written as zeros by a guest
"$DISKTOOL" write cp.vhdx $((40 << 20)) $((4 << 20)) 3
"$DISKTOOL" discard cp.vhdx $((40 << 20)) $((4 << 20))
dd if=/dev/zero of=ref.raw bs=1M seek=8 count=8 conv=notrunc status=none
dd if=/dev/zero of=ref.raw bs=1M seek=40 count=4 conv=notrunc status=none
before=$(stat -c %s cp.vhdx)
"$KEEL" disk compact cp.vhdx
after=$(stat -c %s cp.vhdx)
[ "$after" -lt "$before" ] && pass "compact: $before -> $after bytes" || fail "compact freed nothing ($before -> $after)"
qcheck cp.vhdx
kcheck cp.vhdx
qemu-img convert -f vhdx -O raw cp.vhdx out.raw
same ref.raw out.raw "data intact after compact"

# 6. Concurrent writers and readers on one handle.
"$KEEL" disk create th.vhdx --size 64M --block-size 1M
"$DISKTOOL" threads th.vhdx 4 && pass "4 threads write and read back" || fail "threads"
qcheck th.vhdx

# 7. The log: a writer that exits without closing leaves a log entry for its last BAT
#    update. Wipe the BAT sector in place so only the log can bring it back: keel (in
#    memory, then writable) and qemu-img check -r all must both replay it.
"$KEEL" disk create lg.vhdx --size 16M --block-size 1M
"$DISKTOOL" logpending lg.vhdx $((3 << 20))
"$DISKTOOL" dump lg.vhdx > want.raw
dd if=/dev/zero of=lg.vhdx bs=4096 seek=$((3 << 8)) count=1 conv=notrunc status=none
cp lg.vhdx lg-q.vhdx
"$DISKTOOL" dump lg.vhdx > got.raw 2>/dev/null
same want.raw got.raw "keel replays the log in memory on a read-only open"
"$KEEL" disk info lg.vhdx | grep -q "log pending replay" && pass "info reports the pending log" || fail "info: no pending log"
"$DISKTOOL" write lg.vhdx 0 512 1 && "$DISKTOOL" write want.raw 0 512 1
"$KEEL" disk info lg.vhdx | grep -q "log pending" && fail "log still pending after a writable open" || pass "writable open applied the log"
"$DISKTOOL" dump lg.vhdx > got.raw
same want.raw got.raw "data after keel's replay"
qcheck lg.vhdx
qemu-img check -q -f vhdx -r all lg-q.vhdx >/dev/null 2>&1 || true
qemu-img convert -f vhdx -O raw lg-q.vhdx got.raw
"$DISKTOOL" write got.raw 0 512 1
same want.raw got.raw "qemu-img replays keel's log entry"

# 6. A log holding a sequence of entries (each Tail naming the previous one): a writer that
#    allocates and flushes many times is killed; every in-place BAT sector is wiped, so
#    only the log's sequence can bring the blocks back. qemu-img's replay must give what
#    keel's gives, and both every acknowledged write.
"$KEEL" disk create sq.vhdx --size 256M --block-size 1M
: > sq.journal
"$DISKTOOL" crash sq.vhdx sq.journal 7919 &
pid=$!
sleep 0.5
kill -9 $pid
wait $pid 2>/dev/null || true
tails=$(python3 -c '
import struct, sys
log = open(sys.argv[1], "rb").read()[1 << 20:2 << 20]
print(sum(1 for i in range(0, len(log), 4096) if log[i:i + 4] == b"loge"
          and struct.unpack("<I", log[i + 12:i + 16])[0] != i))' sq.vhdx)
[ "$tails" -gt 0 ] && pass "the log holds $tails entries whose Tail names an earlier one" ||
	fail "no log entry has a Tail before itself"
dd if=/dev/zero of=sq.vhdx bs=4096 seek=$((3 << 8)) count=1 conv=notrunc status=none
cp --sparse=always sq.vhdx sq-q.vhdx
"$DISKTOOL" dump sq.vhdx > want.raw
qemu-img check -q -f vhdx -r all sq-q.vhdx >/dev/null 2>&1 || true
qemu-img convert -f vhdx -O raw sq-q.vhdx got.raw
same want.raw got.raw "qemu-img replays keel's sequence of log entries as keel does"
if out=$("$DISKTOOL" verify sq-q.vhdx sq.journal 2>&1); then pass "after qemu-img's replay: $out"
else fail "after qemu-img's replay: $out"; fi
finish
