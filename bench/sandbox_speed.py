"""Time to verdict: the whole evaluation (tests + equivalence + timing + profile) of a ~1 ms
per-call workload on bwrap, sequential timing (the default) and the fixed protocol
(``timing.sequential: false``) side by side in the same run, alternating.

Targets (quiet 2-core machine): 2x or 0.5x <= 2.5 s, 1.2x <= 5 s, A/A ``not significant`` in
<= 6 s with a CI half-width <= 1.5%. The workload is sized to ~1 ms per call on the machine it
runs on (``sandbox_common.loop_pass_s``). The fixed protocol runs with its own defaults (9 s).
Run: ``.venv/bin/python bench/sandbox_speed.py [runs] [backend] [--quick]``
"""

from __future__ import annotations

import sys

from sandbox_common import QUICK, load, median, ratio_task

import sandbox

CASES = {  # name: (baseline reps, candidate reps, target seconds, expected verdict)
    "2x": (2, 1, 2.5, "faster"),
    "0.5x": (2, 4, 2.5, "slower"),
    "1.2x": (6, 5, 5.0, "faster"),
    "A/A": (2, 2, 6.0, "not significant"),
}
TESTS = "from target import f\n\ndef test_small():\n    assert f(10) >= 0\n"


def run(case: tuple, sequential: bool, backend: str) -> dict:
    base, cand, _, _ = case
    task = ratio_task(base, cand, tests=TESTS, timing={"sequential": sequential})
    return sandbox.evaluate(task, backend=backend)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else (1 if QUICK else 3)
    backend = sys.argv[2] if len(sys.argv) > 2 else "bwrap"
    print(f"time to verdict on {backend}, {runs} run(s) per case and protocol; {load()}")
    print(
        f"{'case':>5} {'protocol':>10} {'wall s':>7} {'timing s':>8} {'rounds':>6} "
        f"{'stopped':>10} {'verdict':>16} {'speedup':>8} {'±%':>6} {'right':>5}"
    )
    summary = []
    for name, case in CASES.items():
        walls: dict[bool, list[float]] = {True: [], False: []}
        halves: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(runs):
            for sequential in (True, False):  # alternating: both see the same load
                v = run(case, sequential, backend)
                walls[sequential].append(v["duration_s"])
                low, high = v["ci95"] or (float("nan"), float("nan"))
                half = ((high / low) ** 0.5 - 1) * 100
                halves[sequential].append(half)
                print(
                    f"{name:>5} {'sequential' if sequential else 'fixed':>10} "
                    f"{v['duration_s']:7.2f} {v['timing_s'] or 0:8.2f} {v['rounds'] or 0:>6} "
                    f"{v['stopped'] or '-':>10} {v['verdict'] or v['status']:>16} "
                    f"{v['speedup'] or 0:8.3f} {half:6.2f} {str(v['verdict'] == case[3]):>5}"
                )
        seq, fixed = median(walls[True]), median(walls[False])
        summary.append((name, seq, fixed, case[2], median(halves[True]), median(halves[False])))
    print("\nmedian wall seconds per evaluation (and the CI's half-width, %):")
    print(
        f"{'case':>5} {'sequential':>10} {'fixed':>7} {'ratio':>6} {'target':>7} "
        f"{'±% seq':>7} {'±% fixed':>8}"
    )
    for name, seq, fixed, target, h_seq, h_fixed in summary:
        print(
            f"{name:>5} {seq:10.2f} {fixed:7.2f} {seq / fixed:6.2f} {'<=' + str(target):>7} "
            f"{h_seq:7.2f} {h_fixed:8.2f}"
        )
    print("A/A target: not significant in <= 6 s with a half-width <= 1.5%")
    print(load())


if __name__ == "__main__":
    main()
