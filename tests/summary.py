#!/usr/bin/env python3
"""Per-tier counts of a `meson test` run (make test-host): how many tests of each suite ran,
passed, were skipped and failed, read from BUILD/meson-logs/testlog.json.

With KEEL_TEST_NO_SKIP=1 (set by .ci/run) a skipped test fails the run: CI must not pass by
skipping what it was meant to check. One reason is the host's and is said, not failed: a
host with no /dev/kvm at all (a cloud VM whose kernel has no KVM to offer: no guest can run
on it directly) skips the tests that run guests on the host's KVM, each saying so; they are
counted and named apart ("no /dev/kvm"), the lab tier runs real guests there all the same
(its QEMU emulates the CPU), and a skip naming /dev/kvm on a host that has it still fails.
Exit status: 0, or 1 when a test failed or, in that mode, was skipped for another reason."""
import json
import os
import sys


def host_lacks_kvm():
    """The host's kernel offers no KVM at all: no /dev/kvm and no KVM device registered (a
    kvm misc device in /proc/misc), not merely a device node this user or container cannot
    see or open (a container started without /dev/kvm on a host that has KVM: that still
    fails CI)."""
    if os.path.exists("/dev/kvm"):
        return False
    try:
        with open("/proc/misc") as f:
            return not any(line.split()[1:] == ["kvm"] for line in f)
    except OSError:
        return False


def skipped_for_kvm(t):
    """A skip whose test said that it needs /dev/kvm."""
    return "/dev/kvm" in (t.get("stdout") or "") + (t.get("stderr") or "")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build-asan"
    log = os.path.join(build, "meson-logs", "testlog.json")
    tiers = {}
    skipped_names, no_kvm = [], []
    lacks_kvm = host_lacks_kvm()
    with open(log) as f:
        for line in f:
            t = json.loads(line)
            suite = t["name"].split(" / ")[0].split(":")[-1]
            c = tiers.setdefault(suite, {"ran": 0, "passed": 0, "skipped": 0, "failed": 0})
            if t["result"] == "SKIP":
                c["skipped"] += 1
                if lacks_kvm and skipped_for_kvm(t):
                    no_kvm.append(t["name"])
                else:
                    skipped_names.append(t["name"])
                continue
            c["ran"] += 1
            if t["result"] in ("OK", "EXPECTEDFAIL"):
                c["passed"] += 1
            else:
                c["failed"] += 1
    total = {"ran": 0, "passed": 0, "skipped": 0, "failed": 0}
    for suite in sorted(tiers):
        c = tiers[suite]
        for k in total:
            total[k] += c[k]
        print("tier %-8s ran %3d, passed %3d, skipped %3d, failed %3d" %
              (suite, c["ran"], c["passed"], c["skipped"], c["failed"]))
    print("tier %-8s ran %3d, passed %3d, skipped %3d, failed %3d" %
          ("host", total["ran"], total["passed"], total["skipped"], total["failed"]))
    if no_kvm:
        print("note: this host's kernel offers no KVM (no /dev/kvm, none in /proc/misc): %d tests that run guests on the host's KVM were "
              "skipped, each saying so (the lab runs real guests under its own KVM; its guests tier "
              "runs those of the guests and vmm suites, its daemon tier the daemon cases of "
              "DAEMON_TESTS in tests/lab/guests_tier.py: docs/testing.md): %s" %
              (len(no_kvm), ", ".join(sorted(n.split(" / ")[-1] for n in no_kvm))))
    if total["failed"]:
        return 1
    if skipped_names and os.environ.get("KEEL_TEST_NO_SKIP") == "1":
        print("FAIL: KEEL_TEST_NO_SKIP=1 (CI) and these tests were skipped: %s" %
              ", ".join(skipped_names))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
