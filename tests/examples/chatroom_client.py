#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the chatroom example: python3 chatroom_client.py PORT (basic|slow|order [N]).
Prints 'ok' and exits 0 on success; says what went wrong otherwise."""
import socket
import sys
import threading
import time

port = int(sys.argv[1])
mode = sys.argv[2]


class Client:
    def __init__(self, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(30)
        self.s.connect(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def send(self, line):
        self.s.sendall(line.encode() + b"\n")

    def line(self):
        got = self.f.readline()
        if not got:
            sys.exit("unexpected end of stream")
        return got.decode(errors="replace").rstrip("\n")

    def expect(self, want, what=""):
        got = self.line()
        if got != want:
            sys.exit(f"{what}: want {want!r}, got {got!r}")

    def expect_start(self, prefix, what=""):
        got = self.line()
        if not got.startswith(prefix):
            sys.exit(f"{what}: want a line starting {prefix!r}, got {got!r}")
        return got

    def close(self):
        self.f.close()  # the socket closes only when its file object is closed too
        self.s.close()


def basic():
    a = Client()
    welcome = a.expect_start("* welcome to the room, guest", "welcome")
    a_default = welcome.split(", ")[1].split(";")[0]  # the default nick: guestN
    b = Client()
    b.expect_start("* welcome to the room, guest", "welcome b")
    a.expect_start("* guest", "join notice")
    c = Client()
    c.expect_start("* welcome", "welcome c")
    a.expect_start("* guest", "join notice for c")
    b.expect_start("* guest", "join notice for c")

    a.send(f"hello from the default nick")
    b.expect(f"<{a_default}> hello from the default nick", "default nick broadcast")
    c.expect(f"<{a_default}> hello from the default nick", "default nick broadcast")

    a.send("/nick alice")
    a.expect("* you are now alice", "nick")
    b.expect(f"* {a_default} is now alice", "nick notice")
    c.expect(f"* {a_default} is now alice", "nick notice")
    b.send("/nick bob")
    b.expect("* you are now bob")
    a.expect_start("* guest", "nick notice b")
    c.expect_start("* guest", "nick notice b")
    c.send("/nick alice")
    c.expect("* the nick alice is taken", "taken nick")
    c.send("/nick not valid!")
    c.expect_start("* usage: /nick", "bad nick")
    c.send("/nick carol")
    c.expect("* you are now carol")
    a.line(), b.line()

    # Broadcast reaches everyone else, not the sender: the sender's next line is its own reply.
    a.send("hi all")
    b.expect("<alice> hi all")
    c.expect("<alice> hi all")
    a.send("/who")
    who = a.line()
    if who != "* 3 here: alice bob carol":
        sys.exit(f"/who (and no echo of our own line): got {who!r}")

    a.send("/frobnicate now")
    a.expect("* unknown command /frobnicate; try /help", "unknown command")
    a.send("/help")
    a.expect_start("* commands:", "help")
    a.line()

    b.send("/quit")
    b.expect("* bye", "quit")
    if b.f.readline() != b"":
        sys.exit("the connection stays open after /quit")
    b.close()
    a.expect("* bob left", "leave notice")
    c.expect("* bob left", "leave notice")

    c.close()  # a plain disconnect is a leave too
    a.expect_start("* carol left", "disconnect notice")
    a.close()


def slow():
    # max-queue is 65536 (the test starts the server so); the slow one never reads.
    observer = Client()
    observer.expect_start("* welcome")
    slow_one = Client(rcvbuf=4096)
    observer.expect_start("* guest")
    slow_one.send("/nick slow")
    observer.expect("* guest2 is now slow", "slow's nick")
    flooder = Client()
    flooder.expect_start("* welcome")
    observer.expect_start("* guest")
    flooder.send("/nick flood")
    flooder.expect("* you are now flood")
    observer.expect_start("* guest3 is now flood")

    payload = "x" * 1000
    dropped = False
    sent = 0
    # Batches of 40 lines (40 KB, below the limit, so that the observer, which reads each
    # batch before the next is sent, is never over it), at most 500 of them (20 MB).
    for batch in range(500):
        flooder.s.sendall(b"".join(f"{batch}.{k} {payload}\n".encode() for k in range(40)))
        sent += 40
        for k in range(40):
            got = observer.line()
            if got.startswith("* slow was dropped"):
                dropped = True
                got = observer.line()
            if got != f"<flood> {batch}.{k} {payload}":
                sys.exit(f"observer lost a line: want {batch}.{k}, got {got[:60]!r}")
        if dropped:
            break
    if not dropped:
        sys.exit(f"the slow reader was not dropped after {sent} lines")
    # The flooder hears of it too.
    flooder.s.settimeout(10)
    flooder.expect_start("* slow was dropped", "flooder hears the drop")

    # The room goes on.
    flooder.send("/who")
    flooder.expect("* 2 here: guest1 flood", "who after drop")
    flooder.send("still here")
    observer.expect("<flood> still here", "the room goes on")

    # The slow one, reading at last, finds the farewell at the end of what it was sent.
    slow_one.s.settimeout(20)
    data = b""
    while True:
        chunk = slow_one.s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    if b"* you were dropped: you read too slowly" not in data[-200:]:
        sys.exit(f"no farewell for the slow one; its stream ends {data[-120:]!r}")
    print(f"dropped after {sent} lines; the slow one got {len(data)} bytes", file=sys.stderr)


def order():
    # N members (on every reactor of a --threads server, which hands connections round
    # robin); two of them send 200 lines each, interleaved. Every member gets every line of
    # the others, each sender's in the order sent, and all in one and the same order.
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    members = []
    for i in range(n):
        c = Client()
        c.expect_start("* welcome", f"welcome {i}")
        for k, m in enumerate(members):
            m.expect_start("* guest", f"member {k}: the join of {i}")
        members.append(c)
    senders = 2
    per = 200
    for k in range(per):
        for j in range(senders):
            members[j].send(f"line {j}.{k}")
    seen = []
    for i, m in enumerate(members):
        want = per * (senders - 1 if i < senders else senders)
        got = []
        for _ in range(want):
            line = m.line()
            if "> line " not in line:
                sys.exit(f"member {i}: want a line of a sender, got {line!r}")
            got.append(line.split("> ", 1)[1])
        for j in range(senders):
            if j == i:
                continue
            mine = [g for g in got if g.startswith(f"line {j}.")]
            if mine != [f"line {j}.{k}" for k in range(per)]:
                sys.exit(f"member {i}: sender {j}'s lines out of order or missing")
        seen.append(got)
    everyone = seen[senders]
    for i in range(n):
        theirs = [g for g in everyone if not g.startswith(f"line {i}.")] if i < senders else everyone
        if seen[i] != theirs:
            sys.exit(f"member {i} saw the lines in another order than member {senders}")
    for m in members:
        m.close()


if mode == "basic":
    basic()
elif mode == "slow":
    slow()
elif mode == "order":
    order()
else:
    sys.exit(f"unknown mode {mode}")
print("ok")
