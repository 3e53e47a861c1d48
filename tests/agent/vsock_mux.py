# SPDX-License-Identifier: Apache-2.0
"""A stand-in for keel-vmm's virtio-vsock device in host tests: the host side of Firecracker's
hybrid vsock at a VM's vsock.sock. It accepts, reads "CONNECT <port>\\n", answers "OK 1\\n" and
splices to keel-agent listening on a Unix socket (--listen-unix), which plays the guest. A
CONNECT to another port, or with no agent listening, is closed, as the device resets it."""
import socket
import threading

AGENT_PORT = 52


class VsockMux:
    def __init__(self, path, agent_path):
        self.agent_path = agent_path
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
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, c):
        line = b''
        while not line.endswith(b'\n') and len(line) < 32:
            b = c.recv(1)
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
        c.sendall(b'OK 1\n')
        threading.Thread(target=pump, args=(a, c), daemon=True).start()
        pump(c, a)


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
