#!/usr/bin/env bash
# Hostile files: damaged headers, region tables, metadata, BAT and log give a clear error
# and a non-zero exit, never a crash (the test build runs under ASan and UBSan).
. "$(dirname "$0")/lib.sh"
cd "$T"
"$KEEL" disk create good.vhdx --size 64M --block-size 1M
"$DISKTOOL" write good.vhdx 0 $((3 << 20)) 1
poke() { # poke FILE OFFSET BYTES-HEX
	printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none
}
expect_error() { # expect_error NAME PATTERN [readable]
	local out rc=0
	out=$("$KEEL" disk check "$1" 2>&1) || rc=$?
	if [ $rc -eq 0 ] || [ $rc -gt 2 ]; then fail "$1: exit $rc ($out)"; return; fi
	if grep -qi -- "$2" <<<"$out"; then pass "$1: $(echo "$out" | head -n1)"
	else fail "$1: message lacks '$2': $out"; fi
	if [ -z "${3:-}" ]; then
		"$DISKTOOL" dump "$1" > /dev/null 2>&1 && fail "$1: opened for reading" || true
	fi
}
cp good.vhdx h1.vhdx; poke h1.vhdx 0x10008 ff          # header 1 damaged: header 2 is used
"$KEEL" disk check h1.vhdx >/dev/null && pass "one damaged header is tolerated" || fail "h1"
cp good.vhdx h2.vhdx; poke h2.vhdx 0x10008 ff; poke h2.vhdx 0x20008 ff
expect_error h2.vhdx "both VHDX headers are invalid"
cp good.vhdx id.vhdx; poke id.vhdx 0 00
expect_error id.vhdx "not a VHDX file" readable   # it is a raw file now
cp good.vhdx rt.vhdx; poke rt.vhdx 0x30020 ff; poke rt.vhdx 0x40020 ff
expect_error rt.vhdx "region table"
cp good.vhdx md.vhdx; poke md.vhdx 0x200000 00
expect_error md.vhdx "metadata"
cp good.vhdx bs.vhdx; poke bs.vhdx $((0x200000 + 0x10000)) 00000300   # block size 3 MiB
expect_error bs.vhdx "block size"
cp good.vhdx bat.vhdx; poke bat.vhdx 0x300000 0600f0ff0f000000     # block far past EOF
expect_error bat.vhdx "beyond the end"
cp good.vhdx bat2.vhdx; poke bat2.vhdx 0x300000 0600100000000000   # block inside the log
expect_error bat2.vhdx "inside the VHDX metadata"
cp good.vhdx bat3.vhdx; poke bat3.vhdx 0x300008 0600400000000000   # two blocks at one offset
expect_error bat3.vhdx "overlaps" readable
cp good.vhdx tr.vhdx; truncate -s 2M tr.vhdx
expect_error tr.vhdx "file"
head -c 300000 /dev/urandom > junk.vhdx; printf 'vhdxfile' | dd of=junk.vhdx conv=notrunc status=none
expect_error junk.vhdx "VHDX"
# Random damage anywhere in the first 4 MiB: never a crash.
for i in $(seq 1 40); do
	cp good.vhdx r.vhdx
	poke r.vhdx $((RANDOM * 128 % (4 << 20))) "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	rc=0; "$KEEL" disk check r.vhdx >/dev/null 2>&1 || rc=$?
	"$DISKTOOL" dump r.vhdx >/dev/null 2>&1 || true
	[ $rc -le 2 ] || fail "random damage $i: exit code $rc (crash?)"
done
pass "40 randomly damaged files: no crash"
finish
