#!/usr/bin/env python3
"""bench/jail: what the worker jail costs at start-up. keel-vmm runs a tiny guest that ends
itself at once (tests/guests debug-exit) N times unjailed and N times jailed (--jail-user,
--jail-root, /dev/kvm passed as keeld passes it), alternating; prints the medians of the wall
time from exec to exit, of the CPU time and of the peak resident memory (each run's own, from
wait4), and the difference. Needs root and /dev/kvm."""
import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time


def run(cmd, pass_fds=()):
    """One run: wall ms, CPU ms and peak resident MiB of that process alone (wait4)."""
    with tempfile.TemporaryFile() as errf:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, pass_fds=pass_fds, stdout=subprocess.DEVNULL, stderr=errf)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = code = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        # The guest's debug-exit write V ends it with (V << 1) | 1; 1 is an error.
        if code <= 1 or not code & 1:
            raise SystemExit("bench/jail: %s ended %d: %s" % (cmd[0], code,
                                                              errf.read().decode()[-400:]))
    return wall * 1000, (ru.ru_utime + ru.ru_stime) * 1000, ru.ru_maxrss / 1024


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
    for i, what in ((0, "wall ms"), (1, "CPU ms"), (2, "peak RSS MiB")):
        u = statistics.median(r[i] for r in plain)
        j = statistics.median(r[i] for r in jailed)
        print("keel-vmm exec to exit, %s (%d runs): unjailed %.1f, jailed %.1f, jail %+.1f"
              % (what, a.runs, u, j, j - u))


if __name__ == "__main__":
    main()
