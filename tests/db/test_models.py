"""The domain model on real databases: a whole session graph persists, aggregates are right,
bad enumerations are refused, deleting a session removes everything under it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from db import NotFound, queries, unit_of_work
from db.models import (
    Candidate,
    CodeSummary,
    Comment,
    ConairRound,
    Evaluation,
    Message,
    RoutingTrace,
    TestCase,
)


def _make_graph(engine: Engine, title: str = "sum of squares", speedup: float = 2.5) -> int:
    with unit_of_work(engine) as s:
        sess = queries.create_session(
            session=s,
            title=title,
            baseline_source="def f(n):\n    return sum(i*i for i in range(n))\n",
            entry_point="f",
            workload_source="def cases():\n    return [(1000,)]\n",
            author="ada",
            tags=["numeric", "demo"],
        )
        msg = queries.add_message(
            session=s, session_id=sess.id, role="assistant", content="try a formula", model="m"
        )
        base = queries.add_candidate(
            session=s, session_id=sess.id, source=sess.baseline_source, origin="baseline"
        )
        cand = queries.add_candidate(
            session=s,
            session_id=sess.id,
            source="def f(n):\n    return (n-1)*n*(2*n-1)//6\n",
            origin="llm",
            parent_id=base.id,
            message_id=msg.id,
        )
        ev = queries.add_evaluation(session=s, candidate_id=cand.id, backend="bwrap")
        ev.status, ev.correct, ev.verdict = "ok", True, "faster"
        ev.speedup, ev.ci_low, ev.ci_high = speedup, speedup * 0.97, speedup * 1.03
        ev.peak_memory_bytes = 3 * 1024**3  # larger than a 32-bit integer
        queries.add_test_case(session=s, session_id=sess.id, source="def test_x(): pass")
        queries.add_code_summary(
            session=s,
            candidate_id=cand.id,
            granularity="overview",
            items=[{"text": "closed form", "spans": [[1, 2]]}],
        )
        queries.add_comment(
            session=s, session_id=sess.id, author="bob", text="nice", candidate_id=cand.id
        )
        queries.add_routing_trace(
            session=s,
            message_id=msg.id,
            model="m",
            layer_count=2,
            expert_count=8,
            top_k=2,
            token_count=3,
            tokens=["a", "b", "c"],
            encoding="test",
            expert_ids=b"\x00\x01" * 6,
            gate_weights=b"\x00" * 24,
        )
        queries.add_conair_round(session=s, session_id=sess.id, number=1, validations_asked=2)
        return sess.id


def test_session_graph_persists_and_lists_with_aggregates(engine: Engine) -> None:
    sid = _make_graph(engine)
    _make_graph(engine, title="other", speedup=1.5)
    with unit_of_work(engine) as s:
        sess = queries.get_session(sid, session=s)
        assert [c.origin for c in sess.candidates] == ["baseline", "llm"]
        assert sess.candidates[1].parent_id == sess.candidates[0].id
        assert sess.candidates[1].evaluations[0].peak_memory_bytes == 3 * 1024**3
        assert sess.tags == ["numeric", "demo"]
        rows, total = queries.list_sessions(session=s, sort="best_speedup")
        assert total == 2
        assert [(r.title, r.candidate_count, r.best_speedup) for r in rows] == [
            ("sum of squares", 2, 2.5),
            ("other", 2, 1.5),
        ]
        rows, total = queries.list_sessions(session=s, search="OTH")
        assert (total, [r.title for r in rows]) == (1, ["other"])
        rows, total = queries.list_sessions(session=s, tag="numeric")
        assert total == 2


@pytest.mark.parametrize(
    ("model", "field", "bad"),
    [(Message, "role", "wizard"), (Candidate, "origin", "magic"), (Evaluation, "status", "meh")],
)
def test_out_of_range_enumerations_are_refused(model, field, bad) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=f"{field.split('_')[0]}.*must be one of"):
        model(**{field: bad})


def test_deleting_a_session_removes_everything_under_it(engine: Engine) -> None:
    sid = _make_graph(engine)
    with unit_of_work(engine) as s:
        queries.delete_session(sid, session=s)
    with unit_of_work(engine) as s:
        for model in (
            Message,
            Candidate,
            Evaluation,
            TestCase,
            CodeSummary,
            Comment,
            RoutingTrace,
            ConairRound,
        ):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model.__name__
        with pytest.raises(NotFound, match="session .* does not exist"):
            queries.get_session(sid, session=s)
