#!/usr/bin/env bash
# Host-side checks of the lab's guests tier (tests/lab/guests_tier.py; no lab needed): which
# tests it takes from a build's meson data and how their paths move into the lab's drive,
# the results and outputs of a run (pass, skip, failure, time limit), and the counts and exit
# status the report gives for a whole run, a cut-off one and skips under KEEL_TEST_NO_SKIP=1.
set -u
# The checks below set KEEL_TEST_NO_SKIP themselves where they test it; CI's (.ci/run) would
# turn every skip of the others into a failure.
unset KEEL_TEST_NO_SKIP
top=$(cd "$(dirname "$0")/../.." && pwd)
gt=$top/tests/lab/guests_tier.py
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
	echo "guests-tier-test: FAIL: $*"
	exit 1
}
has() { # has TEXT WANT WHAT
	case "$1" in *"$2"*) ;; *) fail "$3: no '$2' in: $1" ;; esac
}

# wanted: LAB_GUESTS_TIER overrides the host's KVM; a bad value is refused.
LAB_GUESTS_TIER=on "$gt" wanted || fail "LAB_GUESTS_TIER=on: not wanted"
LAB_GUESTS_TIER=off "$gt" wanted && fail "LAB_GUESTS_TIER=off: wanted"
out=$(LAB_GUESTS_TIER=maybe "$gt" wanted 2>&1)
[ $? = 2 ] || fail "LAB_GUESTS_TIER=maybe: status not 2"
has "$out" "is none of auto, on, off" "LAB_GUESTS_TIER=maybe"

# list: a fake build (src/b) with a guests test, a vmm test that starts a guest, one that
# does not and a unit test.
src=$dir/src b=$dir/src/b stage=$dir/stage
mkdir -p "$b/meson-info" "$b/src/vmm" "$b/tests/guests" "$src/tests/guests" "$src/tests/vmm" \
	"$stage/build/src/vmm" "$stage/build/tests/guests" "$stage/src/tests/guests" "$stage/src/tests/vmm"
touch "$b/src/vmm/keel-vmm" "$src/tests/guests/run-guest.py" "$src/tests/vmm/seabios.sh" \
	"$src/tests/vmm/errors.sh" "$stage/build/src/vmm/keel-vmm" "$stage/src/tests/guests/run-guest.py"
echo '{"descriptive_name": "keel"}' >"$b/meson-info/intro-projectinfo.json"
echo "{\"directories\": {\"source\": \"$src\", \"build\": \"$b\"}}" >"$b/meson-info/meson-info.json"
cat >"$b/meson-info/intro-tests.json" <<EOF
[{"name": "serial-output", "suite": ["keel:guests"], "timeout": 120, "env": {}, "workdir": null,
  "cmd": ["/opt/py/shims/python3", "$b/../tests/guests/run-guest.py", "--keel-vmm",
          "src/vmm/keel-vmm", "--guests", "$b/tests/guests", "serial-output"]},
 {"name": "multiboot-highmem", "suite": ["keel:guests"], "timeout": 120, "env": {}, "workdir": null,
  "cmd": ["$src/tests/guests/run-guest.py", "multiboot-highmem"]},
 {"name": "vmm-seabios", "suite": ["keel:vmm"], "timeout": 60, "env": {"X": "1"}, "workdir": null,
  "cmd": ["$src/tests/vmm/seabios.sh", "src/vmm/keel-vmm"]},
 {"name": "vmm-jail-uefi", "suite": ["keel:vmm"], "timeout": 60, "env": {}, "workdir": null,
  "cmd": ["$src/tests/vmm/seabios.sh", "src/vmm/keel-vmm"]},
 {"name": "vmm-seccomp-probe-build", "suite": ["keel:vmm"], "timeout": 60, "env": {}, "workdir": null,
  "cmd": ["$src/tests/vmm/seabios.sh", "src/vmm/keel-vmm"]},
 {"name": "vmm-errors", "suite": ["keel:vmm"], "timeout": 60, "env": {}, "workdir": null,
  "cmd": ["$src/tests/vmm/errors.sh", "src/vmm/keel-vmm", "$src/.cache/kernel"]},
 {"name": "ring", "suite": ["keel:unit"], "timeout": 30, "env": {}, "workdir": null,
  "cmd": ["$b/tests/unit/test-ring"]}]
EOF
# The stage lacks seabios.sh: the tier must not start without it.
out=$("$gt" list "$b" "$stage" /mnt/t 2>&1) && fail "list succeeded without seabios.sh in the stage"
has "$out" "vmm-seabios: /mnt/t/src/tests/vmm/seabios.sh" "a file missing from the stage"
touch "$stage/src/tests/vmm/seabios.sh"
out=$("$gt" list "$b" "$stage" /mnt/t) || fail "list: $out"
names=$(echo "$out" | python3 -c 'import json, sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))')
[ "$names" = "serial-output multiboot-highmem vmm-seabios vmm-jail-uefi vmm-seccomp-probe-build" ] ||
	fail "list took '$names'"
cmd=$(echo "$out" | python3 -c 'import json, sys; t = json.load(sys.stdin)[0]; print(" ".join(t["cmd"]), t["workdir"], t["timeout"])')
[ "$cmd" = "python3 /mnt/t/src/tests/guests/run-guest.py --keel-vmm src/vmm/keel-vmm --guests /mnt/t/build/tests/guests serial-output /mnt/t/build 120" ] ||
	fail "serial-output's command in the lab: $cmd"
# A vmm test of VMM_TESTS that meson no longer has (renamed, gone): named, not dropped.
cp "$b/meson-info/intro-tests.json" "$dir/tests.json"
python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); json.dump([x for x in t if x["name"] != "vmm-jail-uefi"], open(sys.argv[1], "w"))' \
	"$b/meson-info/intro-tests.json"
out=$("$gt" list "$b" "$stage" /mnt/t 2>&1) && fail "list succeeded without vmm-jail-uefi"
has "$out" "vmm-jail-uefi: in VMM_TESTS (guests_tier.py) but not a vmm test" "a vmm test gone"
mv "$dir/tests.json" "$b/meson-info/intro-tests.json"

# run: a pass, a skip, a failure, a test over its limit (1 s times the scale 0.5) and one the
# lab cannot run (OUT_OF_REACH: not started, skipped with the reason).
cat >"$dir/list.json" <<EOF
[{"name": "ok", "cmd": ["sh", "-c", "echo one; echo two"], "timeout": 10, "env": {}, "workdir": "$dir"},
 {"name": "skipped", "cmd": ["sh", "-c", "echo no kvm; exit 77"], "timeout": 10, "env": {}, "workdir": "$dir"},
 {"name": "bad", "cmd": ["sh", "-c", "echo \$OWN \$ASAN_OPTIONS; exit 3"], "timeout": 10, "env": {"OWN": "mine"}, "workdir": "$dir"},
 {"name": "slow", "cmd": ["sh", "-c", "echo start; sleep 30"], "timeout": 1, "env": {}, "workdir": "$dir"},
 {"name": "multiboot-highmem", "cmd": ["sh", "-c", "echo ran; exit 1"], "timeout": 10, "env": {}, "workdir": "$dir"}]
EOF
KEEL_TEST_TIME_SCALE=0.5 "$gt" run "$dir/list.json" >"$dir/console" && fail "run: status 0 with a failure"
log=$(cat "$dir/console")
has "$log" "guests-lab: begin 5 tests" "run"
has "$log" "guests-lab| ok| two" "run"
has "$log" "guests-lab: PASS ok (" "run"
has "$log" "guests-lab: SKIP skipped (" "run"
has "$log" "guests-lab| bad| mine halt_on_error=1" "run: the test's env and meson's sanitizer options"
has "$log" "guests-lab| bad| (exit status 3)" "run"
has "$log" "guests-lab| slow| (timed out after 0.5 s and killed)" "run"
has "$log" "guests-lab: FAIL slow (" "run"
has "$log" "guests-lab: SKIP multiboot-highmem (0.0 s) out of the lab's reach: its guest has 4608 MiB" "run"
has "$log" "guests-lab: done: 1 passed, 2 failed, 2 skipped" "run"
case "$log" in *"multiboot-highmem| ran"*) fail "run started a test out of the lab's reach" ;; esac

# report: an earlier, cut-off run of the tier (a lab host restart) is ignored.
{
	echo "guests-lab: begin 9 tests (time limits x4)"
	echo "guests-lab: PASS old (1.0 s)"
	echo "lab: RESTART ..."
	cat "$dir/console"
} >"$dir/test.log"
out=$("$gt" report "$dir/test.log" "$dir/out") && fail "report: status 0 with failures"
has "$out" "tier guests-lab ran   3, passed   1, skipped   2, failed   2" "report"
has "$out" "guests-lab: note: multiboot-highmem is left to hosts with KVM: its guest has" "report"
has "$out" "guests-lab: ---- bad failed" "report"
has "$out" "  | (exit status 3)" "report: the failure's output"
[ "$(cat "$dir/out/ok.log")" = "$(printf 'one\ntwo')" ] || fail "report: ok.log is '$(cat "$dir/out/ok.log")'"
[ -e "$dir/out/old.log" ] && fail "report: a test of the earlier run has a log"
# Passes and a skip; under KEEL_TEST_NO_SKIP=1 the skip fails the tier.
grep -v -e ' bad' -e ' slow' "$dir/console" | sed 's/: done: .*/: done: 1 passed/; s/begin 5/begin 3/' >"$dir/ok.log"
out=$("$gt" report "$dir/ok.log" "$dir/out2") || fail "report of a pass and a skip: $out"
has "$out" "tier guests-lab ran   1, passed   1, skipped   2, failed   0" "report"
out=$(KEEL_TEST_NO_SKIP=1 "$gt" report "$dir/ok.log" "$dir/out2") && fail "report: a skip passed under KEEL_TEST_NO_SKIP=1"
has "$out" "these tests were skipped: skipped" "report under KEEL_TEST_NO_SKIP=1"
has "$out" "tier guests-lab ran   2, passed   1, skipped   1, failed   1" "report under KEEL_TEST_NO_SKIP=1"
# A run cut off after its first test: the others count as failed; no run at all fails too.
head -n 4 "$dir/console" >"$dir/cut.log"
out=$("$gt" report "$dir/cut.log" "$dir/out3") && fail "report: a cut-off run passed"
has "$out" "the lab ran 1 of the tier's 5 tests" "report of a cut-off run"
has "$out" "tier guests-lab ran   5, passed   1, skipped   0, failed   4" "report of a cut-off run"
echo "lab: hello" >"$dir/none.log"
out=$("$gt" report "$dir/none.log" "$dir/out4") && fail "report: no run passed"
has "$out" "never began the guests tier" "report of no run"
echo "guests-tier-test: ok"
