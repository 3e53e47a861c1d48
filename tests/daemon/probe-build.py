#!/usr/bin/env python3
"""The seccomp probe (src/vmm/dev/seccomp_probe.h) exists in test builds only.

Runs keel-vmm unjailed with daemon-guest, which writes the vCPU request to the probe's port
and says what the port reads back (daemon-guest's "probe N"). A test build (-Dtest_hooks=true)
has the device: the request's call returns in an unjailed worker (no filter), so the port
counts 1 and the worker logs it. A release build has no device: the write goes nowhere, the
port reads all ones, and the binary does not even hold the device's name.
usage: probe-build.py KEEL_VMM DAEMON_GUEST test|release
Exits 0 (pass), 1 (fail) or 77 (skip: no /dev/kvm).
"""
import os
import re
import select
import subprocess
import sys
import time

vmm, guest, build = sys.argv[1:4]
if not os.access("/dev/kvm", os.R_OK | os.W_OK):
    print("SKIP: /dev/kvm is missing or not accessible")
    sys.exit(77)
failed = []
binary = open(vmm, "rb").read()
has_name = b"seccomp-probe" in binary
# The check can fail: the binary holds its other devices' names either way.
if b"debug-exit" not in binary:
    failed.append("%s holds no device names at all: not a keel-vmm" % vmm)
if has_name != (build == "test"):
    failed.append("a %s build's keel-vmm %s the seccomp probe's name" %
                  (build, "lacks" if build == "test" else "holds"))

p = subprocess.Popen([vmm, "--kernel", guest, "--memory", "32M", "--no-rng", "--serial", "stdio"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out = b""


def until(pattern, timeout=60):
    global out
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, out)
        if m:
            return m
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            d = os.read(p.stdout.fileno(), 65536)
            if not d:
                break
            out += d
    return None


try:
    if not until(rb"daemon-guest: ready for input"):
        failed.append("daemon-guest never got ready: %r" % out[-500:])
    else:
        p.stdin.write(b"probe 0x5ec00001\n")
        p.stdin.flush()
        m = until(rb"daemon-guest: probe reads (0x[0-9a-f]+)\r?\n")
        want = b"0x1" if build == "test" else b"0xffffffff"
        if not m or m.group(1) != want:
            failed.append("the probe's port read %r after the vCPU request, not %r (%s build)" %
                          (m and m.group(1), want, build))
        p.stdin.write(b"poweroff\n")
        p.stdin.flush()
        p.wait(timeout=60)
finally:
    if p.poll() is None:
        p.kill()
        p.wait()
err = p.stderr.read().decode(errors="replace")
said = "seccomp probe: unlinkat returned" in err
if said != (build == "test"):
    failed.append("keel-vmm's log %s the probe's call: %r" % ("lacks" if build == "test" else
                                                              "has", err[-500:]))
if p.returncode != 0:
    failed.append("keel-vmm ended with status %d: %r" % (p.returncode, err[-500:]))
for f in failed:
    print("FAIL: " + f)
if not failed:
    print("ok: a %s build's keel-vmm %s" %
          (build, "has the seccomp probe" if build == "test" else "has no seccomp probe"))
sys.exit(1 if failed else 0)
