"""Creating a session: stored first, validated in the real sandbox, baseline = iteration 0.
Every bad input gets a precise message, and nothing typed is lost."""

from __future__ import annotations

import pytest

from app import services
from tests.services.conftest import BASELINE, TESTS, WORKLOAD


def create(ctx, **kw):
    values = dict(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        title="count common items",
        ctx=ctx,
    )
    values.update(kw)
    return services.create_session(**values)


@pytest.mark.slow
def test_create_validates_and_evaluates_the_baseline_as_iteration_0(ctx):
    stages: list[str] = []
    view = create(ctx, on_progress=lambda stage, info: stages.append(stage))
    assert view.ready and view.validation_error is None
    base = view.baseline
    assert base is not None and base.iteration == 0 and base.origin == "baseline"
    ev = base.evaluation
    assert ev.status == "ok" and ev.correct and ev.tests_passed == 2
    assert ev.peak_memory_bytes is not None
    hottest = ev.hottest(1)[0]
    assert hottest.source.strip() == "if x in b:", "the line profile shows the quadratic scan"
    assert stages[:2] == ["validate", "start"] and "done" in stages
    assert [t.validation for t in view.tests] == ["accepted"]
    assert view.figures.candidates_tried == 0
    assert view.figures.series[0].iteration == 0


def test_code_that_does_not_parse_is_refused_and_kept(ctx):
    broken = BASELINE.replace("def count_common(a, b):", "def count_common(a, b)")
    with pytest.raises(services.CodeDoesNotParse) as info:
        create(ctx, baseline_source=broken)
    err = info.value
    assert str(err).startswith("The baseline code does not parse: line 1:")
    assert err.field == "baseline" and err.line == 1
    view = services.get_session(err.stored["session_id"], ctx=ctx)
    assert view.info.baseline_source == broken, "what the person typed is stored"
    assert view.info.workload_source == WORKLOAD
    assert not view.ready and view.validation_error == str(err)
    assert view.messages[-1].kind == "validation" and view.messages[-1].content == str(err)


def test_a_missing_entry_point_names_what_the_code_defines(ctx):
    with pytest.raises(services.EntryNotFound) as info:
        create(ctx, entry_point="count_commons")
    assert str(info.value) == (
        "The entry point `count_commons` is not defined at the top level of the baseline; "
        "it defines count_common."
    )
    view = services.get_session(info.value.stored["session_id"], ctx=ctx)
    assert view.info.entry_point == "count_commons" and not view.ready


def test_a_workload_without_cases_is_refused(ctx):
    with pytest.raises(services.WorkloadError) as info:
        create(ctx, workload_source="def calls():\n    return [(1, 2)]\n")
    assert "must define a function `cases()`" in str(info.value)


@pytest.mark.slow
def test_a_workload_that_raises_is_reported_from_the_sandbox(ctx):
    workload = 'def cases():\n    raise ValueError("no data file")\n'
    with pytest.raises(services.WorkloadError) as info:
        create(ctx, workload_source=workload)
    assert "The workload failed" in str(info.value)
    assert "ValueError: no data file" in str(info.value)
    view = services.get_session(info.value.stored["session_id"], ctx=ctx)
    assert view.info.workload_source == workload
    assert view.baseline.evaluation.status == "error", "the sandbox's verdict is stored too"


@pytest.mark.slow
def test_tests_that_fail_on_the_baseline_are_named(ctx):
    wrong = TESTS.replace("== 2", "== 3")
    with pytest.raises(services.BaselineTestsFail) as info:
        create(ctx, tests_source=wrong)
    msg = str(info.value)
    assert msg.startswith("1 test(s) fail on the baseline")
    assert "test_duplicates_count_each_time: assert 2 == 3" in msg
    # Fix the tests and validate again: the same session becomes ready.
    sid = info.value.stored["session_id"]
    view = services.update_session_inputs(sid, tests_source=TESTS, ctx=ctx)
    assert view.ready and view.info.id == sid


def test_session_info_and_deletion(ctx):
    view = create(ctx, validate=False)
    sid = view.info.id
    info = services.update_session_info(sid, title="renamed", tags=["demo"], ctx=ctx)
    assert info.title == "renamed" and info.tags == ["demo"]
    rows, total = services.list_sessions(ctx=ctx)
    assert total == 1 and rows[0].title == "renamed"
    services.delete_session(sid, ctx=ctx)
    with pytest.raises(services.NotFound):
        services.get_session(sid, ctx=ctx)


@pytest.mark.slow
def test_a_session_and_its_turn_persist_on_sqlite_and_postgresql_mock_provider(any_ctx):
    any_ctx.llm_options = {
        "mock_response": "```python\n" + BASELINE.replace("n += 1", "n = n + 1") + "```"
    }
    view = create(any_ctx, model="openai/gpt-4o-mini")
    turn = services.run_turn(view.info.id, ctx=any_ctx)
    [cand] = turn.candidates
    assert cand.evaluation.correct and cand.evaluation.verdict in (
        "not significant",
        "faster",
        "slower",
    )
    again = services.get_session(view.info.id, ctx=any_ctx)
    assert [m.kind for m in again.messages] == ["chat", "chat", "verdict"]
    reply = again.messages[1]
    assert reply.model == "openai/gpt-4o-mini" and reply.cost is not None and reply.cost > 0
    assert again.figures.llm_calls == 1 and again.figures.cost == reply.cost
    assert again.candidate(cand.id).evaluation.line_profile, "JSON columns round-trip"


@pytest.mark.slow
def test_a_workload_whose_calls_never_reach_the_code_is_refused(ctx):
    # A classic slip: ((a, b),) is a 1-tuple holding the args, so every call gets one argument.
    workload = "def cases():\n    return [(([1, 2], [2]),)]\n"
    with pytest.raises(services.WorkloadError) as info:
        create(ctx, workload_source=workload)
    assert "never run the body of the entry point" in str(info.value)
    assert "`(a, b)`" in str(info.value)
