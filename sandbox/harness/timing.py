"""The timing stage: calibrated, interleaved, paired samples from fresh processes.

- Each *round* starts a fresh worker per side (baseline, candidate), pins both to the same
  randomly chosen CPU (so that the two sides of a pair share one CPU's caches and neighbours
  rather than the scheduler parking them on different ones), imports the code, and
  takes one short warm-up sample per side (:func:`warmup_loops`; the first round calibrates
  instead: the loop count grows, scaled by what the last sample took, until one sample lasts
  at least ``min_sample_s``).
- Pipelined (sequential timing with a CPU to spare): the timing CPU is chosen once, and each
  round's processes are started, imported and warmed up on the *other* CPUs while the round
  before is timed (:class:`_Pipeline`), then moved to the timing CPU. The timing CPU runs
  nothing but the samples; a round costs its pairs rather than two process starts.
- Then ``pairs_per_round`` pairs (by default 5, or 3 with several candidates, fewer, down to
  2, when one set of samples takes over ~0.1 s: ``ROUND_PAIRS_S``): one sample of each side,
  in random order.
- A sample is ``loops`` passes over all workload calls on fresh copies of the inputs (made before
  the clock starts, ``fresh.copier``: what ``copy.deepcopy`` would make, cheaply); the clock
  is the worker's CPU time read from this process (all its threads), and the wall time around
  the request. CPU time is the main clock unless the code is clearly multi-threaded
  (CPU/wall > 1.3) or mostly waiting (CPU/wall < 0.35 and it blocks, i.e. gives up the CPU
  itself, at least once per two calls; see :func:`choose_clock`): then wall time is used.
- Three rounds always run with sequential timing, two with the fixed protocol (within the
  wall-clock limit), whatever the budget says: after two, the confidence sequence's interval is
  still ~200 standard deviations wide (measured under load: a 3.2 s pair of rounds that ended
  on the budget reported ±6,000 %).
- After each round the worker checks its outputs against its first call (and for caching).
- Sequential protocol (``sequential``, the default): after every round (from ``min_rounds``,
  default 2) each candidate's anytime-valid confidence sequence is computed
  (``stats.sequential_estimate``); a candidate stops (``settled``) once its CI lies outside the
  noise band (``noise_band``, ±1.5%: faster/slower) or inside it (not significant). Looking after
  every round is what the confidence sequence allows: its 96% holds at any stopping round.
  A candidate still undecided when timing ends (budget, ``max_rounds``) gets one final look: a
  99% Student-t interval on its rounds' statistics, and it reports the narrower of that and the
  sequence's interval (``stats.final_look``; 4% + 1% = 5% in all).
- Fixed protocol (``sequential: false``): after ``min_rounds`` (default 4) rounds the bootstrap
  CI is computed and sampling stops once its half-width is within ``target_rel_ci`` (but not
  before ``early_stop_rounds``).
- Several candidates, sequential timing (``stop_dominated``, on by default): a candidate that
  looks like the baseline (1 in the middle half of its interval) also stops (``dominated``)
  once another one whose tests have passed is surely faster, i.e. the other's interval lies
  wholly above its own (:func:`dominated`); the leader (the highest lower bound) is timed on
  after it settles while others are undecided (:func:`leader`), and its budget does not count.
- Either way timing ends when every candidate has stopped, when the next round would exceed
  ``budget_s`` (``budget``; by default 5.3 s pipelined, else 9 s; with N candidates still
  undecided ``budget_s * (1 + (N - 1) / 2)`` from the start), or after ``max_rounds``.
- Several candidates: a round starts a fresh baseline and a fresh process per candidate still
  undecided, all pinned to one CPU; each set of samples takes the baseline and every such
  candidate once, in random order, so the baseline is measured once for all. A candidate that
  crashes, drifts or tampers while being timed is dropped (its own status); the others go on.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import threading
import time

from .cpus import throttled_s, usable_cpus
from .procs import Stop, killed_by_signal
from .stats import (
    NOISE_BAND,
    SpeedupEstimate,
    estimate_speedup,
    final_look,
    sequential_estimate,
    settled,
)

MAX_CALLS_PER_SAMPLE = 1_000_000
#: The timing budget when the task sets none: pipelined rounds cost a third of the others (a
#: 1 ms workload: ~19 rounds in 5.3 s against ~10 in 9 s), so they get less time. 5.3 s is
#: what an evaluation that cannot settle (identical code: fresh processes of it differ by ~2%)
#: may take within 6 s in all: measured side by side on an A/A of that workload, 12 runs each,
#: 4.5 s gave ±1.74% (median) in 4.84 s and 5.3 s ±1.48% in 5.60 s.
PIPELINED_BUDGET_S = 5.3
BUDGET_S = 9.0
#: Pairs per round when the task sets none: with several candidates a set of samples takes
#: one of each, so fewer sets keep a round about as long as starting the next one's processes.
PAIRS_ONE = 5
PAIRS_MANY = 3
#: ... and fewer when samples are slow, so that a round's pairs take about this long (at least
#: MIN_PAIRS: the median of two pairs still blunts one disturbed sample). A ~0.2 s call: 2
#: pairs per round instead of 5, ~1.1 s rounds instead of ~2.3 s.
ROUND_PAIRS_S = 0.5
MIN_PAIRS = 2


class Cancelled(Exception):
    """Timing was called off (``sup.cancel_timing`` set): the timed code proved wrong
    meanwhile (its tests, run beside the timing, failed)."""


def _sample(
    sup,  # noqa: ANN001
    worker,  # noqa: ANN001
    loops: int,
    n_cases: int,
    what: str,
    deadline: float | None = None,
    blocks: list[float] | None = None,
) -> tuple[float, float]:
    # A warm-up call ends the (untimed) preparation when a call is short next to the sample:
    # the other side just ran on this CPU, and its caches should not be charged to this side.
    warm = loops * n_cases >= 4
    sup.ask(worker, {"cmd": "prepare", "loops": loops, "warm": warm}, what, deadline)
    blocked0 = voluntary_switches(worker.pid)
    cpu0, wall0 = worker.cpu(), time.perf_counter()
    sup.ask(worker, {"cmd": "go"}, what, deadline)
    wall1, cpu1 = time.perf_counter(), worker.cpu()
    calls = loops * n_cases
    if blocks is not None:
        blocks.append((voluntary_switches(worker.pid) - blocked0) / calls)
    return (cpu1 - cpu0) / calls, (wall1 - wall0) / calls


def voluntary_switches(pid: int) -> int:
    """How often the process gave up its CPU itself (sleep, I/O, locks): a CPU-bound process
    that gets little CPU because the machine is busy is preempted instead (involuntary)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _calibrate(
    sup,  # noqa: ANN001
    worker,  # noqa: ANN001
    n_cases: int,
    min_s: float,
    what: str,
    per_call: dict[str, float] | None = None,
) -> int:
    """The loop count for samples of at least ``min_s``; ``per_call[role]``: the seconds per
    call the last calibration sample took (wall time)."""
    loops = 1
    while True:
        cpu, wall = _sample(sup, worker, loops, n_cases, what)
        # CPU time, so that a busy moment during calibration does not shorten the samples
        # (wall time only for code that waits rather than computes).
        took = (cpu if cpu > 0.35 * wall else wall) * loops * n_cases
        if took >= min_s or loops * n_cases >= MAX_CALLS_PER_SAMPLE:
            if per_call is not None:
                per_call[worker.role] = wall
            return loops
        # Scaled to the target (plus a margin) rather than doubled: a floor of 2x made samples
        # up to twice ``min_s`` (a 2x candidate: 10 loops took 15 ms of 20, then 20 loops),
        # and loop counts are shared upwards (_equalize), so every side paid for it.
        factor = min(10.0, 1.05 * min_s / max(took, 1e-9))
        loops = max(loops + 1, min(math.ceil(loops * factor), MAX_CALLS_PER_SAMPLE // n_cases))


def warmup_loops(loops: int, n_cases: int) -> int:
    """The loops of a fresh process's untimed warm-up sample: a quarter of a timed sample's,
    and at least 8 calls (CPython 3.11 specializes a function's bytecode after 8 calls). The
    warm-up pays the process's one-time costs (first calls, caches, the allocator's arenas);
    the rest of a full sample's length bought nothing, and with several candidates it was
    ~40% of the work of starting a round (five processes: ~45 ms of ~105 ms each)."""
    return min(loops, max(math.ceil(8 / max(n_cases, 1)), math.ceil(loops / 4)))


def _equalize(loops: dict[str, int]) -> None:
    """The same loop count for both sides when their speeds are within 4x: a fixed cost per
    sample (the request, cold caches) is then spread over the same number of calls on both
    sides, so it cannot tilt an A/A comparison (measured: ~1% when counts differed)."""
    if len(loops) == 2 and max(loops.values()) <= 4 * min(loops.values()):
        common = max(loops.values())
        for role in loops:
            loops[role] = common


def _equalize_many(loops: dict[str, int], roles: list[str]) -> None:
    """:func:`_equalize` for a baseline timed against several candidates: the baseline and
    every candidate within 4x of the shared count get one loop count (the largest of them).
    To a fixed point: calibration's counts jump by up to 10x, so a candidate 5x the baseline's
    first count may be within 4x of the count the others raised it to (seen: baseline 4, four
    candidates 5-20; the 20 was left apart from the 9 the rest shared)."""
    common = loops["baseline"]
    near: list[str] = []
    while True:
        near = [
            r for r in roles if r in loops and max(loops[r], common) <= 4 * min(loops[r], common)
        ]
        grown = max([common] + [loops[r] for r in near])
        if grown == common:
            break
        common = grown
    loops["baseline"] = common
    for role in near:
        loops[role] = common


def _since(before: float | None, after: float | None) -> float | None:
    """Seconds of CPU-quota throttling during the timing (None: no cgroup visible)."""
    return None if before is None or after is None else round(max(0.0, after - before), 6)


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        try:
            os.sched_setaffinity(pid, {cpu})
        except OSError:
            pass


def choose_clock(
    samples: dict[str, list[tuple[float, float]]],
    blocks: dict[str, list[float]] | None = None,
) -> str:
    """``wall`` for code that runs several threads (CPU/wall > 1.3) or mostly waits (CPU/wall
    < 0.35 *and* it blocks at least once per two calls); ``cpu`` otherwise. A low CPU/wall of
    code that never blocks means a busy machine starved it of CPU, which the CPU clock ignores
    and the wall clock would count (measured: the wall clock off by 10-20% at load 8 on 2 CPUs).
    """
    for role, pairs in samples.items():
        ratios = [c / w for c, w in pairs if w > 0]
        if not ratios:
            continue
        share = statistics.median(ratios)
        waits = (blocks or {}).get(role)
        blocking = statistics.median(waits) >= 0.5 if waits else True
        if share > 1.3 or (share < 0.35 and blocking):
            return "wall"
    return "cpu"


def ratios_by_round(
    rounds: list[list[dict]], clock: str, role: str = "candidate"
) -> list[list[float]]:
    """Per round, the paired ratios baseline time / ``role``'s time (rounds ``role`` was not
    timed in are left out)."""
    i = 0 if clock == "cpu" else 1
    out = []
    for r in rounds:
        ratios = [
            p["baseline"][i] / p[role][i]
            for p in r
            if role in p and p[role][i] > 0 and p["baseline"][i] > 0
        ]
        if ratios:
            out.append(ratios)
    return out


def estimate(rounds: list[list[float]], opts: dict, seed: int = 0) -> SpeedupEstimate:
    """The protocol's estimate: the confidence sequence (sequential) or the bootstrap CI."""
    if opts.get("sequential", True):
        return sequential_estimate(rounds, float(opts.get("noise_band", NOISE_BAND)))
    return estimate_speedup(rounds, seed=seed)


def decide(
    rounds: list[list[float]], opts: dict, stopped: str | None, seed: int = 0
) -> tuple[SpeedupEstimate, bool]:
    """The estimate timing reports once it has stopped for ``stopped``; True when it is the
    final look's (sequential timing that ran out of budget or rounds before settling)."""
    est = estimate(rounds, opts, seed=seed)
    if opts.get("sequential", True) and stopped in ("budget", "max_rounds"):
        final = final_look(rounds, est)
        if final is not None:
            return final, True
    return est, False


def measure(sup, roles: list[str], opts: dict, cpus: list | None = None) -> dict:  # noqa: ANN001
    """Time ``roles`` (``baseline`` first, then the candidates) on ``cpus`` (default: every CPU
    this process may use; one CPU when other stages run beside the timing)."""
    try:
        return _measure(sup, roles, opts, cpus)
    except Stop as stop:
        if stop.role == "baseline" and stop.status == "crashed" and len(roles) == 2:
            # The baseline already ran cleanly in the equivalence stage; dying now, beside the
            # candidate's process, means it was killed (same uid: the candidate can signal it).
            raise Stop(
                "tampered",
                f"{stop.message}; the baseline's process was killed while "
                "the candidate's was running",
                roles[1],
            ) from None
        if stop.role == "baseline" and stop.status == "crashed" and len(roles) > 2:
            raise Stop(
                "tampered",
                f"{stop.message}; the baseline's process was killed while the candidates' "
                "were running (one of them signalled it)",
                "candidates",
            ) from None
        raise


class _Side:
    """What timing knows of one candidate: still timed, or settled / dropped, and why."""

    def __init__(self) -> None:
        self.rounds = 0
        self.stopped: str | None = None
        self.failure: tuple[str, str] | None = None
        self.duration_s = 0.0
        self.estimate: SpeedupEstimate | None = None
        self.final_look = False  # its estimate is the final look's (stats.final_look)


def yardsticks(sides: dict[str, _Side], min_rounds: int, passed: set[str] | None) -> dict:
    """The candidates that may dominate others, with their intervals' lower bounds: timed for
    ``min_rounds`` or more, not failed or withdrawn, their tests passed (``passed``; None: all
    timed candidates' have)."""
    return {
        role: side.estimate.ci95[0]
        for role, side in sides.items()
        if side.estimate is not None
        and side.failure is None
        and side.stopped not in ("failed", "withdrawn")
        and side.rounds >= min_rounds
        and (passed is None or role in passed)
    }


def leader(sides: dict[str, _Side], min_rounds: int, passed: set[str] | None) -> str | None:
    """The yardstick surest to be fast (the highest lower bound): once settled it is still
    timed while another candidate is undecided (:func:`_measure`), so its interval keeps
    narrowing — the one a person choosing among the candidates cares most about — and it can
    dominate the others sooner than the wide interval it settled with would."""
    lows = yardsticks(sides, min_rounds, passed)
    return max(lows, key=lows.__getitem__) if lows else None


def hold(
    sides: dict[str, _Side], active: list[str], min_rounds: int, passed: set[str] | None
) -> str | None:
    """The leader, when it settled in this round (it was among the ``active``, still timed)
    while another candidate is still undecided: it is timed on (:func:`leader`)."""
    lead = leader(sides, min_rounds, passed)
    if lead not in active or sides[lead].stopped != "settled":
        return None
    others = [r for r, side in sides.items() if r != lead and side.stopped is None]
    return lead if others else None


def dominated(sides: dict[str, _Side], min_rounds: int, passed: set[str] | None) -> list[str]:
    """The candidates still timed that can no longer be the fastest and look like the
    baseline: another candidate is surely faster (its interval's lower bound above this one's
    upper bound), and 1 lies in the middle half of this one's interval (in logs), so its own
    answer would take the longest to settle (an interval within the ±1.5% band). They stop with
    ``stopped: "dominated"`` and the interval they have, which is as valid as any other stop's
    (the confidence sequence holds whatever rule decides when to stop), so a ConAIR round or a
    reply with several versions does not wait for a 1.0x version to settle ±1.5% once a 2x one
    is known to be better. One with 1 near an end of its interval (a 0.7x at [0.49, 1.04]) is
    about to settle ``slower``/``faster`` and keeps its rounds: its verdict is worth them.
    Only a candidate whose tests have passed (``passed``; None: all timed ones have) may
    dominate: one withdrawn later for failing them must not have cut the others' timing
    short. Sequential timing only (the fixed protocol's bootstrap interval is valid at one
    look)."""
    lows = yardsticks(sides, min_rounds, passed)
    out = []
    for role, side in sides.items():
        if side.stopped is not None or side.estimate is None or side.rounds < min_rounds:
            continue
        best = max((low for other, low in lows.items() if other != role), default=None)
        low, high = side.estimate.ci95
        if best is None or not high < best or not 0.0 < low <= high < math.inf:
            continue
        radius = (math.log(high) - math.log(low)) / 2
        if abs(math.log(side.estimate.speedup)) <= radius / 2:
            out.append(role)
    return out


class _Pipeline:
    """The next round's processes, started while this round is timed (sequential timing with a
    spare CPU): spawned, imported and warmed up (one untimed sample each) on the spare CPUs,
    then moved to the timing CPU when their round begins; a finished round's processes are
    moved back to the spare CPUs to exit there. The timing CPU then runs nothing but samples,
    and a round costs its pairs instead of two process starts (measured: ~0.25 s of a ~0.35 s
    round on a 1 ms workload). Work on the spare CPUs is the rule of the profile that runs
    beside the timing: other cores, never the timed one. When a round is over before its
    successor's processes are ready (the spare CPUs are busy with tests, or several candidates
    need many processes), the timing CPU, idle meanwhile, starts the ones not begun yet."""

    def __init__(self, sup, spare: list[int]) -> None:  # noqa: ANN001
        from concurrent.futures import ThreadPoolExecutor

        self.sup = sup
        self.spare = spare
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="timing-next-round")
        self.pending = None
        self.lock = threading.Lock()
        self.queue: list[str] = []  # the next round's roles nobody has begun to start
        self.ready: dict = {}  # role -> its started, warmed-up worker
        self.opening: list = []  # workers the thread started (killed if timing ends first)
        self.args: tuple = ()

    def prefetch(
        self,
        roles: list[str],
        loops: dict[str, int],
        n_cases: int,
        seed: float,
        limit_s: float | None,
    ) -> None:
        with self.lock:
            self.queue = random.Random(seed).sample(roles, len(roles))
            self.ready = {}
        self.opening = []
        self.args = (dict(loops), n_cases, limit_s)
        self.pending = self.pool.submit(self._work, self.opening)

    def _next(self) -> str | None:
        with self.lock:
            return self.queue.pop(0) if self.queue else None

    def _open(self, role: str) -> None:
        loops, n_cases, limit_s = self.args
        worker, _ = self.sup.load(role, quiet=True)
        try:
            limit = time.monotonic() + limit_s if limit_s else None
            warm = warmup_loops(loops[role], n_cases)
            _sample(self.sup, worker, warm, n_cases, f"timing the {role}", limit)
        except BaseException:
            worker.kill()
            self.sup.retire(worker)
            raise
        with self.lock:
            self.ready[role] = worker

    def _work(self, opening: list) -> None:
        sup = self.sup
        sup.local.cpus = self.spare  # spawn() pins each new worker there
        sup.local.track = opening
        try:
            os.sched_setaffinity(0, self.spare)  # this thread, hence the processes it forks
        except OSError:
            pass
        while (role := self._next()) is not None:
            self._open(role)

    def take(self, cpu: int) -> dict | None:
        """The next round's workers (warmed up), or None when none were started; raises the
        :class:`Stop` of a worker that failed meanwhile. Roles the spare CPUs have not begun
        yet are started here, on the timing CPU (``cpu``), which has nothing else to do."""
        if self.pending is None:
            return None
        future, self.pending = self.pending, None
        error: BaseException | None = None
        before = getattr(self.sup.local, "cpus", None)
        self.sup.local.cpus = [cpu]
        try:
            while not future.done() and (role := self._next()) is not None:
                self._open(role)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the cleanup
            error = exc
            with self.lock:
                self.queue = []
        finally:
            self.sup.local.cpus = before
        try:
            future.result()
        except BaseException as exc:  # noqa: BLE001
            error = error or exc
        with self.lock:
            ready, self.ready = self.ready, {}
        self.opening = []
        if error is not None:
            for worker in ready.values():
                worker.kill()
                self.sup.retire(worker)
            raise error
        return ready

    def retire(self, workers: list) -> None:  # noqa: ANN001
        for worker in workers:
            try:
                os.sched_setaffinity(worker.pid, self.spare)
            except OSError:
                pass
        self.pool.submit(lambda: [self.sup.retire(w) for w in workers])

    def close(self) -> None:
        if self.pending is not None:  # timing ended first: the next round is not needed
            with self.lock:
                self.queue = []
            for worker in list(self.opening):
                worker.kill()
            try:
                self.pending.result()
            except BaseException:  # noqa: BLE001, S110 - killed on purpose
                pass
            self.pending = None
            with self.lock:
                left, self.ready = self.ready, {}
            for worker in left.values():
                worker.kill()
                self.sup.retire(worker)
        self.pool.shutdown(wait=True)


def _measure(sup, roles: list[str], opts: dict, cpus: list | None) -> dict:  # noqa: ANN001
    start = time.monotonic()

    # A round times every undecided candidate beside one baseline: each extra candidate adds
    # about half a pair's time, so the budget grows by half per extra candidate still
    # undecided (once one is left, it has the budget it would have had alone).
    def budget_end(undecided: int) -> float:
        budget = budget_s * (1 + 0.5 * max(0, undecided - 1))
        return min(start + budget, sup.deadline - 1.0)

    seed = opts.get("seed")
    sequential = bool(opts.get("sequential", True))
    band = float(opts.get("noise_band", NOISE_BAND))
    min_rounds = int(opts.get("min_rounds") or (2 if sequential else 4))
    rng = random.Random(seed)
    candidates = roles[1:]
    many = len(candidates) > 1
    sides = {role: _Side() for role in candidates}
    loops: dict[str, int] = {}
    rounds: list[list[dict]] = []
    samples: dict[str, list[tuple[float, float]]] = {r: [] for r in roles}
    blocks: dict[str, list[float]] = {r: [] for r in roles}  # voluntary switches per call
    n_cases = 0
    stop_reason = "max_rounds"
    if cpus is None:
        cpus = usable_cpus() or [None]
    throttled_before = throttled_s()
    longest = 0.0
    # Pipelined (sequential timing, and a CPU to spare beside the timing CPU): one timing CPU
    # for the whole stage, the next round's processes prepared on the others (_Pipeline).
    # Otherwise (the fixed protocol of before, or a single CPU) each round picks a CPU at
    # random and starts its processes on it.
    fixed_cpu = rng.choice(cpus)
    spare = [c for c in getattr(sup, "cpus", []) if c != fixed_cpu] if fixed_cpu is not None else []
    pipeline = _Pipeline(sup, spare) if sequential and spare else None
    budget_s = opts.get("budget_s")
    if budget_s is None:
        budget_s = PIPELINED_BUDGET_S if pipeline is not None else BUDGET_S
    budget_s = float(budget_s)
    cancel = getattr(sup, "cancel_timing", None)
    default_pairs = PAIRS_MANY if many else PAIRS_ONE
    pairs_per_round = int(opts.get("pairs_per_round") or default_pairs)
    per_call: dict[str, float] = {}  # wall seconds per call, from the calibration
    # Rounds the budget cannot cut: the confidence sequence bounds nothing useful after two
    # (its multiplier is ~200 standard deviations there, ~9 after three).
    least = 3 if sequential else 2
    try:
        while len(rounds) < int(opts["max_rounds"]):
            for role, failure in list(getattr(sup, "withdrawn", {}).items()):
                side = sides.get(role)
                if side is not None and side.stopped is None:  # its tests failed beside
                    side.stopped = "failed" if failure else "withdrawn"
                    side.failure = failure
            active = [r for r in candidates if sides[r].stopped is None]
            if candidates and not active:
                break
            timed = ["baseline", *active]
            round_start = time.monotonic()
            if cancel is not None and cancel.is_set():
                raise Cancelled
            workers: dict = {}
            pairs: list[dict] = []
            failed: str | None = None
            try:
                cpu = fixed_cpu if pipeline is not None else rng.choice(cpus)
                ready = pipeline.take(cpu) if pipeline is not None else None
                if ready is not None:
                    for role in list(ready):  # settled or dropped since it was started
                        if role not in timed:
                            pipeline.retire([ready.pop(role)])
                    workers = ready
                    for worker in workers.values():
                        _pin(worker.pid, cpu)
                else:
                    for role in rng.sample(timed, len(timed)):  # which starts first: random
                        failed = role
                        workers[role], loaded = sup.load(role, quiet=True)
                        n_cases = loaded["n_cases"]
                        _pin(workers[role].pid, cpu)
                failed = None

                def sample(
                    role: str, warmup: bool = False, workers: dict = workers, n: int = n_cases
                ) -> tuple:
                    nonlocal failed, longest
                    if cancel is not None and cancel.is_set():
                        raise Cancelled
                    failed = role
                    t0 = time.monotonic()
                    # Several candidates: one that hangs must not use up the others' time.
                    limit = t0 + max(10.0, 20 * longest) if many else None
                    out = _sample(
                        sup,
                        workers[role],
                        warmup_loops(loops[role], n) if warmup else loops[role],
                        n,
                        f"timing the {role}",
                        limit,
                        blocks[role],
                    )
                    longest = max(longest, time.monotonic() - t0)
                    failed = None
                    return out

                new = [r for r in timed if r not in loops]
                for role in new:
                    failed = role
                    loops[role] = _calibrate(
                        sup,
                        workers[role],
                        n_cases,
                        float(opts["min_sample_s"]),
                        "timing the " + role,
                        per_call,
                    )
                failed = None
                if new:
                    if many:
                        _equalize_many(loops, new if "baseline" not in new else candidates)
                    else:
                        _equalize(loops)
                    if not opts.get("pairs_per_round"):
                        # Slow samples: fewer pairs, more rounds (rounds are the independent
                        # units), so a round's pairs take about ROUND_PAIRS_S at most.
                        one_set = sum(per_call.get(r, 0.0) * loops[r] * n_cases for r in timed)
                        fits = int(ROUND_PAIRS_S / max(one_set, 1e-9))
                        pairs_per_round = max(MIN_PAIRS, min(default_pairs, fits))
                if pipeline is not None and len(rounds) + 1 < int(opts["max_rounds"]):
                    pipeline.prefetch(
                        timed,
                        loops,
                        n_cases,
                        rng.random(),
                        max(10.0, 20 * longest) if many else None,
                    )
                if ready is None:
                    for role in timed:
                        if role not in new:
                            sample(role, warmup=True)
                for _ in range(pairs_per_round):
                    order = list(timed)
                    rng.shuffle(order)
                    pair = {}
                    for role in order:
                        pair[role] = sample(role)
                    pairs.append(pair)
                for role in timed:
                    failed = role
                    reply = sup.ask(
                        workers[role], {"cmd": "verify"}, f"checking the {role}'s outputs"
                    )
                    if "drift" in reply:
                        raise Stop(
                            "failed",
                            f"the {role}'s output changed between repeated calls "
                            f"({reply['drift']}); results must not depend on earlier calls",
                            role,
                        )
                failed = None
            except Stop as stop:
                # Several candidates: one that misbehaves is dropped (with its status), the
                # round is discarded, and the others go on. The baseline's trouble ends it all.
                culprit = stop.role or failed
                if not many or culprit not in sides or time.monotonic() >= sup.deadline - 0.1:
                    raise
                signalled = killed_by_signal(stop.message)
                if signalled:
                    # Same uid: any candidate of the round may have sent it; none is trusted.
                    note = (
                        f"{stop.message}; killed while {', '.join(active)} were timed together "
                        "(one of them sent the signal: evaluate them separately to find which)"
                    )
                    for role in active:
                        sides[role].stopped = "failed"
                        sides[role].failure = ("tampered", note)
                    checking = getattr(sup, "checking", None)  # its tests ran beside
                    if checking is not None and checking not in active:
                        sup.suspect(checking, note)
                else:
                    sides[culprit].stopped = "failed"
                    sides[culprit].failure = (stop.status, stop.message)
                pairs = []
            finally:
                if pipeline is not None:
                    pipeline.retire(list(workers.values()))
                else:
                    for worker in workers.values():
                        sup.retire(worker)
            if not pairs:
                continue
            rounds.append(pairs)
            for pair in pairs:
                for role, value in pair.items():
                    samples[role].append(value)
            now = time.monotonic()
            for role in active:
                side = sides[role]
                side.rounds += 1
                side.duration_s = now - start
                clock = choose_clock({"baseline": samples["baseline"], role: samples[role]}, blocks)
                if side.rounds >= 2:
                    side.estimate = estimate(
                        ratios_by_round(rounds, clock, role), opts, seed=seed or 0
                    )
                if side.rounds < min_rounds or side.estimate is None:
                    continue
                if sequential:
                    if settled(side.estimate.ci95, band):
                        side.stopped = "settled"
                else:
                    enough = side.rounds >= int(opts.get("early_stop_rounds", 8))
                    if enough and side.estimate.rel_halfwidth <= float(opts["target_rel_ci"]):
                        side.stopped = "settled"
            held = None
            if sequential and many and opts.get("stop_dominated", True):
                passed = getattr(sup, "passed", None)
                for role in dominated(sides, min_rounds, passed):
                    sides[role].stopped = "dominated"
                held = hold(sides, active, min_rounds, passed)
                if held is not None:
                    sides[held].stopped = None  # timed on: the others' yardstick
            if not candidates and len(rounds) >= min_rounds:
                stop_reason = "settled"  # the baseline alone: nothing to decide
                break
            if candidates and all(sides[r].stopped for r in candidates):
                stop_reason = "settled"
                break
            undecided = sum(1 for r in candidates if sides[r].stopped is None and r != held)
            if len(rounds) >= least and now + (now - round_start) > budget_end(undecided):
                stop_reason = "budget"
                break
    finally:
        if pipeline is not None:
            pipeline.close()
    for role, side in sides.items():
        if side.stopped is None and sequential and side.estimate is not None:
            if settled(side.estimate.ci95, band):  # a leader held for the others (see leader)
                side.stopped = "settled"
        if side.stopped is None:
            side.stopped = stop_reason
            if side.estimate is not None:
                clock = choose_clock({"baseline": samples["baseline"], role: samples[role]}, blocks)
                side.estimate, side.final_look = decide(
                    ratios_by_round(rounds, clock, role), opts, side.stopped, seed=seed or 0
                )
    if not rounds and not (many and all(s.failure for s in sides.values())):
        raise Stop("error", "timing produced no samples")
    clock = choose_clock(samples, blocks)
    result = {
        "clock": clock,
        "rounds": len(rounds),
        "pairs": rounds,
        "loops": loops,
        "calls_per_sample": {r: loops.get(r, 0) * n_cases for r in roles},
        "stopped": stop_reason,
        "sequential": bool(opts.get("sequential", True)),
        "pipelined": pipeline is not None,
        "cpus": len(set(cpus) | set(spare)),
        "throttled_s": _since(throttled_before, throttled_s()),
        "budget_s": budget_s,
        "duration_s": time.monotonic() - start,
        "candidates": {},
    }
    for role, side in sides.items():
        info: dict = {
            "rounds": side.rounds,
            "stopped": side.stopped,
            "duration_s": side.duration_s,
            "clock": choose_clock({"baseline": samples["baseline"], role: samples[role]}, blocks),
        }
        if side.failure:
            info["failure"] = {"status": side.failure[0], "message": side.failure[1]}
        elif side.estimate is not None:
            info["estimate"] = {
                "speedup": side.estimate.speedup,
                "ci95": list(side.estimate.ci95),
                "verdict": side.estimate.verdict,
            }
            if side.final_look:
                info["estimate"]["final_look"] = True
        result["candidates"][role] = info
    if len(roles) == 2 and "estimate" in result["candidates"][roles[1]]:
        result["estimate"] = result["candidates"][roles[1]]["estimate"]
    if not all(math.isfinite(c) for r in roles for c, _ in samples[r]):
        raise Stop("error", "timing produced non-finite samples")
    return result
