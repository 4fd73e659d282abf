"""A noise model of the per-pair timing log-ratios seen on a shared machine, for simulating
sequences through the statistics code (tests/sandbox/test_stats.py and
bench/sandbox_sequential_sim.py).

Per round (fresh processes): a process-level offset (memory layout, allocator state) shared by
the round's pairs; per pair: Student-t noise with 3 degrees of freedom (heavy tails); some pairs
hit by a burst of load (5x the noise), and now and then a whole round shifted (a neighbour
started on the same core for that round). Scales measured on this 2-core machine: per-pair sd
0.5-1% quiet, 2-4% loaded (bench/sandbox_aa.py prints the raw pairs' spread).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sandbox.harness.stats import NOISE_BAND, SpeedupEstimate, sequential_estimate, settled


@dataclass(frozen=True)
class Noise:
    pair_sd: float = 0.02  # per-pair log-ratio scale (t3)
    process_sd: float = 0.004  # per-round offset
    burst_rate: float = 0.10  # share of pairs hit by a burst of load
    burst_scale: float = 5.0
    shifted_round_rate: float = 0.05
    shift_sd: float = 0.03


QUIET = Noise(pair_sd=0.006, process_sd=0.002, burst_rate=0.05)
LOADED = Noise()


def _t3(rng: random.Random) -> float:
    chi = sum(rng.gauss(0, 1) ** 2 for _ in range(3)) / 3
    # scaled to unit variance (a t3 has variance 3)
    return rng.gauss(0, 1) / math.sqrt(chi) / math.sqrt(3)


def one_round(rng: random.Random, ratio: float, pairs: int, noise: Noise) -> list[float]:
    offset = rng.gauss(0, noise.process_sd)
    if rng.random() < noise.shifted_round_rate:
        offset += rng.gauss(0, noise.shift_sd)
    out = []
    for _ in range(pairs):
        scale = noise.pair_sd * (noise.burst_scale if rng.random() < noise.burst_rate else 1.0)
        out.append(ratio * math.exp(offset + scale * _t3(rng)))
    return out


def simulate_sequence(
    rng: random.Random,
    ratio: float = 1.0,
    noise: Noise = LOADED,
    pairs: int = 5,
    max_rounds: int = 20,
    band: float = NOISE_BAND,
) -> tuple[SpeedupEstimate, str]:
    """One sequential timing stage as sandbox/harness/timing.py runs it: a look after every
    round from the second, stop once settled, else the final look after ``max_rounds`` (a
    small ``max_rounds`` stands for a slow workload's time budget). Returns (the final
    estimate, why it stopped)."""
    from sandbox.harness.timing import decide

    rounds: list[list[float]] = []
    est = None
    for _ in range(max_rounds):
        rounds.append(one_round(rng, ratio, pairs, noise))
        if len(rounds) >= 2:
            est = sequential_estimate(rounds, band)
            if settled(est.ci95, band):
                return est, "settled"
    assert est is not None
    final, _ = decide(rounds, {"sequential": True, "noise_band": band}, "max_rounds")
    return final, "max_rounds"
