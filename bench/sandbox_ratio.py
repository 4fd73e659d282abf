"""A known ratio: a candidate doing exactly half the baseline's work must measure 2.0 within 3%,
with 2.0 inside the CI — on an idle machine and with another process keeping one core busy
(default timing: sequential, which stops once the CI is outside the noise band).

Run: ``.venv/bin/python bench/sandbox_ratio.py [runs] [backend] [--quick]``
"""

from __future__ import annotations

import sys

from sandbox_common import QUICK, busy_core, load, loop_task, median

import sandbox


def measure(label: str, runs: int, backend: str) -> None:
    within = inside = 0
    speedups = []
    for _ in range(runs):
        v = sandbox.evaluate(loop_task(2, 1), backend=backend)
        low, high = v["ci95"]
        speedups.append(v["speedup"])
        within += abs(v["speedup"] / 2.0 - 1) <= 0.03
        inside += low <= 2.0 <= high
        base = v["baseline"]
        print(
            f"  {label:10} speedup {v['speedup']:.4f} ci95 [{low:.4f}, {high:.4f}] "
            f"{v['verdict']} clock={v['timing']['clock']} pairs={v['timing']['pairs']} "
            f"rounds={v['rounds']} {v['stopped']} {v['duration_s']:.1f} s "
            f"wall/cpu={base['wall_per_call_s'] / base['cpu_per_call_s']:.2f}"
        )
    print(
        f"{label}: median speedup {median(speedups):.4f}; within 3% of 2.0: {within}/{runs}; "
        f"2.0 inside the CI: {inside}/{runs}"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else (2 if QUICK else 5)
    backend = sys.argv[2] if len(sys.argv) > 2 else "bwrap"
    print(f"known ratio 2.0 on {backend}; {load()}")
    measure("idle", runs, backend)
    with busy_core():
        measure("busy core", runs, backend)
    print(load())


if __name__ == "__main__":
    main()
