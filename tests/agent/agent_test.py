#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""keel-agent on the host (issue 13): the agent runs with its test listener (--listen-unix)
in a temporary directory, reached through a test mux that speaks the host side of
Firecracker's hybrid vsock (CONNECT <port>\\n, OK <n>\\n), as keel-vmm's vsock.sock will.
The client here is a second implementation of docs/agent-protocol.md, written from the
document, so the C codec is checked against it too.

Nothing here may change the host: no freeze, no shutdown, no time-set (the tests may run as
root); those requests are only sent with arguments the agent must refuse.

usage: agent_test.py --agent PATH CASE"""
import argparse
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from vsock_mux import VsockMux

# Message types and attribute tags (docs/agent-protocol.md).
T = dict(HELLO=1, PING=2, SHUTDOWN=3, TIME_SET=4, TIME_GET=5, KVP_SET=6, KVP_GET=7,
         KVP_DELETE=8, KVP_LIST=9, EXEC=10, EXEC_OUTPUT=11, EXEC_EXIT=12, EXEC_INPUT=13,
         COPY_BEGIN=14, COPY_DATA=15, COPY_END=16, FREEZE=17, THAW=18,
         EXEC_RESIZE=19)
A = dict(VERSION_MIN=1, VERSION_MAX=2, VERSION=3, AGENT_VERSION=4, SERVICES=5, ERROR=6,
         MESSAGE=7, TIME_NS=8, UPTIME_MS=9, MODE=10, METHOD=11, POOL=12, KEY=13, VALUE=14,
         ARG=15, ENV=16, CWD=17, TIMEOUT_MS=18, PID=19, STREAM=20, DATA=21, EXIT_STATUS=22,
         SIGNAL=23, TIMED_OUT=24, PATH=25, FILE_MODE=26, UID=27, GID=28, SIZE=29,
         COPY_FLAGS=30, COUNT=31, EOF=32, OFFSET_NS=33, TTY=34, ROWS=35, COLS=36, USER=37,
         GROUP=38)
U32 = {'VERSION_MIN', 'VERSION_MAX', 'VERSION', 'SERVICES', 'ERROR', 'MODE', 'POOL',
       'TIMEOUT_MS', 'PID', 'STREAM', 'EXIT_STATUS', 'SIGNAL', 'TIMED_OUT', 'FILE_MODE', 'UID',
       'GID', 'COPY_FLAGS', 'COUNT', 'EOF', 'TTY', 'ROWS', 'COLS'}
U64 = {'TIME_NS', 'UPTIME_MS', 'SIZE', 'OFFSET_NS'}
BYTES = {'DATA'}
NAMES = {v: k for k, v in A.items()}
F_REPLY, F_ERROR, F_MORE = 1, 2, 4
PORT = 52


def attr(tag, value):
    if tag in U32:
        raw = struct.pack('<I', value)
    elif tag in U64:
        raw = struct.pack('<Q', value)
    elif tag in BYTES:
        raw = value
    else:
        raw = value.encode() + b'\0'
    return struct.pack('<HH', A[tag], len(raw)) + raw


def frame(mtype, mid, attrs=(), flags=0):
    body = b''.join(attr(t, v) for t, v in attrs)
    return struct.pack('<IHHI', 12 + len(body), T[mtype], flags, mid) + body


def decode(buf):
    length, mtype, flags, mid = struct.unpack_from('<IHHI', buf)
    assert length == len(buf)
    attrs, off = [], 12
    while off < length:
        tag, n = struct.unpack_from('<HH', buf, off)
        raw = buf[off + 4:off + 4 + n]
        name = NAMES.get(tag, tag)
        if name in U32:
            val = struct.unpack('<I', raw)[0]
        elif name in U64:
            val = struct.unpack('<Q', raw)[0]
        elif name in BYTES:
            val = raw
        else:
            assert raw.endswith(b'\0'), raw
            val = raw[:-1].decode()
        attrs.append((name, val))
        off += 4 + n
    return dict(type=mtype, flags=flags, id=mid, attrs=attrs)


def get(msg, name, default=None):
    for k, v in msg['attrs']:
        if k == name:
            return v
    return default


def get_all(msg, name):
    return [v for k, v in msg['attrs'] if k == name]


class Client:
    def __init__(self, vsock_path, hello=True):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect(vsock_path)
        self.s.sendall(b'CONNECT %d\n' % PORT)
        line = b''
        while not line.endswith(b'\n'):
            b = self.s.recv(1)
            assert b, 'the mux closed before OK'
            line += b
        assert line.startswith(b'OK '), line
        self.next_id = 1
        if hello:
            r = self.request('HELLO', [('VERSION_MIN', 1), ('VERSION_MAX', 1)])
            assert r['flags'] == F_REPLY, r
            assert get(r, 'VERSION') == 1, r
            self.services = get(r, 'SERVICES')
            self.agent_version = get(r, 'AGENT_VERSION')

    def send(self, mtype, attrs=(), mid=None, flags=0):
        if mid is None:
            mid = self.next_id
            self.next_id += 1
        self.s.sendall(frame(mtype, mid, attrs, flags))
        return mid

    def recv_exact(self, n):
        buf = b''
        while len(buf) < n:
            d = self.s.recv(n - len(buf))
            if not d:
                raise EOFError('the agent closed the connection')
            buf += d
        return buf

    def recv(self):
        hdr = self.recv_exact(12)
        length = struct.unpack_from('<I', hdr)[0]
        assert 12 <= length <= 65536, length
        return decode(hdr + self.recv_exact(length - 12))

    def request(self, mtype, attrs=()):
        mid = self.send(mtype, attrs)
        r = self.recv()
        assert r['id'] == mid and r['type'] == T[mtype] and r['flags'] & F_REPLY, r
        return r

    def request_all(self, mtype, attrs=()):
        mid = self.send(mtype, attrs)
        out = []
        while True:
            r = self.recv()
            assert r['id'] == mid, r
            out.append(r)
            if not r['flags'] & F_MORE:
                return out

    def exec(self, argv, stdin=b'', timeout_ms=0, env=(), user=None):
        attrs = [('ARG', a) for a in argv] + [('ENV', e) for e in env]
        if user is not None:
            attrs.append(('USER', user))
        if timeout_ms:
            attrs.append(('TIMEOUT_MS', timeout_ms))
        r = self.request('EXEC', attrs)
        if r['flags'] & F_ERROR:
            return r, None, None
        mid = r['id']
        for i in range(0, len(stdin), 32768):
            self.send('EXEC_INPUT', [('DATA', stdin[i:i + 32768])], mid=mid)
        self.send('EXEC_INPUT', [('DATA', b''), ('EOF', 1)], mid=mid)
        out = {1: b'', 2: b''}
        while True:
            m = self.recv()
            assert m['id'] == mid, m
            if m['type'] == T['EXEC_OUTPUT']:
                out[get(m, 'STREAM')] += get(m, 'DATA')
            else:
                assert m['type'] == T['EXEC_EXIT'], m
                return m, out[1], out[2]

    def close(self):
        self.s.close()


def expect_error(r, code, words):
    assert r['flags'] == F_REPLY | F_ERROR, r
    assert get(r, 'ERROR') == code, (r, code)
    assert words in get(r, 'MESSAGE'), (r, words)


class Env:
    def __init__(self, agent, extra=()):
        self.dir = tempfile.mkdtemp(prefix='keel-agent-test-')
        self.agent_sock = os.path.join(self.dir, 'agent.sock')
        self.vsock = os.path.join(self.dir, 'vsock.sock')
        self.state = os.path.join(self.dir, 'state')
        self.log = open(os.path.join(self.dir, 'agent.log'), 'w')
        self.agent = agent
        self.proc = subprocess.Popen([agent, '--listen-unix', self.agent_sock, '--state-dir',
                                      self.state] + list(extra),
                                     stdout=self.log, stderr=self.log)
        for _ in range(200):
            if os.path.exists(self.agent_sock):
                break
            time.sleep(0.05)
        assert os.path.exists(self.agent_sock), 'the agent did not listen'
        self.mux = VsockMux(self.vsock, self.agent_sock)

    def client(self, hello=True):
        return Client(self.vsock, hello)

    def guest_kvp(self, *args):
        return subprocess.run([self.agent, '--state-dir', self.state, 'kvp'] + list(args),
                              capture_output=True, text=True)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        with open(os.path.join(self.dir, 'agent.log')) as f:
            text = f.read()
        assert 'runtime error' not in text and 'AddressSanitizer' not in text, text
        assert not self.mux.errors, "the test mux's connections failed: %r" % self.mux.errors
        subprocess.run(['rm', '-rf', self.dir])


def case_hello(e):
    c = e.client(hello=False)
    # Anything before hello is refused, and the connection goes on.
    expect_error(c.request('PING'), 71, 'say hello first')  # EPROTO
    expect_error(c.request('HELLO', [('VERSION_MIN', 2), ('VERSION_MAX', 9)]), 93,
                 'speaks protocol version 1')  # EPROTONOSUPPORT
    expect_error(c.request('HELLO', [('VERSION_MIN', 1)]), 22, 'version-max')
    r = c.request('HELLO', [('VERSION_MIN', 1), ('VERSION_MAX', 7)])
    assert get(r, 'VERSION') == 1 and get(r, 'SERVICES') == 0x7f, r
    assert get(r, 'AGENT_VERSION'), r
    r = c.request('PING')
    assert r['flags'] == F_REPLY and get(r, 'UPTIME_MS') > 0, r
    # Heartbeat: one ping a second for three seconds, each answered at once.
    for _ in range(3):
        t = time.monotonic()
        assert c.request('PING')['flags'] == F_REPLY
        assert time.monotonic() - t < 0.5
        time.sleep(1)
    r = c.request('TIME_GET')
    assert abs(get(r, 'TIME_NS') - time.time_ns()) < 2 * 10**9, r


def case_errors(e):
    c = e.client()
    # Unknown command, a reply sent as a request, an agent-to-host type: errors, not crashes.
    c.s.sendall(struct.pack('<IHHI', 12, 999, 0, 77))
    r = c.recv()
    assert r['id'] == 77 and get(r, 'ERROR') == 38 and 'unknown command 999' in get(r, 'MESSAGE'), r
    expect_error(c.request('EXEC_EXIT'), 38, 'unknown command')
    c.s.sendall(frame('PING', 78, flags=F_REPLY))
    assert get(c.recv(), 'ERROR') == 22
    # Malformed frames: an attribute past the end, a string without its NUL, bad UTF-8, a
    # single attribute twice, unknown flags. Each gets an error with its id; the agent serves on.
    bad = [
        struct.pack('<IHHI', 20, 2, 0, 90) + struct.pack('<HH', 1, 100) + b'\0' * 4,
        struct.pack('<IHHI', 19, 7, 0, 91) + struct.pack('<HH', 13, 3) + b'abc',
        struct.pack('<IHHI', 19, 7, 0, 92) + struct.pack('<HH', 13, 3) + b'\xff\xfe\0',
        frame('HELLO', 93, [('VERSION_MIN', 1), ('VERSION_MIN', 1)]),
        frame('PING', 94, flags=0x80),
        struct.pack('<IHHI', 18, 2, 0, 95) + struct.pack('<HH', 3, 2) + b'\0\0',
        frame('KVP_GET', 96, [('POOL', 2), ('KEY', 'k' * 600)]),
    ]
    for i, b in enumerate(bad):
        c.s.sendall(b)
        r = c.recv()
        assert r['id'] == 90 + i and r['flags'] == F_REPLY | F_ERROR, (i, r)
        assert get(r, 'ERROR') == 22 and 'malformed frame' in get(r, 'MESSAGE'), (i, r)
    assert c.request('PING')['flags'] == F_REPLY
    # Requests the host must not do, refused without effect (nothing here may touch the host).
    expect_error(c.request('TIME_SET', [('TIME_NS', 5)]), 22, 'between 2000 and 2200')
    expect_error(c.request('SHUTDOWN', [('MODE', 9)]), 22, 'neither poweroff')
    expect_error(c.request('FREEZE', [('TIMEOUT_MS', 0)]), 22, "freeze's timeout")
    expect_error(c.request('KVP_SET', [('POOL', 1), ('KEY', 'a'), ('VALUE', 'b')]), 1,
                 'only the host pool')
    expect_error(c.request('EXEC', [('ARG', 'true'), ('CWD', 'relative')]), 22, 'not absolute')
    expect_error(c.request('EXEC', [('ARG', 'env'), ('ENV', 'NOEQUALS')]), 22, 'NAME=VALUE')
    expect_error(c.request('COPY_BEGIN', [('PATH', '/tmp/../etc/x'), ('SIZE', 1)]), 22, "'..'")
    # A length outside the limits cannot be followed: an error, then the agent closes this
    # connection, and serves the next one.
    c.s.sendall(struct.pack('<IHHI', 70000, 2, 0, 1))
    r = c.recv()
    assert get(r, 'ERROR') == 90 and 'closing' in get(r, 'MESSAGE'), r  # EMSGSIZE
    try:
        c.recv()
        assert False, 'the connection stayed open'
    except (EOFError, ConnectionResetError):
        pass
    c2 = e.client()
    assert c2.request('PING')['flags'] == F_REPLY
    assert e.proc.poll() is None


def case_exec(e):
    c = e.client()
    m, out, err = c.exec(['sh', '-c', 'echo out; echo err >&2; exit 3'])
    assert get(m, 'EXIT_STATUS') == 3 and out == b'out\n' and err == b'err\n', (m, out, err)
    m, out, err = c.exec(['no-such-program-keel'])
    assert get(m, 'EXIT_STATUS') == 127, m
    assert b"cannot run 'no-such-program-keel'" in err, err
    # stdin streamed in, output streamed out, byte for byte (more than a frame each way).
    data = os.urandom(300000)
    m, out, err = c.exec(['cat'], stdin=data)
    assert get(m, 'EXIT_STATUS') == 0 and out == data, (m, len(out))
    # Environment: the host's entries, with PATH's default.
    m, out, _ = c.exec(['sh', '-c', 'echo $KEEL_X:$PATH'], env=['KEEL_X=1'])
    assert out.startswith(b'1:/usr/local/sbin'), out
    # A timeout kills the whole process group.
    t = time.monotonic()
    m, out, _ = c.exec(['sh', '-c', 'sleep 1000 & sleep 1000'], timeout_ms=500)
    assert time.monotonic() - t < 5
    assert get(m, 'TIMED_OUT') == 1 and get(m, 'SIGNAL') == 9 and get(m, 'EXIT_STATUS') == 137, m
    # A signal shows as 128 + its number.
    m, _, _ = c.exec(['sh', '-c', 'kill -TERM $$'])
    assert get(m, 'EXIT_STATUS') == 143 and get(m, 'SIGNAL') == 15, m
    # The host going away kills the process group: a marker process must vanish.
    c2 = e.client()
    r = c2.request('EXEC', [('ARG', 'sh'), ('ARG', '-c'), ('ARG', 'sleep 1001 & exec sleep 1000')])
    pgid = get(r, 'PID')

    def group():
        pids = []
        for d in os.listdir('/proc'):
            try:
                if d.isdigit() and int(open('/proc/%s/stat' % d).read().rsplit(')', 1)[1].split()[2]) == pgid:
                    pids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
        return pids
    for _ in range(100):
        if len(group()) == 2:
            break
        time.sleep(0.05)
    assert len(group()) == 2, group()
    c2.close()
    for _ in range(100):
        if not group():
            break
        time.sleep(0.05)
    assert not group(), 'the exec outlived its connection: %s' % group()
    # The same when the program takes no input and the host has sent more than its pipe
    # holds: the agent reads no more from the host then, yet sees it go.
    c3 = e.client()
    r = c3.request('EXEC', [('ARG', 'sleep'), ('ARG', '1000')])
    pgid = get(r, 'PID')
    # Four chunks: two fill the pipe (64 KiB), the third waits in the agent, the fourth in
    # the socket; no more, or the test mux itself would block forwarding and never see the
    # close.
    for _ in range(4):
        c3.send('EXEC_INPUT', [('DATA', b'x' * 32768)], mid=r['id'])
    time.sleep(0.5)
    check_alive = os.path.exists('/proc/%d' % pgid)
    c3.close()
    for _ in range(100):
        if not group():
            break
        time.sleep(0.05)
    assert check_alive and not group(), 'an exec with stdin held outlived its connection'
    # --tty: a pseudo-terminal of the given size as stdin, stdout and stderr.
    c4 = e.client()
    r = c4.request('EXEC', [('ARG', 'sh'), ('ARG', '-c'),
                            ('ARG', 'test -t 0 && test -t 2 && tty && stty size; exit 5'),
                            ('TTY', 1), ('ROWS', 30), ('COLS', 100)])
    assert r['flags'] == F_REPLY, r
    c4.send('EXEC_INPUT', [('EOF', 1)], mid=r['id'])
    out = b''
    while True:
        m = c4.recv()
        if m['type'] == T['EXEC_OUTPUT']:
            assert get(m, 'STREAM') == 1, m
            out += get(m, 'DATA')
        else:
            break
    assert get(m, 'EXIT_STATUS') == 5, m
    assert b'/dev/pts/' in out and b'30 100\r\n' in out, out
    # EXEC_RESIZE: the terminal takes the new size and the program gets SIGWINCH (its trap
    # prints the size and exits 6); sizes of 0, above 10000 or missing are refused, and the
    # exec goes on.
    c5 = e.client()
    r = c5.request('EXEC', [('ARG', 'sh'), ('ARG', '-c'),
                            ('ARG', "trap 'stty size; exit 6' WINCH; stty size; echo ready; "
                                    "while :; do sleep 0.05; done"),
                            ('TTY', 1), ('ROWS', 30), ('COLS', 100)])
    assert r['flags'] == F_REPLY, r
    mid, out = r['id'], b''
    while b'ready' not in out:
        m = c5.recv()
        assert m['type'] == T['EXEC_OUTPUT'], m
        out += get(m, 'DATA')
    assert b'30 100\r\n' in out, out
    for bad in ([('ROWS', 0), ('COLS', 80)], [('ROWS', 24), ('COLS', 10001)],
                [('ROWS', 24)], []):
        c5.send('EXEC_RESIZE', bad, mid=mid)
        m = c5.recv()
        assert m['type'] == T['EXEC_RESIZE'] and m['id'] == mid, m
        expect_error(m, 22, 'rows and cols of 1 to 10000')
    c5.send('EXEC_RESIZE', [('ROWS', 10000), ('COLS', 1)], mid=mid)
    out = b''
    while True:
        m = c5.recv()
        if m['type'] != T['EXEC_OUTPUT']:
            break
        out += get(m, 'DATA')
    assert m['type'] == T['EXEC_EXIT'] and get(m, 'EXIT_STATUS') == 6, (m, out)
    assert b'10000 1\r\n' in out, out
    # A resize for an exec without a terminal is refused; one for an exec that ended is not.
    r = c5.request('EXEC', [('ARG', 'sleep'), ('ARG', '2')])
    c5.send('EXEC_RESIZE', [('ROWS', 24), ('COLS', 80)], mid=r['id'])
    expect_error(c5.recv(), 25, 'has no terminal')
    c5.send('EXEC_RESIZE', [('ROWS', 24), ('COLS', 80)], mid=r['id'] + 1000)
    c5.request('PING')  # the next frame is the ping's reply: nothing answered the resize
    c5.close()
    # --user: by name or number, from the guest's /etc/passwd; home or / as the directory.
    m, out, err = c.exec(['sh', '-c', 'id -u; id -g; echo $HOME; pwd'], user='nobody')
    nobody = [l for l in open('/etc/passwd') if l.startswith('nobody:')][0].split(':')
    home = nobody[5] if os.path.isdir(nobody[5]) else '/'
    assert out.decode() == '%s\n%s\n%s\n%s\n' % (nobody[2], nobody[3], nobody[5], home), (out, err)
    m, out, _ = c.exec(['id', '-u'], user=nobody[2])
    assert out.decode() == nobody[2] + '\n', out
    # Empty fields (a GECOS left empty, as most system users have) are fields all the same:
    # the home is the sixth, not the shell.
    empty = [l.rstrip('\n').split(':') for l in open('/etc/passwd')
             if len(l.split(':')) == 7 and l.split(':')[4] == '']
    if empty:
        m, out, err = c.exec(['sh', '-c', 'id -u; id -g; echo $HOME'], user=empty[0][0])
        assert out.decode() == '%s\n%s\n%s\n' % tuple(empty[0][2:4] + [empty[0][5]]), \
            (empty[0], out, err)
    r = c.request('EXEC', [('ARG', 'true'), ('USER', 'no-such-user-keel')])
    expect_error(r, 2, "no user 'no-such-user-keel'")
    # One exec at a time per connection.
    r = c.request('EXEC', [('ARG', 'sleep'), ('ARG', '2')])
    expect_error(c.request('EXEC', [('ARG', 'true')]), 16, 'already running')


def case_copy(e):
    c = e.client()
    dest_dir = os.path.join(e.dir, 'dest')
    dest = os.path.join(dest_dir, 'sub', 'file.bin')
    data = os.urandom(5 * 1024 * 1024 + 123)

    def copy(path, payload, flags=0, mode=0o640, size=None, owner=None):
        owner = owner if owner is not None else [('UID', 1234), ('GID', 4321)]
        r = c.request('COPY_BEGIN', [('PATH', path), ('SIZE', len(payload) if size is None else size),
                                     ('FILE_MODE', mode), ('COPY_FLAGS', flags)] + owner)
        if r['flags'] & F_ERROR:
            return r
        for i in range(0, len(payload), 32768):
            c.send('COPY_DATA', [('DATA', payload[i:i + 32768])], mid=r['id'])
        c.s.sendall(frame('COPY_END', r['id']))
        end = c.recv()
        assert end['id'] == r['id'], end
        return end

    expect_error(copy(dest, data), 2, '--create-path')
    assert not os.path.exists(dest_dir)
    r = copy(dest, data, flags=1)
    assert r['flags'] == F_REPLY and get(r, 'SIZE') == len(data), r
    with open(dest, 'rb') as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    st = os.stat(dest)
    assert st.st_mode & 0o7777 == 0o640 and st.st_uid == 1234 and st.st_gid == 4321, st
    expect_error(copy(dest, b'new'), 17, '--overwrite')
    r = copy(dest, b'new', flags=2, mode=0o600)
    assert r['flags'] == F_REPLY
    assert open(dest, 'rb').read() == b'new' and os.stat(dest).st_mode & 0o777 == 0o600
    # A copy cut short or overlong leaves the old file and no temporary file behind.
    expect_error(copy(dest, b'short', flags=2, size=10), 32, '5 of the 10 bytes')
    expect_error(copy(dest, b'toolong', flags=2, size=3), 27, 'more data than')
    assert open(dest, 'rb').read() == b'new'
    assert sorted(os.listdir(os.path.dirname(dest))) == ['file.bin'], os.listdir(os.path.dirname(dest))
    expect_error(copy(dest_dir, b'x', flags=2), 21, 'is a directory')
    expect_error(copy(dest, b'x', mode=0o100644), 22, 'bits other than permissions')
    # The owner by the guest's names: a user (its primary group), a group; one the guest lacks
    # is an error, or root's with OWNER_IF_ANY (0x4: the host's own names, sent by default).
    if os.geteuid() == 0:
        import pwd
        import grp
        nobody = pwd.getpwnam('nobody')
        gname = grp.getgrgid(0).gr_name
        o = os.path.join(dest_dir, 'owned')
        assert copy(o, b'1', owner=[('USER', 'nobody')])['flags'] == F_REPLY
        assert (os.stat(o).st_uid, os.stat(o).st_gid) == (nobody.pw_uid, nobody.pw_gid)
        assert copy(o, b'2', flags=2, owner=[('USER', str(nobody.pw_uid)),
                                             ('GROUP', gname)])['flags'] == F_REPLY
        assert (os.stat(o).st_uid, os.stat(o).st_gid) == (nobody.pw_uid, 0)
        expect_error(copy(o, b'3', flags=2, owner=[('USER', 'no-such-user-keel')]), 2,
                     "no user 'no-such-user-keel' in the guest's /etc/passwd")
        expect_error(copy(o, b'3', flags=2, owner=[('GROUP', 'no-such-group-keel')]), 2,
                     "no group 'no-such-group-keel' in the guest's /etc/group")
        assert copy(o, b'4', flags=2 | 4, owner=[('USER', 'no-such-user-keel'),
                                                 ('GROUP', 'no-such-group-keel')])['flags'] == F_REPLY
        assert (os.stat(o).st_uid, os.stat(o).st_gid) == (0, 0) and open(o, 'rb').read() == b'4'
        # Numbers the guest's files lack are the ids themselves ("name or number").
        free = next(i for i in range(4000, 60000) if i not in {p.pw_uid for p in pwd.getpwall()}
                    and i not in {g.gr_gid for g in grp.getgrall()})
        assert copy(o, b'5', flags=2, owner=[('USER', str(free))])['flags'] == F_REPLY
        assert (os.stat(o).st_uid, os.stat(o).st_gid) == (free, 0)
        assert copy(o, b'6', flags=2, owner=[('USER', str(free)),
                                             ('GROUP', str(free))])['flags'] == F_REPLY
        assert (os.stat(o).st_uid, os.stat(o).st_gid) == (free, free)
        os.unlink(o)
    # Symbolic links in the destination's directories: followed only when root owns the
    # link and its directory, so a guest user's link cannot redirect a copy written as root.
    target = os.path.join(e.dir, 'target')
    os.mkdir(target)
    os.symlink(target, os.path.join(e.dir, 'rootlink'))
    r = copy(os.path.join(e.dir, 'rootlink', 'via-root-link'), b'ok')
    assert r['flags'] == F_REPLY and open(os.path.join(target, 'via-root-link'), 'rb').read() == b'ok', r
    if os.geteuid() == 0:
        os.symlink(target, os.path.join(e.dir, 'userlink'))
        os.lchown(os.path.join(e.dir, 'userlink'), 65534, 65534)
        expect_error(copy(os.path.join(e.dir, 'userlink', 'x'), b'x'), 1,
                     "'userlink' in the path")
        expect_error(copy(os.path.join(e.dir, 'userlink', 'new', 'x'), b'x', flags=1), 1,
                     'a copy does not follow it')
        assert sorted(os.listdir(target)) == ['via-root-link'], os.listdir(target)
        # A root link whose target goes through a user's link: the target is walked with
        # the same rules, not by the kernel (root's srv -> alice's www -> etc).
        etc, alice = os.path.join(e.dir, 'etc'), os.path.join(e.dir, 'home', 'alice')
        os.mkdir(etc)
        os.makedirs(alice)
        os.chown(alice, 65534, 65534)
        os.symlink(os.path.join(alice, 'www'), os.path.join(e.dir, 'srv'))
        os.symlink(etc, os.path.join(alice, 'www'))
        os.lchown(os.path.join(alice, 'www'), 65534, 65534)
        expect_error(copy(os.path.join(e.dir, 'srv', 'passwd'), b'pwn', flags=2), 1,
                     "'www' in the path")
        assert os.listdir(etc) == [], os.listdir(etc)
        # Root's links all the way (absolute and relative targets, '..' in one) are walked.
        os.symlink('../target', os.path.join(etc, 'up'))
        os.symlink(os.path.join(etc, 'up'), os.path.join(e.dir, 'chain'))
        assert copy(os.path.join(e.dir, 'chain', 'via-chain'), b'ok')['flags'] == F_REPLY
        assert open(os.path.join(target, 'via-chain'), 'rb').read() == b'ok'
        os.symlink('loop', os.path.join(e.dir, 'loop'))
        expect_error(copy(os.path.join(e.dir, 'loop', 'x'), b'x'), 40, '')
    # The host going away mid-copy leaves nothing behind.
    c2 = e.client()
    r = c2.request('COPY_BEGIN', [('PATH', dest_dir + '/gone'), ('SIZE', 100)])
    c2.send('COPY_DATA', [('DATA', b'x' * 50)], mid=r['id'])
    c2.close()
    time.sleep(0.5)
    assert sorted(os.listdir(dest_dir)) == ['sub'], os.listdir(dest_dir)


def case_kvp(e):
    c = e.client()
    r = c.request('KVP_SET', [('POOL', 2), ('KEY', 'from-host'), ('VALUE', 'hello guest ✓')])
    assert r['flags'] == F_REPLY, r
    # The guest reads the host's pair with `keel-agent kvp get`.
    p = e.guest_kvp('get', 'from-host')
    assert p.returncode == 0 and p.stdout == 'hello guest ✓\n', p
    # A pair set in the guest is seen by the host.
    assert e.guest_kvp('set', 'from-guest', 'hello host').returncode == 0
    r = c.request('KVP_GET', [('POOL', 1), ('KEY', 'from-guest')])
    assert get(r, 'VALUE') == 'hello host', r
    r = c.request_all('KVP_LIST', [('POOL', 1)])
    assert get_all(r[-1], 'KEY') == ['from-guest'], r
    # Limits as Hyper-V: key 512 bytes and value 2048, their NULs included.
    assert c.request('KVP_SET', [('POOL', 2), ('KEY', 'k' * 511), ('VALUE', 'v' * 2047)])['flags'] == F_REPLY
    p = e.guest_kvp('get', 'k' * 511)
    assert p.stdout == 'v' * 2047 + '\n', p
    p = e.guest_kvp('set', 'k' * 512, 'v')
    assert p.returncode == 2 and 'at most 511 bytes' in p.stderr, p
    # Many pairs: the list spans frames (MORE), every pair once.
    for i in range(60):
        c.request('KVP_SET', [('POOL', 2), ('KEY', 'key%02d' % i), ('VALUE', 'x' * 2000)])
    replies = c.request_all('KVP_LIST', [('POOL', 2)])
    assert len(replies) > 1 and all(r['flags'] & F_MORE for r in replies[:-1]), len(replies)
    keys = [k for r in replies for k in get_all(r, 'KEY')]
    assert len(keys) == 62 and len(set(keys)) == 62, keys
    # Delete, then a get is an error; the guest's delete likewise.
    assert c.request('KVP_DELETE', [('POOL', 2), ('KEY', 'key05')])['flags'] == F_REPLY
    expect_error(c.request('KVP_GET', [('POOL', 2), ('KEY', 'key05')]), 2, "no key 'key05'")
    assert e.guest_kvp('delete', 'from-guest').returncode == 0
    assert e.guest_kvp('get', 'from-guest', 'guest').returncode == 1
    # The guest's facts.
    facts = {}
    for r in c.request_all('KVP_LIST', [('POOL', 0)]):
        facts.update(zip(get_all(r, 'KEY'), get_all(r, 'VALUE')))
    assert facts['OSKernelVersion'] == os.uname().release, facts
    assert facts['IntegrationServicesVersion'] == c.agent_version, facts
    assert facts['FullyQualifiedDomainName'].startswith(socket.gethostname().split('.')[0]), facts
    os_name = ''
    for line in open('/etc/os-release'):
        if line.startswith('NAME='):
            os_name = line.split('=', 1)[1].strip().strip('"')
    assert facts['OSName'] == os_name, facts
    ifaces = [k for k in facts if k.startswith('NetworkInterface.')]
    for k in ifaces:
        assert facts[k].startswith('mac='), facts[k]
    r = c.request('KVP_GET', [('POOL', 0), ('KEY', 'OSKernelVersion')])
    assert get(r, 'VALUE') == os.uname().release, r
    # A pool record a guest program wrote badly (a value that is not UTF-8): a get is an
    # error and the connection goes on (the reply could not be built and it was closed).
    with open(os.path.join(e.state, 'kvp_guest'), 'ab') as f:
        f.write(b'bad'.ljust(512, b'\0') + b'\xff\xfe'.ljust(2048, b'\0'))
    expect_error(c.request('KVP_GET', [('POOL', 1), ('KEY', 'bad')]), 84, 'not UTF-8')
    assert c.request('PING')['flags'] == F_REPLY


def case_disabled(e):
    c = e.client()
    assert c.services == 0x7f & ~(1 << 4) & ~(1 << 5), c.services
    expect_error(c.request('EXEC', [('ARG', 'true')]), 95, 'exec service is disabled')
    expect_error(c.request('COPY_BEGIN', [('PATH', '/tmp/x'), ('SIZE', 1)]), 95,
                 'copy service is disabled')
    assert c.request('PING')['flags'] == F_REPLY


FREEZE_DIR = tempfile.mkdtemp(prefix='keel-agent-freeze-')


def case_freeze(e):
    """Freeze and thaw through a test build's made-up mounts (--test-mountinfo: a mount is
    block-backed when FREEZE_DIR/sys-dev-block/MAJ:MIN exists, and "frozen" while it holds
    .keel-test-frozen)."""
    d = FREEZE_DIR
    os.makedirs(os.path.join(d, 'sys-dev-block'))
    for dev in ('7:1', '7:2'):
        open(os.path.join(d, 'sys-dev-block', dev), 'w').close()
    root, data, tmp = (os.path.join(d, n) for n in ('root', 'data', 'tmp'))
    for p in (root, data, tmp):
        os.mkdir(p)
    with open(os.path.join(d, 'mountinfo'), 'w') as f:
        # '/' from /dev/root (a kernel booted without an initramfs: no such device node),
        # a data disk, a tmpfs (0:N, no block device).
        f.write('20 1 7:1 / %s rw - ext4 /dev/root rw\n' % root)
        f.write('21 20 7:2 / %s rw - xfs /dev/vdb rw\n' % data)
        f.write('22 20 0:40 / %s rw - tmpfs tmpfs rw\n' % tmp)
    mark = lambda p: os.path.join(p, '.keel-test-frozen')
    record = os.path.join(e.state, 'frozen')
    c = e.client()
    r = c.request('FREEZE', [('TIMEOUT_MS', 10000)])
    assert r['flags'] == F_REPLY and get(r, 'COUNT') == 2, r
    assert get_all(r, 'PATH') == [data, root], r
    assert os.path.exists(mark(root)) and os.path.exists(mark(data)) and os.path.exists(record)
    # A thaw on another connection (the one that froze is gone, say): what was recorded.
    c2 = e.client()
    expect_error(c2.request('FREEZE'), 16, 'freeze is under way')
    r = c2.request('THAW')
    assert get(r, 'COUNT') == 2 and not os.path.exists(mark(root)), r
    assert not os.path.exists(record)
    assert get(c.request('THAW'), 'COUNT') == 0
    # The administrator froze '/': the freeze fails there, thaws only what it froze (the
    # data disk, frozen first), and no thaw (on any connection) ends the administrator's.
    open(mark(root), 'w').close()
    expect_error(c.request('FREEZE'), 16, "cannot freeze '%s'" % root)
    assert os.path.exists(mark(root)) and not os.path.exists(mark(data))
    assert get(e.client().request('THAW'), 'COUNT') == 0
    assert get(c.request('THAW'), 'COUNT') == 0
    assert os.path.exists(mark(root)), 'the administrator\'s freeze was thawed'
    os.unlink(mark(root))
    # The freezing connection closes (a worker restarted under a production checkpoint,
    # after its pause): thawed then, and a thaw on a new connection says 2 were frozen
    # until then (not thawed by the deadline).
    c3 = e.client()
    assert get(c3.request('FREEZE'), 'COUNT') == 2
    c3.close()
    for _ in range(50):
        try:
            if open(record).read().startswith('closed'):
                break
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    assert not os.path.exists(mark(root)) and not os.path.exists(mark(data))
    assert get(e.client().request('THAW'), 'COUNT') == 2
    assert not os.path.exists(record)
    # The freezing connection's end and a thaw on a new connection at the same moment (a
    # production checkpoint's restart: the transport reset ends the one as keeld's thaw
    # arrives on the other): exactly one of them thaws, and the thaw always reports both
    # file systems frozen until then, whichever came first.
    for i in range(40):
        c4 = e.client()
        c5 = e.client()
        assert get(c4.request('FREEZE', [('TIMEOUT_MS', 10000)]), 'COUNT') == 2
        if i % 2:
            c4.close()
        mid = c5.send('THAW')
        if not i % 2:
            time.sleep(0.0005 * (i % 7))
            c4.close()
        r = c5.recv()
        assert r['id'] == mid and get(r, 'COUNT') == 2, (i, r)
        assert not os.path.exists(mark(root)) and not os.path.exists(mark(data)), i
        c5.close()
        for _ in range(100):
            if not os.path.exists(record):
                break
            time.sleep(0.02)
        assert not os.path.exists(record), (i, open(record).read())
    # The deadline: the watchdog thaws by itself, and the thaw after says nothing was
    # still frozen (COUNT 0: the host does not call that checkpoint application-consistent).
    r = c.request('FREEZE', [('TIMEOUT_MS', 300)])
    assert get(r, 'COUNT') == 2, r
    time.sleep(0.8)
    assert not os.path.exists(mark(root)) and not os.path.exists(mark(data))
    assert get(c.request('THAW'), 'COUNT') == 0
    assert not os.path.exists(record)
    # A deadline that passes in the middle of the freeze (60 mounts, 2 ms): whatever the
    # reply, nothing stays frozen, also what was frozen after the watchdog's thaw.
    many = [os.path.join(d, 'm%d' % i) for i in range(60)]
    with open(os.path.join(d, 'mountinfo'), 'w') as f:
        for i, p in enumerate(many):
            os.mkdir(p)
            open(os.path.join(d, 'sys-dev-block', '8:%d' % i), 'w').close()
            f.write('%d 1 8:%d / %s rw - ext4 /dev/vd%d rw\n' % (30 + i, i, p, i))
    for k in range(15):
        r = c.request('FREEZE', [('TIMEOUT_MS', 2)])
        time.sleep(0.3)
        left = [p for p in many if os.path.exists(mark(p))]
        assert not left, (k, r, len(left))
        get(c.request('THAW'), 'COUNT')
        assert not os.path.exists(record), (k, open(record).read())


CASES = {'hello': case_hello, 'errors': case_errors, 'exec': case_exec, 'copy': case_copy,
         'kvp': case_kvp, 'disabled': case_disabled, 'freeze': case_freeze}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--agent', required=True)
    ap.add_argument('case', choices=sorted(CASES))
    args = ap.parse_args()
    extra = {'disabled': ['--disable', 'exec,copy'],
             'freeze': ['--test-mountinfo', os.path.join(FREEZE_DIR, 'mountinfo')]}
    e = Env(args.agent, extra.get(args.case, []))
    try:
        CASES[args.case](e)
    finally:
        e.stop()
        shutil.rmtree(FREEZE_DIR, ignore_errors=True)
    print('agent-%s: ok' % args.case)


if __name__ == '__main__':
    sys.exit(main())
