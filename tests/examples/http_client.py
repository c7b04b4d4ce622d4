#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the http example with raw sockets and http.client:
python3 http_client.py PORT ROOT (client|pipeline|malformed|connections N).
ROOT is the served directory, made by test_http.cpp (index.html, blob.bin, notes.txt ...).
Prints 'ok' and exits 0 on success; says what went wrong otherwise."""
import http.client
import os
import socket
import sys

port = int(sys.argv[1])
root = sys.argv[2]
mode = sys.argv[3]


def fail(why):
    sys.stderr.write("FAILED: %s\n" % why)
    sys.exit(1)


def check(cond, why):
    if not cond:
        fail(why)


def content(name):
    with open(os.path.join(root, name), "rb") as f:
        return f.read()


def connect():
    return socket.create_connection(("127.0.0.1", port), timeout=20)


class response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        return self.headers.get(name.lower())


def read_response(f, head_only=False):
    """One response off a buffered socket file: status line, fields, body (Content-Length,
    chunked, or none for HEAD, 1xx, 204, 304). None at a clean end of stream."""
    line = f.readline()
    if not line:
        return None
    check(line.endswith(b"\r\n"), "status line not ended by CRLF: %r" % line)
    version, status, reason = line[:-2].decode().split(" ", 2)
    check(version == "HTTP/1.1", "status line %r" % line)
    headers = {}
    while True:
        h = f.readline()
        check(h.endswith(b"\r\n"), "header line not ended by CRLF: %r" % h)
        if h == b"\r\n":
            break
        name, value = h[:-2].decode().split(":", 1)
        check(name.lower() not in headers, "field %s twice" % name)
        headers[name.lower()] = value.strip()
    status = int(status)
    body = b""
    if head_only or status < 200 or status in (204, 304):
        pass
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int(f.readline()[:-2].split(b";")[0], 16)
            if size == 0:
                check(f.readline() == b"\r\n", "no CRLF after the last chunk")
                break
            body += f.read(size)
            check(f.read(2) == b"\r\n", "no CRLF after a chunk")
    else:
        n = int(headers["content-length"])
        body = f.read(n)
        check(len(body) == n, "body short: %d of %d" % (len(body), n))
    r = response(status, reason, headers, body)
    check(r.header("date") is not None and r.header("date").endswith(" GMT"), "no Date")
    check(r.header("server") == "ringchat-http", "no Server")
    return r


def at_eof(s, f):
    s.settimeout(5)
    try:
        return f.read(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def expect_status(raw, status, closes=True):
    """Sends `raw` on a new connection; the reply must have `status` (and then end the
    connection when `closes`)."""
    s = connect()
    s.sendall(raw)
    f = s.makefile("rb")
    r = read_response(f)
    check(r is not None, "no response to %r" % raw[:80])
    check(r.status == status, "%r: got %d, want %d" % (raw[:80], r.status, status))
    if closes:
        check(r.header("connection") == "close", "%r: no Connection: close" % raw[:80])
        check(at_eof(s, f), "%r: the connection stays open" % raw[:80])
    s.close()
    return r


def request(method, path, headers=(), body=b"", version="HTTP/1.1"):
    out = ("%s %s %s\r\nHost: localhost\r\n" % (method, path, version)).encode()
    for h in headers:
        out += h.encode() + b"\r\n"
    return out + b"\r\n" + body


def chunked(data, size):
    out = b""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


def client():
    """http.client: several requests on one kept-alive connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    for name, ctype in [("index.html", "text/html; charset=utf-8"),
                        ("data.json", "application/json"),
                        ("blob.bin", "application/octet-stream"),
                        ("notes.txt", "text/plain; charset=utf-8")]:
        c.request("GET", "/" + name)
        r = c.getresponse()
        body = r.read()
        check(r.status == 200, "GET /%s: %d" % (name, r.status))
        got = r.getheader("Content-Type")
        check(got == ctype, "GET /%s: type %s" % (name, got))
        check(body == content(name), "GET /%s: body differs" % name)
    c.request("HEAD", "/blob.bin")
    r = c.getresponse()
    check(r.status == 200 and r.read() == b"", "HEAD")
    check(r.getheader("Content-Length") == str(len(content("blob.bin"))), "HEAD length")
    c.request("POST", "/echo", body=b"hello\r\n\r\nworld", headers={"Content-Type": "text/x-test"})
    r = c.getresponse()
    check(r.status == 200 and r.read() == b"hello\r\n\r\nworld", "POST /echo")
    check(r.getheader("Content-Type") == "text/x-test", "echo type")
    c.request("GET", "/nope.html")
    r = c.getresponse()
    check(r.status == 404 and b"404" in r.read(), "404")
    c.request("GET", "/sub")
    r = c.getresponse()
    r.read()
    check(r.status == 301 and r.getheader("Location") == "/sub/", "301 to /sub/")
    c.request("GET", "/sub/")
    r = c.getresponse()
    check(r.status == 200 and r.read() == content("sub/index.html"), "index.html of /sub/")
    c.request("GET", "/a%20file.txt?query=1")
    r = c.getresponse()
    check(r.status == 200 and r.read() == content("a file.txt"), "percent-decoded path")
    c.close()


def pipeline():
    """Many requests in one send; the responses come back complete and in order."""
    blob = content("blob.bin")
    payload = os.urandom(70000)
    reqs = [
        (request("GET", "/index.html"),
         lambda r: r.status == 200 and r.body == content("index.html")),
        (request("HEAD", "/notes.txt"), lambda r: r.status == 200 and r.body == b"" and
         r.header("content-length") == str(len(content("notes.txt")))),
        (request("GET", "/blob.bin"), lambda r: r.status == 200 and r.body == blob),
        (request("GET", "/nope"), lambda r: r.status == 404),
        (request("POST", "/echo", ["Content-Length: %d" % len(payload)], payload),
         lambda r: r.status == 200 and r.body == payload and
         r.header("content-length") == str(len(payload))),
        (request("POST", "/echo", ["Transfer-Encoding: chunked"], chunked(payload, 7000)),
         lambda r: r.status == 200 and r.body == payload and
         r.header("transfer-encoding") == "chunked"),
        (request("GET", "/blob.bin", ["Range: bytes=1000-1999"]),
         lambda r: r.status == 206 and r.body == blob[1000:2000] and
         r.header("content-range") == "bytes 1000-1999/%d" % len(blob)),
        (request("GET", "/blob.bin", ["Range: bytes=-10"]),
         lambda r: r.status == 206 and r.body == blob[-10:]),
        (request("GET", "/blob.bin", ["Range: bytes=%d-" % len(blob)]),
         lambda r: r.status == 416 and r.header("content-range") == "bytes */%d" % len(blob)),
        (request("PUT", "/index.html", ["Content-Length: 3"], b"abc"),
         lambda r: r.status == 405 and r.header("allow") == "GET, HEAD"),
        (request("GET", "/echo"), lambda r: r.status == 405 and r.header("allow") == "POST"),
        (request("GET", "/emptydir/"),
         lambda r: r.status == 200 and b"Index of /emptydir/" in r.body and
         r.header("transfer-encoding") == "chunked"),
        (request("GET", "/%2e%2e/secret.txt"), lambda r: r.status in (403, 404)),
        (request("GET", "/leak"), lambda r: r.status in (403, 404)),
        (request("GET", "/inside"), lambda r: r.status == 200 and r.body == content("index.html")),
    ]
    # 200 small GETs more, past the server's limit of queued files per connection.
    names = ["index.html", "style.css", "notes.txt", "data.json"]
    for i in range(200):
        n = names[i % len(names)]
        reqs.append((request("GET", "/" + n),
                     lambda r, n=n: r.status == 200 and r.body == content(n)))
    reqs.append((request("GET", "/notes.txt", ["Connection: close"]),
                 lambda r: r.status == 200 and r.header("connection") == "close"))
    s = connect()
    s.sendall(b"".join(raw for raw, _ in reqs))
    f = s.makefile("rb")
    for i, (raw, ok) in enumerate(reqs):
        r = read_response(f, head_only=raw.startswith(b"HEAD"))
        check(r is not None, "response %d missing" % i)
        check(ok(r), "response %d to %r: %d %s %r" %
              (i, raw[:60], r.status, r.headers, r.body[:80]))
    check(at_eof(s, f), "the connection stays open after Connection: close")
    s.close()

    # HTTP/1.0: closed after the response, unless it asks for keep-alive.
    expect_status(request("GET", "/notes.txt", version="HTTP/1.0"), 200)
    s = connect()
    s.sendall(request("GET", "/notes.txt", ["Connection: keep-alive"], version="HTTP/1.0") * 2)
    f = s.makefile("rb")
    for _ in range(2):
        r = read_response(f)
        check(r.status == 200 and r.header("connection") == "keep-alive", "HTTP/1.0 keep-alive")
    s.close()


def malformed():
    for raw, status in [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /index.html HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /index.html HTTP/3\r\nHost: x\r\n\r\n", 505),
        (b"GET /index.html HTTX/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /index.html HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET  /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400),
        (b"GET /index.html HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400),
        (request("POST", "/echo", ["Content-Length: 3", "Transfer-Encoding: chunked"], b"abc"),
         400),
        (request("POST", "/echo", ["Content-Length: 3", "Content-Length: 4"], b"abcd"), 400),
        (request("POST", "/echo", ["Content-Length: -1"]), 400),
        (request("POST", "/echo", ["Transfer-Encoding: gzip"]), 501),
        (request("POST", "/echo", ["Transfer-Encoding: chunked"], b"zz\r\nabc\r\n0\r\n\r\n"), 400),
        (request("POST", "/echo", ["Transfer-Encoding: chunked"], b"3\r\nabcXY0\r\n\r\n"), 400),
        (request("POST", "/echo", ["Content-Length: 2000000"]), 413),
        (request("POST", "/echo", ["Transfer-Encoding: chunked"], b"200000\r\n"), 413),
        (request("GET", "/", ["X-H%d: %s" % (i, "v" * 500) for i in range(40)]), 431),
        (request("GET", "/", ["X-H%d: v" % i for i in range(120)]), 431),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    ]:
        expect_status(raw, status)
    # Refused, but the connection goes on: escapes, a bad %XX.
    for path, statuses in [("/../secret.txt", (403, 404)), ("/%2e%2e/secret.txt", (403, 404)),
                           ("/%2E%2E/%2e%2E/etc/passwd", (403, 404)),
                           ("/..%2fsecret.txt", (403, 404)),
                           ("/sub/..%2f..%2fsecret.txt", (403, 404)), ("/leak", (403, 404)),
                           ("/%zz", (400,)), ("/a%00b", (400,))]:
        s = connect()
        s.sendall(request("GET", path) + request("GET", "/notes.txt"))
        f = s.makefile("rb")
        r = read_response(f)
        check(r.status in statuses, "%s: %d" % (path, r.status))
        check(b"secret" not in r.body, "%s: the secret leaked" % path)
        r = read_response(f)
        check(r.status == 200 and r.body == content("notes.txt"), "%s: the next request" % path)
        s.close()
    # Clients that go away in the middle of zero-copy downloads (the server then gets EPIPE
    # or ECONNRESET from sendfile, never SIGPIPE) do not disturb the next one.
    for _ in range(3):
        s = connect()
        s.sendall(request("GET", "/blob.bin") * 20)
        s.recv(1000)
        s.close()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", "/blob.bin")
    r = c.getresponse()
    check(r.status == 200 and r.read() == content("blob.bin"), "GET after aborted downloads")
    c.close()
    # Expect: 100-continue gets the interim response before the body is sent.
    s = connect()
    s.sendall(request("POST", "/echo", ["Content-Length: 5", "Expect: 100-continue"]))
    f = s.makefile("rb")
    check(f.readline() == b"HTTP/1.1 100 Continue\r\n" and f.readline() == b"\r\n", "100 Continue")
    s.sendall(b"hello")
    r = read_response(f)
    check(r.status == 200 and r.body == b"hello", "the body after 100 Continue")
    s.close()


def connections():
    """N connections open at once (all connected before the first request), each GETs
    index.html and blob.bin kept alive, byte for byte; then each closes."""
    n = int(sys.argv[4])
    socks = [connect() for _ in range(n)]
    files = [s.makefile("rb") for s in socks]
    for name in ("index.html", "blob.bin"):
        for s in socks:
            s.sendall(request("GET", "/" + name))
        for i, f in enumerate(files):
            r = read_response(f)
            check(r is not None and r.status == 200, "connection %d: GET /%s" % (i, name))
            check(r.body == content(name), "connection %d: GET /%s: body differs" % (i, name))
    for f, s in zip(files, socks):
        f.close()
        s.close()


{"client": client, "pipeline": pipeline, "malformed": malformed,
 "connections": connections}[mode]()
print("ok")
