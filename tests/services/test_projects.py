"""Project sessions end to end on the real sandbox: a multi-module package made here (relative
imports, a class with state, numpy), a method target, project tests picked by node id, their
coverage of the target, a chat turn (recorded transcript standing in for a remote provider),
the patch of the best candidate applied to a fresh copy, and the project's tests after it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import services
from app.services.projects import Coverage, candidate_patch, create_project_session
from app.services.targets import TargetError
from tests.llm import recorded
from tests.sandbox.conftest import docker_engine, docker_image  # noqa: F401 - fixtures
from tests.services.conftest import FAST_TIMING, reply_with
from tests.services.projectkit import FASTER_METHOD, WORKLOAD, WRONG_METHOD, write_project

TARGET = "statkit.stats:Stat.extrema"
NODE = "tests/test_stats.py::test_extrema_one_band"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "proj")


def _session(project: Path, ctx, tests=(NODE,), **kw):
    return create_project_session(
        target=TARGET,
        project=project,
        project_tests=list(tests),
        workload_source=WORKLOAD,
        ctx=ctx,
        **kw,
    )


@pytest.mark.slow
def test_a_method_session_measures_coverage_runs_a_turn_and_patches_recorded_transcript(
    project, ctx, tmp_path
):
    # More rounds than the quick default: this test asserts a significant speedup.
    ctx.sandbox_timing = {**FAST_TIMING, "budget_s": 3.0, "min_rounds": 4, "max_rounds": 8}
    view = _session(project, ctx)
    assert view.ready, view.validation_error
    info = view.info
    assert (info.source_kind, info.module, info.entry_point, info.target) == (
        "project",
        "statkit.stats",
        "Stat.extrema",
        TARGET,
    )
    assert info.module_file == "statkit/stats.py" and info.project_tests == [NODE]
    assert info.baseline_source == (project / "statkit/stats.py").read_text()
    base_ev = view.baseline.evaluation
    assert base_ev.tests_passed == 1 and base_ev.tests_failed == 0
    # The body of extrema has 12 statements; one band never has lo > hi, so line 32 is missed.
    assert base_ev.coverage == {"lines": 12, "covered": 11, "missing": [32]}
    cov = Coverage.of(base_ev.coverage)
    assert cov.text("Stat.extrema") == (
        "the tests execute 11 of 12 lines of `Stat.extrema` (not executed: line 32)"
    )
    assert cov.warning() is None

    transcript = recorded.install([reply_with(WRONG_METHOD), reply_with(FASTER_METHOD)])
    wrong = services.run_turn(info.id, model="recorded/transcript", ctx=ctx).candidates[0]
    assert wrong.evaluation.correct is False
    fast = services.run_turn(info.id, model="recorded/transcript", ctx=ctx).candidates[0]
    assert fast.evaluation.correct is True, fast.evaluation.error
    assert fast.evaluation.speedup > 1.5 and fast.evaluation.verdict == "faster"
    # The rest of the module is untouched, byte for byte.
    assert (
        fast.source.split("    def extrema")[0] == info.baseline_source.split("    def extrema")[0]
    )
    assert (
        fast.source.split("    @staticmethod")[1]
        == info.baseline_source.split("    @staticmethod")[1]
    )

    # What the model saw: the target, the project function it calls, the coverage sentence.
    prompt = transcript.calls[0][-1]["content"]
    assert "`Stat.extrema` in module `statkit.stats`" in prompt
    assert "It calls `clip`:" in prompt and "return max(lo, min(hi, value))" in prompt
    assert "It calls `self.histogram`:" in prompt
    assert "Coverage: the tests execute 11 of 12 lines of `Stat.extrema`" in prompt
    assert "def mean(values)" not in prompt  # the rest of the module is not shown

    patch = candidate_patch(info.id, fast.id, ctx=ctx)
    fresh = tmp_path / "fresh"
    shutil.copytree(project, fresh)
    done = subprocess.run(
        ["git", "apply", "-"], cwd=fresh, input=patch, text=True, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert (fresh / "statkit/stats.py").read_text() == fast.source
    after = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=fresh,
        capture_output=True,
        text=True,
    )
    assert after.returncode == 0 and "3 passed" in after.stdout, after.stdout
    assert candidate_patch(info.id, ctx=ctx) == patch  # the best candidate's patch by default


@pytest.mark.slow
def test_tests_that_never_reach_the_target_give_zero_coverage_and_a_warning(project, ctx):
    view = _session(project, ctx, tests=["tests/test_stats.py::test_histogram_counts"])
    assert view.ready, view.validation_error
    cov = Coverage.of(view.baseline.evaluation.coverage)
    assert (cov.lines, cov.covered) == (12, 0)
    assert "correctness rests mostly on the comparison" in cov.warning()


@pytest.mark.slow
def test_a_run_workload_is_timed_end_to_end(project, ctx):
    workload = (
        "from statkit import Stat\n\n\ndef run():\n"
        "    return [Stat([i % 200 for i in range(3000)], bands=3).extrema() for _ in range(3)]\n"
    )
    view = create_project_session(
        target=TARGET, project=project, project_tests=[NODE], workload_source=workload, ctx=ctx
    )
    assert view.ready, view.validation_error


@pytest.mark.slow
def test_a_project_whose_import_fails_gets_a_clear_message(project, ctx):
    stats = project / "statkit" / "stats.py"
    stats.write_text("import not_installed_anywhere\n" + stats.read_text())
    with pytest.raises(services.InvalidInput) as err:
        _session(project, ctx)
    text = str(err.value)
    assert "not_installed_anywhere" in text and "Traceback" not in text
    assert err.value.stored["session_id"]  # the session is kept, marked not ready
    sid = err.value.stored["session_id"]
    view = services.get_session(sid, ctx=ctx)
    assert not view.ready and "not_installed_anywhere" in view.validation_error
    # The baseline is the project's file: it is fixed there, not edited in the session.
    with pytest.raises(services.InvalidInput, match="change it there"):
        services.update_session_inputs(sid, baseline_source="X = 1\n", validate=False, ctx=ctx)
    services.update_session_inputs(sid, workload_source=WORKLOAD + "\n", validate=False, ctx=ctx)


def test_a_bad_target_is_refused_before_anything_is_stored(project, ctx):
    with pytest.raises(TargetError, match="is a class"):
        create_project_session(
            target="statkit.stats:Stat", project=project, workload_source=WORKLOAD, ctx=ctx
        )
    assert services.list_sessions(ctx=ctx)[1] == 0


def test_a_workload_without_cases_or_run_is_refused(project, ctx):
    with pytest.raises(services.WorkloadError, match="`cases\\(\\)`.*`run\\(\\)`"):
        create_project_session(target=TARGET, project=project, workload_source="X = 1\n", ctx=ctx)


def test_a_missing_project_test_file_is_named(project, ctx):
    with pytest.raises(services.InvalidInput, match="tests/test_nope.py"):
        _session(project, ctx, tests=["tests/test_nope.py::test_x"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["bwrap", pytest.param("docker", marks=pytest.mark.docker)])
def test_a_project_method_session_on_each_backend_recorded_transcript(
    project, sqlite_engine, make_ctx, backend, request
):
    if backend == "docker":
        request.getfixturevalue("docker_image")
    ctx = make_ctx(sqlite_engine, sandbox_backend=backend, allow_process=False)
    view = _session(project, ctx)
    assert view.ready, view.validation_error
    assert view.baseline.evaluation.backend == backend
    assert view.baseline.evaluation.coverage == {"lines": 12, "covered": 11, "missing": [32]}
    recorded.install([reply_with(FASTER_METHOD)])
    cand = services.run_turn(view.info.id, model="recorded/transcript", ctx=ctx).candidates[0]
    assert cand.evaluation.backend == backend
    assert cand.evaluation.correct is True, cand.evaluation.error
    assert cand.evaluation.tests_passed == 1
    # The sandbox never wrote into the project (no __pycache__, nothing new).
    assert not list(project.rglob("__pycache__"))
