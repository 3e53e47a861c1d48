#!/usr/bin/env bash
# Differencing chains three deep, writes at block and sector edges, merges: every state is
# compared with a raw reference that received the same writes.
. "$(dirname "$0")/lib.sh"
cd "$T"
mkdir -p sub
for lsec in 512 4096; do
	: > ref.raw && truncate -s 96M ref.raw
	"$KEEL" disk create base-$lsec.vhdx --size 96M --block-size 4M --sector-size $lsec
	"$DISKTOOL" ops base-$lsec.vhdx ref.raw 40 1
	# Three levels, mixed block sizes, a child in another directory (relative ../ path).
	"$KEEL" disk create c1-$lsec.avhdx --parent base-$lsec.vhdx --block-size 1M
	"$DISKTOOL" ops c1-$lsec.avhdx ref.raw 60 2
	"$KEEL" disk create sub/c2-$lsec.vhdx --type differencing --parent c1-$lsec.avhdx --block-size 32M
	"$DISKTOOL" ops sub/c2-$lsec.vhdx ref.raw 60 3
	"$KEEL" disk create c3-$lsec.vhdx --parent sub/c2-$lsec.vhdx --block-size 2M
	"$DISKTOOL" ops c3-$lsec.vhdx ref.raw 60 4
	"$DISKTOOL" write c3-$lsec.vhdx $((4 << 20 - 512)) 1024 5    # across a block edge
	"$DISKTOOL" write ref.raw $((4 << 20 - 512)) 1024 5
	if [ $lsec = 512 ]; then
		"$DISKTOOL" write c3-$lsec.vhdx 1536 512 6   # one sector inside a new block
		"$DISKTOOL" write ref.raw 1536 512 6
	fi
	"$DISKTOOL" dump c3-$lsec.vhdx > got.raw
	same ref.raw got.raw "chain of 3 children ($lsec-byte sectors) reads as the reference"
	kcheck c3-$lsec.vhdx
	"$KEEL" disk info c3-$lsec.vhdx | grep -q "parent: *sub/c2-$lsec.vhdx$" &&
		pass "info shows the parent" || fail "info parent: $("$KEEL" disk info c3-$lsec.vhdx)"
	# A moved chain still opens through the relative paths.
	mkdir -p moved && cp -r base-$lsec.vhdx c1-$lsec.avhdx c3-$lsec.vhdx moved/ &&
		mkdir -p moved/sub && cp sub/c2-$lsec.vhdx moved/sub/
	"$DISKTOOL" dump moved/c3-$lsec.vhdx > got.raw
	same ref.raw got.raw "moved chain resolves parents by relative path"
	rm -rf moved
	# Merge from the top down; the content stays the same at every step.
	"$KEEL" disk merge c3-$lsec.vhdx >/dev/null
	[ ! -e c3-$lsec.vhdx ] && pass "merge removes the child" || fail "child left after merge"
	"$DISKTOOL" dump sub/c2-$lsec.vhdx > got.raw
	same ref.raw got.raw "after merging c3 into c2"
	"$KEEL" disk merge sub/c2-$lsec.vhdx >/dev/null
	"$KEEL" disk merge c1-$lsec.avhdx >/dev/null
	"$DISKTOOL" dump base-$lsec.vhdx > got.raw
	same ref.raw got.raw "after merging the whole chain into the base"
	[ $lsec = 512 ] && qcheck base-$lsec.vhdx   # QEMU reads only 512-byte-sector VHDX
	kcheck base-$lsec.vhdx
done
# Parent linkage: a parent changed after the child was made is refused.
"$KEEL" disk create p.vhdx --size 8M
"$KEEL" disk create ch.vhdx --parent p.vhdx
"$DISKTOOL" write p.vhdx 0 4096 1
if out=$("$DISKTOOL" dump ch.vhdx 2>&1 >/dev/null); then fail "stale parent accepted"
else grep -q "modified after" <<<"$out" && pass "stale parent refused: $out" || fail "message: $out"; fi
"$KEEL" disk check ch.vhdx >/dev/null 2>&1 && fail "check passes a stale chain" || pass "check fails a stale chain"
# Discard in a child gives zeros, never the parent's data.
"$KEEL" disk create p2.vhdx --size 8M --block-size 1M
"$DISKTOOL" write p2.vhdx 0 $((8 << 20)) 7
"$KEEL" disk create ch2.vhdx --parent p2.vhdx --block-size 1M
"$DISKTOOL" write ch2.vhdx $((1 << 20)) $((1 << 20)) 8
"$DISKTOOL" discard ch2.vhdx $((1 << 20)) $((1 << 20))
"$DISKTOOL" dump ch2.vhdx > got.raw
dd if=got.raw bs=1M skip=1 count=1 status=none | cmp -s - <(head -c 1M /dev/zero) &&
	pass "discarded child block reads zeros" || fail "discarded child block"
finish
