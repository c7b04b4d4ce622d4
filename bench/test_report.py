#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/test_report.py -- tests of the bench suite's presentation, on made-up results: the
verdict's rule, the report's width, the progress lines, the scaling scenario's layout, ratios
and verdict, and the chart (where gnuplot is installed). Runs nothing else and needs no build:
python3 bench/test_report.py"""
import argparse
import io
import os
import random
import re
import shutil
import sys
import tempfile
import unittest
from contextlib import redirect_stderr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite as S  # noqa: E402


def made_up_results(reps=3, resp_reps=1, seed=1):
    """A results dict shaped like a quick run's, with every section the report shows."""
    rnd = random.Random(seed)
    res = {"started": "2026-01-01T00:00:00", "mode": "quick", "reps": reps, "duration_s": 0.7,
           "pinned": True, "cpus": 2, "build": "build-release", "echo": [], "syscalls": [],
           "idle": [], "resp": [], "notes": ["a note long enough to need wrapping " * 5],
           "failures": []}
    cost = {"ringchat": 1.08, "raw": 1.0, "raw-lines": 1.03, "asynchat": 9.0}
    for name, conns, depth, size, small in S.ECHO_SCENARIOS:
        for c in S.echo_contenders("build-release"):
            if c.slow and not small:
                continue
            base = (0.5 if depth > 1 else 5.0) * cost[c.family] * (0.9 if c.backend == "uring" else 1)
            runs = []
            for _ in range(reps):
                cpu = base * rnd.uniform(0.97, 1.03)
                runs.append({"ok": True, "rps": 1e6 / cpu / 3, "server_sched_us_per_req": cpu,
                             "client_cpu_us_per_req": cpu * 1.1,
                             "latency_us": {"p50": 250.0, "p99": 18500.0, "p999": 123456.0}})
            res["echo"].append({"scenario": name, "contender": c.name, "backend": c.backend,
                                "family": c.family, "connections": conns, "depth": depth,
                                "size": size, "runs": runs})
    for scen in ("pingpong-50", "pipelined-50x16"):
        for c in ("ringchat-uring", "raw-uring", "ringchat-epoll", "raw-epoll"):
            res["syscalls"].append({"scenario": scen, "contender": c, "method": "perf",
                                    "requests": 20000, "syscalls": 41419, "per_request": 2.07,
                                    "breakdown": {}})
    for c in ("ringchat-uring", "raw-uring", "ringchat-epoll", "raw-epoll"):
        res["idle"].append({"contender": c, "connections": 10000, "run": {
            "ok": True, "server_rss_kb_before": 4260, "server_rss_kb_after": 43976,
            "server_rss_kb_per_conn": 3.97}})
        if c.startswith("ringchat"):
            res["idle"][-1]["heap"] = S.census_per_connection(
                {24: 100, 856: 3}, {24: 100, 856: 10003, 344: 10003, 232: 10000,
                                    184: 10000, 136: 9000, 40: 10, 72: 20000,
                                    "large": (1, 400000)}, 10000)
    for pipeline in (1, 16):
        for rep in range(resp_reps):
            for c in ("ringchat-resp-uring", "ringchat-resp-epoll", "redis-server"):
                for test in ("SET", "GET"):
                    res["resp"].append({"contender": c, "pipeline": pipeline, "test": test,
                                        "rps": 10000.0 * pipeline * rnd.uniform(0.9, 1.1),
                                        "rep": rep, "server_cpu_us_per_req": 12.4 / pipeline})
    res["http"] = [{"contender": c, "rep": rep, "rps": 10000.0, "p99_us": 35700.0,
                    "server_cpu_us_per_req": 28.0 * rnd.uniform(0.95, 1.05)}
                   for rep in range(reps)
                   for c in ("ringchat-http-uring", "ringchat-http-epoll", "nginx")]
    res["http_file"] = [{"contender": c, "path": p, "rep": 0, "mib_per_s": 500.0,
                         "server_cpu_ms_per_gib": 300.0}
                        for c in ("ringchat-http-uring", "ringchat-http-epoll")
                        for p in ("zero copy", "read")]
    names = ("ringchat-http-uring", "ringchat-http-epoll", "nginx")
    # over TLS: ringchat half nginx's CPU, io_uring 10% under epoll; run 3 of nginx's failed
    tls_cost = {"ringchat-http-uring": 9.0, "ringchat-http-epoll": 10.0, "nginx": 20.0}
    res["https"] = [{"contender": c, "rep": rep, "ok": not (c == "nginx" and rep == 2),
                     "rps": 2e5 / tls_cost[c] * rnd.uniform(0.99, 1.01), "p99_us": 38400.0,
                     "requests": 40000, "server_cpu_us": 40000 * tls_cost[c], "socket_errors": {"connect": 0, "read": 0, "write": 0,
                                                          "timeout": 0}, "non_2xx": 0,
                     "server_cpu_us_per_req": tls_cost[c] * rnd.uniform(0.99, 1.01)}
                    for rep in range(reps) for c in names]
    res["https_handshakes"] = [
        {"contender": c, "rep": rep, "kind": kind, "ok": True, "conn_per_s": 1000.0,
         "p99_us": 25900.0 if kind == "resumed" else None,
         "socket_errors": {"read": 0} if kind == "resumed" else {},
         "server_cpu_us_per_conn": 30 * tls_cost[c] * rnd.uniform(0.99, 1.01)}
        for rep in range(reps) for c in names for kind in ("resumed", "full")]
    res["https_resumed"] = {"resumed": 923, "connections": 955}
    res["https_tls"] = {c: {"protocol": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384",
                            "group": "X25519", "verified": True, "resumes": True} for c in names}
    res["https_file"] = [{"contender": c, "transport": t, "rep": rep, "mib_per_s": 400.0,
                          "server_cpu_ms_per_gib": 200.0 if t != "TLS" else 8 * tls_cost[c] ** 2}
                         for rep in range(reps)
                         for c, t in [(n, "TLS") for n in names] + [
                             ("ringchat-http-uring", "plain, zero copy"),
                             ("ringchat-http-epoll", "plain, zero copy")]]
    # echo over TLS: 1.8 times plaintext's CPU per request, io_uring 10% under epoll; run 3 of
    # epoll's plaintext pingpong-50 failed
    res["tls_echo"] = []
    for name, conns, depth, size, _ in S.tls_echo_cases():
        for rep in range(reps):
            for c in S.TLS_ECHO_CONTENDERS:
                for t in S.TLS_ECHO_TRANSPORTS:
                    cpu = ((0.5 if depth > 1 else 5.0) * (1.8 if t == "TLS" else 1.0)
                           * (0.9 if c.endswith("uring") else 1.0) * rnd.uniform(0.995, 1.005))
                    r = {"ok": not (name == "pingpong-50" and c == "ringchat-epoll"
                                    and t == "plain" and rep == 2),
                         "rps": 1e6 / cpu / 3, "server_sched_us_per_req": cpu,
                         "server_cpu_us_per_req": cpu, "client_cpu_us_per_req": cpu * 1.1,
                         "latency_us": {"p50": 250.0, "p99": 18500.0, "p999": 123456.0},
                         "case": name, "contender": c, "transport": t, "rep": rep,
                         "connections": conns, "depth": depth, "size": size}
                    if t == "TLS":
                        r["tls"] = {"protocol": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384",
                                    "group": "x25519", "verified": True, "handshake_s": 0.031}
                    res["tls_echo"].append(r)
    # incremental buffers: shared 0.95 of whole's CPU on io_uring, level on epoll; idle memory
    # 2,000 bytes a connection shared, 2,400 whole; epoll's whole pipelined run 2 failed
    res["incremental"] = []
    for name in S.INCREMENTAL_CASES:
        for rep in range(reps):
            for c in S.INCREMENTAL_CONTENDERS:
                for mode, _ in S.INCREMENTAL_MODES:
                    cpu = ((0.95 if mode == "shared" and c.endswith("uring") else 1.0)
                           * (0.5 if name.startswith("pipelined") else 5.0))
                    res["incremental"].append({
                        "ok": not (c == "ringchat-epoll" and mode == "whole" and rep == 1
                                   and name.startswith("pipelined")),
                        "rps": 1e6 / cpu / 3, "server_sched_us_per_req": cpu,
                        "server_cpu_us_per_req": cpu, "case": name, "contender": c,
                        "mode": mode, "rep": rep})
    for c in S.INCREMENTAL_CONTENDERS:
        for mode, _ in S.INCREMENTAL_MODES:
            res["incremental"].append({"ok": True, "case": "idle", "contender": c, "mode": mode,
                                       "rep": 0, "connections": 10000,
                                       "server_rss_kb_per_conn": 2000 / 1024 if mode == "shared"
                                       else 2400 / 1024})
    # frame cache: cached 0.9 of heap's CPU at pingpong-50 on both backends, level pipelined
    res["frame-cache"] = []
    for name in S.FRAME_CACHE.cases:
        for rep in range(reps):
            for c in S.SWITCH_CONTENDERS:
                for mode, _ in S.FRAME_CACHE.modes:
                    cpu = ((0.9 if mode == "cached" and name == "pingpong-50" else 1.0)
                           * (0.5 if name.startswith("pipelined") else 5.0))
                    res["frame-cache"].append({
                        "ok": True, "rps": 1e6 / cpu / 3, "server_sched_us_per_req": cpu,
                        "server_cpu_us_per_req": cpu, "case": name, "contender": c,
                        "mode": mode, "rep": rep})
    res["scaling"] = made_up_scaling(2, reps, rnd)
    res["file_send"] = "file_send: 128 MiB through a channel over TCP loopback"
    res["failures"] = ["pingpong-50 / ringchat-uring run 1: " + "a long problem " * 20]
    return res


def made_up_scaling(cpus, reps, rnd, speedup=0.95, cpu_growth=1.02):
    """A scaling section as a run on `cpus` CPUs makes it: req/s `speedup` x N of 1 reactor's
    where N fits (2N CPUs), and each N's CPU per request `cpu_growth` x the one below's; the
    shared N = 2 of a 2-CPU machine with req/s that say nothing (made up 5x 1 reactor's)."""
    layout, more = S.scaling_layout(cpus)
    runs = []
    for name, kind, *_ in S.SCALING_CASES:
        base_rps, base_cpu = (1e6, 0.6) if name == "pipelined-50x16" else (1e5, 6.0)
        for rep in range(reps):
            for e in layout:
                n = e["n"]
                rps = base_rps * (speedup * n if n > 1 else 1) if e["fits"] else base_rps * 5
                cpu = base_cpu * cpu_growth ** (n.bit_length() - 1)
                runs.append({"ok": True, "rps": rps * rnd.uniform(0.99, 1.01),
                             "cpu_us_per_req": cpu * rnd.uniform(0.99, 1.01),
                             "backend": "io_uring", "problem": "", "case": name, "kind": kind,
                             "n": n, "fits": e["fits"], "rep": rep,
                             "server": S.cpu_list(e["server"]),
                             "client": S.cpu_list(e["client"])})
    return {"cpus": cpus, "layout": layout, "more": more,
            "cases": [c[0] for c in S.SCALING_CASES], "runs": runs}


def suite_for(results, out):
    args = argparse.Namespace(build="build-release", full=False, reps=None, duration=None,
                              only=None, contenders=None, out=out, no_extras=False, report=None)
    suite = S.Suite(args)
    suite.results = results
    return suite


class Verdict(unittest.TestCase):
    def test_level_within_the_noise(self):
        c = S.compare([1.00, 1.05, 1.10], [1.00, 1.04, 1.08], True)
        self.assertEqual(c["word"], "level")
        self.assertLessEqual(abs(c["diff"]), c["noise"])

    def test_ahead_and_behind_by_the_ratio_of_the_medians(self):
        cpu = S.compare([2.10, 2.12, 2.08], [2.39, 2.40, 2.37], lower_is_better=True)
        self.assertEqual(cpu["word"], "ahead")
        self.assertAlmostEqual(cpu["diff"], 2.10 / 2.39 - 1)
        self.assertEqual(S.compare([2.39, 2.40, 2.37], [2.10, 2.12, 2.08], True)["word"], "behind")
        self.assertEqual(S.compare([110, 111, 109], [100, 101, 99], False)["word"], "ahead")
        self.assertEqual(S.compare([90, 91, 89], [100, 101, 99], False)["word"], "behind")

    def test_the_noise_is_the_half_ranges_added_and_the_floor_at_least(self):
        c = S.compare([0.9, 1.0, 1.1], [1.9, 2.0, 2.1], True)
        self.assertAlmostEqual(c["noise"], 0.1 + 0.05)
        self.assertEqual(S.compare([1.0, 1.0], [1.015, 1.015], True)["noise"], S.LEVEL_FLOOR)
        self.assertEqual(S.compare([1.0, 1.0], [1.015, 1.015], True)["word"], "level")
        self.assertEqual(S.compare([1.0, 1.0], [1.03, 1.03], True)["word"], "ahead")

    def test_no_verdict_from_one_run(self):
        c = S.compare([1.0], [2.0], True)
        self.assertIsNone(c["word"])
        self.assertAlmostEqual(c["diff"], -0.5)
        self.assertIn("no verdict", S.verdict_words(c, S.compare([1.0], [1.0], False))[0])

    def test_failed_runs_are_left_out(self):
        self.assertEqual(S.compare([1.0, None, -1], [1.0, 1.0], True)["runs"], (1, 2))

    def test_words(self):
        head, tail = S.verdict_words(S.compare([2.10, 2.12, 2.08], [2.39, 2.40, 2.37], True),
                                     S.compare([100, 101, 99], [100, 102, 98], False))
        self.assertTrue(head.startswith("ahead: 12% less CPU/req (2.10 vs 2.39 us, ±"), head)
        self.assertTrue(tail.startswith("req/s level: +0.0% (±"), tail)


class Report(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp(prefix="ringchat-test-report-")

    def tearDown(self):
        shutil.rmtree(self.out, ignore_errors=True)

    def report(self, **kw):
        suite = suite_for(made_up_results(**kw), self.out)
        return suite, suite.report()[0]

    def test_every_line_fits_the_width(self):
        _, text = self.report()
        for line in text.splitlines():
            self.assertLessEqual(len(line), S.WIDTH, line)

    def test_ends_with_the_verdict_of_every_scenario(self):
        suite, text = self.report(resp_reps=3)
        tail = text[text.index("Verdict:"):]
        for name, *_ in S.ECHO_SCENARIOS:
            self.assertRegex(tail, rf"\n  {re.escape(name)} +(ahead|level|behind): ")
        self.assertRegex(tail, r"\n  http \(wrk\) +(ahead|level|behind): ")
        self.assertRegex(tail, r"\n  resp -P 16 +(ahead|level|behind): ")
        self.assertIn("Rule: level when", tail)
        self.assertTrue(tail.rstrip().splitlines()[-1].endswith("scenarios."))
        # made up with io_uring 10% cheaper and 3% noise a side: ahead everywhere on echo
        self.assertEqual([v["cpu"]["word"] for v in suite.results["verdict"]][:6], ["ahead"] * 6)

    def test_https_sections_with_ratios_over_nginx(self):
        suite, text = self.report()
        md = suite.report()[1]
        for section in ("## HTTPS\n", "## HTTPS handshakes\n", "## HTTPS file serving\n"):
            self.assertIn(section, md)
        self.assertIn("TLS as openssl s_client negotiated it: ringchat-http-uring, "
                      "ringchat-http-epoll, nginx: TLSv1.3 TLS_AES_256_GCM_SHA384 X25519, "
                      "resumes sessions.", " ".join(text.split()))
        self.assertIn("CPU below 1 is cheaper", text)
        keep_alive = text[text.index("HTTPS keep-alive"):text.index("HTTPS handshakes")]
        # nginx's failed run is left out of its medians, and counted
        self.assertRegex(keep_alive, r"\nnginx +10\.0k .* 1\.00 +1\.00 +0 +2/3\n")
        self.assertRegex(keep_alive, r"\nringchat-http-uring +22\.\dk .* 2\.2\d +0\.4\d +0 +3/3")
        # 100 full handshakes at 30·20 us against 40,000 requests at 20 us: 7.5%
        self.assertRegex(" ".join(keep_alive.split()), r"at its start: .* nginx 7\.\d%\.")
        hs = text[text.index("HTTPS handshakes"):text.index("HTTPS file serving")]
        self.assertIn("923 of 955 of nginx's", " ".join(hs.split()))
        self.assertRegex(hs, r"resumed:\n  ringchat-http-uring .* 0\.4\d +0 +3/3\n")
        self.assertRegex(hs, r"full:\n  ringchat-http-uring ")
        files = text[text.index("HTTPS file serving"):]
        # TLS against nginx's TLS (8·81 / 8·400) and against its own plaintext (8·81 / 200)
        self.assertRegex(files, r"\nringchat-http-uring +TLS +400 +648 +1\.00 +0\.20 +3\.24\n")
        self.assertRegex(files, r"\nringchat-http-epoll +plain, zero copy +400 +200 +- +- +-\n")
        tail = text[text.index("Verdict:"):]
        for label in ("https (wrk)", "https resumed", "https full hs"):
            self.assertRegex(tail, rf"\n  {re.escape(label)} +ahead: ")

    def test_tls_echo_over_plaintext(self):
        suite, text = self.report()
        md = suite.report()[1]
        self.assertIn("## TLS echo\n", md)
        part = text[text.index("TLS as loadgen negotiated it"):text.index("Verdict:")]
        self.assertIn("TLSv1.3 TLS_AES_256_GCM_SHA384 x25519; the server's certificate verified "
                      "in 18 of 18 runs; the handshakes of a run's connections took 31.0 ms",
                      " ".join(part.split()))
        self.assertRegex(part, r"pingpong-50: 50 connections, depth 1, 64-byte messages\n"
                               r"  ringchat-uring +TLS +[\d.k]+ .* 8\.\d\d? .* 3/3\n"
                               r"  ringchat-uring +plain .* 3/3\n"
                               r"  ringchat-epoll +TLS .* 3/3\n"
                               r"  ringchat-epoll +plain .* 2/3\n")
        # TLS over plaintext: 1.8 times the CPU per request, 1/1.8 of the req/s, each backend
        for name in S.TLS_ECHO_CASES:
            self.assertRegex(part, rf"\n{re.escape(name)} +1\.[78]\d +[\d.]+% +0\.5\d +[\d.]+% "
                                   r"+1\.[78]\d +[\d.]+% +0\.5\d +[\d.]+%\n")
        tail = text[text.index("Verdict:"):]
        for name in S.TLS_ECHO_CASES:
            self.assertRegex(tail, rf"\n  tls {re.escape(name)} +ahead: (9\.\d|1\d)% less CPU/req")

    def test_incremental_buffers_shared_over_whole(self):
        suite, text = self.report()
        self.assertIn("## Incremental buffers\n", suite.report()[1])
        part = text[text.index("Incremental buffers:"):text.index("Scaling:")]
        self.assertRegex(part, r"\npingpong-1000 +ringchat-uring +4\.75 +5\.00 +0\.95 +0\.0% "
                               r"+1\.05 +0\.0% +6/6\n")
        self.assertRegex(part, r"\npipelined-50x16 +ringchat-epoll +0\.50 +0\.50 +1\.00 +0\.0% "
                               r"+1\.00 +0\.0% +5/6\n")
        self.assertRegex(part, r"\nringchat-epoll +10000 +2000 +2400\n")

    def test_frame_cache_cached_over_heap(self):
        suite, text = self.report()
        self.assertIn("## Frame cache\n", suite.report()[1])
        part = text[text.index("Frame cache:"):text.index("Scaling:")]
        self.assertIn("(RINGCHAT_FRAME_CACHE=0)", part)
        self.assertRegex(part, r"\npingpong-50 +ringchat-uring +4\.50 +5\.00 +0\.90 +0\.0% "
                               r"+1\.11 +0\.0% +6/6\n")
        self.assertRegex(part, r"\npipelined-50x16 +ringchat-epoll +0\.50 +0\.50 +1\.00 +0\.0% "
                               r"+1\.00 +0\.0% +6/6\n")
        self.assertNotIn("B/conn", part)  # no idle runs in this report

    def test_long_verdict_labels_keep_the_columns(self):
        _, text = self.report()
        tail = text[text.index("Verdict:"):].splitlines()
        # the label column is as wide as the longest label: every judgement starts in it
        longest = max(len("tls " + n) for n in S.TLS_ECHO_CASES)
        judged = [l for l in tail if re.match(r"  \S", l) and
                  re.search(r" (ahead|level|behind|no verdict)", l)]
        self.assertTrue(judged)
        for line in judged:
            self.assertRegex(line[3 + longest:], r"^(ahead|level|behind|no verdict)", line)

    def test_resp_from_one_run_is_not_judged(self):
        _, text = self.report(resp_reps=1)
        self.assertRegex(text, r"\n  resp -P 1 +no verdict \(1 run a side\)")
        self.assertIn("(2 not judged: too few runs)", text)

    def test_chart(self):
        if not shutil.which("gnuplot"):
            self.skipTest("gnuplot is not installed (apt-get install gnuplot-nox)")
        suite = suite_for(made_up_results(), self.out)
        png = suite.chart("test")
        self.assertIsNotNone(png, suite.results["notes"])
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class HeapCensus(unittest.TestCase):
    def test_read_census(self):
        with tempfile.NamedTemporaryFile("w", suffix=".census") as f:
            f.write("# usable_bytes blocks\n24 38\n40 -2\n1000 300\nlarge 3 610256\n")
            f.flush()
            self.assertEqual(S.read_census(f.name),
                             {24: 38, 40: -2, 1000: 300, "large": (3, 610256)})

    def test_per_connection_largest_share_first(self):
        heap = S.census_per_connection({24: 50, 856: 2, "large": (1, 200000)},
                                       {24: 50, 856: 1002, 232: 1000, 72: 2000, 40: 7,
                                        "large": (2, 400000)}, 1000)
        # 856 + 232 + 2 x 72 + 7 x 40 / 1000 + 200,000 / 1000 of large blocks
        self.assertAlmostEqual(heap["bytes_per_conn"], 856 + 232 + 144 + 0.28 + 200)
        self.assertAlmostEqual(heap["blocks_per_conn"], 4.007)
        self.assertEqual(heap["blocks"], [(856, 1.0), (232, 1.0), (72, 2.0)])  # not 40 B x0.007
        self.assertEqual(S.fmt_census(heap),
                         "856 B x1.00, 232 B x1.00, 72 B x2.00, 200 B in blocks over 64 KiB")

    def test_report_shows_heap_per_connection_and_where_it_goes(self):
        out = tempfile.mkdtemp(prefix="ringchat-test-report-")
        try:
            text = suite_for(made_up_results(), out).report()[0]
        finally:
            shutil.rmtree(out, ignore_errors=True)
        part = text[text.index("Idle connections"):]
        # 856 + 344 + 232 + 184 + 0.9 x 136 + 2 x 72 per connection, 3 more 344-B blocks and 10
        # of 40 B over all, and 40 B in a large block: 1,922.6
        self.assertRegex(part, r"\nringchat-uring +10000 +4260 +43976 +4065 +1923 +yes\n")
        self.assertRegex(part, r"\nraw-uring +10000 +4260 +43976 +4065 +- +yes\n")
        self.assertIn("ringchat-epoll: 856 B x1.00, 344 B x1.00, 232 B x1.00, 184 B x1.00, "
                      "72 B x2.00, 136 B x0.90", " ".join(part.split()))
        # too long for one line: the rest indented under it
        where = part[part.index("Where each"):part.index("RESP")].splitlines()[1:]
        self.assertIn("    in blocks over 64 KiB", where)
        self.assertTrue(all(l.startswith("  ") for l in where if l), where)


class Wrk(unittest.TestCase):
    OUT = """Running 2s test @ https://127.0.0.1:45459/index.html
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.28ms    7.77ms  41.87ms   99.99%
    Req/Sec   753.47    161.96     1.03k    84.21%
  Latency Distribution
     50%   13.18ms
     75%   19.84ms
     90%   25.62ms
     99%   39.38ms
  1509 requests in 2.00s, 1.79MB read
  Socket errors: connect 0, read 2, write 0, timeout 0
Requests/sec:    753.93
Transfer/sec:      0.90MB
"""

    def test_parse(self):
        r = S.parse_wrk(self.OUT)
        self.assertEqual((r["requests"], r["rps"], r["p99_us"]), (1509, 753.93, 39380.0))
        self.assertEqual(r["socket_errors"], {"connect": 0, "read": 2, "write": 0, "timeout": 0})
        self.assertEqual(S.wrk_problems(r), "wrk saw errors: read 2")
        clean = S.parse_wrk(self.OUT.replace("  Socket errors: connect 0, read 2, write 0, "
                                             "timeout 0\n", ""))
        self.assertEqual((clean["socket_errors"], S.wrk_problems(clean)), ({}, ""))
        self.assertIsNone(S.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused"))


class Selection(unittest.TestCase):
    def suite(self, only, no_extras=False):
        suite = suite_for(made_up_results(), tempfile.gettempdir())
        suite.args.only, suite.args.no_extras = only, no_extras
        return suite

    def test_echo_names_and_patterns_keep_every_extra(self):
        suite = self.suite("pingpong-*,pipelined-50x16")
        self.assertEqual([p[0] for p in suite.echo_plan()],
                         ["pingpong-1", "pingpong-50", "pingpong-1000", "pipelined-50x16"])
        self.assertTrue(suite.builtin_extras())
        self.assertTrue(suite.extra_selected("http"))

    def test_naming_an_extra_scenario_runs_only_what_is_named(self):
        suite = self.suite("http")
        self.assertEqual(suite.echo_plan(), [])
        self.assertFalse(suite.builtin_extras())
        self.assertTrue(suite.extra_selected("http"))
        self.assertFalse(suite.extra_selected("https"))
        tls = self.suite("https*")
        self.assertEqual(tls.extras_named(), ["https", "https-handshakes", "https-file"])
        self.assertFalse(tls.extra_selected("http"))
        self.assertEqual(self.suite("*").extras_named(), [e[1] for e in S.EXTRA_SCENARIOS])
        echo = self.suite("tls-echo*")
        self.assertEqual((echo.echo_plan(), echo.extras_named()), ([], ["tls-echo"]))
        self.assertFalse(echo.builtin_extras())

    def test_no_extras_wins(self):
        suite = self.suite(None, no_extras=True)
        self.assertFalse(suite.builtin_extras())
        self.assertFalse(suite.extra_selected("http"))


class Scaling(unittest.TestCase):
    def test_layout_on_two_cpus_shares_them_for_two_reactors(self):
        layout, more = S.scaling_layout(2)
        self.assertEqual(layout, [{"n": 1, "server": [0], "client": [1], "fits": True},
                                  {"n": 2, "server": [0, 1], "client": [0, 1], "fits": False}])
        self.assertEqual(more, "4 reactors and up need 8 CPUs or more; this machine has 2")
        self.assertEqual([S.scaling_client_threads(e) for e in layout], [1, 2])

    def test_layout_leaves_the_load_generator_at_least_as_many_cpus(self):
        layout, more = S.scaling_layout(16)
        self.assertEqual([e["n"] for e in layout], [1, 2, 4, 8])
        self.assertTrue(all(e["fits"] for e in layout))
        self.assertEqual((layout[-1]["server"], layout[-1]["client"]),
                         (list(range(8)), list(range(8, 16))))
        self.assertEqual([S.scaling_client_threads(e) for e in layout], [15, 14, 12, 8])
        self.assertEqual(more, "16 reactors and up need 32 CPUs or more; this machine has 16")
        six, more6 = S.scaling_layout(6)
        self.assertEqual(([e["n"] for e in six], more6), ([1, 2], "4 reactors and up need 8 CPUs "
                                                                   "or more; this machine has 6"))
        one, _ = S.scaling_layout(1)
        self.assertEqual([(e["n"], e["fits"]) for e in one], [(1, True), (2, False)])
        self.assertEqual(S.scaling_layout(3)[0][1], {"n": 2, "server": [0, 1],
                                                     "client": [0, 1, 2], "fits": False})

    def test_cpu_list(self):
        self.assertEqual([S.cpu_list(c) for c in ([0], [0, 1, 2, 3], [1, 0], [0, 2, 3], [])],
                         ["0", "0-3", "0-1", "0,2-3", ""])

    def runs(self, n, rps, cpu, fits=True, ok=True):
        return [{"n": n, "fits": fits, "ok": ok, "rps": r, "cpu_us_per_req": c}
                for r, c in zip(rps, cpu)]

    def test_speedup_linear_and_cpu_ratio(self):
        runs = (self.runs(1, [100, 98, 102], [2.0, 2.1, 1.9])
                + self.runs(4, [380, 370, 390], [2.2, 2.2, 2.2])
                + self.runs(4, [1.0], [99.0], ok=False))   # a failed run: left out, counted
        one, four = S.scaling_figures(runs)
        self.assertEqual((one["speedup"], one["linear"], one["cpu_ratio"]), (1.0, 1.0, 1.0))
        self.assertIsNone(one["speedup_noise"])
        self.assertAlmostEqual(four["speedup"], 3.8)
        self.assertAlmostEqual(four["linear"], 0.95)
        self.assertAlmostEqual(four["cpu_ratio"], 1.1)
        self.assertAlmostEqual(four["speedup_noise"], 10 / 380 + 2 / 100)
        self.assertEqual(four["ok"], "3/4")

    def test_shared_cpus_give_no_speedup_but_a_cpu_ratio(self):
        shared = S.scaling_figures(self.runs(1, [100, 100], [2.0, 2.0])
                                   + self.runs(2, [500, 500], [2.4, 2.4], fits=False))[1]
        self.assertEqual((shared["speedup"], shared["linear"]), (None, None))
        self.assertAlmostEqual(shared["cpu_ratio"], 1.2)

    def test_verdict_against_the_targets(self):
        figs = S.scaling_figures(self.runs(1, [100, 100], [2.0, 2.0])
                                 + self.runs(4, [360, 360], [2.0, 2.0])
                                 + self.runs(16, [1300, 1300], [2.3, 2.3]))
        words = S.scaling_verdict("echo", figs)
        self.assertIn("3.60x at 4 reactors ±0.0% (target 3.7x: missed)", words)
        self.assertIn("13.00x at 16 reactors ±0.0% (target 12.5x: met)", words)
        self.assertIn("CPU/req 1.15x 1 reactor's at 16 ±0.0% (target 1.1x at most: missed)",
                      words)
        # a target inside the noise is said to be
        noisy = S.scaling_figures(self.runs(1, [100, 100], [2.0, 2.0])
                                  + self.runs(4, [340, 400], [2.0, 2.0]))
        self.assertIn("(target 3.7x: met (within the noise))", S.scaling_verdict("echo", noisy))
        # on two CPUs: what was not measured, and the CPU ratio of the shared N = 2
        two = S.scaling_figures(self.runs(1, [100, 100], [2.0, 2.0])
                                + self.runs(2, [500, 500], [2.1, 2.1], fits=False))
        self.assertEqual(S.scaling_verdict("echo", two),
                         "not measured: 3.7x at 4 reactors (needs 8 CPUs), 12.5x at 16 reactors "
                         "(needs 32 CPUs); CPU/req 1.05x 1 reactor's at 2 ±0.0% (target 1.1x at "
                         "most: met)")
        # the speedup targets are echo's; RESP and HTTP are judged by CPU per request only
        self.assertTrue(S.scaling_verdict("resp", two).startswith("CPU/req 1.05x"))
        self.assertEqual(S.scaling_verdict("http", two[:1]), "CPU/req: no N above 1 measured")

    def test_report_on_two_cpus(self):
        out = tempfile.mkdtemp(prefix="ringchat-test-report-")
        try:
            suite = suite_for(made_up_results(), out)
            text, md = suite.report()
        finally:
            shutil.rmtree(out, ignore_errors=True)
        part = text[text.index("Scaling: each server"):text.index("Notes:")]
        self.assertRegex(part, r"\npingpong-50: examples/echo, loadgen, 50 connections, depth 1, "
                               r"64-byte messages \(io_uring\)\n"
                               r"  1 +0/1 +100k +[\d.]+% +1\.00 +- +1\.00 +6\.\d\d +[\d.]+% "
                               r"+1\.00 +3/3\n"
                               r"  2 +0-1/0-1 +500k +[\d.]+% +n/a +n/a +6\.\d\d +[\d.]+% "
                               r"+1\.0[1-3] +3/3\n")
        self.assertIn("n/a: the server shared its CPUs with the load generator",
                      " ".join(part.split()))
        self.assertIn("4 reactors and up need 8 CPUs or more; this machine has 2.",
                      " ".join(part.split()))
        for name, *_ in S.SCALING_CASES:
            self.assertRegex(part, rf"\n  {re.escape(name)} +\S")
        self.assertIn("## Scaling\n", md)
        self.assertRegex(md, r"\n\| pingpong-1000 \| 2 \| 0-1/0-1 \| [\d.k]+ \| [\d.]+% \| n/a \| ")
        for line in text.splitlines():
            self.assertLessEqual(len(line), S.WIDTH, line)

    def test_report_on_sixteen_cpus(self):
        res = made_up_results()
        res["scaling"] = made_up_scaling(16, 3, random.Random(2), speedup=0.9)
        text = suite_for(res, tempfile.gettempdir()).report()[0]
        part = text[text.index("Scaling: each server"):text.index("Notes:")]
        self.assertRegex(part, r"\n  8 +0-7/8-15 +7\d\dk +[\d.]+% +7\.[12]\d +[\d.]+% +0\.9\d ")
        self.assertNotIn("n/a", part)
        self.assertRegex(" ".join(part.split()), r"pingpong-50 3\.[56]\dx at 4 reactors ±[\d.]+% "
                                                 r"\(target 3\.7x: missed")
        self.assertIn("16 reactors and up need 32 CPUs or more; this machine has 16.",
                      " ".join(part.split()))
        for line in text.splitlines():
            self.assertLessEqual(len(line), S.WIDTH, line)

    def test_quick_mode_takes_pingpong_50_and_the_rest_take_every_case(self):
        suite = suite_for(made_up_results(), tempfile.gettempdir())
        self.assertEqual([c[0] for c in S.scaling_wanted(suite)], ["pingpong-50"])
        suite.args.only = "scaling"    # as --scaling makes it
        self.assertEqual([c[0] for c in S.scaling_wanted(suite)],
                         [c[0] for c in S.SCALING_CASES])
        self.assertEqual((suite.echo_plan(), suite.extras_named()), ([], ["scaling"]))
        self.assertFalse(suite.builtin_extras())
        full = suite_for(made_up_results(), tempfile.gettempdir())
        full.full = True
        self.assertEqual(len(S.scaling_wanted(full)), len(S.SCALING_CASES))


class ProgressLines(unittest.TestCase):
    def test_one_line_per_step_with_i_of_n_and_the_time_left(self):
        p = S.Progress()
        p.expect("echo", 3, 10.0)
        p.expect("report", 1, 1.0)
        err = io.StringIO()
        with redirect_stderr(err):
            for i in range(3):
                p.step("echo", f"pingpong-1: raw-uring, run {i + 1} of 3")
            p.step("report", "report and chart")
            p.step("extra", "a step the plan did not foresee")
        lines = err.getvalue().splitlines()
        self.assertEqual(len(lines), 5)
        self.assertRegex(lines[0], r"^bench: \[1/4\] 0:00 in, about 0:31 left \| pingpong-1: "
                                   r"raw-uring, run 1 of 3$")
        # the echo steps took far less than their nominal 10 s: the estimate follows them
        self.assertRegex(lines[3], r"^bench: \[4/4\] 0:00 in, about 0:00 left \| report")
        self.assertRegex(lines[4], r"^bench: \[5/5\] ")
        self.assertEqual(p.seconds_per_step()["echo"][0], 3)

    def test_clock(self):
        self.assertEqual(S.fmt_clock(7), "0:07")
        self.assertEqual(S.fmt_clock(165), "2:45")
        self.assertEqual(S.fmt_clock(3723), "1:02:03")


if __name__ == "__main__":
    unittest.main()
