#!/usr/bin/env python3
"""The lab's tiers of the host tier's tests (docs/testing.md, docs/lab.md). On a host whose
kernel offers no KVM the host tier skips every test that starts a guest; the lab, which has
real KVM (QEMU TCG with an emulated AMD-V CPU), runs those tests there, with the command lines
meson gives them (read from the build's `meson introspect --tests` data, so the list never
drifts from the meson.build files), under the ASan+UBSan build (build-asan, test hooks on).
Two tiers (TIERS), each a scenario of its own: `guests` (95-guests-tier: meson's suite
`guests` and the `vmm` tests in VMM_TESTS) and `daemon` (96-daemon-tier: the `daemon` suite's
cases that start a VM; those in DAEMON_TESTS run, the others are reported as not run, with
the reason).

    guests_tier.py tiers
        the tiers' names, one a line
    guests_tier.py plan TIER VMM ONLY
        whether run.sh runs TIER with LAB_VMM=VMM and LAB_ONLY=ONLY: exit 0 yes; 1 no, a
        line saying why; 3 no, and KEEL_TEST_NO_SKIP=1 makes that a failure (this host's
        kernel offers no KVM, so the host tier skipped the tests, and LAB_GUESTS_TIER=off or
        LAB_VMM=qemu left them out here too: they ran nowhere), a line "lab: FAIL ..."; 2 a
        bad LAB_GUESTS_TIER
    guests_tier.py list TIER BUILD STAGE LABROOT
        print TIER's tests as JSON, every path in their commands moved from BUILD and the
        source tree to LABROOT/build and LABROOT/src (where the lab mounts STAGE); fails
        naming any test whose command needs a file STAGE lacks, or whose protocol is not
        exitcode
    guests_tier.py run TIER LIST [SECONDS]
        (in the lab) run each test of LIST in turn under its meson time limit times
        KEEL_TEST_TIME_SCALE, its result judged as meson would (should_fail inverts it); print
        its output and one result line. Every process a test leaves behind, in a session of
        its own or not, is killed when it ends. With SECONDS the whole run stops after that
        long (the tests not yet run are not run; the report fails them)
    guests_tier.py report TIER LOG OUTDIR
        (on the host) from the lab's console LOG: each test's output in OUTDIR/NAME.log, the
        failures' output, the counts ("tier guests-lab ran N, ..."); exit 1 when a test
        failed or did not run, or (KEEL_TEST_NO_SKIP=1) was skipped
"""
import ctypes
import functools
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
# The daemon tier's cases (tests/daemon/e2e.py, meson's `daemon-CASE`): of those that start a
# VM (not in e2e.py's NO_VM, which the host tier runs on any host), the ones the lab runs,
# chosen for what they check and for time (the tier must add only minutes to make test:
# docs/testing.md has each one's time in the lab), and run in this order, so that a tier cut
# off by its time limit loses the least: the storage and network data paths (issue 16), the
# lifecycle basics, then SCSI, running checkpoints, keeld's restart, vsock, the worker jail,
# switches, backup, events and the host's shutdown.
DAEMON_TESTS = (
    "daemon-disk-qos", "daemon-disk-qos-scsi", "daemon-vhost", "daemon-net-hotplug-vhost",
    "daemon-net-multiqueue", "daemon-net-hotplug",
    "daemon-lifecycle", "daemon-save", "daemon-checkpoint", "daemon-console", "daemon-crash",
    "daemon-stop",
    "daemon-scsi", "daemon-checkpoint-running", "daemon-checkpoint-scsi", "daemon-reattach",
    "daemon-vsock", "daemon-jail", "daemon-switches", "daemon-backup", "daemon-events",
    "daemon-host-shutdown",
)
# Why every other case that starts a VM is not run in the lab: it is counted as skipped and
# named in a note, as OUT_OF_REACH's are, never dropped unseen.
DAEMON_LEFT_OUT = ("not among the daemon tier's cases (DAEMON_TESTS, tests/lab/guests_tier.py): "
                   "the lab's time for the tier holds those only (docs/testing.md)")
# meson test's sanitizer options: newer meson (not Debian 12's 1.0) sets them for each test
# whose environment has none or an empty one; the tier does the same whatever the host's meson.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_summary=1",
    "UBSAN_OPTIONS": "halt_on_error=1:abort_on_error=1:print_summary=1:print_stacktrace=1",
}
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name, path):
    """The module NAME from the file TOP/PATH (in the lab too: the drive holds both trees)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOP, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plan_of(tier, choice, vmm, only, lacks_kvm, no_skip):
    """(status, line) of `plan` for TIER (a TIERS key): LAB_GUESTS_TIER=CHOICE, LAB_VMM=VMM,
    LAB_ONLY=ONLY, LACKS_KVM this host's kernel offers no KVM, NO_SKIP KEEL_TEST_NO_SKIP=1."""
    if choice not in ("auto", "on", "off"):
        return 2, f"guests_tier: LAB_GUESTS_TIER={choice!r} is none of auto, on, off"
    scenario, what = TIERS[tier]["scenario"], TIERS[tier]["what"]
    nowhere = (f"this host's kernel offers no KVM, so the host tier skipped {what} and they ran "
               "nowhere")
    words = [w for w in re.split(r"[,\s]+", only) if w]
    if words and not any(w in scenario for w in words):
        # A narrowing the developer asked for: said, never a failure.
        if not lacks_kvm and choice != "on":
            return 1, ""
        return 1, (f"lab: {scenario} left out by LAB_ONLY={only} (asked for: reported, not "
                   "failed, even under KEEL_TEST_NO_SKIP=1)" + (f"; {nowhere}" if lacks_kvm
                                                                 else ""))
    if choice == "off":
        why = "LAB_GUESTS_TIER=off"
    elif choice == "auto" and not lacks_kvm:
        return 1, (f"lab: {scenario} left out: this host has KVM: the host tier runs its tests "
                   "(LAB_GUESTS_TIER=on runs it here too)")
    elif vmm != "keel":
        why = f"LAB_VMM={vmm} (the tier tests keel-vmm)"
    else:
        return 0, ""
    if not lacks_kvm:
        return 1, f"lab: {scenario} left out by {why}"
    if no_skip:
        return 3, (f"lab: FAIL KEEL_TEST_NO_SKIP=1 (CI) and {scenario} was left out by {why}: "
                   f"{nowhere} (LAB_ONLY may leave it out; these may not)")
    return 1, f"lab: {scenario} left out by {why}: {nowhere}"


def plan(tier, vmm, only):
    lacks_kvm = load("summary", "tests/summary.py").host_lacks_kvm()
    status, line = plan_of(tier, os.environ.get("LAB_GUESTS_TIER", "auto"), vmm, only,
                           lacks_kvm, os.environ.get("KEEL_TEST_NO_SKIP") == "1")
    if line:
        print(line, file=sys.stderr if status == 2 else sys.stdout)
    return status


def suites_of(test):
    return [s.split(":")[-1] for s in test["suite"]]


def guests_takes(test):
    suites = suites_of(test)
    return "guests" in suites or ("vmm" in suites and test["name"] in VMM_TESTS)


@functools.lru_cache(maxsize=None)
def e2e_no_vm():
    return load("e2e", "tests/daemon/e2e.py").NO_VM


def daemon_takes(test):
    """A daemon case that starts a VM: the host tier skips it on a host without KVM (e2e.py's
    NO_VM run there; e2e.py read on the host only, at `list`)."""
    no_vm = e2e_no_vm()
    return ("daemon" in suites_of(test) and test["name"].startswith("daemon-")
            and test["name"][len("daemon-"):] not in no_vm)


# Each tier: the TAG of its console lines, its scenario, what its tests are (for the lines of
# `plan`), which of meson's tests it takes, the tests it must find (a name renamed or gone
# fails the listing rather than drop out unseen: it would run nowhere on a host without KVM),
# why a test it takes is not run in the lab (None: it runs) and the order of its run (None:
# meson's). What a tier prints on the lab's console: "TAG: begin N", a line per test's output
# "TAG| NAME| LINE", its result "TAG: PASS|FAIL|SKIP NAME (S s)" (a SKIP of a test the lab
# does not run followed by "not run in the lab: REASON"), and at the end "TAG: done ...".
TIERS = {
    "guests": {"tag": "guests-lab", "scenario": "95-guests-tier", "what": "the guests tests",
               "takes": guests_takes, "named": ("VMM_TESTS", VMM_TESTS),
               "not_run": OUT_OF_REACH.get, "order": None},
    "daemon": {"tag": "daemon-lab", "scenario": "96-daemon-tier",
               "what": "the daemon cases that start a VM", "takes": daemon_takes,
               "named": ("DAEMON_TESTS", DAEMON_TESTS),
               "not_run": lambda name: None if name in DAEMON_TESTS else DAEMON_LEFT_OUT,
               "order": lambda name: (DAEMON_TESTS + (name,)).index(name)},
}


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


def make_list(tier, build, stage, labroot):
    build = os.path.realpath(build)
    with open(os.path.join(build, "meson-info", "intro-projectinfo.json")) as f:
        info = json.load(f)
    with open(os.path.join(build, "meson-info", "meson-info.json")) as f:
        src = os.path.realpath(json.load(f)["directories"]["source"])
    with open(os.path.join(build, "meson-info", "intro-tests.json")) as f:
        tests = [t for t in json.load(f) if TIERS[tier]["takes"](t)]
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
    if tier == "guests":
        missing += [f"{n}: in OUT_OF_REACH (guests_tier.py) but not a test"
                    for n in sorted(set(OUT_OF_REACH) - names)]
    const, named = TIERS[tier]["named"]
    missing += [f"{n}: in {const} (guests_tier.py) but not a test of the {tier} tier"
                for n in sorted(set(named) - names)]
    if missing:
        raise SystemExit("guests_tier: the lab cannot run these tests as meson does:\n  "
                         + "\n  ".join(missing))
    order = TIERS[tier]["order"]
    return sorted(out, key=lambda t: order(t["name"])) if order else out


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


def stop_all(tag, keep=()):
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
        raise SystemExit(f"{tag}: still running 5 s after SIGKILL: "
                         + ", ".join(f"{n} ({p})" for p, s, n in descendants() if s not in "ZX"))
    for pid, state, name in descendants():  # zombies, all children of the subreaper now
        if pid not in keep:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    return killed


def run_one(tag, t, scale, until):
    """Run test T; (result, output, seconds). UNTIL: the run's deadline (time.monotonic) or
    None. TAG: the tier's, for a message."""
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
            killed = stop_all(tag, keep=(p.pid,))
            p.wait()
            reader.join()
            why = (f"the tier's time ran out after {time.monotonic() - start:.0f} s" if cut
                   else f"timed out after {limit:g} s")
            return "FAIL", output[0].decode("utf-8", "replace") + (
                f"({why}; killed: {', '.join(killed) or 'nothing was left'})\n"
            ), time.monotonic() - start
    except Stopped:
        stop_all(tag, keep=(p.pid,))
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
    left = stop_all(tag)
    reader.join()
    if left:
        tail += f"(left running when it ended, and killed: {', '.join(left)})\n"
    return result, output[0].decode("utf-8", "replace") + tail, time.monotonic() - start


def run(tier, listfile, seconds=None):
    tag, not_run = TIERS[tier]["tag"], TIERS[tier]["not_run"]
    scale = load("time_scale", "tests/guests/time_scale.py").time_scale(tag)
    try:
        budget = None if seconds is None else float(seconds)
    except ValueError:
        budget = 0
    if budget is not None and not budget > 0:
        raise SystemExit(f"{tag}: the run's SECONDS {seconds!r} is not a positive number")
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
            raise SystemExit(f"{tag}: prctl({option}): {os.strerror(ctypes.get_errno())}")
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    t0 = time.monotonic()
    until = None if budget is None else t0 + budget
    print(f"{tag}: begin {len(tests)} tests (time limits x{scale:g}"
          + ("" if budget is None else f", at most {budget:g} s in all") + ")", flush=True)
    try:
        if os.getppid() != parent:
            raise Stopped("the parent's death before PR_SET_PDEATHSIG")
        for i, t in enumerate(tests):
            why = not_run(t["name"])
            if why:
                counts["SKIP"] += 1
                print(f"{tag}: SKIP {t['name']} (0.0 s) not run in the lab: {why}", flush=True)
                continue
            if until is not None and time.monotonic() >= until:
                print(f"{tag}: STOP the tier's {budget:g} s ran out: {len(tests) - i} tests not "
                      "run", flush=True)
                break
            result, out, secs = run_one(tag, t, scale, until)
            counts[result] += 1
            for line in out.replace("\r", "").rstrip("\n").split("\n"):
                print(f"{tag}| {t['name']}| {line}")
            print(f"{tag}: {result} {t['name']} ({secs:.1f} s)", flush=True)
    except Stopped as e:
        stop_all(tag)
        print(f"{tag}: STOP by {e}: every process of the tier killed", flush=True)
        return 1
    print(f"{tag}: done: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} "
          f"skipped in {time.monotonic() - t0:.0f} s", flush=True)
    return 1 if counts["FAIL"] or sum(counts.values()) < len(tests) else 0


def report(tier, log, outdir):
    tag = TIERS[tier]["tag"]
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    begins = [i for i, l in enumerate(lines) if l.startswith(f"{tag}: begin ")]
    total = int(lines[begins[-1]].split()[2]) if begins else 0
    output, results, reach, done = {}, {}, {}, False
    for l in lines[begins[-1]:] if begins else []:
        m = re.match(rf"{tag}\| ([^|]+)\| (.*)", l)
        if m:
            output.setdefault(m.group(1), []).append(m.group(2))
            continue
        m = re.match(rf"{tag}: (PASS|FAIL|SKIP) (\S+) \(([0-9.]+) s\)( not run in the lab: (.*))?",
                     l)
        if m:
            results[m.group(2)] = (m.group(1), float(m.group(3)))
            if m.group(5):
                reach[m.group(2)] = m.group(5)
        done = done or l.startswith(f"{tag}: done: ")
    os.makedirs(outdir, exist_ok=True)
    for name, body in output.items():
        with open(os.path.join(outdir, name + ".log"), "w") as f:
            f.write("\n".join(body) + "\n")
    n = {r: sum(1 for v in results.values() if v[0] == r) for r in ("PASS", "FAIL", "SKIP")}
    for name, (r, secs) in results.items():
        if r == "FAIL":
            print(f"{tag}: ---- {name} failed ({secs:.1f} s); {outdir}/{name}.log:")
            print("\n".join("  | " + l for l in output.get(name, [])))
    failed = n["FAIL"]
    if not begins:
        print(f"{tag}: FAIL the lab never began the {tier} tier (see {log})")
        failed += 1
    elif not done or len(results) < total:
        print(f"{tag}: FAIL the lab ran {len(results)} of the tier's {total} tests (see {log})")
        failed += max(1, total - len(results))  # all there but no end: the run was cut off
    for why in dict.fromkeys(reach.values()):  # one note a reason, in the tests' order
        names = [k for k, v in reach.items() if v == why]
        print(f"{tag}: note: {', '.join(names)} {'is' if len(names) == 1 else 'are'} left to "
              f"hosts with KVM: {why}")
    skipped = n["SKIP"]
    bad = [k for k, v in results.items() if v[0] == "SKIP" and k not in reach]
    if bad and os.environ.get("KEEL_TEST_NO_SKIP") == "1":
        print(f"{tag}: FAIL KEEL_TEST_NO_SKIP=1 (CI) and these tests were skipped: "
              + ", ".join(bad))
        failed, skipped = failed + len(bad), skipped - len(bad)
    secs = sum(v[1] for v in results.values())
    print(f"{tag}: {len(results)} tests in {secs / 60:.1f} min; outputs in {outdir}")
    print("tier %-8s ran %3d, passed %3d, skipped %3d, failed %3d" %
          (tag, n["PASS"] + failed, n["PASS"], skipped, failed))
    return 1 if failed else 0


def main(argv):
    usage = __doc__.split("\n\n")[1]
    if argv == ["tiers"]:
        print("\n".join(TIERS))
        return 0
    if len(argv) > 1 and argv[1] not in TIERS:
        print(f"guests_tier: no tier {argv[1]!r} (tiers: {', '.join(TIERS)})", file=sys.stderr)
        return 2
    if argv[:1] == ["plan"] and len(argv) == 4:
        return plan(*argv[1:])
    if argv[:1] == ["list"] and len(argv) == 5:
        json.dump(make_list(*argv[1:]), sys.stdout, indent=1)
        print()
        return 0
    if argv[:1] == ["run"] and len(argv) in (3, 4):
        return run(*argv[1:])
    if argv[:1] == ["report"] and len(argv) == 4:
        return report(*argv[1:])
    print("usage:\n" + usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
