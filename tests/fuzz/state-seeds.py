#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""fuzz-vmm-state's seeds: a save of the VM the target builds (fuzz-vmm-state.c), made by a
real keel-vmm, written as tests/fuzz/seeds/fuzz-vmm-state/valid-2cpu-mq (mode byte 0) and
valid-2cpu-mq-fixup (mode byte 1). A seed must pass the target's whole check, or mutations
stop at the section it fails: run this again when the VM's sections or the target's VM
change.

    tests/fuzz/state-seeds.py BUILD_DIR    (keel-vmm and tests/daemon/daemon-guest.elf built)
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
vmm = os.path.join(build, "src/vmm/keel-vmm")
kernel = os.path.join(build, "tests/daemon/daemon-guest.elf")
out = os.path.join(top, "tests/fuzz/seeds/fuzz-vmm-state")

with tempfile.TemporaryDirectory() as work:
    ctl = os.path.join(work, "control.sock")
    # The multi-queue tap's two queues: socket pairs (as run-guest.py's virtio-net-mq).
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    fds = [p[0].fileno() for p in pairs]
    cmd = [vmm, "--kernel", kernel, "--cmdline", "", "--debug-exit", "--serial", "stdio",
           "--cpus", "2", "--memory", "64M", "--control", ctl,
           "--net", "tap=kmq0,mac=52:54:00:12:34:56,slot=2,queues=2,vhost=off",
           "--fd", f"net.0={fds[0]}", "--fd", f"net.0.q1={fds[1]}"]
    err = open(os.path.join(work, "stderr"), "w+")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err, pass_fds=fds, start_new_session=True)
    try:
        for _ in range(100):
            if os.path.exists(ctl):
                break
            time.sleep(0.1)
        s = socket.socket(socket.AF_UNIX)
        s.connect(ctl)
        f = s.makefile("rw")
        save = os.path.join(work, "save")
        f.write(json.dumps({"execute": "save", "arguments": {"dir": save}}) + "\n")
        f.flush()
        reply = json.loads(f.readline())
        if "return" not in reply:
            sys.exit(f"state-seeds: save refused: {reply}")
        state = open(os.path.join(save, "state"), "rb").read()
    finally:
        proc.kill()
        proc.wait()
        err.seek(0)
        sys.stderr.write(err.read())
    for name, mode in (("valid-2cpu-mq", b"\0"), ("valid-2cpu-mq-fixup", b"\1")):
        with open(os.path.join(out, name), "wb") as o:
            o.write(mode + state)
    print(f"state-seeds: {len(state)} bytes of state in {out}/valid-2cpu-mq*")
