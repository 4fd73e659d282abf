"""Review: the session list for browsing, and comments on sessions, candidates, messages."""

from __future__ import annotations

from app.services.access import Actor, acting, audit, readable, require_comment, require_read
from app.services.context import Context, get_context
from app.services.views import CommentView
from db.queries import SessionListRow, SortKey


def list_sessions(
    *,
    search: str = "",
    author: str | None = None,
    tag: str | None = None,
    visibility: tuple[str, ...] | None = None,
    sort: SortKey = "updated_at",
    descending: bool = True,
    limit: int = 100,
    offset: int = 0,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> tuple[list[SessionListRow], int]:
    """One page of the session list (frozen rows with aggregates) and the total match count,
    both of the sessions the acting person may read (filtered in SQL)."""
    from dataclasses import replace

    from app.services.figures import best_speedup_of
    from app.services.sessions import candidate_views
    from db import queries
    from db.engine import unit_of_work

    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        rows, total = queries.list_sessions(
            session=s,
            search=search,
            author=author,
            tag=tag,
            visibility=visibility,
            sort=sort,
            descending=descending,
            limit=limit,
            offset=offset,
            where=readable(acting(actor, c), c.settings),
        )
        # the best speedup as the session's header shows it (the person's "Mark best" wins
        # over the fastest measurement): one function computes it for both
        rows = [replace(r, best_speedup=best_speedup_of(candidate_views(s, r.id))) for r in rows]
        return rows, total


def add_comment(
    session_id: int,
    text: str,
    *,
    candidate_id: int | None = None,
    message_id: int | None = None,
    actor: Actor | None = None,
    ctx: Context | None = None,
) -> CommentView:
    """A review comment on the session, optionally anchored to a candidate or a message of it,
    by the acting person (anyone signed in who may read the session); audited."""
    from app.services import _convert as cv
    from app.services.errors import InvalidInput, NotFound
    from db import queries
    from db.engine import unit_of_work
    from db.errors import NotFound as RowNotFound

    c = get_context(ctx)
    who = acting(actor, c)
    if not text or not text.strip():
        raise InvalidInput("A comment needs some text.", field="text")
    with unit_of_work(c.engine) as s:
        require_comment(s, session_id, who, c.settings)
        try:
            if candidate_id is not None:
                if queries.get_candidate(candidate_id, session=s).session_id != session_id:
                    raise NotFound(f"candidate of session {session_id}:", candidate_id)
            if message_id is not None:
                if queries.get_message(message_id, session=s).session_id != session_id:
                    raise NotFound(f"message of session {session_id}:", message_id)
        except RowNotFound as exc:
            raise NotFound(exc.what, exc.ident) from exc
        row = queries.add_comment(
            session=s,
            session_id=session_id,
            author=who.name,
            text=text.strip(),
            candidate_id=candidate_id,
            message_id=message_id,
        )
        audit(s, who, "comment", session_id=session_id, detail={"comment_id": row.id})
        return cv.comment_view(row)


def list_comments(
    session_id: int, *, actor: Actor | None = None, ctx: Context | None = None
) -> list[CommentView]:
    from app.services import _convert as cv
    from db import queries
    from db.engine import unit_of_work

    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        require_read(s, session_id, acting(actor, c), c.settings)
        return [cv.comment_view(r) for r in queries.list_comments(session_id, session=s)]
