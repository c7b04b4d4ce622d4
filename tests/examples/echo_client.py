#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the echo example: python3 echo_client.py PORT. Prints 'ok' and exits 0 on success."""
import socket
import sys
import time

port = int(sys.argv[1])


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s, s.makefile("rb")


def expect(f, want, what):
    got = f.readline()
    if got != want:
        sys.exit(f"{what}: want {want[:80]!r}, got {got[:80]!r}")


# Several connections at once, their lines interleaved.
conns = [connect() for _ in range(5)]
for n in range(20):
    for i, (s, _) in enumerate(conns):
        s.sendall(f"conn {i} line {n}\n".encode())
    for i, (_, f) in enumerate(conns):
        expect(f, f"conn {i} line {n}\n".encode(), f"connection {i}")

# Many lines in one write, read back in order.
s, f = conns[0]
lines = [f"pipelined {k} ".encode() + b"x" * (k % 97) + b"\n" for k in range(2000)]
s.sendall(b"".join(lines))
for k, line in enumerate(lines):
    expect(f, line, f"pipelined line {k}")

# A line sent in pieces, binary bytes in it, and a long line (below the 64 KiB limit).
s, f = conns[1]
for piece in (b"he", b"llo \x00\x01\xff", b" world\n"):
    s.sendall(piece)
    time.sleep(0.02)
expect(f, b"hello \x00\x01\xff world\n", "a line in pieces")
long_line = b"L" * 60000 + b"\n"
s.sendall(long_line)
expect(f, long_line, "a 60000-byte line")

# A clean close: the server closes its side too.
for s, f in conns:
    s.shutdown(socket.SHUT_WR)
    if f.read() != b"":
        sys.exit("data after our close")
    s.close()
print("ok")
