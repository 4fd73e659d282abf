"""Simulated sequences through the statistics code (no sandbox, no load dependence): A/A
sequences with a look after every round and a stop as soon as settled, under the noise model of
tests/sandbox/noise_model.py (quiet and loaded), and the rounds clear effects need.

Target: false ``faster``/``slower`` verdicts on A/A <= 5%.
Run: ``.venv/bin/python bench/sandbox_sequential_sim.py [sequences] [--quick]``
"""

from __future__ import annotations

import random
import statistics
import sys

from sandbox_common import QUICK

from sandbox.harness.stats import ALPHA, ALPHA_FINAL, ALPHA_SEQUENTIAL, NOISE_BAND
from tests.sandbox.noise_model import LOADED, QUIET, simulate_sequence


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else (2000 if QUICK else 10000)
    rng = random.Random(1)
    print(
        f"{n} simulated sequences per row, rounds of 5 pairs, alpha {ALPHA} ({ALPHA_SEQUENTIAL:g}"
        f" sequential looks + {ALPHA_FINAL} final look), band ±{NOISE_BAND:.1%}; max 20 rounds,"
        " or 3 (a slow workload's budget)"
    )
    print(
        f"{'noise':>7} {'max':>3} {'ratio':>6} {'false %':>8} {'covered %':>9} {'rounds med':>10} "
        f"{'p90':>4} {'settled %':>9}"
    )
    rows = [(lb, nz, mr) for mr in (20, 3) for lb, nz in (("quiet", QUIET), ("loaded", LOADED))]
    for label, noise, max_rounds in rows:
        for ratio in (1.0, 1.2, 2.0, 0.5, 8.0):
            runs = [
                simulate_sequence(rng, ratio, noise, max_rounds=max_rounds)
                for _ in range(n if ratio == 1 else n // 10)
            ]
            wrong = sum(
                (est.verdict in ("faster", "slower"))
                if ratio == 1.0
                else (est.verdict != ("faster" if ratio > 1 else "slower"))
                for est, _ in runs
            )
            covered = sum(est.ci95[0] <= ratio <= est.ci95[1] for est, _ in runs)
            rounds = sorted(est.rounds for est, _ in runs)
            settled = sum(why == "settled" for _, why in runs)
            print(
                f"{label:>7} {max_rounds:>3} {ratio:6.2f} {wrong / len(runs) * 100:8.2f} "
                f"{covered / len(runs) * 100:9.2f} {statistics.median(rounds):10.1f} "
                f"{rounds[int(len(rounds) * 0.9)]:>4} {settled / len(runs) * 100:9.1f}"
            )
    print(
        "false % on A/A is the rate of faster/slower verdicts (target <= 5);"
        " on the others, the rate of a wrong or missing verdict"
    )


if __name__ == "__main__":
    main()
