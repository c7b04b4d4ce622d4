#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/install/readme.py -- the README's samples, as a newcomer would use them.

  readme.py extract README.md DIR   writes each C++ program of the README (a ```cpp block; its
                                    first line names the file), the README's meson.build and
                                    CMakeLists.txt (extended to build every program), and the
                                    transcripts (```console blocks) to DIR
  readme.py check DIR BUILD         runs each program built in BUILD: a server (its source
                                    names a "127.0.0.1:PORT") on a free port, fed the input of
                                    its transcript (`$ printf '...' | nc 127.0.0.1 PORT`), its
                                    answer compared with the transcript's, then stopped with
                                    SIGTERM (it must exit 0); any other program (a test) run by
                                    itself, its output compared with its transcript's
                                    (`$ ./NAME`), and it must exit 0

Every ```cpp block of the README must be a whole program: a fragment could drift unseen.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def extract(readme, out):
    text = open(readme, encoding="utf-8").read()
    programs, meson, cmake, transcripts = [], None, None, []
    for lang, body in FENCE.findall(text):
        if lang in ("cpp", "c++"):
            first = body.splitlines()[0]
            m = re.match(r"// (\w+)\.cpp:", first)
            if not m or "int main(" not in body:
                sys.exit(f"readme.py: a C++ block of the README is not a whole program "
                         f"named by its first line ('// NAME.cpp: ...'): {first!r}")
            port = re.search(r'"127\.0\.0\.1:(\d+)"', body)
            programs.append({"name": m.group(1), "port": port.group(1) if port else None})
            with open(os.path.join(out, m.group(1) + ".cpp"), "w", encoding="utf-8") as f:
                f.write(body)
        elif lang == "meson":
            meson = body
        elif lang == "cmake":
            cmake = body
        elif lang == "console":
            cmd = re.search(r"^\$ printf '([^']*)' \| nc 127\.0\.0\.1 (\d+)$", body, re.M)
            if cmd:
                after = body[cmd.end():].lstrip("\n")
                transcripts.append({"port": cmd.group(2),
                                    "input": cmd.group(1).encode().decode("unicode_escape"),
                                    "output": after})
            run = re.search(r"^\$ \./(\w+)$", body, re.M)
            if run:
                transcripts.append({"program": run.group(1), "port": None,
                                    "output": body[run.end():].lstrip("\n")})
    if not programs or meson is None or cmake is None:
        sys.exit("readme.py: the README lacks its C++ programs, its meson.build or its "
                 "CMakeLists.txt")
    first = programs[0]["name"]
    meson_base, cmake_base = meson, cmake
    for p in programs[1:]:
        # The README builds its first program; build the others the same way (from the
        # README's own lines, not those already added for another program).
        meson += "".join(l.replace(first, p["name"]) + "\n" for l in meson_base.splitlines()
                         if l.startswith("executable("))
        cmake += "".join(l.replace(first, p["name"]) + "\n" for l in cmake_base.splitlines()
                         if l.startswith(("add_executable(", "target_link_libraries(")))
    for name, body in (("meson.build", meson), ("CMakeLists.txt", cmake)):
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.write(body)
    for p in programs:
        if p["port"] is not None:
            p["transcript"] = next((t for t in transcripts if t["port"] == p["port"]), None)
        else:
            p["transcript"] = next((t for t in transcripts if t.get("program") == p["name"]),
                                   None)
        if p["transcript"] is None:
            sys.exit(f"readme.py: no transcript in the README for {p['name']} "
                     f"(port {p['port']})" if p["port"] else
                     f"readme.py: no transcript in the README for {p['name']} "
                     f"('$ ./{p['name']}')")
    with open(os.path.join(out, "programs.json"), "w", encoding="utf-8") as f:
        json.dump(programs, f, indent=1)
    print(" ".join(p["name"] for p in programs))


def check_test(program, exe):
    try:
        done = subprocess.run([exe], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{program['name']}: {e}"
    want = program["transcript"]["output"]
    if done.stdout.decode() != want:
        return f"{program['name']}: printed {done.stdout.decode()!r}, the README says {want!r}"
    if done.returncode != 0:
        return f"{program['name']}: exit {done.returncode}: {done.stderr.decode()}"
    return None


def check_one(program, exe):
    if program["port"] is None:
        return check_test(program, exe)
    proc = subprocess.Popen([exe, "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready = proc.stdout.readline().decode()
        m = re.match(r"listening on 127\.0\.0\.1:(\d+) ", ready)
        if not m:
            return f"{program['name']}: no 'listening on' line (got {ready!r})"
        with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=10) as s:
            s.sendall(program["transcript"]["input"].encode())
            got = b""
            while chunk := s.recv(65536):
                got += chunk
        want = program["transcript"]["output"]
        if got.decode() != want:
            return f"{program['name']}: answered {got.decode()!r}, the README says {want!r}"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
        if rc != 0:
            return f"{program['name']}: exit {rc} after SIGTERM: {proc.stderr.read().decode()}"
        return None
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{program['name']}: {e}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check(out, build):
    programs = json.load(open(os.path.join(out, "programs.json"), encoding="utf-8"))
    failures = [f for f in (check_one(p, os.path.join(build, p["name"])) for p in programs) if f]
    for f in failures:
        print(f"readme.py: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "extract":
        extract(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
