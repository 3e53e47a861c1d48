#!/usr/bin/env bash
# Makes the seed corpus of fuzz-vhdx (tests/fuzz/seeds/fuzz-vhdx) from real files: keel's
# dynamic, fixed, differencing, 4K-sector and log-pending images and qemu-img's. Each seed
# is the file's non-zero 512-byte runs as [u32 offset][u16 length][bytes] records.
# usage: make-fuzz-seeds.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: make-fuzz-seeds.sh BUILD_DIR}" && pwd)
out=$(cd "$(dirname "$0")/../fuzz" && pwd)/seeds/fuzz-vhdx
K=$build/src/cli/keel D=$build/tests/disk/disktool
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cd "$t"
$K disk create dyn.vhdx --size 16M --block-size 1M && $D write dyn.vhdx 1536 4096 1 && $D write dyn.vhdx $((5 << 20)) 512 2
$K disk create fix.vhdx --size 4M --type fixed --block-size 1M
$K disk create s4k.vhdx --size 8M --sector-size 4096 --block-size 2M && $D write s4k.vhdx 8192 4096 3
$K disk create base.vhdx --size 8M --block-size 1M && $D write base.vhdx 0 8192 4
$K disk create diff.vhdx --parent base.vhdx --block-size 1M && $D write diff.vhdx 1024 1024 5 && $D write diff.vhdx $((2 << 20)) 65536 6
$K disk create log.vhdx --size 16M --block-size 1M
$D write log.vhdx 0 4096 7 && $D logpending log.vhdx $((3 << 20))
qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M qemu.vhdx 8M
qemu-io -f vhdx -c "write -P 0x33 4k 4k" qemu.vhdx >/dev/null
mkdir -p "$out"
for f in dyn fix s4k diff log qemu; do
	python3 - "$f.vhdx" "$out/$f" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()[:64 << 20]
out = bytearray()
i = 0
while i < len(data):
    s = data[i:i + 512]
    if any(s):
        j = i
        while j < len(data) and any(data[j:j + 512]) and j - i < 65024:
            j += 512
        out += struct.pack('<IH', i, j - i) + data[i:j]
        i = j
    else:
        i += 512
open(sys.argv[2], 'wb').write(out)
PY
done
ls -la "$out"
