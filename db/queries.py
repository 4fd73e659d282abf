"""Data-access functions. Each takes the unit of work as ``*, session`` and holds no business
logic: the services decide *what* to store, these say *how*."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.orm import Session

from db.errors import NotFound
from db.models import (
    Candidate,
    CodeSummary,
    Comment,
    ConairRound,
    Evaluation,
    Message,
    OptimizationSession,
    RoutingTrace,
    TestCase,
    utcnow,
)

# --- sessions -------------------------------------------------------------------------------


def create_session(
    *,
    session: Session,
    title: str,
    baseline_source: str,
    entry_point: str,
    workload_source: str,
    author: str = "anonymous",
    visibility: str = "team",
    mode: str = "chat",
    model: str | None = None,
    tags: list[str] | None = None,
    notes: str = "",
    source: dict[str, Any] | None = None,
) -> OptimizationSession:
    """``source``: the source columns of a project / installed-module session (source_kind,
    project_path, module, module_file, target, environment, project_tests)."""
    row = OptimizationSession(
        **(source or {}),
        title=title,
        author=author,
        visibility=visibility,
        mode=mode,
        model=model,
        baseline_source=baseline_source,
        entry_point=entry_point,
        workload_source=workload_source,
        tags=list(tags or []),
        notes=notes,
    )
    session.add(row)
    session.flush()
    return row


def get_session(session_id: int, *, session: Session) -> OptimizationSession:
    row = session.get(OptimizationSession, session_id)
    if row is None:
        raise NotFound("session", session_id)
    return row


def touch_session(session_id: int, *, session: Session) -> None:
    get_session(session_id, session=session).updated_at = utcnow()


def delete_session(session_id: int, *, session: Session) -> None:
    session.delete(get_session(session_id, session=session))


@dataclass(frozen=True)
class SessionListRow:
    id: int
    title: str
    author: str
    created_at: datetime
    updated_at: datetime
    visibility: str
    mode: str
    model: str | None
    tags: list[str]
    candidate_count: int
    best_speedup: float | None


SortKey = Literal["created_at", "updated_at", "title", "author", "best_speedup", "candidates"]


def list_sessions(
    *,
    session: Session,
    search: str = "",
    author: str | None = None,
    tag: str | None = None,
    visibility: tuple[str, ...] | None = None,
    sort: SortKey = "updated_at",
    descending: bool = True,
    limit: int = 100,
    offset: int = 0,
    where: ColumnElement[bool] | None = None,
) -> tuple[list[SessionListRow], int]:
    """One page of the session list with per-session aggregates, and the total match count.
    ``where``: a condition every row must meet (the services pass who may read what), applied
    to the rows and to the count alike.

    Aggregates are computed in SQL (one grouped subquery each) so the page stays fast with
    tens of thousands of sessions.
    """
    cand_count = (
        select(Candidate.session_id, func.count(Candidate.id).label("n"))
        .group_by(Candidate.session_id)
        .subquery()
    )
    best = (
        select(Candidate.session_id, func.max(Evaluation.speedup).label("best"))
        .join(Evaluation, Evaluation.candidate_id == Candidate.id)
        .where(Evaluation.verdict == "faster", Evaluation.correct.is_(True))
        .group_by(Candidate.session_id)
        .subquery()
    )
    n = func.coalesce(cand_count.c.n, 0)
    stmt: Select[Any] = (
        select(OptimizationSession, n.label("n"), best.c.best)
        .outerjoin(cand_count, cand_count.c.session_id == OptimizationSession.id)
        .outerjoin(best, best.c.session_id == OptimizationSession.id)
    )
    filters: list[ColumnElement[bool]] = [] if where is None else [where]
    if search:
        like = f"%{search.lower()}%"
        filters.append(
            or_(
                func.lower(OptimizationSession.title).like(like),
                func.lower(OptimizationSession.entry_point).like(like),
                func.lower(OptimizationSession.notes).like(like),
            )
        )
    if author:
        filters.append(OptimizationSession.author == author)
    if visibility:
        filters.append(OptimizationSession.visibility.in_(visibility))
    if tag:
        # JSON arrays are stored as text on SQLite and json on PostgreSQL; a cast works on both.
        from sqlalchemy import String, cast

        filters.append(cast(OptimizationSession.tags, String).like(f'%"{tag}"%'))
    if filters:
        stmt = stmt.where(*filters)
    total = (
        session.scalar(select(func.count()).select_from(OptimizationSession).where(*filters))
        if filters
        else session.scalar(select(func.count(OptimizationSession.id)))
    )
    order_col: Any = {
        "created_at": OptimizationSession.created_at,
        "updated_at": OptimizationSession.updated_at,
        "title": OptimizationSession.title,
        "author": OptimizationSession.author,
        "best_speedup": func.coalesce(best.c.best, 0.0),
        "candidates": n,
    }[sort]
    stmt = stmt.order_by(
        order_col.desc() if descending else order_col.asc(), OptimizationSession.id.desc()
    )
    stmt = stmt.limit(limit).offset(offset)
    rows = [
        SessionListRow(
            id=s.id,
            title=s.title,
            author=s.author,
            created_at=s.created_at,
            updated_at=s.updated_at,
            visibility=s.visibility,
            mode=s.mode,
            model=s.model,
            tags=list(s.tags or []),
            candidate_count=int(count),
            best_speedup=best_speedup,
        )
        for s, count, best_speedup in session.execute(stmt)
    ]
    return rows, int(total or 0)


# --- messages -------------------------------------------------------------------------------


def add_message(
    *,
    session: Session,
    session_id: int,
    role: str,
    content: str,
    model: str | None = None,
    kind: str = "chat",
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cost: float | None = None,
    latency_s: float | None = None,
    meta: dict[str, Any] | None = None,
) -> Message:
    row = Message(
        session_id=session_id,
        role=role,
        content=content,
        model=model,
        kind=kind,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        latency_s=latency_s,
        meta=dict(meta or {}),
    )
    session.add(row)
    session.flush()
    return row


def get_message(message_id: int, *, session: Session) -> Message:
    row = session.get(Message, message_id)
    if row is None:
        raise NotFound("message", message_id)
    return row


def list_messages(session_id: int, *, session: Session) -> list[Message]:
    return list(
        session.scalars(
            select(Message).where(Message.session_id == session_id).order_by(Message.id)
        )
    )


# --- candidates and evaluations --------------------------------------------------------------


def add_candidate(
    *,
    session: Session,
    session_id: int,
    source: str,
    origin: str,
    parent_id: int | None = None,
    message_id: int | None = None,
    label: str | None = None,
    meta: dict[str, Any] | None = None,
    iteration: int | None = None,
    block: int = 0,
) -> Candidate:
    """``iteration`` None: the session's next number (``next_iteration``). The unique
    (session_id, iteration, block) constraint refuses a number another writer just took."""
    if iteration is None:
        iteration = next_iteration(session_id, session=session)
    row = Candidate(
        session_id=session_id,
        source=source,
        origin=origin,
        parent_id=parent_id,
        message_id=message_id,
        label=label,
        iteration=iteration,
        block=block,
        meta=dict(meta or {}),
    )
    session.add(row)
    session.flush()
    return row


def next_iteration(session_id: int, *, session: Session) -> int:
    """One more than the session's highest candidate iteration (the baseline is 0)."""
    top = session.scalar(
        select(func.max(Candidate.iteration)).where(Candidate.session_id == session_id)
    )
    return (top or 0) + 1


def get_candidate(candidate_id: int, *, session: Session) -> Candidate:
    row = session.get(Candidate, candidate_id)
    if row is None:
        raise NotFound("candidate", candidate_id)
    return row


def list_candidates(session_id: int, *, session: Session) -> list[Candidate]:
    return list(
        session.scalars(
            select(Candidate).where(Candidate.session_id == session_id).order_by(Candidate.id)
        )
    )


def latest_evaluation(candidate_id: int, *, session: Session) -> Evaluation | None:
    return session.scalars(
        select(Evaluation)
        .where(Evaluation.candidate_id == candidate_id)
        .order_by(Evaluation.id.desc())
        .limit(1)
    ).first()


def add_evaluation(
    *, session: Session, candidate_id: int, backend: str, status: str = "pending"
) -> Evaluation:
    row = Evaluation(candidate_id=candidate_id, backend=backend, status=status, started_at=utcnow())
    session.add(row)
    session.flush()
    return row


def get_evaluation(evaluation_id: int, *, session: Session) -> Evaluation:
    row = session.get(Evaluation, evaluation_id)
    if row is None:
        raise NotFound("evaluation", evaluation_id)
    return row


# --- tests, summaries, comments, traces, conair rounds ---------------------------------------


def add_test_case(
    *,
    session: Session,
    session_id: int,
    source: str,
    name: str = "",
    origin: str = "user",
    round: int | None = None,
) -> TestCase:
    row = TestCase(session_id=session_id, source=source, name=name, origin=origin, round=round)
    session.add(row)
    session.flush()
    return row


def list_test_cases(session_id: int, *, session: Session) -> list[TestCase]:
    return list(
        session.scalars(
            select(TestCase).where(TestCase.session_id == session_id).order_by(TestCase.id)
        )
    )


def add_code_summary(
    *,
    session: Session,
    candidate_id: int,
    granularity: str,
    items: list[dict[str, Any]],
    model: str | None = None,
) -> CodeSummary:
    row = CodeSummary(candidate_id=candidate_id, granularity=granularity, items=items, model=model)
    session.add(row)
    session.flush()
    return row


def add_comment(
    *,
    session: Session,
    session_id: int,
    author: str,
    text: str,
    candidate_id: int | None = None,
    message_id: int | None = None,
) -> Comment:
    row = Comment(
        session_id=session_id,
        author=author,
        text=text,
        candidate_id=candidate_id,
        message_id=message_id,
    )
    session.add(row)
    session.flush()
    return row


def list_comments(session_id: int, *, session: Session) -> list[Comment]:
    return list(
        session.scalars(
            select(Comment).where(Comment.session_id == session_id).order_by(Comment.id)
        )
    )


def add_routing_trace(*, session: Session, **fields: Any) -> RoutingTrace:
    row = RoutingTrace(**fields)
    session.add(row)
    session.flush()
    return row


def list_routing_traces(
    *, session: Session, session_id: int | None = None, limit: int = 200
) -> list[RoutingTrace]:
    stmt = select(RoutingTrace).order_by(RoutingTrace.id.desc()).limit(limit)
    if session_id is not None:
        stmt = stmt.join(Message).where(Message.session_id == session_id)
    return list(session.scalars(stmt))


def add_conair_round(
    *, session: Session, session_id: int, number: int, **fields: Any
) -> ConairRound:
    row = ConairRound(session_id=session_id, number=number, **fields)
    session.add(row)
    session.flush()
    return row


def delete_all(*, session: Session) -> None:
    """Remove every session (and, by cascade, everything under it). For tests and resets."""
    session.execute(delete(OptimizationSession))
