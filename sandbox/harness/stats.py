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

That is the *fixed* protocol (``timing.sequential: false``): its CI is valid at one look, after a
number of rounds decided in advance. The *sequential* protocol (the default) looks after every
round and stops as soon as the answer is settled, so it needs an interval that stays valid at
every look: :func:`confidence_sequence` below.

Timing may use up its budget before the confidence sequence settles (a slow workload gets a
few rounds of seconds each, and the sequence's width after 3 rounds is ~17 round-to-round sds;
identical code never settles unless the rounds agree within ~1.3%). Then one *final look*: a
Student-t interval at level 1 - ``ALPHA_FINAL`` on the per-round statistics of every round
taken, and the reported interval is the narrower of it and the sequence's (:func:`final_look`).
The error rate is split, ``ALPHA_SEQUENTIAL`` for the looks of the confidence sequence and
``ALPHA_FINAL`` for the final one, so by the union bound the chance of a wrong
``faster``/``slower``, or of an interval that misses the true speedup at the stop, stays within
``ALPHA`` (0.05).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

N_BOOTSTRAP = 4000

#: Error rate of the whole sequential procedure, split between the confidence sequence
#: (P(the true speedup ever leaves the interval) <= ALPHA_SEQUENTIAL) and the final look.
#: Tried and not kept: 3.5% + 1.5% (with a mixture prior of 2048, so that a clear 2x still
#: settles at two rounds) narrowed A/A intervals ±1.65% -> ±1.35% (8 runs each, side by side)
#: with clear effects as fast, but 2 of the next 40 real A/A runs ended faster/slower, both at
#: the final look; 4% + 1% gave 0 in 128 that day. The final look's share is the A/A false rate.
ALPHA = 0.05
ALPHA_FINAL = 0.01
ALPHA_SEQUENTIAL = ALPHA - ALPHA_FINAL
#: Noise band around 1: a sequential CI inside [1/(1+b), 1+b] settles ``not significant``; one
#: outside it settles ``faster``/``slower``. 1.5%: what an A/A interval should come within (a
#: "not significant" then says the two are within 1.5%); at 2% a quiet host's A/A settled at
#: up to ±2% in ~3.6 s. Side by side (A/A, 1 ms workload, 10 runs each): 2% gave ±1.55%
#: (median; 5 of 10 settled inside the band) in 4.97 s, 1.5% ±1.39% in 5.41 s (all at the
#: budget's final look). Small true differences settle a little sooner (beyond 1.5%, not 2%).
NOISE_BAND = 0.015
#: Prior variances of the standardised effect (log speedup / round-to-round sd) mixed in the
#: confidence sequence: 16 suits small effects, 1024 lets a clear 2x settle after 2 rounds
#: (where its pairs agree within ~0.7%: see within_round_sd).
MIXTURE_G = (16.0, 1024.0)


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
        if not 0.0 < low <= high < math.inf:
            return math.inf
        return math.sqrt(high / low) - 1.0


def verdict_for(ci95: tuple[float, float]) -> str:
    low, high = ci95
    if low > 1.0:
        return "faster"
    if high < 1.0:
        return "slower"
    return "not significant"


def estimate_speedup(
    rounds: list[list[float]], seed: int = 0, alpha: float = ALPHA
) -> SpeedupEstimate:
    """``rounds``: per round, the paired ratios (baseline time / candidate time); the CI at
    level 1 - ``alpha`` (0.95 by default)."""
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
    tail = 100 * alpha / 2
    low, high = np.exp(np.percentile(np.median(resampled, axis=1), [tail, 100 - tail]))
    ci = (float(min(low, point)), float(max(high, point)))
    return SpeedupEstimate(point, ci, verdict_for(ci), n_rounds * k, n_rounds)


def _log_mixture_bf(t: float, n: int, gs: tuple[float, ...]) -> float:
    """log of the scale-invariant normal-mixture Bayes factor of ``mean = mu0`` at t-statistic
    ``t`` after ``n`` observations (in logs: it grows like (1 + n g)^((n-1)/2))."""
    nu = n - 1
    logs = [
        -0.5 * math.log1p(n * g)
        + (n / 2) * (math.log1p(t * t / nu) - math.log1p(t * t / (nu * (1.0 + n * g))))
        for g in gs
    ]
    top = max(logs)
    return top + math.log(math.fsum(math.exp(x - top) for x in logs) / len(logs))


@functools.lru_cache(maxsize=1024)
def cs_multiplier(n: int, alpha: float = ALPHA, gs: tuple[float, ...] = MIXTURE_G) -> float:
    """``m`` such that the confidence sequence after ``n`` observations is ``mean ± m·s``
    (``s`` the sample standard deviation); ``inf`` while it is still unbounded."""
    if n < 2:
        return math.inf
    threshold = math.log(1.0 / alpha)
    # The Bayes factor's limit as |t| -> inf: below the threshold, no t rejects.
    logs = [((n - 1) / 2) * math.log1p(n * g) for g in gs]
    top = max(logs)
    ceiling = top + math.log(math.fsum(math.exp(x - top) for x in logs) / len(logs))
    if ceiling <= threshold:
        return math.inf
    low, high = 0.0, 1.0
    while _log_mixture_bf(high, n, gs) < threshold:
        high *= 2.0
    for _ in range(100):  # bisection: the Bayes factor increases with |t|
        mid = (low + high) / 2
        if _log_mixture_bf(mid, n, gs) < threshold:
            low = mid
        else:
            high = mid
    return high / math.sqrt(n)


def confidence_sequence(
    values: list[float],
    alpha: float = ALPHA,
    gs: tuple[float, ...] = MIXTURE_G,
    floor: float = 0.0,
) -> tuple[float, float, float]:
    """(mean, low, high) of an anytime-valid confidence sequence for the mean of ``values``.

    Construction: Lai's t-mixture confidence sequence (T. L. Lai, "On confidence sequences",
    Ann. Statist. 4(2), 1976), i.e. Robbins' normal-mixture martingale made scale-invariant.
    For observations ``N(mu, sigma^2)`` with *unknown* sigma, the Bayes factor of ``mean = mu0``
    with a right-Haar prior (1/sigma) on the scale and ``N(0, g)`` on the standardised effect
    ``(mu - mu0)/sigma`` is, with ``t`` the one-sample t statistic and ``nu = n - 1``::

        BF_n(mu0) = (1 + n g)^(-1/2) * [(1 + t^2/nu) / (1 + t^2/(nu (1 + n g)))]^(n/2)

    (Rouder et al., Psychon. Bull. Rev. 2009, eq. 1 at fixed g). With a right-Haar prior it is
    the likelihood ratio of the maximal scale invariant, hence a nonnegative martingale with mean
    1 under ``mean = mu0`` (Pérez-Ortiz, Lardy, de Heide & Grünwald, "E-statistics, group
    invariance and anytime-valid testing", Ann. Statist. 2024); an average over several ``g`` is
    one too. By Ville's inequality ``P(exists n: BF_n(mu) >= 1/alpha) <= alpha``, so the set
    ``{mu0 : BF_n(mu0) < 1/alpha}`` = ``mean ± cs_multiplier(n)·s`` covers the true mean at
    every ``n`` at once, whatever rule decides when to stop looking. Checked by simulation in
    ``tests/sandbox/test_stats.py`` and ``bench/sandbox_sequential_sim.py`` (normal and heavy-
    tailed noise, disturbed rounds). ``low``/``high`` are infinite while the sequence is
    still unbounded (``n < 2``).

    ``floor``: a lower bound on the standard deviation used for the radius (``mean ± m·max(s,
    floor)``). Each interval then contains the one without it, so the sequence stays
    anytime-valid; it only guards against a spread estimated too small from a few values that
    happen to agree (see :func:`within_round_sd`).
    """
    n = len(values)
    if n == 0:
        return math.nan, -math.inf, math.inf
    mean = math.fsum(values) / n
    if n < 2:
        return mean, -math.inf, math.inf
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    radius = cs_multiplier(n, alpha, gs) * max(sd, floor)
    return mean, mean - radius, mean + radius


def round_statistic(ratios: list[float]) -> float:
    """One observation per round for the confidence sequence: the median of the round's paired
    log-ratios (rounds are fresh processes, so rounds, not pairs, are independent)."""
    return _median([math.log(r) for r in ratios])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    k = len(ordered)
    return ordered[k // 2] if k % 2 else (ordered[k // 2 - 1] + ordered[k // 2]) / 2


def within_round_sd(rounds: list[list[float]]) -> float:
    """What the pairs inside a round say of the spread of its statistic: the median over rounds
    of the sd of a round's log-ratios divided by sqrt(pairs); 0 with one pair per round.

    The round-to-round spread can never be smaller than that (it is that plus the differences
    between processes), but with two or three rounds its estimate often is: on a host whose
    pairs spread by 5%, two rounds whose medians agreed within 0.01% by chance made the
    sequence (212 sds wide at two rounds) settle an A/A ``not significant`` at ±0.9%, an
    interval the data did not support. A floor of this size on the spread
    (:func:`confidence_sequence`'s ``floor``, and the final look's) only widens intervals, so
    they stay valid. The median over rounds: a round with a burst of load does not set it."""
    spreads = []
    for r in rounds:
        if len(r) >= 2:
            logs = [math.log(x) for x in r]
            mean = math.fsum(logs) / len(logs)
            var = math.fsum((v - mean) ** 2 for v in logs) / (len(logs) - 1)
            spreads.append(math.sqrt(var / len(logs)))
    return _median(spreads) if spreads else 0.0


def sequential_verdict(ci95: tuple[float, float], band: float = NOISE_BAND) -> str:
    """``not significant`` when the CI lies inside the noise band (the difference, if any, is
    too small to matter), else ``faster``/``slower`` when it excludes 1."""
    low, high = ci95
    if low >= 1.0 / (1.0 + band) and high <= 1.0 + band:
        return "not significant"
    return verdict_for(ci95)


def settled(ci95: tuple[float, float], band: float = NOISE_BAND) -> bool:
    """The answer cannot change any more: the CI is outside the band or inside it."""
    low, high = ci95
    inside = low >= 1.0 / (1.0 + band) and high <= 1.0 + band
    return inside or low > 1.0 + band or high < 1.0 / (1.0 + band)


def sequential_estimate(
    rounds: list[list[float]], band: float = NOISE_BAND, alpha: float = ALPHA_SEQUENTIAL
) -> SpeedupEstimate:
    """The speedup after the rounds so far: ``exp`` of the mean per-round median log-ratio and
    the confidence sequence around it (an interval valid at whatever round timing stops)."""
    rounds = [r for r in rounds if r]
    if not rounds:
        raise ValueError("no timing pairs")
    mean, low, high = confidence_sequence(
        [round_statistic(r) for r in rounds], alpha, floor=within_round_sd(rounds)
    )
    ci = (_exp(low), _exp(high))
    return SpeedupEstimate(
        _exp(mean), ci, sequential_verdict(ci, band), sum(len(r) for r in rounds), len(rounds)
    )


def final_look(rounds: list[list[float]], sequential: SpeedupEstimate) -> SpeedupEstimate | None:
    """Timing ended (budget or rounds used up) before the confidence sequence settled: the
    interval at that stop is the narrower of the sequence's and a Student-t interval at level
    1 - ``ALPHA_FINAL`` on the per-round statistics (rounds are the independent units; the
    number of rounds is set by the budget, not by the values). Both are ``mean ± radius`` around
    the same mean of the round statistics, so the narrower one is their intersection, which
    covers the true speedup with probability >= 1 - ALPHA_SEQUENTIAL - ALPHA_FINAL = 95% by the
    union bound; and it excludes 1 exactly when one of the two does, so the verdicts are those
    of "either decides". From ~3 rounds on the t interval is the narrower (at 12 rounds 0.90 sd
    against the sequence's 1.34). None when the sequence has settled or there are fewer than
    two rounds. Not the pairs' bootstrap: with the three rounds a slow workload may get,
    resampling rounds cannot show their spread (measured on A/A: 1 false verdict in 30 at
    three rounds). The spread is floored like the sequence's (:func:`within_round_sd`)."""
    rounds = [r for r in rounds if r]
    stats = [round_statistic(r) for r in rounds]
    n = len(stats)
    if settled(sequential.ci95) or n < 2:
        return None
    mean = math.fsum(stats) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in stats) / (n - 1))
    sd = max(sd, within_round_sd(rounds))
    radius = t_quantile(ALPHA_FINAL, n - 1) * sd / math.sqrt(n)
    low, high = sequential.ci95
    if 0.0 < low and high < math.inf:
        radius = min(radius, (math.log(high) - math.log(low)) / 2)
    ci = (_exp(mean - radius), _exp(mean + radius))
    return SpeedupEstimate(_exp(mean), ci, verdict_for(ci), sum(len(r) for r in rounds if r), n)


def _t_within(t: float, nu: int) -> float:
    """P(|T| < t) for Student's t with ``nu`` degrees of freedom (Abramowitz & Stegun 26.7.3,
    26.7.4: finite sums in theta = atan(t / sqrt(nu)); the harness has no scipy)."""
    theta = math.atan(t / math.sqrt(nu))
    c, s = math.cos(theta), math.sin(theta)
    if nu % 2:
        total, term = 0.0, c
        for k in range(1, (nu - 1) // 2 + 1):
            total += term
            term *= c * c * (2 * k) / (2 * k + 1)
        return (2 / math.pi) * (theta + s * total) if nu > 1 else 2 * theta / math.pi
    total, term = 0.0, 1.0
    for k in range(1, nu // 2 + 1):
        total += term
        term *= c * c * (2 * k - 1) / (2 * k)
    return s * total


@functools.lru_cache(maxsize=256)
def t_quantile(alpha: float, nu: int) -> float:
    """``t`` with P(|T| < t) = 1 - ``alpha`` (two-sided), by bisection."""
    low, high = 0.0, 1.0
    while _t_within(high, nu) < 1 - alpha:
        high *= 2
    for _ in range(100):
        mid = (low + high) / 2
        if _t_within(mid, nu) < 1 - alpha:
            low = mid
        else:
            high = mid
    return high


def _exp(x: float) -> float:
    if x == math.inf:
        return math.inf
    if x == -math.inf:
        return 0.0
    return math.exp(x)


def summarize(per_call: list[float]) -> dict:
    """Median and spread of one side's per-call times."""
    ordered = sorted(per_call)
    n = len(ordered)
    if not n:
        return {"median_s": None, "min_s": None, "max_s": None}
    return {"median_s": _median(ordered), "min_s": ordered[0], "max_s": ordered[-1]}
