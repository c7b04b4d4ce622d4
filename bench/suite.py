#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/suite.py -- ringchat's bench suite: line echo on io_uring and epoll against hand-written
baselines and Python's asynchat; syscalls per request; idle connections' memory; RESP against
redis-server; HTTP and HTTPS (keep-alive, handshakes, a large file) against nginx; line echo
over TLS against itself over plaintext (tls-echo); scaling over reactors (scaling). Standard
library only.

Every contender of a scenario runs in turn (A B C A B C ...), several times; the table shows
medians with the min-max spread, and the ratios. Each run starts a fresh server on a free
loopback port (pinned to CPU 0 when there are two CPUs or more; the load generator to CPU 1),
waits for its ready line, runs bench/loadgen (which checks every reply byte for byte and reads
the server's CPU time around the measured interval), and stops the server by its PID.

The scaling scenario runs echo (ping-pong over 50 and 1,000 connections, pipelined 50 x 16),
RESP -P 16 and HTTP (wrk; where examples/http takes --threads) on 1, 2, 4 ... reactors
(--threads N --pin, the server on CPUs 0 to N-1) while the load generator can have as many CPUs
left, on all of them: req/s, speedup over 1 reactor and its ratio to linear, the CPU per request
of all the server's threads and its ratio to 1 reactor's, against issue 16's targets. Under 4
CPUs, 2 reactors run anyway, sharing the CPUs: their CPU per request only. --scaling runs it
alone with every case; --full runs every case too; the quick default runs pingpong-50 only
(about 6 s on 2 CPUs). The servers run on their default backend (RINGCHAT_BACKEND picks one).

Usage: python3 bench/suite.py [--build build-release] [--full] [--only NAME-OR-PATTERN,...]
                              [--contenders NAME,...] [--out bench/results] [--no-extras]
       python3 bench/suite.py --scaling [--full]   (the scaling scenario alone: --only scaling)
       python3 bench/suite.py --report bench/results/STAMP.json   (a saved run, shown again)
Progress goes to stderr, one line per step; the report to stdout, at most WIDTH (100) columns,
ending with the verdict: ringchat on io_uring ahead of, level with or behind itself on epoll, per
scenario, under the rule at LEVEL_FLOOR below. bench/test_report.py tests the presentation.
Exit status: 0 when every run was clean, 1 when a run failed (a mismatch, an error, a server
that did not come up), 2 when the programs are missing.
"""
import argparse
import datetime
import fnmatch
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def fmt_clock(seconds):
    """0:07, 2:45, 1:02:03: short enough for a log line, unambiguous."""
    s = max(0, int(round(seconds)))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """One line per step on stderr, e.g.
        bench: [ 17/151] 0:41 in, about 2:13 left | pingpong-50: ringchat-epoll, run 2 of 3
    The plan (how many steps of each kind, and a nominal duration for each) is made before the
    first step. The time left is the remaining steps' nominal durations, each scaled by how long
    the steps of its kind have really taken against their nominal so far (or, for a kind not yet
    seen, by all the steps so far), so that the estimate corrects itself on a slow machine."""

    def __init__(self):
        self.plan = {}        # kind -> [steps left, nominal seconds of those steps]
        self.seen = {}        # kind -> [nominal seconds done, real seconds taken, steps]
        self.total = 0
        self.i = 0
        self.t0 = time.monotonic()
        self.current = None   # (kind, nominal seconds, start)

    def expect(self, kind, steps, nominal_s):
        if steps <= 0:
            return
        left = self.plan.setdefault(kind, [0, 0.0])
        left[0] += steps
        left[1] += steps * nominal_s
        self.total += steps

    def _close(self):
        if self.current:
            kind, nominal, start = self.current
            done = self.seen.setdefault(kind, [0.0, 0.0, 0])
            done[0] += nominal
            done[1] += time.monotonic() - start
            done[2] += 1
            self.current = None

    def left_s(self):
        nominal = sum(n for n, _, _ in self.seen.values())
        real = sum(r for _, r, _ in self.seen.values())
        overall = real / nominal if nominal > 0 else 1.0
        total = 0.0
        for kind, (_, left) in self.plan.items():
            seen = self.seen.get(kind)
            total += left * (seen[1] / seen[0] if seen and seen[0] > 0 else overall)
        return total

    def step(self, kind, what):
        """Starts the next step (ending the one before) and prints its line."""
        self._close()
        left = self.left_s()  # this step included
        plan = self.plan.setdefault(kind, [0, 0.0])
        if plan[0] > 0:
            nominal = plan[1] / plan[0]
            plan[0] -= 1
            plan[1] -= nominal
        else:
            nominal = 1.0
            self.total += 1   # a step the plan did not foresee
        self.i += 1
        width = len(str(self.total))
        log(f"[{self.i:>{width}}/{self.total}] {fmt_clock(time.monotonic() - self.t0)} in, "
            f"about {fmt_clock(left)} left | {what}")
        self.current = (kind, nominal, time.monotonic())

    def seconds_per_step(self):
        """{kind: [steps, mean seconds a step took, mean nominal]}: what to tune the plan by."""
        return {k: [n, round(real / n, 2), round(nominal / n, 2)]
                for k, (nominal, real, n) in self.seen.items()}

    def done(self):
        self._close()
        return time.monotonic() - self.t0


# --------------------------------------------------------------------------------------------
# What runs: contenders and scenarios

class Contender:
    def __init__(self, name, argv, backend, family, slow=False):
        self.name = name          # as in the table
        self.argv = argv          # without --port
        self.backend = backend    # "uring", "epoll" or "" (asynchat)
        self.family = family      # "ringchat", "raw", "raw-lines", "asynchat"
        self.slow = slow          # quick mode runs it on the small scenarios only


def echo_contenders(build):
    py = [sys.executable, "-W", "ignore", os.path.join(ROOT, "bench/baselines/asynchat_echo.py")]
    return [
        Contender("ringchat-uring", [f"{build}/examples/echo", "--backend", "uring"], "uring", "ringchat"),
        Contender("raw-uring", [f"{build}/bench/uring_echo"], "uring", "raw"),
        Contender("lines-uring", [f"{build}/bench/uring_echo", "--lines"], "uring", "raw-lines"),
        Contender("ringchat-epoll", [f"{build}/examples/echo", "--backend", "epoll"], "epoll", "ringchat"),
        Contender("raw-epoll", [f"{build}/bench/epoll_echo"], "epoll", "raw"),
        Contender("lines-epoll", [f"{build}/bench/epoll_echo", "--lines"], "epoll", "raw-lines"),
        Contender("asynchat", py, "", "asynchat", slow=True),
    ]


# name, connections, depth, message size, small (asynchat runs it in quick mode)
ECHO_SCENARIOS = [
    ("pingpong-1", 1, 1, 64, True),
    ("pingpong-50", 50, 1, 64, True),
    ("pingpong-1000", 1000, 1, 64, False),
    ("pipelined-50x16", 50, 16, 64, True),
    ("msg-4KiB-50", 50, 1, 4096, False),
    ("msg-64KiB-10", 10, 1, 65536, False),
]

# Scenarios other people add later: each is a name and a function(suite) -> list of rows.
# HTTP against nginx (wrk) and file serving over HTTP wait for examples/http: register them here.
# (function(suite), name[, plan(suite) -> [(step kind, count, nominal seconds each)]]): run after
# the built-in scenarios; the plan (which the progress lines' estimate of the time left uses) is
# optional, and each step calls suite.progress.step(kind, what).
EXTRA_SCENARIOS = []
# What the suite does not measure yet, one line each: the report lists them as "not done".
NOT_YET = []


# --------------------------------------------------------------------------------------------
# The heap census (bench/heap_census/census.c writes it)

def read_census(path):
    """{usable block size: live blocks}, with the blocks over 64 KiB under "large" as
    (blocks, bytes)."""
    blocks = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if parts[0] == "large":
                blocks["large"] = (int(parts[1]), int(parts[2]))
            else:
                blocks[int(parts[0])] = int(parts[1])
    return blocks


def census_per_connection(before, after, conns):
    """What `conns` connections added between two censuses: heap bytes per connection (usable
    bytes, not counting glibc's 8-byte header per block), blocks per connection, and the block
    sizes that account for it, largest share first: [(size, blocks per connection)], those of
    at least 0.05 blocks per connection."""
    sizes = {k for k in set(before) | set(after) if k != "large"}
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in sizes}
    large_b = after.get("large", (0, 0))[1] - before.get("large", (0, 0))[1]
    total = sum(k * v for k, v in grown.items()) + large_b
    blocks = [(k, v / conns) for k, v in grown.items() if abs(v) / conns >= 0.05]
    blocks.sort(key=lambda kv: -abs(kv[0] * kv[1]))
    return {"bytes_per_conn": total / conns,
            "blocks_per_conn": sum(grown.values()) / conns,
            "large_bytes_per_conn": large_b / conns,
            "blocks": blocks}


def fmt_bytes_per_conn(kib):
    """loadgen's server_rss_kb_per_conn in bytes; "-" where it has none (-1 or missing)."""
    return f"{kib * 1024:.0f}" if kib is not None and kib >= 0 else "-"


def fmt_census(heap, most=8):
    """"856 B x1.00, 344 B x1.00, ..." for the largest shares."""
    parts = [f"{size} B x{per:.2f}" for size, per in heap["blocks"][:most]]
    if len(heap["blocks"]) > most:
        parts.append(f"{len(heap['blocks']) - most} more sizes")
    if abs(heap["large_bytes_per_conn"]) >= 1:
        parts.append(f"{heap['large_bytes_per_conn']:.0f} B in blocks over 64 KiB")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Processes

def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


PIN = cpu_count() >= 2


def pinned(cpu):
    """A preexec_fn that pins the child to `cpu`, one CPU or a list of them (the scaling
    scenario's server on CPUs 0 to N-1); None on one CPU."""
    if not PIN:
        return None
    cpus = {cpu} if isinstance(cpu, int) else set(cpu)
    return lambda: os.sched_setaffinity(0, cpus)


class Server:
    """A server process started on a free port; stop() (or the with-block) ends it by PID."""

    def __init__(self, argv, name, env=None, ready=r"ready on [^:]+:(\d+)", port_arg=True,
                 port=None, timeout=15.0, cpus=0):
        self.name = name
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        full = list(argv) + (["--port", "0"] if port_arg else [])
        if port is not None:
            full = [a.replace("{port}", str(port)) for a in argv]
        self.proc = subprocess.Popen(full, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
                                     env=env, preexec_fn=pinned(cpus), cwd=ROOT)
        self.pid = self.proc.pid
        self.port = port
        deadline = time.monotonic() + timeout
        pattern = re.compile(ready)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({self.proc.returncode}) before it was ready: "
                                   f"{self._tail()}")
            self.out.seek(0)
            m = pattern.search(self.out.read())
            if m:
                if m.groups():
                    self.port = int(m.group(1))
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{name} printed no ready line in {timeout:.0f} s: {self._tail()}")

    def _tail(self):
        self.err.seek(0)
        self.out.seek(0)
        return (self.out.read()[-300:] + self.err.read()[-300:]).strip().replace("\n", " | ")

    def stop(self, grace=3.0):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_client(argv, timeout, cpus=1):
    """Runs a client pinned to CPU 1 (or `cpus`); returns (rc, stdout, stderr); rc None on
    timeout."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           preexec_fn=pinned(cpus), cwd=ROOT)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or "", f"timed out after {timeout:.0f} s"


def cpu_us(pid):
    """The CPU time a (single-threaded) server has used: schedstat's nanoseconds where the
    kernel has them, else utime + stime in clock ticks (10 ms: too coarse for short runs)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1000.0
    except (OSError, ValueError, IndexError):
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e6 / os.sysconf("SC_CLK_TCK")


# -P 16 answers about 15 times as many requests a second as -P 1 does: 5 times the requests
# keep its runs long enough (a 10 ms tick where schedstat is missing) without doubling the time.
RESP_P16_TIMES = 5


def sleeps(pid):
    """How many times a server's main thread has waited (voluntary context switches): each
    wait and wake-up costs it kernel time that a server kept busy does not pay."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def threads_cpu_us(pid):
    """The CPU time of every thread of a server (--threads N: one reactor a thread), summed:
    each /proc/PID/task/TID/schedstat, as cpu_us reads the main thread's; utime + stime (the
    whole process, in clock ticks) where schedstat is missing."""
    total, any_ = 0.0, False
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0]) / 1000.0
                    any_ = True
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    if any_:
        return total
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e6 / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Statistics and formatting

def med(xs):
    xs = [x for x in xs if x is not None and x >= 0]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None and x >= 0]
    return (min(xs), max(xs)) if xs else (None, None)


def fmt_num(x, digits=3):
    if x is None:
        return "-"
    if x >= 100000:
        return f"{x / 1000:.0f}k"
    if x >= 10000:
        return f"{x / 1000:.1f}k"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits - 1}f}" if x < 10 else f"{x:.1f}"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def fmt_pct(x, signed=True):
    """+12%, -1.5%, 3.0% (one decimal under 10%)."""
    if x is None:
        return "-"
    v = x * 100
    digits = 0 if abs(v) >= 9.5 else 1
    return f"{v:+.{digits}f}%" if signed else f"{abs(v):.{digits}f}%"


def half_range(xs):
    """The spread of a set of runs: half their min-max range, as a fraction of their median."""
    xs = [x for x in xs if x is not None and x >= 0]
    m = med(xs)
    return (max(xs) - min(xs)) / 2 / m if len(xs) >= 2 and m else None


# The verdict's rule. The noise of a comparison, printed as ±, is the two sides' spreads added
# (each side's half min-max range over its runs, as a fraction of its median), and LEVEL_FLOOR at
# least. io_uring and epoll are LEVEL when their medians differ by no more than the noise;
# otherwise io_uring is AHEAD or BEHIND by that difference (the ratio of the medians, less 1).
# Each side needs MIN_RUNS clean runs at least, or there is no spread and so no verdict.
LEVEL_FLOOR = 0.02
MIN_RUNS = 2
RULE = (f"level when the medians differ by no more than ±, the noise: the two sides' half "
        f"min-max ranges added, in % of their medians ({LEVEL_FLOOR:.0%} at least); otherwise "
        f"ahead or behind by that difference. No verdict with under {MIN_RUNS} runs a side")


def compare(a, b, lower_is_better):
    """io_uring's runs `a` against epoll's `b` under the rule above: {"word": "ahead", "level",
    "behind" or None (too few runs), "diff": a's median / b's - 1, "noise": ±, "a", "b": the
    medians, "runs": (len(a), len(b))}."""
    a = [x for x in a if x is not None and x >= 0]
    b = [x for x in b if x is not None and x >= 0]
    out = {"word": None, "diff": None, "noise": None, "a": med(a), "b": med(b),
           "runs": (len(a), len(b))}
    if not a or not b or not out["b"]:
        return out
    out["diff"] = out["a"] / out["b"] - 1
    if len(a) < MIN_RUNS or len(b) < MIN_RUNS:
        return out
    out["noise"] = max(LEVEL_FLOOR, half_range(a) + half_range(b))
    if abs(out["diff"]) <= out["noise"]:
        out["word"] = "level"
    else:
        out["word"] = "ahead" if (out["diff"] < 0) == lower_is_better else "behind"
    return out


def verdict_words(cpu, rps, unit="us"):
    """One comparison in words, (CPU per request, req/s), e.g.
    ("ahead: 12% less CPU/req (2.10 vs 2.39 us, ±3%)", "req/s level: +1% (±4%)")."""
    if cpu["diff"] is None:
        return "no data", ""
    vals = f"{fmt_num(cpu['a'])} vs {fmt_num(cpu['b'])} {unit}"
    if cpu["word"] is None:
        head = (f"no verdict ({min(cpu['runs'])} run a side): {fmt_pct(cpu['diff'])} CPU/req "
                f"({vals})")
    elif cpu["word"] == "level":
        head = f"level: {fmt_pct(cpu['diff'])} CPU/req ({vals}, ±{fmt_pct(cpu['noise'], False)})"
    else:
        head = (f"{cpu['word']}: {fmt_pct(cpu['diff'], False)} "
                f"{'less' if cpu['diff'] < 0 else 'more'} CPU/req "
                f"({vals}, ±{fmt_pct(cpu['noise'], False)})")
    if rps["diff"] is None:
        tail = "req/s: no data"
    elif rps["word"] is None:
        tail = f"req/s {fmt_pct(rps['diff'])}"
    elif rps["word"] == "level":
        tail = f"req/s level: {fmt_pct(rps['diff'])} (±{fmt_pct(rps['noise'], False)})"
    else:
        tail = (f"req/s {rps['word']}: {fmt_pct(rps['diff'], False)} "
                f"{'more' if rps['diff'] > 0 else 'fewer'} (±{fmt_pct(rps['noise'], False)})")
    return head, tail


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths)))
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


# The report fits a terminal this wide (tests: bench/test_report.py).
WIDTH = 100


def wrap(text, width=WIDTH):
    return textwrap.wrap(text, width, break_on_hyphens=False)


def grouped_table(header, groups):
    """A table in groups of rows, each under a title line of its own, the columns aligned across
    the groups: narrower than a column repeating the group's name on every row."""
    rows = [r for _, g in groups for r in g]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    widths[0] += 2
    line = lambda r, lead: "  ".join((lead + str(c)).ljust(w) if i == 0 else str(c).rjust(w)
                                     for i, (c, w) in enumerate(zip(r, widths)))
    out = [line(header, ""), "  ".join("-" * w for w in widths)]
    for title, g in groups:
        out.append(title)
        out += [line(r, "  ") for r in g]
    return "\n".join(out)


def markdown(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# The suite

class Suite:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.full = args.full
        self.reps = args.reps or (5 if self.full else 3)
        self.duration = args.duration or (3.0 if self.full else 0.7)
        self.warmup = 1.0 if self.full else 0.25
        self.loadgen = f"{self.build}/bench/loadgen"
        self.env = dict(os.environ, RINGCHAT_LOG=os.environ.get("RINGCHAT_LOG", "quiet"))
        self.results = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
                        "mode": "full" if self.full else "quick", "reps": self.reps,
                        "duration_s": self.duration, "pinned": PIN, "cpus": cpu_count(),
                        "build": self.build, "echo": [], "syscalls": [], "idle": [], "resp": [],
                        "notes": [], "failures": []}
        self.progress = Progress()
        self.cleanups = []    # functions run at the end (the HTTPS scenarios' temporary folder)
        self.contenders = echo_contenders(self.build)
        if args.contenders:
            keep = set(args.contenders.split(","))
            self.contenders = [c for c in self.contenders if c.name in keep]

    def plan(self):
        """Tells self.progress how many steps of each kind the run will take, and about how long
        each should take (nominal seconds: the estimate of the time left scales them by what the
        steps really take)."""
        p = self.progress
        run_s = self.warmup + self.duration + 0.1   # a server started, measured, stopped
        for name, conns, depth, size, contenders, _ in self.echo_plan():
            p.expect("echo", self.reps * len(contenders), run_s + conns / 2000)
        if self.builtin_extras():
            requests = 100000 if self.full else 20000
            p.expect("syscalls", len(self.syscall_plan()), 0.5 + requests / 40000)
            p.expect("idle", len(self.idle_plan()), 1.0 + self.idle_connections()[0] / 5000)
            self.resp_expect()
            if os.path.exists(f"{self.build}/bench/file_send"):
                p.expect("file_send", 1, 12.0 if self.full else 2.0)
        for extra in EXTRA_SCENARIOS:
            if len(extra) > 2 and self.extra_selected(extra[1]):
                for kind, count, nominal in extra[2](self):
                    p.expect(kind, count, nominal)
        p.expect("report", 1, 0.5)

    # ---- what runs: --only and --no-extras
    def only_patterns(self):
        return [n for n in (self.args.only or "").split(",") if n]

    def selected(self, name):
        """Whether --only (names or shell patterns: https*) names this scenario."""
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.only_patterns())

    def extras_named(self):
        """The extra scenarios (http, https, ...) that --only names."""
        return [e[1] for e in EXTRA_SCENARIOS if self.selected(e[1])]

    def builtin_extras(self):
        """Whether syscalls, idle connections, RESP and file_send run: not with --no-extras,
        nor when --only names an extra scenario (then only what it names runs)."""
        return not self.args.no_extras and not self.extras_named()

    def extra_selected(self, name):
        """Whether the extra scenario `name` runs: not with --no-extras; when --only names
        extra scenarios, those only; else all of them."""
        if self.args.no_extras:
            return False
        named = self.extras_named()
        return not named or name in named

    def note(self, msg):
        log(msg)
        self.results["notes"].append(msg)

    def fail(self, msg):
        log("FAILED: " + msg)
        self.results["failures"].append(msg)

    def loadgen_run(self, server, conns, depth, size, extra=(), timeout=None, cpus=1):
        argv = [self.loadgen, "--port", str(server.port), "--connections", str(conns),
                "--depth", str(depth), "--size", str(size), "--server-pid", str(server.pid)]
        argv += list(extra)
        if not any(a in ("--requests", "--hold") for a in extra):
            argv += ["--duration", str(self.duration), "--warmup", str(self.warmup)]
        limit = timeout or (self.duration + self.warmup + 60)
        argv += ["--timeout", str(limit - 5)]
        rc, out, err = run_client(argv, limit, cpus)
        try:
            res = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res = {"ok": False, "problem": (err or out or f"exit {rc}").strip()[-300:]}
        if rc != 0:
            res["ok"] = False
        return res

    def serve_and_load(self, argv, name, env, conns, depth, size, extra=(), timeout=None):
        """Starts the server, runs loadgen against it (loadgen_run) and stops it: loadgen's
        result, or {"ok": False, "problem": why} when the server did not start."""
        try:
            with Server(argv, name, env=env) as s:
                return self.loadgen_run(s, conns, depth, size, extra=extra, timeout=timeout)
        except RuntimeError as e:
            return {"ok": False, "problem": str(e)}

    # ---- echo scenarios
    def echo_plan(self):
        """[(scenario, connections, depth, size, contenders, names left out)] to run."""
        plan = []
        for name, conns, depth, size, small in ECHO_SCENARIOS:
            if self.args.only and not self.selected(name):
                continue
            contenders = [c for c in self.contenders
                          if not c.slow or small or self.full]
            skipped = [c.name for c in self.contenders if c not in contenders]
            plan.append((name, conns, depth, size, contenders, skipped))
        return plan

    def echo(self):
        for name, conns, depth, size, contenders, skipped in self.echo_plan():
            log(f"{name}: {conns} connection(s), depth {depth}, {size}-byte messages; "
                f"{len(contenders)} contenders x{self.reps}"
                + (f" (quick mode leaves out {', '.join(skipped)})" if skipped else ""))
            runs = {c.name: [] for c in contenders}
            for rep in range(self.reps):
                for c in contenders:
                    self.progress.step("echo", f"{name}: {c.name}, run {rep + 1} of {self.reps}")
                    r = self.serve_and_load(c.argv, c.name, self.env, conns, depth, size)
                    if not r.get("ok"):
                        self.fail(f"{name} / {c.name} run {rep + 1}: {r.get('problem') or 'failed'}"
                                  f" (mismatches {r.get('mismatches', '?')}, errors "
                                  f"{r.get('errors', '?')})")
                    runs[c.name].append(r)
            for c in contenders:
                self.results["echo"].append({"scenario": name, "contender": c.name,
                                             "backend": c.backend, "family": c.family,
                                             "connections": conns, "depth": depth, "size": size,
                                             "runs": runs[c.name]})

    def summary(self, scenario, contender):
        for e in self.results["echo"]:
            if e["scenario"] == scenario and e["contender"] == contender:
                runs = [r for r in e["runs"] if r.get("ok")]
                rps = [r["rps"] for r in runs]
                cpu = [r.get("server_sched_us_per_req", -1) if r.get("server_sched_us_per_req", -1) > 0
                       else r.get("server_cpu_us_per_req") for r in runs]
                return {
                    "rps_runs": rps, "cpu_runs": cpu,
                    "rps": med(rps), "rps_range": spread(rps),
                    "cpu": med(cpu), "cpu_range": spread(cpu),
                    "p50": med([r["latency_us"]["p50"] for r in runs]),
                    "p99": med([r["latency_us"]["p99"] for r in runs]),
                    "p999": med([r["latency_us"]["p999"] for r in runs]),
                    "client_cpu": med([r.get("client_cpu_us_per_req", -1) for r in runs]),
                    "ok": f"{len(runs)}/{len(e['runs'])}",
                }
        return None

    # ---- syscalls per request
    def syscall_method(self):
        """("perf" or "strace" or None, its path); probed once."""
        if not hasattr(self, "_syscall_method"):
            perf = shutil.which("perf")
            strace = shutil.which("strace")
            method = None
            if perf:
                probe = subprocess.run([perf, "stat", "-e", "raw_syscalls:sys_enter", "-x,", "true"],
                                       capture_output=True, text=True)
                if probe.returncode == 0 and "not supported" not in probe.stderr \
                        and "<not" not in probe.stderr:
                    method = "perf"
            if method is None and strace:
                method = "strace"
            self._syscall_method = (method, perf if method == "perf" else strace)
        return self._syscall_method

    def syscall_plan(self):
        """[(scenario, depth, contender)]: the raw baselines are the floor here; asynchat is not
        the point."""
        if self.syscall_method()[0] is None:
            return []
        return [(scen, depth, c) for scen, depth in (("pingpong-50", 1), ("pipelined-50x16", 16))
                for c in self.contenders if c.family not in ("asynchat", "raw-lines")]

    def syscalls(self):
        method, tool = self.syscall_method()
        if method is None:
            self.note("syscalls per request: skipped (no working perf or strace; "
                      "apt-get install strace)")
            return
        requests = 100000 if self.full else 20000
        log(f"syscalls per request: {method} on the server during {requests} requests, "
            "pingpong-50 and pipelined-50x16")
        for scen, depth, c in self.syscall_plan():
            self.progress.step("syscalls", f"syscalls, {scen}: {c.name}")
            try:
                with Server(c.argv, c.name, env=self.env) as s:
                    count, breakdown, r = self._count_syscalls(method, tool, s, depth,
                                                               requests)
            except RuntimeError as e:
                self.fail(f"syscalls / {c.name}: {e}")
                continue
            if not r.get("ok"):
                self.fail(f"syscalls {scen} / {c.name}: {r.get('problem')}")
            reqs = r.get("requests") or requests
            self.results["syscalls"].append({
                "scenario": scen, "contender": c.name, "method": method, "requests": reqs,
                "syscalls": count, "per_request": count / reqs if count is not None else None,
                "breakdown": breakdown})

    def _count_syscalls(self, method, tool, server, depth, requests):
        out = tempfile.NamedTemporaryFile(mode="r", suffix=".txt", delete=False)
        out.close()
        try:
            if method == "perf":
                cmd = [tool, "stat", "-e", "raw_syscalls:sys_enter", "-x,", "-o", out.name,
                       "-p", str(server.pid)]
            else:
                cmd = [tool, "-c", "-f", "-o", out.name, "-p", str(server.pid)]
            tracer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True)
            try:
                time.sleep(0.4 if method == "perf" else 0.6)  # attached by then
                r = self.loadgen_run(server, 50, depth, 64, extra=("--requests", str(requests)),
                                     timeout=120)
            finally:
                tracer.send_signal(signal.SIGINT)
                try:
                    tracer.wait(10)
                except subprocess.TimeoutExpired:
                    tracer.kill()
                    tracer.wait()
            with open(out.name) as f:
                text = f.read()
        finally:
            os.unlink(out.name)
        count = None
        breakdown = {}
        if method == "perf":
            for line in text.splitlines():
                if "raw_syscalls:sys_enter" in line:
                    try:
                        count = int(line.split(",")[0])
                    except ValueError:
                        pass
        else:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    try:
                        breakdown[parts[-1]] = int(parts[3])
                    except ValueError:
                        pass
                if parts and parts[-1] == "total":
                    count = int(parts[2] if len(parts) == 5 else parts[3])
        return count, breakdown, r

    # ---- many idle connections
    def idle_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return min(10000, hard - 100), hard

    def idle_plan(self):
        """[(contender, connections)]: the raw baselines are the floor here; asynchat only in
        full mode, and on 1,000 connections at most (asyncore accepts one connection per poll()
        over every descriptor: quadratic)."""
        n = self.idle_connections()[0]
        return [(c, min(n, 1000) if c.family == "asynchat" else n) for c in self.contenders
                if c.family != "raw-lines" and (c.family != "asynchat" or self.full)]

    def census_library(self):
        """bench/heap_census's library, or None where this build has none."""
        path = os.path.join(ROOT, self.build, "bench", "libheap_census.so")
        return path if os.path.exists(path) else None

    def idle(self):
        n, hard = self.idle_connections()
        census_lib = self.census_library()
        if not census_lib:
            self.note(f"idle connections: no heap census ({self.build}/bench/libheap_census.so "
                      "is missing), RSS only")
        if n < 10000:
            self.note(f"idle connections: the descriptor hard limit is {hard}, so {n} connections, "
                      "not 10,000")
        log(f"idle connections: {n} held open, one ping each; server RSS per connection")
        for c, conns in self.idle_plan():
            if c.family == "asynchat":
                self.note(f"idle connections: asynchat gets {conns} connections (asyncore's "
                          "accept loop is quadratic in them)")
            self.progress.step("idle", f"idle connections: {c.name}, {conns} held")
            # The C++ servers run under the heap census (Python's allocator would hide it).
            censused = census_lib is not None and c.family in ("ringchat", "raw")
            entry = {"contender": c.name, "connections": conns}
            with tempfile.TemporaryDirectory() as tmp:
                env, extra = self.env, ["--hold", "0.5"]
                if censused:
                    prefix = os.path.join(tmp, "census")
                    env = dict(self.env, LD_PRELOAD=census_lib, RINGCHAT_HEAP_CENSUS=prefix)
                    extra += ["--census", prefix]
                r = self.serve_and_load(c.argv, c.name, env, conns, 1, 64, extra=extra, timeout=60)
                if censused and r.get("ok"):
                    entry["heap"] = census_per_connection(read_census(prefix + ".1"),
                                                          read_census(prefix + ".2"), conns)
            if not r.get("ok"):
                self.fail(f"idle / {c.name}: {r.get('problem')}")
            entry["run"] = r
            self.results["idle"].append(entry)

    # ---- RESP: redis-benchmark against ringchat resp and redis-server
    def resp_plan(self):
        """(redis-benchmark or None, peers, requests at -P 1, repetitions); -P 16 runs
        RESP_P16_TIMES as many requests (each run then lasts about as long)."""
        peers = [("ringchat-resp-uring", [f"{self.build}/examples/resp", "--backend", "uring"], True),
                 ("ringchat-resp-epoll", [f"{self.build}/examples/resp", "--backend", "epoll"], True)]
        redis = shutil.which("redis-server")
        if redis:
            peers.append(("redis-server", [redis, "--port", "{port}", "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no"], False))
        return (shutil.which("redis-benchmark"), peers, 200000 if self.full else 50000,
                self.args.reps or (3 if self.full else 1))

    def resp_expect(self):
        bench, peers, n, reps = self.resp_plan()
        if bench:
            self.progress.expect("resp-P1", reps * len(peers), 0.5 + 2 * n / 15000)
            self.progress.expect("resp-P16", reps * len(peers),
                                 0.3 + 2 * n * RESP_P16_TIMES / 1200000)

    def resp(self):
        bench, peers, n, reps = self.resp_plan()
        if not bench:
            self.note("RESP: skipped (redis-benchmark is missing: apt-get install redis-tools)")
            return
        if not any(p[0] == "redis-server" for p in peers):
            self.note("RESP: redis-server skipped (not installed: apt-get install redis-server)")
        log(f"RESP: redis-benchmark -t set,get -c 50, -n {n} -P 1 and -n {n * RESP_P16_TIMES} "
            f"-P 16, against "
            f"{', '.join(p[0] for p in peers)}")
        n1 = n
        for pipeline in (1, 16):
            n = n1 * (RESP_P16_TIMES if pipeline == 16 else 1)
            for rep in range(reps):
                for name, argv, port_arg in peers:
                    self.progress.step(f"resp-P{pipeline}", f"RESP -P {pipeline}: {name}"
                                       + (f", run {rep + 1} of {reps}" if reps > 1 else ""))
                    try:
                        port = None if port_arg else free_port()
                        with Server(argv, name, env=self.env, port_arg=port_arg, port=port,
                                    ready=r"ready on [^:]+:(\d+)" if port_arg
                                    else r"[Rr]eady to accept connections") as s:
                            before, slept = cpu_us(s.pid), sleeps(s.pid)
                            rc, out, err = run_client(
                                [bench, "-h", "127.0.0.1", "-p", str(s.port), "-c", "50",
                                 "-n", str(n), "-P", str(pipeline), "-t", "set,get", "--csv", "-q"],
                                timeout=120)
                            used = cpu_us(s.pid) - before
                            after = sleeps(s.pid)
                            slept = None if slept is None or after is None else after - slept
                    except RuntimeError as e:
                        self.fail(f"RESP / {name}: {e}")
                        continue
                    if rc != 0:
                        self.fail(f"RESP -P {pipeline} / {name}: redis-benchmark: {err.strip()[-200:]}")
                        continue
                    for test, rps in parse_redis_csv(out):
                        self.results["resp"].append({"contender": name, "pipeline": pipeline,
                                                     "test": test, "rps": rps, "rep": rep,
                                                     "server_cpu_us_per_req": used / (2 * n),
                                                     "server_sleeps_per_1k": None if slept is None
                                                     else slept * 1000 / (2 * n)})

    # ---- file_send: sendfile against the read path, the sender's CPU (its receiver a thread
    # on the other CPU)
    def file_send(self):
        prog = f"{self.build}/bench/file_send"
        if not os.path.exists(prog):
            self.note("file_send: skipped (not built)")
            return
        argv = [prog, "--size", "1024", "--reps", "7"] if self.full else \
            [prog, "--size", "128", "--reps", "3"]
        log("file_send: zero copy against the read path (" + " ".join(argv[1:]) + ")")
        self.progress.step("file_send", "file_send: " + " ".join(argv[1:]))
        rc, out, err = run_client(argv, 300, cpus=[0, 1])  # it pins its two threads itself
        if rc != 0:
            self.fail(f"file_send: {err.strip()[-200:] or 'exit ' + str(rc)}")
        self.results["file_send"] = (out + err).strip()

    # ---- the verdict: ringchat on io_uring against ringchat on epoll, in words
    def comparisons(self):
        """[(label, CPU-per-request comparison, req/s comparison)] for every scenario where
        ringchat ran on both backends: the echo scenarios, HTTP (wrk), HTTPS and RESP."""
        out = []
        for name, *_ in ECHO_SCENARIOS:
            u, e = self.summary(name, "ringchat-uring"), self.summary(name, "ringchat-epoll")
            if u and e:
                out.append((name, compare(u["cpu_runs"], e["cpu_runs"], True),
                            compare(u["rps_runs"], e["rps_runs"], False)))
        http = self.results.get("http") or []
        runs = lambda c, k: [r[k] for r in http if r["contender"] == c]
        if runs("ringchat-http-uring", "rps") and runs("ringchat-http-epoll", "rps"):
            out.append(("http (wrk)",
                        compare(runs("ringchat-http-uring", "server_cpu_us_per_req"),
                                runs("ringchat-http-epoll", "server_cpu_us_per_req"), True),
                        compare(runs("ringchat-http-uring", "rps"),
                                runs("ringchat-http-epoll", "rps"), False)))
        # over TLS: keep-alive, then new connections (resumed, full), by CPU per connection
        for label, key, kind, cpu_key, rate_key in (
                ("https (wrk)", "https", None, "server_cpu_us_per_req", "rps"),
                ("https resumed", "https_handshakes", "resumed", "server_cpu_us_per_conn",
                 "conn_per_s"),
                ("https full hs", "https_handshakes", "full", "server_cpu_us_per_conn",
                 "conn_per_s")):
            tls = [r for r in self.results.get(key) or []
                   if r.get("ok") and (kind is None or r.get("kind") == kind)]
            side = lambda c, k: [r[k] for r in tls if r["contender"] == c]
            if side("ringchat-http-uring", rate_key) and side("ringchat-http-epoll", rate_key):
                out.append((label,
                            compare(side("ringchat-http-uring", cpu_key),
                                    side("ringchat-http-epoll", cpu_key), True),
                            compare(side("ringchat-http-uring", rate_key),
                                    side("ringchat-http-epoll", rate_key), False)))
        # echo over TLS (the tls-echo scenario): ringchat-uring's TLS runs against epoll's
        for case, *_ in tls_echo_cases():
            u = tls_echo_runs(self.results, case, "ringchat-uring", "TLS")
            e = tls_echo_runs(self.results, case, "ringchat-epoll", "TLS")
            if u and e:
                out.append((f"tls {case}", compare([run_cpu(r) for r in u],
                                                   [run_cpu(r) for r in e], True),
                            compare([r["rps"] for r in u], [r["rps"] for r in e], False)))
        for pipeline in (1, 16):
            side = {}
            for c in ("ringchat-resp-uring", "ringchat-resp-epoll"):
                reps = {}
                for r in self.results.get("resp") or []:
                    if r["contender"] == c and r["pipeline"] == pipeline:
                        reps.setdefault(r["rep"], []).append(r)
                # a run's req/s over SET and GET together (as its CPU per request is)
                side[c] = ([v[0]["server_cpu_us_per_req"] for v in reps.values()],
                           [len(v) / sum(1 / x["rps"] for x in v) for v in reps.values()])
            u, e = side["ringchat-resp-uring"], side["ringchat-resp-epoll"]
            if u[0] and e[0]:
                out.append((f"resp -P {pipeline}", compare(u[0], e[0], True),
                            compare(u[1], e[1], False)))
        return out

    def verdict(self):
        comps = self.comparisons()
        if not comps:
            return [], []
        self.results["verdict"] = [{"scenario": label, "cpu": cpu, "rps": rps}
                                   for label, cpu, rps in comps]
        count = {w: sum(1 for _, c, _ in comps if c["word"] == w)
                 for w in ("ahead", "level", "behind", None)}
        judged = len(comps) - count[None]
        summary = (f"In all, by CPU per request, io_uring is ahead of epoll in {count['ahead']}, "
                   f"level with it in {count['level']} and behind it in {count['behind']} of "
                   f"{judged} scenarios" + (f" ({count[None]} not judged: too few runs)"
                                            if count[None] else "") + ".")
        lines = wrap("Verdict: ringchat on io_uring against ringchat on epoll, by the server's CPU "
                     "per request, then by req/s (+: io_uring's figure is above epoll's).")
        lines += wrap("Rule: " + RULE + ".") + [""]
        words = [(label,) + verdict_words(cpu, rps) for label, cpu, rps in comps]
        w = max([16] + [len(label) for label, _, _ in words])   # the labels' column
        for label, head, tail in words:
            line = f"  {label:<{w}} {head}; {tail}"
            lines += [line] if len(line) <= WIDTH else [line[:3 + w + len(head) + 1],
                                                        " " * (3 + w) + tail]
        lines += [""] + wrap(summary)
        md = ["## Verdict", "", "ringchat on io_uring against ringchat on epoll, by the server's "
              "CPU per request, then by req/s. Rule: " + RULE + ".", ""]
        md += [markdown(["scenario", "io_uring against epoll: CPU per request", "req/s"],
                        [list(w) for w in words])]
        md += ["", summary, ""]
        return lines, md

    # ---- report
    def report(self):
        lines = []
        md = []
        head = ["contender", "req/s", "±", "p50", "p99", "p99.9", "srv CPU", "±", "cli CPU", "ok"]
        groups, mdrows = [], []
        for name, conns, depth, size, _ in ECHO_SCENARIOS:
            rows = []
            for e in self.results["echo"]:
                if e["scenario"] != name:
                    continue
                s = self.summary(e["scenario"], e["contender"])
                rows.append([e["contender"], fmt_num(s["rps"]),
                             fmt_pct(half_range(s["rps_runs"]), False), fmt_num(s["p50"]),
                             fmt_num(s["p99"]), fmt_num(s["p999"]), fmt_num(s["cpu"]),
                             fmt_pct(half_range(s["cpu_runs"]), False), fmt_num(s["client_cpu"]),
                             s["ok"]])
            if rows:
                groups.append((f"{name}: {conns} connection{'s' if conns > 1 else ''}, "
                               f"depth {depth}, {size}-byte messages", rows))
                mdrows += [[name] + r for r in rows]
        if groups:
            legend = (f"medians of {self.results.get('reps', self.reps)} runs; ± = half the min-max "
                      "range, in % of the median; p50, p99, p99.9: latency in us; srv CPU, cli CPU: "
                      "the server's and the load generator's CPU time in us per request (when "
                      "cli CPU is about as large as srv CPU, the client is what limits req/s)")
            lines += ["Line echo", *wrap(legend, WIDTH), "", grouped_table(head, groups), ""]
            md += ["## Line echo", "", legend[0].upper() + legend[1:] + ".", "",
                   markdown(["scenario"] + head, mdrows), ""]

            # ringchat against each baseline of its backend: raw-* echoes bytes (the floor),
            # lines-* finds and echoes each line by hand (the same work as ringchat's echo).
            bhead = ["scenario", "uring÷raw", "CPU", "÷lines", "CPU",
                     "epoll÷raw", "CPU", "÷lines", "CPU"]
            # io_uring against epoll, each family with itself; and ringchat against asynchat.
            uhead = ["scenario", "ringchat", "CPU", "raw", "CPU", "lines", "CPU", "rc-uring÷asynchat"]
            brows, urows = [], []
            for name, *_ in ECHO_SCENARIOS:
                g = {c.name: self.summary(name, c.name) for c in self.contenders}
                if not any(g.values()):
                    continue
                val = lambda c, k: (g.get(c) or {}).get(k)

                def pair(a, b):
                    return [fmt_ratio(val(a, "rps"), val(b, "rps")),
                            fmt_ratio(val(a, "cpu"), val(b, "cpu"))]
                brows.append([name] + pair("ringchat-uring", "raw-uring")
                             + pair("ringchat-uring", "lines-uring")
                             + pair("ringchat-epoll", "raw-epoll")
                             + pair("ringchat-epoll", "lines-epoll"))
                urows.append([name] + pair("ringchat-uring", "ringchat-epoll")
                             + pair("raw-uring", "raw-epoll") + pair("lines-uring", "lines-epoll")
                             + [fmt_ratio(val("ringchat-uring", "rps"), val("asynchat", "rps"))])
            legend = ("each pair: the ratio of the req/s (above 1 is faster), then of the server's "
                      "CPU per request (below 1 is cheaper)")
            blegend = ("ringchat against the hand-written baselines of its backend (uring÷raw: "
                       "ringchat-uring over raw-uring, and so on; raw echoes bytes, the floor; "
                       "lines finds and echoes each line by hand, ringchat's work); " + legend)
            ulegend = ("io_uring against epoll: each family on io_uring over itself on epoll, and "
                       "ringchat on io_uring against Python's asynchat (req/s); " + legend)
            lines += [*wrap(blegend, WIDTH), "", table(bhead, brows), "",
                      *wrap(ulegend, WIDTH), "", table(uhead, urows), ""]
            md += ["## Ratios", "", blegend[0].upper() + blegend[1:] + ".", "",
                   markdown(bhead, brows), "", ulegend[0].upper() + ulegend[1:] + ".", "",
                   markdown(uhead, urows), ""]

        if self.results["syscalls"]:
            shead = ["scenario", "contender", "method", "requests", "syscalls", "per request"]
            srows = [[s["scenario"], s["contender"], s["method"], s["requests"],
                      s["syscalls"] if s["syscalls"] is not None else "-",
                      f"{s['per_request']:.3f}" if s["per_request"] is not None else "-"]
                     for s in self.results["syscalls"]]
            lines += ["Server syscalls per request:", "", table(shead, srows), ""]
            md += ["## Syscalls per request", "", markdown(shead, srows), ""]

        if self.results["idle"]:
            ihead = ["contender", "connections", "RSS before KiB", "RSS after KiB", "B/conn",
                     "heap B/conn", "ok"]
            irows = [[i["contender"], i["connections"], i["run"].get("server_rss_kb_before", "-"),
                      i["run"].get("server_rss_kb_after", "-"),
                      fmt_bytes_per_conn(i["run"].get("server_rss_kb_per_conn")),
                      f"{i['heap']['bytes_per_conn']:.0f}" if i.get("heap") else "-",
                      "yes" if i["run"].get("ok") else "NO"] for i in self.results["idle"]]
            where = [f"{i['contender']}: {fmt_census(i['heap'])}"
                     for i in self.results["idle"] if i.get("heap")]
            lines += ["Idle connections (held open, one ping each; server RSS, and the live heap "
                      "from bench/heap_census):", "", table(ihead, irows), ""]
            md += ["## Idle connections", "", markdown(ihead, irows), ""]
            if where:
                intro = ("Where each connection's heap goes (usable block size x blocks per "
                         "connection, largest share first):")
                lines += wrap(intro) + [l for w in where
                                        for l in textwrap.wrap(w, WIDTH, initial_indent="  ",
                                                               subsequent_indent="    ",
                                                               break_on_hyphens=False)] + [""]
                md += [intro, ""] + [f"- {w}" for w in where] + [""]

        if self.results["resp"]:
            groups = {}
            for r in self.results["resp"]:
                groups.setdefault((r["pipeline"], r["test"], r["contender"]), []).append(r)
            def redis_rps(p, t):
                v = groups.get((p, t, "redis-server"))
                return med([x["rps"] for x in v]) if v else None
            rhead = ["test", "pipeline", "contender", "req/s", "vs redis-server", "srv CPU us/req",
                     "srv waits/1k req"]
            waits = lambda v: [x["server_sleeps_per_1k"] for x in v
                               if x.get("server_sleeps_per_1k") is not None]
            rrows = [[t, f"-P {p}", c, fmt_num(med([x["rps"] for x in v])),
                      fmt_ratio(med([x["rps"] for x in v]), redis_rps(p, t)),
                      fmt_num(med([x["server_cpu_us_per_req"] for x in v])),
                      fmt_num(med(waits(v))) if waits(v) else "-"]
                     for (p, t, c), v in sorted(groups.items())]
            lines += ["RESP (redis-benchmark, 50 connections; CPU per request is over SET and GET "
                      "together):", "", table(rhead, rrows), ""]
            md += ["## RESP", "", markdown(rhead, rrows), ""]

        for part in (http_report, https_report, tls_echo_report, incremental_report,
                     frame_cache_report, registered_ring_report, min_wait_report,
                     scaling_report):
            extra_lines, extra_md = part(self)
            lines += extra_lines
            md += extra_md

        if "file_send" in self.results:
            lines += ["File sending (bench/file_send):", "", self.results["file_send"], ""]
            md += ["## File sending", "", "```", self.results["file_send"], "```", ""]

        notes = self.results["notes"] + ["not done: " + n for n in NOT_YET]
        item = lambda text: textwrap.wrap(text, WIDTH, initial_indent="- ", subsequent_indent="  ",
                                          break_on_hyphens=False)
        if notes:
            lines += ["Notes:"] + [x for n in notes for x in item(n)] + [""]
            md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
        if self.results["failures"]:
            lines += [f"FAILED RUNS ({len(self.results['failures'])}):"] + \
                     [x for f in self.results["failures"] for x in item(f)] + [""]
            md += ["## Failed runs", ""] + [f"- {f}" for f in self.results["failures"]] + [""]
        verdict_lines, verdict_md = self.verdict()
        lines += verdict_lines
        md += verdict_md
        return "\n".join(lines), "\n".join(md)

    # ---- the chart (gnuplot, PNG): what separates the servers, on linear axes
    # io_uring in oranges, epoll in blues; ringchat darkest, then lines, then raw.
    CHART_BARS = [("ringchat-uring", "#d95f02"), ("ringchat-epoll", "#1f78b4"),
                  ("lines-uring", "#fc8d62"), ("lines-epoll", "#6baed6"),
                  ("raw-uring", "#fdd0a2"), ("raw-epoll", "#c6dbef")]
    CHART_BASELINE = "lines-epoll"   # the hand-written epoll server doing ringchat's work
    VERDICT_COLOUR = {"ahead": 0x1a9850, "level": 0x737373, "behind": 0xd73027, None: 0xbdbdbd}

    def chart(self, stamp):
        """Three panels: the server's CPU per request of each echo contender over the baseline's
        (lines-epoll = 1), io_uring and epoll side by side, with the min-max range of the runs as
        error bars; the verdict (ringchat on io_uring over itself on epoll, CPU per request, each
        scenario's noise as a band around 1: a point inside its band is level); and req/s over the
        baseline's, like the first. asynchat, 10 to 20 times the others' CPU, is left out."""
        gnuplot = shutil.which("gnuplot")
        if not gnuplot:
            self.note("chart: skipped (gnuplot is missing: apt-get install gnuplot-nox)")
            return None
        bars = [(n, colour) for n, colour in self.CHART_BARS
                if any(self.summary(s[0], n) for s in ECHO_SCENARIOS)]
        base_name = self.CHART_BASELINE
        scen = [s[0] for s in ECHO_SCENARIOS if self.summary(s[0], base_name)]
        comps = self.comparisons()
        if not scen and not comps:
            return None
        tmp = tempfile.mkdtemp(prefix="ringchat-chart-")
        echo_dat, verdict_dat = os.path.join(tmp, "echo.dat"), os.path.join(tmp, "verdict.dat")
        with open(echo_dat, "w") as f:
            # per scenario, per contender: CPU ratio, its low, high; then the same for req/s
            for name in scen:
                base = self.summary(name, base_name)
                cells = []
                for key in ("cpu", "rps"):
                    for n, _ in bars:
                        v = self.summary(name, n)
                        if v and v[key] and base[key]:
                            lo, hi = v[key + "_range"]
                            cells += [v[key] / base[key], lo / base[key], hi / base[key]]
                        else:
                            cells += ["NaN"] * 3
                f.write(name + " " + " ".join(f"{c:.4f}" if c != "NaN" else c for c in cells)
                        + "\n")
        vlo, vhi = 0.9, 1.1
        with open(verdict_dat, "w") as f:
            for label, cpu, _ in comps:
                if cpu["diff"] is None:
                    continue
                ratio, noise = cpu["diff"] + 1, cpu["noise"] or 0.0
                vlo, vhi = min(vlo, ratio, 1 - noise), max(vhi, ratio, 1 + noise)
                word = (cpu["word"] or "no verdict") + " " + fmt_pct(cpu["diff"])
                f.write(f'"{label}" {ratio:.4f} {1 - noise:.4f} {1 + noise:.4f} '
                        f"{self.VERDICT_COLOUR[cpu['word']]} \"{word}\"\n")
        png = os.path.join(self.args.out, f"{stamp}.png")
        k = len(bars)

        def histogram(first_col):
            return ", ".join(
                f"'{echo_dat}' using {first_col + 3 * i}:{first_col + 3 * i + 1}:"
                f"{first_col + 3 * i + 2}{':xtic(1)' if i == 0 else ''} "
                f"title '{n}' lc rgb '{colour}'" for i, (n, colour) in enumerate(bars))
        panels = []
        if scen:
            panels.append(f"""
set title "Server CPU per request / {base_name}'s (1 = the hand-written epoll server doing the same work; lower is cheaper)"
set ylabel 'CPU per request, ratio'
set yrange [0:*]
plot {histogram(2)}, 1 with lines lc rgb 'black' dt 2 notitle
""")
        if comps:
            panels.append(f"""
set title "Verdict: ringchat on io_uring / on epoll, CPU per request (grey bar: the noise, where the dot is level; green: io_uring ahead, red: behind)"
set style data points
set ylabel 'io_uring / epoll'
set yrange [{vlo - 0.05:.2f}:{vhi + 0.05:.2f}]
set xrange [-0.5:{len(comps) - 0.2}]
unset key
plot '{verdict_dat}' using 0:(1):3:4:xtic(1) with yerrorbars lc rgb '#969696' lw 2 pt -1 notitle, \\
     '' using 0:2:5 with points pt 7 ps 2 lc rgb variable notitle, \\
     '' using 0:2:6:5 with labels left offset 1,0.9 tc rgb variable notitle, \\
     1 with lines lc rgb 'black' dt 2 notitle
set key outside right
unset xrange
set style data histograms
""")
        if scen:
            panels.append(f"""
set title "Requests/s / {base_name}'s (higher is faster; on 2 cores the load generator often sets the pace)"
set ylabel 'req/s, ratio'
set yrange [0:*]
plot {histogram(2 + 3 * k)}, 1 with lines lc rgb 'black' dt 2 notitle
""")
        script = f"""
set terminal pngcairo size 1400,{380 * len(panels) + 80} noenhanced font ',11'
set output '{png}'
set multiplot layout {len(panels)},1 title 'ringchat bench, {self.results["mode"]} mode, {self.results.get("reps")} runs each; line echo unless named (error bars: min-max of the runs; asynchat left out: off the scale)'
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.9 border -1
set key outside right
set grid ytics
set xtics nomirror
set bars 0.5
set lmargin 10
set rmargin at screen 0.86
{"".join(panels)}
unset multiplot
"""
        p = subprocess.run([gnuplot], input=script, capture_output=True, text=True, timeout=60)
        if p.returncode != 0 and "pngcairo" in p.stderr:
            p = subprocess.run([gnuplot], input=script.replace("pngcairo", "png")
                               .replace(" font ',11'", ""),
                               capture_output=True, text=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
        if p.returncode != 0:
            self.note(f"chart: gnuplot failed: {p.stderr.strip()[-200:]}")
            return None
        return png


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_redis_csv(text):
    out = []
    for line in text.splitlines():
        cells = [c.strip('"') for c in line.strip().split('","')]
        if len(cells) >= 2 and cells[0] in ("SET", "GET"):
            try:
                out.append((cells[0], float(cells[1])))
            except ValueError:
                pass
    return out


# --------------------------------------------------------------------------------------------
# HTTP: wrk against ringchat `http` (both backends) and nginx; a large file over HTTP with the
# zero-copy path (sendfile) against the read path.

NGINX_CONF = """user root;
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 10000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{ text/html html; application/octet-stream bin; }}
    server {{ listen 127.0.0.1:{port}{ssl}; root {root};{tls} }}
}}
"""


def nginx_conf(conf_dir, port, root, cert=None, key=None):
    """Writes nginx.conf into conf_dir and returns its path; with cert and key, the server
    speaks TLS 1.3 only, with that certificate (everything else at nginx's defaults: session
    tickets on, no session cache)."""
    tls = (f" ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.3;"
           if cert else "")
    conf = os.path.join(conf_dir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=conf_dir, port=port, root=root, ssl=" ssl" if cert else "",
                                  tls=tls))
    return conf


BIG_MIB = 64


def make_site(root):
    """The files the HTTP and HTTPS scenarios serve: index.html (about 1 KiB) and big.bin
    (BIG_MIB MiB)."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<html><body>" + "ringchat " * 110 + "</body></html>\n")  # about 1 KiB
    with open(os.path.join(root, "big.bin"), "wb") as f:
        block = bytes(range(256)) * 4096
        for _ in range(BIG_MIB):
            f.write(block)


def tree_cpu_us(pid):
    """CPU time of `pid` and its children (nginx's master and worker)."""
    total = cpu_us(pid)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        total += cpu_us(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return total


class PortServer(Server):
    """A server that prints no ready line (nginx): ready once its port accepts."""

    def __init__(self, argv, name, port, timeout=15.0):
        self.name = name
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL, preexec_fn=pinned(0), cwd=ROOT)
        self.pid = self.proc.pid
        self.port = port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({self.proc.returncode}): {self._tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} did not accept on port {port} in {timeout:.0f} s")


def find_nginx():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx")
                                     else None)


def http_plan(suite):
    """The steps http_scenarios will take: [(kind, count, nominal seconds each)]."""
    if not suite.extra_selected("http") or not os.path.exists(f"{suite.build}/examples/http"):
        return []
    steps = []
    if shutil.which("wrk"):
        steps.append(("wrk", suite.reps * (3 if find_nginx() else 2), 5.4 if suite.full else 2.4))
    if shutil.which("curl"):
        steps.append(("curl", suite.reps * 4, 0.3))
    return steps


def http_scenarios(suite):
    if not suite.extra_selected("http"):
        return
    prog = f"{suite.build}/examples/http"
    wrk, curl = shutil.which("wrk"), shutil.which("curl")
    if not os.path.exists(prog):
        suite.note("HTTP: skipped (examples/http is not built)")
        return
    suite.results["http"], suite.results["http_file"] = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "www")
        make_site(root)
        big_mib = BIG_MIB
        peers = [("ringchat-http-uring", [prog, "--root", root, "--backend", "uring"]),
                 ("ringchat-http-epoll", [prog, "--root", root, "--backend", "epoll"])]
        nginx = find_nginx()
        if not nginx:
            suite.note("HTTP: nginx skipped (not installed: apt-get install nginx)")
        if wrk:
            duration = "5s" if suite.full else "2s"
            log(f"HTTP: wrk -t1 -c100 -d{duration} on a 1 KiB file against "
                + ", ".join([p[0] for p in peers] + (["nginx"] if nginx else [])))
            for rep in range(suite.reps):
                runs = [(n, a, None) for n, a in peers]
                if nginx:
                    runs.append(("nginx", None, tmp))
                for name, argv, conf_dir in runs:
                    suite.progress.step("wrk", f"HTTP wrk: {name}, run {rep + 1} of {suite.reps}")
                    try:
                        if conf_dir is None:
                            server = Server(argv, name, env=suite.env)
                        else:
                            port = free_port()
                            conf = nginx_conf(conf_dir, port, root)
                            server = PortServer([nginx, "-c", conf], name, port)
                        with server as s:
                            before = tree_cpu_us(s.pid)
                            rc, out, err = run_client(
                                [wrk, "-t1", "-c100", f"-d{duration}", "--latency",
                                 f"http://127.0.0.1:{s.port}/index.html"], timeout=60)
                            used = tree_cpu_us(s.pid) - before
                    except RuntimeError as e:
                        suite.fail(f"HTTP / {name}: {e}")
                        continue
                    total = re.search(r"(\d+) requests in", out)
                    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
                    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
                    if rc != 0 or not total or not rps:
                        suite.fail(f"HTTP / {name}: wrk: {(err or out).strip()[-200:]}")
                        continue
                    if "Non-2xx" in out or "Socket errors" in out:
                        suite.fail(f"HTTP / {name}: wrk saw errors: "
                                   + " ".join(l.strip() for l in out.splitlines()
                                              if "Non-2xx" in l or "Socket errors" in l))
                    scale = {"us": 1, "ms": 1e3, "s": 1e6}
                    suite.results["http"].append({
                        "contender": name, "rep": rep, "rps": float(rps.group(1)),
                        "p99_us": float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
                        "server_cpu_us_per_req": used / max(1, int(total.group(1)))})
        else:
            suite.note("HTTP: wrk skipped (not installed: apt-get install wrk)")
        if not curl:
            suite.note("HTTP file serving: skipped (curl is missing: apt-get install curl)")
            return
        log(f"HTTP file serving: a {big_mib} MiB file with curl, sendfile against the read path")
        for rep in range(suite.reps):
            for name, argv in peers:
                for path, extra in (("zero copy", []), ("read", ["--no-zero-copy"])):
                    suite.progress.step("curl", f"HTTP file: {name}, {path}, run {rep + 1} of "
                                        f"{suite.reps}")
                    try:
                        with Server(argv + extra, name, env=suite.env) as s:
                            before = cpu_us(s.pid)
                            rc, out, err = run_client(
                                [curl, "-s", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
                                 f"http://127.0.0.1:{s.port}/big.bin"], timeout=120)
                            used = cpu_us(s.pid) - before
                    except RuntimeError as e:
                        suite.fail(f"HTTP file / {name} / {path}: {e}")
                        continue
                    parts = out.split()
                    if rc != 0 or len(parts) != 2 or int(float(parts[0])) != big_mib << 20:
                        suite.fail(f"HTTP file / {name} / {path}: curl: {out} {err.strip()[-200:]}")
                        continue
                    seconds = float(parts[1])
                    suite.results["http_file"].append({
                        "contender": name, "path": path, "rep": rep,
                        "mib_per_s": big_mib / seconds if seconds > 0 else None,
                        "server_cpu_ms_per_gib": used / 1000 * 1024 / big_mib})


def http_report(suite):
    lines, md = [], []
    if suite.results.get("http"):
        groups = {}
        for r in suite.results["http"]:
            groups.setdefault(r["contender"], []).append(r)
        nginx_rps = med([x["rps"] for x in groups["nginx"]]) if "nginx" in groups else None
        head = ["contender", "req/s", "p99 us", "vs nginx", "srv CPU us/req"]
        rows = [[c, fmt_num(med([x["rps"] for x in v])), fmt_num(med([x["p99_us"] for x in v])),
                 fmt_ratio(med([x["rps"] for x in v]), nginx_rps),
                 fmt_num(med([x["server_cpu_us_per_req"] for x in v]))]
                for c, v in sorted(groups.items())]
        lines += ["HTTP (wrk -t1 -c100, a 1 KiB file; the server's CPU per request):", "",
                  table(head, rows), ""]
        md += ["## HTTP", "", markdown(head, rows), ""]
    if suite.results.get("http_file"):
        groups = {}
        for r in suite.results["http_file"]:
            groups.setdefault((r["contender"], r["path"]), []).append(r)
        head = ["contender", "path", "MiB/s", "srv CPU ms/GiB", "speed vs read", "CPU vs read"]
        rows = []
        for (c, p), v in sorted(groups.items()):
            speed = med([x["mib_per_s"] for x in v])
            cpu = med([x["server_cpu_ms_per_gib"] for x in v])
            base = groups.get((c, "read"), [])
            rows.append([c, p, fmt_num(speed), fmt_num(cpu),
                         fmt_ratio(speed, med([x["mib_per_s"] for x in base])),
                         fmt_ratio(cpu, med([x["server_cpu_ms_per_gib"] for x in base]))])
        lines += ["HTTP file serving (a 64 MiB file, curl; zero copy = sendfile):", "",
                  table(head, rows), ""]
        md += ["## HTTP file serving", "", markdown(head, rows), ""]
    return lines, md


EXTRA_SCENARIOS.append((http_scenarios, "http", http_plan))


# --------------------------------------------------------------------------------------------
# HTTPS: the HTTP scenarios over TLS 1.3, ringchat `http --tls-cert --tls-key` (both backends)
# against nginx (`listen ... ssl`, TLSv1.3 only) with the same certificate, made once per run:
# keep-alive requests (wrk), new connections (handshakes: wrk with Connection: close, which
# resumes sessions, and openssl s_time -new, which does full ones), and the 64 MiB file (curl).

HTTPS_CONTENDERS = ("ringchat-http-uring", "ringchat-http-epoll", "nginx")
HANDSHAKE_CONNS = 32   # wrk -c for the Connection: close runs


def http_has_tls(build, program="examples/http", option="--tls-cert"):
    """(True, "") where `program` of the build (examples/http, examples/echo, bench/loadgen)
    speaks TLS (its --help lists `option`, and the build found OpenSSL), else (False, why)."""
    prog = f"{build}/{program}"
    if not os.path.exists(prog):
        return False, f"{program} is not built"
    try:
        usage = subprocess.run([prog, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{program} --help: {e}"
    if option not in usage:
        return False, f"{program} has no {option} (a build from before TLS)"
    try:
        with open(f"{build}/version.hpp") as f:
            if re.search(r"#define RINGCHAT_HAS_TLS 0\b", f.read()):
                return False, (f"{program} was built without TLS (OpenSSL 3 not found: "
                               "apt-get install libssl-dev, then meson configure -Dtls=enabled)")
    except OSError:
        pass
    return True, ""


def https_ready(suite):
    """(True, "") where the HTTPS scenarios can run, else (False, why); worked out once."""
    if not hasattr(suite, "_https_ready"):
        ok, why = http_has_tls(suite.build)
        if ok and not shutil.which("openssl"):
            ok, why = False, "the openssl command is missing (apt-get install openssl)"
        suite._https_ready = (ok, why)
    return suite._https_ready


def https_setup(suite, ready=https_ready, what="HTTPS"):
    """The run's certificate and site, made once for every scenario over TLS (the HTTPS ones,
    TLS echo; a P-256 key, valid 2 days, for localhost and 127.0.0.1): {"dir", "root", "cert",
    "key"}, or None after a note. ready(suite) -> (ok, why) says whether the scenario asking
    can run; where it cannot, the note ("<what>: skipped (why)") is made once per `what`."""
    ok, why = ready(suite)
    if not ok:
        skipped = suite.__dict__.setdefault("_tls_skipped", set())
        if what not in skipped:
            skipped.add(what)
            suite.note(f"{what}: skipped ({why})")
        return None
    if hasattr(suite, "_https"):
        return suite._https
    suite._https = None
    tmp = tempfile.TemporaryDirectory(prefix="ringchat-bench-tls-")
    suite.cleanups.append(tmp.cleanup)
    cert, key = os.path.join(tmp.name, "cert.pem"), os.path.join(tmp.name, "key.pem")
    p = subprocess.run([shutil.which("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        suite.fail(f"HTTPS: openssl req could not make a certificate: {p.stderr.strip()[-200:]}")
        return None
    root = os.path.join(tmp.name, "www")
    make_site(root)
    suite._https = {"dir": tmp.name, "root": root, "cert": cert, "key": key}
    return suite._https


def https_server(suite, setup, name, tls=True):
    """Starts one contender on a free port: ringchat's http over TLS (or plaintext, tls=False),
    or nginx over TLS."""
    if name == "nginx":
        port = free_port()
        conf = nginx_conf(setup["dir"], port, setup["root"], setup["cert"], setup["key"])
        return PortServer([find_nginx(), "-c", conf], name, port)
    argv = [f"{suite.build}/examples/http", "--root", setup["root"], "--backend",
            name.rsplit("-", 1)[1]]
    if tls:
        argv += ["--tls-cert", setup["cert"], "--tls-key", setup["key"]]
    return Server(argv, name, env=suite.env)


def tls_probe(suite, setup, name, port):
    """What `openssl s_client` negotiates with a contender (once per run each, before a measured
    run, outside its interval): protocol, cipher, key exchange group; and whether the server
    resumes a session from the ticket it sent (wrk offers it on every new connection)."""
    probed = suite.results.setdefault("https_tls", {})
    if name in probed:
        return
    openssl = shutil.which("openssl")
    sess = os.path.join(setup["dir"], f"{name}.sess")
    request = "GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    texts = []
    for extra in (["-sess_out", sess], ["-sess_in", sess]):
        try:
            p = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{port}",
                                "-servername", "localhost", "-CAfile", setup["cert"], "-ign_eof"]
                               + extra, input=request, capture_output=True, text=True,
                               timeout=15, preexec_fn=pinned(1))
            texts.append(p.stdout + p.stderr)
        except subprocess.TimeoutExpired:
            texts.append("")
        if not os.path.exists(sess):
            break
    first = texts[0]
    new = re.search(r"^New, (\S+), Cipher is (\S+)", first, re.M)
    group = re.search(r"Server Temp Key: ([^,\n]+)", first)
    probed[name] = {
        "protocol": new.group(1) if new else None, "cipher": new.group(2) if new else None,
        "group": group.group(1).strip() if group else None,
        "verified": "Verify return code: 0 (ok)" in first,
        "resumes": bool(len(texts) > 1 and re.search(r"^Reused, ", texts[1], re.M))}
    if not new:
        suite.fail(f"HTTPS / {name}: openssl s_client negotiated nothing: "
                   f"{first.strip()[-200:]}")


def wrk_measure(wrk, server, extra, url, duration, timeout=60, threads=1, cpus=1,
                cpu=tree_cpu_us):
    """One wrk run (-t `threads`, on `cpus`) against a started server: {"requests", "rps",
    "p99_us", "socket_errors": {"connect", "read", "write", "timeout"}, "non_2xx",
    "server_cpu_us"} (the server's CPU as `cpu` reads it), or {"problem"}."""
    before = cpu(server.pid)
    rc, out, err = run_client([wrk, f"-t{threads}", f"-d{duration}", "--latency"] + list(extra)
                              + [url], timeout=timeout, cpus=cpus)
    used = cpu(server.pid) - before
    r = parse_wrk(out)
    if rc != 0 or r is None:
        return {"problem": f"wrk: {(err or out).strip()[-200:]}"}
    return dict(r, server_cpu_us=used)


def parse_wrk(out):
    """wrk --latency's output: {"requests", "rps", "p99_us", "socket_errors", "non_2xx"}, or
    None when it has no request count."""
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not total or not rps:
        return None
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    scale = {"us": 1, "ms": 1e3, "s": 1e6}
    return {"requests": int(total.group(1)), "rps": float(rps.group(1)),
            "p99_us": float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
            "socket_errors": dict(zip(("connect", "read", "write", "timeout"),
                                      (int(x) for x in sock.groups()))) if sock else {},
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def wrk_problems(r):
    """What is wrong with a wrk run, in words ("" when nothing): any socket error or non-2xx
    response. (A Connection: close run shows none either: wrk reconnects by itself after each
    response that says Connection: close, and counts no error for it.)"""
    if "problem" in r:
        return r["problem"]
    bad = [f"{k} {v}" for k, v in r["socket_errors"].items() if v]
    if r["non_2xx"]:
        bad.append(f"non-2xx {r['non_2xx']}")
    return ("wrk saw errors: " + ", ".join(bad)) if bad else ""


def https_contenders(suite):
    return [c for c in HTTPS_CONTENDERS if c != "nginx" or find_nginx()]


def wrk_duration(suite):
    return "5s" if suite.full else "2s"


def https_plan(suite):
    """The steps of the HTTPS keep-alive scenario (wrk): [(kind, count, nominal seconds)]."""
    if not shutil.which("wrk") or not https_ready(suite)[0]:
        return []
    return [("wrk-tls", suite.reps * len(https_contenders(suite)), 5.6 if suite.full else 2.6)]


def https_scenario(suite):
    setup = https_setup(suite)
    wrk = shutil.which("wrk")
    if not setup or not wrk:
        if setup:
            suite.note("HTTPS: wrk skipped (not installed: apt-get install wrk)")
        return
    if not find_nginx():
        suite.note("HTTPS: nginx skipped (not installed: apt-get install nginx)")
    names = https_contenders(suite)
    duration = wrk_duration(suite)
    log(f"HTTPS: wrk -t1 -c100 -d{duration} over TLS 1.3 on a 1 KiB file against "
        + ", ".join(names))
    runs = suite.results.setdefault("https", [])
    for rep in range(suite.reps):
        for name in names:
            suite.progress.step("wrk-tls", f"HTTPS wrk: {name}, run {rep + 1} of {suite.reps}")
            try:
                with https_server(suite, setup, name) as s:
                    tls_probe(suite, setup, name, s.port)
                    r = wrk_measure(wrk, s, ["-c100"], f"https://127.0.0.1:{s.port}/index.html",
                                    duration)
            except RuntimeError as e:
                r = {"problem": str(e)}
            problem = wrk_problems(r)
            if problem:
                suite.fail(f"HTTPS / {name} run {rep + 1}: {problem}")
            runs.append(dict(r, contender=name, rep=rep, ok=not problem,
                             server_cpu_us_per_req=r["server_cpu_us"] / max(1, r["requests"])
                             if "requests" in r else None))


def handshakes_plan(suite):
    if not https_ready(suite)[0]:
        return []
    n = len(https_contenders(suite))
    per = 5.6 if suite.full else 2.6
    steps = []
    if shutil.which("wrk"):
        steps.append(("wrk-handshake", suite.reps * n, per))
        if find_nginx():
            steps.append(("tls-probe", 1, 2.0 if suite.full else 1.6))
    steps.append(("s_time", suite.reps * n, per))
    return steps


def handshakes_scenario(suite):
    """New TLS connections per second, one request each, two ways, on one server start a
    run: wrk -c32 -H "Connection: close" (wrk resumes the session of the ticket it got on every
    new connection: after each connection's first, these are resumed handshakes, PSK with
    ECDHE, no certificate), then openssl s_time -new (a full handshake each, one connection at
    a time). Then, where nginx is installed, one short wrk run against an nginx that logs
    $ssl_session_reused, to say how many of wrk's handshakes were resumed."""
    setup = https_setup(suite)
    if not setup:
        return
    wrk, openssl = shutil.which("wrk"), shutil.which("openssl")
    if not wrk:
        suite.note("HTTPS handshakes: wrk skipped (not installed: apt-get install wrk)")
    names = https_contenders(suite)
    duration = wrk_duration(suite)
    seconds = float(duration[:-1])
    log(f"HTTPS handshakes: wrk -t1 -c{HANDSHAKE_CONNS} -d{duration} -H 'Connection: close' "
        f"(resumed), then openssl s_time -new -time {seconds:.0f} (full), against "
        + ", ".join(names))
    runs = suite.results.setdefault("https_handshakes", [])
    for rep in range(suite.reps):
        for name in names:
            what = f"{name}, run {rep + 1} of {suite.reps}"
            if wrk:
                suite.progress.step("wrk-handshake", f"HTTPS handshakes, wrk: {what}")
            try:
                with https_server(suite, setup, name) as s:
                    tls_probe(suite, setup, name, s.port)
                    if wrk:
                        r = wrk_measure(wrk, s, [f"-c{HANDSHAKE_CONNS}", "-H", "Connection: close"],
                                        f"https://127.0.0.1:{s.port}/index.html", duration)
                        problem = wrk_problems(r)
                        if problem:
                            suite.fail(f"HTTPS handshakes / {name} run {rep + 1}: {problem}")
                        runs.append(dict(r, contender=name, rep=rep, kind="resumed", ok=not problem,
                                         conn_per_s=r.get("rps"),
                                         server_cpu_us_per_conn=r["server_cpu_us"] /
                                         max(1, r["requests"]) if "requests" in r else None))
                    suite.progress.step("s_time", f"HTTPS handshakes, s_time -new: {what}")
                    r = s_time_measure(openssl, s, seconds)
                    if r.get("problem"):
                        suite.fail(f"HTTPS full handshakes / {name} run {rep + 1}: {r['problem']}")
                    runs.append(dict(r, contender=name, rep=rep, kind="full",
                                     ok=not r.get("problem")))
            except RuntimeError as e:
                suite.fail(f"HTTPS handshakes / {name} run {rep + 1}: {e}")
                runs += [{"contender": name, "rep": rep, "kind": kind, "ok": False,
                          "problem": str(e)} for kind in ("resumed", "full")]
    if wrk and find_nginx():
        suite.progress.step("tls-probe", "HTTPS handshakes: how many of wrk's nginx resumed")
        suite.results["https_resumed"] = nginx_resumed(suite, setup, wrk)


def s_time_measure(openssl, server, seconds):
    """openssl s_time -new: full handshakes one after another for `seconds`, each with a GET
    of /index.html (HTTP/1.0: the server closes); {"connections", "conn_per_s" (over the wall
    time of the run), "server_cpu_us_per_conn"} or {"problem"}."""
    before = tree_cpu_us(server.pid)
    t0 = time.monotonic()
    rc, out, err = run_client([openssl, "s_time", "-connect", f"127.0.0.1:{server.port}", "-new",
                               "-time", f"{seconds:.0f}", "-www", "/index.html"],
                              timeout=seconds + 60)
    wall = time.monotonic() - t0
    used = tree_cpu_us(server.pid) - before
    m = re.search(r"(\d+) connections in [\d.]+s;", out)
    if rc != 0 or not m or int(m.group(1)) == 0:
        return {"problem": f"openssl s_time: {(err or out).strip()[-200:] or f'exit {rc}'}"}
    n = int(m.group(1))
    per_conn = re.search(r"(\d+) bytes read per connection", out)
    return {"connections": n, "conn_per_s": n / wall, "server_cpu_us_per_conn": used / n,
            "bytes_per_conn": int(per_conn.group(1)) if per_conn else None}


NGINX_RESUMED_LOG = 'log_format reused "$ssl_session_reused"; access_log {log} reused;'


def nginx_resumed(suite, setup, wrk):
    """One short wrk Connection: close run against nginx logging $ssl_session_reused ("r" or
    "."): {"resumed", "connections"}, or {"problem"}. Not measured: the log has a cost."""
    log_path = os.path.join(setup["dir"], "reused.log")
    port = free_port()
    conf = nginx_conf(setup["dir"], port, setup["root"], setup["cert"], setup["key"])
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("access_log off;", NGINX_RESUMED_LOG.format(log=log_path)))
    try:
        with PortServer([find_nginx(), "-c", conf], "nginx", port) as s:
            r = wrk_measure(wrk, s, [f"-c{HANDSHAKE_CONNS}", "-H", "Connection: close"],
                            f"https://127.0.0.1:{port}/index.html", "1s")
    except RuntimeError as e:
        return {"problem": str(e)}
    if "problem" in r:
        return r
    try:
        with open(log_path) as f:
            marks = f.read().split()
    except OSError as e:
        return {"problem": f"nginx wrote no log: {e}"}
    return {"resumed": marks.count("r"), "connections": len(marks)}


def ktls_note():
    """What this kernel says about kTLS (net.ipv4.tcp_available_ulp lists "tls" where the tls
    module is loaded or built in), and what that means for the HTTPS file."""
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            ulps = f.read().split()
    except OSError:
        ulps = None
    listed = " ".join(ulps) if ulps else "nothing"
    head = ("kTLS is available on this kernel (net.ipv4.tcp_available_ulp: " + listed + "), but "
            if ulps and "tls" in ulps else
            "kTLS is not available on this kernel (net.ipv4.tcp_available_ulp: " + listed + "), and ")
    return ("HTTPS file: " + head + "ringchat has no kTLS path yet: over TLS it reads the file "
            "into memory and encrypts it, where plaintext goes out with sendfile; nginx as "
            "configured here does the same (no ssl_conf_command Options KTLS)")


def https_file_plan(suite):
    if not shutil.which("curl") or not https_ready(suite)[0]:
        return []
    return [("curl-tls", suite.reps * (len(https_contenders(suite)) + 2), 0.6)]


def https_file_scenario(suite):
    """The 64 MiB file over HTTPS with curl --cacert, ringchat on both backends and nginx, and
    beside them ringchat over plaintext with sendfile (the HTTP file scenario's zero copy), so
    that the cost of TLS shows within one run."""
    setup = https_setup(suite)
    curl = shutil.which("curl")
    if not setup or not curl:
        if setup:
            suite.note("HTTPS file: skipped (curl is missing: apt-get install curl)")
        return
    suite.note(ktls_note())
    names = https_contenders(suite)
    contenders = [(n, True) for n in names] + [(n, False) for n in names if n != "nginx"]
    log(f"HTTPS file: a {BIG_MIB} MiB file with curl over TLS against {', '.join(names)}; "
        "ringchat over plaintext (sendfile) beside them")
    runs = suite.results.setdefault("https_file", [])
    for rep in range(suite.reps):
        for name, tls in contenders:
            transport = "TLS" if tls else "plain, zero copy"
            suite.progress.step("curl-tls", f"HTTPS file: {name}, {transport}, run {rep + 1} of "
                                f"{suite.reps}")
            scheme = "https" if tls else "http"
            try:
                with https_server(suite, setup, name, tls=tls) as s:
                    if tls:
                        tls_probe(suite, setup, name, s.port)
                    before = tree_cpu_us(s.pid)
                    rc, out, err = run_client(
                        [curl, "-s", "--cacert", setup["cert"], "-o", "/dev/null", "-w",
                         "%{size_download} %{time_total}",
                         f"{scheme}://127.0.0.1:{s.port}/big.bin"], timeout=120)
                    used = tree_cpu_us(s.pid) - before
            except RuntimeError as e:
                suite.fail(f"HTTPS file / {name} / {transport}: {e}")
                continue
            parts = out.split()
            if rc != 0 or len(parts) != 2 or int(float(parts[0])) != BIG_MIB << 20:
                suite.fail(f"HTTPS file / {name} / {transport}: curl: {out} "
                           f"{err.strip()[-200:]}")
                continue
            seconds = float(parts[1])
            runs.append({"contender": name, "transport": transport, "rep": rep,
                         "mib_per_s": BIG_MIB / seconds if seconds > 0 else None,
                         "server_cpu_ms_per_gib": used / 1000 * 1024 / BIG_MIB})


def https_handshake_share(res):
    """How much of the keep-alive runs' CPU per request went to the full handshakes of wrk's 100
    connections at their start, at the cost per full handshake the handshake scenario measured
    (a sentence, or None without both)."""
    full = [r for r in res.get("https_handshakes") or [] if r.get("ok") and r.get("kind") == "full"]
    parts = []
    for c in HTTPS_CONTENDERS:
        ka = [r for r in res.get("https") or [] if r.get("ok") and r["contender"] == c]
        hs = med([r["server_cpu_us_per_conn"] for r in full if r["contender"] == c])
        total = med([r["server_cpu_us"] for r in ka if "server_cpu_us" in r])
        if hs and total:
            parts.append(f"{c} {fmt_pct(100 * hs / total, False)}")
    if not parts:
        return None
    return ("Each keep-alive run counts the full handshakes of wrk's 100 connections at its start: "
            "at the cost of a full handshake measured below, that is this much of the server's "
            "CPU in a run: " + ", ".join(parts) + ".")


def https_report(suite):
    """The HTTPS sections of the report: (terminal lines, Markdown lines)."""
    res = suite.results
    lines, md = [], []
    ratio_words = lambda rate: (f"ratios over nginx's: {rate} above 1 is faster, CPU below 1 "
                                "is cheaper")
    reps = res.get("reps", suite.reps)
    if res.get("https_tls"):
        seen = {}
        for name, t in res["https_tls"].items():
            words = (f"{t['protocol'] or '?'} {t['cipher'] or '?'} {t['group'] or '?'}, "
                     f"{'resumes sessions' if t['resumes'] else 'resumes no session'}")
            seen.setdefault(words, []).append(name)
        text = "TLS as openssl s_client negotiated it: " + "; ".join(
            f"{', '.join(n)}: {w}" for w, n in seen.items()) + "."
        lines += wrap(text) + [""]
        md += [text, ""]

    def rows_of(runs, rate, cpu, p99=True):
        """A row per contender: medians of its clean runs, and their ratios over nginx's."""
        groups = {}
        for r in runs:
            groups.setdefault(r["contender"], []).append(r)
        ok = lambda v: [x for x in v if x.get("ok")]
        base = ok(groups.get("nginx", []))
        base_rate, base_cpu = med([x[rate] for x in base]), med([x[cpu] for x in base])
        rows = []
        for c in [n for n in HTTPS_CONTENDERS if n in groups]:
            v = ok(groups[c])
            rt, cp = [x[rate] for x in v], [x[cpu] for x in v]
            rows.append([c, fmt_num(med(rt)), fmt_pct(half_range(rt), False)]
                        + ([fmt_num(med([x.get("p99_us") for x in v]))] if p99 else [])
                        + [fmt_num(med(cp)), fmt_pct(half_range(cp), False),
                         fmt_ratio(med(rt), base_rate), fmt_ratio(med(cp), base_cpu),
                         sum(sum(x.get("socket_errors", {}).values()) for x in groups[c]),
                         f"{len(v)}/{len(groups[c])}"])
        return rows

    if res.get("https"):
        head = ["contender", "req/s", "±", "p99 us", "CPU us/req", "±", "req/s÷nginx",
                "CPU÷nginx", "sock err", "ok"]
        rows = rows_of(res["https"], "rps", "server_cpu_us_per_req")
        legend = (f"HTTPS keep-alive (wrk -t1 -c100 over TLS 1.3, a 1 KiB file; medians of "
                  f"{reps} runs, ± half the min-max range; the server's CPU per request; "
                  f"{ratio_words('req/s')}):")
        share = https_handshake_share(res)
        lines += wrap(legend) + ["", table(head, rows), ""] + (wrap(share) + [""] if share else [])
        md += ["## HTTPS", "", legend[:-1] + ".", "", markdown(head, rows), ""]
        md += [share, ""] if share else []
    if res.get("https_handshakes"):
        head = ["contender", "conn/s", "±", "CPU us/conn", "±", "conn/s÷nginx",
                "CPU÷nginx", "sock err", "ok"]
        resumed = res.get("https_resumed") or {}
        if resumed.get("connections"):
            share = (f"{resumed['resumed']} of {resumed['connections']} of nginx's in a 1 s "
                     f"run were resumed")
        else:
            share = "how many were resumed: not measured"
        groups = []
        for kind, title in (
                ("resumed", f"resumed: wrk -c{HANDSHAKE_CONNS} -H 'Connection: close' (wrk offers "
                            f"its session ticket on each new connection; {share})"),
                ("full", "full: openssl s_time -new (one connection at a time, a full "
                         "handshake each)")):
            rows = rows_of([r for r in res["https_handshakes"] if r.get("kind") == kind],
                           "conn_per_s", "server_cpu_us_per_conn", p99=False)
            if rows:
                groups.append((title, rows))
        legend = (f"HTTPS handshakes: new TLS connections per second, one request each (a 1 KiB "
                  f"file), and the server's CPU per connection; medians of {reps} runs; "
                  f"{ratio_words('conn/s')}:")
        # the kinds' explanations above the table, their names alone as its group titles
        item = lambda t: textwrap.wrap(t, WIDTH, initial_indent="- ", subsequent_indent="  ",
                                       break_on_hyphens=False)
        lines += wrap(legend) + [x for t, _ in groups for x in item(t)]
        lines += ["", grouped_table(head, [(t.split(":")[0] + ":", r) for t, r in groups]), ""]
        md += ["## HTTPS handshakes", "", legend[:-1] + ".", ""]
        md += [markdown(["kind"] + head, [[t.split(":")[0]] + r for t, g in groups for r in g]),
               ""] + [f"- {t}" for t, _ in groups] + [""]
    if res.get("https_file"):
        groups = {}
        for r in res["https_file"]:
            groups.setdefault((r["contender"], r["transport"]), []).append(r)
        speed = lambda k: med([x["mib_per_s"] for x in groups.get(k, [])])
        cpu = lambda k: med([x["server_cpu_ms_per_gib"] for x in groups.get(k, [])])
        head = ["contender", "transport", "MiB/s", "srv CPU ms/GiB", "speed÷nginx", "CPU÷nginx",
                "CPU÷plain"]
        order = [(c, "TLS") for c in HTTPS_CONTENDERS] + \
                [(c, "plain, zero copy") for c in HTTPS_CONTENDERS]
        rows = [[c, t, fmt_num(speed((c, t))), fmt_num(cpu((c, t)))]
                + ([fmt_ratio(speed((c, t)), speed(("nginx", "TLS"))),
                    fmt_ratio(cpu((c, t)), cpu(("nginx", "TLS"))),
                    fmt_ratio(cpu((c, t)), cpu((c, "plain, zero copy")))] if t == "TLS"
                   else ["-", "-", "-"])
                for c, t in order if (c, t) in groups]
        legend = (f"HTTPS file serving (a {BIG_MIB} MiB file, curl --cacert; medians of {reps} "
                  "runs; over TLS, ratios over nginx's: speed above 1 is faster, CPU below 1 is "
                  "cheaper; CPU÷plain: over TLS against the same server over plaintext with "
                  "sendfile, the HTTP file scenario's zero copy; no kTLS, see the notes):")
        lines += wrap(legend) + ["", table(head, rows), ""]
        md += ["## HTTPS file serving", "", legend[:-1] + ".", "", markdown(head, rows), ""]
    return lines, md


EXTRA_SCENARIOS.append((https_scenario, "https", https_plan))
EXTRA_SCENARIOS.append((handshakes_scenario, "https-handshakes", handshakes_plan))
EXTRA_SCENARIOS.append((https_file_scenario, "https-file", https_file_plan))


# --------------------------------------------------------------------------------------------
# TLS echo: examples/echo over TLS 1.3 (--tls-cert, --tls-key: the HTTPS scenarios' certificate)
# against the same echo over plaintext, on both backends, interleaved in one run, measured by
# bench/loadgen --tls (OpenSSL directly; each connection's handshake is done before the warm-up,
# outside the measured interval). The figure: the server's CPU per request over TLS ÷ plaintext.

TLS_ECHO_CASES = ("pingpong-50", "pipelined-50x16", "msg-4KiB-50")   # of ECHO_SCENARIOS
TLS_ECHO_CONTENDERS = ("ringchat-uring", "ringchat-epoll")
TLS_ECHO_TRANSPORTS = ("TLS", "plain")


def tls_echo_cases():
    """The echo scenarios TLS echo runs: [(name, connections, depth, size, small)]."""
    return [s for s in ECHO_SCENARIOS if s[0] in TLS_ECHO_CASES]


def run_cpu(r):
    """A loadgen run's server CPU per request: schedstat's where it has it, as summary()."""
    sched = r.get("server_sched_us_per_req", -1)
    return sched if sched is not None and sched > 0 else r.get("server_cpu_us_per_req")


def tls_echo_runs(res, case, contender, transport):
    """The clean runs of one contender over one transport in one case of TLS echo."""
    return [r for r in res.get("tls_echo") or [] if r["case"] == case and r.get("ok")
            and r["contender"] == contender and r["transport"] == transport]


def tls_echo_ready(suite):
    """(True, "") where TLS echo can run (examples/echo and bench/loadgen speak TLS, and the
    openssl command makes the certificate), else (False, why); worked out once."""
    if not hasattr(suite, "_tls_echo_ready"):
        ok, why = http_has_tls(suite.build, "examples/echo")
        if ok:
            ok, why = http_has_tls(suite.build, "bench/loadgen", "--tls ")
        if ok and not shutil.which("openssl"):
            ok, why = False, "the openssl command is missing (apt-get install openssl)"
        suite._tls_echo_ready = (ok, why)
    return suite._tls_echo_ready


def tls_echo_plan(suite):
    if not tls_echo_ready(suite)[0]:
        return []
    return [("echo-tls", suite.reps * len(tls_echo_cases()) * len(TLS_ECHO_CONTENDERS)
             * len(TLS_ECHO_TRANSPORTS), suite.warmup + suite.duration + 0.2)]


def tls_echo_scenario(suite):
    setup = https_setup(suite, tls_echo_ready, "TLS echo")
    if not setup:
        return
    contenders = [(c, t) for c in TLS_ECHO_CONTENDERS for t in TLS_ECHO_TRANSPORTS]
    cases = tls_echo_cases()
    log(f"TLS echo: examples/echo over TLS 1.3 against itself over plaintext, on both backends "
        f"({', '.join(c[0] for c in cases)}; {len(contenders)} contenders x{suite.reps}); "
        "loadgen --tls does the handshakes before the warm-up")
    runs = suite.results.setdefault("tls_echo", [])
    for name, conns, depth, size, _ in cases:
        for rep in range(suite.reps):
            for c, transport in contenders:
                suite.progress.step("echo-tls", f"TLS echo, {name}: {c}, {transport}, run "
                                    f"{rep + 1} of {suite.reps}")
                argv = [f"{suite.build}/examples/echo", "--backend", c.rsplit("-", 1)[1]]
                extra = []
                if transport == "TLS":
                    argv += ["--tls-cert", setup["cert"], "--tls-key", setup["key"]]
                    # verified (the handshakes are not measured), with the name a client sends
                    extra = ["--tls", "--ca", setup["cert"], "--server-name", "localhost"]
                r = suite.serve_and_load(argv, f"{c} ({transport})", suite.env, conns, depth,
                                         size, extra=extra)
                if not r.get("ok"):
                    suite.fail(f"TLS echo {name} / {c}, {transport} run {rep + 1}: "
                               f"{r.get('problem') or 'failed'} (mismatches "
                               f"{r.get('mismatches', '?')}, errors {r.get('errors', '?')})")
                runs.append(dict(r, case=name, contender=c, transport=transport, rep=rep,
                                 connections=conns, depth=depth, size=size))


def ratio_spread(a, b):
    """(median(a) / median(b), the two sides' half min-max ranges added), or (None, None)."""
    ma, mb = med(a), med(b)
    if ma is None or not mb:
        return None, None
    ha, hb = half_range(a), half_range(b)
    return ma / mb, (ha + hb if ha is not None and hb is not None else None)


def tls_echo_report(suite):
    """The TLS echo section of the report: (terminal lines, Markdown lines)."""
    res = suite.results
    if not res.get("tls_echo"):
        return [], []
    reps = res.get("reps", suite.reps)
    lines, md = [], []
    tls_runs = [r for r in res["tls_echo"] if r.get("ok") and r["transport"] == "TLS"]
    seen = sorted({f"{t.get('protocol', '?')} {t.get('cipher', '?')} {t.get('group', '?')}"
                   for t in (r.get("tls") or {} for r in tls_runs)})
    verified = sum(1 for r in tls_runs if (r.get("tls") or {}).get("verified"))
    hs = med([(r.get("tls") or {}).get("handshake_s") for r in tls_runs])
    legend = (f"TLS echo (examples/echo --tls-cert over TLS 1.3 against itself over plaintext, "
              f"interleaved in the same run; loadgen --tls did each connection's handshake "
              f"before the warm-up, so none is counted; medians of {reps} runs, ± half the "
              f"min-max range; p50, p99: latency in us; srv CPU, cli CPU: the server's and the "
              f"load generator's CPU time in us per request):")
    head = ["contender", "over", "req/s", "±", "p50", "p99", "srv CPU", "±", "cli CPU", "ok"]
    groups, mdrows = [], []
    rhead = ["scenario", "uring CPU", "±", "req/s", "±", "epoll CPU", "±", "req/s", "±"]
    rrows = []
    for name, conns, depth, size, _ in tls_echo_cases():
        rows = []
        ratios = [name]
        for c in TLS_ECHO_CONTENDERS:
            sides = {}
            for t in TLS_ECHO_TRANSPORTS:
                every = [r for r in res["tls_echo"] if r["case"] == name and r["contender"] == c
                         and r["transport"] == t]
                if not every:
                    continue
                v = tls_echo_runs(res, name, c, t)
                rps, cpu = [r["rps"] for r in v], [run_cpu(r) for r in v]
                sides[t] = (cpu, rps)
                lat = lambda k: med([r["latency_us"][k] for r in v])
                row = [c, t, fmt_num(med(rps)), fmt_pct(half_range(rps), False),
                       fmt_num(lat("p50")), fmt_num(lat("p99")), fmt_num(med(cpu)),
                       fmt_pct(half_range(cpu), False),
                       fmt_num(med([r.get("client_cpu_us_per_req", -1) for r in v])),
                       f"{len(v)}/{len(every)}"]
                rows.append(row)
                mdrows.append([name] + row)
            for k in (0, 1):   # CPU per request, then req/s: TLS over plaintext
                x, noise = ratio_spread(*[sides.get(t, ([], []))[k] for t in TLS_ECHO_TRANSPORTS])
                ratios += [f"{x:.2f}" if x is not None else "-",
                           fmt_pct(noise, False) if noise is not None else "-"]
        if rows:
            groups.append((f"{name}: {conns} connections, depth {depth}, {size}-byte messages",
                           rows))
            rrows.append(ratios)
    if not groups:
        return [], []
    tls_words = (f"TLS as loadgen negotiated it: {'; '.join(seen) or '?'}; the server's "
                 f"certificate verified in {verified} of {len(tls_runs)} runs; the handshakes of "
                 f"a run's connections took {fmt_num(hs * 1e3) if hs is not None else '-'} ms "
                 "(median), outside the measured interval.")
    rlegend = ("TLS ÷ plaintext, each backend: the server's CPU per request over TLS over the "
               "same server's over plaintext (the cost of TLS; above 1 is dearer), then the "
               "req/s; ± is the two sides' spreads added:")
    lines += wrap(tls_words) + [""] + wrap(legend) + ["", grouped_table(head, groups), ""]
    lines += wrap(rlegend) + ["", table(rhead, rrows), ""]
    md += ["## TLS echo", "", tls_words, "", legend[:-1] + ".", "",
           markdown(["scenario"] + head, mdrows), "", rlegend[:-1] + ".", "",
           markdown(rhead, rrows), ""]
    return lines, md


EXTRA_SCENARIOS.append((tls_echo_scenario, "tls-echo", tls_echo_plan))


# --------------------------------------------------------------------------------------------
# Switches: examples/echo with one of ringchat's mechanisms on (the default) and off (by its
# environment variable), each backend, interleaved in one run: the server's CPU per request in
# the echo cases the mechanism is for, and the idle memory each way (issue 18 keeps a change
# only if the bench shows it).

class Switch:
    def __init__(self, key, title, var, modes, cases, legend, contenders=None):
        self.key = key          # --only name and results key
        self.title = title      # "Incremental buffers"
        self.var = var          # the environment variable that turns it off
        self.modes = modes      # ((label on, "1"), (label off, "0"))
        self.cases = cases      # of ECHO_SCENARIOS
        self.legend = legend    # what is compared, for the report: "X (the default) against Y"
        self.contenders = contenders or SWITCH_CONTENDERS  # where it applies


SWITCH_CONTENDERS = ("ringchat-uring", "ringchat-epoll")

# Provided receive buffers shared between small receives (reactor_options::incremental_buffers)
# against a whole buffer per receive.
INCREMENTAL = Switch(
    "incremental", "Incremental buffers", "RINGCHAT_INCREMENTAL_BUFFERS",
    (("shared", "1"), ("whole", "0")), ("pingpong-1000", "pipelined-50x16"),
    "examples/echo with its provided buffers shared by small receives (the default) against a "
    "whole buffer per receive")
# Coroutine frames from the per-thread cache of freed frames (core/frame_cache.hpp) against
# malloc and free for each.
FRAME_CACHE = Switch(
    "frame-cache", "Frame cache", "RINGCHAT_FRAME_CACHE",
    (("cached", "1"), ("heap", "0")), ("pingpong-50", "pipelined-50x16"),
    "examples/echo with its coroutine frames from the per-thread cache of freed frames (the "
    "default) against malloc and free for each")
# io_uring's ring descriptor registered with the ring (reactor_options::registered_ring_fd):
# each io_uring_enter skips looking it up. Nothing to switch on epoll.
REGISTERED_RING = Switch(
    "registered-ring", "Registered ring descriptor", "RINGCHAT_REGISTERED_RING",
    (("registered", "1"), ("plain", "0")), ("pingpong-50", "pipelined-50x16"),
    "examples/echo on io_uring with its ring's descriptor registered (the default) against the "
    "plain descriptor", contenders=("ringchat-uring",))
# io_uring waiting up to 50 us for more completions once it has one (reactor_options::min_wait,
# off by default: it trades latency for fewer wake-ups).
MIN_WAIT = Switch(
    "min-wait", "Batched waits", "RINGCHAT_MIN_WAIT_US",
    (("off", "0"), ("50us", "50")), ("pingpong-50", "pingpong-1000", "pipelined-50x16"),
    "examples/echo on io_uring waiting for the first completion only (the default) against up to "
    "50 us more for a batch of 32", contenders=("ringchat-uring",))
SWITCHES = (INCREMENTAL, FRAME_CACHE, REGISTERED_RING, MIN_WAIT)
# (bench/test_report.py names these)
INCREMENTAL_CASES, INCREMENTAL_CONTENDERS = INCREMENTAL.cases, SWITCH_CONTENDERS
INCREMENTAL_MODES = INCREMENTAL.modes


def switch_plan(sw):
    def plan(suite):
        if not os.path.exists(f"{suite.build}/examples/echo"):
            return []
        per_case = suite.reps * len(sw.contenders) * len(sw.modes)
        return [(f"echo-{sw.key}", per_case * len(sw.cases), suite.warmup + suite.duration + 0.2),
                (f"idle-{sw.key}", len(sw.contenders) * len(sw.modes), 3.0)]
    return plan


def switch_scenario(sw):
    what = sw.title[0].lower() + sw.title[1:]

    def scenario(suite):
        echo = f"{suite.build}/examples/echo"
        if not os.path.exists(echo):
            suite.note(f"{what}: skipped (examples/echo is not built)")
            return
        cases = [c for c in ECHO_SCENARIOS if c[0] in sw.cases]
        log(f"{what}: {sw.legend} ({', '.join(c[0] for c in cases)}, and idle connections)")
        runs = suite.results.setdefault(sw.key, [])
        every = [(c, label, flag) for c in sw.contenders for label, flag in sw.modes]

        def serve(c, label, flag, conns, depth, size, **kw):
            argv = [echo, "--backend", c.rsplit("-", 1)[1]]
            env = dict(suite.env, **{sw.var: flag})
            return suite.serve_and_load(argv, f"{c} ({label})", env, conns, depth, size, **kw)

        for name, conns, depth, size, _ in cases:
            for rep in range(suite.reps):
                for c, label, flag in every:
                    suite.progress.step(f"echo-{sw.key}", f"{what}, {name}: {c}, {label}, "
                                        f"run {rep + 1} of {suite.reps}")
                    r = serve(c, label, flag, conns, depth, size)
                    if not r.get("ok"):
                        suite.fail(f"{what} {name} / {c}, {label} run {rep + 1}: "
                                   f"{r.get('problem') or 'failed'}")
                    runs.append(dict(r, case=name, contender=c, mode=label, rep=rep))
        conns = suite.idle_connections()[0]
        for c, label, flag in every:
            suite.progress.step(f"idle-{sw.key}", f"{what}, idle: {c}, {label}")
            r = serve(c, label, flag, conns, 1, 64, extra=("--hold", "0.5"), timeout=60)
            if not r.get("ok"):
                suite.fail(f"{what}, idle / {c}, {label}: {r.get('problem')}")
            runs.append(dict(r, case="idle", contender=c, mode=label, rep=0, connections=conns))
    return scenario


def switch_report(sw):
    (on, _), (off, _) = sw.modes

    def report(suite):
        """The switch's section: (terminal lines, Markdown lines)."""
        res = suite.results.get(sw.key)
        if not res:
            return [], []
        ok = lambda case, c, mode: [r for r in res if r["case"] == case and r["contender"] == c
                                    and r["mode"] == mode and r.get("ok")]
        head = ["scenario", "contender", f"CPU {on}", off, "÷", "±", "req/s ÷", "±", "ok"]
        rows = []
        for name in sw.cases:
            for c in sw.contenders:
                yes, no = ok(name, c, on), ok(name, c, off)
                if not yes and not no:
                    continue
                cpu = [[run_cpu(r) for r in side] for side in (yes, no)]
                rps = [[r["rps"] for r in side] for side in (yes, no)]
                x, noise = ratio_spread(*cpu)
                y, ynoise = ratio_spread(*rps)
                total = len([r for r in res if r["case"] == name and r["contender"] == c])
                rows.append([name, c, fmt_num(med(cpu[0])), fmt_num(med(cpu[1])),
                             f"{x:.2f}" if x is not None else "-",
                             fmt_pct(noise, False) if noise is not None else "-",
                             f"{y:.2f}" if y is not None else "-",
                             fmt_pct(ynoise, False) if ynoise is not None else "-",
                             f"{len(yes) + len(no)}/{total}"])
        ihead = ["contender", "connections", f"{on} B/conn", f"{off} B/conn"]
        irows = []
        for c in sw.contenders:
            sides = [ok("idle", c, mode) for mode, _ in sw.modes]
            if any(sides):
                irows.append([c, (sides[0] or sides[1])[0].get("connections", "-")] +
                             [fmt_bytes_per_conn(side[0].get("server_rss_kb_per_conn")) if side
                              else "-" for side in sides])
        reps = suite.results.get("reps", suite.reps)
        legend = (f"{sw.title}: {sw.legend} ({sw.var}={sw.modes[1][1]}), interleaved; medians of {reps} runs; "
                  f"CPU: the server's us per request; ÷: {on} over {off} (CPU below 1 is cheaper, "
                  "req/s above 1 faster); ± is the two sides' half min-max ranges added:")
        ilegend = ("The same, idle connections (held open, one ping each; server RSS per "
                   "connection):")
        lines = wrap(legend) + ["", table(head, rows), ""]
        md = [f"## {sw.title}", "", legend[:-1] + ".", "", markdown(head, rows), ""]
        if irows:
            lines += wrap(ilegend) + ["", table(ihead, irows), ""]
            md += [ilegend[:-1] + ".", "", markdown(ihead, irows), ""]
        return lines, md
    return report


incremental_report = switch_report(INCREMENTAL)
frame_cache_report = switch_report(FRAME_CACHE)
registered_ring_report = switch_report(REGISTERED_RING)
min_wait_report = switch_report(MIN_WAIT)
for sw in SWITCHES:
    EXTRA_SCENARIOS.append((switch_scenario(sw), sw.key, switch_plan(sw)))


# --------------------------------------------------------------------------------------------
# Scaling (issue 16): the same servers on 1, 2, 4 ... reactors (--threads N --pin: reactor k's
# thread on CPU k, of CPUs 0 to N-1), the load generator on the CPUs left (at least as many),
# req/s and the server's CPU per request at each N: the speedup over 1 reactor, the ratio to
# linear (speedup / N) and the CPU per request over 1 reactor's. N = 1 is the program as it runs
# by default (--threads 1, one reactor on the main thread).

# name, kind (which server and which load generator), connections, depth (RESP: -P), size
SCALING_CASES = [
    ("pingpong-50", "echo", 50, 1, 64),
    ("pingpong-1000", "echo", 1000, 1, 64),
    ("pipelined-50x16", "echo", 50, 16, 64),    # as ECHO_SCENARIOS' pipelined one
    ("resp-P16", "resp", 50, 16, None),         # redis-benchmark -c 50 -P 16, as the RESP one,
                                                # and -r SCALING_KEYS
    ("http", "http", 100, 1, None),             # wrk -c100 on a 1 KiB file, as the HTTP one
]
# What the quick default runs of them (about 6 s on 2 CPUs); --scaling, --only scaling and
# --full run them all.
SCALING_QUICK = ("pingpong-50",)
# RESP's random keys (redis-benchmark -r): without -r every request names one key,
# "key:__rand_int__", so one shard (one reactor) would do every SET and GET however many there
# are; with -r they spread over the shards (and N-1 in N of them still run on another reactor
# than their connection's: placement is round robin, not by key).
SCALING_KEYS = 100000
SCALING_PROGRAMS = {"echo": "examples/echo", "resp": "examples/resp", "http": "examples/http"}
# The targets: echo's speedup over 1 reactor at N reactors (at least), and every case's CPU per
# request at N reactors over 1 reactor's (at most).
SCALING_SPEEDUP = {4: 3.7, 16: 12.5}
SCALING_CPU = 1.1


def cpu_list(cpus):
    """[0, 1, 2, 3] -> "0-3", [1] -> "1", [0, 2, 3] -> "0,2-3": as taskset -c writes them."""
    out, cpus = [], sorted(cpus)
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)


def scaling_layout(cpus):
    """Where each N runs on a machine with `cpus` CPUs: ([{"n", "server", "client", "fits"}],
    the line that says which N need more CPUs). N = 1, 2, 4 ... while the load generator can
    have at least as many CPUs as the server (2N <= cpus): the server on CPUs 0 to N-1, the load
    generator on all the others. Where that leaves no N above 1 (under 4 CPUs), N = 2 runs
    anyway on the CPUs there are, shared with the load generator ("fits": False): its CPU per
    request says something, its req/s nothing about scaling. On one CPU, N = 1 shares it too."""
    layout, n = [], 1
    while 2 * n <= cpus:
        layout.append({"n": n, "server": list(range(n)), "client": list(range(n, cpus)),
                       "fits": True})
        n *= 2
    if not layout:
        layout.append({"n": 1, "server": [0], "client": [0], "fits": True})
        n = 2
    if n == 2:
        layout.append({"n": 2, "server": list(range(min(2, cpus))),
                       "client": list(range(cpus)), "fits": False})
        n = 4
    return layout, (f"{n} reactors and up need {2 * n} CPUs or more; this machine has {cpus}")


def scaling_client_threads(entry):
    """The load generator's threads for one N: one per CPU it has, or N where it shares the
    server's."""
    return len(entry["client"]) if entry["fits"] else entry["n"]


def scaling_figures(runs):
    """One case's runs ({"n", "fits", "ok", "rps", "cpu_us_per_req"}) -> one figure per N, by
    N: {"n", "fits", "rps", "rps_noise", "cpu", "cpu_noise", "speedup", "speedup_noise",
    "linear", "cpu_ratio", "cpu_ratio_noise", "ok"}: medians of the clean runs and their half
    min-max ranges (ratios: the two sides' added, as ratio_spread). speedup (req/s over 1
    reactor's) and linear (speedup / N) are None where N did not fit (its req/s is not
    meaningful); cpu_ratio is the CPU per request over 1 reactor's, at every N; N = 1's ratios
    are 1 with no noise."""
    by_n = {}
    for r in runs:
        by_n.setdefault(r["n"], []).append(r)
    clean = {n: [r for r in v if r.get("ok")] for n, v in by_n.items()}
    base = clean.get(1, [])
    base_rps, base_cpu = [r["rps"] for r in base], [r["cpu_us_per_req"] for r in base]
    out = []
    for n in sorted(by_n):
        v = clean[n]
        rps, cpu = [r["rps"] for r in v], [r["cpu_us_per_req"] for r in v]
        fits = all(r.get("fits", True) for r in by_n[n])
        speedup, noise = ratio_spread(rps, base_rps) if fits else (None, None)
        cpu_ratio, cpu_noise = ratio_spread(cpu, base_cpu)
        if n == 1:   # 1 by definition, with no noise of its own
            noise = cpu_noise = None
        out.append({"n": n, "fits": fits, "rps": med(rps), "rps_noise": half_range(rps),
                    "cpu": med(cpu), "cpu_noise": half_range(cpu), "speedup": speedup,
                    "speedup_noise": noise, "linear": speedup / n if speedup is not None else None,
                    "cpu_ratio": cpu_ratio, "cpu_ratio_noise": cpu_noise,
                    "ok": f"{len(v)}/{len(by_n[n])}",
                    "server": by_n[n][0].get("server"), "client": by_n[n][0].get("client")})
    return out


def scaling_judge(value, noise, target, at_least):
    """"met" or "missed", by the median against the target; ", within the noise" where the
    target lies inside the median ± its noise (another run could say the other)."""
    met = value >= target if at_least else value <= target
    word = "met" if met else "missed"
    if noise is not None and abs(value - target) <= value * noise:
        word += " (within the noise)"
    return word


def scaling_verdict(kind, figures):
    """One case's figures against the targets, in words: for echo, the speedup at each N of
    SCALING_SPEEDUP (or the CPUs that N needs, where it was not measured); for every case, the
    largest CPU per request over 1 reactor's of the N above 1."""
    by_n = {f["n"]: f for f in figures}
    parts = []
    noise = lambda x: f" ±{fmt_pct(x, False)}" if x is not None else ""
    if kind == "echo":
        unmeasured = []
        for n, target in sorted(SCALING_SPEEDUP.items()):
            f = by_n.get(n)
            if f and f["speedup"] is not None:
                parts.append(f"{f['speedup']:.2f}x at {n} reactors{noise(f['speedup_noise'])} "
                             f"(target {target}x: "
                             f"{scaling_judge(f['speedup'], f['speedup_noise'], target, True)})")
            else:
                unmeasured.append(f"{target}x at {n} reactors (needs {2 * n} CPUs)")
        if unmeasured:
            parts.append("not measured: " + ", ".join(unmeasured))
    ratios = [f for f in figures if f["n"] > 1 and f["cpu_ratio"] is not None]
    if ratios:
        worst = max(ratios, key=lambda f: f["cpu_ratio"])
        judged = scaling_judge(worst["cpu_ratio"], worst["cpu_ratio_noise"], SCALING_CPU, False)
        parts.append(f"CPU/req {worst['cpu_ratio']:.2f}x 1 reactor's at {worst['n']}"
                     f"{noise(worst['cpu_ratio_noise'])} (target {SCALING_CPU}x at most: "
                     f"{judged})")
    else:
        parts.append("CPU/req: no N above 1 measured")
    return "; ".join(parts)


def program_offers(build, program, option):
    """Whether `program --help` of the build lists `option` (examples/http --threads)."""
    prog = f"{build}/{program}"
    try:
        usage = subprocess.run([prog, "--help"], capture_output=True, text=True,
                               timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return option in usage


def scaling_wanted(suite):
    """The cases the mode asks for: all of SCALING_CASES with --scaling, --only scaling or
    --full; SCALING_QUICK's in the quick default."""
    every = suite.full or suite.selected("scaling")
    return [c for c in SCALING_CASES if every or c[0] in SCALING_QUICK]


def scaling_ready(suite):
    """([cases this run takes], [a line for each case left out and why]); worked out once. Of
    scaling_wanted's: RESP needs redis-benchmark, HTTP wrk, and each its program of the build
    with --threads (examples/http has it from issue 16's change on)."""
    if not hasattr(suite, "_scaling_ready"):
        cases, left = [], []
        for case in scaling_wanted(suite):
            name, kind = case[0], case[1]
            prog = SCALING_PROGRAMS[kind]
            if not os.path.exists(f"{suite.build}/{prog}"):
                left.append(f"{name} skipped ({prog} is not built)")
            elif not program_offers(suite.build, prog, "--threads"):
                left.append(f"{name} skipped (this build's {prog} has no --threads)")
            elif kind == "resp" and not shutil.which("redis-benchmark"):
                left.append(f"{name} skipped (redis-benchmark is missing: apt-get install "
                            "redis-tools)")
            elif kind == "http" and not shutil.which("wrk"):
                left.append(f"{name} skipped (wrk is missing: apt-get install wrk)")
            else:
                cases.append(case)
        suite._scaling_ready = (cases, left)
    return suite._scaling_ready


def scaling_plan(suite):
    cases, _ = scaling_ready(suite)
    layout, _ = scaling_layout(cpu_count())
    run_s = suite.warmup + suite.duration + 0.3
    nominal = {"echo": lambda conns: run_s + conns / 2000,
               "resp": lambda conns: 0.4 + (200000 if suite.full else 100000) / 300000,
               "http": lambda conns: float(wrk_duration(suite).rstrip("s")) + 0.4}
    return [("scale-" + kind, suite.reps * len(layout), nominal[kind](conns))
            for _, kind, conns, _, _ in cases]


def ready_backend(server):
    """The backend a server's ready line names ("ready on 127.0.0.1:PORT (io_uring)")."""
    server.out.seek(0)
    m = re.search(r"ready on \S+ \(([^),]+)", server.out.read())
    return m.group(1) if m else "?"


def scaling_run(suite, kind, entry, conns, depth, size, root):
    """One run of one case at one N: {"ok", "rps", "cpu_us_per_req", "backend", ...}."""
    n, threads = entry["n"], scaling_client_threads(entry)
    argv = [f"{suite.build}/{SCALING_PROGRAMS[kind]}"] + (["--root", root] if kind == "http"
                                                          else [])
    if n != 1:
        argv += ["--threads", str(n)]
        if program_offers(suite.build, SCALING_PROGRAMS[kind], "--pin"):
            argv.append("--pin")
    name = f"{SCALING_PROGRAMS[kind]} --threads {n}"
    try:
        with Server(argv, name, env=suite.env, cpus=entry["server"]) as s:
            backend = ready_backend(s)
            if kind == "echo":
                r = suite.loadgen_run(s, conns, depth, size, extra=("--threads", str(threads)),
                                      cpus=entry["client"])
                sched = r.get("server_threads_sched_us_per_req", -1)
                # every reactor thread's run time; utime + stime (ticks) from an older loadgen
                cpu = sched if sched is not None and sched > 0 else r.get("server_cpu_us_per_req")
                return {"ok": bool(r.get("ok")), "rps": r.get("rps"), "cpu_us_per_req": cpu,
                        "client_cpu_us_per_req": r.get("client_cpu_us_per_req"),
                        "p99_us": (r.get("latency_us") or {}).get("p99"), "backend": backend,
                        "problem": r.get("problem") or ("" if r.get("ok") else "failed")}
            if kind == "resp":
                requests = (100000 if suite.full else 50000) * n
                before = threads_cpu_us(s.pid)
                rc, out, err = run_client(
                    [shutil.which("redis-benchmark"), "-h", "127.0.0.1", "-p", str(s.port),
                     "-c", str(conns), "-n", str(requests), "-P", str(depth), "-t", "set,get",
                     "-r", str(SCALING_KEYS), "--csv", "-q"]
                    + (["--threads", str(threads)] if threads > 1 else []),
                    timeout=120, cpus=entry["client"])
                used = threads_cpu_us(s.pid) - before
                tests = parse_redis_csv(out)
                if rc != 0 or len(tests) != 2:
                    return {"ok": False, "backend": backend,
                            "problem": f"redis-benchmark: {(err or out).strip()[-200:]}"}
                # a run's req/s over SET and GET together, as its CPU per request is
                return {"ok": True, "rps": len(tests) / sum(1 / x for _, x in tests),
                        "cpu_us_per_req": used / (2 * requests), "backend": backend,
                        "problem": ""}
            r = wrk_measure(shutil.which("wrk"), s, [f"-c{conns}"],
                            f"http://127.0.0.1:{s.port}/index.html", wrk_duration(suite),
                            threads=threads, cpus=entry["client"], cpu=threads_cpu_us)
            problem = wrk_problems(r)
            if "problem" in r:
                return {"ok": False, "backend": backend, "problem": problem}
            return {"ok": not problem, "rps": r["rps"], "p99_us": r["p99_us"],
                    "cpu_us_per_req": r["server_cpu_us"] / max(1, r["requests"]),
                    "backend": backend, "problem": problem}
    except RuntimeError as e:
        return {"ok": False, "problem": str(e)}


def scaling_scenario(suite):
    cases, left = scaling_ready(suite)
    for why in left:
        suite.note(f"scaling: {why}")
    if not cases:
        return
    cpus = cpu_count()
    layout, more = scaling_layout(cpus)
    res = suite.results["scaling"] = {"cpus": cpus, "layout": layout, "more": more,
                                      "cases": [c[0] for c in cases], "runs": []}
    ns = [e["n"] for e in layout]
    log(f"scaling: {', '.join(c[0] for c in cases)} on {', '.join(map(str, ns))} reactors "
        f"x{suite.reps}, interleaved; " + "; ".join(
            f"{e['n']}: server on CPU {cpu_list(e['server'])}, load generator on "
            f"{cpu_list(e['client'])} ({scaling_client_threads(e)} thread"
            f"{'s' if scaling_client_threads(e) > 1 else ''})" for e in layout))
    shared = [e for e in layout if not e["fits"]]
    if shared:
        suite.note(f"scaling: {', '.join(str(e['n']) for e in shared)} reactors ran on the "
                   f"{cpus} CPUs shared with the load generator: their CPU per request is the "
                   f"figure, their req/s ratio is not meaningful; {more}")
    else:
        suite.note(f"scaling: {more}")
    with tempfile.TemporaryDirectory(prefix="ringchat-bench-scaling-") as tmp:
        root = os.path.join(tmp, "www")
        if any(c[1] == "http" for c in cases):
            make_site(root)
        for name, kind, conns, depth, size in cases:
            for rep in range(suite.reps):
                for e in layout:
                    suite.progress.step("scale-" + kind, f"scaling, {name}: {e['n']} "
                                        f"reactor{'s' if e['n'] > 1 else ''}, run {rep + 1} of "
                                        f"{suite.reps}")
                    r = scaling_run(suite, kind, e, conns, depth, size, root)
                    if not r.get("ok"):
                        suite.fail(f"scaling {name} / {e['n']} reactors, run {rep + 1}: "
                                   f"{r.get('problem') or 'failed'}")
                    res["runs"].append(dict(r, case=name, kind=kind, n=e["n"], fits=e["fits"],
                                            rep=rep, server=cpu_list(e["server"]),
                                            client=cpu_list(e["client"])))


SCALING_TITLES = {
    "echo": lambda conns, depth, size: (f"examples/echo, loadgen, {conns} connections, depth "
                                        f"{depth}, {size}-byte messages"),
    "resp": lambda conns, depth, size: (f"examples/resp, redis-benchmark -c {conns} -P {depth} "
                                        f"-r {SCALING_KEYS} -t set,get"),
    "http": lambda conns, depth, size: f"examples/http, wrk -c{conns}, a 1 KiB file",
}


def scaling_report(suite):
    """The scaling section of the report: (terminal lines, Markdown lines)."""
    res = suite.results.get("scaling")
    if not res or not res.get("runs"):
        return [], []
    head = ["reactors", "CPUs", "req/s", "±", "speedup", "±", "÷linear", "CPU us/req", "±",
            "÷1's", "ok"]
    groups, mdrows, verdicts = [], [], []
    shared = False
    for name, kind, conns, depth, size in SCALING_CASES:
        runs = [r for r in res["runs"] if r["case"] == name]
        if not runs:
            continue
        figs = scaling_figures(runs)
        rows = []
        for f in figs:
            shared = shared or not f["fits"]
            na = "-" if f["fits"] else "n/a"
            rows.append([str(f["n"]), f"{f['server']}/{f['client']}", fmt_num(f["rps"]),
                         fmt_pct(f["rps_noise"], False),
                         f"{f['speedup']:.2f}" if f["speedup"] is not None else na,
                         fmt_pct(f["speedup_noise"], False) if f["speedup"] is not None else "",
                         f"{f['linear']:.2f}" if f["linear"] is not None else na,
                         fmt_num(f["cpu"]), fmt_pct(f["cpu_noise"], False),
                         f"{f['cpu_ratio']:.2f}" if f["cpu_ratio"] is not None else "-",
                         f["ok"]])
        backends = sorted({r.get("backend") for r in runs if r.get("backend")})
        groups.append((f"{name}: {SCALING_TITLES[kind](conns, depth, size)}"
                       + (f" ({', '.join(backends)})" if backends else ""), rows))
        mdrows += [[name] + r for r in rows]
        verdicts.append((name, scaling_verdict(kind, figs)))
    reps = suite.results.get("reps", suite.reps)
    legend = (f"Scaling: each server on N reactors (--threads N --pin, reactor k on CPU k), the "
              f"load generator on the CPUs left; medians of {reps} runs, ± half the min-max "
              "range (ratios: the two sides' added); CPUs: the server's/the load generator's; "
              "speedup: req/s over 1 reactor's; ÷linear: speedup / N; CPU us/req: all the "
              "server's threads' CPU time per request; ÷1's: over 1 reactor's"
              + ("; n/a: the server shared its CPUs with the load generator, so its req/s "
                 "says nothing of scaling" if shared else "") + ":")
    targets = (f"Against the targets (issue 16): echo's speedup at least "
               + " and ".join(f"{t}x at {n}" for n, t in sorted(SCALING_SPEEDUP.items()))
               + f" reactors; CPU per request at N reactors at most {SCALING_CPU}x 1 reactor's. "
               + res.get("more", "") + ".")
    w = max(len(n) for n, _ in verdicts)
    vlines = []
    for n, words in verdicts:
        vlines += textwrap.wrap(words, WIDTH, initial_indent=f"  {n:<{w}}  ",
                                subsequent_indent=" " * (w + 4), break_on_hyphens=False)
    lines = wrap(legend) + ["", grouped_table(head, groups), ""] + wrap(targets) + vlines + [""]
    md = ["## Scaling", "", legend[:-1] + ".", "", markdown(["scenario"] + head, mdrows), "",
          targets, ""] + [f"- {n}: {words}" for n, words in verdicts] + [""]
    return lines, md


EXTRA_SCENARIOS.append((scaling_scenario, "scaling", scaling_plan))


# RESP alone (--only resp): the scenario of the built-in extras, which a run that names no
# extra scenario runs anyway.
def resp_alone(suite):
    if suite.selected("resp"):
        suite.resp()


def resp_alone_plan(suite):
    if suite.selected("resp"):
        suite.resp_expect()
    return []


EXTRA_SCENARIOS.append((resp_alone, "resp", resp_alone_plan))


def main():
    ap = argparse.ArgumentParser(description="ringchat's bench suite")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"),
                    help="the release build folder (default build-release)")
    ap.add_argument("--full", action="store_true", help="longer runs, more repetitions")
    ap.add_argument("--reps", type=int, help="repetitions per contender (quick 3, full 5)")
    ap.add_argument("--duration", type=float, help="measured seconds per run (quick 0.8, full 3)")
    ap.add_argument("--only", metavar="NAME,...",
                    help="scenarios to run, comma-separated names or shell patterns: echo "
                         "scenarios (pingpong-50, pipelined-*) and extra ones (http, https*); "
                         "naming an extra one leaves out syscalls, idle, RESP and file_send "
                         "(resp names RESP alone)")
    ap.add_argument("--scaling", action="store_true",
                    help="the scaling scenario alone, all its cases (as --only scaling): 1, 2, "
                         "4 ... reactors while the load generator has as many CPUs left")
    ap.add_argument("--contenders", help="echo contenders to run, comma-separated")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--no-extras", action="store_true",
                    help="echo scenarios only (no syscalls, idle, RESP, file_send, chart)")
    ap.add_argument("--report", metavar="JSON",
                    help="run nothing: print the report of a saved run (bench/results/*.json) "
                         "and draw its chart again beside it")
    args = ap.parse_args()

    if args.scaling:
        args.only = "scaling"
    if args.report:
        suite = Suite(args)
        with open(args.report) as f:
            suite.results = json.load(f)
        suite.full = suite.results.get("mode") == "full"
        suite.reps = suite.results.get("reps", suite.reps)
        args.out = os.path.dirname(os.path.abspath(args.report))
        stamp = os.path.basename(args.report).rsplit(".", 1)[0]
        png = suite.chart(stamp)
        print(suite.report()[0])
        if png:
            print(f"\nbench: the chart: {os.path.relpath(png, os.getcwd())}")
        return 0

    missing = [p for p in ("bench/loadgen", "bench/uring_echo", "bench/epoll_echo", "examples/echo")
               if not os.path.exists(os.path.join(args.build, p))]
    if missing:
        print(f"bench: missing in {args.build}: {', '.join(missing)} (build them with ninja -C "
              f"{args.build})", file=sys.stderr)
        return 2
    # Many connections need many descriptors; the servers inherit this.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    suite = Suite(args)
    known = [s[0] for s in ECHO_SCENARIOS] + [e[1] for e in EXTRA_SCENARIOS]
    unknown = [p for p in suite.only_patterns() if not fnmatch.filter(known, p)]
    if unknown:
        print(f"bench: --only: no scenario named {', '.join(unknown)} (there are: "
              f"{', '.join(known)})", file=sys.stderr)
        return 2
    suite.plan()
    log(f"{suite.results['mode']} mode: {suite.reps} runs per contender, {suite.duration} s each "
        f"after {suite.warmup} s of warm-up; "
        + ("server on CPU 0, load generator on CPU 1" if PIN else "one CPU: nothing pinned")
        + f"; {suite.progress.total} steps, about {fmt_clock(suite.progress.left_s())} in all")
    suite.echo()
    if suite.builtin_extras():
        suite.syscalls()
        suite.idle()
        suite.resp()
        suite.file_send()
    try:
        for fn, name, *_ in EXTRA_SCENARIOS:
            if suite.extra_selected(name):
                fn(suite)
    finally:
        for cleanup in suite.cleanups:
            cleanup()
    suite.progress.step("report", "report and chart")
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    png = suite.chart(stamp) if not args.no_extras else None
    suite.results["elapsed_s"] = round(suite.progress.done(), 1)
    suite.results["step_seconds"] = suite.progress.seconds_per_step()
    text, md = suite.report()
    print(text)
    with open(os.path.join(args.out, f"{stamp}.json"), "w") as f:
        json.dump(suite.results, f, indent=1)
    with open(os.path.join(args.out, f"{stamp}.md"), "w") as f:
        f.write(f"# ringchat bench, {suite.results['started']} ({suite.results['mode']} mode, "
                f"{suite.reps} runs each, {suite.results['cpus']} CPUs"
                f"{', pinned' if PIN else ''})\n\n{md}\n")
        if png:
            f.write(f"\n![server CPU per request and req/s as ratios, and the verdict]"
                    f"({os.path.basename(png)})\n")
    where = os.path.join(os.path.relpath(args.out, os.getcwd()), stamp)
    print(f"\nbench: done in {fmt_clock(suite.results['elapsed_s'])}, "
          f"{len(suite.results['failures'])} failed runs\nbench: the report in {where}.md, "
          f"the data in .json\nbench: the chart in "
          + (f"{where}.png" if png else "(none: see the notes)"))
    return 1 if suite.results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
