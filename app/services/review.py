"""Review: the session list for browsing, and comments on sessions, candidates, messages."""

from __future__ import annotations

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
    ctx: Context | None = None,
) -> tuple[list[SessionListRow], int]:
    """One page of the session list (frozen rows with aggregates) and the total match count."""
    from db import queries
    from db.engine import unit_of_work

    c = get_context(ctx)
    with unit_of_work(c.engine) as s:
        return queries.list_sessions(
            session=s,
            search=search,
            author=author,
            tag=tag,
            visibility=visibility,
            sort=sort,
            descending=descending,
            limit=limit,
            offset=offset,
        )


def add_comment(
    session_id: int,
    text: str,
    *,
    author: str | None = None,
    candidate_id: int | None = None,
    message_id: int | None = None,
    ctx: Context | None = None,
) -> CommentView:
    raise NotImplementedError


def list_comments(session_id: int, *, ctx: Context | None = None) -> list[CommentView]:
    raise NotImplementedError
