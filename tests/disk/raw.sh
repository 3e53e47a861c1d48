#!/usr/bin/env bash
# Raw disks: disk_zero() makes a range read as zeros without changing the size, on a file
# and on a block device (a loop device), and a block device's size is the device's (its
# st_size is 0).
. "$(dirname "$0")/lib.sh"
cd "$T"
MIB=$((1 << 20))

# zeroed DISK OFF LEN: the range reads as zeros, the bytes around it as the pattern in ref.
zeroed() {
	local size
	"$DISKTOOL" dump "$1" > got
	size=$(stat -c %s ref)
	cmp -s -n "$2" got ref || { fail "$1: bytes before the zeroed range changed"; return; }
	if cmp -s -n "$3" -i "$2:0" got /dev/zero; then
		pass "$1: $3 bytes at $2 read as zeros"
	else
		fail "$1: the zeroed range does not read as zeros"
	fi
	cmp -s -i $(($2 + $3)) got ref || fail "$1: bytes after the zeroed range changed"
	[ "$(stat -c %s got)" = "$size" ] || fail "$1: the disk now reads as $(stat -c %s got) bytes"
}

truncate -s $((8 * MIB)) disk.raw
"$DISKTOOL" write disk.raw 0 $((8 * MIB)) 7
"$DISKTOOL" dump disk.raw > ref
"$DISKTOOL" zero disk.raw $MIB $((2 * MIB)) || fail "zero on a raw file: exit $?"
zeroed disk.raw $MIB $((2 * MIB))
[ "$(stat -c %s disk.raw)" = $((8 * MIB)) ] && pass "the file keeps its size" ||
	fail "zeroing changed the file's size to $(stat -c %s disk.raw)"
if "$DISKTOOL" zero disk.raw $((7 * MIB)) $((2 * MIB)) 2>/dev/null; then
	fail "zeroing beyond the end of the disk succeeded"
else
	pass "zeroing beyond the end is refused"
fi

# A loop device stands in for a disk partition or LVM volume given to a VM.
if ! loop=$(losetup -f --show disk.raw 2>/dev/null); then
	echo "SKIP: no loop device (losetup -f failed): the block-device half is not tested"
	exit 77
fi
trap 'losetup -d "$loop"; rm -rf "$T"' EXIT
size=$("$KEEL" disk info "$loop" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual_size"])')
[ "$size" = $((8 * MIB)) ] && pass "a block device's size is the device's ($size)" ||
	fail "block device $loop: size $size, expected $((8 * MIB))"
"$DISKTOOL" write "$loop" 0 $((8 * MIB)) 9
"$DISKTOOL" dump "$loop" > ref
"$DISKTOOL" zero "$loop" $((4 * MIB)) $MIB || fail "zero on a block device: exit $?"
zeroed "$loop" $((4 * MIB)) $MIB
finish
