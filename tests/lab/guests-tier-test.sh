#!/usr/bin/env bash
# Host-side checks of the lab's tiers of the host tier's tests (tests/lab/guests_tier.py:
# guests and daemon; no lab needed): whether run.sh runs each, and when leaving it out fails;
# which tests each takes from a build's meson data, in which order, and how their paths move
# into the lab's drive; the results and outputs of a run (pass, skip, failure, should_fail,
# time limit, the run's own limit, a test the lab does not run) and that no process of a test
# outlives it, nor the tier's shell; and the counts and exit status the report gives for a
# whole run, a cut-off one and skips under KEEL_TEST_NO_SKIP=1.
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
gone() { # gone PID: no such process, or only its zombie
	[ ! -e "/proc/$1" ] || grep -q ') Z' "/proc/$1/stat" 2>/dev/null
}

# plan: run.sh runs a tier on a host without KVM with keel-vmm; left out, it says why, and
# on such a host under KEEL_TEST_NO_SKIP=1 that fails (LAB_GUESTS_TIER=off, LAB_VMM=qemu),
# unless LAB_ONLY left it out. Each case: the tier, LAB_GUESTS_TIER, LAB_VMM, LAB_ONLY, the
# host lacks KVM, KEEL_TEST_NO_SKIP=1; the status; what the line says (one Python: these are
# many).
out=$(python3 - "$top/tests/lab" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import guests_tier as g
nowhere = "the host tier skipped the guests tests and they ran nowhere"
fails = []
def case(args, status, *says, tier="guests"):
    s, line = g.plan_of(tier, *args)
    if s != status or not all(w in line for w in says) or (not says and line):
        fails.append(f"plan_of{args}: {s} {line!r}, not {status} with {says}")
for ns in False, True:
    case(("auto", "keel", "", True, ns), 0)
    case(("auto", "keel", "guests-tier,boot", True, ns), 0)
    case(("auto", "keel", "", False, ns), 1, "lab: 95-guests-tier left out: this host has KVM")
    case(("on", "qemu", "", False, ns), 1,
         "lab: 95-guests-tier left out by LAB_VMM=qemu (the tier tests keel-vmm)")
    case(("auto", "keel", "boot", False, ns), 1)
    case(("auto", "qemu", "boot, net", True, ns), 1, "lab: 95-guests-tier left out by "
         "LAB_ONLY=boot, net (asked for: reported, not failed", nowhere)
for choice, vmm, why in (("off", "keel", "LAB_GUESTS_TIER=off"), ("auto", "qemu", "LAB_VMM=qemu"),
                         ("on", "qemu", "LAB_VMM=qemu")):
    case((choice, vmm, "", True, False), 1, f"lab: 95-guests-tier left out by {why}", nowhere)
    case((choice, vmm, "guests", True, True), 3, "lab: FAIL KEEL_TEST_NO_SKIP=1 (CI) and "
         f"95-guests-tier was left out by {why}", nowhere, "(LAB_ONLY may leave it out")
case(("maybe", "keel", "", True, False), 2, "LAB_GUESTS_TIER='maybe' is none of auto, on, off")
# The daemon tier: its own scenario, the same rules.
daemon = "the host tier skipped the daemon cases that start a VM and they ran nowhere"
case(("auto", "keel", "", True, True), 0, tier="daemon")
case(("auto", "keel", "daemon-tier", True, True), 0, tier="daemon")
case(("auto", "keel", "guests-tier", True, True), 1, "lab: 96-daemon-tier left out by "
     "LAB_ONLY=guests-tier (asked for", daemon, tier="daemon")
case(("auto", "keel", "", False, True), 1, "lab: 96-daemon-tier left out: this host has KVM",
     tier="daemon")
case(("off", "keel", "", True, True), 3, "lab: FAIL KEEL_TEST_NO_SKIP=1 (CI) and 96-daemon-tier "
     "was left out by LAB_GUESTS_TIER=off", daemon, tier="daemon")
print("\n".join(fails))
EOF
)
[ -z "$out" ] || fail "plan: $out"
out=$(LAB_GUESTS_TIER=maybe "$gt" plan guests keel "" 2>&1)
[ $? = 2 ] || fail "plan: LAB_GUESTS_TIER=maybe: status not 2"
has "$out" "is none of auto, on, off" "plan: LAB_GUESTS_TIER=maybe"
LAB_GUESTS_TIER=off "$gt" plan guests keel boot >/dev/null
[ $? = 1 ] || fail "plan: LAB_ONLY=boot: status not 1"
out=$("$gt" plan nosuch keel "" 2>&1)
[ $? = 2 ] || fail "plan: an unknown tier: status not 2"
has "$out" "no tier 'nosuch' (tiers: guests, daemon)" "plan: an unknown tier"
[ "$("$gt" tiers | xargs)" = "guests daemon" ] || fail "tiers: $("$gt" tiers)"

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
  "protocol": "exitcode", "should_fail": false,
  "cmd": ["/opt/py/shims/python3", "$b/../tests/guests/run-guest.py", "--keel-vmm",
          "src/vmm/keel-vmm", "--guests", "$b/tests/guests", "serial-output"]},
 {"name": "multiboot-highmem", "suite": ["keel:guests"], "timeout": 120, "env": {}, "workdir": null,
  "protocol": "exitcode", "should_fail": true,
  "cmd": ["$src/tests/guests/run-guest.py", "multiboot-highmem"]},
 {"name": "vmm-seabios", "suite": ["keel:vmm"], "timeout": 60, "env": {"X": "1"}, "workdir": null,
  "protocol": "exitcode", "should_fail": false,
  "cmd": ["$src/tests/vmm/seabios.sh", "src/vmm/keel-vmm"]},
 {"name": "vmm-jail-uefi", "suite": ["keel:vmm"], "timeout": 60, "env": {}, "workdir": null,
  "protocol": "exitcode", "should_fail": false,
  "cmd": ["$src/tests/vmm/seabios.sh", "src/vmm/keel-vmm"]},
 {"name": "vmm-seccomp-probe-build", "suite": ["keel:vmm"], "timeout": 60, "env": {}, "workdir": null,
  "protocol": "exitcode", "should_fail": false,
  "cmd": ["$src/tests/vmm/seabios.sh", "src/vmm/keel-vmm"]},
 {"name": "vmm-errors", "suite": ["keel:vmm"], "timeout": 60, "env": {}, "workdir": null,
  "cmd": ["$src/tests/vmm/errors.sh", "src/vmm/keel-vmm", "$src/.cache/kernel"]},
 {"name": "ring", "suite": ["keel:unit"], "timeout": 30, "env": {}, "workdir": null,
  "cmd": ["$b/tests/unit/test-ring"]}]
EOF
# The stage lacks seabios.sh: the tier must not start without it.
out=$("$gt" list guests "$b" "$stage" /mnt/t 2>&1) && fail "list succeeded without seabios.sh in the stage"
has "$out" "vmm-seabios: /mnt/t/src/tests/vmm/seabios.sh" "a file missing from the stage"
touch "$stage/src/tests/vmm/seabios.sh"
out=$("$gt" list guests "$b" "$stage" /mnt/t) || fail "list: $out"
names=$(echo "$out" | python3 -c 'import json, sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))')
[ "$names" = "serial-output multiboot-highmem vmm-seabios vmm-jail-uefi vmm-seccomp-probe-build" ] ||
	fail "list took '$names'"
cmd=$(echo "$out" | python3 -c 'import json, sys; t = json.load(sys.stdin)[0]; print(" ".join(t["cmd"]), t["workdir"], t["timeout"], t["should_fail"])')
[ "$cmd" = "python3 /mnt/t/src/tests/guests/run-guest.py --keel-vmm src/vmm/keel-vmm --guests /mnt/t/build/tests/guests serial-output /mnt/t/build 120 False" ] ||
	fail "serial-output's command in the lab: $cmd"
[ "$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)[1]["should_fail"])')" = True ] ||
	fail "list: multiboot-highmem's should_fail is not kept"
# A protocol the tier does not judge (meson's tap reads the output): refused, named.
cp "$b/meson-info/intro-tests.json" "$dir/tests.json"
sed -i '0,/"protocol": "exitcode"/s//"protocol": "tap"/' "$b/meson-info/intro-tests.json"
out=$("$gt" list guests "$b" "$stage" /mnt/t 2>&1) && fail "list succeeded with a tap test"
has "$out" "serial-output: protocol tap, and the tier judges only protocol exitcode" "a tap test"
mv "$dir/tests.json" "$b/meson-info/intro-tests.json"
# A vmm test of VMM_TESTS that meson no longer has (renamed, gone): named, not dropped.
cp "$b/meson-info/intro-tests.json" "$dir/tests.json"
python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); json.dump([x for x in t if x["name"] != "vmm-jail-uefi"], open(sys.argv[1], "w"))' \
	"$b/meson-info/intro-tests.json"
out=$("$gt" list guests "$b" "$stage" /mnt/t 2>&1) && fail "list succeeded without vmm-jail-uefi"
has "$out" "vmm-jail-uefi: in VMM_TESTS (guests_tier.py) but not a test of the guests tier" "a vmm test gone"
mv "$dir/tests.json" "$b/meson-info/intro-tests.json"

# list, the daemon tier: of the daemon suite, the cases that start a VM (not e2e.py's NO_VM,
# which the host tier runs anywhere), DAEMON_TESTS first in their order, then the others
# (which the run does not start); a name of DAEMON_TESTS meson does not have fails. The fake
# build's daemon tests: every one of DAEMON_TESTS (backwards), daemon-api (NO_VM) and
# daemon-save-1g (a VM, not chosen).
mkdir -p "$src/tests/daemon" "$stage/src/tests/daemon"
touch "$src/tests/daemon/e2e.py" "$stage/src/tests/daemon/e2e.py"
cp "$b/meson-info/intro-tests.json" "$dir/tests.json"
python3 - "$top/tests/lab" "$b/meson-info/intro-tests.json" "$src" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import guests_tier as g
tests = json.load(open(sys.argv[2]))
for n in ("daemon-save-1g",) + tuple(reversed(g.DAEMON_TESTS)) + ("daemon-api",):
    tests.append({"name": n, "suite": ["keel:daemon"], "timeout": 180, "env": {},
                  "workdir": None, "protocol": "exitcode", "should_fail": False,
                  "cmd": ["/usr/bin/python3", sys.argv[3] + "/tests/daemon/e2e.py",
                          n[len("daemon-"):]]})
json.dump(tests, open(sys.argv[2], "w"))
PY
out=$("$gt" list daemon "$b" "$stage" /mnt/t) || fail "list daemon: $out"
names=$(echo "$out" | python3 -c 'import json, sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))')
want=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import guests_tier as g; print(" ".join(g.DAEMON_TESTS))' "$top/tests/lab")
[ "$names" = "$want daemon-save-1g" ] || fail "list daemon took '$names'"
cmd=$(echo "$out" | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)[0]["cmd"]))')
[ "$cmd" = "python3 /mnt/t/src/tests/daemon/e2e.py disk-qos" ] || fail "disk-qos's command in the lab: $cmd"
python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); json.dump([x for x in t if x["name"] != "daemon-vhost"], open(sys.argv[1], "w"))' \
	"$b/meson-info/intro-tests.json"
out=$("$gt" list daemon "$b" "$stage" /mnt/t 2>&1) && fail "list daemon succeeded without daemon-vhost"
has "$out" "daemon-vhost: in DAEMON_TESTS (guests_tier.py) but not a test of the daemon tier" "a daemon case gone"
mv "$dir/tests.json" "$b/meson-info/intro-tests.json"

# run: a pass, a skip, a failure, a test over its limit, one the lab cannot run (OUT_OF_REACH:
# not started, skipped with the reason), two that meson expects to fail (should_fail: the
# failure passes, the pass fails), one that leaves a process behind in a session of its own
# (as run-guest.py starts keel-vmm) and one over its limit that has such a process too.
spawn="import subprocess, sys; p = subprocess.Popen(['sleep', '300'], start_new_session=True); open(sys.argv[1], 'w').write(str(p.pid))"
cat >"$dir/list.json" <<EOF
[{"name": "ok", "cmd": ["sh", "-c", "echo one; echo two"], "timeout": 10, "env": {}, "workdir": "$dir", "should_fail": false},
 {"name": "skipped", "cmd": ["sh", "-c", "echo no kvm; exit 77"], "timeout": 10, "env": {}, "workdir": "$dir", "should_fail": false},
 {"name": "bad", "cmd": ["sh", "-c", "echo \$OWN \$ASAN_OPTIONS; exit 3"], "timeout": 10, "env": {"OWN": "mine"}, "workdir": "$dir", "should_fail": false},
 {"name": "slow", "cmd": ["sh", "-c", "echo start; sleep 30"], "timeout": 1, "env": {}, "workdir": "$dir", "should_fail": false},
 {"name": "multiboot-highmem", "cmd": ["sh", "-c", "echo ran; exit 1"], "timeout": 10, "env": {}, "workdir": "$dir", "should_fail": false},
 {"name": "expected", "cmd": ["sh", "-c", "exit 1"], "timeout": 10, "env": {}, "workdir": "$dir", "should_fail": true},
 {"name": "unexpected", "cmd": ["sh", "-c", "exit 0"], "timeout": 10, "env": {}, "workdir": "$dir", "should_fail": true},
 {"name": "leaves", "cmd": ["python3", "-c", "$spawn", "$dir/leaves.pid"], "timeout": 10, "env": {}, "workdir": "$dir", "should_fail": false},
 {"name": "hangs", "cmd": ["sh", "-c", "python3 -c \"$spawn\" $dir/hangs.pid; sleep 30"], "timeout": 2, "env": {}, "workdir": "$dir", "should_fail": false}]
EOF
# meson's sanitizer options where the caller set none or an empty one (checked with none set,
# whatever this test's caller has), and a caller's own kept, as meson keeps them.
env -u ASAN_OPTIONS -u UBSAN_OPTIONS "$gt" run guests "$dir/list.json" >"$dir/console" && fail "run: status 0 with a failure"
log=$(cat "$dir/console")
has "$log" "guests-lab: begin 9 tests (time limits x1)" "run"
has "$log" "guests-lab| ok| two" "run"
has "$log" "guests-lab: PASS ok (" "run"
has "$log" "guests-lab: SKIP skipped (" "run"
has "$log" "guests-lab| bad| mine halt_on_error=1:abort_on_error=1:print_summary=1" "run: the test's env and meson's sanitizer options"
has "$log" "guests-lab| bad| (exit status 3)" "run"
has "$log" "guests-lab| slow| (timed out after 1 s; killed: sh (" "run"
has "$log" "guests-lab: FAIL slow (" "run"
has "$log" "guests-lab: SKIP multiboot-highmem (0.0 s) not run in the lab: its guest has 4608 MiB" "run"
has "$log" "guests-lab| expected| (exit status 1: the failure meson expects, should_fail)" "run: should_fail"
has "$log" "guests-lab: PASS expected (" "run: should_fail"
has "$log" "guests-lab| unexpected| (exit status 0, but meson expects it to fail: should_fail)" "run: should_fail"
has "$log" "guests-lab: FAIL unexpected (" "run: should_fail"
has "$log" "guests-lab| leaves| (left running when it ended, and killed: sleep ($(cat "$dir/leaves.pid")))" "run: a process left behind"
has "$log" "guests-lab: PASS leaves (" "run"
has "$log" "guests-lab: FAIL hangs (" "run"
has "$log" "sleep ($(cat "$dir/hangs.pid"))" "run: a test over its limit, its own session's process"
has "$log" "guests-lab: done: 3 passed, 4 failed, 2 skipped" "run"
case "$log" in *"multiboot-highmem| ran"*) fail "run started a test out of the lab's reach" ;; esac
gone "$(cat "$dir/leaves.pid")" || fail "run: leaves's sleep outlived it"
gone "$(cat "$dir/hangs.pid")" || fail "run: hangs's sleep outlived it"
# shellcheck disable=SC2016 # the test's shell expands it
echo '[{"name": "bad", "cmd": ["sh", "-c", "echo $ASAN_OPTIONS"], "timeout": 10, "env": {}, "workdir": "/", "should_fail": false}]' >"$dir/own.json"
out=$(ASAN_OPTIONS=detect_leaks=0 "$gt" run guests "$dir/own.json") || fail "run with the caller's ASAN_OPTIONS: $out"
has "$out" "guests-lab| bad| detect_leaks=0" "run: the caller's ASAN_OPTIONS"
out=$(ASAN_OPTIONS='' "$gt" run guests "$dir/own.json") || fail "run with an empty ASAN_OPTIONS: $out"
has "$out" "guests-lab| bad| halt_on_error=1:abort_on_error=1:print_summary=1" "run: an empty ASAN_OPTIONS (meson's as unset)"
# KEEL_TEST_TIME_SCALE as the runners read it (tests/guests/time_scale.py).
for v in 0.5 x 101; do
	out=$(KEEL_TEST_TIME_SCALE=$v "$gt" run guests "$dir/own.json" 2>&1) && fail "run: KEEL_TEST_TIME_SCALE=$v taken"
	has "$out" "guests-lab: KEEL_TEST_TIME_SCALE='$v' is not a number from 1 to 100" "run: KEEL_TEST_TIME_SCALE=$v"
done
out=$(KEEL_TEST_TIME_SCALE=2.5 "$gt" run guests "$dir/own.json") || fail "run: KEEL_TEST_TIME_SCALE=2.5: $out"
has "$out" "(time limits x2.5)" "run: KEEL_TEST_TIME_SCALE=2.5"
# The run's own limit (SECONDS): the test running then is killed, the rest not run.
cat >"$dir/limit.json" <<EOF
[{"name": "first", "cmd": ["sh", "-c", "sleep 30"], "timeout": 60, "env": {}, "workdir": "$dir", "should_fail": false},
 {"name": "second", "cmd": ["true"], "timeout": 60, "env": {}, "workdir": "$dir", "should_fail": false}]
EOF
"$gt" run guests "$dir/limit.json" 1 >"$dir/limit.log" && fail "run: status 0 past its own limit"
log=$(cat "$dir/limit.log")
has "$log" "guests-lab| first| (the tier's time ran out after 1 s; killed: sh (" "run past its own limit"
has "$log" "guests-lab: STOP the tier's 1 s ran out: 1 tests not run" "run past its own limit"
out=$("$gt" report guests "$dir/limit.log" "$dir/out5") && fail "report: a run past its own limit passed"
has "$out" "the lab ran 1 of the tier's 2 tests" "report of a run past its own limit"
# The tier's shell killed (the scenario's SIGKILL at its time limit): the tier stops, and the
# process its test left in a session of its own goes with it.
cat >"$dir/killed.json" <<EOF
[{"name": "hangs", "cmd": ["sh", "-c", "python3 -c \"$spawn\" $dir/killed.pid; sleep 30"], "timeout": 60, "env": {}, "workdir": "$dir", "should_fail": false}]
EOF
sh -c '"$1" run guests "$2" >"$3"; echo not killed' sh "$gt" "$dir/killed.json" "$dir/killed.log" &
shell=$!
for _ in $(seq 50); do [ -s "$dir/killed.pid" ] && break; sleep 0.1; done
[ -s "$dir/killed.pid" ] || fail "run: the test under a shell to kill did not start"
{
	kill -9 "$shell"
	wait "$shell"
} 2>/dev/null
for _ in $(seq 50); do gone "$(cat "$dir/killed.pid")" && break; sleep 0.1; done
gone "$(cat "$dir/killed.pid")" || fail "run: a test's process outlived the tier's killed shell"
for _ in $(seq 50); do grep -q "STOP" "$dir/killed.log" && break; sleep 0.1; done
has "$(cat "$dir/killed.log")" "guests-lab: STOP by SIGTERM: every process of the tier killed" "run: its shell killed"

# report: an earlier, cut-off run of the tier (a lab host restart) is ignored.
{
	echo "guests-lab: begin 9 tests (time limits x4)"
	echo "guests-lab: PASS old (1.0 s)"
	echo "lab: RESTART ..."
	cat "$dir/console"
} >"$dir/test.log"
out=$("$gt" report guests "$dir/test.log" "$dir/out") && fail "report: status 0 with failures"
has "$out" "tier guests-lab ran   7, passed   3, skipped   2, failed   4" "report"
has "$out" "guests-lab: note: multiboot-highmem is left to hosts with KVM: its guest has" "report"
has "$out" "guests-lab: ---- bad failed" "report"
has "$out" "  | (exit status 3)" "report: the failure's output"
[ "$(cat "$dir/out/ok.log")" = "$(printf 'one\ntwo')" ] || fail "report: ok.log is '$(cat "$dir/out/ok.log")'"
[ -e "$dir/out/old.log" ] && fail "report: a test of the earlier run has a log"
# Passes and a skip; under KEEL_TEST_NO_SKIP=1 the skip fails the tier.
grep -v -e ' bad' -e ' slow' -e ' unexpected' -e ' hangs' "$dir/console" | sed 's/: done: .*/: done: 3 passed/; s/begin 9/begin 5/' >"$dir/ok.log"
out=$("$gt" report guests "$dir/ok.log" "$dir/out2") || fail "report of a pass and a skip: $out"
has "$out" "tier guests-lab ran   3, passed   3, skipped   2, failed   0" "report"
out=$(KEEL_TEST_NO_SKIP=1 "$gt" report guests "$dir/ok.log" "$dir/out2") && fail "report: a skip passed under KEEL_TEST_NO_SKIP=1"
has "$out" "these tests were skipped: skipped" "report under KEEL_TEST_NO_SKIP=1"
has "$out" "tier guests-lab ran   4, passed   3, skipped   1, failed   1" "report under KEEL_TEST_NO_SKIP=1"
# A run cut off after its first test: the others count as failed; no run at all fails too.
head -n 4 "$dir/console" >"$dir/cut.log"
out=$("$gt" report guests "$dir/cut.log" "$dir/out3") && fail "report: a cut-off run passed"
has "$out" "the lab ran 1 of the tier's 9 tests" "report of a cut-off run"
has "$out" "tier guests-lab ran   9, passed   1, skipped   0, failed   8" "report of a cut-off run"
echo "lab: hello" >"$dir/none.log"
out=$("$gt" report guests "$dir/none.log" "$dir/out4") && fail "report: no run passed"
has "$out" "never began the guests tier" "report of no run"
# The daemon tier: a case of DAEMON_TESTS runs, another case is not started, counted as
# skipped and named with the reason, also under KEEL_TEST_NO_SKIP=1; its own tag.
cat >"$dir/daemon.json" <<EOF
[{"name": "daemon-lifecycle", "cmd": ["sh", "-c", "echo ran"], "timeout": 10, "env": {}, "workdir": "$dir", "should_fail": false},
 {"name": "daemon-save-1g", "cmd": ["sh", "-c", "echo ran; exit 1"], "timeout": 10, "env": {}, "workdir": "$dir", "should_fail": false}]
EOF
"$gt" run daemon "$dir/daemon.json" >"$dir/daemon.log" || fail "run daemon: $(cat "$dir/daemon.log")"
log=$(cat "$dir/daemon.log")
has "$log" "daemon-lab| daemon-lifecycle| ran" "run daemon"
has "$log" "daemon-lab: SKIP daemon-save-1g (0.0 s) not run in the lab: not among the daemon tier's cases" "run daemon"
case "$log" in *"daemon-save-1g| ran"*) fail "run daemon started a case not in DAEMON_TESTS" ;; esac
{
	cat "$dir/console" # the guests tier's lines, in the same console: not the daemon tier's
	cat "$dir/daemon.log"
} >"$dir/both.log"
out=$(KEEL_TEST_NO_SKIP=1 "$gt" report daemon "$dir/both.log" "$dir/out6") || fail "report daemon: $out"
has "$out" "daemon-lab: note: daemon-save-1g is left to hosts with KVM: not among" "report daemon"
has "$out" "tier daemon-lab ran   1, passed   1, skipped   1, failed   0" "report daemon"
[ "$(ls "$dir/out6")" = daemon-lifecycle.log ] || fail "report daemon: outputs $(ls "$dir/out6")"
echo "guests-tier-test: ok"
