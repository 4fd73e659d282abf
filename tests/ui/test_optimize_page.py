"""The Optimize page driven like a person would (AppTest): create a session, run the baseline
in the real sandbox, send a chat turn (remote model answered by litellm's mock_response), mark
best, edit by hand; a mistake in the input shows one clear message and keeps the text."""

from __future__ import annotations

import pytest

from app import services
from tests.ui.conftest import chart, texts, wait_for_jobs

pytestmark = pytest.mark.slow


def _button(at, label: str):  # noqa: ANN001
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in at.button]}"
    return matches[0]


def _create(at, **inputs: str):  # noqa: ANN001, ANN202
    at.sidebar.toggle(key="keep:plain_editor").set_value(True).run()
    for name, text in inputs.items():
        at.text_area(key=f"keep:new:{name}").input(text)
    _button(at, "Create session and run the baseline").click().run()
    assert not at.exception, [e.value for e in at.exception]
    wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_create_session_runs_the_baseline_in_the_sandbox(app_at) -> None:  # noqa: ANN001
    at = _create(app_at("optimize"))
    page = texts(at)
    assert "iteration 0 is on the chart" in page
    assert "tests 2/2 ✅" in page  # the baseline's verdict card
    [row] = services.list_sessions()[0]
    assert row.title == "Sum of squares" and row.candidate_count == 1
    points = chart(at, f"speedup_{row.id}")["data"][0]
    assert points["x"] == [0]  # the baseline is the first point


def test_chat_turn_adds_a_candidate_and_a_point_mock_provider(app_at) -> None:  # noqa: ANN001
    at = _create(app_at("optimize"))
    sid = services.list_sessions()[0][0].id
    at.chat_input(key=f"chat:{sid}").set_value("Use a generator").run()
    assert not at.exception
    wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    view = services.get_session(sid)
    assert [m.content for m in view.messages if m.role == "user"][0].startswith("Use a generator")
    assert len(view.candidates) == 2
    new = view.candidates[-1]
    labels = [e.label for e in at.expander]
    assert any(f"Candidate #{new.id} · llm" in label for label in labels), labels
    fig = chart(at, f"speedup_{sid}")
    assert len(fig["data"][0]["x"]) + len(fig["data"][1]["x"]) == 2  # baseline + candidate
    assert "sum(x * x for x in numbers)" in "\n".join(c.value for c in at.code)

    # mark the baseline as best: the person's label overrides the automatic choice
    baseline = view.baseline
    at.button(key=f"card_{baseline.id}_Mark best").click().run()
    assert not at.exception
    assert services.get_session(sid).best.id == baseline.id
    assert any(f"Candidate #{baseline.id}" in e.label and "⭐" in e.label for e in at.expander)
    # edit by hand from a card, evaluate: a human candidate appears
    _button(at, "Edit by hand").click().run()
    at.text_area(key=f"keep:hand:{sid}").input(
        "def sum_of_squares(numbers):\n    return sum([x * x for x in numbers])\n"
    )
    _button(at, "Evaluate my version").click().run()
    wait_for_jobs()
    at.run()
    assert not at.exception
    origins = [c.origin for c in services.get_session(sid).candidates]
    assert origins == ["baseline", "llm", "human"]


def test_bad_code_shows_one_message_and_keeps_the_text(app_at) -> None:  # noqa: ANN001
    broken = "def sum_of_squares(numbers:\n    return 0\n"
    at = _create(app_at("optimize"), baseline=broken)
    errors = [e.value for e in at.error]
    assert errors, "no error shown"
    assert any("line" in e.lower() or "syntax" in e.lower() for e in errors), errors
    assert not at.exception
    assert "Traceback" not in "\n".join(errors)
    # nothing typed is lost: the session keeps it and the fix form offers it for editing
    sid = services.list_sessions()[0][0].id
    assert at.text_area(key=f"keep:fix:{sid}:baseline").value == broken
    assert services.get_session(sid).info.baseline_source == broken


def test_upload_a_py_file_fills_the_code(app_at) -> None:  # noqa: ANN001
    at = app_at("optimize")
    at.sidebar.toggle(key="keep:plain_editor").set_value(True).run()
    source = "def slow(n):\n    return sum(range(n))\n"
    at.file_uploader(key="new:upload").upload("slow.py", source.encode(), "text/x-python")
    at.run()
    assert not at.exception
    assert at.text_area(key="keep:new:baseline").value == source
    at.text_area(key="keep:new:baseline").input(source + "# edited\n").run()
    assert at.text_area(key="keep:new:baseline").value.endswith("# edited\n")  # loaded once


def test_a_running_job_never_blocks_a_page_and_can_be_stopped(app_at) -> None:  # noqa: ANN001
    import threading
    import time

    from app.services import job_kinds
    from app.ui import examples

    sid = services.create_session(
        baseline_source=examples.BASELINE,
        entry_point=examples.ENTRY,
        workload_source=examples.WORKLOAD,
        validate=False,
    ).info.id
    gate = threading.Event()

    def slow_evaluation(session_id, params, *, on_progress, **_) -> None:  # noqa: ANN001
        on_progress("tests", {"candidate_id": 1})
        gate.wait(60)
        on_progress("timing", {"candidate_id": 1})  # a stop request takes effect here

    job_kinds.register(job_kinds.JobKind("test evaluation", slow_evaluation))
    job = services.submit_job("test evaluation", session_id=sid)
    try:
        at = app_at("optimize", session=str(sid))
        started = time.perf_counter()
        at.run()
        assert time.perf_counter() - started < 5, "the page waited for the job"
        page = texts(at)
        assert "⏳ candidate #1: running the tests" in page
        assert "▫️ candidate #1: timing" in page  # the steps still to come
        at.button(key=f"stop_job_{job.id}").click().run()
    finally:
        gate.set()
    assert services.wait_job(job.id, 10).state == "cancelled"
    at.run()
    assert any("Stopped" in i.value for i in at.info)
