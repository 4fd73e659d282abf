"""Several candidates judged in one task against one baseline (``candidates: [...]``), and the
typed verdict's ``error_stage``, on the real bwrap backend."""

from __future__ import annotations

import json
import math
import typing

import pytest

import sandbox
from sandbox import ErrorStage, InvalidTask, ManyVerdict, Verdict

from .conftest import QUICK_LIMITS
from .fakes import FakeSupervisor
from .test_evaluate import FULL_WORK, HALF_WORK, LOOP

TESTS = "from target import f\n\ndef test_small():\n    assert f(10) == 24\n"

WORKLOAD = "def cases():\n    return [(3000,), (4000,)]\n"
TIMING = {"budget_s": 9, "max_rounds": 12}

CANDIDATES = {
    "half": HALF_WORK,  # 2x
    "same": FULL_WORK,  # A/A
    "parse": "def f(n):\n    return (\n",
    "entry": "def g(n):\n    return 0\n",
    "wrong": "def f(n):\n    return 24 if n == 10 else n\n",  # passes the test, not equivalent
    "tests": "def f(n):\n    return 0 if n == 10 else sum(i % 7 for i in range(n))\n",
    "hang": "def f(n):\n    while True:\n        pass\n",
}


def run(candidates: list[str], **fields: object) -> dict:
    task = {
        "baseline": FULL_WORK,
        "entry": "f",
        "workload": WORKLOAD,
        "tests": TESTS,
        "timing": TIMING,
        "candidates": candidates,
        **fields,
    }
    return sandbox.evaluate(task, backend="bwrap", limits={**QUICK_LIMITS, "wall_s": 60})


@pytest.fixture(scope="module")
def many() -> dict:
    return run(list(CANDIDATES.values()))


def test_each_candidate_has_its_own_full_verdict(many):
    assert many["status"] == "ok", many["message"]
    assert len(many["candidates"]) == len(CANDIDATES)
    single_keys = set(Verdict.__annotations__)
    assert set(ManyVerdict.__annotations__) == single_keys | {"candidates"}
    assert single_keys <= set(many)
    for each in many["candidates"]:
        assert set(each) == single_keys  # every field a single verdict has, no more
        assert each["backend"] == "bwrap"
    json.dumps(many)


def test_one_candidates_failure_never_ends_the_others(many):
    got = dict(zip(CANDIDATES, many["candidates"], strict=True))
    half, same = got["half"], got["same"]
    assert half["status"] == "ok" and half["verdict"] == "faster", half["message"]
    assert half["ci95"][0] > 1 and 1.7 < half["speedup"] < 2.3
    assert same["status"] == "ok" and same["verdict"] == "not significant", same["ci95"]
    for each in (half, same):
        assert each["error_stage"] is None and each["tests"]["passed"] == 1
        assert each["stopped"] in sandbox.STOPPED and each["rounds"] >= 2
        assert each["line_profile"], "profiled beside the timing"
    stages = {name: got[name]["error_stage"] for name in ("parse", "entry", "wrong", "tests")}
    assert stages == {
        "parse": ErrorStage.PARSE,
        "entry": ErrorStage.ENTRY,
        "wrong": ErrorStage.EQUIVALENCE,
        "tests": ErrorStage.TESTS,
    }
    assert got["wrong"]["status"] == "failed" and got["wrong"]["mismatch_count"] == 2
    assert got["tests"]["status"] == "failed" and got["tests"]["tests"]["failed"] == 1
    assert got["parse"]["status"] == "failed" and "SyntaxError" in got["parse"]["message"]
    hang = got["hang"]
    assert hang["status"] == "timeout" and hang["error_stage"] == ErrorStage.LIMITS
    for name in ("parse", "entry", "wrong", "tests", "hang"):
        assert got[name]["speedup"] is None and got[name]["verdict"] is None, name
        assert got[name]["stages"]["timing"].startswith("skipped"), name


def test_the_baseline_is_measured_once_for_all(many):
    half, same = many["candidates"][0], many["candidates"][1]
    first_round = [[p["baseline"] for p in each["timing"]["samples"][0]] for each in (half, same)]
    assert first_round[0] == first_round[1]  # the same baseline samples, paired with both
    # The task times at least as many rounds as its longest-timed candidate, and may time more:
    # a candidate whose tests still run beside is timed until they fail (then withdrawn, its
    # rounds never reported), possibly after both of these settled (seen: both at 2, task 3).
    assert many["rounds"] >= max(half["rounds"], same["rounds"])
    assert many["timing_s"] >= max(half["timing_s"], same["timing_s"])


def test_a_single_entry_in_candidates_keeps_todays_shape():
    verdict = run([HALF_WORK])
    assert "candidates" not in verdict
    assert verdict["status"] == "ok" and verdict["verdict"] == "faster"


def test_a_broken_baseline_fails_every_candidate_alike():
    verdict = run([HALF_WORK, FULL_WORK], baseline="def f(n):\n    return (\n")
    assert verdict["status"] == "error" and "baseline" in verdict["message"]
    assert verdict["error_stage"] == ErrorStage.PARSE
    assert [c["status"] for c in verdict["candidates"]] == ["error", "error"]
    assert all(c["error_stage"] == ErrorStage.PARSE for c in verdict["candidates"])


def test_candidates_are_validated():
    base = {"baseline": FULL_WORK, "entry": "f", "workload": WORKLOAD}
    with pytest.raises(InvalidTask, match="either 'candidate' or 'candidates'"):
        sandbox.parse_task({**base, "candidate": HALF_WORK, "candidates": [HALF_WORK]})
    with pytest.raises(InvalidTask, match="non-empty list"):
        sandbox.parse_task({**base, "candidates": []})
    with pytest.raises(InvalidTask, match=r"candidates\[1\].*must be a string"):
        sandbox.parse_task({**base, "candidates": [HALF_WORK, 3]})


def test_error_stage_enum_is_the_issues_list():
    assert [s.value for s in ErrorStage] == [
        "parse",
        "import",
        "entry",
        "workload",
        "tests",
        "equivalence",
        "timing",
        "profile",
        "limits",
    ]
    assert typing.get_type_hints(Verdict)["error_stage"] is not None


# Dominance: a band of 0 means a 1.0x candidate can never settle "not significant", so it stops
# either because a faster candidate is surely better (dominated) or at the budget.
DOMINANCE_TIMING = {"budget_s": 5, "max_rounds": 40, "noise_band": 0.0}
QUARTER = LOOP.format(k=1)  # against a baseline of k=4: 4x
SAME = LOOP.format(k=4)


def dominance_run(candidates: list[str], tests: str = TESTS, **timing: object) -> dict:
    return run(
        candidates,
        baseline=SAME,
        tests=tests,
        timing={**DOMINANCE_TIMING, **timing},
    )


@pytest.mark.slow
def test_a_candidate_surely_slower_than_another_stops_dominated():
    verdict = dominance_run([QUARTER, SAME])
    fast, same = verdict["candidates"]
    assert fast["verdict"] == "faster" and fast["stopped"] == "settled", fast["ci95"]
    assert same["status"] == "ok" and same["stopped"] == "dominated", same["stopped"]
    assert same["verdict"] == "not significant" and same["ci95"][0] <= 1 <= same["ci95"][1]
    assert same["ci95"][1] < fast["ci95"][0]  # the reason it stopped, in the verdict itself
    # Without the rule the same candidate is timed until the budget ends.
    apart = dominance_run([QUARTER, SAME], stop_dominated=False)
    assert apart["candidates"][1]["stopped"] == "budget"
    assert apart["candidates"][1]["rounds"] > same["rounds"]
    assert apart["candidates"][1]["timing_s"] > same["timing_s"]


@pytest.mark.slow
def test_only_a_candidate_whose_tests_passed_may_dominate():
    # The fast candidate's tests take 2 s and then fail: until then it is timed (and surely
    # faster than the other), but it must not stop the other as dominated.
    slow_tests = (
        "import time\nfrom target import f\n\n"
        "def test_small():\n    time.sleep(2)\n    assert f(10) == 24\n"
    )
    wrong_fast = QUARTER.replace("return s", "return s if n != 10 else -1")
    verdict = dominance_run([wrong_fast, SAME], tests=slow_tests)
    fast, same = verdict["candidates"]
    assert fast["status"] == "failed" and fast["error_stage"] == ErrorStage.TESTS
    assert same["status"] == "ok" and same["stopped"] == "budget", same["stopped"]


def test_stop_dominated_is_validated():
    base = {"baseline": FULL_WORK, "entry": "f", "workload": WORKLOAD, "candidates": [FULL_WORK]}
    with pytest.raises(InvalidTask, match="timing.stop_dominated must be true or false"):
        sandbox.parse_task({**base, "timing": {"stop_dominated": 1}})


def _side(speedup: float, low: float, high: float, stopped: str | None = None):  # noqa: ANN202
    from sandbox.harness.stats import SpeedupEstimate
    from sandbox.harness.timing import _Side

    side = _Side()
    side.rounds, side.stopped = 4, stopped
    side.estimate = SpeedupEstimate(speedup, (low, high), "not significant", 12, 4)
    return side


def test_only_a_candidate_that_looks_like_the_baseline_is_dominated():
    from sandbox.harness.timing import dominated

    sides = {
        "2x": _side(2.0, 1.6, 2.5, "settled"),
        "1.0x": _side(1.01, 0.8, 1.3),  # 1 in the middle of its interval: stops
        "0.7x": _side(0.71, 0.49, 1.04),  # about to settle "slower": keeps its rounds
        "1.4x": _side(1.4, 1.25, 1.7),  # not surely slower than the 2x
    }
    assert dominated(sides, 2, None) == ["1.0x"]
    assert dominated(sides, 2, {"2x"}) == ["1.0x"]
    assert dominated(sides, 2, set()) == []  # the 2x's tests have not passed yet
    assert dominated(sides, 5, None) == []  # too few rounds to judge
    sides["2x"].stopped = "withdrawn"  # its tests failed beside the timing
    assert dominated(sides, 2, None) == []


def test_a_settled_leader_is_timed_on_while_another_is_undecided():
    from sandbox.harness.timing import hold

    sides = {"2x": _side(2.0, 1.05, 3.8, "settled"), "1.0x": _side(1.0, 0.8, 1.25)}
    assert hold(sides, ["2x", "1.0x"], 2, None) == "2x"  # settled this round: timed on
    assert hold(sides, ["1.0x"], 2, None) is None  # stopped in an earlier round: stays so
    assert hold(sides, ["2x", "1.0x"], 2, set()) is None  # not a yardstick: tests not passed
    sides["1.0x"].stopped = "dominated"
    assert hold(sides, ["2x", "1.0x"], 2, None) is None  # nobody left to be a yardstick for
    sides = {"1.3x": _side(1.3, 1.05, 1.6, "settled"), "2x": _side(2.0, 1.4, 2.9)}
    assert hold(sides, ["1.3x", "2x"], 2, None) is None  # the leader is the 2x, undecided


def _rounds_speeds(role: str, k: int) -> float:
    """Seconds a call in the ``k``-th process of ``role``: the baseline 4 ms, ``2x`` 2 ms
    (±0.3% from round to round), ``1.5x`` 2.67 ms times exp(±0.35) in alternate rounds (a
    candidate whose rounds disagree: it cannot settle in a few rounds, nor be dominated, 1
    lying near the low end of its interval)."""
    return {
        "baseline": 0.004,
        "2x": 0.002 * (1.003 if k % 2 else 0.997),
        "1.5x": 0.004 / 1.5 * math.exp(0.35 if k % 2 else -0.35),
    }[role]


def test_a_held_leader_is_timed_to_the_budget_and_still_reports_settled():
    from sandbox.harness.timing import _measure

    opts = {"max_rounds": 60, "min_sample_s": 0.001, "budget_s": 0.5, "seed": 7}
    sup = FakeSupervisor(speeds=_rounds_speeds, sleep=True)
    out = _measure(sup, ["baseline", "2x", "1.5x"], opts, [None])
    lead, other = out["candidates"]["2x"], out["candidates"]["1.5x"]
    # ~40 ms a round (the workers sleep): ~12 rounds at most, where the 1.5x settles at ~17.
    assert out["stopped"] == "budget" and out["rounds"] >= 4, out
    # The 2x settled (after three rounds) and was timed on in every round while the 1.5x was
    # undecided: its interval kept narrowing, and its stop still reads "settled".
    assert lead["stopped"] == "settled" and lead["rounds"] == out["rounds"]
    assert lead["estimate"]["verdict"] == "faster"
    low, high = lead["estimate"]["ci95"]
    assert low <= 2.0 <= high and high / low < 1.02
    assert "final_look" not in lead["estimate"]  # the sequence's interval, not the final look
    # The undecided one ended at the budget with the final look; it was never dominated.
    assert other["stopped"] == "budget" and other["rounds"] == out["rounds"]
    assert other["estimate"].get("final_look") is True
    # A held leader's budget does not count: one undecided candidate left, so the budget is
    # the single candidate's, not 1.5x it (0.75 s; the round that would pass it is not begun).
    assert out["duration_s"] < 0.5 + 0.12, out["duration_s"]
    assert sup.started["baseline"] == out["rounds"]  # no round was discarded


def test_candidates_within_4x_of_the_shared_loop_count_share_it():
    from sandbox.harness.timing import _equalize_many

    loops = {"baseline": 4, "a": 20, "b": 9, "c": 7, "d": 100}
    _equalize_many(loops, ["a", "b", "c", "d"])
    # 9 joins the baseline's 4; then 20 is within 4x of 9; 100 is 5x of 20: apart.
    assert loops == {"baseline": 20, "a": 20, "b": 20, "c": 20, "d": 100}
