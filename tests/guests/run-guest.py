#!/usr/bin/env python3
"""Run one tiny-guest test case and check its exit status and serial output.

    run-guest.py [--keel-vmm PATH] [--guests DIR] CASE
    run-guest.py --list

The cases (VMM options, guest command line, input to feed, expected status and output) are
defined below. By default the guest runs under keel-vmm on /dev/kvm. For comparison the
same case can run under QEMU: KEEL_GUEST_VMM=qemu (TCG, or KVM with
KEEL_GUEST_QEMU_ACCEL=kvm). KEEL_TEST_TIME_SCALE=N multiplies every time limit, here and in
run-state.py (the lab's guests tier sets it). Exit status: 0 pass, 1 fail, 77 skipped (no
usable /dev/kvm).
"""

import argparse
import calendar
import os
import re
import shutil
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from time_scale import time_scale

# Debug-exit values the guest library uses (tests/guests/lib/guest.h).
EXIT_PASS = 0x10
EXIT_FAIL = 0x11
EXIT_EXCEPTION = 0x12


TIME_SCALE = time_scale("run-guest")


def seconds(s):
    """A time limit of S seconds on a host's own KVM, stretched by KEEL_TEST_TIME_SCALE."""
    return s * TIME_SCALE


def host_is_amd():
    """Whether this host's CPU is AMD's (/proc/cpuinfo's vendor_id)."""
    try:
        with open("/proc/cpuinfo") as f:
            return "AuthenticAMD" in f.read()
    except OSError:
        return False


def status_of(value):
    return (value << 1) | 1


STATUS_PASS = status_of(EXIT_PASS)

MiB = 1 << 20
GiB = 1 << 30


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMGT]?)", s)
    if not m:
        raise ValueError(s)
    mult = {"": MiB, "K": 1 << 10, "M": MiB, "G": GiB, "T": 1 << 40}[m.group(2)]
    return int(m.group(1)) * mult


def fnv1a32(data):
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def initrd_bytes(size):
    # Deterministic, non-repeating content so a misplaced or truncated module shows up.
    out = bytearray(size)
    x = 0x12345678
    for i in range(size):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


class Case:
    def __init__(self, guest, args="", cpus=None, memory=None, no_reboot=False, status=STATUS_PASS,
                 expect=(), inputs=(), check=None, setup=None, timeout=20, qemu_status=None):
        self.guest = guest
        self.args = args          # guest command line (key=value words)
        self.cpus = cpus
        self.memory = memory
        self.no_reboot = no_reboot
        self.status = status      # expected exit status under keel-vmm
        self.qemu_status = status if qemu_status is None else qemu_status
        self.expect = expect      # regexes, each must match a whole line of serial output
        self.inputs = inputs      # (prompt regex, line to send) in order
        self.check = check        # extra check(run) -> error string or None
        self.setup = setup        # setup(case, tmpdir) -> dict of extras (initrd, args)
        self.timeout = timeout


def smp_case(n):
    return Case("smp", args=f"cpus={n}", cpus=n, memory="128M",
                expect=[rf"smp: {n} of {n} CPUs checked in.*", r"smp: PASS"])


def fw_cfg_case(cpus, memory):
    return Case("fw-cfg", args=f"cpus={cpus} mem={parse_size(memory)}", cpus=cpus, memory=memory,
                expect=[r"fw-cfg: signature QEMU", rf"fw-cfg: CPU count {cpus}",
                        rf"fw-cfg: RAM size {parse_size(memory)} bytes", r"fw-cfg: PASS"])


MB_CMDLINE_TEXT = "keel multiboot test, path=/a/b.c x='y z' last"
MB_INITRD_SIZE = 3 * 4096 + 123


def multiboot_setup(case, tmpdir):
    data = initrd_bytes(MB_INITRD_SIZE)
    path = os.path.join(tmpdir, "module0.bin")
    with open(path, "wb") as f:
        f.write(data)
    mem = parse_size(case.memory)
    args = (f"mem={mem} initrd_size={len(data)} initrd_fnv=0x{fnv1a32(data):08x} "
            + MB_CMDLINE_TEXT)
    return {"initrd": path, "args": args}


def multiboot_check(run):
    want = run.cmdline_given
    if run.vmm == "qemu":  # QEMU's loader prepends the kernel path, as GRUB does
        want = run.kernel + " " + want
    line = f"multiboot: cmdline [{want}]"
    if line not in run.lines:
        got = [l for l in run.lines if l.startswith("multiboot: cmdline")]
        return f"expected the line {line!r}, got {got!r}"
    return None


def multiboot_case(memory, guest="multiboot"):
    return Case(guest, memory=memory, setup=multiboot_setup, check=multiboot_check,
                expect=[r"multiboot: mmap RAM .*", r"multiboot: module 0 .* checksum ok",
                        r"multiboot: PASS"])


def rtc_setup(case, tmpdir):
    return {"args": f"utc={int(time.time())}"}


def reset_case(method, reboot):
    if reboot:
        return Case("reset", args=f"method={method}", status=status_of(0x2B),
                    expect=[r"reset: boot 1", rf"reset: resetting through .*", r"reset: boot 2",
                            r"reset: second boot reached, exiting with 0x2b"])
    return Case("reset", args=f"method={method}", no_reboot=True, status=0,
                expect=[r"reset: boot 1", rf"reset: resetting through .*"],
                check=lambda run: ("the VM booted a second time despite --no-reboot"
                                   if "reset: boot 2" in run.lines else None))


def crash_case(how):
    # A triple fault; or, for int3 on a host whose /dev/kvm emulates guest kernel code, KVM's
    # emulation failure (an internal error). Either way: status 1, one line on stderr naming
    # the exit reason and the guest RIP.
    reasons = r"triple fault|shutdown" if how == "ud2" else r"triple fault|shutdown|internal error|emulation"

    def check(run):
        m = None
        for l in run.lines:
            m = re.fullmatch(rf"crash: executing {how} at 0x([0-9a-f]+) with an empty IDT", l)
            if m:
                break
        if not m:
            return "the guest did not report the faulting instruction's address"
        if run.vmm == "qemu":
            return None  # QEMU resets (and exits 0 with -no-reboot); it prints no message
        rip = int(m.group(1), 16)
        lines = [l for l in run.stderr.splitlines() if l.strip()]
        for l in lines:
            lo = l.lower()
            if re.search(reasons, lo) and "rip" in lo:
                mm = re.search(r"rip\W*(0x)?([0-9a-f]+)", lo)
                if not mm:
                    return f"stderr line names no RIP value: {l!r}"
                got = int(mm.group(2), 16)
                # On AMD, KVM re-initialises the vCPU at a shutdown before keel-vmm can read
                # it (the RIP reads 0xfff0), and keel-vmm says so rather than name a wrong
                # place: on an AMD host only, that line stands in for the RIP check (on
                # Intel a reset before the dump would be a bug to catch).
                amd_reset = host_is_amd() and any(
                    "registers read back in their reset state" in h for h in lines)
                if not rip <= got <= rip + 2 and not (amd_reset and got == 0xFFF0):
                    return (f"stderr line names rip 0x{got:x}, the guest's {how} is at "
                            f"0x{rip:x}: {l!r}")
                # The crash report also lists the vCPU's last exits: the guest's last
                # console output was a port write, and the crash exit itself comes last.
                hist = [h for h in lines if "exits to keel-vmm:" in h]
                if not hist or "port out 0x" not in hist[0]:
                    return f"no history of the last exits naming a port write: {lines!r}"
                return None
        return (f"expected a stderr line naming the exit reason ({reasons}) and the guest "
                f"RIP 0x{rip:x}; stderr was {lines!r}")

    return Case("crash", args=f"how={how}", status=1, qemu_status=0, no_reboot=True, check=check)


def virtio_crash_check(run):
    # keel-vmm's crash report names each virtio device's queue indices (one request made,
    # taken and completed) and its MSI-X state (the guest's vector 0x51, unmasked).
    err = run.stderr
    if run.vmm == "qemu":
        return None
    if not re.search(r"virtio-rng \w+: status 0xf, .* q0 size 16 avail 1 \(taken 1\) "
                     r"used 1 \(written 1\) vector 0;", err):
        return f"no crash report line with the rng queue's indices; stderr was {err!r}"
    if not re.search(r"virtio-rng \w+: MSI-X enabled, pending 0x0; v0 0x51@0xfee", err):
        return f"no crash report line with the rng's MSI-X state; stderr was {err!r}"
    if "VM crashed" not in err:
        return f"no crash line; stderr was {err!r}"
    return None


# virtio-blk on a dynamic VHDX (tests/guests/virtio.c, mode=blk): the guest writes, flushes,
# reads back, zeroes and discards through keel-vmm's disk library; afterwards the image
# must pass `keel disk check` and `qemu-img check` and convert to the raw bytes expected.
VHDX_SECTORS = 131072
VHDX_STATE = {}
# The write-zeroes bounds src/vmm/virtio/blk.c gives: zeros written (VHDX), one segment of
# at most 32 MiB, as large as a read or write; a raw file's zeros are a discard, cheap at
# any size (BLK_MAX_DISCARD sectors per segment, 32 segments).
WZ_WRITTEN = "wz_max=%d wz_segs=1" % ((32 << 20) // 512)
WZ_DISCARD = "wz_max=%d wz_segs=32" % 0x3fffff


def blk_pattern(sector):
    return bytes((sector * 31 + i * 7 + (i >> 8)) & 0xFF for i in range(512))


def vhdx_setup(case, tmpdir):
    keel = os.path.join(os.path.dirname(os.path.dirname(VHDX_STATE["keel_vmm"])), "cli", "keel")
    d = tempfile.mkdtemp(prefix="keel-vhdx-")
    path = os.path.join(d, "disk.vhdx")
    subprocess.run([keel, "disk", "create", path, "--size", "64M", "--block-size", "1M"],
                   check=True, stdout=subprocess.DEVNULL)
    VHDX_STATE.update(dir=d, path=path, keel=keel)
    case.vmm_args = ["--disk", f"path={path},serial=keel-vhdx-1"]
    return {"args": f"mode=blk sectors={VHDX_SECTORS} serial=keel-vhdx-1 {WZ_WRITTEN}"}


def vhdx_check(run):
    d, path = VHDX_STATE["dir"], VHDX_STATE["path"]
    try:
        r = subprocess.run([VHDX_STATE["keel"], "disk", "check", path], capture_output=True,
                           text=True)
        if r.returncode:
            return f"keel disk check failed: {r.stdout}{r.stderr}"
        if not shutil.which("qemu-img"):
            return None
        r = subprocess.run(["qemu-img", "check", "-f", "vhdx", path], capture_output=True,
                           text=True)
        if r.returncode:
            return f"qemu-img check failed: {r.stdout}{r.stderr}"
        raw = os.path.join(d, "disk.raw")
        subprocess.run(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", path, raw], check=True)
        data = open(raw, "rb").read()
        if len(data) != VHDX_SECTORS * 512:
            return f"qemu-img converts the image to {len(data)} bytes"
        want = {}
        for start, count in ((0, 8), (2040, 16), (100000, 1), (VHDX_SECTORS - 8, 8)):
            for s in range(start, start + count):
                want[s] = blk_pattern(s)
        for s in range(2044, 2048):
            want[s] = bytes(512)
        for s in sorted(want):
            if data[s * 512:(s + 1) * 512] != want[s]:
                return f"qemu-img reads sector {s} differently from what the guest wrote"
        for s in (1000, 50000, 120000):
            if data[s * 512:(s + 1) * 512] != bytes(512):
                return f"sector {s} was never written but does not read as zeros"
        return None
    finally:
        shutil.rmtree(d, ignore_errors=True)


# virtio-blk on a raw disk whose first bytes are a valid VHDX image (what a guest can write
# into its raw disk): keel-vmm takes the format from the name (disk.img: raw), never from the
# contents, so the guest sees the file's 64 MiB as they are, not the image's 32 MiB, and its
# writes land at their raw offsets (QEMU's CVE-2008-2004 class; issue 10).
RAW_SECTORS = 131072


def raw_vhdx_header_setup(case, tmpdir):
    keel = os.path.join(os.path.dirname(os.path.dirname(VHDX_STATE["keel_vmm"])), "cli", "keel")
    d = tempfile.mkdtemp(prefix="keel-rawhdr-")
    vhdx, path = os.path.join(d, "image.vhdx"), os.path.join(d, "disk.img")
    subprocess.run([keel, "disk", "create", vhdx, "--size", "32M", "--block-size", "1M"],
                   check=True, stdout=subprocess.DEVNULL)
    shutil.copyfile(vhdx, path)
    with open(path, "r+b") as f:
        f.truncate(RAW_SECTORS * 512)
    VHDX_STATE.update(dir=d, path=path)
    case.vmm_args = ["--disk", f"path={path},serial=keel-raw-1"]
    return {"args": f"mode=blk sectors={RAW_SECTORS} serial=keel-raw-1 {WZ_DISCARD}"}


# virtio-blk on a descriptor keeld would pass (--fd disk.0=N): the description names a file
# that does not exist, so the guest's 64 MiB and its writes can only come from the
# descriptor; the worker opens no disk by name (issue 10).
def passed_fd_setup(case, tmpdir):
    d = tempfile.mkdtemp(prefix="keel-fd-")
    path = os.path.join(d, "real.img")
    with open(path, "wb") as f:
        f.truncate(RAW_SECTORS * 512)
    fd = os.open(path, os.O_RDWR)
    VHDX_STATE.update(dir=d, path=path)
    case.vmm_args = ["--disk", f"path={d}/not-there.img,serial=keel-fd-1", "--fd", f"disk.0={fd}"]
    return {"args": f"mode=blk sectors={RAW_SECTORS} serial=keel-fd-1 {WZ_DISCARD}",
            "pass_fds": (fd,)}


# Multi-queue virtio-net (tests/guests/virtio.c, mode=net): two queue pairs on two datagram
# socket pairs that keel-vmm takes as a multi-queue tap's queues (--fd net.0, net.0.q1, as
# keeld passes them); a thread here echoes every frame back on the queue it left by and counts
# them. The guest sets pairs with the control queue, sends hostile commands, and checks where
# each echo arrives; here each queue must have echoed the frames the guest sent by it.
NET_STATE = {}


def net_setup(case, tmpdir):
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    host = [p[1] for p in pairs]
    counts = NET_STATE["counts"] = [0, 0]

    def echo():
        while True:
            ready, _, _ = select.select(host, [], [], 0.5)
            for s in ready:
                try:
                    frame = s.recv(70000)
                except OSError:
                    return
                counts[host.index(s)] += 1
                try:
                    s.send(frame)
                except OSError:
                    return

    NET_STATE["host"] = host  # kept open while the worker runs
    threading.Thread(target=echo, daemon=True).start()
    fds = tuple(p[0].detach() for p in pairs)
    case.vmm_args = ["--net", "tap=kmq0,queues=2", "--fd", f"net.0={fds[0]}",
                     "--fd", f"net.0.q1={fds[1]}"]
    return {"args": "mode=net", "pass_fds": fds}


def net_check(run):
    # Pair 0's queue: the frame pair 1 sent before it was enabled, pair 0's own, and pair 1's
    # after it was disabled again; pair 1's queue: its three frames while enabled.
    if NET_STATE["counts"] != [3, 3]:
        return f"frames echoed per tap queue {NET_STATE['counts']}, expected [3, 3]"
    return None


# Multi-queue virtio-blk (tests/guests/virtio.c, mode=blkmq): two queues with 16 requests in
# flight on each, buffers that are not sector-aligned in memory, a request across a VHDX
# block boundary, flush, write-zeroes and discard; in each cache mode, on the io_uring
# backend and on the thread pool (KEEL_BLKIO=threads). Afterwards the file must hold what
# the guest wrote, and keel-vmm's log must say which path it took.
MQ_STATE = {}
MQ_BASE, MQ_SECTORS, MQ_QSIZE = 2044, 8, 16


def mq_case(fmt, cache, log, threads=False, irqwin=0, resetflight=False, late_ms=0, qos="",
            parent=False):
    def setup(case, tmpdir):
        d = tempfile.mkdtemp(prefix="keel-blkmq-")
        path = os.path.join(d, "disk." + fmt)
        if fmt == "vhdx":
            keel = os.path.join(os.path.dirname(os.path.dirname(VHDX_STATE["keel_vmm"])),
                                "cli", "keel")
            # parent: a differencing child of an empty dynamic VHDX
            base = os.path.join(d, "base.vhdx") if parent else path
            subprocess.run([keel, "disk", "create", base, "--size", "64M", "--block-size",
                            "1M"], check=True, stdout=subprocess.DEVNULL)
            if parent:
                subprocess.run([keel, "disk", "create", path, "--type", "differencing",
                                "--parent", base, "--size", "64M"], check=True,
                               stdout=subprocess.DEVNULL)
            MQ_STATE["keel"] = keel
        else:
            with open(path, "wb") as f:
                f.truncate(64 * MiB)
        MQ_STATE.update(dir=d, path=path, fmt=fmt)
        case.vmm_args = ["--disk", f"path={path},format={fmt},cache={cache}{qos}"]
        extras = {"args": "mode=blkmq queues=2" + (f" irqwin={irqwin}" if irqwin else "") +
                  (" slow=100" if qos else "") +
                  (" resetflight=1" if resetflight else "")}
        if threads:
            extras["env"] = {"KEEL_BLKIO": "threads"}
        if late_ms:
            extras.setdefault("env", {})["KEEL_VMM_TEST_LATE_POOL_MS"] = str(late_ms)
        return extras

    def check(run):
        d, path = MQ_STATE["dir"], MQ_STATE["path"]
        try:
            if not re.search(log, run.stderr):
                return f"keel-vmm's log has no line matching {log!r}: {run.stderr!r}"
            raw = path
            if MQ_STATE["fmt"] == "vhdx":
                r = subprocess.run([MQ_STATE["keel"], "disk", "check", path],
                                   capture_output=True, text=True)
                if r.returncode:
                    return f"keel disk check failed: {r.stdout}{r.stderr}"
                raw = os.path.join(d, "disk.raw")
                if parent:  # QEMU does not open differencing VHDX files
                    subprocess.run([MQ_STATE["keel"], "disk", "convert", path, raw, "--format",
                                    "raw"], check=True, stdout=subprocess.DEVNULL)
                elif not shutil.which("qemu-img"):
                    return None
                else:
                    subprocess.run(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", path,
                                    raw], check=True)
            data = open(raw, "rb").read()
            for q in range(2):
                for i in range(MQ_QSIZE):
                    if (q, i) == (1, 6):
                        continue  # discarded: zeros or the old data
                    first = MQ_BASE + (q * MQ_QSIZE + i) * MQ_SECTORS
                    for s in range(first, first + MQ_SECTORS):
                        want = bytes(512) if (q, i) == (0, 5) else blk_pattern(s)
                        if data[s * 512:(s + 1) * 512] != want:
                            return f"sector {s} (queue {q} request {i}) is not what the " \
                                   "guest wrote"
            return None
        finally:
            shutil.rmtree(d, ignore_errors=True)

    window = [r"virtio-blkmq: interrupts \d+ TSC ticks before the halt woke it"] if irqwin else []
    return Case("virtio", cpus=2, memory="64M", setup=setup, check=check, timeout=60, expect=[
        *window,
        r"virtio-blkmq: 2 queues, 32 requests in flight at once, written, rewritten and read "
        r"back, one interrupt per queue and round",
        r"virtio-blkmq: flush, write-zeroes, discard ok",
        *([r"virtio-blkmq: reset with 32 reads in flight"] if resetflight else []),
        r"virtio: PASS"])


def raw_vhdx_header_check(run):
    """The guest's blk patterns at their raw offsets of VHDX_STATE's file."""
    d, path = VHDX_STATE["dir"], VHDX_STATE["path"]
    try:
        data = open(path, "rb").read()
        if len(data) != RAW_SECTORS * 512:
            return f"the raw file is {len(data)} bytes after the run"
        if data[:8] == b"vhdxfile":
            return "the guest's first sectors did not land at the start of the file"
        for start, count in ((0, 8), (2040, 4), (100000, 1), (RAW_SECTORS - 8, 8)):
            for s in range(start, start + count):
                if data[s * 512:(s + 1) * 512] != blk_pattern(s):
                    return f"sector {s} is not at its raw offset in the file"
        for s in range(2044, 2048):
            if data[s * 512:(s + 1) * 512] != bytes(512):
                return f"write-zeroes left sector {s} non-zero"
        return None
    finally:
        shutil.rmtree(d, ignore_errors=True)


CASES = {
    "serial-output": Case("serial", expect=[
        r"serial: hello from the keel tiny guest on COM1",
        r"serial: 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        r"serial: PASS"]),
    "serial-input": Case("serial", args="input=1", inputs=[
        (r"serial: ready for a line \(polled\)", "Hello, keel 42!"),
        (r"serial: ready for a line \(irq .*", "stressed desserts 123")],
        expect=[r"serial: polled line upper-cased: \[HELLO, KEEL 42!\]",
                r"serial: irq line reversed: \[321 stressed desserts\] \(\d+ interrupts\)",
                r"serial: PASS"]),
    "uart-registers": Case("uart", expect=[
        r"uart: scratch, divisor latch, LCR and FIFO identification ok .*",
        r"uart: loopback ok .*", r"uart: THRE interrupt ok .*", r"uart: PASS"]),
    "debug-exit-42": Case("debug-exit", args="value=42 width=1", status=status_of(42),
                          expect=[r"debug-exit: writing 42 with a 1-byte write to port 0xf4"]),
    "debug-exit-127-outl": Case("debug-exit", args="value=127 width=4", status=status_of(127),
                                expect=[r"debug-exit: writing 127 with a 4-byte write to port 0xf4"]),
    "smp-1": smp_case(1),
    "smp-2": smp_case(2),
    "smp-4": smp_case(4),
    "smp-2-reboot": Case("smp", args="cpus=2 reboot=1", cpus=2, memory="128M", expect=[
        r"smp: boot 1", r"smp: boot 1 passed, resetting through the i8042", r"smp: boot 2",
        r"smp: 2 of 2 CPUs checked in.*", r"smp: PASS"],
        check=lambda run: (None if sum(l.startswith("smp: 2 of 2 CPUs checked in")
                                       for l in run.lines) == 2
                           else "expected both boots to report 2 of 2 CPUs checked in")),
    "timer": Case("timer", expect=[r"timer: \d+ PIT ticks on vector 0x20 .*",
                                   r"timer: \d+ LAPIC timer ticks on vector 0x40 .*",
                                   r"timer: \d+ TSC-deadline interrupts on vector 0x40 .*none early, none once disarmed",
                                   r"timer: PASS"]),
    "acpi": Case("acpi", args="cpus=2", cpus=2, expect=[
        r"acpi: RSDP at 0x[0-9a-f]+ .*", r"acpi: MADT: .*", r"acpi: FADT .*",
        r"acpi: DSDT .* has \\_S5", r"acpi: PASS"]),
    "fw-cfg-1cpu-192m": fw_cfg_case(1, "192M"),
    "fw-cfg-4cpus-1g": fw_cfg_case(4, "1G"),
    "multiboot": multiboot_case("160M"),
    "multiboot-highmem": multiboot_case("4608M"),
    "multiboot-aout": multiboot_case("160M", guest="multiboot-aout.bin"),
    "rtc": Case("rtc", setup=rtc_setup, expect=[r"rtc: CMOS time .*", r"rtc: PASS"]),
    "reset-i8042-noreboot": reset_case("i8042", False),
    "reset-i8042-reboot": reset_case("i8042", True),
    "reset-cf9-noreboot": reset_case("cf9", False),
    "reset-cf9-reboot": reset_case("cf9", True),
    "poweroff": Case("poweroff", status=0, expect=[
        r"poweroff: \\_S5 SLP_TYPa \d+: writing 0x[0-9a-f]{4} to PM1a_CNT at port 0x[0-9a-f]+"]),
    "crash-ud2": crash_case("ud2"),
    "crash-int3": crash_case("int3"),
    # virtio-rng over PCI driven by a hostile driver (tests/guests/virtio.c): malformed
    # chains are rejected, keel-vmm stays up and serves the valid requests that follow.
    "virtio-hostile": Case("virtio", memory="64M", expect=[
        r"virtio: PCI host bridge, ECAM .* agrees with 0xcf8, rng in slot \d+",
        r"virtio: valid request served, \d+ MSI-X interrupt\(s\) on vector 0x51",
        r"virtio: rejected: a descriptor loop; next request served",
        r"virtio: rejected: nested indirect tables; next request served",
        r"virtio: needs reset: a head index out of range; after a reset, served again",
        r"virtio: keel-vmm served every valid request after 14 malformed ones",
        r"virtio: PASS"]),
    "virtio-crash-report": Case("virtio", args="mode=crash", memory="64M", status=1,
                                qemu_status=0, no_reboot=True, check=virtio_crash_check,
                                expect=[r"virtio-crash: one request served; triple fault now"]),
    "virtio-blk-vhdx": Case("virtio", memory="64M", setup=vhdx_setup, check=vhdx_check,
                            timeout=60, expect=[
        r"virtio: PCI host bridge, ECAM .* blk in slot \d+",
        r"virtio: blk writes, flush and reads back ok",
        r"virtio: blk write-zeroes, discard, bad requests ok",
        r"virtio: blk write-zeroes bound 65536 sectors: one more refused, the bound served",
        r"virtio: PASS"]),
    "virtio-blk-passed-fd": Case("virtio", memory="64M", setup=passed_fd_setup,
                                 check=raw_vhdx_header_check, timeout=60, expect=[
        r"virtio: PCI host bridge, ECAM .* blk in slot \d+",
        r"virtio: blk writes, flush and reads back ok",
        r"virtio: PASS"]),
    "virtio-net-mq": Case("virtio", cpus=2, memory="64M", setup=net_setup, check=net_check,
                          timeout=60, expect=[
        r"virtio: PCI host bridge, ECAM .* virtio-net in slot \d+",
        r"net: MQ and CTRL_VQ negotiated, 5 queues, max_virtqueue_pairs 2",
        r"net: pair 1 not enabled: 100 bytes out on pair 1, back on queue 0",
        r"net: two pairs, pair 1: 300 bytes out on pair 1, back on queue 2",
        r"net: VQ_PAIRS_SET 0: ack 1",
        r"net: VQ_PAIRS_SET 3: ack 1",
        r"net: no ack byte \(0 bytes back\): ack -1",
        r"net: one pair again, pair 1's chain: 500 bytes out on pair 1, back on queue 0",
        r"net: two pairs again, pair 1: 600 bytes out on pair 1, back on queue 2",
        r"net: PASS", r"virtio: PASS"]),
    "virtio-blk-mq-none": mq_case("raw", "none", r"cache=none, io_uring"),
    "virtio-blk-mq-writeback": mq_case("raw", "writeback", r"cache=writeback, io_uring"),
    "virtio-blk-mq-unsafe": mq_case("raw", "unsafe", r"cache=unsafe: the guest's flushes are "
                                    r"IGNORED"),
    # The 32 first writes into new blocks of a dynamic VHDX: the I/O thread allocates each
    # block as it maps the first write into it (vhdx_map), so every one of them goes straight
    # to the file, none through the library, none waiting for another's allocation (97: the
    # 96 of the three rounds and the read after write-zeroes).
    "virtio-blk-mq-vhdx": mq_case("vhdx", "none", r"(?s)cache=none, io_uring.*requests: 97 "
                                  r"direct \(\d+ bounced\), \d+ zeros, 0 read/write by the "
                                  r"library \(0 more waited for an allocation\)"),
    # A differencing VHDX allocates through the library (the sector bitmap): one write (two
    # when a write inside the block comes before the one that also spans the block before
    # it) goes through the library, the others wait for its allocation and then go straight
    # to the file.
    "virtio-blk-mq-vhdx-diff": mq_case("vhdx", "none", r"(?s)cache=none, io_uring.*requests: "
                                       r"\d+ direct \(\d+ bounced\), \d+ zeros, [12] read/write "
                                       r"by the library \([1-9]\d* more waited for an "
                                       r"allocation\)", parent=True),
    "virtio-blk-mq-threads": mq_case("raw", "none", r"io_uring is not available \(KEEL_BLKIO="
                                     r"threads asks for the thread pool\).*\n.*cache=none, "
                                     r"thread pool", threads=True),
    # The block pool's threads slow to begin (test builds: KEEL_VMM_TEST_LATE_POOL_MS):
    # jailed, the jail must wait for threads created before it rather than refuse them as
    # late (the worker then ended: "cannot install the pool thread's seccomp filter").
    "virtio-blk-mq-late-threads": mq_case("raw", "none", r"cache=none, thread pool",
                                          threads=True, late_ms=300),
    # An interrupt that lands between the guest's check and its halt must wake the halt (the
    # guest notifies inside that window, 100M TSC ticks before halting): with interrupts on
    # during the check, this hung every time (docs/testing.md).
    "virtio-blk-mq-irq-window": mq_case("raw", "none", r"cache=none, io_uring",
                                        irqwin=100000000),
    # The driver resets the device with reads in flight: the reset drains them on the vCPU
    # thread (with io_uring: io_uring_enter, which the jailed vCPU thread's filter must allow).
    "virtio-blk-mq-reset-in-flight": mq_case("raw", "none", r"cache=none, io_uring",
                                             resetflight=True),
    # Storage QoS limits that make requests wait: the QoS timer is armed on the disk's I/O
    # thread (jailed: under its filter); run-state.py's state-blk-qos checks the counters.
    "virtio-blk-mq-qos": mq_case("raw", "none", r"QoS max-iops 20, max-bandwidth 65536 "
                                 r"bytes/s", qos=",max-iops=20,max-bandwidth=64K"),
    "virtio-blk-mq-vhdx-threads": mq_case("vhdx", "writeback", r"cache=writeback, thread pool",
                                          threads=True),
    "virtio-blk-raw-vhdx-header": Case("virtio", memory="64M", setup=raw_vhdx_header_setup,
                                       check=raw_vhdx_header_check, timeout=60, expect=[
        r"virtio: PCI host bridge, ECAM .* blk in slot \d+",
        r"virtio: blk writes, flush and reads back ok",
        r"virtio: blk write-zeroes, discard, bad requests ok",
        r"virtio: blk write-zeroes bound 4194303 sectors \(by discard\)",
        r"virtio: PASS"]),
}


def describe_status(st):
    if st is None:
        return "still running"
    if st < 0:
        return f"killed by signal {-st}"
    if st == STATUS_PASS:
        return f"{st} (guest PASS)"
    if st == status_of(EXIT_FAIL):
        return f"{st} (the guest reported FAIL)"
    if st == status_of(EXIT_EXCEPTION):
        return f"{st} (the guest took an unexpected exception or interrupt)"
    if st & 1:
        return f"{st} (debug-exit value {st >> 1}, or a keel-vmm error if 1)"
    return str(st)


class Run:
    pass


class Reader(threading.Thread):
    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.data = bytearray()
        self.cond = threading.Condition()
        self.eof = False

    def run(self):
        while True:
            chunk = os.read(self.stream.fileno(), 65536)
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.data += chunk
                self.cond.notify_all()

    def text(self):
        with self.cond:
            return self.data.decode("latin-1").replace("\r", "")

    def wait_for(self, regex, deadline):
        pat = re.compile(regex)
        with self.cond:
            while True:
                text = self.data.decode("latin-1").replace("\r", "")
                if any(pat.fullmatch(l) for l in text.split("\n")):
                    return True
                if self.eof:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"/dev/kvm is not usable: {e.strerror}"
    os.close(fd)
    return None


def build_command(vmm, keel_vmm, case, kernel, args, initrd):
    if vmm == "qemu":
        accel = os.environ.get("KEEL_GUEST_QEMU_ACCEL", "tcg")
        cmd = ["qemu-system-x86_64", "-accel", accel, "-nodefaults", "-display", "none",
               "-serial", "stdio", "-kernel", kernel,
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
               "-append", args]
        if case.cpus:
            cmd += ["-smp", str(case.cpus)]
        if case.memory:
            cmd += ["-m", str(parse_size(case.memory) // MiB)]
        if initrd:
            cmd += ["-initrd", initrd]
        if case.no_reboot:
            cmd += ["-no-reboot"]
        return cmd
    cmd = [keel_vmm, "--kernel", kernel, "--cmdline", args, "--debug-exit",
           "--serial", "stdio"]
    if case.cpus:
        cmd += ["--cpus", str(case.cpus)]
    if case.memory:
        cmd += ["--memory", case.memory]
    if initrd:
        cmd += ["--initrd", initrd]
    if case.no_reboot:
        cmd += ["--no-reboot"]
    cmd += getattr(case, "vmm_args", [])
    return cmd


def pass_disks(cmd):
    """Open each --disk of cmd that is not passed already, as keeld would, and add its --fd
    (disk.I, or lun.I for bus=scsi) to cmd; returns the descriptors."""
    fds, counts = [], {"disk": 0, "lun": 0}
    passed = {cmd[i + 1].split("=")[0] for i, a in enumerate(cmd[:-1]) if a == "--fd"}
    for i, a in enumerate(cmd[:-1]):
        if a != "--disk":
            continue
        opts = dict(o.split("=", 1) for o in cmd[i + 1].split(",") if "=" in o)
        kind = "lun" if opts.get("bus") == "scsi" else "disk"
        name = "%s.%d" % (kind, counts[kind])
        counts[kind] += 1
        if name in passed:
            continue
        ro = opts.get("readonly") == "on"
        fds.append(os.open(opts["path"], os.O_RDONLY if ro else os.O_RDWR))
        cmd += ["--fd", "%s=%d" % (name, fds[-1])]
    return tuple(fds)


# The uid a --jail run's keel-vmm becomes: from the end of keeld's default range, which the
# daemon tests' workers take from the start.
JAIL_UID = 3221291007


def run_case(name, case, keel_vmm, guests_dir, jail=False):
    vmm = os.environ.get("KEEL_GUEST_VMM", "keel")
    if vmm not in ("keel", "qemu"):
        print(f"run-guest: KEEL_GUEST_VMM={vmm!r} is neither 'keel' nor 'qemu'")
        return 1
    if vmm == "keel":
        if not keel_vmm:
            print("run-guest: --keel-vmm PATH is required (or set KEEL_GUEST_VMM=qemu)")
            return 1
        why = kvm_usable()
        if why:
            print(f"SKIP {name}: {why}")
            return 77
    kernel = os.path.join(guests_dir, case.guest if "." in case.guest else case.guest + ".elf")
    if not os.path.exists(kernel):
        print(f"run-guest: guest kernel {kernel} does not exist (build it first)")
        return 1

    with tempfile.TemporaryDirectory(prefix="keel-guest-") as tmpdir:
        extras = case.setup(case, tmpdir) if case.setup else {}
        args = " ".join(a for a in (case.args, extras.get("args", "")) if a)
        if vmm == "qemu":
            args = (args + " vmm=qemu").strip()
        cmd = build_command(vmm, keel_vmm, case, kernel, args, extras.get("initrd"))
        if jail and vmm == "keel":
            # As keeld runs it (docs/security.md), less the PID namespace: everything the
            # guest makes the worker do happens under its seccomp filters.
            root = os.path.join(tmpdir, "jail")
            os.mkdir(root, 0o751)
            os.chmod(root, 0o751)
            cmd += ["--jail-user", "%d:%d" % (JAIL_UID, JAIL_UID), "--jail-root", root,
                    "--status-file", os.path.join(root, "status.json")]
            # keeld opens every disk and passes it: a jailed worker opens none by path.
            extras["pass_fds"] = tuple(extras.get("pass_fds", ())) + pass_disks(cmd)
        print("run-guest: " + " ".join(repr(c) if (" " in c or not c) else c for c in cmd))
        start = time.monotonic()
        deadline = start + seconds(case.timeout)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                pass_fds=extras.get("pass_fds", ()),
                                env={**os.environ, **extras.get("env", {})})
        for fd in extras.get("pass_fds", ()):
            os.close(fd)  # the worker has it
        out, err = Reader(proc.stdout), Reader(proc.stderr)
        out.start()
        err.start()
        problems = []
        for prompt, line in case.inputs:
            if not out.wait_for(prompt, deadline):
                problems.append(f"the guest never printed a line matching {prompt!r} "
                                "(waiting to send input)")
                break
            try:
                proc.stdin.write((line + "\n").encode())
                proc.stdin.flush()
            except BrokenPipeError:
                problems.append("keel-vmm closed its stdin before the input was sent")
                break
        try:
            status = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = None
            problems.append(f"timed out after {seconds(case.timeout):g} s; the VM was still "
                            "running")
        elapsed = time.monotonic() - start
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        out.join(5)
        err.join(5)

    run = Run()
    run.vmm = vmm
    run.kernel = kernel
    run.cmdline_given = args
    run.status = status
    run.serial = out.text()
    run.lines = run.serial.split("\n")
    run.stderr = err.text()

    want_status = case.qemu_status if vmm == "qemu" else case.status
    if status is not None and status != want_status:
        problems.append(f"exit status {describe_status(status)}, expected "
                        f"{describe_status(want_status)}")
    for regex in case.expect:
        pat = re.compile(regex)
        if not any(pat.fullmatch(l) for l in run.lines):
            problems.append(f"no serial output line matches {regex!r}")
    fails = [l for l in run.lines if ": FAIL" in l]
    if fails and want_status == STATUS_PASS:
        problems.append("the guest reported: " + " | ".join(fails))
    if case.check and status is not None:
        msg = case.check(run)
        if msg:
            problems.append(msg)

    if problems:
        print(f"FAIL {name} ({vmm}, {elapsed:.1f} s):")
        for p in problems:
            print("  - " + p)
        print("--- serial output ---")
        print(run.serial.rstrip())
        print("--- stderr ---")
        print(run.stderr.rstrip())
        return 1
    print(f"PASS {name} ({vmm}, {elapsed:.1f} s, status {status})")
    print("--- serial output ---")
    print(run.serial.rstrip())
    if run.stderr.strip():
        print("--- stderr ---")
        print(run.stderr.rstrip())
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keel-vmm", help="path of keel-vmm")
    ap.add_argument("--guests", default=os.path.join("build", "tests", "guests"),
                    help="directory holding the built guest kernels (*.elf)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--jail", action="store_true",
                    help="run keel-vmm jailed (--jail-user, --jail-root), as keeld does")
    ap.add_argument("case", nargs="?")
    a = ap.parse_args()
    if a.list:
        for n in CASES:
            print(n)
        return 0
    if a.case not in CASES:
        print(f"run-guest: unknown case {a.case!r}; known: {', '.join(CASES)}")
        return 1
    VHDX_STATE["keel_vmm"] = a.keel_vmm or ""
    return run_case(a.case, CASES[a.case], a.keel_vmm, a.guests, a.jail)


if __name__ == "__main__":
    sys.exit(main())
