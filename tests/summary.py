#!/usr/bin/env python3
"""Per-tier counts of a `meson test` run (make test-host): how many tests of each suite ran,
passed, were skipped and failed, read from BUILD/meson-logs/testlog.json.

With KEEL_TEST_NO_SKIP=1 (set by .ci/run) a skipped test fails the run: CI must not pass by
skipping what it was meant to check (a tier that cannot run, for example without /dev/kvm,
is an error there, not a silent success). Exit status: 0, or 1 when a test failed or, in
that mode, was skipped."""
import json
import os
import sys


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build-asan"
    log = os.path.join(build, "meson-logs", "testlog.json")
    tiers = {}
    skipped_names = []
    with open(log) as f:
        for line in f:
            t = json.loads(line)
            suite = t["name"].split(" / ")[0].split(":")[-1]
            c = tiers.setdefault(suite, {"ran": 0, "passed": 0, "skipped": 0, "failed": 0})
            if t["result"] == "SKIP":
                c["skipped"] += 1
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
    if total["failed"]:
        return 1
    if skipped_names and os.environ.get("KEEL_TEST_NO_SKIP") == "1":
        print("FAIL: KEEL_TEST_NO_SKIP=1 (CI) and these tests were skipped: %s" %
              ", ".join(skipped_names))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
