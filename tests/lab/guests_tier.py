#!/usr/bin/env python3
"""The guests tier of the nested lab (docs/testing.md, docs/lab.md). On a host whose kernel
offers no KVM the host tier skips every test that starts a guest; the lab, which has real KVM
(QEMU TCG with an emulated AMD-V CPU), runs those same tests there: meson's suite `guests` and
the `vmm` tests in VMM_TESTS, with the command lines meson gives them (read from the build's
`meson introspect --tests` data, so the list never drifts from the meson.build files), under
the ASan+UBSan build (build-asan, test hooks on).

    guests_tier.py wanted
        exit 0 when this host needs the tier: its kernel offers no KVM (tests/summary.py's
        rule); LAB_GUESTS_TIER=on or off overrides that
    guests_tier.py list BUILD STAGE LABROOT
        print the tests as JSON, every path in their commands moved from BUILD and the source
        tree to LABROOT/build and LABROOT/src (where the lab mounts STAGE); fails naming any
        test whose command needs a file STAGE lacks
    guests_tier.py run LIST
        (in the lab) run each test of LIST in turn under its meson time limit times
        KEEL_TEST_TIME_SCALE; print its output and one result line
    guests_tier.py report LOG OUTDIR
        (on the host) from the lab's console LOG: each test's output in OUTDIR/NAME.log, the
        failures' output, the counts ("tier guests-lab ran N, ..."); exit 1 when a test
        failed or did not run, or (KEEL_TEST_NO_SKIP=1) was skipped
"""
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
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
# meson test's sanitizer options (it sets them when the environment has none).
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_summary=1",
    "UBSAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_summary=1:print_stacktrace=1",
}
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wanted():
    choice = os.environ.get("LAB_GUESTS_TIER", "auto")
    if choice not in ("auto", "on", "off"):
        print(f"guests_tier: LAB_GUESTS_TIER={choice!r} is none of auto, on, off",
              file=sys.stderr)
        return 2
    if choice != "auto":
        return 0 if choice == "on" else 1
    spec = importlib.util.spec_from_file_location("summary",
                                                  os.path.join(TOP, "tests", "summary.py"))
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)
    return 0 if summary.host_lacks_kvm() else 1


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
    out, missing = [], []
    for t in tests:
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
                    "env": t.get("env") or {},
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


def run_one(t, scale):
    env = {**SANITIZER_ENV, **os.environ, **t["env"]}
    limit = t["timeout"] * scale
    start = time.monotonic()
    try:
        p = subprocess.Popen(interpreter(t["cmd"]), cwd=t["workdir"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        return "FAIL", f"cannot start {t['cmd'][0]}: {e}\n", 0.0
    try:
        out, _ = p.communicate(timeout=limit)
        result = {0: "PASS", 77: "SKIP"}.get(p.returncode, "FAIL")
        tail = "" if result != "FAIL" else f"(exit status {p.returncode})\n"
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        result, tail = "FAIL", f"(timed out after {limit:g} s and killed)\n"
    return result, out.decode("utf-8", "replace") + tail, time.monotonic() - start


def run(listfile):
    with open(listfile) as f:
        tests = json.load(f)
    try:
        scale = float(os.environ.get("KEEL_TEST_TIME_SCALE", "1"))
    except ValueError:
        print(f"{TAG}: KEEL_TEST_TIME_SCALE={os.environ['KEEL_TEST_TIME_SCALE']!r} is not a "
              "number", flush=True)
        return 2
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    t0 = time.monotonic()
    print(f"{TAG}: begin {len(tests)} tests (time limits x{scale:g})", flush=True)
    for t in tests:
        why = OUT_OF_REACH.get(t["name"])
        if why:
            counts["SKIP"] += 1
            print(f"{TAG}: SKIP {t['name']} (0.0 s) out of the lab's reach: {why}", flush=True)
            continue
        result, out, secs = run_one(t, scale)
        counts[result] += 1
        for line in out.replace("\r", "").rstrip("\n").split("\n"):
            print(f"{TAG}| {t['name']}| {line}")
        print(f"{TAG}: {result} {t['name']} ({secs:.1f} s)", flush=True)
    print(f"{TAG}: done: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} "
          f"skipped in {time.monotonic() - t0:.0f} s", flush=True)
    return 1 if counts["FAIL"] else 0


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
    if argv[:1] == ["wanted"] and len(argv) == 1:
        return wanted()
    if argv[:1] == ["list"] and len(argv) == 4:
        json.dump(make_list(*argv[1:]), sys.stdout, indent=1)
        print()
        return 0
    if argv[:1] == ["run"] and len(argv) == 2:
        return run(argv[1])
    if argv[:1] == ["report"] and len(argv) == 3:
        return report(*argv[1:])
    print("usage:\n" + usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
