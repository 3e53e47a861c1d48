#!/usr/bin/env bash
# Host disk benchmark (issue 16, "VHDX at raw speed"), no lab: the same work on a raw file and
# on a fresh dynamic VHDX (keel disk create, default 32 MiB blocks), through keel's disk
# library (build/bench/disk/diskbench: disk_map, O_DIRECT on file extents, the library for
# the rest, the way keel-vmm's virtio-blk does it) and through QEMU's drivers (qemu-img bench
# and qemu-io, cache=none, aio=io_uring) on the same kind of files, at queue depth 1:
#   seqwrite  1 MiB sequential writes over the whole disk that allocate every block
#   rewrite   the same again (blocks allocated)
#   seqread   1 MiB sequential reads
#   randwrite 4 KiB random writes over allocated blocks
#   randread  4 KiB random reads
#   randalloc 4 KiB random writes on a fresh 64 GiB disk (most of them allocate a block)
#   diffalloc the same on a fresh differencing VHDX (keel disk create --parent) of an empty
#             64 GiB dynamic VHDX: the parent reads zeros, so each write allocates a fully
#             present block; raw is randalloc's fresh raw file. keel only: QEMU's VHDX
#             driver does not create differencing disks.
#   diffdata  the same over a base with 4 KiB of data in each of its 32 MiB blocks
#             (diskbench stridewrite): each write allocates a partially present block and
#             sets sector bitmap bits.
# Writes flush every BENCH_FLUSH (16) requests, as a guest's file system does, and at the end.
# Prints the median MiB/s per phase over BENCH_REPS (5) interleaved runs and the ratios
# VHDX/raw and keel/QEMU. Environment: BENCH_DIR (an O_DIRECT-capable directory; default
# /var/tmp/keel-bench-disk, since /tmp may be tmpfs), BENCH_MIB (disk size, 512), BENCH_RAND
# (random requests, 5000), BENCH_FLUSH, BENCH_REPS, BUILD (build directory, build).
# Results: docs/BENCHMARKS.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build}
dir=${BENCH_DIR:-/var/tmp/keel-bench-disk}
mib=${BENCH_MIB:-512}
nrand=${BENCH_RAND:-5000}
flush=${BENCH_FLUSH:-16}
reps=${BENCH_REPS:-5}
drv=$build/bench/disk/diskbench
keel=$build/src/cli/keel
for p in "$drv" "$keel"; do
	[ -x "$p" ] || { echo "bench/disk: $p does not exist; build first (ninja -C $build)" >&2; exit 1; }
done
for p in qemu-img qemu-io; do
	command -v $p >/dev/null || { echo "bench/disk: $p is missing (Debian: qemu-utils)" >&2; exit 1; }
done
mkdir -p "$dir"
fstype=$(stat -f -c %T "$dir")
if [ "$fstype" = tmpfs ]; then
	echo "bench/disk: $dir is on tmpfs, which has no O_DIRECT; set BENCH_DIR" >&2
	exit 1
fi
echo "bench/disk: $dir ($fstype), ${mib} MiB disks, $nrand random requests, flush every $flush writes, median of $reps"

script=$dir/qemu-io.script
fresh() { # fresh FORMAT SIZE [diff] (of $img; with diff, a VHDX is a differencing child)
	local base=${img%.vhdx}.base.vhdx
	rm -f "$img" "$base"
	if [ "$1" = raw ]; then
		truncate -s "$2" "$img"
	elif [ "${3:-}" = diff ] || [ "${3:-}" = diffdata ]; then
		"$keel" disk create "$base" --size "$2" >/dev/null
		if [ "$3" = diffdata ]; then
			"$drv" "$base" stridewrite $(($(numfmt --from=iec "$2") >> 25)) 0 >/dev/null
		fi
		"$keel" disk create "$img" --parent "$base" >/dev/null
	else
		"$keel" disk create "$img" --size "$2" >/dev/null
	fi
}
# Random offsets for qemu-io: the same sequence as diskbench's (xorshift64, 4 KiB slots).
rand_script() { # rand_script OP SIZE_BYTES
	python3 - "$1" "$2" "$nrand" "$flush" >"$script" <<'EOF'
import sys
op, size, n, fl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
m = (1 << 64) - 1
s = (1 * 2654435761 + 7) & m
slots = size // 4096
out = []
for i in range(n):
    s ^= (s << 13) & m; s ^= s >> 7; s ^= (s << 17) & m
    off = s % slots * 4096
    out.append(f"{op} -P {i & 0xff} {off} 4k" if op == "write" else f"read {off} 4k")
    if op == "write" and fl and (i + 1) % fl == 0:
        out.append("flush")
out.append("flush")
print("\n".join(out))
EOF
}
now() { date +%s.%N; }
mibs() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / 1048576 / t }'; }

keel_phase() { # keel_phase FORMAT PHASE -> MiB/s
	local f=$1 ph=$2 size=$((mib << 20)) what count
	case $ph in
	seqwrite) fresh "$f" "$size"; what=seqwrite; count=$mib ;;
	rewrite) what=seqwrite; count=$mib ;;
	seqread) what=seqread; count=$mib ;;
	randwrite) what=randwrite; count=$nrand ;;
	randread) what=randread; count=$nrand ;;
	randalloc) fresh "$f" 64G; what=randwrite; count=$nrand ;;
	diffalloc) fresh "$f" 64G diff; what=randwrite; count=$nrand ;;
	diffdata) fresh "$f" 64G diffdata; what=randwrite; count=$nrand ;;
	esac
	"$drv" "$img" "$what" "$count" "$flush" >"$dir/out" || exit 1
	awk '{ print $3 }' "$dir/out"
}

qemu_phase() { # qemu_phase FORMAT PHASE -> MiB/s
	local f=$1 ph=$2 size=$((mib << 20)) t0 t1 sz=$((mib << 20)) n
	local q=(qemu-img bench -f "$f" -t none -i io_uring -d 1 -s 1M -c "$mib")
	case $ph in
	seqwrite | rewrite)
		[ "$ph" = seqwrite ] && fresh "$f" "$size"
		t0=$(now); "${q[@]}" -w --flush-interval "$flush" "$img" >/dev/null || exit 1; t1=$(now)
		n=$sz ;;
	seqread)
		t0=$(now); "${q[@]}" "$img" >/dev/null || exit 1; t1=$(now); n=$sz ;;
	randwrite | randread | randalloc)
		[ "$ph" = randalloc ] && { fresh "$f" 64G; sz=$((64 << 30)); }
		rand_script "$([ "$ph" = randread ] && echo read || echo write)" "$sz"
		t0=$(now); qemu-io -f "$f" -t none -i io_uring "$img" <"$script" >"$dir/out" || exit 1; t1=$(now)
		if grep -q "^qemu-io: " "$dir/out"; then grep -m1 "^qemu-io: " "$dir/out" >&2; exit 1; fi
		n=$((nrand * 4096)) ;;
	esac
	mibs "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Interleaved: each phase runs on the four images one after the other, BENCH_REPS times;
# the medians go in the table (this host's storage varies by 2-3x from run to run).
phases=(seqwrite rewrite seqread randwrite randread randalloc diffalloc diffdata)
declare -A all res
for rep in $(seq 1 "$reps"); do
	for ph in "${phases[@]}"; do
		for who in keel qemu; do
			[ "${ph#diff}" != "$ph" ] && [ $who = qemu ] && continue
			for f in raw vhdx; do
				img=$dir/img.$who.$f
				v=$(${who}_phase "$f" "$ph") || {
					echo "bench/disk: $who $f $ph failed" >&2
					exit 1
				}
				all[$who,$f,$ph]+="$v "
			done
		done
	done
	echo "bench/disk: run $rep of $reps done"
done
for k in "${!all[@]}"; do res[$k]=$(echo "${all[$k]}" | median); done
rm -f "$dir"/img.* "$script" "$dir/out"
printf '%-10s %10s %10s %10s %10s %9s %9s %10s\n' phase keel-raw keel-vhdx qemu-raw qemu-vhdx \
	"keel v/r" "qemu v/r" "vhdx k/q"
for ph in "${phases[@]}"; do
	awk -v p="$ph" -v a="${res[keel,raw,$ph]}" -v b="${res[keel,vhdx,$ph]}" \
		-v c="${res[qemu,raw,$ph]:-}" -v d="${res[qemu,vhdx,$ph]:-}" \
		'BEGIN { if (c == "") printf "%-10s %10s %10s %10s %10s %9.2f %9s %10s\n", p, a, b, "-", "-", b / a, "-", "-"
			else printf "%-10s %10s %10s %10s %10s %9.2f %9.2f %10.2f\n", p, a, b, c, d, b / a, d / c, b / d }'
done
echo "bench/disk: MiB/s (medians); keel v/r and qemu v/r = VHDX/raw, vhdx k/q = keel/QEMU on VHDX"
