"""A small multi-module package written by the tests: relative imports, a class with state,
numpy, a package ``__init__`` with a side effect, its own tests — the shape of real code."""

from __future__ import annotations

from pathlib import Path

FILES = {
    "statkit/__init__.py": '''\
"""statkit: tiny image statistics."""

from .stats import Stat

LOADED = True
''',
    "statkit/_util.py": """\
def clip(value, lo, hi):
    return max(lo, min(hi, value))
""",
    "statkit/stats.py": '''\
"""Statistics over a 256-bin histogram per band."""

import numpy as np

from ._util import clip


class Stat:
    def __init__(self, values, bands=1):
        self.values = np.asarray(values, dtype=np.int64)
        self.bands = bands
        self._hist = None

    def histogram(self):
        if self._hist is None:
            per_band = self.values.reshape(-1, self.bands)
            self._hist = []
            for b in range(self.bands):
                self._hist += np.bincount(per_band[:, b], minlength=256).tolist()
        return self._hist

    def extrema(self):
        h = self.histogram()
        out = []
        for i in range(0, len(h), 256):
            lo, hi = 255, 0
            for j in range(256):
                if h[i + j]:
                    lo = min(lo, j)
                    hi = max(hi, j)
            if lo > hi:
                lo, hi = 0, 0
            out.append((clip(lo, 0, 255), clip(hi, 0, 255)))
        return out

    @staticmethod
    def scale(x):
        return x * 2

    @classmethod
    def empty(cls):
        return cls([0])


def mean(values):
    return sum(values) / len(values)
''',
    "tests/__init__.py": "",
    "tests/test_stats.py": """\
from statkit import Stat


def test_extrema_one_band():
    assert Stat([3, 7, 7, 200]).extrema() == [(3, 200)]


def test_extrema_two_bands():
    assert Stat([1, 9, 5, 9], bands=2).extrema() == [(1, 5), (9, 9)]


def test_histogram_counts():
    assert sum(Stat([1, 2, 3]).histogram()) == 3
""",
}

WORKLOAD = """\
import random

from statkit import Stat


def cases():
    rng = random.Random(7)
    out = []
    for bands, n in ((1, 4000), (3, 3000)):
        values = [min(255, max(0, int(rng.gauss(128, 30)))) for _ in range(n * bands)]
        s = Stat(values, bands=bands)
        s.histogram()  # the histogram is cached state; extrema is what is timed
        out.append(((s,), {}))
    out.append(((Stat([10, 10, 12]),), {}))
    return out
"""

# The early-exit idea of Florath & Kiraly: scan from each end, stop at the first nonzero bin.
FASTER_METHOD = """\
    def extrema(self):
        h = self.histogram()
        out = []
        for i in range(0, len(h), 256):
            band = h[i : i + 256]
            lo = next((j for j in range(256) if band[j]), None)
            if lo is None:
                out.append((0, 0))
                continue
            hi = next(j for j in range(255, -1, -1) if band[j])
            out.append((clip(lo, 0, 255), clip(hi, 0, 255)))
        return out
"""

WRONG_METHOD = """\
    def extrema(self):
        h = self.histogram()
        return [(0, 255) for _ in range(0, len(h), 256)]
"""


def write_project(root: Path) -> Path:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
