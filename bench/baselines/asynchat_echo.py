#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/baselines/asynchat_echo.py -- the line echo server on Python's own asynchat/asyncore,
the system ringchat grew from: set_terminator(b"\\n"), collect_incoming_data gathers a line,
found_terminator pushes it back with its "\\n". asyncore.loop uses poll(), so more than
FD_SETSIZE (1024) connections work.

Usage: python3 -W ignore asynchat_echo.py [--port P]
       (0 = any; prints "asynchat_echo: ready on 127.0.0.1:P (asyncore poll)")
"""
import argparse
import asynchat
import asyncore
import os
import re
import resource
import signal
import socket
import sys


class EchoHandler(asynchat.async_chat):
    def __init__(self, sock):
        super().__init__(sock)
        self.set_terminator(b"\n")
        self.parts = []

    def collect_incoming_data(self, data):
        self.parts.append(data)

    def found_terminator(self):
        self.parts.append(b"\n")
        self.push(b"".join(self.parts))
        self.parts = []


class EchoServer(asyncore.dispatcher):
    def __init__(self, port):
        super().__init__()
        self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind(("127.0.0.1", port))
        self.listen(4096)

    def handle_accepted(self, sock, addr):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        EchoHandler(sock)


class Parser(argparse.ArgumentParser):
    """argparse, with the repository's conventions (examples/common/cli.hpp): a bad option is
    "asynchat_echo: what is wrong" and "try 'asynchat_echo --help'" on stderr, exit 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: {message}\ntry '{self.prog} --help'\n")
        sys.exit(2)


def version():
    """The project's version, from meson.build (the C++ programs take it from version.hpp)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "meson.build"), encoding="utf-8") as f:
        found = re.search(r"version\s*:\s*'([^']+)'", f.read())
    return found.group(1) if found else "unknown"


def main():
    parser = Parser(prog="asynchat_echo", description="asynchat line echo server")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any)")
    parser.add_argument("--version", action="version",
                        version=f"asynchat_echo (ringchat) {version()}")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: not a port number: '{args.port}'")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server = EchoServer(args.port)
    except OSError as e:
        sys.stderr.write(f"asynchat_echo: cannot listen on 127.0.0.1:{args.port}: {e.strerror}\n")
        sys.exit(1)
    port = server.socket.getsockname()[1]
    print(f"asynchat_echo: ready on 127.0.0.1:{port} (asyncore poll)", flush=True)
    try:
        asyncore.loop(timeout=1.0, use_poll=True)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
