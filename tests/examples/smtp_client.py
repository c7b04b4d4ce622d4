#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the smtp example with Python's smtplib: python3 smtp_client.py PORT MAILDIR.

The server runs with --max-size 100000. Sends several messages (lines starting with '.', a
line that is only '.', empty lines, a last line without CRLF, LF-only text, lines of 60,000
and 20,000 bytes) over two
connections, checks the replies to commands out of order, and compares every stored file in
MAILDIR/new with what smtplib sent, byte for byte (smtplib turns line ends into CRLF and adds
a final CRLF; the server undoes the dot-stuffing). Prints 'ok' and exits 0 on success.
"""
import os
import re
import smtplib
import sys

port = int(sys.argv[1])
maildir = sys.argv[2]


def wire_form(msg) -> bytes:
    """What the message is once smtplib has sent it and the server has unstuffed it (smtplib
    turns the line ends of a str message into CRLF; bytes here already have CRLF)."""
    if isinstance(msg, str):
        msg = re.sub(r"(?:\r\n|\n|\r(?!\n))", "\r\n", msg).encode("ascii")
    if not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    return msg


def expect(got, want, what):
    if got != want:
        sys.exit(f"{what}: want {want!r}, got {got!r}")


messages = {
    "plain": b"Subject: plain\r\n\r\nhello\r\n",
    "dots": b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nnot the end\r\n. \r\n",
    "empty lines": b"Subject: empty lines\r\n\r\n\r\n\r\nafter two empty lines\r\n\r\n",
    "no final crlf": b"Subject: no final crlf\r\n\r\nlast line",
    "lf only": "Subject: lf only\n\nline one\n.line two\n",  # str: smtplib makes CRLF of it
    "long": b"Subject: long\r\n\r\n" + b"".join(b"line %d %s\r\n" % (i, b"x" * 60) for i in range(1000)),
    # Lines far over 1,000 bytes inside DATA are accepted (RFC 5321 §4.5.3.1 asks servers
    # not to limit them), one of them starting with a dot, one with a CR inside.
    "wide": b"Subject: wide\r\n\r\n" + b"w" * 60000 + b"\r\n." + b"d" * 20000 + b"\r\nx\ry" * 3 + b"\r\n",
}
sent = {}

# One session: several messages, RSET and NOOP between them.
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    code, text = s.ehlo("client.example")
    expect(code, 250, "EHLO")
    if b"SIZE" not in text or b"8BITMIME" not in text:
        sys.exit(f"EHLO does not list SIZE and 8BITMIME: {text!r}")
    for name in ["plain", "dots", "empty lines"]:
        refused = s.sendmail("from@example.org", ["to@example.org", "cc@example.org"], messages[name])
        expect(refused, {}, f"sendmail {name}")
        sent[name] = wire_form(messages[name])
        expect(s.rset()[0], 250, "RSET")
        expect(s.noop()[0], 250, "NOOP")

    # Commands out of order, unknown ones, bad syntax.
    expect(s.docmd("RCPT", "TO:<x@example.org>")[0], 503, "RCPT before MAIL")
    expect(s.docmd("DATA")[0], 503, "DATA before RCPT")
    expect(s.docmd("FROB")[0], 500, "an unknown command")
    expect(s.docmd("MAIL", "FROM:nobody")[0], 501, "MAIL without <>")
    expect(s.docmd("MAIL", "FROM:<a@example.org>")[0], 250, "MAIL")
    expect(s.docmd("MAIL", "FROM:<a@example.org>")[0], 503, "nested MAIL")
    expect(s.docmd("RCPT", "TO:<>")[0], 501, "RCPT with an empty path")
    expect(s.docmd("RSET")[0], 250, "RSET after MAIL")
    expect(s.docmd("VRFY", "someone")[0], 252, "VRFY")
    expect(s.docmd("NOOP" + "x" * 2000)[0], 500, "a line over 1000 bytes")
    expect(s.noop()[0], 250, "NOOP after the long line")

    # Over --max-size: refused with 552, and the session goes on.
    try:
        s.sendmail("from@example.org", ["to@example.org"], b"Subject: big\r\n\r\n" + (b"y" * 98 + b"\r\n") * 2000)
        sys.exit("a message over --max-size was accepted")
    except smtplib.SMTPDataError as e:
        expect(e.smtp_code, 552, "a message over --max-size")
    except smtplib.SMTPSenderRefused as e:  # smtplib sends SIZE= when the server offers it
        expect(e.smtp_code, 552, "a message over --max-size (MAIL SIZE=)")
    s.rset()

# A second connection, HELO this time.
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
expect(s.helo("other.example")[0], 250, "HELO")
for name in ["no final crlf", "lf only", "long", "wide"]:
    expect(s.sendmail("<>", ["to@example.org"], messages[name]), {}, f"sendmail {name}")
    sent[name] = wire_form(messages[name])
code, _ = s.quit()
expect(code, 221, "QUIT")

# Every message is in MAILDIR/new, once, byte for byte.
stored = {}
for entry in os.listdir(os.path.join(maildir, "new")):
    with open(os.path.join(maildir, "new", entry), "rb") as f:
        data = f.read()
    subject = re.match(rb"Subject: ([^\r\n]*)", data)
    if not subject:
        sys.exit(f"a stored file without a Subject: {entry}: {data[:80]!r}")
    name = subject.group(1).decode()
    if name in stored:
        sys.exit(f"{name} stored twice")
    stored[name] = data
expect(sorted(stored), sorted(sent), "the stored messages")
for name, want in sent.items():
    expect(stored[name], want, f"the stored file of {name}")
if os.listdir(os.path.join(maildir, "tmp")):
    sys.exit("tmp/ is not empty")
print("ok")
