"""Shared pieces of the sandbox benchmarks (tasks with a known cost, printing).

Every sandbox bench accepts ``--quick`` (fewer runs: proves it runs and prints the figures on a
busy machine; ``make sandbox-bench QUICK=1``). Rerun without it on a quiet machine for the
figures to report.
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUICK = "--quick" in sys.argv
if QUICK:
    sys.argv.remove("--quick")

# f(n) repeats the same loop `reps` times: a candidate with half the reps does exactly half the
# work and returns the same value.
LOOP = (
    "def f(n):\n    for _ in range({reps}):\n        s = 0\n        for i in range(n):\n"
    "            s += i % 7\n    return s\n"
)
# Fixed sizes: ~1 ms per call (reps=2) where they were chosen, 2-3 ms on this 3x slower machine
# (see the ms/call column of sandbox_aa.py); ratio_task sizes its workload to 1 ms here.
WORKLOAD_1MS = "def cases():\n    return [(20000,), (21000,), (22000,)]\n"


def loop_task(
    baseline_reps: int, candidate_reps: int | None, workload: str = WORKLOAD_1MS, **extra: object
) -> dict:
    task = {
        "baseline": LOOP.format(reps=baseline_reps),
        "entry": "f",
        "workload": workload,
        **extra,
    }
    if candidate_reps is not None:
        task["candidate"] = LOOP.format(reps=candidate_reps)
    return task


@functools.cache
def loop_pass_s() -> float:
    """Seconds per pass of LOOP's inner loop on this machine, now (measured once per run: the
    machines this runs on differ by 3x, and a "1 ms workload" should be one here too)."""
    ns: dict = {}
    exec(LOOP.format(reps=1), ns)  # noqa: S102 - the benchmark's own code
    return min(_cpu_of(ns["f"], 20000) for _ in range(15)) / 20000


def _cpu_of(fn, n: int) -> float:  # noqa: ANN001
    import time

    t0 = time.process_time()
    fn(n)
    return time.process_time() - t0


def ratio_task(
    baseline_reps: int, candidate_reps: int | None, per_call_ms: float = 1.0, **extra: object
) -> dict:
    """A task whose baseline costs about ``per_call_ms`` per call (measured on this machine,
    now: :func:`loop_pass_s`) and whose candidate does exactly ``candidate_reps /
    baseline_reps`` of its work (same result)."""
    n = per_call_ms / 1000 / (baseline_reps * loop_pass_s())
    sizes = [int(n * f) for f in (0.95, 1.0, 1.05)]
    workload = f"def cases():\n    return [{', '.join(f'({n},)' for n in sizes)}]\n"
    return loop_task(baseline_reps, candidate_reps, workload, **extra)


def seconds(started: float) -> float:
    import time

    return time.monotonic() - started


@contextmanager
def busy_core():
    """Keep one core busy (another process spinning) for the duration."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def median(values: list[float]) -> float:
    return statistics.median(values)
