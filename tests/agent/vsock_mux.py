# SPDX-License-Identifier: Apache-2.0
"""A stand-in for keel-vmm's virtio-vsock device in host tests: the host side of Firecracker's
hybrid vsock at a VM's vsock.sock. It accepts, reads "CONNECT <port>\\n", answers "OK 1\\n" and
splices to keel-agent listening on a Unix socket (--listen-unix), which plays the guest. A
CONNECT to another port, or with no agent listening, is closed, as the device resets it. A
host side that closes first (keeld giving up on a CONNECT while the agent is stopped) is
closed too; reset() hangs up every connection, as the device's TRANSPORT_RESET does. Anything
else that goes wrong in a connection's thread is kept in errors, for the test to check."""
import socket
import threading
import time

AGENT_PORT = 52


class VsockMux:
    def __init__(self, path, agent_path):
        self.agent_path = agent_path
        self.errors = []  # unexpected exceptions of the connection threads, as strings
        self.lock = threading.Lock()
        self.live = set()  # the host sides of the connections spliced to the agent
        self.connects = []  # time.monotonic() of each CONNECT spliced to the agent
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one_checked, args=(c,), daemon=True).start()

    def one_checked(self, c):
        try:
            self.one(c)
        except Exception as ex:  # a test fails on it (errors), not a thread's traceback
            self.errors.append(repr(ex))
            c.close()

    def one(self, c):
        line = b''
        while not line.endswith(b'\n') and len(line) < 32:
            try:
                b = c.recv(1)
            except OSError:  # reset by the host side
                b = b''
            if not b:
                c.close()
                return
            line += b
        if line != b'CONNECT %d\n' % AGENT_PORT:
            c.close()
            return
        a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            a.connect(self.agent_path)
        except OSError:
            c.close()
            return
        try:
            c.sendall(b'OK 1\n')
        except OSError:  # the host side closed while the agent's accept waited
            a.close()
            c.close()
            return
        with self.lock:
            self.live.add(c)
            self.connects.append(time.monotonic())
        t = threading.Thread(target=pump, args=(a, c), daemon=True)
        t.start()
        pump(c, a)
        t.join()
        with self.lock:
            self.live.discard(c)
        a.close()
        c.close()

    def live_count(self):
        """How many connections are spliced to the agent now."""
        with self.lock:
            return len(self.live)

    def reset(self):
        """Every connection's host side hung up, as the device's TRANSPORT_RESET at a resume
        or a restore does: returns how many there were."""
        with self.lock:
            live = list(self.live)
        for c in live:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(live)


def pump(src, dst):
    try:
        while True:
            d = src.recv(65536)
            if not d:
                break
            dst.sendall(d)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
