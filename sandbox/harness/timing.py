"""The timing stage: calibrated, interleaved, paired samples from fresh processes.

- Each *round* starts a fresh worker per side (baseline, candidate), pins both to the same
  randomly chosen CPU (so that the two sides of a pair share one CPU's caches and neighbours
  rather than the scheduler parking them on different ones), imports the code, and
  takes one warm-up sample per side (the first round calibrates instead: the loop count is
  doubled until one sample lasts at least ``min_sample_s``).
- Then ``pairs_per_round`` pairs: one sample of each side, in random order.
- A sample is ``loops`` passes over all workload calls on freshly deep-copied inputs; the clock
  is the worker's CPU time read from this process (all its threads), and the wall time around
  the request. CPU time is the main clock unless the code is clearly multi-threaded
  (CPU/wall > 1.3) or mostly waiting (CPU/wall < 0.35): then wall time is used.
- Two rounds always run (within the wall-clock limit), whatever the budget says.
- After each round the worker checks its outputs against its first call (and for caching);
  after ``min_rounds`` rounds the speedup CI is computed and sampling stops once its half-width
  is within ``target_rel_ci`` (but not before ``early_stop_rounds``), or when the next round
  would exceed ``budget_s``, or after ``max_rounds``.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import time

from .procs import Stop
from .stats import estimate_speedup

MAX_CALLS_PER_SAMPLE = 1_000_000


def _sample(sup, worker, loops: int, n_cases: int, what: str) -> tuple[float, float]:  # noqa: ANN001
    # A warm-up call ends the (untimed) preparation when a call is short next to the sample:
    # the other side just ran on this CPU, and its caches should not be charged to this side.
    warm = loops * n_cases >= 4
    sup.ask(worker, {"cmd": "prepare", "loops": loops, "warm": warm}, what)
    cpu0, wall0 = worker.cpu(), time.perf_counter()
    sup.ask(worker, {"cmd": "go"}, what)
    wall1, cpu1 = time.perf_counter(), worker.cpu()
    calls = loops * n_cases
    return (cpu1 - cpu0) / calls, (wall1 - wall0) / calls


def _calibrate(sup, worker, n_cases: int, min_s: float, what: str) -> int:  # noqa: ANN001
    loops = 1
    while True:
        cpu, wall = _sample(sup, worker, loops, n_cases, what)
        # CPU time, so that a busy moment during calibration does not shorten the samples
        # (wall time only for code that waits rather than computes).
        took = (cpu if cpu > 0.35 * wall else wall) * loops * n_cases
        if took >= min_s or loops * n_cases >= MAX_CALLS_PER_SAMPLE:
            return loops
        factor = min(10.0, max(2.0, 1.2 * min_s / max(took, 1e-9)))
        loops = max(loops + 1, min(int(loops * factor), MAX_CALLS_PER_SAMPLE // n_cases))


def _equalize(loops: dict[str, int]) -> None:
    """The same loop count for both sides when their speeds are within 4x: a fixed cost per
    sample (the request, cold caches) is then spread over the same number of calls on both
    sides, so it cannot tilt an A/A comparison (measured: ~1% when counts differed)."""
    if len(loops) == 2 and max(loops.values()) <= 4 * min(loops.values()):
        common = max(loops.values())
        for role in loops:
            loops[role] = common


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        try:
            os.sched_setaffinity(pid, {cpu})
        except OSError:
            pass


def choose_clock(samples: dict[str, list[tuple[float, float]]]) -> str:
    for pairs in samples.values():
        ratios = [c / w for c, w in pairs if w > 0]
        if ratios and not 0.35 <= statistics.median(ratios) <= 1.3:
            return "wall"
    return "cpu"


def ratios_by_round(rounds: list[list[dict]], clock: str) -> list[list[float]]:
    i = 0 if clock == "cpu" else 1
    return [
        [
            p["baseline"][i] / p["candidate"][i]
            for p in r
            if p["candidate"][i] > 0 and p["baseline"][i] > 0
        ]
        for r in rounds
    ]


def measure(sup, roles: list[str], opts: dict) -> dict:  # noqa: ANN001
    try:
        return _measure(sup, roles, opts)
    except Stop as stop:
        if stop.role == "baseline" and stop.status == "crashed" and len(roles) == 2:
            # The baseline already ran cleanly in the equivalence stage; dying now, beside the
            # candidate's process, means it was killed (same uid: the candidate can signal it).
            raise Stop(
                "tampered",
                f"{stop.message}; the baseline's process was killed while "
                "the candidate's was running",
                "candidate",
            ) from None
        raise


def _measure(sup, roles: list[str], opts: dict) -> dict:  # noqa: ANN001
    start = time.monotonic()
    budget_end = min(start + float(opts["budget_s"]), sup.deadline - 1.0)
    seed = opts.get("seed")
    rng = random.Random(seed)
    loops: dict[str, int] = {}
    rounds: list[list[dict]] = []
    samples: dict[str, list[tuple[float, float]]] = {r: [] for r in roles}
    n_cases = 0
    stop_reason = "max_rounds"
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None]
    estimate = None
    while len(rounds) < int(opts["max_rounds"]):
        round_start = time.monotonic()
        workers = {}
        try:
            cpu = rng.choice(cpus)
            for role in rng.sample(roles, len(roles)):  # which side starts first: random too
                workers[role], loaded = sup.load(role, quiet=True)
                n_cases = loaded["n_cases"]
                _pin(workers[role].pid, cpu)
            if not loops:
                for role in roles:
                    loops[role] = _calibrate(
                        sup,
                        workers[role],
                        n_cases,
                        float(opts["min_sample_s"]),
                        "timing the " + role,
                    )
                _equalize(loops)
            else:
                for role in roles:
                    _sample(sup, workers[role], loops[role], n_cases, f"timing the {role}")
            pairs = []
            for _ in range(int(opts["pairs_per_round"])):
                order = list(roles)
                rng.shuffle(order)
                pair = {}
                for role in order:
                    pair[role] = _sample(
                        sup, workers[role], loops[role], n_cases, f"timing the {role}"
                    )
                    samples[role].append(pair[role])
                pairs.append(pair)
            for role in roles:
                reply = sup.ask(workers[role], {"cmd": "verify"}, f"checking the {role}'s outputs")
                if "drift" in reply:
                    raise Stop(
                        "failed",
                        f"the {role}'s output changed between repeated calls "
                        f"({reply['drift']}); results must not depend on earlier calls",
                        role,
                    )
        finally:
            for worker in workers.values():
                sup.retire(worker)
        rounds.append(pairs)
        now = time.monotonic()
        clock = choose_clock(samples)
        if len(roles) == 2 and len(rounds) >= 2:
            estimate = estimate_speedup(ratios_by_round(rounds, clock), seed=seed or 0)
        if len(rounds) >= int(opts["min_rounds"]):
            if estimate is None:
                stop_reason = "min_rounds"
                break
            enough = len(rounds) >= int(opts.get("early_stop_rounds", 8))
            if enough and estimate.rel_halfwidth <= float(opts["target_rel_ci"]):
                stop_reason = "precise enough"
                break
        if len(rounds) >= 2 and now + (now - round_start) > budget_end:
            stop_reason = "time budget"
            break
    clock = choose_clock(samples)
    result = {
        "clock": clock,
        "rounds": len(rounds),
        "pairs": rounds,
        "loops": loops,
        "calls_per_sample": {r: loops[r] * n_cases for r in roles},
        "stopped": stop_reason,
        "duration_s": time.monotonic() - start,
    }
    if len(roles) == 2:
        est = estimate_speedup(ratios_by_round(rounds, clock), seed=seed or 0)
        result["estimate"] = {
            "speedup": est.speedup,
            "ci95": list(est.ci95),
            "verdict": est.verdict,
        }
    if not all(math.isfinite(c) for r in roles for c, _ in samples[r]):
        raise Stop("error", "timing produced non-finite samples")
    return result
