"""Sequential timing end to end (bwrap): stops once the answer is settled, reports why, and the
fixed protocol of before stays selectable with ``timing.sequential: false``."""

from __future__ import annotations

import os

import pytest

import sandbox
from sandbox import InvalidTask, TimingOptions

from .conftest import QUICK_LIMITS
from .fakes import FakeSupervisor, FakeWorker
from .test_evaluate import LOOP

WORKLOAD = "def cases():\n    return [(3000,), (5000,)]\n"


def judge(baseline_reps: int, candidate_reps: int, **timing: object) -> dict:
    task = {
        "baseline": LOOP.format(k=baseline_reps),
        "candidate": LOOP.format(k=candidate_reps),
        "entry": "f",
        "workload": WORKLOAD,
        "timing": {"min_sample_s": 0.01, **timing},
    }
    return sandbox.evaluate(task, backend="bwrap", limits=QUICK_LIMITS)


def test_a_clear_speedup_stops_as_soon_as_it_is_settled():
    verdict = judge(8, 1, budget_s=9, max_rounds=20)
    assert verdict["status"] == "ok", verdict["message"]
    assert verdict["verdict"] == "faster" and verdict["ci95"][0] > 1.02
    assert verdict["stopped"] == "settled"
    assert 2 <= verdict["rounds"] <= 5  # not the 8 rounds the fixed protocol waits for
    timing = verdict["timing"]
    assert timing["sequential"] is True
    assert (timing["rounds"], timing["stopped"]) == (verdict["rounds"], verdict["stopped"])
    assert 0 < verdict["timing_s"] < verdict["duration_s"]
    assert verdict["timing_s"] == pytest.approx(timing["duration_s"], abs=0.01)
    assert len(timing["samples"]) == verdict["rounds"]


def test_the_fixed_protocol_stays_selectable():
    verdict = judge(8, 1, sequential=False, budget_s=9, max_rounds=5)
    assert verdict["status"] == "ok", verdict["message"]
    assert verdict["timing"]["sequential"] is False
    # Its minimum of 4 rounds (and no early stop before 8): max_rounds or the budget ends it.
    assert verdict["rounds"] >= 4 and verdict["stopped"] in ("max_rounds", "budget")
    assert verdict["verdict"] == "faster"


def test_a_budget_too_small_to_settle_says_so():
    verdict = judge(2, 2, budget_s=0.1, max_rounds=20)
    # Three rounds always run with sequential timing (after two its interval is ~200 sds wide)
    assert verdict["rounds"] == 3
    assert verdict["stopped"] == "budget"
    assert verdict["verdict"] == "not significant"
    fixed = judge(2, 2, budget_s=0.1, max_rounds=20, sequential=False)
    assert fixed["rounds"] == 2  # ...and two with the fixed protocol, as before


def test_sequential_rounds_are_pipelined_and_the_fixed_protocol_of_before_is_not():
    # Two CPUs here: the next round's processes start on the spare one while a round is timed.
    assert len(os.sched_getaffinity(0)) >= 2
    sequential = judge(8, 1, max_rounds=20)
    fixed = judge(8, 1, sequential=False, max_rounds=5)
    assert sequential["timing"]["pipelined"] is True
    assert fixed["timing"]["pipelined"] is False
    assert sequential["verdict"] == fixed["verdict"] == "faster"
    # Pipelined rounds cost a third as much: their default budget is well under the fixed one's.
    assert (sequential["timing"]["budget_s"], fixed["timing"]["budget_s"]) == (5.3, 9.0)


def test_tests_failing_beside_the_timing_cancel_it():
    # The candidate's outputs are right (equivalence passes and timing starts), but its one
    # test takes a second and then fails: the timing, running meanwhile, is called off.
    slow_failing_test = (
        "import time\nfrom target import f\n\n"
        "def test_slow():\n    time.sleep(1.0)\n    assert False, 'wrong on purpose'\n"
    )
    task = {
        "baseline": LOOP.format(k=2),
        "candidate": LOOP.format(k=2),
        "entry": "f",
        "workload": WORKLOAD,
        "tests": slow_failing_test,
        "timing": {"min_sample_s": 0.01, "budget_s": 9, "min_rounds": 30, "max_rounds": 40},
    }
    seen: list[str] = []
    verdict = sandbox.evaluate(
        task, backend="bwrap", limits=QUICK_LIMITS, progress=lambda stage, _: seen.append(stage)
    )
    assert verdict["status"] == "failed" and verdict["error_stage"] == "tests"
    assert verdict["tests"]["failed"] == 1 and verdict["equivalent"] is True
    assert verdict["stages"]["timing"].startswith("skipped")
    assert verdict["speedup"] is None and verdict["rounds"] is None
    assert verdict["duration_s"] < 8  # 30 rounds were asked for: the timing was cut short
    # Stages still reach the caller in their order, though the tests finished last.
    assert seen == ["start", "tests", "equivalence", "timing", "profile", "done"]


def test_timing_options_are_validated():
    assert TimingOptions().as_dict()["min_rounds"] == 2
    assert TimingOptions(sequential=False).as_dict()["min_rounds"] == 4
    assert TimingOptions().as_dict()["budget_s"] is None  # the harness decides: see below
    assert TimingOptions.from_dict({"budget_s": None}).budget_s is None
    assert TimingOptions(budget_s=2).as_dict()["budget_s"] == 2
    base = {"baseline": "def f(n):\n    return n\n", "entry": "f", "workload": WORKLOAD}
    with pytest.raises(InvalidTask, match="timing.sequential must be true or false"):
        sandbox.parse_task({**base, "timing": {"sequential": "yes"}})
    with pytest.raises(InvalidTask, match="noise_band"):
        sandbox.parse_task({**base, "timing": {"noise_band": -0.1}})
    with pytest.raises(InvalidTask, match="min_rounds must be at least 2"):
        sandbox.parse_task({**base, "timing": {"min_rounds": 1}})


def test_code_that_waits_is_timed_on_the_wall_clock_and_busy_code_on_cpu_time():
    sleeper = "import time\ndef f(n):\n    time.sleep(n / 1e6)\n    return n\n"
    task = {
        "baseline": sleeper.replace("n / 1e6", "2 * n / 1e6"),
        "candidate": sleeper,
        "entry": "f",
        "workload": "def cases():\n    return [(2000,), (3000,)]\n",
        "timing": {"min_sample_s": 0.02, "budget_s": 6},
    }
    verdict = sandbox.evaluate(task, backend="bwrap", limits=QUICK_LIMITS)
    assert verdict["timing"]["clock"] == "wall"  # it blocks once per call
    assert verdict["verdict"] == "faster" and 1.6 < verdict["speedup"] < 2.4
    busy = judge(2, 1, budget_s=6)
    assert busy["timing"]["clock"] == "cpu"  # never blocks: a busy machine must not flip it


def test_slow_samples_get_fewer_pairs_per_round_and_more_rounds():
    slow = {
        "baseline": LOOP.format(k=2),
        "candidate": LOOP.format(k=1),
        "entry": "f",
        "workload": "def cases():\n    return [(1500000,)]\n",  # ~0.1-0.3 s a call
        "timing": {"min_sample_s": 0.01},
    }
    verdict = sandbox.evaluate(slow, backend="bwrap", limits=QUICK_LIMITS)
    assert verdict["status"] == "ok", verdict["message"]
    # A set of samples takes ~0.1-0.5 s (machines differ 3x): fewer than 5 pairs, at least 2.
    assert {len(r) for r in verdict["timing"]["samples"]} <= {2, 3, 4}
    fast = judge(8, 1)
    assert {len(r) for r in fast["timing"]["samples"]} == {5}
    told = judge(8, 1, pairs_per_round=4)  # the task's own choice stands
    assert {len(r) for r in told["timing"]["samples"]} == {4}


@pytest.mark.parametrize("per_call_ms", [0.5, 1.0, 1.4, 0.013])
def test_calibration_aims_at_the_minimum_sample_length_without_overshooting_it(per_call_ms):
    # Loop counts are shared upwards between the sides, so a sample twice as long as needed
    # makes every side's samples (and every round) longer. The old rule (at least doubling the
    # count) took a 0.5 ms call from 10 loops (15 ms of 20) to 20 (30 ms).
    from sandbox.harness.timing import _calibrate

    sup, worker = FakeSupervisor(n_cases=3), FakeWorker(per_call_ms / 1000)
    per_call: dict = {}
    loops = _calibrate(sup, worker, 3, 0.02, "timing the baseline", per_call)
    loop_s = 3 * per_call_ms / 1000
    assert loops * loop_s >= 0.02, (loops, worker.samples)
    assert (loops - 1) * loop_s < 0.02 * 1.1, (loops, worker.samples)  # one fewer: too few
    assert worker.samples[-1] == loops and len(worker.samples) <= 5
    assert "baseline" in per_call  # what the pairs-per-round rule reads


def test_a_warm_up_sample_is_a_quarter_of_a_timed_one_and_eight_calls_at_least():
    from sandbox.harness.timing import warmup_loops

    assert warmup_loops(17, 3) == 5  # ceil(17 / 4)
    assert warmup_loops(100, 1) == 25
    assert warmup_loops(8, 1) == 8  # 8 calls: bytecode specialization has kicked in
    assert warmup_loops(20, 1) == 8
    assert warmup_loops(2, 3) == 2  # never more than a timed sample
    assert warmup_loops(1, 40) == 1
