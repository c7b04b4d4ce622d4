#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the resp example over raw sockets:
python3 resp_client.py PORT (pipeline|malformed|querylimit LIMIT|compare OTHER_PORT CONNS|
                             keyspace|incr CLIENTS EACH KEYS NAME|connect CONNS).
Prints 'ok' and exits 0 on success; says what went wrong otherwise."""
import socket
import sys
import threading

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

    # Integer replies at the ends of a 64-bit integer, and past them an error, as in Redis.
    s.sendall(command("SET", "n", "-9223372036854775807") + command("DECR", "n") +
              command("DECR", "n") + command("SET", "n", 9223372036854775806) +
              command("INCR", "n") + command("INCR", "n") + command("INCRBY", "zero", 0))
    want = (b"+OK\r\n:-9223372036854775808\r\n"
            b"-ERR increment or decrement would overflow\r\n"
            b"+OK\r\n:9223372036854775807\r\n"
            b"-ERR increment or decrement would overflow\r\n:0\r\n")
    got = recv_exactly(s, len(want))
    if got != want:
        sys.exit(f"64-bit integers: want {want!r}, got {got!r}")

    # The parser keeps arguments' buffers between requests (a few, of up to 128 bytes): long
    # and short arguments, many and few, one after another, each come back as they were sent.
    keys = [b"k%d:" % i + b"x" * (i * 37 % 300) for i in range(20)]
    values = [k[::-1] + b"\r\n" for k in keys]
    s.sendall(command("MSET", *[x for kv in zip(keys, values) for x in kv]) +
              b"".join(command("GET", k) for k in reversed(keys)) +
              command("MGET", keys[3], "k", keys[17]) + b"GET k\r\n" +
              command("SET", "k", values[9]) + command("GET", "k"))
    want = (b"+OK\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(v), v) for v in reversed(values)) +
            b"*3\r\n$%d\r\n%s\r\n$-1\r\n$%d\r\n%s\r\n" % (len(values[3]), values[3],
                                                           len(values[17]), values[17]) +
            b"$-1\r\n+OK\r\n$%d\r\n%s\r\n" % (len(values[9]), values[9]))
    got = recv_exactly(s, len(want))
    if got != want:
        sys.exit(f"arguments of many lengths: want {want[:200]!r}..., got {got[:200]!r}...")

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
    (b"*+1\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*999999999999999999\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*9223372036854775808\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$-\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$+3\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$3 \r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
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


def parse_replies(data):
    """Splits RESP2 replies (simple, error, integer, bulk, array of those) into a list."""
    out, at = [], 0

    def one():
        nonlocal at
        eol = data.index(b"\r\n", at)
        kind, line = data[at:at + 1], data[at + 1:eol]
        at = eol + 2
        if kind in (b"+", b"-", b":"):
            return kind + line
        n = int(line)
        if kind == b"$":
            if n < 0:
                return None
            if at + n + 2 > len(data):
                raise IndexError("incomplete bulk")
            body = data[at:at + n]
            at += n + 2
            return body
        if kind == b"*":
            return None if n < 0 else [one() for _ in range(n)]
        sys.exit(f"not a reply at byte {at}: {data[at - 20:at + 20]!r}")

    while at < len(data):
        out.append(one())
    return out


def mixed_script(c):
    """A pipelined mix of every kind of command, its keys on every shard (the test checks
    that k:0 ... k:39 have several owners); connection c's values differ from the others'."""
    keys = [f"k:{i}" for i in range(40)]
    req = command("FLUSHALL") if c == 0 else b""
    req += b"".join(command("SET", k, f"v{c}:{k}") for k in keys)
    req += b"".join(command("GET", k) for k in keys)
    pairs = []
    for i in range(0, 40, 2):
        pairs += [keys[i], f"m{c}:{i}"]
    pairs += [keys[3], "twice", keys[3], "last wins"]  # a key twice: the last value stays
    req += command("MSET", *pairs)
    req += command("LPUSH", f"l:{c}", "a", "b", "c") + command("LRANGE", f"l:{c}", 0, -1)
    req += command("MGET", *keys, "missing", f"l:{c}", keys[0])  # a list: nil, as in Redis
    req += command("GET", f"l:{c}") + command("INCR", keys[1])   # WRONGTYPE, not an integer
    req += b"".join(command("INCR", f"n:{i}") for i in range(10))
    req += command("INCRBY", "n:0", 41) + command("DECR", "n:1") + command("DECRBY", "n:2", 5)
    req += command("APPEND", keys[5], "+") + command("STRLEN", keys[5])
    req += command("EXISTS", keys[2], keys[2], keys[3], "missing", f"l:{c}")
    req += command("DEL", keys[0], keys[1], keys[0], "missing", keys[9])  # duplicates
    req += command("UNLINK", keys[10], keys[11]) + command("EXISTS", keys[0], keys[10])
    # (No TTL of a key that expires: its seconds could differ between the two servers.)
    req += command("EXPIRE", keys[6], 100) + command("EXPIRE", keys[6], 100, "NX")
    req += command("EXPIRE", "missing", 100) + command("TTL", keys[7])
    req += command("TTL", "missing") + command("SET", keys[7], "x", "NX")
    req += command("SET", keys[7], "y", "XX", "GET") + command("GET", keys[7])
    req += command("RPUSH", f"l:{c}", "z") + command("RPOP", f"l:{c}") + command("LLEN", f"l:{c}")
    req += command("KEYS", keys[12]) + command("KEYS", "nothing*") + command("DBSIZE")
    req += command("MSET", keys[1], "odd", keys[2])  # wrong number of arguments
    req += command("MGET") + command("DEL") + command("GET", keys[1], "extra")
    req += command("NOSUCH", keys[1], "x") + command("FLUSHALL", "BADARG") + command("DBSIZE")
    req += command("PING") + command("PING", "hi") + command("ECHO", b"\r\n\x00")
    req += command("SELECT", 0) + command("SELECT", 1) + command("CONFIG", "GET", "databases")
    req += b"GET k:3\r\nEXISTS k:3 k:4 k:38 k:39\r\nMGET k:4 k:5 k:38\r\n"  # inline
    req += command("MSET", keys[20], "a", keys[21], "b") + command("MGET", keys[20], keys[21])
    return req + command("QUIT")


def compare(other_port, conns):
    """The same script on this server and on the one at other_port (--threads 1): the same
    bytes back. Connection c runs after c - 1 ended, on reactor c % N of a round-robin group."""
    global port
    transcripts = []
    for p in (port, other_port):
        port = p
        got = b""
        for c in range(conns):
            s = connect()
            s.sendall(mixed_script(c))
            got += read_all(s)  # QUIT: +OK, then the close
            s.close()
        transcripts.append(got)
    mine, theirs = transcripts
    if mine != theirs:
        at = next((i for i in range(min(len(mine), len(theirs))) if mine[i] != theirs[i]),
                  min(len(mine), len(theirs)))
        sys.exit(f"replies differ at byte {at} of {len(theirs)}: "
                 f"one reactor said {theirs[at - 40:at + 60]!r}, "
                 f"this one {mine[at - 40:at + 60]!r}")
    replies = parse_replies(mine)
    if len(replies) < 200 or replies[-1] != b"+OK":
        sys.exit(f"the transcript is short or did not end in QUIT's +OK: {mine[-200:]!r}")


def keyspace():
    """MSET, MGET, KEYS, DBSIZE, DEL, FLUSHALL over keys on every shard, across connections."""
    a, b = connect(), connect()  # on two reactors (handed out in turn)

    def ask(s, *args):
        s.sendall(command(*args))
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                sys.exit(f"{args[0]}: the server closed the connection")
            data += chunk
            try:
                replies = parse_replies(data)
            except (ValueError, IndexError):
                continue  # incomplete
            if len(replies) == 1:
                return replies[0]

    n = 200
    keys = [f"key:{i}" for i in range(n)]
    pairs = []
    for k in keys:
        pairs += [k, "value of " + k]
    if ask(a, "MSET", *pairs) != b"+OK":
        sys.exit("MSET of 200 keys: not +OK")
    got = ask(b, "MGET", *keys, "missing")
    want = [("value of " + k).encode() for k in keys] + [None]
    if got != want:
        sys.exit(f"MGET after MSET: want {want[:3]}..., got {got[:3]}... ({len(got)} values)")
    for pattern, match in (("*", keys), ("key:1*", [k for k in keys if k.startswith("key:1")]),
                           ("key:?", keys[:10]), ("none*", [])):
        got = ask(b, "KEYS", pattern)
        if sorted(got) != sorted(k.encode() for k in match):
            sys.exit(f"KEYS {pattern}: want {len(match)} keys, got {len(got)}: {sorted(got)[:5]}")
    if ask(a, "DBSIZE") != b":200":
        sys.exit("DBSIZE after MSET: not 200")
    if ask(b, "DEL", *keys[:100], "missing") != b":100":
        sys.exit("DEL of 100 keys: not 100")
    if ask(a, "EXISTS", *keys[90:110]) != b":10":
        sys.exit("EXISTS across DEL: not 10")
    if ask(a, "DBSIZE") != b":100":
        sys.exit("DBSIZE after DEL: not 100")
    if ask(b, "FLUSHALL") != b"+OK":
        sys.exit("FLUSHALL: not +OK")
    if ask(a, "DBSIZE") != b":0" or ask(a, "KEYS", "*") != []:
        sys.exit("after FLUSHALL: keys are left")
    if ask(a, "MGET", *keys[:4]) != [None] * 4:
        sys.exit("after FLUSHALL: MGET still finds values")
    if ask(b, "SET", "key:1", "x") != b"+OK" or ask(a, "FLUSHDB") != b"+OK" or \
            ask(b, "DBSIZE") != b":0":
        sys.exit("FLUSHDB left keys")
    a.close()
    b.close()


def incr(clients, each, nkeys, name):
    """`clients` connections at once, each `each` INCRs pipelined 100 at a time over `nkeys`
    keys (NAME:0, NAME:1 ..., new ones) in turn: every key ends at its exact total, and its replies are 1 ... total, once
    each (no INCR lost, none seen twice)."""
    replies = [[] for _ in range(clients)]
    failed = []
    start = threading.Barrier(clients)

    def run(c):
        try:
            s = connect()
            start.wait()
            for at in range(0, each, 100):
                batch = range(at, min(at + 100, each))
                s.sendall(b"".join(command("INCR", f"{name}:{i % nkeys}") for i in batch))
                want = len(batch)
                data = b""
                while data.count(b"\r\n") < want:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        raise RuntimeError("closed")
                    data += chunk
                for i, r in zip(batch, parse_replies(data)):
                    replies[c].append((i % nkeys, int(r[1:])))
            s.close()
        except Exception as e:  # noqa: BLE001 (reported below)
            failed.append(f"client {c}: {e!r}")

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        sys.exit("; ".join(failed))
    total = clients * each // nkeys
    for k in range(nkeys):
        seen = sorted(n for r in replies for key, n in r if key == k)
        if seen != list(range(1, total + 1)):
            sys.exit(f"{name}:{k}: replies are not 1 ... {total} once each "
                     f"({len(seen)} replies, last {seen[-3:]})")
    s = connect()
    s.sendall(b"".join(command("GET", f"{name}:{k}") for k in range(nkeys)))
    want = b"".join(b"$%d\r\n%d\r\n" % (len(str(total)), total) for _ in range(nkeys))
    got = recv_exactly(s, len(want))
    if got != want:
        sys.exit(f"totals: want {want!r}, got {got!r}")
    s.close()


def connect_many(conns):
    """`conns` connections open at once, each answered (a PING) before the next opens."""
    held = []
    for _ in range(conns):
        s = connect()
        ping(s, f"connection {len(held)}")
        held.append(s)
    for s in held:
        s.close()


if mode == "pipeline":
    pipeline()
elif mode == "malformed":
    malformed()
elif mode == "querylimit":
    querylimit(int(sys.argv[3]))
elif mode == "compare":
    compare(int(sys.argv[3]), int(sys.argv[4]))
elif mode == "keyspace":
    keyspace()
elif mode == "incr":
    incr(int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
elif mode == "connect":
    connect_many(int(sys.argv[3]))
else:
    sys.exit(f"unknown mode {mode}")
print("ok")
