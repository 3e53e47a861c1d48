#!/usr/bin/env python3
"""Saved-state cases for keel-vmm: save a running tiny guest, restore it in a new keel-vmm.

    run-state.py --keel-vmm PATH --guests DIR CASE
    run-state.py --list

Cases (docs/state.md, docs/testing.md):
  state-save-restore       pause stops the counting guest and resume continues it; save it
                           mid-way; the source VM resumes and finishes unchanged; a new
                           keel-vmm restored from the save carries on from the next line
  state-save-restore-smp   the same with 2 vCPUs (the AP waits for its SIPI across the save)
  state-restore-reset      a restored VM that is reset boots the guest afresh
  state-restore-control    --paused starts a VM that waits for resume; "restore" over the
                           control socket takes a running VM back to a save (paused if
                           asked); a restore from a bad directory is refused and the VM
                           carries on
  state-virtio             a guest using virtio-rng (MSI-X, event index, a moved BAR) is
                           saved, restored in a new keel-vmm and goes on using it; damaged
                           or mismatched virtio sections are refused
  state-scsi-qos           state-blk-qos's storage QoS on a disk at LUN 0 of the virtio-scsi
                           controller (the guest's mode=scsi keeps a ring of reads in flight)
  state-scsi-media         a VM with a virtio-scsi disk and DVD drive: bad DVD images are
                           refused with one line at start and over the control socket
                           ("dvd") and change nothing; a medium is changed, saved, restored
                           in a new keel-vmm (which has the changed medium) and ejected
  state-hotplug            network adapters added and removed over the control socket
                           (nic-add with a passed descriptor, nic-list, nic-remove, forced):
                           bad requests refused, saving refused while an add or a removal
                           is under way, the card's descriptor closed when it is taken away,
                           the guest counting on throughout
  state-hotplug-jail       the same in a jailed worker (root only)
  state-hotplug-guest      a guest doing the AML's part by hand: it finds the added card
                           through the GPE and UP, and ejects it when asked; the worker
                           tears the card down on the eject and the slot empties
  state-hotplug-fail       (test builds) a hot add failing at each failure point: refused,
                           nothing left, the next add takes the same slot
  state-hotplug-pause-fail (test builds) removals whose pause fails: a forced one refused,
                           the card kept; a guest's eject tried again until it goes through
  state-bad-files          damaged, mismatched or oversized saves are refused with one clear
                           line on stderr, the guest never runs, and no file changes
Exit status: 0 pass, 1 fail, 77 skipped (no usable /dev/kvm).
"""

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("run_guest", os.path.join(HERE, "run-guest.py"))
rg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rg)

TICK = re.compile(r"state: tick (\d+) pit (\d+) lapic (\d+)")
TOTAL = 40


class Failure(Exception):
    pass


# ---- the state file format (src/vmm/state.c), for making damaged copies ----

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def parse_state(data):
    magic, version, hsize, fsize, count, _ = struct.unpack_from("<8sIIQII", data, 0)
    assert magic == b"KEELSAVE" and fsize == len(data), "not a good state file"
    off, sections = hsize, []
    for _ in range(count):
        name = data[off:off + 32].rstrip(b"\0").decode()
        sver, _, size = struct.unpack_from("<IIQ", data, off + 32)
        off += 48
        sections.append([name, sver, bytes(data[off:off + size])])
        off += size + (-size % 8)
    return version, sections


def build_state(sections, version=1):
    body = b""
    for name, sver, payload in sections:
        body += name.encode().ljust(32, b"\0") + struct.pack("<IIQ", sver, 0, len(payload))
        body += payload + b"\0" * (-len(payload) % 8)
    size = 32 + len(body) + 8
    head = b"KEELSAVE" + struct.pack("<IIQII", version, 32, size, len(sections), 0)
    data = head + body
    return data + struct.pack("<II", crc32c(data), 0)


# ---- running keel-vmm ----

class Vmm:
    def __init__(self, keel_vmm, kernel, workdir, tag, cpus, memory, restore=None, args="",
                 extra=(), pass_fds=()):
        self.control = os.path.join(workdir, f"control-{tag}.sock")
        cmd = [keel_vmm, "--kernel", kernel, "--cmdline", args, "--debug-exit", "--serial",
               "stdio", "--cpus", str(cpus), "--memory", memory, "--control", self.control]
        if restore:
            cmd += ["--restore", restore]
        cmd += list(extra)
        self.cmd = cmd
        print("run-state: " + " ".join(repr(c) if (" " in c or not c) else c for c in cmd))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True,
                                     pass_fds=pass_fds)
        for fd in pass_fds:
            os.close(fd)  # the worker has it
        self.out = rg.Reader(self.proc.stdout)
        self.err = rg.Reader(self.proc.stderr)
        self.out.start()
        self.err.start()
        self.sock = None

    def connect(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"keel-vmm ended with status {self.proc.returncode} before its "
                              f"control socket appeared: {self.err.text().strip()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.control)
                self.sock = s
                self.rfile = s.makefile("r")
                return
            except OSError:
                s.close()
                time.sleep(0.02)
        raise Failure("the control socket never appeared")

    def request(self, obj):
        self.sock.sendall((json.dumps(obj) + "\n").encode())
        line = self.rfile.readline()
        if not line:
            raise Failure(f"no reply to {obj}: keel-vmm closed the socket")
        return json.loads(line)

    def ok(self, obj):
        reply = self.request(obj)
        if "return" not in reply:
            raise Failure(f"{obj} failed: {reply}")
        return reply["return"]

    def ticks(self):
        return ticks_of(self.out.text())

    def wait_tick(self, n, deadline):
        if not self.out.wait_for(rf"state: tick {n} pit \d+ lapic \d+", deadline):
            raise Failure(f"the guest never printed line {n}; serial output:\n"
                          + self.out.text() + "\nstderr:\n" + self.err.text())

    def wait(self, deadline):
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            view = self.device_view()
            self.kill()
            raise Failure("keel-vmm did not end in time; serial output:\n" + self.out.text()
                          + "\nstderr:\n" + self.err.text() + "\ndevices:\n" + view)

    def device_view(self):
        """keel-vmm's own view of its devices (control 'devices': queue indices, MSI-X), so
        that a guest that stops says which side stopped; '' when it cannot be had."""
        try:
            if not self.sock:
                self.connect(time.monotonic() + rg.seconds(2))
            self.sock.settimeout(rg.seconds(5))
            return "\n".join(self.ok({"execute": "devices"}).get("devices", []))
        except (Failure, OSError, ValueError) as e:
            return f"(not available: {e})"

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def finish(self):
        if self.sock:
            self.sock.close()
        self.out.join(5)
        self.err.join(5)


def complete_lines(text):
    """TEXT up to its last newline: the lines that ended, without the one being written."""
    return text.rpartition("\n")[0]


def carried_on(src_text, dst_text):
    """The restored VM's serial output with its first line completed by what the source
    printed of it: a save can come in the middle of a line (a slow host), whose first bytes
    went out through the source's serial port and the rest through the restored one's."""
    return src_text.rpartition("\n")[2] + dst_text


def check_sequence(what, ticks, first, last):
    want = list(range(first, last + 1))
    if ticks != want:
        raise Failure(f"{what}: lines {ticks} are not exactly {first}..{last} in order")


def save_restore_case(keel_vmm, kernel, cpus):
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        save_dir = os.path.join(tmp, "save")
        src = Vmm(keel_vmm, kernel, tmp, "src", cpus, "64M", args=f"ticks={TOTAL}")
        try:
            src.connect(deadline)
            src.wait_tick(5, deadline)
            # Pause stops the counter; resume continues it.
            src.ok({"execute": "pause"})
            if src.ok({"execute": "status"})["state"] != "paused":
                raise Failure("status does not say paused after pause")
            time.sleep(0.1)
            paused_at = len(src.ticks())
            time.sleep(0.5)
            if len(src.ticks()) != paused_at:
                raise Failure(f"the guest printed {len(src.ticks()) - paused_at} lines while "
                              "paused")
            src.ok({"execute": "resume"})
            src.wait_tick(paused_at + 3, deadline)
            # Save mid-way: the VM is paused and stays paused.
            t0 = time.monotonic()
            src.ok({"execute": "save", "arguments": {"dir": save_dir}})
            save_s = time.monotonic() - t0
            if src.ok({"execute": "status"})["state"] != "paused":
                raise Failure("the VM is not paused after save")
            time.sleep(0.1)
            src_text = src.out.text()  # as it was at the save
            # The last line the source finished: a save inside a line's last number leaves a
            # line that reads whole but is not (carried_on completes it from the restored VM).
            saved_at = ticks_of(complete_lines(src_text))[-1]
            if saved_at >= TOTAL:
                raise Failure("the guest finished before the save; nothing to restore")
            files = sorted(os.listdir(save_dir))
            if files != ["memory", "state"]:
                raise Failure(f"the save directory holds {files}, expected memory and state")
            st = os.stat(os.path.join(save_dir, "memory"))
            print(f"run-state: saved after line {saved_at} in {save_s:.2f} s: state "
                  f"{os.path.getsize(os.path.join(save_dir, 'state'))} bytes, memory file "
                  f"{st.st_size} bytes of which {st.st_blocks * 512} allocated")
            if st.st_blocks * 512 > 16 << 20:
                raise Failure("the memory file of a 64 MiB guest that uses a few hundred KiB "
                              "is not sparse")
            digest = {f: hashlib.sha256(open(os.path.join(save_dir, f), "rb").read())
                      .hexdigest() for f in files}
            # The source VM is unchanged by the save: it resumes and finishes.
            src.ok({"execute": "resume"})
            status = src.wait(deadline)
            if status != rg.STATUS_PASS:
                raise Failure(f"the source VM ended with {rg.describe_status(status)} after "
                              f"the save:\n{src.out.text()}\n{src.err.text()}")
            check_sequence("source VM", src.ticks(), 1, TOTAL)
        finally:
            src.kill()
            src.finish()
        # A new keel-vmm carries on from the save.
        t0 = time.monotonic()
        dst = Vmm(keel_vmm, kernel, tmp, "dst", cpus, "64M", restore=save_dir,
                  args=f"ticks={TOTAL}")
        try:
            status = dst.wait(deadline)
            elapsed = time.monotonic() - t0
        finally:
            dst.kill()
            dst.finish()
        out = dst.out.text()
        print("--- restored VM serial output ---")
        print(out.rstrip())
        if dst.err.text().strip():
            print("--- restored VM stderr ---")
            print(dst.err.text().rstrip())
        if status != rg.STATUS_PASS:
            raise Failure(f"the restored VM ended with {rg.describe_status(status)}")
        if "state: counting" in out:
            raise Failure("the restored VM booted the guest again instead of carrying on")
        check_sequence("restored VM", ticks_of(carried_on(src_text, out)), saved_at + 1, TOTAL)
        # Both timers kept running after the restore: the LAPIC timer drives the lines, and
        # the PIT (100 Hz, 4 periods per line) must at least tick once per line on average.
        counts = [(int(m.group(2)), int(m.group(3))) for m in
                  (TICK.fullmatch(l) for l in out.split("\n")) if m]
        lines = len(counts) - 1
        pit, lapic = counts[-1][0] - counts[0][0], counts[-1][1] - counts[0][1]
        if pit < lines or lapic < lines * 10:
            raise Failure(f"after the restore, {lines} lines took {pit} PIT and {lapic} LAPIC "
                          "timer ticks: a timer stopped or slowed down")
        for f, d in digest.items():
            if hashlib.sha256(open(os.path.join(save_dir, f), "rb").read()).hexdigest() != d:
                raise Failure(f"restoring changed the saved {f} file")
        print(f"run-state: restored VM printed lines {saved_at + 1}..{TOTAL} and passed "
              f"({elapsed:.2f} s including the rest of the run)")


def restore_reset_case(keel_vmm, kernel):
    """A restored VM that is reset boots afresh: RAM is no longer the saved file's."""
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        save_dir = os.path.join(tmp, "save")
        src = Vmm(keel_vmm, kernel, tmp, "src", 1, "64M", args="ticks=1000")
        try:
            src.connect(deadline)
            src.wait_tick(3, deadline)
            src.ok({"execute": "save", "arguments": {"dir": save_dir}})
            src.ok({"execute": "quit"})
            src.wait(deadline)
        finally:
            src.kill()
            src.finish()
        saved_at = src.ticks()[-1]
        dst = Vmm(keel_vmm, kernel, tmp, "dst", 1, "64M", restore=save_dir,
                  args="ticks=1000")
        try:
            dst.connect(deadline)
            dst.wait_tick(saved_at + 3, deadline)
            if "state: counting" in dst.out.text():
                raise Failure("the restored VM booted instead of carrying on")
            dst.ok({"execute": "reset"})
            # The reset may cut a line short: the banner can follow it on the same line.
            if not dst.out.wait_for(r".*state: counting to 1000, .*", deadline):
                raise Failure("after a reset the restored VM did not boot the guest again:\n"
                              + dst.out.text())
            # Count the lines of the new boot only.
            start = dst.out.text().rindex("state: counting")
            if not dst.out.wait_for(r"state: tick 3 pit \d+ lapic \d+", deadline):
                raise Failure("the rebooted guest does not count")
            text = dst.out.text()[start:]
            ticks = ticks_of(text)
            if ticks[:3] != [1, 2, 3]:
                raise Failure(f"the rebooted guest counted {ticks[:3]}, expected 1, 2, 3")
            dst.ok({"execute": "quit"})
            status = dst.wait(deadline)
            if status != 0:
                raise Failure(f"quit after the reset: status {status}: {dst.err.text()}")
        finally:
            dst.kill()
            dst.finish()
        print(f"run-state: restored after line {saved_at}, reset, the guest booted and "
              "counted from 1 again")


def restore_control_case(keel_vmm, kernel):
    """--paused, and "restore" through the control socket into a running keel-vmm."""
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        save_dir = os.path.join(tmp, "save")
        vm = Vmm(keel_vmm, kernel, tmp, "vm", 1, "64M", args="ticks=1000", extra=["--paused"])
        try:
            vm.connect(deadline)
            if vm.ok({"execute": "status"})["state"] != "paused":
                raise Failure("status does not say paused with --paused")
            time.sleep(0.5)
            if vm.out.text():
                raise Failure(f"a VM started with --paused ran: {vm.out.text()!r}")
            vm.ok({"execute": "resume"})
            vm.wait_tick(3, deadline)
            vm.ok({"execute": "save", "arguments": {"dir": save_dir}})
            time.sleep(0.1)
            saved_at = vm.ticks()[-1]
            vm.ok({"execute": "resume"})
            vm.wait_tick(saved_at + 5, deadline)
            # Refused: nothing changes and the guest keeps counting.
            bad = vm.request({"execute": "restore",
                              "arguments": {"dir": os.path.join(tmp, "missing")}})
            if "error" not in bad or "missing" not in bad["error"]["desc"]:
                raise Failure(f"restore from a missing directory: {bad}")
            if vm.ok({"execute": "status"})["state"] != "running":
                raise Failure("the VM is not running after a refused restore")
            n = vm.ticks()[-1]
            vm.wait_tick(n + 2, deadline)
            # Back to the save, paused; resume carries on from the line after the save.
            mark = len(vm.out.text())
            vm.ok({"execute": "restore", "arguments": {"dir": save_dir, "paused": True}})
            if vm.ok({"execute": "status"})["state"] != "paused":
                raise Failure("the VM is not paused after restore with paused: true")
            time.sleep(0.3)
            if TICK.search(vm.out.text()[mark:]):
                raise Failure("the guest ran after a paused restore")
            vm.ok({"execute": "resume"})
            while True:
                after = ticks_of(vm.out.text()[mark:])
                if len(after) >= 3:
                    break
                if time.monotonic() > deadline or vm.proc.poll() is not None:
                    raise Failure("after the restore the guest did not count on:\n"
                                  + vm.out.text()[mark:] + vm.err.text())
                time.sleep(0.05)
            if not after or not saved_at + 1 <= after[0] <= saved_at + 2 or \
                    after != list(range(after[0], after[0] + len(after))):
                raise Failure(f"after a restore to line {saved_at} the guest printed {after}")
            vm.ok({"execute": "quit"})
            if vm.wait(deadline) != 0:
                raise Failure(f"quit after the restore: {vm.err.text()}")
        finally:
            vm.kill()
            vm.finish()
        print(f"run-state: --paused waited for resume; saved at line {saved_at}, counted on "
              f"to {n + 2}, a bad restore was refused, restore went back to line "
              f"{after[0]}")


def bad_files_case(keel_vmm, kernel):
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        good, other = os.path.join(tmp, "good"), os.path.join(tmp, "other")
        src = Vmm(keel_vmm, kernel, tmp, "src", 1, "64M", args="ticks=1000")
        try:
            src.connect(deadline)
            src.wait_tick(2, deadline)
            src.ok({"execute": "save", "arguments": {"dir": good}})
            src.ok({"execute": "save", "arguments": {"dir": other}})
            bad = src.request({"execute": "save", "arguments": {"dir": ""}})
            if "error" not in bad:
                raise Failure(f"save with an empty dir was accepted: {bad}")
            src.ok({"execute": "quit"})
            src.wait(deadline)
        finally:
            src.kill()
            src.finish()
        state = open(os.path.join(good, "state"), "rb").read()
        version, sections = parse_state(state)
        names = [s[0] for s in sections]
        for want in ("config", "memory", "serial.3f8", "rtc", "i8042", "pm", "fw_cfg",
                     "kvm.irqchip", "kvm.pit", "cpu.0", "kvm.clock"):
            if want not in names:
                raise Failure(f"the state file has no section {want!r}: {names}")
        print(f"run-state: sections {names}")

        def variant(name, state_bytes=None, memory=None, memory_size=None, no_memory=False):
            d = os.path.join(tmp, name)
            os.mkdir(d)
            with open(os.path.join(d, "state"), "wb") as f:
                f.write(state if state_bytes is None else state_bytes)
            if not no_memory:
                shutil.copyfile(memory or os.path.join(good, "memory"),
                                os.path.join(d, "memory"))
                if memory_size is not None:
                    os.truncate(os.path.join(d, "memory"), memory_size)
            return d

        def replace(name, payload=None, version=None):
            out = []
            for n, v, p in sections:
                if n == name:
                    out.append([n, v if version is None else version,
                                p if payload is None else payload])
                else:
                    out.append([n, v, p])
            return out

        serial = dict((s[0], s[2]) for s in sections)["serial.3f8"]
        cases = [
            ("truncated", variant("truncated", state[:len(state) // 2]), {},
             "state file is truncated"),
            ("corrupt", variant("corrupt", state[:100] + bytes([state[100] ^ 0x40])
                                + state[101:]), {}, "checksum"),
            ("format-version", variant("format-version", state[:8] + struct.pack("<I", 2)
                                       + state[12:]), {}, "format version 2 is not supported"),
            ("section-version", variant("section-version",
                                        build_state(replace("kvm.pit", version=99))), {},
             "'kvm.pit' has version 99"),
            ("missing-section", variant("missing-section",
                                        build_state([s for s in sections
                                                     if s[0] != "kvm.pit"])), {},
             "no section 'kvm.pit'"),
            ("unknown-section", variant("unknown-section",
                                        build_state(sections + [["bogus", 1, b"x"]])), {},
             "section 'bogus'"),
            ("bad-value", variant("bad-value",
                                  build_state(replace("serial.3f8", b"\xff" + serial[1:]))),
             {}, "section 'serial.3f8'"),
            ("short-section", variant("short-section",
                                      build_state(replace("cpu.0", dict(
                                          (s[0], s[2]) for s in sections)["cpu.0"][:100]))),
             {}, "section 'cpu.0'"),
            ("oversized", variant("oversized", state), {"grow_state": 65 << 20},
             "more than the 64 MiB allowed"),
            ("cpus-mismatch", variant("cpus-mismatch"), {"cpus": 2},
             "saved with 1 vCPU, its description says 2"),
            ("devices-mismatch", variant("devices-mismatch"), {"extra": ["--no-rng"]},
             "section 'virtio-rng."),
            ("memory-mismatch", variant("memory-mismatch"), {"memory": "128M"},
             "saved with 64M of memory, its description says 128M"),
            ("memory-truncated", variant("memory-truncated", memory_size=1 << 20), {},
             "truncated"),
            ("memory-of-another-save", variant("memory-of-another-save",
                                               memory=os.path.join(other, "memory")), {},
             "belongs to another save"),
            ("memory-missing", variant("memory-missing", no_memory=True), {},
             "cannot open saved memory"),
            ("no-directory", os.path.join(tmp, "does-not-exist"), {},
             "cannot open saved state"),
        ]
        for name, d, opts, want in cases:
            if "grow_state" in opts:
                os.truncate(os.path.join(d, "state"), opts["grow_state"])
            files = sorted(os.listdir(d)) if os.path.isdir(d) else []
            digest = {f: hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
                      for f in files}
            v = Vmm(keel_vmm, kernel, tmp, name, opts.get("cpus", 1), opts.get("memory", "64M"),
                    restore=d, args="ticks=1000", extra=opts.get("extra", ()))
            try:
                status = v.wait(time.monotonic() + rg.seconds(20))
            finally:
                v.kill()
                v.finish()
            lines = [l for l in v.err.text().split("\n") if l.strip()]
            if status != 1:
                raise Failure(f"{name}: keel-vmm exited {status}, expected 1; stderr {lines}")
            if len(lines) != 1 or want not in lines[0]:
                raise Failure(f"{name}: expected one stderr line containing {want!r}, got "
                              f"{lines}")
            if v.out.text().strip():
                raise Failure(f"{name}: the guest ran: {v.out.text()!r}")
            now = sorted(os.listdir(d)) if os.path.isdir(d) else []
            if now != files or any(hashlib.sha256(open(os.path.join(d, f), "rb").read())
                                    .hexdigest() != digest[f] for f in files):
                raise Failure(f"{name}: the files in {d} changed")
            if os.path.exists(v.control):
                raise Failure(f"{name}: the control socket was created")
            print(f"run-state: {name}: refused: {lines[0]}")


VIO_LINE = re.compile(r"virtio-state: request (\d+) served, used (\d+)")
VIO_TOTAL = 40


def ticks_of(text):
    """The numbers of the guest's tick lines in TEXT, in order."""
    return [int(m.group(1)) for m in (TICK.fullmatch(l) for l in text.split("\n")) if m]


def vio_lines(text):
    return [int(m.group(1)) for m in (VIO_LINE.fullmatch(l) for l in text.split("\n")) if m]


def refused(keel_vmm, kernel, tmp, name, d, want, deadline, extra=()):
    v = Vmm(keel_vmm, kernel, tmp, name, 1, "64M", restore=d,
            args=f"mode=state requests={VIO_TOTAL}", extra=extra)
    try:
        status = v.wait(deadline)
    finally:
        v.kill()
        v.finish()
    lines = [l for l in v.err.text().split("\n") if l.strip()]
    if status != 1 or len(lines) != 1 or want not in lines[0]:
        raise Failure(f"{name}: expected status 1 and one stderr line containing {want!r}, "
                      f"got status {status} and {lines}")
    if v.out.text().strip():
        raise Failure(f"{name}: the guest ran: {v.out.text()!r}")
    print(f"run-state: {name}: refused: {lines[0]}")


def virtio_case(keel_vmm, kernel):
    """A guest that uses virtio-rng (MSI-X, event index, its BAR moved) before a save, is
    restored in a new keel-vmm and carries on using it; damaged virtio sections refused."""
    kernel = os.path.join(os.path.dirname(kernel), "virtio.elf")
    deadline = time.monotonic() + rg.seconds(100)
    args = f"mode=state requests={VIO_TOTAL}"
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        save_dir = os.path.join(tmp, "save")
        src = Vmm(keel_vmm, kernel, tmp, "src", 1, "64M", args=args)
        try:
            src.connect(deadline)
            if not src.out.wait_for(r"virtio-state: request 5 served, used \d+", deadline):
                raise Failure("the guest never served request 5; serial output:\n"
                              + src.out.text() + "\nstderr:\n" + src.err.text())
            # "devices" describes the running device: driver ready, its queue moving, MSI-X.
            lines = src.ok({"execute": "devices"}).get("devices", [])
            rng = [ln for ln in lines if ln.startswith("virtio-rng ")]
            if (len(rng) != 2 or "status 0xf" not in rng[0]
                    or not re.search(r"q0 size \d+ avail \d+ \(taken \d+\) used \d+", rng[0])
                    or "MSI-X enabled" not in rng[1]):
                raise Failure(f"'devices' does not describe the running virtio-rng: {lines}")
            print(f"run-state: devices: {rng}")
            # ... and the UART: its registers, the bytes waiting, its interrupt line.
            uart = [ln for ln in lines if ln.startswith("serial: ")]
            if (len(uart) != 1 or not re.fullmatch(
                    r"serial: ier 0x[0-9a-f]{2} iir 0x[0-9a-f]{2} lcr 0x[0-9a-f]{2} mcr "
                    r"0x[0-9a-f]{2} msr 0x[0-9a-f]{2} fcr 0x[0-9a-f]{2}; rx 0 waiting; "
                    r"thr irq [01]; line (low|high)", uart[0])):
                raise Failure(f"'devices' does not describe the serial port: {lines}")
            src.ok({"execute": "save", "arguments": {"dir": save_dir}})
            time.sleep(0.1)
            src_text = src.out.text()  # as it was at the save
            saved_at = vio_lines(complete_lines(src_text))[-1]
            if saved_at >= VIO_TOTAL:
                raise Failure("the guest finished before the save; nothing to restore")
            src.ok({"execute": "quit"})
            src.wait(deadline)
        finally:
            src.kill()
            src.finish()
        state = open(os.path.join(save_dir, "state"), "rb").read()
        _, sections = parse_state(state)
        names = [n for n, _, _ in sections]
        vio = [n for n in names if n.startswith("virtio-rng.")]
        if "pci" not in names or len(vio) != 1:
            raise Failure(f"the state file lacks the pci or virtio-rng section: {names}")
        print(f"run-state: saved after request {saved_at}; sections {names}")

        dst = Vmm(keel_vmm, kernel, tmp, "dst", 1, "64M", restore=save_dir, args=args)
        try:
            status = dst.wait(deadline)
        finally:
            dst.kill()
            dst.finish()
        out = dst.out.text()
        print("--- restored VM serial output ---")
        print(out.rstrip())
        if status != rg.STATUS_PASS:
            raise Failure(f"the restored VM ended with {rg.describe_status(status)}; "
                          f"stderr: {dst.err.text()}")
        if "virtio-state: ready" in out:
            raise Failure("the restored VM booted the guest again instead of carrying on")
        check_sequence("restored VM", vio_lines(carried_on(src_text, out)), saved_at + 1,
                       VIO_TOTAL)

        # Damaged or mismatched virtio sections are refused before the guest runs.
        def variant(name, name_payload):
            d = os.path.join(tmp, name)
            os.mkdir(d)
            out = [[n, v, name_payload[n](p) if n in name_payload else p]
                   for n, v, p in sections]
            with open(os.path.join(d, "state"), "wb") as f:
                f.write(build_state(out))
            shutil.copyfile(os.path.join(save_dir, "memory"), os.path.join(d, "memory"))
            return d

        # Layout (src/vmm/pci.c, src/vmm/virtio/state.c): 256 bytes of configuration
        # space, u32 vectors, 16 bytes per vector, u64 PBA, then u64 device features.
        nvec = struct.unpack_from("<I", dict((n, p) for n, _, p in sections)[vio[0]], 256)[0]
        feat = 256 + 4 + 16 * nvec + 8

        def set_u64(off, val):
            return lambda p: p[:off] + struct.pack("<Q", val) + p[off + 8:]

        def set_u32(off, val):
            return lambda p: p[:off] + struct.pack("<I", val) + p[off + 4:]

        refused(keel_vmm, kernel, tmp, "virtio-features",
                variant("virtio-features", {vio[0]: set_u64(feat, 1 << 63)}),
                f"section '{vio[0]}'", deadline)
        refused(keel_vmm, kernel, tmp, "virtio-bar",
                variant("virtio-bar", {vio[0]: set_u32(0x18, 0xd0000804)}),
                "BAR 2", deadline)
        refused(keel_vmm, kernel, tmp, "virtio-vendor",
                variant("virtio-vendor", {vio[0]: set_u32(0, 0x10421af4)}),
                "configuration byte 0x02", deadline)
        # The queue's MSI-X vector, just after the transport's fixed fields.
        qoff = feat + 8 + 8 + 4 + 4 + 1 + 1 + 1 + 2 + 2 + 4 + 4
        refused(keel_vmm, kernel, tmp, "virtio-vector",
                variant("virtio-vector", {vio[0]: lambda p: p[:qoff + 2] + b"\x07\x00"
                                          + p[qoff + 4:]}),
                "MSI-X vector 7", deadline)
        refused(keel_vmm, kernel, tmp, "virtio-no-rng", save_dir, "section 'virtio-rng.",
                deadline, extra=["--no-rng"])
        print(f"run-state: restored VM served requests {saved_at + 1}..{VIO_TOTAL}")


QOS_IOPS = 10


def blkmq_passed(vm, status, after):
    """The mode=blkmq guest ended with PASS, its whole test done."""
    out = vm.out.text()
    if status != rg.STATUS_PASS or "virtio-blkmq: flush, write-zeroes, discard ok" not in out:
        raise Failure(f"the guest ended with {rg.describe_status(status)} after {after}; "
                      f"serial output:\n{out}\nstderr:\n{vm.err.text()}")


def blk_pause_case(keel_vmm, kernel):
    """Pauses and resumes while a two-queue virtio-blk has requests in flight on its block
    backend (tests/guests/virtio.c mode=blkmq, many rounds): every pause must succeed (the
    device completes what it took while its I/O thread is parked), and the guest must see
    every request completed and one interrupt per queue and round throughout."""
    kernel = os.path.join(os.path.dirname(kernel), "virtio.elf")
    deadline = time.monotonic() + rg.seconds(150)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        disk = os.path.join(tmp, "disk.raw")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        vm = Vmm(keel_vmm, kernel, tmp, "blk", 2, "64M", args="mode=blkmq queues=2 rounds=2",
                 extra=["--disk", f"path={disk},format=raw,cache=none"])
        pauses = 0
        try:
            vm.connect(deadline)
            while vm.proc.poll() is None and time.monotonic() < deadline:
                try:
                    reply = vm.request({"execute": "pause"})
                except (OSError, Failure):
                    break  # the guest ended meanwhile
                if "return" not in reply:
                    if vm.proc.poll() is not None:
                        break
                    raise Failure(f"pause {pauses + 1} failed: {reply}; stderr: "
                                  f"{vm.err.text()}")
                pauses += 1
                vm.ok({"execute": "resume"})
                time.sleep(0.01)
            status = vm.wait(deadline)
        finally:
            vm.kill()
            vm.finish()
        blkmq_passed(vm, status, f"{pauses} pauses")
        if pauses < 5:
            raise Failure(f"only {pauses} pauses before the guest ended: nothing was tested")
        print(f"run-state: {pauses} pauses and resumes while the guest's requests ran; "
              "it saw every one completed")


def scsi_passed(vm, status, after):
    """The mode=scsi guest ended with PASS, every read answered."""
    out = vm.out.text()
    if status != rg.STATUS_PASS or "reads ok" not in out:
        raise Failure(f"the guest ended with {rg.describe_status(status)} after {after}; "
                      f"serial output:\n{out}\nstderr:\n{vm.err.text()}")


# The disk under storage QoS: a two-queue virtio-blk the guest keeps full (mode=blkmq), or a
# disk at LUN 0 of the virtio-scsi controller (mode=scsi, a ring's worth of reads in flight).
QOS_DISKS = {
    "blk": {"guest": "mode=blkmq queues=2 rounds=2 slow=100", "opts": "",
            "which": {"disk": 0}, "absent": ({"disk": 1}, "no virtio-blk disk 1"),
            "passed": blkmq_passed},
    "scsi": {"guest": "mode=scsi requests=240 slow=100", "opts": ",bus=scsi",
             "which": {"lun": 0}, "absent": ({"lun": 1}, "no disk at SCSI LUN 1"),
             "passed": scsi_passed},
}


def qos_case(keel_vmm, kernel, bus="blk"):
    """Storage QoS (docs/virtio.md): a disk limited to QOS_IOPS I/Os per second while the
    guest keeps it busy (QOS_DISKS: a two-queue virtio-blk, or a virtio-scsi LUN). The
    device's own counters (control disk-qos), read over and over, never exceed the burst
    plus the limit times the time since the worker started (measured from before it
    started, so the bound only loosens with a slow host); requests waited (throttled);
    a pause completes only with none left waiting; bad values are refused with a reason;
    the limit raised at run time shows in the counters and binds from then on; the guest
    sees every request completed."""
    kernel = os.path.join(os.path.dirname(kernel), "virtio.elf")
    deadline = time.monotonic() + rg.seconds(150)
    iops, raised = QOS_IOPS, 4 * QOS_IOPS
    qd = QOS_DISKS[bus]
    which = qd["which"]
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        disk = os.path.join(tmp, "disk.raw")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        t0 = time.monotonic()
        vm = Vmm(keel_vmm, kernel, tmp, "qos", 2, "64M", args=qd["guest"],
                 extra=["--disk",
                        f"path={disk},format=raw,cache=none,max-iops={iops}{qd['opts']}"])
        q = {"execute": "disk-qos", "arguments": which}
        polls, paused_drain, last, drained = 0, False, None, 0
        base, t_base, limit = 0, t0, iops
        try:
            vm.connect(deadline)
            for args, want in [qd["absent"],
                               ({**which, "min_iops": 10 * iops}, "min_iops"),
                               ({**which, "max_iops": -1}, "max_iops"),
                               ({**which, "max_iops": 2000000000}, "IOPS limits are at most"),
                               ({**which, "max_bandwidth": "1M"}, "max_bandwidth"),
                               ({**which, "speed": 1}, "speed"),
                               ({"disk": 0, "lun": 0}, "disk-qos needs"),
                               ({}, "disk-qos needs")]:
                reply = vm.request({"execute": "disk-qos", "arguments": args})
                if "error" not in reply or want not in reply["error"].get("desc", ""):
                    raise Failure(f"disk-qos {args}: expected an error naming {want!r}, "
                                  f"got {reply}")
            while vm.proc.poll() is None and time.monotonic() < deadline:
                t = time.monotonic()
                try:
                    st = vm.ok(q)
                except (OSError, Failure):
                    try:
                        vm.proc.wait(timeout=rg.seconds(10))
                        break  # the guest ended meanwhile
                    except subprocess.TimeoutExpired:
                        raise
                polls += 1
                last = st
                # The device counted by the time the reply came: bound by that time.
                bound = base + limit + limit * (time.monotonic() - t_base)
                if st["ios"] > bound:
                    raise Failure(f"{st['ios']} I/Os served by {t - t0:.2f} s with max_iops "
                                  f"{limit}: more than {bound:.0f}: {st}")
                if st["max_iops"] != limit:
                    raise Failure(f"disk-qos reports max_iops {st['max_iops']}, set {limit}")
                if not paused_drain and st["waiting"] > 0 and st["throttled"] >= 10:
                    # A pause starts what waits: none is left once it returns.
                    vm.ok({"execute": "pause"})
                    p = vm.ok(q)
                    vm.ok({"execute": "resume"})
                    if p["waiting"] != 0:
                        raise Failure(f"paused with {p['waiting']} requests still waiting")
                    paused_drain = True
                    # The drain charged what it started (the bucket may be in debt): from
                    # here, at most a full bucket more plus the rate since before it.
                    base, t_base, drained = p["ios"], t, p["throttled"]
                elif paused_drain and limit == iops and st["throttled"] >= drained + 10:
                    t_set = time.monotonic()
                    r = vm.ok({"execute": "disk-qos",
                               "arguments": {**which, "max_iops": raised}})
                    if r["max_iops"] != raised or r["max_bandwidth"] != 0:
                        raise Failure(f"disk-qos set max_iops {raised}: {r}")
                    base, t_base, limit = r["ios"], t_set, raised
                time.sleep(0.05)
            status = vm.wait(deadline)
        finally:
            vm.kill()
            vm.finish()
        qd["passed"](vm, status, f"{polls} queries")
        if not last or last["throttled"] < 20 or not paused_drain or limit != raised:
            raise Failure(f"nothing was throttled, drained by a pause or raised ({polls} "
                          f"queries, last {last}): the limit was not tested")
        if f"QoS max-iops {iops}," not in vm.err.text() or \
                f"QoS now max-iops {raised}," not in vm.err.text():
            raise Failure("keel-vmm's log does not name the limits: " + vm.err.text())
        print(f"run-state: {polls} queries, last {last}; every one within the limit")


def make_iso(path, blocks, fill):
    """A file an ISO image check accepts: an ISO 9660 volume descriptor at sector 16."""
    with open(path, "wb") as f:
        for i in range(blocks):
            block = bytearray([fill]) * 2048
            if i == 16:
                block[0:6] = b"\x01CD001"
            f.write(block)


def dvd_media(vm):
    return [(d["lun"], d["medium"], d["tray"]) for d in vm.ok({"execute": "dvd"})["drives"]]


def stop_vm(vm, sock):
    """The end of a hot plug case: the worker killed if still there, the test's socket end
    closed."""
    vm.kill()
    vm.finish()
    sock.close()


def nic_add_fd(vm, tap, mac, *socks):
    """nic-add with the tap's queues as keeld passes them: a descriptor per queue pair with the
    request (SCM_RIGHTS, "queues" for more than one), here ends of socket pairs (closed here:
    the worker has them). The slot."""
    req = {"execute": "nic-add", "arguments": {"tap": tap, "mac": mac, "fd": True}}
    if len(socks) > 1:
        req["arguments"]["queues"] = len(socks)
    socket.send_fds(vm.sock, [(json.dumps(req) + "\n").encode()], [s.fileno() for s in socks])
    for sock in socks:
        sock.close()
    line = vm.rfile.readline()
    reply = json.loads(line) if line else {}
    slot = reply.get("return", {}).get("slot")
    if not isinstance(slot, int) or not 1 <= slot <= 30:
        raise Failure(f"nic-add with a passed descriptor: {reply}")
    return slot


def guest_adds_then_removal(vm, tap, mac, theirs, deadline):
    """With tests/guests/hotplug.c in vm: the guest ready, an adapter added (tap, mac, the
    descriptor theirs), the guest finding it and waiting; then its removal asked for (the
    guest ejects it). Returns the adapter's slot."""
    vm.connect(deadline)
    if not vm.out.wait_for(r"hotplug: GPE0 at .* ready", deadline):
        raise Failure("the guest never got ready: " + vm.out.text() + vm.err.text())
    slot = nic_add_fd(vm, tap, mac, theirs)
    if not vm.out.wait_for(rf"hotplug: slot {slot} added, virtio-net", deadline):
        raise Failure(f"the guest did not find the card at slot {slot}: "
                      + vm.out.text() + vm.err.text())
    if not vm.out.wait_for(r"hotplug: waiting for the removal", deadline):
        raise Failure("the guest did not wait for the removal: " + vm.out.text())
    vm.ok({"execute": "nic-remove", "arguments": {"mac": mac}})
    return slot


def hotplug_guest_case(keel_vmm, kernel):
    """The guest's side (tests/guests/hotplug.c, the AML's steps by hand): it sees the GPE
    and the card after nic-add, and after nic-remove ejects it; the worker tears the card
    down on that eject (not forced) and the guest finds the slot empty."""
    kernel = os.path.join(os.path.dirname(kernel), "hotplug.elf")
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        vm = Vmm(keel_vmm, kernel, tmp, "vm", 1, "64M")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            slot = guest_adds_then_removal(vm, "hpg0", "52:54:00:00:00:43", theirs, deadline)
            status = vm.wait(deadline)
            if status != rg.STATUS_PASS:
                raise Failure(f"keel-vmm ended with status {status}: " + vm.out.text()
                              + vm.err.text())
            check_released(ours, "the worker still held the card's descriptor after the eject")
            if f"at slot {slot} removed" not in vm.err.text():
                raise Failure("the worker did not log the removal: " + vm.err.text())
        finally:
            vm.kill()
            vm.finish()
            ours.close()
        print(f"run-state: the guest saw the card added at slot {slot}, an unasked eject "
              f"ignored, ejected it on the removal request; the worker tore it down")


def check_held(ours, why):
    """Fail with WHY if the worker has closed its end of the socket pair OURS (the card's
    descriptor it was given): nothing arrives within 0.2 s while it holds it."""
    ours.settimeout(0.2)
    try:
        if ours.recv(64) == b"":
            raise Failure(why)
    except socket.timeout:
        pass


def check_released(ours, why):
    """Fail with WHY unless the worker closes its end of the socket pair OURS (the card's
    descriptor it was given) within 5 s."""
    ours.settimeout(rg.seconds(5))
    if ours.recv(64) != b"":
        raise Failure(why)


def hotplug_case(keel_vmm, kernel, jail=False):
    """nic-add / nic-list / nic-remove on a running VM (docs/networking.md, "Hot plug"). The
    tiny guest has no ACPI interpreter: it never ejects, so the removal is forced. The VM has
    2 vCPUs: a card of 2 queue pairs takes the tap's 2 queues, more pairs than vCPUs are
    refused. jail: as keeld runs the worker (its uid, its root, its seccomp filters): the
    card's I/O thread begins after the jail, under the virtio-net class's filter."""
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        extra, save_dir = [], os.path.join(tmp, "s")
        if jail:
            root = os.path.join(tmp, "jail")
            os.mkdir(root, 0o751)
            os.chmod(root, 0o751)
            os.chmod(tmp, 0o755)
            extra = ["--jail-user", "%d:%d" % (rg.JAIL_UID, rg.JAIL_UID), "--jail-root", root]
            save_dir = os.path.join(root, "s")  # keeld makes it, the worker's own
            os.mkdir(save_dir, 0o700)
            os.chown(save_dir, rg.JAIL_UID, rg.JAIL_UID)
        vm = Vmm(keel_vmm, kernel, tmp, "vm", 2, "64M", args="ticks=1000", extra=extra)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        queues = '"queues" is the card\'s queue pairs, a number from 1 to 8'
        try:
            vm.connect(deadline)
            vm.wait_tick(2, deadline)
            bad = [
                ({"execute": "nic-add"}, "nic-add needs"),
                ({"execute": "nic-add", "arguments": {"tap": "x" * 16}}, "nic-add needs"),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "what": 1}}, "nic-add needs"),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "fd": True}},
                 "0 descriptors came with the request, which says 1"),
                ({"execute": "nic-add",
                  "arguments": {"tap": "hp0", "fd": True, "vhost_fd": True}},
                 "0 descriptors came with the request, which says 2"),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "vhost_fd": True}},
                 '"vhost_fd":true needs "fd":true'),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "fd": True, "queues": 2}},
                 "0 descriptors came with the request, which says 2"),
                ({"execute": "nic-add",
                  "arguments": {"tap": "hp0", "fd": True, "vhost_fd": True, "queues": 2}},
                 "0 descriptors came with the request, which says 4"),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "queues": 0}}, queues),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "queues": 9}}, queues),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "queues": "2"}}, queues),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "queues": 3}},
                 "3 queue pairs: the card takes 1 to the VM's 2 vCPUs"),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "vhost": "maybe"}},
                 '"vhost" is "auto", "off" or "on"'),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "mac": "01:00:00:00:00:01"}},
                 "not a unicast MAC"),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "slot": 32}}, "nic-add needs"),
                ({"execute": "nic-add", "arguments": {"tap": "hp0", "slot": 1}},
                 "not a free hot-pluggable slot"),  # virtio-rng's
                ({"execute": "nic-remove", "arguments": {"slot": 0}}, "nic-remove needs"),
                ({"execute": "nic-remove", "arguments": {"slot": 32}}, "nic-remove needs"),
                ({"execute": "nic-remove", "arguments": {"mac": "52:54:00:00:00:99"}},
                 "no network adapter with MAC"),
                ({"execute": "link", "arguments": {"mac": "52:54:00:00:00:99", "up": True}},
                 "no network adapter with MAC"),
            ]
            for req, want in bad:
                reply = vm.request(req)
                if "error" not in reply or want not in reply["error"]["desc"]:
                    raise Failure(f"{req}: expected an error saying {want!r}, got {reply}")
            if vm.ok({"execute": "nic-list"}) != {"nics": []}:
                raise Failure("nic-list is not empty before any adapter was added")
            slot = nic_add_fd(vm, "hp0", "52:54:00:00:00:42", theirs)
            want = [{"slot": slot, "tap": "hp0", "mac": "52:54:00:00:00:42", "removing": False}]
            if vm.ok({"execute": "nic-list"})["nics"] != want:
                raise Failure(f"nic-list after the add: {vm.ok({'execute': 'nic-list'})}")
            dup = vm.request({"execute": "nic-add",
                              "arguments": {"tap": "hp1", "mac": "52:54:00:00:00:42"}})
            if "error" not in dup or "in use" not in dup["error"]["desc"]:
                raise Failure(f"a second adapter with the same MAC: {dup}")
            # The tiny guest never reads the controller: the add stays unseen, and a save
            # waits for it (a Linux guest takes it at once: tests/lab 74-net-hotplug).
            save = vm.request({"execute": "save", "arguments": {"dir": save_dir}})
            if "error" not in save or "not seen it yet" not in save["error"]["desc"]:
                raise Failure(f"save with an add the guest has not seen: {save}")
            if vm.ok({"execute": "status"})["state"] != "running":
                raise Failure("the VM is not running after the refused save")
            vm.ok({"execute": "nic-remove", "arguments": {"mac": "52:54:00:00:00:42"}})
            want[0]["removing"] = True
            if vm.ok({"execute": "nic-list"})["nics"] != want:
                raise Failure(f"nic-list with the removal pending: "
                              f"{vm.ok({'execute': 'nic-list'})}")
            save = vm.request({"execute": "save", "arguments": {"dir": save_dir}})
            if "error" not in save or "removal is under way" not in save["error"]["desc"]:
                raise Failure(f"save with a removal under way: {save}")
            check_held(ours, "the card was torn down before the guest ejected it")
            vm.ok({"execute": "nic-remove", "arguments": {"slot": slot, "force": True}})
            if vm.ok({"execute": "nic-list"}) != {"nics": []}:
                raise Failure("nic-list is not empty after the forced removal")
            check_released(ours, "the worker still holds the card's descriptor after the removal")
            # Two queue pairs, as keeld adds an adapter to a 2-vCPU VM by default: a tap
            # queue each, all closed with the card.
            qs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(2)]
            slot2 = nic_add_fd(vm, "hp2", "52:54:00:00:00:44", *[q[1] for q in qs])
            if not vm.err.wait_for(rf".*network adapter hp2 \(52:54:00:00:00:44\) added at "
                                   rf"slot {slot2}, 2 queue pairs", deadline):
                raise Failure("the worker did not add a card of 2 queue pairs: "
                              + vm.err.text())
            vm.ok({"execute": "nic-remove", "arguments": {"slot": slot2, "force": True}})
            for k, q in enumerate(qs):
                q[0].settimeout(rg.seconds(5))
                if q[0].recv(64) != b"":
                    raise Failure(f"the worker still holds tap queue {k} after the removal")
                q[0].close()
            n = vm.ticks()[-1]
            vm.wait_tick(n + 2, deadline)
            # Nothing under way: the save goes through (and leaves the VM paused).
            vm.ok({"execute": "save", "arguments": {"dir": save_dir}})
            vm.ok({"execute": "quit"})
            vm.wait(deadline)
        finally:
            stop_vm(vm, ours)
        print(f"run-state: adapter added at slot {slot} with a passed descriptor, listed, "
              f"saving refused while the add and the removal were under way, removal forced, "
              f"its descriptor closed, one of 2 queue pairs added and removed, then saved; "
              f"{len(bad)} bad requests refused; the guest counted on")


def vmm_failing(point, *args, **kwargs):
    """A Vmm whose keel-vmm fails its failure point POINT once (a test build's
    KEEL_VMM_FAIL_POINT, src/vmm/fail_point.h)."""
    os.environ["KEEL_VMM_FAIL_POINT"] = point
    try:
        return Vmm(*args, **kwargs)
    finally:
        del os.environ["KEEL_VMM_FAIL_POINT"]


def hotplug_fail_case(keel_vmm, kernel):
    """A hot add failing at each failure point after the card went on the bus (a test build's
    KEEL_VMM_FAIL_POINT fails the point it names once, virtio-thread-start at its second hit:
    the first is virtio-rng's at start): the add is refused, nothing is left
    (nic-list empty, the passed descriptor closed, the slot free again), the guest counts on,
    and the next add goes through at the same slot; ASan would report a card freed under a
    vCPU (the rule: src/vmm/pci.h)."""
    points = ["virtio-thread-start@2", "net-watch", "net-timerfd", "hotplug-add"]
    for point in points:
        deadline = time.monotonic() + rg.seconds(60)
        with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
            vm = vmm_failing(point, keel_vmm, kernel, tmp, "vm", 1, "64M", args="ticks=1000")
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                vm.connect(deadline)
                vm.wait_tick(2, deadline)
                req = {"execute": "nic-add",
                       "arguments": {"tap": "hpf0", "mac": "52:54:00:00:00:43", "fd": True}}
                socket.send_fds(vm.sock, [(json.dumps(req) + "\n").encode()], [theirs.fileno()])
                theirs.close()
                line = vm.rfile.readline()
                reply = json.loads(line) if line else {}
                if "Input/output error" not in reply.get("error", {}).get("desc", ""):
                    raise Failure(f"{point}: not the injected failure (EIO): {reply}")
                if vm.ok({"execute": "nic-list"}) != {"nics": []}:
                    raise Failure(f"{point}: nic-list is not empty after the failed add")
                check_released(ours, f"{point}: the worker still holds the failed card's tap")
                n = vm.ticks()[-1]
                vm.wait_tick(n + 2, deadline)
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                slot = nic_add_fd(vm, "hpf0", "52:54:00:00:00:43", theirs)
                if slot != 2:
                    raise Failure(f"{point}: the add after the failed one took slot {slot}, "
                                  f"not the lowest free one (2)")
                vm.ok({"execute": "nic-remove", "arguments": {"slot": slot, "force": True}})
                vm.ok({"execute": "quit"})
                vm.wait(deadline)
            finally:
                stop_vm(vm, ours)
    print(f"run-state: a hot add failing at each of {', '.join(points)}: refused, nothing "
          f"left (no adapter listed, its descriptor closed), the guest counted on, the next "
          f"add took the same slot")


def hotplug_pause_fail_case(keel_vmm, kernel):
    """A removal whose pause fails (a test build's KEEL_VMM_FAIL_POINT=hotplug-pause: the
    vCPUs cannot be stopped, as when a disk's requests do not drain): a forced removal is
    refused with the reason and leaves the card as it was (listed, its descriptor open, the
    guest counting on), and the next forced removal goes through; an eject by the guest
    (tests/guests/hotplug.c) whose teardown cannot pause is tried again a second later (the
    worker says so) and the guest then finds the slot empty. The point fails before
    vm_pause is called: vm_pause's own undo on its -EBUSY path is not exercised here."""
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        vm = vmm_failing("hotplug-pause", keel_vmm, kernel, tmp, "vm", 1, "64M",
                         args="ticks=1000")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            vm.connect(deadline)
            vm.wait_tick(2, deadline)
            slot = nic_add_fd(vm, "hpp0", "52:54:00:00:00:44", theirs)
            want = {"nics": [{"slot": slot, "tap": "hpp0", "mac": "52:54:00:00:00:44",
                              "removing": False}]}
            reply = vm.request({"execute": "nic-remove",
                                "arguments": {"slot": slot, "force": True}})
            desc = reply.get("error", {}).get("desc", "")
            if "cannot pause the VM to remove it: Input/output error" not in desc:
                raise Failure(f"a forced removal whose pause failed: {reply}")
            if vm.ok({"execute": "nic-list"}) != want:
                raise Failure(f"nic-list after the refused removal: "
                              f"{vm.ok({'execute': 'nic-list'})}")
            check_held(ours, "the card's descriptor was closed by a removal that failed")
            if vm.ok({"execute": "status"})["state"] != "running":
                raise Failure("the VM is not running after the refused removal")
            n = vm.ticks()[-1]
            vm.wait_tick(n + 2, deadline)
            vm.ok({"execute": "nic-remove", "arguments": {"slot": slot, "force": True}})
            if vm.ok({"execute": "nic-list"}) != {"nics": []}:
                raise Failure("nic-list is not empty after the second forced removal")
            check_released(ours, "the worker still holds the card's descriptor after the removal")
            vm.ok({"execute": "quit"})
            vm.wait(deadline)
        finally:
            stop_vm(vm, ours)

    kernel = os.path.join(os.path.dirname(kernel), "hotplug.elf")
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        vm = vmm_failing("hotplug-pause", keel_vmm, kernel, tmp, "vm", 1, "64M")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            slot = guest_adds_then_removal(vm, "hpp1", "52:54:00:00:00:45", theirs, deadline)
            status = vm.wait(deadline)
            if status != rg.STATUS_PASS:
                raise Failure(f"keel-vmm ended with status {status}: " + vm.out.text()
                              + vm.err.text())
            if not vm.err.wait_for(rf".*slot {slot} ejected but the VM did not pause "
                                   r"\(Input/output error\): trying again.*", deadline):
                raise Failure("the worker did not say that it would try again: "
                              + vm.err.text())
            if not vm.err.wait_for(rf".*at slot {slot} removed.*", deadline):
                raise Failure("the worker did not log the removal on its second try: "
                              + vm.err.text())
            check_released(ours, "the worker still held the card's descriptor after the eject")
        finally:
            vm.kill()
            vm.finish()
            ours.close()
    print(f"run-state: a forced removal whose pause failed refused with the reason, the card "
          f"kept (listed, its descriptor open, the guest counting on), the next forced one "
          f"went through; a guest's eject whose pause failed tried again and the card at slot "
          f"{slot} removed")


def net_queues_case(keel_vmm, kernel):
    """Multi-queue virtio-net across a save (docs/virtio.md): a 2-vCPU VM's adapter (two
    pairs by default, two tap queues passed as keeld passes them) saved and restored with
    two; a restore into one pair refused, naming the adapter; a state from before
    multi-queue (its description without queues: one pair) restored with one pair while
    two tap queues are passed, the one it does not use closed (an open queue would take
    flows nobody reads)."""
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        vms = []

        def start(tag, n, opts="", restore=None):
            pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(n)]
            fds = [p[0].detach() for p in pairs]
            extra = ["--net", "tap=sq0" + opts, "--fd", f"net.0={fds[0]}"]
            for k in range(1, n):
                extra += ["--fd", f"net.0.q{k}={fds[k]}"]
            vm = Vmm(keel_vmm, kernel, tmp, tag, 2, "64M", restore=restore,
                     args=f"ticks={TOTAL}", extra=extra, pass_fds=fds)
            vm.host = [p[1] for p in pairs]
            vms.append(vm)
            return vm

        def runs_on(vm):  # a restored guest counts on from where it was saved
            while not vm.ticks():
                if time.monotonic() > deadline or vm.proc.poll() is not None:
                    raise Failure(f"{vm.cmd}: the restored guest printed nothing: "
                                  f"{vm.err.text()!r}")
                time.sleep(0.05)
            vm.wait_tick(vm.ticks()[-1] + 2, deadline)

        def save(vm, d):
            vm.connect(deadline)
            vm.wait_tick(3, deadline)
            vm.ok({"execute": "save", "arguments": {"dir": d}})
            vm.ok({"execute": "quit"})
            vm.wait(deadline)

        try:
            two, one = os.path.join(tmp, "two"), os.path.join(tmp, "one")
            save(start("a", 2), two)
            b = start("b", 1, ",queues=1", restore=two)
            if b.wait(deadline) != 1 or "saved with 2 queue pairs" not in b.err.text():
                raise Failure(f"a restore into one pair: status {b.proc.returncode}, "
                              f"{b.err.text().strip()!r}")
            c = start("c", 2, restore=two)
            c.connect(deadline)
            runs_on(c)
            c.ok({"execute": "quit"})
            c.wait(deadline)
            # A state from before multi-queue: saved with one pair, its description
            # without queues (as an older keel-vmm wrote it).
            save(start("d", 1, ",queues=1"), one)
            path = os.path.join(one, "state")
            with open(path, "rb") as f:
                version, sections = parse_state(f.read())
            for sec in sections:
                if sec[0] == "config":
                    (size,) = struct.unpack_from("<I", sec[2], 0)
                    doc = json.loads(sec[2][4:4 + size])
                    for nic in doc.get("nets", []):
                        nic.pop("queues", None)
                    text = json.dumps(doc, separators=(",", ":")).encode()
                    sec[2] = struct.pack("<I", len(text)) + text
            with open(path, "wb") as f:
                f.write(build_state(sections, version))
            e = start("e", 2, restore=one)
            e.connect(deadline)
            runs_on(e)
            if "saved before multi-queue, restored with one queue pair" not in e.err.text():
                raise Failure(f"the old state's restore did not say so: {e.err.text()!r}")
            e.host[1].settimeout(rg.seconds(5))
            if e.host[1].recv(64) != b"":
                raise Failure("the tap queue the restored adapter does not use is still open")
            e.ok({"execute": "quit"})
            e.wait(deadline)
        finally:
            for vm in vms:
                vm.kill()
                vm.finish()
        print("run-state: two pairs saved and restored with two, a restore into one refused, "
              "a state from before multi-queue restored with one pair and the extra tap queue "
              "closed")


def scsi_media_case(keel_vmm, kernel):
    """virtio-scsi's DVD drive as the host drives it (docs/keel-vmm.md, "dvd")."""
    deadline = time.monotonic() + rg.seconds(100)
    with tempfile.TemporaryDirectory(prefix="keel-state-") as tmp:
        disk, iso1, iso2, notiso = (os.path.join(tmp, n) for n in
                                    ("disk.raw", "one.iso", "two.iso", "not.iso"))
        with open(disk, "wb") as f:
            f.truncate(8 << 20)
        make_iso(iso1, 40, 1)
        make_iso(iso2, 50, 2)
        with open(notiso, "wb") as f:
            f.write(b"\0" * 100000)
        base = ["--disk", f"path={disk},bus=scsi", "--dvd", iso1]
        # At start: one line, non-zero status.
        for bad, want in ((notiso, "is not an ISO 9660 or UDF image"),
                          (os.path.join(tmp, "missing.iso"), "No such file or directory")):
            p = subprocess.run([keel_vmm, "--kernel", kernel, "--dvd", bad], capture_output=True,
                               text=True, timeout=rg.seconds(30), stdin=subprocess.DEVNULL)
            lines = [l for l in p.stderr.split("\n") if l.strip()]
            if p.returncode == 0 or len(lines) != 1 or want not in lines[0]:
                raise Failure(f"keel-vmm --dvd {bad}: status {p.returncode}, {p.stderr!r}")
        # A descriptor passed for an empty drive (keeld passes each LUN's file as lun.I).
        fd = os.open(iso1, os.O_RDONLY)
        try:
            p = subprocess.run([keel_vmm, "--kernel", kernel, "--dvd", iso1, "--dvd", "none",
                                "--fd", f"lun.1={fd}"], capture_output=True, text=True,
                               timeout=rg.seconds(30), stdin=subprocess.DEVNULL, pass_fds=(fd,))
        finally:
            os.close(fd)
        if p.returncode == 0 or "--fd lun.1: that DVD drive is empty" not in p.stderr:
            raise Failure(f"--fd lun.1 for an empty drive: {p.returncode} {p.stderr!r}")
        save_dir = os.path.join(tmp, "save")
        vm = Vmm(keel_vmm, kernel, tmp, "vm", 1, "64M", args="ticks=1000", extra=base)
        vm2 = None
        try:
            vm.connect(deadline)
            vm.wait_tick(2, deadline)
            if dvd_media(vm) != [(1, iso1, "closed")]:
                raise Failure(f"dvd lists {dvd_media(vm)}")
            for bad, want in ((notiso, "not an ISO 9660 or UDF image"),
                              (os.path.join(tmp, "missing.iso"), "No such file or directory")):
                reply = vm.request({"execute": "dvd", "arguments": {"path": bad}})
                if "error" not in reply or want not in reply["error"]["desc"]:
                    raise Failure(f"dvd {bad}: {reply}")
                if dvd_media(vm) != [(1, iso1, "closed")]:
                    raise Failure(f"a refused dvd changed the medium: {dvd_media(vm)}")
            reply = vm.request({"execute": "dvd", "arguments": {"drive": 1, "path": iso2}})
            if "error" not in reply or "no drive 1" not in reply["error"]["desc"]:
                raise Failure(f"dvd on drive 1 of 1: {reply}")
            vm.ok({"execute": "dvd", "arguments": {"path": iso2}})
            if dvd_media(vm) != [(1, iso2, "closed")]:
                raise Failure(f"after the change dvd lists {dvd_media(vm)}")
            vm.ok({"execute": "save", "arguments": {"dir": save_dir}})
            saved_at = vm.ticks()[-1]
            vm.ok({"execute": "quit"})
            vm.wait(deadline)
            # The restored VM was started with the first image: the save has the second.
            vm2 = Vmm(keel_vmm, kernel, tmp, "vm2", 1, "64M", args="ticks=1000",
                      restore=save_dir, extra=base)
            vm2.connect(deadline)
            vm2.wait_tick(saved_at + 2, deadline)
            if dvd_media(vm2) != [(1, iso2, "closed")]:
                raise Failure(f"the restored VM has {dvd_media(vm2)}, not {iso2}")
            vm2.ok({"execute": "dvd", "arguments": {"path": None}})
            if dvd_media(vm2) != [(1, None, "closed")]:
                raise Failure(f"after the eject dvd lists {dvd_media(vm2)}")
            if "lun 1: dvd (no medium)" not in " ".join(vm2.ok({"execute": "devices"})
                                                       ["devices"]):
                raise Failure(f"devices does not show the empty drive: "
                              f"{vm2.ok({'execute': 'devices'})}")
            vm2.ok({"execute": "quit"})
            if vm2.wait(deadline) != 0:
                raise Failure(f"quit: {vm2.err.text()}")
        finally:
            vm.kill()
            vm.finish()
            if vm2:
                vm2.kill()
                vm2.finish()
        print(f"run-state: bad images refused at start and over the control socket; the "
              f"medium changed, saved at line {saved_at}, restored with it, ejected")


CASES = {
    "state-save-restore": lambda vmm, k: save_restore_case(vmm, k, 1),
    "state-save-restore-smp": lambda vmm, k: save_restore_case(vmm, k, 2),
    "state-bad-files": bad_files_case,
    "state-restore-reset": restore_reset_case,
    "state-restore-control": restore_control_case,
    "state-virtio": virtio_case,
    "state-blk-pause": blk_pause_case,
    "state-blk-qos": qos_case,
    "state-scsi-qos": lambda keel_vmm, kernel: qos_case(keel_vmm, kernel, "scsi"),
    "state-scsi-media": scsi_media_case,
    "state-hotplug": hotplug_case,
    "state-net-queues": net_queues_case,
    "state-hotplug-guest": hotplug_guest_case,
    "state-hotplug-jail": lambda vmm, k: hotplug_case(vmm, k, jail=True),
    "state-hotplug-fail": hotplug_fail_case,
    "state-hotplug-pause-fail": hotplug_pause_fail_case,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keel-vmm", help="path of keel-vmm")
    ap.add_argument("--guests", default=os.path.join("build", "tests", "guests"))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="?")
    a = ap.parse_args()
    if a.list:
        print("\n".join(CASES))
        return 0
    if a.case not in CASES or not a.keel_vmm:
        print(f"run-state: need --keel-vmm and one of: {', '.join(CASES)}")
        return 1
    why = rg.kvm_usable()
    if why:
        print(f"SKIP {a.case}: {why}")
        return 77
    kernel = os.path.join(a.guests, "state.elf")
    if not os.path.exists(kernel):
        print(f"run-state: guest kernel {kernel} does not exist (build it first)")
        return 1
    start = time.monotonic()
    try:
        CASES[a.case](a.keel_vmm, kernel)
    except Failure as e:
        print(f"FAIL {a.case}: {e}")
        return 1
    print(f"PASS {a.case} ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
