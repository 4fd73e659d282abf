"""The candidate tree: add a hand-edited version, label one as best, read the best one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.services.context import Context
from app.services.views import CandidateView

BEST_LABEL = "best"


def add_human_candidate(
    session_id: int,
    source: str,
    *,
    parent_id: int | None = None,
    note: str = "",
    evaluate: bool = True,
    on_progress: Callable[[str, dict[str, Any]], None] | None = None,
    ctx: Context | None = None,
) -> CandidateView:
    """Store a version the person wrote (origin ``human``, parent default: the best one) and
    evaluate it. Raises ``CodeDoesNotParse`` (nothing stored) when it is not valid Python."""
    raise NotImplementedError


def get_candidate(candidate_id: int, *, ctx: Context | None = None) -> CandidateView:
    raise NotImplementedError


def mark_best(candidate_id: int, *, ctx: Context | None = None) -> CandidateView:
    """Label this candidate as the session's best (overrides the automatic choice)."""
    raise NotImplementedError


def clear_best(session_id: int, *, ctx: Context | None = None) -> None:
    """Drop the person's label: "best" falls back to the automatic choice."""
    raise NotImplementedError


def best_candidate(session_id: int, *, ctx: Context | None = None) -> CandidateView | None:
    """The labelled best; else the correct candidate with the highest speedup whose verdict is
    ``faster``; else None (the baseline is then the version to improve)."""
    raise NotImplementedError


def candidate_diff(old_id: int, new_id: int, *, ctx: Context | None = None) -> str:
    """Unified diff between two candidates' sources."""
    raise NotImplementedError
