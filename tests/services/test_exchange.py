"""Export (Markdown, offline HTML, JSON), lossless import on SQLite and PostgreSQL, replay, and
review comments. The LLM is a recorded transcript that also reports expert routing."""

from __future__ import annotations

import json

import pytest

from app import services
from app.services.exchange import canonical_document
from tests.llm import recorded
from tests.services.conftest import BASELINE, FASTER, TESTS, WORKLOAD, reply_with
from tests.services.test_summaries import ITEMS, as_reply


def build_session(ctx) -> int:
    """A small but complete session: baseline, a turn with a routing trace, an evaluated
    candidate, a summary, a ConAIR round with ids inside JSON, comments."""
    recorded.install([reply_with(FASTER), as_reply(ITEMS)], routing=True)
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        tests_source=TESTS,
        model="recorded/transcript",
        tags=["sets"],
        ctx=ctx,
    )
    sid = view.info.id
    turn = services.run_turn(sid, ctx=ctx)
    cand = turn.candidates[0]
    services.summarize(cand.id, ctx=ctx)
    services.mark_best(cand.id, ctx=ctx)
    services.add_comment(
        sid,
        "Nice: the set is built once.",
        actor=services.Actor(name="grace", role="viewer"),
        candidate_id=cand.id,
        ctx=ctx,
    )
    services.add_comment(
        sid,
        "Reviewed.",
        actor=services.Actor(name="ada", role="editor"),
        message_id=turn.assistant_message_id,
        ctx=ctx,
    )
    from db import queries
    from db.engine import unit_of_work

    with unit_of_work(ctx.engine) as s:
        test_id = queries.list_test_cases(sid, session=s)[0].id
        queries.add_conair_round(
            session=s,
            session_id=sid,
            number=1,
            ranking=[{"candidate_id": cand.id, "rank": 1, "score": 1.0}],
            matrix={
                "cells": [{"candidate_id": cand.id, "test_case_id": test_id, "outcome": "pass"}]
            },
            tests_shown=[test_id],
            answers=[{"test_case_id": test_id, "answer": "accept"}],
            validations_asked=1,
        )
    return sid


@pytest.mark.slow
@pytest.mark.postgres
def test_json_export_imports_losslessly_into_sqlite_and_postgresql_recorded_transcript(
    ctx, make_ctx, postgres_url, sqlite_url, request
):
    from alembic import command

    from db.engine import make_engine
    from tests.conftest import alembic_config

    sid = build_session(ctx)
    original = services.export_document(sid, ctx=ctx)
    assert original["routing_traces"], "the recorded routing was stored"
    text = services.export_session(sid, "json", ctx=ctx)
    for url in (postgres_url, sqlite_url.replace("perfloop.db", "other.db")):
        command.upgrade(alembic_config(url), "head")
        engine = make_engine(url)
        request.addfinalizer(engine.dispose)
        other = make_ctx(engine)
        imported = services.import_session(text, source="session-1.json", ctx=other)
        again = services.export_document(imported.info.id, ctx=other)
        assert canonical_document(again) == canonical_document(original)
        # …and it can be told from its original: where it came from, and when
        info = services.get_session(imported.info.id, ctx=other).info
        assert "imported" in info.tags
        assert info.notes.startswith("imported from session-1.json on 20")
        # Ids are renumbered consistently, JSON columns included.
        view = services.get_session(imported.info.id, ctx=other)
        best = view.best
        assert best is not None and best.label == "best"
        rnd = again["conair_rounds"][0]
        assert rnd["ranking"][0]["candidate_id"] == best.id
        assert rnd["tests_shown"] == [view.tests[0].id]
        routing = services.get_routing(view.messages[1].id, ctx=other)
        assert routing is not None and routing.experts[0] == [[0, 1], [2, 3]]


def test_import_refuses_what_is_not_an_export(ctx):
    with pytest.raises(services.ImportFailed) as info:
        services.import_session("{}", ctx=ctx)
    assert "not a perfloop session export" in str(info.value)
    with pytest.raises(services.ImportFailed):
        services.import_session("not json", ctx=ctx)
    doc = {"format": "perfloop-session", "version": 99}
    with pytest.raises(services.ImportFailed) as info:
        services.import_session(json.dumps(doc), ctx=ctx)
    assert "version 99" in str(info.value)


@pytest.mark.slow
def test_markdown_html_and_replay_recorded_transcript(ctx, tmp_path):
    sid = build_session(ctx)
    md = services.export_session(sid, "md", ctx=ctx)
    assert md.startswith("# Optimise count_common")
    assert "| best speedup | ×" in md and "## Transcript" in md
    assert "seen = set(b)" in md and "Nice: the set is built once." in md
    assert "routing trace stored" in md

    html = services.export_session(sid, "html", ctx=ctx)
    assert html.startswith("<!DOCTYPE html>")
    assert 'src="http' not in html and "<script src=" not in html, "nothing loaded from the net"
    assert "Plotly.newPlot" in html and len(html) > 1_000_000, "plotly.js is inlined"
    assert "seen = set(b)" in html

    steps = list(services.replay(sid, ctx=ctx))
    kinds = [s.kind for s in steps]
    assert kinds[0] in ("message", "candidate")
    assert kinds.index("candidate") < kinds.index("evaluation")
    assert [s.index for s in steps] == list(range(len(steps)))
    assert all(a.at <= b.at for a, b in zip(steps, steps[1:], strict=False))
    reply = next(s for s in steps if s.message and s.message.role == "assistant")
    assert reply.routing is not None and reply.routing.tokens
    assert reply.routing.layer_count == 2 and reply.routing.top_k == 2
    assert {"summary", "comment", "conair_round"} <= set(kinds)


def test_comments_are_anchored_to_the_session(ctx):
    view = services.create_session(
        baseline_source=BASELINE,
        entry_point="count_common",
        workload_source=WORKLOAD,
        validate=False,
        ctx=ctx,
    )
    sid = view.info.id
    with pytest.raises(services.InvalidInput):
        services.add_comment(sid, "   ", ctx=ctx)
    with pytest.raises(services.NotFound):
        services.add_comment(sid, "hi", candidate_id=9999, ctx=ctx)
    c = services.add_comment(sid, "looks good", ctx=ctx)
    assert c.author == "anonymous"
    assert services.list_comments(sid, ctx=ctx) == [c]
