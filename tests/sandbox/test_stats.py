"""The speedup estimate and its CI (sandbox/harness/stats.py) on synthetic samples."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from sandbox.harness.stats import (
    ALPHA_FINAL,
    ALPHA_SEQUENTIAL,
    confidence_sequence,
    cs_multiplier,
    estimate_speedup,
    sequential_estimate,
    sequential_verdict,
    settled,
    summarize,
    t_quantile,
    verdict_for,
    within_round_sd,
)
from tests.sandbox.noise_model import LOADED, QUIET, Noise, simulate_sequence


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


# -- the sequential protocol's confidence sequence ----------------------------------------------


def closed_form_multiplier(n: int, g: float, alpha: float = 0.05) -> float:
    """Solving the t-mixture Bayes factor = 1/alpha for |t| by hand (one g): see stats.py."""
    c = 1 + n * g
    r = (math.sqrt(c) / alpha) ** (2 / n)
    if r >= c:
        return math.inf
    return math.sqrt((n - 1) * (r - 1) / (1 - r / c)) / math.sqrt(n)


def test_the_boundary_matches_the_closed_form_of_the_bayes_factor():
    for n in (2, 3, 5, 8, 20, 60):
        for g in (16.0, 1024.0):
            expected = closed_form_multiplier(n, g)
            assert cs_multiplier(n, gs=(g,)) == pytest.approx(expected, rel=1e-9), (n, g)
    assert cs_multiplier(2, gs=(16.0,)) == math.inf  # too few rounds for a small-effect prior
    assert cs_multiplier(1) == math.inf
    widths = [cs_multiplier(n) for n in range(2, 40)]
    assert all(a > b for a, b in zip(widths, widths[1:], strict=False))  # narrows every round
    # Wider than a fixed-n t interval (the price of looking after every round)…
    assert cs_multiplier(8) > 2.365 / math.sqrt(8)
    # …but it still shrinks like sqrt(log n / n).
    assert cs_multiplier(400) < 0.25


def test_gaussian_coverage_holds_uniformly_over_sixty_looks():
    rng = random.Random(7)
    misses = 0
    runs = 1500
    for _ in range(runs):
        values = []
        for _ in range(60):
            values.append(rng.gauss(0.0, 1.0))
            if len(values) >= 2:
                _, low, high = confidence_sequence(values)
                if not low <= 0.0 <= high:
                    misses += 1
                    break
    assert misses / runs <= 0.05  # Ville: at most alpha, at ANY look (measured ~2%)


def test_two_thousand_simulated_aa_sequences_rarely_give_a_false_verdict():
    """Identical code, realistic noise (heavy tails, bursts, shifted rounds), a look after every
    round and a stop as soon as settled: false faster/slower at most 5% (the issue's promise)."""
    rng = random.Random(2026)
    false = settled_inside = 0
    rounds = []
    for i in range(2000):
        noise = LOADED if i % 2 else QUIET
        est, why = simulate_sequence(rng, 1.0, noise)
        false += est.verdict in ("faster", "slower")
        settled_inside += why == "settled" and est.verdict == "not significant"
        rounds.append(est.rounds)
    assert false / 2000 <= 0.05
    assert settled_inside / 2000 > 0.6  # and it does settle, mostly inside the band
    assert statistics.median(rounds) <= 12


def test_clear_effects_settle_in_few_rounds_with_the_truth_inside_the_ci():
    rng = random.Random(11)
    for ratio, verdict, most_rounds in ((2.0, "faster", 3), (0.5, "slower", 3), (1.2, "faster", 5)):
        outcomes = [simulate_sequence(rng, ratio, QUIET) for _ in range(100)]
        assert all(est.verdict == verdict for est, _ in outcomes), ratio
        assert statistics.median(est.rounds for est, _ in outcomes) <= most_rounds, ratio
        covered = sum(est.ci95[0] <= ratio <= est.ci95[1] for est, _ in outcomes)
        assert covered >= 95, ratio


def test_sequential_verdict_and_settling_rules():
    assert sequential_verdict((0.99, 1.01)) == "not significant"
    assert sequential_verdict((1.003, 1.012)) == "not significant"  # inside the ±1.5% band
    assert sequential_verdict((1.01, 1.5)) == "faster"  # excludes 1 (at the budget's end)
    assert sequential_verdict((0.5, 0.97)) == "slower"
    assert settled((1.03, 1.5)) and settled((0.5, 0.97)) and settled((0.99, 1.012))
    assert not settled((1.01, 1.5)) and not settled((0.95, 1.01))
    est = sequential_estimate([[2.0, 2.02, 1.98]] * 3)
    assert est.ci95[0] <= est.speedup <= est.ci95[1] and est.rounds == 3 and est.pairs == 9


def test_rounds_that_agree_by_chance_do_not_settle_what_their_pairs_leave_open():
    """Two rounds whose medians coincide while their pairs spread by 5%: the spread between
    rounds is 0, but the pairs say a round's statistic is uncertain by ~3%, so the sequence stays
    open (without the floor it settled ``not significant`` at ±0%), at the final look too."""
    from sandbox.harness.timing import decide

    rounds = [[1.05, 1.0, 0.95], [0.95, 1.0, 1.05]]
    est = sequential_estimate(rounds)
    assert not settled(est.ci95) and est.ci95[0] < 0.5 and est.ci95[1] > 2.0
    assert within_round_sd(rounds) == pytest.approx(0.05 / math.sqrt(3), rel=0.02)
    final, _ = decide([*rounds, [1.05, 1.0, 0.95]], {"sequential": True}, "budget")
    assert final.rel_halfwidth > 0.05  # a t interval on three rounds of ±3%, not ±0
    # The floor only widens: every interval contains the one without it.
    rng = random.Random(3)
    for _ in range(200):
        sample = noisy_rounds(1.0, rounds=rng.randint(2, 8), pairs=3, noise=0.03, seed=rng.random())
        stats = [statistics.median(math.log(x) for x in r) for r in sample]
        _, low, high = confidence_sequence(stats)
        _, low_f, high_f = confidence_sequence(stats, floor=within_round_sd(sample))
        assert low_f <= low and high <= high_f


def test_the_final_look_decides_a_clear_speedup_the_budget_cut_short() -> None:
    from sandbox.harness.timing import decide

    # A slow workload: the budget allowed three rounds; a 1.5x whose rounds differ by ~10%.
    rounds = [[1.45, 1.46, 1.44], [1.6, 1.61, 1.59], [1.52, 1.53, 1.51]]
    opts = {"sequential": True}
    sequential, final = decide(rounds, opts, "settled")
    assert not final and sequential.verdict == "not significant"  # the CS is still wide
    assert sequential.ci95[0] < 1.0 < 1.5 < sequential.ci95[1]
    decided, final = decide(rounds, opts, "budget")
    assert final and decided.verdict == "faster"  # the 99% t interval on three rounds
    assert 1.0 < decided.ci95[0] < 1.45 < decided.speedup < 1.6 < decided.ci95[1]
    # two rounds: t with one degree of freedom decides nothing of the kind
    assert decide(rounds[:2], opts, "budget")[0].verdict == "not significant"
    # ... and it never turns an A/A difference into a verdict; its interval, narrower than the
    # sequence's, is the one reported
    same = [[1.0, 0.99, 1.01], [0.985, 0.98, 0.99], [1.015, 1.02, 1.01], [1.0, 0.99, 1.01]]
    cs, at_budget = decide(same, opts, "settled")[0], decide(same, opts, "budget")
    assert at_budget[1] and at_budget[0].verdict == cs.verdict == "not significant"
    assert at_budget[0].speedup == pytest.approx(cs.speedup)
    assert cs.ci95[0] < at_budget[0].ci95[0] < 1.0 < at_budget[0].ci95[1] < cs.ci95[1]
    assert at_budget[0].rel_halfwidth == pytest.approx(
        cs.rel_halfwidth * t_quantile(ALPHA_FINAL, 3) / 2 / cs_multiplier(4, ALPHA_SEQUENTIAL),
        rel=0.02,
    )
    # the fixed protocol has no final look
    assert decide(rounds, {"sequential": False}, "budget")[1] is False


def test_the_final_looks_t_quantile_is_students():
    from scipy.stats import t  # the harness has no scipy: its own closed form, checked here

    from sandbox.harness.stats import t_quantile

    for nu in (1, 2, 3, 4, 7, 12, 40):
        for alpha in (0.01, 0.05):
            assert t_quantile(alpha, nu) == pytest.approx(t.ppf(1 - alpha / 2, nu), rel=1e-9)


def test_the_interval_at_a_budget_stop_covers_small_effects_95_percent():
    """A small effect (or none) that the budget cuts short: the reported interval, the narrower
    of the sequence's and the final look's, still covers the true speedup in >= 95% of runs
    (union bound: 4% + 1%), under noise with heavy tails and shifted rounds."""
    rng = random.Random(7)
    noisy = Noise(pair_sd=0.03, process_sd=0.012)  # rounds ~1.5% apart: few settle by 12
    for ratio in (1.0, 1.01, 0.985):
        runs = [simulate_sequence(rng, ratio, noisy, max_rounds=12) for _ in range(500)]
        cut_short = [est for est, why in runs if why == "max_rounds"]
        assert len(cut_short) > 250, ratio  # most of them end on the final look
        missed = sum(not est.ci95[0] <= ratio <= est.ci95[1] for est, _ in runs)
        assert missed / len(runs) <= 0.05, (ratio, missed)
