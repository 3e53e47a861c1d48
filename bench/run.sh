#!/usr/bin/env bash
# Runs every benchmark: each bench/*/run.sh in turn. Exit status non-zero if any failed.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
failed=0
for b in "$top"/bench/*/run.sh; do
	[ -x "$b" ] || continue
	name=$(basename "$(dirname "$b")")
	echo "bench: ---- $name"
	"$b" || { echo "bench: $name FAILED"; failed=$((failed + 1)); }
done
[ "$failed" = 0 ]
