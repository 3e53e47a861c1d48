#!/usr/bin/env python3
"""keeld and keel end to end on the host (issue 5).

Each case starts its own keeld (state dir and API socket in a fresh temporary directory),
drives it through curl --unix-socket and the keel CLI, runs real keel-vmm workers with the
daemon-guest tiny guest, and checks states, exit statuses, messages and that failed
requests change nothing. Usage: e2e.py --keeld P --keel P --keel-vmm P --guest P CASE
On a host without a usable /dev/kvm the cases in NO_VM (those that run no guest) still run
and the others skip, naming /dev/kvm.
Exits 0 (pass), 1 (fail) or 77 (skip: no /dev/kvm for a case that runs a guest, no
keel-vmm, or what a case needs, such as root).
"""
import argparse
import glob
import grp
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent"))
from vsock_mux import VsockMux  # noqa: E402 (the test mux for the vsock device)


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Env:
    def __init__(self, a):
        self.a = a
        self.dir = tempfile.mkdtemp(prefix="kd", dir="/tmp")
        self.state = os.path.join(self.dir, "s")
        self.sock = os.path.join(self.dir, "api.sock")
        self.keeld_proc = None
        self.keeld_log = os.path.join(self.dir, "keeld.log")
        self.pids = set()
        # keeld runs in a network namespace of its own: its switches (the Default Switch
        # from its first start), rules and dnsmasq never touch the host's network. Without
        # root there is none, and keeld can change no network anyway.
        self.netns = None
        if os.geteuid() == 0:
            self.netns = os.path.basename(self.dir)
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
            self.ns("ip", "link", "set", "lo", "up")

    def ns(self, *cmd, check=True):
        """Run cmd inside keeld's network namespace; its stdout."""
        r = subprocess.run(["ip", "netns", "exec", self.netns] + list(cmd),
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode:
            raise Fail("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stderr))
        return r.stdout

    # ---- keeld ----
    def start_keeld(self, vmm=None, expect_fail=False, extra=(), prefix=()):
        """prefix: a command keeld runs under (inside its network namespace)."""
        log = open(self.keeld_log, "a")
        # nsenter, not `ip netns exec`: only the network namespace changes (the latter also
        # makes a mount namespace, in which the workers' files would show other paths).
        enter = ["nsenter", "--net=/run/netns/" + self.netns] if self.netns else []
        enter += list(prefix)
        p = subprocess.Popen(enter + [self.a.keeld, "--state-dir", self.state, "--socket", self.sock,
                              "--vmm", vmm or self.a.keel_vmm, "--start-timeout", "30"] +
                             list(extra),
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if expect_fail:
            return p.wait(timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline:
            if p.poll() is not None:
                raise Fail("keeld exited with %d at start" % p.returncode)
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                s.close()
                self.keeld_proc = p
                self.make_pools()
                return p
            except OSError:
                time.sleep(0.05)
        raise Fail("keeld did not open its socket within 10 s")

    def make_pools(self):
        """The storage pools the tests' files live in: this run's directory and the guest
        kernel's (docs/security.md), made once per state directory."""
        have = {p["name"] for p in self.api_ok("GET", "/v1/pools")}
        for name, path in (("test", self.dir), ("guest", os.path.dirname(self.a.guest))):
            if name not in have:
                self.api_ok("POST", "/v1/pools", {"name": name, "path": os.path.realpath(path)},
                            want=201)

    def keeld_exits(self, want, when):
        """keeld exits by itself (the wait guards against a hang only), with status want."""
        try:
            status = self.keeld_proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise Fail("keeld still runs %s" % when)
        self.keeld_proc = None
        check(status == want, "keeld exited with %d %s" % (status, when))

    def kill_keeld(self, sig=signal.SIGKILL):
        p = self.keeld_proc
        os.kill(p.pid, sig)
        p.wait(timeout=10)
        self.keeld_proc = None

    # ---- clients ----
    def curl(self, method, path, body=None, raw=None, who=None):
        cmd = as_user(who) + ["curl", "-s", "-S", "--unix-socket", self.sock, "-X", method,
                              "-o", "-", "-w", "\n%{http_code}", "http://keeld" + path]
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        r = subprocess.run(cmd, input=data.encode() if isinstance(data, str) else data,
                           capture_output=True, timeout=60)
        check(r.returncode == 0, "curl %s %s failed: %s" % (method, path, r.stderr.decode()))
        out = r.stdout.decode()
        body_text, _, code = out.rpartition("\n")
        try:
            doc = json.loads(body_text) if body_text.strip() else None
        except ValueError:
            doc = body_text
        return int(code), doc

    def api_ok(self, method, path, body=None, want=200):
        code, doc = self.curl(method, path, body)
        check(code == want, "%s %s: HTTP %d, wanted %d: %s" % (method, path, code, want, doc))
        return doc

    def api_err(self, method, path, body=None, want=400, msg=None, raw=None):
        before = self.snapshot()
        code, doc = self.curl(method, path, body, raw=raw)
        check(code == want, "%s %s %s: HTTP %d, wanted %d: %s" %
              (method, path, raw if raw is not None else body, code, want, doc))
        check(isinstance(doc, dict) and "error" in doc and doc["error"].get("message"),
              "%s %s: no JSON error body: %r" % (method, path, doc))
        if msg:
            check(msg in doc["error"]["message"], "%s %s: message %r lacks %r" %
                  (method, path, doc["error"]["message"], msg))
        check(self.snapshot() == before, "%s %s changed the store although it failed" %
              (method, path))
        return doc

    def snapshot(self):
        """The VMs as the store has them: without what keeld observes from one second to
        the next (the agent's heartbeat and whether the vCPUs still run)."""
        code, doc = self.curl("GET", "/v1/vms")
        check(code == 200, "list failed: %d" % code)
        for vm in doc if isinstance(doc, list) else []:
            for k in ("heartbeat", "vcpus"):
                (vm.get("integration") or {}).pop(k, None)
        return json.dumps(doc, sort_keys=True)

    def keel(self, *args, input=None, want=0, timeout=120, who=None):
        env = dict(os.environ, KEEL_SOCKET=self.sock)
        r = subprocess.run(as_user(who) + [self.a.keel] + list(args), input=input,
                           capture_output=True, env=env, timeout=timeout)
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        if want is not None:
            check(r.returncode == want, "keel %s: exit %d, wanted %d\nstdout: %s\nstderr: %s" %
                  (" ".join(args), r.returncode, want, out, err))
        return out, err

    def vm(self, name):
        return self.api_ok("GET", "/v1/vms/" + name)

    def create(self, name, cmdline=None, kernel=None, **extra):
        body = {"name": name, "kernel": kernel or self.a.guest, "memory": 16 << 20}
        if cmdline:
            body["cmdline"] = cmdline
        body.update(extra)
        return self.api_ok("POST", "/v1/vms", body, want=201)

    def start(self, name):
        self.keel("vm", "start", name)
        vm = self.vm(name)
        check(vm["state"] == "Running", "VM %s is %s after start" % (name, vm["state"]))
        check(vm["pid"] and pid_alive(vm["pid"]), "VM %s has no live worker" % name)
        self.pids.add(vm["pid"])
        return vm

    def wait_state(self, name, state, timeout=30):
        deadline = time.time() + timeout
        while True:
            vm = self.vm(name)
            if vm["state"] == state:
                return vm
            if time.time() > deadline:
                raise Fail("VM %s is %s (%s), not %s, after %d s" %
                           (name, vm["state"], vm["state_reason"], state, timeout))
            time.sleep(0.1)

    def console_until(self, name, pattern, timeout=20):
        """Read the VM's console (replay included) until pattern appears."""
        vm = self.vm(name)
        check(vm["console_socket"], "VM %s has no console: it is %s (%s)" %
              (name, vm["state"], vm["state_reason"]))
        s = socket.socket(socket.AF_UNIX)
        s.connect(vm["console_socket"])
        s.settimeout(0.5)
        buf = b""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                if re.search(pattern.encode(), buf):
                    return buf.decode(errors="replace")
                try:
                    d = s.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    break
                buf += d
        finally:
            s.close()
        raise Fail("console of %s never showed %r; got %r" % (name, pattern, buf[-500:]))

    def type_console(self, name, text):
        path = self.vm(name)["console_socket"]
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(text.encode())
        time.sleep(0.3)
        s.close()

    def sanitizer_reports(self):
        """Stop keeld normally (so LeakSanitizer runs) and return any sanitizer report."""
        if self.keeld_proc:
            self.kill_keeld(signal.SIGTERM)
        try:
            log = open(self.keeld_log, errors="replace").read()
        except OSError:
            return ""
        m = re.search(r"(ERROR: \w+Sanitizer|runtime error:).*", log, re.S)
        return m.group(0)[:4000] if m else ""

    def cleanup(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.keeld_proc:
            self.keeld_proc.kill()
            self.keeld_proc.wait()
        # What keeld left in its namespace (a dnsmasq of a killed keeld), then the namespace.
        if not self.netns:
            return
        r = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)

    def dump(self):
        try:
            sys.stderr.write("---- keeld log ----\n" + open(self.keeld_log).read()[-6000:])
            for root, _, files in os.walk(os.path.join(self.state, "vms")):
                for f in files:
                    if f.startswith("worker.log"):
                        sys.stderr.write("---- %s ----\n" % os.path.join(root, f))
                        sys.stderr.write(open(os.path.join(root, f)).read()[-3000:])
        except OSError:
            pass


def open_files(pid):
    """What process pid holds open: its descriptors' targets (one closed meanwhile is left
    out: the worker's threads open and close descriptors while this reads them)."""
    held = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            held.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return held


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_dead(pid, timeout=10):
    deadline = time.time() + timeout
    while pid_alive(pid):
        check(time.time() < deadline, "worker %d still alive after %d s" % (pid, timeout))
        time.sleep(0.05)


# ---- holding a worker's threads (ptrace), so that a device keeps requests in flight
PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
WALL = 0x40000000


def ptrace(req, tid):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(req, tid, None, None) < 0:
        raise Fail("ptrace(%d, %d): %s" % (req, tid, os.strerror(ctypes.get_errno())))


def hold_threads(pid, comm):
    """Stop the worker's threads named comm (only them: ptrace stops one thread); returns
    their ids for release_threads."""
    tids = []
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
            if f.read().strip() == comm:
                tids.append(int(t))
    check(tids, "keel-vmm pid %d has no thread %s" % (pid, comm))
    for tid in tids:
        ptrace(PTRACE_SEIZE, tid)
        ptrace(PTRACE_INTERRUPT, tid)
        os.waitpid(tid, WALL)
    return tids


def release_threads(tids):
    for tid in tids:
        ptrace(PTRACE_DETACH, tid)


# ---------------------------------------------------------------- cases

def case_api(e):
    e.start_keeld()
    v = e.api_ok("GET", "/v1/version")
    check(v["name"] == "keeld" and v["api"] == 1, "version: %r" % v)
    check(e.api_ok("GET", "/v1/vms") == [], "a fresh keeld lists VMs")
    mode = stat.S_IMODE(os.stat(e.sock).st_mode)
    try:
        grp.getgrnam("keel")
        want = 0o660
    except KeyError:
        want = 0o600  # no administrators' group: root alone
    check(mode == want, "API socket mode is %o, not %o" % (mode, want))

    disk = os.path.join(e.dir, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    vm = e.api_ok("POST", "/v1/vms", {
        "name": "api1", "kernel": e.a.guest, "cpus": 2, "memory": 64 << 20,
        "cmdline": "x=1", "notes": "first VM", "disks": [{"path": disk, "readonly": True}],
        "nets": [{"tap": "kt0"}], "automatic_start_action": "start-if-running",
        "automatic_stop_action": "turn-off"}, want=201)
    check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                       vm["id"]), "id %r is not a UUID v4" % vm["id"])
    mac = vm["nets"][0]["mac"]
    check(re.fullmatch(r"02(:[0-9a-f]{2}){5}", mac), "MAC %r is not locally administered" % mac)
    check(vm["state"] == "Off" and vm["revision"] == 1 and vm["version"] == 1,
          "new VM: %r" % vm)
    check(vm["cpus"] == 2 and vm["memory"] == 64 << 20 and vm["disks"][0]["readonly"],
          "new VM fields: %r" % vm)
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", vm["created"]), "created %r" %
          vm["created"])
    check(e.vm(vm["id"]) == e.vm("api1"), "lookup by id differs from lookup by name")

    vm2 = e.api_ok("PATCH", "/v1/vms/api1", {"notes": "changed",
                                             "nets": [{"tap": "kt0"}, {"tap": "kt1"}]})
    check(vm2["revision"] == 2 and vm2["notes"] == "changed", "PATCH: %r" % vm2)
    check(vm2["nets"][0]["mac"] == mac, "the MAC of an unchanged NIC changed")
    check(vm2["nets"][1]["mac"] != mac, "the new NIC got the old NIC's MAC")
    check(e.api_ok("PATCH", "/v1/vms/api1", {})["revision"] == 2, "empty PATCH bumped revision")

    # The CLI: create with a relative kernel path, list, show, set, delete.
    gdir, gname = os.path.split(e.a.guest)
    env = dict(os.environ, KEEL_SOCKET=e.sock)
    r = subprocess.run([os.path.abspath(e.a.keel), "vm", "create", "cli1", "--kernel", gname,
                        "--cpus", "3", "--memory", "32M", "--disk", disk, "--net", "kt9"],
                       cwd=gdir, capture_output=True, env=env)
    check(r.returncode == 0, "keel vm create: %s" % r.stderr.decode())
    check(b"Created VM 'cli1'" in r.stdout, "create output: %r" % r.stdout)
    cli1 = e.vm("cli1")
    check(cli1["kernel"] == os.path.realpath(e.a.guest), "relative kernel stored as %r" %
          cli1["kernel"])
    check(cli1["cpus"] == 3 and cli1["memory"] == 32 << 20, "CLI create: %r" % cli1)
    out, _ = e.keel("vm", "list")
    check(re.search(r"^NAME\s+STATE", out, re.M) and re.search(r"^cli1\s+Off\s+3\s+32M", out, re.M),
          "vm list table: %r" % out)
    out, _ = e.keel("vm", "list", "--json")
    check(sorted(v["name"] for v in json.loads(out)) == ["api1", "cli1"], "list --json")
    out, _ = e.keel("vm", "show", "cli1", "--json")
    check(json.loads(out) == e.vm("cli1"), "show --json differs from the API")
    out, _ = e.keel("vm", "show", "cli1")
    check("State:" in out and "Off" in out and "MAC 02:" in out, "show: %r" % out)
    e.keel("vm", "set", "cli1", "--cpus", "4", "--memory", "1G", "--notes", "n",
           "--automatic-start-action", "start")
    cli1 = e.vm("cli1")
    check(cli1["cpus"] == 4 and cli1["memory"] == 1 << 30 and cli1["notes"] == "n" and
          cli1["automatic_start_action"] == "start" and cli1["revision"] == 2, "set: %r" % cli1)
    e.keel("vm", "set", "cli1", "--name", "cli2")
    check(e.vm("cli2")["id"] == cli1["id"], "rename kept the id")
    out, _ = e.keel("vm", "delete", "cli2")
    check("Kept disk " + disk in out, "delete output: %r" % out)
    check(os.path.exists(disk), "delete removed the disk file")
    e.api_err("GET", "/v1/vms/cli2", want=404)
    check(not os.path.exists(os.path.join(e.state, "vms", cli1["id"])),
          "the deleted VM's directory is still there")
    code, _ = e.curl("DELETE", "/v1/vms/api1")
    check(code == 200 and e.api_ok("GET", "/v1/vms") == [], "delete via the API")


def case_errors(e):
    e.start_keeld()
    g = e.a.guest
    e.create("e1", nets=[{"tap": "kt0", "mac": "02:00:00:00:00:01"}])
    bad = [
        (None, '{"name":"x",', "malformed JSON"),
        (None, '{"name":"x","kernel":"%s"} trailing' % g, "extra data"),
        (None, '[1,2]', "JSON object"),
        ({"name": "x", "kernel": g, "foo": 1}, None, "unknown field 'foo'"),
        ({"name": "x", "kernel": g, "id": "abc"}, None, "read-only"),
        ({"name": "x", "kernel": g, "state": "Running"}, None, "runtime state"),
        ({"name": "x", "kernel": g, "cpus": 0}, None, "'cpus' must be between 1 and 255"),
        ({"name": "x", "kernel": g, "cpus": 256}, None, "'cpus'"),
        ({"name": "x", "kernel": g, "cpus": "2"}, None, "must be an integer"),
        ({"name": "x", "kernel": g, "cpus": 99999999999999999999999}, None, "cpus"),
        ({"name": "x", "kernel": g, "memory": 1000}, None, "memory"),
        ({"name": "x", "kernel": g, "memory": 5 << 20 | 1}, None, "multiple of 1 MiB"),
        ({"name": "x", "kernel": g, "memory": 1 << 50}, None, "memory"),
        ({"name": "x"}, None, "needs a 'kernel'"),
        ({"kernel": g}, None, "needs a 'name'"),
        ({"name": "x", "kernel": "/nonexistent/kernel"}, None, "No such file"),
        ({"name": "x", "kernel": "relative/kernel"}, None, "absolute path"),
        ({"name": "x", "kernel": "/"}, None, "not a regular file"),
        ({"name": "bad name", "kernel": g}, None, "invalid VM name"),
        ({"name": "-x", "kernel": g}, None, "invalid VM name"),
        ({"name": "", "kernel": g}, None, "invalid VM name"),
        ({"name": "x" * 65, "kernel": g}, None, "invalid VM name"),
        ({"name": "x", "kernel": g, "nets": [{"tap": "kt1", "mac": "01:00:00:00:00:01"}]},
         None, "not a unicast MAC"),
        ({"name": "x", "kernel": g, "nets": [{"switch": "Default"}]}, None,
         "there is no switch named 'Default'"),
        ({"name": "x", "kernel": g, "nets": [{"switch": "a/b"}]}, None, "is not a switch name"),
        ({"name": "x", "kernel": g, "nets": [{"mac": "02:00:00:00:00:01"}]}, None,
         "neither a 'tap' nor a 'switch'"),
        ({"name": "x", "kernel": g, "nets": [{"tap": "a b"}]}, None, "not a valid interface"),
        ({"name": "x", "kernel": g, "nets": [{"tap": "k1"}, {"tap": "k1"}]}, None, "tap k1"),
        ({"name": "x", "kernel": g, "disks": [{"path": "/nonexistent.img"}]}, None,
         "No such file"),
        ({"name": "x", "kernel": g, "disks": [{"path": g, "ro": True}]}, None, "unknown field"),
        ({"name": "x", "kernel": g, "disks": [{"path": g, "readonly": True}] * 17}, None,
         "at most 16 disks"),
        ({"name": "x", "kernel": g, "automatic_start_action": "sometimes"}, None, "one of"),
        ({"name": "x", "kernel": g, "automatic_stop_action": "suspend"}, None, "one of"),
        ({"name": "x", "kernel": g, "notes": "a\u0000b"}, None, "NUL"),
        ({"name": "x", "kernel": g, "scsi": {"luns": [{"type": "dvd", "path": g}] * 2}}, None,
         "is on SCSI LUNs 0 and 1"),
        ({"name": "x", "kernel": g, "scsi": {"luns": [{"type": "dvd", "path": "/no.iso"}]}},
         None, "No such file"),
    ]
    for body, raw, msg in bad:
        e.api_err("POST", "/v1/vms", body, raw=raw, want=400, msg=msg)
    e.api_err("POST", "/v1/vms", {"name": "e1", "kernel": g}, want=409, msg="already exists")
    e.api_err("POST", "/v1/vms", {"name": "e2", "kernel": g,
                                  "nets": [{"tap": "kt5", "mac": "02:00:00:00:00:01"}]},
              want=409, msg="already used")
    e.api_err("PATCH", "/v1/vms/e1", {"cpus": 0}, want=400, msg="cpus")
    e.api_err("PATCH", "/v1/vms/e1", {"kernel": None}, want=400, msg="cannot be null")
    e.api_err("PATCH", "/v1/vms/e1", {"revision": 7}, want=400, msg="read-only")
    for m, p in [("GET", "/v1/vms/nope"), ("PATCH", "/v1/vms/nope"),
                 ("DELETE", "/v1/vms/nope"), ("POST", "/v1/vms/nope/start"),
                 ("GET", "/v1/vms/nope/log"), ("POST", "/v1/vms/e1/explode"),
                 ("GET", "/v2/vms"), ("GET", "/v1/vms/e1/log/x")]:
        e.api_err(m, p, {} if m in ("PATCH", "POST") else None, want=404)
    e.api_err("PUT", "/v1/vms", want=405, msg="not allowed")
    e.api_err("POST", "/v1/vms/e1", {}, want=405)
    e.api_err("POST", "/v1/vms", raw="{" + " " * (1 << 20) + "}", want=413)
    e.api_err("POST", "/v1/vms/e1/stop", {"force": "yes"}, want=400, msg="force")
    e.api_err("POST", "/v1/vms/e1/stop", {"timeout": -1}, want=400, msg="timeout")
    e.api_err("POST", "/v1/vms/e1/start", {"now": True}, want=400, msg="unknown field")
    for action in ("stop", "turn-off", "pause", "resume", "restart"):
        e.api_err("POST", "/v1/vms/e1/" + action, {}, want=409, msg="it is Off")

    # The CLI's exit statuses and messages.
    _, err = e.keel("vm", "create", "e1", "--kernel", g, want=5)
    check("already exists" in err, "duplicate create message: %r" % err)
    _, err = e.keel("vm", "show", "nope", want=4)
    check("no VM named 'nope'" in err, "missing VM message: %r" % err)
    e.keel("vm", "create", "x", "--kernel", g, "--cpus", "0", want=2)
    e.keel("vm", "create", "x", "--kernel", g, "--memory", "lots", want=2)
    e.keel("vm", "create", "x", "--kernel", "/nonexistent", want=2)
    e.keel("vm", "frobnicate", "x", want=2)
    e.keel("vm", "pause", "e1", want=5)
    e.keel("vm", "set", "e1", "--cpus", "300", want=2)
    _, err = e.keel("--socket", "/nonexistent/keeld.sock", "vm", "list", want=3)
    check("cannot reach keeld" in err, "unreachable keeld message: %r" % err)
    _, err = e.keel("console", "e1", want=5)
    check("start it first" in err, "console of an Off VM: %r" % err)
    check(e.vm("e1")["revision"] == 1, "failed requests changed e1")
    if not os.path.exists("/dev/kvm"):
        # A host without KVM: a start fails as a start (500 StartFailed, exit 1) saying why,
        # not as "no such VM" (404, exit 4), and the VM stays Off.
        e.api_err("POST", "/v1/vms/e1/start", {}, want=500, msg="this host has no KVM")
        _, err = e.keel("vm", "start", "e1", want=1)
        check("cannot open /dev/kvm" in err and "this host has no KVM" in err,
              "start on a host without /dev/kvm: %r" % err)
        check(e.vm("e1")["state"] == "Off", "e1 is %s after the failed start" % e.vm("e1")["state"])


def case_lifecycle(e):
    e.start_keeld()
    e.create("l1", cmdline="tag=l1")
    vm = e.start("l1")
    check(os.getsid(vm["pid"]) == vm["pid"], "keel-vmm is not in a session of its own")
    e.console_until("l1", r"daemon-guest: ready for input")
    e.keel("vm", "start", "l1", want=5)
    _, err = e.keel("vm", "set", "l1", "--cpus", "2", want=5)
    check("needs VM 'l1' to be off (it is Running)" in err, "set while running: %r" % err)
    e.keel("vm", "set", "l1", "--notes", "running notes")
    check(e.vm("l1")["notes"] == "running notes", "notes not changed while running")
    e.keel("vm", "delete", "l1", want=5)
    e.keel("vm", "pause", "l1")
    check(e.vm("l1")["state"] == "Paused", "not Paused after pause")
    e.keel("vm", "pause", "l1", want=5)
    e.keel("vm", "resume", "l1")
    check(e.vm("l1")["state"] == "Running", "not Running after resume")
    e.keel("vm", "resume", "l1", want=5)
    e.keel("vm", "restart", "l1")
    e.console_until("l1", r"(?s)daemon-guest: up.*daemon-guest: up")
    check(e.vm("l1")["pid"] == vm["pid"], "restart replaced the worker process")
    e.keel("vm", "turn-off", "l1")
    off = e.vm("l1")
    check(off["state"] == "Off" and off["state_reason"] == "turned off", "turn-off: %r" % off)
    check(off["pid"] is None and off["console_socket"] is None, "Off VM shows a worker")
    wait_dead(vm["pid"])
    e.keel("vm", "turn-off", "l1", want=5)
    log, _ = e.keel("vm", "log", "l1")
    check("starting: " in log and "--fd=config=" in log and "--config=" not in log and
          "worker ended: Off" in log,
          "vm log: %r" % log)
    # The worker ran the stored description, handed over whole (docs/vm-config.md).
    doc = json.load(open(glob.glob(os.path.join(e.state, "vms", vm["id"], "config.json"))[0]))
    check(doc["cmdline"] == "tag=l1" and doc["id"] == vm["id"] and doc["name"] == "l1"
          and doc["rng"] == {"pci_slot": 1}, "config.json: %r" % doc)
    # Start again after a turn-off: a fresh worker.
    vm2 = e.start("l1")
    check(vm2["pid"] != vm["pid"], "second start reused a pid")
    code, doc = e.curl("POST", "/v1/vms/l1/turn-off")
    check(code == 202 and doc["state"] == "Stopping", "turn-off via API: %d %r" % (code, doc))
    e.wait_state("l1", "Off")
    e.keel("vm", "delete", "l1")


def case_stop(e):
    e.start_keeld()
    e.create("s1")
    e.create("s2", cmdline="button=ignore")
    e.start("s1")
    e.start("s2")
    e.console_until("s1", "ready for input")
    e.console_until("s2", "ready for input")
    t = time.time()
    e.keel("vm", "stop", "s1", "--timeout", "20")
    vm = e.vm("s1")
    check(vm["state"] == "Off" and "power button" in vm["state_reason"], "stop: %r" % vm)
    check(time.time() - t < 15, "graceful stop took %.1f s" % (time.time() - t))
    _, err = e.keel("vm", "stop", "s2", "--timeout", "1", want=6)
    check("did not shut down within 1 s" in err, "stop timeout message: %r" % err)
    vm = e.vm("s2")
    check(vm["state"] == "Running" and "--force" in vm["state_reason"], "after timeout: %r" % vm)
    e.console_until("s2", r"power button pressed \(ignored\)")
    e.keel("vm", "stop", "s2", "--force", "--timeout", "1")
    vm = e.vm("s2")
    check(vm["state"] == "Off" and "did not shut down within 1 s" in vm["state_reason"],
          "stop --force: %r" % vm)
    e.start("s1")
    e.console_until("s1", "ready for input")
    code, doc = e.curl("POST", "/v1/vms/s1/stop", {"timeout": 20})
    check(code == 202 and doc["state"] == "Stopping", "stop via API: %d %r" % (code, doc))
    e.wait_state("s1", "Off")


def vcpu_cpu_ns(pid):
    """The CPU time of worker pid's vCPU threads (schedstat), in ns."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            if open("/proc/%d/task/%s/comm" % (pid, tid)).read().startswith("vcpu"):
                total += int(open("/proc/%d/task/%s/schedstat" % (pid, tid)).read().split()[0])
        except OSError:
            pass
    return total


def heartbeat(e, name):
    out, _ = e.keel("vm", "show", name)
    m = re.search(r"^Heartbeat: +(.*)$", out, re.M)
    check(m, "keel vm show %s has no Heartbeat line:\n%s" % (name, out))
    return m.group(1)


def heartbeat_show(e, name):
    out, _ = e.keel("vm", "show", name)
    m = re.search(r"^Addresses: +(.*)$", out, re.M)
    return m.group(1) if m else ""


def wait_heartbeat(e, name, want, limit):
    deadline = time.time() + limit
    while True:
        got = heartbeat(e, name)
        if got.startswith(want):
            return got
        check(time.time() < deadline, "heartbeat of %s is %r, not %r, after %d s" %
              (name, got, want, limit))
        time.sleep(0.2)


def keeld_stats_fds(e):
    """How many KVM vCPU statistics fds keeld holds."""
    d, n = "/proc/%d/fd" % e.keeld_proc.pid, 0
    for f in os.listdir(d):
        try:
            n += os.readlink(os.path.join(d, f)).startswith("anon_inode:kvm-vcpu-stats")
        except OSError:
            pass
    return n


CAP_SYS_TIME = 25


def drop_cap_sys_time():
    """In a child before exec: no CAP_SYS_TIME after it (the bounding set), so a program
    run as root cannot set the clock."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, CAP_SYS_TIME, 0, 0, 0) != 0 and os.geteuid() == 0:  # PR_CAPBSET_DROP
        raise OSError(ctypes.get_errno(), "cannot drop CAP_SYS_TIME")


def exec_tty_resize(e):
    """keel vm exec --tty on a terminal passes its size at the start and on each SIGWINCH:
    the guest's program sees the new size and gets SIGWINCH itself."""
    import fcntl
    import pty
    import select
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def controlling_tty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    script = "trap 'stty size; exit 6' WINCH; stty size; echo ready; while :; do sleep 0.05; done"
    p = subprocess.Popen([e.a.keel, "vm", "exec", "a1", "--tty", "--", "sh", "-c", script],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=controlling_tty, env=dict(os.environ, KEEL_SOCKET=e.sock))
    os.close(slave)
    out = b""

    def read_until(word, limit=30):
        nonlocal out
        deadline = time.time() + limit
        while word not in out:
            check(time.time() < deadline, "exec --tty: no %r in %r" % (word, out))
            if not select.select([master], [], [], 1)[0]:
                continue
            try:
                out += os.read(master, 4096)
            except OSError:  # EIO: keel is gone
                check(False, "exec --tty: keel ended before %r: %r" % (word, out))
    try:
        read_until(b"ready\r\n")
        check(b"24 80\r\n" in out, "exec --tty: the size at the start: %r" % out)
        # The kernel sends SIGWINCH to keel, the terminal's foreground process group.
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        read_until(b"50 132\r\n")
        check(p.wait(timeout=30) == 6, "exec --tty after a resize: exit %r, %r" %
              (p.returncode, out))
        print("exec --tty: the guest's stty size %r, then after the resize and its SIGWINCH "
              "trap %r, exit 6" % (out.split(b"\r\n")[0], out.split(b"\r\n")[-2]))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def copy_file_progress(e, guest):
    """keel vm copy-file shows its progress on a terminal for a file over 16 MiB: on a pty,
    a line redrawn from a low percentage to 100 %; with stderr not a terminal, or a small
    file, nothing."""
    import pty
    import select
    src = os.path.join(e.dir, "big.bin")
    with open(src, "wb") as f:
        f.write(os.urandom((16 << 20) + 4 * 1024 * 1024))
    dest = os.path.join(guest, "files", "big.bin")

    def on_a_pty(path, what):
        master, slave = pty.openpty()
        p = subprocess.Popen([e.a.keel, "vm", "copy-file", "a1", path, what, "--overwrite"],
                             stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                             env=dict(os.environ, KEEL_SOCKET=e.sock))
        os.close(slave)
        out = b""
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                if not select.select([master], [], [], 1)[0]:
                    continue
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: keel closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            check(p.wait(timeout=60) == 0, "copy-file on a pty: exit %r, %r" %
                  (p.returncode, out))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)
        return out.decode()
    out = on_a_pty(src, dest)
    check(digest(e, src) == digest(e, dest), "the large copy differs")
    pcts = [int(x) for x in re.findall(r"\rcopying %s: ([0-9]+)%%" % re.escape(src), out)]
    check(len(pcts) >= 10 and pcts == sorted(pcts) and pcts[0] < 50 and pcts[-1] == 100 and
          out.endswith("100%\r\n"), "copy-file progress on a terminal: %r" % out[-300:])
    print("copy-file of %d bytes on a terminal: %d progress updates, %d%% to 100%%" %
          (os.path.getsize(src), len(pcts), pcts[0]))
    _, err = e.keel("vm", "copy-file", "a1", src, dest, "--overwrite")
    check(err == "", "copy-file with stderr not a terminal printed %r" % err[-200:])
    small = os.path.join(e.dir, "small.bin")
    with open(small, "wb") as f:
        f.write(os.urandom(1 << 20))
    out = on_a_pty(small, dest)
    check(out == "", "copy-file of 1 MiB on a terminal printed %r" % out[-200:])
    os.unlink(dest)


def case_agent(e):
    """Issue 13's host side: keeld's heartbeat, KVP, exec, copy-file, integration services and a
    stop through keel-agent, reached through the VM's vsock.sock (a test mux until the
    virtio-vsock device is merged; the agent runs on the host as the guest)."""
    check(e.a.agent and os.access(e.a.agent, os.X_OK), "keel-agent is not built: %s" % e.a.agent)
    e.start_keeld()
    e.create("a1")
    vm = e.start("a1")
    e.console_until("a1", "ready for input")
    vmdir = os.path.join(e.state, "vms", vm["id"])
    # No agent: "No contact", and a clear message, not a hang.
    check(heartbeat(e, "a1") == "No contact", "heartbeat without an agent: %r" % heartbeat(e, "a1"))
    t = time.time()
    _, err = e.keel("vm", "exec", "a1", "--", "true", want=255)
    check("no integration services in VM 'a1'" in err, "exec without an agent: %r" % err)
    e.api_err("GET", "/v1/vms/a1/kvp", want=503, msg="no integration services in VM 'a1'")
    check(time.time() - t < 15, "the refusals without an agent took %.1f s" % (time.time() - t))
    # The agent, as the guest, with the mux at the VM's vsock.sock.
    guest = os.path.join(e.dir, "guest")
    os.makedirs(guest)
    marker = os.path.join(guest, "shutdown-asked")
    hook = os.path.join(guest, "shutdown-hook")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\necho \"$1\" > %s\n" % marker)
    os.chmod(hook, 0o755)
    agent_sock = os.path.join(guest, "agent.sock")
    log = open(os.path.join(e.dir, "agent.log"), "w")
    # This "guest" is the host: keeld must not set its clock. The agent runs without
    # CAP_SYS_TIME, so it refuses keeld's time-set (EPERM) and still answers the samples.
    agent = subprocess.Popen([e.a.agent, "--listen-unix", agent_sock, "--state-dir",
                              os.path.join(guest, "state"), "--test-shutdown-command", hook],
                             stdout=log, stderr=log, start_new_session=True,
                             preexec_fn=drop_cap_sys_time)
    try:
        for _ in range(100):
            if os.path.exists(agent_sock):
                break
            time.sleep(0.05)
        caps = [l for l in open("/proc/%d/status" % agent.pid) if l.startswith("CapEff:")]
        check(caps and not int(caps[0].split()[1], 16) & (1 << CAP_SYS_TIME),
              "the host's agent could set the host's clock: %r" % caps)
        mux = VsockMux(os.path.join(vmdir, "vsock.sock"), agent_sock)
        got = wait_heartbeat(e, "a1", "OK", 5)
        check("keel-agent" in got, "heartbeat line without the agent's version: %r" % got)
        vm = e.vm("a1")
        check(vm["agent_socket"] == os.path.join(vmdir, "vsock.sock"), "agent_socket: %r" % vm)
        running = {s["name"]: s["running"] for s in vm["integration"]["services"]}
        check(all(running.values()), "services running: %r" % vm["integration"])
        # The guest's addresses (its KVP facts) in keel vm show, as Hyper-V's IPAddresses.
        r = subprocess.run([e.a.agent, "--state-dir", os.path.join(guest, "state"), "kvp",
                            "list", "auto"], capture_output=True, text=True)
        v4 = re.search(r"^NetworkAddressIPv4=([^,\n]+)", r.stdout, re.M)
        if v4:
            deadline = time.time() + 15
            while v4.group(1) not in (heartbeat_show(e, "a1")):
                check(time.time() < deadline, "keel vm show lacks the address %s:\n%s" %
                      (v4.group(1), heartbeat_show(e, "a1")))
                time.sleep(0.5)
        # KVP both ways, and the guest's facts.
        e.keel("vm", "kvp", "set", "a1", "color", "blue")
        r = subprocess.run([e.a.agent, "--state-dir", os.path.join(guest, "state"), "kvp", "get",
                            "color"], capture_output=True, text=True)
        check(r.stdout == "blue\n", "the guest reads the host's pair: %r" % (r,))
        subprocess.run([e.a.agent, "--state-dir", os.path.join(guest, "state"), "kvp", "set",
                        "role", "web"], check=True)
        out, _ = e.keel("vm", "kvp", "get", "a1", "role")
        check(out == "web\n", "the host reads the guest's pair: %r" % out)
        out, _ = e.keel("vm", "kvp", "list", "a1", "--pool", "auto")
        check("auto   OSKernelVersion=%s\n" % os.uname().release in out, "facts: %r" % out)
        doc = e.api_ok("GET", "/v1/vms/a1/kvp")
        check(doc["host"] == {"color": "blue"} and doc["guest"] == {"role": "web"},
              "kvp pools: %r" % doc)
        _, err = e.keel("vm", "kvp", "get", "a1", "nothing", want=4)
        check("no key 'nothing'" in err, "missing key: %r" % err)
        e.api_err("POST", "/v1/vms/a1/kvp", {"key": "k" * 512, "value": "v"}, want=400,
                  msg="1 to 511 bytes")
        e.keel("vm", "kvp", "delete", "a1", "color")
        e.keel("vm", "kvp", "get", "a1", "color", "--pool", "host", want=4)
        # exec: output, status, stdin, a missing program.
        out, err = e.keel("vm", "exec", "a1", "--", "sh", "-c", "echo out; echo err >&2; exit 7",
                          want=7)
        check(out == "out\n" and err == "err\n", "exec output: %r %r" % (out, err))
        data = os.urandom(200000)
        r = subprocess.run([e.a.keel, "vm", "exec", "a1", "--", "sha256sum"], input=data,
                           capture_output=True, env=dict(os.environ, KEEL_SOCKET=e.sock),
                           timeout=60)
        import hashlib
        check(r.returncode == 0 and r.stdout.decode().split()[0] ==
              hashlib.sha256(data).hexdigest(), "exec stdin: %r" % (r,))
        # Input and output at once, twice as much out as in: keel reads the output while its
        # input waits for room (it blocked in its send while the agent blocked in its own).
        data = os.urandom(8 << 20)
        r = subprocess.run([e.a.keel, "vm", "exec", "a1", "--", "sh", "-c",
                            "tee /dev/stderr"], input=data, capture_output=True,
                           env=dict(os.environ, KEEL_SOCKET=e.sock), timeout=60)
        check(r.returncode == 0 and r.stdout == data and r.stderr == data,
              "exec tee of 8 MiB: status %d, %d and %d bytes out" % (r.returncode,
                                                                    len(r.stdout),
                                                                    len(r.stderr)))
        _, err = e.keel("vm", "exec", "a1", "--", "no-such-program-keel", want=127)
        check("cannot run 'no-such-program-keel'" in err, "exec 127: %r" % err)
        nobody = [l for l in open("/etc/passwd") if l.startswith("nobody:")][0].split(":")
        out, _ = e.keel("vm", "exec", "a1", "--user", "nobody", "--", "id", "-u")
        check(out == nobody[2] + "\n", "exec --user nobody: %r" % out)
        out, _ = e.keel("vm", "exec", "a1", "--tty", "--", "sh", "-c", "test -t 1 && tty")
        check(out.startswith("/dev/pts/"), "exec --tty: %r" % out)
        exec_tty_resize(e)
        _, err = e.keel("vm", "exec", "a1", "--timeout", "1", "--", "sleep", "100", want=137)
        check("killed after 1 s" in err, "exec timeout: %r" % err)
        # copy-file: the same bytes, mode kept, atomic, the flags.
        src = os.path.join(e.dir, "src.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(3 * 1024 * 1024 + 7))
        os.chmod(src, 0o640)
        dest = os.path.join(guest, "files", "sub", "copy.bin")
        _, err = e.keel("vm", "copy-file", "a1", src, dest, want=2)
        check("--create-path" in err, "copy without --create-path: %r" % err)
        e.keel("vm", "copy-file", "a1", src, dest, "--create-path")
        check(digest(e, src) == digest(e, dest), "the copy differs")
        check(os.stat(dest).st_mode & 0o777 == 0o640, "mode not kept: %o" % os.stat(dest).st_mode)
        _, err = e.keel("vm", "copy-file", "a1", src, dest, want=2)
        check("--overwrite" in err, "copy over a file: %r" % err)
        e.keel("vm", "copy-file", "a1", src, dest, "--overwrite")
        copy_file_progress(e, guest)
        # Integration services: disabled for the VM, exec is refused; enabled again, it works.
        out, _ = e.keel("vm", "integration", "a1", "disable", "exec")
        check(re.search(r"^exec +no +no$", out, re.M), "integration after disable: %r" % out)
        _, err = e.keel("vm", "exec", "a1", "--", "true", want=255)
        check("the exec service is disabled for VM 'a1'" in err, "disabled exec: %r" % err)
        e.keel("vm", "integration", "a1", "disable", "nonsense", want=2)
        e.keel("vm", "integration", "a1", "enable", "exec")
        e.keel("vm", "exec", "a1", "--", "true")
        # The guest's clock against the host's: keeld samples it every 10 s (its time-set
        # at the connection was refused); the guest is the host, so the offset is about 0.
        t = time.time()
        while True:
            out, _ = e.keel("vm", "show", "a1")
            m = re.search(r"^Clock offset: +([-+][0-9.]+) ms \(the guest's clock minus the "
                          r"host's, sampled every 10 s\)$", out, re.M)
            if m:
                break
            check(time.time() - t < 15, "no clock offset in keel vm show after 15 s:\n" + out)
            time.sleep(0.5)
        print("keel vm show: %s" % m.group(0))
        check(abs(float(m.group(1))) < 1000, "the host's own clock is off: %s" % m.group(0))
        doc = e.api_ok("GET", "/v1/vms/a1/integration")
        check(isinstance(doc["clock_offset_ms"], float), "API clock_offset_ms: %r" % doc)
        check("clock_offset_ms" not in e.vm("a1")["integration"], "the VM's JSON changes "
              "each sample: %r" % e.vm("a1")["integration"])
        out, _ = e.keel("vm", "integration", "a1")
        check(re.search(r"^Clock offset: [-+][0-9.]+ ms", out, re.M),
              "keel vm integration: %r" % out)
        # Heartbeat: the agent stopped is "Lost communication" within 5 s, and OK once it
        # goes on.
        os.killpg(agent.pid, signal.SIGSTOP)
        t = time.time()
        wait_heartbeat(e, "a1", "Lost communication", 5)
        check(time.time() - t <= 5.5, "Lost communication took %.1f s" % (time.time() - t))
        # An exec meanwhile fails within its deadline (the client never blocks in a read: it
        # hung here, and in the lab, before).
        t = time.time()
        _, err = e.keel("vm", "exec", "a1", "--", "true", want=255, timeout=30)
        check("did not answer" in err and time.time() - t < 15,
              "exec with the agent stopped: %r after %.1f s" % (err, time.time() - t))
        # "Agent gone" and "guest hung" told apart by whether the vCPUs run: the guest's
        # vCPU wakes every 10 ms; with its worker stopped, none runs.
        check("agent gone: the guest's vCPUs still run" in heartbeat(e, "a1"),
              "agent stopped, guest running: %r" % heartbeat(e, "a1"))
        check(e.vm("a1")["integration"]["vcpus"] == "running", "vcpus: %r" % e.vm("a1"))
        wpid = e.vm("a1")["pid"]
        os.kill(wpid, signal.SIGSTOP)
        try:
            t = time.time()
            while "guest hung" not in heartbeat(e, "a1"):
                check(time.time() - t < 6, "worker stopped: %r" % heartbeat(e, "a1"))
                time.sleep(0.2)
            check(e.vm("a1")["integration"]["vcpus"] == "stalled", "vcpus: %r" % e.vm("a1"))
        finally:
            os.kill(wpid, signal.SIGCONT)
        t = time.time()
        while "agent gone" not in heartbeat(e, "a1"):
            check(time.time() - t < 5, "worker continued: %r" % heartbeat(e, "a1"))
            time.sleep(0.2)
        # A guest spinning in its kernel with interrupts off is hung although its vCPU thread
        # burns CPU: keeld counts the interrupts the vCPU accepts (KVM's statistics, from
        # fds the worker handed over), not the thread's CPU time.
        check("told by its vCPUs' interrupts (KVM statistics" in open(e.keeld_log).read(),
              "keeld did not say it reads KVM's vCPU statistics")
        e.type_console("a1", "spin\n")
        e.console_until("a1", "spinning with interrupts off")
        ns0, t = vcpu_cpu_ns(wpid), time.time()
        while "guest hung" not in heartbeat(e, "a1"):
            check(time.time() - t < 6, "guest spinning with interrupts off: %r"
                  % heartbeat(e, "a1"))
            time.sleep(0.2)
        used, wall = (vcpu_cpu_ns(wpid) - ns0) / 1e9, time.time() - t
        print("spinning guest: 'guest hung' after %.1f s; its vCPU thread used %.2f s of CPU"
              % (wall, used))
        # (a floor a spinning vCPU passes even on a loaded host: it ran 1.4 to 2.9 s here)
        check(used >= 0.5, "the spinning vCPU used only %.2f s of CPU in %.1f s" % (used, wall))
        check(e.vm("a1")["integration"]["vcpus"] == "stalled", "vcpus: %r" % e.vm("a1"))
        e.type_console("a1", "\n")
        e.console_until("a1", "spin ended")
        t = time.time()
        while "agent gone" not in heartbeat(e, "a1"):
            check(time.time() - t < 5, "spin ended: %r" % heartbeat(e, "a1"))
            time.sleep(0.2)
        os.killpg(agent.pid, signal.SIGCONT)
        wait_heartbeat(e, "a1", "OK", 5)
        # keeld gave up on CONNECTs while the agent was stopped: the mux closed them, no error.
        check(not mux.errors, "the vsock mux's connections failed: %r" % mux.errors)
        # The worker hangs up keeld's connection (its TRANSPORT_RESET at a resume or a
        # restore): keeld sees the hang-up and connects again at once. Before, its next ping
        # found the connection gone and it connected a whole period (1 s) after that ping.
        # One live connection first: the ones keeld gave up on while the agent was stopped
        # may still be winding down in the mux's threads on a busy host (CI saw "not one").
        t = time.monotonic()
        while mux.live_count() != 1 and time.monotonic() - t < 10:
            time.sleep(0.05)
        n0 = len(mux.connects)
        t = time.monotonic()
        check(mux.reset() == 1, "keeld's connections through the mux: %d, not one"
              % mux.live_count())
        while len(mux.connects) == n0:
            check(time.monotonic() - t < 10, "keeld did not connect again after the reset")
            time.sleep(0.01)
        again = mux.connects[n0] - t
        print("keeld connected again %.0f ms after the mux hung up its connection" %
              (again * 1000))
        check(again < 1, "keeld connected again %.2f s after the hang-up: at its next ping, "
              "not at once" % again)
        wait_heartbeat(e, "a1", "OK", 5)
        check(e.vm("a1")["integration"]["vcpus"] is None, "vcpus with OK: %r" % e.vm("a1"))
        # keel vm stop uses the agent and says so; the guest (here: the console) powers off.
        out, _ = e.keel("vm", "stop", "a1", "--no-wait")
        check("through keel-agent (%s)" % hook in out, "stop through the agent: %r" % out)
        for _ in range(50):
            if os.path.exists(marker):
                break
            time.sleep(0.1)
        check(open(marker).read() == "poweroff\n", "the agent did not run the shutdown")
        check(e.vm("a1")["state"] == "Stopping", "state after a stop through the agent")
        check(keeld_stats_fds(e) > 0, "keeld holds none of the worker's vCPU statistics fds")
        e.type_console("a1", "poweroff\n")
        e.wait_state("a1", "Off")
        # Each fd holds the worker's VM in the kernel, and the VM's kernel threads sit in
        # its cgroup (which then could not be removed): closed by the time it is Off.
        check(keeld_stats_fds(e) == 0,
              "keeld still holds %d vCPU statistics fds of an Off VM" % keeld_stats_fds(e))
        check(heartbeat(e, "a1") == "No contact", "heartbeat of an Off VM")
        check(agent.poll() is None, "keel-agent died")
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
        log.close()
    alog = open(os.path.join(e.dir, "agent.log")).read()
    check("runtime error" not in alog and "Sanitizer" not in alog, "keel-agent reported:\n" + alog)


def ran_on(e, name, what):
    """The VM is Running after what, and did not reboot: the line whose start ("abc") was
    typed before completes ("-def")."""
    vm = e.wait_state(name, "Running")
    e.pids.add(vm["pid"])
    e.type_console(name, "-def\n")
    log = e.console_until(name, r"echo \[abc-def\]")
    check("daemon-guest: up" not in log.split("ready for input")[-1],
          "%s rebooted under %s: %r" % (name, what, log))


FAKE_MOUNT = "30 1 7:99 / %s rw,relatime shared:1 - ext4 /dev/root rw\n"


def host_agent(e, vmdir, *extra):
    """keel-agent on the host as a VM's guest, behind the test mux at the VM's vsock.sock
    (freeze reads a mount table of one made-up block device, 7:99, at guest/fs, which a test
    build "freezes" with a marker file: the host is never frozen). Returns (process, path of
    its socket)."""
    guest = os.path.join(e.dir, "guest")
    os.makedirs(os.path.join(guest, "fs"), exist_ok=True)
    os.makedirs(os.path.join(guest, "sys-dev-block"), exist_ok=True)
    open(os.path.join(guest, "sys-dev-block", "7:99"), "w").close()
    mounts = os.path.join(guest, "mountinfo")
    with open(mounts, "w") as f:
        f.write(FAKE_MOUNT % os.path.join(guest, "fs"))
    agent_sock = os.path.join(guest, "agent.sock")
    log = open(os.path.join(e.dir, "agent.log"), "a")
    agent = subprocess.Popen([e.a.agent, "--listen-unix", agent_sock, "--state-dir",
                              os.path.join(guest, "state"), "--test-mountinfo", mounts,
                              "--disable", "time"] + list(extra),
                             stdout=log, stderr=log, start_new_session=True)
    log.close()
    for _ in range(100):
        if os.path.exists(agent_sock):
            break
        time.sleep(0.05)
    VsockMux(os.path.join(vmdir, "vsock.sock"), agent_sock)
    return agent, agent_sock


def case_checkpoint_production(e):
    """Production checkpoints (issue 13): the default type; without an agent a running VM
    gets a standard checkpoint and is told so, and production-only is refused with nothing
    changed; with the agent the guest is frozen, only the disks are kept (no saved state),
    the VM runs on without a reboot, and applying it leaves the VM Off to boot afresh; an Off
    VM's checkpoint is a production one; the type shows in keel checkpoint list."""
    check(e.a.agent and os.access(e.a.agent, os.X_OK), "keel-agent is not built: %s" % e.a.agent)
    e.start_keeld()
    base = os.path.join(e.dir, "base.vhdx")
    e.keel("disk", "create", base, "--size", "8M")
    e.create("p1", disks=[{"path": base}])
    # Off: production, nothing to freeze.
    out, _ = e.keel("checkpoint", "create", "p1", "--name", "off")
    check(out == "production checkpoint 'off' of VM 'p1' created\n", "off: %r" % out)
    write_disk(e, disk_of(e, "p1"), 3)
    before = digest(e, disk_of(e, "p1"))  # the guest does not write its disk
    vm = e.start("p1")
    e.console_until("p1", "ready for input")
    vmdir = os.path.join(e.state, "vms", vm["id"])
    # No agent: production-only is refused and changes nothing; production falls back.
    _, err = e.keel("checkpoint", "create", "p1", "--name", "x", "--type", "production-only",
                    want=None)
    check("cannot take a production checkpoint of VM 'p1': no integration services" in err,
          "production-only without an agent: %r" % err)
    e.api_err("POST", "/v1/vms/p1/checkpoints", {"type": "production-only"}, want=409,
              msg="no integration services")
    e.api_err("POST", "/v1/vms/p1/checkpoints", {"type": "consistent"}, want=400,
              msg="unknown checkpoint type")
    _, err = e.keel("checkpoint", "create", "p1", "--type", "consistent", want=2)
    check("unknown checkpoint type 'consistent'" in err, "bad --type: %r" % err)
    check(sorted(ckpts(e, "p1")) == ["off"] and e.vm("p1")["pid"] == vm["pid"],
          "a refused checkpoint changed something: %r" % ckpts(e, "p1"))
    e.type_console("p1", "abc")
    out, _ = e.keel("checkpoint", "create", "p1", "--name", "fallback")
    check("a standard checkpoint instead of a production one: no integration services in "
          "VM 'p1'" in out, "fallback: %r" % out)
    vm = e.wait_state("p1", "Running")
    e.pids.add(vm["pid"])
    cs = ckpts(e, "p1")
    check(cs["fallback"]["type"] == "standard" and cs["fallback"]["saved_state"],
          "the fallback checkpoint: %r" % cs["fallback"])
    # With the agent: frozen, disks only, the VM carries on where it was.
    agent, _ = host_agent(e, vmdir)
    try:
        wait_heartbeat(e, "p1", "OK", 5)
        out, _ = e.keel("checkpoint", "create", "p1", "--name", "prod", "--json")
        doc = json.loads(out)
        check(doc["type"] == "production" and not doc["saved_state"] and
              doc.get("frozen_filesystems") == 1 and "fallback" not in doc,
              "production checkpoint: %r" % doc)
        fs = os.path.join(e.dir, "guest", "fs")
        check(not os.path.exists(os.path.join(fs, ".keel-test-frozen")), "not thawed")
        ran_on(e, "p1", "a production checkpoint")
        check(digest(e, ckpts(e, "p1")["prod"]["disks"][0]) == before,
              "the production checkpoint's disk differs from the disk at that moment")
        state_dir = os.path.join(vmdir, "checkpoints", doc["id"])
        check(not os.path.exists(state_dir), "a production checkpoint kept a saved state")
        out, _ = e.keel("checkpoint", "list", "p1")
        check(re.search(r"^off  \(.*, production\)\n  fallback  \(.*, standard, saved state\)"
                        r"\n    prod  \(.*, production\)\n      > Now$", out, re.M),
              "list with types: %r" % out)
        # The freeze service disabled: production-only refused, naming how to enable it.
        VsockMux(os.path.join(vmdir, "vsock.sock"), os.path.join(e.dir, "guest", "agent.sock"))
        wait_heartbeat(e, "p1", "OK", 5)
        # A file system the guest's administrator froze: the freeze fails (EBUSY) and
        # nothing thaws the administrator's freeze.
        marker = os.path.join(fs, ".keel-test-frozen")
        open(marker, "w").close()
        _, err = e.keel("checkpoint", "create", "p1", "--type", "production-only", want=None)
        check("cannot freeze" in err and os.path.exists(marker),
              "a freeze that failed on the administrator's: %r" % err)
        os.unlink(marker)
        # No file system frozen (a guest whose block devices the agent does not see):
        # not application-consistent.
        mounts = os.path.join(e.dir, "guest", "mountinfo")
        open(mounts, "w").close()
        _, err = e.keel("checkpoint", "create", "p1", "--type", "production-only", want=None)
        check("froze no file system" in err, "a freeze of nothing: %r" % err)
        with open(mounts, "w") as f:
            f.write(FAKE_MOUNT % fs)
        check(sorted(ckpts(e, "p1")) == ["fallback", "off", "prod"],
              "a refused checkpoint changed something: %r" % ckpts(e, "p1"))
        e.keel("vm", "integration", "p1", "disable", "freeze")
        _, err = e.keel("checkpoint", "create", "p1", "--type", "production-only", want=None)
        check("freeze service of VM 'p1' is disabled" in err, "freeze disabled: %r" % err)
        e.keel("vm", "integration", "p1", "enable", "freeze")
        out, _ = e.keel("checkpoint", "create", "p1", "--name", "only", "--type",
                        "production-only")
        check(out == "production checkpoint 'only' of VM 'p1' created\n", "only: %r" % out)
        vm = e.wait_state("p1", "Running")
        e.pids.add(vm["pid"])
        # Apply: the VM is Off (no memory) and boots from the checkpoint's disks.
        out, _ = e.keel("checkpoint", "apply", "p1", "prod")
        check(e.vm("p1")["state"] == "Off", "after applying a production checkpoint: %r" %
              e.vm("p1"))
        check(digest(e, disk_of(e, "p1")) == before, "apply did not give the frozen disk")
        e.start("p1")
        e.console_until("p1", "daemon-guest: up")
        e.keel("vm", "turn-off", "p1")
        check(agent.poll() is None, "keel-agent died")
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
    alog = open(os.path.join(e.dir, "agent.log")).read()
    check("runtime error" not in alog and "Sanitizer" not in alog, "keel-agent reported:\n" + alog)
    # Saved state that no checkpoint keeps (keeld ended between a production checkpoint's
    # commit and its restore; a checkpoint that never committed) goes at keeld's start; a
    # standard checkpoint's stays.
    cs = ckpts(e, "p1")
    cdir = os.path.join(vmdir, "checkpoints")
    kept = os.path.join(cdir, cs["fallback"]["id"])
    check(os.path.exists(os.path.join(kept, "memory")), "the standard checkpoint's state")
    left = [os.path.join(cdir, cs["prod"]["id"]),
            os.path.join(cdir, "00000000-0000-4000-8000-000000000000")]
    e.kill_keeld()
    for d in left:
        os.makedirs(d, exist_ok=True)
        for f in ("state", "memory"):
            open(os.path.join(d, f), "w").close()
    e.start_keeld()
    check(not any(os.path.exists(d) for d in left) and
          os.path.exists(os.path.join(kept, "memory")),
          "after keeld's start: %r" % os.listdir(cdir))


def case_backup(e):
    """keel vm backup (issue 13): refusals change nothing; a running VM with keel-agent is
    backed up application-consistent (its guest frozen while the disk moves onto a child)
    while it runs on, the copy is a standalone VHDX with the disk's contents and config.json
    its description; the VM ends on its original disk file with its data, no checkpoint
    left; an Off VM's backup is its disk as it is."""
    check(e.a.agent and os.access(e.a.agent, os.X_OK), "keel-agent is not built: %s" % e.a.agent)
    e.start_keeld()
    base, want = patterned_disk(e)
    e.create("b1", disks=[{"path": base}])
    dest = os.path.join(e.dir, "backups")
    os.makedirs(dest)
    _, err = e.keel("vm", "backup", "b1", "--to", os.path.join(e.dir, "nowhere"), want=2)
    check("cannot use" in err, "backup to a missing directory: %r" % err)
    e.api_err("POST", "/v1/vms/b1/backup", {"to": "relative"}, want=400, msg="absolute path")
    e.api_err("POST", "/v1/vms/b1/backup", {"dest": dest}, want=400, msg="unknown field")
    # Off: the disk as it is.
    out, _ = e.keel("vm", "backup", "b1", "--to", dest)
    check("backed up to %s/b1 (consistency: off)" % dest in out, "off backup: %r" % out)
    check(digest(e, os.path.join(dest, "b1", "disks", "disk0.vhdx")) == want, "off copy differs")
    e.api_err("POST", "/v1/vms/b1/backup", {"to": dest}, want=409, msg="exists already")
    shutil.rmtree(os.path.join(dest, "b1"))
    vm = e.start("b1")
    e.console_until("b1", "ready for input")
    vmdir = os.path.join(e.state, "vms", vm["id"])
    agent, _ = host_agent(e, vmdir)
    try:
        wait_heartbeat(e, "b1", "OK", 5)
        e.type_console("b1", "abc")
        out, _ = e.keel("vm", "backup", "b1", "--to", dest, "--json")
        doc = json.loads(out)
        check(doc["consistency"] == "application" and "fallback" not in doc,
              "running backup: %r" % doc)
        copy = os.path.join(dest, "b1", "disks", "disk0.vhdx")
        check(doc["disks"] == [copy], "disks: %r" % doc)
        info, _ = e.keel("disk", "info", copy)
        check(re.search(r"dynamic", info) and "parent" not in info.lower(),
              "the copy is not a standalone VHDX: %r" % info)
        check(digest(e, copy) == want, "the backup's disk differs from the VM's")
        cfg = json.load(open(os.path.join(dest, "b1", "config.json")))
        check(cfg["name"] == "b1" and cfg["disks"][0]["path"] == copy,
              "config.json: %r" % cfg)
        ran_on(e, "b1", "the backup")  # on its original file:
        check(disk_of(e, "b1") == base, "the VM is on %s, not its own disk" % disk_of(e, "b1"))
        check(ckpts(e, "b1") == {}, "the backup left a checkpoint: %r" % ckpts(e, "b1"))
        jobs = [j for j in e.api_ok("GET", "/v1/jobs") if j.get("operation") == "backup"]
        check(jobs and jobs[-1]["progress"]["bytes_total"] == 8 << 20 and
              jobs[-1]["progress"]["percent"] == 100, "the backup job: %r" % jobs)
        check(not os.path.exists(os.path.join(vmdir, "backup.progress")), "progress file left")
        # The merge-back failing (a test hook makes it fail after the delete: the file in
        # the VM's directory; the checkpoint is made again for the VM to be on one) keeps
        # the complete backup and says how to merge.
        dest2 = os.path.join(e.dir, "backups2")
        os.makedirs(dest2)
        hook = os.path.join(vmdir, "test-fail-backup-merge")
        open(hook, "w").close()
        _, err = e.keel("vm", "backup", "b1", "--to", dest2, want=1)
        os.unlink(hook)
        check("complete and kept" in err and "keel checkpoint delete b1" in err,
              "a backup whose merge failed: %r" % err)
        copy2 = os.path.join(dest2, "b1", "disks", "disk0.vhdx")
        check(os.path.exists(os.path.join(dest2, "b1", "config.json")) and
              digest(e, copy2) == want, "the complete backup was not kept")
        e.wait_state("b1", "Running")
        check(disk_of(e, "b1") == base and ckpts(e, "b1") == {},
              "after the failed merge: %r on %s" % (ckpts(e, "b1"), disk_of(e, "b1")))
        # The VM turned off during the copy (a test hook holds the copy while the file is
        # there): the job lets the VM go meanwhile, so the turn-off works and the worker's
        # end is seen, while its checkpoint is pinned; the backup completes and the VM ends
        # Off on its own disk with its data.
        dest3 = os.path.join(e.dir, "backups3")
        job, hold = backup_held(e, "b1", vmdir, dest3)
        cs = list(ckpts(e, "b1").values())
        check(len(cs) == 1, "the backup's checkpoint: %r" % cs)
        code, doc = e.curl("DELETE", "/v1/vms/b1/checkpoints/" + cs[0]["id"])
        check(code == 409 and "backup under way" in doc["error"]["message"],
              "a pinned checkpoint's delete: %d %r" % (code, doc))
        e.keel("vm", "turn-off", "b1")
        check(e.vm("b1")["state"] == "Off", "turned off during the copy: %r" % e.vm("b1"))
        os.unlink(hold)
        out, err = job.communicate(timeout=120)
        check(job.returncode == 0 and b"backed up to" in out,
              "the backup around a turn-off: %r %r" % (out, err))
        check(digest(e, os.path.join(dest3, "b1", "disks", "disk0.vhdx")) == want,
              "the copy made around a turn-off differs")
        check(disk_of(e, "b1") == base and ckpts(e, "b1") == {} and
              e.vm("b1")["state"] == "Off",
              "after the backup around a turn-off: %r on %s" % (ckpts(e, "b1"), disk_of(e, "b1")))
        check(digest(e, base) == want, "the VM's disk after the backup differs")
        disk_check(e, base)
        check(agent.poll() is None, "keel-agent died")
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()


def import_leftovers(e):
    """What imports left in the default pool: its directories (copies and staging)."""
    return sorted(os.listdir(os.path.join(e.state, "pools", "default")))


def import_held_stage(e, name):
    """The staging directory of the import of NAME, once its copy of disk 0 exists (held
    there by the test hook test-import-hold)."""
    stage = os.path.join(e.state, "pools", "default", "." + name + ".import")
    for _ in range(300):
        if os.path.exists(os.path.join(stage, "disk0.vhdx")):
            break
        time.sleep(0.1)
    check(os.path.exists(os.path.join(stage, "disk0.vhdx")), "the held copy did not start")
    return stage


def case_import(e):
    """keel vm import (issue 13): a backup imported as a new VM (--new-id: new id and MAC)
    that starts on a copy with the disk's contents; clashes of name, id and MAC refused; the
    backup imported again and then registered in place with its own id; corrupted and
    malicious backup directories refused with their reason and nothing registered or left;
    a copy that fails part-way removes what it made, and one interrupted by keeld's death
    leaves no VM."""
    K = os.path.realpath(e.a.guest)  # a backup holds no kernel: given again
    e.start_keeld()
    base, want = patterned_disk(e)
    orig = e.create("i1", disks=[{"path": base}], nets=[{"tap": "ki0"}])
    dest = os.path.join(e.dir, "backups")
    os.makedirs(dest)
    e.keel("vm", "backup", "i1", "--to", dest)
    bdir = os.path.join(dest, "i1")
    before = import_leftovers(e)
    # Clashes: the name, then (another name) the id, then (a new name and id... no: the MAC
    # goes with the id) all refused before anything is made.
    e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": bdir}, want=409,
              msg="a VM named 'i1' exists already")
    e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": bdir, "name": "i2"}, want=409,
              msg="has the backup's id " + orig["id"])
    _, err = e.keel("vm", "import", "--kernel", K, bdir, "--name", "i2", want=5)
    check("--new-id" in err, "the id clash does not say what to do: %r" % err)
    e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": bdir, "in_place": True,
              "new_id": True}, want=400, msg="a new id needs a copy")
    e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": bdir, "bogus": 1}, want=400,
              msg="unknown field")
    e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": bdir, "name": "i2", "new_id": True,
              "copy_to": "nopool"}, want=404)
    check(import_leftovers(e) == before, "refusals left files: %r" % import_leftovers(e))
    # A copy with a new id and MAC, which starts on a disk with the backup's contents.
    out, _ = e.keel("vm", "import", "--kernel", K, bdir, "--new-id", "--name", "i2")
    check("VM 'i2' imported" in out and "copy, new id" in out, "import: %r" % out)
    i2 = e.vm("i2")
    copy = os.path.join(e.state, "pools", "default", "i2", "disk0.vhdx")
    check(i2["id"] != orig["id"], "--new-id kept the id %s" % i2["id"])
    check(i2["nets"][0]["mac"] != orig["nets"][0]["mac"], "--new-id kept the MAC: %r" %
          i2["nets"])
    check(disk_of(e, "i2") == copy, "i2's disk is %s, not the copy" % disk_of(e, "i2"))
    check(digest(e, copy) == want, "the imported disk differs from the VM's")
    disk_check(e, copy)
    # Sparse: the 8 MiB disk's copy holds 128 KiB of data and the VHDX's own structures,
    # as the backup's file does (a full copy would allocate more than the virtual size).
    used = os.stat(copy).st_blocks * 512
    check(used < 8 << 20 and
          used <= os.stat(os.path.join(bdir, "disks", "disk0.vhdx")).st_blocks * 512 + (1 << 20),
          "the copy is not sparse: %d bytes allocated" % used)
    jobs = [j for j in e.api_ok("GET", "/v1/jobs") if j.get("operation") == "import"]
    check(jobs and jobs[-1]["progress"]["bytes_total"] == 8 << 20 and
          jobs[-1]["progress"]["percent"] == 100, "the import job: %r" % jobs)
    e.api_ok("PATCH", "/v1/vms/i2", {"nets": []})  # its tap is i1's: no network needed
    e.start("i2")
    e.console_until("i2", "ready for input")
    e.keel("vm", "turn-off", "i2")
    check(digest(e, base) == want, "the original disk changed")
    # The backup is unchanged and imports again (a copy keeps it reusable).
    out, _ = e.keel("vm", "import", "--kernel", K, bdir, "--new-id", "--name", "i3", "--json")
    doc = json.loads(out)
    check(doc["vm"] == "i3" and doc["mode"] == "copy" and doc["new_id"] and
          doc["not_imported"] == [], "second import: %r" % doc)
    # In place, keeping the id and MAC, once the original is gone: the backup's files
    # become the VM's.
    e.keel("vm", "delete", "i1")
    out, _ = e.keel("vm", "import", "--kernel", K, bdir, "--in-place")
    i1 = e.vm("i1")
    check(i1["id"] == orig["id"] and i1["nets"][0]["mac"] == orig["nets"][0]["mac"],
          "in place: %r" % i1)
    check(disk_of(e, "i1") == os.path.join(bdir, "disks", "disk0.vhdx"),
          "in place: the VM is on %s" % disk_of(e, "i1"))
    e.keel("vm", "delete", "i1")
    # Corrupted and malicious backups: each refused at once, saying why, nothing made.
    def bad(tag, change, msg, body=None):
        d = os.path.join(e.dir, "bad-" + tag)
        shutil.copytree(bdir, d, symlinks=True)
        change(d)
        before = import_leftovers(e)
        e.api_err("POST", "/v1/vms/import", body or {"kernel": K, "from": d, "new_id": True,
                  "name": "x-" + tag}, want=400, msg=msg)
        check(import_leftovers(e) == before, "%s left files: %r" % (tag, import_leftovers(e)))
        return d

    def set_cfg(d, fn):
        p = os.path.join(d, "config.json")
        cfg = json.load(open(p))
        fn(cfg)
        json.dump(cfg, open(p, "w"))

    bad("json", lambda d: open(os.path.join(d, "config.json"), "w").write('{"name": "x",'),
        "is not one JSON object")
    bad("field", lambda d: set_cfg(d, lambda c: c.update(state="Running")),
        "field 'state' is the VM's runtime state")
    bad("dotdot", lambda d: set_cfg(d, lambda c: c["disks"][0].update(
        path=d + "/disks/../../base.vhdx")), "is not a file of the backup's disks/ directory")
    bad("abs", lambda d: set_cfg(d, lambda c: c["disks"][0].update(path=base)),
        "is not a file of the backup's disks/ directory")

    # Symlinks to a file of the same pool (relative: the pool's own rules allow them), and
    # out of it.
    def link_disk(d, target):
        os.unlink(os.path.join(d, "disks", "disk0.vhdx"))
        os.symlink(target, os.path.join(d, "disks", "disk0.vhdx"))
    bad("symlink", lambda d: link_disk(d, os.path.relpath(base, os.path.join(d, "disks"))),
        "is a symlink")
    bad("symlink-out", lambda d: link_disk(d, "/etc/passwd"), "is a symlink")

    def link_dir(d):
        shutil.rmtree(os.path.join(d, "disks"))
        os.makedirs(os.path.join(e.dir, "elsewhere"), exist_ok=True)
        shutil.copy(os.path.join(bdir, "disks", "disk0.vhdx"), os.path.join(e.dir, "elsewhere"))
        os.symlink("../elsewhere", os.path.join(d, "disks"))
    bad("symdir", link_dir, "(a symlink)")

    def truncate(d):
        p = os.path.join(d, "disks", "disk0.vhdx")
        os.truncate(p, os.path.getsize(p) // 2)
    bad("truncated", truncate, "beyond the end of the file")
    bad("notvhdx", lambda d: open(os.path.join(d, "disks", "disk0.vhdx"), "r+b").write(
        b"\0" * 65536), "does not open as a VHDX")
    bad("parent", lambda d: subprocess.run(
        [e.a.keel, "disk", "create", os.path.join(d, "disks", "disk0.vhdx.new"), "--parent",
         base], check=True, capture_output=True) and os.replace(
        os.path.join(d, "disks", "disk0.vhdx.new"), os.path.join(d, "disks", "disk0.vhdx")),
        "is a differencing disk")
    outside = tempfile.mkdtemp(prefix="kdi", dir="/var/tmp")
    try:
        shutil.copytree(bdir, os.path.join(outside, "i1"))
        e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": os.path.join(outside, "i1"),
                  "new_id": True, "name": "x-out"}, want=400, msg="in no storage pool")
    finally:
        shutil.rmtree(outside)
    # A copy failing part-way (test builds: test-import-fail in the backup) removes what it
    # made and registers nothing.
    hook = os.path.join(bdir, "test-import-fail")
    open(hook, "w").close()
    before = import_leftovers(e)
    _, err = e.keel("vm", "import", "--kernel", K, bdir, "--new-id", "--name", "i4", want=1)
    os.unlink(hook)
    check("test hook" in err, "the failed import: %r" % err)
    code, _ = e.curl("GET", "/v1/vms/i4")
    check(code == 404 and import_leftovers(e) == before,
          "a failed import left %d %r" % (code, import_leftovers(e)))
    # keeld killed during the copy (held by test-import-hold): no VM is registered; the
    # staging directory left is named in the refusal of the next import.
    hold = os.path.join(bdir, "test-import-hold")
    open(hold, "w").close()
    job = subprocess.Popen([e.a.keel, "vm", "import", "--kernel", K, bdir, "--new-id",
                            "--name", "i5"], env=dict(os.environ, KEEL_SOCKET=e.sock),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stage = import_held_stage(e, "i5")
    e.kill_keeld()
    job.communicate(timeout=30)
    os.unlink(hold)
    e.start_keeld()
    code, _ = e.curl("GET", "/v1/vms/i5")
    check(code == 404, "an interrupted import registered VM i5")
    e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": bdir, "new_id": True, "name": "i5"},
              want=409, msg="under way or was interrupted")
    shutil.rmtree(stage)
    e.keel("vm", "import", "--kernel", K, bdir, "--new-id", "--name", "i5")
    check(digest(e, disk_of(e, "i5")) == want, "i5's disk differs")


def import_start(e, body):
    """POST /v1/vms/import, its job's document."""
    return e.api_ok("POST", "/v1/vms/import", body, want=202)


def vhdx_bat(path):
    """The file offset of a VHDX's BAT (its region table's BAT entry)."""
    import struct
    import uuid
    with open(path, "rb") as f:
        f.seek(0x30000)
        n = struct.unpack("<I", f.read(16)[8:12])[0]
        for _ in range(n):
            ent = f.read(32)
            if str(uuid.UUID(bytes_le=ent[:16])).upper() == "2DC27766-F623-4200-9D64-115E9BFD4A08":
                return struct.unpack("<Q", ent[16:24])[0]
    raise Fail("%s has no BAT region" % path)


def case_import_attacks(e):
    """keel vm import against a hostile backup directory (issue 13's review): a disk
    rewritten in place during the copy as a differencing disk whose parent is a file
    outside every pool (the copy reads the handle checked, never a parent), or a FIFO
    (the job ends, keeld exits on SIGTERM); a BAT pointing every entry at one block
    (refused, no copy larger than the file); boot files naming another VM's disk (not
    imported); thousands of stray names with terminal escapes (capped, escaped); a MAC
    clash; a failure on the second disk of two (both removed); a too-long path."""
    K = os.path.realpath(e.a.guest)  # a backup holds no kernel: given again
    e.start_keeld()
    b0, b1 = os.path.join(e.dir, "b0.vhdx"), os.path.join(e.dir, "b1.vhdx")
    for b, seed in ((b0, 5), (b1, 6)):
        e.keel("disk", "create", b, "--size", "8M")
        write_disk(e, b, seed)
    want1 = digest(e, b1)
    e.create("v", disks=[{"path": b0}, {"path": b1}], nets=[{"tap": "kv0"}])
    dest = os.path.join(e.dir, "backups")
    os.makedirs(dest)
    e.keel("vm", "backup", "v", "--to", dest)
    bdir = os.path.join(dest, "v")

    def fresh(tag):
        d = os.path.join(e.dir, "bk-" + tag)
        shutil.copytree(bdir, d)
        return d

    # A disk rewritten in place (same inode) as a differencing disk once the check passed:
    # its parent, a file outside every pool, is never read; a FIFO as that parent hangs
    # nothing.
    out = tempfile.mkdtemp(prefix="kia", dir="/var/tmp")
    try:
        sec = os.path.join(out, "secret.vhdx")
        e.keel("disk", "create", sec, "--size", "8M")
        write_disk(e, sec, 42)
        want_sec = digest(e, sec)
        child = os.path.join(e.dir, "child.vhdx")
        e.keel("disk", "create", child, "--parent", sec)
        data = open(child, "rb").read()
        for tag, fifo in (("sw1", False), ("sw2", True)):
            d = fresh(tag)
            hold = os.path.join(d, "test-import-hold")
            open(hold, "w").close()
            job = import_start(e, {"kernel": K, "from": d, "new_id": True, "name": tag})
            for _ in range(300):
                j = e.api_ok("GET", job["href"])
                if j["progress"]["bytes_done"] >= 8 << 20:
                    break
                time.sleep(0.1)
            check(j["progress"]["bytes_done"] >= 8 << 20, "the held copy did not start")
            with open(os.path.join(d, "disks", "disk1.vhdx"), "r+b") as f:
                f.truncate(0)
                f.write(data)
            if fifo:
                os.unlink(sec)
                os.mkfifo(sec)
            os.unlink(hold)
            j = wait_job(e, job, limit=30)
            if j["state"] == "succeeded":
                got = digest(e, j["result"]["disks"][1])
                check(got != want_sec, "%s: the import copied a file outside every pool "
                      "through a parent link" % tag)
            check("/proc/self/fd" not in json.dumps(j), "%s: %r" % (tag, j))
        # The same rewrite before the job's checks: refused as a differencing disk now.
        os.unlink(sec)
        e.keel("disk", "create", sec, "--size", "8M")
        d = fresh("sw3")
        hold = os.path.join(d, "test-import-hold-check")
        open(hold, "w").close()
        job = import_start(e, {"kernel": K, "from": d, "new_id": True, "name": "sw3"})
        with open(os.path.join(d, "disks", "disk1.vhdx"), "r+b") as f:
            f.truncate(0)
            f.write(data)
        os.unlink(hold)
        j = wait_job(e, job, limit=30)
        check(j["state"] == "failed" and "became a differencing disk after it was checked"
              in j["error"]["message"], "sw3: %r" % j)
        check(e.api_ok("GET", "/v1/vms") is not None, "keeld does not answer")
        # No job left that keeld's exit waits for.
        t0 = time.time()
        os.kill(e.keeld_proc.pid, signal.SIGTERM)
        e.keeld_exits(0, "after SIGTERM, the imports done")
        check(time.time() - t0 < 15, "keeld took %.0f s to exit" % (time.time() - t0))
    finally:
        shutil.rmtree(out)
    e.start_keeld()
    # Boot files named by the description (here another VM's disk as the initrd, a DVD
    # medium) are not imported, and said so; a direct-boot VM needs its kernel given.
    def set_cfg(d, fn):
        p = os.path.join(d, "config.json")
        cfg = json.load(open(p))
        fn(cfg)
        json.dump(cfg, open(p, "w"))
    d = fresh("io")
    set_cfg(d, lambda c: c.update(initrd=b0))
    e.api_err("POST", "/v1/vms/import", {"from": d, "new_id": True, "name": "io"},
              msg="boots a kernel directly, and a backup holds none")
    j = wait_job(e, import_start(e, {"kernel": K, "from": d, "new_id": True, "name": "io"}))
    check(j["state"] == "succeeded", "io: %r" % j)
    io = e.vm("io")
    check(not io.get("initrd") and io["kernel"] == K, "the initrd was imported: %r" % io)
    check(any(n.startswith("initrd " + b0) and "not imported" in n
              for n in j["result"]["not_imported"]) and
          not any(n.startswith("kernel ") for n in j["result"]["not_imported"]),
          "not_imported: %r" % j["result"]["not_imported"])
    e.keel("vm", "delete", "io")
    # Thousands of stray files named with terminal escapes: 100 lines, then a count; the
    # control characters escaped.
    d = fresh("many")
    for i in range(3000):
        open(os.path.join(d, "f%05d\x1b[31mred" % i), "w").close()
    j = wait_job(e, import_start(e, {"kernel": K, "from": d, "new_id": True, "name": "many"}))
    ni = j["result"]["not_imported"]
    check(len(ni) == 101 and re.match(r"and \d+ more not imported$", ni[-1]) and
          int(ni[-1].split()[1]) == 3000 - 100, "not_imported: %d lines, last %r" %
          (len(ni), ni[-1]))
    check(not any(ch in "".join(ni) for ch in "\x1b\x07\n") and
          any("\\x1b[31mred" in n for n in ni), "not_imported: %r" % ni[:3])
    e.keel("vm", "delete", "many")
    # The MAC clash: a copy keeping the id of a deleted VM whose MAC another VM took.
    vmac = e.vm("v")["nets"][0]["mac"]
    e.keel("vm", "delete", "v")
    e.create("other", nets=[{"tap": "kv1", "mac": vmac}])
    e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": bdir}, want=409,
              msg="MAC address %s of the backup's VM is another VM's" % vmac)
    e.keel("vm", "delete", "other")
    # A failure on the second disk of two removes the first disk's copy too.
    d = fresh("fail2")
    open(os.path.join(d, "test-import-fail"), "w").close()
    before = import_leftovers(e)
    j = wait_job(e, import_start(e, {"kernel": K, "from": d, "new_id": True, "name": "f2"}))
    check(j["state"] == "failed" and "disk 1 of" in j["error"]["message"], "f2: %r" % j)
    check(import_leftovers(e) == before and e.curl("GET", "/v1/vms/f2")[0] == 404,
          "the failed two-disk import left %r" % import_leftovers(e))
    # A path too long is said to be so.
    e.api_err("POST", "/v1/vms/import", {"from": "/" + "a" * 5000}, msg="is too long")
    # disks/ swapped for a relative symlink to another directory of the pool between its
    # check and the opens of its files (test builds: test-import-swap): refused.
    d = fresh("swapdir")
    other = os.path.join(e.dir, "other-disks")
    shutil.copytree(os.path.join(d, "disks"), other)
    open(os.path.join(d, "test-import-swap"), "w").write(os.path.relpath(other, d))
    e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": d, "new_id": True,
              "name": "swd"}, msg="is a symlink or under one")
    # A BAT whose entries all point at one block: a 2 GiB disk in a few MiB of file would
    # be copied as 2 GiB of data. Refused by the overlap check, nothing left.
    amp = os.path.join(e.dir, "amp.vhdx")
    e.keel("disk", "create", amp, "--size", "2G", "--block-size", "1M")
    write_disk(e, amp, 7)
    bat = vhdx_bat(amp)
    with open(amp, "r+b") as f:
        f.seek(bat)
        e0 = f.read(8)
        for i in range(1, 2048):
            f.seek(bat + 8 * i)
            f.write(e0)
    d = fresh("amp")
    shutil.copy(amp, os.path.join(d, "disks", "disk0.vhdx"))
    before = import_leftovers(e)
    j = wait_job(e, import_start(e, {"kernel": K, "from": d, "new_id": True, "name": "amp"}))
    check(j["state"] == "failed" and "is inconsistent" in j["error"]["message"] and
          "overlaps" in j["error"]["message"], "the overlapping BAT: %r" % j)
    check(import_leftovers(e) == before, "amp left %r" % import_leftovers(e))
    # A pool without room for the copies: refused before copying, saying how much.
    small = os.path.join(e.dir, "small")
    os.makedirs(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", small], check=True)
    try:
        e.api_ok("POST", "/v1/pools", {"name": "small", "path": os.path.realpath(small)},
                 want=201)
        j = wait_job(e, import_start(e, {"kernel": K, "from": bdir, "new_id": True, "name": "sm",
                                         "copy_to": "small"}))
        check(j["state"] == "failed" and "not enough space" in j["error"]["message"] and
              "MiB free" in j["error"]["message"], "the small pool: %r" % j)
        check(os.listdir(small) == [], "the small pool holds %r" % os.listdir(small))
        e.api_ok("DELETE", "/v1/pools/small")
    finally:
        subprocess.run(["umount", small])
    # An import under way does not hold keeld's exit: SIGTERM during a held copy stops it,
    # removes its copies and ends keeld promptly.
    d = fresh("held")
    hold = os.path.join(d, "test-import-hold")
    open(hold, "w").close()
    import_start(e, {"kernel": K, "from": d, "new_id": True, "name": "held"})
    stage = import_held_stage(e, "held")
    t0 = time.time()
    os.kill(e.keeld_proc.pid, signal.SIGTERM)
    e.keeld_exits(0, "after SIGTERM during an import")
    check(time.time() - t0 < 15, "keeld took %.0f s to exit" % (time.time() - t0))
    check(not os.path.exists(stage), "the stopped import left %s: %r" % (stage, os.listdir(stage)
          if os.path.exists(stage) else None))
    os.unlink(hold)
    e.start_keeld()
    check(e.curl("GET", "/v1/vms/held")[0] == 404, "the stopped import registered a VM")


def backup_held(e, name, vmdir, dest):
    """keel vm backup NAME --to DEST in the background, its copy held by the test hook (the
    file test-backup-hold in the VM's directory) once its checkpoint exists and the VM runs
    again. Returns (the keel process, the hook's path: remove it to let the copy go)."""
    hold = os.path.join(vmdir, "test-backup-hold")
    open(hold, "w").close()
    os.makedirs(dest)
    job = subprocess.Popen([e.a.keel, "vm", "backup", name, "--to", dest],
                           env=dict(os.environ, KEEL_SOCKET=e.sock),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(300):
        if ckpts(e, name) and e.vm(name)["state"] == "Running":
            break
        time.sleep(0.1)
    return job, hold


def case_backup_scsi_luns(e):
    """A VM with no virtio-blk disk and its DVD drives between its SCSI disks (LUN 0 a DVD
    with a medium, LUN 1 disk A, LUN 2 an empty DVD drive, LUN 3 disk B): keeld killed
    (SIGKILL) while a running backup's copy is held leaves the VM running on its recovery
    checkpoint's children (the next keeld finds the worker and the checkpoint, no longer
    pinned) and a backup without config.json; deleting that checkpoint merges the children
    back into A and B, with what was written meanwhile. Backed up Off, disks/disk0.vhdx is A
    and disk1.vhdx B (the SCSI disks in LUN order, the DVD drives skipped), config.json has
    them on LUNs 1 and 3 and the drives on LUNs 0 and 2; imported as a copy, A is on LUN 1 and
    B on LUN 3 with their bytes, both DVD drives empty."""
    K = os.path.realpath(e.a.guest)
    e.start_keeld()
    a, b, iso = (os.path.join(e.dir, n) for n in ("a.vhdx", "b.vhdx", "m.iso"))
    for path, seed in ((a, 21), (b, 22)):
        e.keel("disk", "create", path, "--size", "8M")
        write_disk(e, path, seed)
        write_disk(e, path, seed + 10, off=5 << 20)
    make_iso(iso)
    e.create("m1", scsi={"luns": [{"type": "dvd", "path": iso}, {"type": "disk", "path": a},
                                  {"type": "dvd", "path": None}, {"type": "disk", "path": b}]})

    # Running, its copy held, keeld killed.
    vm = e.start("m1")
    e.console_until("m1", "ready for input")
    vmdir = os.path.join(e.state, "vms", vm["id"])
    dest_k = os.path.join(e.dir, "backups-killed")
    job, hold = backup_held(e, "m1", vmdir, dest_k)
    try:
        luns = e.vm("m1")["scsi"]["luns"]
        check(len(ckpts(e, "m1")) == 1 and luns[1]["path"] != a and luns[3]["path"] != b,
              "the backup's checkpoint: %r" % e.vm("m1"))
        children = (luns[1]["path"], luns[3]["path"])
        e.kill_keeld()
        job.communicate(timeout=30)
    finally:
        os.unlink(hold)
    e.start_keeld()
    vm = e.wait_state("m1", "Running")
    e.pids.add(vm["pid"])
    cks = ckpts(e, "m1")
    luns = e.vm("m1")["scsi"]["luns"]
    check(len(cks) == 1 and (luns[1]["path"], luns[3]["path"]) == children,
          "after keeld's kill: %r on %r" % (cks, e.vm("m1")))
    check(not os.path.exists(os.path.join(dest_k, "m1", "config.json")),
          "the interrupted backup wrote config.json")
    # The VM writes into the children meanwhile (Off, disktool), merged back by the delete.
    e.keel("vm", "turn-off", "m1")
    write_disk(e, children[1], 30, off=2 << 20)
    want_a, want_b = digest(e, children[0]), digest(e, children[1])
    e.keel("checkpoint", "delete", "m1", list(cks.values())[0]["id"])
    luns = e.vm("m1")["scsi"]["luns"]
    check(ckpts(e, "m1") == {} and luns[1]["path"] == a and luns[3]["path"] == b and
          not any(os.path.exists(c) for c in children),
          "after the checkpoint's delete: %r" % e.vm("m1"))
    check(digest(e, a) == want_a and digest(e, b) == want_b,
          "the children were not merged back into the SCSI disks")
    disk_check(e, b)

    # Off: the SCSI disks in LUN order, the DVD drives kept on their LUNs.
    dest = os.path.join(e.dir, "backups")
    os.makedirs(dest)
    out, _ = e.keel("vm", "backup", "m1", "--to", dest, "--json")
    doc = json.loads(out)
    bdir = os.path.join(dest, "m1")
    copies = [os.path.join(bdir, "disks", "disk%d.vhdx" % i) for i in (0, 1)]
    check(doc["disks"] == copies and sorted(os.listdir(os.path.join(bdir, "disks"))) ==
          ["disk0.vhdx", "disk1.vhdx"], "the backup: %r" % doc)
    check(digest(e, copies[0]) == want_a and digest(e, copies[1]) == want_b,
          "the backup's copies are not disks A, B in LUN order")
    cfg = json.load(open(os.path.join(bdir, "config.json")))
    luns = cfg["scsi"]["luns"]
    check(not cfg.get("disks") and [l["type"] for l in luns] == ["dvd", "disk", "dvd", "disk"] and
          luns[0]["path"] == iso and luns[1]["path"] == copies[0] and
          luns[2]["path"] is None and luns[3]["path"] == copies[1], "config.json: %r" % cfg)

    # Imported as a copy: each disk back on its LUN.
    out, _ = e.keel("vm", "import", "--kernel", K, bdir, "--new-id", "--name", "m2", "--json")
    m2 = e.vm("m2")
    luns = m2["scsi"]["luns"]
    check(not m2["disks"] and [l["type"] for l in luns] == ["dvd", "disk", "dvd", "disk"] and
          luns[0]["path"] is None and luns[2]["path"] is None, "the imported VM: %r" % m2)
    check(digest(e, luns[1]["path"]) == want_a and digest(e, luns[3]["path"]) == want_b,
          "the imported disks are not on their LUNs")
    e.start("m2")
    e.console_until("m2", "ready for input")
    e.keel("vm", "turn-off", "m2")


def case_backup_writes(e):
    """A backup while the guest writes its disk (issue 13's review): the virtio test guest
    writes, flushes and reads back during the copy (held by a test hook); the copy is the
    disk at the checkpoint (empty: the guest had not written yet), and the VM's disk after
    the merge holds every write."""
    vguest = os.path.join(os.path.dirname(os.path.dirname(e.a.guest)), "guests", "virtio.elf")
    check(os.path.exists(vguest), "the virtio test guest %s is not built" % vguest)
    e.start_keeld()
    e.api_ok("POST", "/v1/pools", {"name": "guests", "path": os.path.realpath(
        os.path.dirname(vguest))}, want=201)
    disk = os.path.join(e.dir, "w1.vhdx")
    e.keel("disk", "create", disk, "--size", "64M")
    empty = digest(e, disk)
    e.create("w1", kernel=vguest, memory=64 << 20, disks=[{"path": disk, "serial": "w1-1"}],
             cmdline="mode=blk sectors=131072 serial=w1-1 wait=key wz_max=%d wz_segs=32" %
             0x3fffff)
    vm = e.start("w1")
    e.console_until("w1", r"virtio: blk waits for a key")
    vmdir = os.path.join(e.state, "vms", vm["id"])
    dest = os.path.join(e.dir, "backups")
    job, hold = backup_held(e, "w1", vmdir, dest)
    try:
        check(ckpts(e, "w1") and disk_of(e, "w1") != disk, "the backup's checkpoint")
        e.pids.add(e.vm("w1")["pid"])
        e.type_console("w1", "g")
        e.console_until("w1", r"virtio: blk write-zeroes, discard, bad requests ok")
    finally:
        os.unlink(hold)
    out, err = job.communicate(timeout=120)
    check(job.returncode == 0 and b"consistency: crash" in out,
          "the backup while the guest wrote: %r %r" % (out, err))
    copy = os.path.join(dest, "w1", "disks", "disk0.vhdx")
    check(digest(e, copy) == empty, "the copy is not the disk at the checkpoint")
    check(disk_of(e, "w1") == disk and ckpts(e, "w1") == {},
          "after the backup: %r on %s" % (ckpts(e, "w1"), disk_of(e, "w1")))
    e.keel("vm", "turn-off", "w1")
    r = subprocess.run([e.a.disktool, "dump", disk], capture_output=True, timeout=60)
    data = r.stdout
    zero = bytes(512)
    for sector in (0, 2040, 100000, 131072 - 8):
        check(data[sector * 512:(sector + 1) * 512] != zero,
              "the guest's write at sector %d is not on the VM's disk" % sector)
    disk_check(e, disk)


def case_backup_scsi(e):
    """Backups and imports of a VM with a virtio-blk disk, a DVD drive (LUN 0) and a disk on
    its SCSI controller (LUN 1: a differencing VHDX whose parent holds part of its data), as
    Hyper-V's Generation 2 VMs keep their disks: an Off VM's backup, a running one's without
    an agent (crash-consistent: a standard checkpoint with its saved state) and with keel-agent
    (application-consistent) each copy both disks (the SCSI disk's whole chain into one
    standalone VHDX with its bytes), config.json puts the copy on LUN 1 and keeps the DVD's
    medium (not copied); the VM runs on without a reboot, back on its own files (the SCSI
    disk still the child of its parent) with no checkpoint; what it wrote during the copy
    (into its checkpoint's children) is merged back into its own SCSI disk and is not in the
    copy. The import (a copy with a new id, and in place) gives the VM both disks with the
    backup's bytes, the SCSI disk on LUN 1, the DVD drive empty on LUN 0 (its medium not
    imported), and it starts; a SCSI disk path out of disks/, a symlink or a differencing
    disk in the backup is refused, naming the LUN or file; a raw SCSI disk's backup is
    refused naming it."""
    check(e.a.agent and os.access(e.a.agent, os.X_OK), "keel-agent is not built: %s" % e.a.agent)
    K = os.path.realpath(e.a.guest)  # a backup holds no kernel: given again
    e.start_keeld()
    blk, want_blk = patterned_disk(e)
    lunp, lun, iso = (os.path.join(e.dir, n) for n in ("lunp.vhdx", "lun.vhdx", "d.iso"))
    e.keel("disk", "create", lunp, "--size", "8M")
    write_disk(e, lunp, 7)
    write_disk(e, lunp, 8, off=6 << 20)
    e.keel("disk", "create", lun, "--parent", lunp)
    write_disk(e, lun, 9, off=2 << 20)
    want_lun = digest(e, lun)
    make_iso(iso)
    e.create("s1", disks=[{"path": blk}],
             scsi={"luns": [{"type": "dvd", "path": iso}, {"type": "disk", "path": lun}]})

    def on_own_files(what):
        v = e.vm("s1")
        luns = v["scsi"]["luns"]
        check(v["disks"][0]["path"] == blk and luns[0]["path"] == iso and
              luns[1]["path"] == lun and ckpts(e, "s1") == {},
              "after %s: %r on %r" % (what, ckpts(e, "s1"), v))
        if v["state"] == "Off":  # a running worker holds the file
            info, _ = e.keel("disk", "info", lun)
            check(lunp in info, "after %s the SCSI disk is no longer %s's child: %r" %
                  (what, lunp, info))

    def backed_up(to, doc, consistency, lun_bytes=want_lun):
        check(doc["consistency"] == consistency, "backup: %r" % doc)
        bdir = os.path.join(to, "s1")
        copies = [os.path.join(bdir, "disks", "disk%d.vhdx" % i) for i in (0, 1)]
        check(doc["disks"] == copies and sorted(os.listdir(os.path.join(bdir, "disks"))) ==
              ["disk0.vhdx", "disk1.vhdx"], "the backup's disks: %r" % doc)
        check(digest(e, copies[0]) == want_blk, "the backup's virtio-blk disk differs")
        check(digest(e, copies[1]) == lun_bytes, "the backup's SCSI disk differs")
        info, _ = e.keel("disk", "info", copies[1])
        check("dynamic" in info and "parent" not in info.lower(),
              "the SCSI disk's copy is not a standalone VHDX: %r" % info)
        cfg = json.load(open(os.path.join(bdir, "config.json")))
        luns = cfg["scsi"]["luns"]
        check(cfg["disks"][0]["path"] == copies[0] and len(luns) == 2 and
              luns[0]["type"] == "dvd" and luns[0]["path"] == iso and
              luns[1]["type"] == "disk" and luns[1]["path"] == copies[1],
              "config.json: %r" % cfg)
        return bdir

    # Off: both disks as they are.
    dest = os.path.join(e.dir, "backups")
    os.makedirs(dest)
    out, _ = e.keel("vm", "backup", "s1", "--to", dest, "--json")
    bdir = backed_up(dest, json.loads(out), "off")
    on_own_files("the Off backup")

    # Running without an agent: the checkpoint falls back to a standard one (saved state);
    # the VM is restored on the children and carries on (a half-typed line completes).
    vm = e.start("s1")
    e.console_until("s1", "ready for input")
    vmdir = os.path.join(e.state, "vms", vm["id"])
    e.type_console("s1", "xyz")
    dest_c = os.path.join(e.dir, "backups-crash")
    os.makedirs(dest_c)
    out, _ = e.keel("vm", "backup", "s1", "--to", dest_c, "--json")
    doc = json.loads(out)
    check(doc.get("fallback"), "a backup without an agent has no fallback: %r" % doc)
    backed_up(dest_c, doc, "crash")
    vm = e.wait_state("s1", "Running")
    e.pids.add(vm["pid"])
    e.type_console("s1", "-uvw\n")
    log = e.console_until("s1", r"echo \[xyz-uvw\]")
    check("daemon-guest: up" not in log.split("ready for input")[-1],
          "s1 rebooted under the crash-consistent backup: %r" % log)
    on_own_files("the crash-consistent backup")

    # With keel-agent: application-consistent.
    agent, agent_sock = host_agent(e, vmdir)
    try:
        wait_heartbeat(e, "s1", "OK", 5)
        e.type_console("s1", "abc")
        dest_a = os.path.join(e.dir, "backups-app")
        os.makedirs(dest_a)
        out, _ = e.keel("vm", "backup", "s1", "--to", dest_a, "--json")
        abdir = backed_up(dest_a, json.loads(out), "application")
        ran_on(e, "s1", "the backup")
        on_own_files("the application-consistent backup")
        jobs = [j for j in e.api_ok("GET", "/v1/jobs") if j.get("operation") == "backup"]
        check(jobs and jobs[-1]["progress"]["bytes_total"] == 16 << 20 and
              jobs[-1]["progress"]["percent"] == 100, "the backup job: %r" % jobs)
        # Writes during the copy (held by the test hook) go to the checkpoint's child of the
        # SCSI disk (the VM turned off, disktool writes it), are not in the copy and are
        # merged into the VM's own SCSI disk.
        # The agent again for the restored worker (the test mux at its vsock.sock).
        VsockMux(os.path.join(vmdir, "vsock.sock"), agent_sock)
        wait_heartbeat(e, "s1", "OK", 5)
        dest_h = os.path.join(e.dir, "backups-held")
        job, hold = backup_held(e, "s1", vmdir, dest_h)
        try:
            child = e.vm("s1")["scsi"]["luns"][1]["path"]
            check(len(ckpts(e, "s1")) == 1 and child != lun, "the backup's checkpoint: %r" %
                  e.vm("s1"))
            e.keel("vm", "turn-off", "s1")
            write_disk(e, child, 10, off=6 << 20)
            after = digest(e, child)
            check(after != want_lun, "the write changed nothing")
        finally:
            os.unlink(hold)
        out, err = job.communicate(timeout=120)
        check(job.returncode == 0 and b"consistency: application" in out,
              "the held backup: %r %r" % (out, err))
        check(e.vm("s1")["state"] == "Off", "after the held backup: %r" % e.vm("s1"))
        on_own_files("the held backup")
        check(not os.path.exists(child), "the merged child %s stays" % child)
        check(digest(e, lun) == after, "the write during the copy was not merged back")
        disk_check(e, lun)
        check(digest(e, os.path.join(dest_h, "s1", "disks", "disk1.vhdx")) == want_lun,
              "the held copy of the SCSI disk is not the disk at the checkpoint")
        check(agent.poll() is None, "keel-agent died")
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()

    # Import as a copy with a new id: each disk on its place, the DVD drive empty.
    out, _ = e.keel("vm", "import", "--kernel", K, abdir, "--new-id", "--name", "s2", "--json")
    doc = json.loads(out)
    pool = os.path.join(e.state, "pools", "default", "s2")
    copies = [os.path.join(pool, "disk0.vhdx"), os.path.join(pool, "disk1.vhdx")]
    check(doc["disks"] == copies and any(n.startswith("DVD medium " + iso) for n in
          doc["not_imported"]), "the import: %r" % doc)
    s2 = e.vm("s2")
    luns = s2["scsi"]["luns"]
    check(s2["disks"][0]["path"] == copies[0] and len(luns) == 2 and
          luns[0]["type"] == "dvd" and luns[0]["path"] is None and
          luns[1]["type"] == "disk" and luns[1]["path"] == copies[1] and
          luns[1].get("format") == "vhdx", "the imported VM: %r" % s2)
    check(digest(e, copies[0]) == want_blk and digest(e, copies[1]) == want_lun,
          "the imported disks differ from the backup's")
    disk_check(e, copies[1])
    jobs = [j for j in e.api_ok("GET", "/v1/jobs") if j.get("operation") == "import"]
    check(jobs and jobs[-1]["progress"]["bytes_total"] == 16 << 20,
          "the import job: %r" % jobs)
    e.start("s2")
    e.console_until("s2", "ready for input")
    wlog = e.keel("vm", "log", "s2")[0]
    check("virtio-scsi lun 1: disk %s (vhdx)" % copies[1] in wlog and
          "lun 0: dvd (no medium)" in wlog, "the imported VM's worker: %r" % wlog)
    e.keel("vm", "turn-off", "s2")

    # Hostile SCSI disks in a backup: refused at once, naming the LUN or file.
    def bad(tag, change, msg):
        d = os.path.join(e.dir, "bad-" + tag)
        shutil.copytree(bdir, d, symlinks=True)
        change(d)
        before = import_leftovers(e)
        e.api_err("POST", "/v1/vms/import", {"kernel": K, "from": d, "new_id": True,
                  "name": "x-" + tag}, want=400, msg=msg)
        check(import_leftovers(e) == before, "%s left files: %r" % (tag, import_leftovers(e)))

    def set_lun(d, path):
        p = os.path.join(d, "config.json")
        cfg = json.load(open(p))
        cfg["scsi"]["luns"][1]["path"] = path
        json.dump(cfg, open(p, "w"))
    bad("lun-dotdot", lambda d: set_lun(d, d + "/disks/../../lun.vhdx"),
        "the disk on SCSI LUN 1 of its description")
    bad("lun-abs", lambda d: set_lun(d, lun), "is not a file of the backup's disks/ directory")
    # The virtio-blk disk's file named again for LUN 1 under another directory (the file is
    # the last component): both map onto disks/disk0.vhdx, refused as one file twice.
    bad("lun-same-file", lambda d: set_lun(d, "/elsewhere/disks/disk0.vhdx"),
        "disks/disk0.vhdx is both a disk and SCSI LUN 1")

    def link_lun(d):
        os.unlink(os.path.join(d, "disks", "disk1.vhdx"))
        os.symlink(os.path.relpath(lun, os.path.join(d, "disks")),
                   os.path.join(d, "disks", "disk1.vhdx"))
    bad("lun-symlink", link_lun, "is a symlink")

    def lun_child(d):
        new = os.path.join(d, "disks", "disk1.vhdx.new")
        e.keel("disk", "create", new, "--parent", lunp)
        os.replace(new, os.path.join(d, "disks", "disk1.vhdx"))
    bad("lun-parent", lun_child, "is a differencing disk")

    # What still cannot be backed up: a raw SCSI disk (no recovery checkpoint on it), refused
    # naming it and how to convert it, with nothing made.
    raw = os.path.join(e.dir, "lun.img")
    e.keel("disk", "create", raw, "--size", "8M", "--format", "raw")
    e.create("r1", scsi={"luns": [{"type": "disk", "path": raw}]})
    e.api_err("POST", "/v1/vms/r1/backup", {"to": dest}, want=409,
              msg="SCSI disk %s of VM 'r1' is a raw file" % raw)
    check(not os.path.exists(os.path.join(dest, "r1")), "the refused backup made a directory")

    # In place, once the original is gone: the backup's own files, on the same places.
    e.keel("vm", "delete", "s1")
    e.keel("vm", "import", "--kernel", K, bdir, "--in-place")
    s1 = e.vm("s1")
    check(s1["disks"][0]["path"] == os.path.join(bdir, "disks", "disk0.vhdx") and
          s1["scsi"]["luns"][1]["path"] == os.path.join(bdir, "disks", "disk1.vhdx") and
          s1["scsi"]["luns"][0]["path"] is None, "in place: %r" % s1)
    e.start("s1")
    e.console_until("s1", "ready for input")
    e.keel("vm", "turn-off", "s1")


def case_console(e):
    e.start_keeld()
    e.create("c1")
    e.start("c1")
    e.console_until("c1", "ready for input")
    out, _ = e.keel("console", "c1", "--read-only", "--timeout", "1")
    check("daemon-guest: up" in out and "ready for input" in out,
          "console did not replay the boot output: %r" % out)
    env = dict(os.environ, KEEL_SOCKET=e.sock)
    viewer = subprocess.Popen([e.a.keel, "console", "c1", "--read-only", "--timeout", "6"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    time.sleep(0.5)
    out, _ = e.keel("console", "c1", "--linger", "2", input=b"hello keel\n")
    check("echo [hello keel]" in out, "console input not echoed: %r" % out)
    vout, _ = viewer.communicate(timeout=20)
    check(b"echo [hello keel]" in vout, "a second viewer did not see the output: %r" % vout)
    t = time.time()
    out, _ = e.keel("console", "c1", "--linger", "5", input=b"first\n\x1dsecond\n")
    check(time.time() - t < 4, "Ctrl-] did not detach at once")
    time.sleep(0.5)
    log = e.console_until("c1", r"echo \[first\]")
    check("echo [second]" not in log, "input after Ctrl-] reached the guest")
    out, err = e.keel("console", "c1", input=b"poweroff\n", want=0, timeout=30)
    vm = e.wait_state("c1", "Off")
    check(vm["state_reason"] == "the guest powered off", "guest power-off: %r" % vm)


def case_crash(e):
    e.start_keeld()
    e.create("k1")
    e.start("k1")
    e.console_until("k1", "ready for input")
    e.type_console("k1", "crash\n")
    vm = e.wait_state("k1", "Crashed")
    check(vm["state_reason"], "Crashed without a reason")
    check(vm["pid"] is None, "a Crashed VM shows a worker")
    e.keel("vm", "set", "k1", "--cpus", "2")  # a crashed VM counts as off
    e.start("k1")
    e.keel("vm", "turn-off", "k1")


def case_start_failure(e):
    e.start_keeld()
    notkernel = os.path.join(e.dir, "not-a-kernel")
    with open(notkernel, "w") as f:
        f.write("this is not a kernel\n" * 100)
    e.create("f1", kernel=notkernel)
    _, err = e.keel("vm", "start", "f1", want=1)
    vm = e.vm("f1")
    check(vm["state"] == "Off" and vm["state_reason"], "failed start: %r" % vm)
    check(vm["state_reason"] in err, "start error %r does not show the reason %r" %
          (err, vm["state_reason"]))
    # A kernel removed after the VM was defined.
    gone = os.path.join(e.dir, "gone.elf")
    shutil.copy(e.a.guest, gone)
    e.create("f2", kernel=gone)
    os.unlink(gone)
    _, err = e.keel("vm", "start", "f2", want=2)
    check("No such file" in err, "start with a missing kernel: %r" % err)
    # keeld whose keel-vmm is missing.
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld(vmm=os.path.join(e.dir, "no-such-keel-vmm"))
    _, err = e.keel("vm", "start", "f1", want=1)
    vm = e.vm("f1")
    check(vm["state"] == "Off" and "no-such-keel-vmm" in vm["state_reason"],
          "missing keel-vmm: %r / %r" % (vm, err))


def case_start_hang(e):
    """A start that hangs (the worker never opens its control socket: a keel-vmm that only
    sleeps) is ended by keeld after --start-timeout with the reason, the VM Off (a Saved
    VM stays Saved, its saved state kept), and keeld answers all along (issue 9)."""
    hang = os.path.join(e.dir, "hanging-keel-vmm")
    with open(hang, "w") as f:
        f.write("#!/bin/sh\n# never becomes ready\nexec sleep 600\n")
    os.chmod(hang, 0o755)
    # A Saved VM first, with the real keel-vmm.
    e.start_keeld()
    e.create("hs")
    e.start("hs")
    e.console_until("hs", r"daemon-guest: ready for input")
    e.keel("vm", "save", "hs")
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld(vmm=hang, extra=["--start-timeout", "2"])
    e.create("hg")
    e.api_ok("POST", "/v1/vms/hg/start", {}, want=202)
    vm = e.vm("hg")
    check(vm["state"] == "Starting" and vm["pid"], "a hanging start: %r" % vm)
    worker = vm["pid"]
    # keeld answers while the worker hangs: a list, a definition, a change.
    check([v["name"] for v in e.api_ok("GET", "/v1/vms")] == ["hg", "hs"], "list")
    e.keel("vm", "set", "hs", "--notes", "changed while hg hangs")
    off = e.wait_state("hg", "Off")
    check(off["state_reason"] == "keel-vmm did not open its control socket within 2 s and "
          "was killed", "the end of a hanging start: %r" % off["state_reason"])
    wait_dead(worker)
    # The CLI says so too.
    _, err = e.keel("vm", "start", "hg", want=1)
    check("did not open its control socket within 2 s" in err, "keel vm start: %r" % err)
    # A restore that hangs leaves the VM Saved, and its saved state where it was.
    saved = glob.glob(os.path.join(e.state, "vms", "*", "saved", "memory"))
    check(len(saved) == 1, "saved files: %r" % saved)
    e.keel("vm", "start", "hs", want=1)
    hs = e.vm("hs")
    check(hs["state"] == "Saved" and hs["state_reason"] == "could not restore: keel-vmm did "
          "not open its control socket within 2 s and was killed", "hs: %r" % hs)
    check(os.path.exists(saved[0]), "the saved state went with a restore that never ran")
    # A keeld with a working keel-vmm carries on from it.
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    check(e.start("hs")["state_reason"] == "restored from its saved state", "restore")
    e.keel("vm", "turn-off", "hs")


def integrity(e):
    r = subprocess.run(["sqlite3", os.path.join(e.state, "keel.db"), "PRAGMA integrity_check;"],
                       capture_output=True, timeout=30)
    check(r.returncode == 0 and r.stdout.strip() == b"ok", "store integrity: %r %r" %
          (r.stdout, r.stderr))


def definitions(e):
    vms = e.api_ok("GET", "/v1/vms")
    for v in vms:
        for k in ("state", "state_reason", "pid", "console_socket", "integration", "damaged",
                  "agent_socket"):
            v.pop(k)
    return vms


def case_reattach(e):
    e.start_keeld()
    # Only r3, which is never started, has a NIC: the workers need no tap devices.
    for n in ("r1", "r2", "r3"):
        e.create(n, notes="vm " + n, **({"nets": [{"tap": "kt" + n}]} if n == "r3" else {}))
    # r4 is off and has the automatic start action "start": each keeld start starts it.
    e.create("r4", automatic_start_action="start")
    a = e.start("r1")
    b = e.start("r2")
    e.console_until("r1", "ready for input")
    e.console_until("r2", "ready for input")
    before = definitions(e)
    serial_b = e.vm("r2")["console_socket"]

    told = "VM %s: a hung guest is told by its vCPUs' interrupts (KVM statistics" % a["id"]
    told_before = open(e.keeld_log).read().count(told)
    e.kill_keeld(signal.SIGKILL)
    check(pid_alive(a["pid"]) and pid_alive(b["pid"]), "workers died with keeld")
    # While keeld is away, r2's guest powers itself off.
    s = socket.socket(socket.AF_UNIX)
    s.connect(serial_b)
    s.sendall(b"poweroff\n")
    s.close()
    wait_dead(b["pid"])
    check(e.start_keeld(expect_fail=False), "keeld did not restart")
    integrity(e)
    check(definitions(e) == before, "definitions changed across keeld SIGKILL")
    r1 = e.vm("r1")
    check(r1["state"] == "Running" and r1["pid"] == a["pid"], "r1 not re-attached: %r" % r1)
    # The re-attached worker's vCPU statistics fds are asked for again (the heartbeat of the
    # first keeld had them; this keeld's gets its own copies).
    deadline = time.time() + 10
    while open(e.keeld_log).read().count(told) <= told_before:
        check(time.time() < deadline, "keeld did not get the re-attached worker's vCPU stats")
        time.sleep(0.2)
    r2 = e.vm("r2")
    check(r2["state"] == "Off" and r2["state_reason"] == "the guest powered off",
          "r2 after power-off while keeld was away: %r" % r2)
    check(e.vm("r3")["state"] == "Off", "r3 changed state")
    r4 = e.wait_state("r4", "Running")
    e.pids.add(r4["pid"])
    e.keel("vm", "turn-off", "r4")
    # keeld controls the re-attached worker: pause, resume, console, then exit noticed.
    e.keel("vm", "pause", "r1")
    e.keel("vm", "resume", "r1")
    out, _ = e.keel("console", "r1", "--linger", "2", input=b"still here\n")
    check("echo [still here]" in out, "console after re-attach: %r" % out)
    # A second keeld on the same state dir is refused.
    rc = e.start_keeld(expect_fail=True)
    check(rc != 0, "a second keeld on the same state dir started")
    # SIGTERM: keeld exits, the VM keeps running, and the next keeld takes it back again.
    e.kill_keeld(signal.SIGTERM)
    check(pid_alive(a["pid"]), "stopping keeld stopped a VM")
    e.start_keeld()
    check(e.vm("r1")["state"] == "Running", "r1 not Running after keeld restart")
    r4 = e.wait_state("r4", "Running")  # started again: it is "start", not "start-if-running"
    e.pids.add(r4["pid"])
    e.keel("vm", "turn-off", "r4")
    e.keel("vm", "stop", "r1", "--timeout", "20")
    wait_dead(a["pid"])
    check(e.vm("r1")["state_reason"] == "shut down through the power button",
          "stop of a re-attached VM: %r" % e.vm("r1"))
    integrity(e)


def case_save(e):
    """Save-VM (issue 6): keel vm save ends the worker with the VM Saved; start carries on
    from the saved state (a line half typed before the save completes after it); a restore
    that fails leaves the VM Saved; discard-state makes the next start boot afresh."""
    import glob
    e.start_keeld()
    e.create("s1", cmdline="tag=s1")
    vm = e.start("s1")
    e.console_until("s1", "ready for input")
    _, err = e.keel("vm", "discard-state", "s1", want=5)
    check("it is Running" in err, "discard-state of a running VM: %r" % err)
    e.type_console("s1", "half")
    e.keel("vm", "save", "s1")
    saved = e.vm("s1")
    check(saved["state"] == "Saved" and saved["state_reason"] == "saved",
          "after save: %s (%s)" % (saved["state"], saved["state_reason"]))
    check(saved["pid"] is None, "a Saved VM shows a worker")
    wait_dead(vm["pid"])
    files = glob.glob(os.path.join(e.state, "vms", "*", "saved", "*"))
    check(sorted(os.path.basename(f) for f in files) == ["memory", "state"],
          "saved files: %r" % files)
    _, err = e.keel("vm", "save", "s1", want=5)
    check("it is Saved" in err, "save of a Saved VM: %r" % err)
    # A keeld restarted in between still knows the VM is Saved.
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    check(e.vm("s1")["state"] == "Saved", "not Saved after a keeld restart: %r" % e.vm("s1"))
    vm2 = e.start("s1")
    check(vm2["state_reason"] == "restored from its saved state", "start: %r" % vm2)
    e.type_console("s1", "-line\n")
    log = e.console_until("s1", r"echo \[half-line\]")
    check("daemon-guest: up" not in log, "the restored VM booted again: %r" % log)
    check(not glob.glob(os.path.join(e.state, "vms", "*", "saved", "*")),
          "the saved files are still there after the restore")
    # A restore that fails (the definition changed) keeps the VM Saved with the reason.
    e.keel("vm", "save", "s1")
    e.keel("vm", "set", "s1", "--memory", "32M")
    e.keel("vm", "start", "s1", want=None)
    failed = e.wait_state("s1", "Saved")
    check("could not restore" in failed["state_reason"] and
          "saved with 16M of memory" in failed["state_reason"],
          "failed restore: %r" % failed["state_reason"])
    e.keel("vm", "discard-state", "s1")
    off = e.vm("s1")
    check(off["state"] == "Off" and off["state_reason"] == "saved state discarded",
          "after discard-state: %r" % off)
    check(not glob.glob(os.path.join(e.state, "vms", "*", "saved")),
          "discard-state left the saved directory")
    vm = e.start("s1")
    e.console_until("s1", "daemon-guest: up")
    e.console_until("s1", "ready for input")
    # keeld dies during a save: the save completes in the worker while no keeld is there,
    # and the next keeld finishes it (the worker ends, the VM is Saved, start carries on).
    e.type_console("s1", "away")
    os.kill(vm["pid"], signal.SIGSTOP)
    try:
        e.api_ok("POST", "/v1/vms/s1/save", {}, want=202)
        # The job records the save on its own thread, soon after the 202.
        deadline = time.time() + 10
        while not os.path.exists(os.path.join(e.state, "vms", vm["id"], "saving")):
            check(time.time() < deadline, "no record of the save in progress")
            time.sleep(0.05)
        # keeld records the save, then sends it down the worker's control socket: give it
        # time to send (the stopped worker only reads it after SIGCONT).
        time.sleep(1.0)
        e.kill_keeld(signal.SIGKILL)
    finally:
        os.kill(vm["pid"], signal.SIGCONT)
    state_file = os.path.join(e.state, "vms", vm["id"], "saved", "state")
    deadline = time.time() + 30
    while not os.path.exists(state_file):
        check(time.time() < deadline, "the worker did not finish its save without keeld")
        time.sleep(0.1)
    check(pid_alive(vm["pid"]), "the worker ended before a keeld told it to")
    e.start_keeld()
    done = e.wait_state("s1", "Saved")
    check(done["state_reason"] == "saved", "a save finished across a keeld crash: %r" % done)
    wait_dead(vm["pid"])
    check(not os.path.exists(os.path.join(e.state, "vms", vm["id"], "saving")),
          "the record of the save outlived it")
    e.start("s1")
    e.type_console("s1", "-keeld\n")
    log = e.console_until("s1", r"echo \[away-keeld\]")
    check(log.count("daemon-guest: up") <= 1, "the VM booted again after the save: %r" % log)
    e.keel("vm", "turn-off", "s1")


def disk_of(e, name):
    return e.vm(name)["disks"][0]["path"]


def ckpts(e, vm):
    return {c["name"]: c for c in e.api_ok("GET", "/v1/vms/%s/checkpoints" % vm)["checkpoints"]}


def digest(e, path):
    """sha256 of a disk's whole view (its chain), read through the disk library."""
    import hashlib
    r = subprocess.run([e.a.disktool, "dump", path], capture_output=True, timeout=60)
    check(r.returncode == 0, "disktool dump %s: %s" % (path, r.stderr.decode()))
    return hashlib.sha256(r.stdout).hexdigest()


def patterned_disk(e):
    """An 8 MiB VHDX with pattern 5 at its start and 6 at 4 MiB; (its path, its sha256)."""
    base = os.path.join(e.dir, "base.vhdx")
    e.keel("disk", "create", base, "--size", "8M")
    write_disk(e, base, 5)
    write_disk(e, base, 6, off=4 << 20)
    return base, digest(e, base)


def write_disk(e, path, seed, off=0):
    r = subprocess.run([e.a.disktool, "write", path, str(off), "65536", str(seed)],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "disktool write %s: %s" % (path, r.stderr.decode()))


def disk_check(e, path):
    out, _ = e.keel("disk", "check", path)
    check("no errors found" in out, "keel disk check %s: %r" % (path, out))


def as_user(who):
    """The command prefix that runs a client as (uid, gid[, supplementary gids])."""
    if who is None:
        return []
    uid, gid = who[0], who[1]
    groups = who[2] if len(who) > 2 else []
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid] + (
        ["--groups=" + ",".join(str(g) for g in groups)] if groups else ["--clear-groups"])


def case_access(e):
    """Who may use the API is what the kernel says of the caller (SO_PEERCRED,
    SO_PEERGROUPS): administrators change anything, viewers read, others are refused; every
    change and every refusal is in the audit log; a viewer's keel console is refused (issue
    10, docs/security.md)."""
    admins, viewers = grp.getgrnam("staff").gr_gid, grp.getgrnam("users").gr_gid
    nobody, nogroup = 65534, grp.getgrnam("nogroup").gr_gid
    os.chmod(e.dir, 0o755)  # the socket's directory: reachable by the test users
    e.start_keeld(extra=("--admin-group", "staff", "--viewer-group", "users"))
    # Only administrators (the socket's group) and viewers (an ACL entry) can connect.
    st = os.stat(e.sock)
    check(stat.S_IMODE(st.st_mode) == 0o660 and st.st_gid == admins, "socket mode and group")
    import struct
    acl = os.getxattr(e.sock, "system.posix_acl_access")
    entries = [struct.unpack_from("<HHI", acl, 4 + 8 * i) for i in range((len(acl) - 4) // 8)]
    check((0x08, 6, viewers) in entries, "ACL entries: %r" % entries)
    e.create("a1", notes="before")
    admin, viewer = (nobody, admins), (nobody, viewers)
    other, viewer2 = (nobody, nogroup), (nobody, nogroup, [viewers])
    # Viewers read, with their group primary or supplementary.
    for who in (viewer, viewer2):
        code, doc = e.curl("GET", "/v1/vms", who=who)
        check(code == 200 and [v["name"] for v in doc] == ["a1"], "viewer list: %d" % code)
    code, _ = e.curl("GET", "/v1/events?since=0&wait=0", who=viewer)
    check(code == 200, "viewer events: %d" % code)
    code, doc = e.curl("PATCH", "/v1/vms/a1", {"notes": "viewer"}, who=viewer)
    check(code == 403 and "may only read" in doc["error"]["message"] and
          doc["error"]["code"] == "Forbidden", "viewer change: %d %r" % (code, doc))
    code, _ = e.curl("GET", "/v1/audit", who=viewer)
    check(code == 403, "viewer audit: %d" % code)
    _, err = e.keel("vm", "start", "a1", who=viewer, want=7)
    check("may only read" in err, "keel as viewer: %r" % err)
    out, _ = e.keel("vm", "list", who=viewer)
    check("a1" in out, "keel vm list as viewer: %r" % out)
    # The consoles are the administrators' (the socket's group, 0660): a viewer's keel
    # console cannot connect, an administrator's (the same uid, in the admins' group) can.
    e.start("a1")
    e.console_until("a1", "ready for input")
    for who in (viewer, viewer2):
        out, err = e.keel("console", "a1", "--read-only", "--timeout", "1", who=who,
                          want=None)
        check("cannot connect" in err and "Permission denied" in err and
              "ready for input" not in out, "keel console as viewer: %r %r" % (out, err))
    out, _ = e.keel("console", "a1", "--read-only", "--timeout", "1", who=admin)
    check("ready for input" in out, "keel console as administrator: %r" % out)
    e.keel("vm", "turn-off", "a1")
    e.wait_state("a1", "Off")
    # Others cannot even connect (so they cannot hold connections or flood the audit log).
    r = subprocess.run(as_user(other) + ["curl", "-s", "-S", "--unix-socket", e.sock,
                                         "http://keeld/v1/vms"], capture_output=True, text=True)
    check(r.returncode != 0 and "a1" not in r.stdout, "other connected: %r" % (r.stdout,))
    _, err = e.keel("vm", "list", who=other, want=3)
    # Administrators change things.
    code, doc = e.curl("PATCH", "/v1/vms/a1", {"notes": "admin"}, who=admin)
    check(code == 200 and doc["notes"] == "admin", "admin change: %d %r" % (code, doc))
    check(e.vm("a1")["notes"] == "admin", "the viewer's change went through")
    # A job's outcome is audited when it ends, by whoever started it (a checkpoint of the
    # Off VM, by the administrator nobody).
    code, doc = e.curl("POST", "/v1/vms/a1/checkpoints", {"name": "audited"}, who=admin)
    check(code == 202, "admin checkpoint: %d %r" % (code, doc))
    job = doc.get("id") or doc.get("job", {}).get("id")
    for _ in range(100):
        if any(r["method"] == "JOB" for r in e.api_ok("GET", "/v1/audit?vm=a1")):
            break
        time.sleep(0.1)
    ends = [r for r in e.api_ok("GET", "/v1/audit?vm=a1") if r["method"] == "JOB"]
    check(len(ends) == 1 and ends[0]["user"] == "nobody" and ends[0]["uid"] == nobody and
          ends[0]["status"] == 200 and ends[0]["path"] == "/v1/jobs/%d" % job and
          "succeeded" in ends[0]["message"], "the job's end in the audit: %r" % ends)
    # Requests refused before routing (a body over 1 MiB, a query over 1 KiB) are audited.
    code, _ = e.curl("POST", "/v1/vms", raw='{"name": "%s"}' % ("x" * (1 << 20)), who=admin)
    check(code == 413, "a body of 1 MiB: %d" % code)
    code, _ = e.curl("GET", "/v1/vms?" + "a=" + "b" * 1100, who=viewer)
    check(code == 414, "a query of 1.1 KiB: %d" % code)
    big = [r for r in e.api_ok("GET", "/v1/audit") if r["status"] in (413, 414)]
    check([(r["user"], r["method"], r["status"]) for r in big] ==
          [("nobody", "POST", 413), ("nobody", "GET", 414)] and
          "larger than" in big[0]["message"] and big[0]["path"] == "/v1/vms",
          "413 and 414 in the audit: %r" % big)
    # The audit log: who, what, the outcome; refusals too; reads are not recorded.
    log = e.api_ok("GET", "/v1/audit?vm=a1")
    seen = [(r["user"], r["uid"], r["method"], r["status"]) for r in log]
    check(("root", 0, "POST", 201) in seen and ("nobody", nobody, "PATCH", 403) in seen and
          ("nobody", nobody, "PATCH", 200) in seen and ("nobody", nobody, "POST", 403) in seen,
          "audit: %r" % seen)
    refused = [r for r in log if r["status"] == 403 and r["method"] == "PATCH"][0]
    check("may only read" in refused["message"] and refused["vm"] == "a1" and
          refused["path"] == "/v1/vms/a1", "audit record: %r" % refused)
    check(all(r["method"] != "GET" or r["status"] == 403 for r in log), "reads audited")
    check(any(r["method"] == "GET" and r["status"] == 403 for r in e.api_ok("GET", "/v1/audit")),
          "a refused read is not in the audit log")
    # A path cannot forge a line of keeld's log.
    e.curl("POST", "/v1/vms/a1%0Aaudit:%20root/start", {}, who=viewer)
    lines = open(e.keeld_log).read().splitlines()
    check(not any(l.startswith("audit:") for l in lines) and
          any("POST /v1/vms/a1?audit: root/start -> 403" in l for l in lines),
          "a path forged a line of keeld's log")
    # A method is 1 to 16 capital letters: any other (MHD takes any token) is a 400, before
    # the access checks and unaudited, so no escape sequence reaches an admin's keel audit.
    raw = (b"\x1b[2J\x1b]0;owned\x07POST /v1/vms/a1/start HTTP/1.1\r\nHost: keeld\r\n"
           b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    r = subprocess.run(as_user(viewer) + [sys.executable, "-c",
                       "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                       "s.sendall(sys.stdin.buffer.read()); s.settimeout(10); b=b''\n"
                       "while True:\n d=s.recv(4096)\n if not d: break\n b+=d\n"
                       "sys.stdout.buffer.write(b)", e.sock], input=raw, capture_output=True,
                       timeout=30)
    status = r.stdout.split(b"\r\n", 1)[0]
    check(re.match(rb"HTTP/1\.[01] 4\d\d ", status) is not None,
          "a method with ESC: %r %r" % (r.stdout[:200], r.stderr[-300:]))
    check(b"1 to 16 capital letters" in r.stdout, "a method with ESC: %r" % r.stdout[:400])
    out, _ = e.keel("audit")
    check("\x1b" not in out and "owned" not in out, "keel audit printed %r" % out)
    check(b"\x1b" not in open(e.keeld_log, "rb").read(), "an ESC in keeld's log")
    out, _ = e.keel("audit", "--vm", "a1")
    check(re.search(r"nobody \(uid 65534\)  PATCH /v1/vms/a1 -> 403: user nobody", out),
          "keel audit: %r" % out)
    e.api_err("GET", "/v1/audit?limit=0", want=400, msg="limit=N")
    e.api_err("GET", "/v1/audit?kind=all", want=400, msg="kind=changes or kind=refused")
    # Refusals are kept apart from the records of requests served (each kind its own newest
    # 10000, unit daemon-store-audit): one kind or the other.
    changes = e.api_ok("GET", "/v1/audit?vm=a1&kind=changes")
    refusals = e.api_ok("GET", "/v1/audit?vm=a1&kind=refused")
    check(changes and refusals and len(changes) + len(refusals) == len(log) and
          all(r["status"] not in (403, 413, 414) for r in changes) and
          all(r["status"] == 403 for r in refusals), "audit kinds: %r %r" % (changes, refusals))
    out, _ = e.keel("audit", "--vm", "a1", "--changes")
    check("root (uid 0)  POST /v1/vms -> 201" in out and "-> 403" not in out,
          "keel audit --changes: %r" % out)
    out, _ = e.keel("audit", "--refused")
    check("-> 403" in out and "-> 413" in out and "-> 201" not in out,
          "keel audit --refused: %r" % out)
    # The log stays in the store across a keeld restart.
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld(extra=("--admin-group", "staff", "--viewer-group", "users"))
    check(len(e.api_ok("GET", "/v1/audit?vm=a1")) == len(log), "audit lost across a restart")


def case_pools(e):
    """A VM's files come from storage pools only: outside every pool (a disk, a kernel, an
    initrd), a symlink out of one, '..', a block device no block pool names and a disk a running VM writes are refused with
    nothing changed; keel disk create --pool makes 0600 files (issue 10, docs/security.md)."""
    e.start_keeld()
    pools = {p["name"]: p for p in e.api_ok("GET", "/v1/pools")}
    check(sorted(pools) == ["default", "guest", "test"] and
          pools["default"]["path"] == os.path.join(e.state, "pools", "default"),
          "pools: %r" % pools)
    out, _ = e.keel("pool", "list")
    check(re.search(r"^default +dir +%s$" % re.escape(pools["default"]["path"]), out, re.M),
          "keel pool list: %r" % out)
    # keel disk create --pool: keeld makes the file in the pool, 0600, never over another.
    out, _ = e.keel("disk", "create", "--pool", "test", "d1.vhdx", "--size", "16M")
    d1 = os.path.join(e.dir, "d1.vhdx")
    check(out.strip() == d1 and stat.S_IMODE(os.stat(d1).st_mode) == 0o600,
          "disk create --pool: %r %o" % (out, stat.S_IMODE(os.stat(d1).st_mode)))
    _, err = e.keel("disk", "create", "--pool", "test", "d1.vhdx", "--size", "16M", want=5)
    check("already exists" in err, "a second create: %r" % err)
    e.api_err("POST", "/v1/pools/test/disks", {"name": "../x.img", "size": 1 << 20},
              msg="a file name in the pool")
    e.keel("disk", "create", "--pool", "test", "d2.img", "--size", "8M")
    check(stat.S_IMODE(os.stat(os.path.join(e.dir, "d2.img")).st_mode) == 0o600, "raw mode")
    # Refused, each with its reason, and nothing created.
    outside = tempfile.mkdtemp(prefix="kdout", dir="/tmp")
    try:
        stray = os.path.join(outside, "stray.img")
        with open(stray, "wb") as f:
            f.truncate(1 << 20)
        os.symlink(stray, os.path.join(e.dir, "link.img"))
        os.mkdir(os.path.join(e.dir, "sub"))
        body = lambda path: {"name": "p1", "kernel": e.a.guest, "memory": 16 << 20,
                             "disks": [{"path": path}]}
        e.api_err("POST", "/v1/vms", body(stray), msg="is in no storage pool")
        e.api_err("POST", "/v1/vms", body(os.path.join(e.dir, "link.img")),
                  msg="leads out of its pool 'test'")
        # A symlink that stays in the pool is refused too: whoever may write a directory of
        # the pool could point it at another VM's file (review of issue 10).
        os.symlink("d2.img", os.path.join(e.dir, "inlink.img"))
        e.api_err("POST", "/v1/vms", body(os.path.join(e.dir, "inlink.img")),
                  msg="is a symlink or reached through one inside its pool 'test'")
        os.symlink(".", os.path.join(e.dir, "here"))
        e.api_err("POST", "/v1/vms", body(os.path.join(e.dir, "here", "d2.img")),
                  msg="reached through one inside its pool 'test'")
        e.api_err("POST", "/v1/vms", body(os.path.join(e.dir, "sub", "..", "d2.img")),
                  msg="'..' is not allowed")
        e.api_err("POST", "/v1/vms", {"name": "p1", "kernel": stray, "memory": 16 << 20},
                  msg="kernel %s is in no storage pool" % stray)
        e.api_err("POST", "/v1/vms", {"name": "p1", "kernel": e.a.guest, "initrd": stray,
                                     "memory": 16 << 20},
                  msg="initrd %s is in no storage pool" % stray)
        blk = next((d for d in ("/dev/loop7", "/dev/loop6", "/dev/vdb") if
                    os.path.exists(d) and stat.S_ISBLK(os.stat(d).st_mode)), None)
        check(blk is not None, "this host has no spare block device for the test")
        e.api_err("POST", "/v1/vms", body(blk), msg="%s is in no storage pool" % blk)
        # A VHDX in a pool whose parent is not: its chain is checked, at attach and start.
        secret = os.path.join(outside, "secret.vhdx")
        e.keel("disk", "create", secret, "--size", "8M")
        child = os.path.join(e.dir, "child.vhdx")
        e.keel("disk", "create", child, "--parent", secret)
        e.api_err("POST", "/v1/vms", body(child),
                  msg="its differencing chain leads to parent %s is in no storage pool" % secret)
        e.api_err("POST", "/v1/pools/test/disks", {"name": "c2.vhdx", "parent": secret},
                  msg="parent %s is in no storage pool" % secret)
        check(not os.path.exists(os.path.join(e.dir, "c2.vhdx")), "a refused disk was made")
        check(e.api_ok("GET", "/v1/vms") == [], "a refused create left a VM")
        # A block pool names the device: then it may be a disk (and the pool cannot go).
        e.api_err("POST", "/v1/pools", {"name": "b", "type": "block", "devices": [stray]},
                  msg="is not a block device")
        e.keel("pool", "create", "blk", "--type", "block", "--device", blk)
        e.create("p1", disks=[{"path": blk, "format": "raw"}])
        _, err = e.keel("pool", "delete", "blk", want=5)
        check("holds files of VM 'p1': %s (its disk)" % blk in err,
              "delete a used pool: %r" % err)
        e.api_ok("DELETE", "/v1/vms/p1")
        e.keel("pool", "delete", "blk")
        # A running VM that writes a disk keeps it to itself.
        e.create("w1", disks=[{"path": d1}])
        e.start("w1")
        e.api_err("POST", "/v1/vms", {"name": "w2", "kernel": e.a.guest, "memory": 16 << 20,
                                     "disks": [{"path": d1, "readonly": True}]}, want=409,
                  msg="is open for writing in running VM 'w1'")
        e.keel("vm", "turn-off", "w1")
        e.create("w2", disks=[{"path": d1, "readonly": True}])
        # A file swapped for a symlink out of the pool after it was attached: start refuses.
        os.unlink(d1)
        os.symlink(stray, d1)
        _, err = e.keel("vm", "start", "w1", want=None)
        check("leads out of its pool" in err or "leads out of its pool" in
              e.vm("w1")["state_reason"], "start through a swapped symlink: %r" % err)
        check(e.vm("w1")["state"] == "Off", "w1 started on a file outside its pool")
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    # A pool's directory swapped for a symlink after the pool was made: its path is opened
    # without following one (RESOLVE_NO_SYMLINKS), so the pool is not where the link leads.
    base = tempfile.mkdtemp(prefix="kdswap", dir="/tmp")
    try:
        pdir, other = os.path.join(base, "pool"), os.path.join(base, "other")
        for d in (pdir, other):
            os.mkdir(d)
            with open(os.path.join(d, "s.img"), "wb") as f:
                f.truncate(1 << 20)
        e.keel("pool", "create", "swap", "--path", pdir)
        os.rename(pdir, os.path.join(base, "was"))
        os.symlink(other, pdir)
        e.api_err("POST", "/v1/vms", {"name": "s1", "kernel": e.a.guest, "memory": 16 << 20,
                                     "disks": [{"path": os.path.join(pdir, "s.img")}]},
                  msg="its pool 'swap' (%s) has a symlink on its path" % pdir)
        e.keel("pool", "delete", "swap")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    # A pool's directory, and each above it, only root can change.
    loose = os.path.join(e.dir, "loose")
    os.mkdir(loose)
    os.chmod(loose, 0o777)
    e.api_err("POST", "/v1/pools", {"name": "x", "path": loose},
              msg="%s is writable by users other than root" % loose)
    # Sticky (as /tmp) excuses a directory above a pool, never the pool's own: users could
    # put files and symlinks in it.
    os.chmod(loose, 0o1777)
    e.api_err("POST", "/v1/pools", {"name": "x", "path": loose},
              msg="%s is writable by users other than root" % loose)
    sticky_above = os.path.join(loose, "p")
    os.mkdir(sticky_above, 0o700)
    e.keel("pool", "create", "x", "--path", sticky_above)
    e.keel("pool", "delete", "x")
    # A directory inside a pool that users may write (not sticky): they could delete a VM's
    # file and put their own there, or rename two, so it is refused; so is a written disk
    # owned by another user (one put in its place) or with a second name (review of issue 10).
    up = os.path.join(e.dir, "up")
    os.mkdir(up)
    os.chmod(up, 0o777)
    upimg = os.path.join(up, "a.img")
    with open(upimg, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(upimg, 0o600)
    disk = lambda path: {"name": "u1", "kernel": e.a.guest, "memory": 16 << 20,
                         "disks": [{"path": path}]}
    e.api_err("POST", "/v1/vms", disk(upimg),
              msg="directory up inside its pool is writable by users other than root")
    os.chmod(up, 0o755)
    os.chown(upimg, 65534, 65534)
    e.api_err("POST", "/v1/vms", disk(upimg),
              msg="is owned by uid 65534: a disk a VM writes must be root's")
    os.chown(upimg, 0, 0)
    os.link(upimg, os.path.join(up, "b.img"))
    e.api_err("POST", "/v1/vms", disk(upimg), msg="%s has 2 hard links" % upimg)
    os.unlink(os.path.join(up, "b.img"))
    e.create("u1", disks=[{"path": upimg}])
    e.api_ok("DELETE", "/v1/vms/u1")
    # A pool's directory made writable by others after the pool was made: refused at use.
    late = os.path.join(e.dir, "late")
    os.mkdir(late, 0o755)
    limg = os.path.join(late, "l.img")
    with open(limg, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(limg, 0o600)
    e.keel("pool", "create", "late", "--path", late)
    e.create("l1", disks=[{"path": limg}])
    os.chmod(late, 0o1777)
    _, err = e.keel("vm", "start", "l1", want=None)
    why = "its pool 'late' (%s) is writable by users other than root" % late
    check(why in err or why in e.vm("l1")["state_reason"],
          "start in a pool made writable by others: %r / %r" % (err, e.vm("l1")))
    check(e.vm("l1")["state"] == "Off", "l1 started in a loose pool")
    os.chmod(late, 0o755)
    e.api_ok("DELETE", "/v1/vms/l1")
    e.keel("pool", "delete", "late")
    e.api_err("POST", "/v1/pools", {"name": "x", "path": "/"}, msg="whole file system")
    e.api_err("POST", "/v1/pools", {"name": "test", "path": e.dir}, want=409, msg="already exists")
    e.api_err("DELETE", "/v1/pools/default", want=409, msg="cannot be deleted")


def wait_job(e, job, limit=60):
    """Follow a keeld job (its href) until it ends; returns its final document."""
    deadline = time.time() + limit
    while True:
        j = e.api_ok("GET", job["href"])
        if j["state"] != "running":
            return j
        check(time.time() < deadline, "job still running after %d s: %r" % (limit, j))
        time.sleep(0.1)


def case_pool_delete(e):
    """A pool is not deleted while any VM uses a file in it (issue 10, docs/security.md): a
    virtio disk, a SCSI LUN's disk, a DVD image, a firmware file, a parent anywhere in a disk's
    differencing chain (a file only a checkpoint keeps: the unit test daemon-disk-policy). Each
    refusal names the VM and the file and changes nothing; once no VM uses it, the pool goes
    (its files stay)."""
    e.start_keeld()
    base = tempfile.mkdtemp(prefix="kdpdel", dir="/tmp")
    try:
        pool = os.path.join(base, "p")
        os.mkdir(pool)
        e.keel("pool", "create", "del", "--path", pool)
        f = lambda name: os.path.join(pool, name)

        def refused(vm, path, what):
            _, err = e.keel("pool", "delete", "del", want=5)
            check("pool 'del' holds files of VM '%s': %s (its %s)" % (vm, path, what) in err,
                  "delete of a pool VM %s uses: %r" % (vm, err))
            check("del" in [p["name"] for p in e.api_ok("GET", "/v1/pools")],
                  "a refused delete removed the pool")
            e.api_ok("DELETE", "/v1/vms/" + vm)

        with open(f("raw.img"), "wb") as fh:
            fh.truncate(1 << 20)
        e.create("v-disk", disks=[{"path": f("raw.img")}])
        refused("v-disk", f("raw.img"), "disk")
        e.create("v-lun", scsi={"luns": [{"type": "disk", "path": f("raw.img")}]})
        refused("v-lun", f("raw.img"), "disk")
        make_iso(f("d.iso"))
        e.keel("vm", "create", "v-dvd", "--kernel", e.a.guest, "--memory", "32M", "--dvd",
               f("d.iso"))
        refused("v-dvd", f("d.iso"), "DVD image")
        with open(f("fw.fd"), "wb") as fh:
            fh.truncate(2 << 20)
        e.api_ok("POST", "/v1/vms", {"name": "v-fw", "generation": 2, "memory": 32 << 20,
                                     "firmware_file": f("fw.fd")}, want=201)
        refused("v-fw", f("fw.fd"), "firmware file")
        # Only a parent two levels down the chain of a disk in another pool.
        e.keel("disk", "create", f("base.vhdx"), "--size", "8M")
        mid, top = os.path.join(e.dir, "pd-mid.vhdx"), os.path.join(e.dir, "pd-top.vhdx")
        e.keel("disk", "create", mid, "--parent", f("base.vhdx"))
        e.keel("disk", "create", top, "--parent", mid)
        e.create("v-chain", disks=[{"path": top}])
        refused("v-chain", f("base.vhdx"), "parent in the differencing chain of disk %s" % top)
        # No VM uses it any more: it goes, its files stay.
        e.keel("pool", "delete", "del")
        check("del" not in [p["name"] for p in e.api_ok("GET", "/v1/pools")] and
              os.path.exists(f("base.vhdx")), "the unused pool was not deleted")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def case_checkpoint(e):
    """Checkpoints of a VM that is off (issue 6): create moves the disk onto a differencing
    child; apply reverts the disk; deleting a middle checkpoint (one child: merge and relink;
    two children: kept hidden until one goes) keeps every other view intact (checksums of
    each checkpoint's file and of Now); --subtree merges back into the base disk; rename;
    refusals (raw disk, names, state, unknown) change nothing."""
    e.start_keeld()
    base = os.path.join(e.dir, "base.vhdx")
    raw = os.path.join(e.dir, "raw.img")
    e.keel("disk", "create", base, "--size", "8M")
    e.keel("disk", "create", raw, "--size", "8M", "--format", "raw")
    e.create("c1", disks=[{"path": base}])
    e.create("r1", disks=[{"path": raw}])
    write_disk(e, base, 1)
    _, err = e.keel("checkpoint", "create", "r1", want=5)
    check("raw file" in err and "keel disk convert" in err, "raw disk: %r" % err)
    check(e.api_ok("GET", "/v1/vms/r1/checkpoints")["checkpoints"] == [], "raw VM checkpointed")
    check(e.vm("r1")["disks"][0]["path"] == raw, "raw VM's disk changed")

    views = {}
    for i, name in enumerate(["one", "two", "three"]):
        e.keel("checkpoint", "create", "c1", "--name", name)
        write_disk(e, disk_of(e, "c1"), i + 2)
    cs = ckpts(e, "c1")
    check(cs["one"]["disks"] == [base], "the first checkpoint owns the base disk: %r" % cs)
    check(cs["two"]["parent"] == "one" and cs["three"]["parent"] == "two", "tree: %r" % cs)
    for n, c in cs.items():
        views[n] = digest(e, c["disks"][0])
    views["now"] = digest(e, disk_of(e, "c1"))
    check(len(set(views.values())) == 4, "the four views should differ: %r" % views)
    out, _ = e.keel("checkpoint", "list", "c1")
    check(re.search(r"^one .*\n  two .*\n    three .*\n      > Now$", out, re.M),
          "list tree: %r" % out)
    listed = json.loads(e.keel("checkpoint", "list", "c1", "--json")[0])
    check(listed["now"]["parent"] == "three", "now: %r" % listed["now"])
    check(e.vm("c1")["parent_checkpoint"] == "three", "parent_checkpoint: %r" % e.vm("c1"))
    check(re.search(r"^Checkpoint:\s+three ", e.keel("vm", "show", "c1")[0], re.M),
          "keel vm show has no Checkpoint line")

    # Refusals: nothing changes.
    e.api_err("POST", "/v1/vms/c1/checkpoints", {"name": "two"}, want=409, msg="already has")
    e.api_err("POST", "/v1/vms/c1/checkpoints", {"name": "a/b"}, want=400, msg="'/'")
    e.api_err("POST", "/v1/vms/c1/checkpoints", {"name": ""}, want=400, msg="1 to 100")
    e.api_err("POST", "/v1/vms/c1/checkpoints", {"nme": "x"}, want=400, msg="unknown field")
    e.api_err("POST", "/v1/vms/c1/checkpoints/nope/apply", want=404, msg="no checkpoint")
    e.api_err("DELETE", "/v1/vms/c1/checkpoints/two?subtree=maybe", want=400, msg="subtree")
    e.api_err("GET", "/v1/vms/c1/checkpoints?subtree=true", want=400, msg="takes no query")
    e.api_err("POST", "/v1/vms/c1/checkpoints/two/apply?force=1", want=400,
              msg="takes no query string (got '?force=1')")
    e.api_err("PATCH", "/v1/vms/c1/checkpoints/two", {"name": "one"}, want=409)
    e.api_err("DELETE", "/v1/vms/c1", want=409, msg="checkpoints")
    e.api_err("PATCH", "/v1/vms/c1", {"disks": []}, want=409, msg="checkpoints")
    check(ckpts(e, "c1") == cs, "a refused request changed the checkpoints")

    # Apply two: the disk reads as at two; the state it had is gone.
    old_now = disk_of(e, "c1")
    out, _ = e.keel("checkpoint", "apply", "c1", "two")
    check("is Off" in out, "apply: %r" % out)
    check(digest(e, disk_of(e, "c1")) == views["two"], "apply did not revert the disk")
    check(not os.path.exists(old_now), "the discarded state's file is still there")
    check(e.vm("c1")["state_reason"] == "checkpoint 'two' applied", "reason: %r" % e.vm("c1"))
    check(e.vm("c1")["parent_checkpoint"] == "two", "parent_checkpoint after apply")
    write_disk(e, disk_of(e, "c1"), 7)
    views["now"] = digest(e, disk_of(e, "c1"))

    # two has two children (three and Now): deleting it keeps its file, hidden.
    e.keel("checkpoint", "delete", "c1", "two")
    cs = ckpts(e, "c1")
    check(sorted(cs) == ["one", "three"] and cs["three"]["parent"] == "one", "after: %r" % cs)
    check(digest(e, cs["three"]["disks"][0]) == views["three"], "three changed")
    check(digest(e, disk_of(e, "c1")) == views["now"], "Now changed")
    check(json.loads(e.keel("checkpoint", "list", "c1", "--json")[0])["now"]["parent"] == "one",
          "Now's visible parent")
    # three goes: the hidden two has one child left (Now), merged into it.
    three_file = cs["three"]["disks"][0]
    e.keel("checkpoint", "delete", "c1", "three")
    check(not os.path.exists(three_file), "three's file is still there")
    check(digest(e, disk_of(e, "c1")) == views["now"], "Now changed after the merge")
    check(digest(e, base) == views["one"], "one changed")
    disk_check(e, disk_of(e, "c1"))

    # A chain one > a > b > c > Now: deleting b merges c's file into b's and relinks Now.
    for i, name in enumerate(["a", "b", "c"]):
        e.keel("checkpoint", "create", "c1", "--name", name)
        write_disk(e, disk_of(e, "c1"), 10 + i, off=65536 * (i + 1))
    cs = ckpts(e, "c1")
    views = {n: digest(e, c["disks"][0]) for n, c in cs.items()}
    views["now"] = digest(e, disk_of(e, "c1"))
    # Through the API: a job (202), whose result says what was deleted.
    job = e.api_ok("DELETE", "/v1/vms/c1/checkpoints/b", want=202)
    check(job["operation"] == "checkpoint-delete" and job["vm"] == "c1", "job: %r" % job)
    job = wait_job(e, job)
    check(job["state"] == "succeeded" and job["result"] == {"deleted": "b", "subtree": False},
          "delete job: %r" % job)
    cs = ckpts(e, "c1")
    check(sorted(cs) == ["a", "c", "one"] and cs["c"]["parent"] == "a", "chain: %r" % cs)
    for n in ("one", "a", "c"):
        check(digest(e, cs[n]["disks"][0]) == views[n], "checkpoint %s changed" % n)
    check(digest(e, disk_of(e, "c1")) == views["now"], "Now changed")
    disk_check(e, disk_of(e, "c1"))
    e.keel("checkpoint", "rename", "c1", "c", "see")
    check(sorted(ckpts(e, "c1")) == ["a", "one", "see"], "rename")

    # A Saved VM's checkpoint keeps its memory: applying it makes the VM Saved again, and
    # start carries on (the half line typed before the save completes after it).
    e.start("c1")
    e.console_until("c1", "ready for input")
    e.type_console("c1", "half")
    e.keel("vm", "save", "c1")
    e.keel("checkpoint", "create", "c1", "--name", "mem")
    check(ckpts(e, "c1")["mem"]["saved_state"], "the checkpoint of a Saved VM has no state")
    e.keel("vm", "discard-state", "c1")
    out, _ = e.keel("checkpoint", "apply", "c1", "mem", "--no-wait")
    check(re.match(r"job \d+ started: apply checkpoint 'mem' to VM 'c1'", out), "no-wait: %r" % out)
    job = wait_job(e, {"href": "/v1/jobs/" + out.split()[1]})
    check(job["state"] == "succeeded" and job["operation"] == "checkpoint-apply" and
          job["result"] == {"applied": "mem"}, "apply job: %r" % job)
    check(e.vm("c1")["state"] == "Saved", "apply of a saved checkpoint: %r" % e.vm("c1"))
    restored_typing(e, "c1", "half", "-line")

    # Everything goes: the data of Now ends up in the base disk itself.
    now = digest(e, disk_of(e, "c1"))
    e.keel("checkpoint", "delete", "c1", "one", "--subtree")
    check(ckpts(e, "c1") == {}, "subtree delete left checkpoints")
    check(disk_of(e, "c1") == base, "the VM is not back on its base disk")
    check(e.vm("c1")["parent_checkpoint"] is None, "parent_checkpoint without checkpoints")
    check(digest(e, base) == now, "the base disk does not hold the VM's data")
    check(sorted(os.listdir(e.dir)) == sorted(["api.sock", "base.vhdx", "keeld.log", "raw.img",
                                               "s"]),
          "files left behind: %r" % os.listdir(e.dir))
    disk_check(e, base)
    e.keel("vm", "delete", "c1")


def checkpoint_typing(e, vm, name):
    """Start vm and take checkpoint name while a line is half typed: the VM carries on from
    where it was (the line completes, no reboot). The running VM's document."""
    e.start(vm)
    e.console_until(vm, "ready for input")
    e.type_console(vm, "abc")
    e.keel("checkpoint", "create", vm, "--name", name)
    doc = e.wait_state(vm, "Running")
    e.pids.add(doc["pid"])
    e.type_console(vm, "-def\n")
    log = e.console_until(vm, r"echo \[abc-def\]")
    check("daemon-guest: up" not in log, "VM %s rebooted: %r" % (vm, log))
    return doc


def restored_typing(e, vm, half, rest, off=True):
    """Start Saved vm, whose state has half typed, and type rest: the line completes (it
    restored, no boot). Then turn it off (unless not off)."""
    e.start(vm)
    e.type_console(vm, rest + "\n")
    log = e.console_until(vm, r"echo \[%s%s\]" % (half, rest))
    check("daemon-guest: up" not in log, "VM %s booted instead of restoring: %r" % (vm, log))
    if off:
        e.keel("vm", "turn-off", vm)
        e.wait_state(vm, "Off")


def case_checkpoint_running(e):
    """Checkpoints of a running VM (issue 6): create saves it into the checkpoint, moves its
    disk onto a new child and restores it (a half typed line survives: no reboot); a paused
    VM stays paused; deleting a checkpoint while it runs merges and restores it; applying a
    checkpoint with memory to a running VM turns it off, makes it Saved, and start carries on
    from the checkpoint's moment; a raw disk is refused without stopping anything."""
    e.start_keeld()
    base = os.path.join(e.dir, "base.vhdx")
    raw = os.path.join(e.dir, "raw.img")
    e.keel("disk", "create", base, "--size", "8M")
    e.keel("disk", "create", raw, "--size", "8M", "--format", "raw")
    e.create("r1", disks=[{"path": raw}])
    vm = e.start("r1")
    _, err = e.keel("checkpoint", "create", "r1", want=5)
    check("keel disk convert" in err, "raw disk: %r" % err)
    check(e.vm("r1")["pid"] == vm["pid"] and e.vm("r1")["state"] == "Running",
          "the refused checkpoint touched the VM: %r" % e.vm("r1"))
    e.keel("vm", "turn-off", "r1")

    write_disk(e, base, 1)
    e.create("v1", disks=[{"path": base}])
    vm = checkpoint_typing(e, "v1", "first")
    check(vm["disks"][0]["path"] != base, "the running VM is still on its base disk")
    check(ckpts(e, "v1")["first"]["saved_state"], "a running VM's checkpoint has no state")

    # Paused stays paused.
    e.keel("vm", "pause", "v1")
    e.type_console("v1", "pre")
    e.keel("checkpoint", "create", "v1", "--name", "second")
    # The job is done when the VM is back as it was, not while its worker still starts: what
    # the user does next (turn it off, back it up) must not find it busy.
    check(e.vm("v1")["state"] == "Paused", "right after create: %r" % e.vm("v1")["state"])
    vm = e.wait_state("v1", "Paused")
    e.pids.add(vm["pid"])
    e.keel("vm", "resume", "v1")
    e.type_console("v1", "-post\n")
    e.console_until("v1", r"echo \[pre-post\]")

    # Delete first while running: the root's one child (second) merges into the base disk.
    e.keel("checkpoint", "delete", "v1", "first")
    check(e.vm("v1")["state"] == "Running", "right after delete: %r" % e.vm("v1")["state"])
    vm = e.wait_state("v1", "Running")
    e.pids.add(vm["pid"])
    cs = ckpts(e, "v1")
    check(sorted(cs) == ["second"] and cs["second"]["disks"] == [base], "after: %r" % cs)
    e.type_console("v1", "x\n")
    log = e.console_until("v1", r"echo \[x\]")
    check("daemon-guest: up" not in log, "the VM rebooted on delete: %r" % log)

    # Apply second while running: off, then Saved at second's moment ("pre" typed).
    e.keel("checkpoint", "apply", "v1", "second")
    check(e.vm("v1")["state"] == "Saved", "after apply: %r" % e.vm("v1"))
    restored_typing(e, "v1", "pre", "-again")
    check(digest(e, disk_of(e, "v1")) == digest(e, base), "the disk moved on after apply")
    disk_check(e, disk_of(e, "v1"))


def case_checkpoint_scsi(e):
    """Checkpoints of a VM with a virtio-blk disk, a VHDX disk on its SCSI controller (after a
    DVD drive: issue 11's Generation 2 VMs boot from SCSI disks) and a DVD: create, off and
    running, moves both disks onto differencing children and leaves the DVD's medium as it is
    (the running VM is restored with its SCSI controller: a half typed line survives); apply
    brings both disks' contents back, the saved state with them; delete, running then off,
    merges each checkpoint's one child into both base disks. A raw SCSI disk is refused,
    naming it, with nothing changed; while checkpoints hold the SCSI disk it cannot be changed
    (a DVD's medium can); a backup copies both disks' chains."""
    e.start_keeld()
    blk, lun, rblk, raw, iso = (os.path.join(e.dir, n) for n in
                                ("blk.vhdx", "lun.vhdx", "rblk.vhdx", "lun.img", "d.iso"))
    for f in (blk, lun, rblk):
        e.keel("disk", "create", f, "--size", "8M")
    e.keel("disk", "create", raw, "--size", "8M", "--format", "raw")
    make_iso(iso)
    write_disk(e, blk, 1)
    write_disk(e, lun, 2)

    def files(vm):
        v = e.vm(vm)
        return v["disks"][0]["path"], v["scsi"]["luns"][1]["path"]

    # A raw SCSI disk: refused, naming it, and nothing changes (no child of the VHDX one).
    e.create("r1", disks=[{"path": rblk}],
             scsi={"luns": [{"type": "dvd", "path": iso}, {"type": "disk", "path": raw}]})
    before = sorted(os.listdir(e.dir))
    _, err = e.keel("checkpoint", "create", "r1", want=5)
    check("SCSI disk %s of VM 'r1' is a raw file" % raw in err and "keel disk convert" in err,
          "raw SCSI disk: %r" % err)
    check(e.api_ok("GET", "/v1/vms/r1/checkpoints")["checkpoints"] == [] and
          files("r1") == (rblk, raw) and sorted(os.listdir(e.dir)) == before,
          "the refused checkpoint changed something: %r" % sorted(os.listdir(e.dir)))
    e.keel("vm", "delete", "r1")

    e.create("m1", disks=[{"path": blk}],
             scsi={"luns": [{"type": "dvd", "path": iso}, {"type": "disk", "path": lun}]})
    # Off: both disks move onto children; the DVD stays.
    e.keel("checkpoint", "create", "m1", "--name", "one")
    b1, l1 = files("m1")
    check(b1 not in (blk, lun) and l1 not in (blk, lun, b1) and b1.endswith(".avhdx") and
          l1.endswith(".avhdx"), "the disks did not move onto children: %r" % [b1, l1])
    check(e.vm("m1")["scsi"]["luns"][0]["path"] == iso, "the DVD's medium moved")
    check(ckpts(e, "m1")["one"]["disks"] == [blk, lun], "one's files: %r" % ckpts(e, "m1"))
    one = (digest(e, blk), digest(e, lun))
    write_disk(e, b1, 3)
    write_disk(e, l1, 4)
    check(digest(e, b1) != one[0] and digest(e, l1) != one[1], "the writes changed nothing")

    # Running: saved with its SCSI controller and restored on new children (no reboot).
    checkpoint_typing(e, "m1", "two")
    cs = ckpts(e, "m1")
    # Off: a production checkpoint; running without an agent: a standard one, with memory.
    check(cs["one"]["type"] == "production" and not cs["one"]["saved_state"] and
          cs["two"]["type"] == "standard" and cs["two"]["saved_state"] and
          cs["two"]["disks"] == [b1, l1], "the checkpoints: %r" % cs)
    b2, l2 = files("m1")
    check(b2 not in (blk, b1) and l2 not in (lun, l1), "running: %r" % [b2, l2])
    e.keel("vm", "turn-off", "m1")
    e.wait_state("m1", "Off")
    two = (digest(e, b1), digest(e, l1))
    write_disk(e, b2, 5, off=65536)
    write_disk(e, l2, 6, off=65536)

    # Refusals while checkpoints hold the disks; a DVD's medium still changes.
    e.api_err("PATCH", "/v1/vms/m1", {"scsi": {"luns": [
        {"type": "dvd", "path": iso}, {"type": "disk", "path": rblk}]}}, want=409,
        msg="checkpoints")
    e.api_err("PATCH", "/v1/vms/m1", {"scsi": {"luns": [{"type": "dvd", "path": iso}]}},
              want=409, msg="checkpoints")
    check(files("m1") == (b2, l2), "a refused change moved the disks")
    e.keel("vm", "set", "m1", "--eject")
    check(e.vm("m1")["scsi"]["luns"][0]["path"] is None and files("m1") == (b2, l2),
          "eject: %r" % e.vm("m1")["scsi"])
    # Left empty: applying two puts back the medium its saved state names (case
    # checkpoint-dvd).
    # A backup copies each disk's whole chain (through the checkpoints' files), the SCSI
    # disk's too, and changes neither the VM nor its checkpoints (case backup-scsi).
    bk = os.path.join(e.dir, "bk")
    os.makedirs(bk)
    e.keel("vm", "backup", "m1", "--to", bk)
    check(digest(e, os.path.join(bk, "m1", "disks", "disk0.vhdx")) == digest(e, b2) and
          digest(e, os.path.join(bk, "m1", "disks", "disk1.vhdx")) == digest(e, l2) and
          files("m1") == (b2, l2) and sorted(ckpts(e, "m1")) == ["one", "two"],
          "the backup of a VM on checkpoints: %r" % sorted(ckpts(e, "m1")))

    # Apply one: both disks read as at one.
    e.keel("checkpoint", "apply", "m1", "one")
    check((digest(e, files("m1")[0]), digest(e, files("m1")[1])) == one,
          "apply did not bring both disks back")
    check(not os.path.exists(b2) and not os.path.exists(l2), "the discarded state's files stay")
    # Apply two: both disks as at two, and its saved state (the half typed line).
    e.keel("checkpoint", "apply", "m1", "two")
    check(e.vm("m1")["state"] == "Saved" and e.vm("m1")["scsi"]["luns"][0]["path"] == iso,
          "after applying two: %r" % e.vm("m1"))
    check((digest(e, files("m1")[0]), digest(e, files("m1")[1])) == two,
          "apply of two did not bring both disks back")
    restored_typing(e, "m1", "abc", "-ghi", off=False)
    now_files = files("m1")

    # Delete one (the root) while it runs: saved, its one child (two) merged into both base
    # disks, Now's children relinked to them, restored (no reboot).
    e.keel("checkpoint", "delete", "m1", "one")
    vm = e.wait_state("m1", "Running")
    e.pids.add(vm["pid"])
    e.type_console("m1", "x\n")
    log = e.console_until("m1", r"echo \[x\]")
    check("daemon-guest: up" not in log, "the VM rebooted on delete: %r" % log)
    cs = ckpts(e, "m1")
    check(sorted(cs) == ["two"] and cs["two"]["disks"] == [blk, lun], "after: %r" % cs)
    check(not os.path.exists(b1) and not os.path.exists(l1), "two's merged files stay")
    check(files("m1") == now_files, "Now's files moved: %r" % [files("m1")])
    e.keel("vm", "turn-off", "m1")
    e.wait_state("m1", "Off")
    check((digest(e, blk), digest(e, lun)) == two, "the merge changed two's view")
    disk_check(e, now_files[0])
    disk_check(e, now_files[1])
    write_disk(e, now_files[0], 7, off=131072)
    write_disk(e, now_files[1], 8, off=131072)
    now = (digest(e, now_files[0]), digest(e, now_files[1]))
    # Delete two (off): Now merges into both base disks, and the VM is back on them.
    e.keel("checkpoint", "delete", "m1", "two")
    check(ckpts(e, "m1") == {} and files("m1") == (blk, lun), "not back: %r" % [files("m1")])
    check((digest(e, blk), digest(e, lun)) == now, "the base disks do not hold Now")
    check(not [f for f in os.listdir(e.dir) if f.endswith(".avhdx")],
          "files left behind: %r" % os.listdir(e.dir))
    disk_check(e, blk)
    disk_check(e, lun)
    e.keel("vm", "delete", "m1")


def case_checkpoint_dvd(e):
    """A checkpoint with saved state keeps the DVD media its saved state names, and apply puts
    them back (docs/checkpoints.md): taken while the drive holds a.iso, then the drive ejected
    or given b.iso, apply leaves it holding a.iso and start restores the VM (a half typed line
    completes). a.iso gone: apply is refused naming it, nothing changed. A Saved VM's medium
    cannot change (its saved state names it): refused, saying what to do."""
    e.start_keeld()
    blk, a, b = (os.path.join(e.dir, n) for n in ("blk.vhdx", "a.iso", "b.iso"))
    e.keel("disk", "create", blk, "--size", "8M")
    make_iso(a)
    make_iso(b, blocks=48)
    e.create("d1", disks=[{"path": blk}], scsi={"luns": [{"type": "dvd", "path": a}]})

    def medium():
        return e.vm("d1")["scsi"]["luns"][0]["path"]

    checkpoint_typing(e, "d1", "one")
    check(ckpts(e, "d1")["one"]["saved_state"], "one has no saved state: %r" % ckpts(e, "d1"))
    # Ejected while it runs, then applied: a.iso is back, and the VM restores.
    e.keel("vm", "set", "d1", "--eject")
    check(medium() is None, "eject: %r" % e.vm("d1")["scsi"])
    e.keel("checkpoint", "apply", "d1", "one")
    check(e.vm("d1")["state"] == "Saved" and medium() == a,
          "after apply (ejected): %r" % e.vm("d1"))
    restored_typing(e, "d1", "abc", "-ghi")
    check(medium() == a, "after the restore: %r" % e.vm("d1")["scsi"])
    # Given b.iso while off, then applied: a.iso again.
    e.keel("vm", "set", "d1", "--dvd", b)
    check(medium() == b, "--dvd b: %r" % e.vm("d1")["scsi"])
    e.keel("checkpoint", "apply", "d1", "one")
    check(e.vm("d1")["state"] == "Saved" and medium() == a,
          "after apply (b.iso): %r" % e.vm("d1"))
    restored_typing(e, "d1", "abc", "-jkl")
    # a.iso gone: the apply is refused, naming it, and nothing changes.
    e.keel("vm", "set", "d1", "--dvd", b)
    before = e.vm("d1")
    os.rename(a, a + ".away")
    _, err = e.keel("checkpoint", "apply", "d1", "one", want=1)
    check("checkpoint 'one' holds the DVD medium" in err and a in err and
          "No such file" in err, "apply without a.iso: %r" % err)
    after = e.vm("d1")
    check(after["state"] == "Off" and medium() == b and
          after["disks"][0]["path"] == before["disks"][0]["path"],
          "the refused apply changed something: %r" % after)
    os.rename(a + ".away", a)
    # A Saved VM's medium stays: eject and another image are refused, saying why.
    e.keel("checkpoint", "apply", "d1", "one")
    for args in (["--eject"], ["--dvd", b]):
        _, err = e.keel("vm", "set", "d1", *args, want=5)
        check("while it is Saved" in err and a in err and "discard-state" in err,
              "set %r of a Saved VM: %r" % (args, err))
        check(e.vm("d1")["state"] == "Saved" and medium() == a,
              "the refused change changed something: %r" % e.vm("d1"))
    restored_typing(e, "d1", "abc", "-mno")
    # The plain save: the same.
    e.start("d1")
    e.keel("vm", "save", "d1")
    e.wait_state("d1", "Saved")
    _, err = e.keel("vm", "set", "d1", "--eject", want=5)
    check("while it is Saved" in err, "eject of a saved VM: %r" % err)
    e.keel("vm", "discard-state", "d1")
    e.keel("vm", "set", "d1", "--eject")
    check(medium() is None, "eject after discard-state: %r" % e.vm("d1")["scsi"])
    e.keel("checkpoint", "delete", "d1", "one")
    e.keel("vm", "delete", "d1")


def case_checkpoint_dvd_damaged_disk(e):
    """An apply drops the current disk unopened, so a VM whose current disk a worker damaged
    can always go back to a checkpoint (docs/checkpoints.md). A checkpoint with
    saved state whose DVD medium must go back in (the drive was ejected since) is applied to a
    VM whose current disk's locator names a FIFO outside every pool: the apply must go ahead."""
    e.start_keeld()
    blk, a = (os.path.join(e.dir, n) for n in ("blk.vhdx", "a.iso"))
    e.keel("disk", "create", blk, "--size", "8M")
    make_iso(a)
    e.create("d1", disks=[{"path": blk}], scsi={"luns": [{"type": "dvd", "path": a}]})
    checkpoint_typing(e, "d1", "one")
    e.keel("vm", "turn-off", "d1")
    e.wait_state("d1", "Off")
    e.keel("vm", "set", "d1", "--eject")
    now = e.vm("d1")["disks"][0]["path"]
    outside = tempfile.mkdtemp(prefix="kdo", dir="/var/tmp")
    fifo = os.path.join(outside, "evil.vhdx")
    os.mkfifo(fifo)
    try:
        set_vhdx_parent_locator(now, fifo)
        _, err = e.keel("checkpoint", "apply", "d1", "one", want=None, timeout=30)
        check(e.vm("d1")["state"] == "Saved" and e.vm("d1")["scsi"]["luns"][0]["path"] == a,
              "apply away from the damaged current disk refused: %r" % err)
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def case_disk_format(e):
    """A disk's format is pinned when it is attached and never guessed from its contents at
    start, which the guest writes (issue 10, docs/vm-config.md): the virtio test guest copies
    a valid VHDX image onto its raw disk; the next start shows it the same raw bytes, and the
    worker opens the disk as raw."""
    vguest = os.path.join(os.path.dirname(os.path.dirname(e.a.guest)), "guests", "virtio.elf")
    check(os.path.exists(vguest), "the virtio test guest %s is not built" % vguest)
    e.start_keeld()
    e.api_ok("POST", "/v1/pools", {"name": "guests", "path": os.path.realpath(
        os.path.dirname(vguest))}, want=201)
    vhdx = os.path.join(e.dir, "real.vhdx")
    e.keel("disk", "create", vhdx, "--size", "16M")
    # The image the guest copies, handed to it as a second, read-only raw disk.
    source = os.path.join(e.dir, "image-source.img")
    shutil.copyfile(vhdx, source)
    image = open(source, "rb").read()
    check(len(image) % 512 == 0 and len(image) <= 32 << 20, "image of %d bytes" % len(image))
    count = len(image) // 512
    written = os.path.join(e.dir, "guest-wrote.img")
    with open(written, "wb") as f:
        f.truncate(32 << 20)
    e.create("g1", kernel=vguest, memory=64 << 20,
             disks=[{"path": written, "format": "raw", "serial": "g1-disk"},
                    {"path": source, "format": "raw", "readonly": True, "serial": "g1-src"}],
             cmdline="mode=blkimage count=%d to=g1-disk from=g1-src" % count)
    e.start("g1")
    e.console_until("g1", r"virtio: blkimage copied %d sectors from g1-src to g1-disk" % count)
    e.keel("vm", "turn-off", "g1")
    e.wait_state("g1", "Off")
    # What the guest wrote is on the host, and it is a valid VHDX: the disk library opens it
    # by its contents as the 16 MiB disk real.vhdx is (all zeros), not the 32 MiB raw file.
    with open(written, "rb") as f:
        head = f.read(len(image))
    check(head == image, "the raw file does not start with the image the guest copied")
    crc = "0x%08x" % zlib.crc32(image)
    r = subprocess.run([e.a.disktool, "dump", written], capture_output=True, timeout=60)
    check(r.returncode == 0 and r.stdout == bytes(16 << 20),
          "the guest-written file does not open as a 16 MiB VHDX (status %d, %d bytes): %s"
          % (r.returncode, len(r.stdout), r.stderr.decode()))
    out, _ = e.keel("disk", "check", written)
    check("dynamic vhdx" in out and "no errors found" in out, "keel disk check: %r" % out)
    # The next start: the guest reads the first sectors back as the raw bytes it wrote.
    e.api_ok("PATCH", "/v1/vms/g1", {"cmdline": "mode=blkimage count=%d to=g1-disk" % count})
    e.start("g1")
    out = e.console_until("g1", r"virtio: blkimage read %d sectors of g1-disk: crc32 "
                          r"0x[0-9a-f]{8}" % count, timeout=60)
    sums = re.findall(r"virtio: blkimage read %d sectors of g1-disk: crc32 (0x[0-9a-f]{8})"
                      % count, out)
    check(sums and sums[-1] == crc, "the guest read back %r, the image is %s" % (sums, crc))
    shown = json.loads(e.keel("vm", "show", "g1", "--json")[0])
    check([d["format"] for d in shown["disks"]] == ["raw", "raw"], "show: %r" % shown["disks"])
    # Nothing parsed it: the worker opened the disk as raw (its log line names the format).
    log = e.keel("vm", "log", "g1")[0]
    check(log.count("%s: virtio-blk (raw)" % written) == 2,
          "the worker did not open %s as raw at both starts: %r" % (written, log))
    check("virtio-blk (vhdx)" not in log, "the worker opened a disk as VHDX: %r" % log)
    e.keel("vm", "turn-off", "g1")
    e.wait_state("g1", "Off")
    e.keel("vm", "delete", "g1")
    plain = os.path.join(e.dir, "plain.vhdx")
    with open(plain, "wb") as f:
        f.truncate(1 << 20)
    e.api_err("POST", "/v1/vms", {"name": "f1", "kernel": e.a.guest, "memory": 16 << 20,
                                 "disks": [{"path": written}]}, want=400,
              msg="begins with a VHDX header but its name does not end in .vhdx")
    e.api_err("POST", "/v1/vms", {"name": "f1", "kernel": e.a.guest, "memory": 16 << 20,
                                 "disks": [{"path": plain}]}, want=400,
              msg="is named as VHDX, but it does not open as one")
    e.api_err("POST", "/v1/vms", {"name": "f1", "kernel": e.a.guest, "memory": 16 << 20,
                                 "disks": [{"path": vhdx, "format": "qcow2"}]}, want=400,
              msg="must be one of raw, vhdx, not 'qcow2'")
    check(e.api_ok("GET", "/v1/vms") == [], "a refused create left a VM")
    vm = e.create("f1", disks=[{"path": written, "format": "raw"}, {"path": vhdx}])
    check([d["format"] for d in vm["disks"]] == ["raw", "vhdx"], "formats: %r" % vm["disks"])
    out, _ = e.keel("vm", "show", "f1")
    check("%s (raw)" % written in out and "%s (vhdx)" % vhdx in out, "show: %r" % out)
    # Listed again without a format, an attached disk keeps its own: nothing is re-read.
    vm = e.api_ok("PATCH", "/v1/vms/f1", {"disks": [{"path": written}, {"path": vhdx}]})
    check([d["format"] for d in vm["disks"]] == ["raw", "vhdx"], "kept: %r" % vm["disks"])
    # The worker is told the format; it does not look.
    vm = e.start("f1")
    doc = json.load(open(os.path.join(e.state, "vms", vm["id"], "config.json")))
    check([d["format"] for d in doc["disks"]] == ["raw", "vhdx"], "config.json: %r" % doc)
    e.keel("vm", "turn-off", "f1")
    # The CLI's ,format= option, and a change of format that the file must back.
    e.keel("vm", "set", "f1", "--disk", written + ",format=vhdx")
    check(e.vm("f1")["disks"][0]["format"] == "vhdx", "set format: %r" % e.vm("f1"))
    e.api_err("PATCH", "/v1/vms/f1", {"disks": [{"path": plain, "format": "vhdx"}]},
              want=400, msg="is given as VHDX, but it does not open as one")
    e.keel("vm", "set", "f1", "--disk", plain + ",format=raw")
    check(e.vm("f1")["disks"][0]["format"] == "raw", "raw by request: %r" % e.vm("f1"))
    # A schema 2 store (no formats): each disk's format is pinned by its name (.vhdx: vhdx,
    # else raw), never by its contents, which keeld would read as root and its guest wrote:
    # the raw guest-wrote.img, which holds a valid VHDX now, stays raw.
    e.keel("vm", "set", "f1", "--disk", written + ",format=raw", "--disk", vhdx)
    # A VM whose disk is in a pool that refuses it now (swapped for a symlink inside the
    # default pool): the upgrade makes no second pool for the directory it is in.
    inpool = os.path.join(e.state, "pools", "default", "f2.img")
    with open(inpool, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(inpool, 0o600)
    e.create("f2", disks=[{"path": inpool}])
    e.kill_keeld(signal.SIGTERM)
    os.rename(inpool, inpool + ".real")
    os.symlink(os.path.basename(inpool) + ".real", inpool)
    db = os.path.join(e.state, "keel.db")
    # ... and from before pools: the directories its VMs use become pools.
    r = subprocess.run(["sqlite3", db, UNDO_SCHEMA_13 + UNDO_SCHEMA_12 + UNDO_SCHEMA_11 + UNDO_SCHEMA_10 + UNDO_SCHEMA_9 + "ALTER TABLE disks DROP COLUMN format;"
                        "ALTER TABLE disks DROP COLUMN cache;"
                        "ALTER TABLE nics DROP COLUMN switch; ALTER TABLE nics DROP COLUMN vlan;"
                        "ALTER TABLE nics DROP COLUMN guards; DROP TABLE switches;"
                        "ALTER TABLE checkpoints DROP COLUMN type;"
                        "ALTER TABLE nics DROP COLUMN vlan_trunk; ALTER TABLE nics DROP COLUMN native_vlan;"
                        "ALTER TABLE nics DROP COLUMN bw_out; ALTER TABLE nics DROP COLUMN bw_in;"
                        "DELETE FROM pools WHERE name='test'; PRAGMA user_version=2;"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "sqlite3: %s" % r.stderr)
    e.start_keeld()
    adopted = [p for p in e.api_ok("GET", "/v1/pools") if p["name"].startswith("migrated-")]
    check([p["path"] for p in adopted] == [os.path.realpath(e.dir)], "adopted: %r" % adopted)
    check([d["format"] for d in e.vm("f1")["disks"]] == ["raw", "vhdx"],
          "formats after the upgrade: %r" % e.vm("f1")["disks"])
    # ... but the raw one that starts as a VHDX is named, with the command to change it.
    log = open(e.keeld_log).read()
    check(("VM f1: disk %s is pinned raw by its name but starts with VHDX's signature; if it "
           "is a VHDX: keel vm set f1 --disk %s,format=vhdx" % (written, written)) in log and
          ("disk %s is pinned raw" % vhdx) not in log, "no warning of the VHDX pinned raw")


def case_description(e):
    """One description from the API to the worker: strings arrive as themselves, PCI slots
    are assigned once and kept (docs/vm-config.md)."""
    e.start_keeld()
    decoy = os.path.join(e.dir, "decoy.img")
    # A path that an option splitter would read as "path=.../d,readonly=on,path=DECOY".
    odd = os.path.join(e.dir, "d,readonly=on,path=" + decoy)
    extra = os.path.join(e.dir, "extra.img")
    os.makedirs(os.path.dirname(odd))
    for path in (decoy, odd, extra):
        with open(path, "wb") as f:
            f.truncate(1 << 20)
    vm = e.create("d1", disks=[{"path": odd}], nets=[{"tap": "kd0"}])
    check(vm["disks"][0]["path"] == odd and not vm["disks"][0]["readonly"],
          "a comma path was changed: %r" % vm["disks"])
    slots = (vm["disks"][0]["pci_slot"], vm["nets"][0]["pci_slot"], vm["rng"]["pci_slot"])
    check(slots == (1, 2, 3), "first slots: %r" % (slots,))
    mac = vm["nets"][0]["mac"]
    # A disk added in front, and the old one moved behind it: nothing the guest saw moves.
    vm = e.api_ok("PATCH", "/v1/vms/d1", {"disks": [{"path": extra}, {"path": odd}]})
    check(vm["disks"][1]["pci_slot"] == 1 and vm["nets"][0]["pci_slot"] == 2 and
          vm["rng"]["pci_slot"] == 3 and vm["disks"][0]["pci_slot"] == 4 and
          vm["nets"][0]["mac"] == mac, "slots moved after adding a disk: %r" % vm)
    e.api_err("PATCH", "/v1/vms/d1", {"disks": [{"path": extra, "pci_slot": 2}]}, want=400,
              msg="both ask for PCI slot 2")
    e.api_err("PATCH", "/v1/vms/d1", {"nets": [{"tap": "kd0", "pci_slot": 31}]}, want=400,
              msg="between 1 and 30")
    vm = e.start("d1")
    # The worker opened exactly the files of the description, the comma path included.
    opened = set(open_files(vm["pid"]))
    check(odd in opened and extra in opened and decoy not in opened,
          "keel-vmm opened %r" % sorted(p for p in opened if p.startswith(e.dir)))
    # keeld opened them and passed them: the worker was given descriptors, not names to open
    # (and the sockets it serves, which keeld made).
    argv = open("/proc/%d/cmdline" % vm["pid"], "rb").read().split(b"\0")
    passed = sorted(a.decode() for a in argv if a.startswith(b"--fd="))
    check(passed == ["--fd=config=10", "--fd=control=8", "--fd=disk.0=4", "--fd=disk.1=5",
                     "--fd=kernel=3", "--fd=kvm=6", "--fd=net.0=7", "--fd=serial=9",
                     "--fd=status=11"], "fds: %r" % passed)
    check(os.readlink("/proc/%d/fd/4" % vm["pid"]) == extra and
          os.readlink("/proc/%d/fd/5" % vm["pid"]) == odd, "descriptors 4 and 5")
    e.keel("vm", "turn-off", "d1")
    e.wait_state("d1", "Off")
    # Saved-state sections are named by slot: removing a disk renames no other section.
    names = saved_sections(e, "d1")
    check({"virtio-blk.01", "virtio-blk.04", "virtio-net.02", "virtio-rng.03", "pci",
           "memory", "config"} <= set(names), "sections with two disks: %r" % names)
    e.api_ok("PATCH", "/v1/vms/d1", {"disks": [{"path": odd}]})
    fewer = saved_sections(e, "d1")
    check(fewer == [n for n in names if n != "virtio-blk.04"],
          "sections after removing the disk at slot 4: %r, before %r" % (fewer, names))
    vm = e.api_ok("PATCH", "/v1/vms/d1", {"disks": [{"path": extra}, {"path": odd}]})
    check([d["pci_slot"] for d in vm["disks"]] == [4, 1], "disk slots: %r" % vm["disks"])
    again = saved_sections(e, "d1")
    check(again == names, "sections after adding it back: %r, at first %r" % (again, names))
    # A damaged disk: the API says what the disk library found, not "Invalid argument",
    # at attach, and at start when it was damaged after.
    bad = os.path.join(e.dir, "bad.vhdx")
    with open(bad, "wb") as f:
        f.write(b"vhdxfile")
        f.truncate(4 << 20)
    e.api_err("POST", "/v1/vms", {"name": "dbad", "kernel": e.a.guest, "disks": [{"path": bad}]},
              want=400, msg="both VHDX headers are invalid (header 1: no 'head' signature")
    os.unlink(bad)
    e.keel("disk", "create", bad, "--size", "4M")
    e.create("dbad", disks=[{"path": bad}])
    with open(bad, "r+b") as f:  # both headers, at 64 and 128 KiB
        for off in (64 << 10, 128 << 10):
            f.seek(off)
            f.write(bytes(4096))
    _, err = e.keel("vm", "start", "dbad", want=None)
    vm = e.wait_state("dbad", "Off")
    check("both VHDX headers are invalid (header 1: no 'head' signature" in err + vm["state_reason"],
          "damaged disk: %r %r" % (err, vm["state_reason"]))
    # More of the disk library's own reasons, each as the API's message (issue 9): a block
    # size in the metadata that is not a power of 2, a differencing disk whose parent is
    # gone, and a block size refused when keeld creates a disk.
    odd_bs = os.path.join(e.dir, "bs.vhdx")
    e.keel("disk", "create", odd_bs, "--size", "8M")
    set_vhdx_block_size(odd_bs, 3 << 20)
    e.api_err("POST", "/v1/vms", {"name": "dbs", "kernel": e.a.guest, "disks": [{"path": odd_bs}]},
              want=400, msg="%s: VHDX metadata: block size 3145728 is not a power of 2 "
                            "from 1 MiB to 256 MiB" % odd_bs)
    base = os.path.join(e.dir, "gone-base.vhdx")
    orphan = os.path.join(e.dir, "orphan.vhdx")
    e.keel("disk", "create", base, "--size", "8M")
    e.keel("disk", "create", orphan, "--parent", base)
    os.unlink(base)
    e.api_err("POST", "/v1/vms", {"name": "dorph", "kernel": e.a.guest,
                                  "disks": [{"path": orphan}]},
              want=400, msg="%s: parent disk not found (its locator names '%s'" % (orphan, base))
    e.api_err("POST", "/v1/pools/test/disks", {"name": "b3.vhdx", "size": 8 << 20,
                                               "block_size": 3 << 20},
              want=400, msg="cannot create %s: block size must be a power of 2 from 1 MiB "
                            "to 256 MiB" % os.path.join(os.path.realpath(e.dir), "b3.vhdx"))
    check(not os.path.exists(os.path.join(e.dir, "b3.vhdx")), "a refused disk was created")
    # Devices without columns of their own are kept as their field's JSON (store_devices.c):
    # a schema-6 store's vsock table moves there, and the VM keeps its device as it was; so do
    # a schema-8 store's console and rng columns (this VM has a console and no rng).
    dv = e.create("dv", vsock={"cid": 4242}, virtio_console={}, rng=None)
    check(dv["rng"] is None and dv["virtio_console"]["pci_slot"] > 0, "console, rng: %r" % dv)
    check(dv["vsock"]["cid"] == 4242 and dv["vsock"]["pci_slot"] > 0, "vsock: %r" % dv)
    e.kill_keeld(signal.SIGTERM)
    db = os.path.join(e.state, "keel.db")
    rows = sqlite(db, "SELECT field, doc FROM devices WHERE field = 'vsock'")
    check(rows == 'vsock|{"cid":4242,"pci_slot":%d}' % dv["vsock"]["pci_slot"],
          "the devices table: %r" % rows)
    sqlite(db, UNDO_SCHEMA_13 + UNDO_SCHEMA_12 + UNDO_SCHEMA_11 + UNDO_SCHEMA_10 + UNDO_SCHEMA_9 +
           "CREATE TABLE vsock(vm TEXT PRIMARY KEY REFERENCES vms(uuid) ON DELETE CASCADE,"
           " cid INTEGER NOT NULL, pci_slot INTEGER NOT NULL DEFAULT 0);"
           "INSERT INTO vsock SELECT vm, json_extract(doc, '$.cid'),"
           " json_extract(doc, '$.pci_slot') FROM devices WHERE field = 'vsock';"
           "DROP TABLE devices;"
           "ALTER TABLE nics DROP COLUMN vlan_trunk; ALTER TABLE nics DROP COLUMN native_vlan;"
           "ALTER TABLE nics DROP COLUMN bw_out; ALTER TABLE nics DROP COLUMN bw_in;"
           "PRAGMA user_version=6;")
    e.start_keeld()
    check(e.vm("dv")["vsock"] == dv["vsock"], "vsock after the upgrade from schema 6: %r, was %r"
          % (e.vm("dv")["vsock"], dv["vsock"]))
    for field in ("virtio_console", "rng"):
        check(e.vm("dv")[field] == dv[field], "%s after the upgrade from schema 6: %r, was %r"
              % (field, e.vm("dv")[field], dv[field]))
    e.api_ok("DELETE", "/v1/vms/dv")
    # A store written before slots were recorded (schema 1): its VMs keep the layout the
    # worker always gave them (disks, adapters, rng), and the store is upgraded in place; a
    # checkpoint made before types were recorded (schema 5) reads back as standard.
    dcdisk = os.path.join(e.dir, "dc.vhdx")
    e.keel("disk", "create", dcdisk, "--size", "8M")
    e.create("dc", disks=[{"path": dcdisk}])
    e.keel("checkpoint", "create", "dc", "--name", "old")
    check(ckpts(e, "dc")["old"]["type"] == "production", "an Off VM's checkpoint: %r" %
          ckpts(e, "dc"))
    e.kill_keeld(signal.SIGTERM)
    sqlite(db, UNDO_SCHEMA_13 + UNDO_SCHEMA_12 + UNDO_SCHEMA_11 + UNDO_SCHEMA_10 + UNDO_SCHEMA_9 +
           "ALTER TABLE disks DROP COLUMN pci_slot; ALTER TABLE disks DROP COLUMN serial;"
           "ALTER TABLE disks DROP COLUMN format; ALTER TABLE disks DROP COLUMN cache;"
           "ALTER TABLE nics DROP COLUMN pci_slot; ALTER TABLE vms DROP COLUMN console_slot;"
           "ALTER TABLE vms DROP COLUMN rng_slot; ALTER TABLE vms DROP COLUMN debug_exit;"
           "ALTER TABLE nics DROP COLUMN switch; ALTER TABLE nics DROP COLUMN vlan;"
           "ALTER TABLE nics DROP COLUMN guards; DROP TABLE switches;"
           "ALTER TABLE checkpoints DROP COLUMN type;"
           "ALTER TABLE nics DROP COLUMN vlan_trunk; ALTER TABLE nics DROP COLUMN native_vlan;"
           "ALTER TABLE nics DROP COLUMN bw_out; ALTER TABLE nics DROP COLUMN bw_in;"
           "PRAGMA user_version=1;")
    e.start_keeld()
    vm = e.vm("d1")
    check([d["pci_slot"] for d in vm["disks"]] == [1, 2] and vm["nets"][0]["pci_slot"] == 3
          and vm["rng"]["pci_slot"] == 4, "schema 1 VM's slots: %r" % vm)
    version = sqlite(db, "PRAGMA user_version")
    check(version == "13", "store schema after upgrade: %r" % version)
    check(ckpts(e, "dc")["old"]["type"] == "standard",
          "a checkpoint from before types after the upgrade: %r" % ckpts(e, "dc"))
    # A VM at every device limit at once (16 disks, 8 adapters, rng) really starts.
    disks = []
    for i in range(16):
        path = os.path.join(e.dir, "max%d.img" % i)
        with open(path, "wb") as f:
            f.truncate(1 << 20)
        disks.append({"path": path})
    e.api_err("POST", "/v1/vms", {"name": "d3", "kernel": e.a.guest,
                                  "disks": disks + [{"path": decoy}]},
              want=400, msg="at most 16 disks")
    vm = e.create("d2", disks=disks, nets=[{"tap": "kdm%d" % i} for i in range(8)],
                  virtio_console={})
    check(sorted(d["pci_slot"] for d in vm["disks"]) == list(range(1, 17)) and
          sorted(n["pci_slot"] for n in vm["nets"]) == list(range(17, 25)) and
          vm["virtio_console"]["pci_slot"] == 25 and vm["rng"]["pci_slot"] == 26,
          "slots of a full VM: %r" % vm)
    vm = e.start("d2")
    e.console_until("d2", r"daemon-guest: ready for input")
    # Both consoles are the administrators' (group access once the worker runs).
    for sock in ("serial.sock", "hvc0.sock"):
        mode = stat.S_IMODE(os.stat(os.path.join(e.state, "vms", vm["id"], sock)).st_mode)
        check(mode == 0o660, "%s mode %o" % (sock, mode))
    e.keel("vm", "turn-off", "d2")


def case_admission(e):
    """keeld refuses to start a VM whose memory the host cannot back beside the running ones
    and its reserve, and says how much is missing (docs/keeld.md)."""
    with open("/proc/meminfo") as f:
        total_kib = int(re.search(r"MemTotal:\s+(\d+) kB", f.read()).group(1))
    # Room for 120.25 MiB, in KiB so that MemTotal's part of a MiB does not count: one 16 MiB
    # VM (16 + 64.125 for its worker, sup.h's SUP_VMM_ALLOWANCE) fits, a second is exactly
    # 40 MiB short.
    e.start_keeld(extra=["--host-reserve", "%dK" % (total_kib - 120 * 1024 - 256)])
    e.create("m1")
    e.create("m2")
    e.start("m1")
    _, err = e.keel("vm", "start", "m2", want=1)
    check("cannot start VM 'm2': it needs 80 MiB (16 MiB of memory and 64 MiB for its worker)"
          in err and "taken by 1 running VM: 40 MiB are missing" in err,
          "admission refusal: %r" % err)
    e.api_err("POST", "/v1/vms/m2/start", {}, want=507, msg="40 MiB are missing")
    check(e.vm("m2")["state"] == "Off", "a refused VM is %s" % e.vm("m2")["state"])
    e.keel("vm", "turn-off", "m1")
    e.wait_state("m1", "Off")
    e.start("m2")
    e.keel("vm", "turn-off", "m2")


TIMED_BOUND = 3.0  # seconds: generous for a tiny guest under ASan, but finite


def timed(what, fn, limit=TIMED_BOUND, why="while another VM's worker was stopped"):
    """fn(), checked to take less than limit seconds."""
    t0 = time.time()
    r = fn()
    dt = time.time() - t0
    check(dt < limit, "%s took %.2f s (bound %.1f s) %s" % (what, dt, limit, why))
    return r


def case_nonblocking(e):
    """keeld never waits on one worker while others need it (docs/keeld.md, "Jobs"): with
    one VM's worker stopped (SIGSTOP), its save is a job that runs on, and another VM
    starts, is listed and turned off with normal latency; a second operation on the busy VM
    is refused naming the job; the save finishes once the worker runs again."""
    bound = TIMED_BOUND
    e.start_keeld()
    e.create("b1", memory=64 << 20)
    e.create("b2")
    vm = e.start("b1")
    e.console_until("b1", r"daemon-guest: ready for input")
    os.kill(vm["pid"], signal.SIGSTOP)
    try:
        # A plain request to the stopped worker waits for it on its own connection only.
        slow = threading.Thread(target=lambda: e.curl("POST", "/v1/vms/b1/pause", {}))
        slow.start()
        time.sleep(0.3)
        timed("listing VMs during a pause of a stopped worker",
              lambda: e.api_ok("GET", "/v1/vms"), 1.0)
        slow.join(timeout=30)
        reply = timed("starting a save of the stopped worker",
                      lambda: e.api_ok("POST", "/v1/vms/b1/save", {}, want=202))
        job = reply["job"]
        check(job["state"] == "running" and job["operation"] == "save" and
              job["progress"]["bytes_total"] == 64 << 20, "save job: %r" % job)
        timed("listing VMs during the save", lambda: e.api_ok("GET", "/v1/vms"))
        timed("starting another VM during the save", lambda: e.start("b2"))
        e.console_until("b2", r"daemon-guest: ready for input")
        e.api_err("POST", "/v1/vms/b1/turn-off", {}, want=409, msg="busy (save (job %d))" %
                  job["id"])
        check(e.api_ok("GET", job["href"])["state"] == "running", "the job ended early")
        timed("turning the other VM off during the save",
              lambda: e.keel("vm", "turn-off", "b2"))
        check(e.vm("b2")["state"] == "Off", "b2 is %s" % e.vm("b2")["state"])
    finally:
        os.kill(vm["pid"], signal.SIGCONT)
    deadline = time.time() + 60
    while True:
        j = e.api_ok("GET", job["href"])
        if j["state"] != "running" or time.time() > deadline:
            break
        time.sleep(0.1)
    check(j["state"] == "succeeded" and j["progress"]["percent"] == 100 and j["finished"],
          "save job after SIGCONT: %r" % j)
    check(e.wait_state("b1", "Saved")["state"] == "Saved", "b1 is not Saved")
    listed = e.api_ok("GET", "/v1/jobs")
    check([x["id"] for x in listed] == [job["id"]], "jobs: %r" % listed)
    e.api_err("GET", "/v1/jobs/999", want=404, msg="no job 999")
    # The CLI follows the job: save, then start (restores) and save again through keel.
    e.start("b1")
    e.keel("vm", "save", "b1")
    check(e.vm("b1")["state"] == "Saved", "keel vm save: %s" % e.vm("b1")["state"])


def case_host_shutdown(e):
    """`keel host shutdown` applies each running VM's automatic stop action within a bounded
    time, and the next keeld applies the automatic start actions (docs/keeld.md)."""
    e.start_keeld()
    e.create("h1", automatic_stop_action="turn-off", automatic_start_action="start-if-running")
    e.create("h2", automatic_stop_action="save", automatic_start_action="start-if-running")
    e.create("h3", automatic_stop_action="shut-down", automatic_start_action="nothing")
    e.create("h4", cmdline="button=ignore", automatic_stop_action="shut-down",
             automatic_start_action="start-if-running")
    e.create("h5", automatic_start_action="start-if-running")  # never started: stays Off
    workers = []
    for n in ("h1", "h2", "h3", "h4"):
        workers.append(e.start(n)["pid"])
        e.console_until(n, r"daemon-guest: ready for input")
    t0 = time.time()
    out, _ = e.keel("host", "shutdown", "--timeout", "3")
    took = time.time() - t0
    rows = {l.split()[0]: l.split(None, 3)[1:] for l in out.splitlines() if l.strip()}
    check(sorted(rows) == ["h1", "h2", "h3", "h4"], "host shutdown report: %r" % out)
    check(rows["h1"][:2] == ["turn-off", "Off"] and rows["h2"][:2] == ["save", "Saved"] and
          rows["h3"][:2] == ["shut-down", "Off"] and rows["h4"][:2] == ["shut-down", "Off"],
          "host shutdown outcomes: %r" % out)
    check("power button" in rows["h3"][2] and "did not shut down within 3 s" in rows["h4"][2],
          "host shutdown reasons: %r" % out)
    check(took < 20, "host shutdown took %.1f s" % took)
    # keeld's work is done once the VMs are: having given out the report, it exits, with 0.
    e.keeld_exits(0, "after the host shutdown")
    check(not os.path.exists(e.sock), "keeld left its API socket behind")
    check("the host shutdown is done (no VM runs): exiting" in open(e.keeld_log).read(),
          "keeld's log does not say why it exited")
    for pid in workers:
        check(not pid_alive(pid), "worker %d outlived the host shutdown" % pid)
    # The next keeld starts what was running and has start-if-running; h2 from its save.
    e.start_keeld()
    for n in ("h1", "h2", "h4"):
        vm = e.wait_state(n, "Running")
        check(vm["state"] == "Running", "%s after keeld start: %r" % (n, vm))
        e.pids.add(vm["pid"])
    check(e.vm("h2")["state_reason"] == "restored from its saved state",
          "h2: %r" % e.vm("h2")["state_reason"])
    check(e.vm("h3")["state"] == "Off" and e.vm("h5")["state"] == "Off",
          "h3/h5 started: %s %s" % (e.vm("h3")["state"], e.vm("h5")["state"]))
    # Through the API: once the shutdown's job has ended (seen in the event stream, not by
    # reading the job), no VM starts; reading the job ends keeld.
    since = e.api_ok("GET", "/v1/events?since=0")["next"]
    job = e.api_ok("POST", "/v1/host/shutdown", {"timeout": 3}, want=202)
    done = None
    while not done:
        r = e.api_ok("GET", "/v1/events?since=%d&wait=30" % since)
        since = r["next"]
        done = [x for x in r["events"] if x["kind"] == "job" and x["job"] == job["id"] and
                x["state"] != "running"]
    check(done[0]["state"] == "succeeded", "the second host shutdown: %r" % done)
    e.api_err("POST", "/v1/vms/h3/start", {}, want=503, msg="the host is shutting down")
    check(e.keeld_proc.poll() is None, "keeld exited before its report was read")
    report = e.api_ok("GET", job["href"])
    check(sorted(v["name"] for v in report["result"]) == ["h1", "h2", "h4"],
          "the second report: %r" % report)
    e.keeld_exits(0, "after the second host shutdown's report was read")


def case_events(e):
    """GET /v1/events (long-poll) and `keel vm list --watch` see every state change and job
    as it happens (docs/keeld.md, "Events")."""
    e.start_keeld()
    e.create("ev1")
    now = e.api_ok("GET", "/v1/events?since=0&wait=0")
    check(now["events"] == [] and now["next"] > 0 and not now["lost"], "fresh events: %r" % now)
    # A number from another keeld run (earlier or later) says events were lost.
    for other in (1, now["next"] + 1000):
        r = e.api_ok("GET", "/v1/events?since=%d" % other)
        check(r["lost"] and r["next"] == now["next"], "since=%d: %r" % (other, r))
    env = dict(os.environ, KEEL_SOCKET=e.sock)
    watch = subprocess.Popen([e.a.keel, "vm", "list", "--watch"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, text=True)
    try:
        # A long-poll from now returns as soon as the start happens, not after its wait.
        got = {}
        poll = threading.Thread(target=lambda: got.update(
            r=e.api_ok("GET", "/v1/events?since=%d&wait=40" % now["next"])))
        poll.start()
        time.sleep(0.5)
        t0 = time.time()
        e.start("ev1")
        poll.join(timeout=45)
        check(time.time() - t0 < 5 and got.get("r"), "the long-poll did not return promptly")
        first = got["r"]["events"]
        check(first and first[0]["vm"] == "ev1" and first[0]["state"] == "Starting" and
              first[0]["kind"] == "vm", "first event: %r" % first)
        e.console_until("ev1", r"daemon-guest: ready for input")
        e.keel("vm", "save", "ev1")
        e.keel("vm", "discard-state", "ev1")
        evs = e.api_ok("GET", "/v1/events?since=%d" % now["next"])["events"]
        seen = [(x["kind"], x["state"]) for x in evs]
        for want in [("vm", "Starting"), ("vm", "Running"), ("job", "running"),
                     ("job", "succeeded"), ("vm", "Saved"), ("vm", "Off")]:
            check(want in seen, "event %r missing from %r" % (want, seen))
        check([x["seq"] for x in evs] == sorted(x["seq"] for x in evs), "events out of order")
        e.api_err("GET", "/v1/events?wait=100", want=400, msg="wait=SEC (0 to 50)")
        time.sleep(1)
    finally:
        watch.terminate()
        out, err = watch.communicate(timeout=10)
    lines = out.splitlines()
    check(lines and lines[0].startswith("NAME") and "ev1" in lines[1], "watch list: %r" % out)
    check(any("ev1: Running" in l for l in lines) and
          any("job" in l and "save ev1: succeeded" in l for l in lines) and
          any("ev1: Off: saved state discarded" in l for l in lines),
          "keel vm list --watch printed: %r (stderr %r)" % (out, err))


def start_blk_guest(e, name, args, vhdx=False):
    """Start keeld with the thread-pool block back end (KEEL_BLKIO=threads, inherited by its
    workers: a stopped pool thread holds its requests, io_uring's are the kernel's) and VM
    name running the virtio test guest in mode=blk on a 64 MiB disk (raw, or VHDX: one a
    checkpoint takes), with the guest's extra args; returns the VM once the guest waits for
    a key before its first request."""
    vguest = os.path.join(os.path.dirname(os.path.dirname(e.a.guest)), "guests", "virtio.elf")
    check(os.path.exists(vguest), "the virtio test guest %s is not built" % vguest)
    os.environ["KEEL_BLKIO"] = "threads"
    e.start_keeld()
    e.api_ok("POST", "/v1/pools", {"name": "guests", "path": os.path.realpath(
        os.path.dirname(vguest))}, want=201)
    disk = os.path.join(e.dir, name + (".vhdx" if vhdx else ".img"))
    if vhdx:
        e.keel("disk", "create", disk, "--size", "64M")
    else:
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
    e.create(name, kernel=vguest, memory=64 << 20,
             disks=[{"path": disk, "serial": name + "-1"}],
             cmdline="mode=blk sectors=131072 serial=%s-1 wait=key %s" % (name, args))
    vm = e.start(name)
    e.console_until(name, r"virtio: blk waits for a key")
    return vm


# The disk under storage QoS in the disk-qos cases: a virtio-blk disk the virtio test guest
# keeps full on two queues (mode=blkmq), or a disk at LUN 0 of the SCSI controller with a ring
# of reads in flight (mode=scsi). "ref": how keel vm disk names it; "lacks": a disk the VM
# lacks; "key": its field in events and disks_below_min_iops.
QOS_BUSES = {
    "blk": {"ref": "0", "lacks": "3", "key": "disk",
            "cmdline": lambda hog: "mode=blkmq queues=2 slow=100 rounds=%d" % (3 if hog else 1)},
    "scsi": {"ref": "scsi:0", "lacks": "scsi:3", "key": "lun",
             "cmdline": lambda hog: "mode=scsi slow=100 requests=%d" % (400 if hog else 100)},
}


def qos_disk_of(vm, bus):
    """The description's disk under QoS (its virtio-blk disk 0, or its SCSI LUN 0)."""
    return vm["disks"][0] if bus == "blk" else vm["scsi"]["luns"][0]


def qos_disk_patch(d, bus):
    """A PATCH of the VM's description that gives it disk d in place of the one under QoS."""
    return {"disks": [d]} if bus == "blk" else {"scsi": {"luns": [d]}}


def disk_qos_case(e, bus):
    """Storage QoS (issue 16, Set-VMHardDiskDrive -MaximumIOPS) on a disk of bus (QOS_BUSES):
    two VMs on the virtio test guest, one of them limited to 10 I/Os per second. The other's
    I/O completes; the limited one's device counters (keel vm disk show, from its worker)
    show requests that waited and never more I/Os than the limit allows; `keel vm disk set`
    raises the limit on the running VM (the counters and the stored description show it, bad
    values are refused with a reason), and the next start's worker has it; a minimum the disk
    does not get is an event and shows in keel vm show. No timing thresholds: the bound only
    loosens with a slow host."""
    qb = QOS_BUSES[bus]
    ref = qb["ref"]
    vguest = os.path.join(os.path.dirname(os.path.dirname(e.a.guest)), "guests", "virtio.elf")
    check(os.path.exists(vguest), "the virtio test guest %s is not built" % vguest)
    e.start_keeld()
    e.api_ok("POST", "/v1/pools", {"name": "guests", "path": os.path.realpath(
        os.path.dirname(vguest))}, want=201)
    for name, qos in (("hog", {"max_iops": 10}), ("calm", {})):
        disk = os.path.join(e.dir, name + ".img")
        with open(disk, "wb") as f:
            f.truncate(64 << 20)
        where = ({"disks": [dict({"path": disk}, **qos)]} if bus == "blk" else
                 {"scsi": {"luns": [dict({"type": "disk", "path": disk}, **qos)]}})
        e.create(name, kernel=vguest, memory=64 << 20, cpus=2,
                 cmdline=qb["cmdline"](name == "hog"), **where)
    t0 = time.monotonic()
    e.start("hog")
    e.start("calm")
    e.console_until("calm", r"virtio: PASS", timeout=120)
    show = json.loads(e.keel("vm", "disk", "show", "hog", ref, "--json")[0])
    elapsed = time.monotonic() - t0
    q = show["qos"]
    check(show["max_iops"] == 10 and q["throttled"] > 0,
          "the limited disk's requests never waited: %r" % show)
    check(q["ios"] <= 10 + 10 * elapsed,
          "%d I/Os served in %.1f s with max_iops 10: %r" % (q["ios"], elapsed, show))
    # Refused with a reason, nothing changed.
    _, err = e.keel("vm", "disk", "set", "hog", ref, "--min-iops", "500", want=2)
    check("min_iops 500 is above max_iops 10" in err, "a minimum above the maximum: %r" % err)
    _, err = e.keel("vm", "disk", "set", "hog", ref, "--max-bandwidth", "5X", want=2)
    check("--max-bandwidth" in err and "bytes per second" in err, "a bad bandwidth: %r" % err)
    _, err = e.keel("vm", "disk", "set", "hog", qb["lacks"], "--max-iops", "5", want=4)
    check("no disk " + qb["lacks"] in err, "a disk the VM lacks: %r" % err)
    # Raised at run time: the worker's counters and the description show it at once.
    t_set = time.monotonic()
    out = json.loads(e.keel("vm", "disk", "set", "hog", ref, "--max-iops", "40",
                            "--max-bandwidth", "50M", "--json")[0])
    check(out["max_iops"] == 40 and out["max_bandwidth"] == 50 << 20 and out["qos"],
          "after keel vm disk set: %r" % out)
    base = out["qos"]["ios"]
    d = qos_disk_of(e.vm("hog"), bus)
    check(d.get("max_iops") == 40 and d.get("max_bandwidth") == 50 << 20,
          "the stored description after keel vm disk set: %r" % d)
    e.console_until("hog", r"virtio: PASS", timeout=120)
    show = json.loads(e.keel("vm", "disk", "show", "hog", ref, "--json")[0])
    elapsed = time.monotonic() - t_set
    check(show["qos"]["ios"] <= base + 40 + 40 * elapsed and show["qos"]["waiting"] == 0,
          "after the raise: %r (%.1f s)" % (show, elapsed))
    text = e.keel("vm", "disk", "show", "hog", ref)[0]
    check("Maximum IOPS:   40" in text and "Max bandwidth:  50M/s" in text and
          "Throttled:" in text, "keel vm disk show: %r" % text)
    text = e.keel("vm", "show", "hog")[0]
    check("(QoS: max 40 IOPS, max 50M/s, min none IOPS)" in text, "keel vm show: %r" % text)
    # Saved and restored (the guest's test is over: it counts its interrupts, and a restore
    # owes it one): the limits are configuration, the restored worker has them.
    e.keel("vm", "save", "hog")
    check(e.vm("hog")["state"] == "Saved", "after save: %r" % e.vm("hog")["state"])
    e.start("hog")
    out = json.loads(e.keel("vm", "disk", "show", "hog", ref, "--json")[0])
    check(out["max_iops"] == 40 and out["max_bandwidth"] == 50 << 20 and out["qos"] and
          out["qos"]["waiting"] == 0, "after the restore: %r" % out)
    # Kept for the next start.
    e.keel("vm", "turn-off", "hog")
    e.keel("vm", "turn-off", "calm")
    text = e.keel("vm", "disk", "show", "hog", ref)[0]
    check("Maximum IOPS:   40" in text and "not running" in text, "off: %r" % text)
    since = e.api_ok("GET", "/v1/events?since=0")["next"]
    e.start("hog")
    log = e.keel("vm", "log", "hog")[0]
    check(re.search(r"QoS max-iops 40, max-bandwidth 52428800 bytes/s", log),
          "the next start's worker does not have the limits: %r" % log[-3000:])
    # The VM's whole description changed (PATCH /v1/vms/NAME with its disks): the running
    # worker takes the new limit too.
    d = qos_disk_of(e.vm("hog"), bus)
    d["max_iops"] = 30
    e.api_ok("PATCH", "/v1/vms/hog", qos_disk_patch(d, bus))
    log = e.keel("vm", "log", "hog")[0]
    check("QoS now max-iops 30," in log, "the worker did not take the PATCH's limit: %r"
          % log[-2000:])
    # Minimum IOPS, as Hyper-V: nothing reserved, a disk that gets less is reported. 4
    # requests of 4 KiB a second (16 KiB/s) while the guest keeps more waiting is below a
    # minimum of 100: an event in keeld's stream and a line in keel vm show. Set on the VM
    # while it is off and started again, so that its guest's test begins under the limit
    # (on a slow host the running guest may have finished its rounds by now, and a disk with
    # nothing outstanding is short of nothing). Only a second with requests waiting all
    # through counts: each round of the guest's 32 requests keeps the disk busy for 7 s at
    # this rate (a burst of 4, then 28 at 4 a second), whatever the host's load does to the
    # guest between rounds; at 64 KiB/s a round was 1 s beyond its burst, and a loaded host
    # could leave no whole busy second.
    e.keel("vm", "turn-off", "hog")
    e.keel("vm", "disk", "set", "hog", ref, "--max-iops", "0", "--max-bandwidth", "16K",
           "--min-iops", "100")
    e.start("hog")
    seen, deadline = [], time.monotonic() + 120
    while not seen and time.monotonic() < deadline:
        r = e.api_ok("GET", "/v1/events?since=%d&wait=10" % since)
        since = r["next"]
        seen = [x for x in r["events"] if x["kind"] == "disk" and x["vm"] == "hog" and
                x["state"] == "below-minimum-iops" and x.get(qb["key"]) == 0]
    check(seen and "minimum IOPS" in seen[0]["reason"],
          "no below-minimum-iops event for hog's disk: %r" % seen)
    show = e.vm("hog")
    text = e.keel("vm", "show", "hog")[0]
    check(show["disks_below_min_iops"] and
          show["disks_below_min_iops"][0].get(qb["key"]) == 0 and
          "disk %s is below its minimum IOPS" % ref in text or
          "minimum-iops-met" in [x["state"] for x in e.api_ok(
              "GET", "/v1/events?since=%d&wait=0" % since)["events"] if x["kind"] == "disk"],
          "keel vm show after the event: %r / %r" % (show.get("disks_below_min_iops"), text))
    q = json.loads(e.keel("vm", "disk", "show", "hog", ref, "--json")[0])["qos"]
    check(q["below_min_seconds"] > 0, "the device counted no second below: %r" % q)
    e.keel("vm", "turn-off", "hog")


def case_disk_qos(e):
    """disk_qos_case on a virtio-blk disk."""
    disk_qos_case(e, "blk")


def case_disk_qos_scsi(e):
    """disk_qos_case on a disk of the SCSI controller (keel vm disk ... scsi:0)."""
    disk_qos_case(e, "scsi")


def case_pause_failure(e):
    """A pause that fails leaves the VM running and says why (issue 9): a device that keeps
    a request in flight (keel-vmm's block I/O threads held with ptrace while the guest's
    first request waits: the thread-pool back end, KEEL_BLKIO=threads, whose requests a
    stopped thread holds; io_uring's are the kernel's) makes `keel vm pause`, `keel vm
    save`, `keel checkpoint create` (leaving no checkpoint; the disk is VHDX so that a
    checkpoint is possible at all) and a restore into the worker (its control "restore")
    fail with the reason, and the VM runs on; released, the guest's I/O completes and it
    finishes its test."""
    # A VHDX zeroes by writing: its bound is BLK_MAX_WZ_WRITTEN sectors in one segment.
    vm = start_blk_guest(e, "pf", "wz_max=65536 wz_segs=1", vhdx=True)
    held = hold_threads(vm["pid"], "blkio-pool")
    try:
        e.type_console("pf", "g")
        e.console_until("pf", r"virtio: blk sends its first request")
        _, err = e.keel("vm", "pause", "pf", want=5)
        check("refused pause" in err and "requests in flight" in err and
              "carries on as before" in err, "a pause that failed says: %r" % err)
        after = e.vm("pf")
        check(after["state"] == "Running" and after["pid"] == vm["pid"],
              "after a failed pause the VM is %s (%s)" % (after["state"], after["state_reason"]))
        _, err = e.keel("vm", "save", "pf", want=None)
        check("cannot pause" in err and "requests in flight" in err,
              "a save that could not pause says: %r" % err)
        after = e.vm("pf")
        check(after["state"] == "Running" and after["pid"] == vm["pid"],
              "after a failed save the VM is %s (%s)" % (after["state"], after["state_reason"]))
        # A checkpoint (a running VM's standard checkpoint saves it) fails cleanly too: no
        # checkpoint is left, and the VM runs on.
        _, err = e.keel("checkpoint", "create", "pf", "--name", "held", "--type", "standard",
                        want=None)
        check("cannot pause" in err and "requests in flight" in err,
              "a checkpoint that could not pause says: %r" % err)
        left = e.api_ok("GET", "/v1/vms/pf/checkpoints")["checkpoints"]
        check(left == [], "a failed checkpoint left %r" % left)
        vmdir = os.path.join(e.state, "vms", vm["id"])
        cdir = os.path.join(vmdir, "checkpoints")
        check(not os.path.isdir(cdir) or not os.listdir(cdir),
              "a failed checkpoint left files: %r" % os.listdir(cdir))
        after = e.vm("pf")
        check(after["state"] == "Running" and after["pid"] == vm["pid"],
              "after a failed checkpoint the VM is %s (%s)"
              % (after["state"], after["state_reason"]))
        # A restore into the running worker (keel-vmm's control "restore": keeld restores
        # only stopped VMs) pauses first, and so fails the same way, changing nothing.
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.settimeout(30)
        ctl.connect(os.path.join(vmdir, "control.sock"))
        ctl.sendall(json.dumps({"execute": "restore", "arguments": {
            "dir": os.path.join(vmdir, "saved")}}).encode() + b"\n")
        reply = json.loads(ctl.makefile("r").readline())
        ctl.close()
        desc = reply.get("error", {}).get("desc", "")
        check("cannot pause" in desc and "requests in flight" in desc,
              "a restore that could not pause says: %r" % reply)
        after = e.vm("pf")
        check(after["state"] == "Running" and after["pid"] == vm["pid"],
              "after a failed restore the VM is %s (%s)"
              % (after["state"], after["state_reason"]))
    finally:
        release_threads(held)
    log = e.console_until("pf", r"virtio: PASS")
    check("virtio: blk writes, flush and reads back ok" in log, "the guest's I/O: %r" % log)
    check(e.vm("pf")["state"] == "Running", "after the guest's test: %r" % e.vm("pf"))
    wlog = e.keel("vm", "log", "pf")[0]
    check("virtio-blk 01: requests still in flight" in wlog,
          "the worker log does not name the device that held the pause: %r" % wlog[-2000:])
    e.keel("vm", "turn-off", "pf")


def case_pause_driver_gone(e):
    """A guest cannot make its VM unpausable (found by review): it takes DRIVER_OK back while
    a disk request is in flight (the thread pool's threads held with ptrace until then); the
    device still answers that chain once it completes, so the next pause and save succeed."""
    vm = start_blk_guest(e, "dg", "drop=driver-ok")
    held = hold_threads(vm["pid"], "blkio-pool")
    try:
        e.type_console("dg", "g")
        e.console_until("dg", r"virtio: blk request posted, waits for a key")
        # The device has taken the chain (keel-vmm's own view, control command "devices").
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.settimeout(30)
        ctl.connect(os.path.join(e.state, "vms", vm["id"], "control.sock"))
        rf = ctl.makefile("r")
        deadline = time.time() + 30
        while True:
            ctl.sendall(b'{"execute":"devices"}\n')
            lines = json.loads(rf.readline())["return"]["devices"]
            m = re.search(r"q0 size \d+ avail (\d+) \(taken (\d+)\) used (\d+)", " ".join(lines))
            if m and m.group(1) == m.group(2) and m.group(3) != m.group(2):
                break  # the write is taken, not answered: in flight
            check(time.time() < deadline, "the device never took the request: %r" % lines)
            time.sleep(0.05)
        ctl.close()
        e.type_console("dg", "d")
        e.console_until("dg", r"virtio: blk took DRIVER_OK back with a request in flight")
    finally:
        release_threads(held)
    time.sleep(0.5)  # the request completes on the released thread
    e.keel("vm", "pause", "dg")
    check(e.vm("dg")["state"] == "Paused", "after the pause: %r" % e.vm("dg"))
    e.keel("vm", "resume", "dg")
    e.keel("vm", "save", "dg")
    check(e.vm("dg")["state"] == "Saved", "after the save: %r" % e.vm("dg"))
    e.keel("vm", "discard-state", "dg")


def case_save_1g(e):
    """A VM with 1 GiB of RAM, every page of it written by the guest, is saved and restored
    with its memory intact; the save job is seen mid-way (keel-vmm stopped with SIGSTOP
    once it has written part of the memory: 0 < bytes_done < bytes_total; GET /v1/events has
    delivered a progress event of the job with 0 < percent < 100) while keeld lists,
    starts and turns off another VM, each within 3 s (the list also while the save writes);
    and `keel vm save --no-wait` returns with the job,
    still running (that VM's worker is stopped), which completes once it runs (issue 9)."""
    e.start_keeld()
    e.create("g1", memory=1 << 30)
    e.create("g2")
    vm = e.start("g1")
    e.console_until("g1", r"daemon-guest: ready for input")
    e.type_console("g1", "fill\n")
    filled = re.search(r"daemon-guest: filled (\d+) pages",
                       e.console_until("g1", r"daemon-guest: filled \d+ pages"))
    pages = int(filled.group(1))
    check(pages >= (1000 << 20) >> 12, "the guest filled only %d pages" % pages)
    since = e.api_ok("GET", "/v1/events?since=0&wait=0")["next"]
    job = e.api_ok("POST", "/v1/vms/g1/save", {}, want=202)["job"]
    tmp = os.path.join(e.state, "vms", vm["id"], "saved", "memory.tmp")
    while True:  # until the job reports at least 1 % written
        j = e.api_ok("GET", job["href"])
        check(j["state"] == "running", "the save ended before it was seen writing: %r" % j)
        if j["progress"]["percent"] > 0 and os.path.exists(tmp):
            break
    # keeld answers while the save is writing: the list within the bound, the job still
    # writing after it.
    names = timed("listing the VMs", lambda: [v["name"] for v in e.api_ok("GET", "/v1/vms")],
                  why="while another VM's save was writing")
    check(names == ["g1", "g2"], "list: %r" % names)
    j = e.api_ok("GET", job["href"])
    check(j["state"] == "running" and j["progress"]["percent"] < 100,
          "the save was no longer writing after the list: %r" % j)
    os.kill(vm["pid"], signal.SIGSTOP)
    try:
        j = e.api_ok("GET", job["href"])
        p = j["progress"]
        check(j["state"] == "running" and p["bytes_total"] == 1 << 30 and
              0 < p["bytes_done"] < p["bytes_total"] and 0 < p["percent"] < 100 and
              p["percent"] == p["bytes_done"] * 100 // p["bytes_total"] and
              p["bytes_done"] <= os.stat(tmp).st_size,
              "the save job mid-way: %r" % j)
        # The event stream carries the job's progress while it runs: an event of the job
        # with 0 < percent < 100 (and its bytes), before any end of it.
        deadline = time.time() + 10
        while True:
            evs = [x for x in e.api_ok("GET", "/v1/events?since=%d&wait=2" % since)["events"]
                   if x["kind"] == "job" and x["job"] == job["id"]]
            prog = [x for x in evs if "progress" in x]
            if any(0 < x["progress"]["percent"] < 100 for x in prog):
                break
            check(time.time() < deadline, "no progress event of the save: %r" % evs)
        check(all(x["state"] == "running" for x in evs), "the save's events: %r" % evs)
        for x in prog:
            q = x["progress"]
            check(q["bytes_total"] == 1 << 30 and 0 <= q["bytes_done"] <= p["bytes_done"] and
                  q["percent"] == q["bytes_done"] * 100 // q["bytes_total"],
                  "a progress event: %r" % x)
        pcts = [x["progress"]["percent"] for x in prog]
        check(pcts == sorted(set(pcts)), "progress events not rising: %r" % pcts)
        # keeld answers meanwhile: another VM is listed, started and turned off, each
        # within the bound.
        names = timed("listing the VMs", lambda: [v["name"] for v in e.api_ok("GET", "/v1/vms")],
                      why="while another VM's save was stopped mid-way")
        check(names == ["g1", "g2"], "list: %r" % names)
        timed("starting g2", lambda: e.start("g2"), why="while another VM's save was stopped")
        timed("turning g2 off", lambda: e.keel("vm", "turn-off", "g2"),
              why="while another VM's save was stopped")
        check(e.vm("g2")["state"] == "Off", "g2 is %s" % e.vm("g2")["state"])
    finally:
        os.kill(vm["pid"], signal.SIGCONT)
    while e.api_ok("GET", job["href"])["state"] == "running":
        time.sleep(0.1)
    j = e.api_ok("GET", job["href"])
    check(j["state"] == "succeeded" and j["progress"]["percent"] == 100, "the save: %r" % j)
    e.wait_state("g1", "Saved")
    mem = os.path.join(e.state, "vms", vm["id"], "saved", "memory")
    used = os.stat(mem).st_blocks * 512
    check(used >= pages * 4096, "the saved memory holds %d bytes for %d pages" % (used, pages))
    restored = e.start("g1")
    check(restored["state_reason"] == "restored from its saved state", "%r" % restored)
    e.type_console("g1", "check\n")
    e.console_until("g1", r"daemon-guest: checked %d pages: 0 differ" % pages)
    # The terminal's progress bar: `keel vm save` with its stderr on a pty draws the bar
    # mid-way (the worker stopped once the job is past 0 %), then at 100 %, then a newline.
    bar = save_on_a_pty(e, "g1", restored["pid"], tmp)
    frames = re.findall(r"\rsave VM 'g1': \[(#*)( *)\] +(\d+)% \((\d+) of (\d+) MiB\)", bar)
    check(frames, "no progress bar on the terminal: %r" % bar[-400:])
    for hashes, spaces, pct, done, total in frames:
        check(len(hashes) + len(spaces) == 20 and len(hashes) == int(pct) // 5 and
              total == "1024" and int(done) <= 1024, "a bad frame of the bar: %r" % bar[-400:])
    mid = [int(f[2]) for f in frames if 0 < int(f[2]) < 100]
    check(mid, "the bar never showed a value between 0 and 100: %r" % bar[-400:])
    check(frames[-1][2] == "100" and frames[-1][3] == "1024" and
          re.search(r"\[#{20}\] 100% \(1024 of 1024 MiB\)\r?\n", bar),
          "the bar did not end at 100 %% with a newline: %r" % bar[-400:])
    e.wait_state("g1", "Saved")
    restored = e.start("g1")
    check(restored["state_reason"] == "restored from its saved state", "%r" % restored)
    # --no-wait: keel returns with the job while the worker cannot save (stopped).
    os.kill(restored["pid"], signal.SIGSTOP)
    try:
        out, _ = e.keel("vm", "save", "g1", "--no-wait")
        m = re.match(r"job (\d+) started: save VM 'g1' \((/v1/jobs/\d+)\)$", out.strip())
        check(m, "keel vm save --no-wait printed %r" % out)
        check(e.api_ok("GET", m.group(2))["state"] == "running", "the job is not running")
    finally:
        os.kill(restored["pid"], signal.SIGCONT)
    while e.api_ok("GET", m.group(2))["state"] == "running":
        time.sleep(0.1)
    check(e.api_ok("GET", m.group(2))["state"] == "succeeded", "the --no-wait save failed")
    e.wait_state("g1", "Saved")
    e.keel("vm", "discard-state", "g1")


# What store.c's migrate_8_to_9 did, undone, for the cases that make an older store: the
# console's and rng's slots back in their columns of vms (-1: none), their devices rows gone.
# What store.c's migrate_10_to_11 did, undone: adapters without their queue pairs.
UNDO_SCHEMA_11 = "ALTER TABLE nics DROP COLUMN queues;"
# What store.c's migrate_11_to_12 did, undone: SCSI disks without their storage QoS.
UNDO_SCHEMA_12 = ("ALTER TABLE scsi_luns DROP COLUMN max_iops; ALTER TABLE scsi_luns DROP COLUMN max_bw;"
                  "ALTER TABLE scsi_luns DROP COLUMN min_iops;")
# What store.c's migrate_12_to_13 did, undone: firmware rows without their boot menu.
UNDO_SCHEMA_13 = "ALTER TABLE firmware DROP COLUMN boot_menu;"
# What store.c's migrate_9_to_10 did, undone: no storage QoS columns in disks.
UNDO_SCHEMA_10 = ("ALTER TABLE disks DROP COLUMN max_iops; ALTER TABLE disks DROP COLUMN max_bw;"
                  "ALTER TABLE disks DROP COLUMN min_iops;")
UNDO_SCHEMA_9 = (
    "ALTER TABLE vms ADD COLUMN console_slot INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE vms ADD COLUMN rng_slot INTEGER NOT NULL DEFAULT 0;"
    "UPDATE vms SET console_slot = coalesce((SELECT coalesce(json_extract(doc, '$.pci_slot'), 0)"
    " FROM devices WHERE vm = uuid AND field = 'virtio_console'), -1),"
    " rng_slot = coalesce((SELECT CASE WHEN doc = 'null' THEN -1 ELSE"
    " coalesce(json_extract(doc, '$.pci_slot'), 0) END FROM devices WHERE vm = uuid AND"
    " field = 'rng'), 0);"
    "DELETE FROM devices WHERE field IN ('virtio_console', 'rng');")


def sqlite(db, sql):
    """Runs sql on the store db with the sqlite3 shell; returns its output, stripped."""
    r = subprocess.run(["sqlite3", db, sql], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "sqlite3 %r: %s" % (sql, r.stderr))
    return r.stdout.strip()


def vhdx_meta_item(f, path, guid):
    """Where the metadata item guid (a UUID string) of the VHDX file f (named path) is: the
    file offset of its metadata table, its entry's index in that table, and the item's offset
    and length in the file."""
    import uuid
    meta_guid = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
    item_guid = uuid.UUID(guid).bytes_le
    f.seek(192 << 10)  # region table 1
    table = f.read(64 << 10)
    check(table[:4] == b"regi", "no region table in %s" % path)
    count = struct.unpack_from("<I", table, 8)[0]
    meta = [struct.unpack_from("<Q", table, 16 + 32 * i + 16)[0] for i in range(count)
            if table[16 + 32 * i:16 + 32 * i + 16] == meta_guid]
    check(len(meta) == 1, "no metadata region in %s" % path)
    f.seek(meta[0])
    mt = f.read(64 << 10)
    check(mt[:8] == b"metadata", "no metadata table in %s" % path)
    n = struct.unpack_from("<H", mt, 10)[0]
    items = [i for i in range(n) if mt[32 + 32 * i:32 + 32 * i + 16] == item_guid]
    check(len(items) == 1, "no metadata item %s in %s" % (guid, path))
    off, length = struct.unpack_from("<II", mt, 32 + 32 * items[0] + 16)
    return meta[0], items[0], meta[0] + off, length


def set_vhdx_block_size(path, size):
    """Writes size into a VHDX file's metadata as its block size (the file parameters item;
    the metadata has no checksum, so the file still opens as far as its metadata)."""
    with open(path, "r+b") as f:
        _, _, item, _ = vhdx_meta_item(f, path, "CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
        f.seek(item)
        f.write(struct.pack("<I", size))


def set_vhdx_parent_locator(path, parent):
    """Rewrites a differencing VHDX's parent locator to name parent only (its
    absolute_win32_path; parent_linkage kept), in place: what a worker that writes the file
    (a taken-over keel-vmm) can do, since metadata has no checksum."""
    with open(path, "r+b") as f:
        meta, index, item, length = vhdx_meta_item(f, path,
                                                   "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
        f.seek(item)
        old = f.read(length)
        kv = {}
        for i in range(struct.unpack_from("<H", old, 18)[0]):
            ko, vo, kl, vl = struct.unpack_from("<IIHH", old, 20 + 12 * i)
            kv[old[ko:ko + kl].decode("utf-16-le")] = old[vo:vo + vl].decode("utf-16-le")
        check("parent_linkage" in kv, "%s has no parent_linkage: %r" % (path, kv))
        pairs = [("parent_linkage", kv["parent_linkage"]), ("absolute_win32_path", parent)]
        head = bytearray(old[:16] + struct.pack("<HH", 0, len(pairs)))
        data, pos = b"", 20 + 12 * len(pairs)
        for k, v in pairs:
            kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
            head += struct.pack("<IIHH", pos, pos + len(kb), len(kb), len(vb))
            data += kb + vb
            pos += len(kb) + len(vb)
        new = bytes(head) + data
        check(len(new) <= max(length, 4096), "the new locator of %s does not fit" % path)
        f.seek(item)
        f.write(new)
        f.seek(meta + 32 + 32 * index + 20)
        f.write(struct.pack("<I", len(new)))


def saved_sections(e, name):
    """Starts VM NAME, saves it, and returns the names of its saved state's sections (in
    file order); the saved state is then discarded and the VM is Off."""
    vm = e.start(name)
    e.console_until(name, r"daemon-guest: ready for input")
    e.keel("vm", "save", name)
    e.wait_state(name, "Saved")
    with open(os.path.join(e.state, "vms", vm["id"], "saved", "state"), "rb") as f:
        data = f.read()
    magic, _, hsize, _, count, _ = struct.unpack_from("<8sIIQII", data, 0)
    check(magic == b"KEELSAVE", "not a saved state: %r" % data[:16])
    off, names = hsize, []
    for _ in range(count):
        names.append(data[off:off + 32].rstrip(b"\0").decode())
        size = struct.unpack_from("<IIQ", data, off + 32)[2]
        off += 48 + size + (-size % 8)
    e.keel("vm", "discard-state", name)
    e.wait_state(name, "Off")
    return names


def save_on_a_pty(e, name, pid, tmp):
    """Runs `keel vm save NAME` with its stdout and stderr on a pseudo-terminal (so that it
    draws its progress bar), stops the worker PID with SIGSTOP once the job is past 0 % and
    the bar has been drawn at least once while stopped, then lets it go on; returns what
    the terminal received."""
    import pty
    master, slave = pty.openpty()
    env = dict(os.environ, KEEL_SOCKET=e.sock)
    proc = subprocess.Popen([e.a.keel, "vm", "save", name], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = bytearray()

    def reader():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            out.extend(chunk)
    t = threading.Thread(target=reader)
    t.start()
    stopped = False
    try:
        deadline = time.time() + 120
        while not stopped and time.time() < deadline and proc.poll() is None:
            jobs = [j for j in e.api_ok("GET", "/v1/jobs") if j["state"] == "running"]
            if jobs and jobs[-1]["progress"]["percent"] > 0 and os.path.exists(tmp):
                os.kill(pid, signal.SIGSTOP)
                stopped = True
        check(stopped, "the save on the terminal was never seen past 0 %%: %r" % bytes(out))
        # The CLI polls every 100 ms: wait until it drew the stopped job's bar.
        seen = len(out)
        deadline = time.time() + 10
        while time.time() < deadline and not re.search(
                rb"\] +([1-9]|[1-9][0-9])% ", bytes(out[seen:])):
            time.sleep(0.1)
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
    rc = proc.wait(timeout=300)
    t.join(10)
    os.close(master)
    text = bytes(out).decode(errors="replace")
    check(rc == 0, "keel vm save on a terminal: exit %d: %r" % (rc, text[-400:]))
    return text


def case_log_follow(e):
    """`keel vm log --follow` prints the worker log, then each line added to it as it comes
    (keeld's long-poll GET .../log?since=OFFSET&wait=SEC), until interrupted (issue 9)."""
    e.start_keeld()
    e.create("lf")
    e.start("lf")
    e.console_until("lf", r"daemon-guest: ready for input")
    # The long-poll: nothing new waits, an addition ends the wait at once.
    now = e.api_ok("GET", "/v1/vms/lf/log?since=0")
    check("is ready" in now["text"] and now["next"] == len(now["text"].encode()) and
          not now["restarted"] and now["skipped"] == 0, "the log from 0: %r" % now)
    got = {}
    poll = threading.Thread(target=lambda: got.update(
        r=e.api_ok("GET", "/v1/vms/lf/log?since=%d&wait=40" % now["next"])))
    poll.start()
    e.keel("vm", "pause", "lf")
    poll.join(timeout=45)
    check(got.get("r") and "paused" in got["r"]["text"] and got["r"]["next"] > now["next"],
          "the long-poll after a pause: %r" % got)
    later = e.api_ok("GET", "/v1/vms/lf/log?since=%d" % (got["r"]["next"] + 10 ** 9))
    check(later["restarted"] and later["next"] == got["r"]["next"],
          "an offset past the end (a rotated log) starts again: %r" % later)
    e.api_err("GET", "/v1/vms/lf/log?wait=5", want=400, msg="wait=SEC needs since=OFFSET")
    e.api_err("GET", "/v1/vms/lf/log?since=x", want=400, msg="since=OFFSET")
    e.api_err("GET", "/v1/vms/lf/log?since=0&wait=99", want=400, msg="wait=SEC (0 to 50)")
    e.api_err("GET", "/v1/vms/lf?since=0", want=400, msg="takes no query string")
    # A worker the guest took over writes what it likes into its log: keel prints its
    # control characters (but newline and tab) as '?', so no escape sequence reaches the
    # terminal (C1 too: U+009B CSI, encoded in UTF-8).
    wlog = os.path.join(e.state, "vms", e.vm("lf")["id"], "worker.log")
    forged = b"taken\tover: \x1b]0;pwned\x07\x1b[2J\r\x00\x7f\xc2\x9b6n \xc3\xa9 end\n"
    safe = "taken\tover: ?]0;pwned??[2J?????6n \u00e9 end\n"
    with open(wlog, "ab") as f:
        f.write(forged)
    out = subprocess.run([e.a.keel, "vm", "log", "lf"], stdout=subprocess.PIPE,
                         env=dict(os.environ, KEEL_SOCKET=e.sock)).stdout
    check(safe.encode() in out and not any(c in out for c in b"\x1b\x07\r\x00\x7f") and
          b"\xc2\x9b" not in out, "keel vm log printed a control character: %r" % out[-300:])
    # The CLI: the log so far, then the resume's line as it is written.
    env = dict(os.environ, KEEL_SOCKET=e.sock)
    follow = subprocess.Popen([e.a.keel, "vm", "log", "lf", "--follow"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(follow.stdout))
    reader.start()
    try:
        deadline = time.time() + 30
        while not any(": paused" in l for l in lines):
            check(time.time() < deadline and follow.poll() is None,
                  "keel vm log --follow printed %r" % lines)
            time.sleep(0.1)
        e.keel("vm", "resume", "lf")
        while not any(": resumed" in l for l in lines):
            check(time.time() < deadline and follow.poll() is None,
                  "keel vm log --follow did not print the resume: %r" % lines)
            time.sleep(0.1)
    finally:
        follow.terminate()
        follow.wait(timeout=10)
        reader.join(timeout=10)
    check(sum("is ready" in l for l in lines) == 1, "lines printed twice: %r" % lines)
    check(safe in lines and not any(c in "".join(lines) for c in "\x1b\x07\r\x00\x7f\x9b"),
          "keel vm log --follow printed a control character: %r" % lines)
    e.keel("vm", "turn-off", "lf")


def proc_status(pid):
    """/proc/PID/status as a dict of its fields."""
    fields = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def host_cgroup2():
    """The cgroup v2 mount keeld uses (the first in mountinfo) when it has the memory and pids
    controllers, else None (docs/security.md, "cgroups")."""
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        if right.split(" ")[0] == "cgroup2":
            mnt = left.split(" ")[4]
            ctls = open(os.path.join(mnt, "cgroup.controllers")).read().split()
            return mnt if "memory" in ctls and "pids" in ctls else None
    return None


def vmm_allowance(memory):
    """What keeld counts per worker beyond its guest RAM (SUP_VMM_ALLOWANCE in
    src/daemon/sup.h, docs/keeld.md): 64 MiB, and 1/128 of the RAM for page tables."""
    return (64 << 20) + memory // 128


def check_cgroup(e, vm, ctx):
    """The worker runs in a cgroup of its own, keel.slice/vm-UUID, with memory.max at the
    VM's memory plus its allowance (vmm_allowance) and pids.max at 256 + 2 per vCPU, and
    keeld is not in it; on a
    host without usable cgroups v2, keeld said once per start why there are none."""
    mnt = host_cgroup2()
    log = open(e.keeld_log, errors="replace").read()
    if mnt is None:
        starts = len(re.findall(r"keeld \S+: state in ", log))
        said = log.count("per-VM cgroups are unavailable: ")
        check(starts and said == starts, "%s: keeld started %d times and said %d times that "
              "per-VM cgroups are unavailable" % (ctx, starts, said))
        check("workers run without memory.max and pids.max" in log, "%s: the words" % ctx)
        return
    rel = "/keel.slice/vm-" + vm["id"]
    lines = open("/proc/%d/cgroup" % vm["pid"]).read().splitlines()
    check("0::" + rel in lines, "%s: the worker's cgroups: %r" % (ctx, lines))
    mine = open("/proc/%d/cgroup" % e.keeld_proc.pid).read()
    check("keel.slice" not in mine, "%s: keeld is in %r" % (ctx, mine))
    mem = int(open(mnt + rel + "/memory.max").read())
    check(mem == vm["memory"] + vmm_allowance(vm["memory"]),
          "%s: memory.max %d for %d" % (ctx, mem, vm["memory"]))
    pids = int(open(mnt + rel + "/pids.max").read())
    check(pids == 256 + 2 * vm["cpus"], "%s: pids.max %d" % (ctx, pids))


def proc_limits(pid):
    """/proc/PID/limits: {name: (soft, hard)}, None for unlimited."""
    out = {}
    for line in open("/proc/%d/limits" % pid).read().splitlines()[1:]:
        m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            out[m.group(1)] = tuple(None if v == "unlimited" else int(v)
                                    for v in m.group(2, 3))
    return out


def check_limits(e, pid, cpus, ctx):
    """The worker's resource limits as jail.c sets them (set_limits): each lowered to its
    bound from keeld's, soft equal to hard: no core dumps, 1024 descriptors, its tasks, 64 MiB
    of locked memory (io_uring's rings)."""
    keeld, worker = proc_limits(e.keeld_proc.pid), proc_limits(pid)
    for name, bound in (("Max core file size", 0), ("Max open files", 1024),
                        ("Max processes", 256 + 2 * cpus),
                        ("Max locked memory", 64 << 20)):
        hard = keeld[name][1]
        want = bound if hard is None else min(hard, bound)
        check(worker[name] == (want, want), "%s: the worker's %s is %r, not %d (keeld's %r)"
              % (ctx, name, worker[name], want, keeld[name]))


def check_jailed(e, vm, ctx, parents=()):
    """The worker of vm runs jailed (docs/security.md): its own uid and gid, no capabilities
    on any thread, no_new_privs, a seccomp filter on every thread, namespaces of its own, the
    VM's directory as its root, nothing of the host open but what keeld passed, and the
    resource limits jail.c sets."""
    pid = vm["pid"]
    check_limits(e, pid, vm["cpus"], ctx)
    vmdir = os.path.join(e.state, "vms", vm["id"])
    uids, filters, names = set(), {}, {}
    for tid in os.listdir("/proc/%d/task" % pid):
        st = proc_status("%d/task/%s" % (pid, tid))
        uid, gid = st["Uid"].split(), st["Gid"].split()
        check(len(set(uid)) == 1 and len(set(gid)) == 1 and uid[0] != "0" and gid[0] != "0",
              "%s: thread %s runs as uid %r gid %r" % (ctx, tid, uid, gid))
        check(st["Groups"] == "", "%s: thread %s has groups %r" % (ctx, tid, st["Groups"]))
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            check(int(st[cap], 16) == 0, "%s: thread %s %s %s" % (ctx, tid, cap, st[cap]))
        check(st["NoNewPrivs"] == "1" and st["Seccomp"] == "2",
              "%s: thread %s NoNewPrivs %s Seccomp %s" % (ctx, tid, st["NoNewPrivs"],
                                                        st["Seccomp"]))
        uids.add(uid[0])
        filters[tid] = int(st.get("Seccomp_filters", "-1"))
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            names[tid] = f.read().strip()
    # Each thread class stacks its own filter on the process's: the main loop and every
    # device thread one on the process's (so 2 at least), a vCPU thread one on the main
    # loop's.
    main = filters[str(pid)]
    if main >= 0:
        for tid, name in names.items():
            # KVM's and io_uring's workers (kvm-nx-lpage-re, iou-wrk-N) are the kernel's
            if not name.startswith(("vcpu", "vio-", "blkio-pool")) and tid != str(pid):
                continue
            want = main + 1 if name.startswith("vcpu") else main
            check(filters[tid] == want and main >= 2,
                  "%s: thread %s (%s) has %d seccomp filters, the main loop %d" %
                  (ctx, tid, name, filters[tid], main))
    for ns in ("mnt", "pid", "ipc", "uts", "net"):
        check(os.readlink("/proc/%d/ns/%s" % (pid, ns)) != os.readlink("/proc/self/ns/" + ns),
              "%s: the worker shares keeld's %s namespace" % (ctx, ns))
    root, mine = os.stat("/proc/%d/root/" % pid), os.stat(vmdir)
    check((root.st_dev, root.st_ino) == (mine.st_dev, mine.st_ino),
          "%s: the worker's root is not its VM's directory" % ctx)
    check(not os.path.exists("/proc/%d/root/etc" % pid) and
          not os.path.exists("/proc/%d/root/proc" % pid), "%s: the host shows in the jail" % ctx)
    # keeld opened the worker's own files too (its description, status file, saved state):
    # the worker is given descriptors, no host path of them to open as root.
    argv = [a.decode() for a in open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0") if a]
    for opt in ("--config", "--status-file", "--restore"):
        check(not any(a == opt or a.startswith(opt + "=") for a in argv),
              "%s: the worker was given %s by path: %r" % (ctx, opt, argv))
    given = dict(a[len("--fd="):].split("=", 1) for a in argv if a.startswith("--fd="))
    restored = vm["state_reason"] == "restored from its saved state"
    for name in ("config", "status", "kvm", "control", "serial") + (
            ("state", "memory") if restored else ()):
        check(name in given, "%s: no --fd %s in %r" % (ctx, name, argv))
    check(("state" in given) == ("memory" in given), "%s: half a saved state: %r" % (ctx, argv))
    check(os.readlink("/proc/%d/fd/%s" % (pid, given["status"])) ==
          os.path.join(vmdir, "status.json"), "%s: --fd status is not its status file" % ctx)
    passed = {vm_file for vm_file in [vm["kernel"]] + [d["path"] for d in vm["disks"]]}
    passed |= set(parents)
    # /dev/vhost-net only as keeld passed it, with an adapter's tap (--fd vhost.I), on a host
    # that has it (docs/virtio.md, "vhost-net").
    vhost = {v for k, v in given.items() if k.startswith("vhost.")}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if not target.startswith("/"):
            continue  # sockets, pipes, eventfds, epoll
        check(target in passed or target.startswith(vmdir + "/") or
              target in ("/dev/kvm", "/dev/net/tun", "/dev/null") or
              (target == "/dev/vhost-net" and fd in vhost),
              "%s: the worker has %s open (fd %s)" % (ctx, target, fd))
    return uids.pop()


def in_child(fn):
    """fn() run in a forked child (which may change its ids and namespaces): its result,
    which must be JSON."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        try:
            res = fn()
        except BaseException as ex:  # noqa: B902 (reported to the parent)
            res = "exception %r" % ex
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(child, 0)
    return json.loads(data)


def open_errno(path, flags):
    """0 if path opens with flags, or the errno's name."""
    try:
        os.close(os.open(path, flags))
        return 0
    except OSError as ex:
        return errno_name(ex.errno)


def errno_name(n):
    import errno
    return errno.errorcode.get(n, str(n))


def become(uid):
    """Drop to a worker's uid and gid (the same number), with no groups."""
    os.setgroups([])
    os.setgid(int(uid))
    os.setuid(int(uid))


def check_worker_view(e, vm, ctx, uid, other_disk, other_vm):
    """Issue 10: the worker's uid cannot open another VM's disk (even where the host's
    directories let it reach the file), and from inside the worker's mount namespace neither
    the host's files, nor other VMs' directories, nor that disk are there; its PID namespace
    holds no other process."""
    pid = vm["pid"]
    vmdir = os.path.join(e.state, "vms", vm["id"])
    # From the host's view: the directories searchable by all, the disk keeld's mode (0600).
    modes = {d: stat.S_IMODE(os.stat(d).st_mode) for d in (e.dir, os.path.dirname(other_disk))}
    try:
        for d in modes:
            os.chmod(d, 0o711)
        got = in_child(lambda: (become(uid), [open_errno(other_disk, os.O_RDONLY),
                                              open_errno(other_disk, os.O_RDWR)])[1])
    finally:
        for d, m in modes.items():
            os.chmod(d, m)
    check(got == ["EACCES", "EACCES"],
          "%s: uid %s opening another VM's disk %s: %r" % (ctx, uid, other_disk, got))

    # From inside its mount namespace (setns puts the caller at that namespace's root).
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    def inside():
        nsfd = os.open("/proc/%d/ns/mnt" % pid, os.O_RDONLY)
        if libc.setns(nsfd, 0x00020000):  # CLONE_NEWNS
            return "setns: %s" % errno_name(ctypes.get_errno())
        os.chdir("/")
        top = sorted(os.listdir("/"))
        up = sorted(os.listdir("/.."))
        there = [p for p in ("/etc", "/proc", "/dev", "/usr", "/tmp", e.dir, e.state, other_disk,
                             os.path.join(e.state, "vms", other_vm["id"]),
                             "/vms/" + other_vm["id"]) if os.path.lexists(p)]
        become(uid)
        return [top, up, there, open_errno(other_disk, os.O_RDONLY)]

    got = in_child(inside)
    check(isinstance(got, list), "%s: entering the worker's mount namespace: %r" % (ctx, got))
    top, up, there, opened = got
    check(top == sorted(os.listdir(vmdir)) and up == top,
          "%s: the worker's / is not its VM's directory: %r" % (ctx, top))
    check(there == [], "%s: visible in the worker's mount namespace: %r" % (ctx, there))
    check(opened == "ENOENT", "%s: another VM's disk from inside the jail: %r" % (ctx, opened))
    # Its PID namespace: it is PID 1 there, and no other process of the host is in it.
    nspid = proc_status(str(pid))["NSpid"].split()
    check(nspid[-1] == "1", "%s: the worker is PID %s in its namespace" % (ctx, nspid[-1]))
    mine = os.readlink("/proc/%d/ns/pid" % pid)
    members = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink("/proc/%s/ns/pid" % p) == mine:
                    members.append(int(p))
            except OSError:
                continue
    check(members == [pid], "%s: processes in the worker's PID namespace: %r" % (ctx, members))


def check_parsed_as(e, vm, ctx, uid, kinds):
    """Test builds only (control "test-parse-euids"): the worker parsed each of kinds (disk,
    state, nvram) of the files it was handed, and never as a uid below uid: a jailed worker
    gives up root before it parses any of them (docs/security.md)."""
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.settimeout(30)
    ctl.connect(os.path.join(e.state, "vms", vm["id"], "control.sock"))
    ctl.sendall(b'{"execute":"test-parse-euids"}\n')
    euids = json.loads(ctl.makefile("r").readline())["return"]
    ctl.close()
    for kind in kinds:
        check(euids[kind] == int(uid), "%s: the worker parsed its %s as euid %d, not its uid %s"
              % (ctx, kind, euids[kind], uid))


def case_jail(e):
    """Issue 10: the worker jail. Checked on running workers from the host: ids, capabilities,
    no_new_privs and seccomp on every thread, namespaces, root, open files; two VMs never
    share a uid; everything still works jailed (pause, save, restore); a forbidden system
    call ends the worker with its name as the crash reason."""
    e.start_keeld()
    disk = os.path.join(e.dir, "j1.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    e.create("j1", disks=[{"path": disk}], nets=[{"tap": "kj0"}])
    disk2 = os.path.join(e.dir, "j2.img")
    with open(disk2, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(disk2, 0o600)  # as keeld makes disks (`keel disk create`)
    e.create("j2", disks=[{"path": disk2}])
    vm1 = e.start("j1")
    e.console_until("j1", "ready for input")
    vm2 = e.start("j2")
    e.console_until("j2", "ready for input")
    uid1 = check_jailed(e, vm1, "j1")
    uid2 = check_jailed(e, vm2, "j2")
    check_parsed_as(e, vm1, "j1", uid1, ["disk"])
    check_cgroup(e, vm1, "j1")
    check(uid1 != uid2, "two running VMs share uid %s" % uid1)
    check_worker_view(e, vm1, "j1", uid1, disk2, vm2)
    e.keel("vm", "pause", "j1")
    e.wait_state("j1", "Paused")
    e.keel("vm", "resume", "j1")
    e.wait_state("j1", "Running")
    # A hard reset rebuilds the machine inside the jail (new VM, vCPU threads and filters).
    e.keel("vm", "restart", "j1")
    e.console_until("j1", r"ready for input[\s\S]*ready for input")
    check(e.vm("j1")["state"] == "Running", "j1 after restart: %r" % e.vm("j1"))
    e.type_console("j1", "half")
    e.keel("vm", "save", "j1")
    check(e.vm("j1")["state"] == "Saved", "j1 not Saved: %r" % e.vm("j1"))
    saved = os.path.join(e.state, "vms", vm1["id"], "saved")
    for name in ("state", "memory"):
        st = os.lstat(os.path.join(saved, name))
        check(stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600,
              "saved %s: uid %d mode %o" % (name, st.st_uid, st.st_mode))
    check(os.stat(saved).st_uid == 0, "the saved directory stays the worker's")
    vm1 = e.start("j1")
    check(vm1["state_reason"] == "restored from its saved state", "restore: %r" % vm1)
    e.type_console("j1", "-line\n")
    e.console_until("j1", r"echo \[half-line\]")
    check_parsed_as(e, vm1, "restored j1", check_jailed(e, vm1, "restored j1"),
                    ["disk", "state"])
    # keeld re-attaches to running workers and keeps their uids taken.
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    e.keel("vm", "turn-off", "j2")
    e.wait_state("j2", "Off")
    vm2 = e.start("j2")
    check(check_jailed(e, vm2, "j2 after a keeld restart") != check_jailed(e, e.vm("j1"), "j1"),
          "a re-attached worker's uid was given to another")
    # Test builds only: the guest asks the seccomp probe device (vmm/dev/seccomp_probe.h)
    # for forbidden calls (once it reads its console: its serial set-up empties the FIFO).
    # A value that is no request is ignored: the VM runs on.
    e.console_until("j2", "ready for input")
    e.type_console("j2", "probe 0x5ec00009\n")
    e.console_until("j2", r"probe writes 0x5ec00009\s+daemon-guest: probe reads 0x0\b")
    check(e.vm("j2")["state"] == "Running", "j2 after a value that is no request: %r" % e.vm("j2"))
    # The vCPU thread that takes the write calls unlinkat: the main loop's list allows it, the
    # vCPU threads' does not, so only their own filter ends the worker, with the call's name.
    e.type_console("j2", "probe 0x5ec00001\n")
    vm = e.wait_state("j2", "Crashed")
    check(vm["state_reason"] == "worker killed by its seccomp filter (syscall unlinkat)",
          "crash reason (vCPU thread): %r" % vm["state_reason"])
    # The main loop maps executable memory: an argument (PROT_EXEC) that no list allows.
    e.start("j2")
    e.console_until("j2", "ready for input")
    e.type_console("j2", "probe 0x5ec00003\n")
    vm = e.wait_state("j2", "Crashed")
    check(vm["state_reason"] == "worker killed by its seccomp filter (syscall mmap)",
          "crash reason (main loop): %r" % vm["state_reason"])
    # Each device thread has its own, narrower filter: one of j1's (its disk's, its network
    # card's, the block pool's) makes a call the main loop's list allows and theirs do not
    # (mkdirat); under the process's filter alone it would return.
    e.type_console("j1", "probe 0x5ec00002\n")
    vm = e.wait_state("j1", "Crashed")
    check(vm["state_reason"] == "worker killed by its seccomp filter (syscall mkdirat)",
          "crash reason (device thread): %r" % vm["state_reason"])
    log = e.keel("vm", "log", "j1")[0]
    check("keel-vmm: error: worker killed by its seccomp filter (syscall mkdirat)" in log,
          "the worker's log does not name the call")
    check("seccomp probe:" not in log, "a forbidden call returned: %r" % log)
    # The uid range: one uid serves one running VM; a bad range stops keeld at start.
    e.kill_keeld(signal.SIGTERM)
    check(e.start_keeld(expect_fail=True, extra=["--worker-uids", "5-3"]) != 0,
          "keeld took --worker-uids 5-3")
    e.start_keeld(extra=["--worker-uids", "4000000000-4000000000"])
    # A uid some other process runs as (not keeld's worker) is not handed out.
    squatter = subprocess.Popen(["sleep", "300"], user=4000000000, group=4000000000)
    try:
        was = e.vm("j1")["state"]
        _, err = e.keel("vm", "start", "j1", want=None)
        check("are taken by running VMs or by other processes running as them" in err,
              "start while a process runs as the range's only uid: %r" % err)
        check(e.vm("j1")["state"] == was, "the refused start changed j1: %r" % e.vm("j1"))
    finally:
        squatter.kill()
        squatter.wait()
    vm1 = e.start("j1")
    check(check_jailed(e, vm1, "j1 in a range of one") == "4000000000", "uid outside the range")
    check_cgroup(e, vm1, "j1 after three keeld starts")
    _, err = e.keel("vm", "start", "j2", want=None)
    check("all 1 worker uids from 4000000000 (--worker-uids) are taken" in err,
          "second VM in a range of one: %r" % err)
    e.keel("vm", "turn-off", "j1")
    e.wait_state("j1", "Off")
    if host_cgroup2():
        gone = os.path.join(host_cgroup2(), "keel.slice", "vm-" + vm1["id"])
        check(not os.path.exists(gone), "%s stays after its worker ended" % gone)

# The sockets a worker serves in its VM's directory: --fd name, file, mode (keeld's made).
WORKER_SOCKETS = (("control", "control.sock", 0o600), ("serial", "serial.sock", 0o660),
                  ("console", "hvc0.sock", 0o660), ("vsock", "vsock.sock", 0o660))


def unix_table(pid):
    """The Unix sockets of pid's network namespace (/proc/PID/net/unix): inode -> (flags,
    path); a socket is listed in the namespace of the process that made it."""
    table = {}
    with open("/proc/%d/net/unix" % pid) as f:
        next(f)
        for line in f:
            cols = line.split()
            table[int(cols[6])] = (int(cols[3], 16), cols[7] if len(cols) > 7 else "")
    return table


def check_keeld_sockets(e, vm, ctx):
    """Issue 10: keeld made the worker's sockets, the worker did not bind them. Each is passed
    as --fd NAME=N; the worker's descriptor N is the socket bound at its path, listening,
    made in keeld's network namespace (the worker has had its own, empty one since before it
    built anything, so a socket it made would be listed there), with keeld's owner and mode.
    Returns {name: socket inode}."""
    pid, vmdir = vm["pid"], os.path.join(e.state, "vms", vm["id"])
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        args = f.read().decode().split("\0")
    keeld, worker = unix_table(e.keeld_proc.pid), unix_table(pid)
    inodes = {}
    for name, fname, mode in WORKER_SOCKETS:
        path = os.path.join(vmdir, fname)
        fds = [a.split("=")[2] for a in args if a.startswith("--fd=%s=" % name)]
        check(len(fds) == 1, "%s: keel-vmm was not passed its %s socket: %r" % (ctx, name, args))
        link = os.readlink("/proc/%d/fd/%s" % (pid, fds[0]))
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        check(m, "%s: the worker's --fd %s=%s is %s" % (ctx, name, fds[0], link))
        ino = int(m.group(1))
        check(ino in keeld and keeld[ino][1] == path,
              "%s: the worker's %s socket is not the one keeld bound at %s: %r" %
              (ctx, name, path, keeld.get(ino)))
        check(keeld[ino][0] & 0x10000, "%s: the %s socket does not listen" % (ctx, name))
        check(not any(p.startswith(vmdir + "/") for _, p in worker.values()),
              "%s: the worker bound sockets of its own: %r" % (ctx, worker))
        st = os.lstat(path)
        check(stat.S_ISSOCK(st.st_mode) and st.st_uid == 0 and
              stat.S_IMODE(st.st_mode) == mode, "%s: %s is uid %d mode %o, not root's %o" %
              (ctx, fname, st.st_uid, stat.S_IMODE(st.st_mode), mode))
        inodes[name] = ino
    # keeld closed its copies once the worker had them: the worker's are the only ones (a
    # copy kept would also keep a dead worker's socket accepting into a backlog).
    held = set()
    for fd in os.listdir("/proc/%d/fd" % e.keeld_proc.pid):
        try:
            held.add(os.readlink("/proc/%d/fd/%s" % (e.keeld_proc.pid, fd)))
        except OSError:
            pass
    kept = [n for n, ino in inodes.items() if "socket:[%d]" % ino in held]
    check(not kept, "%s: keeld still holds the worker's sockets %r" % (ctx, kept))
    return inodes


def case_jail_sockets(e):
    """Issue 10: keeld makes a worker's sockets (control, serial and virtio-console consoles,
    virtio-vsock's host side) and passes them; the jailed worker only listens on them
    (docs/security.md). Checked on a running worker, after a keeld restart (which reconnects
    to the same sockets), and on the worker restored from a save (new sockets, made again)."""
    e.start_keeld()
    made = e.create("s1", virtio_console={}, vsock={"cid": 9})
    # A socket keeld cannot make (a directory in the way of hvc0.sock): the start fails
    # saying which, and leaves none of the sockets it made before (control, serial).
    vmdir = os.path.join(e.state, "vms", made["id"])
    os.makedirs(os.path.join(vmdir, "hvc0.sock"))
    _, err = e.keel("vm", "start", "s1", want=5)  # 409
    check("cannot make the console socket" in err and "not a socket" in err,
          "start with hvc0.sock in the way: %r" % err)
    check(e.vm("s1")["state"] == "Off", "s1 after a failed start: %r" % e.vm("s1"))
    left = sorted(f for f in os.listdir(vmdir) if f.endswith(".sock"))
    check(left == ["hvc0.sock"], "a failed start left sockets behind: %r" % left)
    os.rmdir(os.path.join(vmdir, "hvc0.sock"))
    vm = e.start("s1")
    e.console_until("s1", "ready for input")
    check_jailed(e, vm, "s1")
    first = check_keeld_sockets(e, vm, "s1")
    e.type_console("s1", "one\n")
    e.console_until("s1", r"echo \[one\]")
    for fname in ("hvc0.sock", "vsock.sock"):  # served: accepted, not refused
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(10)
        c.connect(os.path.join(vmdir, fname))
        c.close()
    # keeld restarts: it re-attaches through the control socket the worker still serves.
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    check(e.vm("s1")["state"] == "Running" and e.vm("s1")["pid"] == vm["pid"],
          "s1 after a keeld restart: %r" % e.vm("s1"))
    check(check_keeld_sockets(e, vm, "s1 after a keeld restart") == first,
          "the sockets changed across a keeld restart")
    e.keel("vm", "pause", "s1")
    e.wait_state("s1", "Paused")
    e.keel("vm", "resume", "s1")
    e.wait_state("s1", "Running")
    e.type_console("s1", "two\n")
    e.console_until("s1", r"echo \[two\]")
    e.keel("vm", "save", "s1")
    check(e.vm("s1")["state"] == "Saved", "s1 not Saved: %r" % e.vm("s1"))
    vm = e.start("s1")
    check(vm["state_reason"] == "restored from its saved state", "restore: %r" % vm)
    again = check_keeld_sockets(e, vm, "restored s1")
    check(not set(again.values()) & set(first.values()), "the restored worker got old sockets")
    e.type_console("s1", "three\n")
    e.console_until("s1", r"echo \[three\]")
    e.keel("vm", "turn-off", "s1")
    e.wait_state("s1", "Off")
    for _, fname, _ in WORKER_SOCKETS:
        check(not os.path.exists(os.path.join(vmdir, fname)), "%s stays after turn-off" % fname)


def case_jail_chain(e):
    """Issue 10: a differencing chain in a jailed worker. keeld resolves and checks the chain
    and passes every parent as a descriptor (--fd disk.0.pJ); the worker opens none by path, so
    renaming the parents while it runs does not matter; a start with a parent gone is refused
    with its name."""
    e.start_keeld()
    base, mid, top = (os.path.join(e.dir, n) for n in ("base.vhdx", "mid.vhdx", "top.vhdx"))
    e.keel("disk", "create", base, "--size", "8M")
    e.keel("disk", "create", mid, "--parent", base)
    e.keel("disk", "create", top, "--parent", mid)
    e.create("c1", disks=[{"path": top}])
    vm = e.start("c1")
    e.console_until("c1", "ready for input")
    check_parsed_as(e, vm, "c1", check_jailed(e, vm, "c1", parents=(mid, base)), ["disk"])
    args = open("/proc/%d/cmdline" % vm["pid"]).read().split("\0")
    fds = {a.split("=")[1]: int(a.split("=")[2]) for a in args if a.startswith("--fd=disk.0")}
    check(sorted(fds) == ["disk.0", "disk.0.p0", "disk.0.p1"], "passed: %r" % args)
    for name, path in (("disk.0", top), ("disk.0.p0", mid), ("disk.0.p1", base)):
        check(os.readlink("/proc/%d/fd/%d" % (vm["pid"], fds[name])) == path,
              "%s is not %s in the worker" % (name, path))
    # Renamed while it runs: the worker holds the files, not their names.
    os.rename(mid, mid + ".moved")
    os.rename(base, base + ".moved")
    e.keel("vm", "pause", "c1")
    e.wait_state("c1", "Paused")
    e.keel("vm", "resume", "c1")
    e.wait_state("c1", "Running")
    held = set(open_files(vm["pid"]))
    check({mid + ".moved", base + ".moved"} <= held, "after the renames: %r" % held)
    e.keel("vm", "turn-off", "c1")
    e.wait_state("c1", "Off")
    # The next start resolves the chain again: the parent is not where the child says.
    _, err = e.keel("vm", "start", "c1", want=None)
    check("parent disk not found" in err and "mid.vhdx'" in err, "start: %r" % err)
    check(e.vm("c1")["state"] == "Off", "a refused start changed the VM")
    os.rename(mid + ".moved", mid)
    os.rename(base + ".moved", base)
    vm = e.start("c1")
    e.console_until("c1", "ready for input")
    e.keel("vm", "turn-off", "c1")
    e.wait_state("c1", "Off")


def case_jail_fifo_parent(e):
    """Review of issue 10, finding 1: a disk's parent locator naming a FIFO (what a taken-over
    worker could write into its VHDX) must not make keeld (root) open it blocking: keeld opens
    each parent through its pool (regular files only, O_NONBLOCK), answers at once and refuses
    the start naming the file."""
    e.start_keeld()
    base, top = (os.path.join(e.dir, n) for n in ("fbase.vhdx", "ftop.vhdx"))
    e.keel("disk", "create", base, "--size", "8M")
    e.keel("disk", "create", top, "--parent", base)
    e.create("f1", disks=[{"path": top}])
    os.unlink(base)
    os.mkfifo(base)
    t = time.time()
    try:
        _, err = e.keel("vm", "start", "f1", want=None, timeout=20)
    except subprocess.TimeoutExpired:
        check(False, "keel vm start hung: keeld opened the FIFO a parent locator names")
    check(time.time() - t < 15, "start took %.1fs" % (time.time() - t))
    check("fbase.vhdx is not a regular file" in err, "start: %r" % err)
    check(e.vm("f1")["state"] == "Off", "a refused start changed the VM")
    # keeld still answers, and a PATCH that checks the chain again is refused the same way.
    code, doc = e.curl("PATCH", "/v1/vms/f1", {"disks": [{"path": top}]})
    check(400 <= code < 500 and "not a regular file" in json.dumps(doc),
          "PATCH: HTTP %d %r" % (code, doc))


def case_jail_ckpt_locator(e):
    """Review of issue 10: checkpoint delete and apply follow a VM's differencing chains only
    after keeld has checked them as at a start (every file through its pool, regular files
    opened without waiting, linkage GUIDs). A VM on a VHDX with two checkpoints whose current
    disk's locator a worker rewrote to a FIFO outside every pool: a delete that would merge
    that disk is refused at once with a 4xx naming the FIFO, changing nothing; so is an apply
    of a checkpoint whose own file names it. An apply throws the current disk away without
    opening it: it goes ahead, so that a VM can always go back to a checkpoint."""
    jail_ckpt_locator(e, False)


def case_jail_ckpt_locator_scsi(e):
    """jail-ckpt-locator with the VM's disk on its SCSI controller: the same chains checked,
    the same refusals (a checkpoint takes a SCSI disk as a virtio-blk one)."""
    jail_ckpt_locator(e, True)


def jail_ckpt_locator(e, scsi):
    e.start_keeld()
    disk = os.path.join(e.dir, "cl.vhdx")
    e.keel("disk", "create", disk, "--size", "8M")
    if scsi:
        e.create("cl", scsi={"luns": [{"type": "disk", "path": disk}]})
    else:
        e.create("cl", disks=[{"path": disk}])

    def current():
        vm = e.vm("cl")
        return vm["scsi"]["luns"][0]["path"] if scsi else vm["disks"][0]["path"]

    e.keel("checkpoint", "create", "cl", "--name", "one")
    e.keel("checkpoint", "create", "cl", "--name", "two")
    tree = e.api_ok("GET", "/v1/vms/cl/checkpoints")
    two = [c for c in tree["checkpoints"] if c["name"] == "two"][0]["disks"][0]
    now = current()
    outside = tempfile.mkdtemp(prefix="kdo", dir="/var/tmp")
    fifo = os.path.join(outside, "evil.vhdx")
    os.mkfifo(fifo)

    def refused(method, url, cli):
        files = sorted(os.listdir(e.dir))
        t = time.time()
        e.api_err(method, url, want=400, msg=fifo)
        try:
            _, err = e.keel(*cli, want=None, timeout=30)
        except subprocess.TimeoutExpired:
            raise Fail("keel %s hung: keeld opened the FIFO a locator names" % " ".join(cli))
        check(fifo in err and "in no storage pool" in err, "keel %s: %r" % (" ".join(cli), err))
        check(time.time() - t < 25, "%s took %.1f s" % (url, time.time() - t))
        check(e.api_ok("GET", "/v1/vms/cl/checkpoints") == tree,
              "a refused %s changed the checkpoint tree" % url)
        check(current() == now and e.vm("cl")["state"] == "Off",
              "a refused %s changed the VM: %r" % (url, e.vm("cl")))
        check(sorted(os.listdir(e.dir)) == files, "a refused %s changed the files" % url)

    try:
        # The current disk's locator: deleting 'two' merges that disk into two's file.
        pristine = open(now, "rb").read()
        set_vhdx_parent_locator(now, fifo)
        refused("DELETE", "/v1/vms/cl/checkpoints/two", ("checkpoint", "delete", "cl", "two"))
        refused("DELETE", "/v1/vms/cl/checkpoints/one", ("checkpoint", "delete", "cl", "one"))
        # A checkpoint's own file (two's, whose parent is one's): applying it is refused too.
        with open(now, "wb") as f:
            f.write(pristine)
        saved = open(two, "rb").read()
        set_vhdx_parent_locator(two, fifo)
        refused("POST", "/v1/vms/cl/checkpoints/two/apply",
                ("checkpoint", "apply", "cl", "two"))
        with open(two, "wb") as f:
            f.write(saved)
        # A damaged current disk does not keep the VM from its checkpoints: the apply
        # drops it unopened and the VM goes on from a new child of two's file.
        set_vhdx_parent_locator(now, fifo)
        e.keel("checkpoint", "apply", "cl", "two", timeout=30)
        check(not os.path.exists(now), "the current disk %s stays after the apply" % now)
        check(current() not in (now, two), "after the apply: %r" % e.vm("cl"))
        e.keel("checkpoint", "delete", "cl", "two")
        e.keel("checkpoint", "delete", "cl", "one")
        vm = e.start("cl")
        check(vm["state"] == "Running", "cl after the deletes: %r" % vm)
        e.console_until("cl", "ready for input")
        e.keel("vm", "turn-off", "cl")
        e.wait_state("cl", "Off")
    finally:
        shutil.rmtree(outside, ignore_errors=True)


def case_jail_chain_limit(e):
    """Review of issue 10, finding 2: the 64 parents a VM's disks may have in all are counted
    where they are added (an attach, a checkpoint), not only at the start: a 64-parent chain is
    accepted and starts, a 65-parent one is refused at the attach naming the 64 in all."""
    e.start_keeld()
    prev = os.path.join(e.dir, "d0.vhdx")
    e.keel("disk", "create", prev, "--size", "8M")
    for i in range(1, 66):
        cur = os.path.join(e.dir, "d%d.vhdx" % i)
        e.keel("disk", "create", cur, "--parent", prev)
        prev = cur
    code, doc = e.curl("POST", "/v1/vms", {"name": "lc", "kernel": e.a.guest,
                                           "memory": 16 << 20, "disks": [{"path": prev}]})
    msg = json.dumps(doc)
    check(400 <= code < 500 and "65 parents in all" in msg and "the 64 a VM" in msg and
          "merge" in msg, "65 parents: HTTP %d %r" % (code, doc))
    e.create("lc", disks=[{"path": os.path.join(e.dir, "d64.vhdx")}])
    e.start("lc")
    e.console_until("lc", "ready for input")
    e.keel("vm", "turn-off", "lc")
    e.wait_state("lc", "Off")


def case_jail_ckpt_limit(e):
    """Review of issue 10, finding 2: checkpoints of a 4-disk VM stop at 16 (64 parents in
    all), the 17th refused naming the 64, and the VM still starts."""
    e.start_keeld()
    disks = []
    for i in range(4):
        p = os.path.join(e.dir, "k%d.vhdx" % i)
        e.keel("disk", "create", p, "--size", "8M")
        disks.append({"path": p})
    e.create("ck", disks=disks)
    for i in range(16):
        e.keel("checkpoint", "create", "ck", "--name", "c%d" % i)
    _, err = e.keel("checkpoint", "create", "ck", "--name", "c16", want=None)
    check("68 disk parents in all" in err and "the 64 a VM" in err, "17th checkpoint: %r" % err)
    e.start("ck")
    e.console_until("ck", "ready for input")
    e.keel("vm", "turn-off", "ck")
    e.wait_state("ck", "Off")


def case_jail_clone_fallback(e):
    """Review of issue 10, finding 4: without clone3 (forced by KEELD_TEST_NO_CLONE3, as on
    a kernel before 5.3 or under a container's seccomp filter) keeld starts the worker with
    clone, held before exec until it is in its cgroup: the VM runs jailed, as a PID 1, and
    (on a host with cgroups v2) in its own cgroup."""
    os.environ["KEELD_TEST_NO_CLONE3"] = "1"
    try:
        e.start_keeld()
    finally:
        del os.environ["KEELD_TEST_NO_CLONE3"]
    e.create("cf")
    vm = e.start("cf")
    e.console_until("cf", "ready for input")
    log, _ = e.keel("vm", "log", "cf")
    check("starting the worker with clone" in log, "no fallback in the log:\n%s" % log)
    check_jailed(e, vm, "cf")
    st = proc_status(str(vm["pid"]))
    check(st["NSpid"].split()[-1] == "1", "the worker is not PID 1 of its own: %r" % st["NSpid"])
    cg = open("/proc/%d/cgroup" % vm["pid"]).read()
    if "keel.slice" in open(e.keeld_log).read() and "per-VM cgroups under" in open(e.keeld_log).read():
        check("/keel.slice/vm-%s" % vm["id"] in cg, "the worker is in %r" % cg)
    e.keel("vm", "turn-off", "cf")
    e.wait_state("cf", "Off")


def switches(e):
    return {s["name"]: s for s in e.api_ok("GET", "/v1/switches")}


def ns_addrs(e, dev):
    """The IPv4 addresses (a.b.c.d/N) of dev in keeld's namespace."""
    doc = json.loads(e.ns("ip", "-j", "-4", "addr", "show", "dev", dev) or "[]")
    return sorted("%s/%d" % (a["local"], a["prefixlen"]) for d in doc for a in d["addr_info"])


def ns_addrs6(e, dev):
    """The IPv6 addresses (link-local ones too) of dev in keeld's namespace."""
    doc = json.loads(e.ns("ip", "-j", "-6", "addr", "show", "dev", dev) or "[]")
    return sorted(a["local"] for d in doc for a in d["addr_info"])


def ns_ipv6_off(e, dev):
    return e.ns("cat", "/proc/sys/net/ipv6/conf/%s/disable_ipv6" % dev).strip() == "1"


def wait_link_local(e, dev):
    """dev's IPv6 link-local address, once the kernel has given it one (30 s at most)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        ll = [a for a in ns_addrs6(e, dev) if a.startswith("fe80:")]
        if ll:
            return ll
        time.sleep(0.2)
    check(False, "%s has no IPv6 link-local address: %s" % (dev, e.ns("ip", "addr")))


def ns_master(e, dev):
    doc = json.loads(e.ns("ip", "-j", "link", "show", "dev", dev))
    return doc[0].get("master")


def ns_links(e):
    return sorted(d["ifname"] for d in json.loads(e.ns("ip", "-j", "link", "show")))


def dnsmasq_of(e, sw):
    """The dnsmasq serving switch sw (its pid from keeld, checked in /proc)."""
    pid = (sw.get("dhcp") or {}).get("pid")
    check(pid and pid_alive(pid), "switch %s has no dnsmasq: %r" % (sw["name"], sw))
    args = open("/proc/%d/cmdline" % pid).read().split("\0")
    check(args[0] == "dnsmasq" and "--conf-file=%s/dnsmasq.conf" % sw["dhcp"]["directory"] in
          args, "dnsmasq %d: %r" % (pid, args))
    return pid


def case_switches(e):
    """Issue 12: virtual switches. The Default Switch from the first start (a /24 that no route
    uses, NAT rules, dnsmasq); internal, private and external switches as bridges, addresses
    and nftables chains in keeld's network namespace; bad input refused with nothing made; a
    VM's adapter on a switch is a tap on its bridge; a switch in use is not deleted; keeld
    restarted (killed, with the bridge and the ruleset gone) brings everything back with the
    same subnet; a dead dnsmasq is restarted; a DHCP client on the Default Switch gets a lease
    that `keel vm show` reports for the adapter with that MAC."""
    if not e.netns:
        print("SKIP: switches: keeld's network namespace and its bridges need root")
        return 77
    # A stand-in for the host's uplink in the namespace: a veth with an address and the
    # default route, before keeld's first start (the Default Switch must avoid 10.70/16).
    e.ns("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
    e.ns("ip", "addr", "add", "10.70.0.1/16", "dev", "up0")
    e.ns("ip", "link", "set", "up0", "up")
    e.ns("ip", "link", "set", "up1", "up")
    e.ns("ip", "route", "add", "default", "via", "10.70.0.254")
    # The host's routes over the first candidates (172.30.0/24, 172.30.1/24 and part of
    # 172.30.2/24, on a link of their own): the Default Switch takes the first /24 none
    # overlaps.
    e.ns("ip", "link", "add", "dm0", "type", "veth", "peer", "name", "dm1")
    e.ns("ip", "link", "set", "dm0", "up")
    e.ns("ip", "link", "set", "dm1", "up")
    for r in ("172.30.0.0/24", "172.30.1.0/24", "172.30.2.128/25"):
        e.ns("ip", "route", "add", r, "dev", "dm0")
    e.start_keeld()
    sws = switches(e)
    check(list(sws) == ["Default Switch"], "switches at the first start: %r" % sws)
    d = sws["Default Switch"]
    check(d["default"] and d["type"] == "internal" and d["nat"] and d["up"] and
          d["subnet"] == "172.30.3.0/24", "Default Switch (the host routes 172.30.0-2): %r" % d)
    subnet = d["subnet"]
    check(ns_addrs(e, d["bridge"]) == [d["host_address"] + "/24"],
          "Default Switch bridge addresses: %r" % ns_addrs(e, d["bridge"]))
    rules = e.ns("nft", "list", "table", "inet", "keel")
    check("ip saddr %s ip daddr != %s masquerade" % (subnet, subnet) in rules,
          "no masquerade rule for %s:\n%s" % (subnet, rules))
    check(e.ns("cat", "/proc/sys/net/ipv4/ip_forward").strip() == "1", "forwarding is off")
    dns1 = dnsmasq_of(e, d)
    conf = open(os.path.join(d["dhcp"]["directory"], "dnsmasq.conf")).read()
    check("dhcp-ignore-clid" in conf and "interface=%s" % d["bridge"] in conf and
          "dhcp-leasefile=%s/leases" % d["dhcp"]["directory"] in conf, "dnsmasq.conf:\n" + conf)
    # Internal and private switches.
    out, _ = e.keel("switch", "create", "lan", "--type", "internal", "--subnet", "10.61.0.0/24")
    check("host address 10.61.0.1" in out, "create lan: %r" % out)
    lan = switches(e)["lan"]
    check(ns_addrs(e, lan["bridge"]) == ["10.61.0.1/24"] and not lan["nat"] and
          "dhcp" not in lan, "lan: %r %r" % (lan, ns_addrs(e, lan["bridge"])))
    e.keel("switch", "create", "iso", "--type", "private")
    iso = switches(e)["iso"]
    check(ns_addrs(e, iso["bridge"]) == [] and "subnet" not in iso, "iso: %r" % iso)
    rules = e.ns("nft", "list", "table", "inet", "keel")
    check('iifname "%s" drop' % iso["bridge"] in rules.split("chain %s_in" % iso["bridge"])[1],
          "private switch without an input drop:\n" + rules)
    # Bad input: a clear 4xx and nothing made (no switch, no link).
    links = ns_links(e)
    before = switches(e)
    for body, want, msg in (
            ({"name": "x", "type": "external", "adapter": "nope0"}, 400,
             "there is no network adapter 'nope0'"),
            ({"name": "x", "type": "internal", "subnet": "10.70.5.0/24"}, 400,
             "overlaps the host's route to 10.70.0.0/16 (dev up0)"),
            ({"name": "x", "type": "internal", "subnet": "10.61.0.0/16"}, 400,
             "overlaps switch 'lan' (10.61.0.0/24)"),
            ({"name": "x", "type": "internal", "subnet": "10.62.0.1/24"}, 400,
             "not an IPv4 network"),
            ({"name": "x", "type": "private", "subnet": "10.62.0.0/24"}, 400,
             "a private switch has no subnet"),
            ({"name": "x", "type": "bridge"}, 400, "external, internal or private"),
            ({"name": "x", "type": "external", "adapter": "lo"}, 400, "not a network adapter"),
            ({"name": "x/y", "type": "private"}, 400, "needs a 'name'"),
            ({"name": "x", "type": "private", "vlan": 5000}, 400, "bad field 'vlan'"),
            ({"name": "lan", "type": "private"}, 409, "already exists"),
            ({"name": "x", "type": "internal", "default": True}, 409,
             "there is already a Default Switch")):
        e.api_err("POST", "/v1/switches", body, want=want, msg=msg)
    e.api_err("DELETE", "/v1/switches/Default%20Switch", want=409, msg="cannot be deleted")
    e.api_err("PATCH", "/v1/switches/Default%20Switch", {"nat": False},
              msg="not configurable")
    e.api_err("PATCH", "/v1/switches/lan", {"allow_management_os": True},
              msg="only an external switch")
    e.api_err("DELETE", "/v1/switches/nosuch", want=404, msg="no switch named 'nosuch'")
    _, err = e.keel("switch", "create", "x", "--type", "internal", "--nat", "maybe", want=2)
    check("--nat takes on or off" in err, "keel --nat maybe: %r" % err)
    check(switches(e) == before and ns_links(e) == links,
          "refused requests changed something: %r %r" % (switches(e), ns_links(e)))
    # set: NAT on for lan brings its dnsmasq and masquerade.
    e.keel("switch", "set", "lan", "--nat", "on")
    lan = switches(e)["lan"]
    dnsmasq_of(e, lan)
    check("ip saddr 10.61.0.0/24 ip daddr != 10.61.0.0/24 masquerade" in
          e.ns("nft", "list", "table", "inet", "keel"), "lan's NAT rules")
    # Each set of a NAT switch restarts its dnsmasq: repeated, it still runs. (The new one's
    # pidfd may take the old one's number while keeld polls; keeld then reaps only a
    # dnsmasq that has ended, never by waiting. This does not force that race.)
    for _ in range(3):
        e.keel("switch", "set", "lan", "--nat", "on")
        time.sleep(0.5)
    dnsmasq_of(e, switches(e)["lan"])
    e.keel("switch", "set", "lan", "--nat", "off")
    check("dhcp" not in switches(e)["lan"], "lan still has DHCP after --nat off")
    # External: the adapter bridged, its address and default route on the switch's bridge,
    # both back on the adapter when the switch goes.
    out, _ = e.keel("switch", "create", "ext", "--type", "external", "--adapter", "up0")
    ext = switches(e)["ext"]
    check(ns_master(e, "up0") == ext["bridge"] and ns_addrs(e, "up0") == [] and
          ns_addrs(e, ext["bridge"]) == ["10.70.0.1/16"] and
          "default via 10.70.0.254 dev %s" % ext["bridge"] in e.ns("ip", "route"),
          "external: %r %r %s" % (ext, ns_addrs(e, ext["bridge"]), e.ns("ip", "route")))
    # Its bridge has the adapter's MAC (the host's address on the network keeps it).
    macs = [json.loads(e.ns("ip", "-j", "link", "show", "dev", d))[0]["address"]
            for d in ("up0", ext["bridge"])]
    check(macs[0] == macs[1], "external bridge's MAC %s, its adapter's %s" % (macs[1], macs[0]))
    e.api_err("POST", "/v1/switches", {"name": "x", "adapter": "up0"}, msg="already bridged")
    # With the management OS the bridge has IPv6 (its link-local address); the adapter, a
    # port, has no address of either family.
    wait_link_local(e, ext["bridge"])
    check(ns_ipv6_off(e, "up0") and ns_addrs6(e, "up0") == [],
          "up0 keeps IPv6 as a port: %s" % e.ns("ip", "addr", "show", "dev", "up0"))
    e.keel("switch", "delete", "ext")
    check(ns_master(e, "up0") is None and ns_addrs(e, "up0") == ["10.70.0.1/16"] and
          "default via 10.70.0.254 dev up0" in e.ns("ip", "route") and
          ext["bridge"] not in ns_links(e), "external switch deleted: %s" % e.ns("ip", "route"))
    check(not ns_ipv6_off(e, "up0"), "up0's IPv6 not given back")
    wait_link_local(e, "up0")
    # --allow-management-os off: the host keeps no address on that network, of either
    # family, not even a link-local one, on the bridge or the adapter; on again gives the
    # bridge both back, and deleting the switch the adapter.
    e.keel("switch", "create", "ext", "--type", "external", "--adapter", "up0",
           "--allow-management-os", "off")
    ext = switches(e)["ext"]
    for dev in (ext["bridge"], "up0"):
        check(ns_addrs(e, dev) == [] and ns_addrs6(e, dev) == [] and ns_ipv6_off(e, dev),
              "management OS off: %s has addresses: %s" %
              (dev, e.ns("ip", "addr", "show", "dev", dev)))
    check("default via 10.70.0.254" not in e.ns("ip", "route"),
          "management OS off: a default route: %s" % e.ns("ip", "route"))
    e.keel("switch", "set", "ext", "--allow-management-os", "on")
    check(ns_addrs(e, ext["bridge"]) == ["10.70.0.1/16"] and not ns_ipv6_off(e, ext["bridge"]),
          "management OS on again: %s" % e.ns("ip", "addr", "show", "dev", ext["bridge"]))
    wait_link_local(e, ext["bridge"])
    e.keel("switch", "set", "ext", "--allow-management-os", "off")
    check(ns_addrs(e, ext["bridge"]) == [] and ns_addrs6(e, ext["bridge"]) == [],
          "management OS off again: %s" % e.ns("ip", "addr", "show", "dev", ext["bridge"]))
    e.keel("switch", "delete", "ext")
    check(ns_addrs(e, "up0") == ["10.70.0.1/16"] and not ns_ipv6_off(e, "up0") and
          "default via 10.70.0.254 dev up0" in e.ns("ip", "route"),
          "management OS off, switch deleted: %s" % e.ns("ip", "addr", "show", "dev", "up0"))
    # A VM on a switch: its tap on the bridge while it runs; the switch cannot go.
    e.api_err("POST", "/v1/vms", {"name": "n0", "kernel": e.a.guest, "memory": 16 << 20,
                                 "nets": [{"switch": "nosuch"}]},
              msg="there is no switch named 'nosuch'")
    e.api_err("POST", "/v1/vms", {"name": "n0", "kernel": e.a.guest, "memory": 16 << 20,
                                 "nets": [{"switch": "lan", "tap": "mytap"}]},
              msg="gets its tap from keeld")
    e.keel("vm", "create", "n1", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=lan", "--net", "switch=iso")
    n1 = e.vm("n1")
    taps = [n["tap"] for n in n1["nets"]]
    check([n["switch"] for n in n1["nets"]] == ["lan", "iso"] and
          all(t == "k" + n["mac"].replace(":", "") for t, n in zip(taps, n1["nets"])),
          "n1's adapters: %r" % n1["nets"])
    e.start("n1")
    check(ns_master(e, taps[0]) == lan["bridge"] and ns_master(e, taps[1]) == iso["bridge"],
          "n1's taps: %s" % e.ns("bridge", "link"))
    _, err = e.keel("switch", "delete", "lan", want=5)
    check("switch 'lan' is in use by VM 'n1'" in err, "delete a switch in use: %r" % err)
    out, _ = e.keel("switch", "show", "lan")
    check(re.search(r"^VMs: +n1$", out, re.M), "switch show lan: %r" % out)
    # keeld killed; the bridge of lan and the whole ruleset gone: all back at the next start,
    # the Default Switch on the same subnet, the running VM's tap still on its bridge.
    # A new host route over the Default Switch's subnet meanwhile: it keeps its subnet.
    e.kill_keeld()
    e.ns("nft", "flush", "ruleset")
    e.ns("ip", "link", "del", iso["bridge"])
    e.ns("ip", "route", "add", "172.30.3.0/25", "dev", "dm0")
    e.start_keeld()
    sws = switches(e)
    check(sorted(sws) == ["Default Switch", "iso", "lan"] and
          sws["Default Switch"]["subnet"] == subnet, "after a restart: %r" % sws)
    e.ns("ip", "route", "del", "172.30.3.0/25", "dev", "dm0")
    check(ns_master(e, taps[0]) == lan["bridge"] and iso["bridge"] in ns_links(e),
          "bridges after the restart: %s" % e.ns("bridge", "link"))
    rules = e.ns("nft", "list", "table", "inet", "keel")
    check("masquerade" in rules and "%s_in" % iso["bridge"] in rules, "rules back:\n" + rules)
    # A host firewall reload (the whole ruleset flushed) while keeld runs: told by nftables,
    # it blocks every switch's ports, then puts each switch's rules back.
    log_at = len(open(e.keeld_log).read())
    e.ns("nft", "flush", "ruleset")

    def all_back(rules):
        return "masquerade" in rules and all(
            "keel-marker %s_guard" % b in rules for b in (d["bridge"], lan["bridge"],
                                                         iso["bridge"]))

    deadline = time.time() + 15
    while time.time() < deadline and not all_back(e.ns("nft", "list", "ruleset")):
        time.sleep(0.1)
    rules = e.ns("nft", "list", "ruleset")
    check(all_back(rules), "rules not back after a flush while keeld runs:\n" + rules)
    log = open(e.keeld_log).read()[log_at:]
    blocked = [m.start() for m in re.finditer(r"nftables told keeld\): its VMs' ports are "
                                              r"blocked", log)]
    loaded = [m.start() for m in re.finditer(r"its rules loaded again \d+ ms after", log)]
    check(len(blocked) == 3 and len(loaded) == 3 and max(blocked) < min(loaded),
          "not every switch's ports blocked before the first reload:\n" + log)
    dns2 = dnsmasq_of(e, sws["Default Switch"])
    check(dns2 != dns1 and not pid_alive(dns1), "the old dnsmasq %d still runs" % dns1)
    # A dnsmasq that dies is started again.
    os.kill(dns2, signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline:
        pid = (switches(e)["Default Switch"].get("dhcp") or {}).get("pid")
        if pid and pid != dns2:
            break
        time.sleep(0.2)
    dns3 = dnsmasq_of(e, switches(e)["Default Switch"])
    check(dns3 != dns2, "dnsmasq was not restarted")
    # A DHCP client on the Default Switch (a veth in a namespace of its own, standing in for
    # a guest): its lease shows on the adapter with its MAC.
    guest_ns = e.netns + "g"
    subprocess.run(["ip", "netns", "add", guest_ns], check=True)
    try:
        e.ns("ip", "link", "add", "gv0", "type", "veth", "peer", "name", "gv1")
        e.ns("ip", "link", "set", "gv0", "master", d["bridge"], "up")
        e.ns("ip", "link", "set", "gv1", "netns", guest_ns)
        mac = json.loads(subprocess.run(["ip", "netns", "exec", guest_ns, "ip", "-j", "link",
                                         "show", "gv1"], capture_output=True, text=True,
                                        check=True).stdout)[0]["address"]
        subprocess.run(["ip", "netns", "exec", guest_ns, "ip", "link", "set", "gv1", "up"],
                       check=True)
        e.keel("vm", "create", "g1", "--kernel", e.a.guest, "--memory", "16M", "--net",
               "switch=Default Switch,mac=%s" % mac)
        r = subprocess.run(["ip", "netns", "exec", guest_ns, "busybox", "udhcpc", "-i", "gv1",
                            "-n", "-q", "-f", "-t", "5", "-s", "/bin/true"],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "udhcpc: %s %s" % (r.stdout, r.stderr))
        m = re.search(r"lease of (\S+) obtained", r.stdout + r.stderr)
        check(m, "udhcpc got no lease: %s %s" % (r.stdout, r.stderr))
        ip = m.group(1)
        net = subnet.rsplit(".", 1)[0] + "."
        check(ip.startswith(net), "lease %s is not in %s" % (ip, subnet))
        check(e.vm("g1")["nets"][0]["addresses"] == [ip], "g1: %r" % e.vm("g1")["nets"])
        out, _ = e.keel("vm", "net", "list", "g1")
        check(re.search(r"^0 +Default Switch +k\w+ +%s +- +m +- +%s$" % (mac, re.escape(ip)), out,
                        re.M),
              "keel vm net list: %r" % out)
        # A port forward (Add-NetNatStaticMapping): host port 8080 to g1's port 80, from the
        # host itself and from an outside namespace behind up0; g1's address reserved.
        gexec = ["ip", "netns", "exec", guest_ns]
        subprocess.run(gexec + ["ip", "addr", "add", ip + "/24", "dev", "gv1"], check=True)
        subprocess.run(gexec + ["ip", "route", "add", "default", "via", d["host_address"]],
                       check=True)
        www = os.path.join(e.dir, "www")
        os.mkdir(www)
        with open(os.path.join(www, "probe"), "w") as f:
            f.write("forwarded\n")
        httpd = subprocess.Popen(gexec + ["busybox", "httpd", "-f", "-p", "80", "-h", www])
        e.pids.add(httpd.pid)
        e.api_err("POST", "/v1/switches/lan/forwards", {"host_port": 8080, "vm": "g1",
                                                       "port": 80}, msg="has no NAT")
        e.api_err("POST", "/v1/switches/Default%20Switch/forwards",
                  {"host_port": 8080, "vm": "n1", "port": 80},
                  msg="VM 'n1' has no adapter on switch 'Default Switch'")
        e.api_err("POST", "/v1/switches/Default%20Switch/forwards",
                  {"host_port": 0, "vm": "g1", "port": 80}, msg="needs host_port and port")
        out, _ = e.keel("switch", "forward", "add", "Default Switch", "--host-port", "8080",
                        "--vm", "g1", "--port", "80")
        e.api_err("POST", "/v1/switches/Default%20Switch/forwards",
                  {"host_port": 8080, "vm": "g1", "port": 81}, want=409,
                  msg="host port tcp/8080 is already forwarded")
        out, _ = e.keel("switch", "forward", "list", "Default Switch")
        check(re.search(r"^tcp +8080 +g1 +%s +80$" % re.escape(ip), out, re.M),
              "forward list: %r" % out)
        hosts = open(os.path.join(d["dhcp"]["directory"], "hosts")).read()
        check(hosts == "%s,%s\n" % (mac, ip), "DHCP reservation: %r" % hosts)
        deadline = time.time() + 10
        got = ""
        while time.time() < deadline and "forwarded" not in got:
            got = e.ns("curl", "-s", "-m", "5", "http://10.70.0.1:8080/probe", check=False)
            time.sleep(0.2)
        check(got == "forwarded\n", "host port 8080 from the host itself: %r" % got)
        outside = e.netns + "o"
        subprocess.run(["ip", "netns", "add", outside], check=True)
        try:
            e.ns("ip", "link", "set", "up1", "netns", outside)
            oexec = ["ip", "netns", "exec", outside]
            subprocess.run(oexec + ["ip", "addr", "add", "10.70.0.2/16", "dev", "up1"],
                           check=True)
            subprocess.run(oexec + ["ip", "link", "set", "up1", "up"], check=True)
            r = subprocess.run(oexec + ["curl", "-s", "-m", "10", "http://10.70.0.1:8080/probe"],
                               capture_output=True, text=True, timeout=30)
            check(r.stdout == "forwarded\n", "host port 8080 from outside: %r %r" %
                  (r.stdout, r.stderr))
        finally:
            subprocess.run(["ip", "netns", "del", outside], capture_output=True)
        e.keel("switch", "forward", "delete", "Default Switch", "--host-port", "8080")
        check("dnat" not in e.ns("nft", "list", "chain", "inet", "keel",
                                 d["bridge"] + "_dnatout").replace("_dnat", ""),
              "the forward's rule stayed")
        check(open(os.path.join(d["dhcp"]["directory"], "hosts")).read() == "",
              "the reservation stayed")
        httpd.kill()
        # The MAC spoofing guard: a port whose frames come from another MAC than its VM's
        # gets no lease, until the VM's adapter allows it (its rules reloaded on vm set).
        # The port: a veth named as VM sp's tap, its far end in the client's namespace.
        e.keel("vm", "create", "sp", "--kernel", e.a.guest, "--memory", "16M", "--net",
               "switch=Default Switch,mac=02:00:00:00:aa:01")
        tap = e.vm("sp")["nets"][0]["tap"]
        check(tap == "k02000000aa01", "sp's tap: %r" % tap)
        e.ns("ip", "link", "add", tap, "type", "veth", "peer", "name", "sp1")
        e.ns("ip", "link", "set", tap, "master", d["bridge"], "up")
        e.ns("ip", "link", "set", "sp1", "netns", guest_ns)
        subprocess.run(["ip", "netns", "exec", guest_ns, "ip", "link", "set", "sp1", "address",
                        "02:00:00:00:bb:02", "up"], check=True)

        def lease(dev):
            r = subprocess.run(["ip", "netns", "exec", guest_ns, "busybox", "udhcpc", "-i",
                                dev, "-n", "-q", "-f", "-t", "3", "-T", "1", "-s", "/bin/true"],
                               capture_output=True, text=True, timeout=60)
            m = re.search(r"lease of (\S+) obtained", r.stdout + r.stderr)
            return m.group(1) if m else None

        rules = e.ns("nft", "list", "table", "bridge", "keel")
        check('iifname "%s" ether saddr != 02:00:00:00:aa:01 counter' % tap in rules,
              "no MAC spoofing guard for sp:\n" + rules)
        check(lease("sp1") is None, "a spoofed MAC got a lease through the guard")
        e.keel("vm", "set", "sp", "--net",
               "switch=Default Switch,mac=02:00:00:00:aa:01,mac-spoofing=on,dhcp-guard=on,"
               "router-guard=on")
        rules = e.ns("nft", "list", "table", "bridge", "keel")
        check("ether saddr != 02:00:00:00:aa:01" not in rules and
              'iifname "%s" udp sport 67 counter' % tap in rules.replace("ether type ip ", "") and
              "nd-router-advert" in rules, "sp's guards after set:\n" + rules)
        check(lease("sp1") is not None, "no lease with MAC spoofing allowed")
        e.keel("vm", "delete", "sp")
        check(tap not in e.ns("nft", "list", "table", "bridge", "keel"),
              "the deleted VM's guards stayed")
    finally:
        subprocess.run(["ip", "netns", "del", guest_ns], capture_output=True)
    # VLAN access mode: the tap untagged in VLAN 10 only (bridge VLAN filtering). Bad VLANs
    # refused with nothing made (no VM, no link).
    vms_before, links = sorted(v["name"] for v in e.api_ok("GET", "/v1/vms")), ns_links(e)
    e.api_err("POST", "/v1/vms", {"name": "v0", "kernel": e.a.guest, "memory": 16 << 20,
                                 "nets": [{"switch": "lan", "vlan": 4095}]},
              msg="nets[].vlan")
    e.api_err("POST", "/v1/vms", {"name": "v0", "kernel": e.a.guest, "memory": 16 << 20,
                                 "nets": [{"tap": "t0", "vlan": 10}]},
              msg="a VLAN and the guards are a switch's")
    _, err = e.keel("vm", "create", "v0", "--kernel", e.a.guest, "--net", "switch=lan,vlan=0",
                    want=2)
    check("vlan is from 1 to 4094" in err, "keel --net vlan=0: %r" % err)
    vms = sorted(v["name"] for v in e.api_ok("GET", "/v1/vms"))
    check(vms == vms_before and ns_links(e) == links,
          "refused VLANs made something: VMs %r (before %r), links %r (before %r)" %
          (vms, vms_before, ns_links(e), links))
    e.keel("vm", "create", "vl", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=lan,vlan=10")
    probe = subprocess.run(["ip", "netns", "exec", e.netns, "ip", "link", "add", "vfprobe",
                            "type", "bridge", "vlan_filtering", "1"], capture_output=True)
    if probe.returncode == 0:
        e.ns("ip", "link", "del", "vfprobe")
        vl = e.start("vl")
        vtap = vl["nets"][0]["tap"]
        vlans = json.loads(e.ns("bridge", "-j", "vlan", "show", "dev", vtap))
        vids = {v["vlan"]: v.get("flags", []) for v in vlans[0]["vlans"]}
        check(list(vids) == [10] and "PVID" in vids[10] and "Egress Untagged" in vids[10],
              "vl's tap VLANs: %r" % vlans)
        e.keel("vm", "turn-off", "vl")
        e.wait_state("vl", "Off")
    else:
        # This kernel has no bridge VLAN filtering: the VM is refused at start, saying so.
        print("switches: this kernel has no bridge VLAN filtering; checking the refusal")
        _, err = e.keel("vm", "start", "vl", want=None)
        check("this kernel has no bridge VLAN filtering" in err + e.vm("vl")["state_reason"],
              "start with a VLAN without filtering: %r %r" % (err, e.vm("vl")))
        check(e.vm("vl")["state"] == "Off", "vl: %r" % e.vm("vl"))
    e.keel("vm", "delete", "vl")
    e.keel("vm", "turn-off", "n1")
    e.wait_state("n1", "Off")
    e.keel("vm", "delete", "n1")
    e.keel("switch", "delete", "lan")
    check(lan["bridge"] not in ns_links(e) and "%s_fwd" % lan["bridge"] not in
          e.ns("nft", "list", "table", "inet", "keel"), "lan's bridge or rules stayed")


def ip_state(e, dev):
    """dev's addresses (IPv4, and IPv6 of scope global with their flags and whether their
    lifetimes are forever; DAD's own flags aside) and its IPv4 and IPv6 routes (link-local
    ones aside), sorted, duplicates kept: to compare a link with another or with itself."""
    addrs, routes = [], []
    for d in json.loads(e.ns("ip", "-j", "addr", "show", "dev", dev) or "[]"):
        for a in d["addr_info"]:
            if a.get("scope") != "global":
                continue
            flags = sorted(k for k, v in a.items() if v is True and
                           k not in ("tentative", "optimistic", "dadfailed"))
            life = tuple("forever" if a[k] == 4294967295 else "finite"
                         for k in ("preferred_life_time", "valid_life_time"))
            addrs.append((a["local"], a["prefixlen"], tuple(flags), life))
    for fam in ("-4", "-6"):
        for r in json.loads(e.ns("ip", "-j", fam, "route", "show", "dev", dev) or "[]"):
            if not r["dst"].startswith("fe80:"):
                routes.append((r["dst"], r.get("gateway", ""), r.get("protocol", "boot"),
                               r.get("metric", 0), r.get("scope", "")))
    return sorted(addrs), sorted(routes)


def wait_dad(e, dev):
    """dev's addresses out of DAD (tentative), 10 s at most."""
    deadline = time.time() + 10
    while "tentative" in e.ns("ip", "-6", "addr", "show", "dev", dev):
        check(time.time() < deadline, "%s still tentative: %s" %
              (dev, e.ns("ip", "-6", "addr", "show", "dev", dev)))
        time.sleep(0.1)


def lifetimes(e, dev, local):
    for d in json.loads(e.ns("ip", "-j", "-6", "addr", "show", "dev", dev) or "[]"):
        for a in d["addr_info"]:
            if a["local"] == local:
                return a["preferred_life_time"], a["valid_life_time"]
    return None


def ipv6_adapter(e, configure_only=False):
    """A stand-in for the host's adapter in keeld's namespace, up0 (a veth): IPv4 with a
    default route, global and unique-local IPv6 addresses (one with DAD, nodad ones, one
    noprefixroute with finite lifetimes), an IPv6 default route via a link-local router and
    a static route via a global gateway. Its ip_state. configure_only: the veth is there,
    only its configuration is given it again (as a host's network configuration at boot)."""
    if not configure_only:
        e.ns("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
    for cmd in (("ip", "link", "set", "up0", "up"), ("ip", "link", "set", "up1", "up"),
                ("ip", "addr", "add", "10.80.0.1/16", "dev", "up0"),
                ("ip", "route", "add", "default", "via", "10.80.0.254", "dev", "up0"),
                ("ip", "-6", "addr", "add", "2001:db8:80::1/64", "dev", "up0"),
                ("ip", "-6", "addr", "add", "fd80::1/64", "dev", "up0", "nodad"),
                ("ip", "-6", "addr", "add", "2001:db8:81::1/64", "dev", "up0", "nodad",
                 "noprefixroute", "valid_lft", "3600", "preferred_lft", "1800"),
                ("ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "up0"),
                ("ip", "-6", "route", "add", "2001:db8:99::/48", "via", "2001:db8:80::fe",
                 "dev", "up0", "metric", "100", "proto", "static")):
        e.ns(*cmd)
    wait_dad(e, "up0")
    before = ip_state(e, "up0")
    check(len(before[0]) == 4 and len(before[1]) == 6, "the adapter's set-up: %r" % (before,))
    return before


RA_SEND = r"""
import socket, struct, sys
# A router advertisement from the link-local address of sys.argv[1] to all nodes, hop limit
# 255, router lifetime sys.argv[2] (0: not a default router), with one prefix information
# option (on-link, autonomous) for 2001:db8:77::/64, valid for sys.argv[3] seconds; the
# kernel fills in the ICMPv6 checksum.
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
idx = socket.if_nametoindex(sys.argv[1])
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
router, valid = (int(a) for a in sys.argv[2:4])
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, router, 0, 0)
pio = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, valid, 1800, 0) + socket.inet_pton(
    socket.AF_INET6, "2001:db8:77::")
for _ in range(3):
    s.sendto(ra + pio, ("ff02::1", 0, 0, idx))
"""


def send_ra(e, dev, router=0, valid=3600):
    """Router advertisements for 2001:db8:77::/64 (valid for valid seconds) out of dev in
    keeld's namespace, from a default router for router seconds (0: none)."""
    e.ns("python3", "-c", RA_SEND, dev, str(router), str(valid))


def slaac(e, dev, limit):
    """dev's addresses in 2001:db8:77::/64 (autoconfigured from send_ra's advertisements),
    after waiting up to limit seconds for one."""
    deadline = time.time() + limit
    while True:
        got = [a for a in ns_addrs6(e, dev) if a.startswith("2001:db8:77:")]
        if got or time.time() >= deadline:
            return got
        time.sleep(0.2)


def case_switch_ipv6(e):
    """Issue 12: an external switch moves the adapter's IPv6 with its IPv4, as Hyper-V
    does. The adapter (a veth) has IPv4 with a default route, and global and unique-local
    IPv6 addresses (nodad, noprefixroute, finite lifetimes) with a default route via a
    link-local router and a static route via a global gateway. With the management OS
    (the default) all of it is on the switch's bridge and none on the adapter; `off`: none
    on either, the bridge's IPv6 off (no autoconfiguration); `on` again: back on the bridge;
    deleted: back on the adapter exactly as it was. keeld restarted at each step changes
    nothing (nothing twice, nothing lost)."""
    if not e.netns:
        print("SKIP: switch-ipv6: keeld's network namespace and its bridges need root")
        return 77
    before = ipv6_adapter(e)
    e.start_keeld()
    e.keel("switch", "create", "ext6", "--type", "external", "--adapter", "up0")
    br = switches(e)["ext6"]["bridge"]

    def moved(when):
        wait_dad(e, br)
        check(ip_state(e, br) == before, "%s: the bridge has %r, the adapter had %r" %
              (when, ip_state(e, br), before))
        check(ip_state(e, "up0") == ([], []) and ns_addrs6(e, "up0") == [],
              "%s: the adapter kept %s" % (when, e.ns("ip", "addr", "show", "dev", "up0")))
        pref, valid = lifetimes(e, br, "2001:db8:81::1")
        check(1200 < pref <= 1800 and 3000 < valid <= 3600,
              "%s: lifetimes %d/%d, not ~1800/3600" % (when, pref, valid))
        wait_link_local(e, br)

    def none(when):
        for dev in (br, "up0"):
            check(ip_state(e, dev) == ([], []) and ns_addrs6(e, dev) == [] and
                  ns_ipv6_off(e, dev), "%s: %s has %s" %
                  (when, dev, e.ns("ip", "addr", "show", "dev", dev)))
        routes = e.ns("ip", "-6", "route") + e.ns("ip", "route")
        check("default" not in routes and "2001:db8" not in routes,
              "%s: routes left: %s" % (when, routes))

    def restart():
        e.kill_keeld()
        e.start_keeld()

    moved("created")
    restart()
    moved("created, keeld restarted")
    e.keel("switch", "set", "ext6", "--allow-management-os", "off")
    none("management OS off")
    restart()
    none("management OS off, keeld restarted")
    e.keel("switch", "set", "ext6", "--allow-management-os", "on")
    moved("management OS on again")
    restart()
    moved("management OS on again, keeld restarted")
    # A host reboot: the bridge gone, the adapter configured again by the host (IPv6 on, its
    # addresses and routes), keeld started: all of it moves to the new bridge, recorded
    # again, and goes back on delete.
    e.kill_keeld()
    e.ns("ip", "link", "del", br)
    e.ns("sysctl", "-q", "-w", "net.ipv6.conf.up0.disable_ipv6=0")
    check(ipv6_adapter(e, configure_only=True) == before, "the adapter configured again")
    e.start_keeld()
    moved("after a reboot")
    e.keel("switch", "delete", "ext6")
    check(br not in ns_links(e) and ns_master(e, "up0") is None, "the bridge stayed")
    wait_dad(e, "up0")
    check(ip_state(e, "up0") == before, "deleted: the adapter has %r, had %r" %
          (ip_state(e, "up0"), before))
    pref, valid = lifetimes(e, "up0", "2001:db8:81::1")
    check(1200 < pref <= 1800 and 3000 < valid <= 3600, "given back with %d/%d" % (pref, valid))
    # Made with the management OS off, deleted: the same, from nothing on the bridge.
    e.keel("switch", "create", "ext6", "--type", "external", "--adapter", "up0",
           "--allow-management-os", "off")
    br = switches(e)["ext6"]["bridge"]
    none("created with the management OS off")
    restart()
    none("created off, keeld restarted")
    # A router advertising a prefix on the adapter's network gives the bridge no address
    # while the management OS is off (its IPv6 is off); with it on, the same advertisements
    # give it one (they reach it: the check above can fail).
    wait_link_local(e, "up1")
    send_ra(e, "up1")
    check(slaac(e, br, 3) == [], "management OS off: an address from an RA: %s" %
          e.ns("ip", "-6", "addr", "show", "dev", br))
    none("management OS off, after router advertisements")
    e.keel("switch", "set", "ext6", "--allow-management-os", "on")
    wait_link_local(e, br)
    wait_dad(e, br)
    send_ra(e, "up1")
    check(slaac(e, br, 10), "management OS on: no address from the RA: %s" %
          e.ns("ip", "-6", "addr", "show", "dev", br))
    e.keel("switch", "delete", "ext6")
    wait_dad(e, "up0")
    check(ip_state(e, "up0") == before, "deleted (off): the adapter has %r, had %r" %
          (ip_state(e, "up0"), before))
    wait_link_local(e, "up0")
    # An address the adapter autoconfigured (SLAAC, from the advertisements) moves like the
    # others, and advertisements on the bridge renew it rather than add a second.
    send_ra(e, "up1")
    auto = slaac(e, "up0", 10)
    check(len(auto) == 1, "the adapter's SLAAC addresses: %r" % auto)
    with_auto = ip_state(e, "up0")
    e.keel("switch", "create", "ext6", "--type", "external", "--adapter", "up0")
    br = switches(e)["ext6"]["bridge"]
    wait_dad(e, br)
    check(ip_state(e, br) == with_auto, "SLAAC: the bridge has %r, the adapter had %r" %
          (ip_state(e, br), with_auto))
    send_ra(e, "up1")
    time.sleep(2)
    check(slaac(e, br, 0) == auto and ip_state(e, br) == with_auto,
          "SLAAC: after advertisements on the bridge: %s" %
          e.ns("ip", "-6", "addr", "show", "dev", br))
    e.keel("switch", "delete", "ext6")
    wait_dad(e, "up0")
    check(ip_state(e, "up0") == with_auto, "SLAAC: the adapter has %r, had %r" %
          (ip_state(e, "up0"), with_auto))


def routes_full(e, dev):
    """dev's IPv4 and IPv6 routes (link-local ones aside) with every field `ip -j` gives
    (gateway, protocol, metric, scope, prefsrc, flags such as onlink), the device name and
    expiry aside, sorted: to compare the routes of one link with another's."""
    out = []
    for fam in ("-4", "-6"):
        for r in json.loads(e.ns("ip", "-j", fam, "route", "show", "dev", dev) or "[]"):
            if r["dst"].startswith("fe80:"):
                continue
            r.pop("dev", None)
            r.pop("expires", None)
            out.append(json.dumps(r, sort_keys=True))
    return sorted(out)


def case_switch_routes(e):
    """Issue 12: an external switch moves every route of its adapter with its addresses, as
    they were: IPv4 routes other than the default one (a cloud server's /32 address whose
    gateway is reached through an on-link route: the default route is refused without it),
    their metric, protocol, source address and onlink flag; IPv4 addresses with their flags
    (noprefixroute, with another program's prefix route), lifetimes and prefix route metric;
    an IPv6 route whose gateway is
    reached only through a route listed after it. Another link's default route (metric 0)
    stays as it was. Deleted: all of it back on the adapter; no route lost on the
    way, and the host's default route never taken away for good."""
    if not e.netns:
        print("SKIP: switch-routes: keeld's network namespace and its bridges need root")
        return 77
    e.ns("ip", "link", "add", "up2", "type", "veth", "peer", "name", "up3")
    e.ns("ip", "link", "add", "other0", "type", "veth", "peer", "name", "other1")
    for cmd in (("ip", "link", "set", "up2", "up"), ("ip", "link", "set", "up3", "up"),
                ("ip", "link", "set", "other0", "up"), ("ip", "link", "set", "other1", "up"),
                ("ip", "addr", "add", "10.90.0.2/24", "dev", "other0"),
                ("ip", "route", "add", "default", "via", "10.90.0.1", "dev", "other0"),
                ("ip", "addr", "add", "172.31.5.9/32", "dev", "up2"),
                ("ip", "route", "add", "172.31.1.1", "dev", "up2", "proto", "static",
                 "scope", "link"),
                ("ip", "route", "add", "default", "via", "172.31.1.1", "dev", "up2", "proto",
                 "dhcp", "src", "172.31.5.9", "metric", "50", "onlink"),
                ("ip", "route", "add", "10.55.0.0/16", "via", "172.31.1.1", "dev", "up2",
                 "proto", "static", "metric", "7"),
                # NetworkManager's way: the address without the kernel's prefix route, one
                # of its own with a metric, a DHCP lease's lifetimes
                ("ip", "addr", "add", "192.168.77.5/24", "dev", "up2", "noprefixroute",
                 "valid_lft", "86000", "preferred_lft", "86000"),
                ("ip", "route", "add", "192.168.77.0/24", "dev", "up2", "proto", "kernel",
                 "scope", "link", "src", "192.168.77.5", "metric", "100"),
                # an address whose kernel prefix route has a metric
                ("ip", "addr", "add", "192.168.78.5/24", "dev", "up2", "metric", "300"),
                ("ip", "-6", "addr", "add", "2001:db8:85::1/64", "dev", "up2", "nodad",
                 "noprefixroute"),
                ("ip", "-6", "route", "add", "2001:db8:85::/64", "dev", "up2", "proto",
                 "static", "metric", "5"),
                ("ip", "-6", "route", "add", "2001:db8:1::/48", "via", "2001:db8:85::fe",
                 "dev", "up2", "proto", "static", "metric", "9")):
        e.ns(*cmd)
    before, other = routes_full(e, "up2"), routes_full(e, "other0")
    check(len(before) == 7, "the adapter's routes: %r" % before)
    addrs = ip_state(e, "up2")[0]
    e.start_keeld()
    e.keel("switch", "create", "rt", "--type", "external", "--adapter", "up2")
    br = switches(e)["rt"]["bridge"]
    check(routes_full(e, br) == before, "created: the bridge has routes %r, the adapter had "
          "%r" % (routes_full(e, br), before))
    check(ip_state(e, br)[0] == addrs, "created: the bridge has %r" % (ip_state(e, br),))
    check(routes_full(e, "other0") == other, "another link's default route changed: %r, "
          "was %r" % (routes_full(e, "other0"), other))
    # The address renewed on the bridge (a DHCP client there): keeld's restart leaves it
    # as it is, not at the lifetimes it recorded.
    e.ns("ip", "addr", "change", "192.168.77.5/24", "dev", br, "noprefixroute", "valid_lft",
         "90000", "preferred_lft", "90000")
    e.kill_keeld()
    e.start_keeld()
    check(routes_full(e, br) == before, "keeld restarted: the bridge has routes %r" %
          routes_full(e, br))
    renewed = [a for d in json.loads(e.ns("ip", "-j", "-4", "addr", "show", "dev", br))
               for a in d["addr_info"] if a["local"] == "192.168.77.5"]
    check(len(renewed) == 1 and renewed[0]["valid_life_time"] > 88000,
          "keeld restarted: the renewed address is %r" % renewed)
    # The same address renewed on the adapter (a DHCP client still there), longer: keeld's
    # restart moves it with its new lifetimes.
    e.ns("ip", "addr", "add", "192.168.77.5/24", "dev", "up2", "noprefixroute", "valid_lft",
         "95000", "preferred_lft", "95000")
    e.kill_keeld()
    e.start_keeld()
    renewed = [a for d in json.loads(e.ns("ip", "-j", "-4", "addr", "show", "dev", br))
               for a in d["addr_info"] if a["local"] == "192.168.77.5"]
    check(len(renewed) == 1 and renewed[0]["valid_life_time"] > 93000 and
          "192.168.77.5/24" not in ns_addrs(e, "up2"),
          "keeld restarted after a renewal on the adapter: the bridge has %r, the adapter %r"
          % (renewed, ns_addrs(e, "up2")))
    check(routes_full(e, br) == before, "keeld restarted after a renewal on the adapter: the "
          "bridge has routes %r" % routes_full(e, br))
    e.keel("switch", "delete", "rt")
    check(routes_full(e, "up2") == before, "deleted: the adapter has routes %r, had %r" %
          (routes_full(e, "up2"), before))
    check(ip_state(e, "up2")[0] == addrs, "deleted: the adapter has %r" % (ip_state(e, "up2"),))
    check(routes_full(e, "other0") == other, "another link's default route changed: %r" %
          routes_full(e, "other0"))
    # More addresses than keeld lists at once: refused, saying so, nothing lost.
    many = ["2001:db8:86::%x/64" % i for i in range(1, 41)]
    for a in many:
        e.ns("ip", "-6", "addr", "add", a, "dev", "up2", "nodad")
    had = ip_state(e, "up2")
    _, err = e.keel("switch", "create", "rt", "--type", "external", "--adapter", "up2",
                    want=None)
    check("rt" not in switches(e), "a switch made with %d addresses on its adapter: %r" %
          (len(had[0]), switches(e).get("rt")))
    check("addresses" in err and "at most" in err, "the refusal says why: %r" % err)
    check(ip_state(e, "up2") == had and ns_master(e, "up2") is None,
          "refused: the adapter has %r, had %r" % (ip_state(e, "up2"), had))
    for a in many:
        e.ns("ip", "-6", "addr", "del", a, "dev", "up2")
    # An address put on the adapter while it is a port (a DHCP client still running there),
    # then keeld restarted: moved too, and what was moved before stays recorded: all of it
    # given back at the delete.
    e.keel("switch", "create", "rt", "--type", "external", "--adapter", "up2")
    e.ns("ip", "addr", "add", "172.31.9.9/32", "dev", "up2")
    e.kill_keeld()
    e.start_keeld()
    check(sorted(ns_addrs(e, br)) == ["172.31.5.9/32", "172.31.9.9/32", "192.168.77.5/24",
                                      "192.168.78.5/24"] and
          ns_addrs(e, "up2") == [], "restarted: the bridge has %r, the adapter %r" %
          (ns_addrs(e, br), ns_addrs(e, "up2")))
    e.keel("switch", "delete", "rt")
    check(routes_full(e, "up2") == before, "deleted after an address was added: the adapter "
          "has routes %r, had %r" % (routes_full(e, "up2"), before))
    check(ip_state(e, "up2")[0] == sorted(addrs + [("172.31.9.9", 32, (), ("forever",
                                                                         "forever"))]),
          "deleted after an address was added: the adapter has %r" % (ip_state(e, "up2"),))
    # A host that forwards IPv6 (the adapter takes advertisements with accept_ra 2): the
    # default route and an address an advertisement gave the adapter. On the bridge, the
    # advertisements that follow are taken whole: the default route once, the address's
    # lifetime renewed (7200 s now: the advertisement's prefix read, not dropped).
    e.ns("sysctl", "-qw", "net.ipv6.conf.up2.accept_ra=2", "net.ipv6.conf.all.forwarding=1")
    wait_link_local(e, "up3")
    send_ra(e, "up3", router=1800)
    check(len(slaac(e, "up2", 10)) == 1, "no address from the advertisement: %s" %
          e.ns("ip", "-6", "addr", "show", "dev", "up2"))
    check("default" in e.ns("ip", "-6", "route", "show", "dev", "up2"),
          "no default route from the advertisement: %s" %
          e.ns("ip", "-6", "route", "show", "dev", "up2"))
    e.keel("switch", "create", "rt", "--type", "external", "--adapter", "up2")
    wait_link_local(e, br)
    send_ra(e, "up3", router=1800, valid=7200)
    deadline = time.time() + 10
    auto = slaac(e, br, 0)
    while not (len(auto) == 1 and lifetimes(e, br, auto[0])[1] > 3600) and \
            time.time() < deadline:
        time.sleep(0.2)
        auto = slaac(e, br, 0)
    check(len(auto) == 1 and lifetimes(e, br, auto[0])[1] > 3600,
          "the bridge's address from the advertisement not renewed: %s" %
          e.ns("ip", "-6", "addr", "show", "dev", br))
    defaults = [r for r in json.loads(e.ns("ip", "-j", "-6", "route", "show", "dev", br))
                if r["dst"] == "default"]
    check(len(defaults) == 1 and defaults[0].get("protocol") == "ra",
          "the bridge's default routes: %r" % defaults)
    e.keel("switch", "delete", "rt")
    e.ns("sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")


def routes_table(e, dev, table, fams=("-4", "-6")):
    """dev's routes of routing table `table` (families fams) with every field `ip -j` gives,
    the device name and expiry aside, sorted (routes_full's, for another table)."""
    out = []
    for fam in fams:
        for r in json.loads(e.ns("ip", "-j", fam, "route", "show", "table", str(table), "dev",
                                 dev) or "[]"):
            r.pop("dev", None)
            r.pop("expires", None)
            out.append(json.dumps(r, sort_keys=True))
    return sorted(out)


def case_switch_route_tables(e):
    """Issue 12: an external switch moves its adapter's routes of other routing tables than
    main too (policy routing: a cloud image's per-interface table, a VPN's, a table
    NetworkManager or systemd-networkd were told to use), IPv4 and IPv6: the kernel drops
    every route out of a link when its last IPv4 address goes and when its IPv6 is turned
    off, whatever the table, so keeld puts them on the bridge and gives them back. The
    local table (the kernel's own) is left to the kernel."""
    if not e.netns:
        print("SKIP: switch-route-tables: keeld's network namespace and its bridges need root")
        return 77
    e.ns("ip", "link", "add", "up6", "type", "veth", "peer", "name", "up7")
    for cmd in (("ip", "link", "set", "up6", "up"), ("ip", "link", "set", "up7", "up"),
                ("ip", "addr", "add", "172.30.7.2/24", "dev", "up6"),
                ("ip", "-6", "addr", "add", "2001:db8:87::2/64", "dev", "up6", "nodad"),
                ("ip", "route", "add", "default", "via", "172.30.7.1", "dev", "up6", "table",
                 "100", "proto", "static", "metric", "5"),
                ("ip", "route", "add", "172.30.7.0/24", "dev", "up6", "table", "100", "proto",
                 "static", "scope", "link", "src", "172.30.7.2"),
                ("ip", "route", "add", "10.66.0.0/16", "via", "172.30.7.1", "dev", "up6",
                 "table", "70000"),
                ("ip", "-6", "route", "add", "default", "via", "2001:db8:87::1", "dev", "up6",
                 "table", "100", "metric", "20"),
                ("ip", "rule", "add", "from", "172.30.7.2", "lookup", "100")):
        e.ns(*cmd)
    v4 = ("-4",)  # (IPv6 has no table 70000: ip says so and fails)
    t100, t70000, main = (routes_table(e, "up6", 100), routes_table(e, "up6", 70000, v4),
                          routes_full(e, "up6"))
    check(len(t100) == 3 and len(t70000) == 1, "the adapter's routes: %r %r" % (t100, t70000))
    e.start_keeld()
    e.keel("switch", "create", "tb", "--type", "external", "--adapter", "up6")
    br = switches(e)["tb"]["bridge"]
    for when in ("created", "keeld restarted"):
        has = routes_table(e, br, 100), routes_table(e, br, 70000, v4)
        check(has == (t100, t70000), "%s: the bridge has routes %r in tables 100 and 70000, "
              "the adapter had %r" % (when, has, (t100, t70000)))
        check(routes_full(e, br) == main, "%s: the bridge's main table %r, the adapter's %r" %
              (when, routes_full(e, br), main))
        if when == "created":
            e.kill_keeld()
            e.start_keeld()
    e.keel("switch", "delete", "tb")
    has = routes_table(e, "up6", 100), routes_table(e, "up6", 70000, v4)
    check(has == (t100, t70000), "deleted: the adapter has routes %r in tables 100 and 70000, "
          "had %r" % (has, (t100, t70000)))
    check(routes_full(e, "up6") == main, "deleted: the adapter's main table %r, had %r" %
          (routes_full(e, "up6"), main))
    e.ns("ip", "rule", "del", "from", "172.30.7.2", "lookup", "100")


def switch_dnsmasqs(e, br):
    """The pids of the dnsmasqs running with bridge br's configuration."""
    conf = "--conf-file=%s/dnsmasq.conf" % os.path.join(e.state, "switches", br)
    r = subprocess.run(["pgrep", "-f", "--", conf], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def crash_keeld_at(e, stage, cmd, must=True):
    """keeld killed at stage (the test hook STATE/switches/test-crash, test builds only) of
    the keel command cmd, then started again: True. must=False: a cmd that does not reach
    stage (keel's answer came, keeld still runs after 2 s) is False."""
    hook = os.path.join(e.state, "switches", "test-crash")
    with open(hook, "w") as f:
        f.write(stage)
    e.keel(*cmd, want=None)
    try:
        e.keeld_proc.wait(timeout=10 if must else 2)
    except subprocess.TimeoutExpired:
        os.unlink(hook)
        if must:
            raise Fail("keeld was not killed at %s: only a test build's keeld "
                       "(-Dtest_hooks=true) has the hook" % stage)
        return False
    e.keeld_exits(-signal.SIGKILL, "killed at %s" % stage)
    check("test-crash: keeld killed at %s" % stage in open(e.keeld_log).read(),
          "keeld was not killed at %s" % stage)
    os.unlink(hook)
    e.start_keeld()
    return True


def case_switch_crash(e):
    """Issue 12: keeld killed at each stage of a switch's creation (after its row is written,
    the bridge made, its rules loaded, its address or adapter's addresses on it, its dnsmasq
    started) and of its deletion (dnsmasq stopped, rules gone, the adapter given its
    addresses back, the bridge gone, the row gone; a test hook, STATE/switches/test-crash,
    in test builds only): at the next start the switch is all there (bridge up with its
    address, nftables chains, one dnsmasq, its directory, listed) or all gone (none of
    them), never half. An internal NAT switch, then an external one whose adapter has IPv4
    and IPv6: its addresses are on the bridge after each such restart, and on the adapter
    as they were once it is deleted."""
    if not e.netns:
        print("SKIP: switch-crash: keeld's network namespace and its bridges need root")
        return 77
    before = ipv6_adapter(e)
    e.start_keeld()

    def swdir(br):
        return os.path.join(e.state, "switches", br)

    def dnsmasqs(br):
        return switch_dnsmasqs(e, br)

    def chains(br):
        return [c for c in re.findall(r"chain (\S+)", e.ns("nft", "list", "ruleset"))
                if c.startswith(br + "_")]

    def complete(name, when, nat=True):
        sw = switches(e).get(name)
        check(sw and sw["up"], "%s: switch %s not there: %r" % (when, name, sw))
        br = sw["bridge"]
        link = json.loads(e.ns("ip", "-j", "link", "show", "dev", br))[0]
        check("UP" in link["flags"], "%s: %s is down: %r" % (when, br, link))
        have = chains(br)
        want = ["_fwd", "_in", "_out", "_guard"] + (["_nat"] if nat else [])
        check(all(br + c in have for c in want), "%s: %s's chains: %r" % (when, br, have))
        if nat:
            check(ns_addrs(e, br) == ["10.66.0.1/24"], "%s: %s's address: %r" %
                  (when, br, ns_addrs(e, br)))
            check(dnsmasqs(br) == [sw["dhcp"]["pid"]], "%s: %s's dnsmasq %r, keeld's %r" %
                  (when, br, dnsmasqs(br), sw["dhcp"]))
            check(os.path.isdir(swdir(br)), "%s: no %s" % (when, swdir(br)))
        else:
            wait_dad(e, br)
            check(ip_state(e, br) == before and ip_state(e, "up0") == ([], []) and
                  ns_master(e, "up0") == br, "%s: the bridge has %r, the adapter %r" %
                  (when, ip_state(e, br), ip_state(e, "up0")))
        return br

    def absent(name, br, when):
        check(name not in switches(e) and br not in ns_links(e) and not chains(br) and
              not dnsmasqs(br) and not os.path.exists(swdir(br)),
              "%s: switch %s (bridge %s) left: listed %r, links %r, chains %r, dnsmasq %r, "
              "directory %r" % (when, name, br, name in switches(e), ns_links(e), chains(br),
                                dnsmasqs(br), os.path.exists(swdir(br))))

    def adapter_back(when):
        wait_dad(e, "up0")
        check(ns_master(e, "up0") is None and ip_state(e, "up0") == before,
              "%s: the adapter has %r, had %r" % (when, ip_state(e, "up0"), before))

    create = ("switch", "create", "cr", "--type", "internal", "--subnet", "10.66.0.0/24",
              "--nat", "on")
    for stage in ("create-store", "up-bridge", "up-nft", "up-addrs", "up-dnsmasq"):
        crash_keeld_at(e, stage, create)
        br = complete("cr", "create killed at " + stage)
        e.keel("switch", "delete", "cr")
        absent("cr", br, "deleted after " + stage)
    for stage in ("down-dnsmasq", "down-nft", "down-bridge", "delete-store"):
        e.keel(*create)
        br = complete("cr", "created")
        crash_keeld_at(e, stage, ("switch", "delete", "cr"))
        if stage != "delete-store":
            complete("cr", "delete killed at " + stage)
            e.keel("switch", "delete", "cr")
        absent("cr", br, "delete killed at " + stage)
    # A switch's directory with its dnsmasq running and no row (what a keeld that deleted the
    # row first could leave): both gone at the next start.
    e.keel(*create)
    br = complete("cr", "created")
    pid = switches(e)["cr"]["dhcp"]["pid"]
    e.kill_keeld()
    sqlite(os.path.join(e.state, "keel.db"), "DELETE FROM switches WHERE name='cr'")
    e.start_keeld()
    check(not pid_alive(pid) and not dnsmasqs(br) and not os.path.exists(swdir(br)),
          "a deleted switch's dnsmasq %d (alive: %s) or directory (%s) left" %
          (pid, pid_alive(pid), os.path.exists(swdir(br))))
    e.ns("ip", "link", "del", br)
    ext = ("switch", "create", "ex", "--type", "external", "--adapter", "up0")
    for stage in ("create-store", "up-bridge", "up-taken", "up-addrs"):
        crash_keeld_at(e, stage, ext)
        br = complete("ex", "external create killed at " + stage, nat=False)
        e.keel("switch", "delete", "ex")
        absent("ex", br, "external deleted after " + stage)
        adapter_back("external deleted after " + stage)
    for stage in ("down-nft", "down-adapter", "down-bridge", "delete-store"):
        e.keel(*ext)
        br = complete("ex", "external created", nat=False)
        crash_keeld_at(e, stage, ("switch", "delete", "ex"))
        if stage != "delete-store":
            complete("ex", "external delete killed at " + stage, nat=False)
            e.keel("switch", "delete", "ex")
        absent("ex", br, "external delete killed at " + stage)
        adapter_back("external delete killed at " + stage)


def case_switch_set_crash(e):
    """Issue 12: keeld killed at each stage of a switch's change (`keel switch set`: the new
    row written, the bridge, its rules, its addresses, its dnsmasq; the test hook of
    switch-crash): at the next start the switch is as its row says, all of it (the bridge's
    address, the NAT rules, one dnsmasq serving the row's subnet, or none; an external
    switch's adapter addresses on the bridge or on neither), never a mix of the old
    settings and the new, nothing left over. An internal switch's subnet and NAT, an
    external switch's management OS, each way."""
    if not e.netns:
        print("SKIP: switch-set-crash: keeld's network namespace and its bridges need root")
        return 77
    before = ipv6_adapter(e)
    e.start_keeld()

    def consistent(name, when):
        """The switch as its row (keeld's answer) says, all of it; its settings."""
        sw = switches(e)[name]
        br = sw["bridge"]
        check(sw["up"], "%s: %s is down: %r" % (when, name, sw))
        rules = e.ns("nft", "list", "chain", "inet", "keel", br + "_nat", check=False)
        if sw["type"] == "internal":
            net, gw = sw["subnet"], sw["host_address"]
            check(ns_addrs(e, br) == ["%s/%s" % (gw, net.split("/")[1])],
                  "%s: %s has %r, its row subnet %s" % (when, br, ns_addrs(e, br), net))
            nat = re.findall(r"ip saddr (\S+) ip daddr != \S+ masquerade", rules)
            check(nat == ([net] if sw["nat"] else []),
                  "%s: NAT rules for %r, the row: nat %s, subnet %s" %
                  (when, nat, sw["nat"], net))
            pids, deadline = switch_dnsmasqs(e, br), time.time() + 5
            while sw["nat"] and pids != [sw["dhcp"]["pid"]] and time.time() < deadline:
                time.sleep(0.1)  # (forked, not yet dnsmasq)
                pids, sw = switch_dnsmasqs(e, br), switches(e)[name]
            if sw["nat"]:
                conf = open(os.path.join(e.state, "switches", br, "dnsmasq.conf")).read()
                check(pids == [sw["dhcp"]["pid"]] and "listen-address=%s\n" % gw in conf,
                      "%s: dnsmasq %r (keeld's %r), its configuration %r" %
                      (when, pids, sw["dhcp"], conf))
            else:
                check(pids == [] and "dhcp" not in sw, "%s: a dnsmasq without NAT: %r %r" %
                      (when, pids, sw.get("dhcp")))
            return (net, sw["nat"])
        wait_dad(e, br)
        want = before if sw["allow_management_os"] else ([], [])
        check(ip_state(e, br) == want and ip_state(e, "up0") == ([], []),
              "%s: management OS %s: the bridge has %r, the adapter %r" %
              (when, sw["allow_management_os"], ip_state(e, br), ip_state(e, "up0")))
        check(ns_ipv6_off(e, br) != sw["allow_management_os"],
              "%s: the bridge's IPv6 off: %s" % (when, ns_ipv6_off(e, br)))
        return sw["allow_management_os"]

    stages = ("set-store", "up-bridge", "up-nft", "up-taken", "up-addrs", "up-dnsmasq")
    killed = {s: 0 for s in stages}
    e.keel("switch", "create", "sc", "--type", "internal", "--subnet", "10.67.0.0/24",
           "--nat", "on")
    changes = (("--subnet", "10.68.0.0/24"), ("--subnet", "10.67.0.0/24"),
               ("--nat", "off"), ("--nat", "on"))
    for stage in stages:
        for change in changes:
            was = consistent("sc", "before %s" % (change,))
            killed[stage] += crash_keeld_at(e, stage, ("switch", "set", "sc") + change,
                                            must=False)
            now = consistent("sc", "set %s killed at %s" % (change, stage))
            new = (change[1], was[1]) if change[0] == "--subnet" else \
                (was[0], change[1] == "on")
            check(now in (was, new), "set %s killed at %s: %r, neither %r nor %r" %
                  (change, stage, now, was, new))
            # the change made again completes it
            e.keel("switch", "set", "sc", *change)
            check(consistent("sc", "set %s again" % (change,)) == new, "not changed")
    # A change that fails (the hook fails it at up-addrs, after the new rules and
    # addresses): refused, the old settings back in the row and on the switch.
    hook = os.path.join(e.state, "switches", "test-crash")
    for change in changes:
        was = consistent("sc", "before failing %s" % (change,))
        with open(hook, "w") as f:
            f.write("fail:up-addrs")
        _, err = e.keel("switch", "set", "sc", *change, want=None)
        os.unlink(hook)
        check("failed it at up-addrs" in err, "set %s: %r" % (change, err))
        check(consistent("sc", "set %s failed" % (change,)) == was,
              "set %s failed: not the old settings" % (change,))
    e.keel("switch", "delete", "sc")
    e.keel("switch", "create", "sx", "--type", "external", "--adapter", "up0")
    for stage in stages:
        for value in ("off", "on"):
            was = consistent("sx", "before management OS %s" % value)
            killed[stage] += crash_keeld_at(
                e, stage, ("switch", "set", "sx", "--allow-management-os", value), must=False)
            now = consistent("sx", "management OS %s killed at %s" % (value, stage))
            check(now in (was, value == "on"), "management OS %s killed at %s: %r" %
                  (value, stage, now))
            e.keel("switch", "set", "sx", "--allow-management-os", value)
            check(consistent("sx", "management OS %s again" % value) == (value == "on"),
                  "not changed")
    for value in ("off", "on"):
        was = consistent("sx", "before failing management OS %s" % value)
        with open(hook, "w") as f:
            f.write("fail:up-addrs")
        _, err = e.keel("switch", "set", "sx", "--allow-management-os", value, want=None)
        os.unlink(hook)
        check("failed it at up-addrs" in err, "management OS %s: %r" % (value, err))
        check(consistent("sx", "management OS %s failed" % value) == was,
              "management OS %s failed: not the old settings" % value)
    e.keel("switch", "delete", "sx")
    wait_dad(e, "up0")
    check(ip_state(e, "up0") == before, "deleted: the adapter has %r, had %r" %
          (ip_state(e, "up0"), before))
    # a change's reload of the rules told no dnsmasq to read its unchanged reservations (a
    # SIGHUP before a just-started dnsmasq has its handler ends it)
    hup = [line for line in open(e.keeld_log) if "ended (signal 1)" in line]
    check(not hup, "dnsmasq ended by SIGHUP: %r" % hup)
    # every stage was reached by some change (the hook works: a test build's keeld)
    check(all(killed.values()), "stages never reached: %r (only a test build's keeld, "
          "-Dtest_hooks=true, has the hook)" % killed)


def case_switch_bridge_addrs(e):
    """Issue 12: an address put by hand (or by another program) on an internal switch's
    bridge, beside the host address keel gives it, stays through a keeld restart and a
    change of NAT; a change of subnet takes off the old subnet's host address, that alone,
    also when keeld was killed in the middle of it or the change failed (the new subnet's
    address taken off again). keeld took off every address but its own at each start."""
    if not e.netns:
        print("SKIP: switch-bridge-addrs: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    e.keel("switch", "create", "ba", "--type", "internal", "--subnet", "10.71.0.0/24")
    br = switches(e)["ba"]["bridge"]
    mine = ["10.79.0.1/24", "198.51.100.7/24"]  # (one that looks like a host address too)
    for a in mine:
        e.ns("ip", "addr", "add", a, "dev", br)

    def has(own, when):
        check(ns_addrs(e, br) == sorted(mine + [own]), "%s: %s has %r, not %r and keel's %s"
              % (when, br, ns_addrs(e, br), mine, own))

    has("10.71.0.1/24", "created")
    e.kill_keeld()
    e.start_keeld()
    has("10.71.0.1/24", "keeld restarted")
    e.keel("switch", "set", "ba", "--nat", "on")
    has("10.71.0.1/24", "NAT on")
    e.keel("switch", "set", "ba", "--subnet", "10.72.0.0/24")
    has("10.72.0.1/24", "subnet changed")
    crash_keeld_at(e, "set-store", ("switch", "set", "ba", "--subnet", "10.73.0.0/24"))
    has("10.73.0.1/24", "subnet changed, keeld killed after the row")
    crash_keeld_at(e, "up-addrs", ("switch", "set", "ba", "--subnet", "10.74.0.0/24"))
    has("10.74.0.1/24", "subnet changed, keeld killed after the address")
    hook = os.path.join(e.state, "switches", "test-crash")
    with open(hook, "w") as f:
        f.write("fail:up-addrs")
    _, err = e.keel("switch", "set", "ba", "--subnet", "10.75.0.0/24", want=None)
    os.unlink(hook)
    check("failed it at up-addrs" in err, "the change: %r" % err)
    has("10.74.0.1/24", "subnet change failed")
    e.kill_keeld()
    e.start_keeld()
    has("10.74.0.1/24", "keeld restarted after it all")
    e.keel("switch", "set", "ba", "--nat", "off")
    has("10.74.0.1/24", "NAT off")
    e.keel("switch", "delete", "ba")


def case_damaged_row(e):
    """One VM's device row that does not parse (store_devices.c) damages that VM alone: the
    list and the others go on, the VM is listed with "damaged" (why), its running worker is
    re-attached and supervised, it may be stopped and deleted but not started or changed,
    and another VM's automatic start still happens."""
    e.start_keeld()
    e.create("a1", vsock={"cid": 77}, automatic_start_action="start")
    e.create("b1", automatic_start_action="start")
    vm = e.start("a1")
    e.console_until("a1", "ready for input")
    e.kill_keeld(signal.SIGTERM)
    check(pid_alive(vm["pid"]), "a1's worker ended with keeld")
    db = os.path.join(e.state, "keel.db")
    sqlite(db, "UPDATE devices SET doc='{\"cid\":1}' WHERE field='vsock'")
    e.start_keeld()
    code, vms = e.curl("GET", "/v1/vms")
    check(code == 200 and [v["name"] for v in vms] == ["a1", "b1"], "list: %d %r" % (code, vms))
    a1 = e.vm("a1")
    check(a1["damaged"] and "vsock.cid" in a1["damaged"], "a1 not damaged: %r" % a1)
    check(a1["state"] == "Running" and a1["pid"] == vm["pid"],
          "a1's worker not re-attached: %s pid %r, was %r" % (a1["state"], a1["pid"], vm["pid"]))
    check(e.vm("b1")["damaged"] is None, "b1: %r" % e.vm("b1"))
    out, _ = e.keel("vm", "show", "a1")
    check("Damaged in the store:" in out and "vsock.cid" in out, "keel vm show a1: %s" % out)
    e.api_err("PATCH", "/v1/vms/b1", {"damaged": "x"}, want=400,
              msg="field 'damaged' is the VM's runtime state")
    e.wait_state("b1", "Running")  # its automatic start, after a1's was passed over
    e.pids.add(e.vm("b1")["pid"])
    e.api_err("PATCH", "/v1/vms/a1", {"notes": "x"}, want=409, msg="damaged in the store")
    e.api_err("POST", "/v1/vms/a1/checkpoints", {"name": "c"}, want=409, msg="vsock.cid")
    e.keel("vm", "turn-off", "a1")
    e.wait_state("a1", "Off")
    check(not pid_alive(vm["pid"]), "a1's worker outlived its turn-off")
    e.api_err("POST", "/v1/vms/a1/start", {}, want=409, msg="damaged in the store")
    e.api_ok("DELETE", "/v1/vms/a1")
    check([v["name"] for v in e.api_ok("GET", "/v1/vms")] == ["b1"], "a1 not deleted")
    e.keel("vm", "turn-off", "b1")


# Raw Ethernet frames in a namespace (AF_PACKET): RAW_SEND sends hex frames out of an
# interface, RAW_RECV prints the markers of the frames that reach one within a few seconds.
RAW_SEND = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for h in sys.argv[2:]:
    for f in h.split(","):
        s.send(bytes.fromhex(f))
"""
RAW_RECV = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.settimeout(0.2)
print("ready", flush=True)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        f = s.recv(4096)
    except socket.timeout:
        continue
    i = f.find(b"KEELMARK")
    if i >= 0:
        print(f[i + 8:i + 10].decode(), flush=True)
"""


# A frame "from the guest": TAP_SEND finds the process that holds tap argv[1]'s descriptor
# (a tun descriptor's fdinfo names its link), takes a copy of it (pidfd_getfd) and writes hex
# frames into it, each after a zeroed virtio-net header (keel's taps have 12-byte ones), as
# a VM's virtio-net device does.
TAP_SEND = """
import ctypes, os, sys
def holder(tap):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir("/proc/%s/fdinfo" % pid):
                if "iff:\\t%s\\n" % tap in open("/proc/%s/fdinfo/%s" % (pid, fd)).read():
                    return int(pid), int(fd)
        except OSError:
            pass
    sys.exit("no process holds tap " + tap)
pid, target = holder(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(438, os.pidfd_open(pid), target, 0)  # pidfd_getfd
if fd < 0:
    sys.exit("pidfd_getfd: " + os.strerror(ctypes.get_errno()))
for h in sys.argv[2:]:
    os.write(fd, bytes(12) + bytes.fromhex(h))
"""


def frame(src, marker, l3="ip", sport=1000, dport=2000, vlan=None, chaddr=None, pad=0,
          frag=0, icmp=None):
    """A broadcast frame from MAC src carrying UDP sport -> dport (IPv4 or IPv6) with a
    two-letter marker (and pad more bytes); vlan: 802.1Q-tagged with that VID (a tuple: one
    tag in another); chaddr: a BOOTP message with it; frag: the IPv4 header's flags and
    fragment offset (0x2000: a first fragment; 3: a later one, no UDP header); icmp: an ICMP
    (IPv4) or ICMPv6 message of that type instead of UDP."""
    mac = bytes.fromhex(src.replace(":", ""))
    body = b"KEELMARK" + marker.encode() + bytes(pad)
    if chaddr:
        body = bytes(28) + bytes.fromhex(chaddr.replace(":", "")) + bytes(10) + body
    udp = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body
    proto = 17
    if icmp is not None:
        udp = struct.pack("!BBHI", icmp, 0, 0, 0) + body
        proto = 1 if l3 == "ip" else 58
    if frag & 0x1fff:
        udp = body
    if l3 == "ip":
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 7, frag, 64, proto, 0,
                          bytes(4), b"\xff" * 4)
        csum = sum(struct.unpack("!10H", hdr))
        csum = (csum & 0xffff) + (csum >> 16)
        hdr = hdr[:10] + struct.pack("!H", ~csum & 0xffff) + hdr[12:]
        etype = 0x0800
    else:
        hdr = struct.pack("!IHBB16s16s", 0x60000000, len(udp), proto, 64,
                          b"\xfe\x80" + bytes(13) + b"\x01", b"\xff\x02" + bytes(13) + b"\x02")
        etype = 0x86dd
    tag = b"".join(struct.pack("!HH", 0x8100, v)
                   for v in (vlan if isinstance(vlan, tuple) else (vlan,) if vlan else ()))
    return (b"\xff" * 6 + mac + tag + struct.pack("!H", etype) + hdr + udp).hex()


def arp_frame(src, marker, sha):
    """A broadcast ARP request from MAC src whose sender hardware address is sha (the marker
    in the frame's padding)."""
    mac, s = (bytes.fromhex(m.replace(":", "")) for m in (src, sha))
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, s, bytes([10, 0, 0, 5]), bytes(6),
                      bytes([10, 0, 0, 1]))
    return (b"\xff" * 6 + mac + b"\x08\x06" + arp + b"KEELMARK" + marker.encode()).hex()


def dhcp_fragments(src, marker, chaddr):
    """frame()'s DHCP request for chaddr from src in two IPv4 fragments ("hex,hex"): the
    UDP header and 16 bytes, then the rest (chaddr, the marker)."""
    whole = bytes.fromhex(frame(src, marker, sport=68, dport=67, chaddr=chaddr))
    payload = whole[34:]
    out = []
    for part, fl in ((payload[:24], 0x2000), (payload[24:], 3)):
        hdr = bytearray(whole[14:34])
        struct.pack_into("!HHH", hdr, 2, 20 + len(part), 7, fl)
        hdr[10:12] = b"\0\0"
        csum = sum(struct.unpack("!10H", bytes(hdr)))
        csum = (csum & 0xffff) + (csum >> 16)
        hdr[10:12] = struct.pack("!H", ~csum & 0xffff)
        out.append((whole[:14] + bytes(hdr) + part).hex())
    return ",".join(out)


def ip6_frame(src, nexthdr, payload, marker=None):
    """A broadcast frame from MAC src to all nodes (ff02::1) carrying one IPv6 packet (next
    header nexthdr, payload bytes; hop limit 255, as ND's), from fe80::5, or with marker from
    an address that carries it (bridge netfilter trims what follows the packet, and the
    options of an ND message are what is tested; no ICMPv6 checksum: the switch does not read
    it)."""
    mac = bytes.fromhex(src.replace(":", ""))
    ip = b"KEELMARK" + marker.encode() + bytes(6) if marker else LL5
    hdr = struct.pack("!IHBB16s16s", 0x60000000, len(payload), nexthdr, 255, ip,
                      b"\xff\x02" + bytes(13) + b"\x01")
    return (b"\xff" * 6 + mac + b"\x86\xdd" + hdr + payload).hex()


LL5 = b"\xfe\x80" + bytes(13) + b"\x05"


def nd_msg(icmp, options=(), target=LL5):
    """An ND message: ICMPv6 type icmp (133 RS, 134 RA, 135 NS, 136 NA) with its fixed part
    (an NS's or NA's target) and options, each (type, data) of 8 bytes with its header, or
    (type, data, length) for another length in units of 8 bytes."""
    fixed = {133: bytes(4), 134: bytes(12), 135: bytes(4) + target,
             136: b"\x60" + bytes(3) + target}
    body = struct.pack("!BBH", icmp, 0, 0) + fixed[icmp]
    for o in options:
        n = o[2] if len(o) > 2 else 1
        body += bytes([o[0], n]) + o[1] + bytes(8 * n - 2 - len(o[1]))
    return body


def lla(kind, mac):
    """A link-layer address option: kind 1 (source) or 2 (target), MAC mac."""
    return (kind, bytes.fromhex(mac.replace(":", "")))


NONCE = (14, b"\x01\x02\x03\x04\x05\x06")  # RFC 7527's nonce option (DAD)


def ip6_fragments(src, nexthdr, payload, cut, ident):
    """payload (after the fragment header, next header nexthdr) of datagram ident from MAC
    src in two IPv6 fragments, the first with its first cut bytes (a multiple of 8):
    "hex,hex" (each datagram its own ident: the bridge's reassembly would mix them).
    Its marker goes in the first (the second alone may wait in the bridge's reassembly, or
    pass)."""
    return ",".join(ip6_frame(src, 44, struct.pack("!BBHI", nexthdr, 0, off << 3 | more, ident) +
                              part)
                    for off, part, more in ((0, payload[:cut], 1), (cut // 8, payload[cut:], 0)))


def dstopts(nexthdr, marker=None):
    """A destination options header of padding (8 bytes), or (16) with an option to skip that
    holds marker."""
    if not marker:
        return bytes([nexthdr, 0, 1, 4]) + bytes(4)
    return bytes([nexthdr, 1, 0x1e, 10]) + b"KEELMARK" + marker.encode() + b"\x01\x00"


def refuse_guard_chain(e, bridge):
    """bridge's guard chain replaced by one that is no base chain, in one nftables
    transaction (keeld, told of a deletion alone, would declare it again at once): the
    switch's batch is refused until the chain is deleted."""
    chain = "bridge keel %s_guard" % bridge
    e.ns("nft", "delete chain %s; add chain %s" % (chain, chain))


def fake_ports(e, br, prefix, macs, nss, vid=None):
    """For each key k of macs, VM PREFIX+k's tap stood in for by a veth on bridge br (in VLAN
    vid too, when given), its far end eth0 with MAC macs[k] in namespace nss[k] (made here;
    the caller deletes them)."""
    for k in sorted(macs):
        tap = e.vm(prefix + k)["nets"][0]["tap"]
        nss[k] = e.netns + k
        subprocess.run(["ip", "netns", "add", nss[k]], check=True)
        e.ns("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0")
        e.ns("ip", "link", "set", tap, "master", br, "up")
        if vid:
            e.ns("bridge", "vlan", "add", "dev", tap, "vid", str(vid))
        e.ns("ip", "link", "set", "eth0", "netns", nss[k])
        subprocess.run(["ip", "netns", "exec", nss[k], "ip", "link", "set", "eth0", "address",
                        macs[k], "up"], check=True)


def raw_exchange(src, dst, frames):
    """The markers of frames (marker: hex frame) sent out of eth0 in namespace src that
    reach eth0 in namespace dst."""
    rx = subprocess.Popen(["ip", "netns", "exec", dst, "python3", "-c", RAW_RECV, "eth0", "4"],
                          stdout=subprocess.PIPE, text=True)
    check(rx.stdout.readline().strip() == "ready", "the receiver did not start")
    subprocess.run(["ip", "netns", "exec", src, "python3", "-c", RAW_SEND, "eth0"] +
                   list(frames.values()), check=True)
    return set(rx.communicate(timeout=20)[0].split())


def case_switch_isolation(e):
    """Issue 12, port isolation (Set-VMNetworkAdapter -PortIsolation) by what it does: two
    running VMs with port-isolation=on on a private switch and a port without it (a veth
    into a namespace); a frame from one isolated VM (written into its tap as its worker
    does) reaches the plain port and not the other isolated VM, and one from the plain port
    reaches both."""
    if not e.netns:
        print("SKIP: switch-isolation: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    e.keel("switch", "create", "pi", "--type", "private")
    br = switches(e)["pi"]["bridge"]
    macs = {"i1": "02:00:00:00:ee:01", "i2": "02:00:00:00:ee:02", "c": "02:00:00:00:ee:03"}
    taps = {}
    for k in ("i1", "i2"):
        e.keel("vm", "create", k, "--kernel", e.a.guest, "--memory", "16M", "--net",
               "switch=pi,mac=%s,port-isolation=on" % macs[k])
        taps[k] = e.start(k)["nets"][0]["tap"]
    plain = e.netns + "c"
    subprocess.run(["ip", "netns", "add", plain], check=True)
    inns = ["nsenter", "--net=/run/netns/" + e.netns]
    try:
        e.ns("ip", "link", "add", "pc0", "type", "veth", "peer", "name", "eth0")
        e.ns("ip", "link", "set", "pc0", "master", br, "up")
        e.ns("ip", "link", "set", "eth0", "netns", plain)
        subprocess.run(["ip", "netns", "exec", plain, "ip", "link", "set", "eth0", "address",
                        macs["c"], "up"], check=True)
        time.sleep(1.5)  # the veth's link comes up (a port forwards once it is up)

        def reach(send, markers):
            """Which of the receivers (i1, i2: their taps; c: the plain port) the frames
            marked markers, sent by send(frames), reach."""
            rxs = {k: subprocess.Popen(inns + ["python3", "-c", RAW_RECV, taps[k], "4"],
                                       stdout=subprocess.PIPE, text=True)
                   for k in taps}
            rxs["c"] = subprocess.Popen(["ip", "netns", "exec", plain, "python3", "-c",
                                         RAW_RECV, "eth0", "4"], stdout=subprocess.PIPE,
                                        text=True)
            for k, rx in rxs.items():
                check(rx.stdout.readline().strip() == "ready", "receiver %s did not start" % k)
            send()
            return {k: set(rx.communicate(timeout=20)[0].split()) & set(markers)
                    for k, rx in rxs.items()}

        def from_tap(k, marker):
            return lambda: subprocess.run(inns + ["python3", "-c", TAP_SEND, taps[k],
                                                  frame(macs[k], marker)], check=True)

        # (a sender's own tap shows its frame too: it goes in there)
        got = reach(from_tap("i1", "x1"), ["x1"])
        check(got == {"i1": {"x1"}, "i2": set(), "c": {"x1"}},
              "a frame from isolated i1 reached %r (want the plain port only)" % got)
        got = reach(from_tap("i2", "x2"), ["x2"])
        check(got == {"i1": set(), "i2": {"x2"}, "c": {"x2"}},
              "a frame from isolated i2 reached %r (want the plain port only)" % got)
        got = reach(lambda: subprocess.run(["ip", "netns", "exec", plain, "python3", "-c",
                                            RAW_SEND, "eth0", frame(macs["c"], "pc")],
                                           check=True), ["pc"])
        check(got == {"i1": {"pc"}, "i2": {"pc"}, "c": {"pc"}},
              "a frame from the plain port reached %r (want both isolated VMs)" % got)
        # Isolation off on i2 (a running VM's port changes): i1's frames reach it again.
        e.keel("vm", "set", "i2", "--net", "switch=pi,mac=%s" % macs["i2"])
        got = reach(from_tap("i1", "x3"), ["x3"])
        check(got == {"i1": {"x3"}, "i2": {"x3"}, "c": {"x3"}},
              "with i2 no more isolated, i1's frame reached %r" % got)
    finally:
        subprocess.run(["ip", "netns", "del", plain], capture_output=True)
    print("switch-isolation: isolated to isolated dropped, isolated to plain and plain to "
          "isolated passed")
    return 0


def case_switch_internal(e):
    """Issue 12: an internal switch without NAT routes nothing out. A client on it (a veth
    into a namespace, default route via the switch's host address) and an outside host (a
    namespace on another link of keeld's, WITH a route back to the switch's subnet, so only
    keel's forward chain stands between them): the client's ping is dropped. With that chain
    flushed while keeld is stopped (SIGSTOP: it would load the rules again at once) the same
    ping passes: the test can fail. keeld going on puts the rules back (nftables told it) and
    it is dropped again."""
    if not e.netns:
        print("SKIP: switch-internal: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    e.keel("switch", "create", "in1", "--type", "internal", "--subnet", "10.64.0.0/24")
    sw = switches(e)["in1"]
    check(not sw["nat"], "in1 has NAT: %r" % sw)
    br = sw["bridge"]
    client, outside = e.netns + "c", e.netns + "o"
    for n in (client, outside):
        subprocess.run(["ip", "netns", "add", n], check=True)

    def run(n, *cmd, check=True):
        return subprocess.run(["ip", "netns", "exec", n] + list(cmd), capture_output=True,
                              text=True, timeout=60, check=check)

    def ping():
        return run(client, "busybox", "ping", "-c", "2", "-W", "1", "10.81.0.2",
                   check=False).returncode

    def rules_back(want):
        deadline = time.time() + 15
        while time.time() < deadline:
            fwd = e.ns("nft", "list", "chain", "inet", "keel", br + "_fwd")
            if ('iifname "%s" drop' % br in fwd) == want:
                return fwd
            time.sleep(0.5)
        raise Fail("%s_fwd: want the drop rule %s:\n%s" % (br, want, fwd))

    try:
        e.ns("ip", "link", "add", "ic0", "type", "veth", "peer", "name", "eth0")
        e.ns("ip", "link", "set", "ic0", "master", br, "up")
        e.ns("ip", "link", "set", "eth0", "netns", client)
        run(client, "ip", "addr", "add", "10.64.0.50/24", "dev", "eth0")
        run(client, "ip", "link", "set", "eth0", "up")
        run(client, "ip", "route", "add", "default", "via", "10.64.0.1")
        e.ns("ip", "link", "add", "io0", "type", "veth", "peer", "name", "eth0")
        e.ns("ip", "addr", "add", "10.81.0.1/24", "dev", "io0")
        e.ns("ip", "link", "set", "io0", "up")
        e.ns("ip", "link", "set", "eth0", "netns", outside)
        run(outside, "ip", "addr", "add", "10.81.0.2/24", "dev", "eth0")
        run(outside, "ip", "link", "set", "eth0", "up")
        run(outside, "ip", "route", "add", "10.64.0.0/24", "via", "10.81.0.1")
        e.ns("sysctl", "-qw", "net.ipv4.ip_forward=1")
        deadline = time.time() + 15  # the veths' links come up
        while run(client, "busybox", "ping", "-c", "1", "-W", "1", "10.64.0.1",
                  check=False).returncode:
            check(time.time() < deadline, "the client cannot reach the switch's host address")
        while run(outside, "busybox", "ping", "-c", "1", "-W", "1", "10.81.0.1",
                  check=False).returncode:
            check(time.time() < deadline, "the outside cannot reach keeld's namespace")
        rules_back(True)
        check(ping() != 0, "a client on internal switch in1 (no NAT) reached the outside")
        # The forward chain flushed with keeld stopped (told, it would put the rules back
        # at once, whatever is left of them): nothing stops the ping.
        os.kill(e.keeld_proc.pid, signal.SIGSTOP)
        try:
            e.ns("nft", "flush", "chain", "inet", "keel", br + "_fwd")
            rules_back(False)
            check(ping() == 0, "with %s_fwd flushed the client still cannot reach the "
                  "outside (the test could not fail)" % br)
        finally:
            os.kill(e.keeld_proc.pid, signal.SIGCONT)
        # keeld going on reads nftables' notification and puts the rules back; dropped again.
        rules_back(True)
        check(ping() != 0, "after keeld restored %s_fwd the client reached the outside" % br)
    finally:
        for n in (client, outside):
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
    print("switch-internal: no NAT, nothing out (passes only with the forward chain flushed)")
    return 0


def case_switch_neighbours(e):
    """Issue 12: guest addresses known without an agent nor a DHCP lease. A stand-in guest (a
    veth in a namespace of its own) on an internal switch without NAT, with static IPv4 and
    IPv6 addresses, pings the host: keel vm show and keel vm net list give both addresses, from
    the host's neighbour table (source "neighbour"), and none before it spoke."""
    if not e.netns:
        print("SKIP: switch-neighbours: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    mac = "02:00:00:00:ab:01"
    e.keel("switch", "create", "nb", "--type", "internal", "--subnet", "10.62.0.0/24")
    bridge = switches(e)["nb"]["bridge"]
    e.ns("ip", "-6", "addr", "add", "fd62::1/64", "dev", bridge, "nodad")
    e.keel("vm", "create", "nb", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=nb,mac=%s" % mac)
    net = e.vm("nb")["nets"][0]
    check(net["addresses"] == [] and net["address_sources"] == [],
          "addresses before the guest spoke: %r" % net)
    guest_ns = e.netns + "n"
    subprocess.run(["ip", "netns", "add", guest_ns], check=True)
    try:
        gexec = ["ip", "netns", "exec", guest_ns]
        e.ns("ip", "link", "add", "gn0", "type", "veth", "peer", "name", "gn1")
        e.ns("ip", "link", "set", "gn0", "master", bridge, "up")
        e.ns("ip", "link", "set", "gn1", "netns", guest_ns)
        for cmd in (["ip", "link", "set", "gn1", "address", mac, "up"],
                    ["ip", "addr", "add", "10.62.0.5/24", "dev", "gn1"],
                    ["ip", "-6", "addr", "add", "fd62::5/64", "dev", "gn1", "nodad"]):
            subprocess.run(gexec + cmd, check=True)
        for target in ("10.62.0.1", "fd62::1"):
            r = subprocess.run(gexec + ["busybox", "ping", "-c", "1", "-W", "5", target],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 0, "ping %s: %s %s" % (target, r.stdout, r.stderr))
        net = e.vm("nb")["nets"][0]
        check(sorted(net["addresses"]) == ["10.62.0.5", "fd62::5"] and
              net["address_sources"] == ["neighbour", "neighbour"],
              "addresses from the neighbour table: %r (host: %s)" %
              (net, e.ns("ip", "neigh", "show", "dev", bridge)))
        out, _ = e.keel("vm", "net", "list", "nb")
        check(re.search(r"^0 +nb +.* %s .*10\.62\.0\.5" % mac, out, re.M) and "fd62::5" in out,
              "keel vm net list: %r" % out)
        out, _ = e.keel("vm", "show", "nb")
        check("10.62.0.5" in out and "fd62::5" in out, "keel vm show: %r" % out)
    finally:
        subprocess.run(["ip", "netns", "del", guest_ns], capture_output=True)
    return 0


def case_switch_guards(e):
    """Issue 12's review: the guards as they mean (DHCP server replies by their ports, IPv4
    and IPv6; tagged frames from a port that is no trunk; a DHCP request for another MAC
    than the adapter's; IPv6 ND naming another MAC, or hidden behind extension headers and
    in fragments), measured by which frames reach another port of the switch; the
    guards fail closed (a refused rules batch keeps the VM from starting); the bridge's MAC
    fixed; a port forward refuses a host port in use and leaves loopback alone; port
    isolation on a running VM's tap."""
    if not e.netns:
        print("SKIP: switch-guards: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    d = switches(e)["Default Switch"]
    br = d["bridge"]

    def link_mac(dev):
        return json.loads(e.ns("ip", "-j", "link", "show", "dev", dev))[0]["address"]

    # The bridge's MAC: keel's (0e:...), kept when a port with a lower MAC joins.
    bmac = link_mac(br)
    check(bmac.startswith("0e:"), "the bridge's MAC %s is not keel's" % bmac)
    e.ns("ip", "link", "add", "lowp", "address", "02:00:00:00:00:01", "type", "veth", "peer",
         "name", "lowq")
    e.ns("ip", "link", "set", "lowp", "master", br, "up")
    check(link_mac(br) == bmac, "the bridge's MAC followed a port: %s" % link_mac(br))
    e.ns("ip", "link", "del", "lowp")
    # Two "VMs" whose taps are veths into namespaces of their own: a (the sender, with the
    # guards) and b (the receiver).
    macs = {"a": "02:00:00:00:cc:01", "b": "02:00:00:00:cc:02"}
    e.keel("vm", "create", "ga", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=Default Switch,mac=%s,dhcp-guard=on,router-guard=on" % macs["a"])
    e.keel("vm", "create", "gb", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=Default Switch,mac=%s" % macs["b"])
    nss = {}
    try:
        fake_ports(e, br, "g", macs, nss)
        a = macs["a"]
        frames = {
            "ok": frame(a, "ok"),                                  # plain UDP: passes
            "s6": frame(a, "s6", sport=67, dport=68),              # a DHCP server's reply
            "d8": frame(a, "d8", sport=4000, dport=68),            # to a client's port
            "v6": frame(a, "v6", l3="ip6", sport=4000, dport=546),  # a DHCPv6 reply
            "tg": frame(a, "tg", sport=67, dport=68, vlan=1),      # the reply, tagged
            "tp": frame(a, "tp", vlan=1),                          # any tagged frame
            "sp": frame("02:00:00:00:dd:09", "sp"),                # a spoofed source MAC
            "cm": frame(a, "cm", sport=68, dport=67, chaddr=a),    # a request for itself
            "cx": frame(a, "cx", sport=68, dport=67, chaddr="02:00:00:00:cc:02"),  # for b
            # the request for b cut in two IPv4 fragments (the first without chaddr), and
            # the later one alone
            "cf": dhcp_fragments(a, "cf", "02:00:00:00:cc:02"),
            "cn": dhcp_fragments(a, "cn", "02:00:00:00:cc:02").split(",")[1],
            "aa": arp_frame(a, "aa", a),                         # ARP for itself
            "ab": arp_frame(a, "ab", "02:00:00:00:cc:02"),       # ARP as b
            # the router guard: redirects and router advertisements dropped, echo requests
            # (ICMP and ICMPv6) pass
            "ie": frame(a, "ie", icmp=8),                        # ICMP echo request
            "ir": frame(a, "ir", icmp=5),                        # ICMP redirect
            "e6": frame(a, "e6", l3="ip6", icmp=128),            # ICMPv6 echo request
            "r6": frame(a, "r6", l3="ip6", icmp=137),            # ICMPv6 redirect
            "ra": frame(a, "ra", l3="ip6", icmp=134),            # router advertisement
        }
        b = macs["b"]
        frames.update({
            # neighbor discovery as a guest sends it passes: an NS with its source
            # link-layer address, an NA with its target one, a DAD probe (a nonce), an RS
            "ns": ip6_frame(a, 58, nd_msg(135, [lla(1, a)]), "ns"),
            "na": ip6_frame(a, 58, nd_msg(136, [lla(2, a)]), "na"),
            "nd": ip6_frame(a, 58, nd_msg(135, [NONCE]), "nd"),
            "nr": ip6_frame(a, 58, nd_msg(133, [lla(1, a)]), "nr"),
            # and what would teach the others b's MAC for a's addresses is dropped: the
            # option first, second (after a nonce), 16 bytes long, after two nonces, in an
            # RS, or the message behind an extension header
            "n1": ip6_frame(a, 58, nd_msg(136, [lla(2, b)]), "n1"),
            "n2": ip6_frame(a, 58, nd_msg(136, [NONCE, lla(2, b)]), "n2"),
            "s2": ip6_frame(a, 58, nd_msg(135, [NONCE, lla(1, b)]), "s2"),
            "nl": ip6_frame(a, 58, nd_msg(136, [lla(2, b) + (2,)]), "nl"),
            "n3": ip6_frame(a, 58, nd_msg(136, [NONCE, NONCE, lla(2, b)]), "n3"),
            "sr": ip6_frame(a, 58, nd_msg(133, [lla(1, b)]), "sr"),
            "nx": ip6_frame(a, 60, dstopts(58) + nd_msg(136, [lla(2, b)]), "nx"),
            # the router guard through extension headers and fragments: an RA behind a
            # destination options header; an RA whose first fragment ends before its
            # ICMPv6 header (the fragment header followed by destination options); an RA
            # and an NA in fragments (RFC 6980: ND is never fragmented), the NA's
            # link-layer address in its second
            "rx": ip6_frame(a, 60, dstopts(58) + nd_msg(134, [lla(1, a)]), "rx"),
            "rf": ip6_fragments(a, 60, dstopts(58, "rf") + nd_msg(134), 16, 1),
            "r3": ip6_fragments(a, 58, nd_msg(134, [(253, b"KEELMARKr3", 2), lla(1, a)]), 32, 2),
            "nf": ip6_fragments(a, 58, nd_msg(136, [lla(2, b)], b"KEELMARKnf" + bytes(6)), 24, 3),
            # a large ping in two fragments passes
            "pf": ip6_fragments(a, 58, struct.pack("!BBHI", 128, 0, 0, 1) + b"KEELMARKpf" +
                                bytes(54), 32, 4),
            # a later fragment of a datagram whose fragment header is followed by
            # destination options (RFC 8200's order): the guards let it be (only first
            # fragments are looked at; review rv12: every fragment was dropped), the
            # bridge's reassembly may hold it (it does here: no first fragment), so it is
            # checked by the rule's counter below
            "fl": ip6_frame(a, 44, struct.pack("!BBHI", 60, 0, 2 << 3, 5) + bytes(16), "fl"),
        })
        time.sleep(1.5)  # the veths' links come up (a port forwards once it is up)
        got = raw_exchange(nss["a"], nss["b"], frames)
        want = {"ok", "cm", "aa", "ie", "e6", "ns", "na", "nd", "nr", "pf"}
        check(got - {"fl"} == want, "frames through the guards: %s, want %s; ruleset:\n%s" %
              (sorted(got), sorted(want), e.ns("nft", "list", "table", "bridge", "keel")))
        # The rule against an extension header after the fragment header dropped rf's
        # first fragment only: not rf's second, not fl.
        guard = e.ns("nft", "list", "chain", "bridge", "keel", br + "_guard")
        line = [l for l in guard.splitlines() if '"k%s"' % a.replace(":", "") in l and
                "frag nexthdr" in l]
        check(len(line) == 1 and "counter packets 1 " in line[0],
              "fragments dropped by the rule against an extension header after the "
              "fragment header (want rf's first only):\n%s" % "\n".join(line))
        # Linux's own neighbor discovery through both ports' ND guards (DAD with its nonce,
        # then an NS and an NA each way): a ping between ULA addresses.
        for k in ("a", "b"):
            subprocess.run(["ip", "netns", "exec", nss[k], "ip", "-6", "addr", "add",
                            "fd63::%s/64" % k, "dev", "eth0"], check=True)
        deadline = time.time() + 20
        while True:  # DAD: the addresses are tentative for a second or so
            r = subprocess.run(["ip", "netns", "exec", nss["a"], "busybox", "ping", "-c", "1",
                                "-W", "2", "fd63::b"], capture_output=True, text=True)
            if r.returncode == 0 or time.time() > deadline:
                break
            time.sleep(0.5)
        check(r.returncode == 0, "ping between two guarded ports over IPv6: %s%s\n%s" %
              (r.stdout, r.stderr, e.ns("nft", "list", "table", "bridge", "keel")))
        # The table's rules flushed, its chains kept: keeld's watch sees its marker rules
        # gone, blocks the VMs' ports, loads the rules again and unblocks them.
        tap = e.vm("ga")["nets"][0]["tap"]

        def port_state(want):
            for _ in range(30):
                st = json.loads(e.ns("bridge", "-j", "link", "show", "dev", tap))[0]["state"]
                if st == want:
                    return st
                time.sleep(0.5)
            return st

        def guard_rules():
            return e.ns("nft", "list", "chain", "bridge", "keel", br + "_guard")

        # nftables notifies the flush (NFNLGRP_NFTABLES): keeld loads them at once, not at
        # its next 5-second check (how soon is printed; the 30 s is a liveness bound only).
        e.ns("nft", "flush", "table", "bridge", "keel")
        t0, back = time.monotonic(), None
        while back is None and time.monotonic() < t0 + 30:
            if "udp dport 67" in guard_rules():
                back = time.monotonic() - t0
            time.sleep(0.005)
        check("keel-marker %s_guard" % br in guard_rules() and "udp dport 67" in guard_rules(),
              "the guards after a flush of their table:\n" + guard_rules())
        print("switch-guards: the guards back %.0f ms after a flush of their table (the test's "
              "own look takes part of it); keeld: %s" % (back * 1000, ", ".join(re.findall(
                  r"loaded again (\d+ ms) after nftables", open(e.keeld_log).read()))))
        check(port_state("forwarding") == "forwarding", "ga's port after the rules came back")
        log = open(e.keeld_log).read()
        check("its VMs' ports are blocked" in log and "forward again" in log,
              "keeld did not block and unblock the ports: " + log[-2000:])
        check("its rules were removed (a firewall reload?; nftables told keeld)" in log,
              "keeld's reload was not the notification's: " + log[-2000:])
        # The whole ruleset flushed (a host firewall reload): the same.
        e.ns("nft", "flush", "ruleset")
        t0, back = time.monotonic(), None
        while back is None and time.monotonic() < t0 + 30:
            if "udp dport 67" in e.ns("nft", "list", "ruleset"):
                back = time.monotonic() - t0
            time.sleep(0.005)
        check(back is not None, "the guards not back after a flush of the ruleset")
        print("switch-guards: the guards back %.0f ms after a flush of the ruleset" %
              (back * 1000))
        check(open(e.keeld_log).read().count("nftables told keeld") == 2,
              "keeld's reload after the ruleset's flush was not the notification's")
        # A reload nftables refuses (the chain no base chain): the ports stay blocked.
        refuse_guard_chain(e, br)
        check(port_state("disabled") == "disabled", "ga's port with its rules refused")
        time.sleep(6)
        check(port_state("disabled") == "disabled", "ga's port unblocked, its rules refused")
        got = raw_exchange(nss["a"], nss["b"], {"ok": frames["ok"]})
        check(not got, "frames through a blocked port: %s" % sorted(got))
        e.ns("nft", "delete", "chain", "bridge", "keel", br + "_guard")
        check(port_state("forwarding") == "forwarding", "ga's port after the chain came back")
    finally:
        for n in nss.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
    e.keel("vm", "delete", "ga")
    e.keel("vm", "delete", "gb")
    # Fail closed: a batch that nftables refuses (the guard chain replaced by one that is no
    # base chain: the batch cannot declare it) keeps a VM off the switch.
    e.keel("switch", "create", "fc", "--type", "private")
    fc = switches(e)["fc"]
    e.keel("vm", "create", "f1", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=fc,port-isolation=on")
    refuse_guard_chain(e, fc["bridge"])
    _, err = e.keel("vm", "start", "f1", want=None)
    f1 = e.vm("f1")
    check("nftables refused its rules" in err + f1.get("state_reason", "") and
          f1["state"] == "Off", "f1 started with its rules refused: %r %r" % (err, f1))
    check(not e.ns("ip", "-o", "link", "show", "master", fc["bridge"]).strip(),
          "a port on fc although its rules were refused")
    # With the chain given back (keeld's watch or the start itself loads it), it starts, its
    # tap isolated.
    e.ns("nft", "delete", "chain", "bridge", "keel", fc["bridge"] + "_guard")
    vm = e.start("f1")
    tap = vm["nets"][0]["tap"]
    info = json.loads(e.ns("ip", "-j", "-d", "link", "show", "dev", tap))[0]
    check(info.get("master") == fc["bridge"] and info["linkinfo"]["info_slave_data"].get(
        "isolated") is True, "f1's tap is not an isolated port: %r" % info)
    out, _ = e.keel("vm", "net", "list", "f1")
    check(re.search(r"^0 +fc +k\w+ +\S+ +- +mi +", out, re.M), "vm net list: %r" % out)
    e.keel("vm", "turn-off", "f1")
    e.wait_state("f1", "Off")
    e.keel("vm", "delete", "f1")
    e.keel("switch", "delete", "fc")
    # Port forwards: a host port a service of the host's listens on is refused; a forward
    # does not catch loopback.
    e.keel("vm", "create", "w1", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=Default Switch")
    lst = subprocess.Popen(["ip", "netns", "exec", e.netns, "python3", "-c",
                            "import socket,time\ns=socket.socket()\n"
                            "s.bind(('0.0.0.0', 8090))\ns.listen()\nprint('ready',flush=True)\n"
                            "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    e.pids.add(lst.pid)
    check(lst.stdout.readline().strip() == "ready", "the host service did not listen")
    e.api_err("POST", "/v1/switches/Default%20Switch/forwards",
              {"host_port": 8090, "vm": "w1", "port": 80}, want=409,
              msg="host port tcp/8090 is in use by a service of the host's")
    lst.kill()
    lst.wait()
    # A UDP service with SO_REUSEADDR (a probe with it too would share its port).
    udp = ("import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
           "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
           "s.bind(('0.0.0.0', %d))\nprint('ready',flush=True)\ntime.sleep(60)")
    lst = subprocess.Popen(["ip", "netns", "exec", e.netns, "python3", "-c", udp % 8090],
                           stdout=subprocess.PIPE, text=True)
    e.pids.add(lst.pid)
    check(lst.stdout.readline().strip() == "ready", "the host's UDP service did not bind")
    e.api_err("POST", "/v1/switches/Default%20Switch/forwards",
              {"host_port": 8090, "vm": "w1", "port": 53, "proto": "udp"}, want=409,
              msg="host port udp/8090 is in use by a service of the host's")
    lst.kill()
    lst.wait()
    # A service that takes a forward's port later: a warning when the rules are loaded again
    # (here at keeld's start).
    e.keel("switch", "forward", "add", "Default Switch", "--host-port", "8093", "--vm", "w1",
           "--port", "53", "--proto", "udp")
    lst = subprocess.Popen(["ip", "netns", "exec", e.netns, "python3", "-c", udp % 8093],
                           stdout=subprocess.PIPE, text=True)
    e.pids.add(lst.pid)
    check(lst.stdout.readline().strip() == "ready", "the host's UDP service did not bind")
    e.kill_keeld()
    e.start_keeld()
    check("forward of host port udp/8093 to " in open(e.keeld_log).read(),
          "no warning about the service on a forward's port at keeld's start")
    lst.kill()
    lst.wait()
    e.keel("switch", "forward", "add", "Default Switch", "--host-port", "8091", "--vm", "w1",
           "--port", "80")
    rules = e.ns("nft", "list", "chain", "inet", "keel", br + "_dnatout")
    check("ip daddr != 127.0.0.0/8 tcp dport 8091" in rules, "the forward's rule:\n" + rules)
    e.keel("vm", "delete", "w1")
    # The bridge's MAC is the same after a restart.
    e.kill_keeld()
    e.ns("ip", "link", "del", br)
    e.start_keeld()
    check(link_mac(br) == bmac, "the bridge's MAC after a restart: %s, was %s" %
          (link_mac(br), bmac))


# A stream of frames FRAME out of an interface for SECONDS at PPS frames a second (RATE_RECV
# measures what arrives).
RATE_SEND = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
f = bytes.fromhex(sys.argv[3])
pps = float(sys.argv[4])
t0 = time.time()
end, n, ok = t0 + float(sys.argv[2]), 0, 0
while time.time() < end:
    for _ in range(50):
        try:
            s.send(f)
            ok += 1
        except OSError:
            pass
    n += 50
    ahead = t0 + n / pps - time.time()
    if ahead > 0:
        time.sleep(ahead)
print(int(ok * (len(f) - 14) * 8 / (time.time() - t0)), flush=True)
"""
# Bytes (without the Ethernet header) of marked frames arriving between seconds FROM and TO.
# (RATE_SEND prints the rate it offered: bits per second of what it sent, same count.)
RATE_RECV = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.settimeout(0.2)
print("ready", flush=True)
t0 = time.time()
a, b = float(sys.argv[2]), float(sys.argv[3])
n = 0
while time.time() < t0 + b:
    try:
        f = s.recv(4096)
    except socket.timeout:
        continue
    if b"KEELMARK" in f and time.time() >= t0 + a:
        n += len(f) - 14
print(n, flush=True)
"""


def case_switch_limits(e):
    """Issue 12: an adapter's trunk VLANs (vlan_trunk, native_vlan) and maximum bandwidth
    (bandwidth_out: an nftables limit on what its tap sends into the switch; bandwidth_in: a
    tbf qdisc on the tap, what the switch sends it), through the API and `keel vm create
    --net`; bad values refused; a trunk port's tagged frames pass and its guards see into
    them; 10 Mbit/s out of a port and into a running VM's tap, measured within 20%."""
    if not e.netns:
        print("SKIP: switch-limits: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    d = switches(e)["Default Switch"]
    br = d["bridge"]
    base = {"name": "x", "kernel": e.a.guest, "memory": 16 << 20}
    for net, msg in (({"switch": "Default Switch", "vlan_trunk": "0-5"}, "not a VLAN list"),
                     ({"switch": "Default Switch", "vlan_trunk": "10,"}, "not a VLAN list"),
                     ({"switch": "Default Switch", "vlan_trunk": "30-20"}, "not a VLAN list"),
                     ({"switch": "Default Switch", "vlan_trunk": "10", "vlan": 5},
                      "access mode (vlan) or a trunk"),
                     ({"switch": "Default Switch", "native_vlan": 5}, "native_vlan is a trunk's"),
                     ({"switch": "Default Switch", "bandwidth_out": 1000},
                      "nets[].bandwidth_out"),
                     ({"tap": "t0", "bandwidth_in": 10000000}, "are a switch's")):
        e.api_err("POST", "/v1/vms", dict(base, nets=[net]), msg=msg)
    _, err = e.keel("vm", "create", "x", "--kernel", e.a.guest, "--net",
                    "switch=Default Switch,bandwidth-out=fast", want=2)
    check("bandwidth-out is bits per second" in err, "keel --net bandwidth-out=fast: %r" % err)
    check(e.api_ok("GET", "/v1/vms") == [], "a refused VM was made")
    # The CLI's trunk form, "vlan-trunk=10,20-30,native-vlan=5".
    macs = {"a": "02:00:00:00:ee:01", "b": "02:00:00:00:ee:02"}
    e.keel("vm", "create", "ta", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=Default Switch,mac=%s,vlan-trunk=10,20-30,native-vlan=5,dhcp-guard=on,"
           "bandwidth-out=10M" % macs["a"])
    n = e.vm("ta")["nets"][0]
    check(n.get("vlan_trunk") == "10,20-30" and n.get("native_vlan") == 5 and
          n.get("bandwidth_out") == 10000000 and "bandwidth_in" not in n, "ta: %r" % n)
    out, _ = e.keel("vm", "net", "list", "ta")
    check(re.search(r"^0 +Default Switch +k\w+ +\S+ +10,20-30/5 +md +10M/- ", out, re.M),
          "vm net list ta: %r" % out)
    e.keel("vm", "create", "tb", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=Default Switch,mac=%s" % macs["b"])
    filtering = subprocess.run(["ip", "netns", "exec", e.netns, "ip", "link", "add", "vfp",
                                "type", "bridge", "vlan_filtering", "1"],
                               capture_output=True).returncode == 0
    if filtering:
        e.ns("ip", "link", "del", "vfp")
    nss = {}
    try:
        fake_ports(e, br, "t", macs, nss, vid=10 if filtering else None)
        time.sleep(1.5)
        a = macs["a"]
        frames = {"ok": frame(a, "ok"), "tt": frame(a, "tt", vlan=10),
                  "ts": frame(a, "ts", sport=67, dport=68, vlan=10),
                  "us": frame(a, "us", sport=67, dport=68),
                  # a DHCP reply in VLAN 0 inside VLAN 10: untagged once VLAN 10's is off
                  "td": frame(a, "td", sport=67, dport=68, vlan=(10, 0))}
        got = raw_exchange(nss["a"], nss["b"], frames)
        check(got == {"ok", "tt"}, "frames from the trunk port: %s" % sorted(got))
        # 10 Mbit/s out of ta's port: what reaches tb from second 2 to 6 of a flood.
        big = frame(a, "bw", pad=1000)
        rx = subprocess.Popen(["ip", "netns", "exec", nss["b"], "python3", "-c", RATE_RECV,
                               "eth0", "2", "6"], stdout=subprocess.PIPE, text=True)
        check(rx.stdout.readline().strip() == "ready", "the receiver did not start")
        offered = int(subprocess.run(["ip", "netns", "exec", nss["a"], "python3", "-c",
                                      RATE_SEND, "eth0", "6.5", big, "3000"], check=True,
                                     timeout=60, capture_output=True, text=True).stdout)
        rate = int(rx.communicate(timeout=20)[0]) * 8 / 4.0
        print("switch-limits: bandwidth-out 10M measured %.2f Mbit/s (offered %.2f)" %
              (rate / 1e6, offered / 1e6))
        # A sender slower than the limit would pass with no limit at all.
        check(offered >= 15e6, "the sender offered only %.0f bit/s (want 1.5x the limit)" %
              offered)
        check(8e6 <= rate <= 12e6, "10 Mbit/s out of a port measured %.0f bit/s: %s" %
              (rate, e.ns("nft", "list", "table", "bridge", "keel")))
    finally:
        for ns in nss.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    e.keel("vm", "delete", "ta")
    e.keel("vm", "delete", "tb")
    # 10 Mbit/s into a running VM: a tbf qdisc on its tap; a flood at it from a port.
    e.keel("vm", "create", "bw", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=Default Switch,bandwidth-in=10M")
    vm = e.start("bw")
    tap, mac = vm["nets"][0]["tap"], vm["nets"][0]["mac"]
    q = json.loads(e.ns("tc", "-j", "qdisc", "show", "dev", tap))
    check(q and q[0]["kind"] == "tbf", "bw's tap qdisc: %r" % q)
    fl = e.netns + "f"
    subprocess.run(["ip", "netns", "add", fl], check=True)
    try:
        e.ns("ip", "link", "add", "fl0", "type", "veth", "peer", "name", "eth0")
        e.ns("ip", "link", "set", "fl0", "master", br, "up")
        e.ns("ip", "link", "set", "eth0", "netns", fl)
        subprocess.run(["ip", "netns", "exec", fl, "ip", "link", "set", "eth0", "up"],
                       check=True)
        time.sleep(1.5)
        src = json.loads(subprocess.run(["ip", "netns", "exec", fl, "ip", "-j", "link", "show",
                                         "eth0"], capture_output=True, text=True,
                                        check=True).stdout)[0]["address"]
        big = (bytes.fromhex(mac.replace(":", "")) +
               bytes.fromhex(frame(src, "in", pad=1000))[6:]).hex()

        def sent():
            return json.loads(e.ns("tc", "-s", "-j", "qdisc", "show", "dev", tap))[0]["bytes"]

        flood = subprocess.Popen(["ip", "netns", "exec", fl, "python3", "-c", RATE_SEND, "eth0",
                                  "7", big, "3000"], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        b0, t0 = sent(), time.time()
        time.sleep(4)
        b1, t1 = sent(), time.time()
        offered = int(flood.communicate(timeout=30)[0])
        rate = (b1 - b0) * 8 / (t1 - t0)
        print("switch-limits: bandwidth-in 10M measured %.2f Mbit/s (offered %.2f)" %
              (rate / 1e6, offered / 1e6))
        check(offered >= 15e6, "the flood offered only %.0f bit/s (want 1.5x the limit)" %
              offered)
        check(8e6 <= rate <= 12e6, "10 Mbit/s into a VM's tap measured %.0f bit/s" % rate)
    finally:
        subprocess.run(["ip", "netns", "del", fl], capture_output=True)
    e.keel("vm", "turn-off", "bw")
    e.wait_state("bw", "Off")


def unicast(dst, hexframe):
    """hexframe (frame()'s, broadcast) sent to MAC dst instead."""
    return dst.replace(":", "") + hexframe[12:]


def raw_fanout(src, dsts, frames):
    """For each namespace of dsts, the markers of frames (marker: hex frame) sent out of eth0
    in namespace src that reach its eth0."""
    rxs = {}
    for d in dsts:
        rxs[d] = subprocess.Popen(["ip", "netns", "exec", d, "python3", "-c", RAW_RECV, "eth0",
                                   "4"], stdout=subprocess.PIPE, text=True)
        check(rxs[d].stdout.readline().strip() == "ready", "the receiver did not start")
    subprocess.run(["ip", "netns", "exec", src, "python3", "-c", RAW_SEND, "eth0"] +
                   list(frames.values()), check=True)
    return {d: set(p.communicate(timeout=20)[0].split()) for d, p in rxs.items()}


def case_switch_mirror(e):
    """Issue 12: port mirroring (Set-VMNetworkAdapter -PortMirroring): a source adapter's
    frames, both ways, copied to the destination adapters on its switch (tc mirred on the
    source's tap), off by default; through the API, `--net ...,port-mirroring=` and `keel vm
    set`; bad values refused; the filters back after keeld's restart. Also the issue's trunk
    spelling, `--vlan-trunk LIST --native-vlan N` after a --net."""
    if not e.netns:
        print("SKIP: switch-mirror: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    br = switches(e)["Default Switch"]["bridge"]
    base = {"name": "x", "kernel": e.a.guest, "memory": 16 << 20}
    for net, msg in (({"switch": "Default Switch", "port_mirroring": "both"},
                      "is not none, source or destination"),
                     ({"switch": "Default Switch", "port_mirroring": 1},
                      "nets[].port_mirroring"),
                     ({"tap": "t0", "port_mirroring": "source"}, "port mirroring too")):
        e.api_err("POST", "/v1/vms", dict(base, nets=[net]), msg=msg)
    ds = "switch=Default Switch"
    net = ["--net", ds]
    for args, msg in ((["--net", ds + ",port-mirroring=yes"],
                       "port-mirroring is source, destination"),
                      (["--vlan-trunk", "10"], "give --net switch=NAME first"),
                      (net + ["--vlan-trunk", "0-5"], "not a VLAN list"),
                      (net + ["--vlan-trunk", "10,4095"], "not a VLAN list"),
                      (net + ["--vlan-trunk", "10", "--native-vlan", "4095"], "from 1 to 4094"),
                      (["--net", ds + ",vlan=5", "--vlan-trunk", "10"], "access mode"),
                      (["--net", ds + ",vlan-trunk=10", "--vlan-trunk", "20"],
                       "VLAN trunk already"),
                      (net + ["--vlan-trunk", "10", "--native-vlan", "2", "--native-vlan", "3"],
                       "native VLAN already")):
        argv = ["vm", "create", "x", "--kernel", e.a.guest] + args
        _, err = e.keel(*argv, want=2)
        check(msg in err, "keel %s: %r" % (" ".join(argv), err))
    check(e.api_ok("GET", "/v1/vms") == [], "a refused VM was made")
    # --vlan-trunk and --native-vlan go to the --net before them: the same fields as
    # vlan-trunk= and native-vlan= inside it.
    e.keel("vm", "create", "tr", "--kernel", e.a.guest, "--memory", "16M", "--net", ds,
           "--net", ds, "--vlan-trunk", "10,20-30", "--native-vlan", "7")
    n = e.vm("tr")["nets"]
    check("vlan_trunk" not in n[0] and n[1].get("vlan_trunk") == "10,20-30" and
          n[1].get("native_vlan") == 7, "tr's adapters: %r" % n)
    e.keel("vm", "set", "tr", "--net", ds + ",mac=" + n[1]["mac"], "--vlan-trunk", "40")
    n = e.vm("tr")["nets"]
    check(len(n) == 1 and n[0].get("vlan_trunk") == "40" and "native_vlan" not in n[0],
          "tr after set: %r" % n)
    e.keel("vm", "delete", "tr")
    # Three "VMs" whose taps are veths into namespaces: a and b talk, c watches.
    macs = {"a": "02:00:00:00:dd:01", "b": "02:00:00:00:dd:02", "c": "02:00:00:00:dd:03"}
    for k in sorted(macs):
        e.keel("vm", "create", "m" + k, "--kernel", e.a.guest, "--memory", "16M", "--net",
               "%s,mac=%s" % (ds, macs[k]))
    taps = {k: e.vm("m" + k)["nets"][0]["tap"] for k in macs}
    nss = {}

    def mirrors(tap):
        """The taps tap's frames are mirrored to, per hook."""
        out = {}
        for hook in ("ingress", "egress"):
            got = e.ns("tc", "filter", "show", "dev", tap, hook, check=False)
            # (tc 6.1 lists a clsact's ingress and egress filters under either hook)
            out[hook] = sorted(set(re.findall(r"Egress Mirror to device (\S+)\)", got)))
        return out

    def talk():
        """What b and c get of a's unicast to b, and a and c of b's to a."""
        ab = raw_fanout(nss["a"], [nss["b"], nss["c"]],
                        {"ab": unicast(macs["b"], frame(macs["a"], "ab"))})
        ba = raw_fanout(nss["b"], [nss["a"], nss["c"]],
                        {"ba": unicast(macs["a"], frame(macs["b"], "ba"))})
        return (ab[nss["b"]] | ba[nss["a"]], ab[nss["c"]] | ba[nss["c"]])

    try:
        fake_ports(e, br, "m", macs, nss)
        for k in macs:  # unicast to a and b goes to their ports only
            e.ns("bridge", "fdb", "replace", macs[k], "dev", taps[k], "master", "static")
        time.sleep(1.5)
        # Off by default: c sees none of a's and b's frames.
        peers, seen = talk()
        check(peers == {"ab", "ba"} and seen == set(),
              "without mirroring: a and b got %s, c %s" % (sorted(peers), sorted(seen)))
        check(mirrors(taps["a"]) == {"ingress": [], "egress": []}, "a mirrored unasked")
        e.keel("vm", "set", "mc", "--net", "%s,mac=%s,port-mirroring=destination" %
               (ds, macs["c"]))
        e.keel("vm", "set", "ma", "--net", "%s,mac=%s,port-mirroring=source" % (ds, macs["a"]))
        check(e.vm("ma")["nets"][0].get("port_mirroring") == "source", "ma's adapter")
        out, _ = e.keel("vm", "net", "list", "mc")
        check(re.search(r"^0 +Default Switch +k\w+ +\S+ +- +mD ", out, re.M),
              "vm net list mc: %r" % out)
        want = {"ingress": [taps["c"]], "egress": [taps["c"]]}
        check(mirrors(taps["a"]) == want, "a's mirrors: %r, want %r" % (mirrors(taps["a"]), want))
        check(mirrors(taps["b"]) == {"ingress": [], "egress": []}, "b mirrored")
        peers, seen = talk()
        check(peers == {"ab", "ba"} and seen == {"ab", "ba"},
              "mirroring a to c: a and b got %s, c %s" % (sorted(peers), sorted(seen)))
        # keeld restarted, a's filters gone meanwhile: back at its start.
        e.kill_keeld()
        e.ns("tc", "qdisc", "del", "dev", taps["a"], "clsact")
        e.start_keeld()
        check(mirrors(taps["a"]) == want, "a's mirrors after keeld's restart: %r" %
              mirrors(taps["a"]))
        # The destination back to none: nothing mirrored, a's qdisc gone.
        e.keel("vm", "set", "mc", "--net", "%s,mac=%s,port-mirroring=none" % (ds, macs["c"]))
        check("port_mirroring" not in e.vm("mc")["nets"][0], "mc: %r" % e.vm("mc")["nets"])
        check("clsact" not in e.ns("tc", "qdisc", "show", "dev", taps["a"]),
              "a's clsact after the destination went")
        peers, seen = talk()
        check(peers == {"ab", "ba"} and seen == set(),
              "no destination: a and b got %s, c %s" % (sorted(peers), sorted(seen)))
        # A set that moved a running VM's destination adapter onto a source's switch, then
        # failed (its other adapter's switch down) and moved it back: the source there
        # mirrors to nothing (not to a tap on the Default Switch).
        e.keel("switch", "create", "pm", "--type", "private")
        e.keel("switch", "create", "pd", "--type", "private")
        sws = switches(e)
        ms = {"s": "02:00:00:00:dd:04"}
        e.keel("vm", "create", "ms", "--kernel", e.a.guest, "--memory", "16M", "--net",
               "switch=pm,mac=%s,port-mirroring=source" % ms["s"])
        fake_ports(e, sws["pm"]["bridge"], "m", ms, nss)
        wm = ("02:00:00:00:dd:05", "02:00:00:00:dd:06")
        e.keel("vm", "create", "mw", "--kernel", e.a.guest, "--memory", "16M", "--net",
               "%s,mac=%s,port-mirroring=destination" % (ds, wm[0]), "--net",
               "%s,mac=%s" % (ds, wm[1]))
        wt = e.start("mw")["nets"][0]["tap"]
        e.ns("ip", "link", "del", sws["pd"]["bridge"])
        e.api_err("PATCH", "/v1/vms/mw", {"nets": [
            {"switch": "pm", "mac": wm[0], "port_mirroring": "destination"},
            {"switch": "pd", "mac": wm[1]}]}, want=409, msg="switch 'pd' is down")
        check(ns_master(e, wt) == br, "mw's tap after the failed set: %s" %
              e.ns("bridge", "link"))
        st = e.vm("ms")["nets"][0]["tap"]
        check(mirrors(st) == {"ingress": [], "egress": []},
              "pm's source mirrors across switches: %r (mw's tap %s)" % (mirrors(st), wt))
        e.keel("vm", "turn-off", "mw")
        e.wait_state("mw", "Off")
        for v in ("mw", "ms"):
            e.keel("vm", "delete", v)
    finally:
        for ns in nss.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for k in macs:
        e.keel("vm", "delete", "m" + k)


def case_net_hotplug(e):
    """Issue 12, Add-/Remove-VMNetworkAdapter on a running VM: `keel vm net add` makes the
    adapter's tap a port of its switch with its guards and the worker hot-adds the card
    ("nic-add"; the description keeps the PCI slot it took); `keel vm net remove` asks the
    guest to let it go (the tiny guest never ejects: the worker shows the removal under way)
    and the description drops it. Refusals (another switch that does not exist, an unknown
    MAC, an adapter replaced by another) change nothing. An off VM's description just
    changes."""
    if not e.netns:
        print("SKIP: net-hotplug: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    mac0, mac1, mac2 = "02:00:00:00:ac:01", "02:00:00:00:ac:02", "02:00:00:00:ac:03"
    e.keel("switch", "create", "hp", "--type", "private")
    bridge = switches(e)["hp"]["bridge"]
    e.keel("vm", "create", "hp", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=hp,mac=%s" % mac0)
    e.start("hp")
    out, _ = e.keel("vm", "net", "add", "hp", "--net", "switch=hp,mac=%s,dhcp-guard=on" % mac1)
    check("adapter added" in out, "keel vm net add: %r" % out)
    vm = e.vm("hp")
    nets = vm["nets"]
    check(vm["state"] == "Running" and len(nets) == 2 and nets[1]["mac"] == mac1 and
          nets[1].get("dhcp_guard") is True and isinstance(nets[1].get("pci_slot"), int),
          "hp after the add: %r" % vm)
    tap, slot = nets[1]["tap"], nets[1]["pci_slot"]
    check(ns_master(e, tap) == bridge, "the added adapter's tap: %s" % e.ns("bridge", "link"))
    guard = e.ns("nft", "list", "chain", "bridge", "keel", bridge + "_guard")
    check(tap in guard, "no guard for the added adapter's tap %s:\n%s" % (tap, guard))
    wlog = e.keel("vm", "log", "hp")[0]
    check("network adapter %s (%s) added at slot %d" % (tap, mac1, slot) in wlog,
          "the worker's log lacks the add:\n%s" % wlog)
    # Refusals: nothing changes (api_err compares the store), the card stays.
    e.api_err("PATCH", "/v1/vms/hp", {"nets": [{"switch": "hp", "mac": mac0},
                                              {"switch": "hp", "mac": mac1,
                                               "dhcp_guard": True},
                                              {"switch": "nosuch", "mac": mac2}]},
              msg="no switch named 'nosuch'")
    e.api_err("PATCH", "/v1/vms/hp", {"nets": [{"switch": "hp", "mac": mac0},
                                              {"switch": "hp", "mac": mac2}]},
              want=409, msg="needs VM 'hp' to be off")
    _, err = e.keel("vm", "net", "remove", "hp", "02:00:00:00:ac:99", want=2)
    check("no network adapter with MAC" in err, "remove of an unknown MAC: %r" % err)
    check(len(e.vm("hp")["nets"]) == 2, "hp's adapters after the refusals: %r" % e.vm("hp"))
    # Fail closed: the added adapter's guards are loaded before its tap is a port, also
    # while its description is not stored yet (the worker stopped, keeld waits on nic-add).
    mac3 = "02:00:00:00:ac:04"
    tap3 = "k" + mac3.replace(":", "")
    os.kill(vm["pid"], signal.SIGSTOP)
    try:
        job = subprocess.Popen([e.a.keel, "vm", "net", "add", "hp", "--net",
                                "switch=hp,mac=%s" % mac3], env=dict(os.environ,
                                KEEL_SOCKET=e.sock), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        end = time.monotonic() + 8
        while time.monotonic() < end and \
                bridge not in e.ns("ip", "link", "show", "dev", tap3, check=False):
            time.sleep(0.05)
        check(bridge in e.ns("ip", "link", "show", "dev", tap3, check=False),
              "tap %s never became a port of %s during the add" % (tap3, bridge))
        guard = e.ns("nft", "list", "chain", "bridge", "keel", bridge + "_guard")
        check(tap3 in guard, "tap %s is a port before its guards are loaded:\n%s"
              % (tap3, guard))
    finally:
        os.kill(vm["pid"], signal.SIGCONT)
    out, err = job.communicate(timeout=60)
    check(job.returncode == 0 and b"adapter added" in out, "the add: %r %r" % (out, err))
    check([n["mac"] for n in e.vm("hp")["nets"]] == [mac0, mac1, mac3], "hp: %r" % e.vm("hp"))
    out, _ = e.keel("vm", "net", "remove", "hp", mac1)
    check("adapter removed" in out, "keel vm net remove: %r" % out)
    nets = e.vm("hp")["nets"]
    check([n["mac"] for n in nets] == [mac0, mac3], "hp after the remove: %r" % nets)
    # Its guards went with the description: its tap (the worker's still, the guest has not
    # ejected) is off the switch, so a guest that never lets it go gets no unguarded port.
    check(ns_master(e, tap) is None,
          "the removed adapter's tap, no longer guarded, is still a port of %s: %s"
          % (bridge, e.ns("bridge", "link")))
    wlog = e.keel("vm", "log", "hp")[0]
    check("asked the guest to eject slot %d" % slot in wlog,
          "the worker's log lacks the eject request:\n%s" % wlog)
    # A guest that never ejects blocks a save (the removal is under way) until the adapter
    # is taken away by force (`net remove --force`): the worker tears the card down without
    # the guest, and the save goes through.
    _, err = e.keel("vm", "save", "hp", want=None)
    check("removal is under way" in err and e.vm("hp")["state"] == "Running",
          "a save while the guest has not ejected: %r, %r" % (err, e.vm("hp")["state"]))
    e.api_err("POST", "/v1/vms/hp/net-remove-force", {"mac": "nonsense"}, msg="field 'mac'")
    e.api_err("POST", "/v1/vms/hp/net-remove-force", {"mac": mac1, "slot": 3},
              msg="unknown field 'slot'")
    out, _ = e.keel("vm", "net", "remove", "hp", mac1, "--force")
    check("forced" in out, "keel vm net remove --force: %r" % out)
    wlog = e.keel("vm", "log", "hp")[0]
    check("network adapter %s (%s) at slot %d removed" % (tap, mac1, slot) in wlog,
          "the worker did not tear the card down on the forced removal:\n%s" % wlog)
    # Gone from the worker too: a second one has nothing to take.
    _, err = e.keel("vm", "net", "remove", "hp", mac1, "--force", want=None)
    check("nor one whose removal is under way" in err, "a second forced removal: %r" % err)
    # One still in the description (the spelling with --force first): away at once, its tap
    # gone, the description without it; the guest was never asked.
    slot3 = e.vm("hp")["nets"][1]["pci_slot"]
    out, _ = e.keel("vm", "net", "remove", "--force", "hp", mac3)
    check([n["mac"] for n in e.vm("hp")["nets"]] == [mac0], "hp after --force: %r" % e.vm("hp"))
    # The worker closed the card's tap (not persistent: it is gone, off every bridge).
    check(tap3 not in e.ns("ip", "link", "show", check=False),
          "the forced adapter's tap is still there: %s" % e.ns("bridge", "link"))
    wlog = e.keel("vm", "log", "hp")[0]
    check("network adapter %s (%s)" % (tap3, mac3) in wlog and
          "eject slot %d" % slot3 not in wlog,
          "the worker's log on the forced removal of a described adapter:\n%s" % wlog)
    e.keel("vm", "save", "hp")
    check(e.vm("hp")["state"] == "Saved", "the save after the forced removals: %r" % e.vm("hp"))
    _, err = e.keel("vm", "net", "remove", "hp", mac0, "--force", want=None)
    check("only a running VM's adapter" in err, "--force on a saved VM: %r" % err)
    e.keel("vm", "discard-state", "hp")
    # Off: the description alone.
    e.keel("vm", "net", "add", "hp", "--net", "switch=hp,mac=%s" % mac3)
    e.keel("vm", "net", "add", "hp", "--net", "switch=hp,mac=%s" % mac2)
    check([n["mac"] for n in e.vm("hp")["nets"]] == [mac0, mac3, mac2],
          "off add: %r" % e.vm("hp"))
    e.keel("vm", "net", "remove", "hp", mac0)
    check([n["mac"] for n in e.vm("hp")["nets"]] == [mac3, mac2], "off remove: %r" % e.vm("hp"))
    # --vlan-trunk and --native-vlan after the --net, as create and set take them; a bad
    # list or an option of another verb refused with nothing added.
    mac4 = "02:00:00:00:ac:05"
    e.keel("vm", "net", "add", "hp", "--net", "switch=hp,mac=%s" % mac4, "--vlan-trunk",
           "10,20-30", "--native-vlan", "5")
    n = e.vm("hp")["nets"]
    check(len(n) == 3 and n[2]["mac"] == mac4 and n[2].get("vlan_trunk") == "10,20-30" and
          n[2].get("native_vlan") == 5, "net add with a trunk: %r" % n)
    _, err = e.keel("vm", "net", "add", "hp", "--net", "switch=hp", "--vlan-trunk", "0-9",
                    want=2)
    check("not a VLAN list" in err, "net add with a bad trunk: %r" % err)
    _, err = e.keel("vm", "net", "add", "hp", "--net", "switch=hp", "--vlan", "3", want=2)
    check("usage: keel vm net add" in err, "net add with --vlan: %r" % err)
    check(len(e.vm("hp")["nets"]) == 3, "refused adds added: %r" % e.vm("hp")["nets"])
    print("net-hotplug: added at slot %d with its tap on the switch and its guard, refusals "
          "changed nothing, removed (the guest asked), a save blocked by the guest's missing "
          "eject until --force took the card, off changes" % slot)


def case_vhost(e):
    """Issue 16, the kernel data path (docs/virtio.md, "vhost-net"): an adapter's "vhost" is
    auto by default, off or on, kept in the store across a keeld restart, and anything else
    is refused. keeld passes /dev/vhost-net next to the tap (vhost.I) where the host has it;
    where it has not (this host), an auto adapter's worker says once that the user-space path
    serves it and why (keeld's log names the open's error), off says so too, and on fails
    the start saying that vhost-net is missing and what to do."""
    if not e.netns:
        print("SKIP: vhost: keeld's network namespace and its bridges need root")
        return 77
    have = os.path.exists("/dev/vhost-net")
    e.start_keeld()
    mac = "02:00:00:00:16:01"
    e.keel("switch", "create", "vh", "--type", "private")
    e.create("vh", nets=[{"switch": "vh", "mac": mac}])
    check("vhost" not in e.vm("vh")["nets"][0], "auto is the default: %r" % e.vm("vh"))
    e.api_err("PATCH", "/v1/vms/vh", {"nets": [{"switch": "vh", "mac": mac, "vhost": "fast"}]},
              msg="nets[0].vhost 'fast' is not auto, off or on")
    e.start("vh")
    wlog = e.keel("vm", "log", "vh")[0]
    if have:
        check("vhost-net: the host kernel's data path serves the adapter" in wlog,
              "auto on a host with /dev/vhost-net:\n%s" % wlog)
    else:
        check("user-space data path: keeld passed no /dev/vhost-net" in wlog,
              "the worker does not say it fell back:\n%s" % wlog)
        check(wlog.count("user-space data path") == 1, "said more than once:\n%s" % wlog)
        klog = open(e.keeld_log, errors="replace").read()
        check("/dev/vhost-net: No such file or directory: its worker uses the user-space" in
              klog, "keeld's log does not say why:\n%s" % klog[-3000:])
    e.keel("vm", "stop", "vh", "--force")
    e.wait_state("vh", "Off")
    # on: kept across a keeld restart; without vhost-net the start fails saying so.
    e.api_ok("PATCH", "/v1/vms/vh", {"nets": [{"switch": "vh", "mac": mac, "vhost": "on"}]})
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    check(e.vm("vh")["nets"][0].get("vhost") == "on", "vhost=on after a restart: %r"
          % e.vm("vh")["nets"])
    if have:
        e.start("vh")
        e.keel("vm", "stop", "vh", "--force")
        e.wait_state("vh", "Off")
    else:
        _, err = e.keel("vm", "start", "vh", want=1)
        check("has vhost=on, but /dev/vhost-net cannot be opened" in err and
              "set vhost to auto or off" in err, "vhost=on without vhost-net: %r" % err)
        check(e.vm("vh")["state"] == "Off", "vhost=on start left %r" % e.vm("vh"))
    # off (through the command line): the user-space path, said so; kept across a restart.
    _, err = e.keel("vm", "set", "vh", "--net", "switch=vh,mac=%s,vhost=maybe" % mac, want=2)
    check("vhost is auto, off or on" in err, "keel vm set vhost=maybe: %r" % err)
    e.keel("vm", "set", "vh", "--net", "switch=vh,mac=%s,vhost=off" % mac)
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    check(e.vm("vh")["nets"][0].get("vhost") == "off", "vhost=off after a restart: %r"
          % e.vm("vh")["nets"])
    e.start("vh")
    wlog = e.keel("vm", "log", "vh")[0]
    check("user-space data path (vhost=off)" in wlog, "vhost=off:\n%s" % wlog)
    print("vhost: %s; on %s; off says so; the option kept in the store"
          % ("vhost-net used" if have else "fell back and said why",
             "starts" if have else "refused with a clear message"))


def case_net_hotplug_vhost(e):
    """Issue 16: an adapter hot-added to a running VM gets the data path one it starts with
    gets (docs/virtio.md, "vhost-net"): keeld opens /dev/vhost-net as its vhost says and
    passes it with the tap in the same nic-add ("vhost_fd"). Without /dev/vhost-net (this
    host): vhost=on is refused saying why and what to do, the VM, its description and the
    worker's adapters as they were and no tap made; auto is added on the user-space path,
    keeld's log and the worker's saying why; off says so. The worker's nic-add refuses a
    request whose descriptors are not the ones it says came (the tap, /dev/vhost-net second),
    keeping none of them."""
    if not e.netns:
        print("SKIP: net-hotplug-vhost: keeld's network namespace and its bridges need root")
        return 77
    have = os.path.exists("/dev/vhost-net")
    e.start_keeld()
    mac0, mac1, mac2, mac3 = ("02:00:00:00:16:%02x" % i for i in range(0x10, 0x14))
    e.keel("switch", "create", "hv", "--type", "private")
    e.create("hv", nets=[{"switch": "hv", "mac": mac0, "vhost": "off"}])
    vm = e.start("hv")
    ctl = os.path.join(e.state, "vms", vm["id"], "control.sock")

    def worker_macs():
        reply = control_request(ctl, {"execute": "nic-list"})
        return [n["mac"] for n in reply["return"]["nics"]]

    # on, without vhost-net: refused before anything is made.
    if not have:
        before = e.snapshot()
        _, err = e.keel("vm", "net", "add", "hv", "--net", "switch=hv,mac=%s,vhost=on" % mac1,
                        want=None)
        check("has vhost=on, but /dev/vhost-net cannot be opened" in err and
              "modprobe vhost_net" in err and "set vhost to auto or off" in err,
              "hot add with vhost=on without vhost-net: %r" % err)
        check(e.snapshot() == before, "the refused hot add changed the store")
        check(e.vm("hv")["state"] == "Running" and worker_macs() == [mac0],
              "after the refused hot add: %r, the worker's %r" % (e.vm("hv"), worker_macs()))
        check("k" + mac1.replace(":", "") not in e.ns("ip", "link", "show", check=False),
              "the refused hot add left its tap: %s" % e.ns("ip", "link", "show", check=False))
    # auto: the kernel's path where the host has it, else the user-space one, said why.
    e.keel("vm", "net", "add", "hv", "--net", "switch=hv,mac=%s" % mac2)
    nets = e.vm("hv")["nets"]
    check([n["mac"] for n in nets] == [mac0, mac2] and "vhost" not in nets[1],
          "after the auto add: %r" % nets)
    tap2 = nets[1]["tap"]
    wlog = e.keel("vm", "log", "hv")[0]
    klog = open(e.keeld_log, errors="replace").read()
    if have:
        check("%s: vhost-net: the host kernel's data path serves the adapter" % tap2 in wlog,
              "auto hot add on a host with /dev/vhost-net:\n%s" % wlog)
    else:
        check("%s: user-space data path: keeld passed no /dev/vhost-net" % tap2 in wlog,
              "the worker does not say the hot-added adapter fell back:\n%s" % wlog)
        check("network adapter %s (tap %s): /dev/vhost-net: No such file or directory: its "
              "worker uses the user-space data path" % (mac2, tap2) in klog,
              "keeld's log does not say why:\n%s" % klog[-3000:])
    # off: said so, kept in the description.
    e.keel("vm", "net", "add", "hv", "--net", "switch=hv,mac=%s,vhost=off" % mac3)
    nets = e.vm("hv")["nets"]
    check([n["mac"] for n in nets] == [mac0, mac2, mac3] and nets[2].get("vhost") == "off",
          "after the off add: %r" % nets)
    wlog = e.keel("vm", "log", "hv")[0]
    check("%s: user-space data path (vhost=off)" % nets[2]["tap"] in wlog,
          "vhost=off hot add:\n%s" % wlog)
    check(worker_macs() == [mac0, mac2, mac3], "the worker's adapters: %r" % worker_macs())
    # The worker's nic-add takes exactly the descriptors it says came: refused otherwise,
    # none kept: neither the test's pipe nor any descriptor but sockets more than before (a
    # control client's socket comes and goes: keeld's heartbeat asks for vCPU statistics).
    pid = e.vm("hv")["pid"]
    r, w = os.pipe()
    mine = {os.readlink("/proc/self/fd/%d" % fd) for fd in (r, w)}
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(ctl)
    lines = sock.makefile("r")

    def ask(args, fds, execute="nic-add"):
        socket.send_fds(sock, [json.dumps({"execute": execute,
                                           "arguments": args}).encode() + b"\n"], fds)
        line = lines.readline()
        check(line, "no reply to %s %r: the worker ended" % (execute, args))
        return json.loads(line)

    def not_sockets():
        return [f for f in open_files(pid) if not f.startswith("socket:")]

    held = len(not_sockets())
    refusals = [
        ({"tap": "kvx1", "fd": True, "vhost_fd": True}, [r],
         "1 descriptor came with the request, which says 2"),
        ({"tap": "kvx1", "fd": True}, [r, w], "2 descriptors came with the request, which says 1"),
        ({"tap": "kvx1", "fd": True, "vhost_fd": True}, [r, w, r],
         "3 descriptors came with the request, which says 2"),
        ({"tap": "kvx1"}, [r], "1 descriptor came with the request, which says 0"),
        ({"tap": "kvx1", "vhost_fd": True}, [r], '"vhost_fd":true needs "fd":true'),
        ({"tap": "kvx1", "fd": True, "vhost": "off", "vhost_fd": True}, [r, w],
         '"vhost_fd":true with "vhost":"off"'),
        ({"tap": "kvx1", "fd": True, "vhost": "fast"}, [r], '"vhost" is "auto", "off" or "on"'),
        ({"tap": "kvx1", "fd": True, "vhost_fd": 1}, [r, w], '"vhost_fd" must be true or false'),
        # Multi-queue: a tap queue per pair, as many /dev/vhost-nets after them; pairs from 1
        # to the VM's vCPUs (hv has 1: the card is refused with both descriptors taken).
        ({"tap": "kvx1", "fd": True, "queues": 2}, [r],
         "1 descriptor came with the request, which says 2"),
        ({"tap": "kvx1", "fd": True, "vhost_fd": True, "queues": 2}, [r, w, r],
         "3 descriptors came with the request, which says 4"),
        ({"tap": "kvx1", "fd": True, "queues": 0}, [r], '"queues" is the card\'s queue pairs'),
        ({"tap": "kvx1", "fd": True, "queues": 9}, [r], '"queues" is the card\'s queue pairs'),
        ({"tap": "kvx1", "fd": True, "queues": 2}, [r, w],
         "2 queue pairs: the card takes 1 to the VM's 1 vCPU"),
    ]
    for args, fds, msg in refusals:
        desc = ask(args, fds).get("error", {}).get("desc", "")
        check(msg in desc, "nic-add %r with %d descriptors: %r" % (args, len(fds), desc))
    after = not_sockets()
    check(len(after) == held and not mine & set(after),
          "the worker holds %d descriptors other than sockets after the refusals, %d before: "
          "%r" % (len(after), held, sorted(after)))
    check(worker_macs() == [mac0, mac2, mac3] and e.vm("hv")["state"] == "Running",
          "after the refused requests: %r, %r" % (worker_macs(), e.vm("hv")))
    # The jailed worker sets up a vhost-net passed with the tap itself, on its main loop
    # (seccomp: VHOST_SET_OWNER there): a descriptor that is no vhost-net (a socket pair's
    # end for the tap, /dev/null for vhost-net) is refused by the kernel, so on fails the
    # add (the card made and taken down again) and auto falls back saying why; the worker
    # carries on either way.
    tap, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    null = os.open("/dev/null", os.O_RDWR)
    mac4, mac5 = "02:00:00:00:16:20", "02:00:00:00:16:21"
    desc = ask({"tap": "kvx2", "mac": mac4, "fd": True, "vhost": "on", "vhost_fd": True},
               [tap.fileno(), null]).get("error", {}).get("desc", "")
    check("vhost=on, but vhost-net cannot serve it: VHOST_SET_OWNER refused" in desc and
          "set vhost to auto or off" in desc, "nic-add vhost=on on no vhost-net: %r" % desc)
    check(worker_macs() == [mac0, mac2, mac3], "the refused add: %r" % worker_macs())
    reply = ask({"tap": "kvx3", "mac": mac5, "fd": True, "vhost_fd": True},
                [tap.fileno(), null])
    check(isinstance(reply.get("return", {}).get("slot"), int),
          "nic-add auto on no vhost-net: %r" % reply)
    wlog = e.keel("vm", "log", "hv")[0]
    check("kvx3: user-space data path: VHOST_SET_OWNER refused" in wlog,
          "the worker does not say why the passed vhost-net is not used:\n%s" % wlog)
    check(ask({"mac": mac5, "force": True}, [], "nic-remove") == {"return": {}},
          "the forced removal of kvx3")
    ours = os.readlink("/proc/self/fd/%d" % tap.fileno())
    check(ours not in open_files(pid), "the worker still holds kvx3's tap %s" % ours)
    sock.close()
    for fd in (r, w, null):
        os.close(fd)
    tap.close()
    peer.close()
    check(worker_macs() == [mac0, mac2, mac3] and e.vm("hv")["state"] == "Running",
          "after the adds on no vhost-net: %r, %r" % (worker_macs(), e.vm("hv")))
    e.keel("vm", "turn-off", "hv")
    print("net-hotplug-vhost: %s; auto %s; off says so; %d malformed nic-adds refused, no "
          "descriptor kept (%d held before and after); the jailed worker tried a passed "
          "vhost-net itself"
          % ("vhost=on refused, nothing changed" if not have else "vhost-net present",
             "uses vhost-net" if have else "fell back and said why", len(refusals), held))


def case_net_multiqueue(e):
    """Issue 16, virtio-net multi-queue: an adapter of a 2-vCPU VM gets 2 queue pairs by
    default; keeld opens its tap as a multi-queue tap and passes both queues to the jailed
    worker (--fd net.0 and net.0.q1). queues above the vCPUs is refused. Hot plug gives an
    adapter the pairs one the VM starts with gets: 2 by default (keeld passes the tap's 2
    queues in the nic-add, the description keeps the default), 1 when it says queues=1, and
    more than the vCPUs is refused, nothing added."""
    if not e.netns:
        print("SKIP: net-multiqueue: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    mac0, mac1 = "02:00:00:00:ad:01", "02:00:00:00:ad:02"
    e.keel("switch", "create", "mq", "--type", "private")
    e.api_err("POST", "/v1/vms", {"name": "mq", "kernel": e.a.guest, "memory": 16 << 20,
                                 "cpus": 2, "nets": [{"switch": "mq", "queues": 3}]},
              msg="queues 3 is more than the VM's 2 vCPUs")
    _, err = e.keel("vm", "create", "mq", "--kernel", e.a.guest, "--net",
                    "switch=mq,queues=9", want=2)
    check("queues is from 1 to 8" in err, "CLI queues=9: %r" % err)
    e.keel("vm", "create", "mq", "--kernel", e.a.guest, "--memory", "16M", "--cpus", "2",
           "--net", "switch=mq,mac=%s" % mac0)
    check("queues" not in e.vm("mq")["nets"][0], "the default is stored as none: %r"
          % e.vm("mq")["nets"])
    e.start("mq")
    vm = e.vm("mq")
    tap = vm["nets"][0]["tap"]
    with open("/proc/%d/cmdline" % vm["pid"], "rb") as f:
        argv = f.read().split(b"\0")
    check(any(a.startswith(b"--fd=net.0=") for a in argv) and
          any(a.startswith(b"--fd=net.0.q1=") for a in argv) and
          not any(a.startswith(b"--fd=net.0.q2=") for a in argv),
          "the worker's tap queues: %r" % argv)
    info = e.ns("ip", "-d", "link", "show", "dev", tap)
    m = re.search(r"multi_queue numqueues (\d+) numdisabled (\d+)", info)
    # Both queues the worker's; pair 1's is detached once its I/O thread has run (the tiny
    # guest never enables it).
    check(m and int(m.group(1)) + int(m.group(2)) == 2 and int(m.group(1)) >= 1,
          "tap %s is not a 2-queue multi-queue tap: %s" % (tap, info))
    mac2 = "02:00:00:00:ad:03"
    _, err = e.keel("vm", "net", "add", "mq", "--net", "switch=mq,mac=%s,queues=3" % mac1,
                    want=2)
    check("queues 3 is more than the VM's 2 vCPUs" in err, "hot plug of 3 pairs: %r" % err)
    check(len(e.vm("mq")["nets"]) == 1, "a refused add added: %r" % e.vm("mq")["nets"])
    check("k" + mac1.replace(":", "") not in e.ns("ip", "link", "show", check=False),
          "the refused add left its tap: %s" % e.ns("ip", "link", "show", check=False))

    def hot_added(mac, pairs):
        """The adapter with MAC mac, added: its tap the worker's queues, one per pair (a
        multi-queue tap for more than one), the worker's log saying how many."""
        n = [x for x in e.vm("mq")["nets"] if x["mac"] == mac][0]
        info = e.ns("ip", "-d", "link", "show", "dev", n["tap"])
        q = re.search(r"multi_queue numqueues (\d+) numdisabled (\d+)", info)
        check((q and int(q.group(1)) + int(q.group(2)) == pairs) if pairs > 1 else not q,
              "hot-added tap %s is not a %d-queue tap: %s" % (n["tap"], pairs, info))
        line = "network adapter %s (%s) added at slot %d, %d queue pair%s" % (
            n["tap"], mac, n["pci_slot"], pairs, "" if pairs == 1 else "s")
        wlog = e.keel("vm", "log", "mq")[0]
        check(line in wlog, "the worker's log lacks %r:\n%s" % (line, wlog))
        return n

    out, _ = e.keel("vm", "net", "add", "mq", "--net", "switch=mq,mac=%s" % mac1)
    check("adapter added" in out, "keel vm net add: %r" % out)
    check("queues" not in hot_added(mac1, 2), "the default kept: %r" % e.vm("mq")["nets"])
    e.keel("vm", "net", "add", "mq", "--net", "switch=mq,mac=%s,queues=1" % mac2)
    check(hot_added(mac2, 1).get("queues") == 1, "queues=1 kept: %r" % e.vm("mq")["nets"])
    e.keel("vm", "stop", "mq", "--force")
    e.wait_state("mq", "Off")
    print("net-multiqueue: 2 tap queues passed for 2 vCPUs (%s), queues above the vCPUs "
          "refused; hot plug 2 pairs by default, 1 with queues=1, 3 refused" % m.group(0))


def case_switch_move(e):
    """Issue 12, Connect-VMNetworkAdapter: `keel vm set --net` on a running VM whose adapter
    (named by its MAC) only changes switch moves its tap to the new switch's bridge, with the
    new switch's guards, VLAN and bandwidth, its link down and up in the worker; refusals
    (no such switch, a switch that is down, a batch nftables refuses, another MAC) leave the
    adapter and the description where they were."""
    if not e.netns:
        print("SKIP: switch-move: keeld's network namespace and its bridges need root")
        return 77
    e.start_keeld()
    mac = "02:00:00:00:ab:01"
    e.keel("switch", "create", "p2", "--type", "private")
    e.keel("switch", "create", "p3", "--type", "private")
    sws = switches(e)
    d, p2, p3 = sws["Default Switch"], sws["p2"], sws["p3"]
    e.keel("vm", "create", "mv", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=Default Switch,mac=%s,bandwidth-in=10M" % mac)
    vm = e.start("mv")
    tap = vm["nets"][0]["tap"]
    check(ns_master(e, tap) == d["bridge"], "mv's tap: %s" % e.ns("bridge", "link"))

    def qdisc():
        return [q["kind"] for q in json.loads(e.ns("tc", "-j", "qdisc", "show", "dev", tap))]

    check("tbf" in qdisc(), "mv's tap has no tbf: %r" % qdisc())
    # Moved: on p2's bridge, its router guard in p2's chain and none in the Default
    # Switch's, the tbf gone (no bandwidth-in on p2), the description p2's.
    e.keel("vm", "set", "mv", "--net", "switch=p2,mac=%s,router-guard=on" % mac)
    check(ns_master(e, tap) == p2["bridge"], "mv's tap after the move: %s" %
          e.ns("bridge", "link"))
    check("tbf" not in qdisc(), "the tbf stayed on the moved tap: %r" % qdisc())
    n = e.vm("mv")["nets"][0]
    check(n["switch"] == "p2" and n.get("router_guard") is True and n["tap"] == tap and
          n["mac"] == mac and e.vm("mv")["state"] == "Running", "mv after the move: %r" % n)
    g2 = e.ns("nft", "list", "chain", "bridge", "keel", p2["bridge"] + "_guard")
    gd = e.ns("nft", "list", "chain", "bridge", "keel", d["bridge"] + "_guard")
    check(tap in g2 and "nd-router-advert" in g2 and tap not in gd,
          "guards after the move:\n%s\n%s" % (g2, gd))
    wlog = e.keel("vm", "log", "mv")[0]
    down, up = (wlog.find("network adapter 0: link %s" % w) for w in ("down", "up"))
    check(0 <= down < up, "the worker's log lacks the link down then up:\n%s" % wlog)
    _, err = e.keel("switch", "delete", "p2", want=5)
    check("in use by VM 'mv'" in err, "delete p2 with mv on it: %r" % err)
    # Refusals: the adapter stays on p2, the description unchanged.
    e.api_err("PATCH", "/v1/vms/mv", {"nets": [{"switch": "nosuch", "mac": mac}]},
              msg="no switch named 'nosuch'")
    e.api_err("PATCH", "/v1/vms/mv", {"nets": [{"switch": "p3", "mac": "02:00:00:00:ab:02"}]},
              want=409, msg="needs VM 'mv' to be off")
    # p3 down (its bridge gone), then p3's batch refused (its guard chain no base chain).
    e.ns("ip", "link", "del", p3["bridge"])
    e.api_err("PATCH", "/v1/vms/mv", {"nets": [{"switch": "p3", "mac": mac}]}, want=409,
              msg="switch 'p3' is down")
    check(ns_master(e, tap) == p2["bridge"], "mv's tap left p2 on a failed move")
    e.kill_keeld()
    e.start_keeld()  # p3's bridge made again
    refuse_guard_chain(e, p3["bridge"])
    doc = e.api_err("PATCH", "/v1/vms/mv", {"nets": [{"switch": "p3", "mac": mac}]}, want=500)
    msg = doc["error"]["message"]
    check("nftables refused" in msg and "stays on 'p2'" in msg, "refused move: %r" % msg)
    check(ns_master(e, tap) == p2["bridge"] and e.vm("mv")["nets"][0]["switch"] == "p2",
          "mv's adapter after a refused move: %s" % e.ns("bridge", "link"))
    wlog = e.keel("vm", "log", "mv")[0]
    check(wlog.rfind("network adapter 0: link up") > wlog.rfind("network adapter 0: link down"),
          "the link stayed down after a refused move:\n%s" % wlog)
    e.ns("nft", "delete", "chain", "bridge", "keel", p3["bridge"] + "_guard")
    # keeld ended in the middle of a move (its tap on the Default Switch's bridge, the store
    # still p2's): at its next start the tap is back on p2 with p2's guards, its link up.
    ups = e.keel("vm", "log", "mv")[0].count("network adapter 0: link up")
    e.kill_keeld()
    e.ns("ip", "link", "set", tap, "nomaster")
    e.ns("ip", "link", "set", tap, "master", d["bridge"])
    e.start_keeld()
    g2 = e.ns("nft", "list", "chain", "bridge", "keel", p2["bridge"] + "_guard")
    check(ns_master(e, tap) == p2["bridge"] and tap in g2,
          "mv's tap after keeld's start: %s\n%s" % (e.ns("bridge", "link"), g2))
    wlog = e.keel("vm", "log", "mv")[0]
    check(wlog.count("network adapter 0: link up") == ups + 1,
          "no link up at keeld's start:\n%s" % wlog)
    # Back to the Default Switch with a bandwidth limit: the tbf back on the tap.
    e.keel("vm", "set", "mv", "--net", "switch=Default Switch,mac=%s,bandwidth-in=20M" % mac)
    check(ns_master(e, tap) == d["bridge"] and "tbf" in qdisc(),
          "mv back on the Default Switch: %s %r" % (e.ns("bridge", "link"), qdisc()))
    # A VLAN changed on the same switch: the port made again, with only the new VLAN.
    if subprocess.run(["ip", "netns", "exec", e.netns, "ip", "link", "add", "vfp", "type",
                       "bridge", "vlan_filtering", "1"], capture_output=True).returncode == 0:
        e.ns("ip", "link", "del", "vfp")
        for vid in (10, 20):
            e.keel("vm", "set", "mv", "--net", "switch=p2,mac=%s,vlan=%d" % (mac, vid))
        doc = json.loads(e.ns("bridge", "-j", "vlan", "show", "dev", tap) or "[]")
        vids = sorted(v["vlan"] for d in doc for v in d.get("vlans", []))
        check(ns_master(e, tap) == p2["bridge"] and vids == [20],
              "mv's tap after VLAN 10 then 20 on p2: %s %r" % (ns_master(e, tap), doc))
    else:
        print("switch-move: this kernel has no bridge VLAN filtering: VLAN move not checked")
        # A VLAN then fails once the new settings' guards are loaded: on the same switch,
        # the port gets its old guards back with its old settings (its router guard).
        e.keel("vm", "set", "mv", "--net", "switch=p2,mac=%s,router-guard=on" % mac)
        e.api_err("PATCH", "/v1/vms/mv", {"nets": [{"switch": "p2", "mac": mac, "vlan": 10}]},
                  want=500, msg="no bridge VLAN filtering")
        g2 = e.ns("nft", "list", "chain", "bridge", "keel", p2["bridge"] + "_guard")
        check(ns_master(e, tap) == p2["bridge"] and tap in g2 and "nd-router-advert" in g2,
              "p2's guards after a failed VLAN change on p2:\n%s" % g2)
    e.keel("vm", "turn-off", "mv")
    e.wait_state("mv", "Off")
    # Off, the same change is only the description's.
    e.keel("vm", "set", "mv", "--net", "switch=p3,mac=%s" % mac)
    check(e.vm("mv")["nets"][0]["switch"] == "p3", "mv set off: %r" % e.vm("mv")["nets"])


def case_switch_docker(e):
    """Issue 12, coexistence with Docker: a host whose FORWARD chain drops by policy (as
    Docker's does, with its DOCKER-USER chain) still forwards the Default Switch's traffic:
    keeld puts its accept rules into DOCKER-USER, puts them back when they are flushed away,
    and takes them away with the switch. A client behind the switch reaches a namespace
    standing in for the outside through NAT."""
    if not e.netns:
        print("SKIP: switch-docker: keeld's network namespace and its bridges need root")
        return 77
    e.ns("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
    e.ns("ip", "addr", "add", "10.70.0.1/16", "dev", "up0")
    e.ns("ip", "link", "set", "up0", "up")
    # Docker's filter table as iptables-nft makes it: FORWARD drops, DOCKER-USER first.
    e.ns("nft", "add table ip filter; add chain ip filter DOCKER-USER; "
         "add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }; "
         "add rule ip filter FORWARD jump DOCKER-USER")
    e.start_keeld()
    d = switches(e)["Default Switch"]
    br = d["bridge"]
    rules = e.ns("nft", "list", "chain", "ip", "filter", "DOCKER-USER")
    check('iifname "%s" oifname != "docker0" oifname != "br-*" accept comment "keel %s"' %
          (br, br) in rules and
          'oifname "%s" ct state established,related accept comment "keel %s"' % (br, br)
          in rules, "no accept rules in DOCKER-USER:\n" + rules)
    # A container on docker0 (172.17.0.2) with an unpublished port: not for the switch.
    e.ns("ip", "link", "add", "docker0", "type", "bridge")
    e.ns("ip", "addr", "add", "172.17.0.1/16", "dev", "docker0")
    e.ns("ip", "link", "add", "dv0", "type", "veth", "peer", "name", "dv1")
    e.ns("ip", "link", "set", "dv0", "master", "docker0", "up")
    e.ns("ip", "link", "set", "docker0", "up")
    g, o, c = e.netns + "g", e.netns + "o", e.netns + "c"
    try:
        for n in (g, o, c):
            subprocess.run(["ip", "netns", "add", n], check=True)
        e.ns("ip", "link", "set", "dv1", "netns", c)
        for cmd in (["ip", "addr", "add", "172.17.0.2/16", "dev", "dv1"],
                    ["ip", "link", "set", "dv1", "up"]):
            subprocess.run(["ip", "netns", "exec", c] + cmd, check=True)
        e.ns("ip", "link", "set", "up1", "netns", o)
        subprocess.run(["ip", "netns", "exec", o, "ip", "addr", "add", "10.70.0.2/16", "dev",
                        "up1"], check=True)
        subprocess.run(["ip", "netns", "exec", o, "ip", "link", "set", "up1", "up"], check=True)
        e.ns("ip", "link", "add", "gv0", "type", "veth", "peer", "name", "gv1")
        e.ns("ip", "link", "set", "gv0", "master", br, "up")
        e.ns("ip", "link", "set", "gv1", "netns", g)
        ip = d["subnet"].rsplit(".", 1)[0] + ".77"
        gexec = ["ip", "netns", "exec", g]
        subprocess.run(gexec + ["ip", "addr", "add", ip + "/24", "dev", "gv1"], check=True)
        subprocess.run(gexec + ["ip", "link", "set", "gv1", "up"], check=True)
        subprocess.run(gexec + ["ip", "route", "add", "default", "via", d["host_address"]],
                       check=True)

        def ping():
            return subprocess.run(gexec + ["busybox", "ping", "-c", "1", "-W", "2", "10.70.0.2"],
                                  capture_output=True).returncode == 0

        deadline = time.time() + 10
        while time.time() < deadline and not ping():
            time.sleep(0.5)
        r = subprocess.run(gexec + ["busybox", "ping", "-c", "1", "-W", "2", "10.70.0.2"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "no way out through NAT under a FORWARD policy of drop: "
              "%s%s\n%s" % (r.stdout, r.stderr, e.ns("nft", "list", "ruleset")))
        r = subprocess.run(gexec + ["busybox", "ping", "-c", "1", "-W", "2", "172.17.0.2"],
                           capture_output=True, text=True)
        check(r.returncode != 0, "the switch reached a container on docker0 past Docker's "
              "chains:\n" + e.ns("nft", "list", "chain", "ip", "filter", "DOCKER-USER"))
        # Flushed away (a Docker restart): nothing passes without them (seen with keeld
        # stopped, as nftables' notification of the flush would have it put them back at
        # once), and they are back once it goes on.
        os.kill(e.keeld_proc.pid, signal.SIGSTOP)
        try:
            e.ns("nft", "flush", "chain", "ip", "filter", "DOCKER-USER")
            check(not ping(), "the outside reached with DOCKER-USER flushed")
        finally:
            os.kill(e.keeld_proc.pid, signal.SIGCONT)
        deadline = time.time() + 15
        while time.time() < deadline and not ping():
            time.sleep(0.5)
        check(ping(), "keeld did not put its DOCKER-USER rules back")
        check("nftables told keeld" in open(e.keeld_log).read(),
              "keeld's reload of DOCKER-USER was not the notification's")
    finally:
        for n in (g, o, c):
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
    e.keel("switch", "create", "dk", "--type", "internal", "--subnet", "10.62.0.0/24")
    dk = switches(e)["dk"]["bridge"]
    check('"keel %s"' % dk in e.ns("nft", "list", "chain", "ip", "filter", "DOCKER-USER"),
          "no DOCKER-USER rules for dk")
    e.keel("switch", "delete", "dk")
    rules = e.ns("nft", "list", "chain", "ip", "filter", "DOCKER-USER")
    check('"keel %s"' % dk not in rules and '"keel %s"' % br in rules,
          "DOCKER-USER after dk's delete:\n" + rules)


def case_vsock(e):
    """Issue 13: virtio-vsock's host side through keeld. The description's vsock field (a bad
    CID refused with its reason); the jailed worker listens on vsock.sock in the VM's
    directory (group access, as the consoles); a host client of a guest that drives no vsock
    is accepted and closed (the calls it takes are in the filter: the worker lives on), also
    after a pause and resume (which resets the transport). The socket's path reaches the
    worker whole (--vsock-socket=PATH), never through a key=value splitter: the state
    directory is named so that its path holds ",socket=" and another path, which split at
    commas would have moved the socket there (issue 9); keel-vmm's --vsock refuses a
    socket path with a comma, saying so."""
    r = subprocess.run([e.a.keel_vmm, "--kernel", e.a.guest, "--vsock",
                        "socket=%s/a,socket=%s/b" % (e.dir, e.dir)],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "cannot contain a comma" in r.stderr and
          "--vsock-socket" in r.stderr, "keel-vmm --vsock socket=A,socket=B: %d %r"
          % (r.returncode, r.stderr))
    # e.dir/s,socket=/tmp/kdX/r: a directory "s,socket=" holding the path of another.
    e.state = os.path.join(e.dir, "s,socket=", e.dir.lstrip("/"), "r")
    os.makedirs(e.state)
    e.start_keeld()
    e.api_err("POST", "/v1/vms", {"name": "v0", "kernel": e.a.guest, "vsock": {"cid": 2}},
              want=400, msg="vsock.cid")
    vm = e.create("v1", vsock={"cid": 7})
    check(vm["vsock"]["cid"] == 7 and vm["vsock"]["pci_slot"] >= 1, "vsock: %r" % vm)
    vm = e.start("v1")
    e.console_until("v1", "ready for input")
    check_jailed(e, vm, "v1")
    sock = os.path.join(e.state, "vms", vm["id"], "vsock.sock")
    with open("/proc/%d/cmdline" % vm["pid"], "rb") as f:
        args = f.read().decode().split("\0")
    check("--vsock-socket=" + sock in args and not any(a.startswith("--vsock=") for a in args),
          "keel-vmm's command line: %r" % args)
    check(stat.S_ISSOCK(os.stat(sock).st_mode), "no socket at %s" % sock)
    elsewhere = os.path.join(e.dir, "r", "vms", vm["id"], "vsock.sock")
    check(not os.path.exists(elsewhere), "the worker listens at %s" % elsewhere)
    mode = stat.S_IMODE(os.stat(sock).st_mode)
    check(mode == 0o660, "vsock.sock mode %o" % mode)

    def no_guest(when):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(10)
        c.connect(sock)
        try:  # the worker may close it before the line is even sent
            c.sendall(b"CONNECT 52\n")
            got = c.recv(64)
        except (BrokenPipeError, ConnectionResetError):
            got = b""
        check(got == b"", "a CONNECT to a guest without vsock %s got %r" % (when, got))
        c.close()
        check(e.vm("v1")["state"] == "Running", "v1 %s: %r" % (when, e.vm("v1")))

    no_guest("before a pause")
    e.keel("vm", "pause", "v1")
    e.wait_state("v1", "Paused")
    e.keel("vm", "resume", "v1")
    e.wait_state("v1", "Running")
    no_guest("after a resume")
    e.keel("vm", "turn-off", "v1")
    e.wait_state("v1", "Off")
    # keel vm create and set: --vsock[=cid=N], --no-vsock (a bad CID is a usage error).
    e.keel("vm", "create", "v2", "--kernel", e.a.guest, "--vsock")
    check(e.vm("v2")["vsock"]["cid"] == 3, "keel vm create --vsock: %r" % e.vm("v2"))
    e.keel("vm", "set", "v2", "--vsock=cid=9")
    check(e.vm("v2")["vsock"]["cid"] == 9, "keel vm set --vsock=cid=9: %r" % e.vm("v2"))
    e.keel("vm", "set", "v2", "--vsock=cid=2", want=2)
    e.keel("vm", "set", "v2", "--no-vsock")
    check(e.vm("v2").get("vsock") is None, "keel vm set --no-vsock: %r" % e.vm("v2"))


def make_iso(path, blocks=40):
    """A file a DVD drive takes: an ISO 9660 volume descriptor at sector 16."""
    with open(path, "wb") as f:
        for i in range(blocks):
            f.write(b"\x01CD001" + bytes(2042) if i == 16 else bytes(2048))


def case_file_modes(e):
    """Issue 10: the "other" permission bits of a file are what another VM's worker uid has on
    it, so keeld refuses, at create, at change and at every start, any file a worker would
    receive that every user may write, and a file the VM writes that every user may read;
    the error names the file, its mode and the chmod that fixes it, and nothing changes. A
    file the VM only reads may be readable by all: a 0644 ISO image several VMs share, a
    read-only disk, the kernel."""
    e.start_keeld()
    disk, iso, kern = (os.path.join(e.dir, n) for n in ("m.img", "m.iso", "m.kernel"))
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    make_iso(iso)
    shutil.copy(e.a.guest, kern)

    def refused(body, words):
        doc = e.api_err("POST", "/v1/vms", body, want=400)
        for w in words:
            check(w in doc["error"]["message"], "refusal %r lacks %r" % (doc, w))

    base = {"name": "m1", "memory": 16 << 20}
    os.chmod(disk, 0o644)
    refused(dict(base, kernel=e.a.guest, disks=[{"path": disk}]),
            ["disk " + disk, "readable by every user (mode 0644)", "chmod o-r " + disk,
             "read-only"])
    os.chmod(disk, 0o666)
    refused(dict(base, kernel=e.a.guest, disks=[{"path": disk, "readonly": True}]),
            ["disk " + disk, "writable by every user (mode 0666)", "chmod o-w " + disk])
    os.chmod(kern, 0o646)
    refused(dict(base, kernel=kern), ["kernel " + kern, "writable by every user (mode 0646)"])
    os.chmod(iso, 0o666)
    refused(dict(base, kernel=e.a.guest, scsi={"luns": [{"type": "dvd", "path": iso}]}),
            ["DVD image " + iso, "mode 0666", "chmod o-w"])
    check("m1" not in [v["name"] for v in e.api_ok("GET", "/v1/vms")], "a refused VM exists")
    # Read by all and only read: accepted (one ISO image for many VMs, a read-only disk).
    os.chmod(iso, 0o644)
    os.chmod(kern, 0o755)
    os.chmod(disk, 0o644)
    e.create("m1", kernel=kern, disks=[{"path": disk, "readonly": True}],
             scsi={"luns": [{"type": "dvd", "path": iso}]})
    e.create("m2", scsi={"luns": [{"type": "dvd", "path": iso}]})
    # A writable disk made private is taken; made readable by all afterwards, the start is
    # refused with the same words and the VM stays off; private again, it starts.
    os.chmod(disk, 0o640)
    e.keel("vm", "create", "m3", "--kernel", e.a.guest, "--memory", "16M", "--disk", disk)
    os.chmod(disk, 0o644)
    _, err = e.keel("vm", "start", "m3", want=None)
    check("readable by every user (mode 0644)" in err and "chmod o-r " + disk in err,
          "start of a VM whose disk every user may read: %r" % err)
    check(e.vm("m3")["state"] == "Off", "after the refused start: %r" % e.vm("m3"))
    os.chmod(disk, 0o600)
    e.start("m3")
    e.console_until("m3", "ready for input")
    e.keel("vm", "turn-off", "m3")
    # The shared ISO (0644) in two running VMs; a medium writable by all is refused while it
    # runs, and the drive keeps its medium.
    e.start("m2")
    iso2 = os.path.join(e.dir, "m2.iso")
    make_iso(iso2)
    os.chmod(iso2, 0o602)
    _, err = e.keel("vm", "set", "m2", "--dvd", iso2, want=None)
    check("writable by every user (mode 0602)" in err and "chmod o-w " + iso2 in err,
          "set --dvd with a medium every user may write: %r" % err)
    check(e.vm("m2")["scsi"]["luns"][0]["path"] == iso, "the drive after: %r" % e.vm("m2"))
    e.keel("vm", "turn-off", "m2")


def control_request(path, req, fds=()):
    """One request on a worker's control socket, with descriptors (SCM_RIGHTS); its reply."""
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.settimeout(30)
    ctl.connect(path)
    socket.send_fds(ctl, [json.dumps(req).encode() + b"\n"], list(fds))
    line = ctl.makefile("r").readline()
    ctl.close()
    check(line, "no reply to %r: the worker ended" % req)
    return json.loads(line)


def case_jail_restore(e):
    """Issue 10: keel-vmm's control "restore" into a running jailed worker (keeld restores by
    starting a new worker, but the command is the worker's): the saved state's two files come
    with the request as descriptors ("fd":true, state then memory), since the worker opens
    nothing by name and a save is root's; the guest goes back to the save (a line half typed
    before it completes after), in the same worker, which its seccomp filter lets do it. A
    directory outside the jail is refused with the hint, and so is "fd" with one file."""
    e.start_keeld()
    e.create("r1", cmdline="tag=r1")
    e.start("r1")
    e.console_until("r1", "ready for input")
    e.type_console("r1", "half")
    e.keel("vm", "save", "r1")
    vmdir = os.path.join(e.state, "vms", e.vm("r1")["id"])
    copy = os.path.join(e.dir, "copy")
    os.mkdir(copy)
    for n in ("state", "memory"):
        shutil.copyfile(os.path.join(vmdir, "saved", n), os.path.join(copy, n))
    vm = e.start("r1")
    e.type_console("r1", "-line\n")
    e.console_until("r1", r"echo \[half-line\]")
    ctl = os.path.join(vmdir, "control.sock")
    reply = control_request(ctl, {"execute": "restore", "arguments": {"dir": copy}})
    desc = reply.get("error", {}).get("desc", "")
    check("outside the worker's jail" in desc and '"fd":true' in desc,
          "a restore from a directory outside the jail: %r" % reply)
    with open(os.path.join(copy, "state"), "rb") as st:
        reply = control_request(ctl, {"execute": "restore",
                                      "arguments": {"dir": copy, "fd": True}}, [st.fileno()])
    desc = reply.get("error", {}).get("desc", "")
    check("needs two descriptors" in desc, "a restore with one file: %r" % reply)
    with open(os.path.join(copy, "state"), "rb") as st, \
            open(os.path.join(copy, "memory"), "rb") as mem:
        reply = control_request(ctl, {"execute": "restore",
                                      "arguments": {"dir": copy, "fd": True}},
                                [st.fileno(), mem.fileno()])
    check(reply == {"return": {}}, "the restore with the files passed: %r" % reply)
    after = e.vm("r1")
    check(after["state"] == "Running" and after["pid"] == vm["pid"],
          "after the restore the VM is %s (%s), pid %r" % (after["state"], after["state_reason"],
                                                           after["pid"]))
    e.type_console("r1", "-again\n")
    e.console_until("r1", r"echo \[half-again\]")
    check(e.vm("r1")["pid"] == vm["pid"], "the worker changed: %r" % e.vm("r1"))
    e.keel("vm", "turn-off", "r1")


def case_scsi(e):
    """Issue 11 through keeld and keel: `keel vm create --dvd` gives the VM a virtio-scsi DVD
    drive (and an empty one), kept in the store across a keeld restart; `keel vm show` names
    the media; the jailed worker gets the image as a passed descriptor and runs; `keel vm set
    --dvd` and `--eject` change the medium of the running VM (the image passed to the worker
    with the request) and of a VM that is off, and a file that is no ISO image changes nothing;
    a file that is not an ISO image fails the start with that reason; a checkpoint moves a SCSI
    disk onto a differencing child (case checkpoint-scsi)."""
    e.start_keeld()
    iso, iso2, notiso = (os.path.join(e.dir, n) for n in ("d.iso", "e.iso", "n.iso"))
    make_iso(iso)
    make_iso(iso2, 50)
    with open(notiso, "wb") as f:
        f.write(bytes(100000))
    e.keel("vm", "create", "s1", "--kernel", e.a.guest, "--memory", "32M", "--dvd", iso,
           "--dvd", "none")
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    out, _ = e.keel("vm", "show", "s1")
    check(re.search(r"^SCSI LUN 0:\s+DVD drive, %s$" % re.escape(iso), out, re.M) and
          re.search(r"^SCSI LUN 1:\s+DVD drive, no medium$", out, re.M), "show: %r" % out)
    vm = e.start("s1")
    e.console_until("s1", "ready for input")
    fds = open_files(vm["pid"])
    check(any(f.endswith("d.iso") for f in fds), "the worker does not hold the image: %r" % fds)
    wlog = e.keel("vm", "log", "s1")[0]
    check("virtio-scsi lun 0: dvd " + iso in wlog and "lun 1: dvd (no medium)" in wlog,
          "the worker log does not name the drives: %r" % wlog[-2000:])
    # While it runs: the jailed worker gets the new image as a descriptor (Set-VMDvdDrive).
    e.keel("vm", "set", "s1", "--dvd", iso2)
    check(e.vm("s1")["scsi"]["luns"][0]["path"] == iso2, "after set --dvd: %r" % e.vm("s1"))
    wlog = e.keel("vm", "log", "s1")[0]
    check("virtio-scsi lun 0: medium " + iso2 in wlog, "the worker did not change the medium: "
          "%r" % wlog[-2000:])
    _, err = e.keel("vm", "set", "s1", "--dvd", notiso, want=None)
    check("is not an ISO 9660 or UDF image" in err and
          e.vm("s1")["scsi"]["luns"][0]["path"] == iso2, "set --dvd with no ISO image: %r" % err)
    _, err = e.keel("vm", "set", "s1", "--dvd", iso, "--cpus", "2", want=None)
    check("needs VM 's1' to be off" in err, "set --dvd with --cpus while running: %r" % err)
    e.keel("vm", "set", "s1", "--eject")
    check(e.vm("s1")["scsi"]["luns"][0]["path"] is None and
          len(e.vm("s1")["scsi"]["luns"]) == 2, "after set --eject: %r" % e.vm("s1"))
    check("virtio-scsi lun 0: medium ejected" in e.keel("vm", "log", "s1")[0],
          "the worker did not eject the medium")
    # The second drive, by its LUN (Set-VMDvdDrive -ControllerLocation 1): only it changes,
    # in the worker too; the first stays empty.
    e.keel("vm", "set", "s1", "--dvd", iso, "--lun", "1")
    luns = e.vm("s1")["scsi"]["luns"]
    check(luns[1]["path"] == iso and luns[0]["path"] is None,
          "after set --dvd --lun 1: %r" % luns)
    check("virtio-scsi lun 1: medium " + iso in e.keel("vm", "log", "s1")[0],
          "the worker did not change LUN 1's medium")
    e.api_ok("PATCH", "/v1/vms/s1", {"dvd": {"lun": 0, "path": iso2}})
    luns = e.vm("s1")["scsi"]["luns"]
    check(luns[0]["path"] == iso2 and luns[1]["path"] == iso,
          "after PATCH dvd lun 0: %r" % luns)
    e.keel("vm", "set", "s1", "--eject", "--lun", "1")
    luns = e.vm("s1")["scsi"]["luns"]
    check(luns[1]["path"] is None and luns[0]["path"] == iso2,
          "after set --eject --lun 1: %r" % luns)
    check("virtio-scsi lun 1: medium ejected" in e.keel("vm", "log", "s1")[0],
          "the worker did not eject LUN 1's medium")
    # A LUN the VM lacks: 400 naming its drives, nothing changes.
    e.api_err("PATCH", "/v1/vms/s1", {"dvd": {"lun": 5, "path": iso}}, want=400,
              msg="VM 's1' has no SCSI LUN 5 (its DVD drives: LUN 0, 1)")
    _, err = e.keel("vm", "set", "s1", "--dvd", iso, "--lun", "5", want=2)
    check("VM 's1' has no SCSI LUN 5 (its DVD drives: LUN 0, 1)" in err, "--lun 5: %r" % err)
    e.api_err("PATCH", "/v1/vms/s1", {"dvd": {"lun": 1}}, want=400, msg="needs a 'path'")
    # "dvd": null is no request on a drive: refused as the wrong type, not a silent 200
    # (json-c gives a present null as NULL).
    rev = e.vm("s1")["revision"]
    e.api_err("PATCH", "/v1/vms/s1", {"dvd": None}, want=400,
              msg="field 'dvd' must be an object")
    check(e.vm("s1")["revision"] == rev, "\"dvd\": null changed the description")
    _, err = e.keel("vm", "set", "s1", "--lun", "1", want=2)
    check("--lun L names the DVD drive of a --dvd or --eject" in err, "--lun alone: %r" % err)
    check(e.vm("s1")["state"] == "Running", "after the media changes: %r" % e.vm("s1"))
    e.keel("vm", "turn-off", "s1")
    e.keel("vm", "set", "s1", "--dvd", iso2)
    check(e.vm("s1")["scsi"]["luns"][0]["path"] == iso2, "set --dvd, VM off: %r" % e.vm("s1"))
    e.keel("vm", "create", "s2", "--kernel", e.a.guest, "--memory", "32M")
    _, err = e.keel("vm", "set", "s2", "--dvd", iso, want=None)
    check("has no DVD drive" in err, "set --dvd without a drive: %r" % err)
    _, err = e.keel("vm", "create", "s3", "--kernel", e.a.guest, "--memory", "32M", "--dvd",
                    notiso, want=None)
    check("is not an ISO 9660 or UDF image" in err and
          "s3" not in [v["name"] for v in e.api_ok("GET", "/v1/vms")],
          "create with a file that is no ISO image: %r" % err)
    # An image that stops being one after the VM was made: the worker's check fails the start.
    spoiled = os.path.join(e.dir, "spoiled.iso")
    make_iso(spoiled)
    e.keel("vm", "create", "s3", "--kernel", e.a.guest, "--memory", "32M", "--dvd", spoiled)
    with open(spoiled, "wb") as f:
        f.write(bytes(100000))
    _, err = e.keel("vm", "start", "s3", want=None)
    check("is not an ISO 9660 or UDF image" in err and e.vm("s3")["state"] == "Off",
          "start with a file that is no ISO image: %r / %r" % (err, e.vm("s3")))
    disk = os.path.join(e.dir, "s4.vhdx")
    e.keel("disk", "create", disk, "--size", "16M")
    e.create("s4", scsi={"luns": [{"type": "disk", "path": disk}]})
    # A disk's LUN is no DVD drive: 400, and a VM without a drive says so.
    e.api_err("PATCH", "/v1/vms/s4", {"dvd": {"lun": 0, "path": iso}}, want=400,
              msg="SCSI LUN 0 of VM 's4' is a disk, not a DVD drive (its DVD drives: none)")
    e.api_err("PATCH", "/v1/vms/s4", {"dvd": {"path": None}}, want=400,
              msg="VM 's4' has no DVD drive")
    e.keel("checkpoint", "create", "s4", "--name", "c")
    check(ckpts(e, "s4")["c"]["disks"] == [disk] and
          e.vm("s4")["scsi"]["luns"][0]["path"].endswith(".avhdx"),
          "checkpoint of a SCSI disk: %r" % e.vm("s4")["scsi"])



def case_scsi_formats(e):
    """Issue 10 for SCSI LUN disks as for virtio-blk disks: a LUN disk's format is pinned at
    attach (a .vhdx LUN is VHDX, any other raw; a raw-named file with a VHDX header is
    refused), kept in the store, shown by keel vm show --json and told to the worker, which
    opens it so; a DVD medium is raw (an ISO image, read-only). A LUN file another running
    VM writes is refused with a 4xx, from a LUN or from a virtio-blk disk, and so is a
    writable disk of another running VM's DVD medium; VMs given such files while all were off
    are refused at start (409, no worker) while the other runs."""
    e.start_keeld()
    vhdx, raw, iso = (os.path.join(e.dir, n) for n in ("lun.vhdx", "lun.img", "l.iso"))
    e.keel("disk", "create", vhdx, "--size", "16M")
    with open(raw, "wb") as f:
        f.truncate(16 << 20)
    make_iso(iso)
    luns = [{"type": "disk", "path": vhdx}, {"type": "disk", "path": raw},
            {"type": "dvd", "path": iso}]
    vm = e.create("l1", scsi={"luns": luns})
    want = ["vhdx", "raw", None]  # a DVD drive has a path only: its ISO image is raw
    check([l.get("format") for l in vm["scsi"]["luns"]] == want, "create: %r" % vm["scsi"])
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    shown = json.loads(e.keel("vm", "show", "l1", "--json")[0])
    check([l.get("format") for l in shown["scsi"]["luns"]] == want,
          "show --json after a restart: %r" % shown["scsi"])
    e.start("l1")
    e.console_until("l1", "ready for input")
    wlog = e.keel("vm", "log", "l1")[0]
    check("virtio-scsi lun 0: disk %s (vhdx)" % vhdx in wlog and
          "virtio-scsi lun 1: disk %s (raw)" % raw in wlog,
          "the worker did not open the LUNs as pinned: %r" % wlog[-2000:])
    # A raw-named LUN file that begins with a VHDX header: the administrator says which.
    fake = os.path.join(e.dir, "fake.img")
    shutil.copyfile(vhdx, fake)
    e.api_err("POST", "/v1/vms", {"name": "l2", "kernel": e.a.guest, "memory": 16 << 20,
                                 "scsi": {"luns": [{"type": "disk", "path": fake}]}},
              want=400, msg="begins with a VHDX header but its name does not end in .vhdx")
    # The LUN files l1 writes: no other VM gets them, as a LUN or as a virtio-blk disk.
    for body in ({"scsi": {"luns": [{"type": "disk", "path": raw}]}},
                 {"scsi": {"luns": [{"type": "disk", "path": vhdx, "readonly": True}]}},
                 {"disks": [{"path": raw}]}):
        body.update({"name": "l2", "kernel": e.a.guest, "memory": 16 << 20})
        code, doc = e.curl("POST", "/v1/vms", body)
        check(400 <= code < 500 and isinstance(doc, dict) and
              "two VMs cannot share a disk" in doc["error"]["message"],
              "a LUN file running VM l1 writes was not refused: %d %r" % (code, doc))
    check([v["name"] for v in e.api_ok("GET", "/v1/vms")] == ["l1"], "a refused create left "
          "a VM")
    # l1's DVD medium: another VM may not write it (l1 would read what it writes).
    code, doc = e.curl("POST", "/v1/vms", {"name": "l2", "kernel": e.a.guest,
                                           "memory": 16 << 20, "disks": [{"path": iso}]})
    check(400 <= code < 500 and isinstance(doc, dict) and
          "two VMs cannot share a disk" in doc["error"]["message"],
          "a writable disk of running VM l1's DVD medium was not refused: %d %r" % (code, doc))
    # The ISO image is read-only on both sides: sharing it is fine.
    e.create("l2", scsi={"luns": [{"type": "dvd", "path": iso}]})
    e.keel("vm", "turn-off", "l1")
    e.wait_state("l1", "Off")
    # VMs that are off may be given l1's files (nothing has them open), but while l1 runs
    # their start is refused with a 409 naming the file and l1, before any worker: a LUN, a
    # virtio-blk disk, and a writable disk of l1's DVD medium.
    e.create("l3", scsi={"luns": [{"type": "disk", "path": raw}]})
    e.create("l4", disks=[{"path": vhdx}])
    e.create("l5", disks=[{"path": iso}])
    e.start("l1")
    for name, path in (("l3", raw), ("l4", vhdx), ("l5", iso)):
        doc = e.api_err("POST", "/v1/vms/%s/start" % name, want=409,
                        msg="cannot start VM '%s': disk %s is open" % (name, path))
        wlog = os.path.join(e.state, "vms", e.vm(name)["id"], "worker.log")
        check("in running VM 'l1'" in doc["error"]["message"] and not os.path.exists(wlog),
              "start of %s sharing l1's disk: %r" % (name, doc))
    e.start("l2")  # l1's DVD medium, read-only on both sides
    for name in ("l1", "l2"):
        e.keel("vm", "turn-off", name)
        e.wait_state(name, "Off")

SEABIOS = "/usr/share/seabios/bios-256k.bin"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"


def case_firmware_boot_menu(e):
    """The firmware's boot menu, off by default (as QEMU's and Hyper-V's): a Generation 1
    VM's console shows SeaBIOS going to its boot devices without "Press ESC for boot menu.";
    keel vm set --boot-menu on (kept by keeld across a restart, shown by keel vm show) makes
    SeaBIOS offer it, and Esc typed on the console opens it; a change needs the VM off; a VM
    that boots a kernel directly has no firmware menu, and the value is on or off."""
    if not os.path.exists(SEABIOS):
        print("SKIP: Debian's seabios package is needed (scripts/setup.sh)")
        return 77
    e.start_keeld()
    disk = os.path.join(e.dir, "m1.vhdx")
    e.keel("disk", "create", disk, "--size", "64M")
    e.keel("vm", "create", "m1", "--generation", "1", "--memory", "64M", "--disk", disk)
    check(e.vm("m1")["boot_menu"] is False, "off by default: %r" % e.vm("m1"))
    out, _ = e.keel("vm", "show", "m1")
    check(re.search(r"^Boot menu:\s+off$", out, re.M), "show: %r" % out)
    e.start("m1")
    log = e.console_until("m1", r"Booting from Hard Disk", timeout=60)
    check("SeaBIOS (version" in log and "Press ESC for boot menu" not in log,
          "SeaBIOS offered its menu by default: %r" % log[-800:])
    e.keel("vm", "turn-off", "m1")
    e.keel("vm", "set", "m1", "--boot-menu", "on")
    check(e.vm("m1")["boot_menu"] is True, "set --boot-menu on: %r" % e.vm("m1"))
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    check(e.vm("m1")["boot_menu"] is True, "after a keeld restart: %r" % e.vm("m1"))
    out, _ = e.keel("vm", "show", "m1")
    check(re.search(r"^Boot menu:\s+on \(offered for 3 s\)$", out, re.M), "show: %r" % out)
    e.start("m1")
    e.console_until("m1", r"Press ESC for boot menu", timeout=60)
    e.type_console("m1", "\x1b")
    # The menu, with the VM's disk in it.
    e.console_until("m1", r"Select boot device:\s+1\. Virtio disk", timeout=30)
    _, err = e.keel("vm", "set", "m1", "--boot-menu", "off", want=None)
    check("changing boot_menu needs VM 'm1' to be off" in err, "set while running: %r" % err)
    e.keel("vm", "turn-off", "m1")
    e.keel("vm", "set", "m1", "--boot-menu", "off")
    check(e.vm("m1")["boot_menu"] is False, "set --boot-menu off: %r" % e.vm("m1"))
    before = e.snapshot()
    _, err = e.keel("vm", "create", "b1", "--kernel", e.a.guest, "--boot-menu", "on",
                    want=None)
    check("a 'boot_menu' is the firmware's" in err, "a kernel VM with a menu: %r" % err)
    _, err = e.keel("vm", "set", "m1", "--boot-menu", "yes", want=None)
    check("--boot-menu: 'yes' is not on or off" in err, "--boot-menu yes: %r" % err)
    e.api_err("PATCH", "/v1/vms/m1", {"boot_menu": "yes"}, msg="boot_menu")
    check(e.snapshot() == before, "a refused boot menu changed the store")


def case_firmware(e):
    """Issue 11 through keeld and keel: a Generation 1 VM (keel vm create --generation 1, no
    kernel) with a dynamic VHDX disk and a DVD starts, its console shows SeaBIOS trying the
    devices in the VM's boot order (set with --boot-order, changed with keel vm set while
    off, refused while running), it is saved and restored and turned off; keel vm show
    names the generation, firmware, boot order and medium; the jailed worker holds the
    firmware as a passed descriptor. A Generation 2 VM gets its UEFI variable store in its
    directory from Debian's template at first start, passed as a directory descriptor; a
    start that fails leaves the directory root's and swept; a store that is not one is set
    aside and replaced by the template; delete removes both. Each bad input is refused with its one line and
    changes nothing; so are a start and a create on a host without Debian's firmware files,
    naming the package to install."""
    if not os.path.exists(SEABIOS) or not os.path.exists(OVMF_CODE):
        print("SKIP: Debian's seabios and ovmf packages are needed (scripts/setup.sh)")
        return 77
    e.start_keeld()
    iso, notiso, disk = (os.path.join(e.dir, n) for n in ("f.iso", "n.iso", "g1.vhdx"))
    make_iso(iso)
    with open(notiso, "wb") as f:
        f.write(bytes(100000))
    e.keel("disk", "create", disk, "--size", "64M")
    e.keel("vm", "create", "g1", "--generation", "1", "--memory", "64M", "--disk", disk,
           "--dvd", iso, "--boot-order", "dvd,disk")
    vm = e.vm("g1")
    check(vm["generation"] == 1 and vm["boot_order"] == ["dvd", "disk"] and
          vm["nvram"] is None and "kernel" not in vm, "the description: %r" % vm)
    out, _ = e.keel("vm", "show", "g1")
    for pat in (r"^Generation:\s+1 \(BIOS, SeaBIOS\)$",
                r"^Firmware file:\s+%s \(Debian's seabios\)$" % re.escape(SEABIOS),
                r"^Boot order:\s+dvd,disk$",
                r"^SCSI LUN 0:\s+DVD drive, %s$" % re.escape(iso)):
        check(re.search(pat, out, re.M), "show lacks %r: %r" % (pat, out))
    shown = json.loads(e.keel("vm", "show", "g1", "--json")[0])
    check(shown["generation"] == 1 and shown["boot_order"] == ["dvd", "disk"],
          "show --json: %r" % shown)
    # A keeld restarted keeps it (the store's firmware table).
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    check(e.vm("g1")["boot_order"] == ["dvd", "disk"] and e.vm("g1")["generation"] == 1,
          "after a keeld restart: %r" % e.vm("g1"))
    vm = e.start("g1")
    log = e.console_until("g1", r"Booting from Hard Disk", timeout=60)
    check("SeaBIOS (version" in log, "no SeaBIOS banner on the console: %r" % log[-800:])
    check(log.index("Booting from DVD/CD") < log.index("Booting from Hard Disk"),
          "SeaBIOS did not follow the boot order dvd,disk: %r" % log[-800:])
    check(SEABIOS in open("/proc/%d/maps" % vm["pid"]).read(),
          "the worker has not mapped the firmware keeld passed")
    wlog = e.keel("vm", "log", "g1")[0]
    check("--fd=firmware=" in wlog, "keeld did not pass the firmware: %r" % wlog[-2000:])
    _, err = e.keel("vm", "set", "g1", "--boot-order", "disk", want=None)
    check("changing boot_order needs VM 'g1' to be off" in err, "set while running: %r" % err)
    # Saved and restored in the firmware.
    e.keel("vm", "save", "g1")
    check(e.vm("g1")["state"] == "Saved", "after save: %r" % e.vm("g1"))
    wait_dead(vm["pid"])
    vm2 = e.start("g1")
    check(vm2["state_reason"] == "restored from its saved state", "restore: %r" % vm2)
    time.sleep(1)
    check(e.vm("g1")["state"] == "Running", "the restored VM: %r" % e.vm("g1"))
    # Pause, and a checkpoint of the running firmware VM (its flash, chipset and virtio-scsi
    # state with it), applied later: the VM is Saved and starts from there.
    e.keel("vm", "pause", "g1")
    check(e.vm("g1")["state"] == "Paused", "pause: %r" % e.vm("g1"))
    e.keel("vm", "resume", "g1")
    check(e.vm("g1")["state"] == "Running", "resume: %r" % e.vm("g1"))
    e.keel("checkpoint", "create", "g1", "--name", "fw")
    check(e.vm("g1")["state"] == "Running", "after a checkpoint: %r" % e.vm("g1"))
    e.keel("vm", "turn-off", "g1")
    e.keel("checkpoint", "apply", "g1", "fw")
    check(e.vm("g1")["state"] == "Saved", "apply: %r" % e.vm("g1"))
    vm3 = e.start("g1")
    check(vm3["state_reason"] == "restored from its saved state", "after apply: %r" % vm3)
    e.keel("vm", "turn-off", "g1")
    e.keel("checkpoint", "delete", "g1", "fw")
    # The order changed while off: SeaBIOS now tries the disk first.
    e.keel("vm", "set", "g1", "--boot-order", "disk,dvd")
    check(e.vm("g1")["boot_order"] == ["disk", "dvd"], "set --boot-order: %r" % e.vm("g1"))
    e.start("g1")
    log = e.console_until("g1", r"Booting from DVD/CD", timeout=60)
    last = log.rindex("SeaBIOS (version")
    check(log.index("Booting from Hard Disk", last) < log.index("Booting from DVD/CD", last),
          "SeaBIOS did not follow the boot order disk,dvd: %r" % log[last:])
    e.keel("vm", "turn-off", "g1")

    # Generation 2: the variable store is keeld's, made from the template at first start.
    e.keel("vm", "create", "g2", "--memory", "128M", "--disk", os.path.join(e.dir, "g2.vhdx"),
           want=None)  # the disk does not exist: refused
    check("g2" not in [v["name"] for v in e.api_ok("GET", "/v1/vms")], "a VM without its disk")
    e.keel("disk", "create", os.path.join(e.dir, "g2.vhdx"), "--size", "64M")
    e.keel("vm", "create", "g2", "--memory", "128M", "--disk", os.path.join(e.dir, "g2.vhdx"))
    g2 = e.vm("g2")
    nvram = os.path.join(e.state, "vms", g2["id"], "nvram", "OVMF_VARS.fd")
    check(g2["generation"] == 2 and g2["nvram"] == nvram, "Generation 2 by default: %r" % g2)
    out, _ = e.keel("vm", "show", "g2")
    check(re.search(r"^NVRAM file:\s+%s$" % re.escape(nvram), out, re.M) and
          re.search(r"^Boot order:\s+disk,dvd,net \(default\)$", out, re.M), "show: %r" % out)
    check(not os.path.exists(nvram), "the store exists before the first start")
    # OVMF may crash here at once (below), before keel's wait for Running sees it run.
    _, err = e.keel("vm", "start", "g2", want=None)
    check(not err or "Crashed" in err, "first start of g2: %r" % err)
    check(open(nvram, "rb").read() == open(OVMF_VARS, "rb").read(),
          "the new store is not Debian's template")
    wlog = e.keel("vm", "log", "g2")[0]
    check("--fd=nvram=" in wlog and "--fd=firmware=" in wlog,
          "keeld did not pass the store and the firmware: %r" % wlog[-2000:])
    # OVMF stops on this host's KVM (no VT-x: KVM cannot run its SEC phase; the lab runs it,
    # tests/lab/scenarios/73-keeld-ovmf.sh): turned off, or Crashed by itself.
    e.keel("vm", "turn-off", "g2", want=None)
    ended = e.wait_state("g2", "Off", timeout=2) if e.vm("g2")["state"] != "Crashed" else None
    check(ended is None or ended["state"] == "Off", "g2 did not end")
    st = os.stat(nvram)
    check(st.st_uid == 0 and os.stat(os.path.dirname(nvram)).st_uid == 0,
          "the store is not keeld's again after the worker ended")
    # A start that fails after keeld gave the store's directory to the worker's uid (the
    # disk leads out of its pool now): both are root's again, and what else is in the
    # directory is swept (a worker's leftovers: files, a directory tree, a hard link).
    nvdir = os.path.dirname(nvram)
    g2disk = os.path.join(e.dir, "g2.vhdx")
    outside = tempfile.mkdtemp(prefix="kdout", dir="/tmp")
    os.rename(g2disk, os.path.join(outside, "g2.vhdx"))
    os.symlink(os.path.join(outside, "g2.vhdx"), g2disk)
    os.makedirs(os.path.join(nvdir, "junk", "deeper"))
    for n in ("OVMF_VARS.fd.new", "junk/deeper/f", "other"):
        with open(os.path.join(nvdir, n), "wb") as f:
            f.write(b"x" * 100)
    os.link(os.path.join(nvdir, "other"), os.path.join(nvdir, "other2"))
    was = e.vm("g2")["state"]
    _, err = e.keel("vm", "start", "g2", want=None)
    check("leads out of its pool" in err and e.vm("g2")["state"] == was,
          "start with a disk out of its pool: %r / %r" % (err, e.vm("g2")))
    st, dst = os.stat(nvram), os.stat(nvdir)
    check(st.st_uid == 0 and st.st_gid == 0 and dst.st_uid == 0 and dst.st_gid == 0,
          "a failed start left the store to the worker's uid: %r %r" % (st, dst))
    check(sorted(os.listdir(nvdir)) == ["OVMF_VARS.fd"],
          "take-back left: %r" % os.listdir(nvdir))
    os.unlink(g2disk)
    os.rename(os.path.join(outside, "g2.vhdx"), g2disk)
    os.rmdir(outside)
    # A store that is not one (a guest cannot write such a store: keel-vmm keeps the last
    # good one): keeld sets it aside, makes a new one from the template, says so, starts.
    good = open(nvram, "rb").read()
    with open(nvram, "wb") as f:
        f.write(bytes(len(good)))
    _, err = e.keel("vm", "start", "g2", want=None)  # OVMF may crash at once here (above)
    check("not a UEFI variable store" not in err, "start with a damaged store: %r" % err)
    bad = os.path.join(e.state, "vms", g2["id"], "nvram.bad")
    aside = os.listdir(bad) if os.path.isdir(bad) else []
    check(len(aside) == 1 and aside[0].startswith("OVMF_VARS.fd.") and
          open(os.path.join(bad, aside[0]), "rb").read() == bytes(len(good)),
          "the damaged store was not set aside: %r" % aside)
    check(open(nvram, "rb").read() == open(OVMF_VARS, "rb").read(),
          "the store is not the template again")
    wlog = e.keel("vm", "log", "g2")[0]
    check("not a UEFI variable store" in wlog and "moved to " + bad in wlog,
          "the VM's log does not say the store was replaced: %r" % wlog[-2000:])
    e.keel("vm", "turn-off", "g2", want=None)
    if e.vm("g2")["state"] != "Crashed":
        e.wait_state("g2", "Off", timeout=2)

    # Bad input: one line each, nothing changed.
    def refused(args, msg):
        before = e.snapshot()
        _, err = e.keel(*args, want=None)
        # The reason is the first line (usage errors print the usage after it).
        check(err.strip() and msg in err.strip().splitlines()[0],
              "keel %s: %r, wanted %r" % (" ".join(args), err, msg))
        check(e.snapshot() == before, "keel %s changed the store" % " ".join(args))
    refused(("vm", "create", "b1", "--generation", "1", "--boot-order", "net"),
            "boot order: VM 'b1' has no network adapter")
    refused(("vm", "create", "b1", "--generation", "1", "--disk", disk + ".x"), "g1.vhdx.x")
    refused(("vm", "create", "b1", "--generation", "1", "--dvd", iso, "--boot-order",
             "dvd,dvd"), "boot order: 'dvd' is named twice")
    refused(("vm", "create", "b1", "--generation", "2", "--boot-order", "floppy"),
            "boot order: 'floppy' is not a boot device")
    # keel parses the list with keeld's and keel-vmm's parser: an empty item is refused too.
    refused(("vm", "create", "b1", "--generation", "1", "--dvd", iso, "--boot-order",
             "dvd,,disk"), "boot order: '' is not a boot device")
    refused(("vm", "create", "b1", "--generation", "2", "--dvd", os.path.join(e.dir, "no.iso")),
            "no.iso")
    refused(("vm", "create", "b1", "--generation", "2", "--dvd", notiso),
            "is not an ISO 9660 or UDF image")
    # keeld reads a medium only through its pool: a host file outside one is never opened.
    refused(("vm", "create", "b1", "--generation", "2", "--dvd", "/etc/hostname"),
            "is in no storage pool")
    refused(("vm", "create", "b1", "--generation", "3"), "--generation: '3' is not 1")
    refused(("vm", "create", "b1", "--generation", "1", "--kernel", e.a.guest),
            "give one")
    refused(("vm", "set", "g1", "--boot-order", "lun3"), "has no lun3")
    e.api_err("POST", "/v1/vms", {"name": "b1", "generation": 1, "nvram": "/tmp/x.fd"},
              msg="Generation 1 (BIOS) has none")
    e.api_err("POST", "/v1/vms", {"name": "b1", "generation": 2, "nvram": "/tmp/x.fd"},
              msg="keeld keeps a Generation 2 VM's variable store in the VM's directory")
    e.api_err("POST", "/v1/vms", {"name": "b1", "generation": 2,
                                  "firmware_file": os.path.join(e.dir, "none.fd")},
              msg="none.fd")
    e.api_err("POST", "/v1/vms", {"name": "b1", "kernel": e.a.guest, "boot_order": ["disk"]},
              msg="a VM that boots its kernel directly has none")
    # A host without Debian's seabios and ovmf packages (keeld in a mount namespace where
    # their directories are empty): a start and a create say which package to install, in
    # one line, and change nothing; the VMs start again once the files are back.
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld(prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          "mount -t tmpfs none %s && mount -t tmpfs none %s && exec \"$@\"" %
                          (os.path.dirname(SEABIOS), os.path.dirname(OVMF_CODE)), "sh"])
    missing = "%s's firmware file %s is missing: install Debian's '%s' package"
    bios_missing = missing % ("Generation 1 (BIOS)", SEABIOS, "seabios")
    uefi_missing = missing % ("Generation 2 (UEFI)", OVMF_CODE, "ovmf")
    refused(("vm", "start", "g1"), bios_missing)
    refused(("vm", "start", "g2"), uefi_missing)
    check(e.vm("g1")["state"] == "Off" and e.vm("g2")["state"] in ("Off", "Crashed"),
          "a start without the firmware: %r %r" % (e.vm("g1"), e.vm("g2")))
    refused(("vm", "create", "b1", "--generation", "1"), "VM 'b1': " + bios_missing)
    refused(("vm", "create", "b1", "--generation", "2"), "VM 'b1': " + uefi_missing)
    e.kill_keeld(signal.SIGTERM)
    # Only the variable store template missing (the code file is back, a root-owned copy):
    # the first start of a Generation 2 VM, whose store keeld makes from the template, says
    # so in the one line keel-vmm gives too (vmdef_vars_template_missing), and makes none.
    code_copy = os.path.join(e.dir, "code.fd")
    shutil.copyfile(OVMF_CODE, code_copy)
    e.start_keeld(prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          "mount -t tmpfs -o mode=0755 none %s && cp %s %s && exec \"$@\"" %
                          (os.path.dirname(OVMF_CODE), code_copy, OVMF_CODE), "sh"])
    e.keel("vm", "create", "b2", "--generation", "2", "--memory", "128M")
    refused(("vm", "start", "b2"),
            "UEFI variable store template %s is missing: install Debian's 'ovmf' package" %
            OVMF_VARS)
    b2_store = os.path.join(e.state, "vms", e.vm("b2")["id"], "nvram", "OVMF_VARS.fd")
    check(not os.path.exists(b2_store), "a store without the template: %s" % b2_store)
    e.keel("vm", "delete", "b2")
    e.kill_keeld(signal.SIGTERM)
    e.start_keeld()
    e.start("g1")
    e.keel("vm", "turn-off", "g1")
    # The integration settings are part of the description: vsock and the services off.
    e.api_ok("PATCH", "/v1/vms/g1", {"vsock": {}, "integration_disabled": ["kvp", "exec"]})
    check(e.vm("g1")["integration_disabled"] == ["kvp", "exec"] and e.vm("g1")["vsock"],
          "integration settings: %r" % e.vm("g1"))
    out, _ = e.keel("vm", "integration", "g1")
    check(re.search(r"^kvp +no ", out, re.M) and re.search(r"^exec +no ", out, re.M) and
          re.search(r"^heartbeat +yes ", out, re.M), "keel vm integration: %r" % out)
    e.keel("vm", "integration", "g1", "enable", "kvp")
    check(e.vm("g1")["integration_disabled"] == ["exec"], "after enable: %r" % e.vm("g1"))
    e.api_err("PATCH", "/v1/vms/g1", {"integration_disabled": ["tea"]}, msg="is not a service")
    e.api_ok("PATCH", "/v1/vms/g1", {"integration_disabled": []})
    check("integration_disabled" not in e.vm("g1"), "all on again: %r" % e.vm("g1"))
    os.makedirs(os.path.join(nvdir, "left", "over"))  # a worker's leftovers, say
    e.keel("vm", "delete", "g2")
    check(not os.path.exists(os.path.dirname(nvram)), "delete left the store")
    check(not os.path.exists(bad), "delete left the stores set aside")


def case_backup_nvram(e):
    """Issue 11: a Generation 2 VM's UEFI variable store is part of its backup. A VM that
    never started has none (the backup holds none, its import says the VM gets a new one);
    one with a store (its variables: bytes the template does not have) is backed up into
    DIR/NAME/nvram/OVMF_VARS.fd byte for byte, keel says where, and an import (a copy with a
    new id, and in place) gives the new VM that store in its directory, root's, 0600. A
    backup's store that is not one, or a symlink, is refused and nothing is made."""
    if not os.path.exists(OVMF_VARS):
        print("SKIP: Debian's ovmf package is needed (scripts/setup.sh)")
        return 77
    e.start_keeld()
    disk = os.path.join(e.dir, "u1.vhdx")
    e.keel("disk", "create", disk, "--size", "16M")
    e.keel("vm", "create", "u1", "--memory", "128M", "--disk", disk)
    u1 = e.vm("u1")
    dest = os.path.join(e.dir, "backups")
    os.makedirs(dest)
    # Never started: no store, none in the backup, and the import says so.
    out, _ = e.keel("vm", "backup", "u1", "--to", dest, "--json")
    doc = json.loads(out)
    check("nvram" not in doc and not os.path.exists(os.path.join(dest, "u1", "nvram")),
          "a backup of a VM without a store: %r" % doc)
    doc = json.loads(e.keel("vm", "import", os.path.join(dest, "u1"), "--new-id", "--name",
                            "u0", "--json")[0])
    check(any("holds no UEFI variable store" in n for n in doc["not_imported"]),
          "the import does not say the VM gets a new store: %r" % doc)
    check(not os.path.exists(e.vm("u0")["nvram"]), "an import made a store from nothing")
    shutil.rmtree(os.path.join(dest, "u1"))
    # The VM's store with variables of its own (the last bytes of the variable store
    # changed: the check looks at the headers, as keel-vmm's and keeld's do).
    tmpl = open(OVMF_VARS, "rb").read()
    vars_ = tmpl[:0x3fff0] + b"keel-backup-var!" + tmpl[0x40000:]
    check(len(vars_) == len(tmpl) and vars_ != tmpl, "the test store")
    os.makedirs(os.path.dirname(u1["nvram"]), mode=0o700)
    with open(u1["nvram"], "wb") as f:
        f.write(vars_)
    out, _ = e.keel("vm", "backup", "u1", "--to", dest)
    saved = os.path.join(dest, "u1", "nvram", "OVMF_VARS.fd")
    check("UEFI variable store: " + saved in out, "keel does not name the store: %r" % out)
    check(open(saved, "rb").read() == vars_, "the backup's store is not the VM's")
    check(sorted(os.listdir(os.path.dirname(saved))) == ["OVMF_VARS.fd"],
          "the backup's nvram/: %r" % os.listdir(os.path.dirname(saved)))
    # Imported as a copy with a new id: the new VM's store is the backup's.
    doc = json.loads(e.keel("vm", "import", os.path.join(dest, "u1"), "--new-id", "--name",
                            "u2", "--json")[0])
    check(doc["not_imported"] == [], "the store was not imported: %r" % doc)
    u2 = e.vm("u2")
    check(u2["nvram"] == os.path.join(e.state, "vms", u2["id"], "nvram", "OVMF_VARS.fd") and
          u2["id"] != u1["id"], "the imported VM's store place: %r" % u2)
    check(open(u2["nvram"], "rb").read() == vars_, "the imported VM's store is not the backup's")
    st = os.stat(u2["nvram"])
    check(st.st_uid == 0 and (st.st_mode & 0o777) == 0o600, "the imported store: %r" % (st,))
    # In place, keeping the id, once the original is gone: the same store again.
    e.keel("vm", "delete", "u1")
    check(not os.path.exists(u1["nvram"]), "delete left the store")
    # A file in the backup's nvram/ besides the store is not imported, and said so.
    with open(os.path.join(dest, "u1", "nvram", "OVMF_VARS.fd.old"), "wb") as f:
        f.write(vars_)
    doc = json.loads(e.keel("vm", "import", os.path.join(dest, "u1"), "--in-place",
                            "--json")[0])
    check(doc["not_imported"] == [os.path.join(dest, "u1", "nvram", "OVMF_VARS.fd.old") +
                                  ": not part of a keel backup's layout, not imported"],
          "a stray file in nvram/ is not listed: %r" % doc)
    check(e.vm("u1")["id"] == u1["id"] and open(u1["nvram"], "rb").read() == vars_,
          "in place: %r" % e.vm("u1"))
    e.keel("vm", "delete", "u1")
    # A backup's store is untrusted: one that is not a store, or a symlink, is refused
    # and nothing is made.
    def bad(tag, change, msg):
        d = os.path.join(e.dir, "bad-" + tag)
        shutil.copytree(os.path.join(dest, "u1"), d, symlinks=True)
        change(os.path.join(d, "nvram", "OVMF_VARS.fd"))
        before, vms = import_leftovers(e), sorted(os.listdir(os.path.join(e.state, "vms")))
        e.api_err("POST", "/v1/vms/import", {"from": d, "new_id": True, "name": "u3"},
                  msg=msg)
        check("u3" not in [v["name"] for v in e.api_ok("GET", "/v1/vms")] and
              import_leftovers(e) == before and
              sorted(os.listdir(os.path.join(e.state, "vms"))) == vms,
              "a refused import (%s) left something" % tag)

    def zero(p):
        with open(p, "wb") as f:
            f.write(bytes(len(vars_)))

    def link(p):
        os.unlink(p)
        os.symlink(u2["nvram"], p)
    bad("zero", zero, "not a UEFI variable store")
    bad("link", link, "is a symlink or under one")



OWNED_DOCKER_USER = r"""
import socket, struct, sys, time
# Table ip filter with chain DOCKER-USER, owned by this process (NFT_TABLE_F_OWNER): others
# may list it, not change it. Prints "ready", then holds it until killed.
def msg(t, flags, seq, fam, res, attrs=b""):
    body = struct.pack("!BBH", fam, 0, res) + attrs
    return struct.pack("=IHHII", 16 + len(body), t, flags, seq, 0) + body
def attr(t, d):
    a = struct.pack("=HH", 4 + len(d), t) + d
    return a + b"\0" * ((4 - len(a) % 4) % 4)
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
s.bind((0, 0))
b = (msg(0x10, 1, 1, 0, 10) +
     msg(10 << 8 | 0, 1 | 4 | 0x400, 2, 2, 0, attr(1, b"filter\0") + attr(2, struct.pack("!I", 2))) +
     msg(10 << 8 | 3, 1 | 4 | 0x400, 3, 2, 0, attr(1, b"filter\0") + attr(3, b"DOCKER-USER\0")) +
     msg(0x11, 1, 4, 0, 10))
s.send(b)
s.settimeout(1)
for _ in range(2):
    r = s.recv(65536)
    if struct.unpack("=i", r[16:20])[0]:
        sys.exit("refused: %d" % struct.unpack("=i", r[16:20])[0])
print("ready", flush=True)
time.sleep(3600)
"""


def case_switch_nft_selfloop(e):
    """keeld ignores nftables' notifications of its own transactions (their NEWGEN names its
    pid), and a failed reload is retried after 1 s, doubled up to 5 s. Here a switch's batch
    commits but the DOCKER-USER step after it fails (a DOCKER-USER chain in a table another
    process owns): each retry's batch flushes the switch's chains, whose notification, taken
    for news, asked for the next retry at once (review rv12: 222 retries in 5 s)."""
    if not e.netns:
        print("SKIP: switch-nft-selfloop: needs root")
        return 77
    e.start_keeld()
    switches(e)
    holder = subprocess.Popen(["ip", "netns", "exec", e.netns, "python3", "-c",
                               OWNED_DOCKER_USER], stdout=subprocess.PIPE, text=True)
    try:
        check(holder.stdout.readline().strip() == "ready", "the owned table was not made")
        time.sleep(7)  # one periodic check (5 s) starts it
        n = log_lines_during(e, "stay blocked", 5)
        print("switch-nft-selfloop: %d failed reloads in 5 s (the periodic check alone: 1)" % n)
        check(n <= 2, "keeld retried its rules %d times in 5 s, woken by its own "
              "notifications" % n)
    finally:
        holder.kill()
        holder.wait()


def case_switch_nft_partial(e):
    """One rule of keel's deleted by its handle (here the Default Switch's 'iifname BR drop',
    what keeps it from routing anywhere but through NAT) is put back: nftables' notification
    of another process's change makes keeld load every switch's rules again (review rv12:
    keeld looked only for its marker rules, and the rule stayed deleted)."""
    if not e.netns:
        print("SKIP: switch-nft-partial: needs root")
        return 77
    e.start_keeld()
    br = switches(e)["Default Switch"]["bridge"]
    chain = e.ns("nft", "-a", "list", "chain", "inet", "keel", br + "_fwd")
    line = [l for l in chain.splitlines() if l.strip().startswith('iifname "%s" drop' % br)]
    check(len(line) == 1, "no drop rule in:\n" + chain)
    handle = line[0].rsplit("# handle ", 1)[1].strip()
    e.ns("nft", "delete", "rule", "inet", "keel", br + "_fwd", "handle", handle)
    time.sleep(7)  # the notification's check and a periodic one
    chain = e.ns("nft", "list", "chain", "inet", "keel", br + "_fwd")
    check('iifname "%s" drop' % br in chain, "the deleted rule is not back after nftables "
          "told keeld and a periodic check:\n" + chain)


def case_switch_nft_restore(e):
    """A firewall reload that restores a ruleset saved earlier (nftables.service's reload:
    'flush ruleset' then the saved rules, keel's tables among them) puts back keel's marker
    rules with the guards of that time; keeld, told by nftables, loads every switch's rules
    again, and a running VM's adapter made since the save has its guards (review rv12: keeld
    found its markers and reloaded nothing, the adapter forwarded with no guards)."""
    if not e.netns:
        print("SKIP: switch-nft-restore: needs root")
        return 77
    e.start_keeld()
    br = switches(e)["Default Switch"]["bridge"]
    saved = "flush ruleset\n" + e.ns("nft", "list", "ruleset")
    e.keel("vm", "create", "ga", "--kernel", e.a.guest, "--memory", "16M", "--net",
           "switch=Default Switch,mac=02:00:00:00:aa:01")
    tap = e.start("ga")["nets"][0]["tap"]  # running: its tap forwards on the bridge
    check(tap in e.ns("nft", "list", "chain", "bridge", "keel", br + "_guard"),
          "no guards for %s before the reload" % tap)
    path = os.path.join(e.dir, "saved.nft")
    open(path, "w").write(saved)
    e.ns("nft", "-f", path)
    time.sleep(7)  # the notification's check and a periodic one
    guard = e.ns("nft", "list", "chain", "bridge", "keel", br + "_guard")
    state = e.ns("bridge", "link", "show", "dev", tap)
    check(tap in guard, "running VM's adapter %s (%s) has no guards after a reload of a saved ruleset:\n%s\n"
          "keeld's log:\n%s" % (tap, state.strip(), guard, open(e.keeld_log).read()[-800:]))

def case_switch_nft_retry(e):
    """A check asked for by nftables' notification whose read of the switches fails (a test
    hook: STATE/switches/test-list-fail) keeps the request and tries again soon: once the
    read works, the rules of a chain flushed from outside are loaded as told by nftables, not
    at the next periodic check (review rv12: the request was dropped before the read, and the
    next check, 5 s on, was a periodic one)."""
    if not e.netns:
        print("SKIP: switch-nft-retry: needs root")
        return 77
    e.start_keeld()
    br = switches(e)["Default Switch"]["bridge"]
    hook = os.path.join(e.state, "switches", "test-list-fail")
    open(hook, "w").close()
    e.ns("nft", "flush", "chain", "inet", "keel", br + "_fwd")
    deadline = time.time() + 10
    while "cannot read them to check their rules" not in open(e.keeld_log).read():
        check(time.time() < deadline, "keeld did not try the check the notification asked for")
        time.sleep(0.1)
    os.unlink(hook)
    deadline = time.time() + 15  # a liveness bound only
    while 'iifname "%s" drop' % br not in e.ns("nft", "list", "chain", "inet", "keel",
                                                 br + "_fwd"):
        check(time.time() < deadline, "the rules are not back")
        time.sleep(0.1)
    log = open(e.keeld_log).read()
    check("its rules were removed (a firewall reload?; nftables told keeld)" in log and
          "seen at keeld's periodic check" not in log,
          "the rules came back at a periodic check, the notification's request dropped:\n" +
          log[-1500:])


def case_switch_nft_pidns(e):
    """keeld in a PID namespace of its own: the kernel names a transaction's thread by its id
    in the initial namespace (NFTA_GEN_PROC_PID), which is not keeld's getpid(); keeld knows
    it as one of its threads (/proc/self/task/ID, /proc being the initial namespace's here),
    so its own batches are not taken for another process's (before, each reload of every
    switch asked for the next, at most one a second: 5 in 5 s; where /proc is the
    namespace's own, that limit still holds them to one a second). A chain flushed from
    outside: the rules back, and in the 5 s after, at most one more reload."""
    if not e.netns:
        print("SKIP: switch-nft-pidns: needs root")
        return 77
    # keeld not the namespace's init (sh is), so that SIGTERM reaches it as usual
    e.start_keeld(prefix=["unshare", "--pid", "--fork", "--kill-child", "sh", "-c",
                          '"$@" & wait', "sh"])
    try:
        pidns_reloads(e)
    finally:
        # unshare waits through a SIGTERM: keeld (its sh's child) is ended itself
        def children(pid):
            return [int(c) for c in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
        sh = children(e.keeld_proc.pid)
        for pid in children(sh[0]) if sh else ():
            os.kill(pid, signal.SIGTERM)
        e.keeld_proc.wait(timeout=30)
        e.keeld_proc = None


def log_lines_during(e, text, secs):
    """How many times keeld's log says text in the next secs seconds."""
    before = open(e.keeld_log).read().count(text)
    time.sleep(secs)
    return open(e.keeld_log).read().count(text) - before


def pidns_reloads(e):
    br = switches(e)["Default Switch"]["bridge"]
    e.ns("nft", "flush", "chain", "inet", "keel", br + "_fwd")
    time.sleep(1)
    fwd = e.ns("nft", "list", "chain", "inet", "keel", br + "_fwd")
    check('iifname "%s" drop' % br in fwd, "the rules are not back:\n" + fwd)
    n = log_lines_during(e, "'Default Switch': its rules loaded again", 5)
    print("switch-nft-pidns: %d reloads in 5 s after the flush's" % n)
    check(n <= 1, "keeld in a PID namespace reloaded %d times in 5 s (want at most 1: woken "
          "by its own transactions)" % n)


CASES = {n[5:].replace("_", "-"): f for n, f in globals().items() if n.startswith("case_")}
# The cases that never run a guest (keel-vmm is not started, or its start is refused before
# keeld opens /dev/kvm): the API's and CLI's refusals, the store, backups and imports of VMs
# that are off, pools, switches' configuration with stand-in guests (veths). On a host
# without a usable /dev/kvm they run; every other case skips, saying so. Found by running
# every case on a host with no /dev/kvm: these passed, the others failed at their first
# start ("cannot open /dev/kvm").
NO_VM = {
    "api", "backup-nvram", "errors", "import-attacks", "jail-fifo-parent", "pool-delete",
    "switch-bridge-addrs", "switch-crash", "switch-docker", "switch-internal", "switch-ipv6",
    "switch-neighbours", "switch-nft-partial", "switch-nft-pidns", "switch-nft-retry",
    "switch-nft-selfloop", "switch-route-tables", "switch-routes", "switch-set-crash",
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--keeld", required=True)
    p.add_argument("--keel", required=True)
    p.add_argument("--keel-vmm", required=True)
    p.add_argument("--guest", required=True)
    p.add_argument("--disktool", default="")
    p.add_argument("--agent", default="")
    p.add_argument("case", choices=sorted(CASES))
    a = p.parse_args()
    if not NO_VM <= set(CASES):
        print("FAIL: NO_VM names cases that do not exist: %s" %
              ", ".join(sorted(NO_VM - set(CASES))))
        return 1
    for attr in ("keeld", "keel", "keel_vmm", "guest"):
        setattr(a, attr, os.path.abspath(getattr(a, attr)))
    if a.case not in NO_VM and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: %s: /dev/kvm is missing or not accessible: its VMs need KVM" % a.case)
        return 77
    if not os.access(a.keel_vmm, os.X_OK):
        print("SKIP: keel-vmm %s is not built" % a.keel_vmm)
        return 77
    if not shutil.which("curl") or not shutil.which("sqlite3"):
        print("SKIP: curl and sqlite3 are needed (scripts/setup.sh installs them)")
        return 77
    # The files the cases make are an administrator's with keeld's own umask: not readable
    # by every user, as keeld wants a disk a VM writes (docs/security.md).
    os.umask(0o027)
    e = Env(a)
    try:
        if CASES[a.case](e) == 77:
            return 77
        report = e.sanitizer_reports()
        check(not report, "keeld reported:\n" + report)
    except (Fail, subprocess.TimeoutExpired) as x:
        print("FAIL: %s: %s" % (a.case, x))
        e.dump()
        print("0 passed, 1 failed")
        return 1
    finally:
        e.cleanup()
    shutil.rmtree(e.dir, ignore_errors=True)
    print("%s: ok\n1 passed, 0 failed" % a.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
