"""A/A: the baseline against an identical candidate, 20 evaluations (bwrap, default timing:
sequential, a look after every round).

Target: at most one ``faster``/``slower`` in 20 runs (a false verdict), ``not significant`` in
<= 6 s with a CI half-width <= 1.5% for a workload of ~1 ms per call. It also prints what
sets the width: the pairs' spread within a round and the rounds' spread beyond it (fresh
processes of identical code run at different speeds: more pairs per round cannot remove that,
only more rounds can).
Run: ``.venv/bin/python bench/sandbox_aa.py [runs] [backend] [--quick]``
"""

from __future__ import annotations

import math
import statistics
import sys

from sandbox_common import QUICK, load, loop_task, median

import sandbox


def spread(samples: list[list[dict]], clock: str) -> tuple[float, float, float]:
    """(sd of a pair's log-ratio within a round, sd of the round statistics between rounds,
    the part of the latter that the pairs do not explain: fresh processes running identical
    code at different speeds), from one evaluation's ``timing.samples``."""
    i = 0 if clock == "cpu" else 1
    rounds = [[math.log(p["baseline"][i] / p["candidate"][i]) for p in r] for r in samples]
    rounds = [r for r in rounds if len(r) >= 2]
    if len(rounds) < 3:
        return math.nan, math.nan, math.nan
    within = statistics.median(statistics.stdev(r) for r in rounds)
    between = statistics.stdev(statistics.median(r) for r in rounds)
    # The median of k pairs: about 1.25 sd/sqrt(k) for normal noise.
    explained = 1.25 * within / math.sqrt(statistics.median(len(r) for r in rounds))
    return within, between, math.sqrt(max(0.0, between**2 - explained**2))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else (5 if QUICK else 20)
    backend = sys.argv[2] if len(sys.argv) > 2 else "bwrap"
    print(f"A/A on {backend}, {runs} runs; {load()}")
    print(
        f"{'run':>3} {'verdict':>16} {'speedup':>8} {'ci95':>17} {'±%':>6} {'ms/call':>8} "
        f"{'pairs':>5} {'clock':>5} {'rounds':>6} {'stopped':>10} {'eval s':>6}"
    )
    ok = widths = false = 0
    halfwidths, durations, spreads = [], [], []
    for i in range(runs):
        v = sandbox.evaluate(loop_task(2, 2), backend=backend)
        low, high = v["ci95"]
        half = (high / low) ** 0.5 - 1
        halfwidths.append(half)
        durations.append(v["duration_s"])
        spreads.append(spread(v["timing"]["samples"], v["timing"]["clock"]))
        ok += v["verdict"] == "not significant" and low <= 1.0 <= high
        false += v["verdict"] in ("faster", "slower")
        widths += half <= 0.015
        print(
            f"{i + 1:>3} {v['verdict']:>16} {v['speedup']:8.4f} [{low:.4f}, {high:.4f}] "
            f"{half * 100:5.2f}% {v['baseline']['per_call_s'] * 1e3:8.3f} "
            f"{v['timing']['pairs']:>5} {v['timing']['clock']:>5} {v['rounds']:>6} "
            f"{v['stopped']:>10} {v['duration_s']:6.1f}"
        )
    print(f"false verdicts (faster/slower): {false}/{runs} (target <= {max(1, runs // 20)})")
    print(f"not significant with 1.0 inside the CI: {ok}/{runs}")
    print(
        f"CI half-width <= 1.5%: {widths}/{runs}; median half-width "
        f"{median(halfwidths) * 100:.2f}%, max {max(halfwidths) * 100:.2f}%"
    )
    within, between, process = (median([x[j] for x in spreads]) * 100 for j in range(3))
    print(
        f"what sets the width (medians): pairs' log-ratios spread {within:.2f}% within a round; "
        f"round statistics {between:.2f}% between rounds, of which {process:.2f}% is not the "
        "pairs' noise (fresh processes of identical code differ in speed)"
    )
    print(f"median evaluation time {median(durations):.1f} s (target <= 6 s); {load()}")


if __name__ == "__main__":
    main()
