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
