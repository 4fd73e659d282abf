"""The candidate tree: add a hand-edited version, label one as best, read the best one."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services.access import Actor, acting, require_change, require_read
from app.services.code import parse_error
from app.services.context import Context, get_context
from app.services.errors import CodeDoesNotParse, EntryNotFound, NotFound
from app.services.sessions import BEST_LABEL, candidate_views
from app.services.views import CandidateView
from db import queries
from db.engine import unit_of_work
from db.errors import NotFound as RowNotFound
from db.models import Candidate

__all__ = [
    "BEST_LABEL",
    "add_human_candidate",
    "best_candidate",
    "candidate_diff",
    "clear_best",
    "get_candidate",
    "mark_best",
]


def _row(s: Session, candidate_id: int) -> Candidate:
    try:
        return queries.get_candidate(candidate_id, session=s)
    except RowNotFound as exc:
        raise NotFound("candidate", candidate_id) from exc


T = TypeVar("T")
#: How often a writer tries the next number when another one took its iteration first.
NUMBER_ATTEMPTS = 5


def store_numbered(ctx: Context, session_id: int, write: Callable[[Session, int], T]) -> T:
    """``write(s, iteration)`` in its own unit of work, with the session's next iteration
    number. The number is unique by a database constraint (session_id, iteration, block): when
    another process took it first, the whole write is retried with the next one."""
    for attempt in range(NUMBER_ATTEMPTS):
        try:
            with unit_of_work(ctx.engine) as s:
                return write(s, queries.next_iteration(session_id, session=s))
        except IntegrityError:
            if attempt == NUMBER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def base_candidate_id(s: Session, session_id: int, parent_id: int | None) -> int:
    """The version to build on: ``parent_id`` if given (it must belong to the session), else
    the best one, else the baseline."""
    if parent_id is not None:
        row = _row(s, parent_id)
        if row.session_id != session_id:
            raise NotFound(f"candidate in session {session_id}:", parent_id)
        return row.id
    views = candidate_views(s, session_id)
    best = next((c for c in views if c.is_best), None)
    if best is not None:
        return best.id
    base = next((c for c in views if c.origin == "baseline"), None)
    if base is None:
        raise NotFound("baseline of session", session_id)
    return base.id


def view_of(s: Session, candidate_id: int) -> CandidateView:
    row = _row(s, candidate_id)
    for c in candidate_views(s, row.session_id):
        if c.id == candidate_id:
            return c
    raise NotFound("candidate", candidate_id)  # pragma: no cover - just loaded


def add_human_candidate(
    session_id: int,
    source: str,
    *,
    parent_id: int | None = None,
    note: str = "",
    evaluate: bool = True,
    on_progress: Callable[[str, dict[str, Any]], None] | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> CandidateView:
    """Store a version the person wrote (origin ``human``, parent default: the best one) and
    evaluate it. Raises ``CodeDoesNotParse`` (nothing stored) when it is not valid Python."""
    from app.services.code import defines
    from app.services.evaluation import evaluate_on_pool

    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        require_change(s, session_id, who, c.settings)
    err = parse_error(source)
    if err is not None:
        raise CodeDoesNotParse(f"Your version does not parse: {err[0]}", field="code", line=err[1])

    def write(s: Session, iteration: int) -> int:
        sess = queries.get_session(session_id, session=s)
        if not defines(source, sess.entry_point):
            raise EntryNotFound(
                f"Your version does not define the entry point `{sess.entry_point}`."
            )
        parent = base_candidate_id(s, session_id, parent_id)
        return queries.add_candidate(
            session=s,
            session_id=session_id,
            source=source,
            origin="human",
            parent_id=parent,
            iteration=iteration,
            meta={"note": note},
        ).id

    candidate_id = store_numbered(c, session_id, write)
    if evaluate:
        evaluate_on_pool([candidate_id], c, on_progress=on_progress)
    return get_candidate(candidate_id, actor=who, ctx=c)


def get_candidate(
    candidate_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> CandidateView:
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        require_read(s, _row(s, candidate_id).session_id, acting(actor, c), c.settings)
        return view_of(s, candidate_id)


def mark_best(
    candidate_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> CandidateView:
    """Label this candidate as the session's best (overrides the automatic choice)."""
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        row = _row(s, candidate_id)
        require_change(s, row.session_id, acting(actor, c), c.settings)
        for other in queries.list_candidates(row.session_id, session=s):
            if other.label == BEST_LABEL:
                other.label = None
        row.label = BEST_LABEL
        s.flush()
        return view_of(s, candidate_id)


def clear_best(session_id: int, *, actor: Actor | None = None, ctx: Context | None = None) -> None:
    """Drop the person's label: "best" falls back to the automatic choice."""
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        require_change(s, session_id, acting(actor, c), c.settings)
        for other in queries.list_candidates(session_id, session=s):
            if other.label == BEST_LABEL:
                other.label = None


def best_candidate(
    session_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> CandidateView | None:
    """The labelled best; else the correct candidate with the highest speedup whose verdict is
    ``faster``; else None (the baseline is then the version to improve)."""
    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        require_read(s, session_id, acting(actor, c), c.settings)
        return next((x for x in candidate_views(s, session_id) if x.is_best), None)


def candidate_diff(
    old_id: int, new_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> str:
    """Unified diff between two candidates' sources."""
    c = get_context(ctx)
    who = acting(actor, c)
    with unit_of_work(c.engine) as s:
        old, new = _row(s, old_id), _row(s, new_id)
        for sid in {old.session_id, new.session_id}:
            require_read(s, sid, who, c.settings)
        return unified_diff(old.source, new.source, f"candidate {old_id}", f"candidate {new_id}")


def unified_diff(old: str, new: str, old_name: str = "before", new_name: str = "after") -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name
        )
    )
