"""Replay: a stored session step by step, in the order things happened, for the classroom."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.services import _convert as cv
from app.services.access import Actor, acting, require_read, session_of_message
from app.services.context import Context, get_context
from app.services.routing import routing_view
from app.services.views import ReplayStep, RoutingView
from db import queries
from db.engine import unit_of_work
from db.models import Candidate, CodeSummary, Evaluation, Message, RoutingTrace

# Within one timestamp: a reply comes before the candidates taken from it, a candidate before
# its evaluation.
_ORDER = {
    "message": 0,
    "candidate": 1,
    "evaluation": 2,
    "summary": 3,
    "conair_round": 4,
    "comment": 5,
}


def replay(
    session_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> Iterator[ReplayStep]:
    """Messages, candidates, evaluations, summaries, ConAIR rounds and comments by time; an
    assistant message carries its decoded routing trace. The data is read once, up front (and
    the right to read it checked at the call, not at the first step), so the iterator holds no
    database connection while a class steps through it."""
    c = get_context(ctx)
    events: list[tuple[datetime, int, int, dict[str, Any]]] = []
    with unit_of_work(c.engine) as s:
        require_read(s, session_id, acting(actor, c), c.settings)
        traces = {
            t.message_id: t
            for t in s.scalars(
                select(RoutingTrace).join(Message).where(Message.session_id == session_id)
            )
        }
        from app.services.sessions import candidate_views

        views = {v.id: v for v in candidate_views(s, session_id)}
        for m in queries.list_messages(session_id, session=s):
            trace = traces.get(m.id)
            events.append(
                (
                    m.created_at,
                    _ORDER["message"],
                    m.id,
                    {
                        "message": cv.message_view(m, trace.id if trace else None),
                        "routing": routing_view(trace) if trace else None,
                    },
                )
            )
        for cand in s.scalars(select(Candidate).where(Candidate.session_id == session_id)):
            events.append(
                (cand.created_at, _ORDER["candidate"], cand.id, {"candidate": views[cand.id]})
            )
        evals = s.scalars(
            select(Evaluation).join(Candidate).where(Candidate.session_id == session_id)
        )
        for ev in evals:
            at = ev.finished_at or ev.started_at or views[ev.candidate_id].created_at
            events.append(
                (
                    at,
                    _ORDER["evaluation"],
                    ev.id,
                    {
                        "evaluation": cv.evaluation_view(ev),
                        "candidate": views[ev.candidate_id],
                    },
                )
            )
        sums = s.scalars(
            select(CodeSummary).join(Candidate).where(Candidate.session_id == session_id)
        )
        for sm in sums:
            events.append(
                (sm.created_at, _ORDER["summary"], sm.id, {"summary": cv.summary_view(sm)})
            )
        sess = queries.get_session(session_id, session=s)
        for r in sess.conair_rounds:
            events.append(
                (
                    r.created_at,
                    _ORDER["conair_round"],
                    r.id,
                    {"conair_round": cv.conair_round_view(r)},
                )
            )
        for cm in queries.list_comments(session_id, session=s):
            events.append(
                (cm.created_at, _ORDER["comment"], cm.id, {"comment": cv.comment_view(cm)})
            )
    events.sort(key=lambda e: (_aware(e[0]), e[1], e[2]))
    kinds = {v: k for k, v in _ORDER.items()}
    return iter(
        [
            ReplayStep(index=index, kind=kinds[order], at=_aware(at), **payload)  # type: ignore[arg-type]
            for index, (at, order, _, payload) in enumerate(events)
        ]
    )


def _aware(at: datetime) -> datetime:
    # SQLite returns naive datetimes (stored as UTC); PostgreSQL aware ones.
    from datetime import UTC

    return at if at.tzinfo else at.replace(tzinfo=UTC)


def get_routing(
    message_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> RoutingView | None:
    """The decoded routing trace of one assistant message, or None if it has none."""
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        require_read(s, session_of_message(s, message_id), acting(actor, c), c.settings)
        trace = s.scalars(select(RoutingTrace).where(RoutingTrace.message_id == message_id)).first()
        return routing_view(trace) if trace is not None else None
