#!/usr/bin/env python3
"""bench/control: keel's control plane, compared with QEMU in the same run.

1. Worker start: keel-vmm exec to control socket ready, in CPU milliseconds (all threads,
   from /proc/PID/task/*/schedstat at the moment the socket accepts) and wall milliseconds.
   Peer: QEMU (-accel kvm) exec to QMP socket ready, same tiny guest, same measure.
   Firecracker publishes 8 CPU ms for its equivalent.
2. API to running: POST /v1/vms/NAME/start to GET showing Running, for 20 VMs started one
   after another and 20 started at once, through keeld. Peer: 20 QEMUs spawned directly to
   QMP ready, the same two ways (no management layer: the cost keeld adds is the gap).

Prints one table and, with --record FILE, replaces the bench/control section of FILE.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def task_cpu_ns(pid):
    total = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
    except OSError:
        pass
    return total


def wait_socket(path, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %d before its socket was ready" %
                               (proc.args[0], proc.returncode))
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                return
            except OSError:
                pass
            finally:
                s.close()
        time.sleep(0.0005)
    raise RuntimeError("%s: no socket %s after %.0f s" % (proc.args[0], path, timeout))


def start_to_ready(cmd, sock):
    """(cpu_ms, wall_ms) from exec to the socket accepting."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_socket(sock, p)
        wall = (time.monotonic() - t0) * 1000
        cpu = task_cpu_ns(p.pid) / 1e6
    finally:
        p.kill()
        p.wait()
    return cpu, wall


def keel_cmd(a, d, i):
    return ([a.keel_vmm, "--kernel", a.guest, "--memory", "64M", "--serial", "off",
             "--control", os.path.join(d, "c%d.sock" % i)], os.path.join(d, "c%d.sock" % i))


def qemu_cmd(a, d, i):
    sock = os.path.join(d, "q%d.sock" % i)
    return ([a.qemu, "-accel", "kvm", "-M", "q35", "-m", "64", "-nodefaults",
             "-no-user-config", "-display", "none", "-serial", "null", "-kernel", a.guest,
             "-qmp", "unix:%s,server=on,wait=off" % sock], sock)


def bench_worker(a, d, make, n):
    cpu, wall = [], []
    for i in range(n):
        cmd, sock = make(a, d, i)
        c, w = start_to_ready(cmd, sock)
        cpu.append(c)
        wall.append(w)
        os.unlink(sock) if os.path.exists(sock) else None
    return statistics.median(cpu), statistics.median(wall)


def http(sock, method, path, body=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    data = json.dumps(body) if body is not None else ""
    req = "%s %s HTTP/1.1\r\nHost: keeld\r\nConnection: close\r\n" % (method, path)
    if body is not None:
        req += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
    s.sendall((req + "\r\n" + data).encode())
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    head, _, payload = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload) if payload.strip() else None


def start_and_wait(sock, name, out, idx):
    t0 = time.monotonic()
    code, doc = http(sock, "POST", "/v1/vms/%s/start" % name)
    if code != 202:
        raise RuntimeError("start %s: %d %r" % (name, code, doc))
    while True:
        code, doc = http(sock, "GET", "/v1/vms/" + name)
        if doc["state"] == "Running":
            break
        if doc["state"] != "Starting":
            raise RuntimeError("VM %s is %s: %s" % (name, doc["state"], doc["state_reason"]))
        time.sleep(0.001)
    out[idx] = (time.monotonic() - t0) * 1000


def bench_api(a, d, n):
    state, sock = os.path.join(d, "s"), os.path.join(d, "api.sock")
    keeld = subprocess.Popen([a.keeld, "--state-dir", state, "--socket", sock, "--vmm",
                              a.keel_vmm], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_socket(sock, keeld)
        for i in range(n):
            code, doc = http(sock, "POST", "/v1/vms", {"name": "b%d" % i, "kernel": a.guest,
                                                      "memory": 64 << 20})
            assert code == 201, doc
        results = {}
        for mode in ("sequential", "parallel"):
            lat = [0.0] * n
            t0 = time.monotonic()
            if mode == "sequential":
                for i in range(n):
                    start_and_wait(sock, "b%d" % i, lat, i)
            else:
                th = [threading.Thread(target=start_and_wait, args=(sock, "b%d" % i, lat, i))
                      for i in range(n)]
                for t in th:
                    t.start()
                for t in th:
                    t.join()
            total = (time.monotonic() - t0) * 1000
            results[mode] = (statistics.median(lat), max(lat), total)
            for i in range(n):
                http(sock, "POST", "/v1/vms/b%d/turn-off" % i)
            for i in range(n):
                while http(sock, "GET", "/v1/vms/b%d" % i)[1]["state"] != "Off":
                    time.sleep(0.01)
        return results
    finally:
        for i in range(n):
            try:
                http(sock, "POST", "/v1/vms/b%d/turn-off" % i)
            except Exception:
                pass
        keeld.terminate()
        keeld.wait()


def bench_qemu_many(a, d, n):
    results = {}
    for mode in ("sequential", "parallel"):
        lat = [0.0] * n
        procs = []
        t0 = time.monotonic()

        def one(i):
            cmd, sock = qemu_cmd(a, d, 100 + i)
            s0 = time.monotonic()
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_socket(sock, p)
            lat[i] = (time.monotonic() - s0) * 1000

        if mode == "sequential":
            for i in range(n):
                one(i)
        else:
            th = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in th:
                t.start()
            for t in th:
                t.join()
        total = (time.monotonic() - t0) * 1000
        for p in procs:
            p.kill()
            p.wait()
        for i in range(n):
            p = os.path.join(d, "q%d.sock" % (100 + i))
            if os.path.exists(p):
                os.unlink(p)
        results[mode] = (statistics.median(lat), max(lat), total)
    return results


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--keeld", required=True)
    p.add_argument("--keel-vmm", required=True)
    p.add_argument("--guest", required=True)
    p.add_argument("--qemu", default=shutil.which("qemu-system-x86_64"))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--vms", type=int, default=20)
    p.add_argument("--record", help="Markdown file whose bench/control section to replace")
    a = p.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("bench/control: SKIP: no /dev/kvm")
        return 0
    d = tempfile.mkdtemp(prefix="kbc", dir="/tmp")
    try:
        kc, kw = bench_worker(a, d, keel_cmd, a.runs)
        qc, qw = bench_worker(a, d, qemu_cmd, a.runs) if a.qemu else (float("nan"),) * 2
        api = bench_api(a, d, a.vms)
        qmany = bench_qemu_many(a, d, a.vms) if a.qemu else None
    finally:
        shutil.rmtree(d, ignore_errors=True)
    virt = "yes" if any(f in open("/proc/cpuinfo").read().split() for f in ("vmx", "svm")) \
        else "no (KVM without VT-x/AMD-V: guest code is emulated)"
    lines = [
        "## bench/control: control plane (`bench/control/run.sh`)",
        "",
        "Host: %d CPUs, hardware virtualization: %s. Guest: tests/daemon daemon-guest "
        "(tiny multiboot), 64 MiB. Medians; peer is QEMU %s with -accel kvm -M q35 in the "
        "same run." % (os.cpu_count(), virt, subprocess.run(
            [a.qemu, "--version"], capture_output=True, text=True).stdout.split()[3]
            if a.qemu else "(absent)"),
        "",
        "| measure | keel | QEMU | keel/QEMU |",
        "|---|---|---|---|",
        "| worker exec to control socket ready, CPU ms (%d runs) | %.1f | %.1f | %.2f |" %
        (a.runs, kc, qc, kc / qc),
        "| worker exec to control socket ready, wall ms | %.1f | %.1f | %.2f |" %
        (kw, qw, kw / qw),
    ]
    for mode in ("sequential", "parallel"):
        k = api[mode]
        q = qmany[mode] if qmany else (float("nan"),) * 3
        lines.append("| %d VMs %s: API start to Running (keel) / spawn to QMP ready (QEMU), "
                     "median ms | %.1f | %.1f | %.2f |" % (a.vms, mode, k[0], q[0], k[0] / q[0]))
        lines.append("| %d VMs %s: all running, total ms | %.1f | %.1f | %.2f |" %
                     (a.vms, mode, k[2], q[2], k[2] / q[2]))
    lines += ["", "Firecracker publishes 8 CPU ms for its process start to API socket ready. "
              "The sequential QEMU runs leave the earlier QEMUs running (as keel's do), and "
              "their firmware keeps the CPUs busy; on a shared 2-CPU host expect run-to-run "
              "variation of up to 2x.", ""]
    text = "\n".join(lines)
    print(text)
    if a.record:
        old = open(a.record).read() if os.path.exists(a.record) else "# Benchmarks\n\n"
        start = old.find("## bench/control")
        if start >= 0:
            end = old.find("\n## ", start + 1)
            old = old[:start] + (old[end + 1:] if end >= 0 else "")
        with open(a.record, "w") as f:
            f.write(old.rstrip("\n") + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
