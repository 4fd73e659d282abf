"""Background jobs: a page starts one and polls it; it never blocks on the sandbox or model."""

from __future__ import annotations

import threading

import pytest

from app import services
from app.services.jobs import forget_finished
from tests.services.conftest import BASELINE, TESTS, WORKLOAD


@pytest.mark.slow
def test_validation_runs_in_the_background_with_progress(ctx):
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        validate=False,
        ctx=ctx,
    )
    job = services.start_validation(view.info.id, ctx=ctx)
    assert job.snapshot().state in ("running", "done")
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.state == "done", snap.error
    stages = [stage for stage, _ in snap.progress]
    assert stages[0] == "validate" and "timing" in stages and stages[-1] == "done"
    assert snap.result.ready and snap.session_id == view.info.id
    assert snap.text == "" and snap.tokens == 0


def test_a_failing_job_reports_the_message_for_the_person(ctx):
    job = services.start_job("evaluation", services.evaluate_candidate, 12345, ctx=ctx)
    assert job.wait(30)
    snap = job.snapshot()
    assert snap.state == "failed"
    assert snap.error_type == "NotFound" and snap.error == "candidate 12345 does not exist"
    assert isinstance(job.error, services.ServiceError)


def test_jobs_run_concurrently_and_finished_ones_can_be_forgotten():
    release = threading.Event()

    def slow(*, on_progress=None):
        on_progress("waiting", {})
        release.wait(10)
        return 42

    jobs = [services.start_job("test", slow) for _ in range(3)]
    assert all(j.snapshot().state == "running" for j in jobs)
    release.set()
    assert all(j.wait(10) for j in jobs)
    assert [j.snapshot().result for j in jobs] == [42, 42, 42]
    assert forget_finished(older_than_s=0) >= 3
    with pytest.raises(services.NotFound):
        services.get_job(jobs[0].id)


def test_model_choices_start_with_the_local_model(ctx):
    choices = services.model_choices(ctx=ctx)
    assert choices[0].model == "perfloop-moe/default" and choices[0].usable and choices[0].local
    openai = next(c for c in choices if c.model.startswith("openai/"))
    assert openai.usable is (ctx.settings.openai_api_key is not None)
    if not openai.usable:
        assert openai.note == "set OPENAI_API_KEY to use it"
