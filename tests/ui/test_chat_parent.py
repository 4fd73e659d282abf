"""Chat turns improve the current best version (item 1 of issue 9): the "Improve version"
selector follows the best every time it changes, unless the person picks another version for
the coming turn. The remote model is answered by litellm's mock_response."""

from __future__ import annotations

import pytest

from app import services
from app.ui import examples
from tests.ui.conftest import wait_for_jobs

pytestmark = pytest.mark.slow


#: A different version per turn (a reply that repeats its parent's code proposes nothing).
REPLIES = {
    "Use a generator": "def sum_of_squares(numbers):\n    return sum(x * x for x in numbers)\n",
    "Make it faster still": "def sum_of_squares(numbers):\n"
    "    return sum([x * x for x in numbers])\n",
    "Start again from the original": "def sum_of_squares(numbers):\n"
    "    return sum(map(lambda x: x * x, numbers))\n",
}


def _turn(at, sid: int, text: str) -> None:  # noqa: ANN001
    services.get_context().llm_options["mock_response"] = f"```python\n{REPLIES[text]}```\n"
    at.chat_input(key=f"chat:{sid}").set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]
    wait_for_jobs()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def _user_prompts(sid: int) -> list[dict]:
    return [m.meta for m in services.get_session(sid).messages if m.role == "user"
            and m.kind == "chat"]  # fmt: skip


def test_turns_improve_the_best_version_unless_another_is_picked_mock_provider(app_at) -> None:  # noqa: ANN001
    sid = services.create_session(
        baseline_source=examples.BASELINE,
        entry_point=examples.ENTRY,
        workload_source=examples.WORKLOAD,
        tests_source=examples.TESTS,
    ).info.id
    at = app_at("optimize", session=str(sid))
    baseline = services.get_session(sid).baseline
    parent_key = f"keep:parent:{sid}"
    assert at.selectbox(key=parent_key).value == baseline.id

    _turn(at, sid, "Use a generator")
    first = services.get_session(sid).candidates[-1]
    assert first.parent_id == baseline.id
    # the person stars the new version: the selector follows it without being touched
    at.button(key=f"card_{first.id}_Mark best").click().run()
    assert services.get_session(sid).best.id == first.id
    assert at.selectbox(key=parent_key).value == first.id

    _turn(at, sid, "Make it faster still")
    view = services.get_session(sid)
    second = view.candidates[-1]
    assert second.parent_id == first.id
    prompt = _user_prompts(sid)[-1]
    assert prompt["parent_id"] == first.id
    assert first.source.strip() in prompt["prompt"]  # the best version's code …
    assert f"current version = candidate {first.id}" in prompt["prompt"]  # … and its verdict
    assert "total = total + x * x" not in prompt["prompt"]  # not the baseline's code

    # a version picked for one turn is used for that turn only
    at.selectbox(key=parent_key).set_value(baseline.id).run()
    _turn(at, sid, "Start again from the original")
    third = services.get_session(sid).candidates[-1]
    assert third.parent_id == baseline.id
    assert _user_prompts(sid)[-1]["parent_id"] == baseline.id
    assert at.selectbox(key=parent_key).value == services.get_session(sid).best.id
