"""The Review page (AppTest): a seeded session read-only — transcript, candidate tree, chart,
diff — comments anchored to a message, visibility of private sessions, export and import."""

from __future__ import annotations

import json

import pytest

from app import services
from tests.ui.conftest import chart, texts

pytestmark = pytest.mark.slow


def test_review_shows_transcript_tree_chart_and_diff(seeded, seeded_at) -> None:  # noqa: ANN001
    at = seeded_at("review", session=str(seeded.session_id))
    assert not at.error, [e.value for e in at.error]
    page = texts(at)
    assert "Use a generator" in page  # the transcript
    assert f"#{seeded.baseline_id} baseline" in page and f"#{seeded.candidate_id} llm" in page
    fig = chart(at, f"review_speedup_{seeded.session_id}")
    assert fig["data"][0]["x"] == [0]  # the baseline; the seeded candidate is not evaluated
    # the Compare tab defaults to first vs last candidate: the generator line is new
    assert "sum(x * x for x in numbers)" in page
    assert f"`?session={seeded.session_id}`" in page


def test_post_a_comment_anchored_to_a_message(seeded, seeded_at) -> None:  # noqa: ANN001
    sid, mid = seeded.session_id, seeded.assistant_message_id
    at = seeded_at("review", session=str(sid))
    at.selectbox(key=f"keep:review:{sid}:anchor").set_value(f"m{mid}")
    at.text_area(key=f"keep:review:{sid}:comment").input("Nice use of a generator")
    at.button(key=f"review_post_{sid}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [comment] = services.list_comments(sid)
    assert comment.message_id == mid and comment.text == "Nice use of a generator"
    assert comment.author == "anonymous"
    assert "Nice use of a generator" in texts(at)
    assert at.text_area(key=f"keep:review:{sid}:comment").value == ""  # posted, so cleared


def test_empty_comment_is_refused_with_a_message(seeded, seeded_at) -> None:  # noqa: ANN001
    sid = seeded.session_id
    at = seeded_at("review", session=str(sid))
    at.button(key=f"review_post_{sid}").click().run()
    assert [e.value for e in at.error] == ["Write the comment first."]
    assert services.list_comments(sid) == []


def test_export_json_and_import_it_back(seeded, seeded_at) -> None:  # noqa: ANN001
    sid = seeded.session_id
    at = seeded_at("review", session=str(sid))
    at.selectbox(key=f"review:{sid}:fmt").set_value("json")
    at.button(key=f"review_export_{sid}").click().run()
    assert not at.error, [e.value for e in at.error]
    kind, text = at.session_state[f"review:{sid}:export"]
    document = json.loads(text)
    assert kind == "json" and "Use a generator" in text
    assert at.get("download_button"), "no download button after preparing the export"
    at.file_uploader(key="review:import").upload("session.json", text.encode(), "application/json")
    at.run()
    at.button(key="review_import").click().run()
    assert not at.error, [e.value for e in at.error]
    rows, total = services.list_sessions()
    assert total == 2 and document
    assert any("Imported as session" in s.value for s in at.success)
