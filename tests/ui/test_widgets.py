"""The pure parts of the shared widgets: error messages, job progress steps, the diff, the
verdict words, line highlighting, visibility, the classroom's growing series."""

from __future__ import annotations

import pytest

from app import services
from app.services import ui_support
from app.ui.diff import side_by_side_html
from app.ui.errors import message_for, message_for_job
from app.ui.jobs import progress_steps
from app.ui.modes import highlighted_html
from app.ui.verdict import verdict_badge, verdict_parts
from tests.ui.factories import NOW, candidate, evaluation


def test_service_errors_read_as_they_are_and_point_at_what_was_kept() -> None:
    exc = services.CodeDoesNotParse("the code does not parse: line 1", stored={"session_id": 7})
    msg = message_for(exc)
    assert msg.text == "the code does not parse: line 1"
    assert "session #7" in msg.hint


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        ("llm", "The language model call failed while chatting: no key"),
        ("moe", "The local model failed while chatting"),
        ("db", "The database could not be reached while chatting"),
        ("todo", "This part of perfloop is not available yet while chatting"),
        ("other", "Something went wrong while chatting: KeyError"),
    ],
)
def test_every_error_kind_becomes_one_sentence(exc: str, expected: str) -> None:
    from sqlalchemy.exc import OperationalError

    from app.llm.errors import AuthError
    from app.moe.errors import EngineUnavailable

    error = {
        "llm": AuthError("no key"),
        "moe": EngineUnavailable("model file missing"),
        "db": OperationalError("SELECT 1", {}, Exception("database is locked")),
        "todo": NotImplementedError(),
        "other": KeyError("x"),
    }[exc]
    msg = message_for(error, doing="chatting")
    assert msg.text.startswith(expected)
    assert "Traceback" not in msg.text


def test_job_errors_keep_service_messages_and_wrap_the_rest() -> None:
    assert message_for_job("no code in the reply", "NoCodeInReply").text == "no code in the reply"
    wrapped = message_for_job("boom\nmore", "RuntimeError", doing="turn")
    assert wrapped.text == "Something went wrong while turn: RuntimeError: boom"


def test_progress_steps_show_done_running_and_the_sandbox_steps_to_come() -> None:
    progress = [("prompt", {}), ("llm", {}), ("tests", {"candidate_id": 3})]
    steps = progress_steps(progress, finished=False)
    assert steps == [
        ("building the prompt", "done"),
        ("the model is writing", "done"),
        ("candidate #3: running the tests", "running"),
        ("candidate #3: comparing outputs with the baseline", "todo"),
        ("candidate #3: timing", "todo"),
        ("candidate #3: line profiling", "todo"),
    ]
    finished = progress_steps(progress + [("done", {})], finished=True)
    assert all(state == "done" for _, state in finished)


def test_side_by_side_diff_tints_changes_and_folds_unchanged_runs() -> None:
    old = "\n".join(f"line {i}" for i in range(20)) + "\nold <tail>"
    new = "\n".join(f"line {i}" for i in range(20)) + "\nnew <tail>"
    page = side_by_side_html(old, new)
    assert "⋯ 17 unchanged lines" in page  # 20 equal lines before the change: 3 kept
    middle = side_by_side_html("x\n" + old, "y\n" + new)
    assert "⋯ 14 unchanged lines" in middle  # between two changes: 3 kept on each side
    assert "⋯ 3 unchanged lines" in side_by_side_html("a\n1\n2\n3\n4\n5\n6", "b\n1\n2\n3\n4\n5\n6")
    assert "old &lt;tail&gt;" in page and "new &lt;tail&gt;" in page  # escaped
    assert page.count("#FBE3C8") == 1 and page.count("#D4E9F7") == 1


def test_verdict_words() -> None:
    ok = evaluation(1)
    assert verdict_parts(ok) == ["tests 3/3 ✅", "equivalent ✅", "2.00× [1.90–2.10]", "faster"]
    assert verdict_badge(ok) == "🚀"
    wrong = evaluation(2, correct=False, tests_failed=1, equivalent=False, verdict=None)
    assert verdict_parts(wrong)[:2] == ["tests 3/4 ❌", "different outputs ❌"]
    assert verdict_badge(wrong) == "❌"
    assert verdict_parts(None) == ["not evaluated yet"]
    assert verdict_parts(evaluation(3, status="running")) == ["being evaluated …"]


def test_highlighted_lines() -> None:
    page = highlighted_html("a\nb\nc\nd", [(2, 3)])
    assert page.count("background:#FFF3B0") == 2


def test_classroom_series_grows_with_the_steps() -> None:
    from app.services.views import ReplayStep

    base = candidate(1, origin="baseline", iteration=0, evaluation=None)
    new = candidate(2, parent=1, iteration=1, evaluation=None)
    steps = [
        ReplayStep(0, "candidate", NOW, candidate=base),
        ReplayStep(1, "evaluation", NOW, evaluation=evaluation(1, speedup=None)),
        ReplayStep(2, "candidate", NOW, candidate=new),
        ReplayStep(3, "evaluation", NOW, evaluation=evaluation(2)),
    ]
    assert ui_support.series_until(steps, 0) == []
    assert [p.candidate_id for p in ui_support.series_until(steps, 2)] == [1]
    assert [p.iteration for p in ui_support.series_until(steps, 3)] == [0, 1]


def test_unified_diff_fits_a_column_and_keeps_long_lines_whole() -> None:
    from app.ui.diff import side_by_side_html, unified_html

    long = "    return sum(x * x for x in numbers if x is not None and x > -10**9)  # " + "z" * 80
    old, new = "def f(numbers):\n    return 0\n", f"def f(numbers):\n{long}\n"
    page = unified_html(old, new, old_label="#1", new_label="#2")
    assert 'data-diff="unified"' in page
    assert "z" * 80 in page  # the whole new line, wrapped, not cut off
    assert "pre-wrap" in page and "white-space:pre;" not in page
    assert page.count("<tr>") == 1 + 3  # heading, the kept line, one removed, one added
    assert "−" in page and "+" in page
    assert "pre-wrap" in side_by_side_html(old, new)  # side by side wraps as well


def test_optimize_cards_show_a_unified_diff_review_side_by_side(seeded, seeded_at) -> None:  # noqa: ANN001
    at = seeded_at("optimize", session=str(seeded.session_id))
    bodies = [h.proto.body for h in at.get("html")]
    assert any('data-diff="unified"' in b for b in bodies)
    assert not any('data-diff="side-by-side"' in b for b in bodies)
    review = seeded_at("review", session=str(seeded.session_id))
    assert any('data-diff="side-by-side"' in h.proto.body for h in review.get("html"))


def test_a_stopped_evaluation_reads_as_stopped_not_incorrect() -> None:
    from app.ui.verdict import is_stopped, verdict_badge
    from tests.ui.factories import evaluation

    ev = evaluation(
        4, status="error", correct=None, speedup=None, ci_low=None, ci_high=None, verdict=None,
        tests_passed=None, tests_failed=None, equivalent=None,
        error="the evaluation failed: Cancelled: stopped by the person",
    )  # fmt: skip
    assert is_stopped(ev)
    parts = " · ".join(verdict_parts(ev))
    assert "stopped" in parts and "❌" not in parts and "incorrect" not in parts
    assert verdict_badge(ev) == "⏹"


def test_peak_memory_reads_in_the_unit_that_fits() -> None:
    from app.ui.verdict import memory_text

    assert memory_text(340 * 1024) == "340.0 KiB"
    assert memory_text(12 * 2**20 + 2**19) == "12.5 MiB"
    assert memory_text(512) == "512 B"


def test_raw_json_replies_fold_in_the_transcript(seeded, seeded_at) -> None:  # noqa: ANN001
    from db import queries
    from db.engine import unit_of_work

    raw = '{"candidates": [{"code": "def f(): pass"}], "tests": ["def test_x(): pass"]}'
    with unit_of_work(seeded.ctx.engine) as s:
        queries.add_message(session=s, session_id=seeded.session_id, role="assistant",
                            content=raw, kind="conair")  # fmt: skip
    at = seeded_at("optimize", session=str(seeded.session_id))
    assert not any(raw in m.value for m in at.markdown)
    assert any("The model's raw reply" in e.label for e in at.expander)
    assert any(raw in c.value for c in at.code)
