#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile peers for the example servers (test_hostile.cpp):
python3 hostile_client.py [--tls [--ca FILE]] MODE ARGS.

  flood PROTO PORT SECONDS       one connection pipelines requests for SECONDS and never reads;
                                 halfway, a second connection must get its answer (the probe)
  flood-verify PROTO PORT R S    R rounds: pipeline for S seconds without reading, then read
                                 every reply: byte for byte what was asked (echo, resp, smtp)
  probe PROTO PORT               one ordinary request and its answer
  noops PORT N                   smtp: N "NOOP" in one send (then QUIT): N 250s in order, 221
  posts PORT N                   http: N pipelined "POST /echo" with a 1-byte body, in one send
  trickle-http PORT              http --header-timeout 1 --body-timeout 1: a head (or a body)
                                 one byte per 100 ms, or a head in two pieces and then nothing,
                                 gets 408 and the close; heads sent slowly within the limit are
                                 served
  trickle-smtp PORT              smtp --command-timeout 1 --data-timeout 1: the same with 421
  sigterm PROTO PORT N READY GO  http (GET /four.bin) or resp (GET big): N clients, each with its
                                 first bytes, then READY is created; the test sends SIGTERM and
                                 creates GO; every response must then be complete (over TLS:
                                 and followed by close_notify)
  cut-http PORT PATH READY PAUSE GET PATH, wait (MSG_PEEK) for its first byte, create READY,
                                 read nothing for PAUSE seconds, then read: a reset, never a
                                 clean end of stream before Content-Length bytes
  wide-data PORT MAILDIR N       smtp: a message with a DATA line of N bytes is stored as sent
  big-value PORT N               resp: SET of an N-byte value, then GET gives it back whole
  chat4 PORT BYTES               chatroom: four members send BYTES of 100-byte lines each at full
                                 speed while reading; each must get every line of the other three
  resp-abuse PORT                resp: arguments of many lengths and counts pipelined 5,000 in one
                                 send, a request trickled a byte at a time while others are served,
                                 and connections reset before, at and amid a 1 MiB reply: every
                                 reply right, and a PING answered after
  resets PORT N                  http: N connections GET /four.bin and reset (SO_LINGER 0) at
                                 points of the response (before it, after its first bytes, after
                                 1 MiB; with --tls also in the middle of the ClientHello); then
                                 a probe must be served
  not-tls PROTO PORT             with --tls (the server's port is TLS): a plaintext request, random
                                 bytes and a bad handshake record, each on a plain socket, get
                                 nothing or TLS alerts and the close; then a probe is served
  handshake-stall PROTO PORT     with --tls, against --tls-handshake-timeout 1: a connection that
                                 sends nothing and one that sends half a ClientHello are closed
                                 (within 8 s: below the default 10 s, so the option's effect is
                                 what is seen); one whose handshake was done before either is
                                 still served after it

PROTO is echo, chatroom, resp, http (serving index.html, one.bin: 1 MiB, four.bin: 4 MiB) or
smtp. Every socket is to 127.0.0.1 and every wait is bounded.

With --tls every connection a mode makes is TLS (Python's ssl module), verified against the CA
of --ca FILE (the name checked: 127.0.0.1), or not verified without it, except the plain
sockets of not-tls, handshake-stall and resets' half ClientHellos. test_hostile.cpp runs flood,
probe, resets, trickle-http, sigterm (http) and cut-http so. A TLS stream ends cleanly only
with the server's close_notify ('eof'); a FIN without it is 'truncated' (see tls_eof()), which
no mode takes for an end. Prints 'key=value' lines for the
test to show, then 'ok' on success and exits 0; otherwise says what was sent and what came
back, and exits 1.
"""
import os
import random
import select
import socket
import ssl
import struct
import sys
import threading
import time

HOST = "127.0.0.1"
INDEX = b"<!DOCTYPE html>\n<h1>hostile</h1>\n"  # test_hostile.cpp writes it as www/index.html


def fail(why):
    sys.stdout.write("FAILED: %s\n" % why)
    sys.stdout.flush()
    os._exit(1)  # threads may be blocked in a socket call


def check(cond, why):
    if not cond:
        fail(why)


def say(key, value):
    sys.stdout.write("%s=%s\n" % (key, value))
    sys.stdout.flush()


# --tls: the client context every connection is wrapped in (None: plaintext). See main().
TLS = None
# What a non-blocking send or recv raises when it must wait: a TLS socket may also need to
# read in order to write, or get a record that holds no data (a session ticket).
WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


def tls_context(ca):
    if ca:
        return ssl.create_default_context(cafile=ca)  # and the name: 127.0.0.1
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(port, timeout=10.0, rcvbuf=None, plain=False):
    """A connection to the server; over TLS with --tls (the handshake done), unless `plain`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((HOST, port))
    if TLS is not None and not plain:
        # suppress_ragged_eofs=False: a FIN without close_notify is an error, not b"".
        s = TLS.wrap_socket(s, server_hostname=HOST, suppress_ragged_eofs=False)
    return s


def readable(s, timeout):
    """Whether recv() on s has something (or the end) within `timeout`: over TLS, plaintext
    already decrypted counts though the socket has nothing."""
    if isinstance(s, ssl.SSLSocket) and s.pending():
        return True
    r, _, _ = select.select([s], [], [], timeout)
    return bool(r)


def client_hello():
    """The bytes of a real ClientHello (for a peer that sends part of it)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_context(None).wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_eof(s, e):
    """What an ssl.SSLEOFError on `s` was: 'reset' or 'truncated' (a FIN without close_notify).
    Python 3.11 reports both so (SSL_read_ex fails either way); a FIN comes with OpenSSL's
    reason UNEXPECTED_EOF_WHILE_READING, a reset with none, and the kernel has the connection
    closed (TCP_CLOSE, 7; after a FIN it waits for ours: TCP_CLOSE_WAIT)."""
    state = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return "reset" if e.reason is None and state == 7 else "truncated"


def only_alerts(data):
    """Whether `data` is nothing but whole TLS alert records (content type 21)."""
    while data:
        if len(data) < 5 or data[0] != 0x15:
            return False
        n = 5 + struct.unpack("!H", data[3:5])[0]
        if len(data) < n:
            return False
        data = data[n:]
    return True


def resp_command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class reader:
    """Buffered reads off a socket with an overall deadline; every short read says what came."""

    def __init__(self, s, what, limit=10.0):
        self.s, self.what, self.buf = s, what, b""
        self.deadline = time.monotonic() + limit

    def _more(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            fail("%s: timed out; have %r" % (self.what, self.buf[-200:]))
        self.s.settimeout(left)
        try:
            chunk = self.s.recv(1 << 20)
        except socket.timeout:
            fail("%s: timed out; have %r" % (self.what, self.buf[-200:]))
        except OSError as e:
            fail("%s: %s; have %r" % (self.what, e, self.buf[-200:]))
        if not chunk:
            fail("%s: end of stream; have %r" % (self.what, self.buf[-200:]))
        self.buf += chunk

    def until(self, sep):
        while True:
            at = self.buf.find(sep)
            if at >= 0:
                out, self.buf = self.buf[: at + len(sep)], self.buf[at + len(sep):]
                return out
            self._more()

    def exactly(self, n):
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self, sep=b"\n"):
        return self.until(sep)


def http_response(r, what):
    """(status, headers dict, body) of one Content-Length response."""
    head = r.until(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    check(lines[0].startswith(b"HTTP/1.1 "), "%s: status line %r" % (what, lines[0]))
    status = int(lines[0].split(b" ")[1])
    headers = {}
    for h in lines[1:]:
        name, _, value = h.partition(b":")
        headers[name.strip().lower()] = value.strip()
    n = int(headers.get(b"content-length", b"0"))
    return status, headers, r.exactly(n)


def at_end(s, limit=3.0):
    """How the connection ends within `limit`: 'eof', 'reset', or 'open' (plus bytes seen);
    over TLS 'eof' is the server's close_notify, and a FIN without it is 'truncated'."""
    deadline = time.monotonic() + limit
    extra = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "open", extra
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return "open", extra
        except ConnectionResetError:
            return "reset", extra
        except ssl.SSLEOFError as e:
            return tls_eof(s, e), extra
        except ssl.SSLError as e:
            return "TLS error (%s)" % e, extra
        if not chunk:
            return "eof", extra
        extra += chunk


# ---------------------------------------------------------------------------------------------
# What each protocol is flooded with, and its probe

FLOOD = {
    "echo": b"x" * 99 + b"\n",
    "chatroom": b"/help\n",
    "resp": resp_command("PING"),
    "http": b"GET /one.bin HTTP/1.1\r\nHost: hostile\r\n\r\n",
    "smtp": b"NOOP\r\n",
}


def probe(proto, port, limit=5.0):
    """One ordinary request on a fresh connection; fails unless its answer comes in `limit`."""
    start = time.monotonic()
    s = connect(port, timeout=limit)
    exchange(proto, s, reader(s, "probe (%s)" % proto, limit))
    s.close()
    return time.monotonic() - start


def exchange(proto, s, r):
    """One ordinary request on `s` (read through `r`), and its answer."""
    if proto == "echo":
        s.sendall(b"probe line\n")
        got = r.line()
        check(got == b"probe line\n", "echo probe: got %r" % got)
    elif proto == "chatroom":
        got = r.line()
        check(got.startswith(b"* welcome"), "chatroom probe: welcome %r" % got)
        s.sendall(b"/help\n")
        got = r.line()
        while got.startswith(b"* ") and not got.startswith(b"* commands:"):
            got = r.line()  # the room's notices may come first
        check(got.startswith(b"* commands:"), "chatroom probe: /help gave %r" % got)
    elif proto == "resp":
        s.sendall(resp_command("PING"))
        got = r.line()
        check(got == b"+PONG\r\n", "resp probe: got %r" % got)
    elif proto == "http":
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: probe\r\n\r\n")
        status, _, body = http_response(r, "http probe")
        check(status == 200 and body == INDEX, "http probe: %d %r" % (status, body[:80]))
    elif proto == "smtp":
        got = r.line()
        check(got.startswith(b"220 "), "smtp probe: greeting %r" % got)
        s.sendall(b"NOOP\r\n")
        got = r.line()
        check(got.startswith(b"250 "), "smtp probe: NOOP gave %r" % got)
    else:
        fail("unknown protocol %s" % proto)


def resp_get_unit(port):
    """resp-get's flood: GETs of 16 keys of 64 KiB each, SET first (on a --threads server,
    keys of every shard: GETs that run on other reactors while the session reads on)."""
    s = connect(port, timeout=20)
    r = reader(s, "resp-get setup", 20)
    value = b"v" * 65536
    for i in range(16):
        s.sendall(resp_command("SET", "big:%d" % i, value))
        got = r.line()
        check(got == b"+OK\r\n", "SET big:%d: %r" % (i, got))
    s.close()
    return b"".join(resp_command("GET", "big:%d" % i) for i in range(16))


def flood(proto, port, seconds):
    # resp-get: a resp server flooded with GETs of large values (probed as resp).
    unit = resp_get_unit(port) if proto == "resp-get" else FLOOD[proto]
    if proto == "resp-get":
        proto = "resp"
    batch = unit * max(1, 65536 // len(unit))
    s = connect(port)
    s.setblocking(False)
    sent = [0]
    error = [None]
    done = threading.Event()

    def pump():
        end = time.monotonic() + seconds
        view = memoryview(batch)
        at = 0
        while time.monotonic() < end:
            _, w, _ = select.select([], [s], [], 0.05)
            if not w:
                continue
            try:
                n = s.send(view[at:])  # over TLS: retried with the same bytes, as it must be
            except WOULD_BLOCK:
                continue
            except OSError as e:
                error[0] = e
                break
            sent[0] += n
            at = (at + n) % len(batch)
        done.set()

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    time.sleep(seconds / 2)
    check(not done.is_set(), "the flood ended early: %s after %d bytes" % (error[0], sent[0]))
    took = probe(proto, port)
    say("probe_ms", int(took * 1000))
    t.join(seconds + 5)
    say("flood_sent", sent[0])
    say("flood_requests", sent[0] // len(unit))
    # What came back to the flood: the server may have closed it (chatroom drops a slow
    # member), which is its policy, not an error; anything else than a reset or the end is.
    # Read for 0.3 s at most: http would go on answering the GETs still buffered for minutes.
    pending = 0
    s.setblocking(True)
    end = time.monotonic() + 0.3
    try:
        while time.monotonic() < end:
            s.settimeout(max(0.01, end - time.monotonic()))
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            pending += len(chunk)
    except (socket.timeout, BlockingIOError, ConnectionResetError):
        pass
    say("flood_error", error[0].errno if error[0] is not None else 0)
    say("flood_received_at_end", pending)
    s.close()


# What a request of flood-verify is answered with, exactly.
REPLY = {
    "echo": (b"e\n", b"e\n"),
    "resp": (resp_command("PING"), b"+PONG\r\n"),
    "smtp": (b"NOOP\r\n", b"250 2.0.0 OK\r\n"),
}


def flood_verify(proto, port, rounds, seconds):
    """Rounds of: pipeline requests in bursts of random sizes for `seconds` without reading,
    then read every reply: each must be exactly what the protocol answers, byte for byte
    (replies queued while a send waited for room must not be garbled)."""
    import random
    request, reply = REPLY[proto]
    for round_ in range(rounds):
        rng = random.Random(round_)
        s = connect(port, timeout=20)
        if proto == "smtp":
            greeting = reader(s, "greeting", 5).line()
            check(greeting.startswith(b"220 "), "greeting %r" % greeting)
        s.setblocking(False)
        sent = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            _, w, _ = select.select([], [s], [], 0.05)
            if not w:
                continue
            try:
                sent += s.send(request * rng.choice([1, 1, 2, 3, 50, 500, 5000]))
            except BlockingIOError:
                pass
        s.setblocking(True)
        s.settimeout(20)
        rest = (-sent) % len(request)
        if rest:
            s.sendall(request[len(request) - rest:])
        count = (sent + rest) // len(request)
        want = reply * count
        got = bytearray()
        how = "complete"
        try:
            while len(got) < len(want):
                chunk = s.recv(1 << 20)
                if not chunk:
                    how = "end of stream"
                    break
                got += chunk
        except OSError as e:
            how = repr(e)
        s.close()
        if got != want:
            at = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                      min(len(got), len(want)))
            fail("round %d: %d requests (%r), %d bytes back of %d (%s); first difference at "
                 "byte %d: got %r, want %r" %
                 (round_ + 1, count, request, len(got), len(want), how, at,
                  bytes(got[max(0, at - 16):at + 24]), want[max(0, at - 16):at + 24]))
        say("round_%d_requests" % (round_ + 1), count)


# ---------------------------------------------------------------------------------------------
# Deep pipelines


def noops(port, n):
    s = connect(port, timeout=20)
    r = reader(s, "smtp noops", 30)
    greeting = r.line()
    check(greeting.startswith(b"220 "), "greeting %r" % greeting)
    s.sendall(b"NOOP\r\n" * n + b"QUIT\r\n")  # one send (sendall loops only if it must)
    for i in range(n):
        got = r.line()
        check(got == b"250 2.0.0 OK\r\n", "reply %d of %d to NOOP: %r" % (i + 1, n, got))
    got = r.line()
    check(got.startswith(b"221 "), "after %d NOOPs, QUIT gave %r" % (n, got))
    how, extra = at_end(s)
    check(how == "eof" and not extra, "after 221: %s %r" % (how, extra[:100]))
    say("replies", n)


def posts(port, n):
    s = connect(port, timeout=20)
    r = reader(s, "http posts", 30)
    body = lambda i: bytes([ord("a") + i % 26])
    req = b"".join(b"POST /echo HTTP/1.1\r\nHost: hostile\r\nContent-Length: 1\r\n\r\n" + body(i)
                   for i in range(n))
    s.sendall(req)
    for i in range(n):
        status, _, got = http_response(r, "response %d of %d" % (i + 1, n))
        check(status == 200 and got == body(i),
              "response %d of %d: %d %r, want 200 %r" % (i + 1, n, status, got, body(i)))
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: hostile\r\nConnection: close\r\n\r\n")
    status, _, got = http_response(r, "the GET after the posts")
    check(status == 200 and got == INDEX, "the GET after the posts: %d %r" % (status, got[:80]))
    say("responses", n)


# ---------------------------------------------------------------------------------------------
# Trickling peers


def trickle(s, data, interval, stop):
    """Sends `data` a byte every `interval` until stop(buffer so far) holds; returns
    (bytes sent, what came back, seconds from the first byte to the answer)."""
    got = b""
    start = time.monotonic()
    sent = 0
    s.setblocking(False)
    for i in range(len(data)):
        try:
            s.send(data[i:i + 1])  # over TLS: a record of one byte
            sent += 1
        except OSError as e:
            return sent, got, time.monotonic() - start, e
        end = time.monotonic() + interval
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            if not readable(s, left):
                break
            try:
                chunk = s.recv(65536)
            except WOULD_BLOCK:
                continue  # a TLS record with no data for us (a session ticket), or part of one
            except OSError as e:
                return sent, got, time.monotonic() - start, e
            if not chunk:
                return sent, got, time.monotonic() - start, "eof"
            got += chunk
            if stop(got):
                return sent, got, time.monotonic() - start, None
    return sent, got, time.monotonic() - start, "all sent"


def in_pieces(s, data, pieces, interval):
    step = -(-len(data) // pieces)
    for i in range(0, len(data), step):
        s.sendall(data[i:i + step])
        if i + step < len(data):
            time.sleep(interval)


def trickle_http(port):
    """Four connections at once, each on a deadline of its own (the case takes as long as the
    longest): a trickled head, a head in two pieces, slow heads, a trickled body."""

    def trickled_head():
        # A head that never ends in time: one byte per 100 ms, ~ 20 s worth.
        s = connect(port)
        head = b"GET /index.html HTTP/1.1\r\nHost: hostile\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n"
        sent, got, took, why = trickle(s, head, 0.1, lambda b: b"\r\n\r\n" in b and
                                       len(b) >= b.find(b"\r\n\r\n") + 4 + _length(b))
        say("trickle_bytes_sent", sent)
        say("trickle_answer_ms", int(took * 1000))
        check(got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"),
              "a head trickled (%d bytes sent of %r...) got %r (%s) after %.2f s" %
              (sent, head[:30], got[:200], why, took))
        check(took < 5.0, "408 came after %.2f s" % took)
        check(b"\r\nConnection: close\r\n" in got, "408 without Connection: close: %r" % got)
        s.setblocking(True)
        how, extra = at_end(s)
        check(how in ("eof", "reset") and not extra, "after the 408: %s %r" % (how, extra[:100]))
        say("after_408", how)
        s.close()

    def head_in_two_pieces():
        # A head in two pieces, then nothing: 408 all the same. (On io_uring the second piece
        # once cancelled the head's deadline for good, and the connection was kept.)
        s = connect(port)
        s.sendall(b"GET /index.html HTTP/1.1\r\n")
        time.sleep(0.1)
        s.sendall(b"Host: hostile\r\n")
        status, headers, _ = http_response(reader(s, "a head in two pieces, then nothing", 5),
                                           "a head in two pieces, then nothing")
        check(status == 408 and headers.get(b"connection") == b"close",
              "a head in two pieces, then nothing: %d %r" % (status, headers))
        how, extra = at_end(s)
        check(how in ("eof", "reset") and not extra, "after that 408: %s %r" % (how, extra[:100]))
        say("two_pieces", "408, %s" % how)
        s.close()

    def slow_heads():
        # Heads sent slowly but each within the limit: served, twice on one connection, the second
        # started more than 1 s after the first byte of the first (the limit is per head).
        s = connect(port)
        r = reader(s, "slow heads", 10)
        start = time.monotonic()
        for i in range(2):
            in_pieces(s, b"GET /index.html HTTP/1.1\r\nHost: hostile\r\n\r\n", 7, 0.1)
            status, _, body = http_response(r, "slow head %d" % (i + 1))
            check(status == 200 and body == INDEX, "slow head %d: %d %r" % (i + 1, status, body))
        say("slow_heads_ms", int((time.monotonic() - start) * 1000))
        check(time.monotonic() - start > 1.0, "the slow heads were not slow")
        s.close()

    def trickled_body():
        # A body trickled past --body-timeout 1 (the test starts the server so): 408, the close.
        s = connect(port)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: hostile\r\nContent-Length: 100\r\n\r\n")
        sent, got, took, why = trickle(s, b"b" * 100, 0.1, lambda b: b"\r\n\r\n" in b and
                                       len(b) >= b.find(b"\r\n\r\n") + 4 + _length(b))
        say("body_trickle_bytes_sent", sent)
        say("body_trickle_answer_ms", int(took * 1000))
        check(got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"),
              "a body trickled (%d of 100 bytes sent) got %r (%s) after %.2f s" %
              (sent, got[:200], why, took))
        check(took < 5.0, "408 came after %.2f s" % took)
        s.setblocking(True)
        how, extra = at_end(s)
        check(how in ("eof", "reset") and not extra, "after the 408: %s %r" % (how, extra[:100]))
        say("after_body_408", how)
        s.close()

    run_together([trickled_head, head_in_two_pieces, slow_heads, trickled_body], 30)


def run_together(fns, limit):
    """Runs each of `fns` on a thread of its own; fails unless all are done within `limit`
    (a check that fails in one ends the process: fail())."""
    threads = [threading.Thread(target=f, daemon=True) for f in fns]
    for t in threads:
        t.start()
    deadline = time.monotonic() + limit
    for f, t in zip(fns, threads):
        t.join(max(0.0, deadline - time.monotonic()))
        check(not t.is_alive(), "%s: not done within %.0f s" % (f.__name__, limit))


def _length(b):
    head = b[: b.find(b"\r\n\r\n")]
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def trickle_smtp(port):
    s = connect(port)
    r = reader(s, "smtp greeting", 5)
    greeting = r.line()
    check(greeting.startswith(b"220 "), "greeting %r" % greeting)
    command = b"HELO " + b"h" * 200 + b"\r\n"
    sent, got, took, why = trickle(s, command, 0.1, lambda b: b"\r\n" in b)
    say("trickle_bytes_sent", sent)
    say("trickle_answer_ms", int(took * 1000))
    check(got.startswith(b"421 4.4.2 ") and b"timeout exceeded" in got,
          "a command trickled (%d bytes sent of %r...) got %r (%s) after %.2f s" %
          (sent, command[:20], got[:200], why, took))
    check(took < 5.0, "421 came after %.2f s" % took)
    s.setblocking(True)
    how, extra = at_end(s)
    check(how in ("eof", "reset") and not extra, "after the 421: %s %r" % (how, extra[:100]))
    say("after_421", how)
    s.close()

    s = connect(port)
    r = reader(s, "slow commands", 10)
    check(r.line().startswith(b"220 "), "greeting")
    start = time.monotonic()
    for verb, want in [(b"NOOP", b"250 "), (b"EHLO slow.example", b"250-"), (b"NOOP", b"250 ")]:
        in_pieces(s, verb + b"\r\n", 6, 0.1)
        got = r.line()
        check(got.startswith(want), "%r sent slowly: got %r" % (verb, got))
        while got.startswith(b"250-"):
            got = r.line()
    check(time.monotonic() - start > 1.0, "the slow commands were not slow")
    s.sendall(b"QUIT\r\n")
    check(r.line().startswith(b"221 "), "QUIT")
    s.close()

    # A DATA line trickled past --data-timeout 1 (the test starts the server so): 421.
    s = connect(port)
    r = reader(s, "smtp data trickle", 10)
    check(r.line().startswith(b"220 "), "greeting")
    s.sendall(b"HELO slow.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
              b"DATA\r\n")
    for want in (b"250 ", b"250 ", b"250 ", b"354 "):
        got = r.line()
        check(got.startswith(want), "before the trickled DATA: want %r, got %r" % (want, got))
    sent, got, took, why = trickle(s, b"Subject: slow\r\n" + b"d" * 200 + b"\r\n.\r\n", 0.1,
                                   lambda b: b"\r\n" in b)
    say("data_trickle_bytes_sent", sent)
    say("data_trickle_answer_ms", int(took * 1000))
    check(got.startswith(b"421 4.4.2 ") and b"timeout exceeded" in got,
          "a DATA line trickled (%d bytes sent) got %r (%s) after %.2f s" %
          (sent, got[:200], why, took))
    check(took < 5.0, "421 came after %.2f s" % took)
    s.setblocking(True)
    how, extra = at_end(s)
    check(how in ("eof", "reset") and not extra, "after the 421: %s %r" % (how, extra[:100]))
    say("after_data_421", how)
    s.close()


def wide_data(port, maildir, n):
    """One DATA line of n bytes (far over 1,000): 250, and the file holds it byte for byte."""
    s = connect(port, timeout=20)
    r = reader(s, "wide DATA", 30)
    check(r.line().startswith(b"220 "), "greeting")
    s.sendall(b"HELO wide.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
              b"DATA\r\n")
    for want in (b"250 ", b"250 ", b"250 ", b"354 "):
        got = r.line()
        check(got.startswith(want), "before DATA: want %r, got %r" % (want, got))
    line = (b"0123456789abcdef" * (n // 16 + 1))[:n]
    message = b"Subject: wide\r\n\r\n" + line + b"\r\n.." + line[:5000] + b"\r\n"
    s.sendall(message + b".\r\n")
    got = r.line()
    check(got.startswith(b"250 "), "a DATA line of %d bytes: %r" % (n, got))
    s.sendall(b"QUIT\r\n")
    check(r.line().startswith(b"221 "), "QUIT")
    files = os.listdir(os.path.join(maildir, "new"))
    check(len(files) == 1, "files in new/: %s" % files)
    with open(os.path.join(maildir, "new", files[0]), "rb") as f:
        stored = f.read()
    want = message.replace(b"\r\n..", b"\r\n.")
    check(stored == want, "the stored message differs: %d bytes, want %d" %
          (len(stored), len(want)))
    say("line_bytes", n)


# ---------------------------------------------------------------------------------------------
# SIGTERM with responses in flight


BIG = 4 << 20
# four.bin, and the resp value: bytes 0..250 over and over (test_hostile.cpp writes the same).
PATTERN = (bytes(range(251)) * (BIG // 251 + 1))[:BIG]


def wait_for_file(path, limit):
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            fail("%s did not appear within %.0f s" % (path, limit))
        time.sleep(0.005)


def sigterm(proto, port, n, ready, go):
    if proto == "http":
        request = b"GET /four.bin HTTP/1.1\r\nHost: hostile\r\n\r\n"
    else:
        # The value is set first, on its own connection.
        s = connect(port)
        s.sendall(resp_command("SET", "big", PATTERN))
        got = reader(s, "SET big", 10).line()
        check(got == b"+OK\r\n", "SET big: %r" % got)
        s.close()
        request = resp_command("GET", "big")
    clients = []
    for i in range(n):
        s = connect(port, timeout=20, rcvbuf=32768)
        s.sendall(request)
        clients.append(s)
    readers = []
    for i, s in enumerate(clients):
        r = reader(s, "client %d" % i, 20)
        r._more()  # its first bytes
        readers.append(r)
    first = [len(r.buf) for r in readers]
    open(ready, "w").close()
    wait_for_file(go, 10)
    complete = 0
    ends = {}
    for i, r in enumerate(readers):
        if proto == "http":
            status, headers, body = http_response(r, "client %d after SIGTERM" % i)
            check(status == 200, "client %d: status %d" % (i, status))
            check(len(body) == BIG, "client %d: %d bytes of %d" % (i, len(body), BIG))
            check(body == PATTERN, "client %d: the body differs" % i)
        else:
            line = r.line(b"\r\n")
            check(line == b"$%d\r\n" % BIG, "client %d: %r" % (i, line))
            body = r.exactly(BIG + 2)
            check(body[-2:] == b"\r\n", "client %d: the bulk does not end in CRLF" % i)
            body = body[:-2]
            check(body == PATTERN, "client %d: the bulk differs" % i)
        complete += 1
        how, extra = at_end(r.s)
        # Over TLS: the server's close_notify, its responses being complete.
        check(how in (("eof",) if TLS is not None else ("eof", "reset")) and not extra and
              not r.buf, "client %d after its response: %s %r" % (i, how, (r.buf + extra)[:100]))
        ends[how] = ends.get(how, 0) + 1
    say("first_bytes_min", min(first))
    say("complete", complete)
    say("ends", ",".join("%s:%d" % kv for kv in sorted(ends.items())))


def cut_http(port, path, ready, pause):
    s = connect(port, timeout=10, rcvbuf=65536)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: hostile\r\n\r\n" % path.encode())
    if TLS is None:
        s.recv(1, socket.MSG_PEEK)  # the response has begun; nothing is read
        got = b""
    else:
        got = s.recv(1)  # a TLS socket cannot peek: its first byte is read
    open(ready, "w").close()
    time.sleep(pause)
    how = None
    s.settimeout(10)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                how = "eof"
                break
            got += chunk
    except ConnectionResetError:
        how = "reset"
    except ssl.SSLEOFError as e:
        how = tls_eof(s, e)
    except socket.timeout:
        how = "timeout"
    head_end = got.find(b"\r\n\r\n")
    length = _length(got) if head_end >= 0 else -1
    body = len(got) - head_end - 4 if head_end >= 0 else -1
    say("end", how)
    say("received", len(got))
    say("body", body)
    say("content_length", length)
    if how == "eof":
        check(head_end >= 0 and body == length,
              "a clean end of stream after %d body bytes of Content-Length %d" % (body, length))
    else:
        check(how == "reset", "the connection neither reset nor ended cleanly: %s after %d bytes" %
              (how, len(got)))
        check(body < length, "a reset after the whole body (%d of %d)" % (body, length))


def resp_abuse(port):
    """resp: what the parser's kept argument buffers and the command hash must survive."""
    # 5,000 requests in one send: keys of 0 to 299 bytes (past the 128 kept), 1 to 9 arguments.
    s = connect(port, timeout=20)
    r = reader(s, "resp pipeline", 30)
    keys = [b"k%d:" % i + b"x" * (i * 37 % 300) for i in range(500)]
    req = b""
    for i in range(5000):
        k = keys[i % len(keys)]
        if i % 3 == 0:
            req += resp_command("SET", k, k[::-1])
        elif i % 3 == 1:
            req += resp_command("GET", k)  # nil, or the value SET gave it
        else:
            req += resp_command("EXISTS", *[keys[(i + j) % len(keys)] for j in range(1 + i % 8)])
    s.sendall(req)
    # The replies, in order: +OK, a nil or the key's value reversed, a count of keys.
    for i in range(5000):
        line = r.line()
        if i % 3 == 0:
            check(line == b"+OK\r\n", "reply %d: %r" % (i, line))
        elif i % 3 == 1:
            if line.startswith(b"$-1"):
                continue
            check(line.startswith(b"$"), "reply %d: %r" % (i, line))
            body = r.exactly(int(line[1:-2]) + 2)
            k = keys[i % len(keys)]
            check(body == k[::-1] + b"\r\n", "reply %d: %r" % (i, body[:60]))
        else:
            check(line.startswith(b":") and 0 <= int(line[1:-2]) <= 1 + i % 8,
                  "reply %d: %r" % (i, line))
    s.close()
    say("pipelined", 5000)

    # A request trickled a byte at a time (40 bytes, 50 ms apart), others served meanwhile.
    t = connect(port, timeout=20)
    trickled = resp_command("SET", "trickled", "slowly")
    for i, b in enumerate(trickled):
        t.send(bytes([b]))
        if i % 10 == 0:
            say("served_while_trickling_ms", int(probe("resp", port) * 1000))
        time.sleep(0.05)
    got = reader(t, "trickled SET", 10).line()
    check(got == b"+OK\r\n", "trickled SET: %r" % got)
    t.close()

    # Resets before, at the first byte of, and amid a 1 MiB reply.
    value = (PATTERN * ((1 << 20) // len(PATTERN) + 1))[:1 << 20]
    s = connect(port, timeout=20)
    s.sendall(resp_command("SET", "mib", value))
    check(reader(s, "SET mib", 10).line() == b"+OK\r\n", "SET mib")
    s.close()
    for point in ("before", "first", "half"):
        for _ in range(4):
            s = connect(port, timeout=10, rcvbuf=32768)
            s.sendall(resp_command("GET", "mib") * 4)
            if point != "before":
                rr = reader(s, "reset %s" % point, 10)
                while len(rr.buf) < (1 if point == "first" else 1 << 19):
                    rr._more()
            linger0_close(s)
    say("resets", 12)
    say("probe_ms", int(probe("resp", port) * 1000))


def big_value(port, n):
    """resp: a value of n bytes that SET accepts comes back whole from GET, as from Redis
    (whose bulk limit is 512 MB), and the connection goes on."""
    value = (PATTERN * (n // len(PATTERN) + 1))[:n]
    s = connect(port, timeout=20)
    r = reader(s, "big value", 30)
    s.sendall(resp_command("SET", "big", value))
    got = r.line()
    check(got == b"+OK\r\n", "SET of %d bytes: %r" % (n, got))
    s.sendall(resp_command("STRLEN", "big"))
    got = r.line()
    check(got == b":%d\r\n" % n, "STRLEN: %r" % got)
    s.sendall(resp_command("GET", "big") + resp_command("PING"))
    # What comes back, however it ends, for the message.
    data = b""
    end = "complete"
    want = b"$%d\r\n" % n
    s.settimeout(10)
    try:
        while len(data) < len(want) + n + 2 + 7:
            chunk = s.recv(1 << 20)
            if not chunk:
                end = "a clean end of stream"
                break
            data += chunk
    except ConnectionResetError:
        end = "a reset"
    except socket.timeout:
        end = "nothing more for 10 s"
    check(data.startswith(want) and len(data) >= len(want) + n + 2,
          "GET of the %d-byte value SET stored: %d bytes came back (%r...), then %s" %
          (n, len(data), data[:20], end))
    check(data[len(want):len(want) + n] == value, "GET: the value differs")
    rest = data[len(want) + n:]
    check(rest == b"\r\n+PONG\r\n", "after the bulk: %r" % rest[:40])
    say("value_bytes", n)


# ---------------------------------------------------------------------------------------------
# chatroom: four members at full speed


def chat4(port, total):
    """Each member runs in a process of its own (so that one member's Python work cannot
    hold up another's reads), sending its lines from one thread and reading from another."""
    names = ["m0", "m1", "m2", "m3"]
    line_body = 100 - len("<m0> 000000 \n")  # the line as the others receive it: 100 bytes
    count = total // 100
    payload = b"".join(b"%06d %s\n" % (k, b"y" * line_body) for k in range(count))
    members = []
    for name in names:
        s = connect(port, timeout=20)
        members.append((name, s, reader(s, "member %s" % name, 20)))
    for name, s, r in members:
        s.sendall(b"/nick %s\n" % name.encode())
    # Each has its nick once it has read "* you are now NAME"; all four are in once /who says.
    for name, s, r in members:
        while r.line() != b"* you are now %s\n" % name.encode():
            pass
    deadline = time.monotonic() + 5
    while True:
        s, r = members[0][1], members[0][2]
        s.sendall(b"/who\n")
        got = r.line()
        while not (got.startswith(b"* ") and b" here:" in got):
            got = r.line()
        if got.startswith(b"* 4 here:") and all(n.encode() in got for n in names):
            break
        check(time.monotonic() < deadline, "the room never had all four: %r" % got)
        time.sleep(0.05)

    go_r, go_w = os.pipe()
    children = []
    for i, (name, s, r) in enumerate(members):
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.read(go_r, 1)
            os.write(res_w, repr(chat_member(name, names, s, r.buf, payload, count)).encode())
            os._exit(0)
        os.close(res_w)
        children.append((pid, res_r))
    start = time.monotonic()
    os.write(go_w, b"go!!")
    results = {}
    for pid, res_r in children:
        data = b""
        while True:
            chunk = os.read(res_r, 65536)
            if not chunk:
                break
            data += chunk
        os.waitpid(pid, 0)
        check(data, "a member's process died")
        res = eval(data.decode())  # a dict this script's child wrote
        results[res["name"]] = res
    say("seconds", "%.2f" % (time.monotonic() - start))
    say("lines_received", ",".join("%s:%d" % (n, results[n]["lines"]) for n in names))
    problems = []
    for n in names:
        res = results[n]
        if res["lines"] != 3 * count or res["problem"]:
            problems.append("%s got %d of %d lines (per sender %s), then %s; its send: %s; "
                            "notices: %s; its stream ended %r" %
                            (n, res["lines"], 3 * count, res["per_sender"], res["problem"],
                             res["send"], res["notices"], res["tail"]))
    check(not problems, " | ".join(problems))
    for name, s, r in members:
        s.close()


def chat_member(name, names, s, already, payload, count):
    """One member: sends `payload` while reading until it has every line of the others (or
    a notice of a drop, or the end). Returns what it saw."""
    res = {"name": name, "send": "not done", "problem": "", "notices": []}

    def send():
        try:
            s.settimeout(20)
            s.sendall(payload)
            res["send"] = "ok"
        except OSError as e:
            res["send"] = repr(e)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    want = {n: 0 for n in names if n != name}
    buf = bytes(already)
    lines = 0
    deadline = time.monotonic() + 20
    s.settimeout(1)
    while lines < 3 * count:
        at = 0
        while True:
            nl = buf.find(b"\n", at)
            if nl < 0:
                break
            line = buf[at:nl]
            at = nl + 1
            if line.startswith(b"<"):
                close = line.find(b">")
                sender_name = line[1:close].decode()
                seq = int(line[close + 2:close + 8])
                if want.get(sender_name) != seq:
                    res["problem"] = "line %d from %s out of order (want %s)" % (
                        seq, sender_name, want.get(sender_name))
                    break
                want[sender_name] += 1
                lines += 1
            elif line.startswith(b"*"):
                res["notices"].append(line[:80].decode(errors="replace"))
                if b"dropped" in line or b" left" in line:
                    res["problem"] = "the notice %r" % line[:80]
        buf = buf[at:]
        if res["problem"]:
            break
        if lines >= 3 * count:
            break
        if time.monotonic() > deadline:
            res["problem"] = "nothing more within 20 s"
            break
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError as e:
            res["problem"] = "recv: %r" % e
            break
        if not chunk:
            res["problem"] = "end of stream"
            break
        buf += chunk
    sender.join(20)
    res["lines"] = lines
    res["per_sender"] = want
    res["tail"] = buf[-60:]
    return res


# ---------------------------------------------------------------------------------------------
# Resets, and peers that do not speak TLS to a TLS port


def linger0_close(s):
    """Closes `s` with a reset: SO_LINGER 0 (over TLS: no close_notify either)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def resets(port, n):
    request = b"GET /four.bin HTTP/1.1\r\nHost: hostile\r\n\r\n"
    points = ["before", "first", "mib"] + (["hello"] if TLS is not None else [])
    done = dict((p, 0) for p in points)
    hello = client_hello()
    for i in range(n):
        point = points[i % len(points)]
        if point == "hello":
            s = connect(port, plain=True)
            s.sendall(hello[:len(hello) // 2])
        else:
            s = connect(port, timeout=10, rcvbuf=32768)
            s.sendall(request)
            if point != "before":
                r = reader(s, "client %d (reset after %s)" % (i, point), 10)
                while len(r.buf) < (1 if point == "first" else 1 << 20):
                    r._more()
        linger0_close(s)
        done[point] += 1
    say("resets", ",".join("%s:%d" % (p, done[p]) for p in points))
    say("probe_ms", int(probe("http", port) * 1000))


def not_tls(proto, port):
    check(TLS is not None, "not-tls needs --tls")
    rng = random.Random(7)
    peers = [
        ("plaintext", FLOOD[proto]),
        ("random", bytes(rng.randrange(256) for _ in range(4096))),
        # A handshake record that holds no ClientHello.
        ("bad_hello", b"\x16\x03\x01\x00\x40" + bytes(rng.randrange(256) for _ in range(64))),
    ]
    for what, data in peers:
        s = connect(port, plain=True)
        try:
            s.sendall(data)
        except ConnectionResetError:
            pass  # refused before all of it was taken
        how, extra = at_end(s, 10)
        check(how in ("eof", "reset"), "%s on the TLS port: the connection is %s" % (what, how))
        check(only_alerts(extra), "%s on the TLS port got %r, not (only) TLS alerts" %
              (what, extra[:100]))
        say(what, how + (" after an alert" if extra else ""))
        s.close()
    say("probe_ms", int(probe(proto, port) * 1000))


def handshake_stall(proto, port):
    check(TLS is not None, "handshake-stall needs --tls")
    done = connect(port)  # its handshake done first, so its deadline is the earliest
    silent = connect(port, plain=True)
    partial = connect(port, plain=True)
    hello = client_hello()
    partial.sendall(hello[:len(hello) // 2])
    start = time.monotonic()
    for what, s in (("silent", silent), ("half_hello", partial)):
        how, extra = at_end(s, 8.0)
        check(how in ("eof", "reset"), "%s: the connection is %s %.1f s after it was made" %
              (what, how, time.monotonic() - start))
        check(only_alerts(extra), "%s got %r, not (only) TLS alerts" % (what, extra[:100]))
        say(what, how)
        say(what + "_closed_ms", int((time.monotonic() - start) * 1000))
        s.close()
    # Their deadlines have passed, so the done one's has: it is served all the same.
    exchange(proto, done, reader(done, "after the handshake deadline (%s)" % proto, 5))
    done.close()
    say("served_after_deadline", 1)


def main():
    global TLS
    argv = sys.argv[1:]
    if argv and argv[0] == "--tls":
        ca = None
        argv = argv[1:]
        if argv and argv[0] == "--ca":
            ca, argv = argv[1], argv[2:]
        TLS = tls_context(ca)
    mode, args = argv[0], argv[1:]
    if mode == "flood":
        flood(args[0], int(args[1]), float(args[2]))
    elif mode == "flood-verify":
        flood_verify(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif mode == "probe":
        say("probe_ms", int(probe(args[0], int(args[1])) * 1000))
    elif mode == "noops":
        noops(int(args[0]), int(args[1]))
    elif mode == "posts":
        posts(int(args[0]), int(args[1]))
    elif mode == "trickle-http":
        trickle_http(int(args[0]))
    elif mode == "trickle-smtp":
        trickle_smtp(int(args[0]))
    elif mode == "sigterm":
        sigterm(args[0], int(args[1]), int(args[2]), args[3], args[4])
    elif mode == "cut-http":
        cut_http(int(args[0]), args[1], args[2], float(args[3]))
    elif mode == "resp-abuse":
        resp_abuse(int(args[0]))
    elif mode == "big-value":
        big_value(int(args[0]), int(args[1]))
    elif mode == "wide-data":
        wide_data(int(args[0]), args[1], int(args[2]))
    elif mode == "chat4":
        chat4(int(args[0]), int(args[1]))
    elif mode == "resets":
        resets(int(args[0]), int(args[1]))
    elif mode == "not-tls":
        not_tls(args[0], int(args[1]))
    elif mode == "handshake-stall":
        handshake_stall(args[0], int(args[1]))
    else:
        fail("unknown mode %s" % mode)
    print("ok")


main()
