"""The evaluation end to end through the public API and the CLI, on the real backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox
from sandbox import BackendUnavailable, InvalidLimits, InvalidTask, UnknownBackend

from .conftest import BASELINE, QUICK_LIMITS, QUICK_TIMING, WORKLOAD

ROOT = Path(__file__).resolve().parents[2]

# The same result with exactly half the work: the known ratio is 2.
LOOP = (
    "def f(n):\n    for _ in range({k}):\n        s = 0\n        for i in range(n):\n"
    "            s += i % 7\n    return s\n"
)
HALF_WORK = LOOP.format(k=1)
FULL_WORK = LOOP.format(k=2)
TESTS = "from target import f\n\ndef test_small():\n    assert f(10) == 45\n"
VERDICT_KEYS = {
    "status",
    "message",
    "correct",
    "tests",
    "equivalent",
    "mismatches",
    "speedup",
    "ci95",
    "verdict",
    "baseline",
    "candidate",
    "line_profile",
    "peak_memory_bytes",
    "backend",
    "duration_s",
}


def test_full_verdict_and_progress_order(evaluate):
    stages: list[str] = []
    candidate = "def f(n):\n    return n * (n - 1) // 2\n"
    # Room to settle (sequential timing stops once the CI excludes the noise band): two rounds
    # alone are too few for its anytime-valid interval.
    timing = {**QUICK_TIMING, "budget_s": 6, "max_rounds": 10}
    verdict = evaluate(
        candidate,
        tests=TESTS,
        timing=timing,
        progress=lambda stage, info: stages.append(stage),
    )
    assert stages == ["start", "tests", "equivalence", "timing", "profile", "done"]
    assert VERDICT_KEYS <= verdict.keys()
    assert verdict["status"] == "ok" and verdict["correct"] is True
    assert verdict["tests"] == {"passed": 1, "failed": 0, "failures": [], "ran": True}
    assert verdict["equivalent"] is True and verdict["mismatches"] == []
    assert verdict["verdict"] == "faster" and verdict["speedup"] > 2
    low, high = verdict["ci95"]
    assert low <= verdict["speedup"] <= high
    for side in ("baseline", "candidate"):
        summary = verdict[side]
        assert summary["statistic"] == "median" and summary["clock"] in ("cpu", "wall")
        assert summary["samples"] >= 2 and summary["processes"] >= 2
    first = verdict["line_profile"][0]
    assert first["source"] == "    return n * (n - 1) // 2"
    assert set(first) >= {"line", "hits", "time", "share", "source"}
    assert first["hits"] > 0 and first["time"] == first["time_s"] > 0
    assert verdict["peak_memory_bytes"] is not None
    json.dumps(verdict)


def test_failing_tests_skip_timing_but_keep_the_profile(evaluate):
    stages: list[tuple[str, dict]] = []
    verdict = evaluate(
        "def f(n):\n    return 0\n",
        tests=TESTS,
        progress=lambda stage, info: stages.append((stage, info)),
    )
    assert verdict["status"] == "failed" and verdict["correct"] is False
    assert verdict["tests"]["failures"][0]["name"] == "test_small"
    assert "assert 0 == 45" in verdict["tests"]["failures"][0]["message"]
    assert verdict["equivalent"] is False
    assert verdict["mismatch_count"] == 2
    assert verdict["mismatches"][1] == {
        "case": 1,
        "reason": "value differs",
        "expected": "499500",
        "got": "0",
    }
    assert dict(stages)["timing"] == {"skipped": "the code under test is not correct"}
    assert verdict["line_profile"] and verdict["speedup"] is None


def test_exceptions_are_outputs(evaluate):
    baseline = "def f(n):\n    if n > 100:\n        raise ValueError(n)\n    return n\n"
    same = "def f(n):\n    if n > 100:\n        raise ValueError('big')\n    return n\n"
    other = "def f(n):\n    if n > 100:\n        raise TypeError(n)\n    return n\n"
    assert evaluate(same, baseline=baseline)["equivalent"] is True
    verdict = evaluate(other, baseline=baseline)
    assert verdict["mismatches"][0]["reason"] == "raised TypeError, expected ValueError"


def test_baseline_mode(evaluate):
    code = (
        "def helper(i):\n    return i % 7\n\n"
        "def f(n):\n    s = 0\n    for i in range(n):\n        s += helper(i)\n    return s\n"
    )
    verdict = evaluate(None, baseline=code, mode="baseline", tests=TESTS.replace("45", "24"))
    assert verdict["status"] == "ok" and verdict["correct"] is True
    assert verdict["speedup"] is None and verdict["candidate"] is None
    assert verdict["baseline"]["per_call_s"] > 0
    functions = {line["function"] for line in verdict["line_profile"]}
    assert functions == {"f", "helper"}
    hits = {(line["function"], line["line"]): line["hits"] for line in verdict["line_profile"]}
    assert hits[("helper", 2)] == 10 + 1000  # one pass over the workload's two calls
    entry_share = sum(line["share"] for line in verdict["line_profile"] if line["function"] == "f")
    assert entry_share == pytest.approx(1.0, abs=0.01)


@pytest.mark.slow
def test_a_known_ratio_is_measured(evaluate):
    # The budget is a ceiling: sequential timing stops once the answer is settled (2-3 rounds
    # on a quiet machine); a loaded one needs more rounds before the CI excludes the band.
    timing = {"budget_s": 9, "min_rounds": 3, "max_rounds": 10, "pairs_per_round": 5}
    verdict = evaluate(
        HALF_WORK,
        baseline=FULL_WORK,
        timing=timing,
        workload="def cases():\n    return [(20000,)]\n",
    )
    assert verdict["verdict"] == "faster"
    assert 1.8 < verdict["speedup"] < 2.2
    assert verdict["ci95"][0] < verdict["ci95"][1]


@pytest.mark.slow
def test_a_slower_candidate(evaluate):
    timing = {"budget_s": 9, "min_rounds": 2, "max_rounds": 10}
    verdict = evaluate(
        FULL_WORK,
        baseline=HALF_WORK,
        timing=timing,
        workload="def cases():\n    return [(20000,)]\n",
    )
    assert verdict["verdict"] == "slower" and verdict["ci95"][1] < 1


def test_nondeterministic_workload_is_an_error(evaluate):
    workload = "import os\ndef cases():\n    return [(int.from_bytes(os.urandom(2), 'big'),)]\n"
    verdict = evaluate(BASELINE, workload=workload)
    assert verdict["status"] == "error"
    assert "deterministic" in verdict["message"]


def test_a_broken_baseline_is_an_error_not_the_candidates_fault(evaluate):
    verdict = evaluate(BASELINE, baseline="def f(n):\n    return (\n")
    assert verdict["status"] == "error"
    assert "baseline" in verdict["message"] and "SyntaxError" in verdict["message"]


def test_invalid_tasks_raise():
    with pytest.raises(InvalidTask, match="'workload' is required"):
        sandbox.evaluate({"baseline": "x = 1", "entry": "f"})
    with pytest.raises(InvalidTask, match="'entry' must be a function name"):
        sandbox.evaluate({"baseline": "", "workload": "", "entry": "not a name"})
    with pytest.raises(InvalidTask, match="unknown task field"):
        sandbox.evaluate({"baseline": "", "workload": "", "entry": "f", "extra": 1})
    with pytest.raises(InvalidTask, match="needs a 'candidate'"):
        sandbox.evaluate({"baseline": "", "workload": "", "entry": "f", "mode": "compare"})
    with pytest.raises(InvalidLimits, match="unknown limit"):
        sandbox.evaluate({"baseline": "", "workload": "", "entry": "f"}, limits={"ram": 1})
    with pytest.raises(InvalidLimits, match="positive"):
        sandbox.evaluate({"baseline": "", "workload": "", "entry": "f", "limits": {"wall_s": 0}})


def test_backend_choice_errors():
    task = {"baseline": BASELINE, "entry": "f", "workload": WORKLOAD}
    with pytest.raises(UnknownBackend, match="choose one of bwrap, docker, process"):
        sandbox.evaluate(task, backend="chroot")
    with pytest.raises(BackendUnavailable, match="without any isolation"):
        sandbox.evaluate(task, backend="process")
    backends = sandbox.available_backends()
    assert set(backends) == {"bwrap", "docker", "process"}
    assert backends["bwrap"] is None
    assert "without any isolation" in backends["process"]


def test_process_backend_when_explicitly_allowed():
    task = {
        "baseline": BASELINE,
        "candidate": BASELINE,
        "entry": "f",
        "workload": WORKLOAD,
        "timing": QUICK_TIMING,
    }
    verdict = sandbox.evaluate(task, backend="process", allow_process=True, limits=QUICK_LIMITS)
    assert verdict["backend"] == "process"
    assert verdict["status"] == "ok" and verdict["equivalent"] is True


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_json(tmp_path):
    task = {
        "baseline": BASELINE,
        "candidate": "def f(n):\n    return 0\n",
        "entry": "f",
        "workload": WORKLOAD,
        "timing": QUICK_TIMING,
        "limits": {"wall_s": 20},
    }
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    proc = _cli("evaluate", str(path), "--backend", "bwrap", "--json")
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["status"] == "failed" and verdict["backend"] == "bwrap"
    human = _cli("evaluate", "-", "--quiet", stdin=json.dumps(task))
    assert human.returncode == 0 and "status: failed" in human.stdout


def test_cli_usage_errors(tmp_path):
    missing = _cli("evaluate", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read task" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"baseline": "", "entry": "f"}))
    invalid = _cli("evaluate", str(bad), "--json")
    assert invalid.returncode == 2 and "'workload' is required" in invalid.stderr
    assert invalid.stdout == ""
    refused = _cli("evaluate", str(bad), "--backend", "process")
    assert refused.returncode == 2


def test_the_docker_url_setting_reaches_the_backend(monkeypatch, tmp_path):
    from app.config import get_settings

    missing = tmp_path / "nowhere.sock"
    monkeypatch.setenv("PERFLOOP_SANDBOX_DOCKER_URL", f"unix://{missing}")
    get_settings.cache_clear()
    try:
        reason = sandbox.available_backends()["docker"]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert reason is not None and str(missing) in reason


def test_a_docker_socket_nobody_listens_on_is_unavailable_and_leaks_nothing(tmp_path):
    """A socket file left by an engine that is not running (or is still starting): the backend
    says the engine does not answer, and no socket is left for the garbage collector (the SDK's
    refused connects leak theirs; under ``-W error`` the next test would fail on it)."""
    import gc
    import socket

    from sandbox.backends.docker import DockerBackend

    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))  # the file stays; nobody listens once it is closed
    leaked: list[str] = []
    hook, sys.unraisablehook = sys.unraisablehook, lambda u: leaked.append(repr(u.exc_value))
    try:
        reason = DockerBackend(base_url=f"unix://{path}").unavailable_reason()
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert reason == f"the Docker engine at unix://{path} does not answer"
    assert leaked == []
