#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the resp example over raw sockets:
python3 resp_client.py PORT (pipeline|malformed|querylimit LIMIT).
Prints 'ok' and exits 0 on success; says what went wrong otherwise."""
import socket
import sys

port = int(sys.argv[1])
mode = sys.argv[2]


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_all(s):
    data = b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            return data
        data += chunk


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            sys.exit(f"end of stream after {len(data)} of {n} bytes: {data[-100:]!r}")
        data += chunk
    return data


def pipeline():
    s = connect()
    # Many commands in one write, multibulk and inline mixed, and replies in order.
    n = 3000
    req = b"".join(command("SET", f"key:{i}", f"value {i}\r\n\x00") for i in range(n))
    req += b"".join(b"GET key:%d\r\n" % i for i in range(n))  # inline
    req += command("INCR", "counter") * 100
    req += b"PING\r\n" + command("ECHO", b"\r\n\x00") + b"*0\r\n\r\n" + command("DBSIZE")
    s.sendall(req)
    want = b"+OK\r\n" * n
    want += b"".join(b"$%d\r\n%s\r\n" % (len(f"value {i}\r\n\x00"), f"value {i}\r\n\x00".encode())
                     for i in range(n))
    want += b"".join(b":%d\r\n" % i for i in range(1, 101))
    want += b"+PONG\r\n$3\r\n\r\n\x00\r\n" + b":%d\r\n" % (n + 1)
    got = recv_exactly(s, len(want))
    if got != want:
        at = next(i for i in range(len(want)) if got[i] != want[i])
        sys.exit(f"pipelined replies differ at byte {at}: want {want[at:at+60]!r}, "
                 f"got {got[at:at+60]!r}")

    # A request cut into one-byte writes is the same request.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in command("SET", "split", b"a\r\nb"):
        s.send(bytes([b]))
    s.sendall(command("GET", "split"))
    want = b"+OK\r\n$4\r\na\r\nb\r\n"
    got = recv_exactly(s, len(want))
    if got != want:
        sys.exit(f"byte-by-byte request: want {want!r}, got {got!r}")

    # A 3 MB bulk, larger than the channel's frame limit, in one write, then more requests.
    big = bytes(range(256)) * (3 * 4096)
    s.sendall(command("SET", "big", big) + command("STRLEN", "big") + command("GET", "big"))
    want = b"+OK\r\n:%d\r\n$%d\r\n" % (len(big), len(big)) + big + b"\r\n"
    got = recv_exactly(s, len(want))
    if got != want:
        sys.exit("the 3 MB value came back different")

    # Inline with quotes, as redis-cli's parser splits them.
    s.sendall(b'SET "quoted key" "a\\r\\nb\\x00c"\r\nGET "quoted key"\r\nEXISTS \'quoted key\'\r\n')
    want = b"+OK\r\n$6\r\na\r\nb\x00c\r\n:1\r\n"
    got = recv_exactly(s, len(want))
    if got != want:
        sys.exit(f"inline quoting: want {want!r}, got {got!r}")

    s.sendall(command("QUIT"))
    rest = read_all(s)
    if rest != b"+OK\r\n":
        sys.exit(f"QUIT: want +OK and a close, got {rest!r}")


MALFORMED = [
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*-\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*99999999999\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$536870913\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$99999999999999999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
    (b"*1\r\n$4\r\nPINGXY", b"-ERR Protocol error: expected CRLF after bulk data\r\n"),
    (b"*2\r\n$3\r\nGETab$1\r\nk\r\n", b"-ERR Protocol error: expected CRLF after bulk data\r\n"),
    (b'SET "unbalanced\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"x" * 70000 + b"\r\n", b"-ERR Protocol error: too big inline request\r\n"),
    (b"*1\r\n$" + b"1" * 70000 + b"\r\n", b"-ERR Protocol error: too big bulk count string\r\n"),
]


def malformed():
    for req, want in MALFORMED:
        s = connect()
        # A good request first: replies before the bad one still come.
        s.sendall(command("PING") + req)
        got = read_all(s)  # the server closes after its error reply
        if got != b"+PONG\r\n" + want:
            sys.exit(f"{req[:40]!r}: want {want!r} and a close, got {got[:200]!r}")
        s.close()
    # A huge declared bulk that never comes holds no memory for it; a close ends it.
    s = connect()
    s.sendall(b"*1\r\n$536870912\r\nabc")
    s.close()
    # And the server still serves.
    s = connect()
    s.sendall(command("PING"))
    if recv_exactly(s, 7) != b"+PONG\r\n":
        sys.exit("the server no longer answers")
    s.close()


def send_until_closed(s, data):
    """Sends data in 64 KiB writes until it is all sent or the server closes."""
    try:
        for at in range(0, len(data), 1 << 16):
            s.sendall(data[at:at + (1 << 16)])
    except (BrokenPipeError, ConnectionResetError):
        pass


def closed_without_reply(s, what):
    """The server closes s (an end of stream or a reset) without a byte of reply."""
    s.settimeout(10)
    try:
        got = s.recv(1 << 16)
    except ConnectionResetError:
        got = b""
    except socket.timeout:
        sys.exit(f"{what}: want a close, the connection is still open after 10 s")
    if got:
        sys.exit(f"{what}: want no reply and a close, got {got[:100]!r}")
    s.close()


def ping(s, what):
    s.sendall(command("PING"))
    got = recv_exactly(s, 7)
    if got != b"+PONG\r\n":
        sys.exit(f"{what}: PING got {got!r}")


def querylimit(limit):
    # A client that stays connected, and is served between the others.
    other = connect()
    ping(other, "before")

    # Arguments of exactly `limit` bytes (3 + 1 + the value): served.
    s = connect()
    value = b"v" * (limit - 4)
    s.sendall(command("SET", "k", value) + command("STRLEN", "k"))
    want = b"+OK\r\n:%d\r\n" % len(value)
    got = recv_exactly(s, len(want))
    if got != want:
        sys.exit(f"at the limit: want {want!r}, got {got[:100]!r}")
    s.close()

    # One byte more: no reply, and the connection is closed.
    s = connect()
    send_until_closed(s, command("SET", "k", value + b"v"))
    closed_without_reply(s, "one byte past the limit")
    ping(other, "after one byte past the limit")

    # Several bulks, each under the limit, together over it: the arguments read count too.
    s = connect()
    half = b"h" * (limit // 2 + 1)
    send_until_closed(s, command("MSET", "a", half, "b", half))
    closed_without_reply(s, "two bulks past the limit")
    ping(other, "after two bulks")

    # A bulk declared at proto-max-bulk-len (512 MB), streamed: closed once the bytes that
    # came pass the limit, long before the bulk would end.
    s = connect()
    s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$536870912\r\n")
    send_until_closed(s, b"x" * (2 * limit))
    closed_without_reply(s, "a 512 MB bulk streamed")
    ping(other, "after the streamed bulk")

    # The value set at the limit is still there, whole.
    other.sendall(command("STRLEN", "k") + command("EXISTS", "a", "b", "big"))
    want = b":%d\r\n:0\r\n" % len(value)
    got = recv_exactly(other, len(want))
    if got != want:
        sys.exit(f"at the end: want {want!r}, got {got!r}")
    other.close()


if mode == "pipeline":
    pipeline()
elif mode == "malformed":
    malformed()
elif mode == "querylimit":
    querylimit(int(sys.argv[3]))
else:
    sys.exit(f"unknown mode {mode}")
print("ok")
