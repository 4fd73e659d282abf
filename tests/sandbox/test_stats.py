"""The speedup estimate and its CI (sandbox/harness/stats.py) on synthetic samples."""

from __future__ import annotations

import random

from sandbox.harness.stats import estimate_speedup, summarize, verdict_for


def noisy_rounds(true_ratio: float, rounds: int, pairs: int, noise: float, seed: int = 1):
    rng = random.Random(seed)
    return [
        [true_ratio * rng.lognormvariate(0, noise) for _ in range(pairs)] for _ in range(rounds)
    ]


def test_geometric_mean_and_ci_cover_the_true_ratio():
    est = estimate_speedup(noisy_rounds(2.0, rounds=6, pairs=5, noise=0.02))
    assert abs(est.speedup - 2.0) < 0.03
    assert est.ci95[0] < 2.0 < est.ci95[1]
    assert est.verdict == "faster"
    assert est.pairs == 30 and est.rounds == 6
    assert est.rel_halfwidth < 0.02


def test_identical_code_is_not_significant():
    misses = 0
    for seed in range(40):
        est = estimate_speedup(
            noisy_rounds(1.0, rounds=4, pairs=5, noise=0.02, seed=seed), seed=seed
        )
        misses += est.verdict != "not significant"
    assert misses <= 4  # a 95% CI: about 2 of 40 expected


def test_between_round_noise_widens_the_ci():
    flat = [[1.0] * 5 for _ in range(4)]
    shifted = [[1.0] * 5, [1.0] * 5, [1.1] * 5, [1.1] * 5]
    assert estimate_speedup(flat).ci95 == (1.0, 1.0)
    low, high = estimate_speedup(shifted).ci95
    assert low <= 1.0 + 1e-9 and high >= 1.1 - 1e-9


def test_verdict_rules():
    assert verdict_for((1.01, 1.2)) == "faster"
    assert verdict_for((0.5, 0.99)) == "slower"
    assert verdict_for((0.99, 1.01)) == "not significant"
    assert verdict_for((1.0, 1.1)) == "not significant"


def test_summarize():
    assert summarize([3.0, 1.0, 2.0]) == {"median_s": 2.0, "min_s": 1.0, "max_s": 3.0}
    assert summarize([1.0, 2.0])["median_s"] == 1.5
