# SPDX-License-Identifier: MIT
"""The client side of tests/soak: what each example is sent, and the load phases.

Python 3 standard library only. Every phase talks to 127.0.0.1 only, and every loop in it is
bounded both in count and in time. A phase returns a Tally: what its connections saw, sorted
into the kinds of failure tests/soak tolerates (reset, refused, timeout) and the ones it does
not ("other": an exception that says the client, or the machine, went wrong).
"""
import errno
import selectors
import socket
import struct
import threading
import time

HOST = "127.0.0.1"
BIG_SIZE = 4 << 20  # the http example's large file, and the resp example's large value
SMALL_SIZE = 1 << 10


# ---------------------------------------------------------------------------------------------
# What went wrong, counted


class Tally:
    """Counts of outcomes; `other` keeps the first few messages of unexpected exceptions."""

    KINDS = ("ok", "reset", "refused", "timeout", "other")

    def __init__(self):
        self.n = dict.fromkeys(self.KINDS, 0)
        self.messages = []
        self.extra = {}

    def add(self, kind, message=None):
        self.n[kind] += 1
        if kind == "other" and message and len(self.messages) < 5:
            self.messages.append(message)

    def merge(self, other):
        for k in self.KINDS:
            self.n[k] += other.n[k]
        self.messages += other.messages[: 5 - len(self.messages)]
        return self

    def errors(self):
        return sum(self.n[k] for k in self.KINDS if k != "ok")


RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}
REFUSED_ERRNOS = {errno.ECONNREFUSED}
TIMEOUT_ERRNOS = {errno.ETIMEDOUT}


def classify(exc):
    """The tally kind for an exception a socket call raised."""
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, OSError):
        if exc.errno in RESET_ERRNOS:
            return "reset"
        if exc.errno in REFUSED_ERRNOS:
            return "refused"
        if exc.errno in TIMEOUT_ERRNOS:
            return "timeout"
    return "other"


def errno_kind(code):
    """The tally kind for an errno (SO_ERROR after a non-blocking connect)."""
    if code in RESET_ERRNOS:
        return "reset"
    if code in REFUSED_ERRNOS:
        return "refused"
    if code in TIMEOUT_ERRNOS:
        return "timeout"
    return "other"


def rst_close(s):
    """Closes `s` with a reset (SO_LINGER on, 0 s), not a FIN."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


# ---------------------------------------------------------------------------------------------
# Response counters: how many complete responses a byte stream holds, and whether it ends in
# the middle of one.


class LineCounter:
    """Counts lines (ended by "\\n") for which `want(line)` holds."""

    def __init__(self, want):
        self.want = want
        self.count = 0
        self.tail = b""

    def feed(self, data):
        data = self.tail + data
        *lines, self.tail = data.split(b"\n")
        self.count += sum(1 for line in lines if self.want(line))

    def pending(self):
        return len(self.tail)


class HttpCounter:
    """Counts HTTP/1.1 responses framed by Content-Length (what the http example sends)."""

    def __init__(self):
        self.count = 0
        self.head = b""
        self.skip = -1  # body bytes still to come; -1 while reading a head

    def feed(self, data):
        while data:
            if self.skip < 0:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > 65536:
                        raise ValueError("an HTTP response head over 64 KiB")
                    return
                length = 0
                for line in self.head[:end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                data = self.head[end + 4:]
                self.head = b""
                self.skip = length
            take = min(self.skip, len(data))
            self.skip -= take
            data = data[take:]
            if self.skip == 0:
                self.count += 1
                self.skip = -1

    def pending(self):
        return len(self.head) + max(self.skip, 0)


class RespCounter:
    """Counts RESP2 replies: simple lines, and bulks ("$N\\r\\n" N bytes "\\r\\n")."""

    def __init__(self):
        self.count = 0
        self.buf = b""
        self.skip = 0  # bytes of a bulk (with its "\r\n") still to come

    def feed(self, data):
        while data:
            if self.skip:
                take = min(self.skip, len(data))
                self.skip -= take
                data = data[take:]
                if self.skip == 0:
                    self.count += 1
                continue
            self.buf += data
            data = b""
            end = self.buf.find(b"\r\n")
            if end < 0:
                return
            line, rest = self.buf[:end], self.buf[end + 2:]
            self.buf = b""
            if line.startswith(b"$") and int(line[1:]) >= 0:
                self.skip = int(line[1:]) + 2
            else:
                self.count += 1
            data = rest

    def pending(self):
        return len(self.buf) + self.skip


# ---------------------------------------------------------------------------------------------
# The examples, as far as the soak is concerned.


def resp_command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Proto:
    """What one example is sent in each phase.

    partial:   the start of a request, never finished (churn: then a half-close).
    large:     a full request with a large response (churn: read some, then close or reset).
    large_read: how many bytes of that response to read before closing.
    slow_head: the start of a request a slowloris client sends, then `slow_byte` forever.
    flood:     one request a never-reading client pipelines.
    probe:     a request and a predicate on the bytes read: does the server still answer?
    loop:      the request a SIGTERM-phase client repeats; counter() counts its responses.
    """

    def __init__(self, name, partial, large, large_read, slow_head, flood, probe, loop, counter,
                 slow_byte=b"a"):
        self.name = name
        self.partial = partial
        self.large = large
        self.large_read = large_read
        self.slow_head = slow_head
        self.slow_byte = slow_byte
        self.flood = flood
        self.probe = probe
        self.loop = loop
        self.counter = counter

    def setup(self, port):
        """Run once per server before the phases (resp: SET the large value)."""
        if self.name == "resp":
            value = bytes(range(256)) * (BIG_SIZE // 256)
            with socket.create_connection((HOST, port), timeout=20) as s:
                s.sendall(resp_command("SET", "big", value))
                got = b""
                while not got.endswith(b"\r\n"):
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    got += chunk
                if got != b"+OK\r\n":
                    raise RuntimeError(f"resp: SET big answered {got!r}")


ECHO_LONG = b"x" * (60 << 10) + b"\n"  # under the 64 KiB frame limit
HTTP_BIG = b"GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
HTTP_SMALL = b"GET /small.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
HELP_LAST = b"* any other line is sent to everyone else in the room"

PROTOS = {
    "echo": Proto(
        "echo",
        partial=b"a line without its end",
        large=ECHO_LONG,
        large_read=16 << 10,
        slow_head=b"slow",
        flood=b"flood line 0123456789 abcdefghijklmnopqrstuvwxyz\n",
        probe=(b"probe\n", lambda got: got.endswith(b"probe\n")),
        loop=b"y" * (16 << 10) + b"\n",
        counter=lambda: LineCounter(lambda line: True),
    ),
    "chatroom": Proto(
        "chatroom",
        partial=b"/nick half",
        large=b"hello from the churn\n/who\nsecond line\n/help\n",
        large_read=64,
        slow_head=b"slow",
        flood=b"/help\n",
        probe=(b"/help\n", lambda got: HELP_LAST in got),
        loop=b"/help\n",
        counter=lambda: LineCounter(lambda line: line == HELP_LAST),
    ),
    "resp": Proto(
        "resp",
        partial=b"*2\r\n$3\r\nGET\r\n$3\r\nbi",
        large=resp_command("GET", "big"),
        large_read=64 << 10,
        slow_head=b"*2\r\n$4\r\nECHO\r\n$60000\r\n",  # a bulk, one byte at a time
        flood=b"*1\r\n$4\r\nPING\r\n",
        probe=(b"PING\r\n", lambda got: got == b"+PONG\r\n"),
        loop=resp_command("GET", "big"),
        counter=RespCounter,
    ),
    "http": Proto(
        "http",
        partial=b"GET /big.bin HTTP/1.1\r\nHost: 127.0",
        large=HTTP_BIG,
        large_read=64 << 10,
        slow_head=b"GET /small.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        flood=HTTP_BIG,
        probe=(HTTP_SMALL, lambda got: got.startswith(b"HTTP/1.1 200")
               and got.endswith(b"\r\n\r\n" + b"s" * SMALL_SIZE)),
        loop=HTTP_BIG,
        counter=HttpCounter,
    ),
    "smtp": Proto(
        "smtp",
        partial=b"EHLO soak.exa",
        large=b"EHLO soak.example.org\r\n",
        large_read=64,
        slow_head=b"EHLO ",
        flood=b"NOOP\r\n",
        probe=(b"NOOP\r\n", lambda got: got.startswith(b"220") and b"\r\n250 " in got),
        loop=b"NOOP\r\n",
        counter=lambda: LineCounter(lambda line: line.startswith(b"250 ")),
    ),
}


def make_http_root(root):
    """The http example's --root: a 1 KiB and a 4 MiB file."""
    import os
    with open(os.path.join(root, "small.bin"), "wb") as f:
        f.write(b"s" * SMALL_SIZE)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(bytes(range(256)) * (BIG_SIZE // 256))


# ---------------------------------------------------------------------------------------------
# A fresh client that checks the server still answers.


def probe(proto, port, timeout=5.0):
    """Seconds a fresh connection took to get its answer; None if it did not get one."""
    request, done = proto.probe
    start = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(request)
            got = b""
            while not done(got):
                if time.monotonic() - start > timeout:
                    return None
                chunk = s.recv(65536)
                if not chunk:
                    return None
                got += chunk
                if len(got) > 1 << 20:
                    return None
        return time.monotonic() - start
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# Churn: many short connections, a few hundred at once, each ending in one of three ways.


class _Churner:
    CONNECT, SEND, READ = range(3)

    def __init__(self, proto, port, total, concurrency, limit_s, conn_timeout, stop):
        self.proto, self.port, self.total = proto, port, total
        self.concurrency, self.conn_timeout, self.stop = concurrency, conn_timeout, stop
        self.deadline = time.monotonic() + limit_s
        self.sel = selectors.DefaultSelector()
        self.started = 0
        self.live = {}  # fd -> state dict
        self.tally = Tally()
        self.by_kind = {"rst": 0, "halfclose": 0, "large": 0}
        self.server_reset = {"halfclose": 0, "large": 0}

    def start_one(self):
        i = self.started
        self.started += 1
        kind = ("rst", "halfclose", "large")[i % 3]
        self.by_kind[kind] += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            rc = s.connect_ex((HOST, self.port))
        except OSError as e:
            s.close()
            self.tally.add(classify(e), f"connect: {e!r}")
            return
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.tally.add(errno_kind(rc), f"connect: {errno.errorcode.get(rc, rc)}")
            return
        st = {"s": s, "kind": kind, "step": self.CONNECT, "out": b"", "got": 0,
              "until": time.monotonic() + self.conn_timeout, "i": i}
        self.live[s.fileno()] = st
        self.sel.register(s, selectors.EVENT_WRITE, st)

    def finish(self, st, kind, message=None, rst=False):
        s = st["s"]
        self.live.pop(s.fileno(), None)
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        if rst:
            rst_close(s)
        else:
            s.close()
        self.tally.add(kind, message)

    def connected(self, st):
        s = st["s"]
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.finish(st, errno_kind(err), f"connect: {errno.errorcode.get(err, err)}")
            return
        if st["kind"] == "rst":
            self.finish(st, "ok", rst=True)
            return
        st["out"] = self.proto.partial if st["kind"] == "halfclose" else self.proto.large
        st["step"] = self.SEND
        self.send(st)

    def send(self, st):
        s = st["s"]
        while st["out"]:
            try:
                n = s.send(st["out"])
            except BlockingIOError:
                self.sel.modify(s, selectors.EVENT_WRITE, st)
                return
            st["out"] = st["out"][n:]
        if st["kind"] == "halfclose":
            s.shutdown(socket.SHUT_WR)
        st["step"] = self.READ
        self.sel.modify(s, selectors.EVENT_READ, st)

    def read(self, st):
        s = st["s"]
        for _ in range(8):  # a bounded number of reads per wakeup
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                return
            if not chunk:
                self.finish(st, "ok")
                return
            st["got"] += len(chunk)
            if st["kind"] == "large" and st["got"] >= self.proto.large_read:
                # Mid-response: every other one a plain close (unread data: the kernel resets
                # anyway once the server sends more), the rest an explicit reset.
                self.finish(st, "ok", rst=st["i"] % 2 == 0)
                return

    def run(self):
        while time.monotonic() < self.deadline and not self.stop.is_set():
            while len(self.live) < self.concurrency and self.started < self.total:
                self.start_one()
            if not self.live and self.started >= self.total:
                break
            now = time.monotonic()
            for key, _ in self.sel.select(timeout=0.05):
                st = key.data
                if st["s"].fileno() < 0:
                    continue
                try:
                    if st["step"] == self.CONNECT:
                        self.connected(st)
                    elif st["step"] == self.SEND:
                        self.send(st)
                    else:
                        self.read(st)
                except Exception as e:  # noqa: BLE001 - sorted by classify()
                    kind = classify(e)
                    if kind == "reset" and st["kind"] in self.server_reset:
                        self.server_reset[st["kind"]] += 1
                    self.finish(st, kind, f"churn {st['kind']}: {e!r}")
            if now > min((st["until"] for st in self.live.values()), default=now + 1):
                for st in [st for st in self.live.values() if now > st["until"]]:
                    self.finish(st, "timeout", rst=True)
        for st in list(self.live.values()):  # the phase ran out of time
            self.finish(st, "timeout", rst=True)
        self.sel.close()
        self.tally.extra = {"started": self.started, "by_kind": self.by_kind,
                            "server_reset": self.server_reset}
        return self.tally


def churn(proto, port, total, concurrency, limit_s, stop, conn_timeout=10.0):
    return _Churner(proto, port, total, concurrency, limit_s, conn_timeout, stop).run()


# ---------------------------------------------------------------------------------------------
# Slowloris: connections that send one byte of a request every `interval` seconds, forever.


class Slowloris(threading.Thread):
    def __init__(self, proto, port, count, interval, stop):
        super().__init__(daemon=True, name="slowloris")
        self.proto, self.port, self.count, self.interval = proto, port, count, interval
        self.halt = threading.Event()
        self.stop = stop
        self.tally = Tally()
        self.opened = 0
        self.closed_by_server = 0
        self.sent = 0
        self.held = 0  # still open when halted

    def run(self):
        socks = {}
        try:
            open_until = time.monotonic() + 10
            for i in range(self.count):
                if self.halt.is_set() or self.stop.is_set() or time.monotonic() > open_until:
                    break
                try:
                    s = socket.create_connection((HOST, self.port), timeout=5)
                except Exception as e:  # noqa: BLE001
                    self.tally.add(classify(e), f"slowloris connect: {e!r}")
                    continue
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                socks[s] = 0  # bytes of the request sent so far
                self.opened += 1
            # Bounded: at most an hour's ticks, and stopped by halt long before that.
            for _ in range(int(3600 / self.interval)):
                if self.halt.wait(self.interval) or self.stop.is_set():
                    break
                for s in list(socks):
                    at = socks[s]
                    head = self.proto.slow_head
                    byte = head[at:at + 1] if at < len(head) else self.proto.slow_byte
                    try:
                        while True:  # drain what the server says (a timeout, an error)
                            chunk = s.recv(65536)
                            if not chunk:
                                raise ConnectionResetError("closed by the server")
                    except BlockingIOError:
                        pass
                    except Exception as e:  # noqa: BLE001
                        kind = classify(e)
                        if kind == "reset":
                            self.closed_by_server += 1
                        else:
                            self.tally.add(kind, f"slowloris: {e!r}")
                        del socks[s]
                        s.close()
                        continue
                    try:
                        s.send(byte)
                        socks[s] = at + 1
                        self.sent += 1
                    except BlockingIOError:
                        pass
                    except Exception as e:  # noqa: BLE001
                        kind = classify(e)
                        if kind == "reset":
                            self.closed_by_server += 1
                        else:
                            self.tally.add(kind, f"slowloris: {e!r}")
                        del socks[s]
                        s.close()
        finally:
            self.held = len(socks)
            for s in socks:
                rst_close(s)


# ---------------------------------------------------------------------------------------------
# Never-reading clients: pipeline requests as fast as the server takes them, never read.


def flood(proto, port, count, seconds, stop, before_close=None):
    """Returns (tally, bytes sent, what before_close() returned, called while they still
    send: at the end, or at once if the server stops taking data)."""
    tally = Tally()
    sel = selectors.DefaultSelector()
    socks = []
    batch = proto.flood * max(1, (64 << 10) // len(proto.flood))
    sent = 0
    try:
        for _ in range(count):
            try:
                s = socket.create_connection((HOST, port), timeout=5)
            except Exception as e:  # noqa: BLE001
                tally.add(classify(e), f"flood connect: {e!r}")
                continue
            s.setblocking(False)
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE, [0])  # offset into batch
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stop.is_set() and sel.get_map():
            for key, _ in sel.select(timeout=0.1):
                s, at = key.fileobj, key.data
                try:
                    for _ in range(4):
                        n = s.send(batch[at[0]:] if at[0] else batch)
                        sent += n
                        at[0] = (at[0] + n) % len(batch)
                except BlockingIOError:
                    pass
                except Exception as e:  # noqa: BLE001
                    tally.add(classify(e), f"flood: {e!r}")
                    sel.unregister(s)
        tally.n["ok"] = len(sel.get_map())
        result = before_close() if before_close and not stop.is_set() else None
    finally:
        sel.close()
        for s in socks:
            rst_close(s)
    return tally, sent, result


# ---------------------------------------------------------------------------------------------
# SIGTERM under load: clients that repeat a request and read every response, while the
# server is told to stop. How did each connection end?


class Looper(threading.Thread):
    """`count` clients repeating proto.loop; run() returns when all ended or at `limit_s`."""

    def __init__(self, proto, port, count, limit_s, stop):
        super().__init__(daemon=True, name="sigterm-clients")
        self.proto, self.port, self.count, self.limit_s, self.stop = (
            proto, port, count, limit_s, stop)
        self.tally = Tally()
        self.endings = {"fin": 0, "truncated": 0, "reset": 0, "open": 0}
        self.complete = 0
        self.ready = threading.Event()  # every client has had a response
        self.stopping = threading.Event()  # set once SIGTERM went: no new requests count
        self.opened = 0

    def run(self):
        sel = selectors.DefaultSelector()
        clients = []
        try:
            for _ in range(self.count):
                try:
                    s = socket.create_connection((HOST, self.port), timeout=5)
                except Exception as e:  # noqa: BLE001
                    self.tally.add(classify(e), f"sigterm connect: {e!r}")
                    continue
                s.setblocking(False)
                c = {"s": s, "counter": self.proto.counter(), "asked": 1, "out": self.proto.loop}
                clients.append(c)
                sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
            self.opened = len(clients)
            deadline = time.monotonic() + self.limit_s
            while sel.get_map() and time.monotonic() < deadline and not self.stop.is_set():
                for key, events in sel.select(timeout=0.1):
                    c = key.data
                    s = c["s"]
                    try:
                        if events & selectors.EVENT_WRITE and c["out"]:
                            n = s.send(c["out"])
                            c["out"] = c["out"][n:]
                        if events & selectors.EVENT_READ:
                            for _ in range(16):
                                try:
                                    chunk = s.recv(1 << 18)
                                except BlockingIOError:
                                    break
                                if not chunk:
                                    c["end"] = "truncated" if c["counter"].pending() else "fin"
                                    break
                                c["counter"].feed(chunk)
                            if c["counter"].count >= c["asked"] and not c["out"]:
                                c["asked"] += 1  # the next request, once this one is answered
                                c["out"] = self.proto.loop
                    except BlockingIOError:
                        pass
                    except Exception as e:  # noqa: BLE001
                        kind = classify(e)
                        if kind == "reset":
                            c["end"] = "reset"
                        else:
                            c["end"] = "error"
                            self.tally.add(kind, f"sigterm client: {e!r}")
                    if "end" in c:
                        sel.unregister(s)
                    else:
                        sel.modify(s, selectors.EVENT_READ
                                   | (selectors.EVENT_WRITE if c["out"] else 0), c)
                if not self.ready.is_set() and all(c["counter"].count > 0 or "end" in c
                                                   for c in clients):
                    self.ready.set()
        finally:
            self.ready.set()
            sel.close()
            for c in clients:
                end = c.get("end", "open")
                if end in self.endings:
                    self.endings[end] += 1
                self.complete += c["counter"].count
                rst_close(c["s"])
