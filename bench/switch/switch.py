#!/usr/bin/env python3
"""bench/switch (issue 12): how long a NAT switch takes from the request to serving a lease,
and how long a lease takes on a switch that is up. Everything runs in network namespaces of
its own (the host's network is not touched): keeld in one, a DHCP client (busybox udhcpc, on a
veth into the switch's bridge) in another. keel: `POST /v1/switches` (bridge by netlink, the
nftables batch by libnftables, dnsmasq) until the client's lease. The peer, the way libvirt
does it by hand: `ip link add ... type bridge`, `ip addr`, `ip link set up`, `nft -f` with the
same rules, then dnsmasq with the same configuration, each a subprocess. N runs each,
alternating; medians in ms."""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time


def sh(*cmd, ns=None, check=True):
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    r = subprocess.run(full, capture_output=True, text=True, timeout=60)
    if check and r.returncode:
        raise SystemExit("bench/switch: %s: %s" % (" ".join(full), r.stderr.strip()))
    return r.stdout


def lease(cns, dev):
    """Run a DHCP client on dev in namespace cns until it has a lease: ms, and the address."""
    t0 = time.monotonic()
    r = subprocess.run(["ip", "netns", "exec", cns, "busybox", "udhcpc", "-i", dev, "-n", "-q",
                        "-f", "-t", "20", "-T", "1", "-s", "/bin/true"],
                       capture_output=True, text=True, timeout=60)
    ms = (time.monotonic() - t0) * 1000
    m = re.search(r"lease of (\S+) obtained", r.stdout + r.stderr)
    return ms, m.group(1) if m else None


def plug(ns, cns, bridge, n):
    """A veth from bridge (in ns) to the client namespace cns, up."""
    a, b = "bv%d" % n, "bc%d" % n
    sh("ip", "link", "add", a, "type", "veth", "peer", "name", b, ns=ns)
    sh("ip", "link", "set", a, "master", bridge, "up", ns=ns)
    sh("ip", "link", "set", b, "netns", cns, ns=ns)
    sh("ip", "link", "set", b, "up", ns=cns)
    return b


def keel_run(a, ns, cns, sock, n):
    t0 = time.monotonic()
    r = subprocess.run(["curl", "-s", "--unix-socket", sock, "-X", "POST", "-d",
                        json.dumps({"name": "b%d" % n, "type": "internal", "nat": True,
                                    "subnet": "10.80.%d.0/24" % n}),
                        "http://keeld/v1/switches"], capture_output=True, text=True)
    api = (time.monotonic() - t0) * 1000
    doc = json.loads(r.stdout)
    if "bridge" not in doc:
        raise SystemExit("bench/switch: keel: %s" % r.stdout)
    dev = plug(ns, cns, doc["bridge"], n)
    ms, ip = lease(cns, dev)
    total = (time.monotonic() - t0) * 1000
    if not ip:
        raise SystemExit("bench/switch: keel: no lease on switch b%d" % n)
    again, _ = lease(cns, dev)  # a lease on a switch that is up (dnsmasq knows the MAC)
    subprocess.run(["curl", "-s", "--unix-socket", sock, "-X", "DELETE",
                    "http://keeld/v1/switches/b%d" % n], capture_output=True)
    return api, total, again


def peer_run(ns, cns, d, n):
    br, gw = "pbr%d" % n, "10.81.%d.1" % n
    conf = os.path.join(d, "p%d.conf" % n)
    with open(conf, "w") as f:
        f.write("strict-order\nbind-interfaces\nexcept-interface=lo\ninterface=%s\n"
                "listen-address=%s\ndhcp-range=10.81.%d.2,10.81.%d.254,255.255.255.0,1h\n"
                "dhcp-leasefile=%s/p%d.leases\ndhcp-authoritative\ndhcp-rapid-commit\n"
                "dhcp-ignore-clid\nno-ping\n" % (br, gw, n, n, d, n))
    rules = ("table inet p%d {\n chain pfwd { type filter hook forward priority 0; }\n"
             " chain pnat { type nat hook postrouting priority 100; }\n}\n"
             "add rule inet p%d pfwd iifname \"%s\" oifname \"%s\" accept\n"
             "add rule inet p%d pfwd iifname \"%s\" ip saddr 10.81.%d.0/24 accept\n"
             "add rule inet p%d pfwd oifname \"%s\" ip daddr 10.81.%d.0/24 ct state "
             "established,related accept\n"
             "add rule inet p%d pnat ip saddr 10.81.%d.0/24 ip daddr != 10.81.%d.0/24 "
             "masquerade\n" % (n, n, br, br, n, br, n, n, br, n, n, n, n))
    t0 = time.monotonic()
    sh("ip", "link", "add", br, "type", "bridge", ns=ns)
    sh("ip", "addr", "add", gw + "/24", "dev", br, ns=ns)
    sh("ip", "link", "set", br, "up", ns=ns)
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True,
                   check=True)
    dns = subprocess.Popen(["ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground",
                            "--conf-file=" + conf, "--pid-file="])
    api = (time.monotonic() - t0) * 1000
    dev = plug(ns, cns, br, 100 + n)
    ms, ip = lease(cns, dev)
    total = (time.monotonic() - t0) * 1000
    again, _ = lease(cns, dev)
    dns.send_signal(signal.SIGTERM)
    dns.wait()
    sh("nft", "delete", "table", "inet", "p%d" % n, ns=ns)
    sh("ip", "link", "del", br, ns=ns)
    if not ip:
        raise SystemExit("bench/switch: peer: no lease on %s" % br)
    return api, total, again


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--keeld", required=True)
    p.add_argument("--keel", required=True)
    p.add_argument("--keel-vmm", required=True)
    p.add_argument("-n", type=int, default=10)
    a = p.parse_args()
    d = tempfile.mkdtemp(prefix="kbs", dir="/tmp")
    ns, cns = os.path.basename(d), os.path.basename(d) + "c"
    keeld = None
    try:
        for x in (ns, cns):
            subprocess.run(["ip", "netns", "add", x], check=True)
            sh("ip", "link", "set", "lo", "up", ns=x)
        sock = os.path.join(d, "api.sock")
        keeld = subprocess.Popen(["nsenter", "--net=/run/netns/" + ns, a.keeld, "--state-dir",
                                  os.path.join(d, "s"), "--socket", sock, "--vmm", a.keel_vmm],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"),
                                                                        "w"))
        for _ in range(100):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                s.close()
                break
            except OSError:
                time.sleep(0.05)
        k, q = [], []
        for n in range(a.n):
            k.append(keel_run(a, ns, cns, sock, n))
            q.append(peer_run(ns, cns, d, n))
        med = lambda rows, i: statistics.median(r[i] for r in rows)
        print("| measure (median of %d, ms) | keel | by hand | keel/by hand |" % a.n)
        print("|---|---|---|---|")
        for i, what in enumerate(("request to switch made (API reply / last command)",
                                  "request to the first lease (switch ready + DHCP)",
                                  "a lease on a switch that is up (udhcpc run)")):
            print("| %s | %.1f | %.1f | %.2f |" % (what, med(k, i), med(q, i),
                                                   med(k, i) / med(q, i)))
    finally:
        if keeld:
            keeld.terminate()
            keeld.wait()
        for x in (ns, cns):
            r = subprocess.run(["ip", "netns", "pids", x], capture_output=True, text=True)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
            subprocess.run(["ip", "netns", "del", x], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
