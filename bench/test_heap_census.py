#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/test_heap_census.py LIBRARY -- tests of bench/heap_census (the idle scenario's count of
live heap blocks): a Python process preloads LIBRARY, allocates and frees known blocks through
libc (ctypes) and asks for a census (SIGUSR2) between the steps; the censuses must show them.
tests/run runs it with build/bench/libheap_census.so."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite as S  # noqa: E402

LIBRARY = None

# Runs under the census. Census 1: the baseline; 2: 300 blocks of 1,000 bytes live (malloc) and
# 200 of 2,000 (calloc); 3: the 1,000s grown to 5,000 (realloc), 50 aligned blocks of 3,000;
# 4: everything freed; 5: one block of 1 MiB (over 64 KiB: counted apart).
CHILD = r"""
import ctypes, os, signal
libc = ctypes.CDLL(None)
for name in ("malloc", "calloc", "realloc", "aligned_alloc"):
    getattr(libc, name).restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
libc.aligned_alloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
census = lambda: os.kill(os.getpid(), signal.SIGUSR2)
census()
ones = [libc.malloc(1000) for _ in range(300)]
twos = [libc.calloc(1, 2000) for _ in range(200)]
census()
ones = [libc.realloc(p, 5000) for p in ones]
aligned = [libc.aligned_alloc(64, 3008) for _ in range(50)]
census()
for p in ones + twos + aligned:
    libc.free(p)
census()
big = libc.malloc(1 << 20)
census()
libc.free(big)
"""


def usable(n):
    """glibc's usable size of a malloc(n) block on 64-bit: its chunk (n + 8 rounded up to 16,
    32 at least) less the 8-byte header."""
    return max(32, (n + 8 + 15) // 16 * 16) - 8


class Census(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        prefix = os.path.join(cls.tmp.name, "census")
        env = dict(os.environ, LD_PRELOAD=LIBRARY, RINGCHAT_HEAP_CENSUS=prefix)
        subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, timeout=60)
        cls.c = [S.read_census(f"{prefix}.{i}") for i in range(1, 6)]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def grown(self, a, b, size, most=None):
        """How many more blocks census b has than census a of usable sizes size .. most."""
        def live(c):
            return sum(n for k, n in c.items() if k != "large" and size <= k <= (most or size))
        return live(self.c[b]) - live(self.c[a])

    def test_malloc_and_calloc_counted_by_usable_size(self):
        self.assertEqual(usable(1000), 1000)
        # at least: Python's own allocations of those sizes may come and go meanwhile
        self.assertGreaterEqual(self.grown(0, 1, 1000), 300)
        self.assertGreaterEqual(self.grown(0, 1, usable(2000)), 200)

    def test_realloc_moves_the_count_and_aligned_blocks_count(self):
        self.assertLessEqual(self.grown(1, 2, 1000), -290)
        # a block grown in place may keep a few bytes more than asked for
        self.assertGreaterEqual(self.grown(1, 2, usable(5000), usable(5000) + 32), 300)
        # aligned_alloc's block: what was asked for, and up to the alignment more
        self.assertGreaterEqual(self.grown(1, 2, 3008, 3008 + 64 + 16), 50)

    def test_free_gives_the_counts_back(self):
        for size in (1000, usable(2000), usable(5000)):
            self.assertLess(abs(self.grown(0, 3, size)), 10, size)

    def test_large_blocks_apart(self):
        blocks, size = self.c[4]["large"]
        before_blocks, before_size = self.c[3]["large"]
        self.assertEqual(blocks - before_blocks, 1)
        self.assertGreaterEqual(size - before_size, 1 << 20)

    def test_per_connection_figures_from_real_censuses(self):
        heap = S.census_per_connection(self.c[0], self.c[1], 100)
        # 3 blocks of 1,000 and 2 of 2,008 (usable) per "connection", at least
        self.assertGreaterEqual(heap["bytes_per_conn"], 3 * 1000 + 2 * usable(2000))
        self.assertIn(1000, [size for size, _ in heap["blocks"]])


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.path.exists(sys.argv[1]):
        sys.exit("usage: bench/test_heap_census.py LIBRARY (build/bench/libheap_census.so)")
    LIBRARY = os.path.abspath(sys.argv.pop(1))
    unittest.main()
