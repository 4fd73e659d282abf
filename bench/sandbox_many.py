"""Several candidates in one task: four candidates (2x, 1.3x, 1.0x, 0.7x) against one baseline
in ONE evaluation vs the same four evaluated separately, alternating in the same run.

Target: one task's wall time <= 40% of the four separate evaluations', every verdict right
(the 1.0x: ``not significant``). In the one task a candidate stops ``dominated`` once another is
surely faster (``timing.stop_dominated``, on by default); the separate evaluations have no
other candidate, so each runs until settled or its budget.
Run: ``.venv/bin/python bench/sandbox_many.py [runs] [backend] [--quick]``
"""

from __future__ import annotations

import sys
import time

from sandbox_common import LOOP, QUICK, load, median, ratio_task

import sandbox

# The baseline repeats the loop 30 times, the candidates 15 (2x), 23 (1.304x), 30 (1.0x) and 43
# (0.698x): the four ratios within 0.5%. (Until 2026-12-03 the baseline had 10 and the
# "1.3x" 8 reps, a 1.25x, which takes ~1.3x the rounds of a 1.3x to settle.)
BASELINE_REPS = 30
CANDIDATES = {
    "2x": (15, "faster"),
    "1.3x": (23, "faster"),
    "1.0x": (30, None),
    "0.7x": (43, "slower"),
}
TESTS = "from target import f\n\ndef test_small():\n    assert f(10) >= 0\n"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else (1 if QUICK else 3)
    backend = sys.argv[2] if len(sys.argv) > 2 else "bwrap"
    print(f"four candidates on {backend}, one task vs four, {runs} run(s); {load()}")
    together, apart = [], []
    for _ in range(runs):
        task = ratio_task(BASELINE_REPS, None, tests=TESTS)
        task["candidates"] = [LOOP.format(reps=r) for r, _ in CANDIDATES.values()]
        start = time.monotonic()
        v = sandbox.evaluate(task, backend=backend)
        together.append(time.monotonic() - start)
        print(f"one task: {together[-1]:.2f} s, status {v['status']}, {v['rounds']} rounds")
        for (name, (reps, want)), each in zip(CANDIDATES.items(), v["candidates"], strict=True):
            right = each["verdict"] == (want or "not significant")
            print(
                f"  {name:>5} ({BASELINE_REPS / reps:.3f}x) "
                f"{each['verdict'] or each['status']:>16} "
                f"×{each['speedup'] or 0:.3f} ci95 {each['ci95']} rounds {each['rounds']} "
                f"{each['stopped']} right={right}"
            )
        start = time.monotonic()
        for name, (reps, _) in CANDIDATES.items():
            single = sandbox.evaluate(ratio_task(BASELINE_REPS, reps, tests=TESTS), backend=backend)
            print(
                f"  separately {name:>5}: {single['duration_s']:.2f} s "
                f"{single['verdict'] or single['status']} ×{single['speedup'] or 0:.3f}"
            )
        apart.append(time.monotonic() - start)
        print(f"four tasks: {apart[-1]:.2f} s")
    ratio = median(together) / median(apart)
    print(
        f"median: one task {median(together):.2f} s, four tasks {median(apart):.2f} s, "
        f"ratio {ratio * 100:.0f}% (target <= 40%); {load()}"
    )


if __name__ == "__main__":
    main()
