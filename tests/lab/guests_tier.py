#!/usr/bin/env python3
"""The guests tier of the nested lab (docs/testing.md, docs/lab.md). On a host whose kernel
offers no KVM the host tier skips every test that starts a guest; the lab, which has real KVM
(QEMU TCG with an emulated AMD-V CPU), runs those same tests there: meson's suite `guests` and
the `vmm` tests in VMM_TESTS, with the command lines meson gives them (read from the build's
`meson introspect --tests` data, so the list never drifts from the meson.build files), under
the ASan+UBSan build (build-asan, test hooks on).

    guests_tier.py plan VMM ONLY
        whether run.sh runs the tier with LAB_VMM=VMM and LAB_ONLY=ONLY: exit 0 yes; 1 no, a
        line saying why; 3 no, and KEEL_TEST_NO_SKIP=1 makes that a failure (this host's
        kernel offers no KVM, so the host tier skipped the tests, and LAB_GUESTS_TIER=off or
        LAB_VMM=qemu left them out here too: they ran nowhere), a line "lab: FAIL ..."; 2 a
        bad LAB_GUESTS_TIER
    guests_tier.py list BUILD STAGE LABROOT
        print the tests as JSON, every path in their commands moved from BUILD and the source
        tree to LABROOT/build and LABROOT/src (where the lab mounts STAGE); fails naming any
        test whose command needs a file STAGE lacks, or whose protocol is not exitcode
    guests_tier.py run LIST [SECONDS]
        (in the lab) run each test of LIST in turn under its meson time limit times
        KEEL_TEST_TIME_SCALE, its result judged as meson would (should_fail inverts it); print
        its output and one result line. Every process a test leaves behind, in a session of
        its own or not, is killed when it ends. With SECONDS the whole run stops after that
        long (the tests not yet run are not run; the report fails them)
    guests_tier.py report LOG OUTDIR
        (on the host) from the lab's console LOG: each test's output in OUTDIR/NAME.log, the
        failures' output, the counts ("tier guests-lab ran N, ..."); exit 1 when a test
        failed or did not run, or (KEEL_TEST_NO_SKIP=1) was skipped
"""
import ctypes
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

# The `vmm` suite's tests that start a guest (the others run on any host).
VMM_TESTS = ("vmm-seabios", "vmm-jail-uefi", "vmm-seccomp-probe-build")
# Tests the lab cannot run, each with the reason, which the tier prints and counts as skipped
# (not a failure under KEEL_TEST_NO_SKIP=1: a host with KVM runs them in the host tier).
OUT_OF_REACH = {
    "multiboot-highmem": "its guest has 4608 MiB of RAM (the multiboot map above 4 GiB) and "
                         "keel-vmm refuses more memory than its host has: the lab host has 4 GiB",
}
# What the tier prints on the lab's console: "guests-lab: begin N", a line per test's output
# "guests-lab| NAME| LINE", its result "guests-lab: PASS|FAIL|SKIP NAME (S s)" (a SKIP of
# OUT_OF_REACH followed by "out of the lab's reach: REASON"), and at the end "guests-lab: done
# ...".
TAG = "guests-lab"
# meson test's sanitizer options: newer meson (not Debian 12's 1.0) sets them for each test
# whose environment has none or an empty one; the tier does the same whatever the host's meson.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_summary=1",
    "UBSAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_summary=1:print_stacktrace=1",
}
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIO = "95-guests-tier"


def load(name, path):
    """The module NAME from the file TOP/PATH (in the lab too: the drive holds both trees)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOP, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plan_of(choice, vmm, only, lacks_kvm, no_skip):
    """(status, line) of `plan`: LAB_GUESTS_TIER=CHOICE, LAB_VMM=VMM, LAB_ONLY=ONLY, LACKS_KVM
    this host's kernel offers no KVM, NO_SKIP KEEL_TEST_NO_SKIP=1."""
    if choice not in ("auto", "on", "off"):
        return 2, f"guests_tier: LAB_GUESTS_TIER={choice!r} is none of auto, on, off"
    nowhere = ("this host's kernel offers no KVM, so the host tier skipped the guests tests "
               "and they ran nowhere")
    words = [w for w in re.split(r"[,\s]+", only) if w]
    if words and not any(w in SCENARIO for w in words):
        # A narrowing the developer asked for: said, never a failure.
        if not lacks_kvm and choice != "on":
            return 1, ""
        return 1, (f"lab: {SCENARIO} left out by LAB_ONLY={only} (asked for: reported, not "
                   "failed, even under KEEL_TEST_NO_SKIP=1)" + (f"; {nowhere}" if lacks_kvm
                                                                 else ""))
    if choice == "off":
        why = "LAB_GUESTS_TIER=off"
    elif choice == "auto" and not lacks_kvm:
        return 1, (f"lab: {SCENARIO} left out: this host has KVM: the host tier runs its tests "
                   "(LAB_GUESTS_TIER=on runs it here too)")
    elif vmm != "keel":
        why = f"LAB_VMM={vmm} (the tier tests keel-vmm)"
    else:
        return 0, ""
    if not lacks_kvm:
        return 1, f"lab: {SCENARIO} left out by {why}"
    if no_skip:
        return 3, (f"lab: FAIL KEEL_TEST_NO_SKIP=1 (CI) and {SCENARIO} was left out by {why}: "
                   f"{nowhere} (LAB_ONLY may leave it out; these may not)")
    return 1, f"lab: {SCENARIO} left out by {why}: {nowhere}"


def plan(vmm, only):
    lacks_kvm = load("summary", "tests/summary.py").host_lacks_kvm()
    status, line = plan_of(os.environ.get("LAB_GUESTS_TIER", "auto"), vmm, only, lacks_kvm,
                           os.environ.get("KEEL_TEST_NO_SKIP") == "1")
    if line:
        print(line, file=sys.stderr if status == 2 else sys.stdout)
    return status


def selected(test):
    suites = [s.split(":")[-1] for s in test["suite"]]
    return "guests" in suites or ("vmm" in suites and test["name"] in VMM_TESTS)


def move_path(arg, build, src, labroot):
    """ARG (an absolute path) under LABROOT, or None when it is in neither tree."""
    p = os.path.normpath(arg)
    for tree, name in ((build, "build"), (src, "src")):  # build may lie inside src
        if p == tree or p.startswith(tree + "/"):
            return os.path.join(labroot, name, os.path.relpath(p, tree))
    return None


def should_fail_of(build, tests):
    """{name: should_fail} of TESTS. meson's introspection (1.0) gives each test's protocol but
    not should_fail: read it, where a test lacks it, from meson's own test data
    (meson-private/meson_test_setup.dat, a pickle only meson's modules read: with the
    interpreter of the meson on PATH, or $MESON)."""
    flags = {t["name"]: t["should_fail"] for t in tests if "should_fail" in t}
    if len(flags) == len(tests):
        return flags
    meson = shutil.which(os.environ.get("MESON", "meson"))
    try:
        with open(meson or "", "rb") as f:
            first = f.readline().decode("latin-1")
    except OSError:
        first = ""
    if not first.startswith("#!"):
        raise SystemExit(f"guests_tier: cannot tell which tests meson expects to fail: "
                         f"{meson or 'meson'} is not a Python script (MESON names another)")
    code = ("import json, pickle, sys\n"
            "with open(sys.argv[1], 'rb') as f:\n"
            "    print(json.dumps({t.name: bool(t.should_fail) for t in pickle.load(f)}))")
    dat = os.path.join(build, "meson-private", "meson_test_setup.dat")
    r = subprocess.run(first[2:].split() + ["-c", code, dat], capture_output=True, text=True)
    try:
        known = json.loads(r.stdout) if r.returncode == 0 else {}
    except ValueError:
        known = {}
    lost = [t["name"] for t in tests if t["name"] not in flags and t["name"] not in known]
    if lost:
        raise SystemExit(f"guests_tier: cannot read should_fail of {', '.join(lost)} from "
                         f"{dat} with {meson}'s Python: {r.stderr.strip()}")
    return {**known, **flags}


def make_list(build, stage, labroot):
    build = os.path.realpath(build)
    with open(os.path.join(build, "meson-info", "intro-projectinfo.json")) as f:
        info = json.load(f)
    with open(os.path.join(build, "meson-info", "meson-info.json")) as f:
        src = os.path.realpath(json.load(f)["directories"]["source"])
    with open(os.path.join(build, "meson-info", "intro-tests.json")) as f:
        tests = [t for t in json.load(f) if selected(t)]
    if info.get("descriptive_name") != "keel" or not tests:
        raise SystemExit(f"guests_tier: {build} is not a keel build with tests")
    should_fail = should_fail_of(build, tests)
    out, missing = [], []
    for t in tests:
        # meson's other protocols (tap, gtest, rust) judge a test by its output, which the
        # tier does not read: such a test would be misjudged.
        if t.get("protocol", "exitcode") != "exitcode":
            missing.append(f"{t['name']}: protocol {t['protocol']}, and the tier judges only "
                           "protocol exitcode (its exit status)")
            continue
        cmd = []
        for i, a in enumerate(t["cmd"]):
            if i == 0 and re.fullmatch(r"python3[.0-9]*", os.path.basename(a)):
                cmd.append("python3")  # the lab's (its PATH), not this host's
                continue
            if os.path.isabs(a):
                moved = move_path(a, build, src, labroot)
                if moved is None:
                    missing.append(f"{t['name']}: {a} is in neither {src} nor {build}")
                    continue
                a = moved
                there = os.path.join(stage, os.path.relpath(moved, labroot))
            elif os.path.exists(os.path.join(build, a)):  # meson runs tests in the build dir
                there = os.path.join(stage, "build", a)
            else:
                there = None
            if there and not os.path.exists(there):
                missing.append(f"{t['name']}: {a} (lab.sh, lab_guests_tier_build, copies "
                               "no such file)")
            cmd.append(a)
        wd = t.get("workdir")
        out.append({"name": t["name"], "cmd": cmd, "timeout": t["timeout"],
                    "should_fail": should_fail[t["name"]], "env": t.get("env") or {},
                    "workdir": move_path(wd, build, src, labroot) if wd else
                    os.path.join(labroot, "build")})
    names = {t["name"] for t in tests}
    missing += [f"{n}: in OUT_OF_REACH (guests_tier.py) but not a test"
                for n in sorted(set(OUT_OF_REACH) - names)]
    # A vmm test renamed or gone would otherwise drop out of the tier unseen (and run nowhere
    # on a host without KVM).
    missing += [f"{n}: in VMM_TESTS (guests_tier.py) but not a vmm test"
                for n in sorted(set(VMM_TESTS) - names)]
    if missing:
        raise SystemExit("guests_tier: the lab cannot run these tests as meson does:\n  "
                         + "\n  ".join(missing))
    return out


def interpreter(cmd):
    """CMD with a '#!/usr/bin/env PROGRAM' script run by PROGRAM from PATH (the lab's busybox
    has its env in /bin, not /usr/bin)."""
    try:
        with open(cmd[0], "rb") as f:
            first = f.readline().decode("latin-1").split()
    except OSError:
        return cmd
    if len(first) == 2 and first[0] == "#!/usr/bin/env":
        return [first[1]] + cmd
    return cmd


class Stopped(Exception):
    """A signal stopped the tier (the scenario's end, or its shell's: PR_SET_PDEATHSIG)."""


def on_signal(signum, frame):
    raise Stopped(signal.Signals(signum).name)


def descendants():
    """[(pid, state, name)] of every process below this one (/proc's parent links)."""
    kids = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone
        name, _, rest = stat.partition(" (")[2].rpartition(")")
        state, ppid = rest.split()[:2]
        kids.setdefault(int(ppid), []).append((int(d), state, name))
    out, todo = [], [os.getpid()]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k[0])
    return out


def stop_all(keep=()):
    """Kill every process below the tier and reap them, but for the children in KEEP (a
    test's runner, which its Popen reaps). The tier is their subreaper (run), so what a runner
    left behind, in a session of its own (keel-vmm: start_new_session) or orphaned, is below it
    too. Returns "NAME (PID)" of each that was still running."""
    killed = []
    for _ in range(100):  # SIGKILL takes a process in state D only when it wakes
        alive = [(pid, name) for pid, state, name in descendants() if state not in "ZX"]
        if not alive:
            break
        for pid, name in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            if f"{name} ({pid})" not in killed:
                killed.append(f"{name} ({pid})")
        time.sleep(0.05)
    else:
        raise SystemExit(f"{TAG}: still running 5 s after SIGKILL: "
                         + ", ".join(f"{n} ({p})" for p, s, n in descendants() if s not in "ZX"))
    for pid, state, name in descendants():  # zombies, all children of the subreaper now
        if pid not in keep:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    return killed


def run_one(t, scale, until):
    """Run test T; (result, output, seconds). UNTIL: the run's deadline (time.monotonic) or
    None."""
    env = {**os.environ, **t["env"]}
    env.update({k: v for k, v in SANITIZER_ENV.items() if not env.get(k)})
    limit = t["timeout"] * scale
    cut = until is not None and until - time.monotonic() < limit
    start = time.monotonic()
    try:
        p = subprocess.Popen(interpreter(t["cmd"]), cwd=t["workdir"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        return "FAIL", f"cannot start {t['cmd'][0]}: {e}\n", 0.0
    # The output is read apart from the wait: a process the runner leaves behind holding it
    # open would otherwise keep the test going until its time limit.
    output = []
    reader = threading.Thread(target=lambda: output.append(p.stdout.read()), daemon=True)
    reader.start()
    try:
        try:
            p.wait(timeout=max(0, until - start) if cut else limit)
        except subprocess.TimeoutExpired:
            killed = stop_all(keep=(p.pid,))
            p.wait()
            reader.join()
            why = (f"the tier's time ran out after {time.monotonic() - start:.0f} s" if cut
                   else f"timed out after {limit:g} s")
            return "FAIL", output[0].decode("utf-8", "replace") + (
                f"({why}; killed: {', '.join(killed) or 'nothing was left'})\n"
            ), time.monotonic() - start
    except Stopped:
        stop_all(keep=(p.pid,))
        p.wait()
        raise
    # meson's exitcode protocol: 77 a skip, 99 a hard error, 0 a pass, else a failure; a test
    # it expects to fail (should_fail) turns the pass and the failure round.
    rc = p.returncode
    result = {0: "PASS", 77: "SKIP"}.get(rc, "FAIL")
    tail = "" if result != "FAIL" else f"(exit status {rc})\n"
    if t["should_fail"] and rc not in (77, 99):
        result, tail = (("FAIL", "(exit status 0, but meson expects it to fail: should_fail)\n")
                        if rc == 0 else
                        ("PASS", f"(exit status {rc}: the failure meson expects, should_fail)\n"))
    left = stop_all()
    reader.join()
    if left:
        tail += f"(left running when it ended, and killed: {', '.join(left)})\n"
    return result, output[0].decode("utf-8", "replace") + tail, time.monotonic() - start


def run(listfile, seconds=None):
    scale = load("time_scale", "tests/guests/time_scale.py").time_scale(TAG)
    try:
        budget = None if seconds is None else float(seconds)
    except ValueError:
        budget = 0
    if budget is not None and not budget > 0:
        raise SystemExit(f"{TAG}: the run's SECONDS {seconds!r} is not a positive number")
    with open(listfile) as f:
        tests = json.load(f)
    # Whatever a test leaves behind is reparented here, not to the lab's init, and stop_all
    # finds it; and should the scenario's shell die (its time limit's SIGKILL, which skips its
    # cleanup), SIGTERM stops the tier and every process below it.
    parent = os.getppid()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
    for option, value in ((PR_SET_CHILD_SUBREAPER, 1), (PR_SET_PDEATHSIG, signal.SIGTERM)):
        if libc.prctl(option, int(value), 0, 0, 0) != 0:
            raise SystemExit(f"{TAG}: prctl({option}): {os.strerror(ctypes.get_errno())}")
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    t0 = time.monotonic()
    until = None if budget is None else t0 + budget
    print(f"{TAG}: begin {len(tests)} tests (time limits x{scale:g}"
          + ("" if budget is None else f", at most {budget:g} s in all") + ")", flush=True)
    try:
        if os.getppid() != parent:
            raise Stopped("the parent's death before PR_SET_PDEATHSIG")
        for i, t in enumerate(tests):
            why = OUT_OF_REACH.get(t["name"])
            if why:
                counts["SKIP"] += 1
                print(f"{TAG}: SKIP {t['name']} (0.0 s) out of the lab's reach: {why}",
                      flush=True)
                continue
            if until is not None and time.monotonic() >= until:
                print(f"{TAG}: STOP the tier's {budget:g} s ran out: {len(tests) - i} tests not "
                      "run", flush=True)
                break
            result, out, secs = run_one(t, scale, until)
            counts[result] += 1
            for line in out.replace("\r", "").rstrip("\n").split("\n"):
                print(f"{TAG}| {t['name']}| {line}")
            print(f"{TAG}: {result} {t['name']} ({secs:.1f} s)", flush=True)
    except Stopped as e:
        stop_all()
        print(f"{TAG}: STOP by {e}: every process of the tier killed", flush=True)
        return 1
    print(f"{TAG}: done: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} "
          f"skipped in {time.monotonic() - t0:.0f} s", flush=True)
    return 1 if counts["FAIL"] or sum(counts.values()) < len(tests) else 0


def report(log, outdir):
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    begins = [i for i, l in enumerate(lines) if l.startswith(f"{TAG}: begin ")]
    total = int(lines[begins[-1]].split()[2]) if begins else 0
    output, results, reach, done = {}, {}, {}, False
    for l in lines[begins[-1]:] if begins else []:
        m = re.match(rf"{TAG}\| ([^|]+)\| (.*)", l)
        if m:
            output.setdefault(m.group(1), []).append(m.group(2))
            continue
        m = re.match(rf"{TAG}: (PASS|FAIL|SKIP) (\S+) \(([0-9.]+) s\)( out of the lab's reach: "
                     r"(.*))?", l)
        if m:
            results[m.group(2)] = (m.group(1), float(m.group(3)))
            if m.group(5):
                reach[m.group(2)] = m.group(5)
        done = done or l.startswith(f"{TAG}: done: ")
    os.makedirs(outdir, exist_ok=True)
    for name, body in output.items():
        with open(os.path.join(outdir, name + ".log"), "w") as f:
            f.write("\n".join(body) + "\n")
    n = {r: sum(1 for v in results.values() if v[0] == r) for r in ("PASS", "FAIL", "SKIP")}
    for name, (r, secs) in results.items():
        if r == "FAIL":
            print(f"{TAG}: ---- {name} failed ({secs:.1f} s); {outdir}/{name}.log:")
            print("\n".join("  | " + l for l in output.get(name, [])))
    failed = n["FAIL"]
    if not begins:
        print(f"{TAG}: FAIL the lab never began the guests tier (see {log})")
        failed += 1
    elif not done or len(results) < total:
        print(f"{TAG}: FAIL the lab ran {len(results)} of the tier's {total} tests (see {log})")
        failed += max(1, total - len(results))  # all there but no end: the run was cut off
    for name, why in reach.items():
        print(f"{TAG}: note: {name} is left to hosts with KVM: {why}")
    skipped = n["SKIP"]
    bad = [k for k, v in results.items() if v[0] == "SKIP" and k not in reach]
    if bad and os.environ.get("KEEL_TEST_NO_SKIP") == "1":
        print(f"{TAG}: FAIL KEEL_TEST_NO_SKIP=1 (CI) and these tests were skipped: "
              + ", ".join(bad))
        failed, skipped = failed + len(bad), skipped - len(bad)
    secs = sum(v[1] for v in results.values())
    print(f"{TAG}: {len(results)} tests in {secs / 60:.1f} min; outputs in {outdir}")
    print("tier %-8s ran %3d, passed %3d, skipped %3d, failed %3d" %
          (TAG, n["PASS"] + failed, n["PASS"], skipped, failed))
    return 1 if failed else 0


def main(argv):
    usage = __doc__.split("\n\n")[1]
    if argv[:1] == ["plan"] and len(argv) == 3:
        return plan(*argv[1:])
    if argv[:1] == ["list"] and len(argv) == 4:
        json.dump(make_list(*argv[1:]), sys.stdout, indent=1)
        print()
        return 0
    if argv[:1] == ["run"] and len(argv) in (2, 3):
        return run(*argv[1:])
    if argv[:1] == ["report"] and len(argv) == 3:
        return report(*argv[1:])
    print("usage:\n" + usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
