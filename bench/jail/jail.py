#!/usr/bin/env python3
"""bench/jail: what the worker jail costs at start-up. keel-vmm runs a tiny guest that ends
itself at once (tests/guests debug-exit) N times unjailed and N times jailed (--jail-user,
--jail-root, /dev/kvm passed as keeld passes it), alternating; prints the medians of the wall
time from exec to exit and of the CPU time, and the difference. Needs root and /dev/kvm."""
import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time


def run(cmd, pass_fds=()):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(cmd, pass_fds=pass_fds, capture_output=True, timeout=60)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The guest's debug-exit write V ends it with (V << 1) | 1; 1 is an error.
    if r.returncode <= 1 or not r.returncode & 1:
        raise SystemExit("bench/jail: %s ended %d: %s" % (cmd[0], r.returncode,
                                                          r.stderr.decode()[-400:]))
    return wall * 1000, cpu * 1000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--keel-vmm", required=True)
    p.add_argument("--guest", required=True)
    p.add_argument("--runs", type=int, default=20)
    a = p.parse_args()
    base = [a.keel_vmm, "--kernel", a.guest, "--memory", "16M", "--serial", "off",
            "--debug-exit", "--no-rng"]
    plain, jailed = [], []
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o751)
        kvm = os.open("/dev/kvm", os.O_RDWR)
        os.set_inheritable(kvm, True)
        jail = base + ["--fd", "kvm=%d" % kvm, "--status-file", os.path.join(d, "status.json"),
                       "--jail-user", "3221291000:3221291000", "--jail-root", d]
        for _ in range(a.runs):
            plain.append(run(base))
            jailed.append(run(jail, (kvm,)))
    for i, what in ((0, "wall ms"), (1, "CPU ms")):
        u = statistics.median(r[i] for r in plain)
        j = statistics.median(r[i] for r in jailed)
        print("keel-vmm exec to exit, %s (%d runs): unjailed %.1f, jailed %.1f, jail +%.1f"
              % (what, a.runs, u, j, j - u))


if __name__ == "__main__":
    main()
