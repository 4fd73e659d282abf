"""Speedup estimation from paired, interleaved timing samples.

Method (chosen here; see RESEARCH.md "Measuring speed fairly"):

- a *pair* is one baseline sample and one candidate sample taken back to back, in random order,
  in the same *round* (a fresh baseline process and a fresh candidate process);
- its ratio is baseline per-call time / candidate per-call time; the speedup is the median of
  the ratios (computed on log-ratios). The median rather than the geometric mean because on a
  shared machine a few pairs or a whole round are disturbed by other processes (heavy tails:
  measured here under load, the mean strayed by up to 5% on identical code, the median by <1%);
- the 95% CI is a two-level (rounds, then pairs within a round) percentile bootstrap of that
  median, so differences between processes (memory layout, allocator state) widen the CI
  instead of being mistaken for a speedup;
- ``faster`` only if the CI's lower bound exceeds 1, ``slower`` only if its upper bound is
  below 1, otherwise ``not significant``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

N_BOOTSTRAP = 4000


@dataclass(frozen=True)
class SpeedupEstimate:
    speedup: float
    ci95: tuple[float, float]
    verdict: str
    pairs: int
    rounds: int

    @property
    def rel_halfwidth(self) -> float:
        low, high = self.ci95
        return math.sqrt(high / low) - 1.0


def verdict_for(ci95: tuple[float, float]) -> str:
    low, high = ci95
    if low > 1.0:
        return "faster"
    if high < 1.0:
        return "slower"
    return "not significant"


def estimate_speedup(rounds: list[list[float]], seed: int = 0) -> SpeedupEstimate:
    """``rounds``: per round, the paired ratios (baseline time / candidate time)."""
    import numpy as np

    rounds = [r for r in rounds if r]
    if not rounds:
        raise ValueError("no timing pairs")
    k = min(len(r) for r in rounds)
    logs = np.log(np.array([r[:k] for r in rounds], dtype=float))  # (R, k)
    n_rounds = logs.shape[0]
    point = float(np.exp(np.median(logs)))
    rng = np.random.default_rng(seed)
    pick_rounds = rng.integers(0, n_rounds, size=(N_BOOTSTRAP, n_rounds))
    pick_pairs = rng.integers(0, k, size=(N_BOOTSTRAP, n_rounds, k))
    resampled = logs[pick_rounds[:, :, None], pick_pairs].reshape(N_BOOTSTRAP, -1)
    low, high = np.exp(np.percentile(np.median(resampled, axis=1), [2.5, 97.5]))
    ci = (float(min(low, point)), float(max(high, point)))
    return SpeedupEstimate(point, ci, verdict_for(ci), n_rounds * k, n_rounds)


def summarize(per_call: list[float]) -> dict:
    """Median and spread of one side's per-call times."""
    ordered = sorted(per_call)
    n = len(ordered)
    if not n:
        return {"median_s": None, "min_s": None, "max_s": None}
    mid = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return {"median_s": mid, "min_s": ordered[0], "max_s": ordered[-1]}
