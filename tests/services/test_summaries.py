"""Summary-mediated editing end to end: summary items linked to line spans (checked with ast),
an edited item turned into code by the LLM, evaluated by the real sandbox, summary refreshed
and the changed items reported. The LLM is a recorded transcript."""

from __future__ import annotations

import json

import pytest

from app import services
from app.services.summaries import parse_items
from tests.llm import recorded
from tests.services.conftest import BASELINE, FASTER, TESTS, WORKLOAD, reply_with

ITEMS = [
    {"text": "Start a counter at zero.", "lines": [[3, 3]]},
    {"text": "For each item of a, look it up in the list b.", "lines": [[4, 5]]},
    {"text": "Count it when it is found.", "lines": [[6, 6]]},
    {"text": "Return the count.", "lines": [[7, 9]]},
    {"text": "Handle errors.", "lines": [[40, 42]]},
]
REFRESHED = [
    {"text": "Build a set from b once.", "lines": [[3, 3]]},
    {"text": "Count the items of a found in the set.", "lines": [[4, 4]]},
]


def as_reply(items: list[dict]) -> str:
    return f"```json\n{json.dumps(items)}\n```"


@pytest.mark.slow
def test_edit_a_summary_item_and_get_a_faster_candidate_recorded_transcript(ctx):
    transcript = recorded.install(
        [as_reply(ITEMS), reply_with(FASTER, "Built a set once."), as_reply(REFRESHED)]
    )
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        model="recorded/transcript",
        mode="summary",
        ctx=ctx,
    )
    summary = services.summarize(view.baseline.id, granularity="step-by-step", ctx=ctx)
    assert summary.granularity == "step-by-step"
    assert [i.spans for i in summary.items] == [[(3, 3)], [(4, 5)], [(6, 6)], [(7, 7)], []]
    assert "item 4: lines 7–9 adjusted to 7–7" in summary.repairs
    assert "item 5: lines 40–42 describe no code; dropped" in summary.repairs
    assert "   5|         if x in b:" in transcript.calls[0][-1]["content"], "numbered code"

    edited = list(summary.items)
    edited[1] = services.SummaryItem(
        "For each item of a, look it up in a set built once from b.", edited[1].spans
    )
    result = services.apply_summary_edit(summary.id, edited, ctx=ctx)

    prompt = transcript.calls[1][-1]["content"]
    assert "look it up in the list b" in prompt and "a set built once from b" in prompt
    assert '- changed: "For each item of a, look it up in the list b."' in prompt
    assert [c.kind for c in result.edit_changes] == ["changed"]
    cand = result.candidate
    assert cand.origin == "summary" and cand.parent_id == view.baseline.id
    assert cand.evaluation.correct and cand.evaluation.verdict == "faster"
    assert "+    seen = set(b)" in result.diff
    assert result.summary.candidate_id == cand.id
    assert [i.text for i in result.summary.items] == [i["text"] for i in REFRESHED]
    kinds = sorted(c.kind for c in result.changes)
    assert kinds.count("removed") + kinds.count("changed") >= 3
    stored = services.get_summary(summary.id, ctx=ctx)
    assert stored.edited_items[1].text.endswith("a set built once from b.")
    assert [s.id for s in services.list_summaries(cand.id, ctx=ctx)] == [result.summary.id]


def test_an_unchanged_summary_is_not_sent(ctx):
    recorded.install([as_reply(ITEMS)])
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        model="recorded/transcript",
        validate=False,
        ctx=ctx,
    )
    summary = services.summarize(view.baseline.id, granularity="overview", ctx=ctx)
    with pytest.raises(services.InvalidInput):
        services.apply_summary_edit(summary.id, list(summary.items), ctx=ctx)


def test_bulleted_summaries_are_understood_too():
    items = parse_items("Summary:\n- Start at zero (line 3)\n- Scan a (lines 4-6)\n* Return it")
    assert [(i.text, i.spans) for i in items] == [
        ("Start at zero", [(3, 3)]),
        ("Scan a", [(4, 6)]),
        ("Return it", []),
    ]
