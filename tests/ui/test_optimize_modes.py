"""The Optimize page's ConAIR and summary modes (AppTest, remote model answered by litellm's
mock_response, candidates and tests run in the real sandbox)."""

from __future__ import annotations

import json

import pytest

from app import services
from tests.ui.conftest import texts, wait_for_jobs

pytestmark = pytest.mark.slow

CONAIR_REPLY = """Two versions and two tests.

```python
# candidate 1
def sum_of_squares(numbers):
    return sum(x * x for x in numbers)
```

```python
# candidate 2
def sum_of_squares(numbers):
    return sum(x * x for x in numbers if x > 0)
```

```python
# tests
from target import sum_of_squares


def test_negative_numbers_count():
    assert sum_of_squares([-3, 1]) == 10


def test_negative_numbers_ignored():
    assert sum_of_squares([-3, 1]) == 1
```
"""

SUMMARY_REPLY = (
    "```json\n"
    + json.dumps(
        [
            {"text": "Start a running total at zero", "lines": [[3, 3]]},
            {"text": "Add the square of each number to the total", "lines": [[4, 5]]},
            {"text": "Return the total", "lines": [[6, 6]]},
        ]
    )
    + "\n```"
)

# One fixed mock answers both calls of an edit: the code change (the python block) and the
# refreshed summary of the new code (the json block).
EDIT_REPLY = (
    "```python\ndef sum_of_squares(numbers):\n"
    '    """Sum of the squares of a list of integers."""\n'
    "    return sum(x * x for x in numbers)\n```\n\n```json\n"
    + json.dumps([{"text": "Square and add the numbers with sum()", "lines": [[3, 3]]}])
    + "\n```\n"
)


def _mode(at, sid: int, mode: str):  # noqa: ANN001, ANN202
    at.segmented_control(key=f"keep:mode:{sid}").set_value(mode).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_conair_validate_a_test_mock_provider(seeded, seeded_at) -> None:  # noqa: ANN001
    sid = seeded.session_id
    seeded.ctx.llm_options["mock_response"] = CONAIR_REPLY
    at = _mode(seeded_at("optimize", session=str(sid)), sid, "conair")
    at.number_input(key=f"keep:conair:{sid}:n").set_value(2)
    at.number_input(key=f"keep:conair:{sid}:m").set_value(2)
    at.button(key=f"conair_start_{sid}").click().run()
    snaps = wait_for_jobs(600)
    assert [s.error for s in snaps if s.kind == "conair"] == [None]
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    state = services.conair_state(sid)
    assert state.questions, "ConAIR asked nothing to validate"
    assert any(f"Test `{q.test.name}`" in texts(at) for q in state.questions)
    assert at.dataframe, "no ranking table"
    answers = {q.test.name: q.test.id for q in state.questions}
    for name, tid in answers.items():
        verdict = "accept" if name == "test_negative_numbers_count" else "reject"
        at.radio(key=f"keep:conair:{sid}:answer:{tid}").set_value(verdict)
    at.button(key=f"conair_answer_{sid}").click().run()
    wait_for_jobs(600)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    after = services.conair_state(sid)
    assert after.effort >= len(answers)
    validation = {t.id: t.validation for t in after.tests}
    if "test_negative_numbers_count" in answers:
        assert validation[answers["test_negative_numbers_count"]] == "accepted"


def test_summary_edit_an_item_mock_provider(seeded, seeded_at) -> None:  # noqa: ANN001
    sid = seeded.session_id
    seeded.ctx.llm_options["mock_response"] = SUMMARY_REPLY
    at = _mode(seeded_at("optimize", session=str(sid)), sid, "summary")
    at.selectbox(key=f"keep:summary:{sid}:candidate").set_value(seeded.baseline_id).run()
    at.button(key=f"summarize_{sid}").click().run()
    snaps = wait_for_jobs()
    assert [s.error for s in snaps if s.kind == "summary"] == [None]
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [summary] = services.list_summaries(seeded.baseline_id)
    item = at.text_input(key=f"keep:summary:{summary.id}:item:1")
    assert item.value == "Add the square of each number to the total"
    # choosing an item highlights its lines
    at.button(key=f"summary_sel_{summary.id}_1").click().run()
    code = [h.proto.body for h in at.get("html") if "sum_of_squares" in h.proto.body][0]
    assert code.count("background:#FFF3B0") == len(range(*summary.items[1].spans[0])) + 1
    # edit the item and apply it: a "summary" candidate with its diff
    seeded.ctx.llm_options["mock_response"] = EDIT_REPLY
    at.text_input(key=f"keep:summary:{summary.id}:item:1").input(
        "Square and add the numbers with sum() over a generator"
    ).run()
    at.button(key=f"summary_apply_{summary.id}").click().run()
    snaps = wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    origins = [c.origin for c in services.get_session(sid).candidates]
    assert "summary" in origins, (origins, [s.error for s in snaps])
    assert "The code now follows the edited summary" in texts(at)


# Four versions (three right, one dropping negative numbers) and three tests, one of them with
# a wrong expected value (2² + 3² is 13): the original code fails it.
CONAIR_WRONG_TEST_REPLY = """Four versions and three tests.

```python
# candidate 1
def sum_of_squares(numbers):
    return sum(x * x for x in numbers)
```

```python
# candidate 2
def sum_of_squares(numbers):
    return sum([x * x for x in numbers])
```

```python
# candidate 3
def sum_of_squares(numbers):
    return sum(map(lambda x: x * x, numbers))
```

```python
# candidate 4
def sum_of_squares(numbers):
    return sum(x * x for x in numbers if x > 0)
```

```python
# tests
from target import sum_of_squares


def test_negative_numbers_count():
    assert sum_of_squares([-3, 1]) == 10


def test_two_and_three():
    assert sum_of_squares([2, 3]) == 12


def test_single():
    assert sum_of_squares([4]) == 16
```
"""


def _hover_incorrect(at, sid: int) -> set[int]:  # noqa: ANN001
    """Candidate ids the speedup chart marks as incorrect (in their hover text)."""
    from tests.ui.conftest import chart

    out = set()
    for trace in chart(at, f"speedup_{sid}")["data"]:
        ids, hover = trace.get("customdata") or [], trace.get("hovertext") or []
        for cid, text in zip(ids, hover, strict=False):
            if "incorrect" in str(text):
                out.add(int(cid[0] if isinstance(cid, list) else cid))
    return out


def _metric(at, label: str) -> str:  # noqa: ANN001
    return next(m.value for m in at.metric if m.label == label)


def test_conair_trusted_verdicts_contradicting_test_and_restart_mock_provider(
    seeded, seeded_at
) -> None:  # noqa: ANN001
    sid = seeded.session_id
    seeded.ctx.llm_options["mock_response"] = CONAIR_WRONG_TEST_REPLY
    at = _mode(seeded_at("optimize", session=str(sid)), sid, "conair")
    at.number_input(key=f"keep:conair:{sid}:n").set_value(4)
    at.number_input(key=f"keep:conair:{sid}:m").set_value(3)
    at.button(key=f"conair_start_{sid}").click().run()
    snaps = wait_for_jobs(600)
    assert [s.error for s in snaps if s.kind == "conair"] == [None]
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    state = services.conair_state(sid)
    right, drops = [c.id for c in state.candidates[:3]], state.candidates[3].id
    # Round 1: the three right versions are correct on their cards, in the chart and in the
    # figures, and timed; the wrong test is flagged as contradicting the baseline.
    page = texts(at)
    assert "This test contradicts the baseline" in page
    assert [q.test.name for q in state.questions][0] == "test_two_and_three"
    assert _metric(at, "Candidates (correct)") == "5 (3)"  # the seeded chat candidate + 4
    assert _hover_incorrect(at, sid) == {drops}
    titles = {e.label for e in at.expander}
    for cid in right:
        assert not any(t.startswith(f"❌ Candidate #{cid} ") for t in titles), titles
        assert services.get_candidate(cid).evaluation.speedup is not None
    assert "unvalidated: fails 1 of 3 generated tests (not counted as incorrect)" in page
    table = at.dataframe[0].value
    assert "speedup [95% CI]" in table.columns
    assert all("×" in table["speedup [95% CI]"][i] for i in range(3))
    assert "×" not in table["speedup [95% CI]"][3]
    # Reject the contradicting test (the panel suggests it) and answer.
    wrong = state.questions[0].test.id
    assert at.radio(key=f"keep:conair:{sid}:answer:{wrong}").value == "reject"
    at.button(key=f"conair_answer_{sid}").click().run()
    snaps = wait_for_jobs(600)
    assert [s.error for s in snaps if s.kind.startswith("conair")] == [None, None]
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    after = services.conair_state(sid)
    assert after.finished and after.round == 2
    # Every candidate's status recomputed; the repaired version of the wrong one is correct.
    view = services.get_session(sid)
    correct = {c.id for c in view.candidates if c.origin == "conair" and c.evaluation.correct}
    assert set(right) <= correct and drops not in correct and len(correct) == 4
    assert _metric(at, "Candidates (correct)") == "6 (4)"
    assert _hover_incorrect(at, sid) == {drops}
    # A finished run can be started again in the same session.
    assert at.button(key=f"conair_start_{sid}").label == "Start a new ConAIR run"
    at.button(key=f"conair_start_{sid}").click().run()
    wait_for_jobs(600)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    again = services.conair_state(sid)
    assert (again.run, again.round) == (2, 1)
    assert _metric(at, "Run") == "2"


def test_conair_questions_and_standing_in_words() -> None:
    from app.ui.modes import question_reason, speedup_words, unvalidated_words

    test = services.TestCaseView(1, "test_x", "", "llm", "unvalidated", None, 1)
    split = services.TestQuestion(test, 1.0, passing=[5, 6], failing=[7])
    assert question_reason(split) == (
        "It separates the top 3 candidates: #5, #6 pass it, #7 fails it. "
        "Your answer decides which of them behave right."
    )
    against = services.TestQuestion(test, 0.0, [], [5, 6, 7], contradicts_baseline=True)
    assert "contradicts the baseline" in question_reason(against)
    assert "split" not in question_reason(split) + question_reason(against)
    ranked = services.RankedCandidate(
        5, 1, 1.0, 5, 0, 0, correct=True, unvalidated_failed=1, unvalidated_total=6,
        speedup=2.5, ci_low=2.25, ci_high=2.75, verdict="faster",
    )  # fmt: skip
    assert speedup_words(ranked) == "2.50× [2.25–2.75] faster"
    assert unvalidated_words(ranked) == "fails 1 of 6"
