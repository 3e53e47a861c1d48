#!/usr/bin/env bash
# Run every libFuzzer target in BUILD_DIR/tests/fuzz for SECONDS each, starting from the
# seed corpus in tests/fuzz/seeds/<target>/ (if any) and a scratch corpus kept under
# build dir. A crash, leak or sanitizer report fails the run and leaves the reproducer in
# BUILD_DIR/tests/fuzz/artifacts/.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR SECONDS}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS}
top=$(cd "$(dirname "$0")/../.." && pwd)
dir="$build/tests/fuzz"
art="$dir/artifacts"
mkdir -p "$art"
shopt -s nullglob
targets=("$dir"/fuzz-*)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no targets built in $dir" >&2
	exit 1
fi
failed=0 ran=0 bad=0
for t in "${targets[@]}"; do
	[ -x "$t" ] && [ -f "$t" ] || continue
	name=$(basename "$t")
	corpus="$dir/corpus/$name"
	mkdir -p "$corpus"
	seeds=()
	[ -d "$top/tests/fuzz/seeds/$name" ] && seeds=("$top/tests/fuzz/seeds/$name")
	printf 'fuzz: %-28s %ss ... ' "$name" "$seconds"
	ran=$((ran + 1))
	if "$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/$name-" "$corpus" "${seeds[@]}" >"$dir/$name.log" 2>&1; then
		echo "ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$dir/$name.log" | grep -o '[0-9]*$') runs)"
	else
		echo "FAILED (see $dir/$name.log)"
		bad=$((bad + 1))
		tail -n 30 "$dir/$name.log"
		failed=1
	fi
done
echo "tier fuzz     ran $ran, passed $((ran - bad)), skipped 0, failed $bad"
exit $failed
