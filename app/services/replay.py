"""Replay: a stored session step by step, in the order things happened, for the classroom."""

from __future__ import annotations

from collections.abc import Iterator

from app.services.context import Context
from app.services.views import ReplayStep, RoutingView


def replay(session_id: int, *, ctx: Context | None = None) -> Iterator[ReplayStep]:
    """Messages, candidates, evaluations, summaries, ConAIR rounds and comments by time; an
    assistant message carries its decoded routing trace."""
    raise NotImplementedError


def get_routing(message_id: int, *, ctx: Context | None = None) -> RoutingView | None:
    """The decoded routing trace of one assistant message, or None if it has none."""
    raise NotImplementedError
